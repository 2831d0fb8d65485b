#!/usr/bin/env bash
# SPEC "Clock policy" with a real clock step: HAProxy runs under libfaketime (LD_PRELOAD) reading
# its offset from a file on every clock read (FAKETIME_TIMESTAMP_FILE + FAKETIME_NO_CACHE=1), so
# writing "-0.005" to the file steps the wall clock back 5 ms at once; CLOCK_MONOTONIC is not faked
# (DONT_FAKE_MONOTONIC=1). Checks:
#   - a 5 ms step back under /id load is waited out: every answer 200, no duplicate, increasing;
#   - a 500 ms step back: 503 clock_regressed with Retry-After, /health 503, a PAGE log line and
#     metric, until the clock catches up; then 200 again with IDs above the ones before the step;
#   - `snowflake set clock.max_wait_ms 1000` on the CLI (no reload) makes a 500 ms step be waited out.
# shellcheck disable=SC2015 # ok and not_ok always succeed: "cond && ok || not_ok" is if-then-else
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ht_init 04-clock

# libfaketimeMT and HAProxy's watchdog: see tests/lib/faketime.sh
# shellcheck source=tests/lib/faketime.sh
. "$HT_REPO/tests/lib/faketime.sh"
[[ -r $FAKETIME_LIB ]] || { not_ok "libfaketime is installed ($FAKETIME_LIB; apt-get install faketime)"; exit 1; }
LOADGEN=$(ht_build_loadgen) || { not_ok "build tests/http/loadgen.c"; exit 1; }

ft=$T/faketime.rc
echo "+0" >"$ft"
# step_to OFFSET: the faked wall clock = real clock + OFFSET seconds (written atomically)
step_to() { echo "$1" >"$ft.tmp" && mv -f "$ft.tmp" "$ft"; }

export ZK_TICK_MS=500
zk=$(zk_start "$T/zk") || { not_ok "ZooKeeper starts"; exit 1; }
# state.ahead_ms 2000 (default 500): libfaketimeMT serialises every clock read of the process behind
# one lock and re-reads the file each time; under load that can starve the lease thread long enough
# for the local mark (refreshed 250 ms before it is reached by default) to stall minting
# (hwm_stalled), an artefact of the harness seen only under libfaketime
svc_config "$T/svc.conf.lua" "$zk" "$T/svc/state" "state = { dir = \"$T/svc/state\", ahead_ms = 2000 }"
url=$(svc_start "$T/svc" ZK_HOSTS="$zk" CONFIG="$T/svc.conf.lua" \
	HAPROXY_ENV_PREFIX="$(faketime_prefix "$ft")") ||
	{ not_ok "the service starts under libfaketime"; exit 1; }
