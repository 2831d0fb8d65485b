#!/usr/bin/env bash
# The registry comes back with a smaller session timeout (SPEC: Safety 3 "plus the negotiated
# session timeout"; HAPROXY-NOTES: zoo_recv_timeout "may change on reconnect").
# Two claimants ask for 4000 ms (negotiated 4000): X with margin 500, Y with margin 2500. The server
# is killed and restarted on the same port and data dir with maxSessionTimeout=2000; both get their
# sessions back, now with a 2000 ms timeout. Checks: every fence published after the change lies
# within the new timeout of its keep-alive (the lease follows the new timeout), and both mint again
# under it (for Y the margin must be brought within the new timeout, as it is for a new session, or
# it never mints again). 2000 ms, not less: a freshly started JVM on a busy CI box can miss a shorter
# session's pings and expire it, which is not what this test is about.
set -u
# shellcheck source=tests/zk/lib.sh
. "$(dirname "$0")/lib.sh"
zt_init 07-renegotiate

cs=$(zk_start "$T/zk") || { not_ok "start ZooKeeper"; exit 1; }
port=$(<"$T/zk/zk.port")
ok "ZooKeeper serves at $cs"
R=/t07
zt_claimant x "$cs" "$R" --timeout 4000 --margin 500 --print-ids --every 1000
zt_claimant y "$cs" "$R" --timeout 4000 --margin 2500 --print-ids --every 1000
for c in x y; do
	if zt_wait "$T/$c.out" '^STATE [0-9]+ [0-9]+ minting ' 10000; then
		ok "$c mints (negotiated $(grep -m1 -oE 'established, timeout [0-9]+' "$T/$c.out" | grep -oE '[0-9]+$') ms)"
	else
		not_ok "$c mints"
		zt_tail_diag "$T/$c.out"
	fi
done
sleep 1
k=$(zt_mono)
zk_kill "$T/zk"
NEW_TMO=2000
if ! ZK_MIN_SESSION_MS=400 ZK_MAX_SESSION_MS=$NEW_TMO zk_start "$T/zk" "$port" >/dev/null; then
	not_ok "restart the server with maxSessionTimeout=$NEW_TMO"
	exit 1
fi
back=$(zt_mono)
diag "server down at $k, back at $back with maxSessionTimeout=$NEW_TMO"
# minting under the new timeout: IDs started a whole new timeout or more after the server's return
# (an ID that late was minted under a fence the new timeout set); waited for up to 6 s
ids_after() { awk -v b=$((back + NEW_TMO)) '$1 == "ID" && substr($2, 1, length($2) - 6) + 0 >= b' "$1" | wc -l; }
# shellcheck disable=SC2317 # called by wait_until
both_mint() { (($(ids_after "$T/x.out") > 0 && $(ids_after "$T/y.out") > 0)); }
wait_until $((NEW_TMO + 6000)) both_mint
sleep 0.5 # a few more IDs under the new fences for the checks below
for c in x y; do
	out=$T/$c.out
	n=$(ids_after "$out")
	figure "renegotiate_${c}_ids_after_new_timeout" "$n"
	if ((n > 0)); then
		ok "$c mints again under the new timeout ($n IDs from ${NEW_TMO} ms after the server's return)"
	else
		not_ok "$c mints again under the new timeout (no ID from ${NEW_TMO} ms after the server's return on)"
		grep -E '^(STATE|LOG [345] lease)' "$out" | tail -n 4 | sed 's/^/#   /'
	fi
done
for c in x y; do
	out=$T/$c.out
	check "$c keeps its session (sessions established: $(grep -c 'lease: session 0x[0-9a-f]* established' "$out"))" \
		test "$(grep -c 'lease: session 0x[0-9a-f]* established' "$out")" = 1
	check "$c notices the new negotiated timeout" grep -q "negotiated timeout changed from 4000 to $NEW_TMO" "$out"
	# fences published after the server's return: deadline - publication time <= the new timeout
	worst=$(awk -v b="$back" '$1 == "FENCE" && $2 >= b && $3 > 0 { d = $3 - $2; if (d > w) w = d } END { print w + 0 }' "$out")
	figure "renegotiate_${c}_max_fence_ahead_ms" "$worst"
	check "$c: no fence after the change reaches beyond the new $NEW_TMO ms timeout (max $worst ms ahead)" \
		test "$worst" -le "$NEW_TMO"
	res=$(zt_fence_check "$out")
	read -r _ v _ _ _ n <<<"$res"
	check "$c: not one ID started at or after the fence in force ($n IDs checked)" test "$v" = 0 -a "$n" -gt 0
done
x_ahead=$(awk -v b="$back" '$1 == "FENCE" && $2 >= b && $3 > 0 { d = $3 - $2; if (d > w) w = d } END { print w + 0 }' "$T/x.out")
check "x: fences after the change keep the 500 ms margin (max $x_ahead ms ahead <= $((NEW_TMO - 500)))" \
	test "$x_ahead" -le $((NEW_TMO - 500))
d=$(zt_dups "$T/x.out" "$T/y.out")
check "no duplicate ID" test -z "$d"
zt_done
