# shellcheck shell=bash
# tests/drills/lib.sh: the failover drills' topology and helpers (SPEC "Topology for drills").
#
#   . "$(dirname "$0")/lib.sh"; dr_init NAME [TIME_LIMIT_S]
#
# Hosts are network namespaces named "sfd<pid>-<host>" (pid: the drill script's), joined by a
# Linux bridge that lives in a namespace of its own ("sfd<pid>-sw"), so nothing touches the root
# namespace's links and nothing can leave: every packet stays on that bridge or on a namespace's
# loopback. 10.213.0.0/24, active-active (SPEC "Fleet topology"):
#
#                          sfd<pid>-sw: br0 (no address)
#      +-----------+-----------+-----------+-----------+----------------------------+
#   p1 .11      p2 .12      p3 .13      c .50       z1 .21  z2 .22  z3 .23  [z4 .24  z5 .25]
#   HAProxy     HAProxy     HAProxy     drill-client ZooKeeper ensemble (five for the quorum drill)
#   keepalived  keepalived  keepalived  (round robin over the three VIPs, retry on the next)
#   owns VIP    owns VIP    owns VIP
#   .100        .101        .102
#
# Every proxy is in all three VRRP instances and the preferred master of its own VIP; each
# proxy's HAProxy has the other two as peers (handoff backend sf_peers).
#
# Every process runs inside one of these namespaces and is recorded by PID; the cleanup (an EXIT
# trap, so on success, failure, error and timeout alike) stops them by PID, kills whatever is still
# inside our namespaces (`ip netns pids`), then deletes the namespaces, which removes the veths and
# the bridge with them. At start, namespaces of the same prefix left by a drill that is no longer
# running are cleaned the same way. A watchdog ends the drill after TIME_LIMIT_S.
#
# Output: tests/lib/suite.sh's ok / not_ok / check / diag / fatal; figures as "DRILL <drill>
# <figure> <value>" (run-all.sh's table reads them). dr_done ends the script (exit 1 if anything
# failed).
# Set DRILL_KEEP=1 to keep the temp dir ($T) with every log; it is kept anyway when a check failed.
# shellcheck disable=SC2034 # variables used by the sourcing scripts

set -u

