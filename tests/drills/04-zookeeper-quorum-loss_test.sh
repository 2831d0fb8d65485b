#!/usr/bin/env bash
# Drill zookeeper-quorum-loss: a five-server ZooKeeper ensemble on the bridge; under load, the
# leader and two followers are killed (SIGKILL): the registry has no quorum. Every proxy keeps
# minting until its fencing deadline (a short blip costs nothing), then refuses (503): no peer
# can help, they are all fenced (their /health fails, so no handoff either); every VIP stays on
# one proxy, so callers get fast 503s instead of timeouts. The three servers are started again;
# once a quorum serves, minting must resume within 2 s.
# Figures: how long minting went on after the loss, the first 503, handoffs and healthy peers
# while fenced, time to resume after the quorum is back. Over everything the client received:
# no duplicate, no per-worker order violation.
. "$(dirname "$0")/lib.sh"
dr_init zookeeper-quorum-loss 150
RESUME_TARGET_MS=${RESUME_TARGET_MS:-2000}

dr_standard_up 5
leader=$(dr_zk_leader) || fatal "the ensemble has a leader"
victims=("$leader")
for k in 1 2 3 4 5; do ((${#victims[@]} < 3)) && [[ $k != "$leader" ]] && victims+=("$k"); done
diag "ZooKeeper leader z$leader; killing z${victims[0]} z${victims[1]} z${victims[2]}"

dr_load 40000
sleep 4
dr_pick p1
pgs=()
for k in "${victims[@]}"; do
	pid=$(dr_zk_pid "$k") || fatal "ZooKeeper server z$k runs"
	pgs+=("-$pid")
done
handoffs_before=0
for p in "${DR_PROXIES[@]}"; do handoffs_before=$((handoffs_before + $(hap_handoffs "$p"))); done
ev loss
kill -KILL -- "${pgs[@]}"
loss_mono=$EV_MONO loss_wall=$EV_WALL
for k in "${victims[@]}"; do dr_zk_kill "$k" || not_ok "ZooKeeper server z$k is gone"; done
now
gone_wall=$NOW_WALL
figure servers_gone_after_kill_ms $(((gone_wall - loss_wall) / 1000))
sleep "$(awk -v ms=$((DR_SESSION_MS + 1000 - $(ms_since "$loss_mono"))) 'BEGIN { printf "%.3f", (ms > 0 ? ms : 0) / 1000 }')"
serving=$(dr_zk_serving_count)
check "the surviving ZooKeeper servers no longer serve (no quorum): $serving serving" test "$serving" = 0
for h in "${DR_PROXIES[@]}"; do
	code=$(hap_code "$h" /health)
	body=$(hap_get "$h" /health)
	if [[ $code == 503 ]]; then
		ok "$h refuses without a quorum: /health 503 ($(grep -o '"error":"[a-z_]*"' <<<"$body"))"
	else
		not_ok "$h refuses without a quorum: /health $code $body"
	fi
done
peers_up=0
for h in "${DR_PROXIES[@]}"; do
	peers_up=$((peers_up + $(hap_get "$h" /metrics | awk '$1 ~ /^snowflake_peer_up\{/ { n += $2 } END { print n + 0 }')))
done
dr_zero peers_up_while_fenced "$peers_up" "no peer can help while the registry has no quorum (every proxy's handoff backend sees its peers down)"
one_each=1
for p in "${DR_PROXIES[@]}"; do
	h=$(vip_holders "${DR_VIP[$p]}")
	[[ $h == none || $h == *" "* ]] && one_each=0
done
if ((one_each)); then
	ok "every VIP stays on one proxy while every proxy refuses: callers get 503s, not timeouts ($(vips_map))"
else
	not_ok "every VIP stays on one proxy while every proxy refuses ($(vips_map))"
fi
ev restart
restart_mono=$EV_MONO restart_wall=$EV_WALL
# the three start at once (each launch takes a while on a busy host), and the quorum is polled
# meanwhile: the resumption is timed from when it formed
starters=()
for k in "${victims[@]}"; do
	zk_node_start "$DR_ZK_DIR" "$k" --no-wait &
	starters+=($!)
done
if dr_zk_wait_quorum 30000; then
	ev quorum
	# the quorum began to serve when its leader says so (its log); failing that, after the last
	# poll that did not see it (a lower bound for the timing)
	quorum_mono=$DR_ZK_NO_QUORUM_MONO
	((quorum_mono < restart_mono)) && quorum_mono=$restart_mono
	serving_wall=$(dr_zk_broadcast_wall_ms $((restart_wall / 1000)))
	if [[ -n $serving_wall ]]; then
		quorum_mono=$((restart_mono + (serving_wall - restart_wall / 1000) * 1000))
		diag "the new leader serves from $(((quorum_mono - restart_mono) / 1000)) ms after the restart (its log); the polls saw it $(((EV_MONO - restart_mono) / 1000)) ms after"
	fi
	ok "the ensemble has a quorum again, serving $(((quorum_mono - restart_mono) / 1000)) ms after the restart"
	figure quorum_back_ms $(((quorum_mono - restart_mono) / 1000))
else
	fatal "the ensemble has a quorum again"
fi
wait "${starters[@]}" || not_ok "the three ZooKeeper servers start again"
dr_zk_track
wait_until 8000 bash -c "awk -v q=$quorum_mono '\$1 == \"I\" && \$2 >= q { f = 1 } END { exit !f }' '$T/vip.log'" ||
	diag "no ID through the VIPs within 8 s of the quorum"
sleep 2
handoffs_after=0
for p in "${DR_PROXIES[@]}"; do handoffs_after=$((handoffs_after + $(hap_handoffs "$p"))); done
figure handoffs_during_loss $((handoffs_after - handoffs_before))
kill -TERM "$LOAD_PID" 2>/dev/null
client_wait "$LOAD_PID" 5000 || not_ok "the client ends"

analyze --nodes p1,p2,p3 --phase "loss:$loss_mono:$restart_mono" "$T/vip.log" ||
	fatal "the client log is readable"
figure ids_received "${A[ids]}"
figure failed_requests "${A[phase_loss_failed_requests]}"
figure minting_after_loss_ms "${A[phase_loss_last_ok_ms]}"
figure first_503_after_loss_ms "${A[phase_loss_first_503_ms]}"
latest=${A[phase_loss_max_ts]}
[[ $latest != none ]] && figure latest_id_vs_loss_ms $((latest - loss_wall / 1000))
first_ok=$(awk -v q="$quorum_mono" '$1 == "I" && $3 >= q { print $3; exit }' "$T/vip.log")
r=$([[ -n $first_ok ]] && awk -v a="$first_ok" -v q="$quorum_mono" 'BEGIN { printf "%.1f", (a - q) / 1000 }' || echo none)
figure resume_after_quorum_ms "$r"
figure resume_after_restart_ms \
	"$([[ $r != none ]] && awk -v a="$first_ok" -v q="$restart_mono" 'BEGIN { printf "%.1f", (a - q) / 1000 }' || echo none)"
diag "errors by kind: ${A[errors_by]}; IDs by worker: ${A[workers]}"

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
