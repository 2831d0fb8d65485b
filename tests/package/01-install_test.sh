#!/usr/bin/env bash
# The Debian package on a booted Debian 12: build/deb's .deb installed into a clean bookworm
# minbase root (mmdebstrap, cached under PKG_CACHE) booted with systemd-nspawn --boot --ephemeral
# (the flags and traps of ../shared/PACKAGING-NOTES.md) in a network namespace of its own: eth0
# (10.0.0.11/24, a veth whose other end leads nowhere) and loopback. The package's dependencies
# are in the root before boot (the guest reaches no mirror); ZooKeeper runs inside the
# guest as a unit this test writes, from the host's Debian zookeeper package (its jars and JVM
# bind-mounted read-only: the root stays small and is built in about a minute).
# Checks: both units enabled and active beside Debian's haproxy.service; GET /id answers; the
# Lua modules load in lua5.3, lua5.4 and HAProxy with no path setting; `edge-snowflake check`;
# keepalived (Debian's) runs the configuration edge-snowflake-keepalived writes: the lone proxy
# takes every VIP, and stopping the service lowers its priority;
# `systemctl reload` under load loses no request; `systemctl restart` replays nothing; `systemctl
# stop` releases the lease at once (the worker node in ZooKeeper); an upgrade to a newer version
# (built here from the tree with one more changelog entry) keeps the modified conffile and the
# marks; `apt-get purge` removes every file the package put.
# Each step is timed (# figure step_<name>_s). Bounded: the whole test runs under `timeout`.
#   DEB_FILE=build/deb/edge-snowflake_V_A.deb ZKCTL=build/tests/zkctl PKG_CACHE=build/package \
#       tests/package/01-install_test.sh
# shellcheck disable=SC2015,SC2016 # ok and not_ok always succeed ("cond && ok || not_ok" is if-then-else); the guest's shell and dpkg-query expand what is single-quoted
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
if [[ -z ${PKG_TEST_BOUNDED:-} ]]; then
	# TERM at 280 s (the trap tears the guest down), KILL 15 s later
	PKG_TEST_BOUNDED=1 exec timeout -k 15 280 "$0" "$@"
fi
# shellcheck source=tests/lib/suite.sh
. "$top/tests/lib/suite.sh"
suite_name=01-install

: "${DEB_FILE:?DEB_FILE names the .deb}" "${ZKCTL:?ZKCTL names zkctl}" "${PKG_CACHE:?PKG_CACHE: where the root is cached}"
for tool in mmdebstrap systemd-nspawn nsenter pgrep dpkg-deb dpkg-buildpackage lintian java; do
	command -v "$tool" >/dev/null 2>&1 || fatal "$tool is installed (make deps)"
done
[[ -s $DEB_FILE ]] || fatal "the package exists ($DEB_FILE)"
[[ -x $ZKCTL ]] || fatal "zkctl is built ($ZKCTL)"
# lintian: no error and no warning left (each remaining one has an override with its reason in
# debian/edge-snowflake.lintian-overrides)
out=$(lintian --tag-display-limit 0 "$DEB_FILE" 2>&1 | grep -E '^[EW]: ')
check "lintian finds no error and no warning in $(basename "$DEB_FILE")${out:+ ($(tr '\n' ' ' <<<"$out"))}" test -z "$out"

work=$(mktemp -d /tmp/sf-pkg.XXXXXX) || fatal "a work directory"
machine=sfpkg-$$
netns=
nspawn_pid=
guest_pid=
v2_build_pid=

