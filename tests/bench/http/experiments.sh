#!/usr/bin/env bash
# shellcheck disable=SC2154 # HB_URL_* and HB_PID_* are set by tests/bench/http/lib.sh (printf -v)
# Investigation of the /id fast path's cost (not part of `make bench`): many HAProxy variants,
# all with the product's global/defaults (tests/bench/http/lib.sh), measured with wrk in
# alternating rounds (order rotated each round). Prints, per variant, the median req/s and the
# median of the per-round ratios to `empty` (the empty Lua fetch) and to `static`, and the
# median HAProxy CPU time per request (user + system of master and worker, in µs): the CPU is
# shared with wrk and with whatever else runs, so that figure is the steadier one.
#
#   tests/bench/http/experiments.sh [VARIANT...]      (default: all below)
#
# Variants (GET /id on each):
#   static           `http-request return` of a constant, no Lua
#   empty            lua.empty (returns integer 1), the bench's floor
#   eint / estr      Lua fetch returning an 18-digit integer / an 18-character string
#   cfetch           the product's C fetch gen:fetch_id() alone (no config, no lease)
#   prod_state_empty lua.empty, but the product's haproxy.lua loaded too (bigger Lua states,
#                    the lease, its log-drain task)
#   prod_min         product state, frontend only `return ... lf-string "%[lua.sf_id]\n"`
#   prod             the product's frontend as is (= the service, without run.sh)
#   prod_nolimit     prod without the stick-table / track-sc0 / 429 rule
#   prod_nohdr       prod without the X-Snowflake-Worker header (div/and converters)
#   prod_nolimit_nohdr both
#   prod_novar       prod_nolimit_nohdr with the fetch put straight into the answer
#                    (no set-var, no `minted` acl)
#   prod_nostatichdr prod without the X-Snowflake-Node and Cache-Control headers
#   prod_nojson      prod without the JSON answer (acl wants_json and its return rule)
#   prod_tcptrack    prod tracking the source once per connection (`tcp-request connection
#                    track-sc0 src`; sc_http_req_rate still counts every request)
#   empty_shaped     the product's frontend with lua.empty instead of lua.sf_id (no service)
#   empty_shaped_nolimit  the same without the rate-limit lines
#
# EXP_CALLGRIND=1: instead, each variant alone under valgrind's callgrind: user-space
# instructions per GET /id (deterministic: the figure to compare on a busy machine; the
# kernel's share, about as large and nearly equal across variants, is not counted).
# EXP_CG_DURATION (8s) of load with 16 connections.
# EXP_SERVE=1: start the variants, print "name url master_pid worker_pid" and serve until
# SIGTERM (to profile one by hand, e.g. perf record -e cpu-clock -p WORKER_PID).
# Knobs: EXP_ROUNDS (5), EXP_DURATION (3s), EXP_CONNS (64), and those of lib.sh
# (HTTP_BENCH_THREADS, HTTP_BENCH_WRK_THREADS, HTTP_BENCH_STATE_AHEAD_MS, HTTP_BENCH_KEEP).
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/bench/http/lib.sh
. "$here/lib.sh"

rounds=${EXP_ROUNDS:-5}
dur=${EXP_DURATION:-3s}
conns=${EXP_CONNS:-64}
all=(static empty eint estr cfetch prod_state_empty prod_min prod prod_nolimit prod_nohdr
	prod_nolimit_nohdr prod_novar prod_nostatichdr prod_nojson prod_tcptrack empty_shaped
	empty_shaped_nolimit)
