#!/usr/bin/env bash
# monitoring/ (SPEC "Packaging and operations"): the alert rules pass `promtool check rules`; every
# promtool test file passes; every alert has a severity, summary, description, a runbook naming its
# section of monitoring/README.md, a case where it fires and one where it does not; the dashboard's
# variables and panels are in place and every panel query parses; and every metric name the rules
# and the dashboard query is on the /metrics page of a live service (haproxy/run.sh: HAProxy + the
# Lua service + a ZooKeeper started here), histogram series by their own names (_bucket, _sum,
# _count). `up` is Prometheus's own. The checks that read YAML and JSON are in monitoring.lua.
# shellcheck disable=SC2015 # ok and not_ok always succeed: "cond && ok || not_ok" is if-then-else
# shellcheck source=tests/http/lib.sh
. "$(dirname "$0")/../http/lib.sh"
ht_init 01-monitoring

HERE=$(cd "$(dirname "$0")" && pwd)
MON=$HT_REPO/monitoring
RULES=$MON/edge-snowflake.rules.yml
DASHBOARD=$MON/edge-snowflake.dashboard.json
CHECK=("lua5.4" "$HERE/monitoring.lua")

command -v promtool >/dev/null 2>&1 || fatal "promtool is installed (Debian package prometheus)"
lua5.4 -e 'require "lyaml"; require "dkjson"' 2>/dev/null || fatal "lua5.4 finds lyaml and dkjson (lua-yaml, lua-dkjson)"

# relay: re-emit monitoring.lua's verdict and figure lines through suite.sh (counted here)
relay() {
	local line
	while IFS= read -r line; do
		case $line in
		"ok "*) ok "${line#ok }" ;;
		"not ok "*) not_ok "${line#not ok }" ;;
		"figure "*) read -r _ name value <<<"$line" && figure "$name" "$value" ;;
		*) diag "$line" ;;
		esac
	done
}

# lua_check SUBCOMMAND ARGS...: monitoring.lua's verdicts, and a failure if it does not end cleanly
lua_check() {
	local out rc
	out=$("${CHECK[@]}" "$@" 2>&1)
	rc=$?
	relay <<<"$out"
	((rc == 0)) || not_ok "monitoring.lua $1 ends with status 0 (got $rc)"
}

# ---- the rules and their promtool tests -------------------------------------------------

out=$(promtool check rules "$RULES" 2>&1) && ok "promtool check rules $(basename "$RULES"): ${out##*SUCCESS: }" ||
	{ not_ok "promtool check rules $(basename "$RULES")"; printf '%s\n' "$out" | sed 's/^/# /'; }