# shellcheck disable=SC2317 # the EXIT trap runs it
cleanup() {
	trap - EXIT INT TERM
	if [[ -n $nspawn_pid ]] && kill -0 "$nspawn_pid" 2>/dev/null; then
		kill -TERM "$nspawn_pid" 2>/dev/null
		for _ in $(seq 1 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$nspawn_pid" 2>/dev/null
		wait "$nspawn_pid" 2>/dev/null
	fi
	# a KILLed nspawn leaves its ephemeral copy beside the root (.#machine.root-bookworm<hex> and
	# its .lck): only those that appeared while this test ran go
	local f
	for f in "$PKG_CACHE"/.#machine.* "$PKG_CACHE"/.#.#machine.*; do
		[[ -e $f ]] || continue
		grep -qxF "$f" "$work/leftovers-before" 2>/dev/null || rm -rf "$f"
	done
	[[ -n $v2_build_pid ]] && kill -TERM -- "-$v2_build_pid" 2>/dev/null && wait "$v2_build_pid" 2>/dev/null
	[[ -n $netns ]] && ip netns del "$netns" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
test_t0=$(($(now_ms) / 1000))
step_t0=0
step_begin() { step_t0=$(now_ms); }
step_end() { local t=$(($(now_ms) - step_t0)); figure "step_$1_s" "$((t / 1000)).$(printf %03d $((t % 1000)))"; }
g() { nsenter -t "$guest_pid" -a -- "$@"; }
# gsh SCRIPT: a shell command inside the guest, with a clean environment (no host paths)
gsh() { g env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root sh -c "$1"; }
# http PATH: GET from inside the guest; prints "CODE BODY" (body without its newline)
http() { gsh "curl -s -m 2 -w ' %{http_code}' http://127.0.0.1:8080$1" 2>/dev/null; }
# wait_id SECONDS: until GET /id answers 200; prints the ID
wait_id() {
	local end=$(($(now_ms) + $1 * 1000)) r
	while (($(now_ms) < end)); do
		r=$(http /id)
		[[ $r =~ ^([0-9]+)$'\n'\ 200$ ]] && { echo "${BASH_REMATCH[1]}"; return 0; }
		sleep 0.2
	done
	return 1
}
zk() { g /mnt/pkg/zkctl -w 3000 127.0.0.1:2181 "$@"; }

# ---- the root (tests/package/root.sh: once, reused while its package list is the same; make test
# builds it in the background while the unit suites run)
step_begin
root=$("$top/tests/package/root.sh" "$PKG_CACHE" 2> >(sed 's/^/# /' >&2)) || fatal "mmdebstrap builds a bookworm root"
ok "a clean bookworm minbase root ($(du -sm "$root" | cut -f1) MB)"
step_end root

# ---- what the guest gets: v1 (the built package), v2 (the same, one version newer), tools
step_begin
mkdir -p "$work/pkg" "$work/v2"
cp "$DEB_FILE" "$work/pkg/v1.deb"
cp "$ZKCTL" "$work/pkg/zkctl"
v1=$(dpkg-deb -f "$DEB_FILE" Version)
v2=$v1+upgrade1
# the newer version: built from a copy of the tree whose debian/changelog has one more entry
# (dpkg-buildpackage, as make deb does), in the background while the guest boots
mkdir -p "$work/src-v2/edge-snowflake"
(cd "$top" && git ls-files -z --cached --others --exclude-standard |
	xargs -0 sh -c 'for f; do [ -f "$f" ] && printf "%s\0" "$f"; done' sh | tar -cf - --null -T -) |
	tar -xf - -C "$work/src-v2/edge-snowflake" || fatal "a copy of the tree for version $v2"
{
	printf 'edge-snowflake (%s) bookworm; urgency=medium\n\n  * The package test'"'"'s upgrade.\n\n -- %s  %s\n\n' \
		"$v2" "$(dpkg-parsechangelog -l "$top/debian/changelog" -S Maintainer)" "$(date -R)"
	cat "$top/debian/changelog"
} >"$work/src-v2/edge-snowflake/debian/changelog"
setsid bash -c 'cd "$1" && dpkg-buildpackage -b -uc -us --no-pre-clean -j2 >"$2" 2>&1' v2-build \
	"$work/src-v2/edge-snowflake" "$work/v2-build.log" </dev/null &
v2_build_pid=$!
LOADGEN=$(BUILD=$top/build bash -c ". '$top/tests/http/lib.sh' >/dev/null 2>&1; ht_build_loadgen" 2>/dev/null)
[[ -x $LOADGEN ]] || { LOADGEN=$top/build/tests/http-loadgen; mkdir -p "$(dirname "$LOADGEN")";
	cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -pthread "$top/tests/http/loadgen.c" -o "$LOADGEN" || fatal "loadgen builds"; }
cp "$LOADGEN" "$work/pkg/loadgen"
cat >"$work/pkg/probe.lua" <<'EOF'
-- loaded by HAProxy with no lua-prepend-path: the package's modules come from Lua's default paths
local core_sf = require "snowflake.core"
local config = require "snowflake.config"
assert(config.build({}))
assert(type(core_sf.hostname()) == "string")
EOF
printf 'global\n    lua-load /mnt/pkg/probe.lua\nfrontend probe\n    mode http\n    bind 127.0.0.1:9\n' >"$work/pkg/probe.cfg"
# ZooKeeper inside the guest from the host's Debian package: its JVM, the jars, the JVM's config
java_bin=$(readlink -f "$(command -v java)")
java_home=${java_bin%/bin/java}
java_conf=$(find "$java_home/conf/" -maxdepth 1 -type l -printf '%l\n' 2>/dev/null | sed -n 's|^\(/etc/java-[^/]*\)/.*|\1|p' | head -n 1)
zk_cp=$(bash -c ". '$top/haproxy/zookeeper.sh' && zk__classpath") || fatal "the ZooKeeper classpath"
cat >"$work/pkg/zk-test.service" <<EOF
[Unit]
Description=ZooKeeper for the package test (the host's zookeeper package, bind-mounted)
[Service]
StateDirectory=zk-test
ExecStart=$java_bin -Xms16m -Xmx64m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData -Djava.net.preferIPv4Stack=true -Dzookeeper.admin.enableServer=false -cp $zk_cp org.apache.zookeeper.server.quorum.QuorumPeerMain /mnt/pkg/zoo.cfg
EOF
printf 'tickTime=500\ndataDir=/var/lib/zk-test\nclientPort=2181\nclientPortAddress=127.0.0.1\nforceSync=no\n' >"$work/pkg/zoo.cfg"
binds=(--bind-ro="$work/pkg:/mnt/pkg" --bind-ro="$java_home" --bind-ro=/usr/share/java)
[[ -n $java_conf ]] && binds+=(--bind-ro="$java_conf")
ok "package $v1 ($v2 building), zkctl, the load client, ZooKeeper's unit"
step_end prepare

# ---- boot
step_begin
for f in "$PKG_CACHE"/.#machine.* "$PKG_CACHE"/.#.#machine.*; do [[ -e $f ]] && echo "$f"; done >"$work/leftovers-before"
# the guest's network: a namespace this test makes (nspawn's --private-network gives loopback
# only, and keepalived needs an interface with an address for its VIPs). nspawn grants
# CAP_NET_ADMIN with --private-network, not with a namespace path: keepalived adds the VIPs with it
ip netns add "$machine" || fatal "a network namespace for the guest"
netns=$machine
ip -n "$netns" link set lo up &&
	ip -n "$netns" link add eth0 type veth peer name lan0 &&
	ip -n "$netns" addr add 10.0.0.11/24 dev eth0 &&
	ip -n "$netns" link set eth0 up && ip -n "$netns" link set lan0 up || fatal "the guest's eth0 (10.0.0.11/24)"
setsid systemd-nspawn -D "$root" --boot --console=pipe --register=no --keep-unit --ephemeral \
	--network-namespace-path="/run/netns/$netns" --capability=CAP_NET_ADMIN "${binds[@]}" --machine="$machine" </dev/null >"$work/nspawn.log" 2>&1 &
nspawn_pid=$!
end=$(($(now_ms) + 20000))
while (($(now_ms) < end)) && [[ -z $guest_pid ]]; do
	kill -0 "$nspawn_pid" 2>/dev/null || break
	guest_pid=$(pgrep -P "$nspawn_pid" -x systemd | head -n 1)
	[[ -n $guest_pid ]] || sleep 0.1
done
[[ -n $guest_pid ]] || { sed 's/^/# /' "$work/nspawn.log" | tail -20; fatal "systemd-nspawn boots the root (guest PID 1)"; }
state=
end=$(($(now_ms) + 60000))
while (($(now_ms) < end)); do
	# right after boot it may fail at once (no bus yet): retried until the deadline
	state=$(g systemctl is-system-running --wait 2>/dev/null)
	[[ $state == running || $state == degraded ]] && break
	sleep 0.2
done
[[ $state == running || $state == degraded ]] || fatal "the guest's systemd is up (state: ${state:-none})"
ok "the guest boots (systemd $state, PID 1 is host PID $guest_pid)"
[[ $state == degraded ]] && diag "failed units: $(g systemctl --failed --no-legend --plain 2>/dev/null | tr '\n' ' ')"
step_end boot

step_begin
g cp /mnt/pkg/zk-test.service /run/systemd/system/zk-test.service && g systemctl daemon-reload &&
	g systemctl start zk-test.service || fatal "ZooKeeper's unit starts in the guest"
end=$(($(now_ms) + 30000))
until zk ls / >/dev/null 2>&1; do
	(($(now_ms) < end)) || { g journalctl -u zk-test --no-pager | tail -15 | sed 's/^/# /'; fatal "ZooKeeper answers in the guest"; }
	sleep 0.3
done
ok "ZooKeeper answers in the guest (127.0.0.1:2181)"
step_end zookeeper

# ---- install
step_begin
if ! g env DEBIAN_FRONTEND=noninteractive dpkg -i /mnt/pkg/v1.deb >"$work/dpkg-i.log" 2>&1; then
	sed 's/^/# /' "$work/dpkg-i.log" | tail -20
	fatal "dpkg -i installs $v1 with only the root's packages (every dependency declared)"
fi
ok "dpkg -i installs $v1"
id1=$(wait_id 30) || { g journalctl -u edge-snowflake --no-pager | tail -20 | sed 's/^/# /'; fatal "GET /id answers 200 after the install"; }
ok "GET /id answers 200 from inside the guest ($id1)"
step_end install

for u in edge-snowflake edge-snowflake-health; do
	check "$u is enabled" test "$(g systemctl is-enabled "$u" 2>&1)" = enabled
	check "$u is active" test "$(g systemctl is-active "$u" 2>&1)" = active
done
check "Debian's haproxy.service runs beside it (no fight over names, configs or sockets)" \
	test "$(g systemctl is-active haproxy 2>&1)" = active
check "the service runs as edge-snowflake" \
	test "$(g stat -c %U "/proc/$(g systemctl show -p MainPID --value edge-snowflake)")" = edge-snowflake
# the watcher reports up only after its hold-down (5 s of good answers)
end=$(($(now_ms) + 15000))
until [[ $(g cat /run/edge-snowflake-health/state 2>/dev/null) == 0 ]] || (($(now_ms) > end)); do sleep 0.3; done
check "the health watcher keeps keepalived's track file at 0 (serving) after its hold-down" \
	test "$(g cat /run/edge-snowflake-health/state 2>/dev/null)" = 0
check "lua5.4 finds the modules with no path setting (require \"snowflake\", snowflake.core)" \
	gsh 'lua5.4 -e "require \"snowflake\"; require \"snowflake.core\""'
check "lua5.3 finds them too" gsh 'lua5.3 -e "require \"snowflake\"; require \"snowflake.core\""'
out=$(gsh 'haproxy -c -f /mnt/pkg/probe.cfg' 2>&1) && ok "HAProxy's Lua finds them with no lua-prepend-path" ||
	not_ok "HAProxy's Lua finds them with no lua-prepend-path ($(tr '\n' ' ' <<<"$out" | cut -c1-300))"
check "edge-snowflake check passes the installed config" gsh 'edge-snowflake check >/dev/null'
out=$(gsh 'printf "return { http = { threads = 0 } }\n" >/tmp/bad.lua; edge-snowflake check /tmp/bad.lua' 2>&1)
rc=$?
[[ $rc == 1 && $out == *http.threads* ]] && ok "edge-snowflake check refuses a bad config, naming the key (exit 1: ${out%%$'\n'*})" ||
	not_ok "edge-snowflake check refuses a bad config, naming the key (exit $rc: $out)"

# the units as systemd reads them, inside the guest (where their binaries are): an unknown key
# passes with exit 0 unless --recursive-errors=yes, so stderr must be empty too
out=$(g systemd-analyze verify --recursive-errors=yes edge-snowflake.service edge-snowflake-health.service 2>&1)
rc=$?
[[ $rc == 0 && -z $out ]] && ok "systemd-analyze verify accepts both units" ||
	not_ok "systemd-analyze verify accepts both units (exit $rc: $(tr '\n' ' ' <<<"$out" | cut -c1-300))"

# ---- keepalived: the host's configuration from the one command, run by Debian's keepalived.service.
# p1 of a two-proxy fleet whose p2 never answers: p1 is master of its own VIP and of p2's.
step_begin
out=$(gsh 'edge-snowflake-keepalived --host p1 --iface eth0 --proxy p1=10.0.0.11 --proxy p2=10.0.0.12 \
	--vip 10.0.0.100/24 --vip 10.0.0.101/24' 2>&1)
rc=$?
kconf=/etc/keepalived/keepalived.conf
[[ $rc == 0 ]] && g grep -q 'check_health.sh http://127.0.0.1:8080/health' $kconf &&
	g grep -q 'file "/run/edge-snowflake-health/state"' $kconf &&
	ok "edge-snowflake-keepalived writes $kconf, keepalived -t accepts it (health URL from http.bind, the watcher's state file)" ||
	not_ok "edge-snowflake-keepalived writes $kconf (exit $rc: $out)"
g systemctl restart keepalived 2>&1 | sed 's/^/# /'
vips_on_eth0() { g ip -4 -o addr show dev eth0 | grep -c -E ' inet 10\.0\.0\.10[01]/'; }
end=$(($(now_ms) + 15000))
until [[ $(vips_on_eth0) == 2 ]] || (($(now_ms) > end)); do sleep 0.2; done
check "keepalived.service runs it and p1 holds both VIPs on eth0 ($(g ip -4 -o addr show dev eth0 | awk '{print $4}' | tr '\n' ' '))" \
	test "$(vips_on_eth0)" = 2
notify_lines=$(g cat /var/log/edge-snowflake/vrrp.log 2>/dev/null)
[[ $notify_lines == *"sf_vip_p1 MASTER"* && $notify_lines == *"sf_vip_p2 MASTER"* ]] &&
	ok "the notify hook logs both MASTER transitions in /var/log/edge-snowflake/vrrp.log" ||
	not_ok "the notify hook logs both MASTER transitions (vrrp.log: $(tr '\n' ';' <<<"$notify_lines"))"
# both health signals pass under the packaged units (the script as keepalived's script_user, the
# watcher's file): p1's own instance reaches its full priority
owner_prio=$(g awk '$1 == "vrrp_instance" { i = ($2 == "sf_vip_p1") } i && $1 == "priority" { print $2; exit }' $kconf)
# the effective priority of p1's instance, from keepalived's data dump (SIGUSR1: /tmp/keepalived.data)
kprio() {
	g rm -f /tmp/keepalived.data
	g systemctl kill -s USR1 --kill-whom=main keepalived
	local i
	for i in $(seq 1 25); do g test -s /tmp/keepalived.data && break; sleep 0.1; done
	g awk '/VRRP Instance = sf_vip_p1$/ { i = 1 } i && /Effective priority = / { print $NF; exit }' /tmp/keepalived.data 2>/dev/null
}
# both signals failing: the configured priority less both weights (track_script's and track_file's)
floor_prio=$((owner_prio - $(g awk '$1 == "vrrp_instance" { i = ($2 == "sf_vip_p1") } i && $2 == "weight" { w += -$3 } END { print w + 0 }' $kconf)))
end=$(($(now_ms) + 8000))
until [[ $(kprio) == "$owner_prio" ]] || (($(now_ms) > end)); do sleep 0.3; done
prio=$(kprio)
check "both health signals pass: p1's instance runs at its full priority ($prio, configured $owner_prio)" test "$prio" = "$owner_prio"
[[ $prio == "$owner_prio" ]] || g sh -c 'head -c 3000 /tmp/keepalived.data' | sed 's/^/# keepalived.data: /'
step_end keepalived

# a bad config: a reload is refused (the service goes on), a start is refused naming the key
g cp /etc/edge-snowflake/config.lua /tmp/config.lua.good
g sed -i 's|^    -- threads = 2,.*|    threads = 0,|' /etc/edge-snowflake/config.lua
master=$(g systemctl show -p MainPID --value edge-snowflake)
g systemctl reload edge-snowflake >/dev/null 2>&1
rc=$?
[[ $rc != 0 && $(g systemctl is-active edge-snowflake) == active && $(g systemctl show -p MainPID --value edge-snowflake) == "$master" ]] &&
	[[ $(http /id) == *' 200' ]] && ok "a reload with a bad config fails (exit $rc) and the service serves on with the config it has" ||
	not_ok "a reload with a bad config fails (exit $rc) and the service serves on"
g systemctl restart edge-snowflake >/dev/null 2>&1
rc=$?
why=$(g journalctl -u edge-snowflake --no-pager -n 20 -o cat | grep -m 1 'http.threads')
[[ $rc != 0 && $(g systemctl is-active edge-snowflake) != active && -n $why ]] &&
	ok "a start with a bad config is refused (exit $rc), the journal naming the key: $why" ||
	not_ok "a start with a bad config is refused, naming the key (exit $rc, journal: ${why:-nothing about http.threads})"
g cp /tmp/config.lua.good /etc/edge-snowflake/config.lua
g systemctl reset-failed edge-snowflake >/dev/null 2>&1
g systemctl start edge-snowflake
wait_id 30 >/dev/null && ok "the good config back: the service starts again" || not_ok "the good config back: the service starts again"

# ---- reload under load: every answer 200, IDs from the old and the new worker, no duplicate
step_begin
master=$(g systemctl show -p MainPID --value edge-snowflake)
g mkdir -p /tmp/load
g sh -c '/mnt/pkg/loadgen -p 8080 -c 4 -R 1500 -d 7 -t 30 -m id -r -o /tmp/load >/tmp/load.out 2>&1' &
load_pid=$!
sleep 2
g systemctl reload edge-snowflake 2>&1 | sed 's/^/# /'
r1=${PIPESTATUS[0]}
sleep 2.5
g systemctl reload edge-snowflake 2>&1 | sed 's/^/# /'
r2=${PIPESTATUS[0]}
wait "$load_pid"
sum=$(g grep '^SUMMARY' /tmp/load.out)
diag "$sum"
get() { sed -n "s/.* $1=\([0-9]*\) .*/\1/p" <<<"$sum"; }
check "both reloads succeed (systemctl reload: $r1, $r2)" test "$r1$r2" = 00
check "the master survived both reloads (pid $master)" test "$(g systemctl show -p MainPID --value edge-snowflake)" = "$master"
[[ -n $sum ]] && (($(get non200) == 0 && $(get conn_errors) == 0 && $(get bad) == 0)) &&
	ok "no request lost during two reloads ($(get ok) of $(get requests) answered 200, $(get retried) retried on a closed keep-alive)" ||
	not_ok "no request lost during two reloads (${sum:-no summary})"
nworkers=$(sed -n 's/.* workers=\([^ ]*\) .*/\1/p' <<<"$sum" | tr ',' '\n' | grep -c .)
check "IDs came from the old and the new workers ($nworkers worker IDs)" test "$nworkers" -ge 2
dups=$(g sh -c 'cat /tmp/load/*.ids | sort | uniq -d | head -3')
check "no duplicate among the IDs of the reloads" test -z "$dups"
max_before=$(g sh -c 'cat /tmp/load/*.ids' | sort -n | tail -n 1)
step_end reload

# ---- restart: the first ID after is above every ID before (nothing replayed)
step_begin
last=$(wait_id 10) && [[ $last -gt ${max_before:-0} ]] && max_before=$last
g systemctl restart edge-snowflake || not_ok "systemctl restart edge-snowflake"
id_after=$(wait_id 30)
[[ -n $id_after && $id_after -gt $max_before ]] && ok "restart replays nothing (first ID after $id_after > last before $max_before)" ||
	not_ok "restart replays nothing (first ID after '${id_after:-none}', last before $max_before)"
check "the health watcher restarted with it" test "$(g systemctl is-active edge-snowflake-health 2>&1)" = active
step_end restart

# ---- stop: the worker node is gone at once (not a session timeout later)
step_begin
worker=$(gsh 'curl -s -m 2 -D - -o /dev/null http://127.0.0.1:8080/id' | tr -d '\r' | sed -n 's/^X-Snowflake-Worker: //Ip')
nodes=$(zk ls /snowflake/default/workers 2>/dev/null | tr '\n' ' ')
[[ -n $worker && " $nodes " == *" $worker "* ]] && ok "its worker node is in ZooKeeper (worker $worker; nodes: $nodes)" ||
	not_ok "its worker node is in ZooKeeper (worker '${worker}'; nodes: $nodes)"
# the watcher through its hold-down after the restart: the file says up (0) before the stop
end=$(($(now_ms) + 15000))
until [[ $(g cat /run/edge-snowflake-health/state 2>/dev/null) == 0 ]] || (($(now_ms) > end)); do sleep 0.2; done
check "before the stop the health watcher reports up (0)" test "$(g cat /run/edge-snowflake-health/state 2>/dev/null)" = 0
t_stop=$(now_ms)
g systemctl stop edge-snowflake
t_stopped=$(now_ms)
nodes=$(zk ls /snowflake/default/workers 2>/dev/null | tr '\n' ' ')
[[ -n $worker && " $nodes " != *" $worker "* ]] && ok "systemctl stop released the lease: node $worker gone when stop returned (nodes left: ${nodes:-none})" ||
	not_ok "systemctl stop released the lease: node $worker gone when stop returned (nodes: $nodes)"
figure stop_returned_ms $((t_stopped - t_stop))
# (the watcher writes its file and logs a line on SIGTERM before it exits: allow it a moment)
end=$(($(now_ms) + 3000))
until [[ $(g systemctl is-active edge-snowflake-health 2>&1) == inactive ]] || (($(now_ms) > end)); do sleep 0.1; done
hstate=$(g systemctl is-active edge-snowflake-health 2>&1)
check "the health watcher stopped with it (PartOf): $hstate" test "$hstate" = inactive
[[ $hstate == inactive ]] || g systemctl status --no-pager -n 10 edge-snowflake-health 2>&1 | sed 's/^/# /'
check "... leaving keepalived's track file at 1 (down): nothing vouches for a stopped node" \
	test "$(g cat /run/edge-snowflake-health/state 2>/dev/null)" = 1
# keepalived drops p1's own instance to its floor: both signals failing (the file at once, the
# script within a second), so any healthy peer outranks it and takes the VIP
end=$(($(now_ms) + 5000))
until [[ $(kprio) == "$floor_prio" ]] || (($(now_ms) > end)); do sleep 0.3; done
prio=$(kprio)
check "keepalived drops p1's priority to its floor once the service stops ($prio, floor $floor_prio = $owner_prio - both weights)" \
	test "$prio" = "$floor_prio"
step_end stop

# ---- upgrade: a modified conffile is kept, and so are the marks
step_begin
g systemctl start edge-snowflake
wait_id 30 >/dev/null || not_ok "the service starts again before the upgrade"
g sed -i 's|^    -- rate_per_10s = 100000,.*|    rate_per_10s = 90000, -- changed by the package test|' /etc/edge-snowflake/config.lua
check "the conffile is modified (limits.rate_per_10s = 90000)" g grep -q '^    rate_per_10s = 90000,' /etc/edge-snowflake/config.lua
marks_before=$(g sh -c 'cd /var/lib/edge-snowflake && for f in *; do [ -f "$f" ] && printf "%s " "$f"; done')
check "there are marks in /var/lib/edge-snowflake ($marks_before)" test -n "$marks_before"
last=$(wait_id 10)
wait "$v2_build_pid"
rc=$?
v2_build_pid=
arch=$(dpkg-deb -f "$DEB_FILE" Architecture)
if [[ $rc == 0 ]] && mv "$work/src-v2/edge-snowflake_${v2}_$arch.deb" "$work/pkg/v2.deb"; then
	ok "version $v2 built from the tree with one more changelog entry"
else
	tail -20 "$work/v2-build.log" | sed 's/^/# /'
	not_ok "version $v2 built from the tree with one more changelog entry (exit $rc)"
fi
if ! g env DEBIAN_FRONTEND=noninteractive dpkg -i /mnt/pkg/v2.deb >"$work/dpkg-u.log" 2>&1; then
	sed 's/^/# /' "$work/dpkg-u.log" | tail -20
	not_ok "dpkg -i upgrades $v1 to $v2"
else
	ok "dpkg -i upgrades $v1 to $v2 (no conffile prompt)"
fi
check "the installed version is $v2" test "$(g dpkg-query -W -f='${Version}' edge-snowflake)" = "$v2"
check "the modified conffile is kept" g grep -q '^    rate_per_10s = 90000,' /etc/edge-snowflake/config.lua
marks_after=$(g sh -c 'cd /var/lib/edge-snowflake && for f in *; do [ -f "$f" ] && printf "%s " "$f"; done')
missing=
for m in $marks_before; do [[ " $marks_after " == *" $m "* ]] || missing+="$m "; done
check "the marks are kept ($marks_after)" test -z "$missing"
id_up=$(wait_id 30)
[[ -n $id_up && -n $last && $id_up -gt $last ]] && ok "the upgraded service answers, above every earlier ID ($id_up > $last)" ||
	not_ok "the upgraded service answers, above every earlier ID ('${id_up:-none}' vs '$last')"
check "the upgraded service reads the kept config (snowflake_rate limit 90000 in derived.cfg)" \
	g grep -q 'setenv SF_RATE 90000' /run/edge-snowflake/derived.cfg
for u in edge-snowflake edge-snowflake-health; do
	check "$u is active after the upgrade" test "$(g systemctl is-active "$u" 2>&1)" = active
done
step_end upgrade

# ---- purge: every file the package put is gone, and what it made at run time. keepalived first,
# as an operator taking a host out of the fleet would: its VIPs go with it
step_begin
g systemctl stop keepalived
check "keepalived stopped gives up both VIPs" test "$(vips_on_eth0)" = 0
g dpkg-query -L edge-snowflake >"$work/files" 2>/dev/null
if ! g env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q edge-snowflake >"$work/purge.log" 2>&1; then
	sed 's/^/# /' "$work/purge.log" | tail -20
	not_ok "apt-get purge edge-snowflake"
else
	ok "apt-get purge edge-snowflake"
fi
left=
while read -r f; do
	[[ -z $f || $f == /. ]] && continue
	# directories other packages share (/usr/share/lua/5.3, ...) stay when something else is in them
	if g test -d "$f"; then continue; fi
	g test -e "$f" && left+="$f "
done <"$work/files"
check "no file of the package is left${left:+ ($left)}" test -z "$left"
for d in /etc/edge-snowflake /var/lib/edge-snowflake /var/log/edge-snowflake /usr/share/edge-snowflake /run/edge-snowflake; do
	check "$d is gone" bash -c "! nsenter -t $guest_pid -a -- test -e $d"
done
check "no unit is left (systemctl cat edge-snowflake fails)" bash -c "! nsenter -t $guest_pid -a -- systemctl cat edge-snowflake >/dev/null 2>&1"
check "nothing answers on 8080 any more" bash -c "! nsenter -t $guest_pid -a -- curl -s -m 1 -o /dev/null http://127.0.0.1:8080/id"
step_end purge

# ---- halt
step_begin
kill -TERM "$nspawn_pid"
# usually 2-5 s; seen up to 33 s on a busy host: what it waits for is printed after 10 s
for i in $(seq 1 600); do
	kill -0 "$nspawn_pid" 2>/dev/null || break
	((i == 100)) && diag "still halting after 10 s: $(g systemctl list-jobs --no-legend --plain 2>/dev/null | head -5 | tr '\n' ';') console: $(tail -n 4 "$work/nspawn.log" | tr -d '\r' | tr '\n' ';')"
	sleep 0.1
done
if kill -0 "$nspawn_pid" 2>/dev/null; then
	not_ok "the guest halts on SIGTERM within 60 s (the EXIT trap kills it)"
else
	ok "the guest halts on SIGTERM"
	wait "$nspawn_pid" 2>/dev/null
	nspawn_pid=
fi
step_end halt
figure step_total_s "$(( $(now_ms) / 1000 - test_t0 ))"
suite_done
