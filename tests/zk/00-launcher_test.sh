#!/usr/bin/env bash
# The ZooKeeper launcher (haproxy/zookeeper.sh: `make run`'s, and every suite's). A single node
# starts, keeps a znode (through libzookeeper-mt: zkctl), listens on its address only, stops and is
# gone (process, port, pid file), restarts on the same port with its data, and crashes (zk_kill)
# without leaving anything. A server on another address under a command prefix (ZK_BIND,
# ZK_CMD_PREFIX: the drills pass 10.213.0.2x and `ip netns exec <ns>`), and a three-node ensemble
# laid out as the drills lay theirs (an address per node, the same ports on each, here on
# 127.0.0.2-4) that loses its quorum and regains it.
# Figures: how long a single node and the ensemble take to serve.
set -u
# shellcheck source=tests/zk/lib.sh
. "$(dirname "$0")/lib.sh"
zt_init 00-launcher

# leftovers: the PIDs of processes whose command line names our temp dir (none once stopped)
# (one grep over every command line, listed here first: grep's own, which names $T too, is not in
# the list)
# shellcheck disable=SC2317 # called through check
leftovers() {
	local f pids=() files=(/proc/[0-9]*/cmdline)
	while IFS= read -r f; do
		f=${f#/proc/}
		pids+=("${f%/cmdline}")
	done < <(grep -laF -- "$T/" "${files[@]}" 2>/dev/null)
	((${#pids[@]})) && echo "${pids[*]}"
	return 0
}
# shellcheck disable=SC2317 # called through check
no_leftovers() { local l; l=$(leftovers); [[ -z $l ]] || { diag "left running: $l"; return 1; }; }
# shellcheck disable=SC2317 # called through check
port_closed() { ! (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null; }
# listens_only PID ADDR: PID listens, and only on ADDR
# shellcheck disable=SC2317 # called through check
listens_only() {
	local lines
	lines=$(ss -Htlnp 2>/dev/null | grep -F "pid=$1,") || { diag "no listener of pid $1"; return 1; }
	if awk -v a="$2:" 'index($4, a) != 1 { bad = 1 } END { exit !bad }' <<<"$lines"; then
		diag "a listener of pid $1 off $2: $lines"
		return 1
	fi
}
# ran_under_prefix PID N: the JVM was started after ZK_CMD_PREFIX="env SF_LAUNCHER_NODE=%n"
# shellcheck disable=SC2317 # called through check
ran_under_prefix() { tr '\0' '\n' <"/proc/$1/environ" 2>/dev/null | grep -qx "SF_LAUNCHER_NODE=$2"; }
# zkc HOSTS COMMAND ARGS...: zkctl, its "DONE ..." lines left out
zkc() { "$ZKCTL" "$@" | grep -v '^DONE '; return "${PIPESTATUS[0]}"; }
# shellcheck disable=SC2317 # called through check
fails() { ! "$@"; }

# ---------------------------------------------------------------- single node
t=$(zt_mono)
cs=$(zk_start "$T/single")
rc=$?
figure launcher_single_start_ms $(($(zt_mono) - t))
check "a single node starts: ${cs:-none}" test "$rc" -eq 0
if ((rc == 0)); then
	pid=$(zk_pid "$T/single")
	port=${cs##*:}
	check "pid $pid leads its own process group" test "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid"
	check "it listens on 127.0.0.1 only" listens_only "$pid" 127.0.0.1
	check "4lw ruok -> imok" test "$(zk_4lw "$port" ruok)" = imok
	check "zk_mode: standalone" test "$(zk_mode "$T/single")" = standalone
	check "its server log is in its dir" test -s "$T/single/zookeeper.log"
	check "its admin server is off" grep -q '^admin.enableServer=false' "$T/single/zoo.cfg"
	check "a persistent znode is created" zkc "$cs" create /launcher hello
	check "and read back" test "$(zkc "$cs" get /launcher)" = hello
	check "an ephemeral znode is created" zkc "$cs" create /launcher-eph x -e
	check "creating an existing znode fails" fails zkc "$cs" create /launcher again 2>/dev/null
	t=$(zt_mono)
	check "zk_stop" zk_stop "$T/single"
	diag "the stop took $(($(zt_mono) - t)) ms"
	check "process $pid is gone" fails proc_alive "$pid"
	check "port $port is closed" port_closed "$port"
	check "the pid file is removed" test ! -e "$T/single/zk.pid"
	check "no process is left" no_leftovers
	cs2=$(zk_start "$T/single" "$port")
	check "a restart on the same port" test "$cs2" = "$cs"
	check "the persistent znode survived the restart" test "$(zkc "$cs" get /launcher 2>/dev/null)" = hello
	check "zk_kill (SIGKILL)" zk_kill "$T/single"
	check "no process is left after the kill" no_leftovers
	check "zk_stop is idempotent" zk_stop "$T/single"
fi

# ---------------------------------------------------------------- address and command prefix
cs=$(ZK_BIND=127.0.0.2 ZK_CMD_PREFIX="env SF_LAUNCHER_NODE=%n" zk_start "$T/bound")
rc=$?
check "a node on 127.0.0.2 under a command prefix starts: ${cs:-none}" test "$rc" -eq 0
if ((rc == 0)); then
	pid=$(zk_pid "$T/bound")
	check "it listens on 127.0.0.2 only" listens_only "$pid" 127.0.0.2
	check "the JVM ran after the command prefix (%n = 1)" ran_under_prefix "$pid" 1
	check "zk_ask reaches it on its address" test "$(zk_ask "$T/bound" ruok)" = imok
	check "a znode is created through it" zkc "$cs" create /launcher-bound x
	check "zk_stop" zk_stop "$T/bound"
	check "port ${cs##*:} on 127.0.0.2 is closed" port_closed "${cs##*:}" 127.0.0.2
fi

# ---------------------------------------------------------------- ensemble
if ! { p1=$(zk_free_port) && p2=$(zk_free_port "$p1") && p3=$(zk_free_port "$p1" "$p2"); }; then
	fatal "three free ports"
fi
e=$T/ens
t=$(zt_mono)
ecs=$(ZK_BIND="127.0.0.2 127.0.0.3 127.0.0.4" ZK_PORTS="$p1 $p2 $p3" \
	ZK_CMD_PREFIX="env SF_LAUNCHER_NODE=%n" zk_ensemble_start "$e" 3)
rc=$?
figure launcher_ensemble_start_ms $(($(zt_mono) - t))
check "a three-node ensemble starts with a quorum: ${ecs:-none}" test "$rc" -eq 0
if ((rc == 0)); then
	check "its connect string names each node's address, one client port" \
		test "$ecs" = "127.0.0.2:$p1,127.0.0.3:$p1,127.0.0.4:$p1"
	for i in 1 2 3; do
		pid=$(zk_pid "$(zk_node_dir "$e" "$i")")
		check "node $i listens on 127.0.0.$((i + 1)) only" listens_only "$pid" "127.0.0.$((i + 1))"
		check "node $i ran after its command prefix (%n = $i)" ran_under_prefix "$pid" "$i"
	done
	check "a znode is created through the ensemble" zkc "$ecs" create /launcher-ens v1
	leader=$(zk_ensemble_leader "$e")
	check "a leader exists (n${leader:-?})" test -n "$leader"
	leader=${leader:-1}
	other=$((leader % 3 + 1)) last=$(((leader + 1) % 3 + 1))
	check "kill the leader n$leader" zk_node_kill "$e" "$leader"
	check "stop the follower n$other" zk_node_stop "$e" "$other"
	# shellcheck disable=SC2317 # called by wait_until
	no_quorum() { [[ $(zk_node_mode "$e" "$last") == no-quorum ]]; }
	check "the survivor n$last has no quorum" wait_until 5000 no_quorum
	t=$(zt_mono)
	check "restart n$other" zk_node_start "$e" "$other"
	check "the quorum is regained" zk_ensemble_wait_quorum "$e" 30
	diag "the quorum was back $(($(zt_mono) - t)) ms after one node was restarted"
	check "the znode is readable after the quorum loss" test "$(zkc "$ecs" get /launcher-ens 2>/dev/null)" = v1
	check "restart n$leader and wait until it serves" zk_node_start "$e" "$leader" --wait-serving
	modes=$(for i in 1 2 3; do zk_node_mode "$e" "$i"; done | sort | tr '\n' ' ')
	check "modes: $modes" test "$modes" = "follower follower leader "
	check "zk_ensemble_stop" zk_ensemble_stop "$e"
	check "no process is left" no_leftovers
fi
zt_done
