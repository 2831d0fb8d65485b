#!/usr/bin/env bash
# Drill pause-past-lease: SIGSTOP the active HAProxy (master and worker) for twice its session
# timeout, under load, then SIGCONT. While it is frozen its /health goes silent, keepalived moves
# the VIP to the standby and ZooKeeper expires its session. When it thaws, its monotonic fence has
# long passed: it must not issue a single ID under its old worker ID, not even to the requests the
# kernel queued for it while it was frozen. A second client hammers the paused host directly
# (not through the VIP) from just before the SIGCONT, with a long read timeout, so any ID it
# mints on thawing is seen. The check: no ID of the paused node's worker carries a timestamp at or
# after stop + session timeout (a thawed process mints with the current time). Then it comes
# back with a new lease and rejoins as backup.
. "$(dirname "$0")/lib.sh"
dr_init pause-past-lease 120
# a frozen process is only noticed by timeouts: two of the health watcher's 300 ms checks (after up
# to 100 ms until its next poll), then the VRRP takeover (3 adverts of 100 ms), while the client's
# connections stuck on the frozen host wait out their 200 ms read timeout: about 1.25 s when
# nothing else runs (measured 0.85-1.06 s), bounded at 2 s for a busy 2-core box
TARGET_WINDOW_MS=${TARGET_WINDOW_MS:-2000}
PAUSE_MS=$((2 * DR_SESSION_MS))

dr_standard_up 1
dr_load_and_pick 16000
mapfile -t pids < <(hap_pids "$ACT")
ev stop
kill -STOP "${pids[@]}"
stop_mono=$EV_MONO stop_wall=$EV_WALL
diag "SIGSTOP to $ACT's HAProxy: ${pids[*]} (worker $W_ACT)"
dr_vip_moved "while $ACT was frozen" "$stop_wall"
# the direct probe starts 300 ms before the thaw: its requests wait in $ACT's accept queue
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
else
	not_ok "$ACT serves again after the thaw"
fi
dr_rejoined_as_backup 0
client_wait "$direct" 5000 || not_ok "the direct client ends within its bound"
client_wait "$LOAD_PID" 16000 || not_ok "the client ends within its bound"

analyze "$T/direct.log" || fatal "the direct client's log is readable"
diag "direct probe of $ACT after the thaw: ${A[ids]} IDs (by worker: ${A[workers]}), errors: ${A[errors_by]}"
direct_refusals=$(grep -c '^E .* http 503:' "$T/direct.log")
figure direct_503_after_thaw "$direct_refusals"
analyze --phase "stop:$stop_mono:$cont_mono" "$T/vip.log" || fatal "the client log is readable"
window=${A[phase_stop_window_ms]}
figure error_window_ms "$window"
figure failed_requests "${A[phase_stop_failed]}"
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
if ((direct_refusals > 0)); then
	ok "requests that reached the thawed node before its new lease were refused (503), $direct_refusals of them"
else
	not_ok "requests that reached the thawed node before its new lease were refused (503)"
fi
dr_window_ok "$window" "$TARGET_WINDOW_MS"
check_safety "pause-past-lease"
dr_done
