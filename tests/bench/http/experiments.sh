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
#   empty_conv       the same as a Lua *converter* (%[int(0),lua.empty], conv.lua): HAProxy 2.6
#                    builds a txn object for each Lua fetch call, not for a converter call
#   eint / estr      Lua fetch returning an 18-digit integer / an 18-character string
#   cfetch           the product's C fetch gen:fetch_id() alone (no config, no lease)
#   prod_state_empty lua.empty, but the product's haproxy.lua loaded too (bigger Lua states,
#                    the lease, its log-drain task)
#   prod_min         product state, frontend only `return ... lf-string "%[lua.sf_id]\n"`
#   prod_conv_min    the same with the C function as a converter (conv.lua: lua.sf_idc)
#   prod             the product's frontend as is (= the service, without run.sh)
#   orig             the product's frontend before the single-evaluation shape (commit 5d1cd31)
#   bare             only the answer, `return ... lf-string "%[lua.sf_id]\n"` (with tweaks)
#   prod_TWEAK[_TWEAK...], orig_TWEAK..., bare_TWEAK...: edited by each TWEAK (tweaks meant
#   for the product's shape do nothing on orig where its lines differ):
#     nolimit      without the stick-table / track-sc0 / 429 rule
#     httptrack    track-sc0 by an http-request rule (no http-ignore-probes)
#     contenttrack track-sc0 by a tcp-request content rule (no http-ignore-probes)
#     noprobes     without option http-ignore-probes
#     nohdr        without X-Snowflake-Worker (its var() and div/and converters)
#     nostatichdr  without X-Snowflake-Node and Cache-Control
#     nojson       without the JSON answer (acl wants_json and its return rule)
#     jsonconst    the JSON answer without any %[sample] (wrong answers: shows what a
#                  sample in a log-format after an HTTP condition costs, see haproxy.cfg)
#     novar        the fetch straight into the answer: no set-var, no minted, and no
#                  X-Snowflake-Worker (it would mint a second ID)
#     nometh       without METH_GET;  noisid  without is_id (their cost by difference)
#     url          acl is_id on `url` (the raw URI, so not /id?x) instead of `path`
#     fhdr         req.fhdr(accept) (the whole line) instead of req.hdr
#     bool         minted matched as a boolean (non-zero) instead of `-m int gt 0`
#     reqvar       the ID in req.sf_id instead of txn.sf_id
#     sc0          sc0_http_req_rate instead of sc_http_req_rate(0)
#     conv         the C function as a converter (int(0),lua.sf_idc; conv.lua)
#     native       date(0,us) instead of lua.sf_id and no Lua at all (a 503 instead of the
#                  service): the rules' own cost without the Lua fetch's garbage-collection
#                  noise (callgrind figures of Lua variants wander by ~1 %)
#   empty_shaped     the product's frontend with lua.empty instead of lua.sf_id (no service)
#   empty_shaped_nolimit  the same without the rate-limit lines
#
# EXP_CALLGRIND=1: instead, each variant alone under valgrind's callgrind: user-space
# instructions per GET /id (deterministic: the figure to compare on a busy machine; the
# kernel's share, about as large and nearly equal across variants, is not counted).
# EXP_CG_DURATION (8s) of load with 16 connections.
# EXP_RATE=1: instead, how each variant's rate limit counts (limits.rate_per_10s = 5): the
# status of 10 keep-alive requests, then the table's http_req_rate after each of: a connection
# that sends nothing, one that sends nothing until `timeout http-request`, a partial request
# then a close, a malformed request (native variants start fastest, e.g. prod_native).
# EXP_SERVE=1: start the variants, print "name url master_pid worker_pid" and serve until
# SIGTERM (to profile one by hand, e.g. perf record -e cpu-clock -p WORKER_PID).
# Knobs: EXP_ROUNDS (5), EXP_DURATION (3s), EXP_CONNS (64), and those of lib.sh
# (HTTP_BENCH_THREADS, HTTP_BENCH_WRK_THREADS, HTTP_BENCH_STATE_AHEAD_MS, HTTP_BENCH_KEEP).
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/bench/http/lib.sh
. "$here/lib.sh"
# every variant that loads Lua gets conv.lua unless it names its own files: it registers the
# fetch shape lua.sf_id (the product registers a converter of that name) and the converters
export HB_LUA_FILES=${HB_LUA_FILES:-$here/conv.lua}

rounds=${EXP_ROUNDS:-5}
dur=${EXP_DURATION:-3s}
conns=${EXP_CONNS:-64}
all=(static empty empty_conv eint estr cfetch prod_state_empty prod_min prod_conv_min orig prod
	prod_httptrack prod_nolimit prod_nohdr prod_nostatichdr prod_nojson prod_novar empty_shaped
	empty_shaped_nolimit)
