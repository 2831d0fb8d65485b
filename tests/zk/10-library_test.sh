#!/usr/bin/env bash
# Library mode from an installed tree: `make install` into a temp DESTDIR,
# then plain lua5.3 and lua5.4 with LUA_PATH/LUA_CPATH pointing there only,
# against a real ZooKeeper started here.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=haproxy/zookeeper.sh
. "$top/haproxy/zookeeper.sh"
work=$(mktemp -d /tmp/sf-library.XXXXXX)
cleanup() { zk_stop_all "$work" >/dev/null 2>&1; rm -rf "$work"; }
trap cleanup EXIT

if ! make -s -C "$top" install DESTDIR="$work/dest" PREFIX=/usr/local >"$work/install.log" 2>&1; then
	echo "not ok make install DESTDIR=... PREFIX=/usr/local"; cat "$work/install.log"; exit 1
fi
echo "ok make install DESTDIR=... PREFIX=/usr/local"
prefix=$work/dest/usr/local
for v in 5.3 5.4; do
	[ -f "$prefix/share/lua/$v/snowflake.lua" ] && [ -f "$prefix/lib/lua/$v/snowflake/core.so" ] \
		&& echo "ok Lua $v modules installed under share/lua/$v and lib/lua/$v" \
		|| echo "not ok Lua $v modules installed under share/lua/$v and lib/lua/$v"
done
[ -f "$prefix/lib/libsnowflake.so" ] && [ -f "$prefix/include/edge-snowflake/snowflake.h" ] \
	&& echo "ok libsnowflake.so and its headers installed" || echo "not ok libsnowflake.so and its headers installed"

if ! cs=$(zk_start "$work/zk"); then echo "not ok ZooKeeper started"; exit 1; fi
for v in 5.3 5.4; do
	mkdir -p "$work/state$v"
	# only the installed tree: no repository path on the search paths
	(cd "$work" && LUA_PATH="$prefix/share/lua/$v/?.lua;;" LUA_CPATH="$prefix/lib/lua/$v/?.so;;" \
		timeout 60 "lua$v" "$here/library_check.lua" "$cs" "$work/state$v/sub/dir" "/snowflake/library$v")
	status=$?
	[ "$status" -eq 0 ] || echo "not ok lua$v library check exited with $status"
done
