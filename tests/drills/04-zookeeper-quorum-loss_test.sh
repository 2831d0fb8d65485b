#!/usr/bin/env bash
# Drill zookeeper-quorum-loss: a three-server ZooKeeper ensemble on the bridge; under load, the
# leader and one follower are killed (SIGKILL): the registry has no quorum. Both HAProxy hosts
# keep minting until their fencing deadlines (a short blip costs nothing), then refuse (503);
# the VIP stays where it is, so callers get fast 503s instead of timeouts. The two servers are
# started again; once a quorum serves, minting must resume within 2 s.
# Figures: how long minting went on after the loss, the first 503, time to resume after the quorum
# is back. Over everything the client received: no duplicate, no per-worker order violation.
. "$(dirname "$0")/lib.sh"
dr_init zookeeper-quorum-loss 150
RESUME_TARGET_MS=${RESUME_TARGET_MS:-2000}

dr_standard_up 3
leader=$(dr_zk_leader) || fatal "the ensemble has a leader"
follower=
for k in 1 2 3; do [[ $k != "$leader" ]] && { follower=$k; break; }; done
diag "ZooKeeper leader z$leader, killing it and z$follower"

client_start vip "$VIP" 40000 -c 4 -r 500 || fatal "the client starts"
client=$CLIENT_PID
sleep 4
dr_pick_active
pl=$(dr_zk_pid "$leader") || fatal "ZooKeeper server z$leader runs"
pf=$(dr_zk_pid "$follower") || fatal "ZooKeeper server z$follower runs"
ev loss
kill -KILL -- "-$pl" "-$pf"
loss_mono=$EV_MONO loss_wall=$EV_WALL
if ! { dr_zk_kill "$leader" && dr_zk_kill "$follower"; }; then
	not_ok "the two ZooKeeper servers are gone"
fi
# the killed servers' sockets close only when their JVMs have finished exiting: until then the
# survivor may still answer keep-alives, each of which extends the fence
now
gone_wall=$NOW_WALL
figure servers_gone_after_kill_ms $(((gone_wall - loss_wall) / 1000))
# past every fence: session timeout + 1 s
sleep "$(awk -v ms=$((DR_SESSION_MS + 1000 - $(ms_since "$loss_mono"))) 'BEGIN { printf "%.3f", (ms > 0 ? ms : 0) / 1000 }')"
serving=$(dr_zk_serving_count)
check "the surviving ZooKeeper server no longer serves (no quorum): $serving serving" test "$serving" = 0
for h in p1 p2; do
	code=$(hap_code "$h" /health)
	body=$(hap_get "$h" /health)
	if [[ $code == 503 ]]; then
		ok "$h refuses without a quorum: /health 503 ($(grep -o '"error":"[a-z_]*"' <<<"$body"))"
	else
		not_ok "$h refuses without a quorum: /health $code $body"
	fi
done
holders=$(vip_holders)
if [[ $holders == p1 || $holders == p2 ]]; then
	ok "the VIP stays on one host ($holders) while every node refuses: callers get 503s, not timeouts"
else
	not_ok "the VIP stays on one host while every node refuses (holders: $holders)"
fi
ev restart
restart_mono=$EV_MONO
if ! { dr_zk_start "$leader" && dr_zk_start "$follower"; }; then
	not_ok "the two ZooKeeper servers start again"
fi
if dr_zk_wait_quorum 30000; then
	ev quorum
	# the quorum formed after the last poll that did not see it: time the resumption from there
	quorum_mono=$DR_ZK_NO_QUORUM_MONO
	((quorum_mono < restart_mono)) && quorum_mono=$restart_mono
	ok "the ensemble has a quorum again after $(((EV_MONO - restart_mono) / 1000)) ms (formed after $(((quorum_mono - restart_mono) / 1000)) ms)"
	figure quorum_back_ms $(((quorum_mono - restart_mono) / 1000))
else
	fatal "the ensemble has a quorum again"
fi
# until the VIP answers with IDs again, then a little more load
wait_until 8000 bash -c "awk -v q=$quorum_mono '\$1 == \"I\" && \$2 >= q { f = 1 } END { exit !f }' '$T/vip.log'" ||
	diag "no ID through the VIP within 8 s of the quorum"
sleep 2
kill -TERM "$client" 2>/dev/null
client_wait "$client" 5000 || not_ok "the client ends"

analyze --phase "loss:$loss_mono:$restart_mono" "$T/vip.log" ||
	fatal "the client log is readable"
figure ids_received "${A[ids]}"
figure failed_requests "${A[phase_loss_failed]}"
figure minting_after_loss_ms "${A[phase_loss_last_ok_ms]}"
figure first_503_after_loss_ms "${A[phase_loss_first_503_ms]}"
latest=${A[phase_loss_max_ts]}
[[ $latest != none ]] && figure latest_id_vs_loss_ms $((latest - loss_wall / 1000))
# the first answer with an ID after the quorum formed (none can come before: no registry)
first_ok=$(awk -v q="$quorum_mono" '$1 == "I" && $3 >= q { print $3; exit }' "$T/vip.log")
r=$([[ -n $first_ok ]] && awk -v a="$first_ok" -v q="$quorum_mono" 'BEGIN { printf "%.1f", (a - q) / 1000 }' || echo none)
figure resume_after_quorum_ms "$r"
figure resume_after_restart_ms \
	"$([[ $r != none ]] && awk -v a="$first_ok" -v q="$restart_mono" 'BEGIN { printf "%.1f", (a - q) / 1000 }' || echo none)"
diag "errors by kind: ${A[errors_by]}; IDs by worker: ${A[workers]}"

# minting went on after the loss, and stopped at the fence: last acknowledged request (at the
# latest when the killed servers were gone, plus 100 ms for the survivor to notice) + session
# timeout - margin
fence=$((gone_wall / 1000 + DR_SESSION_MS - DR_MARGIN_MS + 100))
if [[ ${A[phase_loss_last_ok_ms]} != none && $latest != none ]] && ((latest > loss_wall / 1000)); then
	ok "minting continued after the quorum loss (for ${A[phase_loss_last_ok_ms]} ms)"
else
	not_ok "minting continued after the quorum loss (last ID ${A[phase_loss_last_ok_ms]} ms after it)"
fi
if [[ $latest != none ]] && ((latest <= fence)); then
	ok "no ID minted past the fence (latest $((latest - loss_wall / 1000)) ms after the loss, fence <= $((fence - loss_wall / 1000)) ms)"
else
	not_ok "no ID minted past the fence (latest $((latest - loss_wall / 1000)) ms after the loss, fence <= $((fence - loss_wall / 1000)) ms)"
fi
if [[ ${A[phase_loss_first_503_ms]} != none ]]; then
	ok "callers got 503s once the deadlines passed (first ${A[phase_loss_first_503_ms]} ms after the loss)"
else
	not_ok "callers got 503s once the deadlines passed"
fi
if [[ $r != none ]] && awk -v r="$r" -v t="$RESUME_TARGET_MS" 'BEGIN { exit !(r <= t) }'; then
	ok "minting resumed ${r} ms after the quorum was back (<= ${RESUME_TARGET_MS} ms)"
else
	not_ok "minting resumed ${r} ms after the quorum was back (<= ${RESUME_TARGET_MS} ms)"
fi
check_safety "zookeeper-quorum-loss"
dr_done
