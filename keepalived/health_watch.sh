#!/bin/bash
# The fast health signal for keepalived's track_file: asks GET /health every INTERVAL and keeps
# STATE_FILE at 0 while the node can mint, 1 while it cannot (503 with a reason, or no answer).
# keepalived reads the file when it changes (inotify), so a refusing node loses priority within
# one interval instead of the vrrp_script's whole second.
#
#   health_watch.sh URL STATE_FILE [LOG_FILE]
#
# Environment: SF_WATCH_INTERVAL_MS (100), SF_WATCH_TIMEOUT_S (0.3, curl's connect and total
# timeout), SF_WATCH_FALL (1: one definite failure marks the node down: a refused connection, a
# reset, or an answer other than 200, such as 503 with a reason), SF_WATCH_FALL_SILENT (2: checks in
# a row that got no answer within the timeout; one slow answer on a busy host is not a verdict),
# SF_WATCH_RISE (10 good checks in a row, about a second, bring it back: a node that just refused
# does not take the VIP straight back).
# The file is written only on a change, atomically (temporary file + rename). It starts at 1: a
# node is down until it has shown it can mint. LOG_FILE gets one line per change, with the reason.
set -u
url=$1 file=$2 log=${3:-/dev/null}
interval_ms=${SF_WATCH_INTERVAL_MS:-100}
timeout_s=${SF_WATCH_TIMEOUT_S:-0.3}
fall=${SF_WATCH_FALL:-1}
fall_silent=${SF_WATCH_FALL_SILENT:-2}
rise=${SF_WATCH_RISE:-10}

# now_ms VAR: wall-clock milliseconds into VAR, without a fork
now_ms() { local t=${EPOCHREALTIME/./}; printf -v "$1" %s $((t / 1000)); }
say() {
	local t=${EPOCHREALTIME/./}
	printf '%s %s %s\n' "$(date -u -d "@$((t / 1000000))" +%Y-%m-%dT%H:%M:%S).$(printf %03d $((t / 1000 % 1000)))Z" \
		$((t / 1000)) "$*" >>"$log"
}
put() {
	printf '%s\n' "$1" >"$file.tmp.$$" && mv -f "$file.tmp.$$" "$file"
}

# a sleep that forks nothing: read with a timeout on a pipe we also hold open for writing
exec {sleep_fd}<> <(:)
nap() {
	local s
	(($1 > 0)) || return 0
	printf -v s '0.%03d' "$1"
	read -r -t "$s" -u "$sleep_fd" _
	return 0
}

state=down ok_run=0 fail_run=0 silent_run=0 t0=0 t1=0
put 1
say "start url=$url state=down"
while :; do
	now_ms t0
	reply=$(curl -s --noproxy '*' --connect-timeout "$timeout_s" --max-time "$timeout_s" \
		-w '\n%{http_code}' "$url" 2>/dev/null)
	rc=$? # 28: timed out (no verdict yet); 7: refused, 52/56: empty or reset (definite)
	code=${reply##*$'\n'}
	if [[ $code == 200 ]]; then
		ok_run=$((ok_run + 1)) fail_run=0 silent_run=0
		if [[ $state != up ]] && ((ok_run >= rise)); then
			state=up
			put 0
			say "up code=200 after $ok_run good checks"
		fi
	else
		ok_run=0
		if ((rc == 28)); then silent_run=$((silent_run + 1)); else fail_run=$((fail_run + 1)) silent_run=0; fi
		if [[ $state != down ]] && ((fail_run >= fall || silent_run >= fall_silent)); then
			state=down
			put 1
			body=${reply%$'\n'*}
			((rc == 28)) && body="no answer within ${timeout_s}s, $silent_run checks in a row"
			[[ $code == 000 && $rc != 28 ]] && body="curl exit $rc (7: refused, 52: empty, 56: reset)"
			say "down code=$code ${body//$'\n'/ }"
		fi
	fi
	now_ms t1
	left=$((interval_ms - (t1 - t0)))
	((left >= 1000)) && left=999
	nap "$left"
done
