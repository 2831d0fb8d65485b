#!/usr/bin/env bash
# tests/chaos/chaos.sh: `make chaos`. Every fault at once, for minutes, on the drill topology
# (tests/drills/lib.sh: three proxies under three VIPs, a three-node ZooKeeper ensemble, the
# client on its own host), then the history checker over everything the client received.
#
#   tests/chaos/chaos.sh [-s SECONDS=600] [-S SEED] [-o OUTDIR=build/chaos] [-k MAX_AT_ONCE=3]
#
# The seed comes first in the output (CHAOS seed N): `make chaos SEED=N SECONDS=S` draws the same
# schedule again (tests/chaos/schedule.lua). Every proxy runs under libfaketime (its clock faults
# change an offset file). The nemesis acts at the schedule's times and writes each action to
# $T/events as `start <mono_us> <wall_us> fault=<id> kind=<kind> target=<target> detail=<param>`
# and `heal <mono_us> <wall_us> fault=<id>`; the checker (tests/chaos/check.c) reads that with the
# client's log, the proxies' lease lines and keepalived's notify lines, prints the CHAOS figures
# and the timeline, and tests/chaos/report.lua draws OUTDIR/report.html.
# Output: CHAOS lines, and ok / not ok lines (counted by make test). Bounded: a watchdog ends it
# SECONDS + 240 s after the start; the EXIT trap tears everything down, also on failure.
DR_SUITE_DIR=$(cd "$(dirname "$0")/../drills" && pwd)
# shellcheck source=tests/drills/lib.sh
. "$DR_SUITE_DIR/lib.sh"

CHAOS_SECONDS=600 SEED='' OUT=$DR_REPO/build/chaos MAX_AT_ONCE=3
while getopts s:S:o:k: opt; do
	case $opt in
	s) CHAOS_SECONDS=$OPTARG ;;
	S) SEED=$OPTARG ;;
	o) OUT=$OPTARG ;;
	k) MAX_AT_ONCE=$OPTARG ;;
	*) echo "usage: $0 [-s SECONDS] [-S SEED] [-o OUTDIR] [-k MAX_AT_ONCE]" >&2; exit 2 ;;
	esac
done
if ! [[ $CHAOS_SECONDS =~ ^[0-9]+$ ]] || ((CHAOS_SECONDS < 30)); then
	echo "not ok chaos: SECONDS must be an integer >= 30" >&2
	exit 2