if (($# > 0)); then variants=("$@"); else variants=("${all[@]}"); fi

ret() { printf '    http-request return status 200 content-type text/plain lf-string "%s\\n"' "$1"; }
nolimit='/stick-table/d; /track-sc0/d; /status 429/d'
nohdr='s/ hdr X-Snowflake-Worker "[^"]*"//'
noservice='/use-service/d'

start() {
	local v=$1
	case $v in
	static) hb_start_variant "$v" static "$(ret 1)" ;;
	empty) HB_LUA_FILES=$here/empty.lua hb_start_variant "$v" lua "$(ret '%[lua.empty]')" ;;
	eint) HB_LUA_FILES=$here/strfetch.lua hb_start_variant "$v" lua "$(ret '%[lua.eint]')" ;;
	estr) HB_LUA_FILES=$here/strfetch.lua hb_start_variant "$v" lua "$(ret '%[lua.estr]')" ;;
	cfetch) HB_LUA_FILES=$here/cfetch.lua hb_start_variant "$v" lua "$(ret '%[lua.cid]')" ;;
	prod_state_empty) HB_LUA_FILES=$here/empty.lua hb_start_variant "$v" product "$(ret '%[lua.empty]')" ;;
	prod_min) hb_start_variant "$v" product "$(ret '%[lua.sf_id]')" ;;
	prod) hb_start_variant "$v" product "$(hb_product_frontend)" ;;
	prod_nolimit) hb_start_variant "$v" product "$(hb_product_frontend "$nolimit")" ;;
	prod_nohdr) hb_start_variant "$v" product "$(hb_product_frontend "$nohdr")" ;;
	prod_nolimit_nohdr) hb_start_variant "$v" product "$(hb_product_frontend "$nolimit; $nohdr")" ;;
	prod_nostatichdr)
		hb_start_variant "$v" product "$(hb_product_frontend 's/ hdr X-Snowflake-Node "[^"]*"//; s/ hdr Cache-Control no-store//')" ;;
	prod_nojson)
		hb_start_variant "$v" product "$(hb_product_frontend '/acl wants_json/d; /application\/json hdr X-Snowflake-Worker/d; s/ !wants_json//')" ;;
	prod_tcptrack)
		hb_start_variant "$v" product "$(hb_product_frontend 's/http-request track-sc0 src/tcp-request connection track-sc0 src/')" ;;
	prod_novar)
		hb_start_variant "$v" product "$(hb_product_frontend "$nolimit; $nohdr; /set-var/d; /acl minted/d; s/ minted//g;
			s/%\[var(txn.sf_id)\]/%[lua.sf_id]/g")" ;;
	empty_shaped)
		HB_LUA_FILES=$here/empty.lua hb_start_variant "$v" lua \
			"$(hb_product_frontend "$noservice; s/lua\.sf_id/lua.empty/g")" ;;
	empty_shaped_nolimit)
		HB_LUA_FILES=$here/empty.lua hb_start_variant "$v" lua \
			"$(hb_product_frontend "$noservice; $nolimit; s/lua\.sf_id/lua.empty/g")" ;;
	*) hb_err "unknown variant $v"; return 1 ;;
	esac
}

