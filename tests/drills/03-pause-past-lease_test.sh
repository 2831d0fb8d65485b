#!/usr/bin/env bash
# Drill pause-past-lease: one proxy's HAProxy is frozen (SIGSTOP: a GC-like stall, a VM pause)
# for twice the session timeout under load, then thawed. Its watcher's checks go unanswered,
# its VIP moves to the next proxy of the ring. ZooKeeper expires its session meanwhile and may
# hand its worker ID to someone else: after the thaw the node must not mint another ID under
# that worker (its fence passed while it was frozen), and must get a new lease before serving.
# A direct client (on the frozen node's own address, as a caller that kept its connection) shows
# what a request reaching the thawed node gets: handed to a peer (200, another proxy's worker)
# or, with no peer ready, 503; never an ID of the expired lease. Figures: the window for callers
# of its VIP, errors on the other VIPs, failed requests, the re-lease time, the paused worker's
# last ID against its lease's bound. Over everything: no duplicate, no per-worker order violation.
. "$(dirname "$0")/lib.sh"
dr_init pause-past-lease 120
TARGET_WINDOW_MS=${TARGET_WINDOW_MS:-2000}
PAUSE_MS=$((2 * DR_SESSION_MS))

dr_standard_up 3
dr_load 20000
sleep 4
dr_pick p1
mapfile -t pids < <(hap_pids "$ACT")
ev stop
kill -STOP "${pids[@]}"
stop_mono=$EV_MONO stop_wall=$EV_WALL
diag "SIGSTOP to $ACT's HAProxy: ${pids[*]} (worker $W_ACT)"
dr_vip_moved "while $ACT was frozen" "$stop_wall"
left=$((PAUSE_MS - 300 - $(ms_since "$stop_mono")))
((left > 0)) && sleep "$(awk -v ms=$left 'BEGIN { printf "%.3f", ms / 1000 }')"
client_start direct "${DR_IP[$ACT]}" 3000 -c 4 -r 200 -T 1000 -t 1000 -k 20 || fatal "the direct client starts"
direct=$CLIENT_PID
sleep 0.3
ev cont
kill -CONT "${pids[@]}"
cont_mono=$EV_MONO
figure paused_ms $(((cont_mono - stop_mono) / 1000))
if hap_wait "$ACT" 200 10000; then
	ok "$ACT serves again after the thaw, with a new lease (worker $(hap_worker "$ACT"), was $W_ACT)"
	figure relet_ms "$(ms_since "$cont_mono")"
	dr_vip_came_back "$NOW_MONO"
else
	not_ok "$ACT serves again after the thaw"
fi
client_wait "$direct" 5000 || not_ok "the direct client ends within its bound"
client_wait "$LOAD_PID" 20000 || not_ok "the client ends within its bound"

analyze "$T/direct.log" || fatal "the direct client's log is readable"
diag "direct to $ACT after the thaw: ${A[ids]} IDs (by node: ${A[nodes]}; by worker: ${A[workers]}), errors: ${A[errors_by]}"
direct_refusals=$(grep -c '^E .* http 503:' "$T/direct.log")
handed=$(awk -v me="$ACT" '$1 == "I" && $6 != me { n++ } END { print n + 0 }' "$T/direct.log")
figure direct_503_after_thaw "$direct_refusals"
figure direct_handed_to_peers_after_thaw "$handed"
vip_phase_args "$stop_mono" "$cont_mono"
analyze --phase "stop:$stop_mono:$cont_mono" "${VIP_PHASE_ARGS[@]}" "$T/vip.log" || fatal "the client log is readable"
window=${A[vphase_${ACT}_window_ms]:-none}
figure error_window_ms "$window"
other=$(other_vip_errors)
dr_zero other_vips_failed "$other" "callers of the other VIPs saw no error while $ACT was frozen"
dr_zero failed_requests "${A[phase_stop_failed_requests]}" "every request got an ID through a retry on the next VIP"
bound=$((stop_wall / 1000 + DR_SESSION_MS))
analyze --fence "paused:$W_ACT:$bound" "$T/vip.log" "$T/direct.log" || fatal "the client logs are readable"
figure ids_received "${A[ids]}"
figure late_ids_of_paused_worker "${A[fence_paused_late_ids]}"
figure paused_worker_last_id_vs_bound_ms "${A[fence_paused_last_ms]}"
if [[ ${A[fence_paused_late_ids]} == 0 ]]; then
	ok "the paused node issued no ID under worker $W_ACT after stop + session timeout (latest: ${A[fence_paused_last_ms]} ms vs. that bound)"
else
	not_ok "the paused node issued ${A[fence_paused_late_ids]} IDs under worker $W_ACT after stop + session timeout"
fi
if ((direct_refusals + handed > 0)); then
	ok "requests that reached the thawed node before its new lease were handed to peers ($handed) or refused ($direct_refusals), never answered from the expired lease"
else
	not_ok "requests reached the thawed node before its new lease (none handed off, none refused)"
fi
dr_window_ok "$window" "$TARGET_WINDOW_MS"
check_safety "pause-past-lease"
dr_done
