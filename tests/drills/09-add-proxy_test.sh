#!/usr/bin/env bash
# Drill add-proxy: the README's "Adding a proxy", under load, with no restart of the others. Two
# proxies serve their two VIPs; p3 joins: its config names p1 and p2 as peers and it starts;
# p1's and p2's configs gain p3 as a peer and their run.sh is sent SIGHUP, one after the other
# (re-derived, checked, a hitless HAProxy reload); every host's keepalived config is rendered again with p3 and its VIP
# appended, and p1's and p2's keepalived reload it (SIGHUP); p3's keepalived starts and takes
# its own VIP after its hold-down. Targets: no failed request from the callers of the two old
# VIPs through all of it, no move of the old VIPs, the same HAProxy masters on p1 and p2 (no
# restart), p3 answering on its VIP and peered both ways, then a share of the IDs for p3. Over
# everything: no duplicate, no per-worker order violation.
. "$(dirname "$0")/lib.sh"
dr_init add-proxy 120

DR_PROXIES=(p1 p2)
topo_up p1 p2 p3 c z1 z2 z3 || fatal "the namespaces and the bridge are set up"
dr_zk_up 3 || fatal "ZooKeeper (3 servers) serves on the bridge"
for h in p1 p2; do
	hap_config "$h"
	hap_start "$h" || fatal "run.sh starts on $h"
done
for h in p1 p2; do hap_wait "$h" 200 30000 || fatal "$h's /health answers 200"; done
for h in p1 p2; do ka_start "$h" || fatal "keepalived starts on $h"; done
wait_until 15000 dr_stable || fatal "p1 and p2 on their own VIPs, peered ($(vips_map))"
now
DR_UP_WALL_MS=$((NOW_WALL / 1000))
ok "two proxies up: p1 (worker $(hap_worker p1)) and p2 (worker $(hap_worker p2)) on their VIPs"
masters_before="$(hap_master p1) $(hap_master p2)"

client_start old "${DR_VIP[p1]},${DR_VIP[p2]}" 30000 -c 4 -r 300 || fatal "the callers of the two VIPs start"
old=$CLIENT_PID
sleep 3
ev add
add_mono=$EV_MONO
# 1. p3, peered with p1 and p2
DR_PROXIES=(p1 p2 p3)
hap_config p3
hap_start p3 || fatal "run.sh starts on p3"
hap_wait p3 200 30000 || fatal "p3's /health answers 200"
# 2. p1, then p2, learn of p3 without a restart: one reload at a time, each until it mints again
#    (a reload's new worker needs its own lease: its /health says "starting" meanwhile, which
#    keeps its VIP where it is, and its requests go to the peers)
for h in p1 p2; do
	hap_config "$h"
	kill -HUP "$(cat "$T/$h/run.pid")" || not_ok "SIGHUP to $h's run.sh"
	wait_until 5000 grep -q 'reloading HAProxy' "$T/$h/run.log" || not_ok "$h's run.sh reloads HAProxy"
	sleep 0.3
	hap_wait "$h" 200 10000 || not_ok "$h mints again after its reload"
done
# 3. keepalived: every host's config rendered again for three; p1 and p2 reload, p3 starts
for h in p1 p2; do
	ka_render "$h" || not_ok "the keepalived config of $h renders for three proxies"
	kill -HUP "$(cat "$T/$h/keepalived.pid")" || not_ok "SIGHUP to $h's keepalived"
done
ka_start p3 || fatal "keepalived starts on p3"
if wait_until 20000 dr_stable; then
	ok "p3 holds its own VIP and every proxy sees both peers up ($(vips_map))"
	figure join_ms "$(ms_since "$add_mono")"
else
	not_ok "p3 holds its own VIP and every proxy sees both peers up ($(vips_map))"
fi
check "p1's and p2's HAProxy masters are the ones from before (reloaded, not restarted)" \
	test "$(hap_master p1) $(hap_master p2)" = "$masters_before"
moves=$(($(vip_moves p1 "$DR_UP_WALL_MS") + $(vip_moves p2 "$DR_UP_WALL_MS")))
dr_zero old_vip_moves "$moves" "the VIPs of p1 and p2 never moved"
ev load3
client_start all "$DR_VIPS" 6000 -c 6 -r 300 || fatal "the callers of the three VIPs start"
client_wait "$CLIENT_PID" 12000 || not_ok "the three-VIP client ends"
kill -TERM "$old" 2>/dev/null
client_wait "$old" 5000 || not_ok "the two-VIP client ends"

analyze --nodes p1,p2,p3 "$T/all.log" || fatal "the three-VIP client's log is readable"
figure share_min_pct_after "${A[share_min_pct]}"
if awk -v s="${A[share_min_pct]}" 'BEGIN { exit !(s >= 20) }'; then
	ok "every proxy mints after the addition: the smallest share is ${A[share_min_pct]}% (nodes ${A[nodes]})"
else
	not_ok "every proxy mints after the addition: the smallest share is ${A[share_min_pct]}% (nodes ${A[nodes]})"
fi
analyze --nodes p1,p2,p3 "$T/old.log" || fatal "the two-VIP client's log is readable"
diag "the two-VIP callers: errors by kind: ${A[errors_by]}; IDs by node: ${A[nodes]}"
figure errors_old_vips "${A[errors]}"
dr_zero failed_requests "${A[failed_requests]}" "the callers of the old VIPs got every ID through the addition"
analyze --nodes p1,p2,p3 "$T/old.log" "$T/all.log" || fatal "the client logs are readable"
figure ids_received "${A[ids]}"
check_safety "add-proxy"
dr_done
