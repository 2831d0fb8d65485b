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
for f in $shell_files; do
	if out=$(shellcheck -x -P SCRIPTDIR "$f" 2>&1); then
		passed=$((passed + 1)); echo "ok shellcheck $f" >>"$log"
	else
		failed=$((failed + 1)); { echo "not ok shellcheck $f"; echo "$out"; } >>"$log"
	fi
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
