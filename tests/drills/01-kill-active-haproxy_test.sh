#!/usr/bin/env bash
# Drill kill-active-haproxy: SIGKILL the active HAProxy (master and worker together) under load.
# keepalived on the active host sees /health fail (its watcher: next 100 ms check, connection
# refused), its priority drops, the standby takes the VIP; the client retries and IDs keep flowing
# from the standby. Figures: client-visible error window (target <= 1000 ms), failed requests, IDs
# received, the VIP move as keepalived logged it. Then the killed host's HAProxy is started again:
# it rejoins as backup without taking the VIP back. Over everything the client received: no
# duplicate, no per-worker order violation.
. "$(dirname "$0")/lib.sh"
dr_init kill-active-haproxy 120
TARGET_WINDOW_MS=${TARGET_WINDOW_MS:-1000}

dr_standard_up 1
dr_load_and_pick 14000
mapfile -t pids < <(hap_pids "$ACT")
ev kill
kill -KILL "${pids[@]}"
kill_mono=$EV_MONO kill_wall=$EV_WALL
diag "SIGKILL to $ACT's HAProxy: ${pids[*]}"
dr_vip_moved "after $ACT's HAProxy was killed" "$kill_wall"
sleep 3
# the killed host comes back: it must rejoin as backup, not take the VIP back
ev restart
hap_start "$ACT" || not_ok "run.sh starts again on $ACT"
if hap_wait "$ACT" 200 15000; then ok "$ACT serves again after the restart (worker $(hap_worker "$ACT"))"; else not_ok "$ACT serves again after the restart"; fi
dr_rejoined_as_backup 1
client_wait "$LOAD_PID" 15000 || not_ok "the client ends within its bound"

analyze --phase "kill:$kill_mono:$EV_MONO" "$T/vip.log" || fatal "the client log is readable"
window=${A[phase_kill_window_ms]}
figure error_window_ms "$window"
figure failed_requests "${A[phase_kill_failed]}"
figure ids_received "${A[ids]}"
diag "errors by kind: ${A[errors_by]}; IDs by worker: ${A[workers]}; by node header: ${A[nodes]}"
dr_window_ok "$window" "$TARGET_WINDOW_MS"
if [[ ,${A[workers]}, == *,$W_ACT=* && ,${A[workers]}, == *,$W_SBY=* ]]; then
	ok "IDs came from $ACT (worker $W_ACT) before the kill and from $SBY (worker $W_SBY) after"
else
	not_ok "IDs came from both $ACT (worker $W_ACT) and $SBY (worker $W_SBY) (by worker: ${A[workers]})"
fi
# callers tell the serving host by X-Snowflake-Node: it must name both hosts (their node_name)
if [[ ,${A[nodes]}, == *,p1=* && ,${A[nodes]}, == *,p2=* ]]; then
	ok "X-Snowflake-Node names the serving host (p1 and p2 both seen)"
else
	not_ok "X-Snowflake-Node names the serving host (p1 and p2 both seen); got ${A[nodes]}"
fi
check_safety "kill-active-haproxy"
dr_done
