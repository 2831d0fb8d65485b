#!/usr/bin/env bash
# Claiming worker IDs (SPEC: Lease, "Claim"; Safety 5).
#  - 50 concurrent claimants (separate processes, separate sessions) on one root get 50 distinct
#    worker IDs; the registry shows each one's node; a clean stop releases every node;
#  - with 2 worker bits (4 IDs) the 5th claimant parks with no_free_worker and never mints;
#  - the real "1,025th claimant with 10-bit workers": one foreign session holds all 1,024 worker nodes,
#    a claimant parks with no_free_worker, and claims as soon as the nodes go (no restart).
# Figures: time from START to the first minting STATE (median and max of the 50).
set -u
# shellcheck source=tests/zk/lib.sh
. "$(dirname "$0")/lib.sh"
zt_init 01-claim

cs=$(zk_start "$T/zk") || { not_ok "start ZooKeeper"; exit 1; }
ok "ZooKeeper serves at $cs"

# ---- 50 concurrent claimants, default layout (10 worker bits) --------------------------------
N=50
R=/t01/fifty
for ((i = 0; i < N; i++)); do
	zt_claimant "c$i" "$cs" "$R" --print-ids --every 20000
	eval "pid_c$i=$ZT_PID"
done
all_minting=1
for ((i = 0; i < N; i++)); do
	if ! zt_wait "$T/c$i.out" '^STATE [0-9]+ [0-9]+ minting ' 30000; then
		all_minting=0
		diag "c$i never reached minting:"
		zt_tail_diag "$T/c$i.out" 8
	fi
done
check "all $N concurrent claimants reach minting" test $all_minting = 1

workers=() firsts=()
for ((i = 0; i < N; i++)); do
	line=$(zt_state_line "$T/c$i.out" minting) || continue
	workers+=("$(zt_field "$line" 5)")
	start=$(zt_first "$T/c$i.out" '^START ')
	firsts+=($(($(zt_field "$line" 2) - $(zt_field "$start" 2))))
done
distinct=$(printf '%s\n' "${workers[@]}" | sort -un | wc -l)
check "$N concurrent claimants hold $N distinct worker IDs (got $distinct distinct of ${#workers[@]})" \
	test "$distinct" = "$N" -a "${#workers[@]}" = "$N"
in_range=1
for w in "${workers[@]}"; do ((w >= 0 && w < 1024)) || in_range=0; done
check "every claimed worker ID is within the 10-bit layout" test $in_range = 1

