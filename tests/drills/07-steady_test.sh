#!/usr/bin/env bash
# Drill steady: the active-active fleet at rest under load, nothing failing. Callers spread
# their requests round robin over the three VIPs (text /id, JSON /id and /ids batches), each
# proxy answers on its own VIP with its own worker: every proxy mints. Figure share_min_pct: the
# smallest proxy's share of the IDs received (target >= 20 with three proxies); no error, no
# handoff, no duplicate, no per-worker order violation.
. "$(dirname "$0")/lib.sh"
dr_init steady 90
TARGET_SHARE_PCT=${TARGET_SHARE_PCT:-20}

dr_standard_up 3
handoffs_before=0
for p in "${DR_PROXIES[@]}"; do handoffs_before=$((handoffs_before + $(hap_handoffs "$p"))); done
dr_load 10000 300 -J 20 -B 10 -N 64
client_wait "$LOAD_PID" 20000 || not_ok "the client ends within its bound"
handoffs=0
for p in "${DR_PROXIES[@]}"; do handoffs=$((handoffs + $(hap_handoffs "$p"))); done

analyze --nodes p1,p2,p3 "$T/vip.log" || fatal "the client log is readable"
figure ids_received "${A[ids]}"
figure requests "${A[requests]}"
figure share_min_pct "${A[share_min_pct]}"
diag "IDs by node: ${A[nodes]}; by VIP: ${A[ids_by_vip]}; errors: ${A[errors_by]}"
if awk -v s="${A[share_min_pct]}" -v t="$TARGET_SHARE_PCT" 'BEGIN { exit !(s >= t) }'; then
	ok "every proxy mints: the smallest share is ${A[share_min_pct]}% (>= $TARGET_SHARE_PCT%)"
else
	not_ok "every proxy mints: the smallest share is ${A[share_min_pct]}% (>= $TARGET_SHARE_PCT%)"
fi
dr_zero errors "${A[errors]}" "a fleet at rest answers every attempt"
dr_zero failed_requests "${A[failed_requests]}" "every request got its IDs"
dr_zero handoffs $((handoffs - handoffs_before)) "a fleet at rest hands nothing off"
check_safety "steady"
dr_done
