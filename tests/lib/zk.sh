# shellcheck shell=bash
# tests/lib/zk.sh: start and stop REAL ZooKeeper servers (Debian's `zookeeper` package) for tests.
#
# Source it:   . tests/lib/zk.sh
#
# Everything binds to 127.0.0.1 only, lives under a directory the caller gives, logs to a file in that
# directory, and is stopped by its recorded PID / process group only (never by name).
#
# Single node:
#   cs=$(zk_start "$dir" [port])   # -> "127.0.0.1:PORT" once the server answers `srvr`
#   zk_stop "$dir"                 # SIGTERM the process group, SIGKILL after ZK_STOP_TIMEOUT, wait for exit
#   zk_kill "$dir"                 # SIGKILL at once (crash)
#   zk_pause "$dir" / zk_resume "$dir"   # SIGSTOP / SIGCONT (a hung or partitioned server)
# Three-node (or N-node) ensemble on loopback:
#   cs=$(zk_ensemble_start "$dir" 3)     # -> "127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3" once all serve
#   zk_node_stop "$dir" 2; zk_node_kill "$dir" 3; zk_node_start "$dir" 2 [--wait-serving]
#   zk_node_pause / zk_node_resume "$dir" N; zk_node_mode "$dir" N (leader|follower|no-quorum|paused|down)
#   zk_ensemble_leader "$dir" (prints N);  zk_ensemble_wait_quorum "$dir" [timeout_s]
#   zk_ensemble_stop "$dir"
# Helpers: zk_free_port [exclude...]; zk_4lw PORT ruok|srvr|stat|mntr|conf|cons|dump|...;
#   zk_connect_string "$dir"; zk_node_port "$dir" N
# Cleanup (put it in an EXIT trap; idempotent, safe if nothing was started):
#   zk_stop_all "$root"            # stops every instance whose zk.pid lies under $root
#
# Knobs (environment, read at start time):
#   ZK_TICK_MS (200)   tickTime; the server clamps session timeouts to [2, 20] x tickTime unless
#                      ZK_MIN_SESSION_MS / ZK_MAX_SESSION_MS are set (=> 400..4000 ms by default)
#   ZK_INIT_LIMIT (50 ticks), ZK_SYNC_LIMIT (10 ticks)   ensemble only
#   ZK_FORCE_SYNC (yes)  fsync the transaction log ("no" is faster, still a real server)
#   ZK_START_TIMEOUT (30 s), ZK_STOP_TIMEOUT (10 s), ZK_LOG_LEVEL (INFO)
#   ZK_JAVA (java), ZK_JVM_FLAGS (replaces the default small/fast flags), ZK_JVM_EXTRA (appended)
#
# Layout of an instance directory D (the single-node dir, or D/nK for ensemble node K):
#   D/zoo.cfg  D/log4j.properties  D/data/  D/zookeeper.log (server log)  D/zk.out (JVM stdout/stderr)
#   D/zk.pid (pid == pgid, the JVM is a session leader)  D/zk.port (client port)  D/connect

# shellcheck source=tests/lib/proc.sh
. "$(dirname "${BASH_SOURCE[0]}")/proc.sh"

ZK_MAIN_CLASS=org.apache.zookeeper.server.quorum.QuorumPeerMain

zk__log() { printf 'zk.sh: %s\n' "$*" >&2; }

zk__now_ms() { local t; t=$(date +%s%N); printf '%s\n' $((t / 1000000)); }

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

# zk_4lw PORT CMD [timeout_s]: send a four-letter word, print the reply.
zk_4lw() {
	# shellcheck disable=SC2016
	timeout "${3:-2}" bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1; printf %s "$2" >&3; cat <&3' \
		zk4lw "$1" "$2" 2>/dev/null
}

# zk__port_busy PORT: something listens on 127.0.0.1:PORT (or on the wildcard address).
zk__port_busy() {
	if command -v ss >/dev/null 2>&1; then
		[[ -n $(ss -Htln "( sport = :$1 )" 2>/dev/null) ]]
	else
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
	fi
}

# zk__wait_port_free PORT MS: wait up to MS for nothing to listen on PORT.
zk__wait_port_free() {
	local end=$(($(zk__now_ms) + $2))
	while zk__port_busy "$1"; do
		(($(zk__now_ms) < end)) || return 1
		sleep 0.05
	done
}

