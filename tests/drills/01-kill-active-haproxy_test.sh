#!/usr/bin/env bash
# Drill kill-active-haproxy: SIGKILL one proxy's HAProxy (master and worker together) under load,
# on the active-active fleet. Its keepalived sees /health fail (the watcher's next 100 ms check:
# connection refused), its priority drops in every instance, its VIP moves to the next proxy of
# the ring; callers of that VIP retry on the next VIP at once, and callers of the other VIPs see
# nothing at all. Figures: the window for callers of the killed proxy's VIP (target <= 1000 ms),
# errors on the other VIPs (target 0), requests that got no ID after their retries, the VIP move
# as keepalived logged it. Then the killed HAProxy is started again: its VIP comes back to it
# after the hold-down, once. Over everything the client received: no duplicate, no per-worker
# order violation.
. "$(dirname "$0")/lib.sh"
dr_init kill-active-haproxy 120
TARGET_WINDOW_MS=${TARGET_WINDOW_MS:-1000}

dr_standard_up 3
dr_load 16000
sleep 4
dr_pick p1
mapfile -t pids < <(hap_pids "$ACT")
ev kill
kill -KILL "${pids[@]}"
kill_mono=$EV_MONO kill_wall=$EV_WALL
diag "SIGKILL to $ACT's HAProxy: ${pids[*]}"
dr_vip_moved "after $ACT's HAProxy was killed" "$kill_wall"
sleep 2
ev restart
restart_mono=$EV_MONO
hap_start "$ACT" || not_ok "run.sh starts again on $ACT"
if hap_wait "$ACT" 200 15000; then
	ok "$ACT serves again after the restart (worker $(hap_worker "$ACT"))"
	healthy_mono=$NOW_MONO
	dr_vip_came_back "$healthy_mono"
else
	not_ok "$ACT serves again after the restart"
fi
# the return's notify line may trail the address (see vip_moves_reach); a flap would add a third
# line in the second after
wait_until 3000 vip_moves_reach "$ACT" $((kill_wall / 1000)) 2 && sleep 1
moves=$(vip_moves "$ACT" $((kill_wall / 1000)))
figure vip_moves_after_kill "$moves"
figure vip_contested_elections "$(vip_contests "$ACT" $((kill_wall / 1000)))"
check "$ACT's VIP moved twice, away and back (no flapping): $moves" test "$moves" = 2
client_wait "$LOAD_PID" 20000 || not_ok "the client ends within its bound"

vip_phase_args "$kill_mono" "$restart_mono"
analyze --nodes p1,p2,p3 --phase "kill:$kill_mono:$restart_mono" "${VIP_PHASE_ARGS[@]}" "$T/vip.log" || fatal "the client log is readable"
window=${A[vphase_${ACT}_window_ms]:-none}
figure error_window_ms "$window"
other=$(other_vip_errors)
k=vphase_${ACT}_errors
figure failed_attempts_on_its_vip "${A[$k]:-none}"
figure ids_received "${A[ids]}"
diag "errors by kind: ${A[errors_by]}; by VIP: ${A[errors_by_vip]}; IDs by worker: ${A[workers]}; by node: ${A[nodes]}"
dr_window_ok "$window" "$TARGET_WINDOW_MS"
dr_zero other_vips_failed "$other" "callers of the other VIPs saw no error while $ACT was down"
dr_zero failed_requests "${A[phase_kill_failed_requests]}" "every request got an ID through a retry on the next VIP"
if [[ ,${A[nodes]}, == *,p1=* && ,${A[nodes]}, == *,p2=* && ,${A[nodes]}, == *,p3=* ]]; then
	ok "X-Snowflake-Node names the serving proxy (p1, p2 and p3 all seen)"
else
	not_ok "X-Snowflake-Node names the serving proxy (p1, p2 and p3 all seen); got ${A[nodes]}"
fi
check_safety "kill-active-haproxy"
dr_done