if ((${#firsts[@]})); then
	mapfile -t sorted < <(printf '%s\n' "${firsts[@]}" | sort -n)
	figure time_to_first_id_ms_median "${sorted[$((${#sorted[@]} / 2))]}"
	figure time_to_first_id_ms_max "${sorted[-1]}"
	figure time_to_first_id_ms_min "${sorted[0]}"
fi

# the registry agrees: one ephemeral node per claimant, naming the claimant that reports it
children=$("$ZKCTL" "$cs" ls "$R/workers" | sort -n | tr '\n' ' ')
expect=$(printf '%s\n' "${workers[@]}" | sort -n | tr '\n' ' ')
check "registry holds exactly the $N claimed worker nodes" test "$children" = "$expect"
mismatch=0
for ((i = 0; i < N; i++)); do
	line=$(zt_state_line "$T/c$i.out" minting) || continue
	w=$(zt_field "$line" 5)
	data=$("$ZKCTL" "$cs" get "$R/workers/$w" 2>/dev/null)
	pid=$(zt_field "$(zt_first "$T/c$i.out" '^START ')" 5)
	if [[ $data != *"\"node\":\"c$i\""* || $data != *"\"pid\":$pid"* ]]; then
		mismatch=$((mismatch + 1))
		((mismatch <= 3)) && diag "workers/$w holds '$data', expected node c$i pid $pid"
	fi
	owner=$("$ZKCTL" "$cs" stat "$R/workers/$w" 2>/dev/null)
	[[ $owner == owner=0x0\ * || -z $owner ]] && mismatch=$((mismatch + 1)) && diag "workers/$w not ephemeral: $owner"
done
check "each worker node is an ephemeral naming its claimant (node, pid)" test $mismatch = 0

sleep 1 # let every claimant mint a little
minted=0
for ((i = 0; i < N; i++)); do
	n=$(grep -c '^ID ' "$T/c$i.out")
	((n > 0)) && minted=$((minted + 1))
done
check "all $N claimants mint" test $minted = $N

# decoded IDs carry the claimant's own worker ID
wrong=0
for ((i = 0; i < N; i++)); do
	line=$(zt_state_line "$T/c$i.out" minting) || continue
	w=$(zt_field "$line" 5)
	got=$(zt_workers_of "$T/c$i.out" 10 | tr '\n' ' ')
	[[ $got == "$w " ]] || { wrong=$((wrong + 1)); diag "c$i holds $w, its IDs encode: $got"; }
done
check "every ID encodes its claimant's worker ID" test $wrong = 0

# clean stop releases the nodes at once (no waiting for session expiry)
for ((i = 0; i < N; i++)); do eval "kill -TERM \$pid_c$i"; done
for ((i = 0; i < N; i++)); do eval "proc_stop \$pid_c$i 10000"; done
exited=0
for ((i = 0; i < N; i++)); do grep -q '^EXIT ' "$T/c$i.out" && exited=$((exited + 1)); done
check "all $N claimants exit cleanly on SIGTERM" test $exited = $N
left=$("$ZKCTL" "$cs" ls "$R/workers" | wc -l)
check "a clean stop deletes every worker node ($left left)" test "$left" = 0

d=$(zt_dups "$T"/c*.out)
total=$(zt_ids "$T"/c*.out | wc -l)
check "no duplicate among the $total IDs of the $N claimants" test -z "$d"
figure ids_checked_50_claimants "$total"

# ---- 2 worker bits: 4 IDs, the 5th claimant parks ----------------------------------------------
R=/t01/four
for i in 1 2 3 4; do zt_claimant "f$i" "$cs" "$R" --worker-bits 2 --print-ids --every 5000; done
all=1
for i in 1 2 3 4; do zt_wait "$T/f$i.out" '^STATE [0-9]+ [0-9]+ minting ' 15000 || all=0; done
check "4 claimants with 2 worker bits all mint" test $all = 1
ws=$(for i in 1 2 3 4; do zt_field "$(zt_state_line "$T/f$i.out" minting)" 5; done | sort -n | tr '\n' ' ')
check "they hold worker IDs 0 1 2 3 (got: $ws)" test "$ws" = "0 1 2 3 "
zt_claimant f5 "$cs" "$R" --worker-bits 2 --print-ids --every 5000
if zt_wait "$T/f5.out" '^STATE [0-9]+ [0-9]+ parked -1 no_free_worker' 10000; then
	ok "the 5th claimant parks with no_free_worker"
else
	not_ok "the 5th claimant parks with no_free_worker"
	zt_tail_diag "$T/f5.out"
fi
sleep 2.5 # two more claim rounds (reclaim delay 1 s)
check "the 5th claimant never mints while the 4 IDs are held" \
	test "$(grep -c -E '^ID |^STATE [0-9]+ [0-9]+ minting' "$T/f5.out")" = 0
rounds=$(grep -c 'state=claiming' "$T/f5.out")
check "the parked claimant keeps trying to claim ($rounds claim rounds)" test "$rounds" -ge 2
d=$(zt_dups "$T"/f*.out)
check "no duplicate among the IDs of the 2-bit claimants" test -z "$d"
for i in 1 2 3 4 5; do proc_stop "$(<"$T/f$i.pid")"; done

# ---- 10 worker bits, all 1,024 IDs held by one foreign session: the 1,025th parks --------------
R=/t01/full
zt_bg holder "$ZKCTL" -t 4000 "$cs" ephemerals "$R/workers" 0 1023 0
holder=$ZT_PID
if zt_wait "$T/holder.out" '^HELD [0-9]+ 0x[0-9a-f]+ 1024$' 20000; then
	ok "one foreign session holds all 1,024 worker nodes"
else
	not_ok "one foreign session holds all 1,024 worker nodes"
	sed 's/^/#   /' "$T/holder.out" "$T/holder.err"
fi
zt_claimant full "$cs" "$R" --print-ids --every 5000 --reclaim 500
if zt_wait "$T/full.out" '^STATE [0-9]+ [0-9]+ parked -1 no_free_worker' 10000; then
	ok "the 1,025th claimant (10-bit workers) parks with no_free_worker"
else
	not_ok "the 1,025th claimant (10-bit workers) parks with no_free_worker"
	zt_tail_diag "$T/full.out"
fi
check "it mints nothing while every ID is held" test "$(grep -c '^ID ' "$T/full.out")" = 0
from=$(($(zt_nlines "$T/full.out") + 1))
proc_stop "$holder"
if zt_wait "$T/full.out" '^ID ' 10000 "$from"; then
	ok "once the IDs are free it claims and mints without a restart"
else
	not_ok "once the IDs are free it claims and mints without a restart"
	zt_tail_diag "$T/full.out"
fi
d=$(zt_dups "$T"/*.out)
check "no duplicate ID over every claimant of this test" test -z "$d"
zt_done