port=${url##*:}
ok "the service starts under libfaketime ($url)"
master=$(svc_master_pid "$T/svc")
worker_pids=$(svc_worker_pids "$T/svc" | tr '\n' ' ')
if tr '\0' '\n' <"/proc/$master/environ" 2>/dev/null | grep -q "^LD_PRELOAD=$FAKETIME_LIB"; then
	ok "HAProxy runs with libfaketime preloaded"
else
	not_ok "HAProxy runs with libfaketime preloaded"
fi

metric() { curl -s --max-time 3 "$url/metrics" | awk -v m="$1" '$1 == m { print $2; f = 1 } END { if (!f) print "none" }'; }
maxid() { cat "$@" 2>/dev/null | sort -n | tail -1; }
code_of() { sed -n 's/.*"error":"\([^"]*\)".*/\1/p' "$1"; }
# which clock minting reads (tsc where the kernel's clocksource is tsc, else clock_gettime)
diag "clock source: $(curl -s --max-time 3 "$url/metrics" | sed -n 's/^snowflake_clock_source_info{source="\([^"]*\)"} 1$/\1/p')"

# ---- 5 ms back, under load: waited out (offsets -5, -10, -15 ms; then -20..-40 ms by clockstep.lua)
waits0=$(metric 'snowflake_clock_regressions_total{outcome="wait"}')
refuse0=$(metric 'snowflake_clock_regressions_total{outcome="refuse"}')
mkdir -p "$T/l5"
# three 5 ms steps, 0.5 s apart, under 20000 requests/s (paced: the default rate limit of 100000
# requests / 10 s per source must not trip; CONFIG's limits are not honoured, see 01-api)
"$LOADGEN" -p "$port" -c 8 -d 2 -t 20 -m small -R 20000 -o "$T/l5" >"$T/l5.out" 2>&1 &
lg=$!
sleep 0.4
step_to -0.005
sleep 0.5
step_to -0.010
sleep 0.5
step_to -0.015
wait "$lg"
rc=$?
sed 's/^/# /' "$T/l5.out"
((rc == 0)) && ok "three 5 ms steps back under /id and /ids load: every answer 200, per-worker order held" ||
	not_ok "three 5 ms steps back under /id and /ids load: every answer 200, per-worker order held (rc $rc)"
dups=$(cat "$T"/l5/*.ids | LC_ALL=C sort | uniq -d | head -3)
n5=$(cat "$T"/l5/*.ids | wc -l)
[[ -z $dups && $n5 -gt 0 ]] && ok "... no duplicate among its $n5 IDs" || not_ok "... no duplicate among its $n5 IDs ($dups)"
# the same, certain to land in the regression: a step right after a mint, the next /id at once on
# the same keep-alive connection (clockstep.lua), five times
lua5.4 "$HT_HERE/clockstep.lua" "$port" "$ft" -15 5 5 >"$T/cs.out" 2>&1
rc=$?
sed 's/^/# /' "$T/cs.out"
((rc == 0)) && ok "5 ms steps back right after a mint: every /id is 200 and above the one before" ||
	not_ok "5 ms steps back right after a mint: every /id is 200 and above the one before"
nobs=$(awk '$1 == "STEP" && $3 == 1' "$T/cs.out" | wc -l)
((nobs == 5)) && ok "each of the 5 steps was waited out by an /id (an answer took the regression's time)" ||
	not_ok "each of the 5 steps was waited out by an /id ($nobs of 5 within 1 s of the step)"
waits1=$(metric 'snowflake_clock_regressions_total{outcome="wait"}')
refuse1=$(metric 'snowflake_clock_regressions_total{outcome="refuse"}')
diag "regressions waited: $waits0 -> $waits1, refused: $refuse0 -> $refuse1"
[[ $waits1 != none && $waits0 != none ]] && ((waits1 >= waits0 + 3)) && ok "the 5 ms regressions were seen and waited out (regressions{outcome=wait} $waits0 -> $waits1)" ||
	not_ok "the 5 ms regressions were seen and waited out (regressions{outcome=wait} $waits0 -> $waits1, want +3 at least)"
[[ $refuse1 == "$refuse0" ]] && ok "... and nothing was refused" || not_ok "... and nothing was refused (refuse $refuse0 -> $refuse1)"
figure clock_5ms_step_wait_ms "$(awk '$1 == "STEP" && $3 == 1 { s += $5; n++ } END { if (n) printf "%.2f", s / n }' "$T/cs.out")"

# ---- 500 ms back: refused until the clock catches up
# The step puts the clock 500 ms behind the last used millisecond only for a moment: the clock
# catches up from the last mint on, and at 20 ms behind /health and /ids are 200 again. With the
# step written after the load and one curl per probe, this shell's forks (tens of ms each on a
# busy box) had the first /id at 180-280 ms after the last mint, a separate /ids at up to ~480 ms,
# then 200. So, on one keep-alive connection: /id (the last mint), the step at once, then /id,
# /health and /ids back to back, every 10 ms (up to 3 s) until the /id is 503 (the first is: a new
# offset reaches every clock read at once, libfaketime re-reads the file on each call and the TSC
# clock re-anchors within a millisecond). h1/b1, hc1/hb1, h2/b2: that round's answers; the IDs of
# 200 answers before it go to pre.ids.
mkdir -p "$T/l500"
"$LOADGEN" -p "$port" -c 4 -d 0.3 -t 20 -m id -R 10000 -o "$T/l500" >"$T/l500.out" 2>&1
: >"$T/pre.ids"
lua5.4 - "$HT_HERE" "$port" "$ft" "$T" -0.540 >"$T/p500.out" 2>&1 <<'LUA'
package.path = arg[1] .. "/?.lua;" .. package.path
local H = require "httpc"
local socket = require "socket"
local port, ft, dir, offset = tonumber(arg[2]), arg[3], arg[4], arg[5]
local c = assert(H.connect("127.0.0.1", port, 5))
local pre = assert(io.open(dir .. "/pre.ids", "a"))
local function put(name, text) local f = assert(io.open(dir .. "/" .. name, "w")) f:write(text) f:close() end
local function get(path) return assert(c:request("GET", path)) end
local pre_ok, n_pre = true, 0
local r = get("/id")
if r.status == 200 then pre:write(r.body) else pre_ok = false end
local f = assert(io.open(ft .. ".tmp", "w"))
f:write(offset, "\n")
f:close()
assert(os.rename(ft .. ".tmp", ft))
local t_step = socket.gettime()
local seen
while socket.gettime() - t_step < 3 do
  local r1, rh, r2 = get("/id"), get("/health"), get("/ids?count=10")
  put("h1", r1.raw_head .. "\r\n") put("b1", r1.body)
  put("hc1", tostring(rh.status)) put("hb1", rh.body)
  put("h2", r2.raw_head .. "\r\n") put("b2", r2.body)
  if r1.status == 503 then seen = (socket.gettime() - t_step) * 1000 break end
  if r1.status == 200 then pre:write(r1.body) n_pre = n_pre + 1 else pre_ok = false end
  if r2.status == 200 then pre:write(r2.body) end
  socket.sleep(0.01)
end
pre:close()
c:close()
-- PROBE <ms from the step to the 503, or -> <the step, Unix ms> <the 503, Unix ms> <pre_ok> <n_pre>
print(string.format("PROBE %s %.0f %.0f %d %d", seen and string.format("%.0f", seen) or "-", t_step * 1000,
  (t_step + (seen or 0) / 1000) * 1000, pre_ok and 1 or 0, n_pre))
LUA
sed 's/^/# /' "$T/p500.out"
read -r _ seen t_step t_seen pre_ok n_pre < <(awk '$1 == "PROBE"' "$T/p500.out")
[[ ${seen:--} == - ]] && seen='' t_seen=''
t_step=${t_step:-$(ht_now_ms)} pre_ok=${pre_ok:-0} n_pre=${n_pre:-0}
s1=$(sed -n '1s/^HTTP\/1.1 \([0-9]*\).*/\1/p' "$T/h1" 2>/dev/null)
if [[ -n $seen ]]; then
	diag "the 500 ms step showed $seen ms after the file was written ($n_pre answers 200 before it)"
	figure clock_step_visible_after_ms "$seen"
fi
((pre_ok)) || not_ok "every /id before the step showed was 200"
ra=$(grep -i '^retry-after:' "$T/h1" | tr -d '\r' | awk '{print $2}')
if [[ -n $seen && $(code_of "$T/b1") == clock_regressed && $ra =~ ^[0-9]+$ ]]; then
	ok "500 ms step back: /id is 503 clock_regressed with Retry-After: $ra"
else
	not_ok "500 ms step back: /id is 503 clock_regressed with Retry-After within 3 s (got $s1 $(cat "$T/b1") retry-after '$ra')"
fi
s2=$(sed -n '1s/^HTTP\/1.1 \([0-9]*\).*/\1/p' "$T/h2")
[[ $s2 == 503 && $(code_of "$T/b2") == clock_regressed ]] && grep -qi '^retry-after:' "$T/h2" &&
	ok "... /ids is 503 clock_regressed with Retry-After too" ||
	not_ok "... /ids is 503 clock_regressed with Retry-After too (got $s2 $(cat "$T/b2"))"
hc=$(cat "$T/hc1")
[[ $hc == 503 ]] && ok "... /health is 503 while the clock is behind ($(tr -d '\n' <"$T/hb1"))" ||
	not_ok "... /health is 503 while the clock is behind (got $hc $(cat "$T/hb1"))"
# until the clock catches up (~500 ms): bounded poll
# the last millisecond used before the step (the faked clock's, as the IDs carry it)
before=$(maxid "$T"/l500/*.ids "$T/pre.ids")
last_ms=$(((${before:-0} >> 22) + EPOCH_MS))
back='' since_last_ms=''
t_seen=${t_seen:-$t_step}
while (($(ht_now_ms) - t_seen < 5000)); do
	if [[ $(svc_code "$url/health") == 200 ]]; then
		now_ms=$(ht_now_ms)
		back=$((now_ms - t_seen)) since_last_ms=$((now_ms - last_ms))
		break
	fi
	sleep 0.02
done
if [[ -n $back ]]; then
	ok "/health is 200 again once the clock caught up (${back} ms after the step showed)"
	figure clock_500ms_step_refusal_ms "$back"
else
	not_ok "/health is 200 again within 5 s of a 500 ms step"
fi
# /health turns 200 once the faked clock (real - 540 ms) is within clock.max_wait_ms (20) of the last
# used millisecond: at real time last_ms + 520 at the earliest (less 1 ms of rounding)
((${since_last_ms:-0} >= 519)) &&
	ok "... and not before the clock could have caught up (${since_last_ms} ms after the last used millisecond, >= 519)" ||
	not_ok "... and not before the clock could have caught up (${since_last_ms:-?} ms after the last used millisecond < 519)"
id_after=$(curl -s --max-time 5 "$url/id")
[[ $id_after =~ ^[0-9]+$ && $before =~ ^[0-9]+$ ]] && ((id_after > before)) &&
	ok "/id is 200 again, above every ID issued before the step" ||
	not_ok "/id is 200 again, above every ID issued before the step ($id_after vs $before)"
refuse2=$(metric 'snowflake_clock_regressions_total{outcome="refuse"}')
refusals=$(metric 'snowflake_refusals_total{reason="clock_regressed"}')
[[ $refuse2 != none ]] && ((refuse2 > refuse1)) && [[ $refusals != none ]] && ((refusals >= 2)) &&
	ok "the refusal is counted (regressions{outcome=refuse} $refuse1 -> $refuse2, refusals{reason=clock_regressed} $refusals)" ||
	not_ok "the refusal is counted (regressions{outcome=refuse} $refuse1 -> $refuse2, refusals{reason=clock_regressed} $refusals)"
sleep 0.3 # the log task flushes every 100 ms
if grep -q 'PAGE' "$T/svc/run.log"; then
	ok "the refusal is logged loudly (a PAGE line in the service log)"
else
	not_ok "the refusal is logged loudly (a PAGE line in the service log, HAProxy's stderr: $T/svc/run.log)"
	diag "service log: $(wc -l <"$T/svc/run.log") lines; HAProxy's stderr: $(readlink "/proc/$master/fd/2")"
fi

# ---- clock.max_wait_ms 1000 on the CLI (no reload): a 500 ms step is waited out
out=$(svc_cli "$T/svc" "snowflake set clock.max_wait_ms 1000")
[[ $out == ok* ]] && ok "CLI: snowflake set clock.max_wait_ms 1000 ($out)" || not_ok "CLI: snowflake set clock.max_wait_ms 1000 ($out)"
mkdir -p "$T/lw"
"$LOADGEN" -p "$port" -c 4 -d 0.3 -t 20 -m id -R 10000 -o "$T/lw" >"$T/lw.out" 2>&1
# /health polled in the background meanwhile (bounded: 150 polls)
(for ((i = 0; i < 150; i++)); do svc_code "$url/health"; echo; sleep 0.02; done) >"$T/hpoll" 2>/dev/null &
hp=$!
waits_a=$(metric 'snowflake_clock_regressions_total{outcome="wait"}')
# The step lands right after a mint and the next /id follows at once on the same keep-alive
# connection (clockstep.lua: -540 ms to -1040 ms), so the clock is 500 ms behind the last used
# millisecond. A step written from here after the load above would put it only 500 ms less the
# time since the last mint behind (the loadgen's end, /metrics, the poller's start, the shell's
# own forks: 200-500 ms on a busy 2-core box), and the one /id that lands in it would wait less
# than 0.2 s, or not at all. Every answer 200, IDs increasing; the first that took >= 200 ms is
# taken as the one that waited (with the TSC clock that may be the second answer after the step).
: >"$T/prew.ids"
lua5.4 "$HT_HERE/clockstep.lua" "$port" "$ft" -540 500 1 200 "$T/prew.ids" >"$T/csw.out" 2>&1
rc=$?
sed 's/^/# /' "$T/csw.out"
read -r _ _ observed nreq lat_ms _ < <(awk '$1 == "STEP"' "$T/csw.out")
t3=$(awk -v ms="${lat_ms:-0}" 'BEGIN { printf "%.6f", ms / 1000 }')
sleep 0.1
kill "$hp" 2>/dev/null
wait "$hp" 2>/dev/null
# the waiting answer is the last ID received when the step was observed (none otherwise)
id3='' before=''
if [[ ${observed:-0} == 1 ]]; then
	id3=$(tail -n 1 "$T/prew.ids")
	before=$(maxid "$T"/lw/*.ids <(sed '$d' "$T/prew.ids"))
fi
if ((rc == 0)) && [[ $id3 =~ ^[0-9]+$ && $before =~ ^[0-9]+$ ]] && ((id3 > before)); then
	ok "with clock.max_wait_ms 1000, /id after a 500 ms step back is 200 (waited ${t3} s), above every earlier ID"
else
	not_ok "with clock.max_wait_ms 1000, /id after a 500 ms step back is 200 above every earlier ID (rc $rc, observed ${observed:-?} after ${nreq:-?} answers; '$id3' after ${t3} s; before '$before')"
fi
figure clock_500ms_wait_s "$t3"
waits_b=$(metric 'snowflake_clock_regressions_total{outcome="wait"}')
[[ ${observed:-0} == 1 && $waits_a != none && $waits_b != none ]] && ((waits_b > waits_a)) &&
	awk -v t="$t3" 'BEGIN { exit !(t >= 0.2) }' &&
	ok "... the answer waited for the clock (${t3} s >= 0.2 s; regressions{outcome=wait} $waits_a -> $waits_b)" ||
	not_ok "... the answer waited for the clock (${t3} s, want >= 0.2 s; regressions{outcome=wait} $waits_a -> $waits_b)"
hcodes=$(grep -o '[0-9][0-9][0-9]' "$T/hpoll" | sort | uniq -c | tr -s ' \n' ' ')
if [[ -n $hcodes ]] && ! grep -qv '^200$' <(grep -o '[0-9][0-9][0-9]' "$T/hpoll"); then
	ok "... /health stays 200 while the regression is waited out ($hcodes)"
else
	not_ok "... /health stays 200 while the regression is waited out (codes: $hcodes)"
fi
# once more under load: every answer 200, increasing, no duplicate
mkdir -p "$T/lw2"
"$LOADGEN" -p "$port" -c 8 -d 1.5 -t 20 -m small -R 10000 -o "$T/lw2" >"$T/lw2.out" 2>&1 &
lg=$!
sleep 0.4
step_to -1.540
wait "$lg"
rc=$?
sed 's/^/# /' "$T/lw2.out"
((rc == 0)) && ok "a 500 ms step under load with clock.max_wait_ms 1000: every answer 200, per-worker order held" ||
	not_ok "a 500 ms step under load with clock.max_wait_ms 1000: every answer 200, per-worker order held (rc $rc)"
dups=$(cat "$T"/l5/*.ids "$T"/l500/*.ids "$T/pre.ids" "$T"/lw/*.ids "$T/prew.ids" "$T"/lw2/*.ids | LC_ALL=C sort | uniq -d | head -3)
[[ -z $dups ]] && ok "no duplicate among all IDs of this test" || not_ok "no duplicate among all IDs of this test ($dups)"
[[ $(svc_master_pid "$T/svc") == "$master" && $(svc_worker_pids "$T/svc" | tr '\n' ' ') == "$worker_pids" ]] &&
	ok "no reload happened (same master and worker PIDs)" || not_ok "no reload happened (same master and worker PIDs)"
hl=$(curl -s --max-time 3 "$url/health")
[[ $hl == *'"status":"ok"'* ]] && ok "/health is ok at the end ($hl)" || not_ok "/health is ok at the end ($hl)"
ht_done
