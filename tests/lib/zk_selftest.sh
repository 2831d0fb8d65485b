#!/usr/bin/env bash
# Self-test for tests/lib/zk.sh: start a real ZooKeeper node, write and read a znode through
# libzookeeper-mt (a small C program compiled into the temp dir), stop it, and check that nothing is
# left running or listening. Unless --quick, do the same with a three-node ensemble, including losing
# and regaining quorum.
# Usage: tests/lib/zk_selftest.sh [--quick] [--keep]      exit 0 = pass
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=zk.sh
. "$here/zk.sh"

quick=0 keep=0
for a in "$@"; do
	case $a in
	--quick) quick=1 ;;
	--keep) keep=1 ;;
	*) echo "usage: $0 [--quick] [--keep]" >&2; exit 2 ;;
	esac
done

root=$(mktemp -d "${TMPDIR:-/tmp}/zk-selftest.XXXXXX") || exit 1
failures=0
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	zk_stop_all "$root"
	if ((keep)); then echo "kept $root" >&2; else rm -rf "$root"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ok() { printf 'ok   %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; failures=$((failures + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
ms() { local t; t=$(date +%s%N); echo $((t / 1000000)); }

# Processes whose command line mentions our temp dir (there must be none after a stop).
leftovers() {
	local f pids=()
	for f in /proc/[0-9]*/cmdline; do
		[[ $f == "/proc/$$/cmdline" || $f == "/proc/$BASHPID/cmdline" ]] && continue
		if tr '\0' ' ' 2>/dev/null <"$f" | grep -qF -- "$root/"; then
			f=${f#/proc/}; pids+=("${f%/cmdline}")
		fi
	done
	((${#pids[@]})) && echo "${pids[*]}"
	return 0
}
no_leftovers() { local l; l=$(leftovers); [[ -z $l ]] || { echo "  left running: $l" >&2; return 1; }; }
port_closed() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Every TCP listener of PID is bound to 127.0.0.1.
loopback_only() {
	local pid=$1 lines
	lines=$(ss -Htlnp 2>/dev/null | grep -F "pid=$pid,") || { echo "  no listeners for $pid" >&2; return 1; }
	if grep -vqE '^\S+\s+\S+\s+\S+\s+127\.0\.0\.1:' <<<"$lines"; then
		echo "  non-loopback listener: $lines" >&2
		return 1
	fi
}

# --- the C client (sync API of libzookeeper-mt) ------------------------------------------------------
zkc=$root/zkc
cat >"$root/zkc.c" <<'EOF'
/* zkc HOSTS create PATH DATA [ephemeral] | get PATH -- minimal libzookeeper-mt sync client.
   Build with -DTHREADED: zookeeper.h declares the sync API (zoo_create, zoo_get, ...) only under it. */
#include <zookeeper/zookeeper.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc < 4) return 2;
  zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
  zhandle_t *zh = zookeeper_init(argv[1], NULL, 4000, NULL, NULL, ZOO_NO_LOG_CLIENTENV);
  for (int i = 0; zh && zoo_state(zh) != ZOO_CONNECTED_STATE; i++) { if (i > 10000) { fprintf(stderr, "zkc: no session\n"); return 1; } usleep(1000); }
  if (!zh) return 1;
  char buf[256] = ""; int len = sizeof buf - 1, rc; struct Stat st;
  if (!strcmp(argv[2], "create") && argc >= 5) {
    int eph = argc > 5 && !strcmp(argv[5], "ephemeral");
    rc = zoo_create(zh, argv[3], argv[4], (int)strlen(argv[4]), &ZOO_OPEN_ACL_UNSAFE, eph ? ZOO_EPHEMERAL : ZOO_PERSISTENT, NULL, 0);
    if (rc == ZOK && eph) { rc = zoo_get(zh, argv[3], 0, buf, &len, &st);
      if (rc == ZOK && st.ephemeralOwner != zoo_client_id(zh)->client_id) { fprintf(stderr, "zkc: ephemeralOwner mismatch\n"); rc = ZSYSTEMERROR; } }
  } else if (!strcmp(argv[2], "get")) {
    rc = zoo_get(zh, argv[3], 0, buf, &len, &st);
    if (rc == ZOK) printf("%.*s\n", len, buf);
  } else rc = ZBADARGUMENTS;
  if (rc != ZOK) fprintf(stderr, "zkc: %s %s: %s\n", argv[2], argv[3], zerror(rc));
  zookeeper_close(zh);
  return rc == ZOK ? 0 : 1;
}
EOF
if ! gcc -O1 -DTHREADED -Wall -Werror=implicit-function-declaration -o "$zkc" "$root/zkc.c" -lzookeeper_mt 2>"$root/zkc.err"; then
	echo "cannot build the C client (need gcc and libzookeeper-mt-dev):" >&2
	cat "$root/zkc.err" >&2
	exit 1
fi

# --- single node -----------------------------------------------------------------------------------
t=$(ms)
cs=$(zk_start "$root/single")
rc=$?
t_single=$(($(ms) - t))
check "single node starts (${t_single} ms): ${cs:-none}" test "$rc" -eq 0
if ((rc == 0)); then
	pid=$(<"$root/single/zk.pid")
	port=${cs##*:}
	check "pid $pid is its own process group" test "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid"
	check "listens on 127.0.0.1 only" loopback_only "$pid"
	check "4lw ruok -> imok" test "$(zk_4lw "$port" ruok)" = imok
	check "server log is in the dir" test -s "$root/single/zookeeper.log"
	check "admin server disabled" grep -q '^admin.enableServer=false' "$root/single/zoo.cfg"
	check "create persistent znode" "$zkc" "$cs" create /zk-selftest hello
	check "read it back" test "$("$zkc" "$cs" get /zk-selftest)" = hello
	check "ephemeral znode owned by our session" "$zkc" "$cs" create /zk-selftest-eph x ephemeral
	check "duplicate create fails" test "$("$zkc" "$cs" create /zk-selftest again 2>&1)" = "zkc: create /zk-selftest: node exists"
	t=$(ms)
	check "zk_stop" zk_stop "$root/single"
	echo "     (stop took $(($(ms) - t)) ms)"
	check "process $pid gone" test ! -e "/proc/$pid" -o "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z
	check "port $port closed" port_closed "$port"
	check "pid file removed" test ! -e "$root/single/zk.pid"
	check "no process left" no_leftovers
	# restart on the same port keeps the data (persistent znode survives)
	cs2=$(zk_start "$root/single" "$port")
	check "restart on the same port" test "$cs2" = "$cs"
	check "persistent znode survived restart" test "$("$zkc" "$cs" get /zk-selftest 2>/dev/null)" = hello
	check "zk_kill (SIGKILL)" zk_kill "$root/single"
	check "no process left after kill" no_leftovers
	check "zk_stop is idempotent" zk_stop "$root/single"
fi

# --- three-node ensemble ---------------------------------------------------------------------------
if ((!quick)); then
	e=$root/ens
	t=$(ms)
	ecs=$(zk_ensemble_start "$e" 3)
	rc=$?
	t_ens=$(($(ms) - t))
	check "ensemble starts with quorum (${t_ens} ms): ${ecs:-none}" test "$rc" -eq 0
	if ((rc == 0)); then
		for i in 1 2 3; do check "node $i listens on 127.0.0.1 only" loopback_only "$(<"$e/n$i/zk.pid")"; done
		check "create znode via ensemble" "$zkc" "$ecs" create /zk-ens v1
		leader=$(zk_ensemble_leader "$e")
		check "a leader exists (n${leader:-?})" test -n "$leader"
		other=$((leader % 3 + 1)) last=$(((leader + 1) % 3 + 1))
		check "kill leader n$leader" zk_node_kill "$e" "$leader"
		check "stop follower n$other" zk_node_stop "$e" "$other"
		sleep 0.3
		check "survivor n$last has no quorum" test "$(zk_node_mode "$e" "$last")" = no-quorum
		t=$(ms)
		check "restart n$other" zk_node_start "$e" "$other"
		check "quorum regained" zk_ensemble_wait_quorum "$e" 30
		echo "     (quorum back $(($(ms) - t)) ms after restarting one node)"
		check "znode readable after quorum loss" test "$("$zkc" "$ecs" get /zk-ens 2>/dev/null)" = v1
		check "restart n$leader and wait until it serves" zk_node_start "$e" "$leader" --wait-serving
		modes=$(for i in 1 2 3; do zk_node_mode "$e" "$i"; done | sort | tr '\n' ' ')
		check "modes: $modes" test "$modes" = "follower follower leader "
		check "zk_ensemble_stop" zk_ensemble_stop "$e"
		check "no process left" no_leftovers
	fi
fi

echo "single node ready: ${t_single:-?} ms${t_ens:+; ensemble quorum: $t_ens ms}"
if ((failures)); then
	echo "zk_selftest: $failures FAILED"
	exit 1
fi
echo "zk_selftest: PASS"
