#!/bin/sh
# Sums every suite's "passed N failed M" and prints the one closing line.
# Exit status 1 when anything failed or no suite reported.
set -u
dir=$1
passed=0; failed=0; suites=0
for f in "$dir"/*.result; do
	[ -e "$f" ] || continue
	read -r _ p _ fl <"$f"
	passed=$((passed + p)); failed=$((failed + fl)); suites=$((suites + 1))
done
[ "$suites" -gt 0 ] || failed=$((failed + 1))
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