tests=()
for f in "$MON"/*_test.yml; do
	[[ -f $f ]] && tests+=("$f")
done
((${#tests[@]} > 0)) || not_ok "monitoring/ has promtool test files (*_test.yml)"
for f in "${tests[@]}"; do
	cases=$(grep -c '^ *- eval_time:' "$f")
	# promtool resolves rule_files against the test file's directory
	if out=$(cd "$MON" && promtool test rules "$(basename "$f")" 2>&1); then
		ok "promtool test rules $(basename "$f"): $cases cases pass"
	else
		not_ok "promtool test rules $(basename "$f")"
		printf '%s\n' "$out" | head -40 | sed 's/^/# /'
	fi
done

lua_check alerts "$RULES" "$MON/README.md" "${tests[@]}"
lua_check dashboard "$DASHBOARD"

# every panel query, Grafana's variables substituted, must parse as PromQL
lua_check exprs "$DASHBOARD" "$T/dashboard-exprs.rules.yml"
out=$(promtool check rules "$T/dashboard-exprs.rules.yml" 2>&1) && ok "every dashboard query parses as PromQL (${out##*SUCCESS: })" ||
	{ not_ok "every dashboard query parses as PromQL"; printf '%s\n' "$out" | sed 's/^/# /'; }

# ---- the names against a live /metrics ----------------------------------------------------

export ZK_TICK_MS=500
zk=$(zk_start "$T/zk") || fatal "ZooKeeper starts"
# a peer that never answers: snowflake_peer_up has a series (0) only when a peer is configured
peer_port=$(zk_free_port) || fatal "a free port for the peer"
svc_config "$T/main.conf.lua" "$zk" "$T/main/state" \
	"http = { node_name = \"edge-monitoring-test\", peers = { p2 = \"127.0.0.1:$peer_port\" } }"
url=$(svc_start "$T/main" ZK_HOSTS="$zk" CONFIG="$T/main.conf.lua") || fatal "the service starts (/health 200)"
ok "the service starts and /health is 200 ($url)"
# an /id and an /ids: every family has had its samples written once
[[ $(svc_code "$url/id") == 200 && $(svc_code "$url/ids?count=5") == 200 ]] && ok "GET /id and /ids?count=5 answer 200" ||
	not_ok "GET /id and /ids?count=5 answer 200"
code=$(curl -s -o "$T/metrics.txt" -w '%{http_code}' --max-time 5 "$url/metrics" 2>/dev/null)
[[ $code == 200 && -s $T/metrics.txt ]] || fatal "GET /metrics answers 200 (got $code)"
ok "GET /metrics answers 200 ($(grep -c '^# TYPE ' "$T/metrics.txt") families)"

"${CHECK[@]}" page "$T/metrics.txt" >"$T/exported" || fatal "the /metrics page's sample names"
declare -A exported=()
while IFS= read -r n; do exported[$n]=1; done <"$T/exported"

# every name the rules and the dashboard query: on the page (or Prometheus's own up)
missing=0
while IFS=$'\t' read -r name where; do
	if [[ $name == up ]]; then
		ok "$name ($where) is Prometheus's own"
	elif [[ -n ${exported[$name]:-} ]]; then
		ok "$name ($where) is on the live /metrics page"
	else
		not_ok "$name ($where) is not on the live /metrics page"
		missing=$((missing + 1))
	fi
done < <("${CHECK[@]}" names "$RULES" "$DASHBOARD")
((missing == 0)) && ok "every metric name of the rules and the dashboard is exported" ||
	not_ok "$missing metric names of the rules and the dashboard are not exported"

# the check can fail: queries of names the page lacks (one unknown, one a histogram's bare family
# name) come out as missing
fake=()
while IFS=$'\t' read -r name where; do
	[[ $where == extra && -z ${exported[$name]:-} ]] && fake+=("$name")
done < <("${CHECK[@]}" names "$RULES" "$DASHBOARD" 'rate(snowflake_no_such_total[5m])' 'sum(rate(snowflake_batch_size[5m]))')
[[ " ${fake[*]} " == *" snowflake_batch_size "* && " ${fake[*]} " == *" snowflake_no_such_total "* ]] &&
	ok "a queried name the page lacks is caught (snowflake_no_such_total; snowflake_batch_size without _bucket)" ||
	not_ok "a queried name the page lacks is caught (caught: ${fake[*]:-nothing})"

# the dashboard shows every family the service exports
used=$("${CHECK[@]}" names "$RULES" "$DASHBOARD" | cut -f1 | sort -u)
unshown=()
while IFS= read -r n; do
	grep -qx "$n" <<<"$used" || unshown+=("$n")
done <"$T/exported"
((${#unshown[@]} == 0)) && ok "every exported series ($(wc -l <"$T/exported")) is on the dashboard or in the rules" ||
	not_ok "exported but neither on the dashboard nor in the rules: ${unshown[*]}"

# ---- the rules on the live node's own numbers -------------------------------------------------
# A second scrape after some traffic; 20 minutes of this node at the rates it showed between the
# two, with the labels it really exports: a healthy minting node fires nothing but
# SnowflakePeerDown for its peer p2, which is configured and never answers.
t0=$(ht_now_ms)
for ((i = 0; i < 40; i++)); do
	curl -s -o /dev/null --max-time 3 "$url/id"
	((i % 10 == 0)) && curl -s -o /dev/null --max-time 3 "$url/ids?count=100"
done
sleep 1
code=$(curl -s -o "$T/metrics-2.txt" -w '%{http_code}' --max-time 5 "$url/metrics" 2>/dev/null)
t1=$(ht_now_ms)
[[ $code == 200 && -s $T/metrics-2.txt ]] && ok "a second GET /metrics after 40 /id and 4 /ids answers 200" ||
	not_ok "a second GET /metrics after 40 /id and 4 /ids answers 200 (got $code)"
secs=$(awk -v ms=$((t1 - t0)) 'BEGIN { printf "%.3f", ms / 1000 }')
lua_check livetest "$T/metrics.txt" "$T/metrics-2.txt" "$secs" "$RULES" "$T/live_test.yml" "SnowflakePeerDown=peer:p2"
if out=$(promtool test rules "$T/live_test.yml" 2>&1); then
	ok "on the live node's series (scrapes ${secs} s apart) every alert stays quiet at 10 and 20 min, but SnowflakePeerDown for p2"
else
	not_ok "on the live node's series every alert stays quiet, but SnowflakePeerDown for p2"
	printf '%s\n' "$out" | head -40 | sed 's/^/# /'
fi

[[ $(svc_code "$url/health") == 200 ]] && ok "/health is 200 at the end" || not_ok "/health is 200 at the end"
ht_done
