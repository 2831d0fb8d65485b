#!/usr/bin/env bash
# The chaos soak's history checker (tests/chaos/check.c) on a saved history (tests/chaos/testdata:
# three proxies behind three VIPs, /ids batches, a kill, a fence and a re-claim): the history as
# recorded passes; each fault injected into a copy of it is caught with the exact count under the
# right figure (a duplicated ID, a swapped pair, an ID after a fence, IDs outside any lease window,
# a worker header that lies); a malformed line stops it naming file:line; the timeline files carry
# their headers; availability and the longest outage come out as built on a history with known
# gaps. No network, no fixed namespace: safe beside anything. CHECK_CFLAGS adds compiler flags
# (CHECK_CFLAGS="-fsanitize=address,undefined -g" for a sanitizer run).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lib/suite.sh
. "$top/tests/lib/suite.sh"
work=$(mktemp -d /tmp/sf-chaoscheck.XXXXXX)
trap 'rm -rf "$work"' EXIT
data=$top/tests/chaos/testdata
CHECK=$work/check
LIMIT_S=60 # per checker run: the saved history takes milliseconds

# shellcheck disable=SC2086 # CHECK_CFLAGS is a list of flags
${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -Werror ${CHECK_CFLAGS:-} -o "$CHECK" "$top/tests/chaos/check.c" ||
	fatal "tests/chaos/check.c builds with the strict flags"
ok "tests/chaos/check.c builds with the strict flags"

h=$work/history
mkdir "$h"
{ cp "$data"/p1.log "$data"/p2.log "$data"/p3.log "$data"/events "$data"/notify-p?.log "$h"/ &&
	gzip -dc "$data/vip.log.gz" >"$h/vip.log"; } || fatal "the saved history unpacks"

# run NAME CLIENT_LOG [ARG...]: the checker over the saved history's proxies, events and notify
# logs with CLIENT_LOG; stdout in $work/NAME.out, stderr in $work/NAME.err, exit status in RC
RC=0
run() {
	local name=$1 client=$2
	shift 2
	RC=0
	timeout "$LIMIT_S" "$CHECK" --events "$h/events" --notify "$h"/notify-p1.log --notify "$h"/notify-p2.log \
		--notify "$h"/notify-p3.log "$@" --client "$client" >"$work/$name.out" 2>"$work/$name.err" || RC=$?
}
proxies=(--proxy "p1=$h/p1.log" "p2=$h/p2.log" "p3=$h/p3.log")

# fig NAME FIGURE: the value of "CHAOS FIGURE" in run NAME's output
fig() { awk -v f="$2" '$1 == "CHAOS" && $2 == f { print $3 }' "$work/$1.out"; }

# expect NAME WHAT FIGURE=VALUE...: every figure of run NAME has its value
expect() {
	local name=$1 what=$2 kv bad=""
	shift 2
	for kv in "$@"; do
		[[ $(fig "$name" "${kv%%=*}") == "${kv#*=}" ]] || bad+=" ${kv%%=*}=$(fig "$name" "${kv%%=*}") (want ${kv#*=})"
	done
	if [[ -z $bad ]]; then
		ok "$what"
	else
		not_ok "$what:$bad"
		sed 's/^/#   /' "$work/$name.err" | head -5
	fi
}

VIOLATIONS=(duplicates order_violations fence_violations lease_violations header_mismatches)
# caught NAME WHAT FIGURE COUNT: run NAME exits 1 with COUNT under FIGURE, every other violation
# figure 0, and a "# violation" line on stderr
caught() {
	local name=$1 what=$2 figure=$3 count=$4 v want=()
	for v in "${VIOLATIONS[@]}"; do
		if [[ $v == "$figure" ]]; then want+=("$v=$count"); else want+=("$v=0"); fi
	done
	check "$what: exit status 1 (got $RC)" test "$RC" -eq 1
	expect "$name" "$what: $figure $count, the other violation figures 0" "${want[@]}"
	check "$what: stderr shows it" grep -q '^# violation ' "$work/$name.err"
}

# ---- the history as recorded --------------------------------------------------------------------
run valid "$h/vip.log" "${proxies[@]}" --timeline "$work/tl"
check "the saved history passes (exit 0, got $RC)" test "$RC" -eq 0
expect valid "the saved history has no violation" duplicates=0 order_violations=0 fence_violations=0 \
	lease_violations=0 header_mismatches=0 unjudged_ids=0
# the counts as the client's footer and a plain count of the lines give them
footer=$(grep '^# end ' "$h/vip.log")
footer_requests=${footer##* requests=} footer_requests=${footer_requests%% *}
nodes=$(awk '$1 == "I" { n[$6]++ } END { for (k in n) printf "%s=%d\n", k, n[k] }' "$h/vip.log" | sort | paste -sd, -)
expect valid "the counts agree with the client's own (footer: ${footer#\# end })" \
	"ids_checked=$(grep -c '^I ' "$h/vip.log")" "attempts_failed=$(grep -c '^E ' "$h/vip.log")" \
	"failed_requests=$(grep -c '^F ' "$h/vip.log")" "requests=$footer_requests" \
	"ids_by_node=$nodes"
expect valid "the faults of the events file, and the outage during the client's partition" faults=3 fault_kinds=2 \
	fault_kind_list=delay=1,partition=2 longest_outage_during=partition@client longest_outage_at_s=5.5
diag "saved history: $(awk '$1 == "CHAOS" { printf "%s=%s ", $2, $3 }' "$work/valid.out")"

# ---- the timeline -------------------------------------------------------------------------------
# tsv_header FILE HEADER: FILE exists and its first line is HEADER (fields tab-separated)
# shellcheck disable=SC2317 # called through check
tsv_header() { [[ -f $1 && $(head -1 "$1") == "$(tr ' ' '\t' <<<"$2")" ]]; }
check "slots.tsv: one column per node and per error code" tsv_header "$work/tl/slots.tsv" \
	"t_s ids_total ids_p1 ids_p2 ids_p3 err_connect_refused err_connect_timeout err_fenced err_read_timeout err_reset failed_requests p99_ms"
check "faults.tsv has its header" tsv_header "$work/tl/faults.tsv" "id kind target start_s heal_s detail"
check "vips.tsv has its header" tsv_header "$work/tl/vips.tsv" "instance holder from_s to_s"
check "lease.tsv has its header" tsv_header "$work/tl/lease.tsv" "node pid state worker from_s to_s"
check "figures.txt holds the CHAOS lines of stdout" cmp -s "$work/tl/figures.txt" "$work/valid.out"
check "slots.tsv: one row per 100 ms slot of the 14 s run" test "$(($(wc -l <"$work/tl/slots.tsv") - 1))" -eq 140
check "faults.tsv: 3 faults and 2 drill points, the partition of p3 healed at 11 s" \
	grep -qx "$(printf 'f3\tpartition\tp3\t8.000\t11.000\tzookeeper')" "$work/tl/faults.tsv"
check "faults.tsv: a drill point lasts no time" grep -qxe "$(printf -- '-\tkill\t-\t3.000\t3.000\t-')" "$work/tl/faults.tsv"
check "vips.tsv: p1 holds p3's VIP while p3 is fenced" grep -q "^$(printf 'sf_vip_p3\tp1\t10.')" "$work/tl/vips.tsv"
check "lease.tsv: p3 parked, then re-claims worker 358" \
	grep -q "^$(printf 'p3\t4103\tparked\t358\t9.800\t11.019')" "$work/tl/lease.tsv"

# ---- faults injected into copies --------------------------------------------------------------------
# Candidate pairs: two single-ID answers of one worker whose IDs are adjacent in the order of all
# IDs (none of any answer in between), so changing these two cannot disturb any third answer.
# One line per pair: RELATION line_a id_a line_b id_b, RELATION "overlap" (in flight together) or
# "before" (a ended before b began).
awk '$1 == "I" { print $5, $2, $3, ($9 == "ids" ? "batch" : "single"), $11, NR }' "$h/vip.log" | sort -k1,1n |
	awk '{ if (p && $4 == "single" && pk == "single" && $5 == pw) {
	           rel = ($2 <= pe && ps <= $3) ? "overlap" : (pe < $2 ? "before" : "")
	           if (rel != "") print rel, pl, pid, $6, $1 }
	       p = 1; pid = $1; ps = $2; pe = $3; pk = $4; pw = $5; pl = $6 }' >"$work/pairs"
