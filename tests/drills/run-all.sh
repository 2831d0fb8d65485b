#!/usr/bin/env bash
# Runs the failover drills (tests/drills/NN-*_test.sh) one after the other, each bounded in time,
# and prints a summary table: drill, result, checks passed/failed, seconds, key figures.
#
#   tests/drills/run-all.sh [-r RESULT_PREFIX] [-q] [NAME_PART...]
#
# NAME_PART: run only the drills whose file name contains one of them (e.g. "kill" "quorum").
# -r PREFIX: also write PREFIX.result ("passed N failed M", as tests/tools/summary.sh reads) and
#            keep each drill's output as PREFIX-<drill>.log (default: build/results/drills/).
# -q:        do not echo each drill's output, only the table.
# Needs root (network namespaces). Exit status 1 when any check failed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
prefix='' quiet=0
while getopts r:q opt; do
	case $opt in
	r) prefix=$OPTARG ;;
	q) quiet=1 ;;
	*) echo "usage: $0 [-r RESULT_PREFIX] [-q] [NAME_PART...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
logdir=${prefix:+$(dirname "$prefix")}
logdir=${logdir:-$repo/build/results/drills}
mkdir -p "$logdir"
# each drill has its own watchdog too; this is the outer bound
DRILL_TIMEOUT=${DRILL_TIMEOUT:-200}

drills=()
for f in "$here"/[0-9][0-9]-*_test.sh; do
	[[ -x $f ]] || continue
	if (($# > 0)); then
		m=0
		for part in "$@"; do [[ $(basename "$f") == *"$part"* ]] && m=1; done
		((m)) || continue
	fi
	drills+=("$f")
done

total_ok=0 total_fail=0 rows=()
start_all=$SECONDS
for f in "${drills[@]}"; do
	name=$(basename "$f" _test.sh)
	name=${name#[0-9][0-9]-}
	log=$logdir/${prefix:+$(basename "$prefix")-}$name.log
	t0=$SECONDS
	if ((quiet)); then
		timeout -k 20 "$DRILL_TIMEOUT" "$f" >"$log" 2>&1
		status=$?
	else
		echo "=== $name"
		timeout -k 20 "$DRILL_TIMEOUT" "$f" 2>&1 | tee "$log"
		status=${PIPESTATUS[0]}
	fi
	secs=$((SECONDS - t0))
	p=$(grep -c '^ok ' "$log")
	n=$(grep -c '^not ok ' "$log")
	if ((status != 0 && n == 0)); then
		n=1
		echo "not ok $name exited with status $status" >>"$log"
	fi
	total_ok=$((total_ok + p)) total_fail=$((total_fail + n))
	result=PASS
	((n > 0)) && result=FAIL
	figs=$(awk -v d="$name" '$1 == "DRILL" && $2 == d && $3 != "duplicates" && $3 != "order_violations" { printf "%s%s=%s", sep, $3, $4; sep = " " }' "$log")
	dups=$(awk -v d="$name" '$1 == "DRILL" && $2 == d && $3 == "duplicates" { print $4 }' "$log")
	ord=$(awk -v d="$name" '$1 == "DRILL" && $2 == d && $3 == "order_violations" { print $4 }' "$log")
	[[ -n $dups ]] && figs="dups=$dups order=${ord:-?} $figs"
	read -r load_end _ </proc/loadavg
	rows+=("$(printf '%-24s %-5s %3d %3d %5d %5s  %s' "$name" "$result" "$p" "$n" "$secs" "$load_end" "$figs")")
done

echo
echo "Drill summary ($((SECONDS - start_all)) s on $(nproc) cores; logs in $logdir; load: 1-min load average at each drill's end)"
printf '%-24s %-5s %3s %3s %5s %5s  %s\n' drill result ok "!ok" secs load "key figures (DRILL lines)"
for r in "${rows[@]}"; do echo "$r"; done
echo "$total_ok passed, $total_fail failed"
[[ -n $prefix ]] && echo "passed $total_ok failed $total_fail" >"$prefix.result"
((total_fail == 0))
