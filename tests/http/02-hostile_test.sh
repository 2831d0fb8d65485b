#!/usr/bin/env bash
# SPEC "HTTP API": "No request of any shape crashes a process or returns another 5xx." Hundreds of
# malformed and hostile requests over raw TCP (hostile.lua): odd methods and paths, every odd shape
# of count, 100 KB request lines and headers, NUL bytes, bad HTTP versions, pipelining, abandoned and
# stalled partial requests, bad percent-encoding, header injection. Then: the same HAProxy master
# and worker are alive, /health is 200, the log holds no Lua error.
# shellcheck disable=SC2015 # ok and not_ok always succeed: "cond && ok || not_ok" is if-then-else
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ht_init 02-hostile

export ZK_TICK_MS=500
zk=$(zk_start "$T/zk") || { not_ok "ZooKeeper starts"; exit 1; }
svc_config "$T/svc.conf.lua" "$zk" "$T/svc/state"
url=$(svc_start "$T/svc" ZK_HOSTS="$zk" CONFIG="$T/svc.conf.lua") || { not_ok "the service starts"; exit 1; }
ok "the service starts ($url)"
master=$(svc_master_pid "$T/svc")
workers=$(svc_worker_pids "$T/svc" | sort | tr '\n' ' ')
diag "master $master, workers $workers"

lua5.4 "$HT_HERE/hostile.lua" "${url##*:}" || suite_failed=$((suite_failed + 1))

check "the HAProxy master (pid $master) is still alive" proc_alive "$master"
after=$(svc_worker_pids "$T/svc" | sort | tr '\n' ' ')
if [[ -n $workers && $after == "$workers" ]]; then ok "the same HAProxy worker(s) are alive ($after)"; else not_ok "the same HAProxy worker(s) are alive (before: $workers, after: $after)"; fi
code=$(svc_code "$url/health")
[[ $code == 200 ]] && ok "/health is 200 afterwards" || not_ok "/health is 200 afterwards (got $code)"
code=$(svc_code "$url/id")
[[ $code == 200 ]] && ok "/id is 200 afterwards" || not_ok "/id is 200 afterwards (got $code)"
if grep -E -i 'service error|runtime error|lua.*(error|abort)|segfault|core dump' "$T/svc/run.log" >"$T/errors"; then
	not_ok "the service log holds no Lua or runtime error"
	head -5 "$T/errors" | sed 's/^/#   /'
else
	ok "the service log holds no Lua or runtime error"
fi
ht_done
