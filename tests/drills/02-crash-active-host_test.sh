#!/usr/bin/env bash
# Drill crash-active-host: the active host drops off the network under load (its link goes down:
# from the outside indistinguishable from a crashed host). The standby stops hearing adverts and
# takes the VIP after 3 x 100 ms + skew; the client retries onto it. The cut lasts longer than the
# lease's session timeout, so the isolated host's lease runs out: it must stop minting at its
# fence (it cannot reach ZooKeeper). When the link comes back it rejoins as backup with a new
# lease and does not take the VIP back. Figures: error window, failed requests, IDs received,
# VIP move. Over everything the client received: no duplicate, no per-worker order violation.
. "$(dirname "$0")/lib.sh"
dr_init crash-active-host 120
TARGET_WINDOW_MS=${TARGET_WINDOW_MS:-1000}
CUT_MS=$((2 * DR_SESSION_MS))

dr_standard_up 1
dr_load_and_pick 16000
ev cut
ip -n "$(ns "$ACT")" link set eth0 down
cut_mono=$EV_MONO cut_wall=$EV_WALL
dr_vip_moved "after $ACT's link went down" "$cut_wall"
# isolated past its session timeout: the lease must have fenced itself
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
else
	not_ok "$ACT serves again after the link is back"
fi
dr_rejoined_as_backup 0.5
client_wait "$LOAD_PID" 16000 || not_ok "the client ends within its bound"

analyze --phase "cut:$cut_mono:$restore_mono" "$T/vip.log" || fatal "the client log is readable"
window=${A[phase_cut_window_ms]}
figure error_window_ms "$window"
figure failed_requests "${A[phase_cut_failed]}"
figure ids_received "${A[ids]}"
diag "errors by kind: ${A[errors_by]}; IDs by worker: ${A[workers]}"
dr_window_ok "$window" "$TARGET_WINDOW_MS"
if [[ ,${A[workers]}, == *,$W_SBY=* ]]; then ok "IDs kept flowing from $SBY (worker $W_SBY)"; else not_ok "IDs kept flowing from $SBY (worker $W_SBY): ${A[workers]}"; fi
check_safety "crash-active-host"
dr_done
