#!/usr/bin/env bash
# shellcheck disable=SC2317 # the outage hooks are called indirectly, by zt_outage
# Quorum loss on a three-node ensemble (SPEC: Safety 3, Lease "Registry outage").
# A claimant connected to all three nodes mints about once a millisecond; two nodes are killed (the
# leader and one follower, so the survivor stops serving at once): it keeps minting up to the fence
# and not one ID past it, then parks "fenced"; the two nodes come back: once the quorum is regained it
# resumes within 2 s, same process (measured from the moment a quorum serves again: the survivor and
# the first node restarted). The same again with the two followers paused (SIGSTOP) instead,
# the leader left running (it keeps serving until it sees the quorum gone).
# Figures: minting kept during the outage vs the session timeout, resume after quorum regained.
set -u
# shellcheck source=tests/zk/lib.sh
. "$(dirname "$0")/lib.sh"
zt_init 04-quorum

cs=$(zk_ensemble_start "$T/ens" 3) || { not_ok "start a three-node ensemble"; exit 1; }
ok "three-node ensemble serves at $cs"
R=/t04
zt_minting_claimant q "$cs" "$R"
cpid=$CPID O=$OUT tmo=$TMO

victims=()
# kill the leader and one follower: the survivor is a follower that loses its leader at once
down_kill() {
	local l i
	l=$(zk_ensemble_leader "$T/ens") || l=1
	victims=("$l")
	for i in 1 2 3; do [[ $i != "$l" ]] && { victims+=("$i"); break; }; done
	diag "killing nodes ${victims[*]} (leader $l)"
	zk_node_kill "$T/ens" "${victims[0]}"
	zk_node_kill "$T/ens" "${victims[1]}"
}
# wait_serving TIMEOUT_MS NODE...: poll the nodes quickly until one of them reports "leader" (a
# leader serves only with a quorum behind it); ZT_BACK_AT is then the mono ms at which that round of
# polls began (the quorum was regained between the previous round's start and this one's end)
wait_serving() {
	local tmo=$1 end n r round
	shift
	end=$(($(zt_mono) + tmo))
	while (($(zt_mono) < end)); do
		round=$(zt_mono)
		for n in "$@"; do
			r=$(zk_4lw "$(zk_node_port "$T/ens" "$n")" srvr 1) || continue
			if [[ $r == *"Mode: leader"* ]]; then
				ZT_BACK_AT=$round
				return 0
			fi
		done
		sleep 0.01
	done
	return 1
}
# the survivor and the first node restarted make a quorum again; the second one joins after
up_nodes() {
	local survivor i
	for i in 1 2 3; do [[ $i != "${victims[0]}" && $i != "${victims[1]}" ]] && survivor=$i; done
	zk_node_start "$T/ens" "${victims[0]}" || return 1
	wait_serving 30000 "$survivor" "${victims[0]}" || return 1
	zk_node_start "$T/ens" "${victims[1]}" --wait-serving
}
zt_outage "quorum lost (leader and a follower killed)" Q "$O" "$cpid" "$tmo" down_kill up_nodes 1000

sleep 1.5 # minting again, with acknowledged keep-alives, before the next outage

# pause both followers; the leader keeps answering until it notices (syncLimit), and only then
# does the outage begin for the claimant. The fence bound is taken from the moment the leader
# stops serving, which the test observes by polling it.
leader=
down_pause() {
	local i end m
	leader=$(zk_ensemble_leader "$T/ens") || leader=1
	victims=()
	for i in 1 2 3; do [[ $i != "$leader" ]] && victims+=("$i"); done
	diag "pausing followers ${victims[*]} (leader $leader)"
	for i in "${victims[@]}"; do zk_node_pause "$T/ens" "$i"; done
	# wait until the leader gives up serving (bounded)
	end=$(($(zt_mono) + 15000))
	while (($(zt_mono) < end)); do
		m=$(zk_node_mode "$T/ens" "$leader")
		[[ $m != leader ]] && break
		sleep 0.02
	done
	diag "leader $leader now: $(zk_node_mode "$T/ens" "$leader")"
}
up_resume() {
	local i
	for i in "${victims[@]}"; do zk_node_resume "$T/ens" "$i"; done
	wait_serving 30000 1 2 3
}
zt_outage "quorum lost (followers hung)" P "$O" "$cpid" "$tmo" down_pause up_resume 1000
sleep 0.5

zt_safety_after "$cpid" "$O"
zt_done
