#!/usr/bin/env bash
# Every shipped HAProxy configuration passes `haproxy -c` with the variables
# haproxy/run.sh sets; a bad Lua config stops `haproxy -c` naming the key.
# (`haproxy -c` runs the Lua file bodies but no task: it must not, and does
# not, touch ZooKeeper.)
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lib/suite.sh
. "$top/tests/lib/suite.sh"
work=$(mktemp -d /tmp/sf-cfgcheck.XXXXXX)
trap 'rm -rf "$work"' EXIT

export SF_HOME=$top SF_LUA_CPATH=$top/build/lua5.3 SF_BIND=127.0.0.1:1 SF_SOCKET=$work/haproxy.sock
export SF_THREADS=2 SF_LOG_TARGET=stderr SF_SEQ_DIV=4096 SF_WORKER_MASK=1023 SF_RATE=100000
export SF_NODE=check

# expect CFG CONFIG_FILE pass|fail GREP_PATTERN DESCRIPTION
expect() {
	local cfg=$1 want=$3 pattern=$4 what=$5 out status=0
	export SNOWFLAKE_CONFIG=$2
	out=$(haproxy -c -f "$cfg" 2>&1) || status=$?
	if { [ "$want" = pass ] && [ "$status" -eq 0 ]; } ||
	   { [ "$want" = fail ] && [ "$status" -ne 0 ] && grep -q -- "$pattern" <<<"$out"; }; then
		ok "$what"
	else
		not_ok "$what"
		echo "$out" | tail -5
	fi
}

lua_config "$work/good.lua" 'clock = { max_wait_ms = 50 }' 'lease = { zk_hosts = "127.0.0.1:1" }'
lua_config "$work/bad.lua" 'clock = { max_wait_msec = 50 }'
lua_config "$work/bad2.lua" 'layout = { worker_bits = 9 }'
for cfg in "$top"/haproxy/*.cfg; do
	name=${cfg#"$top"/}
	expect "$cfg" "" pass "" "haproxy -c passes on $name (defaults)"
	expect "$cfg" "$work/good.lua" pass "" "haproxy -c passes on $name with a config file"
	expect "$cfg" "$work/bad.lua" fail 'unknown config key clock.max_wait_msec' \
		"haproxy -c refuses an unknown config key on $name, naming it"
	expect "$cfg" "$work/bad2.lua" fail 'layout.sequence_bits' \
		"haproxy -c refuses a layout whose widths do not sum to 63 on $name, naming the key"
done
suite_done
