#!/usr/bin/env bash
# shellcheck disable=SC2154 # HB_URL_* and HB_PID_* are set by tests/bench/http/lib.sh (printf -v)
# HTTP benchmark of edge-snowflake behind HAProxy. Prints "BENCH <name> <value> <unit>" lines
# (and "# ..." comments); every figure is the median over the rounds, ratios are taken round
# by round (same round, adjacent runs), then their median.
#
# Three HAProxy processes run side by side on 127.0.0.1, all with the global/defaults
# sections of haproxy/haproxy.cfg (nbthread HTTP_BENCH_THREADS, default 2), none logging
# per request:
#   static     `http-request return` of a constant, no Lua at all: the proxy's ceiling
#   empty_lua  the /id shape with a per-thread Lua fetch that does nothing
#              (tests/bench/http/empty.lua): the floor the issue set
#   empty_conv the same with a Lua converter that does nothing (tests/bench/http/empty_conv.lua):
#              the floor of the cheapest Lua call, the kind the service's /id makes
#   service    the real service (haproxy/run.sh, its own ZooKeeper, rate limit out of reach)
# Each round measures, in an order rotated round by round:
#   GET / on static and empty_lua, GET /id on the service (HTTP_BENCH_CONNS connections,
#   keep-alive), then GET /ids?count=4096 with 1, 2 and 4 connections.
#
#   BENCH http_static_rps          requests/s, static
#   BENCH http_empty_lua_rps       requests/s, empty Lua fetch
#   BENCH http_id_rps              requests/s, GET /id
#   BENCH http_id_vs_static        ratio (per round), target none: informative
#   BENCH http_id_vs_empty_lua     ratio (per round), target >= 0.95
#   BENCH http_empty_lua_converter_rps  requests/s, empty Lua converter
#   BENCH http_id_vs_empty_lua_converter ratio (per round): what the service's rules add to the
#                                  cheapest Lua call, informative
#   BENCH http_id_p99_ms           99th percentile latency of GET /id (wrk --latency)
#   BENCH http_ids4096_ids_per_s   IDs/s through GET /ids?count=4096, best connection count,
#                                  target >= 3 700 000 (0.9 of 4 096 000, one worker's ceiling)
#
# Knobs: HTTP_BENCH_ROUNDS (3), HTTP_BENCH_DURATION (5s), HTTP_BENCH_CONNS (64),
#        HTTP_BENCH_IDS_CONNS ("1 2 4"), HTTP_BENCH_WRK_THREADS (1), HTTP_BENCH_THREADS (2),
#        HTTP_BENCH_STATE_AHEAD_MS (1500, the product default: state.ahead_ms of the service),
#        HTTP_BENCH_KEEP=1 (keep the scratch directory with every config and log).
# A run with any non-2xx answer or socket error is run again (twice at most; a 503 is fast
# and would inflate the rate).
# Exit status: 0 when every figure comes from runs answered only with 2xx; 1 otherwise.
# Targets are reported (comment lines), not enforced.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/bench/http/lib.sh
. "$here/http/lib.sh"

rounds=${HTTP_BENCH_ROUNDS:-3}
dur=${HTTP_BENCH_DURATION:-5s}
conns=${HTTP_BENCH_CONNS:-64}
ids_conns=${HTTP_BENCH_IDS_CONNS:-1 2 4}
batch=4096
((rounds >= 1)) || { hb_err "HTTP_BENCH_ROUNDS must be >= 1"; exit 1; }

hb_init || exit 1
t_start=$SECONDS

hb_start_variant static static \
	'    http-request return status 200 content-type text/plain lf-string "1\n"' || exit 1
HB_LUA_FILES=$HB_HERE/empty.lua hb_start_variant empty_lua lua \
	'    http-request return status 200 content-type text/plain lf-string "%[lua.empty]\n"' || exit 1
HB_LUA_FILES=$HB_HERE/empty_conv.lua hb_start_variant empty_conv lua \
	'    http-request return status 200 content-type text/plain lf-string "%[int(0),lua.empty]\n"' || exit 1
hb_start_zk || exit 1
hb_start_service service || exit 1

url_static=$HB_URL_static/ url_empty=$HB_URL_empty_lua/ url_conv=$HB_URL_empty_conv/ url_id=$HB_URL_service/id
url_ids="$HB_URL_service/ids?count=$batch"

# sanity: every target answers what we think it does
body=$(curl -s "$url_id")
[[ $body =~ ^[0-9]+$ ]] || { hb_err "GET /id answered '$body'"; exit 1; }
n=$(curl -s "$url_ids" | grep -c '^[0-9][0-9]*$')
((n == batch)) || { hb_err "GET /ids?count=$batch gave $n IDs"; exit 1; }
[[ $(curl -s "$url_empty") == 1 ]] || { hb_err "empty_lua variant does not answer 1"; exit 1; }
[[ $(curl -s "$url_conv") == 1 ]] || { hb_err "empty_conv variant does not answer 1"; exit 1; }

failed=0
# warm-up: connections, Lua states, page cache; not measured
for u in "$url_static" "$url_empty" "$url_conv" "$url_id"; do hb_wrk "$u" "$conns" 1s 2>/dev/null; done
hb_wrk "$url_ids" 1 1s 2>/dev/null
refused0=$(hb_refusals "$HB_URL_service")
log0=$(hb_log_lines)

hb_say "http bench: $rounds rounds of ${dur} per run, wrk -t $HB_WRK_THREADS -c $conns keep-alive," \
	"HAProxy nbthread $HB_THREADS, $(nproc) CPUs shared with wrk"

