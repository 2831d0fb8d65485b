#!/bin/sh
# Lints the tree: shellcheck on every shell script, luacheck on every Lua file
# (options in .luacheckrc). One "ok"/"not ok" line per file in the log.
# Files: those git tracks or would add (untracked, not ignored): *.sh and
# files whose first line is a sh/bash shebang; *.lua.
# Usage: run-lint.sh <result-prefix>
# Writes <result-prefix>.result as "passed N failed M"; exits 1 on a finding.
set -u
prefix=$1
cd "$(dirname "$0")/../.." || exit 1
tracked=$(git ls-files --cached --others --exclude-standard)
shell_files=$(for f in $tracked; do
	[ -f "$f" ] || continue
	case $f in
	*.sh) echo "$f" ;;
	*.lua | *.c | *.h | *.md) ;;
	*) head -n 1 "$f" | grep -qE '^#!.*/(env )?(ba|da)?sh( |$)' && echo "$f" ;;
	esac
done)
lua_files=$(for f in $tracked; do case $f in *.lua) [ -f "$f" ] && echo "$f" ;; esac; done)
log="$prefix.log"
mkdir -p "$(dirname "$prefix")"
: >"$log"
passed=0; failed=0
# With -x, shellcheck re-reads every sourced helper for each script (~2.5 s a suite script): the scripts
# are checked in parallel, one process a core, each writing its verdict to its own file
out_dir=$(mktemp -d "${TMPDIR:-/tmp}/sf-lint.XXXXXX") || exit 1
trap 'rm -rf "$out_dir"' EXIT
n=0
for f in $shell_files; do
	n=$((n + 1))
	printf '%s\0%s\0' "$f" "$out_dir/$n" >>"$out_dir/jobs"
done
# shellcheck disable=SC2016 # $1 and $2 belong to the inner sh script (its arguments)
[ "$n" -eq 0 ] || xargs -0 -n 2 -P "$(nproc 2>/dev/null || echo 2)" sh -c '
	if out=$(shellcheck -x -P SCRIPTDIR "$1" 2>&1); then echo "ok shellcheck $1" >"$2"
	else { echo "not ok shellcheck $1"; echo "$out"; } >"$2"; fi' lint-shellcheck <"$out_dir/jobs"
for i in $(seq 1 "$n"); do
	if [ -f "$out_dir/$i" ] && head -n 1 "$out_dir/$i" | grep -q '^ok '; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
	cat "$out_dir/$i" >>"$log" 2>/dev/null || echo "not ok shellcheck: no verdict for script $i" >>"$log"
done
for f in $lua_files; do
	if out=$(luacheck --no-color --formatter plain "$f" 2>&1); then
		passed=$((passed + 1)); echo "ok luacheck $f" >>"$log"
	else
		failed=$((failed + 1)); { echo "not ok luacheck $f"; echo "$out"; } >>"$log"
	fi
done
printf '  %-40s %5d passed %3d failed\n' "lint" "$passed" "$failed"
[ "$failed" -eq 0 ] || grep -v '^ok ' "$log" | head -60
echo "passed $passed failed $failed" >"$prefix.result"
[ "$failed" -eq 0 ]
