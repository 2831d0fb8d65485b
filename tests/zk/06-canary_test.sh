#!/usr/bin/env bash
# The canary (SPEC: Lease "Canary"). Layout of 1 worker bit (IDs 0 and 1).
#  1. someone deletes the holder's worker node: it parks within 1 s (parked, quarantined), writes
#     quarantine/<id> with a record, claims the other ID; a new claimant never takes the quarantined
#     ID (parks no_free_worker);
#  2. someone replaces the holder's node by an ephemeral of another session (delete, then create):
#     it parks and quarantines too, and leaves the foreign node alone; with both IDs quarantined,
#     a fresh claimant parks even once the foreign node is gone;
#  3. the same replacement done atomically (one multi-op), on another root;
#  4. the holder's node deleted while the registry is away, its session surviving the outage (the
#     server restores sessions on restart): that is a canary too, and the ID must be quarantined.
# Figures: time from the out-of-band edit to the refusal and to the parked state.
set -u
# shellcheck source=tests/zk/lib.sh
. "$(dirname "$0")/lib.sh"
zt_init 06-canary

cs=$(zk_start "$T/zk") || { not_ok "start ZooKeeper"; exit 1; }
ok "ZooKeeper serves at $cs"

# canary_case LABEL KEY NODE ROOT WORKER EDIT_NAME EDIT...: run the edit (a zkctl command printing
# DONE, output $T/EDIT_NAME.out), then check the holder (claimant NODE, output $T/NODE.out) parks
# with "quarantined" within 1 s, mints nothing on WORKER after that, and the quarantine record.
canary_case() {
	local label=$1 key=$2 node=$3 root=$4 w=$5 edit_out=$6 out=$T/$3.out
	shift 6
	local from sent refuse parked rec n_after pline
	from=$(($(zt_nlines "$out") + 1))
	zt_bg "$edit_out" "$@"
	if ! zt_wait "$T/$edit_out.out" '^DONE ' 5000; then
		not_ok "$label: the out-of-band edit"
		sed 's/^/#   /' "$T/$edit_out.err"
		return 1
	fi
	sent=$(zt_field "$(zt_first "$T/$edit_out.out" '^DONE ')" 3)
	if ! zt_wait "$out" '^STATE [0-9]+ [0-9]+ parked -?[0-9]+ quarantined' 5000 "$from"; then
		not_ok "$label: the holder parks (quarantined)"
		zt_tail_diag "$out"
		return 1
	fi
	pline=$(zt_first "$out" '^STATE [0-9]+ [0-9]+ parked -?[0-9]+ quarantined' "$from")
	parked=$(zt_field "$pline" 2)
	refuse=$(zt_field "$(zt_first "$out" '^REFUSE [0-9]+ quarantined' "$from")" 2)
	figure "canary_${key}_parked_after_edit_ms" $((parked - sent))
	[[ -n $refuse ]] && figure "canary_${key}_refusing_after_edit_ms" $((refuse - sent))
	check "$label: the holder parks (quarantined) within 1 s ($((parked - sent)) ms)" \
		test $((parked - sent)) -le 1000
	# from the first refusal on (the watcher revokes at once), or from the parked state
	n_after=$(tail -n "+$from" "$out" | awk -v p="${refuse:-$((parked - 1))}" '$1 == "ID" && substr($2, 1, length($2) - 6) + 0 > p' |
		awk '{ print $4 }' | while read -r id; do (( ((id >> 21) & 1) == w )) && echo "$id"; done | wc -l)
	check "$label: no ID on worker $w started after the first refusal ($n_after)" test "$n_after" = 0
	figure "canary_${key}_ids_between_edit_and_refusal" \
		"$(tail -n "+$from" "$out" | awk -v s="$sent" -v p="${refuse:-$parked}" '$1 == "ID" { t = substr($2, 1, length($2) - 6) + 0; if (t >= s && t < p) n++ } END { print n + 0 }')"
	rec=
	for _ in $(seq 50); do
		rec=$("$ZKCTL" "$cs" get "$root/quarantine/$w" 2>/dev/null) && break
		sleep 0.1
	done
	if [[ $rec == *'"why":'* && $rec == *"\"node\":\"$node\""* ]]; then
		ok "$label: quarantine/$w holds a record ($rec)"
	else
		not_ok "$label: quarantine/$w holds a record naming $node and why ($rec)"
	fi
	return 0
}

# ---- 1. the holder's node deleted ------------------------------------------------------------
R=/t06
zt_claimant a "$cs" "$R" --worker-bits 1 --print-ids --every 1000
A=$T/a.out
if ! zt_wait "$A" '^STATE [0-9]+ [0-9]+ minting [01] ' 10000; then
	not_ok "A mints"
	zt_tail_diag "$A"
	exit 1
