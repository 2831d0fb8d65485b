#!/usr/bin/env bash
# SPEC "Safety invariants" 4 (restart never replays): kill -9 the HAProxy master AND worker under
# load and start a new instance at once with the same RUN_DIR (state dir) and the same ZooKeeper
# (one started here, given as ZK_HOSTS), twice, then a third run. With a 1-bit worker field (2 worker
# IDs) the third run must reuse a worker ID of a killed run (the second run's ID is still held by
# its dead session), and it runs under libfaketime with its wall clock set 1.5 s BEHIND the newest
# ID of the first run: only the write-ahead marks (local state file, registry copy) keep it from
# replaying. For every worker: every ID a later run issued is above every ID an earlier run issued
# (or the later run holds another worker). No duplicate over all runs.
# shellcheck disable=SC2015 # ok and not_ok always succeed: "cond && ok || not_ok" is if-then-else
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ht_init 05-restart

LOADGEN=$(ht_build_loadgen) || { not_ok "build tests/http/loadgen.c"; exit 1; }
WB=1 SB=21
export ZK_TICK_MS=500
zk=$(zk_start "$T/zk") || { not_ok "ZooKeeper starts"; exit 1; }
ok "ZooKeeper started by the test ($zk)"
svc_config "$T/svc.conf.lua" "$zk" "$T/svc/state" \
	"layout = { timestamp_bits = 41, worker_bits = $WB, sequence_bits = $SB }" \
	"state = { dir = \"$T/svc/state\", ahead_ms = 2000 }" \
	'lease = { zk_hosts = "'"$zk"'", root = "/snowflake/http-restart", session_timeout_ms = 2000, margin_ms = 500, registry_ahead_ms = 2500 }' \
	'limits = { rate_per_10s = 100000000 }'
# (the lease and state sections replace svc_config's defaults;
# state.ahead_ms 2000: see 04-clock, libfaketime can starve the lease thread of run 3)
# shellcheck source=tests/lib/faketime.sh
. "$HT_REPO/tests/lib/faketime.sh"
[[ -r $FAKETIME_LIB ]] || { not_ok "libfaketime is installed ($FAKETIME_LIB)"; exit 1; }
ft=$T/faketime.rc
echo "+0" >"$ft"
SVC_PORT=$(zk_free_port) || { not_ok "a free port"; exit 1; }
export SVC_PORT
port=$SVC_PORT

