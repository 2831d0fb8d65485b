#!/usr/bin/env bash
# Connection-level hostility (issue 12 point 5): 10,000 idle connections, then a slowloris (request
# heads dribbled one byte a second), each from 50 source addresses in 127/8, while a caller on
# 127.0.0.1 sends GET /id on keep-alive (500 a second, every 50th on a new connection); then one
# address opening more connections than CONN_PER_ADDR allows. Checks: every caller request is a 200
# with an ID; the 10,000 were all open at once and HAProxy counted them (CurrConns, within MaxConn,
# MaxConn within Ulimit-n); slowloris connections get their 408 and are closed within
# `timeout http-request` (5 s; 1.5 s of slack for a busy host); the cap holds for one address and
# HAProxy counts the refusals; the same worker process serves /health after, and its log has no
# fd exhaustion. Latencies are printed as figures, never asserted (tests/bench/hostile_bench.sh
# measures them). Bounded: each flood stops after 25 s at most.
# shellcheck disable=SC2015 # ok and not_ok always succeed: "cond && ok || not_ok" is if-then-else
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ht_init 09-connections

CONNFLOOD=${CONNFLOOD:-$BUILD/tests/connflood}
[[ -x $CONNFLOOD ]] || fatal "connflood at $CONNFLOOD (make build/tests/connflood)"
HTTP_REQUEST_MS=5000 SLACK_MS=1500

url=$(svc_start "$T/svc") || fatal "the service starts"
port=${url##*:}
ok "the service starts ($url)"
master=$(svc_master_pid "$T/svc")
worker=$(svc_worker_pids "$T/svc")
[[ $worker =~ ^[0-9]+$ ]] || fatal "one HAProxy worker ($worker)"

# info FIELD: one field of `show info`
info() { svc_cli "$T/svc" "show info" | sed -n "s/^$1: //p"; }
# field NAME LINE: NAME=value from a CONNFLOOD line
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

ulimit_n=$(info Ulimit-n) maxconn=$(info Maxconn)
figure worker_rss_kb_before "$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$worker/status")"
figure ulimit_n "$ulimit_n"
figure maxconn "$maxconn"
if [[ $maxconn =~ ^[0-9]+$ && $ulimit_n =~ ^[0-9]+$ ]] && ((maxconn >= 10100 && maxconn < ulimit_n)); then
	ok "maxconn $maxconn holds the 10,000 and callers, within ulimit-n $ulimit_n"
else
	not_ok "maxconn ($maxconn) >= 10100 and below ulimit-n ($ulimit_n)"
fi

# flood NAME ARGS...: connflood in the background, `show info` CurrConns sampled 4 s in (while
# everything is open: the first closes come at 5 s); sets line (its CONNFLOOD line), rc, curr
flood() {
	local name=$1
	shift
	"$CONNFLOOD" -p "$port" -t 25 "$@" >"$T/$name.out" 2>"$T/$name.err" &
	local pid=$!
	ht_pids+=("$pid")
	sleep 4
	curr=$(info CurrConns)
	figure "${name}_worker_rss_kb" "$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$worker/status")"
	wait "$pid"
	rc=$?
	line=$(grep '^CONNFLOOD' "$T/$name.out")
	sed 's/^/# /' "$T/$name.out" "$T/$name.err"
}

# caller_ok NAME: every caller request of the last flood answered
caller_ok() {
	local req errs
	req=$(field requests "$line") errs=$(field errors "$line")
	if ((rc == 0)) && [[ $req =~ ^[0-9]+$ ]] && ((req >= 1000)) && [[ $errs == 0 ]]; then
		ok "$1: all $req caller requests answered 200 with an ID ($(field new_conns "$line") on new connections)"
	else
		not_ok "$1: every caller request answered 200 with an ID (rc $rc, requests $req, errors $errs)"
	fi
	figure "${1}_p50_ms" "$(field p50_ms "$line")"
	figure "${1}_p99_ms" "$(field p99_ms "$line")"
	figure "${1}_max_ms" "$(field max_ms "$line")"
}