fi
w=$(zt_field "$(zt_state_line "$A" minting)" 5)
o=$((1 - w))
ok "A mints as worker $w"
sleep 0.5
canary_case "node deleted" delete a "$R" "$w" del "$ZKCTL" "$cs" delete "$R/workers/$w"

if zt_wait "$A" "^STATE [0-9]+ [0-9]+ minting $o " 10000; then
	ok "A claims the other ID ($o) after the canary, without a restart"
else
	not_ok "A claims the other ID ($o) after the canary, without a restart"
	zt_tail_diag "$A"
fi
zt_claimant b "$cs" "$R" --worker-bits 1 --print-ids --every 1000 --reclaim 300
if zt_wait "$T/b.out" '^STATE [0-9]+ [0-9]+ parked -1 no_free_worker' 5000; then
	ok "a new claimant does not take quarantined worker $w (parked, no_free_worker)"
else
	not_ok "a new claimant does not take quarantined worker $w (parked, no_free_worker)"
	zt_tail_diag "$T/b.out"
fi
# B stops here: a claimant polling for a free ID could win the moment between the two requests of
# the next replacement (the ID is free then), which is not what case 2 is about
proc_stop "$(<"$T/b.pid")"

# ---- 2. the holder's node replaced by another session's ephemeral (two requests) ---------------
sleep 0.5
canary_case "node replaced by a foreign ephemeral" replace a "$R" "$o" rep \
	"$ZKCTL" -t 4000 "$cs" replace "$R/workers/$o" foreign 0
owner=$("$ZKCTL" "$cs" stat "$R/workers/$o" | grep -oE 'owner=0x[0-9a-f]+')
held=$(zt_field "$(zt_first "$T/rep.out" '^HELD ')" 3)
check "the holder left the foreign node alone ($owner, foreign session $held)" test "$owner" = "owner=$held"
if zt_wait "$A" '^STATE [0-9]+ [0-9]+ parked -1 no_free_worker' 5000; then
	ok "with both IDs quarantined the former holder parks (no_free_worker)"
else
	not_ok "with both IDs quarantined the former holder parks (no_free_worker)"
	zt_tail_diag "$A"
fi
proc_stop "$(<"$T/rep.pid")" # the foreign node goes with its session
gone=$("$ZKCTL" "$cs" ls "$R/workers" | wc -l)
check "the foreign session's node is gone ($gone worker nodes left)" test "$gone" = 0
zt_claimant c "$cs" "$R" --worker-bits 1 --print-ids --every 1000 --reclaim 300
if zt_wait "$T/c.out" '^STATE [0-9]+ [0-9]+ parked -1 no_free_worker' 5000; then
	ok "free but quarantined IDs are not claimed by a fresh claimant (parked, no_free_worker)"
else
	not_ok "free but quarantined IDs are not claimed by a fresh claimant (parked, no_free_worker)"
	zt_tail_diag "$T/c.out"
fi
sleep 1.5 # a few more claim rounds for A and C
for x in "$T/a.out" "$T/b.out" "$T/c.out"; do
	n=$(grep -cE "^STATE [0-9]+ [0-9]+ (claiming|waiting|minting) [01] " "$x")
	[[ $x == "$A" ]] && n=$(awk -v f="$(grep -n -m1 -E '^STATE [0-9]+ [0-9]+ parked -?[0-9]+ quarantined' "$x" | cut -d: -f1)" \
		'NR > f' "$x" | grep -cE "^STATE [0-9]+ [0-9]+ (waiting|minting) $w ")
	check "${x##*/}: never holds a quarantined ID afterwards ($n)" test "$n" = 0
done
check "B and C never minted" test "$(grep -c '^ID ' "$T/b.out" "$T/c.out" | awk -F: '{ s += $2 } END { print s }')" = 0
check "the registry still lists both IDs as quarantined" \
	test "$("$ZKCTL" "$cs" ls "$R/quarantine" | sort | tr '\n' ' ')" = "0 1 "

# ---- 3. atomic replacement (one multi-op) ----------------------------------------------------
R2=/t06m
zt_claimant m "$cs" "$R2" --worker-bits 1 --print-ids --every 1000
if ! zt_wait "$T/m.out" '^STATE [0-9]+ [0-9]+ minting [01] ' 10000; then
	not_ok "M mints"
	zt_tail_diag "$T/m.out"
else
	wm=$(zt_field "$(zt_state_line "$T/m.out" minting)" 5)
	sleep 0.5
	canary_case "node replaced atomically (multi)" multi m "$R2" "$wm" mrep \
		"$ZKCTL" -t 4000 "$cs" replace "$R2/workers/$wm" foreign 0 --multi
fi

