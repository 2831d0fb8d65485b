# shellcheck shell=bash
# haproxy/zookeeper.sh: start and stop REAL ZooKeeper servers (Debian's `zookeeper` package) on this
# machine: the single node `make run` (haproxy/run.sh) starts, and the servers of the zk, http and
# drill suites and of the HTTP bench. A library: source it, then call the functions.
#
#   . haproxy/zookeeper.sh
#
# Each server lives under a directory the caller gives, logs to a file in that directory, and is
# stopped by its recorded PID / process group only (never by name). It binds ZK_BIND (127.0.0.1)
# and runs, like every probe of it (ss, the four-letter words), after the command ZK_CMD_PREFIX
# (none): the drills run their servers on the bridge of their network namespaces with
# ZK_BIND=10.213.0.21 ZK_CMD_PREFIX="ip netns exec <ns>".
#
# Single node:
#   cs=$(zk_start "$dir" [port])   # -> "ADDR:PORT" once the server answers `srvr`
#   zk_stop "$dir"                 # SIGTERM the process group, SIGKILL after ZK_STOP_TIMEOUT, wait for exit
#   zk_kill "$dir"                 # SIGKILL at once (crash)
#   zk_pause "$dir" / zk_resume "$dir"   # SIGSTOP / SIGCONT (a hung or partitioned server)
# N-node ensemble (three by default):
#   cs=$(zk_ensemble_start "$dir" 3)     # -> "ADDR1:P1,ADDR2:P2,ADDR3:P3" once all serve
#   zk_node_stop "$dir" 2; zk_node_kill "$dir" 3; zk_node_start "$dir" 2 [--wait-serving|--no-wait]
#   zk_node_pause / zk_node_resume "$dir" N; zk_node_mode "$dir" N (leader|follower|no-quorum|paused|down)
#   zk_proc_alive PID              # PID exists and has not finished exiting (any process, not only ZooKeeper)
#   zk_ensemble_leader "$dir" (prints N);  zk_ensemble_wait_quorum "$dir" [timeout_s]
#   zk_ensemble_stop "$dir"
# One server (a single node's dir, or an ensemble node's: "$dir/nK", see zk_node_dir):
#   zk_pid D (its PID == its process group); zk_mode D (as zk_node_mode); zk_ask D WORD [timeout_s]
#   (a four-letter word to it: its address, its port, under its command prefix)
# Helpers: zk_free_port [exclude...]; zk_4lw PORT ruok|srvr|stat|mntr|conf|cons|dump|... [timeout_s]
#   [ADDR=127.0.0.1] (both from the caller's own network namespace); zk_connect_string "$dir";
#   zk_node_port "$dir" N; zk_node_dir "$dir" N
# Cleanup (put it in an EXIT trap; idempotent, safe if nothing was started):
#   zk_stop_all "$root"            # stops every instance whose zk.pid lies under $root (in parallel)
#
# Knobs (environment, read at start time):
#   ZK_BIND (127.0.0.1)  the address a server binds (client, quorum and election ports). An
#                      ensemble: one address for every node, or one per node (space-separated)
#   ZK_CMD_PREFIX ()   command words put before the JVM and before every probe of it (word-split);
#                      "%n" in it becomes the node number (1 for a single node)
#   ZK_PORTS ()        an ensemble's "CLIENT QUORUM ELECTION" ports, the same on every node (for
#                      nodes with an address each); default: free ports on 127.0.0.1, all distinct
#   ZK_TICK_MS (200)   tickTime; the server clamps session timeouts to [2, 20] x tickTime unless
#                      ZK_MIN_SESSION_MS / ZK_MAX_SESSION_MS are set (=> 400..4000 ms by default)
#   ZK_INIT_LIMIT (50 ticks), ZK_SYNC_LIMIT (10 ticks)   ensemble only
#   ZK_FORCE_SYNC (yes)  fsync the transaction log ("no" is faster, still a real server)
#   ZK_EXTRA_CFG ()    more zoo.cfg lines (newline-separated), appended to every server's
#   ZK_START_TIMEOUT (30 s), ZK_STOP_TIMEOUT (10 s), ZK_LOG_LEVEL (INFO)
#   ZK_JAVA (java), ZK_JVM_FLAGS (replaces the default small/fast flags), ZK_JVM_EXTRA (appended)
#
# Layout of an instance directory D (the single-node dir, or D/nK for ensemble node K):
#   D/zoo.cfg  D/log4j.properties  D/data/  D/zookeeper.log (server log)  D/zk.out (JVM stdout/stderr)
#   D/zk.pid (pid == pgid, the JVM is a session leader)  D/zk.port (client port)  D/zk.addr (address)
#   D/zk.start (its start time in /proc/PID/stat: PID + start time identify it)
#   D/zk.prefix (command prefix, one line)  D/connect