# set_id FILE LINE OLD NEW: line LINE's ID OLD becomes NEW
set_id() { sed -i "$2s/^\(I [0-9]* [0-9]* [0-9]*\) $3 /\1 $4 /" "$1"; }

read -r _ la ia lb ib < <(grep -m1 '^overlap ' "$work/pairs")
if [[ -n ${lb:-} ]]; then
	cp "$h/vip.log" "$work/dup.log"
	set_id "$work/dup.log" "$lb" "$ib" "$ia"
	run dup "$work/dup.log" "${proxies[@]}"
	caught dup "an ID received twice (vip.log:$la and :$lb, answers in flight together)" duplicates 1
	check "the duplicate's report names both lines" \
		bash -c "grep -q 'dup.log:$la(' '$work/dup.err' && grep -q 'dup.log:$lb(' '$work/dup.err'"
else
	not_ok "the saved history has two answers of one worker in flight together"
fi

read -r _ la ia lb ib < <(grep -m1 '^before ' "$work/pairs")
if [[ -n ${lb:-} ]]; then
	cp "$h/vip.log" "$work/swap.log"
	set_id "$work/swap.log" "$la" "$ia" "$ib"
	set_id "$work/swap.log" "$lb" "$ib" "$ia"
	run swap "$work/swap.log" "${proxies[@]}"
	caught swap "two answers of one worker in real-time order with their IDs swapped (vip.log:$la, :$lb)" \
		order_violations 1
