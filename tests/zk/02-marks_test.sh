#!/usr/bin/env bash
# High-water marks on claim (SPEC: Safety 4, Lease "read the mark, wait past it").
#  - registry marks/<id> ahead of the clock (now + 3 s) for every ID of a 2-bit layout: the claimant
#    waits (state waiting, reason clock_wait), then mints, and its first ID's timestamp is past the
#    mark; while it mints, every ID's timestamp is at or below the registry mark already stored
#    (write-ahead);
#  - marks now + 60 s with --start-bound 10000: it refuses (parked, registry_hwm_ahead), mints
#    nothing, and leaves the marks as they were;
#  - the same with the local marks (state dir files) instead: waits past them, or hwm_ahead;
#  - unreadable registry marks: it parks and never mints.
set -u
# shellcheck source=tests/zk/lib.sh
. "$(dirname "$0")/lib.sh"
zt_init 02-marks

cs=$(zk_start "$T/zk") || { not_ok "start ZooKeeper"; exit 1; }
ok "ZooKeeper serves at $cs"
wall_ms() { local t; t=$(date +%s%N); echo $((t / 1000000)); }

# ---- registry marks 3 s ahead: wait, then mint past them ----------------------------------------
R=/t02/ahead
mark=$(($(wall_ms) + 3000))
for w in 0 1 2 3; do "$ZKCTL" "$cs" put "$R/marks/$w" "$mark" >/dev/null || not_ok "put $R/marks/$w"; done
zt_claimant near "$cs" "$R" --worker-bits 2 --print-ids --every 2000
if zt_wait "$T/near.out" '^STATE [0-9]+ [0-9]+ waiting [0-3] clock_wait' 5000; then
	ok "marks 3 s ahead: the claimant holds an ID and waits (waiting, clock_wait)"
else
	not_ok "marks 3 s ahead: the claimant holds an ID and waits (waiting, clock_wait)"
	zt_tail_diag "$T/near.out"
fi
if zt_wait "$T/near.out" '^ID ' 8000; then
	ok "then it mints"
else
	not_ok "then it mints"
	zt_tail_diag "$T/near.out"
fi
first=$(zt_first "$T/near.out" '^ID ')
wait_line=$(zt_state_line "$T/near.out" waiting clock_wait)
mint_line=$(zt_state_line "$T/near.out" minting)
w=$(zt_field "$mint_line" 5)
if [[ -n $first ]]; then
	read -r ts fw _ <<<"$(zt_decode "$(zt_field "$first" 4)" 2)"
	check "its first ID's timestamp $ts is past the mark $mark (by $((ts - mark)) ms)" test "$ts" -gt "$mark"
	check "its first ID encodes the worker it holds ($fw = $w)" test "$fw" = "$w"
	figure mark_wait_ms $(($(zt_field "$mint_line" 2) - $(zt_field "$wait_line" 2)))
fi
check "minting began only once the wall clock had passed the mark" \
	test "$(zt_field "$mint_line" 3)" -gt "$mark"
first_id_no=$(grep -m1 -n '^ID ' "$T/near.out" | cut -d: -f1)
mint_no=$(grep -m1 -n -E '^STATE [0-9]+ [0-9]+ minting' "$T/near.out" | cut -d: -f1)
check "nothing was minted before the minting state (line $mint_no, first ID line $first_id_no)" \
	test "${first_id_no:-0}" -gt "${mint_no:-0}"

# write-ahead: snapshots of (mono time, registry mark); every ID finished before the snapshot was
# taken has a timestamp at or below the mark then stored
snaps=()
for ((k = 0; k < 8; k++)); do
	s=$(zt_mono)
	m=$("$ZKCTL" "$cs" get "$R/marks/$w")
	snaps+=("$s $m")
	sleep 0.3
done
bad=0 checked=0
for sm in "${snaps[@]}"; do
	read -r s m <<<"$sm"
	# the last ID whose mint ended before s (mono_end_ns < s ms)
	last=$(awk -v s="$s" '$1 == "ID" && substr($3, 1, length($3) - 6) + 0 < s { id = $4 } END { print id }' "$T/near.out")
	[[ -z $last ]] && continue
	checked=$((checked + 1))
	read -r ts _ <<<"$(zt_decode "$last" 2)"
	if ((ts > m)); then bad=$((bad + 1)); diag "ID $last (ts $ts) above the registry mark $m read at $s"; fi
	((m > mark)) || { bad=$((bad + 1)); diag "registry mark $m not moved past the initial $mark"; }
done
check "write-ahead: IDs never exceed the registry mark stored before them ($checked snapshots)" \
	test $bad = 0 -a $checked -gt 0