flood idle -m idle -c 10000 -a 50 -d 7
caller_ok idle
open_max=$(field open_max "$line")
figure idle_open_avg "$(field open_avg "$line")"
figure idle_currconns "$curr"
check "the 10,000 idle connections were all open at once (open_max $open_max)" test "${open_max:-0}" = 10000
if [[ $curr =~ ^[0-9]+$ ]] && ((curr >= 9000 && curr <= maxconn)); then
	ok "HAProxy counted them: CurrConns $curr, within MaxConn $maxconn"
else
	not_ok "HAProxy counted them: CurrConns ($curr) >= 9000 and <= MaxConn ($maxconn)"
fi
life=$(field life_max_ms "$line")
check "idle connections closed by the server within timeout http-request (longest ${life} ms)" \
	test "${life:-99999}" -le $((HTTP_REQUEST_MS + SLACK_MS))

flood slowloris -m slowloris -c 2000 -a 50 -d 7
caller_ok slowloris
closed=$(field server_closed "$line") got408=$(field got_408 "$line")
life=$(field life_max_ms "$line") age=$(field open_age_max_ms "$line")
figure slowloris_life_p50_ms "$(field life_p50_ms "$line")"
figure slowloris_life_max_ms "$life"
if [[ $closed =~ ^[0-9]+$ ]] && ((closed >= 2000)) && [[ $got408 == "$closed" ]]; then
	ok "every slowloris connection got its 408 and was closed by the server ($closed)"
else
	not_ok "every slowloris connection got its 408 and was closed by the server (closed $closed, 408 $got408)"
fi
if [[ $life =~ ^[0-9]+$ && $age =~ ^[0-9]+$ ]] && ((life <= HTTP_REQUEST_MS + SLACK_MS && age <= HTTP_REQUEST_MS + SLACK_MS)); then
	ok "slowloris connections last at most timeout http-request (longest closed ${life} ms, oldest open ${age} ms)"
else
	not_ok "slowloris connections last at most timeout http-request + ${SLACK_MS} ms (longest closed $life ms, oldest open $age ms)"
fi

# one address, more than CONN_PER_ADDR (1000) connections: HAProxy's table holds it at 1000
dcon0=$(svc_cli "$T/svc" "show stat" | awk -F, '$1 == "api" && $2 == "FRONTEND" { print $82 }')
"$CONNFLOOD" -p "$port" -t 25 -m idle -c 1200 -a 1 -b 127.78.0.1 -d 4 >"$T/cap.out" 2>"$T/cap.err" &
cap_pid=$!
ht_pids+=("$cap_pid")
sleep 2.5
entry=$(svc_cli "$T/svc" "show table api key 127.78.0.1")
wait "$cap_pid"
rc=$?
line=$(grep '^CONNFLOOD' "$T/cap.out")
sed 's/^/# /' "$T/cap.out" "$T/cap.err"
diag "table: $(grep -o 'key=.*' <<<"$entry")"
held=$(sed -n 's/.*conn_cur=\([0-9]*\).*/\1/p' <<<"$entry")
dcon=$(svc_cli "$T/svc" "show stat" | awk -F, '$1 == "api" && $2 == "FRONTEND" { print $82 }')
check "one address holds at most 1000 connections (conn_cur $held)" test "${held:-99999}" -le 1000
check "HAProxy refused the rest at accept (denied connections ${dcon0:-?} -> ${dcon:-?})" \
	test "${dcon:-0}" -gt "${dcon0:-0}"
caller_ok capped

now_worker=$(svc_worker_pids "$T/svc")
check "the same worker process serves (pid $worker, now $now_worker)" test "$now_worker" = "$worker"
check "the master is alive (pid $master)" proc_alive "$master"
code=$(svc_code "$url/health")
check "/health answers 200 after the floods ($code)" test "$code" = 200
if grep -E 'reached (process|system) FD limit|reached system memory limit|Too many open files' "$T/svc/run.log" >"$T/fd.log"; then
	not_ok "no fd exhaustion in HAProxy's log: $(head -n 2 "$T/fd.log" | tr '\n' ' ')"
else
	ok "no fd exhaustion in HAProxy's log (no 'reached ... FD limit', no 'Too many open files')"
fi
figure currconns_after "$(info CurrConns)"
ht_done