for f in a b c m; do [[ -f $T/$f.pid ]] && proc_stop "$(<"$T/$f.pid")"; done

# ---- 4. deleted while the registry was away, the session surviving the outage -------------------
# The server is killed; the data dir is brought up on another port (the claimant keeps knocking on
# the old one), the holder's node is deleted there, that server stops; after an outage longer than
# the session timeout the server returns on the old port. Servers restore sessions with fresh timers,
# so the holder gets its own session back: its node was removed by someone else while its session
# lived, which is the canary (not a lease that ran out), and the ID must be quarantined.
# A foreign session holds the other ID, so the only ID free to take is the one under suspicion.
R3=/t06o
port=$(<"$T/zk/zk.port")
zt_bg oholder "$ZKCTL" -t 4000 "$cs" create "$R3/workers/1" holder -e --hold 0
zt_wait "$T/oholder.out" '^HELD ' 10000 || not_ok "a foreign session holds worker 1 of $R3"
zt_claimant o "$cs" "$R3" --worker-bits 1 --timeout 4000 --margin 500 --print-ids --every 1000
O=$T/o.out
if ! zt_wait "$O" '^STATE [0-9]+ [0-9]+ minting [01] ' 10000; then
	not_ok "O mints"
	zt_tail_diag "$O"
else
	wo=$(zt_field "$(zt_state_line "$O" minting)" 5)
	otmo=$(grep -m1 -oE 'established, timeout [0-9]+' "$O" | grep -oE '[0-9]+$')
	sleep 0.5
	k=$(zt_mono)
	zk_kill "$T/zk"
	p2=$(zk_free_port "$port")
	if cs2=$(zk_start "$T/zk" "$p2"); then
		"$ZKCTL" "$cs2" delete "$R3/workers/$wo" >/dev/null
		check "while the holder is cut off, its node is deleted (on port $p2)" \
			test "$("$ZKCTL" "$cs2" ls "$R3/workers" | grep -cx "$wo")" = 0
		zk_stop "$T/zk"
	else
		not_ok "bring the data dir up on port $p2"
	fi
	now=$(zt_mono)
	rest=$((k + otmo + 1000 - now))
	((rest > 0)) && sleep "$((rest / 1000)).$(printf '%03d' $((rest % 1000)))"
	from=$(($(zt_nlines "$O") + 1))
	zk_start "$T/zk" "$port" >/dev/null || not_ok "restart the server on port $port"
	back=$(zt_mono)
	diag "outage of $((back - k)) ms (session timeout $otmo ms)"
	zt_wait "$O" '^STATE [0-9]+ [0-9]+ parked -?[0-9]+ quarantined' 5000 "$from"
	sleep 1.5 # a claim round or two (reclaim delay 1 s)
	check "premise: the holder kept its session through the outage (sessions established: $(grep -c 'lease: session 0x[0-9a-f]* established' "$O"))" \
		test "$(grep -c 'lease: session 0x[0-9a-f]* established' "$O")" = 1
	if zt_first "$O" '^STATE [0-9]+ [0-9]+ parked -?[0-9]+ quarantined' "$from" >/dev/null; then
		ok "node deleted during an outage the session survived: the holder parks (quarantined)"
	else
		not_ok "node deleted during an outage the session survived: the holder parks (quarantined)"
		grep -E '^(STATE|LOG [345] lease)' "$O" | tail -n 8 | sed 's/^/#   /'
	fi
	rec=$("$ZKCTL" "$cs" get "$R3/quarantine/$wo" 2>/dev/null)
	check "node deleted during an outage the session survived: quarantine/$wo holds a record ($rec)" \
		test -n "$rec"
	n=$(tail -n "+$from" "$O" | grep -cE "^STATE [0-9]+ [0-9]+ (waiting|minting) $wo ")
	check "node deleted during an outage the session survived: worker $wo is not taken up again ($n)" test "$n" = 0
	check "premise: the foreign session kept worker 1 through the outage" \
		test "$("$ZKCTL" "$cs" stat "$R3/workers/1" | grep -oE 'owner=0x[0-9a-f]+')" = \
		"owner=$(zt_field "$(zt_first "$T/oholder.out" '^HELD ')" 3)"
	proc_stop "$(<"$T/o.pid")"
fi

for f in "$T/a.out" "$T/m.out" "$T/o.out"; do
	[[ -f $f ]] || continue
	res=$(zt_fence_check "$f")
	read -r _ v _ _ _ n <<<"$res"
	check "${f##*/}: not one ID started at or after the fence in force ($n IDs checked)" test "$v" = 0
done
d=$(zt_dups "$T/a.out" "$T/b.out" "$T/c.out" "$T/m.out" "$T/o.out")
check "no duplicate ID over every claimant of this test" test -z "$d"
zt_done
