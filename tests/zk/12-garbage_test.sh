#!/usr/bin/env bash
# A garbage registry (SPEC: Lease): garbage in every node the lease reads, written with a second
# client (zkctl), before and while a claimant holds a lease. Each case: no crash, a log line naming
# the path, and never a mint below a mark it could not read (the ID is skipped or refused).
# Layout of 3 worker bits (IDs 0..7):
#   before the claim  marks/0 "not a number", marks/1 "-5", marks/2 1,000,000 digits, marks/3 ten
#                     years ahead, workers/4 a persistent node holding garbage, quarantine/6 a
#                     record that is not one, children named abc, -1, 007, 99999 under workers/,
#                     marks/ and quarantine/; worker 5 is held by another session: the claimant
#                     must take 7, the only clean ID, and nothing else
#   while it holds 7  marks/7 garbage, lowered, deleted: written again each time; then
#                     quarantine/7 appears (another claimant's canary): it parks within 1 s (both
#                     claimants park) and says what it issued; with no clean ID left it never mints
#   on a second root  its own node's data replaced by garbage: a canary, the quarantine record
#                     says what it saw and the audit window; garbage in quarantine/<id>: parks too
# Figures: the time from the quarantine record's creation to the park.
set -u
# shellcheck source=tests/zk/lib.sh
. "$(dirname "$0")/lib.sh"
zt_init 12-garbage

cs=$(zk_start "$T/zk") || { not_ok "start ZooKeeper"; exit 1; }
ok "ZooKeeper serves at $cs"
R=/t12
put() { "$ZKCTL" "$cs" put "$@" >/dev/null; }
now_ms=$(($(date +%s%N) / 1000000))
# a log line of the claimant's output naming PATH with TEXT (called through check)
# shellcheck disable=SC2317
logged() { grep -E '^LOG [0-9] ' "$1" | grep -F -- "$2" | grep -qF -- "$3"; }

head -c 1000000 /dev/zero | tr '\0' '9' >"$T/huge"
put "$R/marks/0" "not a number"
put "$R/marks/1" "-5"
put "$R/marks/2" "@$T/huge"
put "$R/marks/3" "$((now_ms + 10 * 365 * 86400000))"
put "$R/workers/4" "a persistent node where an ephemeral belongs"
put "$R/quarantine/6" "garbage"
for kind in workers marks quarantine; do
	for name in abc -1 007 99999; do put "$R/$kind/$name" "x"; done
done
zt_bg holder5 "$ZKCTL" -t 4000 "$cs" create "$R/workers/5" '{"node":"other"}' -e --hold 0
zt_wait "$T/holder5.out" '^HELD ' 10000 || not_ok "another session holds worker 5"
check "premise: marks/2 holds 1,000,000 bytes" test "$("$ZKCTL" "$cs" stat "$R/marks/2" | grep -oE 'length=[0-9]+')" = length=1000000

zt_claimant a "$cs" "$R" --worker-bits 3 --print-ids --every 2000 --reclaim 300
A=$T/a.out
if ! zt_wait "$A" '^STATE [0-9]+ [0-9]+ minting [0-7] ' 10000; then
	not_ok "A mints"
	zt_tail_diag "$A" 30
	exit 1
fi
w=$(zt_field "$(zt_state_line "$A" minting)" 5)
check "A takes worker 7, the only clean ID (took $w)" test "$w" = 7
check "marks/0 (not a number): logged with its path, the ID skipped" logged "$A" "$R/marks/0 is not a mark" "skipping this worker ID"
check "marks/1 (negative): logged with its path, the ID skipped" logged "$A" "$R/marks/1 is not a mark" "skipping"
check "marks/2 (1,000,000 bytes): logged with its path and length, the ID skipped" logged "$A" "$R/marks/2 is not a mark (1000000 bytes" "skipping"
check "workers/4 (persistent): logged with its path, its ID not claimed" logged "$A" "$R/workers/4 is a persistent node" "not claimed"
for kind in workers marks quarantine; do
	for name in abc -1 007 99999; do
		check "$kind/$name: logged as not a worker ID, and ignored" logged "$A" "ignoring $R/$kind/$name: not a worker ID" "(0..7)"
	done
done
n=$(grep -cE '^STATE [0-9]+ [0-9]+ (waiting|minting) [0-6] ' "$A")
check "A never holds an ID whose mark or node it could not read ($n)" test "$n" = 0

