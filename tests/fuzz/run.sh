#!/bin/sh
# Runs every fuzz target for FUZZ_SECONDS each and prints one line a target:
#   FUZZ_OUTPUT=fuzz (make fuzz):      FUZZ <target> execs <n> crashes <n>
#   FUZZ_OUTPUT=tap  (make test-fuzz): ok fuzz <target>: <n> execs, 0 crashes | not ok ...
# The libFuzzer targets are the programs in FUZZ_BIN_DIR (fuzz_<target>); each starts from
# its seed corpus, tests/fuzz/corpus/<target>/ (regression inputs included: libFuzzer runs
# every corpus input before mutating), and adds what it finds to FUZZ_WORK/corpus/<target>/,
# never to the repository. A crash leaves its input in FUZZ_WORK/artefacts/<target>/ and
# libFuzzer's report in FUZZ_WORK/<target>.log. Then the Lua config harness
# (tests/fuzz/config_fuzz.lua) under each Lua of FUZZ_LUA_VERSIONS, against build/lua<v>.
# Environment: FUZZ_BIN_DIR FUZZ_WORK FUZZ_SECONDS FUZZ_OUTPUT FUZZ_LUA_VERSIONS BUILD FUZZ_SEED
# Exit status 1 when a target crashed.
set -u
cd "$(dirname "$0")/../.." || exit 1
bin_dir=${FUZZ_BIN_DIR:-build/fuzz/bin}
work=${FUZZ_WORK:-build/fuzz}
seconds=${FUZZ_SECONDS:-60}
output=${FUZZ_OUTPUT:-fuzz}
build=${BUILD:-build}
seed=${FUZZ_SEED:-$(date +%s)}
status=0

report() { # target execs crashes [detail]
	if [ "$output" = tap ]; then
		if [ "$3" -eq 0 ]; then
			echo "ok fuzz $1: $2 execs, 0 crashes"
		else
			echo "not ok fuzz $1: $2 execs, $3 crashes${4:+ ($4)}"
		fi
	else
		echo "FUZZ $1 execs $2 crashes $3"
		[ "$3" -eq 0 ] || [ -z "${4:-}" ] || echo "# $1: $4" >&2
	fi
	[ "$3" -eq 0 ] || status=1
}

for prog in "$bin_dir"/fuzz_*; do
	[ -x "$prog" ] || continue
	target=${prog##*/fuzz_}
	log="$work/$target.log"
	artefacts="$work/artefacts/$target"
	found="$work/corpus/$target"
	mkdir -p "$artefacts" "$found"
	before=$(find "$artefacts" -type f | wc -l)
	# -timeout: one input running 10 s is a hang, and counted as a crash (a timeout-* artefact)
	"$prog" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$artefacts/" "$found" "tests/fuzz/corpus/$target" >"$log" 2>&1
	rc=$?
	# the final stats are printed on a crash too; "Done N runs" only on a clean end
	execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
	[ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
	[ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$log" | tail -n 1)
	[ -n "$execs" ] || execs=0
	crashes=$(($(find "$artefacts" -type f | wc -l) - before))
	[ "$rc" -eq 0 ] || [ "$crashes" -gt 0 ] || crashes=1
	detail=
	[ "$crashes" -eq 0 ] || detail="see $log; replay: $prog $artefacts/<file>"
	report "$target" "$execs" "$crashes" "$detail"
done

for v in ${FUZZ_LUA_VERSIONS-5.3 5.4}; do
	target=config_lua$v
	log="$work/$target.log"
	artefacts="$work/artefacts/$target"
	mkdir -p "$artefacts"
	LUA_PATH="lua/?.lua;;" LUA_CPATH="$build/lua$v/?.so;;" "lua$v" tests/fuzz/config_fuzz.lua \
		--seed "$seed" --seconds "$seconds" --iterations 100000000 \
		--corpus tests/fuzz/corpus/config --artefacts "$artefacts" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^execs \([0-9]*\) crashes \([0-9]*\)$/\1/p' "$log" | tail -n 1)
	crashes=$(sed -n 's/^execs \([0-9]*\) crashes \([0-9]*\)$/\2/p' "$log" | tail -n 1)
	[ -n "$execs" ] || execs=0
	[ -n "$crashes" ] || crashes=1
	[ "$rc" -eq 0 ] || [ "$crashes" -gt 0 ] || crashes=1
	detail=
	[ "$crashes" -eq 0 ] || detail="see $log; replay: lua$v tests/fuzz/config_fuzz.lua --seed $seed --iterations N"
	report "$target" "$execs" "$crashes" "$detail"
done
exit "$status"
