#!/usr/bin/env bash
# Runs edge-snowflake in the foreground: a local single-node ZooKeeper (unless
# ZK_HOSTS names one) and one HAProxy serving the API. SIGINT (Ctrl-C) or
# SIGTERM stops everything this script started, by PID.
#
# Environment (all optional):
#   PORT       HTTP port (8080)          BIND_ADDR  address (127.0.0.1)
#   RUN_DIR    state, logs, sockets (build/run)
#   CONFIG     a Lua config file; default: one written into RUN_DIR that points
#              at the ZooKeeper started here
#   ZK_HOSTS   use this ZooKeeper instead of starting one
#   ZK_AUTH    user:password (or 1: one made up here): the default config then sets
#              lease.auth_file to a file holding it (mode 0600, in RUN_DIR) and
#              lease.require_acl, under its own root (/snowflake/local-auth)
#   THREADS    HAProxy threads (2)       LOG_TARGET HAProxy log target (stderr)
#   MAXCONN    HAProxy's global maxconn (20000; lowered to fit the fd hard limit, see below)
#   CONN_PER_ADDR  connections one source address may hold open (1000)
#   HAPROXY_ENV_PREFIX  a command put before haproxy (e.g. a faketime wrapper)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
run_dir=${RUN_DIR:-$top/build/run}
port=${PORT:-8080}
mkdir -p "$run_dir"
run_dir=$(cd "$run_dir" && pwd)

say() { printf 'edge-snowflake: %s\n' "$*" >&2; }

haproxy_pid=
started_zk=
# shellcheck disable=SC2317 # the EXIT trap runs it
cleanup() {
	trap - INT TERM EXIT
	if [ -n "$haproxy_pid" ] && kill -0 "$haproxy_pid" 2>/dev/null; then
		kill -TERM "$haproxy_pid" 2>/dev/null
		for _ in $(seq 1 50); do kill -0 "$haproxy_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$haproxy_pid" 2>/dev/null
	fi
	if [ -n "$started_zk" ]; then
		zk_stop "$run_dir/zk" >/dev/null 2>&1
	fi
	say "stopped"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

zk_hosts=${ZK_HOSTS:-}
if [ -z "$zk_hosts" ]; then
	# shellcheck source=haproxy/zookeeper.sh
	. "$top/haproxy/zookeeper.sh"
	# session timeouts of 1..10 s are negotiable with a 500 ms tick
	export ZK_TICK_MS=${ZK_TICK_MS:-500}
	if ! zk_hosts=$(zk_start "$run_dir/zk"); then
		say "ZooKeeper did not start; see $run_dir/zk/zookeeper.log"
		exit 1
	fi
	started_zk=1
	say "ZooKeeper on $zk_hosts"
fi

config=${CONFIG:-}
if [ -z "$config" ]; then
	config=$run_dir/snowflake.conf.lua
	lease_extra=
	if [ -n "${ZK_AUTH:-}" ]; then
		auth=$ZK_AUTH
		[ "$auth" = 1 ] && auth="edge:$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
		(umask 077 && printf '%s\n' "$auth" >"$run_dir/zk.auth") || exit 1
		lease_extra=", root = \"/snowflake/local-auth\", auth_file = \"$run_dir/zk.auth\", require_acl = true"
		say "registry credential in $run_dir/zk.auth (nodes writable by ${auth%%:*} only)"
	else
		lease_extra=', root = "/snowflake/local"'
	fi
	cat >"$config" <<CONF
-- written by haproxy/run.sh; see README.md for every key
return {
  lease = { zk_hosts = "$zk_hosts"$lease_extra },
  state = { dir = "$run_dir/state" },
}
CONF
fi

# derive [check]: what the HAProxy configuration needs from the Lua config, written by
# snowflake/render.lua: derived.cfg (the SF_* values as `setenv`), peers.cfg (the peers'
# backend), peers.acl (the addresses handoffs are honoured from). They are written into
# RUN_DIR/next first; with "check", `haproxy -c` must accept them there; only then do they
# replace the ones in RUN_DIR, which HAProxy reads (a refused reload leaves them as they were).
# (The paths go through the environment: an argument after -e would be run as a script, and
# stdin is never read.)
derive() {
	local next=$run_dir/next f
	mkdir -p "$next" || return 1
	# shellcheck disable=SC2016 # Lua
	(cd "$top" && SF_CFG_PATH=$config SF_RUN_DIR=$next SF_NODE_DEFAULT=$(hostname) LUA_PATH="$top/lua/?.lua;;" \
		LUA_CPATH="$top/build/lua5.3/?.so;;" lua5.3 -e 'require("snowflake.render").main(os.getenv("SF_CFG_PATH"), os.getenv("SF_RUN_DIR"),
			os.getenv("SF_NODE_DEFAULT"))' </dev/null >/dev/null) || return 1
	if [ "${1:-}" = check ]; then
		SF_PEERS_ACL=$next/peers.acl haproxy -c -q -f "$next/derived.cfg" -f "$top/haproxy/haproxy.cfg" \
			-f "$next/peers.cfg" || return 2
	fi
	for f in derived.cfg peers.cfg peers.acl; do mv -f "$next/$f" "$run_dir/$f" || return 1; done
}
export SF_DERIVED_CFG=$run_dir/derived.cfg SF_PEERS_CFG=$run_dir/peers.cfg SF_PEERS_ACL=$run_dir/peers.acl

export SNOWFLAKE_CONFIG=$config
export SF_HOME=$top
export SF_LUA_CPATH=$top/build/lua5.3
export SF_BIND=${BIND_ADDR:-127.0.0.1}:$port
export SF_SOCKET=$run_dir/haproxy.sock
export SF_THREADS=${THREADS:-2}
export SF_LOG_TARGET=${LOG_TARGET:-stderr}

# Connection limits (haproxy.cfg's global section). HAProxy wants ~2 fds a connection plus a few
# (2 x maxconn + 28 with 2 threads: 40028 for 20000) and sets RLIMIT_NOFILE itself; it can raise
# the hard limit only with CAP_SYS_RESOURCE. Below that hard limit, it runs with the limit there
# is (SF_ULIMIT_N) and a maxconn that leaves FD_RESERVE fds for what is not a caller's
# connection (handoffs to peers, checks, ZooKeeper, logs, the CLI).
fd_reserve=2000
maxconn=${MAXCONN:-20000}
ulimit -n "$(ulimit -Hn)" 2>/dev/null
fd_hard=$(ulimit -Hn)
if [ "$fd_hard" != unlimited ] && [ "$fd_hard" -lt $((2 * maxconn + 100)) ] &&
	! (ulimit -Hn $((2 * maxconn + 100))) 2>/dev/null; then
	if [ $((fd_hard - fd_reserve)) -lt "$maxconn" ]; then
		maxconn=$((fd_hard - fd_reserve))
	fi
	if [ "$maxconn" -lt 1000 ]; then
		say "the fd hard limit ($fd_hard) leaves room for $maxconn connections; raise it (ulimit -Hn)"
		exit 1
	fi
	export SF_ULIMIT_N=$fd_hard
	say "fd hard limit $fd_hard, below 2 x ${MAXCONN:-20000} + 100: maxconn $maxconn, ulimit-n $fd_hard"
fi
export SF_MAXCONN=$maxconn SF_FRONTEND_MAXCONN=$((maxconn - 100)) SF_CONN_PER_ADDR=${CONN_PER_ADDR:-1000}

derive check
case $? in
0) ;;
2) say "haproxy -c failed"; exit 1 ;;
*) say "invalid config $config"; exit 1 ;;
esac
haproxy_files=(-f "$SF_DERIVED_CFG" -f "$top/haproxy/haproxy.cfg" -f "$SF_PEERS_CFG")