ZK_MAIN_CLASS=org.apache.zookeeper.server.quorum.QuorumPeerMain

zk__log() { printf 'zookeeper.sh: %s\n' "$*" >&2; }

zk__now_ms() { local t; t=$(date +%s%N); printf '%s\n' $((t / 1000000)); }

# zk_proc_alive PID: PID exists and has not finished exiting (a zombie thread-group leader whose other
# threads still run, and still hold its sockets, counts as alive)
zk_proc_alive() {
	local st tasks
	{ read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
	st=${st##*) }
	[[ ${st%% *} != Z ]] && return 0
	tasks=(/proc/"$1"/task/*)
	((${#tasks[@]} > 1))
}

# Classpath as in /usr/share/zookeeper/bin/zkEnv.sh (zookeeper.jar; its manifest Class-Path pulls in
# jute, netty, slf4j-api, ...), minus /etc/zookeeper/conf (we bring our own log4j.properties), plus an
# slf4j binding: without one, slf4j falls back to NOP and the server logs nothing at all.
zk__classpath() {
	local cp=/usr/share/java/zookeeper.jar j
	if [[ ! -r $cp ]]; then
		zk__log "missing $cp (apt-get install zookeeper)"
		return 1
	fi
	for j in /usr/share/java/slf4j-log4j12.jar /usr/share/java/log4j-1.2.jar; do
		if [[ -r $j ]]; then cp+=":$j"; else zk__log "warning: $j missing, server log will be empty"; fi
	done
	printf '%s\n' "$cp"
}

# zk__place D ADDR PREFIX: where the instance in D runs: its address and its command prefix
zk__place() {
	printf '%s\n' "$2" >"$1/zk.addr"
	printf '%s\n' "$3" >"$1/zk.prefix"
}

# zk__in D CMD...: run CMD under D's command prefix (in the server's network namespace, say)
zk__in() {
	local d=$1 pre=()
	shift
	[[ -s $d/zk.prefix ]] && read -r -a pre <"$d/zk.prefix"
	"${pre[@]}" "$@"
}

# zk__addr D: the address of the instance in D, left in ZK__ADDR (no subshell: probes run often)
ZK__ADDR=
zk__addr() { ZK__ADDR=127.0.0.1; if [[ -s $1/zk.addr ]]; then read -r ZK__ADDR <"$1/zk.addr"; fi; }

# zk_free_port [exclude...]: a TCP port on 127.0.0.1 with no listener, below the kernel's ephemeral
# range (so an outgoing connection cannot grab it between now and bind), not in the exclude list.
zk_free_port() {
	local lo=20000 hi=32767 eph_lo p i ex bad
	if { read -r eph_lo _ </proc/sys/net/ipv4/ip_local_port_range; } 2>/dev/null && ((eph_lo > 11000)); then
		hi=$((eph_lo - 1))
		((lo >= hi)) && lo=10000
	fi
	for ((i = 0; i < 500; i++)); do
		p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
		bad=0
		for ex in "$@"; do [[ $ex == "$p" ]] && bad=1 && break; done
		((bad)) && continue
		if command -v ss >/dev/null 2>&1; then
			[[ -n $(ss -Htan "( sport = :$p )" 2>/dev/null) ]] && continue
		else
			(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
		fi
		printf '%s\n' "$p"
		return 0
	done
	zk__log "no free port found"
	return 1
}

# zk_4lw PORT CMD [timeout_s] [ADDR]: send a four-letter word, print the reply.
zk_4lw() {
	# shellcheck disable=SC2016
	timeout "${3:-2}" bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1; printf %s "$3" >&3; cat <&3' \
		zk4lw "${4:-127.0.0.1}" "$1" "$2" 2>/dev/null
}

# zk_ask D CMD [timeout_s]: a four-letter word to the instance in D, under its command prefix
zk_ask() {
	local port
	read -r port <"$1/zk.port" || return 1
	zk__addr "$1"
	# shellcheck disable=SC2016
	zk__in "$1" timeout "${3:-2}" bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 1; printf %s "$3" >&3; cat <&3' \
		zk4lw "$ZK__ADDR" "$port" "$2" 2>/dev/null
}

# zk__port_busy D PORT: something listens on PORT where D's server would bind (any address).
zk__port_busy() {
	if command -v ss >/dev/null 2>&1; then
		[[ -n $(zk__in "$1" ss -Htln "( sport = :$2 )" 2>/dev/null) ]]
	else
		zk__addr "$1"
		# shellcheck disable=SC2016
		zk__in "$1" bash -c 'exec 3<>"/dev/tcp/$1/$2"' port "$ZK__ADDR" "$2" 2>/dev/null
	fi
}

# zk__wait_port_free D PORT MS: wait up to MS for nothing to listen on PORT.
zk__wait_port_free() {
	local end=$(($(zk__now_ms) + $3))
	while zk__port_busy "$1" "$2"; do
		(($(zk__now_ms) < end)) || return 1
		sleep 0.05
	done
}

# zk__owns_port D PID PORT: the listener on PORT belongs to PID (so a 4lw answer is from our server,
# not from someone else who holds the port). Without ss this cannot be checked and is assumed.
zk__owns_port() {
	command -v ss >/dev/null 2>&1 || return 0
	zk__in "$1" ss -Htlnp "( sport = :$3 )" 2>/dev/null | grep -q "pid=$2,"
}

# zk__find D: ZK__PID = the PID recorded in D/zk.pid if that process is alive, a session leader
# (pgid == pid) and really our server for D: the start time recorded in D/zk.start at launch (with
# the PID, an identity that survives PID reuse; read from /proc/PID/stat, which never waits on the
# process, unlike its command line while a killed JVM tears its memory down), or, without that
# file, a command line that names D/zoo.cfg. ZK__STATE = its state letter (T: stopped). No
# subshell: the drills poll this. A stale pid file is removed.
ZK__PID='' ZK__STATE=''
zk__find() {
	local d=$1 pid st start='' f=() args=()
	ZK__PID='' ZK__STATE=''
	[[ -s $d/zk.pid ]] || return 1
	read -r pid <"$d/zk.pid" || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	if zk_proc_alive "$pid" && { read -r st <"/proc/$pid/stat"; } 2>/dev/null; then
		st=${st##*) }
		read -r -a f <<<"$st" # f[0] state, f[2] process group, f[19] start time
		if [[ -s $d/zk.start ]]; then read -r start <"$d/zk.start"; fi
		if [[ -z $start ]]; then { mapfile -d '' -t args <"/proc/$pid/cmdline"; } 2>/dev/null; fi
		if [[ ${f[2]:-} == "$pid" ]] &&
			if [[ -n $start ]]; then [[ ${f[19]:-} == "$start" ]]; else [[ " ${args[*]} " == *" $d/zoo.cfg "* ]]; fi
		then
			ZK__PID=$pid ZK__STATE=${f[0]}
			return 0
		fi
	fi
	rm -f "$d/zk.pid" "$d/zk.start"
	return 1
}

# zk__pid D: print zk__find's PID
zk__pid() { zk__find "$1" && printf '%s\n' "$ZK__PID"; }

zk__abs() { (cd "$1" && pwd -P); }

# zk__write_common D PORT: the settings every instance shares (its address: zk__place first).
zk__write_common() {
	local d=$1 port=$2 tick=${ZK_TICK_MS:-200} addr
	zk__addr "$d"
	addr=$ZK__ADDR
	cat >"$d/zoo.cfg" <<-EOF
		# generated by haproxy/zookeeper.sh
		tickTime=$tick
		dataDir=$d/data
		clientPort=$port
		clientPortAddress=$addr
		maxClientCnxns=0
		admin.enableServer=false
		4lw.commands.whitelist=ruok,srvr,stat,mntr,conf,cons,dump,envi,wchs,isro
		reconfigEnabled=false
		forceSync=${ZK_FORCE_SYNC:-yes}
		autopurge.purgeInterval=0
	EOF
	if [[ -n ${ZK_MIN_SESSION_MS:-} ]]; then echo "minSessionTimeout=$ZK_MIN_SESSION_MS" >>"$d/zoo.cfg"; fi
	if [[ -n ${ZK_MAX_SESSION_MS:-} ]]; then echo "maxSessionTimeout=$ZK_MAX_SESSION_MS" >>"$d/zoo.cfg"; fi
	if [[ -n ${ZK_EXTRA_CFG:-} ]]; then printf '%s\n' "$ZK_EXTRA_CFG" >>"$d/zoo.cfg"; fi
	cat >"$d/log4j.properties" <<-EOF
		log4j.rootLogger=${ZK_LOG_LEVEL:-INFO}, FILE
		log4j.appender.FILE=org.apache.log4j.FileAppender
		log4j.appender.FILE.File=$d/zookeeper.log
		log4j.appender.FILE.Append=true
		log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
		log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} %-5p [%t:%C{1}@%L] - %m%n
	EOF
	mkdir -p "$d/data"
	printf '%s\n' "$port" >"$d/zk.port"
	printf '%s:%s\n' "$addr" "$port" >"$d/connect"
}

# zk__launch D: start the JVM for the instance configured in D, in its own session/process group,
# under its command prefix. Records the PID in D/zk.pid before the JVM runs. Returns at once.
zk__launch() {
	local d=$1 cp java=${ZK_JAVA:-java} i
	local -a jvm extra pre=()
	if zk__pid "$d" >/dev/null; then
		zk__log "already running in $d (pid $(<"$d/zk.pid"))"
		return 1
	fi
	command -v "$java" >/dev/null 2>&1 || { zk__log "java not found (apt-get install zookeeper)"; return 1; }
	command -v setsid >/dev/null 2>&1 || { zk__log "setsid not found (util-linux)"; return 1; }
	cp=$(zk__classpath) || return 1
	if [[ -n ${ZK_JVM_FLAGS:-} ]]; then
		read -r -a jvm <<<"$ZK_JVM_FLAGS"
	else
		jvm=(-Xms16m -Xmx64m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData -Xss512k
			-XX:+ExitOnOutOfMemoryError)
	fi
	if [[ -n ${ZK_JVM_EXTRA:-} ]]; then read -r -a extra <<<"$ZK_JVM_EXTRA" && jvm+=("${extra[@]}"); fi
	jvm+=("-XX:ErrorFile=$d/hs_err_%p.log" -Djava.net.preferIPv4Stack=true -Djava.awt.headless=true
		"-Dlog4j.configuration=file:$d/log4j.properties" "-Dzookeeper.log.dir=$d"
		-Dzookeeper.admin.enableServer=false -Dzookeeper.jmx.log4j.disable=true
		-Dzookeeper.preAllocSize=4096 -Dzookeeper.snapshot.trust.empty=true)
	[[ -s $d/zk.prefix ]] && read -r -a pre <"$d/zk.prefix"
	rm -f "$d/zk.pid" "$d/zk.pid.tmp" "$d/zk.start"
	: >"$d/zk.starting"
	# setsid: own session and process group (pgid == pid), so stopping it can never hit the caller.
	# The prefix execs what follows it (`ip netns exec` does), so the inner bash is still the
	# session leader; it records its own PID (the one that execs java; correct whether or not setsid
	# had to fork), closes inherited descriptors above 2 (a test runner's pipes must not be held
	# open), and execs the JVM with cwd = D.
	# shellcheck disable=SC2016
	(
		cd "$d" || exit 1
		exec setsid "${pre[@]}" bash -c '
			pf=$1; shift
			for f in /proc/$$/fd/*; do n=${f##*/}; [ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-"; done 2>/dev/null
			echo $$ >"$pf.tmp" && mv -f "$pf.tmp" "$pf" || exit 1
			exec "$@"' zk-launch "$d/zk.pid" \
			"$java" "${jvm[@]}" -cp "$cp" "$ZK_MAIN_CLASS" "$d/zoo.cfg" \
			>>"$d/zk.out" 2>&1 </dev/null
	) &
	disown "$!" 2>/dev/null || true # no "Killed" job notices in the caller's output when we stop it
	for ((i = 0; i < 200; i++)); do
		[[ -s $d/zk.pid ]] && break
		sleep 0.01
	done
	rm -f "$d/zk.starting"
	[[ -s $d/zk.pid ]] || { zk__log "launch failed in $d (see $d/zk.out)"; return 1; }
	# its start time, the identity zk__find checks (exec keeps it: the same for the JVM)
	local pid st f=()
	if ! { read -r pid <"$d/zk.pid" && { read -r st <"/proc/$pid/stat"; } 2>/dev/null; }; then
		zk__log "the server in $d exited at once (see $d/zk.out)"
		return 1
	fi
	st=${st##*) }
	read -r -a f <<<"$st"
	printf '%s\n' "${f[19]}" >"$d/zk.start"
}

# zk__wait D WANT TIMEOUT_S: wait until the instance in D answers. WANT=serving: `srvr` reports a Mode
# (standalone/leader/follower/observer). WANT=up: `ruok` answers imok (port open; may lack quorum).
zk__wait() {
	local d=$1 want=$2 tmo=${3:-${ZK_START_TIMEOUT:-30}} port r end pid
	read -r port <"$d/zk.port" || return 1
	end=$(($(zk__now_ms) + tmo * 1000))
	while (($(zk__now_ms) < end)); do
		if ! pid=$(zk__pid "$d"); then
			zk__log "server in $d exited during start; last log lines:"
			tail -n 15 "$d/zookeeper.log" "$d/zk.out" >&2 2>/dev/null || true
			return 2
		fi
		if [[ $want == up ]]; then
			r=$(zk_ask "$d" ruok 1) && [[ $r == imok ]] && zk__owns_port "$d" "$pid" "$port" && return 0
		else
			r=$(zk_ask "$d" srvr 1) && [[ $r == *"Mode: "* ]] && zk__owns_port "$d" "$pid" "$port" && return 0
		fi
		sleep 0.05
	done
	zk__log "server in $d not ${want} after ${tmo}s; last log lines:"
	tail -n 15 "$d/zookeeper.log" >&2 2>/dev/null || true
	return 1
}

# zk__signal_stop D SIG: stop the instance in D. SIG=TERM: TERM, then KILL after ZK_STOP_TIMEOUT.
# SIG=KILL: KILL at once. Waits until the process is gone (bounded). 0 if nothing is left running.
zk__signal_stop() {
	local d=$1 sig=$2 pid end tmo=${ZK_STOP_TIMEOUT:-10}
	if [[ -e $d/zk.starting ]]; then # a start was under way (e.g. trap during zk_start)
		for ((end = 0; end < 200; end++)); do [[ -s $d/zk.pid ]] && break; sleep 0.01; done
		rm -f "$d/zk.starting"
	fi
	zk__find "$d" || { rm -f "$d/zk.pid"; return 0; }
	pid=$ZK__PID
	kill "-$sig" -- "-$pid" 2>/dev/null || true
	kill -CONT -- "-$pid" 2>/dev/null || true # a paused server must be able to act on TERM
	end=$(($(zk__now_ms) + tmo * 1000))
	while zk_proc_alive "$pid"; do
		if (($(zk__now_ms) >= end)); then
			if [[ $sig == KILL ]]; then
				zk__log "pid $pid in $d survives SIGKILL"
				return 1
			fi
			zk__log "pid $pid in $d ignored SIGTERM for ${tmo}s, sending SIGKILL"
			kill -KILL -- "-$pid" 2>/dev/null || true
			sig=KILL
			end=$(($(zk__now_ms) + 5000))
		fi
		sleep 0.02
	done
	wait "$pid" 2>/dev/null || true # reap it if it happens to be our child
	rm -f "$d/zk.pid" "$d/zk.start"
	return 0
}

# ---------------------------------------------------------------- single node

# zk_start DIR [PORT]: start a standalone server under DIR (on ZK_BIND, under ZK_CMD_PREFIX);
# print "ADDR:PORT" once it serves.
zk_start() {
	local d port=${2:-} rc addr=${ZK_BIND:-127.0.0.1} prefix=${ZK_CMD_PREFIX:-}
	[[ -n ${1:-} ]] || { zk__log "usage: zk_start DIR [PORT]"; return 1; }
	mkdir -p "$1" && d=$(zk__abs "$1") || return 1
	zk__place "$d" "$addr" "${prefix//%n/1}"
	for _ in 1 2 3; do
		[[ -n ${2:-} ]] || port=$(zk_free_port) || return 1
		if zk__port_busy "$d" "$port"; then
			[[ -z ${2:-} ]] && continue
			# a restart on the same port: a killed JVM's main thread turns zombie while its other
			# threads still hold the listening socket, so give the exit a moment to finish
			zk__wait_port_free "$d" "$port" 5000 || {
				zk__log "port $port on $addr is already in use"
				return 1
			}
		fi
		zk__write_common "$d" "$port"
		zk__launch "$d" || return 1
		rc=0
		zk__wait "$d" serving "${ZK_START_TIMEOUT:-30}" || rc=$?
		if ((rc == 0)); then
			printf '%s:%s\n' "$addr" "$port"
			return 0
		fi
		zk__signal_stop "$d" KILL || true
		# retry with another port only if we chose it and lost a race for it
		if ((rc == 2)) && [[ -z ${2:-} ]] && grep -q 'Address already in use' "$d/zookeeper.log" 2>/dev/null; then
			zk__log "port $port taken, retrying"
			continue
		fi
		return 1
	done
	return 1
}

zk_stop() { zk__signal_stop "$(zk__abs "$1" 2>/dev/null || echo "$1")" TERM; }
zk_kill() { zk__signal_stop "$(zk__abs "$1" 2>/dev/null || echo "$1")" KILL; }
zk_pause() { local p; p=$(zk__pid "$(zk__abs "$1")") && kill -STOP -- "-$p"; }
zk_resume() { local p; p=$(zk__pid "$(zk__abs "$1")") && kill -CONT -- "-$p"; }
zk_pid() { zk__pid "$(zk__abs "$1" 2>/dev/null || echo "$1")"; }
zk_connect_string() {
	local d
	d=$(zk__abs "$1") || return 1
	if [[ -f $d/ensemble ]]; then cat "$d/ensemble"; else cat "$d/connect"; fi
}

# zk_mode D: leader | follower | observer | standalone | no-quorum (up, not serving) | paused | down
zk_mode() {
	local d=$1 r
	[[ $d == /* ]] || d=$(zk__abs "$d") || { echo down; return 0; }
	zk__find "$d" || { echo down; return 0; }
	[[ $ZK__STATE == T ]] && { echo paused; return 0; }
	r=$(zk_ask "$d" srvr 1) || { echo down; return 0; }
	if [[ $r =~ Mode:\ ([a-z]+) ]]; then echo "${BASH_REMATCH[1]}"; else echo no-quorum; fi
}

# zk_stop_all ROOT: stop every instance (single or ensemble node) whose pid file lies under ROOT:
# all are sent SIGTERM first, so they stop in parallel; then each is waited for (SIGKILL after
# ZK_STOP_TIMEOUT).
zk_stop_all() {
	local root=${1:-} f p rc=0 dirs=()
	[[ -n $root && -d $root ]] || return 0
	while IFS= read -r -d '' f; do
		dirs+=("$(dirname "$f")")
	done < <(find "$root" \( -name zk.pid -o -name zk.starting \) -print0 2>/dev/null | sort -zu)
	for f in "${dirs[@]}"; do
		if p=$(zk__pid "$f"); then kill -TERM -- "-$p" 2>/dev/null; kill -CONT -- "-$p" 2>/dev/null; fi
	done
	for f in "${dirs[@]}"; do
		zk__signal_stop "$f" TERM || rc=1
	done
	return $rc
}

# ---------------------------------------------------------------- ensemble

# zk_ensemble_start DIR [N=3]: write N node configs under DIR/n1..nN (node K on the Kth address of
# ZK_BIND, under ZK_CMD_PREFIX with %n = K; the ports of ZK_PORTS, or distinct free ones), start
# them all, wait until every node serves (leader/follower), print the connect string.
zk_ensemble_start() {
	local d n=${2:-3} i p ports=() servers="" cs="" addrs=() fixed=() prefix=${ZK_CMD_PREFIX:-}
	[[ -n ${1:-} ]] || { zk__log "usage: zk_ensemble_start DIR [N]"; return 1; }
	mkdir -p "$1" && d=$(zk__abs "$1") || return 1
	read -r -a addrs <<<"${ZK_BIND:-127.0.0.1}"
	for ((i = ${#addrs[@]}; i < n; i++)); do addrs+=("${addrs[0]}"); done
	read -r -a fixed <<<"${ZK_PORTS:-}"
	for ((i = 0; i < n; i++)); do
		if ((${#fixed[@]} == 3)); then
			ports+=("${fixed[@]}")
			continue
		fi
		for _ in 1 2 3; do
			p=$(zk_free_port "${ports[@]}") || return 1
			ports+=("$p")
		done
	done
	for ((i = 1; i <= n; i++)); do
		servers+="server.$i=${addrs[i - 1]}:${ports[3 * (i - 1) + 1]}:${ports[3 * (i - 1) + 2]}"$'\n'
		cs+="${cs:+,}${addrs[i - 1]}:${ports[3 * (i - 1)]}"
	done
	for ((i = 1; i <= n; i++)); do
		mkdir -p "$d/n$i"
		zk__place "$d/n$i" "${addrs[i - 1]}" "${prefix//%n/$i}"
		zk__write_common "$d/n$i" "${ports[3 * (i - 1)]}"
		{
			echo "initLimit=${ZK_INIT_LIMIT:-50}"
			echo "syncLimit=${ZK_SYNC_LIMIT:-10}"
			echo "standaloneEnabled=false"
			echo "quorumListenOnAllIPs=false"
			printf '%s' "$servers"
		} >>"$d/n$i/zoo.cfg"
		echo "$i" >"$d/n$i/data/myid"
	done
	echo "$n" >"$d/ensemble.size"
	echo "$cs" >"$d/ensemble"
	for ((i = 1; i <= n; i++)); do
		zk__launch "$d/n$i" || { zk_ensemble_stop "$d"; return 1; }
	done
	for ((i = 1; i <= n; i++)); do
		zk__wait "$d/n$i" serving "${ZK_START_TIMEOUT:-30}" || { zk_ensemble_stop "$d"; return 1; }
	done
	printf '%s\n' "$cs"
}

# zk_node_dir DIR K: the instance directory of ensemble node K
zk_node_dir() {
	local d
	d=$(zk__abs "$1") || return 1
	[[ -f $d/n$2/zoo.cfg ]] || { zk__log "no node $2 in $d"; return 1; }
	printf '%s\n' "$d/n$2"
}

# zk_node_start DIR K [--wait-serving|--no-wait]: restart node K with its old config and data. Waits
# until its client port answers (--wait-serving: until it is part of a serving quorum; --no-wait:
# returns once the JVM runs).
zk_node_start() {
	local nd
	nd=$(zk_node_dir "$1" "$2") || return 1
	zk__launch "$nd" || return 1
	case ${3:-} in
	--wait-serving) zk__wait "$nd" serving ;;
	--no-wait) return 0 ;;
	*) zk__wait "$nd" up ;;
	esac
}
zk_node_stop() { local nd; nd=$(zk_node_dir "$1" "$2") && zk__signal_stop "$nd" TERM; }
zk_node_kill() { local nd; nd=$(zk_node_dir "$1" "$2") && zk__signal_stop "$nd" KILL; }
zk_node_pause() { local nd p; nd=$(zk_node_dir "$1" "$2") && p=$(zk__pid "$nd") && kill -STOP -- "-$p"; }
zk_node_resume() { local nd p; nd=$(zk_node_dir "$1" "$2") && p=$(zk__pid "$nd") && kill -CONT -- "-$p"; }
zk_node_port() { local nd; nd=$(zk_node_dir "$1" "$2") && cat "$nd/zk.port"; }

# zk_node_mode DIR K: leader | follower | observer | standalone | no-quorum (up, not serving) | paused | down
zk_node_mode() { local nd; nd=$(zk_node_dir "$1" "$2") && zk_mode "$nd"; }

# zk_ensemble_leader DIR: print the number of the current leader (fails if none).
zk_ensemble_leader() {
	local d n i
	d=$(zk__abs "$1") || return 1
	read -r n <"$d/ensemble.size"
	for ((i = 1; i <= n; i++)); do
		[[ $(zk_node_mode "$d" "$i") == leader ]] && { echo "$i"; return 0; }
	done
	return 1
}

# zk_ensemble_wait_quorum DIR [TIMEOUT_S]: wait until a leader and a majority of nodes serve.
zk_ensemble_wait_quorum() {
	local d n i m serving leader end
	d=$(zk__abs "$1") || return 1
	read -r n <"$d/ensemble.size"
	end=$(($(zk__now_ms) + ${2:-${ZK_START_TIMEOUT:-30}} * 1000))
	while (($(zk__now_ms) < end)); do
		serving=0 leader=0
		for ((i = 1; i <= n; i++)); do
			m=$(zk_node_mode "$d" "$i")
			[[ $m == leader ]] && leader=1
			[[ $m == leader || $m == follower ]] && serving=$((serving + 1))
		done
		((leader && serving > n / 2)) && return 0
		sleep 0.1
	done
	zk__log "no quorum in $d after ${2:-${ZK_START_TIMEOUT:-30}}s"
	return 1
}

zk_ensemble_stop() {
	local d n i rc=0
	d=$(zk__abs "$1" 2>/dev/null) || return 0
	[[ -f $d/ensemble.size ]] || return 0
	read -r n <"$d/ensemble.size"
	for ((i = 1; i <= n; i++)); do
		zk__signal_stop "$d/n$i" TERM || rc=1
	done
	return $rc
}
