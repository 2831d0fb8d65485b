#!/usr/bin/env bash
# A claimant frozen (SIGSTOP) for longer than its session timeout (SPEC: Safety 1 and 3).
# Layout of 1 worker bit (IDs 0 and 1); a foreign session holds ID 1, so A claims 0. A is stopped for
# 4 s (timeout 2 s); while it is stopped B starts, parks until A's session expires, then takes ID 0.
# On SIGCONT: A mints not one ID started at or after its fence, never collides with B (B's IDs on
# ID 0 all come after A's: the write-ahead mark), finds no free ID (parked, no_free_worker), and once
# ID 1 is released it claims it and mints again, same process.
set -u
# shellcheck source=tests/zk/lib.sh
. "$(dirname "$0")/lib.sh"
zt_init 05-pause

cs=$(zk_start "$T/zk") || { not_ok "start ZooKeeper"; exit 1; }
ok "ZooKeeper serves at $cs"
R=/t05
zt_bg holder "$ZKCTL" -t 2000 "$cs" create "$R/workers/1" holder -e --hold 0
holder=$ZT_PID
zt_wait "$T/holder.out" '^HELD ' 10000 || { not_ok "a foreign session holds worker 1"; exit 1; }
ok "a foreign session holds worker 1"

zt_claimant a "$cs" "$R" --worker-bits 1 --print-ids --every 1000
apid=$ZT_PID
A=$T/a.out
if ! zt_wait "$A" '^STATE [0-9]+ [0-9]+ minting 0 ' 10000; then
	not_ok "A claims worker 0 and mints"
	zt_tail_diag "$A"
	exit 1
fi
ok "A claims worker 0 and mints"
sleep 1.5

from=$(($(zt_nlines "$A") + 1))
k=$(zt_mono)
kill -STOP "$apid"
fence_a=$(awk '$1 == "FENCE" && $3 > 0 { f = $3 } END { print f + 0 }' "$A")
diag "A (pid $apid) stopped at mono $k; its fence $fence_a ($((fence_a - k)) ms ahead)"
sleep 0.3
zt_claimant b "$cs" "$R" --worker-bits 1 --print-ids --every 1000 --reclaim 200
bpid=$ZT_PID
B=$T/b.out
sleep 3.7
c=$(zt_mono)
kill -CONT "$apid"
diag "A continued at mono $c, stopped for $((c - k)) ms"
check "A was stopped longer than its session timeout ($((c - k)) ms > $ZT_TIMEOUT ms)" \
	test $((c - k)) -gt "$ZT_TIMEOUT"

if zt_wait "$B" '^STATE [0-9]+ [0-9]+ (waiting|minting) 0 ' 10000; then
	ok "B takes worker 0 once A's session expired"
else
	not_ok "B takes worker 0 once A's session expired"
	zt_tail_diag "$B"
fi
if zt_wait "$A" '^STATE [0-9]+ [0-9]+ parked -1 no_free_worker' 10000 "$from"; then
	ok "A, continued, finds no free worker ID and parks (no_free_worker)"
else
	not_ok "A, continued, finds no free worker ID and parks (no_free_worker)"
	zt_tail_diag "$A"
fi
sleep 0.5
# (IDs started between the kill -STOP call and its delivery are fine: the fence check covers them)
n=$(awk -v c="$c" '$1 == "ID" && substr($2, 1, length($2) - 6) + 0 >= c' "$A" | wc -l)
check "A mints not one ID after it was continued, while it holds no lease ($n)" test "$n" = 0
zt_wait "$B" '^ID ' 10000 || { not_ok "B mints as worker 0"; zt_tail_diag "$B"; }

# ID 1 becomes free: A must claim it and mint again, without a restart
r=$(zt_mono)
rfrom=$(($(zt_nlines "$A") + 1))
proc_stop "$holder"
if zt_wait "$A" '^ID ' 10000 "$rfrom"; then
	line=$(zt_first "$A" '^ID ' "$rfrom")
	t=$(zt_field "$line" 2)
	figure pause_reclaim_after_id_freed_ms $((${t:0:${#t}-6} - r))
	ok "A claims the freed worker 1 and mints again (same pid, one START: $(grep -c '^START ' "$A"))"
else
	not_ok "A claims the freed worker 1 and mints again"
	zt_tail_diag "$A"
fi
check "A now mints as worker 1" test -n "$(zt_first "$A" '^STATE [0-9]+ [0-9]+ minting 1 ' "$rfrom")"
sleep 1
proc_stop "$apid"
proc_stop "$bpid"

res=$(zt_fence_check "$A")
diag "A fence check: $res"
zt_fence_check "$A" | grep '^VIOLATION' | sed 's/^/#   /'
read -r _ v _ _ _ n <<<"$res"
check "A: not one ID started at or after the fence in force ($n IDs checked)" test "$v" = 0 -a "$n" -gt 0
a_after=$(tail -n "+$from" "$A" | awk -v f="$fence_a" '$1 == "ID" && substr($2, 1, length($2) - 6) + 0 >= f' | head -n1)
first_new_fence=$(tail -n "+$from" "$A" | awk -v f="$fence_a" '$1 == "FENCE" && $3 > f { print $2; exit }')
# the first ID A started after its old fence must come after a newer fence was published
if [[ -n $a_after ]]; then
	t=$(zt_field "$a_after" 2)
	check "A's first ID after its old fence follows a new grant" test -n "$first_new_fence" -a "${t:0:${#t}-6}" -ge "${first_new_fence:-0}"
fi
res=$(zt_fence_check "$B")
read -r _ v _ _ _ n <<<"$res"
check "B: not one ID started at or after the fence in force ($n IDs checked)" test "$v" = 0 -a "$n" -gt 0

# A's and B's IDs on worker 0 never collide, and B's all come after A's
a0=$T/a0.ids b0=$T/b0.ids
zt_ids "$A" | while read -r id; do (((id >> 21) & 1)) || echo "$id"; done | sort -n >"$a0"
zt_ids "$B" | while read -r id; do (((id >> 21) & 1)) || echo "$id"; done | sort -n >"$b0"
check "B's IDs all encode worker 0 ($(wc -l <"$b0") of $(zt_ids "$B" | wc -l))" \
	test "$(wc -l <"$b0")" = "$(zt_ids "$B" | wc -l)"
amax=$(tail -n1 "$a0") bmin=$(head -n1 "$b0")
if [[ -n $amax && -n $bmin ]]; then
	check "every B ID on worker 0 is above every A ID on worker 0 (A max $amax < B min $bmin)" \
		test "$(printf '%s\n%s\n' "$amax" "$bmin" | sort -n | head -n1)" = "$amax" -a "$amax" != "$bmin"
	read -r ats _ <<<"$(zt_decode "$amax" 1)"
	read -r bts _ <<<"$(zt_decode "$bmin" 1)"
	figure pause_gap_between_holders_ms $((bts - ats))
else
	not_ok "both A and B minted on worker 0"
fi
b_first=$(zt_field "$(zt_first "$B" '^ID ')" 2)
check "B's first ID starts after A's fence (B ${b_first:0:${#b_first}-6}, A's fence $fence_a)" \
	test "${b_first:0:${#b_first}-6}" -ge "$fence_a"
figure pause_b_first_id_after_a_stop_ms $((${b_first:0:${#b_first}-6} - k))
d=$(zt_dups "$A" "$B")
check "no duplicate over A's and B's IDs ($(zt_ids "$A" "$B" | wc -l))" test -z "$d"
check "A's IDs strictly increasing" zt_increasing "$A"
zt_done
