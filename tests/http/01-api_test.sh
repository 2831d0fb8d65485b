#!/usr/bin/env bash
# SPEC "HTTP API" (every row and every "Details the checks hold the service to") and the operator
# CLI of SPEC "Operator interface", against the real service: haproxy/run.sh (HAProxy 2.6 + Lua +
# the C core) with a ZooKeeper started here. A second instance with limits.rate_per_10s = 50 checks
# the 429. The main instance's config names the node (http.node_name): X-Snowflake-Node must carry
# it. The checks themselves are in api.lua (lua5.4 + lua-socket + dkjson).
# shellcheck disable=SC2015 # ok and not_ok always succeed: "cond && ok || not_ok" is if-then-else
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ht_init 01-api

export ZK_TICK_MS=500
zk=$(zk_start "$T/zk") || { not_ok "ZooKeeper starts"; exit 1; }

svc_config "$T/main.conf.lua" "$zk" "$T/main/state" 'http = { node_name = "edge-http-test-1" }'
svc_config "$T/rate.conf.lua" "$zk" "$T/rate/state" 'limits = { rate_per_10s = 50 }'

url=$(svc_start "$T/main" ZK_HOSTS="$zk" CONFIG="$T/main.conf.lua") || { not_ok "the service starts (/health 200)"; exit 1; }
ok "the service starts and /health is 200 ($url)"
rate_url=$(svc_start "$T/rate" ZK_HOSTS="$zk" CONFIG="$T/rate.conf.lua") || { not_ok "the rate-limited service starts"; exit 1; }
ok "a second instance with limits.rate_per_10s = 50 starts ($rate_url)"

lua5.4 "$HT_HERE/api.lua" "${url##*:}" "$T/main" "${rate_url##*:}" edge-http-test-1 "$T/rate" || suite_failed=$((suite_failed + 1))
master=$(svc_master_pid "$T/main")
check "the HAProxy master is still running after the API checks" proc_alive "${master:-0}"
[[ $(svc_code "$url/health") == 200 ]] && ok "/health is 200 at the end" || not_ok "/health is 200 at the end"
ht_done
