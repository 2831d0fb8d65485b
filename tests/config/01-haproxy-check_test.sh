#!/usr/bin/env bash
# Every shipped HAProxy configuration passes `haproxy -c` with the variables
# haproxy/run.sh sets and the files it derives from the Lua config
# (lua/snowflake/render.lua: derived.cfg, peers.cfg, peers.acl), with and
# without peers; a bad Lua config stops `haproxy -c` (or the derivation)
# naming the key.
# (`haproxy -c` runs the Lua file bodies but no task: it must not, and does
# not, touch ZooKeeper.)
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lib/suite.sh
. "$top/tests/lib/suite.sh"
work=$(mktemp -d /tmp/sf-cfgcheck.XXXXXX)
trap 'rm -rf "$work"' EXIT

export SF_HOME=$top SF_LUA_CPATH=$top/build/lua5.3 SF_BIND=127.0.0.1:1 SF_SOCKET=$work/haproxy.sock
export SF_THREADS=2 SF_LOG_TARGET=stderr SF_NODE=check

# derive CONFIG_FILE DIR: what run.sh derives, into DIR (the defaults when CONFIG_FILE is empty);
# prints render.lua's message and fails on a config it refuses
derive() {
	local conf=$1 dir=$2
	mkdir -p "$dir"
	if [[ -z $conf ]]; then conf=$dir/empty.lua && echo 'return {}' >"$conf"; fi
	# shellcheck disable=SC2016 # Lua
	SF_CFG_PATH=$conf SF_DIR=$dir LUA_PATH="$top/lua/?.lua;;" lua5.3 -e \
		'require("snowflake.render").main(os.getenv("SF_CFG_PATH"), os.getenv("SF_DIR"))' >/dev/null
}

# expect CFG CONFIG_FILE pass|fail GREP_PATTERN DESCRIPTION
expect() {
	local cfg=$1 want=$3 pattern=$4 what=$5 out status=0 d
	export SNOWFLAKE_CONFIG=$2
	d=$work/derived-$((++n_derived))
	if ! out=$(derive "$2" "$d" 2>&1); then
		status=1
	else
		export SF_PEERS_ACL=$d/peers.acl
		out=$(haproxy -c -f "$d/derived.cfg" -f "$cfg" -f "$d/peers.cfg" 2>&1) || status=$?
	fi
	if { [ "$want" = pass ] && [ "$status" -eq 0 ]; } ||
	   { [ "$want" = fail ] && [ "$status" -ne 0 ] && grep -q -- "$pattern" <<<"$out"; }; then
		ok "$what"
	else
		not_ok "$what"
		echo "$out" | tail -5
	fi
}

n_derived=0
lua_config "$work/good.lua" 'clock = { max_wait_ms = 50 }' 'lease = { zk_hosts = "127.0.0.1:1" }'
lua_config "$work/peers.lua" 'lease = { zk_hosts = "127.0.0.1:1", node_name = "p1" }' \
	'http = { peers = { p2 = "10.213.0.12:8080", p3 = "10.213.0.13:8080" } }'
lua_config "$work/bad-peer.lua" 'http = { peers = { p2 = "10.213.0.12" } }'
lua_config "$work/bad.lua" 'clock = { max_wait_msec = 50 }'
lua_config "$work/bad2.lua" 'layout = { worker_bits = 9 }'
for cfg in "$top"/haproxy/*.cfg; do
	name=${cfg#"$top"/}
	expect "$cfg" "" pass "" "haproxy -c passes on $name (defaults)"
	expect "$cfg" "$work/good.lua" pass "" "haproxy -c passes on $name with a config file"
	expect "$cfg" "$work/peers.lua" pass "" "haproxy -c passes on $name with two peers (the handoff backend)"
	expect "$cfg" "$work/bad-peer.lua" fail 'http.peers.p2 must be "a.b.c.d:port"' \
		"a peer without a port is refused before HAProxy starts, naming the key"
	expect "$cfg" "$work/bad.lua" fail 'unknown config key clock.max_wait_msec' \
		"haproxy -c refuses an unknown config key on $name, naming it"
	expect "$cfg" "$work/bad2.lua" fail 'layout.sequence_bits' \
		"haproxy -c refuses a layout whose widths do not sum to 63 on $name, naming the key"
done
# Every errorfile HAProxy answers with is a complete HTTP/1.1 answer: CRLF header lines, a
# Content-Length equal to its body, which ends in a newline. (The handoff's 503 once had no
# Content-Length: its body ended only with the connection, and a caller that reads by length saw
# a malformed answer; found by the chaos soak.)
for f in "$top"/haproxy/errors/*.http; do
	name=${f#"$top"/}
	head_end=$(grep -n -m 1 $'^\r$' "$f" | cut -d: -f1)
	body_bytes=$(tail -n +"$((${head_end:-1} + 1))" "$f" | wc -c)
	clen=$(head -n "${head_end:-0}" "$f" | tr -d '\r' | awk -F': *' 'tolower($1) == "content-length" { print $2 }')
	check "$name: a header block ending in an empty CRLF line, every header line CRLF-terminated" \
		test -n "$head_end" -a "$(head -n "${head_end:-0}" "$f" | grep -vc $'\r$')" = 0
	check "$name: Content-Length ${clen:-none} equals its body ($body_bytes bytes)" test "${clen:-x}" = "$body_bytes"
	check "$name: its body ends in a newline" test "$(tail -c 1 "$f" | od -An -c | tr -d ' ')" = '\n'
done
suite_done
