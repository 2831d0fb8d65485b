#!/usr/bin/env bash
# Every shipped HAProxy configuration passes `haproxy -c` with the variables
# haproxy/run.sh sets; a bad Lua config stops `haproxy -c` naming the key.
# (`haproxy -c` runs the Lua file bodies but no task: it must not, and does
# not, touch ZooKeeper.)
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/sf-cfgcheck.XXXXXX)
trap 'rm -rf "$work"' EXIT

export SF_HOME=$top SF_LUA_CPATH=$top/build/lua5.3 SF_BIND=127.0.0.1:1 SF_SOCKET=$work/haproxy.sock
export SF_THREADS=2 SF_LOG_TARGET=stderr SF_SEQ_DIV=4096 SF_WORKER_MASK=1023 SF_RATE=100000
export SF_RETRY_AFTER=1 SF_NODE=check

for cfg in "$top"/haproxy/*.cfg; do
	name=${cfg#"$top"/}
	export SNOWFLAKE_CONFIG=
	if out=$(haproxy -c -f "$cfg" 2>&1); then
		echo "ok haproxy -c passes on $name (defaults)"
	else
		echo "not ok haproxy -c passes on $name (defaults)"; echo "$out" | tail -5
	fi
	printf 'return { clock = { max_wait_ms = 50 }, lease = { zk_hosts = "127.0.0.1:1" } }\n' >"$work/good.lua"
	export SNOWFLAKE_CONFIG=$work/good.lua
	if out=$(haproxy -c -f "$cfg" 2>&1); then
		echo "ok haproxy -c passes on $name with a config file"
	else
		echo "not ok haproxy -c passes on $name with a config file"; echo "$out" | tail -5
	fi
	printf 'return { clock = { max_wait_msec = 50 } }\n' >"$work/bad.lua"
	export SNOWFLAKE_CONFIG=$work/bad.lua
	if out=$(haproxy -c -f "$cfg" 2>&1); then
		echo "not ok haproxy -c refuses an unknown config key on $name"
	elif grep -q 'unknown config key clock.max_wait_msec' <<<"$out"; then
		echo "ok haproxy -c refuses an unknown config key on $name, naming it"
	else
		echo "not ok haproxy -c names the unknown key on $name"; echo "$out" | tail -5
	fi
	printf 'return { layout = { worker_bits = 9 } }\n' >"$work/bad2.lua"
	export SNOWFLAKE_CONFIG=$work/bad2.lua
	if ! out=$(haproxy -c -f "$cfg" 2>&1) && grep -q 'layout.sequence_bits' <<<"$out"; then
		echo "ok haproxy -c refuses a layout whose widths do not sum to 63 on $name, naming the key"
	else
		echo "not ok haproxy -c refuses a bad layout on $name"; echo "$out" | tail -5
	fi
done
