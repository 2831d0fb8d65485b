# shellcheck shell=bash
# tests/http/lib.sh: shared helpers of the HTTP tests (tests/http/NN-*_test.sh) that run the real
# service (haproxy/run.sh: HAProxy 2.6 + the Lua service + ZooKeeper).
#
#   . "$(dirname "$0")/lib.sh"; ht_init NAME
#
# ht_init makes the test's own temp dir $T and puts the cleanup in an EXIT trap: every service
# started with svc_start is stopped (svc_stop), every background process recorded with ht_bg is
# stopped by its PID, every ZooKeeper under $T by zk_stop_all; never anything by name.
#
# The service:
#   url=$(svc_start DIR [VAR=value...])  runs haproxy/run.sh in the background in its own session
#                       (setsid) with RUN_DIR=DIR on a free port, waits (at most SVC_START_TIMEOUT,
#                       30 s) until GET /health answers 200 and prints the base URL
#                       (http://127.0.0.1:PORT). Records the run.sh PID (== its process group) in
#                       DIR/run.pid and the port in DIR/port; run.sh's output goes to DIR/run.log.
#                       Extra VAR=value arguments are put in run.sh's environment (CONFIG, ZK_HOSTS,
#                       THREADS, HAPROXY_ENV_PREFIX...). Without ZK_HOSTS run.sh starts its own
#                       ZooKeeper under DIR/zk. SVC_PORT=N in the caller's environment: use that port.
#   svc_stop DIR        TERM run.sh (it stops HAProxy and its ZooKeeper), wait (bounded), then KILL
#                       whatever is left of its process group, and stop a ZooKeeper left under DIR.
#   svc_cli DIR CMD...  one command on the HAProxy CLI (stats socket DIR/haproxy.sock); prints the answer
#   svc_master_pid DIR  the HAProxy master's PID (DIR/haproxy.pid)
#   svc_worker_pids DIR the HAProxy worker PIDs (children of the master), one a line
#   svc_config FILE ZK_HOSTS STATE_DIR [LUA_SECTIONS...]  writes a Lua config file (lua_config);
#                       each extra argument is a section line such as 'limits = { rate_per_10s = 50 }'
#                       (a 'state = ...' or 'lease = ...' one replaces the default)
#
# Output: tests/lib/suite.sh's ok / not_ok / check / diag / figure ("# figure <name> <value>");
# ht_done ends the script (exit 1 if anything failed).
# shellcheck disable=SC2034 # variables used by the sourcing scripts

set -u

HT_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HT_REPO=$(cd "$HT_HERE/../.." && pwd)
# shellcheck source=tests/lib/suite.sh
. "$HT_REPO/tests/lib/suite.sh"
# shellcheck source=haproxy/zookeeper.sh
. "$HT_REPO/haproxy/zookeeper.sh"

