#!/usr/bin/env bash
# Drill clock-step-back: one proxy's wall clock steps back 500 ms under load (libfaketime
# preloaded into every HAProxy through run.sh's HAPROXY_ENV_PREFIX, the offset read from a file
# on every call; CLOCK_MONOTONIC is not faked, so the fence is untouched). 500 ms is far past
# clock.max_wait_ms (20): the node refuses to mint (clock_regressed), and hands every request it
# cannot mint for to a healthy peer, which answers with its own worker: its callers see 200s,
# not 503s. Its /health fails meanwhile, so its VIP moves to the next proxy too (a move is a
# reset on the callers' connections: they retry on the next VIP at once). When its clock passes
# the last millisecond it used, it mints again, and its VIP returns after the hold-down; its IDs
# must continue above everything it issued before the step.
# Figures: failed requests (target 0), handoffs, time until the stepped proxy mints again, the
# 503s callers saw. Over everything the client received: no duplicate, no per-worker order
# violation.
. "$(dirname "$0")/lib.sh"
dr_init clock-step-back 120
STEP=-0.5
# libfaketimeMT and HAProxy's watchdog: see tests/lib/faketime.sh
# shellcheck source=tests/lib/faketime.sh
. "$DR_REPO/tests/lib/faketime.sh"
[[ -r $FAKETIME_LIB ]] || fatal "libfaketimeMT.so.1 is installed (apt-get install faketime)"

# every proxy runs under libfaketime at offset +0; only the stepped one's offset file changes
for h in "${DR_PROXIES[@]}"; do mkdir -p "$T/$h" && echo "+0" >"$T/$h/faketime.rc"; done
DR_HAP_ENV=(HAPROXY_ENV_PREFIX="$(faketime_prefix "$T/%h/faketime.rc")")
dr_standard_up 3
for h in "${DR_PROXIES[@]}"; do
	check "$h's HAProxy runs with libfaketime preloaded" grep -q libfaketime "/proc/$(hap_master "$h")/maps"
done

# a lighter load than the other drills: libfaketime re-reads its file on every clock read
dr_load 30000 150
sleep 4
dr_pick p1
refused_before=$(hap_metric "$ACT" 'snowflake_clock_regressions_total{outcome="refuse"}')
handoffs_before=$(hap_handoffs "$ACT")
served_before=0
for h in "${DR_PROXIES[@]}"; do [[ $h != "$ACT" ]] && served_before=$((served_before + $(hap_metric "$h" snowflake_handoffs_served_total))); done
ev step
echo "$STEP" >"$T/$ACT/faketime.rc.tmp" && mv -f "$T/$ACT/faketime.rc.tmp" "$T/$ACT/faketime.rc"
step_mono=$EV_MONO
# shellcheck disable=SC2317 # called through wait_until
handed_more() { (($(hap_handoffs "$ACT") > handoffs_before)); }
if wait_until 3000 handed_more; then
	ok "$ACT hands the requests it cannot mint for to its peers"
else
	not_ok "$ACT hands the requests it cannot mint for to its peers (handoffs $(hap_handoffs "$ACT"), before $handoffs_before)"
fi
if hap_wait "$ACT" 200 5000; then
	ok "$ACT mints again once its clock passed the last used millisecond"
	figure mints_again_after_ms "$(ms_since "$step_mono")"
	healthy_mono=$NOW_MONO
else
	not_ok "$ACT mints again after the step"
	healthy_mono=$NOW_MONO
fi
dr_vip_came_back "$healthy_mono"
back_mono=$NOW_MONO
refused_after=$(hap_metric "$ACT" 'snowflake_clock_regressions_total{outcome="refuse"}')
handoffs_after=$(hap_handoffs "$ACT")
served_after=0
for h in "${DR_PROXIES[@]}"; do [[ $h != "$ACT" ]] && served_after=$((served_after + $(hap_metric "$h" snowflake_handoffs_served_total))); done
figure active_clock_refusals $((refused_after - refused_before))
figure handoffs $((handoffs_after - handoffs_before))
figure handoffs_served_by_peers $((served_after - served_before))
check "$ACT counted its clock refusals ($refused_before -> $refused_after)" test "$refused_after" -gt "$refused_before"
check "the peers counted the handoffs they served ($served_before -> $served_after)" test "$served_after" -gt "$served_before"
sleep 2
ev end
kill -TERM "$LOAD_PID" 2>/dev/null
client_wait "$LOAD_PID" 5000 || not_ok "the client ends"

analyze --nodes p1,p2,p3 --phase "step:$step_mono:$back_mono" --vip-phase "act:$ACT_VIX:$step_mono:$back_mono" \
	--worker-phase "before:$W_ACT:0:$step_mono" --worker-phase "after:$W_ACT:$back_mono:$((EV_MONO + 10000000))" \
	"$T/vip.log" || fatal "the client log is readable"
figure ids_received "${A[ids]}"
figure failed_attempts_on_its_vip "${A[vphase_act_errors]}"
refusals=$(grep -c '^E .* http 503:clock_regressed' "$T/vip.log")
figure client_saw_clock_regressed "$refusals"
diag "errors by kind: ${A[errors_by]}; by VIP: ${A[errors_by_vip]}; IDs by worker: ${A[workers]}"
dr_zero failed_requests "${A[phase_step_failed_requests]}" "every caller of the stepped proxy got its IDs (handoff, then a retry across the VIP move)"
dr_after_above_before "$ACT's IDs once its VIP came back vs before the step" active_first_after_minus_last_before_ms
check_safety "clock-step-back"
dr_done