if (($# > 0)); then variants=("$@"); else variants=("${all[@]}"); fi

ret() { printf '    http-request return status 200 content-type text/plain lf-string "%s\\n"' "$1"; }
nolimit='/stick-table/d; /track-sc0/d; /status 429/d'
nohdr='s/ hdr X-Snowflake-Worker "[^"]*"//'
noservice='/use-service/d'

# orig_frontend: the product's frontend before the single-evaluation shape (commit 5d1cd31):
# is_id tested twice, a set-var action, minted read back from the variable, track-sc0 by an
# http-request rule
orig_frontend() {
	# shellcheck disable=SC2016 # HAProxy expands ${SF_*}, from the environment
	cat <<-'EOF'
	    stick-table type ip size 200k expire 30s store http_req_rate(10s)
	    http-request track-sc0 src
	    http-request return status 429 content-type application/json hdr Retry-After 1 lf-string "{\"error\":\"rate_limited\",\"detail\":\"more than ${SF_RATE} requests in 10 s from this address\"}\n" if { sc_http_req_rate(0) gt "${SF_RATE}" }
	    acl is_id path /id
	    acl id_method method GET HEAD
	    acl wants_json req.hdr(accept) -m sub application/json
	    acl minted var(txn.sf_id) -m int gt 0
	    http-request set-var(txn.sf_id) lua.sf_id if is_id id_method
	    http-request return status 200 content-type text/plain hdr X-Snowflake-Worker "%[var(txn.sf_id),div(${SF_SEQ_DIV}),and(${SF_WORKER_MASK})]" hdr X-Snowflake-Node "${SF_NODE}" hdr Cache-Control no-store lf-string "%[var(txn.sf_id)]\n" if is_id minted !wants_json
	    http-request return status 200 content-type application/json hdr X-Snowflake-Worker "%[var(txn.sf_id),div(${SF_SEQ_DIV}),and(${SF_WORKER_MASK})]" hdr X-Snowflake-Node "${SF_NODE}" hdr Cache-Control no-store lf-string "{\"id\":\"%[var(txn.sf_id)]\"}\n" if is_id minted wants_json
	    http-request use-service lua.snowflake
	EOF
}

# start_tweaked BASE_TWEAK...: prod, orig or bare edited by each TWEAK (see the list above)
start_tweaked() {
	local v=$1 base tweaks tweak kind=product files='' ed='' body
	base=${v%%_*} tweaks=${v#"$base"}
	for tweak in ${tweaks//_/ }; do
		case $tweak in
		nolimit) ed+="$nolimit;" ;;
		httptrack) ed+='/option http-ignore-probes/d; s/tcp-request connection track-sc0/http-request track-sc0/;' ;;
		contenttrack) ed+='/option http-ignore-probes/d; s/tcp-request connection track-sc0/tcp-request content track-sc0/;' ;;
		noprobes) ed+='/option http-ignore-probes/d;' ;;
		nohdr) ed+="$nohdr;" ;;
		nostatichdr) ed+='s/ hdr X-Snowflake-Node "[^"]*"//; s/ hdr Cache-Control no-store//;' ;;
		nojson) ed+='/acl wants_json/d; /content-type application\/json hdr X-Snowflake-Worker/d; s/ !wants_json//;' ;;
		jsonconst) ed+='/content-type application\/json hdr X-Snowflake-Worker/s/%\[[^]]*\]/0/g;' ;;
		novar) ed+="$nohdr;"'/acl minted/d; s/ minted//g; s/%\[var(txn\.sf_id)\]/%[lua.sf_id]/g;' ;;
		nometh) ed+='s/ METH_GET//;' ;;
		noisid) ed+='s/if is_id /if /;' ;;
		url) ed+='s/acl is_id path/acl is_id url/;' ;;
		fhdr) ed+='s/req\.hdr(accept)/req.fhdr(accept)/;' ;;
		bool) ed+='s/-m int gt 0/-m bool/;' ;;
		reqvar) ed+='s/txn\.sf_id/req.sf_id/g;' ;;
		sc0) ed+='s/sc_http_req_rate(0)/sc0_http_req_rate/;' ;;
		conv) ed+='s/\(int(0),\)\{0,1\}lua\.sf_id\([^a-z_]\)/int(0),lua.sf_idc\2/g;' files=$here/conv.lua ;;
		native)
			kind=static
			ed+='s/lua\.sf_id/date(0,us)/g; s/http-request use-service lua\.snowflake/http-request return status 503 content-type text\/plain string "no\\n"/;' ;;
		*) hb_err "unknown tweak $tweak in $v"; return 1 ;;
		esac
	done
	case $base in
	prod) body=$(hb_product_frontend) ;;
	orig) body=$(orig_frontend) ;;
	bare) body=$(ret '%[lua.sf_id]') ;;
	*) hb_err "unknown variant $v"; return 1 ;;
	esac
	HB_LUA_FILES=$files hb_start_variant "$v" "$kind" "$(sed -e "$ed" <<<"$body")"
}

