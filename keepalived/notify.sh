#!/bin/sh
# keepalived notify hook: one line per VRRP transition, with a timestamp, appended to a log file.
#   notify "<dir>/notify.sh LOGFILE HOST"; keepalived appends: INSTANCE|GROUP NAME STATE PRIORITY
# Line: <RFC 3339 UTC, ms> <unix ms> host=<HOST> <INSTANCE|GROUP> <NAME> <STATE> prio=<PRIORITY>
log=$1 host=$2
shift 2
ns=$(date +%s%N)
ts=$(date -u -d "@$((ns / 1000000000))" +%Y-%m-%dT%H:%M:%S)
printf '%s.%03dZ %s host=%s %s %s %s prio=%s\n' "$ts" $((ns / 1000000 % 1000)) $((ns / 1000000)) \
	"$host" "${1:-?}" "${2:-?}" "${3:-?}" "${4:-?}" >>"$log"
exit 0
