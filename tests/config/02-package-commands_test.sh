#!/usr/bin/env bash
# The package's commands from the tree (bin/, pointed at the tree's files by their developer
# variables), on this host: `edge-snowflake check` passes the shipped config file (written by
# snowflake.conffile) and a fleet's, refuses bad ones naming the key, refuses what `haproxy -c`
# refuses; `derive` writes all three files or none; `health-url`; `edge-snowflake-keepalived`
# writes a configuration `keepalived -t` accepts, and leaves the old one on a refusal; their
# manual pages (man/) format without a warning and name every subcommand and option --help lists.
# (tests/package boots the installed package; this is the fast check of the same commands.)
# shellcheck disable=SC2015 # ok and not_ok always succeed: "cond && ok || not_ok" is if-then-else
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lib/suite.sh
. "$top/tests/lib/suite.sh"
work=$(mktemp -d /tmp/sf-pkgcmd.XXXXXX)
trap 'rm -rf "$work"' EXIT

export EDGE_SNOWFLAKE_HOME=$top EDGE_SNOWFLAKE_RUN_DIR=$work/run LUA_PATH="$top/lua/?.lua;;"
export LUA_CPATH="$top/build/lua5.3/?.so;;" EDGE_SNOWFLAKE_BIN=$top/bin/edge-snowflake
es=$top/bin/edge-snowflake
mkdir -p "$work/run"

lua5.3 -e 'io.write(require("snowflake.conffile").text())' >"$work/config.lua" || fatal "the config file is written"
out=$("$es" check "$work/config.lua" 2>&1)
check "check passes the shipped config file ($out)" test $? = 0
cat >"$work/fleet.lua" <<'EOF'
return {
  lease = { zk_hosts = "10.0.0.21:2181,10.0.0.22:2181,10.0.0.23:2181", root = "/snowflake/prod" },
  http = { bind = "0.0.0.0:8080", threads = 4, log_target = "/dev/log",
           peers = { p2 = "10.0.0.12:8080", p3 = "10.0.0.13:8080" } },
}
EOF
check "check passes a fleet's config" bash -c "'$es' check '$work/fleet.lua' >/dev/null"

# expect_refusal WHAT LUA_TEXT PATTERN: check exits 1 and says PATTERN
expect_refusal() {
	local what=$1 out rc
	printf '%s\n' "$2" >"$work/bad.lua"
	out=$("$es" check "$work/bad.lua" 2>&1)
	rc=$?
	[[ $rc == 1 && $out == *"$3"* ]] && ok "check refuses $what: ${out%%$'\n'*}" || not_ok "check refuses $what (exit $rc: $out)"
}
expect_refusal "an unknown key" 'return { http = { bnd = "0.0.0.0:8080" } }' "unknown config key http.bnd"
expect_refusal "a bad listener" 'return { http = { bind = "0.0.0.0" } }' "http.bind must be"
expect_refusal "a bad thread count" 'return { http = { threads = 65 } }' "http.threads must be an integer in 1..64"
expect_refusal "a config that does not parse" 'return { http = {' "config $work/bad.lua"
expect_refusal "a config that is not a table" 'return 5' "config must be a table"
# the credential file as the lease reads it: missing, readable by others, then good
expect_refusal "a missing lease.auth_file" "return { lease = { auth_file = \"$work/zk.auth\" } }" \
	"lease.auth_file $work/zk.auth cannot be opened"
printf 'edge:secret\n' >"$work/zk.auth" && chmod 0644 "$work/zk.auth"
expect_refusal "a lease.auth_file others may read" "return { lease = { auth_file = \"$work/zk.auth\" } }" "has mode 0644"
chmod 0600 "$work/zk.auth"
printf 'return { lease = { auth_file = "%s" } }\n' "$work/zk.auth" >"$work/auth.lua"
check "check passes a lease.auth_file of mode 0600 holding user:password" "$es" check "$work/auth.lua"

# what haproxy -c refuses: the tree's haproxy.cfg with one bad line (a copy of the tree's files)
mkdir -p "$work/home/haproxy" "$work/home/lua/snowflake"
cp -r "$top/haproxy/errors" "$work/home/haproxy/" && cp "$top/lua/snowflake/haproxy.lua" "$work/home/lua/snowflake/"
# (the bad section before the peers' defaults, which must stay the last section)
{ sed '/^defaults sf_peer_defaults/,$d' "$top/haproxy/haproxy.cfg"; printf 'frontend broken\n    no-such-keyword here\n';
	sed -n '/^defaults sf_peer_defaults/,$p' "$top/haproxy/haproxy.cfg"; } >"$work/home/haproxy/haproxy.cfg"
out=$(EDGE_SNOWFLAKE_HOME=$work/home "$es" check "$work/config.lua" 2>&1)
rc=$?
[[ $rc == 1 && $out == *"haproxy -c refused"* && $out == *no-such-keyword* ]] &&
	ok "check refuses what haproxy -c refuses, with HAProxy's message" || not_ok "check refuses what haproxy -c refuses (exit $rc: $out)"

