#!/usr/bin/env bash
# Drill rolling-restart: every proxy restarted one after the other under load, as an operator
# upgrading the fleet does it: drain (snowflake park: its /health fails, so its VIP moves to the
# next proxy and its peers stop handing requests to it, while what still reaches it is handed to
# them), wait until its VIP is gone and its peers see it down, restart it (stop, start, same
# state dir), wait until it is healthy, its peers see it up and its VIP is back (after the
# hold-down), then the next one. Target: DRILL rolling-restart failed_requests 0 (every request
# got an ID, on the first try or on a retry on the next VIP). Figures: per proxy the drain and
# the restart time; over everything the client received: no duplicate, no per-worker order
# violation.
. "$(dirname "$0")/lib.sh"
dr_init rolling-restart 150

dr_standard_up 3
dr_load 90000 300 -J 20 -B 10 -N 32
sleep 3
dr_pick p1
now
start_mono=$NOW_MONO
for h in "${DR_PROXIES[@]}"; do
	ACT=$h
	ev "drain-$h"
	t0=$EV_MONO
	r=$(hap_cli "$h" snowflake park)
	[[ $r == ok* ]] || not_ok "snowflake park on $h ($r)"
	if wait_until 5000 vip_of_moved "$h" && wait_until 5000 peer_seen_as "$h" DOWN; then
		ok "$h drained: its VIP is on $(vip_holders "${DR_VIP[$h]}"), its peers see it down"
	else
		not_ok "$h drained ($(vips_map))"
	fi
	# a second for the callers' requests in flight on it to finish
	sleep 1
	figure "drain_${h}_ms" "$(ms_since "$t0")"
	ev "restart-$h"
	t1=$EV_MONO
	hap_stop "$h" || not_ok "$h's HAProxy stops within 10 s"
	hap_start "$h" || not_ok "run.sh starts again on $h"
	if hap_wait "$h" 200 20000 && wait_until 5000 peer_seen_as "$h" UP; then
		ok "$h serves again after the restart (worker $(hap_worker "$h")), its peers see it up"
		dr_vip_came_back "$NOW_MONO" "vip_return_${h}_ms"
	else
		not_ok "$h serves again after the restart"
	fi
	figure "restart_${h}_ms" "$(ms_since "$t1")"
done
ev end
end_mono=$EV_MONO
figure rolling_restart_ms $(((end_mono - start_mono) / 1000))
sleep 1
kill -TERM "$LOAD_PID" 2>/dev/null
client_wait "$LOAD_PID" 5000 || not_ok "the client ends"

analyze --nodes p1,p2,p3 --phase "roll:$start_mono:$end_mono" "$T/vip.log" || fatal "the client log is readable"
figure ids_received "${A[ids]}"
figure requests "${A[requests]}"
figure failed_attempts "${A[phase_roll_failed]}"
diag "errors by kind: ${A[errors_by]}; by VIP: ${A[errors_by_vip]}; IDs by node: ${A[nodes]}; by worker: ${A[workers]}"
dr_zero failed_requests "${A[failed_requests]}" "every request got its IDs through the whole rolling restart"
check_safety "rolling-restart"
dr_done