ahead=$(($("$ZKCTL" "$cs" get "$R/marks/$w") - $(wall_ms)))
figure registry_mark_ahead_ms "$ahead"
check "the registry mark is kept ahead of the clock while minting ($ahead ms)" test "$ahead" -gt 0
others=1
for o in 0 1 2 3; do
	[[ $o == "$w" ]] && continue
	[[ $("$ZKCTL" "$cs" get "$R/marks/$o") == "$mark" ]] || others=0
done
check "the marks of the IDs it does not hold are untouched" test $others = 1
proc_stop "$(<"$T/near.pid")"

# ---- registry marks 60 s ahead, bound 10 s: refuse ----------------------------------------------
R=/t02/far
far=$(($(wall_ms) + 60000))
for w in 0 1 2 3; do "$ZKCTL" "$cs" put "$R/marks/$w" "$far" >/dev/null || not_ok "put $R/marks/$w"; done
zt_claimant far "$cs" "$R" --worker-bits 2 --print-ids --every 2000 --start-bound 10000
if zt_wait "$T/far.out" '^STATE [0-9]+ [0-9]+ parked -?[0-9]+ registry_hwm_ahead' 5000; then
	ok "marks 60 s ahead with start bound 10 s: parked with registry_hwm_ahead"
else
	not_ok "marks 60 s ahead with start bound 10 s: parked with registry_hwm_ahead"
	zt_tail_diag "$T/far.out"
fi
sleep 2.5 # a couple more claim rounds
check "it never mints" test "$(grep -c -E '^ID |^STATE [0-9]+ [0-9]+ (minting|waiting)' "$T/far.out")" = 0
same=1
for w in 0 1 2 3; do [[ $("$ZKCTL" "$cs" get "$R/marks/$w") == "$far" ]] || same=0; done
check "a refusing claimant leaves the registry marks as they were" test $same = 1
proc_stop "$(<"$T/far.pid")"

# ---- local marks (the state dir) ahead: wait past them, or refuse beyond the bound ------------------
R=/t02/local
lmark=$(($(wall_ms) + 2500))
mkdir -p "$T/state-lnear" "$T/state-lfar"
for w in 0 1 2 3; do printf 'sfhwm1 %s\n' "$lmark" >"$T/state-lnear/worker-$w.hwm"; done
zt_claimant lnear "$cs" "$R" --worker-bits 2 --print-ids --every 2000
if zt_wait "$T/lnear.out" '^ID ' 8000; then
	read -r ts _ <<<"$(zt_decode "$(zt_field "$(zt_first "$T/lnear.out" '^ID ')" 4)" 2)"
	check "local marks 2.5 s ahead: it waited, and its first ID ($ts) is past the local mark $lmark" \
		test "$ts" -gt "$lmark"
	check "it reported waiting (clock_wait) first" test -n "$(zt_state_line "$T/lnear.out" waiting clock_wait)"
else
	not_ok "local marks 2.5 s ahead: it mints after waiting"
	zt_tail_diag "$T/lnear.out"
fi
proc_stop "$(<"$T/lnear.pid")"

R=/t02/localfar
lfar=$(($(wall_ms) + 60000))
for w in 0 1 2 3; do printf 'sfhwm1 %s\n' "$lfar" >"$T/state-lfar/worker-$w.hwm"; done
zt_claimant lfar "$cs" "$R" --worker-bits 2 --print-ids --every 2000 --start-bound 10000
if zt_wait "$T/lfar.out" '^STATE [0-9]+ [0-9]+ parked -?[0-9]+ hwm_ahead' 5000; then
	ok "local marks 60 s ahead with start bound 10 s: parked with hwm_ahead"
else
	not_ok "local marks 60 s ahead with start bound 10 s: parked with hwm_ahead"
	zt_tail_diag "$T/lfar.out"
fi
sleep 1
check "it never mints" test "$(grep -c '^ID ' "$T/lfar.out")" = 0
proc_stop "$(<"$T/lfar.pid")"

# ---- unreadable registry marks: never mint on an ID whose mark cannot be read ------------------
R=/t02/garbled
for w in 0 1; do "$ZKCTL" "$cs" put "$R/marks/$w" "not-a-mark" >/dev/null || not_ok "put $R/marks/$w"; done
zt_claimant garbled "$cs" "$R" --worker-bits 1 --print-ids --every 2000 --reclaim 300
if zt_wait "$T/garbled.out" '^STATE [0-9]+ [0-9]+ parked ' 5000; then
	ok "unreadable marks: the claimant parks ($(zt_field "$(zt_state_line "$T/garbled.out" parked)" 6))"
else
	not_ok "unreadable marks: the claimant parks"
	zt_tail_diag "$T/garbled.out"
fi
sleep 1.5
check "unreadable marks: it never mints" \
	test "$(grep -c -E '^ID |^STATE [0-9]+ [0-9]+ (minting|waiting)' "$T/garbled.out")" = 0
proc_stop "$(<"$T/garbled.pid")"

d=$(zt_dups "$T"/*.out)
check "no duplicate ID over every claimant of this test" test -z "$d"
zt_done