# SIGHUP: a reload with the config as it is now (http.peers added or removed, any key): derive
# again and check, then HAProxy's own hitless reload (USR2 to the master: a new worker with its
# own lease takes the sockets, the old one finishes what it holds). A config that does not
# check changes nothing.
# shellcheck disable=SC2317 # the HUP trap runs it
reload() {
	derive check
	case $? in
	0) kill -USR2 "$haproxy_pid" 2>/dev/null && say "reloading HAProxy (pid $haproxy_pid) with $config" ;;
	2) say "reload refused: haproxy -c failed (HAProxy goes on with the config it has)" ;;
	*) say "reload refused: invalid config $config (HAProxy goes on with the one it has)" ;;
	esac
}

# shellcheck disable=SC2086
${HAPROXY_ENV_PREFIX:-} haproxy -W -db "${haproxy_files[@]}" -p "$run_dir/haproxy.pid" &
haproxy_pid=$!
trap reload HUP
say "HAProxy (pid $haproxy_pid) serving http://$SF_BIND  (CLI: socat - UNIX:$SF_SOCKET; reload: kill -HUP $$; stop: Ctrl-C or kill $$)"
# a trapped HUP ends `wait` early: wait again while HAProxy runs; the last wait gives its status
# (bash keeps it for a child it already reaped)
while kill -0 "$haproxy_pid" 2>/dev/null; do
	wait "$haproxy_pid"
done
wait "$haproxy_pid"
status=$?
trap - HUP
haproxy_pid=
exit "$status"