# derive: all three files, then a bad config changes none of them
cp "$work/fleet.lua" "$work/etc.lua"
EDGE_SNOWFLAKE_CONFIG=$work/etc.lua "$es" derive
check "derive writes derived.cfg, peers.cfg and peers.acl" test -s "$work/run/derived.cfg" -a -s "$work/run/peers.cfg" -a -s "$work/run/peers.acl"
check "derived.cfg carries the listener and the config's path" \
	grep -qx "    setenv SF_BIND 0.0.0.0:8080" "$work/run/derived.cfg"
# limits.maxconn 20000, fitted below a hard fd limit under 40,100 (this shell's is the service's)
fd_hard=$(ulimit -Hn) want_maxconn=20000 want_ulimit=
if [ "$fd_hard" != unlimited ] && [ "$fd_hard" -lt 40100 ]; then
	want_maxconn=$((fd_hard - 2000)) want_ulimit="setenv SF_ULIMIT_N $fd_hard"
fi
check "derived.cfg carries the connection limits (limits.maxconn $want_maxconn for fd limit $fd_hard, limits.conn_per_addr)" \
	grep -qzE "setenv SF_MAXCONN $want_maxconn.*setenv SF_FRONTEND_MAXCONN $((want_maxconn - 100)).*$want_ulimit.*setenv SF_CONN_PER_ADDR 1000" "$work/run/derived.cfg"
sum_before=$(cat "$work/run/derived.cfg" "$work/run/peers.cfg" "$work/run/peers.acl" | md5sum)
echo 'return { http = { threads = 0 } }' >"$work/etc.lua"
EDGE_SNOWFLAKE_CONFIG=$work/etc.lua "$es" derive 2>/dev/null
rc=$?
check "derive refuses a bad config (exit $rc) and leaves the served files as they were" \
	test "$rc" = 1 -a "$(cat "$work/run/derived.cfg" "$work/run/peers.cfg" "$work/run/peers.acl" | md5sum)" = "$sum_before"
check "reload without a master refuses (MAINPID unset)" bash -c "! MAINPID= '$es' reload 2>/dev/null"

check "health-url follows http.bind (0.0.0.0 -> 127.0.0.1)" \
	test "$(EDGE_SNOWFLAKE_CONFIG=$work/fleet.lua "$es" health-url)" = http://127.0.0.1:8080/health
echo 'return { http = { bind = "10.0.0.11:9000" } }' >"$work/one.lua"
check "health-url on a specific address" test "$(EDGE_SNOWFLAKE_CONFIG=$work/one.lua "$es" health-url)" = http://10.0.0.11:9000/health