# needs_zk VARIANT...: does any of them load the product's Lua (and so need a lease)?
needs_zk() {
	local v
	for v in "$@"; do [[ $v =~ ^(prod|orig|bare) && $v != *native* ]] && return 0; done
	return 1
}

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
	empty_conv) HB_LUA_FILES=$here/conv.lua hb_start_variant "$v" lua "$(ret '%[int(0),lua.empty]')" ;;
	prod_conv_min) HB_LUA_FILES=$here/conv.lua hb_start_variant "$v" product "$(ret '%[int(0),lua.sf_idc]')" ;;
	empty_shaped)
		HB_LUA_FILES=$here/empty.lua hb_start_variant "$v" lua \
			"$(hb_product_frontend "$noservice; s/lua\.sf_id/lua.empty/g")" ;;
	empty_shaped_nolimit)
		HB_LUA_FILES=$here/empty.lua hb_start_variant "$v" lua \
			"$(hb_product_frontend "$noservice; $nolimit; s/lua\.sf_id/lua.empty/g")" ;;
	prod | prod_* | orig | orig_* | bare | bare_*) start_tweaked "$v" ;;
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
if [[ -n ${EXP_RATE:-} ]]; then
	# how the rate limit counts: HB_SF_RATE=5; the frontend (and its stick table) is named
	# after the variant; each probe starts from a cleared table
	command -v socat >/dev/null || { hb_err "socat not found"; exit 1; }
	if needs_zk "${variants[@]}"; then hb_start_zk || exit 1; fi
	cli() { printf '%s\n' "$1" | timeout 5 socat -t 2 - "UNIX-CONNECT:$HB_DIR/$v/haproxy.sock"; }
	rate() { cli "show table $v" | grep -o 'http_req_rate([0-9]*)=[0-9]*' | cut -d= -f2 | head -1; }
	printf '%-24s %-30s %6s %6s %8s %8s %6s\n' variant "10 keep-alive requests" rate empty idle partial bad
	for v in "${variants[@]}"; do
		HB_SF_RATE=5 start "$v" || continue
		u=HB_URL_$v port=${!u##*:}
		cli "clear table $v" >/dev/null
		# (the write side stays open until the answers are in: HAProxy may drop pipelined
		# requests that arrive with the close)
		codes=$({ for ((i = 0; i < 10; i++)); do printf 'GET /id HTTP/1.1\r\nHost: x\r\n\r\n'; done; sleep 1; } |
			timeout 5 socat -t 2 - "TCP:127.0.0.1:$port" | awk '/^HTTP\/1\.1 / { printf "%s ", $2 }')
		r_ka=$(rate)
		cli "clear table $v" >/dev/null
		timeout 2 socat -u /dev/null "TCP:127.0.0.1:$port" 2>/dev/null; sleep 0.2
		r_empty=$(rate)
		cli "clear table $v" >/dev/null
		# nothing sent until timeout http-request (5 s in the product's defaults) closes it
		timeout 8 socat -t 7 -u EXEC:'sleep 7' "TCP:127.0.0.1:$port" 2>/dev/null
		r_idle=$(rate)
		cli "clear table $v" >/dev/null
		printf 'GET /id HTTP/1.1\r\nHo' | timeout 2 socat -t 0.3 - "TCP:127.0.0.1:$port" >/dev/null 2>&1; sleep 0.2
		r_partial=$(rate)
		cli "clear table $v" >/dev/null
		printf 'GET /id HTTP/1.1\r\nBad Header\r\n\r\n' | timeout 2 socat -t 1 - "TCP:127.0.0.1:$port" >/dev/null 2>&1
		sleep 0.2
		r_bad=$(rate)
		printf '%-24s %-30s %6s %6s %8s %8s %6s\n' "$v" "$codes" "${r_ka:--}" "${r_empty:--}" "${r_idle:--}" \
			"${r_partial:--}" "${r_bad:--}"
	done
	hb_say "rate/empty/idle/partial/bad: the table's http_req_rate after each probe (- = no entry)"
	exit 0
fi
if [[ -n ${EXP_CG_ONE:-} ]]; then
	command -v valgrind >/dev/null || { hb_err "valgrind not found"; exit 1; }
	HB_HAPROXY_WRAPPER="valgrind -q --tool=callgrind --instr-atstart=no --callgrind-out-file=$HB_DIR/callgrind.%p"
fi
if needs_zk "${variants[@]}"; then hb_start_zk || exit 1; fi
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
	# by ~1 % with the garbage collector's pace: compare rule shapes with the native tweak)
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