hb_init || exit 1
if [[ -n ${EXP_CALLGRIND:-} ]]; then
	# user-space instructions per request, each variant alone under callgrind: deterministic,
	# so unlike req/s or CPU time it does not depend on what else the machine runs
	printf '%-22s %9s %12s %12s\n' variant requests "Ir/request" "stream_Ir/req"
	for ((k = 0; k < ${#variants[@]}; k++)); do
		v=${variants[$k]}
		# numbered, not named, directories: HAProxy's stats socket path (in there, under the
		# variant's name) must fit in 108 bytes, or it does not start (silently: -q)
		out=$(HTTP_BENCH_DIR=$HB_DIR/cg$k EXP_CALLGRIND='' EXP_CG_ONE=1 "$0" "$v" 2>"$HB_DIR/cg$k.err") ||
			{ hb_err "$v failed:"; cat "$HB_DIR/cg$k.err" >&2; continue; }
		printf '%s\n' "$out" | grep '^CG ' | cut -c4-
	done
	exit 0
fi
if [[ -n ${EXP_CG_ONE:-} ]]; then
	command -v valgrind >/dev/null || { hb_err "valgrind not found"; exit 1; }
	HB_HAPROXY_WRAPPER="valgrind -q --tool=callgrind --instr-atstart=no --callgrind-out-file=$HB_DIR/callgrind.%p"
fi
need_zk=0
for v in "${variants[@]}"; do [[ $v == prod* ]] && need_zk=1; done
((need_zk)) && { hb_start_zk || exit 1; }
have_static=0 have_empty=0
for v in "${variants[@]}"; do
	start "$v" || exit 1
	[[ $v == static ]] && have_static=1
	[[ $v == empty ]] && have_empty=1
done
if [[ -z ${EXP_CG_ONE:-} && -n ${EXP_SERVE:-} ]]; then
	# serve only (for profiling by hand): print "name url master_pid worker_pids", then wait
	for v in "${variants[@]}"; do
		u=HB_URL_$v p=HB_PID_$v
		echo "$v ${!u} ${!p} $(ps -o pid= --ppid "${!p}" | tr '\n' ' ')"
	done
	hb_say "serving until SIGTERM/SIGINT (pid $$)"
	while :; do sleep 1; done
fi
if [[ -n ${EXP_CG_ONE:-} ]]; then
	v=${variants[0]} u=HB_URL_${variants[0]} p=HB_PID_${variants[0]}
	hb_wrk "${!u}/id" 16 3s 2>/dev/null # warm-up (slow: valgrind)
	callgrind_control -i on "${!p}" >/dev/null 2>&1
	hb_wrk "${!u}/id" 16 "${EXP_CG_DURATION:-8s}" || hb_err "$v: non-2xx answers"
	callgrind_control -i off "${!p}" >/dev/null 2>&1
	callgrind_control -d "${!p}" >/dev/null 2>&1
	sleep 1
	ir=$(cat "$HB_DIR"/callgrind.* 2>/dev/null | awk '/^totals:/ { s += $2 } END { print s + 0 }')
	# process_stream alone (inclusive): the request's analysis and answer, without the event
	# loop's share, which depends on timing even under callgrind (Lua variants still wander
	# by ~1 % with the garbage collector's pace)
	strm=$(for f in "$HB_DIR"/callgrind.*; do callgrind_annotate --inclusive=yes --threshold=100 "$f" 2>/dev/null; done |
		awk '/:process_stream \[/ { gsub(",", "", $1); s += $1 } END { print s + 0 }')
	printf 'CG %-22s %9s %12.0f %12.0f\n' "$v" "$WRK_REQS" \
		"$(awk -v a="$ir" -v b="$WRK_REQS" 'BEGIN { print b ? a / b : 0 }')" \
		"$(awk -v a="$strm" -v b="$WRK_REQS" 'BEGIN { print b ? a / b : 0 }')"
	exit 0
fi
for v in "${variants[@]}"; do
	u=HB_URL_$v
	hb_wrk "${!u}/id" "$conns" 1s 2>/dev/null # warm-up
done

hb_say "experiments: ${#variants[@]} variants, $rounds rounds of $dur, wrk -t $HB_WRK_THREADS -c $conns," \
	"nbthread $HB_THREADS, state.ahead_ms $HB_STATE_AHEAD_MS; $(nproc) CPUs"
declare -A rps vs_empty vs_static cpu
for ((r = 0; r < rounds; r++)); do
	declare -A got=()
	for ((k = 0; k < ${#variants[@]}; k++)); do
		v=${variants[$(((k + r) % ${#variants[@]}))]}
		u=HB_URL_$v p=HB_PID_$v
		hb_measure "${!u}/id" "$conns" "$dur" "${!p}" || hb_err "$v: unreliable run"
		got[$v]=$WRK_RPS
		cpu[$v]="${cpu[$v]:-} $WRK_CPU_US"
	done
	line="round $((r + 1)):"
	for v in "${variants[@]}"; do
		rps[$v]="${rps[$v]:-} ${got[$v]}"
		((have_empty)) && vs_empty[$v]="${vs_empty[$v]:-} $(hb_div "${got[$v]}" "${got[empty]}")"
		((have_static)) && vs_static[$v]="${vs_static[$v]:-} $(hb_div "${got[$v]}" "${got[static]}")"
		line+=" $v=${got[$v]%.*}"
	done
	hb_say "$line"
	unset got
done

printf '%-22s %10s %10s %10s %8s %8s %9s\n' variant "med_req/s" "min" "max" vs_empty vs_static "cpu_us/req"
for v in "${variants[@]}"; do
	# shellcheck disable=SC2086
	read -r mn mx < <(printf '%s\n' ${rps[$v]} | sort -g | awk 'NR == 1 { mn = $1 } { mx = $1 } END { print mn, mx }')
	# shellcheck disable=SC2086
	printf '%-22s %10.0f %10.0f %10.0f %8s %8s %9s\n' "$v" "$(hb_median ${rps[$v]})" "$mn" "$mx" \
		"$( ((have_empty)) && hb_median ${vs_empty[$v]} || echo -)" \
		"$( ((have_static)) && hb_median ${vs_static[$v]} || echo -)" "$(hb_median ${cpu[$v]})"
done
((HB_RETRIES > 0)) && hb_say "$HB_RETRIES runs were run again (non-2xx answers or socket errors)"
exit 0
