# shellcheck shell=bash
# tests/zk/lib.sh: shared helpers of the lease tests (tests/zk/NN-*_test.sh).
#
#   . "$(dirname "$0")/lib.sh"; zt_init NAME
#
# zt_init makes the test's own temp dir $T, puts the cleanup in an EXIT trap (every process the test
# started is stopped by its PID, every ZooKeeper under $T by zk_stop_all; never by name), checks the
# claimant binary ($CLAIMANT, else build/tests/claimant) and builds tests/zk/zkctl.c into $ZKCTL
# (default: next to the claimant) when it is missing or older than its source.
#
# Output: tests/lib/suite.sh's ok / not_ok / check / diag / figure ("# figure <name> <value>");
# zt_done ends the script (exit 1 if anything failed).
#
# Claimant output lines (see tests/zk/claimant.c):
#   START <mono_ms> <wall_ms> <pid> | STATE <mono_ms> <wall_ms> <state> <worker> <reason> <detail...>
#   FENCE <mono_ms> <fence_mono_ms> | ID <mono_start_ns> <mono_end_ns> <id> | REFUSE <mono_ms> <code>
#   SUMMARY ... | LOG <level> <line> | EXIT <mono_ms> <issued>
# shellcheck disable=SC2034 # variables used by the sourcing scripts

set -u

ZT_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ZT_REPO=$(cd "$ZT_HERE/../.." && pwd)
# shellcheck source=tests/lib/suite.sh
. "$ZT_REPO/tests/lib/suite.sh"
# shellcheck source=haproxy/zookeeper.sh
. "$ZT_REPO/haproxy/zookeeper.sh"

