#!/bin/bash
# The fast health signal for keepalived's track_file: asks GET /health every INTERVAL and keeps
# STATE_FILE at 0 while the node can mint, 1 while it cannot (503 with a reason, or no answer) and
# while it has not yet served through its hold-down since it last could not. Every VRRP instance
# of the host tracks this one file (keepalived.conf.in), and keepalived reads it when it changes
# (inotify), so a refusing node loses priority in all of them within one interval instead of the
# vrrp_script's whole second.
#
#   health_watch.sh [--hold-down-ms MS] [--flap-hold-down-ms MS] [--flap-window-s S] \
#       URL STATE_FILE [LOG_FILE]
#
# Down at once: SF_WATCH_FALL (1) definite failures in a row mark the node down: a refused
# connection, a reset, or an answer other than 200, such as 503 with a reason; SF_WATCH_FALL_SILENT
# (2) checks in a row that got no answer within the timeout too (one slow answer on a busy host is
# not a verdict). SF_WATCH_INTERVAL_MS (100), SF_WATCH_TIMEOUT_S (0.3, curl's connect and total
# timeout).
#
# Up after a hold-down: once down, the node reports up only after it has answered 200 for
# SF_WATCH_HOLD_DOWN_MS (--hold-down-ms, default 5000) with no down verdict in between; a down
# verdict during the hold-down cancels it, and the next good answer starts a new one. Why: coming
# back is what moves a VIP back from the healthy survivor that holds it, and every move costs
# callers a blip (about 0.3-0.45 s of errors in the drills), while waiting costs them nothing (the
# survivor serves both VIPs). So the owner comes back only once it has shown it stays up: 5 s is
# 50 checks, longer than the vrrp_script's own recovery (2 good runs a second apart), so both
# signals agree when the VIP returns, and long enough to see a process that comes up and dies
# again at once (a restart loop, a lease claimed and lost again), short enough that the fleet gets
# its capacity back soon.
# A node that went down twice within SF_WATCH_FLAP_WINDOW_S (--flap-window-s, default 60; counted
# back from the moment its hold-down starts, so one long outage is no flap) is flapping: its
# hold-down is SF_WATCH_FLAP_HOLD_DOWN_MS (--flap-hold-down-ms, default 30000). Being
# shorter than the window, a node that keeps flapping stays on the long hold-down, so it moves its
# VIP back at most about twice a minute (four blips) instead of every few seconds.
# The first up after the watcher starts takes the normal hold-down too: a node that just started
# is the least proven one (a fresh process, a fresh lease), and while it waits its VIP stays on a
# healthy survivor, which costs nothing. (A watcher restarted on a serving node therefore moves its
# VIP away for the hold-down: restart it only with its node.) The drills pass short values.
#
# The file is written only on a change, atomically (temporary file + rename). It starts at 1: a
# node is down until it has shown it can mint. It ends at 1 too: a watcher stopped (SIGTERM, INT,
# HUP) writes 1 before it exits, since nothing vouches for the node once it is gone. That is what
# a planned stop needs: systemd stops the watcher before the service it is bound to, and a file
# left at 0 would keep the VIP on a node about to refuse, until the vrrp_script's next run. LOG_FILE gets one line per change, with the reason:
#   <RFC 3339 UTC ms> <unix ms> start url=... hold_down_ms=... flap_hold_down_ms=... flap_window_s=...
#   <RFC 3339 UTC ms> <unix ms> down code=<code> <body or reason>[; hold-down cancelled after X
#       of Y ms]; <n> down(s) in the last <W> s
#   <RFC 3339 UTC ms> <unix ms> hold-down <MS> ms started: code=200, <reason>
#   <RFC 3339 UTC ms> <unix ms> up code=200 after a hold-down of <MS> ms (<n> good checks in a row)
#   <RFC 3339 UTC ms> <unix ms> stop signal=<TERM|INT|HUP> state=down
#   <RFC 3339 UTC ms> <unix ms> starting code=503 starting_ms=<N>: ... (a reload's new worker:
#       still up, for SF_WATCH_START_GRACE_MS at most)
# where the hold-down reason is "first up since the watcher started", "1 down in the last 60 s"
# or "flap: 2 downs in the last 60 s". Hold-down and flap timing runs on CLOCK_BOOTTIME
# (/proc/uptime): a wall-clock step must not shorten or stretch a hold-down.
set -u
die() { echo "health_watch.sh: $*" >&2; exit 2; }
hold_ms=${SF_WATCH_HOLD_DOWN_MS:-5000}
flap_hold_ms=${SF_WATCH_FLAP_HOLD_DOWN_MS:-30000}
flap_window_s=${SF_WATCH_FLAP_WINDOW_S:-60}
while (($# > 0)); do
	case $1 in
	--hold-down-ms | --flap-hold-down-ms | --flap-window-s)
		(($# >= 2)) || die "$1 needs a value"
		case $1 in
		--hold-down-ms) hold_ms=$2 ;;
		--flap-hold-down-ms) flap_hold_ms=$2 ;;
		--flap-window-s) flap_window_s=$2 ;;
		esac
		shift 2 ;;
	--) shift; break ;;
	-*) die "unknown option $1 (usage: health_watch.sh [--hold-down-ms MS] [--flap-hold-down-ms MS] [--flap-window-s S] URL STATE_FILE [LOG_FILE])" ;;
	*) break ;;
	esac
