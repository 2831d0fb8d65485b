#!/bin/sh
# keepalived notify hook: one line per VRRP transition of each instance, with a timestamp, appended
# to a log file. Every instance (one per VIP, sf_vip_<owner>) runs it on each of its transitions:
#   notify "<dir>/notify.sh LOGFILE HOST"; keepalived appends: INSTANCE|GROUP NAME STATE PRIORITY
# Line: <RFC 3339 UTC, ms> <unix ms> host=<HOST> <INSTANCE|GROUP> <NAME> <STATE> prio=<PRIORITY>
#   e.g. 2026-12-02T03:26:16.394Z 1796181976394 host=p2 INSTANCE sf_vip_p1 MASTER prio=249
# NAME says which VIP moved (sf_vip_p1: p1's VIP, held by p2 in the example), so one host's log
# tells every VIP it took or gave up; the fields are the ones the drills grep ($2 the time, $6 the
# state). Instances that change at once run it at once: each line is one short append (O_APPEND),
# so their lines never mix.
log=$1 host=$2
shift 2
# the package's log directory comes from the health unit (LogsDirectory=): keepalived may change
# state before that unit has ever run, and the line must not be lost
[ -d "${log%/*}" ] || mkdir -p "${log%/*}" 2>/dev/null
ns=$(date +%s%N)
ts=$(date -u -d "@$((ns / 1000000000))" +%Y-%m-%dT%H:%M:%S)
printf '%s.%03dZ %s host=%s %s %s %s prio=%s\n' "$ts" $((ns / 1000000 % 1000)) $((ns / 1000000)) \
	"$host" "${1:-?}" "${2:-?}" "${3:-?}" "${4:-?}" >>"$log"
exit 0
