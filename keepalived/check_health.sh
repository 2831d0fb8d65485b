#!/bin/sh
# keepalived vrrp_script: exit 0 when the local HAProxy answers GET /health with 200 (it can mint),
# 1 otherwise (503 with a reason: clock regression, lost or fenced lease, parked; or no answer).
#   check_health.sh URL [TIMEOUT_S=0.5]
# One run a second serves every VRRP instance of the host. It has no hold-down of its own: when it
# passes again, the watcher's track file still keeps a recovered node below every healthy backup
# until the watcher's hold-down ends (each signal's weight alone does that: keepalived.conf.in).
code=$(curl -s -o /dev/null -w '%{http_code}' --connect-timeout "${2:-0.5}" --max-time "${2:-0.5}" \
	--noproxy '*' "$1" 2>/dev/null)
[ "$code" = 200 ]