done
(($# == 2 || $# == 3)) || die "usage: health_watch.sh [--hold-down-ms MS] [--flap-hold-down-ms MS] [--flap-window-s S] URL STATE_FILE [LOG_FILE]"
url=$1 file=$2 log=${3:-/dev/null}
interval_ms=${SF_WATCH_INTERVAL_MS:-100}
timeout_s=${SF_WATCH_TIMEOUT_S:-0.3}
fall=${SF_WATCH_FALL:-1}
fall_silent=${SF_WATCH_FALL_SILENT:-2}
# a node that was up and answers 503 with "starting_ms":N, N below this (a new process whose first
# lease is on its way: a reload's new worker), stays up: a reload must not move the VIP
start_grace_ms=${SF_WATCH_START_GRACE_MS:-5000}
# whole numbers only (a decimal or a stray character would break the arithmetic below)
for kv in "SF_WATCH_HOLD_DOWN_MS=$hold_ms" "SF_WATCH_FLAP_HOLD_DOWN_MS=$flap_hold_ms" \
	"SF_WATCH_FLAP_WINDOW_S=$flap_window_s" "SF_WATCH_INTERVAL_MS=$interval_ms" \
	"SF_WATCH_FALL=$fall" "SF_WATCH_FALL_SILENT=$fall_silent" "SF_WATCH_START_GRACE_MS=$start_grace_ms"; do
	[[ ${kv#*=} =~ ^[0-9]{1,9}$ ]] || die "${kv%%=*} must be a whole number, got '${kv#*=}'"
done
[[ $timeout_s =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "SF_WATCH_TIMEOUT_S must be seconds such as 0.3, got '$timeout_s'"
hold_ms=$((10#$hold_ms)) flap_hold_ms=$((10#$flap_hold_ms)) flap_window_s=$((10#$flap_window_s))
interval_ms=$((10#$interval_ms)) fall=$((10#$fall)) fall_silent=$((10#$fall_silent))
start_grace_ms=$((10#$start_grace_ms))
((interval_ms >= 10 && interval_ms <= 60000)) || die "SF_WATCH_INTERVAL_MS must be 10..60000"
((fall >= 1 && fall_silent >= 1)) || die "SF_WATCH_FALL and SF_WATCH_FALL_SILENT must be at least 1"
((flap_hold_ms >= hold_ms)) ||
	die "the flap hold-down ($flap_hold_ms ms) must not be shorter than the normal one ($hold_ms ms)"
[[ -n ${SF_WATCH_RISE:-} ]] &&
	echo "health_watch.sh: SF_WATCH_RISE is no longer read: a node comes back after SF_WATCH_HOLD_DOWN_MS ($hold_ms ms)" >&2

# now_ms VAR: wall-clock milliseconds into VAR, without a fork (paces the checks)
now_ms() { local t=${EPOCHREALTIME/./}; printf -v "$1" %s $((t / 1000)); }
# mono_ms VAR: CLOCK_BOOTTIME milliseconds (10 ms steps) into VAR, without a fork; the wall clock
# if /proc/uptime cannot be read
mono_ms() {
	local u
	if read -r u _ </proc/uptime 2>/dev/null && [[ $u =~ ^[0-9]+\.[0-9]{2}$ ]]; then
		u=${u/./}
		printf -v "$1" %s $((10#$u * 10))
	else
		now_ms "$1"
	fi
}
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
	printf -v s '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
	read -r -t "$s" -u "$sleep_fd" _
	return 0
}

# recent_downs NOW: how many down verdicts fell within the flap window ending NOW (into n_downs);
# older ones are forgotten
downs=() n_downs=0
recent_downs() {
	local t kept=()
	for t in "${downs[@]}"; do ((t > $1 - flap_window_s * 1000)) && kept+=("$t"); done
	downs=("${kept[@]}")
	n_downs=${#downs[@]}
}
plural() { (($1 == 1)) && echo "$1 $2" || echo "$1 ${2}s"; }

# phase: down (failing, or not yet answered), hold (answering 200, waiting out hold_len since
# hold_t0), up. started: whether the node was ever up since the watcher started.
phase=down started=0 hold_t0=0 hold_len=0 ok_run=0 fail_run=0 silent_run=0 t0=0 t1=0 mono=0 starting=0 starting_t0=0
stop() {
	put 1
	say "stop signal=$1 state=down"
	exit 0
}
# the trap only notes the signal: exiting from inside it while `read -t` waits (nap) aborts bash
# 5.2 ("longjmp causes uninitialized stack frame", SIGABRT: a failed unit); the loop acts on it
# after the current check or pause (0.3 s at most)
stopping=
trap 'stopping=TERM' TERM
trap 'stopping=INT' INT
trap 'stopping=HUP' HUP
put 1
say "start url=$url state=down hold_down_ms=$hold_ms flap_hold_down_ms=$flap_hold_ms flap_window_s=$flap_window_s interval_ms=$interval_ms timeout_s=$timeout_s"
while :; do
	[[ -n $stopping ]] && stop "$stopping"
	now_ms t0
	reply=$(curl -s --noproxy '*' --connect-timeout "$timeout_s" --max-time "$timeout_s" \
		-w '\n%{http_code}' "$url" 2>/dev/null)
	rc=$? # 28: timed out (no verdict yet); 7: refused, 52/56: empty or reset (definite)
	code=${reply##*$'\n'}
	mono_ms mono
	if [[ $code == 200 ]]; then
		ok_run=$((ok_run + 1)) fail_run=0 silent_run=0 starting=0
		if [[ $phase == down ]]; then
			# the first good answer after a down: the hold-down starts now
			recent_downs "$mono"
			phase=hold hold_t0=$mono ok_run=1 hold_len=$hold_ms
			if ((n_downs >= 2)); then
				hold_len=$flap_hold_ms why="flap: $n_downs downs in the last $flap_window_s s"
			elif ((started == 0)); then
				why="first up since the watcher started"
				((n_downs > 0)) && why+=", $(plural "$n_downs" down) in the last $flap_window_s s"
			else
				why="$(plural "$n_downs" down) in the last $flap_window_s s"
			fi
			((hold_len > 0)) && say "hold-down $hold_len ms started: code=200, $why"
		fi
		# strictly more: /proc/uptime counts in 10 ms steps, so a reading of exactly hold_len may
		# be up to 10 ms short of it
		if [[ $phase == hold ]] && ((hold_len == 0 || mono - hold_t0 > hold_len)); then
			phase=up started=1
			put 0
			say "up code=200 after a hold-down of $hold_len ms ($(plural "$ok_run" "good check") in a row)"
		fi
	elif [[ $phase == up && $code == 503 && $reply =~ \"starting_ms\":([0-9]{1,9}) ]] &&
		((10#${BASH_REMATCH[1]} < start_grace_ms && (starting == 0 || mono - starting_t0 < start_grace_ms))); then
		# a new process on its way to its first lease (a reload): no verdict within the grace, by
		# its own count and by ours (back-to-back reloads each report a small starting_ms)
		if ((starting == 0)); then
			say "starting code=503 starting_ms=${BASH_REMATCH[1]}: a new process (a reload?), up while under ${start_grace_ms} ms"
			starting=1 starting_t0=$mono
		fi
		ok_run=0 fail_run=0
	else
		ok_run=0
		if ((rc == 28)); then silent_run=$((silent_run + 1)); else fail_run=$((fail_run + 1)) silent_run=0; fi
		if [[ $phase != down ]] && ((fail_run >= fall || silent_run >= fall_silent)); then
			body=${reply%$'\n'*}
			body=${body%$'\n'}
			((rc == 28)) && body="no answer within ${timeout_s}s, $silent_run checks in a row"
			[[ $code == 000 && $rc != 28 ]] && body="curl exit $rc (7: refused, 52: empty, 56: reset)"
			cancelled=
			[[ $phase == hold ]] && cancelled="; hold-down cancelled after $((mono - hold_t0)) of $hold_len ms"
			[[ $phase == up ]] && put 1
			phase=down starting=0
			downs+=("$mono")
			recent_downs "$mono"
			say "down code=$code ${body//$'\n'/ }$cancelled; $(plural "$n_downs" down) in the last $flap_window_s s"
		fi
	fi
	now_ms t1
	left=$((interval_ms - (t1 - t0)))
	# a wall-clock step back must not stretch one pause beyond an interval
	((left > interval_ms)) && left=$interval_ms
	[[ -n $stopping ]] || nap "$left"
done
