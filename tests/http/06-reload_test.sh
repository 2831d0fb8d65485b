#!/usr/bin/env bash
# Master-worker reload (kill -USR2 the HAProxy master) under continuous /id load, twice: zero failed
# requests (every answer 200, no connection error) and no duplicate across the old and the new
# workers (each holds its own lease, so each has its own worker ID).
#
# The one client-side allowance: a request that got no byte of answer on a REUSED keep-alive
# connection that the server closed (the old worker closes idle connections when it soft-stops) is
# sent again on a new connection, as every HTTP client does for idempotent requests (RFC 9112
# 9.3.1); such retries are counted and reported ("retried"), everything else is a failure.
# The load is paced at 4000 requests/s: the default rate limit (100000 requests / 10 s per source)
# stays out of the way (CONFIG's limits are not honoured by run.sh, see 01-api).
# shellcheck disable=SC2015 # ok and not_ok always succeed: "cond && ok || not_ok" is if-then-else
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ht_init 06-reload

LOADGEN=$(ht_build_loadgen) || { not_ok "build tests/http/loadgen.c"; exit 1; }
export ZK_TICK_MS=500
# each reload's new worker claims a lease within the 3 s the service waits for it: ZooKeeper's own
# log fsync on a shared CI disk is not what this test is about
export ZK_FORCE_SYNC=no
zk=$(zk_start "$T/zk") || { not_ok "ZooKeeper starts"; exit 1; }
svc_config "$T/svc.conf.lua" "$zk" "$T/svc/state"
url=$(svc_start "$T/svc" ZK_HOSTS="$zk" CONFIG="$T/svc.conf.lua") || { not_ok "the service starts"; exit 1; }
port=${url##*:}
ok "the service starts ($url)"
master=$(svc_master_pid "$T/svc")
w0=$(svc_worker_pids "$T/svc" | tr '\n' ' ')

mkdir -p "$T/l"
"$LOADGEN" -p "$port" -c 8 -R 4000 -d 7 -t 30 -m id -r -o "$T/l" >"$T/l.out" 2>&1 &
lg=$!
sleep 2
kill -USR2 "$master"
diag "reload 1: kill -USR2 $master (workers before: $w0)"
sleep 2.5
w1=$(svc_worker_pids "$T/svc" | tr '\n' ' ')
kill -USR2 "$master"
diag "reload 2: kill -USR2 $master (workers before: $w1)"
wait "$lg"
sed 's/^/# /' "$T/l.out"
sum=$(grep '^SUMMARY' "$T/l.out")
get() { sed -n "s/.* $1=\([0-9]*\) .*/\1/p" <<<"$sum"; }
[[ -n $sum ]] || { not_ok "the load client reports"; ht_done; }
w2=$(svc_worker_pids "$T/svc" | tr '\n' ' ')
check "the master (pid $master) survived both reloads" proc_alive "$master"
[[ $w1 != "$w0" && -n $w1 ]] && ok "reload 1 started a new worker (before: $w0, after: $w1)" || not_ok "reload 1 started a new worker (before: $w0, after: $w1)"
(($(get non200) == 0)) && ok "every answer during both reloads is 200 ($(get ok) of $(get requests) requests)" ||
	not_ok "every answer during both reloads is 200 ($(get non200) of $(get requests) were not: codes $(sed -n 's/.* codes=\([^ ]*\).*/\1/p' <<<"$sum"))"
(($(get conn_errors) == 0 && $(get bad) == 0)) && ok "no connection error and no malformed answer during the reloads" ||
	not_ok "no connection error and no malformed answer during the reloads (conn_errors $(get conn_errors), bad $(get bad))"
(($(get order_violations) == 0)) && ok "per-worker order held on every connection" || not_ok "per-worker order held on every connection ($(get order_violations) violations)"
figure reload_idle_close_retries "$(get retried)"
figure reload_requests "$(get requests)"
nworkers=$(sed -n 's/.* workers=\([^ ]*\) .*/\1/p' <<<"$sum" | tr ',' '\n' | grep -c .)
((nworkers >= 2)) && ok "IDs came from the old and the new workers ($nworkers worker IDs)" || not_ok "IDs came from the old and the new workers (only $nworkers worker ID)"
total=$(cat "$T"/l/*.ids | wc -l)
dups=$(cat "$T"/l/*.ids | LC_ALL=C sort | uniq -d | head -3)
[[ -z $dups && $total -gt 0 ]] && ok "no duplicate among the $total IDs of old and new workers" || not_ok "no duplicate among the $total IDs of old and new workers ($dups)"
# the old workers finish (their connections were closed) within a bounded time
end=$(($(ht_now_ms) + 15000))
left=
while (($(ht_now_ms) < end)); do
	left=
	for p in $w0 $w1; do [[ " $w2 " == *" $p "* ]] && continue; proc_alive "$p" && left+="$p "; done
	[[ -z $left ]] && break
	sleep 0.1
done
[[ -z $left ]] && ok "the old workers exited after the reloads" || not_ok "the old workers exited after the reloads (still alive: $left)"
# each old worker's exit as the master saw it: a clean one, never a signal (the lease's threads
# once outlived the module Lua unloads at exit: SIGSEGV after every reload)
exits=$(grep -o 'Former worker ([0-9]*) exited with code [0-9]*[^)]*)' "$T/svc/run.log")
n_exits=$(grep -c . <<<"$exits")
bad_exits=$(grep -v 'exited with code 0 ' <<<"$exits")
[[ $n_exits -ge 2 && -z $bad_exits ]] && ok "both old workers exited cleanly (code 0)" ||
	not_ok "both old workers exited cleanly (code 0): ${exits:-no exit line in run.log}"
# each old worker released its lease on its way out (an atexit handler): the "stopped" line on its
# stderr (run.log), and its worker node already gone when the process is, so only the live
# worker's node is left (before, the node outlived the process by a session timeout)
ZKCTL=${ZKCTL:-$BUILD/tests/zkctl}
for p in $w0 $w1; do
	[[ " $w2 " == *" $p "* ]] && continue
	check "old worker $p logged its lease's stop at exit" grep -q "lease state=stopped .* pid=$p " "$T/svc/run.log"
done
if [[ -x $ZKCTL ]]; then
	nodes=$("$ZKCTL" "$zk" ls /snowflake/http-test/workers 2>/dev/null | tr '\n' ' ')
	check "only the live worker's node is left under workers/ right after the old ones exited (${nodes:-none})" \
		test "$(wc -w <<<"$nodes")" = 1
else
	not_ok "zkctl is built ($ZKCTL: make $ZKCTL)"
fi
code=$(svc_code "$url/health")
[[ $code == 200 ]] && ok "/health is 200 after the reloads" || not_ok "/health is 200 after the reloads (got $code)"
ht_done