# one run: start, load for LOAD_S seconds, kill -9 master and worker KILL_AT seconds in (or stop)
run_once() {
	local n=$1 kill_at=$2 prefix=${3:-} url t0 master workers lg rc
	t0=$(ht_now_ms)
	t3_start=$t0
	url=$(svc_start "$T/svc" ZK_HOSTS="$zk" CONFIG="$T/svc.conf.lua" ${prefix:+HAPROXY_ENV_PREFIX="$prefix"}) ||
		{ not_ok "run $n: the service starts"; return 1; }
	ok "run $n: the service serves again $(($(ht_now_ms) - t0)) ms after the start (/health 200)"
	figure "restart_run${n}_ready_ms" $(($(ht_now_ms) - t0))
	mkdir -p "$T/run$n"
	"$LOADGEN" -p "$port" -c 8 -d 2 -t 20 -m small -k -w $WB -s $SB -o "$T/run$n" >"$T/run$n.out" 2>&1 &
	lg=$!
	if [[ $kill_at != stop ]]; then
		sleep "$kill_at"
		master=$(svc_master_pid "$T/svc")
		workers=$(svc_worker_pids "$T/svc" | tr '\n' ' ')
		# shellcheck disable=SC2086
		kill -KILL $workers "$master"
		diag "run $n: kill -9 worker(s) $workers and master $master under load"
		local i
		for ((i = 0; i < 100; i++)); do
			proc_alive "$master" || break
			sleep 0.05
		done
		# run.sh ends when its HAProxy dies; wait for it (bounded), then clean what is left
		svc_stop "$T/svc"
	fi
	wait "$lg"
	sed 's/^/# /' "$T/run$n.out" | grep -v '^# FIRST_ERROR.*\(connect\|EOF\|Connection reset\|X-Snowflake-Worker\)'
	local sum
	sum=$(grep '^SUMMARY' "$T/run$n.out")
	get() { sed -n "s/.* $1=\([0-9]*\) .*/\1/p" <<<"$sum"; }
	if [[ -n $sum && $(get ids) -gt 0 && $(get non200) == 0 && $(get bad) == $(get header_mismatch) && $(get order_violations) == 0 ]]; then
		ok "run $n: $(get ids) IDs under load, every answer 200, per-worker order held per connection"
	else
		not_ok "run $n: IDs under load, every answer 200, per-worker order held per connection ($sum)"
	fi
	hdr_mismatch=$((hdr_mismatch + $(get header_mismatch)))
	hdr_answers=$((hdr_answers + $(get ok) + $(get bad)))
	cat "$T/run$n"/*.ids >"$T/run$n.all"
}

hdr_mismatch=0 hdr_answers=0
run_once 1 1 || ht_done
run_once 2 1 || ht_done
# run 3: the clock 1.5 s behind the newest ID of run 1
max1=$(sort -n "$T/run1.all" | tail -1)
ts1=$(((max1 >> (WB + SB)) + EPOCH_MS))
now=$(ht_now_ms)
off_ms=$((ts1 - 1500 - now))
awk -v ms="$off_ms" 'BEGIN { printf "%.3f\n", ms / 1000 }' >"$ft"
diag "run 3 under libfaketime: wall clock offset $(cat "$ft") s (1.5 s behind run 1's newest ID, $ts1)"
run_once 3 stop "$(faketime_prefix "$ft")" || ht_done
svc_stop "$T/svc"

# SPEC "HTTP API": X-Snowflake-Worker is the minting worker; with this layout (1 worker bit, 21
# sequence bits) that is (id >> 21) & 1
if ((hdr_mismatch == 0)); then
	ok "X-Snowflake-Worker matches the IDs' worker under the configured layout in all $hdr_answers answers"
else
	not_ok "X-Snowflake-Worker matches the IDs' worker under the configured layout ($WB worker bit): $hdr_mismatch of $hdr_answers answers differ"
	grep -h -m2 'X-Snowflake-Worker' "$T"/run[123].out | sed 's/^/#   /'
fi
lua5.4 "$HT_HERE/runs_check.lua" $WB $SB "$T/run1.all" "$T/run2.all" "$T/run3.all" >"$T/check.out"
rc=$?
sed 's/^/# /' "$T/check.out"
((rc == 0)) && ok "no replay: for every worker, every ID of a later run is above every ID of an earlier run" ||
	not_ok "no replay: for every worker, every ID of a later run is above every ID of an earlier run"
reused=$(sed -n 's/^RESULT .* reused=\([0-9]*\)/\1/p' "$T/check.out")
((${reused:-0} >= 1)) && ok "a worker ID of a killed run was claimed again by a later run ($reused times)" ||
	not_ok "a worker ID of a killed run was claimed again by a later run (reused=${reused:-?})"
# run 3 started with its clock behind the newest ID of the run whose worker it took: its first ID
# is above that run's newest only because it waited past the marks
w3=$(awk '{ print; exit }' "$T/run3.all")
if [[ -n $w3 ]]; then
	w3=$(((w3 >> SB) & ((1 << WB) - 1)))
	prev=$(grep -E "^REUSED $w3 [12] 3$" "$T/check.out" | awk '{ print $3 }' | sort -n | tail -1)
	if [[ -n $prev ]]; then
		# "RUN n workers w:count:min:max ..." from runs_check.lua
		pmax=$(sed -n "s/^RUN $prev workers //p" "$T/check.out" | tr ' ' '\n' | awk -F: -v w="$w3" '$1 == w { print $4 }')
		behind=$((((pmax >> (WB + SB)) + EPOCH_MS) - (t3_start + off_ms)))
		diag "run 3 took worker $w3 of run $prev; its clock started $behind ms behind that run's newest ID"
		((behind > 0)) && ok "run 3 reused worker $w3 of killed run $prev with its clock $behind ms behind that run's newest ID, and waited past the marks" ||
			not_ok "run 3 reused a worker of a killed run with its clock behind that run's newest ID (behind: $behind ms)"
	else
		not_ok "run 3 reused a worker ID of a killed run (it took worker $w3, never used before)"
	fi
fi
total=$(cat "$T"/run*.all | wc -l)
dups=$(cat "$T"/run*.all | LC_ALL=C sort | uniq -d | head -3)
[[ -z $dups ]] && ok "no duplicate among the $total IDs of the three runs" || not_ok "no duplicate among the $total IDs of the three runs ($dups)"
ht_done