# edge-snowflake-keepalived: keepalived -t accepts what it writes; a refusal leaves the old file
ka=$top/bin/edge-snowflake-keepalived
if command -v keepalived >/dev/null 2>&1; then
	# keepalived -t wants an interface that exists and is not loopback (nothing is sent: -t only reads)
	iface=$(ip -o route show default 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p' | head -n 1)
	iface=${iface:-eth0}
	args=(--host p1 --iface "$iface" --proxy p1=10.213.9.11 --proxy p2=10.213.9.12 --vip 10.213.9.100/24 --vip 10.213.9.101/24)
	out=$(EDGE_SNOWFLAKE_CONFIG=$work/fleet.lua "$ka" "${args[@]}" --output "$work/ka/keepalived.conf" 2>&1)
	rc=$?
	[[ $rc == 0 && -s $work/ka/keepalived.conf ]] && ok "edge-snowflake-keepalived writes a config keepalived -t accepts" ||
		not_ok "edge-snowflake-keepalived writes a config keepalived -t accepts (exit $rc: $out)"
	check "it tracks the watcher's state file and checks the config's health URL" \
		grep -q 'check_health.sh http://127.0.0.1:8080/health' "$work/ka/keepalived.conf"
	sum_before=$(md5sum <"$work/ka/keepalived.conf")
	EDGE_SNOWFLAKE_CONFIG=$work/fleet.lua "$ka" --host p9 --iface "$iface" --proxy p1=10.213.9.11 --proxy p2=10.213.9.12 \
		--vip 10.213.9.100/24 --vip 10.213.9.101/24 --output "$work/ka/keepalived.conf" 2>/dev/null
	rc=$?
	check "a refused render (unknown --host, exit $rc) leaves the written file as it was" \
		test "$rc" != 0 -a "$(md5sum <"$work/ka/keepalived.conf")" = "$sum_before"
	check "the package's own options are refused" bash -c "! '$ka' --health-url http://x/ ${args[*]} --output '$work/ka/x.conf' 2>/dev/null"
else
	not_ok "keepalived is installed (make deps)"
fi

# help asked for: the list on standard output, exit 0; a usage error: the list on standard error, exit 2
out=$("$es" --help 2>/dev/null)
rc=$?
[[ $rc == 0 && $out == *"edge-snowflake check"* ]] && ok "edge-snowflake --help prints the subcommands on standard output, exit 0" ||
	not_ok "edge-snowflake --help prints the subcommands on standard output, exit 0 (exit $rc)"
err=$("$es" no-such-command 2>&1 >/dev/null)
rc=$?
[[ $rc == 2 && $err == *"unknown command 'no-such-command'"* && $err == *"edge-snowflake check"* ]] &&
	ok "an unknown subcommand: exit 2, named, the list on standard error" ||
	not_ok "an unknown subcommand: exit 2, named, the list on standard error (exit $rc: $err)"

# The manual pages (man/, installed by make install-package): no warning from groff or from man
# as lintian runs it (80 columns, UTF-8), and they name what the commands' --help lists, so the
# two cannot drift: every subcommand of edge-snowflake (its SYNOPSIS lists no other), every
# option of edge-snowflake-keepalived (and any other option its page names is one the command
# refuses by name).
man_es=$top/man/edge-snowflake.8 man_ka=$top/man/edge-snowflake-keepalived.8
# page_text PAGE: the page as plain text, one line a paragraph (no line breaks, no hyphenation)
page_text() { groff -man -Tascii -P-cbou -rLL=2000n "$1" 2>&1; }
if command -v groff >/dev/null 2>&1 && command -v man >/dev/null 2>&1; then
	for page in "$man_es" "$man_ka"; do
		name=${page#"$top"/}
		out=$(groff -man -ww -z "$page" 2>&1)
		[[ $? == 0 && -z $out ]] && ok "groff -man -ww: no warning on $name" || not_ok "groff -man -ww on $name: $out"
		out=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null)
		[[ $? == 0 && -z $out ]] && ok "man --warnings (as lintian runs it): no warning on $name" ||
			not_ok "man --warnings on $name: $out"
	done

	es_text=$(page_text "$man_es")
	mapfile -t subs < <("$es" --help 2>&1 | sed -n 's/^  edge-snowflake \([a-z][a-z-]*\).*/\1/p' | sort -u)
	missing=()
	for sub in "${subs[@]}"; do
		grep -qE "(^|[^a-z-])edge-snowflake $sub([^a-z-]|\$)" <<<"$es_text" || missing+=("$sub")
	done
	((${#subs[@]} > 0 && ${#missing[@]} == 0)) &&
		ok "edge-snowflake(8) names every subcommand --help lists (${subs[*]})" ||
		not_ok "edge-snowflake(8) names every subcommand --help lists (listed: ${subs[*]}; not in the page: ${missing[*]})"
	mapfile -t synopsis < <(sed -n '/^SYNOPSIS/,/^[A-Z]/s/^ *edge-snowflake \([a-z][a-z-]*\).*/\1/p' <<<"$es_text" | sort -u)
	mapfile -t unlisted < <(comm -23 <(printf '%s\n' "${synopsis[@]}") <(printf '%s\n' "${subs[@]}"))
	((${#synopsis[@]} > 0 && ${#unlisted[@]} == 0)) && ok "edge-snowflake(8)'s SYNOPSIS lists no subcommand --help does not" ||
		not_ok "edge-snowflake(8)'s SYNOPSIS lists subcommands --help does not: ${unlisted[*]} (synopsis: ${synopsis[*]})"

	ka_text=$(page_text "$man_ka")
	mapfile -t opts < <("$ka" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u)
	missing=()
	for opt in "${opts[@]}"; do
		grep -qE -- "(^|[^a-z-])$opt([^a-z-]|\$)" <<<"$ka_text" || missing+=("$opt")
	done
	((${#opts[@]} > 0 && ${#missing[@]} == 0)) &&
		ok "edge-snowflake-keepalived(8) names every option --help prints (${opts[*]})" ||
		not_ok "edge-snowflake-keepalived(8) names every option --help prints (printed: ${opts[*]}; not in the page: ${missing[*]})"
	# the options the page names beyond those (and --help): each one the command refuses, naming it
	mapfile -t others < <(comm -13 <(printf '%s\n' "${opts[@]}") <(grep -oE -- '(^|[^a-z-])--[a-z][a-z-]*' <<<"$ka_text" |
		grep -oE -- '--[a-z-]+' | grep -vx -- --help | sort -u))
	wrong=()
	for opt in "${others[@]}"; do
		out=$(EDGE_SNOWFLAKE_CONFIG=$work/fleet.lua "$ka" "$opt" x --output "$work/ka/never.conf" 2>&1)
		rc=$?
		[[ $rc == 1 && $out == *"$opt "@(is set by the package|is gone)* && ! -e $work/ka/never.conf ]] || wrong+=("$opt (exit $rc: $out)")
	done
	((${#wrong[@]} == 0)) && ok "every other option edge-snowflake-keepalived(8) names is refused by name (${others[*]})" ||
		not_ok "options edge-snowflake-keepalived(8) names that the command does not refuse by name: ${wrong[*]}"
else
	not_ok "groff and man are installed (make deps)"
fi
suite_done
