#!/usr/bin/env bash
# Drill clock-step-back: the active node's wall clock steps back 500 ms under load (libfaketime
# preloaded into its HAProxy through run.sh's HAPROXY_ENV_PREFIX, the offset read from a file on
# every call; CLOCK_MONOTONIC is not faked, so the fence is untouched). 500 ms is far past
# clock.max_wait_ms (20): the node refuses (503 clock_regressed), its /health fails, keepalived
# moves the VIP to the standby. When its clock passes the last millisecond it used, it serves
# again and rejoins as backup. Then the standby is parked (the operator's lever): the VIP comes
# back to the stepped node, whose IDs must continue above everything it issued before the step.
# Over everything the client received: no duplicate, no per-worker order violation.
. "$(dirname "$0")/lib.sh"
dr_init clock-step-back 120
STEP=-0.5
TARGET_WINDOW_MS=${TARGET_WINDOW_MS:-1000}
# libfaketimeMT and HAProxy's watchdog: see tests/lib/faketime.sh
# shellcheck source=tests/lib/faketime.sh
. "$DR_REPO/tests/lib/faketime.sh"
[[ -r $FAKETIME_LIB ]] || fatal "libfaketimeMT.so.1 is installed (apt-get install faketime)"

# both nodes run under libfaketime at offset +0; only the active node's offset file changes
mkdir -p "$T/p1" "$T/p2"
echo "+0" >"$T/p1/faketime.rc"
echo "+0" >"$T/p2/faketime.rc"
DR_HAP_ENV=(HAPROXY_ENV_PREFIX="$(faketime_prefix "$T/%h/faketime.rc")")
dr_standard_up 1
for h in p1 p2; do
	check "$h's HAProxy runs with libfaketime preloaded" grep -q libfaketime "/proc/$(hap_master "$h")/maps"
done

# a lighter load than the other drills: libfaketime re-reads its file on every clock read
dr_load_and_pick 30000 200 # ended after the unpark; 30 s covers every wait below at its bound
refused_before=$(hap_get "$ACT" /metrics | awk '/^snowflake_clock_regressions_total\{outcome="refuse"\}/ { print $2 }')
ev step
echo "$STEP" >"$T/$ACT/faketime.rc.tmp" && mv -f "$T/$ACT/faketime.rc.tmp" "$T/$ACT/faketime.rc"
step_mono=$EV_MONO step_wall=$EV_WALL
dr_vip_moved "after $ACT's clock stepped back" "$step_wall"
down=$(awk -v a=$((step_wall / 1000)) '$2 >= a && $3 == "down" { print; exit }' "$T/$ACT/health-watch.log")
if [[ -n $down ]]; then
	ok "$ACT's health failed: ${down#* * }"
	figure health_down_after_step_ms $(($(awk '{ print $2 }' <<<"$down") - step_wall / 1000))
else
	not_ok "$ACT's health failed after the step (watcher log: $(tail -n 2 "$T/$ACT/health-watch.log" | tr '\n' ' '))"
fi
if hap_wait "$ACT" 200 5000; then ok "$ACT serves again once its clock passed the last used millisecond"; else not_ok "$ACT serves again after the step"; fi
if wait_until 5000 prio_is "$ACT" 150; then
	ok "$ACT recovered and rejoined at full priority"
	figure recovery_ms "$(ms_since "$step_mono")"
else
	not_ok "$ACT recovered and rejoined at full priority (now $(ka_prio "$ACT"))"
fi
dr_vip_stayed_on_standby
refused_after=$(hap_get "$ACT" /metrics | awk '/^snowflake_clock_regressions_total\{outcome="refuse"\}/ { print $2 }')
figure active_clock_refusals $((${refused_after:-0} - ${refused_before:-0}))
if ((${refused_after:-0} > ${refused_before:-0})); then
	ok "$ACT counted its refusals (snowflake_clock_regressions_total{outcome=\"refuse\"} ${refused_before:-0} -> ${refused_after:-0})"
else
	not_ok "$ACT counted its refusals (snowflake_clock_regressions_total{outcome=\"refuse\"} ${refused_before:-?} -> ${refused_after:-?})"
fi

# the operator parks the standby: the VIP must come back to the stepped node, which serves above
# everything it issued before the step
ev park
park_mono=$EV_MONO
r=$(hap_cli "$SBY" snowflake park)
[[ $r == ok* ]] || not_ok "snowflake park on $SBY ($r)"
if wait_until 3000 vip_on "$ACT"; then ok "with $SBY parked the VIP came back to $ACT"; else not_ok "with $SBY parked the VIP came back to $ACT (holders: $(vip_holders))"; fi
sleep 2
ev unpark
r=$(hap_cli "$SBY" snowflake unpark)
[[ $r == ok* ]] || not_ok "snowflake unpark on $SBY ($r)"
kill -TERM "$LOAD_PID" 2>/dev/null
client_wait "$LOAD_PID" 5000 || not_ok "the client ends"

analyze --phase "step:$step_mono:$park_mono" --worker-phase "before:$W_ACT:0:$step_mono" \
	--worker-phase "after:$W_ACT:$park_mono:$((EV_MONO + 10000000))" "$T/vip.log" || fatal "the client log is readable"
window=${A[phase_step_window_ms]}
figure error_window_ms "$window"
figure failed_requests "${A[phase_step_failed]}"
figure ids_received "${A[ids]}"
refusals=$(grep -c '^E .* http 503:clock_regressed' "$T/vip.log")
figure client_saw_clock_regressed "$refusals"
diag "errors by kind: ${A[errors_by]}; IDs by worker: ${A[workers]}"
dr_window_ok "$window" "$TARGET_WINDOW_MS"
dr_after_above_before "$ACT's IDs once the VIP came back vs before the step" active_first_after_minus_last_before_ms
check_safety "clock-step-back"
dr_done
