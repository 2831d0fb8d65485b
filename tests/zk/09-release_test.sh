#!/usr/bin/env bash
# A clean stop releases the worker ID and brings its registry mark down to
# what was really issued (SPEC: Lease; the next holder "waits past it"), so a
# successor takes the ID without waiting out the write-ahead reach (2 x the
# session timeout), and still never goes below what was issued.
# Layout of 1 worker bit; a foreign session holds ID 1, so both claimants get 0.
set -u
# shellcheck source=tests/zk/lib.sh
. "$(dirname "$0")/lib.sh"
zt_init 09-release

cs=$(zk_start "$T/zk") || { not_ok "start ZooKeeper"; exit 1; }
R=/t09
zt_bg holder "$ZKCTL" -t 2000 "$cs" create "$R/workers/1" holder -e --hold 0
zt_wait "$T/holder.out" '^HELD ' 10000 || { not_ok "a foreign session holds worker 1"; exit 1; }

zt_claimant a "$cs" "$R" --worker-bits 1 --print-ids --every 1000
apid=$ZT_PID
if ! zt_wait "$T/a.out" '^STATE [0-9]+ [0-9]+ minting 0 ' 10000; then
	not_ok "A claims worker 0 and mints"; zt_tail_diag "$T/a.out"; exit 1
fi
ok "A claims worker 0 and mints"
sleep 1
ahead=$("$ZKCTL" "$cs" get "$R/marks/0" 2>/dev/null | tr -dc 0-9)
now_ms=$(($(date +%s%N) / 1000000))
diag "registry mark while minting: $((ahead - now_ms)) ms ahead of the clock"
check "while minting the registry mark is written ahead (more than a session timeout)" \
	test "$((ahead - now_ms))" -gt "$ZT_TIMEOUT"

kill -TERM "$apid"
zt_wait "$T/a.out" '^EXIT ' 10000 || not_ok "A stops on SIGTERM"
last_a=$(zt_ids "$T/a.out" | tail -n 1)
last_ts=$(zt_decode "$last_a" 1 | awk '{ print $1 }')
mark=$("$ZKCTL" "$cs" get "$R/marks/0" 2>/dev/null | tr -dc 0-9)
diag "after the stop: mark $mark, last issued timestamp $last_ts"
check "after a clean stop the mark is brought down to what was issued" \
	test "$mark" -lt "$ahead"
check "and never below the last issued timestamp" test "$mark" -ge "$last_ts"

s=$(zt_mono)
zt_claimant b "$cs" "$R" --worker-bits 1 --print-ids --every 1000
if zt_wait "$T/b.out" '^STATE [0-9]+ [0-9]+ minting 0 ' 10000; then
	took=$(($(awk '$1 == "STATE" && $4 == "minting" { print $2; exit }' "$T/b.out") - s))
	figure released_id_takeover_ms "$took"
	check "B takes the released ID without waiting out the write-ahead reach (${took} ms)" \
		test "$took" -lt "$((2 * ZT_TIMEOUT))"
else
	not_ok "B claims worker 0"; zt_tail_diag "$T/b.out"
fi
sleep 0.5
first_b=$(zt_ids "$T/b.out" | head -n 1)
check "B's first ID is above A's last" test "${first_b:-0}" -gt "$last_a"
check "no duplicates" test -z "$(zt_dups "$T/a.out" "$T/b.out")"
zt_done