# zk__owns_port PID PORT: the listener on PORT belongs to PID (so a 4lw answer is from our server, not
# from someone else who holds the port). Without ss this cannot be checked and is assumed.
zk__owns_port() {
	command -v ss >/dev/null 2>&1 || return 0
	ss -Htlnp "( sport = :$2 )" 2>/dev/null | grep -q "pid=$1,"
}

# zk__pid D: print the PID recorded in D/zk.pid if that process is alive, a session leader (pgid == pid)
# and really our server for D (its command line names D/zoo.cfg). A stale pid file is removed.
zk__pid() {
	local d=$1 pid cmd st pgid
	[[ -s $d/zk.pid ]] || return 1
	read -r pid <"$d/zk.pid" || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	if proc_alive "$pid"; then
		cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || cmd=
		{ read -r st <"/proc/$pid/stat"; } 2>/dev/null || st=
		st=${st##*) }
		read -r _ _ pgid _ <<<"$st"
		if [[ $cmd == *"$d/zoo.cfg"* && $pgid == "$pid" ]]; then
			printf '%s\n' "$pid"
			return 0
		fi
	fi
	rm -f "$d/zk.pid"
	return 1
}

zk__abs() { (cd "$1" && pwd -P); }

# zk__write_common D PORT: the settings every instance shares.
zk__write_common() {
	local d=$1 port=$2 tick=${ZK_TICK_MS:-200}
	cat >"$d/zoo.cfg" <<-EOF
		# generated by tests/lib/zk.sh
		tickTime=$tick
		dataDir=$d/data
		clientPort=$port
		clientPortAddress=127.0.0.1
		maxClientCnxns=0
		admin.enableServer=false
		4lw.commands.whitelist=ruok,srvr,stat,mntr,conf,cons,dump,envi,wchs,isro
		reconfigEnabled=false
		forceSync=${ZK_FORCE_SYNC:-yes}
		autopurge.purgeInterval=0
	EOF
	[[ -n ${ZK_MIN_SESSION_MS:-} ]] && echo "minSessionTimeout=$ZK_MIN_SESSION_MS" >>"$d/zoo.cfg"
	[[ -n ${ZK_MAX_SESSION_MS:-} ]] && echo "maxSessionTimeout=$ZK_MAX_SESSION_MS" >>"$d/zoo.cfg"
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
	printf '127.0.0.1:%s\n' "$port" >"$d/connect"
}

# zk__launch D: start the JVM for the instance configured in D, in its own session/process group.
# Records the PID in D/zk.pid before the JVM runs. Returns at once.
zk__launch() {
	local d=$1 cp java=${ZK_JAVA:-java} i
	local -a jvm extra
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
	rm -f "$d/zk.pid" "$d/zk.pid.tmp"
	: >"$d/zk.starting"
	# setsid: own session and process group (pgid == pid), so stopping it can never hit the caller.
	# The inner bash records its own PID (the one that execs java; correct whether or not setsid had
	# to fork), closes inherited descriptors above 2 (a test runner's pipes must not be held open),
	# and execs the JVM with cwd = D.
	# shellcheck disable=SC2016
	(
		cd "$d" || exit 1
		exec setsid bash -c '
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
			r=$(zk_4lw "$port" ruok 1) && [[ $r == imok ]] && zk__owns_port "$pid" "$port" && return 0
		else
			r=$(zk_4lw "$port" srvr 1) && [[ $r == *"Mode: "* ]] && zk__owns_port "$pid" "$port" && return 0
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
	pid=$(zk__pid "$d") || { rm -f "$d/zk.pid"; return 0; }
	kill "-$sig" -- "-$pid" 2>/dev/null || true
	kill -CONT -- "-$pid" 2>/dev/null || true # a paused server must be able to act on TERM
	end=$(($(zk__now_ms) + tmo * 1000))
	while proc_alive "$pid"; do
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
	rm -f "$d/zk.pid"
	return 0
}

# ---------------------------------------------------------------- single node

# zk_start DIR [PORT]: start a standalone server under DIR; print "127.0.0.1:PORT" once it serves.
zk_start() {
	local d port=${2:-} rc
	[[ -n ${1:-} ]] || { zk__log "usage: zk_start DIR [PORT]"; return 1; }
	mkdir -p "$1" && d=$(zk__abs "$1") || return 1
	for _ in 1 2 3; do
		[[ -n ${2:-} ]] || port=$(zk_free_port) || return 1
		if zk__port_busy "$port"; then
			[[ -z ${2:-} ]] && continue
			# a restart on the same port: a killed JVM's main thread turns zombie while its other
			# threads still hold the listening socket, so give the exit a moment to finish
			zk__wait_port_free "$port" 5000 || {
				zk__log "port $port on 127.0.0.1 is already in use"
				return 1
			}
		fi
		zk__write_common "$d" "$port"
		zk__launch "$d" || return 1
		rc=0
		zk__wait "$d" serving "${ZK_START_TIMEOUT:-30}" || rc=$?
		if ((rc == 0)); then
			printf '127.0.0.1:%s\n' "$port"
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
zk_connect_string() {
	local d
	d=$(zk__abs "$1") || return 1
	if [[ -f $d/ensemble ]]; then cat "$d/ensemble"; else cat "$d/connect"; fi
}

# zk_stop_all ROOT: stop every instance (single or ensemble node) whose pid file lies under ROOT.
zk_stop_all() {
	local root=${1:-} f rc=0
	[[ -n $root && -d $root ]] || return 0
	while IFS= read -r -d '' f; do
		zk__signal_stop "$(dirname "$f")" TERM || rc=1
	done < <(find "$root" \( -name zk.pid -o -name zk.starting \) -print0 2>/dev/null | sort -zu)
	return $rc
}

# ---------------------------------------------------------------- ensemble

# zk_ensemble_start DIR [N=3]: write N node configs under DIR/n1..nN (distinct client, quorum and
# election ports, all on 127.0.0.1), start them all, wait until every node serves (leader/follower),
# print the connect string.
zk_ensemble_start() {
	local d n=${2:-3} i p ports=() servers="" cs=""
	[[ -n ${1:-} ]] || { zk__log "usage: zk_ensemble_start DIR [N]"; return 1; }
	mkdir -p "$1" && d=$(zk__abs "$1") || return 1
	for ((i = 0; i < 3 * n; i++)); do
		p=$(zk_free_port "${ports[@]}") || return 1
		ports+=("$p")
	done
	for ((i = 1; i <= n; i++)); do
		servers+="server.$i=127.0.0.1:${ports[3 * (i - 1) + 1]}:${ports[3 * (i - 1) + 2]}"$'\n'
		cs+="${cs:+,}127.0.0.1:${ports[3 * (i - 1)]}"
	done
	for ((i = 1; i <= n; i++)); do
		mkdir -p "$d/n$i"
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

zk__node() {
	local d
	d=$(zk__abs "$1") || return 1
	[[ -f $d/n$2/zoo.cfg ]] || { zk__log "no node $2 in $d"; return 1; }
	printf '%s\n' "$d/n$2"
}

# zk_node_start DIR K [--wait-serving]: restart node K with its old config and data. Waits until its
# client port answers (or, with --wait-serving, until it is part of a serving quorum).
zk_node_start() {
	local nd
	nd=$(zk__node "$1" "$2") || return 1
	zk__launch "$nd" || return 1
	if [[ ${3:-} == --wait-serving ]]; then zk__wait "$nd" serving; else zk__wait "$nd" up; fi
}
zk_node_stop() { local nd; nd=$(zk__node "$1" "$2") && zk__signal_stop "$nd" TERM; }
zk_node_kill() { local nd; nd=$(zk__node "$1" "$2") && zk__signal_stop "$nd" KILL; }
zk_node_pause() { local nd p; nd=$(zk__node "$1" "$2") && p=$(zk__pid "$nd") && kill -STOP -- "-$p"; }
zk_node_resume() { local nd p; nd=$(zk__node "$1" "$2") && p=$(zk__pid "$nd") && kill -CONT -- "-$p"; }
zk_node_port() { local nd; nd=$(zk__node "$1" "$2") && cat "$nd/zk.port"; }

# zk_node_mode DIR K: leader | follower | observer | standalone | no-quorum (up, not serving) | paused | down
zk_node_mode() {
	local nd port r pid st
	nd=$(zk__node "$1" "$2") || return 1
	read -r port <"$nd/zk.port"
	pid=$(zk__pid "$nd") || { echo down; return 0; }
	{ read -r st <"/proc/$pid/stat"; } 2>/dev/null || st=
	st=${st##*) }
	[[ ${st:0:1} == T ]] && { echo paused; return 0; }
	r=$(zk_4lw "$port" srvr 1) || { echo down; return 0; }
	if [[ $r =~ Mode:\ ([a-z]+) ]]; then echo "${BASH_REMATCH[1]}"; else echo no-quorum; fi
}

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