BUILD=${BUILD:-$ZT_REPO/build}
[[ $BUILD == /* ]] || BUILD=$ZT_REPO/$BUILD
CLAIMANT=${CLAIMANT:-$BUILD/tests/claimant}
# next to the claimant (the build dir `make test-zk` used), unless given
ZKCTL=${ZKCTL:-$(dirname "$CLAIMANT")/zkctl}
EPOCH_MS=1704067200000

# the lease settings every test uses unless it says otherwise (small, so the suite stays short)
ZT_TIMEOUT=${ZT_TIMEOUT:-2000}
ZT_MARGIN=${ZT_MARGIN:-500}

T=
zt_pids=()
# the names these had before tests/lib/suite.sh
declare -n zt_name=suite_name zt_passed=suite_passed zt_failed=suite_failed

zt_cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	# every process we started, by PID: TERM them all first (they stop in parallel), then wait
	for pid in "${zt_pids[@]}"; do
		if proc_alive "$pid"; then kill -CONT "$pid" 2>/dev/null; kill -TERM "$pid" 2>/dev/null; fi
	done
	for pid in "${zt_pids[@]}"; do proc_stop "$pid" 8000; done
	[[ -n $T ]] && zk_stop_all "$T"
	if [[ -n $T && ${ZT_KEEP:-0} != 1 ]]; then
		rm -rf "$T"
	elif [[ -n $T ]]; then
		diag "kept $T"
	fi
	exit "$rc"
}

zt_done() { suite_done; }

zt_init() {
	suite_name=$1
	T=$(mktemp -d "${TMPDIR:-/tmp}/sf-zk-$1.XXXXXX") || { echo "not ok $1: mktemp"; exit 1; }
	trap zt_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	if [[ ! -x $CLAIMANT ]]; then
		not_ok "claimant binary at $CLAIMANT (make build/tests/claimant)"
		exit 1
	fi
	if [[ ! -x $ZKCTL || $ZT_HERE/zkctl.c -nt $ZKCTL ]]; then
		mkdir -p "$(dirname "$ZKCTL")"
		# built aside and renamed: concurrent test scripts never run a half-written binary
		if ! cc -std=c11 -D_GNU_SOURCE -DTHREADED -O2 -Wall -Wextra -Werror "$ZT_HERE/zkctl.c" \
			-o "$ZKCTL.$$" -lzookeeper_mt || ! mv -f "$ZKCTL.$$" "$ZKCTL"; then
			rm -f "$ZKCTL.$$"
			not_ok "build tests/zk/zkctl.c"
			exit 1
		fi
	fi
}

zt_mono() { "$ZKCTL" mono; }

# zt_bg NAME CMD...: run CMD in the background, stdout to $T/NAME.out, stderr to $T/NAME.err;
# its PID is recorded for the cleanup and left in $ZT_PID.
ZT_PID=
zt_bg() {
	local name=$1
	shift
	"$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
	ZT_PID=$!
	zt_pids+=("$ZT_PID")
	echo "$ZT_PID" >"$T/$name.pid"
}

# zt_claimant NAME HOSTS ROOT [extra claimant options]: one claimant with its own state dir.
zt_claimant() {
	local name=$1 hosts=$2 root=$3
	shift 3
	mkdir -p "$T/state-$name"
	zt_bg "$name" "$CLAIMANT" --hosts "$hosts" --root "$root" --state "$T/state-$name" \
		--node "$name" --timeout "$ZT_TIMEOUT" --margin "$ZT_MARGIN" "$@"
}

# zt_minting_claimant NAME HOSTS ROOT: a claimant that prints its IDs (one a second), minting within
# 10 s (else the test stops); then 1.5 s of steady minting and the figure
# negotiated_session_timeout_ms. Sets CPID (its PID), OUT (its output file) and TMO (the timeout).
zt_minting_claimant() {
	zt_claimant "$1" "$2" "$3" --print-ids --every 1000
	CPID=$ZT_PID OUT=$T/$1.out
	if ! zt_wait "$OUT" '^STATE [0-9]+ [0-9]+ minting ' 10000; then
		not_ok "the claimant mints before the outage"
		zt_tail_diag "$OUT"
		exit 1
	fi
	ok "the claimant mints before the outage"
	sleep 1.5
	TMO=$(grep -m1 -oE 'established, timeout [0-9]+' "$OUT" | grep -oE '[0-9]+$')
	figure negotiated_session_timeout_ms "$TMO"
}

# zt_safety_after PID OUT: stop the claimant PID, then the safety checks over its output OUT: no ID
# started at or after the fence in force, IDs strictly increasing, no duplicate.
zt_safety_after() {
	local res v e c d
	proc_stop "$1"
	res=$(zt_fence_check "$2")
	diag "fence check: $res"
	zt_fence_check "$2" | grep '^VIOLATION' | sed 's/^/#   /'
	read -r _ v _ e _ c <<<"$res"
	check "not one ID started at or after the fence in force ($c IDs checked, $e at a grant change)" \
		test "$v" = 0 -a "$c" -gt 0
	check "IDs strictly increasing in issue order" zt_increasing "$2"
	d=$(zt_dups "$2")
	check "no duplicate ID" test -z "$d"
}

# zt_wait FILE ERE TIMEOUT_MS [FROM_LINE=1]: wait until a line at or after FROM_LINE matches.
zt_wait() {
	local f=$1 re=$2 tmo=$3 from=${4:-1} end
	end=$(($(zt_mono) + tmo))
	while :; do
		tail -n "+$from" "$f" 2>/dev/null | grep -Eq -- "$re" && return 0
		(($(zt_mono) >= end)) && return 1
		sleep 0.02
	done
}

# zt_first FILE ERE [FROM_LINE=1]: print the first matching line at or after FROM_LINE.
zt_first() { tail -n "+${3:-1}" "$1" 2>/dev/null | grep -E -m1 -- "$2"; }
# zt_nlines FILE: the number of complete lines so far
zt_nlines() { local n; n=$(wc -l <"$1" 2>/dev/null) || n=0; echo "${n:-0}"; }

# zt_ids FILE...: every ID the claimants printed, one a line
zt_ids() { cat "$@" 2>/dev/null | awk '$1 == "ID" && NF == 4 { print $4 }'; }

# zt_dups FILE...: print IDs issued more than once over all the files (empty = none)
zt_dups() { zt_ids "$@" | sort | uniq -d; }

# zt_decode ID WORKER_BITS: print "timestamp_ms worker sequence" (41-bit timestamps, default epoch)
zt_decode() {
	local id=$1 wb=$2 sb=$((22 - $2))
	echo "$(((id >> 22) + EPOCH_MS)) $(((id >> sb) & ((1 << wb) - 1))) $((id & ((1 << sb) - 1)))"
}

# zt_workers_of FILE WORKER_BITS: the distinct workers encoded in the file's IDs, one a line
zt_workers_of() {
	local id sb=$((22 - $2)) mask=$(((1 << $2) - 1))
	zt_ids "$1" | while read -r id; do echo $(((id >> sb) & mask)); done | sort -un
}

# zt_fence_check FILE: every ID must have been started (mono_start_ns) before the fence deadline in
# force (the latest FENCE line before it). The claimant reads the fence at the top of its loop, then
# mints: when the lease publishes a new grant between the two, the ID is legitimately minted under a
# fence the file shows only on the next line; such IDs are excused only when a FENCE line later than
# the ID's start follows within the next 3 lines, and counted. Prints
#   "violations N excused N checked N" and, for each violation, "VIOLATION <line> <id> <t0_ms> <fence_ms>"
# (ms values are whole-number prefixes of the ns figures: no float precision is involved).
zt_fence_check() {
	awk '
	function ms(ns) { return substr(ns, 1, length(ns) - 6) + 0 }
	{ line[NR] = $0 }
	END {
		fence = 0; v = 0; e = 0; c = 0
		for (i = 1; i <= NR; i++) {
			split(line[i], f, " ")
			if (f[1] == "FENCE") { fence = f[3] + 0; continue }
			if (f[1] != "ID") continue
			c++
			t0 = ms(f[2])
			if (fence > 0 && t0 < fence) continue
			excused = 0
			for (j = i + 1; j <= NR && j <= i + 3; j++) {
				split(line[j], g, " ")
				if (g[1] == "FENCE" && g[3] + 0 > t0) { excused = 1; break }
				if (g[1] == "ID") break
			}
			if (excused) { e++; continue }
			v++
			if (v <= 10) printf "VIOLATION %d %s %d %d\n", i, f[4], t0, fence
		}
		printf "violations %d excused %d checked %d\n", v, e, c
	}' "$1"
}

# zt_increasing FILE: the file's IDs are strictly increasing in issue order (one generator)
zt_increasing() { zt_ids "$1" | sort -c -u -n 2>/dev/null; }

# zt_state_line FILE STATE [REASON] [FROM_LINE]: the first STATE line with that state (and reason)
zt_state_line() {
	local re="^STATE [0-9]+ [0-9]+ $2 -?[0-9]+"
	[[ -n ${3:-} ]] && re+=" $3( |\$)"
	zt_first "$1" "$re" "${4:-1}"
}

# zt_field "LINE" N: the Nth whitespace-separated field of LINE
zt_field() { local -a f; read -r -a f <<<"$1"; echo "${f[$2 - 1]:-}"; }

# zt_tail_diag FILE [N=15]: the last lines of a file as diagnostics (ID lines left out)
zt_tail_diag() { grep -v '^ID ' "$1" 2>/dev/null | tail -n "${2:-15}" | sed 's/^/#   /'; }

# zt_outage LABEL KEY OUT CPID TIMEOUT_MS DOWN_FN UP_FN [DOWN_AFTER_PARK_MS=1000]
# One registry outage under a claimant that mints with --print-ids (output OUT, pid CPID,
# negotiated session timeout TIMEOUT_MS). DOWN_FN takes the registry away (returns once it is down);
# UP_FN brings it back (returns once it serves again; it may set ZT_BACK_AT to the mono ms at which
# the registry served again, when that was earlier than its return). Checks: the claimant keeps minting after the
# outage began up to the published fence, the fence reaches no further than timeout - margin past
# the end of DOWN_FN (the last moment anything could have been acknowledged), it parks "fenced"
# no earlier than the fence, mints nothing while parked, and resumes within 2 s of UP_FN's return,
# same process. Figures are printed under outage_KEY_*.
zt_outage() {
	local label=$1 key=$2 out=$3 cpid=$4 tmo=$5 down=$6 up=$7 down_more=${8:-1000}
	local lease_ms=$(($5 - ZT_MARGIN)) from k d p parked_at fence last_t0 n_out restart_from s s0
	local rline r_t0 resume w_before w_after sessions
	w_before=$(zt_field "$(grep -E '^STATE [0-9]+ [0-9]+ minting ' "$out" | tail -n1)" 5)
	from=$(($(zt_nlines "$out") + 1))
	k=$(zt_mono)
	"$down"
	d=$(zt_mono)
	diag "$label at mono $k..$d (claimant line $from)"

	if ! zt_wait "$out" '^STATE [0-9]+ [0-9]+ parked -?[0-9]+ fenced' $((tmo + 3000)) "$from"; then
		not_ok "$label: the claimant parks (fenced)"
		zt_tail_diag "$out"
		return 1
	fi
	p=$(grep -n -E '^STATE [0-9]+ [0-9]+ parked -?[0-9]+ fenced' "$out" |
		awk -F: -v f="$from" '$1 >= f { print $1; exit }')
	parked_at=$(zt_field "$(sed -n "${p}p" "$out")" 2)
	ok "$label: the claimant parks (fenced) $((parked_at - k)) ms after the outage began"
	# the fence in force when the outage began, or a later one (an answer to a request sent before)
	fence=$(head -n "$p" "$out" | awk '$1 == "FENCE" && $3 > 0 { f = $3 } END { print f + 0 }')
	last_t0=$(head -n "$p" "$out" | tail -n "+$from" |
		awk '$1 == "ID" { t = substr($2, 1, length($2) - 6) } END { print t + 0 }')
	n_out=$(head -n "$p" "$out" | tail -n "+$from" | grep -c '^ID ')
	figure "outage_${key}_minting_kept_ms" $((fence - k))
	figure "outage_${key}_session_timeout_ms" "$tmo"
	figure "outage_${key}_ids_minted_during_outage" "$n_out"
	check "$label: the fence ($((fence - k)) ms after the outage began) lies within timeout - margin ($lease_ms ms) of the registry's last possible answer" \
		test "$fence" -le $((d + lease_ms))
	check "$label: minting went on during the outage ($n_out IDs after it began)" test "$n_out" -gt 0
	figure "outage_${key}_fence_minus_last_id_start_ms" $((fence - last_t0))
	check "$label: minting went on until the fence (last ID started $((fence - last_t0)) ms before it)" \
		test $((fence - last_t0)) -le 250 -a $((fence - last_t0)) -gt 0
	check "$label: parked no earlier than the fence" test "$parked_at" -ge "$fence"

	# stay down a while longer: nothing may be minted while the registry is away
	sleep "$((down_more / 1000)).$(printf '%03d' $((down_more % 1000)))"
	restart_from=$(($(zt_nlines "$out") + 1))
	s0=$(zt_mono)
	if ! "$up"; then
		not_ok "$label: the registry comes back"
		return 1
	fi
	s=$(zt_mono)
	# UP_FN may say when exactly the registry was back, if that was before it returned
	if [[ -n ${ZT_BACK_AT:-} ]]; then s=$ZT_BACK_AT; ZT_BACK_AT=; fi
	diag "$label: registry back at mono $s (bringing it back took $((s - s0)) ms)"
	check "$label: not one ID minted while parked" \
		test "$(tail -n "+$p" "$out" | head -n $((restart_from - p)) | grep -c '^ID ')" = 0
	if ! zt_wait "$out" '^ID ' 15000 "$restart_from"; then
		not_ok "$label: minting resumes after the registry returns"
		zt_tail_diag "$out"
		return 1
	fi
	rline=$(zt_first "$out" '^ID ' "$restart_from")
	r_t0=$(zt_field "$rline" 2)
	r_t0=${r_t0:0:${#r_t0}-6}
	resume=$((r_t0 - s))
	figure "outage_${key}_resume_after_registry_back_ms" "$resume"
	figure "outage_${key}_resume_after_restart_began_ms" $((r_t0 - s0))
	check "$label: minting resumes within 2 s of the registry serving again ($resume ms)" \
		test "$resume" -le 2000
	check "$label: same process, no restart (pid $cpid alive, one START)" \
		test "$(grep -c '^START ' "$out")" = 1 -a -d "/proc/$cpid"
	w_after=$(zt_field "$(grep -E '^STATE [0-9]+ [0-9]+ minting ' "$out" | tail -n1)" 5)
	sessions=$(grep -c 'lease: session 0x[0-9a-f]* established' "$out")
	diag "$label: worker before $w_before, after $w_after; sessions established so far: $sessions"
	return 0
}