else
	not_ok "the saved history has two answers of one worker in real-time order"
fi

# An injected answer: one I line before the footer, in a request of its own (slot 5, req 99999),
# minted by WORKER of NODE at START_US (the ID's timestamp from the header's clocks, sequence 0).
read -r hdr_mono hdr_wall < <(sed -n '1s/.* mono_us=\([0-9]*\) wall_us=\([0-9]*\) .*/\1 \2/p' "$h/vip.log")
EPOCH_MS=1704067200000
# inject FILE NODE WORKER START_US
inject() {
	local ts=$(((hdr_wall + $4 - hdr_mono) / 1000 - EPOCH_MS))
	local id=$(((ts << 22) | ($3 << 12)))
	sed -i "/^# end /i I $4 $(($4 + 420)) 5 $id $2 2 1 id 99999 $3" "$1"
}
# lease_ms FILE PID STATE N: mono_ms (or with fence, fence_mono_ms) of the N-th STATE line of PID
lease_ms() { grep "lease state=$3 .* pid=$2 " "$1" | sed -n "$4s/.* mono_ms=\([0-9]*\).*/\1/p"; }
lease_fence() { grep "lease state=$3 .* pid=$2 " "$1" | sed -n "$4s/.* fence_mono_ms=\([0-9]*\).*/\1/p"; }

fence=$(lease_fence "$h/p3.log" 4103 parked 1)
reclaim=$(lease_ms "$h/p3.log" 4103 minting 2)
start=$(((fence + 1) * 1000 + 50000))
cp "$h/vip.log" "$work/fence.log"
inject "$work/fence.log" p3 358 "$start"
run fence "$work/fence.log" "${proxies[@]}"
caught fence "an ID of p3 begun 50 ms after its fence (fence_mono_ms=$fence, minting again at $reclaim)" \
	fence_violations 1
check "the fence violation's report names the fence" grep -q "fence_mono_ms=$fence" "$work/fence.err"

mint=$(lease_ms "$h/p1.log" 4377 minting 1)
cp "$h/vip.log" "$work/lease.log"
inject "$work/lease.log" p1 227 $(((mint - 300) * 1000))
run lease "$work/lease.log" "${proxies[@]}"
caught lease "an ID of p1's new process 300 ms before it minted (still waiting for the clock)" lease_violations 1

