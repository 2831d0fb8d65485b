#!/usr/bin/env bash
# Drill restart-same-ms: kill -9 the active HAProxy under load and start it again at once, same
# state dir. The layout has one worker bit, so the two hosts hold the only two worker IDs and the
# restarted node can only get its own old ID back (once ZooKeeper expires the killed session): the
# hardest case for "restart never replays". It must wait past the write-ahead marks (local and
# registry) before minting. The VIP goes to the standby meanwhile; then the standby is parked and
# the VIP comes back to the restarted node: every ID it issues under its old worker ID must lie
# above every ID that worker issued before the kill. A second client asks the restarted node
# directly from the moment it is started again, so its very first IDs are checked too.
. "$(dirname "$0")/lib.sh"
dr_init restart-same-ms 120
SEQ_BITS=21 WORKER_BITS=1

dr_standard_up 1 "layout = { worker_bits = $WORKER_BITS, sequence_bits = $SEQ_BITS }"
client_start vip "$VIP" 40000 -c 4 -r 500 || fatal "the client starts"
client=$CLIENT_PID
sleep 4
dr_pick_active
[[ -n $W_ACT && -n $W_SBY && $W_ACT != "$W_SBY" ]] || fatal "the two hosts hold the two worker IDs ($W_ACT, $W_SBY)"
mapfile -t pids < <(hap_pids "$ACT")
ev kill
kill -KILL "${pids[@]}"
kill_mono=$EV_MONO
# run.sh notices its HAProxy is gone and exits; start it again at once
for ((i = 0; i < 200; i++)); do read -r rp <"$T/$ACT/run.pid"; proc_alive "$rp" || break; sleep 0.005; done
# a SIGKILLed multi-threaded process stays a zombie with live threads until every thread has exited
# (seen: still there when run.sh had exited, under a load average of 4): wait for that, bounded
for p in "${pids[@]}"; do
	for ((i = 0; i < 400; i++)); do proc_alive "$p" || break; sleep 0.005; done
	if proc_alive "$p"; then not_ok "$ACT's killed HAProxy process $p is gone"; fi
done
# from here on, every ID under $ACT's worker comes from the new process
ev restart
restart_mono=$EV_MONO
hap_start "$ACT" || not_ok "run.sh starts again on $ACT"
figure restart_after_kill_ms "$(ms_since "$kill_mono")"
# a second client hammers the restarted node directly: its very first IDs are seen
client_start direct "${DR_IP[$ACT]}" 8000 -c 2 -r 200 -T 1000 -t 1000 -k 20 || fatal "the direct client starts"
direct=$CLIENT_PID
if wait_until 3000 vip_on "$SBY"; then ok "the VIP moved to $SBY while $ACT restarted"; else not_ok "the VIP moved to $SBY while $ACT restarted (holders: $(vip_holders))"; fi
if hap_wait "$ACT" 200 20000; then
	ready_ms=$(ms_since "$kill_mono")
	figure kill_to_ready_ms "$ready_ms"
	w_new=$(hap_worker "$ACT")
	if [[ $w_new == "$W_ACT" ]]; then
		ok "the restarted $ACT got its old worker ID $W_ACT back, ready ${ready_ms} ms after the kill"
	else
		not_ok "the restarted $ACT got its old worker ID $W_ACT back (now $w_new)"
	fi
else
	not_ok "the restarted $ACT serves again within 20 s"
fi
wait_line=$(grep -o "waiting [0-9]* ms for the clock to pass the marks of worker [0-9]*" "$T/$ACT/haproxy.log" | tail -n 1)
if [[ -n $wait_line ]]; then
	ok "the restarted $ACT waited for the clock to pass its marks (${wait_line})"
	figure mark_wait_ms "$(awk '{ print $2 }' <<<"$wait_line")"
else
	diag "no 'waiting ... for the clock to pass the marks' line in $ACT's log"
fi
wait_until 5000 prio_is "$ACT" 150 || not_ok "$ACT's keepalived is back at full priority (now $(ka_prio "$ACT"))"
ev park
park_mono=$EV_MONO
r=$(hap_cli "$SBY" snowflake park)
[[ $r == ok* ]] || not_ok "snowflake park on $SBY ($r)"
if wait_until 3000 vip_on "$ACT"; then ok "with $SBY parked the VIP came back to the restarted $ACT"; else not_ok "with $SBY parked the VIP came back to $ACT (holders: $(vip_holders))"; fi
sleep 2
r=$(hap_cli "$SBY" snowflake unpark)
[[ $r == ok* ]] || not_ok "snowflake unpark on $SBY ($r)"
ev end
kill -TERM "$client" "$direct" 2>/dev/null
client_wait "$client" 5000 || not_ok "the client ends"
client_wait "$direct" 5000 || not_ok "the direct client ends"

analyze --layout "$SEQ_BITS:$WORKER_BITS" --phase "kill:$kill_mono:$park_mono" "$T/vip.log" ||
	fatal "the client log is readable"
figure error_window_ms "${A[phase_kill_window_ms]}"
figure failed_requests "${A[phase_kill_failed]}"
analyze --layout "$SEQ_BITS:$WORKER_BITS" --worker-phase "before:$W_ACT:0:$restart_mono" \
	--worker-phase "after:$W_ACT:$restart_mono:$EV_MONO" "$T/vip.log" "$T/direct.log" || fatal "the client logs are readable"
figure ids_received "${A[ids]}"
diag "both clients: errors by kind: ${A[errors_by]}; IDs by worker: ${A[workers]}"
first_direct=$(awk '$1 == "I" { print $3; exit }' "$T/direct.log")
[[ -n $first_direct ]] && figure first_direct_id_after_kill_ms $(((first_direct - kill_mono) / 1000))
dr_after_above_before "no replay: worker $W_ACT's IDs after the restart vs before it" replay_gap_ms
check_safety "restart-same-ms"
dr_done