DR_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DR_REPO=$(cd "$DR_HERE/../.." && pwd)
# shellcheck source=tests/lib/suite.sh
. "$DR_REPO/tests/lib/suite.sh"
# shellcheck source=haproxy/zookeeper.sh
. "$DR_REPO/haproxy/zookeeper.sh"
BUILD=${BUILD:-$DR_REPO/build}
[[ $BUILD == /* ]] || BUILD=$DR_REPO/$BUILD
DR_CLIENT=$BUILD/tests/drill-client
DR_PREFIX=sfd$$
EPOCH_MS=1704067200000

PORT=8080
declare -A DR_IP=([p1]=10.213.0.11 [p2]=10.213.0.12 [p3]=10.213.0.13 [c]=10.213.0.50
	[z1]=10.213.0.21 [z2]=10.213.0.22 [z3]=10.213.0.23 [z4]=10.213.0.24 [z5]=10.213.0.25)
# the proxies, in the fleet's order (the keepalived render takes them in this order)
DR_PROXIES=(p1 p2 p3)
# each proxy's own VIP, and the VIPs as the client's list (index 0, 1, 2 = p1, p2, p3)
declare -A DR_VIP=([p1]=10.213.0.100 [p2]=10.213.0.101 [p3]=10.213.0.102)
declare -A DR_VIX=([p1]=0 [p2]=1 [p3]=2)
DR_VIPS=10.213.0.100,10.213.0.101,10.213.0.102
# the health watcher's hold-downs in the drills: short, so a recovered proxy's VIP comes back
# within a drill (production defaults: keepalived/health_watch.sh)
DR_HOLD_DOWN_MS=1500
DR_FLAP_HOLD_DOWN_MS=4000
# drill lease settings (SPEC: short, so the drills stay short): ZooKeeper tickTime 200 ms makes
# 400..4000 ms negotiable
DR_SESSION_MS=2000
DR_MARGIN_MS=500
DR_TICK_MS=200

T=
# the names these had before tests/lib/suite.sh
declare -n dr_name=suite_name dr_passed=suite_passed dr_failed=suite_failed
dr_pids=()     # every process we started, as PID:STARTTIME (each one leads its own process group)
dr_hosts=()    # namespaces created, by host name
DR_ZK_HOSTS=
DR_ZK_N=0
dr_watchdog=

# figure NAME VALUE: the drills' figures are "DRILL <drill> NAME VALUE" lines
figure() { printf 'DRILL %s %s %s\n' "$suite_name" "$1" "$2"; }

ns() { printf '%s-%s\n' "$DR_PREFIX" "$1"; }
# nsx HOST CMD...: run CMD inside HOST's namespace
nsx() { local h=$1; shift; ip netns exec "$DR_PREFIX-$h" "$@"; }

# now: sets NOW_MONO (us) and NOW_WALL (us), the clocks the client logs use
NOW_MONO=0 NOW_WALL=0
now() { read -r NOW_MONO NOW_WALL < <("$DR_CLIENT" now); }
# ev NAME: marks an event; sets EV_MONO / EV_WALL (us) and appends to $T/events
EV_MONO=0 EV_WALL=0
ev() {
	now
	EV_MONO=$NOW_MONO EV_WALL=$NOW_WALL
	printf '%s %s %s\n' "$1" "$EV_MONO" "$EV_WALL" >>"$T/events"
	diag "event $1 at mono ${EV_MONO} us"
}
ms_since() { now; echo $(((NOW_MONO - $1) / 1000)); }

# dr_ours PID:STARTTIME: that very process is still alive
dr_ours() { proc_alive "${1%%:*}" && [[ $(proc_starttime "${1%%:*}") == "${1#*:}" ]]; }

# dr_spawn HOST NAME CMD...: run CMD in HOST's namespace in its own session (pgid == pid),
# stdout+stderr to $T/HOST/NAME.log; records the PID and leaves it in DR_PID.
DR_PID=
dr_spawn() {
	local h=$1 name=$2 pf
	shift 2
	mkdir -p "$T/$h"
	pf=$T/$h/$name.spid
	rm -f "$pf"
	# shellcheck disable=SC2016
	setsid ip netns exec "$DR_PREFIX-$h" bash -c 'echo $$ >"$1.tmp" && mv -f "$1.tmp" "$1"; shift; exec "$@"' \
		spawn "$pf" "$@" >>"$T/$h/$name.log" 2>&1 </dev/null &
	disown "$!" 2>/dev/null # no "Killed" job notices when a drill kills it
	local i
	for ((i = 0; i < 300; i++)); do [[ -s $pf ]] && break; sleep 0.01; done
	read -r DR_PID <"$pf" 2>/dev/null || { DR_PID=; return 1; }
	dr_pids+=("$DR_PID:$(proc_starttime "$DR_PID")")
}

# dr_ns_purge NS: kill what is left inside one of our namespaces, delete it
dr_ns_purge() {
	local n=$1 pids i
	for i in 1 2 3; do
		pids=$(ip netns pids "$n" 2>/dev/null | tr '\n' ' ')
		[[ -z ${pids// /} ]] && break
		# shellcheck disable=SC2086
		kill -CONT $pids 2>/dev/null
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null
		sleep 0.1
	done
	ip netns del "$n" 2>/dev/null
}

# namespaces of our prefix whose drill is gone (crashed, SIGKILLed): clean them
dr_clean_stale() {
	local n pid cmd
	while read -r n _; do
		[[ $n =~ ^sfd([0-9]+)- ]] || continue
		pid=${BASH_REMATCH[1]}
		[[ $pid == "$$" ]] && continue
		if proc_alive "$pid"; then
			cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)
			[[ $cmd == *drills/* ]] && continue
		fi
		diag "removing stale namespace $n"
		dr_ns_purge "$n"
	done < <(ip netns list 2>/dev/null)
}

dr_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[[ -n $dr_watchdog ]] && kill "$dr_watchdog" 2>/dev/null
	dr_teardown
	wait 2>/dev/null
	if [[ -n $T ]]; then
		if ((rc != 0 || suite_failed > 0)) || [[ ${DRILL_KEEP:-0} == 1 ]]; then
			echo "# kept $T" >&2
		else
			rm -rf "$T"
		fi
	fi
	exit "$rc"
}

# dr_teardown: every process and namespace of the drill gone, its logs kept in $T (the cleanup's
# first half; the chaos soak calls it before its checker, so the checker has the host to itself)
dr_teardown() {
	local pid h i
	# everything we started, by PID (checked against its start time), in parallel: TERM first,
	# then wait, then KILL
	for pid in "${dr_pids[@]}"; do
		dr_ours "$pid" || continue
		kill -CONT -- "-${pid%%:*}" 2>/dev/null
		kill -TERM -- "-${pid%%:*}" 2>/dev/null
	done
	for ((i = 0; i < 150; i++)); do
		local left=0
		for pid in "${dr_pids[@]}"; do dr_ours "$pid" && left=1 && break; done
		((left)) || break
		sleep 0.02
	done
	for pid in "${dr_pids[@]}"; do dr_ours "$pid" && kill -KILL -- "-${pid%%:*}" 2>/dev/null; done
	# the ZooKeeper servers were among them: this only removes their pid files
	[[ -n $DR_ZK_DIR ]] && zk_stop_all "$DR_ZK_DIR" >/dev/null 2>&1
	# whatever is still inside our namespaces (HAProxy children, scripts keepalived ran), then
	# the namespaces themselves: the veths and the bridge go with them
	for h in "${dr_hosts[@]}"; do dr_ns_purge "$DR_PREFIX-$h"; done
	dr_pids=() dr_hosts=()
}

# dr_done: the history checker (tests/chaos/check.c) over everything every client of the drill
# received, judged against the proxies' own lease lines (no ID outside a lease window of the proxy
# that served it, none after its fence), and the drill's picture in build/drills/<drill>/
# (report.html: IDs/s per proxy, errors, the events, VIP owners, lease states); then the summary.
DR_CHECKER=$BUILD/chaos/check
DR_CLIENT_LOGS=()
# a drill with another ID layout sets this (SEQ_BITS:WORKER_BITS[:EPOCH_MS], the checker's --layout)
DR_LAYOUT=12:10
dr_done() {
	dr_history
	suite_done
}
dr_history() {
	local out=$BUILD/drills/$suite_name h args=() c k
	declare -A H=()
	if [[ ! -x $DR_CHECKER ]]; then
		not_ok "the history checker is built ($DR_CHECKER: make $DR_CHECKER)"
		return
	fi
	((${#DR_CLIENT_LOGS[@]})) || return 0
	for h in "${DR_PROXIES[@]}"; do
		# run.log, not haproxy.log: HAProxy's stderr has every lease line too, and the "stopped"
		# line of a worker's exit only goes there (no Lua runs to hand it to the log by then)
		[[ -f $T/$h/run.log ]] && args+=(--proxy "$h=$T/$h/run.log")
		[[ -f $T/$h/vrrp-notify.log ]] && args+=(--notify "$T/$h/vrrp-notify.log")
	done
	for c in "${DR_CLIENT_LOGS[@]}"; do args+=(--client "$c"); done
	rm -rf "$out"
	mkdir -p "$out"
	"$DR_CHECKER" --layout "$DR_LAYOUT" --events "$T/events" "${args[@]}" --timeline "$out/timeline" >"$out/check.out" 2>"$out/check.err"
	while read -r tag k v; do [[ $tag == CHAOS ]] && H[$k]=$v; done <"$out/check.out"
	if [[ -z ${H[ids_checked]:-} ]]; then
		not_ok "the history checker reads the drill's history ($(head -n 1 "$out/check.err"))"
		return
	fi
	for k in fence_violations lease_violations header_mismatches; do
		figure "$k" "${H[$k]}"
		check "the history checker: $k ${H[$k]} over ${H[ids_checked]} IDs (want 0)" test "${H[$k]}" = 0
	done
	[[ ${H[unjudged_ids]:-0} != 0 ]] && diag "${H[unjudged_ids]} IDs came from nodes without a proxy log (not judged)"
	if lua5.4 "$DR_REPO/tests/chaos/report.lua" "$out/timeline" "$out/report.html" --title "drill $suite_name" 2>"$out/report.err"; then
		diag "picture: $out/report.html"
	else
		not_ok "the drill's picture is written ($(head -n 1 "$out/report.err"))"
	fi
}

# dr_build_client: builds tests/drills/client.c into $DR_CLIENT when missing or older
dr_build_client() {
	if [[ ! -x $DR_CLIENT || $DR_HERE/client.c -nt $DR_CLIENT ]]; then
		mkdir -p "$(dirname "$DR_CLIENT")"
		# built aside and renamed: concurrent drills never run a half-written binary
		if ! cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow "$DR_HERE/client.c" \
			-o "$DR_CLIENT.$$" || ! mv -f "$DR_CLIENT.$$" "$DR_CLIENT"; then
			rm -f "$DR_CLIENT.$$"
			return 1
		fi
	fi
}

# dr_init NAME [TIME_LIMIT_S=150]
dr_init() {
	suite_name=$1
	local limit=${2:-150} tool
	if [[ $(id -u) != 0 ]]; then
		echo "not ok $suite_name: the drills need root (network namespaces)"
		exit 1
	fi
	for tool in ip keepalived haproxy curl socat lua5.4 lua5.3 java setsid cc; do
		command -v "$tool" >/dev/null 2>&1 || { echo "not ok $suite_name: $tool is installed"; exit 1; }
	done
	[[ -f $BUILD/lua5.3/snowflake/core.so ]] ||
		{ echo "not ok $suite_name: the Lua 5.3 module is built ($BUILD/lua5.3/snowflake/core.so; make all)"; exit 1; }
	T=$(mktemp -d "${TMPDIR:-/tmp}/$DR_PREFIX-$suite_name.XXXXXX") || { echo "not ok $suite_name: mktemp"; exit 1; }
	: >"$T/events"
	trap dr_cleanup EXIT
	trap 'exit 130' INT
	trap 'echo "not ok $suite_name: stopped (time limit or signal)"; exit 143' TERM
	dr_clean_stale
	local load
	read -r load _ </proc/loadavg
	diag "$suite_name: load average $load on $(nproc) cores (the timing figures assume a host that is not saturated)"
	dr_build_client || { echo "not ok $suite_name: the drill client builds"; exit 1; }
	# the watchdog: polls once a second, so it never outlives us by more than that
	(
		for ((i = 0; i < limit; i++)); do
			sleep 1
			kill -0 $$ 2>/dev/null || exit 0
		done
		echo "# $suite_name: time limit of ${limit}s reached" >&2
		kill -TERM $$ 2>/dev/null
	) &
	dr_watchdog=$!
}

# ---------------------------------------------------------------- topology

# topo_up HOST...: the switch namespace with its bridge, and one namespace per host, each with
# eth0 on the bridge and its 10.213.0.x address; loopback up; IPv6 off (no stray solicitations)
topo_up() {
	local sw=$DR_PREFIX-sw h n
	ip netns add "$sw" || return 1
	dr_hosts+=(sw)
	ip -n "$sw" link set lo up
	ip -n "$sw" link add br0 type bridge || return 1
	ip netns exec "$sw" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip -n "$sw" link set br0 up
	for h in "$@"; do
		n=$DR_PREFIX-$h
		[[ -n ${DR_IP[$h]:-} ]] || { echo "topo_up: unknown host $h" >&2; return 1; }
		ip netns add "$n" || return 1
		dr_hosts+=("$h")
		ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
		ip -n "$n" link set lo up
		# created directly inside the two namespaces: the root namespace never sees them
		ip link add "v-$h" netns "$sw" type veth peer name eth0 netns "$n" || return 1
		ip -n "$sw" link set "v-$h" master br0 up
		ip -n "$n" addr add "${DR_IP[$h]}/24" dev eth0
		ip -n "$n" link set eth0 up
	done
}

# tcp_open HOST ADDR PORT: a TCP connection from HOST's namespace succeeds (1 s bound)
tcp_open() {
	# shellcheck disable=SC2016
	nsx "$1" timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' tcp "$2" "$3" 2>/dev/null
}

# ---------------------------------------------------------------- ZooKeeper on the bridge

# Each server is a host on the bridge (z1 .21, z2 .22, z3 .23): the product's launcher
# (haproxy/zookeeper.sh) starts it inside that host's namespace (ZK_CMD_PREFIX) on the host's
# address (ZK_BIND), client port 2181 (an ensemble's quorum and election ports 2888 and 3888).
# Every server's instance directory lies under $DR_ZK_DIR ($T/zk): dr_zk_dir K.
DR_ZK_DIR=

# dr_zk_dir K: server zK's instance directory
dr_zk_dir() { if ((DR_ZK_N == 1)); then echo "$DR_ZK_DIR"; else echo "$DR_ZK_DIR/n$1"; fi; }

# dr_zk_track: every running server recorded for the cleanup, with the drill's other processes
dr_zk_track() {
	local k pid
	for ((k = 1; k <= DR_ZK_N; k++)); do
		pid=$(zk_pid "$(dr_zk_dir "$k")") || continue
		dr_pids+=("$pid:$(proc_starttime "$pid")")
	done
}

# dr_zk_up N: N=1 standalone z1, N=3 or 5 an ensemble z1..zN; sets DR_ZK_HOSTS once every server
# serves
dr_zk_up() {
	local n=$1 k addrs=() cs
	DR_ZK_N=$n DR_ZK_DIR=$T/zk DR_ZK_HOSTS=
	for ((k = 1; k <= n; k++)); do addrs+=("${DR_IP[z$k]}"); done
	local -x ZK_BIND="${addrs[*]}" ZK_CMD_PREFIX="ip netns exec $DR_PREFIX-z%n" ZK_TICK_MS=$DR_TICK_MS \
		ZK_FORCE_SYNC=no
	if ((n == 1)); then
		cs=$(zk_start "$DR_ZK_DIR" 2181)
	else
		cs=$(ZK_PORTS="2181 2888 3888" ZK_SYNC_LIMIT=5 ZK_EXTRA_CFG=cnxTimeout=1000 \
			zk_ensemble_start "$DR_ZK_DIR" "$n")
	fi || return 1
	dr_zk_track
	DR_ZK_HOSTS=$cs
}

# dr_zk_start K: start ensemble server zK again (returns once its JVM runs)
dr_zk_start() {
	zk_node_start "$DR_ZK_DIR" "$1" --no-wait || return 1
	dr_zk_track
}

# dr_zk_kill K: SIGKILL server zK (a crash), wait until it is gone
dr_zk_kill() { zk_kill "$(dr_zk_dir "$1")"; }

# dr_zk_pid K: server zK's PID (== its process group)
dr_zk_pid() { zk_pid "$(dr_zk_dir "$1")"; }

# dr_zk_mode K: leader | follower | standalone | no-quorum | paused | down
# (no subshell for the directory: the quorum wait polls this)
dr_zk_mode() { if ((DR_ZK_N == 1)); then zk_mode "$DR_ZK_DIR"; else zk_mode "$DR_ZK_DIR/n$1"; fi; }

# dr_zk_serving_count: how many servers serve (leader/follower/standalone); in an ensemble, 0
# unless one of them is the leader (a server that is starting or still syncing may already call
# itself a follower)
dr_zk_serving_count() {
	local k c=0 m leader=0
	for ((k = 1; k <= DR_ZK_N; k++)); do
		m=$(dr_zk_mode "$k")
		[[ $m == leader || $m == follower || $m == standalone ]] && c=$((c + 1))
		[[ $m == leader || $m == standalone ]] && leader=1
	done
	((leader)) || c=0
	echo "$c"
}

# dr_zk_wait_quorum TIMEOUT_MS: a majority serves. DR_ZK_NO_QUORUM_MONO: when the last poll that
# still saw no majority began (the quorum formed after it: a lower bound for timing)
DR_ZK_NO_QUORUM_MONO=0
dr_zk_wait_quorum() {
	local end began
	now
	end=$((NOW_MONO + $1 * 1000))
	while :; do
		now
		began=$NOW_MONO
		(($(dr_zk_serving_count) > DR_ZK_N / 2)) && return 0
		DR_ZK_NO_QUORUM_MONO=$began
		now
		((NOW_MONO >= end)) && return 1
		sleep 0.02
	done
}

# dr_zk_leader: the number of the ensemble's leader
dr_zk_leader() { zk_ensemble_leader "$DR_ZK_DIR"; }

# ---------------------------------------------------------------- HAProxy hosts

# hap_config HOST [LUA_SECTION_LINE...]: the host's Lua config: the lease on the drill
# ZooKeeper, the other proxies as its peers (http.peers)
hap_config() {
	local h=$1 p peers=
	shift
	mkdir -p "$T/$h/state"
	for p in "${DR_PROXIES[@]}"; do [[ $p != "$h" ]] && peers+="$p = \"${DR_IP[$p]}:$PORT\", "; done
	lua_config "$T/$h/snowflake.conf.lua" \
		"lease = { zk_hosts = \"$DR_ZK_HOSTS\", root = \"/snowflake/drill\", node_name = \"$h\", session_timeout_ms = $DR_SESSION_MS, margin_ms = $DR_MARGIN_MS, reclaim_delay_ms = 1000 }" \
		"state = { dir = \"$T/$h/state\" }" "http = { peers = { $peers} }" "$@"
}

# hap_start HOST [VAR=value...]: haproxy/run.sh in HOST's namespace, bound to 0.0.0.0:8080 (so it
# answers on the host's own address and on every VIP it holds); PID in $T/HOST/run.pid.
# HAProxy's log (every lease state change, every peer check change) goes to a UDP receiver on
# the host's loopback, written to $T/HOST/haproxy.log, apart from run.sh's own output in
# $T/HOST/run.log. One thread a proxy: three proxies, the client and the ensemble share 2 cores.
hap_start() {
	local h=$1
	shift
	if [[ ! -s $T/$h/syslog.spid ]]; then
		dr_spawn "$h" syslog socat -u UDP-RECV:5140,bind=127.0.0.1 "OPEN:$T/$h/haproxy.log,creat,append" || return 1
	fi
	dr_spawn "$h" run env RUN_DIR="$T/$h" PORT=$PORT BIND_ADDR=0.0.0.0 CONFIG="$T/$h/snowflake.conf.lua" \
		ZK_HOSTS="$DR_ZK_HOSTS" THREADS="${DR_THREADS:-1}" LOG_TARGET=127.0.0.1:5140 "$@" "$DR_REPO/haproxy/run.sh" || return 1
	echo "$DR_PID" >"$T/$h/run.pid"
}

# hap_stop HOST: what an operator's `systemctl stop` does: SIGTERM to run.sh, which stops
# HAProxy (soft stop: answers in flight finish, the lease is released) and waits for it (10 s)
hap_stop() {
	local rp i
	read -r rp <"$T/$1/run.pid" 2>/dev/null || return 1
	kill -TERM "$rp" 2>/dev/null
	for ((i = 0; i < 500; i++)); do proc_alive "$rp" || return 0; sleep 0.02; done
	return 1
}

# hap_code HOST PATH: the HTTP status of PATH on HOST's own HAProxy (from inside HOST, 1 s bound)
hap_code() {
	nsx "$1" curl -s -o /dev/null -w '%{http_code}' --noproxy '*' --max-time 1 "http://127.0.0.1:$PORT$2" 2>/dev/null
}
hap_get() {
	nsx "$1" curl -s --noproxy '*' --max-time 1 "http://127.0.0.1:$PORT$2" 2>/dev/null
}

# hap_wait HOST CODE TIMEOUT_MS: /health on HOST answers CODE
hap_wait() {
	local end
	now
	end=$((NOW_MONO + $3 * 1000))
	while :; do
		[[ $(hap_code "$1" /health) == "$2" ]] && return 0
		now
		((NOW_MONO >= end)) && return 1
		sleep 0.05
	done
}

# hap_worker HOST: the worker ID HOST's /health reports
hap_worker() {
	local b
	b=$(hap_get "$1" /health)
	[[ $b =~ \"worker\":(-?[0-9]+) ]] && echo "${BASH_REMATCH[1]}"
}

# hap_metric HOST SERIES: the value of one /metrics series (e.g. 'snowflake_handoffs_served_total'
# or 'snowflake_handoffs_total{reason="parked"}'); 0 when absent
hap_metric() {
	hap_get "$1" /metrics | awk -v s="$2" '$1 == s { v = $2 } END { print v + 0 }'
}
# hap_handoffs HOST: every request HOST handed to a peer (all reasons)
hap_handoffs() {
	hap_get "$1" /metrics | awk '$1 ~ /^snowflake_handoffs_total\{/ { n += $2 } END { print n + 0 }'
}

hap_master() { local p; read -r p <"$T/$1/haproxy.pid" 2>/dev/null && [[ $p =~ ^[0-9]+$ ]] && echo "$p"; }
# hap_pids HOST: the master and its children (the workers)
hap_pids() {
	local m f st pid pp s
	m=$(hap_master "$1") || return 1
	echo "$m"
	for f in /proc/[0-9]*/stat; do
		{ read -r st <"$f"; } 2>/dev/null || continue
		pid=${f#/proc/}
		pid=${pid%/stat}
		st=${st##*) }
		read -r s pp _ <<<"$st"
		[[ $pp == "$m" && $s != Z ]] && echo "$pid"
	done
	return 0
}

# hap_cli HOST CMD...: one command on HOST's HAProxy CLI
hap_cli() {
	local h=$1
	shift
	printf '%s\n' "$*" | timeout 5 socat -t 3 - "UNIX-CONNECT:$T/$h/haproxy.sock" 2>/dev/null
}

# hap_peers_up HOST: HOST's handoff backend sees every peer UP (snowflake status)
hap_peers_up() {
	local st
	st=$(hap_cli "$1" snowflake status)
	[[ $st == *"peers: $((${#DR_PROXIES[@]} - 1))"* && $st != *" DOWN "* && $st != *" MAINT"* ]]
}

# peer_seen_as HOST STATE: every other proxy's handoff backend shows HOST as STATE (UP or DOWN)
peer_seen_as() {
	local p
	for p in "${DR_PROXIES[@]}"; do
		[[ $p == "$1" ]] && continue
		hap_cli "$p" snowflake status | grep -q "^peer $1: [0-9.:]* $2 " || return 1
	done
}

# ---------------------------------------------------------------- keepalived

# ka_render HOST: keepalived.conf for HOST: the whole fleet, one VRRP instance a VIP
ka_render() {
	local h=$1 p args=()
	for p in "${DR_PROXIES[@]}"; do args+=(--proxy "$p=${DR_IP[$p]}" --vip "${DR_VIP[$p]}/24"); done
	"$DR_REPO/keepalived/render.sh" --host "$h" --iface eth0 "${args[@]}" \
		--health-url "http://127.0.0.1:$PORT/health" \
		--state-file "$T/$h/health.state" --notify-log "$T/$h/vrrp-notify.log" >"$T/$h/keepalived.conf"
}

# ka_start HOST: render, config-test, start the health watcher and keepalived in HOST
ka_start() {
	local h=$1
	ka_render "$h" || return 1
	# the config test; it exits 0 for a file it skips, so it must also print nothing
	if ! keepalived -t -f "$T/$h/keepalived.conf" >"$T/$h/keepalived-t.log" 2>&1 || [[ -s $T/$h/keepalived-t.log ]]; then
		cat "$T/$h/keepalived-t.log" >&2
		return 1
	fi
	dr_spawn "$h" watch env SF_WATCH_HOLD_DOWN_MS=$DR_HOLD_DOWN_MS SF_WATCH_FLAP_HOLD_DOWN_MS=$DR_FLAP_HOLD_DOWN_MS \
		"$DR_REPO/keepalived/health_watch.sh" "http://127.0.0.1:$PORT/health" \
		"$T/$h/health.state" "$T/$h/health-watch.log" || return 1
	dr_spawn "$h" keepalived keepalived -n -l -D -G -P -f "$T/$h/keepalived.conf" \
		-p "$T/$h/keepalived.pid" -r "$T/$h/keepalived-vrrp.pid" -c "$T/$h/keepalived-check.pid" || return 1
}

# vip_holders VIP: the hosts that have VIP on eth0 ("none" when no one does)
vip_holders() {
	local h out=
	for h in "${DR_PROXIES[@]}"; do
		ip -n "$DR_PREFIX-$h" -4 addr show dev eth0 2>/dev/null | grep -q " $1/" && out+="${out:+ }$h"
	done
	echo "${out:-none}"
}
# vip_of_on OWNER HOST: OWNER's VIP is on HOST, and only there
vip_of_on() { [[ $(vip_holders "${DR_VIP[$1]}") == "$2" ]]; }
# vip_of_moved OWNER: OWNER's VIP is on exactly one other proxy
vip_of_moved() {
	local h
	h=$(vip_holders "${DR_VIP[$1]}")
	[[ $h != none && $h != "$1" && $h != *" "* ]]
}
# vips_home: every VIP is on its owner only
vips_home() {
	local p
	for p in "${DR_PROXIES[@]}"; do vip_of_on "$p" "$p" || return 1; done
}
# vips_map: "p1:p1 p2:p2 p3:p1" (owner:holders), for messages
vips_map() {
	local p out=
	for p in "${DR_PROXIES[@]}"; do out+="${out:+ }$p:$(vip_holders "${DR_VIP[$p]}" | tr ' ' '+')"; done
	echo "$out"
}

# health_up HOST: HOST's watcher reports it up (the state keepalived tracks)
health_up() { [[ $(cat "$T/$1/health.state" 2>/dev/null) == 0 ]]; }

# notify_time HOST STATE OWNER [AFTER_WALL_MS]: unix ms of HOST's first notify line for OWNER's
# VIP instance entering STATE after the given time (empty when none)
notify_time() {
	awk -v s="$2" -v inst="sf_vip_$3" -v after="${4:-0}" '$6 == s && $5 == inst && $2 >= after { print $2; exit }' \
		"$T/$1/vrrp-notify.log" 2>/dev/null
}
# vip_moves OWNER [AFTER_WALL_MS]: how many times OWNER's VIP got a new master after the given
# time (MASTER lines on any host, in time order). When the master gives up, every backup's timer
# runs out within ~advert_int (0.1 s): on a busy host a lower-priority backup can win by a few
# ms and hand over to the higher one at its next advert. MASTER lines within ELECTION_MS of the
# previous one are that one election settling, not another move (vip_contests counts them).
VIP_ELECTION_MS=${VIP_ELECTION_MS:-300}
vip_notify_lines() {
	local p
	for p in "${DR_PROXIES[@]}"; do cat "$T/$p/vrrp-notify.log" 2>/dev/null; done |
		awk -v inst="sf_vip_$1" -v after="${2:-0}" '$6 == "MASTER" && $5 == inst && $2 >= after' | sort -k2,2n
}
vip_moves() {
	vip_notify_lines "$@" | awk -v w="$VIP_ELECTION_MS" '!n || $2 - last > w { n++ } { last = $2 } END { print n + 0 }'
}
# vip_contests OWNER [AFTER_WALL_MS]: elections a lower-priority backup won for a moment
vip_contests() {
	vip_notify_lines "$@" | awk -v w="$VIP_ELECTION_MS" 'n && $2 - last <= w { c++ } { n++; last = $2 } END { print c + 0 }'
}
# vip_moves_reach OWNER AFTER_WALL_MS N: the notify logs show at least N moves. keepalived runs
# the notify hook in a process of its own after it has added the address, so on a loaded host
# the line can land a little after the address is seen: wait for the line, not for the address.
vip_moves_reach() { (($(vip_moves "$1" "$2") >= $3)); }

# dr_stable: the fleet at rest: every VIP on its owner, every watcher up, every proxy's peers UP
dr_stable() {
	local p
	vips_home || return 1
	for p in "${DR_PROXIES[@]}"; do health_up "$p" || return 1; done
	for p in "${DR_PROXIES[@]}"; do hap_peers_up "$p" || return 1; done
}

# dr_standard_up [N_ZK=3] [LUA_SECTION...]: the usual drill set-up. A ZooKeeper ensemble, the
# three proxies serving, their keepalived started, every VIP on its owner. Ends in "ok" lines,
# or a fatal "not ok".
dr_standard_up() {
	local nzk=${1:-3} h k zs=()
	shift
	for ((k = 1; k <= nzk; k++)); do zs+=("z$k"); done
	topo_up "${DR_PROXIES[@]}" c "${zs[@]}" || fatal "the namespaces and the bridge are set up"
	dr_zk_up "$nzk" || fatal "ZooKeeper ($nzk server(s)) serves on the bridge"
	for h in "${DR_PROXIES[@]}"; do
		hap_config "$h" "$@"
		hap_start "$h" "${DR_HAP_ENV[@]//%h/$h}" || fatal "run.sh starts on $h"
	done
	for h in "${DR_PROXIES[@]}"; do
		hap_wait "$h" 200 30000 || { tail -n 30 "$T/$h/run.log" >&2; fatal "$h's /health answers 200"; }
	done
	for h in "${DR_PROXIES[@]}"; do ka_start "$h" || fatal "keepalived starts on $h"; done
	wait_until 15000 dr_stable || fatal "every VIP on its owner, every proxy healthy with its peers UP ($(vips_map))"
	for h in "${DR_PROXIES[@]}"; do tcp_open c "${DR_VIP[$h]}" "$PORT" || fatal "the client host reaches $h's VIP"; done
	now
	DR_UP_WALL_MS=$((NOW_WALL / 1000))
	ok "topology up: p1 (worker $(hap_worker p1)), p2 (worker $(hap_worker p2)), p3 (worker $(hap_worker p3)) each on its own VIP; ZooKeeper $DR_ZK_HOSTS"
}
DR_HAP_ENV=()
# when the fleet was first at rest (unix ms): VIP moves after it were not the start-up's
DR_UP_WALL_MS=0

# dr_load DURATION_MS [RATE=300] [client options...]: the fleet's callers: 6 slots (two a VIP),
# RATE logical requests/s each, round robin over the three VIPs, a failed attempt retried at
# once on the next VIP; log $T/vip.log, PID in LOAD_PID
LOAD_PID=
dr_load() {
	local dur=$1 rate=${2:-300}
	shift 2 2>/dev/null || shift $#
	client_start vip "$DR_VIPS" "$dur" -c 6 -r "$rate" "$@" || fatal "the client starts"
	LOAD_PID=$CLIENT_PID
}

# dr_pick [HOST=p1]: right before a drill's event, wait (8 s at most) for the fleet at rest and
# name the proxy acted on (ACT, its worker W_ACT, its VIP's index ACT_VIX) and every proxy's
# worker (W[host]). A VIP that moved on its own under load is reported.
ACT='' W_ACT='' ACT_VIX=''
declare -A W=()
dr_pick() {
	local p moves=0
	wait_until 8000 dr_stable || fatal "the fleet at rest before the event ($(vips_map); health p1 $(cat "$T/p1/health.state") p2 $(cat "$T/p2/health.state") p3 $(cat "$T/p3/health.state"))"
	for p in "${DR_PROXIES[@]}"; do moves=$((moves + $(vip_moves "$p" "$DR_UP_WALL_MS"))); done
	figure vip_moves_before_event "$moves"
	((moves > 0)) && diag "VIPs moved $moves time(s) on their own before the event"
	ACT=${1:-p1} ACT_VIX=${DR_VIX[${1:-p1}]}
	for p in "${DR_PROXIES[@]}"; do W[$p]=$(hap_worker "$p"); done
	W_ACT=${W[$ACT]}
	diag "acting on $ACT (worker $W_ACT, VIP ${DR_VIP[$ACT]}); workers: p1 ${W[p1]} p2 ${W[p2]} p3 ${W[p3]}"
}

# dr_vip_moved WHAT EVENT_WALL_US: ACT's VIP reached a survivor within 3 s of the event (SBY: that
# survivor), and the figure vip_move_ms (from the event to the survivor's MASTER notification)
SBY=''
dr_vip_moved() {
	local t_master
	if wait_until 3000 vip_of_moved "$ACT"; then
		SBY=$(vip_holders "${DR_VIP[$ACT]}")
		ok "$ACT's VIP moved to $SBY $1"
		t_master=$(notify_time "$SBY" MASTER "$ACT" $(($2 / 1000)))
		[[ -n $t_master ]] && figure vip_move_ms $((t_master - $2 / 1000))
	else
		not_ok "$ACT's VIP moved to a survivor $1 (holders: $(vip_holders "${DR_VIP[$ACT]}"))"
	fi
	return 0
}

# dr_vip_came_back HEALTHY_MONO_US [FIGURE=vip_return_ms]: ACT's VIP returned to it after the
# hold-down; the figure: from HEALTHY_MONO_US (when ACT answered /health 200 again) to then
dr_vip_came_back() {
	if wait_until $((DR_FLAP_HOLD_DOWN_MS + 6000)) vip_of_on "$ACT" "$ACT"; then
		ok "$ACT's VIP came back to it after the hold-down"
		figure "${2:-vip_return_ms}" "$(ms_since "$1")"
	else
		not_ok "$ACT's VIP came back to it after the hold-down ($(vips_map))"
	fi
}

# dr_after_above_before WHAT FIGURE: after analyze with --worker-phase before:... and after:...,
# the "after" phase has IDs and every one lies above every ID of the "before" phase; the gap
# between them (ms) as FIGURE
dr_after_above_before() {
	if [[ ${A[wp_after_ids]} != 0 && ${A[wp_before_ids]} != 0 ]] && ((A[wp_after_min_id] > A[wp_before_max_id])); then
		ok "$1: ${A[wp_after_ids]} IDs after all lie above ${A[wp_before_ids]} before (gap $((A[wp_after_min_ts] - A[wp_before_max_ts])) ms)"
		figure "$2" $((A[wp_after_min_ts] - A[wp_before_max_ts]))
	else
		not_ok "$1: IDs after (${A[wp_after_ids]} from ${A[wp_after_min_id]}) above before (${A[wp_before_ids]} up to ${A[wp_before_max_id]})"
	fi
}

# dr_window_ok WINDOW_MS TARGET_MS: the client-visible error window is within the target
dr_window_ok() {
	if awk -v w="$1" -v t="$2" 'BEGIN { exit !(w <= t) }'; then
		ok "client-visible error window $1 ms <= $2 ms"
	else
		not_ok "client-visible error window $1 ms <= $2 ms"
	fi
}

# dr_zero FIGURE VALUE WHAT: the figure, and a check that it is 0
dr_zero() {
	figure "$1" "$2"
	if [[ $2 == 0 ]]; then ok "$3: $1 0"; else not_ok "$3: $1 $2 (want 0)"; fi
}

# client_start NAME ADDRS DURATION_MS [client options...]: the drill client in the client host,
# log in $T/NAME.log; PID in CLIENT_PID. ADDRS: one address or a comma-separated list.
CLIENT_PID=
client_start() {
	local name=$1 addr=$2 dur=$3
	shift 3
	dr_spawn c "$name" "$DR_CLIENT" -a "$addr" -p "$PORT" -o "$T/$name.log" -d "$dur" -l "$name" "$@" || return 1
	CLIENT_PID=$DR_PID
	DR_CLIENT_LOGS+=("$T/$name.log")
}
# client_wait PID TIMEOUT_MS: until the client exits (it is bounded by its own -d)
client_wait() {
	local i
	for ((i = 0; i < $2 / 20; i++)); do proc_alive "$1" || return 0; sleep 0.02; done
	kill -TERM "$1" 2>/dev/null
	for ((i = 0; i < 100; i++)); do proc_alive "$1" || return 0; sleep 0.02; done
	return 1
}

# analyze [options] LOG...: runs analyze.lua; its "key value" lines land in the A map
declare -A A=()
analyze() {
	local k v
	A=()
	while read -r k v; do
		[[ $k == "#" ]] && { diag "$v"; continue; }
		A[$k]=$v
	done < <(lua5.4 "$DR_HERE/analyze.lua" "$@")
	[[ -n ${A[ids]:-} ]]
}

# the checks every drill ends with: zero duplicates, zero per-worker order violations
check_safety() {
	local what=$1
	if [[ ${A[dups]:-x} == 0 ]]; then ok "$what: no duplicate among ${A[ids]} IDs"; else not_ok "$what: ${A[dups]:-?} duplicate IDs"; fi
	if [[ ${A[order_violations]:-x} == 0 ]]; then ok "$what: every worker's IDs increase in issue order"; else not_ok "$what: ${A[order_violations]:-?} per-worker order violations"; fi
	figure duplicates "${A[dups]:-?}"
	figure order_violations "${A[order_violations]:-?}"
}

# vip_phase_args FROM_US TO_US: analyze's --vip-phase options, one a proxy's VIP (named by the
# proxy: vphase_<host>_window_ms, vphase_<host>_errors)
VIP_PHASE_ARGS=()
vip_phase_args() {
	local p
	VIP_PHASE_ARGS=()
	for p in "${DR_PROXIES[@]}"; do VIP_PHASE_ARGS+=(--vip-phase "$p:${DR_VIX[$p]}:$1:$2"); done
}
# other_vip_errors: after analyze with vip_phase_args, the failed attempts on every VIP but ACT's
other_vip_errors() {
	local p k n=0
	for p in "${DR_PROXIES[@]}"; do
		[[ $p == "$ACT" ]] && continue
		k=vphase_${p}_errors
		n=$((n + ${A[$k]:-0}))
	done
	echo "$n"
}

# dr_zk_broadcast_wall_ms AFTER_WALL_MS: when (unix ms, from the servers' logs) an ensemble
# leader elected after AFTER_WALL_MS started serving ("leading - broadcast": a quorum synced);
# empty when no log says so. The polls of dr_zk_wait_quorum take a second or more a round on
# a loaded host; the leader's own log line is the moment itself.
dr_zk_broadcast_wall_ms() {
	local k line t best=
	for ((k = 1; k <= DR_ZK_N; k++)); do
		while read -r line; do
			t=$(date -d "${line:0:19}.${line:20:3}" +%s%3N 2>/dev/null) || continue
			((t >= $1)) && [[ -z $best || $t -lt $best ]] && best=$t
		done < <(grep -h 'Peer state changed: leading - broadcast' "$(dr_zk_dir "$k")/zookeeper.log" 2>/dev/null)
	done
	echo "$best"
}