BUILD=${BUILD:-$HT_REPO/build}
[[ $BUILD == /* ]] || BUILD=$HT_REPO/$BUILD
EPOCH_MS=1704067200000
SVC_START_TIMEOUT=${SVC_START_TIMEOUT:-30}
SVC_STOP_TIMEOUT=${SVC_STOP_TIMEOUT:-20}

T=
ht_pids=()
# the names these had before tests/lib/suite.sh
declare -n ht_name=suite_name ht_passed=suite_passed ht_failed=suite_failed

ht_now_ms() { local t; t=$(date +%s%N); echo $((t / 1000000)); }


# ht_group_alive PGID: some process of that process group is alive (zombies excepted)
ht_group_alive() {
	local f st pg
	for f in /proc/[0-9]*/stat; do
		{ read -r st <"$f"; } 2>/dev/null || continue
		st=${st##*) }
		read -r s _ pg _ <<<"$st"
		[[ $pg == "$1" && $s != Z ]] && return 0
	done
	return 1
}


# ht_bg NAME CMD...: run CMD in the background, stdout to $T/NAME.out, stderr to $T/NAME.err;
# its PID is recorded for the cleanup and left in $HT_PID.
HT_PID=
ht_bg() {
	local name=$1
	shift
	"$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
	HT_PID=$!
	ht_pids+=("$HT_PID")
}

ht_cleanup() {
	local rc=$? pid d
	trap - EXIT INT TERM
	for pid in "${ht_pids[@]}"; do proc_stop "$pid" 5000; done
	# every service started under $T (svc_start runs in command substitutions: found by pid file)
	if [[ -n $T && -d $T ]]; then
		while IFS= read -r d; do svc_stop "$(dirname "$d")" >/dev/null 2>&1; done \
			< <(find "$T" -name run.pid 2>/dev/null)
	fi
	[[ -n $T ]] && zk_stop_all "$T"
	if [[ -n $T && ${HT_KEEP:-0} != 1 ]]; then
		rm -rf "$T"
	elif [[ -n $T ]]; then
		diag "kept $T"
	fi
	exit "$rc"
}

ht_done() { suite_done; }

# ht_init NAME: temp dir, traps, and the prerequisites every HTTP test needs
ht_init() {
	suite_name=$1
	T=$(mktemp -d "${TMPDIR:-/tmp}/sf-http-$1.XXXXXX") || { echo "not ok $1: mktemp"; exit 1; }
	trap ht_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	local tool
	for tool in haproxy curl socat setsid lua5.4 lua5.3; do
		command -v "$tool" >/dev/null 2>&1 || { not_ok "$tool is installed"; exit 1; }
	done
	if [[ ! -f $BUILD/lua5.3/snowflake/core.so ]]; then
		not_ok "the Lua 5.3 module is built ($BUILD/lua5.3/snowflake/core.so; make all)"
		exit 1
	fi
}

# ht_build_loadgen: builds tests/http/loadgen.c into $BUILD/tests/http-loadgen when missing or older
# than its source; prints the path.
ht_build_loadgen() {
	local bin=$BUILD/tests/http-loadgen
	if [[ ! -x $bin || $HT_HERE/loadgen.c -nt $bin ]]; then
		mkdir -p "$(dirname "$bin")"
		# built aside and renamed: concurrent test scripts never run a half-written binary
		if ! cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -pthread "$HT_HERE/loadgen.c" \
			-o "$bin.$$" || ! mv -f "$bin.$$" "$bin"; then
			rm -f "$bin.$$"
			return 1
		fi
	fi
	printf '%s\n' "$bin"
}

# ---------------------------------------------------------------- the service

# svc_code URL [curl options...]: the HTTP status (000 when no answer), bounded to 3 s
svc_code() {
	local url=$1
	shift
	curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$@" "$url" 2>/dev/null || true
}

svc_config() {
	local file=$1 hosts=$2 state=$3
	shift 3
	lua_config "$file" "lease = { zk_hosts = \"$hosts\", root = \"/snowflake/http-test\" }" \
		"state = { dir = \"$state\" }" "$@"
}

svc_start() {
	local dir=$1 port pid i attempt code
	shift
	mkdir -p "$dir" && dir=$(cd "$dir" && pwd -P) || return 1
	for attempt in 1 2 3; do
		if [[ -n ${SVC_PORT:-} ]]; then port=$SVC_PORT; else port=$(zk_free_port) || return 1; fi
		rm -f "$dir/run.pid"
		echo "$port" >"$dir/port"
		# own session and process group (pgid == pid of run.sh); the inner bash records its PID
		# and execs env, which execs run.sh: the recorded PID is run.sh's
		# shellcheck disable=SC2016
		setsid bash -c 'pf=$1; shift; echo $$ >"$pf"; exec "$@"' svc-launch "$dir/run.pid" \
			env RUN_DIR="$dir" PORT="$port" "$@" "$HT_REPO/haproxy/run.sh" \
			>>"$dir/run.log" 2>&1 </dev/null &
		disown "$!" 2>/dev/null || true
		for ((i = 0; i < 200; i++)); do
			[[ -s $dir/run.pid ]] && break
			sleep 0.01
		done
		read -r pid 2>/dev/null <"$dir/run.pid" || { echo "svc_start: no pid file in $dir" >&2; return 1; }
		local end=$(($(ht_now_ms) + SVC_START_TIMEOUT * 1000))
		while (($(ht_now_ms) < end)); do
			code=$(svc_code "http://127.0.0.1:$port/health")
			if [[ $code == 200 ]]; then
				printf 'http://127.0.0.1:%s\n' "$port"
				return 0
			fi
			proc_alive "$pid" || break
			sleep 0.1
		done
		if proc_alive "$pid"; then
			echo "svc_start: /health not 200 after ${SVC_START_TIMEOUT}s (last $code); see $dir/run.log" >&2
			tail -n 20 "$dir/run.log" >&2
			svc_stop "$dir"
			return 1
		fi
		# run.sh exited: retry on another port only if the port was taken
		# (HAProxy runs with -q: a bind error is not in the log, so any early exit is retried
		# once more on another port when the port was ours to choose)
		if [[ -z ${SVC_PORT:-} ]] && ((attempt < 3)); then
			echo "svc_start: run.sh exited (port $port), retrying on another port" >&2
			continue
		fi
		echo "svc_start: run.sh exited; see $dir/run.log" >&2
		tail -n 20 "$dir/run.log" >&2
		svc_stop "$dir"
		return 1
	done
	return 1
}

svc_stop() {
	local dir=$1 pid i
	[[ -d $dir ]] || return 0
	dir=$(cd "$dir" && pwd -P)
	if read -r pid 2>/dev/null <"$dir/run.pid" && [[ $pid =~ ^[0-9]+$ ]]; then
		if proc_alive "$pid"; then
			kill -TERM "$pid" 2>/dev/null
			for ((i = 0; i < SVC_STOP_TIMEOUT * 20; i++)); do
				proc_alive "$pid" || break
				sleep 0.05
			done
		fi
		# what is left of its process group (HAProxy master and workers); never anything else
		if ht_group_alive "$pid"; then
			kill -KILL -- "-$pid" 2>/dev/null
			for ((i = 0; i < 100; i++)); do
				ht_group_alive "$pid" || break
				sleep 0.05
			done
		fi
		rm -f "$dir/run.pid"
	fi
	zk_stop_all "$dir" >/dev/null 2>&1
	return 0
}

svc_cli() {
	local dir=$1
	shift
	printf '%s\n' "$*" | timeout 10 socat -t 5 - "UNIX-CONNECT:$dir/haproxy.sock" 2>/dev/null
}

svc_master_pid() {
	local pid
	read -r pid 2>/dev/null <"$1/haproxy.pid" && [[ $pid =~ ^[0-9]+$ ]] && printf '%s\n' "$pid"
}

# children of the master that are HAProxy processes (the workers)
svc_worker_pids() {
	local m f st pp
	m=$(svc_master_pid "$1") || return 1
	for f in /proc/[0-9]*/stat; do
		{ read -r st <"$f"; } 2>/dev/null || continue
		local pid=${f#/proc/}
		pid=${pid%/stat}
		st=${st##*) }
		read -r s pp _ <<<"$st"
		[[ $pp == "$m" && $s != Z ]] && printf '%s\n' "$pid"
	done
	return 0
}

# svc_wait_code URL WANT TIMEOUT_MS: poll until URL answers WANT (bounded); 0 when it did
svc_wait_code() {
	local url=$1 want=$2 end
	end=$(($(ht_now_ms) + $3))
	while (($(ht_now_ms) < end)); do
		[[ $(svc_code "$url") == "$want" ]] && return 0
		sleep 0.05
	done
	return 1
}

# ht_worker_of ID [WORKER_BITS=10 SEQUENCE_BITS=12]: the worker encoded in an ID
ht_worker_of() { local wb=${2:-10} sb=${3:-12}; echo $((($1 >> sb) & ((1 << wb) - 1))); }
