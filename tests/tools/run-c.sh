#!/bin/sh
# Runs C test programs; each prints "ok ..." / "not ok ..." lines (TAP-like).
# Usage: run-c.sh <result-prefix> <program>...
# Writes <result-prefix>.result as "passed N failed M"; a program that crashes
# or exits non-zero without reporting a failure counts as one failure.
set -u
prefix=$1; shift
mkdir -p "$(dirname "$prefix")"
passed=0; failed=0
for prog in "$@"; do
	name=$(basename "$prog")
	log="$prefix-$name.log"
	"$prog" >"$log" 2>&1
	status=$?
	p=$(grep -c '^ok ' "$log")
	f=$(grep -c '^not ok ' "$log")
	if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "not ok $name exited with status $status" >>"$log"
	fi
	passed=$((passed + p)); failed=$((failed + f))
	printf '  %-40s %5d passed %3d failed\n' "$(basename "$prefix")/$name" "$p" "$f"
	[ "$f" -eq 0 ] || { grep -E '^not ok|ERROR|Sanitizer|runtime error' "$log" | head -20; }
done
echo "passed $passed failed $failed" >"$prefix.result"
