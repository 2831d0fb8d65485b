#!/usr/bin/env bash
# A real caller's /id latency under connection-level hostility (issue 12 point 5), on the real
# service (haproxy/run.sh, its limits as shipped, the bench's own ZooKeeper):
#   BENCH http_id_p99_ms_baseline          p99 of GET /id, no attacker
#   BENCH http_id_p99_ms_under_10k_idle    the same while 10,000 idle connections stay open
#   BENCH http_id_p99_ms_under_slowloris   the same during a slowloris (HOSTILE_BENCH_SLOW_CONNS,
#                                          5,000, connections dribbling a request head, 1 byte/s)
# target: the two under attack < 50 ms. Each is the median over the rounds (the kinds in an order
# rotated round by round); the caller (tests/http/connflood.c) sends 500 GET /id a second on a
# keep-alive connection from 127.0.0.1, every 50th on a new connection, for
# HOSTILE_BENCH_SECONDS (6); the attackers come from 50 other 127/8 addresses.
#   usage: hostile_bench.sh CONNFLOOD_BINARY
# Knobs: HOSTILE_BENCH_ROUNDS (3), HOSTILE_BENCH_SECONDS (6), HOSTILE_BENCH_SLOW_CONNS (5000).
# Exit status 1 when a caller request failed (its figure then counts only the answered ones).
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/bench/http/lib.sh
. "$here/http/lib.sh"

flood=${1:?usage: hostile_bench.sh CONNFLOOD_BINARY}
rounds=${HOSTILE_BENCH_ROUNDS:-3}
secs=${HOSTILE_BENCH_SECONDS:-6}
slow_conns=${HOSTILE_BENCH_SLOW_CONNS:-5000}
[[ -x $flood ]] || { hb_err "no connflood binary at $flood"; exit 1; }

hb_init || exit 1
t_start=$SECONDS
hb_start_zk || exit 1
hb_start_service service || exit 1
# shellcheck disable=SC2154 # set by hb_start_service (printf -v)
port=${HB_URL_service##*:}

failed=0
declare -A p99=()
kinds=(baseline idle slowloris)
hb_say "hostile bench: $rounds rounds; caller 500 GET /id/s for ${secs} s; 10000 idle, $slow_conns slowloris" \
	"connections from 50 addresses; HAProxy nbthread $HB_THREADS, $(nproc) CPUs shared"
for ((r = 0; r < rounds; r++)); do
	line="round $((r + 1)):"
	for ((k = 0; k < ${#kinds[@]}; k++)); do
		kind=${kinds[$(((k + r) % ${#kinds[@]}))]}
		case $kind in
		baseline) args=(-m none) ;;
		idle) args=(-m idle -c 10000 -a 50) ;;
		slowloris) args=(-m slowloris -c "$slow_conns" -a 50) ;;
		esac
		out=$("$flood" -p "$port" -d "$secs" -t $((secs + 30)) "${args[@]}" 2>&1)
		rc=$?
		sum=$(grep '^CONNFLOOD' <<<"$out")
		if ((rc != 0)) || [[ -z $sum ]]; then
			failed=1
			hb_err "$kind (round $((r + 1))): $(grep -v '^CONNFLOOD' <<<"$out" | head -n 3 | tr '\n' ' ') $sum"
		fi
		v=$(sed -n 's/.* p99_ms=\([^ ]*\).*/\1/p' <<<"$sum")
		p99[$kind]="${p99[$kind]:-} ${v:-0}"
		line+=" $kind p99 ${v:-?} ms (open $(sed -n 's/.* open_avg=\([^ ]*\).*/\1/p' <<<"$sum"),"
		line+=" max $(sed -n 's/.* max_ms=\([^ ]*\).*/\1/p' <<<"$sum") ms, errors $(sed -n 's/.* errors=\([^ ]*\).*/\1/p' <<<"$sum"));"
	done
	hb_say "$line"
done

# shellcheck disable=SC2086 # word lists
{
	base=$(hb_median ${p99[baseline]})
	idle=$(hb_median ${p99[idle]})
	slow=$(hb_median ${p99[slowloris]})
}
printf 'BENCH http_id_p99_ms_baseline %.3f ms\n' "$base"
printf 'BENCH http_id_p99_ms_under_10k_idle %.3f ms\n' "$idle"
printf 'BENCH http_id_p99_ms_under_slowloris %.3f ms\n' "$slow"
awk -v x="$idle" 'BEGIN { exit !(x < 50) }' || hb_say "TARGET MISSED: http_id_p99_ms_under_10k_idle $idle >= 50"
awk -v x="$slow" 'BEGIN { exit !(x < 50) }' || hb_say "TARGET MISSED: http_id_p99_ms_under_slowloris $slow >= 50"
hb_say "hostile bench took $((SECONDS - t_start)) s"
exit "$failed"
