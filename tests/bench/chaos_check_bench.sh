#!/usr/bin/env bash
# make bench's figures for the chaos checker (tests/chaos/check.c): a synthetic history of
# CHAOS_BENCH_IDS IDs (default 10,000,000; tests/bench/chaos_history.c) checked 3 times, the median:
#   BENCH chaos_check_seconds <s> s          the whole check of that history
#   BENCH chaos_check_ids_per_s <n> ids/s
# usage: chaos_check_bench.sh CHECKER GENERATOR
set -u
check=$1 gen=$2 n=${CHAOS_BENCH_IDS:-10000000}
dir=$(mktemp -d "${TMPDIR:-/tmp}/sf-chaos-bench.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
"$gen" "$n" "$dir" 2>/dev/null || { echo "# chaos_history failed" >&2; exit 1; }
secs=()
for _ in 1 2 3; do
	out=$("$check" --proxy "p1=$dir/p1.log" "p2=$dir/p2.log" "p3=$dir/p3.log" --client "$dir/client0.log" "$dir/client1.log") ||
		{ echo "# the checker failed on the synthetic history" >&2; exit 1; }
	secs+=("$(awk '$2 == "check_seconds" { print $3 }' <<<"$out")")
	ids=$(awk '$2 == "ids_checked" { print $3 }' <<<"$out")
done
median=$(printf '%s\n' "${secs[@]}" | sort -g | sed -n 2p)
echo "BENCH chaos_check_seconds $median s"
awk -v n="$ids" -v s="$median" 'BEGIN { printf "BENCH chaos_check_ids_per_s %d ids/s\n", n / s }'
