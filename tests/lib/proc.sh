# shellcheck shell=bash
# tests/lib/proc.sh: processes the tests started, by PID only (never by name).
#
#   proc_alive PID               true while PID exists and has not finished exiting (a zombie
#                                thread-group leader whose other threads still run, and still hold
#                                its sockets, counts as alive)
#   proc_starttime PID           its start time (clock ticks since boot): with the PID, an identity
#                                that survives PID reuse
#   proc_stop PID [TIMEOUT_MS]   SIGCONT + SIGTERM, SIGKILL after the timeout (5000), reaps it
#   wait_until TIMEOUT_MS CMD... run CMD every 20 ms until it succeeds (0) or the time is up (1)

# one definition of "alive", the launcher's (the product cannot use tests/; the tests use the product)
# shellcheck source=haproxy/zookeeper.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../haproxy/zookeeper.sh"
proc_alive() { zk_proc_alive "$1"; }

proc_starttime() {
	local st f
	{ read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
	st=${st##*) }
	read -r -a f <<<"$st"
	echo "${f[19]}"
}

proc_stop() {
	local pid=$1 tmo=${2:-5000} i
	proc_alive "$pid" || { wait "$pid" 2>/dev/null; return 0; }
	# a stopped (SIGSTOP) process acts on SIGTERM only once continued
	kill -CONT "$pid" 2>/dev/null
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < tmo / 20; i++)); do
		proc_alive "$pid" || break
		sleep 0.02
	done
	if proc_alive "$pid"; then
		printf '# pid %s ignored SIGTERM for %s ms, sending SIGKILL\n' "$pid" "$tmo"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	return 0
}

wait_until() {
	local now_us end_us
	now_us=${EPOCHREALTIME/./}
	end_us=$((now_us + $1 * 1000))
	shift
	until "$@"; do
		now_us=${EPOCHREALTIME/./}
		((now_us < end_us)) || return 1
		sleep 0.02
	done
}
