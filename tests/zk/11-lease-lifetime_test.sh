#!/usr/bin/env bash
# The lease outlives every user of it (library mode): a node stopped while a quarantine request
# runs on its admin thread, a handle used after another handle stopped the process lease. Under
# AddressSanitizer: snowflake.core built with -fsanitize=address,undefined (make's
# build/lua5.4-asan, LUA_ASAN_CPATH) and loaded into lua5.4 with gcc's libasan preloaded, against
# a real ZooKeeper started here. A use after free aborts with ASan's report (in the log).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=haproxy/zookeeper.sh
. "$top/haproxy/zookeeper.sh"
work=$(mktemp -d /tmp/sf-lifetime.XXXXXX)
cleanup() { zk_stop_all "$work" >/dev/null 2>&1; rm -rf "$work"; }
trap cleanup EXIT

cpath=${LUA_ASAN_CPATH:-$top/build/lua5.4-asan/?.so}
so=${cpath//\?/snowflake/core}
libasan=$(gcc -print-file-name=libasan.so)
if [[ ! -f $so ]]; then echo "not ok the ASan build of snowflake.core exists ($so: make $so)"; exit 1; fi
if [[ ! -f $libasan ]]; then echo "not ok gcc's libasan is installed ($libasan)"; exit 1; fi
echo "ok the ASan build of snowflake.core and gcc's libasan are there"

if ! cs=$(zk_start "$work/zk"); then echo "not ok ZooKeeper started"; exit 1; fi
mkdir -p "$work/state"
# detect_leaks=0: the interpreter and libzookeeper keep memory to the exit on purpose
(cd "$work" && LD_PRELOAD=$libasan ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:exitcode=99 \
	UBSAN_OPTIONS=print_stacktrace=1 LUA_PATH="$top/lua/?.lua;;" LUA_CPATH="$cpath;;" \
	timeout 120 lua5.4 "$here/lease_lifetime.lua" "$cs" "$work/state" /snowflake/lifetime "${ROUNDS:-6}")
status=$?
[ "$status" -eq 0 ] && echo "ok lua5.4 under ASan exited cleanly" || echo "not ok lua5.4 under ASan exited with $status"
