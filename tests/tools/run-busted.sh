#!/bin/sh
# Runs the busted specs under one Lua version.
# Usage: run-busted.sh <lua-version> <cpath-dir> <result-prefix> <spec-dir>
set -u
version=$1; cpath_dir=$2; prefix=$3; specs=$4
log="$prefix.log"
mkdir -p "$(dirname "$prefix")"
SNOWFLAKE_CPATH="$cpath_dir/?.so" LUA_CPATH="$cpath_dir/?.so;;" LUA_PATH="lua/?.lua;lua/?/init.lua;;" \
	"lua$version" /usr/bin/busted --output=TAP --pattern=_spec --helper="$specs/helpers.lua" "$specs" >"$log" 2>&1
status=$?
p=$(grep -c '^ok ' "$log")
f=$(grep -c '^not ok ' "$log")
if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
	f=1
	echo "not ok busted under lua$version exited with status $status" >>"$log"
fi
printf '  %-40s %5d passed %3d failed\n' "busted-lua$version" "$p" "$f"
[ "$f" -eq 0 ] || grep -A8 '^not ok' "$log" | head -60
echo "passed $p failed $f" >"$prefix.result"