# A clean stop closes at its line, not at the later fence it held: an ID in between is unleased,
# not fenced.
stop=$(lease_ms "$h/p2.log" 4102 stopped 1)
stop_fence=$(lease_fence "$h/p2.log" 4102 stopped 1)
cp "$h/vip.log" "$work/stop.log"
inject "$work/stop.log" p2 77 $(((stop + 100) * 1000))
run stop "$work/stop.log" "${proxies[@]}"
caught stop "an ID of p2 100 ms after its stop line, before its fence ($stop < $stop_fence)" lease_violations 1

# A SIGKILL logs nothing: the nemesis's kill event names the pids (pids=), and the checker ends
# their windows there. An ID of p1's first process (pid 4101, worker 418) begun after the kill:
# unleased with the pids, not judged so without them (its window would stay open).
kill_mono=$(awk '$1 == "kill" { print $2 }' "$h/events")
sed "s/^kill $kill_mono \([0-9]*\)\$/start $kill_mono \1 fault=k1 kind=kill_later target=p1 pids=4101,4100/" \
	"$h/events" >"$work/kill.events"
echo "heal $((kill_mono + 1000000)) 0 fault=k1" >>"$work/kill.events"
cp "$h/vip.log" "$work/kill.log"
inject "$work/kill.log" p1 418 $((kill_mono + 100000))
run killed "$work/kill.log" "${proxies[@]}" --events "$work/kill.events"
caught killed "an ID of p1's killed process (pids=4101,4100 on the kill event) begun 100 ms after the kill" \
	lease_violations 1
run unkilled "$work/kill.log" "${proxies[@]}"
check "the same ID without pids= on the event passes (the killed process's window stays open; exit $RC)" \
	test "$RC" -eq 0

cp "$h/vip.log" "$work/header.log"
line=$(awk '$1 == "I" && $11 == 77 { print NR; exit }' "$h/vip.log")
sed -i "${line}s/ 77\$/ 78/" "$work/header.log"
run header "$work/header.log" "${proxies[@]}"
caught header "a worker header (78) that is not the ID's worker (77), vip.log:$line" header_mismatches 1

run unjudged "$h/vip.log" --proxy "p1=$h/p1.log" "p2=$h/p2.log"
check "without p3's log its IDs are unjudged, not violations (exit 0, got $RC)" test "$RC" -eq 0
expect unjudged "unjudged_ids counts p3's IDs" "unjudged_ids=$(fig valid ids_by_node | tr , '\n' | sed -n 's/^p3=//p')" \
	lease_violations=0 fence_violations=0

# ---- refusals -----------------------------------------------------------------------------------------
cp "$h/vip.log" "$work/bad.log"
line=$(awk 'NR >= 1000 && $1 == "I" { print NR; exit }' "$h/vip.log")
sed -i "${line}s/^\(I [0-9]*\) [0-9]*/\1 x/" "$work/bad.log"
run bad "$work/bad.log" "${proxies[@]}"
check "a malformed I line (end_us x): exit 2 (got $RC)" test "$RC" -eq 2
check "a malformed I line: stderr names bad.log:$line" grep -q "bad.log:$line: " "$work/bad.err"
check "a malformed I line: no figures" test ! -s "$work/bad.out"

sed 's/ pid=[0-9]* mono_ms=[0-9]*//' "$h/p2.log" >"$work/old-p2.log"
line=$(grep -n -m1 'lease state=' "$work/old-p2.log" | cut -d: -f1)
run oldlease "$h/vip.log" --proxy "p1=$h/p1.log" "p2=$work/old-p2.log"
check "a lease line without pid and mono_ms: exit 2 naming old-p2.log:$line" \
	bash -c "[[ $RC -eq 2 ]] && grep -q 'old-p2.log:$line: ' '$work/oldlease.err'"

printf '# drill-client mono_us=1 wall_us=2\nI 5 6 0 1 p1 0 1 id 0\n\nI 7 8 0 2 p1 0 1 id 1\n' >"$work/blank.log"
run blank "$work/blank.log"
check "an empty line is malformed, not skipped: exit 2 naming blank.log:3" \
	bash -c "[[ $RC -eq 2 ]] && grep -q 'blank.log:3: ' '$work/blank.err'"

