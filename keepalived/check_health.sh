#!/bin/sh
# keepalived vrrp_script: exit 0 when the local HAProxy answers GET /health with 200 (it can mint),
# 1 otherwise (503 with a reason: clock regression, lost or fenced lease, parked; or no answer).
#   check_health.sh URL [TIMEOUT_S=0.5] [START_GRACE_MS=5000]
# A 503 whose body says "starting_ms":N with N below START_GRACE_MS (a new process whose first
# lease is on its way: a reload's new worker) passes: a reload must not move the VIP (its
# requests go to peers meanwhile). The watcher applies the same grace.
# One run a second serves every VRRP instance of the host. It has no hold-down of its own: when it
# passes again, the watcher's track file still keeps a recovered node below every healthy backup
# until the watcher's hold-down ends (each signal's weight alone does that: keepalived.conf.in).
reply=$(curl -s -w '\n%{http_code}' --connect-timeout "${2:-0.5}" --max-time "${2:-0.5}" \
	--noproxy '*' "$1" 2>/dev/null)
code=${reply##*"
"}
[ "$code" = 200 ] && exit 0
[ "$code" = 503 ] || exit 1
starting=$(printf '%s' "$reply" | sed -n 's/.*"starting_ms":\([0-9][0-9]*\).*/\1/p' | head -n 1)
[ -n "$starting" ] && [ "$starting" -lt "${3:-5000}" ]
