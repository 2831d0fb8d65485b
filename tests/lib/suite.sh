# shellcheck shell=bash
# tests/lib/suite.sh: what every shell suite shares (tests/zk, tests/http, tests/drills,
# tests/config; the HTTP bench takes its Lua config writer). Source it first:
#
#   . "$REPO/tests/lib/suite.sh"        (it sources tests/lib/proc.sh too)
#
# Output is TAP-like. tests/tools/run-c.sh and tests/drills/run-all.sh count the lines that begin
# "ok " and "not ok "; every other line is "# ..." (or a drill's "DRILL ...").
#   ok WHAT / not_ok WHAT   a check passed / failed ("ok WHAT" / "not ok WHAT"), counted in
#                           suite_passed / suite_failed
#   check WHAT CMD...       ok WHAT when CMD succeeds, else not_ok WHAT
#   diag TEXT               "# TEXT": a diagnostic
#   figure NAME VALUE       "# figure NAME VALUE": a measured figure (the drills print
#                           "DRILL <drill> NAME VALUE" instead, see tests/drills/lib.sh)
#   fatal WHAT              not_ok WHAT and exit 1: a step the rest depends on failed
#   suite_done              "# <suite_name>: N passed, N failed"; exits 1 if anything failed
#
# The Lua configuration of a service under test:
#   lua_config FILE [SECTION...]  FILE returns one table whose fields are the SECTIONs, one a line
#                           ('lease = { zk_hosts = "127.0.0.1:2181" }'); a later SECTION with the
#                           same key replaces an earlier one, so a caller's section overrides a
#                           default. The first line names the script that called lua_config.

SUITE_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/lib/proc.sh
. "$SUITE_REPO/tests/lib/proc.sh"

suite_name=${suite_name:-$(basename "$0" .sh)}
suite_passed=0
suite_failed=0

ok() { printf 'ok %s\n' "$*"; suite_passed=$((suite_passed + 1)); }
not_ok() { printf 'not ok %s\n' "$*"; suite_failed=$((suite_failed + 1)); }
diag() { printf '# %s\n' "$*"; }
figure() { printf '# figure %s %s\n' "$1" "$2"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }
fatal() { not_ok "$*"; exit 1; }

suite_done() {
	diag "$suite_name: $suite_passed passed, $suite_failed failed"
	((suite_failed == 0))
	exit $?
}

lua_config() {
	local file=$1 s k keys=() writer=${BASH_SOURCE[1]:-$0}
	local -A field=()
	shift
	for s in "$@"; do
		k=${s%%=*}
		k=${k//[[:space:]]/}
		[[ -n ${field[$k]+set} ]] || keys+=("$k")
		field[$k]=$s
	done
	writer=$(cd "$(dirname "$writer")" && pwd)/$(basename "$writer")
	{
		echo "-- written by ${writer#"$SUITE_REPO"/}"
		echo "return {"
		for k in "${keys[@]}"; do echo "  ${field[$k]},"; done
		echo "}"
	} >"$file"
}
