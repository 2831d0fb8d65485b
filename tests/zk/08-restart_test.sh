#!/usr/bin/env bash
# A crash and a restart on the same host (SPEC: Safety 4 "Restart never replays", Safety 1).
# Layout of 1 worker bit; a foreign session holds ID 1, so the claimant holds 0. It is killed with
# SIGKILL (no clean release: its node stays until its session expires) and restarted at once with
# the same state dir. The new process must not take ID 0 before the old session is gone, must wait
# past both marks the crashed one left (local file and registry), and its first ID must lie above
# every ID the crashed one issued.
set -u
# shellcheck source=tests/zk/lib.sh
. "$(dirname "$0")/lib.sh"
zt_init 08-restart

cs=$(zk_start "$T/zk") || { not_ok "start ZooKeeper"; exit 1; }
ok "ZooKeeper serves at $cs"
R=/t08
zt_bg holder "$ZKCTL" -t 2000 "$cs" create "$R/workers/1" holder -e --hold 0
zt_wait "$T/holder.out" '^HELD ' 10000 || { not_ok "a foreign session holds worker 1"; exit 1; }

# a 4 s session: the checks below and r2's start must all fit before it expires, also on a slow box
zt_claimant r1 "$cs" "$R" --worker-bits 1 --print-ids --every 1000 --timeout 4000
r1=$ZT_PID
if ! zt_wait "$T/r1.out" '^STATE [0-9]+ [0-9]+ minting 0 ' 10000; then
	not_ok "the first process mints as worker 0"
	zt_tail_diag "$T/r1.out"
	exit 1
fi
ok "the first process mints as worker 0"
sleep 1.5
kill -KILL "$r1"
wait "$r1" 2>/dev/null
crash=$(zt_mono)
fence1=$(awk '$1 == "FENCE" && $3 > 0 { f = $3 } END { print f + 0 }' "$T/r1.out")
last1=$(zt_ids "$T/r1.out" | tail -n1)
local_mark=$(sed -n 's/^sfhwm1 \([0-9]*\)$/\1/p' "$T/state-r1/worker-0.hwm")
reg_mark=$("$ZKCTL" "$cs" get "$R/marks/0")
read -r last_ts _ <<<"$(zt_decode "$last1" 1)"
diag "crashed at mono $crash; last ID $last1 (ts $last_ts); local mark $local_mark, registry mark $reg_mark"
check "the crashed process left its node behind (its session is still open)" \
	test "$("$ZKCTL" "$cs" ls "$R/workers" | grep -cx 0)" = 1
check "the crashed process's marks are ahead of its last ID" \
	test "${local_mark:-0}" -ge "$last_ts" -a "${reg_mark:-0}" -ge "$last_ts"

zt_claimant r2 "$cs" "$R" --worker-bits 1 --print-ids --every 1000 --reclaim 200 --state "$T/state-r1"
if zt_wait "$T/r2.out" '^STATE [0-9]+ [0-9]+ parked -1 no_free_worker' 3000; then
	ok "the restarted process finds ID 0 still held and parks (no_free_worker)"
else
	not_ok "the restarted process finds ID 0 still held and parks (no_free_worker)"
	zt_tail_diag "$T/r2.out"
fi
if zt_wait "$T/r2.out" '^ID ' 15000; then
	ok "once the old session expired, the restarted process mints"
else
	not_ok "once the old session expired, the restarted process mints"
	zt_tail_diag "$T/r2.out"
	exit 1
fi
claim=$(zt_state_line "$T/r2.out" waiting)
first=$(zt_first "$T/r2.out" '^ID ')
first_id=$(zt_field "$first" 4)
t0=$(zt_field "$first" 2)
t0=${t0:0:${#t0}-6}
read -r first_ts first_w _ <<<"$(zt_decode "$first_id" 1)"
figure restart_first_id_after_crash_ms $((t0 - crash))
check "it took ID 0 again ($first_w)" test "$first_w" = 0
check "its claim came after the crashed process's fence ($(zt_field "$claim" 2) >= $fence1)" \
	test "$(zt_field "$claim" 2)" -ge "$fence1"
check "its first ID's timestamp $first_ts is past the local mark $local_mark" test "$first_ts" -gt "$local_mark"
check "its first ID's timestamp $first_ts is past the registry mark $reg_mark" test "$first_ts" -gt "$reg_mark"
check "its first ID is above every ID of the crashed process ($first_id > $last1)" \
	test "$(printf '%s\n%s\n' "$last1" "$first_id" | sort -n | tail -n1)" = "$first_id" -a "$first_id" != "$last1"
sleep 0.5
proc_stop "$(<"$T/r2.pid")"
d=$(zt_dups "$T/r1.out" "$T/r2.out")
check "no duplicate over both processes' IDs ($(zt_ids "$T/r1.out" "$T/r2.out" | wc -l))" test -z "$d"
check "the restarted process's IDs are strictly increasing" zt_increasing "$T/r2.out"
zt_done