declare -a r_static r_empty r_conv r_id r_p99 r_vs_static r_vs_empty r_vs_conv c_static c_empty c_id c_vs_empty
declare -A r_ids
variants=(static empty conv id)
for ((r = 0; r < rounds; r++)); do
	declare -A got=() cpu=()
	for ((k = 0; k < ${#variants[@]}; k++)); do
		v=${variants[$(((k + r) % ${#variants[@]}))]}
		case $v in
		static) hb_measure "$url_static" "$conns" "$dur" "$HB_PID_static" || failed=1 ;;
		empty) hb_measure "$url_empty" "$conns" "$dur" "$HB_PID_empty_lua" || failed=1 ;;
		conv) hb_measure "$url_conv" "$conns" "$dur" "$HB_PID_empty_conv" || failed=1 ;;
		id) hb_measure "$url_id" "$conns" "$dur" "$HB_PID_service" || failed=1; r_p99+=("$WRK_P99_MS") ;;
		esac
		got[$v]=$WRK_RPS cpu[$v]=$WRK_CPU_US
	done
	r_static+=("${got[static]}") r_empty+=("${got[empty]}") r_conv+=("${got[conv]}") r_id+=("${got[id]}")
	r_vs_static+=("$(hb_div "${got[id]}" "${got[static]}")")
	r_vs_empty+=("$(hb_div "${got[id]}" "${got[empty]}")")
	r_vs_conv+=("$(hb_div "${got[id]}" "${got[conv]}")")
	c_static+=("${cpu[static]}") c_empty+=("${cpu[empty]}") c_id+=("${cpu[id]}")
	c_vs_empty+=("$(hb_div "${cpu[empty]}" "${cpu[id]}")")
	line="round $((r + 1)): static ${got[static]} empty_lua ${got[empty]} empty_conv ${got[conv]} id ${got[id]} req/s,"
	line+=" id p99 ${r_p99[-1]} ms; ids4096 IDs/s:"
	# /ids: alternate the connection counts too (rotated like the variants)
	read -r -a cl <<<"$ids_conns"
	for ((k = 0; k < ${#cl[@]}; k++)); do
		c=${cl[$(((k + r) % ${#cl[@]}))]}
		hb_measure "$url_ids" "$c" "$dur" || failed=1
		ids_per_s=$(awk -v x="$WRK_RPS" -v b="$batch" 'BEGIN { printf "%.0f\n", x * b }')
		r_ids[$c]="${r_ids[$c]:-} $ids_per_s"
	done
	for c in "${cl[@]}"; do line+=" c$c=$(awk '{ print $NF }' <<<"${r_ids[$c]}")"; done
	hb_say "$line"
	unset got cpu
done

best_c='' best=0
for c in $ids_conns; do
	# shellcheck disable=SC2086
	m=$(hb_median ${r_ids[$c]})
	hb_say "ids4096 with $c connection(s): median $m IDs/s"
	if awk -v a="$m" -v b="$best" 'BEGIN { exit !(a > b) }'; then best=$m best_c=$c; fi
done

logged=$(($(hb_log_lines) - log0))

med_static=$(hb_median "${r_static[@]}")
med_empty=$(hb_median "${r_empty[@]}")
med_id=$(hb_median "${r_id[@]}")
med_vs_static=$(hb_median "${r_vs_static[@]}")
med_vs_empty=$(hb_median "${r_vs_empty[@]}")
med_p99=$(hb_median "${r_p99[@]}")

printf 'BENCH http_static_rps %.0f req/s\n' "$med_static"
printf 'BENCH http_empty_lua_rps %.0f req/s\n' "$med_empty"
printf 'BENCH http_id_rps %.0f req/s\n' "$med_id"
printf 'BENCH http_id_vs_static %.3f ratio\n' "$med_vs_static"
printf 'BENCH http_id_vs_empty_lua %.3f ratio\n' "$med_vs_empty"
printf 'BENCH http_empty_lua_converter_rps %.0f req/s\n' "$(hb_median "${r_conv[@]}")"
printf 'BENCH http_id_vs_empty_lua_converter %.3f ratio\n' "$(hb_median "${r_vs_conv[@]}")"
printf 'BENCH http_id_p99_ms %.3f ms\n' "$med_p99"
hb_say "server CPU per request (user+system, median µs): static $(hb_median "${c_static[@]}")" \
	"empty_lua $(hb_median "${c_empty[@]}") id $(hb_median "${c_id[@]}");" \
	"empty_lua/id CPU ratio $(hb_median "${c_vs_empty[@]}") (the rate ratio if HAProxy had the CPUs to itself)"
hb_say "http_ids4096_ids_per_s: best median with $best_c connection(s) (of: $ids_conns)"
printf 'BENCH http_ids4096_ids_per_s %.0f IDs/s\n' "$best"

awk -v v="$med_vs_empty" 'BEGIN { exit !(v >= 0.95) }' ||
	hb_say "TARGET MISSED: http_id_vs_empty_lua $med_vs_empty < 0.95"
awk -v v="$best" 'BEGIN { exit !(v >= 3700000) }' ||
	hb_say "TARGET MISSED: http_ids4096_ids_per_s $best < 3700000"
((logged > 0)) && hb_say "warning: the servers wrote $logged log lines while measuring"
((HB_RETRIES > 0)) && hb_say "warning: $HB_RETRIES runs had non-2xx answers or socket errors and were" \
	"run again; service refusals before: ${refused0:-none}; after: $(hb_refusals "$HB_URL_service")"
hb_say "http bench took $((SECONDS - t_start)) s"
exit "$failed"
