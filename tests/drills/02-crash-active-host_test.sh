#!/usr/bin/env bash
# Drill crash-active-host: one proxy's host drops off the network under load (its link goes
# down: from the outside indistinguishable from a crashed host). The next proxy of the ring
# stops hearing its adverts and takes its VIP after 3 x 100 ms + skew; its callers retry on the
# next VIP at once, the other VIPs' callers see nothing. The cut lasts longer than the lease's
# session timeout, so the isolated host's lease runs out: it must stop minting at its fence (it
# cannot reach ZooKeeper, and no peer either). When the link comes back it serves again with a
# new lease and its VIP returns after the hold-down. Figures: the window for callers of its VIP,
# errors on the other VIPs, failed requests, the VIP move. Over everything the client received:
# no duplicate, no per-worker order violation.
. "$(dirname "$0")/lib.sh"
dr_init crash-active-host 120
TARGET_WINDOW_MS=${TARGET_WINDOW_MS:-1000}
CUT_MS=$((2 * DR_SESSION_MS))

dr_standard_up 3
dr_load 20000
sleep 4
dr_pick p1
ev cut
ip -n "$(ns "$ACT")" link set eth0 down
cut_mono=$EV_MONO cut_wall=$EV_WALL
dr_vip_moved "after $ACT's link went down" "$cut_wall"
sleep "$(awk -v ms=$((CUT_MS - $(ms_since "$cut_mono"))) 'BEGIN { printf "%.3f", (ms > 0 ? ms : 0) / 1000 }')"
code=$(hap_code "$ACT" /health)
body=$(hap_get "$ACT" /health)
if [[ $code == 503 ]]; then
	ok "isolated $ACT refuses after its fence: /health 503 ($(grep -o '"error":"[a-z_]*"' <<<"$body"))"
else
	not_ok "isolated $ACT refuses after its fence: /health $code $body"
fi
ev restore
ip -n "$(ns "$ACT")" link set eth0 up
restore_mono=$EV_MONO
if hap_wait "$ACT" 200 10000; then
	ok "$ACT serves again after the link is back (worker $(hap_worker "$ACT"), was $W_ACT)"
	figure rejoin_ms "$(ms_since "$restore_mono")"
	dr_vip_came_back "$NOW_MONO"
else
	not_ok "$ACT serves again after the link is back"
fi
client_wait "$LOAD_PID" 20000 || not_ok "the client ends within its bound"

vip_phase_args "$cut_mono" "$restore_mono"
analyze --nodes p1,p2,p3 --phase "cut:$cut_mono:$restore_mono" "${VIP_PHASE_ARGS[@]}" "$T/vip.log" || fatal "the client log is readable"
window=${A[vphase_${ACT}_window_ms]:-none}
figure error_window_ms "$window"
other=$(other_vip_errors)
figure ids_received "${A[ids]}"
diag "errors by kind: ${A[errors_by]}; by VIP: ${A[errors_by_vip]}; IDs by worker: ${A[workers]}"
dr_window_ok "$window" "$TARGET_WINDOW_MS"
dr_zero other_vips_failed "$other" "callers of the other VIPs saw no error while $ACT was cut off"
dr_zero failed_requests "${A[phase_cut_failed_requests]}" "every request got an ID through a retry on the next VIP"
if [[ ,${A[workers]}, == *,${W[$SBY]:-x}=* ]]; then ok "IDs kept flowing from $SBY (worker ${W[$SBY]:-?})"; else not_ok "IDs kept flowing from $SBY (worker ${W[$SBY]:-?}): ${A[workers]}"; fi
check_safety "crash-active-host"
dr_done
