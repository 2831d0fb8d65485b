#!/usr/bin/env bash
# The registry comes back with a smaller session timeout (SPEC: Safety 3 "plus the negotiated
# session timeout"; HAPROXY-NOTES: zoo_recv_timeout "may change on reconnect").
# Two claimants ask for 4000 ms (negotiated 4000): X with margin 500, Y with margin 1500. The server
# is killed and restarted on the same port and data dir with maxSessionTimeout=1000; both get their
# sessions back, now with a 1000 ms timeout. Checks: every fence published after the change lies
# within the new timeout of its keep-alive (the lease follows the new timeout), and both resume
# minting within 2 s of the server's return (for Y the margin must be brought within the new timeout,
# as it is for a new session, or it never mints again).
set -u
# shellcheck source=tests/zk/lib.sh
. "$(dirname "$0")/lib.sh"
zt_init 07-renegotiate

cs=$(zk_start "$T/zk") || { not_ok "start ZooKeeper"; exit 1; }
port=$(<"$T/zk/zk.port")
ok "ZooKeeper serves at $cs"
R=/t07
zt_claimant x "$cs" "$R" --timeout 4000 --margin 500 --print-ids --every 1000
zt_claimant y "$cs" "$R" --timeout 4000 --margin 1500 --print-ids --every 1000
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
if ! ZK_MIN_SESSION_MS=400 ZK_MAX_SESSION_MS=1000 zk_start "$T/zk" "$port" >/dev/null; then
	not_ok "restart the server with maxSessionTimeout=1000"
	exit 1
fi
back=$(zt_mono)
diag "server down at $k, back at $back with maxSessionTimeout=1000"
sleep 3
for c in x y; do
	out=$T/$c.out
	# minting under the new timeout: IDs started 2 s or more after the server's return
	n=$(awk -v b=$((back + 2000)) '$1 == "ID" && substr($2, 1, length($2) - 6) + 0 >= b' "$out" | wc -l)
	figure "renegotiate_${c}_ids_from_2s_after_return" "$n"
	if ((n > 0)); then
		ok "$c mints again within 2 s of the server's return"
	else
		not_ok "$c mints again within 2 s of the server's return (no ID in the second after)"
		grep -E '^(STATE|LOG [345] lease)' "$out" | tail -n 4 | sed 's/^/#   /'
	fi
done
for c in x y; do
	out=$T/$c.out
	check "$c keeps its session (sessions established: $(grep -c 'lease: session 0x[0-9a-f]* established' "$out"))" \
		test "$(grep -c 'lease: session 0x[0-9a-f]* established' "$out")" = 1
	check "$c notices the new negotiated timeout" grep -q 'negotiated timeout changed from 4000 to 1000' "$out"
	# fences published after the server's return: deadline - publication time <= the new timeout
	worst=$(awk -v b="$back" '$1 == "FENCE" && $2 >= b && $3 > 0 { d = $3 - $2; if (d > w) w = d } END { print w + 0 }' "$out")
	figure "renegotiate_${c}_max_fence_ahead_ms" "$worst"
	check "$c: no fence after the change reaches beyond the new 1000 ms timeout (max $worst ms ahead)" \
		test "$worst" -le 1000
	res=$(zt_fence_check "$out")
	read -r _ v _ _ _ n <<<"$res"
	check "$c: not one ID started at or after the fence in force ($n IDs checked)" test "$v" = 0 -a "$n" -gt 0
done
x_ahead=$(awk -v b="$back" '$1 == "FENCE" && $2 >= b && $3 > 0 { d = $3 - $2; if (d > w) w = d } END { print w + 0 }' "$T/x.out")
check "x: fences after the change keep the 500 ms margin (max $x_ahead ms ahead <= 500)" test "$x_ahead" -le 500
d=$(zt_dups "$T/x.out" "$T/y.out")
check "no duplicate ID" test -z "$d"
zt_done