run missing "$work/no-such.log" "${proxies[@]}"
check "an unreadable client log: exit 2 naming it" \
	bash -c "[[ $RC -eq 2 ]] && grep -q 'no-such.log: cannot open' '$work/missing.err'"
RC=0
timeout "$LIMIT_S" "$CHECK" --proxy "p1=$h/p1.log" >/dev/null 2>"$work/usage.err" || RC=$?
check "no --client: a usage error, exit 2 (got $RC)" test "$RC" -eq 2
RC=0
timeout "$LIMIT_S" "$CHECK" --layout 12:30:0 --client "$h/vip.log" >/dev/null 2>&1 || RC=$?
check "a layout out of range: a usage error, exit 2 (got $RC)" test "$RC" -eq 2

# ---- availability and the longest outage on known gaps ---------------------------------------------------
# One slot, an attempt every 50 ms for 10 s, each answered 1 ms later, but refused from 3.0 s to
# 4.5 s (15 slots of 100 ms without an ID) and from 7.0 s to 7.3 s (3 slots): availability 82 of
# 100 slots; the longest outage 1500 ms at 3.0 s, while fault k1 (from 3.2 s to 3.9 s) and the
# drill point "restart" (4.0 s) happened; fault k2 (6.0 s to 6.5 s) ended before it.
M=50000000 W=1796190487808880
{
	echo "# drill-client label=gap mono_us=$M wall_us=$W addrs=10.0.0.1 tries=1"
	for ((i = 0; i < 200; i++)); do
		s=$((M + i * 50000)) e=$((M + i * 50000 + 1000))
		if ((i >= 60 && i < 90)) || ((i >= 140 && i < 146)); then
			echo "E $s $e 0 connect_refused Connection_refused 0 1 $i"
			echo "F $s $e 0 1 $i"
		else
			echo "I $s $e 0 $(((((W + e - M) / 1000 - EPOCH_MS) << 22) | (5 << 12))) p1 0 1 id $i 5"
		fi
	done
} >"$work/gap.log"
{
	echo "start $((M + 3200000)) 0 fault=k1 kind=kill target=p1"
	echo "heal $((M + 3900000)) 0 fault=k1"
	echo "restart $((M + 4000000)) 0"
	echo "start $((M + 6000000)) 0 fault=k2 kind=delay target=p2 detail=5ms"
	echo "heal $((M + 6500000)) 0 fault=k2"
} >"$work/gap.events"
RC=0
timeout "$LIMIT_S" "$CHECK" --events "$work/gap.events" --timeline "$work/gap-tl" --client "$work/gap.log" \
	>"$work/gap.out" 2>"$work/gap.err" || RC=$?
check "the gap history passes (exit 0, got $RC)" test "$RC" -eq 0
expect gap "availability and the longest outage of the gap history" availability_pct=82.0 longest_outage_ms=1500 \
	longest_outage_at_s=3.0 longest_outage_during=kill@p1,restart@- requests=200 failed_requests=36 \
	attempts_failed=36 latency_p50_ms=1.00 latency_max_ms=1.00 unjudged_ids=164 errors_by_code=connect_refused=36
check "gap slots.tsv: 100 slots, none with an ID from 3.0 s to 4.4 s" \
	test "$(awk -F'\t' 'NR > 1 && $2 == 0 && $1 >= 3 && $1 < 4.5' "$work/gap-tl/slots.tsv" | wc -l)-$(($(wc -l <"$work/gap-tl/slots.tsv") - 1))" = 15-100
RC=0
timeout "$LIMIT_S" "$CHECK" --slot-ms 500 --client "$work/gap.log" >"$work/gap500.out" 2>"$work/gap500.err" || RC=$?
expect gap500 "with 500 ms slots the 3.0-4.5 s gap is 3 slots" availability_pct=85.0 longest_outage_ms=1500 \
	longest_outage_at_s=3.0 longest_outage_during=none

suite_done