fi
[[ -z $SEED ]] && SEED=$(($(date +%s%N) % 1000000007))
[[ $SEED =~ ^[0-9]+$ ]] || { echo "not ok chaos: SEED must be a non-negative integer" >&2; exit 2; }
[[ $OUT == /* ]] || OUT=$PWD/$OUT
echo "CHAOS seed $SEED"
echo "CHAOS seconds $CHAOS_SECONDS"

figure() { printf 'CHAOS %s %s\n' "$1" "$2"; }
dr_init chaos $((CHAOS_SECONDS + 240))
CHECKER=$BUILD/chaos/check
mkdir -p "$OUT"
[[ -x $CHECKER ]] || fatal "the history checker is built ($CHECKER: make $CHECKER)"
lua5.4 "$DR_REPO/tests/chaos/schedule.lua" "$SEED" "$CHAOS_SECONDS" "$MAX_AT_ONCE" >"$T/schedule" ||
	fatal "the schedule is drawn"
cp "$T/schedule" "$OUT/schedule"
diag "the schedule ($(awk '$2 == "start"' "$T/schedule" | wc -l) faults; at_ms action fault kind target duration_ms param):"
sed 's/^/#   /' "$T/schedule"

# shellcheck source=tests/lib/faketime.sh
. "$DR_REPO/tests/lib/faketime.sh"
[[ -r $FAKETIME_LIB ]] || fatal "libfaketimeMT.so.1 is installed (apt-get install faketime)"
for h in "${DR_PROXIES[@]}"; do mkdir -p "$T/$h" && echo "+0" >"$T/$h/faketime.rc"; done
DR_HAP_ENV=(HAPROXY_ENV_PREFIX="$(faketime_prefix "$T/%h/faketime.rc")")
declare -A ZK_INDEX=([z1]=1 [z2]=2 [z3]=3)

dr_standard_up 3

# the load: 12 caller slots at 170 requests/s each over the three VIPs, retrying on the next
# VIP at once; a fifth of the requests JSON /id, half /ids of 1..256
LOAD_MS=$((CHAOS_SECONDS * 1000))
client_start load "$DR_VIPS" $((LOAD_MS + 60000)) -c 12 -r 170 -J 20 -B 50 -N 256 || fatal "the client starts"
LOAD_PID=$CLIENT_PID
now
load_mono=$NOW_MONO

# chaos_ev NAME [KEY=VALUE...]: one line of $T/events, stamped now
chaos_ev() {
	local name=$1
	shift
	now
	printf '%s %s %s%s\n' "$name" "$NOW_MONO" "$NOW_WALL" "${*:+ $*}" >>"$T/events"
}

# kill_hap HOST: SIGKILL to its HAProxy (master and workers), and wait until run.sh and the
# processes are gone (a killed multi-threaded process lingers while its threads exit), bounded
KILLED_PIDS=''
kill_hap() {
	local h=$1 rp p i pids=()
	mapfile -t pids < <(hap_pids "$h")
	KILLED_PIDS=$(IFS=,; echo "${pids[*]}")
	((${#pids[@]})) && kill -KILL "${pids[@]}" 2>/dev/null
	read -r rp <"$T/$h/run.pid" 2>/dev/null
	for ((i = 0; i < 400; i++)); do proc_alive "$rp" || break; sleep 0.005; done
	for p in "${pids[@]}"; do
		for ((i = 0; i < 400; i++)); do proc_alive "$p" || break; sleep 0.005; done
	done
}
start_hap() { hap_start "$1" "${DR_HAP_ENV[@]//%h/$1}" || not_ok "run.sh starts again on $1"; }
# pids_signal HOST SIGNAL: HOST's HAProxy processes
pids_signal() {
	local pids=()
	mapfile -t pids < <(hap_pids "$1")
	((${#pids[@]})) && kill "-$2" "${pids[@]}" 2>/dev/null
}
zk_routes() {
	local k
	for ((k = 1; k <= 3; k++)); do ip -n "$(ns "$1")" route "$2" blackhole "10.213.0.$((20 + k))/32" 2>/dev/null; done
}
set_clock() { echo "$2" >"$T/$1/faketime.rc.tmp" && mv -f "$T/$1/faketime.rc.tmp" "$T/$1/faketime.rc"; }

# act WHAT KIND TARGET PARAM: one action of the schedule
act() {
	local what=$1 kind=$2 tg=$3 param=$4 r
	case $what:$kind in
	start:kill_now) start_hap "$tg" ;; # the kill itself: before the start event, below
	heal:kill_now) ;;
	start:kill_later) ;;
	heal:kill_later) start_hap "$tg" ;;
	start:pause) pids_signal "$tg" STOP ;;
	heal:pause) pids_signal "$tg" CONT ;;
	start:link_cut) ip -n "$(ns "$tg")" link set eth0 down ;;
	heal:link_cut) ip -n "$(ns "$tg")" link set eth0 up ;;
	# a blackhole route per ZooKeeper server: the proxy still reaches its clients and peers
	start:zk_partition) zk_routes "$tg" add ;;
	heal:zk_partition) zk_routes "$tg" del ;;
	start:clock_back) set_clock "$tg" "-$param" ;;
	start:clock_forward) set_clock "$tg" "+$param" ;;
	heal:clock_back | heal:clock_forward) set_clock "$tg" "+0" ;;
	start:zk_kill) dr_zk_kill "${ZK_INDEX[$tg]}" ;;
	# in the background: launching a JVM takes seconds on a loaded host, and the nemesis must
	# keep to its schedule (the servers are tracked for the cleanup after the schedule)
	heal:zk_kill)
		(dr_zk_start "${ZK_INDEX[$tg]}" >/dev/null 2>&1 || echo "ZooKeeper $tg did not start again" >>"$T/nemesis.err") &
		zk_starts+=("$!")
		;;
	start:reload) pids_signal "$tg" USR2 ;;
	heal:reload) ;;
	start:park | heal:park)
		r=$(hap_cli "$tg" snowflake "$([[ $what == start ]] && echo park || echo unpark)")
		[[ $r == ok* ]] || diag "snowflake $what on $tg answered: ${r:-nothing} (the proxy may be down)"
		;;
	*) not_ok "the nemesis knows $what $kind"; return 1 ;;
	esac
}

# the nemesis: each action at its time, counted from the start of the load
zk_starts=()
n_start=0 n_heal=0 late_ms_max=0
declare -A kinds_seen=()
while read -r at what id kind tg dur param; do
	now
	wait_us=$((load_mono + at * 1000 - NOW_MONO))
	if ((wait_us > 0)); then
		sleep "$((wait_us / 1000000)).$(printf '%06d' $((wait_us % 1000000)))"
	elif ((-wait_us / 1000 > late_ms_max)); then
		late_ms_max=$((-wait_us / 1000))
	fi
	if [[ $what == start ]]; then
		# a kill is stamped once its processes are gone, with their pids: the checker ends their
		# lease windows there (a SIGKILLed process logs nothing)
		pids_kv=()
		if [[ $kind == kill_now || $kind == kill_later ]]; then
			kill_hap "$tg"
			pids_kv=("pids=$KILLED_PIDS")
		fi
		chaos_ev start "fault=$id" "kind=$kind" "target=$tg" "detail=$param" "${pids_kv[@]}"
		diag "fault $id start: $kind $tg $param (${dur} ms)"
		n_start=$((n_start + 1))
		kinds_seen[$kind]=1
	fi
	act "$what" "$kind" "$tg" "$param"
	if [[ $what == heal ]]; then
		chaos_ev heal "fault=$id"
		n_heal=$((n_heal + 1))
	fi
done <"$T/schedule"
((${#zk_starts[@]})) && wait "${zk_starts[@]}" # the background ZooKeeper starts
dr_zk_track
check "every fault was healed ($n_start started, $n_heal healed)" test "$n_start" = "$n_heal"
check "every ZooKeeper server started again ($(head -n 1 "$T/nemesis.err" 2>/dev/null || echo 'no error'))" \
	test ! -s "$T/nemesis.err"
figure nemesis_late_ms_max "$late_ms_max"

# the rest of the load, then the fleet at rest
now
rest_us=$((load_mono + LOAD_MS * 1000 - NOW_MONO))
((rest_us > 0)) && sleep "$((rest_us / 1000000)).$(printf '%06d' $((rest_us % 1000000)))"
if wait_until 30000 dr_stable; then
	ok "the fleet is at rest after the last heal: every VIP on its owner, every proxy healthy"
else
	not_ok "the fleet is at rest after the last heal ($(vips_map); health p1 $(cat "$T/p1/health.state") p2 $(cat "$T/p2/health.state") p3 $(cat "$T/p3/health.state"))"
fi
for h in "${DR_PROXIES[@]}"; do
	code=$(hap_code "$h" /id)
	check "$h mints again at the end (GET /id: $code)" test "$code" = 200
done
kill -TERM "$LOAD_PID" 2>/dev/null
client_wait "$LOAD_PID" 10000 || not_ok "the client stops"
# the checker gets the host to itself (and check_seconds means what it says)
dr_teardown

# the checker over the whole history
proxy_args=() notify_args=()
for h in "${DR_PROXIES[@]}"; do
	# HAProxy's stderr: every lease line, with the "stopped" of a worker's exit (only there)
	proxy_args+=(--proxy "$h=$T/$h/run.log")
	notify_args+=(--notify "$T/$h/vrrp-notify.log")
done
rm -rf "$OUT/timeline"
"$CHECKER" --events "$T/events" "${notify_args[@]}" "${proxy_args[@]}" --timeline "$OUT/timeline" \
	--client "$T/load.log" >"$T/check.out" 2>"$T/check.err"
check_rc=$?
cat "$T/check.out"
sed 's/^/# /' "$T/check.err" | head -n 20
declare -A C=()
while read -r tag k v; do [[ $tag == CHAOS ]] && C[$k]=$v; done <"$T/check.out"
check "the checker read the history (exit $check_rc: 0 clean, 1 violations, 2 unreadable)" test "$check_rc" -le 1
for k in duplicates order_violations fence_violations lease_violations header_mismatches; do
	check "$k: ${C[$k]:-none} (want 0)" test "${C[$k]:-x}" = 0
done
check "IDs checked: ${C[ids_checked]:-none}" test "${C[ids_checked]:-0}" -gt 0
figure faults_started "$n_start"
figure fault_kinds_started "${#kinds_seen[@]}"
if lua5.4 "$DR_REPO/tests/chaos/report.lua" "$OUT/timeline" "$OUT/report.html" --svg "$OUT/report.svg" \
	--title "make chaos SEED=$SEED SECONDS=$CHAOS_SECONDS" 2>"$T/report.err"; then
	ok "the report is written: $OUT/report.html"
else
	not_ok "the report is written ($(head -n 1 "$T/report.err"))"
fi
# the small logs beside the report (the client's log stays in $T, kept when a check failed)
mkdir -p "$OUT/history"
cp "$T/events" "$T/schedule" "$T/check.out" "$OUT/history/" 2>/dev/null
for h in "${DR_PROXIES[@]}"; do
	cp "$T/$h/run.log" "$OUT/history/$h-run.log" 2>/dev/null
	cp "$T/$h/vrrp-notify.log" "$OUT/history/$h-vrrp-notify.log" 2>/dev/null
done
# the drills' own history check (dr_done) would judge the same log again
DR_CLIENT_LOGS=()
dr_done