# ---- while it holds 7: its mark overwritten ----------------------------------------------------
for case in "garbage:zzz" "lowered:5" "deleted:"; do
	label=${case%%:*} data=${case#*:}
	from=$(($(zt_nlines "$A") + 1))
	if [[ $label == deleted ]]; then
		"$ZKCTL" "$cs" delete "$R/marks/7" >/dev/null
		re='was deleted by someone else: writing the mark again'
	else
		put "$R/marks/7" "$data"
		re="is not a mark|was changed by someone else"
	fi
	zt_wait "$A" "$re" 3000 "$from"
	sleep 0.3
	m=$("$ZKCTL" "$cs" get "$R/marks/7" 2>/dev/null)
	if tail -n "+$from" "$A" | grep -E "$re" | grep -qF "$R/marks/7" && [[ $m =~ ^[0-9]+$ ]] && ((m > now_ms)); then
		ok "marks/7 $label while held: logged with its path and written again ($m)"
	else
		not_ok "marks/7 $label while held: logged with its path and written again (mark now '$m')"
		zt_tail_diag "$A"
	fi
done
check "A is still minting as 7" test "$(zt_field "$(grep -E '^STATE ' "$A" | tail -n 1)" 4)" = minting

# ---- quarantine/7 appears: both claimants park -------------------------------------------------
from=$(($(zt_nlines "$A") + 1))
rec='{"node":"intruder","host":"elsewhere","pid":99,"at_ms":'$now_ms',"why":"lease node vanished"}'
zt_bg q7 "$ZKCTL" "$cs" create "$R/quarantine/7" "$rec"
zt_wait "$T/q7.out" '^DONE ' 5000 || not_ok "create quarantine/7"
sent=$(zt_field "$(zt_first "$T/q7.out" '^DONE ')" 3)
if zt_wait "$A" '^STATE [0-9]+ [0-9]+ parked -?[0-9]+ quarantined' 3000 "$from"; then
	parked=$(zt_field "$(zt_first "$A" '^STATE [0-9]+ [0-9]+ parked -?[0-9]+ quarantined' "$from")" 2)
	figure park_on_quarantine_ms $((parked - sent))
	check "quarantine/7 appears: A parks (quarantined) within 1 s ($((parked - sent)) ms)" test $((parked - sent)) -le 1000
else
	not_ok "quarantine/7 appears: A parks (quarantined)"
	zt_tail_diag "$A"
fi
refuse=$(zt_field "$(zt_first "$A" '^REFUSE [0-9]+ quarantined' "$from")" 2)
n=$(tail -n "+$from" "$A" | awk -v p="${refuse:-0}" '$1 == "ID" && substr($2, 1, length($2) - 6) + 0 > p' | wc -l)
check "no ID started after the first refusal ($n)" test "$n" = 0
check "A's log says who quarantined worker 7 and what A issued on it" \
	logged "$A" "was quarantined under $R/quarantine/7 by node intruder (host elsewhere, pid 99" "this node issued IDs "
sleep 1.5 # claim rounds: 0..2 unreadable, 3 ten years ahead, 4 persistent, 5 held, 6 and 7 quarantined
n=$(tail -n "+$from" "$A" | grep -cE '^STATE [0-9]+ [0-9]+ minting ')
check "with no clean ID left, A never mints again ($n)" test "$n" = 0
if tail -n "+$from" "$A" | grep -qE "worker 3 refused: its registry mark is [0-9]+ ms ahead"; then
	ok "marks/3 (ten years ahead): worker 3 is refused, with a log line"
else
	not_ok "marks/3 (ten years ahead): worker 3 is refused, with a log line"
	zt_tail_diag "$A"
fi
check "A is alive through all of it" proc_alive "$(<"$T/a.pid")"
check "the garbage quarantine/6 still quarantines 6 (never claimed)" \
	test "$(grep -cE '^STATE [0-9]+ [0-9]+ (waiting|minting) 6 ' "$A")" = 0

# ---- a second root: garbage in the holder's own node, and in a quarantine record ----------------
R2=/t12b
zt_claimant b "$cs" "$R2" --worker-bits 1 --print-ids --every 2000 --reclaim 300
B=$T/b.out
if zt_wait "$B" '^STATE [0-9]+ [0-9]+ minting [01] ' 10000; then
	wb=$(zt_field "$(zt_state_line "$B" minting)" 5)
	sleep 0.5
	from=$(($(zt_nlines "$B") + 1))
	put "$R2/workers/$wb" "garbage holder record"
	zt_wait "$B" '^STATE [0-9]+ [0-9]+ parked -?[0-9]+ quarantined' 3000 "$from" ||
		not_ok "garbage in its own node: B parks (canary)"
	rec=
	for _ in $(seq 30); do rec=$("$ZKCTL" "$cs" get "$R2/quarantine/$wb" 2>/dev/null) && break; sleep 0.1; done
	if [[ $rec == *'"seen":"an unreadable holder record (21 bytes)"'* && $rec == *'"first_id":'* && $rec == *'"last_id":'* ]]; then
		ok "garbage in its own node: a canary; the record names what it saw and the audit window ($rec)"
	else
		not_ok "garbage in its own node: the record names what it saw and the audit window ($rec)"
	fi
	check "garbage in its own node: the unreadable holder record is logged with its path" \
		logged "$B" "$R2/workers/$wb is not a holder record" "quarantining all the same"
	ob=$((1 - wb))
	if zt_wait "$B" "^STATE [0-9]+ [0-9]+ minting $ob " 5000 "$from"; then
		from=$(($(zt_nlines "$B") + 1))
		put "$R2/quarantine/$ob" "[1,2,3]"
		if zt_wait "$B" '^STATE [0-9]+ [0-9]+ parked -?[0-9]+ quarantined' 3000 "$from"; then
			ok "garbage quarantine record for the held ID: B parks all the same"
		else
			not_ok "garbage quarantine record for the held ID: B parks all the same"
			zt_tail_diag "$B"
		fi
		check "garbage quarantine record: logged with its path" \
			logged "$B" "$R2/quarantine/$ob is not a quarantine record" "parking all the same"
	else
		not_ok "B claims the other ID ($ob) after the canary"
		zt_tail_diag "$B"
	fi
	check "B is alive through all of it" proc_alive "$(<"$T/b.pid")"
else
	not_ok "B mints"
	zt_tail_diag "$B"
fi

for f in "$A" "$B"; do
	res=$(zt_fence_check "$f")
	read -r _ v _ _ _ n <<<"$res"
	check "${f##*/}: not one ID started at or after the fence in force ($n IDs checked)" test "$v" = 0
done
check "A's IDs are all on worker 7" test "$(zt_workers_of "$A" 3 | tr '\n' ' ')" = "7 "
check "no duplicate ID over both claimants" test -z "$(zt_dups "$A" "$B")"
zt_done
