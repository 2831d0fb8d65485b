#!/usr/bin/env bash
# keepalived/ for the active-active fleet (SPEC "Fleet topology"), without namespaces:
# - keepalived/render.sh for three proxies p1 p2 p3 (10.213.0.11/.12/.13, VIPs 10.213.0.100/.101/.102):
#   each host's config passes `keepalived -t` without a word, has one instance per VIP (right
#   VRIDs, unicast from the host to the two others, each VIP once), and carries what the drills
#   rely on (VRRPv3 100 ms adverts, the /health script, the fast track file, the notify hook);
# - the priority property, computed from the rendered numbers of all three configs: for each VIP
#   the healthy owner is above every healthy backup, the owner with either signal failing is
#   below every healthy backup, the healthy backups are distinct and in ring order, and with
#   every host failing they tie (the holder keeps the VIP); the same for 50 proxies, the most the
#   ladder allows, and 51 is refused;
# - render.sh refuses bad input (counts, unknown host, bad addresses, VRID range, old options);
# - keepalived/health_watch.sh's hold-down against a stub /health on 127.0.0.1 (socat) that the
#   test flips between 200 and 503: down at once, up only after the hold-down, the flap hold-down
#   after two downs within the window, a down during a hold-down cancels it, and downs older than
#   the window do not count;
# - notify.sh's line.
# render.sh is called directly (not lib.sh's ka_render); lib.sh gives dr_init, ok/check and $T.
# Every process it starts is bounded (timeout) and stopped by PID. About 15 s on an idle 2-core
# host, a minute at a load of 7.
. "$(dirname "$0")/lib.sh"
dr_init keepalived-config 150

KA=$DR_REPO/keepalived
URL=http://127.0.0.1:8080/health
FLEET=(p1 p2 p3)
declare -A IP=([p1]=10.213.0.11 [p2]=10.213.0.12 [p3]=10.213.0.13)
declare -A OWN_VIP=([p1]=10.213.0.100 [p2]=10.213.0.101 [p3]=10.213.0.102)
declare -A VRID=([p1]=51 [p2]=52 [p3]=53)
declare -A POS=([p1]=0 [p2]=1 [p3]=2)

# render HOST OUT [EXTRA...]: render.sh for HOST of the three-proxy fleet
render() {
	local h=$1 out=$2 p a=()
	shift 2
	for p in "${FLEET[@]}"; do a+=(--proxy "$p=${IP[$p]}"); done
	for p in "${FLEET[@]}"; do a+=(--vip "${OWN_VIP[$p]}/24"); done
	"$KA/render.sh" --host "$h" --iface eth0 "${a[@]}" --health-url "$URL" \
		--state-file "$T/$h/health.state" --notify-log "$T/$h/vrrp-notify.log" "$@" >"$out"
}

# ka_table DIR/HOST/keepalived.conf...: one line per vrrp_instance of each config, as keepalived
# will read it (HOST: the config's directory name):
#   NAME HOST VRID PRIORITY SRC PEERS VIPS SCRIPT_WEIGHT FILE_WEIGHT
# (PEERS, VIPS comma-separated, a VIP as ADDR@DEV; a weight the instance does not set is its
# shared block's; "none" when the instance does not track that signal)
ka_table() {
	awk '
	FNR == 1 { host = FILENAME; sub(/\/[^\/]*$/, "", host); sub(/.*\//, "", host); blk = ""; dsw = dfw = "none" }
	/^[ \t]*#/ { next }
	/^vrrp_script sf_health \{/ { blk = "script"; next }
	/^track_file sf_health_fast \{/ { blk = "file"; next }
	/^vrrp_instance [^ ]+ \{/ { blk = "inst"; name = $2; vrid = prio = src = peers = vips = ""; sw = fw = "none"; sub_ = ""; next }
	blk == "script" && $1 == "weight" { dsw = $2 }
	blk == "file" && $1 == "weight" { dfw = $2 }
	blk == "inst" && sub_ == "" && $1 == "virtual_router_id" { vrid = $2 }
	blk == "inst" && sub_ == "" && $1 == "priority" { prio = $2 }
	blk == "inst" && sub_ == "" && $1 == "unicast_src_ip" { src = $2 }
	blk == "inst" && sub_ == "" && $2 == "{" { sub_ = $1; next }
	sub_ != "" && $1 == "}" { sub_ = ""; next }
	sub_ == "unicast_peer" { peers = peers (peers == "" ? "" : ",") $1; next }
	sub_ == "virtual_ipaddress" { vips = vips (vips == "" ? "" : ",") $1 "@" $3; next }
	sub_ == "track_script" && $1 == "sf_health" { sw = ($2 == "weight") ? $3 : "default" }
	sub_ == "track_file" && $1 == "sf_health_fast" { fw = ($2 == "weight") ? $3 : "default" }
	blk != "" && sub_ == "" && $1 == "}" {
		if (blk == "inst") {
			if (sw == "default") sw = dsw
			if (fw == "default") fw = dfw
			print name, host, vrid, prio, src, peers, vips, sw, fw
		}
		blk = ""
	}' "$@"
}

# priorities FLEET_NAMES VERBOSE < TABLE: the priority property of every VIP, from the rendered
# numbers of every host (keepalived clamps an effective priority to 1..254). Prints "ok ..." /
# "not ok ..." lines; with VERBOSE 0 only one ok line for the lot (and every failure).
priorities() {
	awk -v names="$1" -v verbose="$2" '
	function eff(p) { return p < 1 ? 1 : p > 254 ? 254 : p }
	function say(good, what) {
		if (!good) { printf "not ok %s\n", what; fails++ }
		else if (verbose) printf "ok %s\n", what
		checks++
	}
	{ P[$1, $2] = $4; S[$1, $2] = $8; F[$1, $2] = $9 }
	END {
		n = split(names, name, " ")
		for (o = 1; o <= n; o++) {
			inst = "sf_vip_" name[o]; own = name[o]; miss = ""
			for (i = 1; i <= n; i++) if (!((inst, name[i]) in P) || S[inst, name[i]] !~ /^-[0-9]+$/ || F[inst, name[i]] !~ /^-[0-9]+$/) miss = miss " " name[i]
			if (miss != "") { say(0, inst ": every host has it and tracks both signals with a weight (not on" miss ")"); continue }
			# the hosts in ring order from the owner: by[0] = owner, by[d] = ring distance d
			for (d = 0; d < n; d++) by[d] = name[(o - 1 + d) % n + 1]
			po = P[inst, own]; hb = ""; lo = 255; hi = 0; ring = 1; ranges = 1; listing = ""
			for (d = 1; d < n; d++) {
				p = P[inst, by[d]]
				if (p > hi) hi = p
				if (p < lo) lo = p
				if (d > 1 && p >= P[inst, by[d - 1]]) ring = 0
				listing = listing (d > 1 ? " > " : "") by[d] " " p
			}
			for (i = 1; i <= n; i++) {
				h = name[i]
				if (P[inst, h] < 1 || P[inst, h] > 254 || S[inst, h] < -253 || F[inst, h] < -254) ranges = 0
			}
			say(ranges, inst ": priorities in 1..254, script weights in -253..-1, track file weights in -254..-1")
			say(po > hi, inst ": the healthy owner " own " (" po ") is above every healthy backup (highest " hi ")")
			os = eff(po + S[inst, own]); of = eff(po + F[inst, own])
			say(os < lo && of < lo, inst ": the owner with its vrrp_script failing (" os ") or its track file failing (" of ") is below every healthy backup (lowest " lo ")")
			say(ring, inst ": the healthy backups are distinct and in ring order (" listing ")")
			# any host with one signal failing is below every other healthy host (a failing backup
			# never keeps a VIP from a healthy one)
			worst = ""
			for (i = 1; i <= n; i++) for (j = 1; j <= n; j++) if (i != j) {
				a = name[i]; b = name[j]
				if (eff(P[inst, a] + S[inst, a]) >= P[inst, b] || eff(P[inst, a] + F[inst, a]) >= P[inst, b]) worst = worst " " a "/" b
			}
			say(worst == "", inst ": every host with one signal failing is below every other healthy host" (worst == "" ? "" : " (not:" worst ")"))
			# every host failing both (a quorum loss), or every host in its hold-down: a tie, so the
			# current holder keeps the VIP; unclamped, so the tie is exact
			tie = 1; hold = 1; raw_ok = 1
			for (i = 1; i <= n; i++) {
				h = name[i]; all = P[inst, h] + S[inst, h] + F[inst, h]
				if (all < 1) raw_ok = 0
				if (i > 1 && all != first) tie = 0
				if (i > 1 && P[inst, h] + F[inst, h] != firsth) hold = 0
				if (i == 1) { first = all; firsth = P[inst, h] + F[inst, h] }
			}
			say(tie && raw_ok, inst ": with every host failing both signals they all sit at " first ", above the floor of 1: the holder keeps the VIP")
			say(hold, inst ": with every host in its hold-down (track file failing) they all sit at " firsth ": the holder keeps the VIP")
		}
		if (!verbose && !fails) printf "ok the priority property holds for all %d VIPs of %d proxies (%d checks)\n", n, n, checks
		exit fails > 0
	}'
}
# report: ok/not_ok for each "ok ..." / "not ok ..." line on stdin (so the suite counts them)
report() {
	local l
	while IFS= read -r l; do
		case $l in "ok "*) ok "${l#ok }" ;; "not ok "*) not_ok "${l#not ok }" ;; *) diag "$l" ;; esac
	done
}

# ---------------------------------------------------------------- the three-proxy fleet

: >"$T/table"
for h in "${FLEET[@]}"; do
	mkdir -p "$T/$h"
	c=$T/$h/keepalived.conf
	render "$h" "$c" 2>"$T/$h/render.err" || fatal "render.sh renders the config of $h ($(head -n 1 "$T/$h/render.err"))"
	# keepalived -t exits 0 even for a file it skips or cannot find: the test also wants no output
	if keepalived -t -f "$c" >"$T/$h/t.log" 2>&1 && [[ ! -s $T/$h/t.log ]]; then
		ok "keepalived -t accepts the config rendered for $h, without a warning"
	else
		not_ok "keepalived -t accepts the config rendered for $h"
		sed 's/^/#   /' "$T/$h/t.log"
	fi
	check "$h: VRRP version 3" grep -qE '^\s*vrrp_version 3$' "$c"
	check "$h: advert_int 0.1 in each of the 3 instances" test "$(grep -cE '^\s*advert_int 0\.1$' "$c")" = 3
	check "$h: router_id $h" grep -qE "^\s*router_id $h\$" "$c"
	check "$h: the VRRP process runs at nice -20, not realtime (a reload kills a realtime one)" \
		bash -c "grep -qE '^\s*vrrp_priority -20\$' '$c' && ! grep -qE '^\s*(vrrp_rt_priority|max_auto_priority|vrrp_rlimit_rttime)' '$c'"
	check "$h: the vrrp_script checks /health" grep -q "check_health.sh $URL 0.5\"" "$c"
	check "$h: the fast track file is $T/$h/health.state" grep -q "file \"$T/$h/health.state\"" "$c"
	check "$h: transitions go to the notify hook, in each instance" \
		test "$(grep -c "notify \"$KA/notify.sh $T/$h/vrrp-notify.log $h\"" "$c")" = 3
	check "$h: no placeholder left" bash -c "! grep -q '@[A-Z_]*@' '$c'"
	for p in "${FLEET[@]}"; do
		check "$h: the VIP ${OWN_VIP[$p]}/24 appears once" test "$(grep -cE "^\s*${OWN_VIP[$p]}/24 dev eth0\$" "$c")" = 1
	done
	ka_table "$c" >"$T/$h/table"
	cat "$T/$h/table" >>"$T/table"
	check "$h: three vrrp_instances, sf_vip_p1 sf_vip_p2 sf_vip_p3 in fleet order" \
		test "$(awk '{ printf "%s ", $1 }' "$T/$h/table")" = "sf_vip_p1 sf_vip_p2 sf_vip_p3 "
	peers=()
	for p in "${FLEET[@]}"; do [[ $p != "$h" ]] && peers+=("${IP[$p]}"); done
	while read -r name _ vrid prio src plist vlist _ _; do
		o=${name#sf_vip_}
		# the ladder: the owner 250, then 49 less per step along the ring (p1 -> p2 -> p3 -> p1): with
		# 3 proxies the widest step that keeps 2 steps below the script weight (100)
		d=$(((POS[$h] - POS[$o] + 3) % 3))
		check "$h $name: VRID ${VRID[$o]}, VIP ${OWN_VIP[$o]}/24 on eth0, from ${IP[$h]} to ${peers[*]}" \
			test "$vrid $vlist $src $plist" = "${VRID[$o]} ${OWN_VIP[$o]}/24@eth0 ${IP[$h]} ${peers[0]},${peers[1]}"
		check "$h $name: priority $((250 - 49 * d)) ($([[ $d == 0 ]] && echo "the owner" || echo "backup at ring distance $d from $o"))" \
			test "$prio" = $((250 - 49 * d))
	done <"$T/$h/table"
done
report < <(priorities "${FLEET[*]}" 1 <"$T/table")
diag "priorities (instance host vrid prio src peers vips script_weight file_weight):"
sed 's/^/#   /' "$T/table"

# the most proxies the ladder allows renders, passes keepalived -t and keeps the property; one
# more is refused
big() {
	local n=$1 h=$2 i a=()
	for ((i = 1; i <= n; i++)); do a+=(--proxy "q$i=10.213.1.$i"); done
	for ((i = 1; i <= n; i++)); do a+=(--vip "10.213.2.$i/24"); done
	"$KA/render.sh" --host "$h" --iface eth0 "${a[@]}" --health-url "$URL" --vrid-base 100 \
		--state-file "$T/big/health.state" --notify-log "$T/big/vrrp-notify.log"
}
names50=() confs50=()
for ((i = 1; i <= 50; i++)); do
	names50+=("q$i") confs50+=("$T/big/q$i/keepalived.conf")
	mkdir -p "$T/big/q$i"
	big 50 "q$i" >"$T/big/q$i/keepalived.conf" 2>"$T/big/err" ||
		{ not_ok "render.sh renders 50 proxies (q$i: $(head -n 1 "$T/big/err"))"; break; }
done
ka_table "${confs50[@]}" >"$T/big/table"
if keepalived -t -f "$T/big/q1/keepalived.conf" >"$T/big/t.log" 2>&1 && [[ ! -s $T/big/t.log ]]; then
	ok "keepalived -t accepts a 50-proxy config (50 instances, VRIDs 100..149), without a warning"
else
	not_ok "keepalived -t accepts a 50-proxy config"
	head -n 5 "$T/big/t.log" | sed 's/^/#   /'
fi
report < <(priorities "${names50[*]}" 0 <"$T/big/table")
if big 51 q1 >/dev/null 2>"$T/big/err51"; then
	not_ok "render.sh refuses 51 proxies (the ladder holds 50)"
else
	ok "render.sh refuses 51 proxies: $(head -n 1 "$T/big/err51")"
fi

# ---------------------------------------------------------------- render.sh refuses bad input

# refuses WHAT ARGS...: render.sh exits 2, prints nothing on stdout and a reason on stderr
refuses() {
	local what=$1 rc
	shift
	"$KA/render.sh" "$@" >"$T/refuse.out" 2>"$T/refuse.err"
	rc=$?
	if ((rc == 2)) && [[ ! -s $T/refuse.out && -s $T/refuse.err ]]; then
		ok "render.sh refuses $what: $(head -n 1 "$T/refuse.err")"
	else
		not_ok "render.sh refuses $what (exit $rc, stdout $(wc -c <"$T/refuse.out") bytes, stderr: $(head -n 1 "$T/refuse.err"))"
	fi
}
base=(--iface eth0 --health-url "$URL" --state-file "$T/x.state" --notify-log "$T/x.log")
three=(--proxy p1=10.213.0.11 --proxy p2=10.213.0.12 --proxy p3=10.213.0.13)
vips3=(--vip 10.213.0.100/24 --vip 10.213.0.101/24 --vip 10.213.0.102/24)
refuses "a missing option" --host p1
refuses "3 proxies with 2 VIPs" --host p1 "${base[@]}" "${three[@]}" --vip 10.213.0.100/24 --vip 10.213.0.101/24
refuses "2 proxies with 3 VIPs" --host p1 "${base[@]}" --proxy p1=10.213.0.11 --proxy p2=10.213.0.12 "${vips3[@]}"
refuses "an unknown --host" --host p4 "${base[@]}" "${three[@]}" "${vips3[@]}"
refuses "a proxy address with an octet above 255" --host p1 "${base[@]}" --proxy p1=10.213.0.11 \
	--proxy p2=10.213.0.256 --proxy p3=10.213.0.13 "${vips3[@]}"
refuses "a proxy address that is not dotted-quad" --host p1 "${base[@]}" --proxy p1=10.213.0.11 \
	--proxy p2=10.213.12 --proxy p3=10.213.0.13 "${vips3[@]}"
refuses "a VIP without a prefix length" --host p1 "${base[@]}" "${three[@]}" --vip 10.213.0.100 \
	--vip 10.213.0.101/24 --vip 10.213.0.102/24
refuses "a VIP with a prefix length of 33" --host p1 "${base[@]}" "${three[@]}" --vip 10.213.0.100/33 \
	--vip 10.213.0.101/24 --vip 10.213.0.102/24
refuses "a proxy given twice" --host p1 "${base[@]}" "${three[@]}" --proxy p1=10.213.0.14 "${vips3[@]}" --vip 10.213.0.103/24
refuses "a VIP that is a proxy's address" --host p1 "${base[@]}" "${three[@]}" --vip 10.213.0.12/24 \
	--vip 10.213.0.101/24 --vip 10.213.0.102/24
refuses "a single proxy (no peer to fail over to)" --host p1 "${base[@]}" --proxy p1=10.213.0.11 --vip 10.213.0.100/24
refuses "VRIDs past 255 (--vrid-base 254 with 3 VIPs)" --host p1 "${base[@]}" "${three[@]}" "${vips3[@]}" --vrid-base 254
refuses "--vrid-base 0" --host p1 "${base[@]}" "${three[@]}" "${vips3[@]}" --vrid-base 0
refuses "a value with shell or config syntax in it" --host 'p1;x' "${base[@]}" "${three[@]}" "${vips3[@]}"
refuses "a proxy name with shell or config syntax in it" --host p1 "${base[@]}" --proxy p1=10.213.0.11 \
	--proxy 'p2}=10.213.0.12' --proxy p3=10.213.0.13 "${vips3[@]}"
refuses "a state file path with a space" --host p1 --iface eth0 --health-url "$URL" --state-file "$T/a b" \
	--notify-log "$T/x.log" "${three[@]}" "${vips3[@]}"
refuses "the single-VIP options (--src, --peer)" --host p1 "${base[@]}" --src 10.213.0.11 --peer 10.213.0.12 \
	--vip 10.213.0.100/24
printf 'vrrp_instance x {\n    priority @PRIORITY@\n}\n' >"$T/noblock.in"
refuses "a template without an instance block" --host p1 "${base[@]}" "${three[@]}" "${vips3[@]}" --template "$T/noblock.in"
printf '@BEGIN_INSTANCE@\nvrrp_instance x { @NO_SUCH@ }\n@END_INSTANCE@\n' >"$T/unknown.in"
refuses "a template with an unknown placeholder" --host p1 "${base[@]}" "${three[@]}" "${vips3[@]}" --template "$T/unknown.in"

# the scripts keepalived runs are root-owned and not writable by others (enable_script_security)
for s in check_health.sh notify.sh health_watch.sh render.sh; do
	f=$KA/$s
	check "keepalived/$s is executable and writable by its owner only" \
		bash -c "[[ -x '$f' && \$(stat -c %a '$f') =~ ^[0-7][0-5][0-5]\$ ]]"
done

# the config test is not a rubber stamp: a broken rendering fails it (and a missing file, which
# keepalived -t lets pass with status 0, at least prints a complaint)
if keepalived -t -f "$T/no-such.conf" >"$T/missing.log" 2>&1 && [[ ! -s $T/missing.log ]]; then
	not_ok "keepalived -t says something about a missing config file"
else
	ok "keepalived -t says something about a missing config file ($(head -n 1 "$T/missing.log"))"
fi
sed 's/advert_int 0.1/advert_int banana/' "$T/p1/keepalived.conf" >"$T/broken.conf"
if keepalived -t -f "$T/broken.conf" >"$T/broken.log" 2>&1; then
	not_ok "keepalived -t rejects a broken config"
else
	ok "keepalived -t rejects a broken config ($(head -n 1 "$T/broken.log"))"
fi

# the notify hook writes one timestamped line per transition, naming the VIP's instance
"$KA/notify.sh" "$T/n.log" p2 INSTANCE sf_vip_p1 MASTER 249
check "notify.sh logs '<RFC 3339 ms> <unix ms> host=p2 INSTANCE sf_vip_p1 MASTER prio=249'" \
	grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z [0-9]{13} host=p2 INSTANCE sf_vip_p1 MASTER prio=249$' "$T/n.log"

# ---------------------------------------------------------------- health_watch.sh's hold-down

# The processes started below (the stub and the watchers), as PID:STARTTIME. Each also runs under
# timeout(1), so none outlives the test by long even if everything else failed; own_stop stops
# them by PID, at the end and, through the EXIT trap, on any early exit before lib.sh's own
# cleanup (which runs next, with the exit status intact).
own_pids=() OWN_PID='' own_rc=0
own_start() {
	timeout 60 "$@" </dev/null &
	OWN_PID=$!
	own_pids+=("$OWN_PID:$(proc_starttime "$OWN_PID")")
}
own_stop() {
	local p
	for p in "${own_pids[@]}"; do
		[[ $(proc_starttime "${p%%:*}") == "${p#*:}" ]] && proc_stop "${p%%:*}" 2000
	done
	own_pids=()
}
exit_cmd_of() { eval "set -- $1"; printf '%s' "${3-}"; }
lib_exit=$(exit_cmd_of "$(trap -p EXIT)")
trap 'own_rc=$?; own_stop; (exit "$own_rc"); eval "$lib_exit"' EXIT

# the stub: GET anything answers with the status in $code_file (200 or 503), reading the whole
# request head first (closing on unread data would reset the connection)
code_file=$T/hw/code
mkdir -p "$T/hw"
cat >"$T/hw/answer.sh" <<'EOF'
while IFS= read -r line; do line=${line%$'\r'}; [[ -z $line ]] && break; done
read -r code <"$1"
if [[ $code == 200 ]]; then body='{"status":"ok","worker":1}' reason=OK
elif [[ $code == starting:* ]]; then
	# a new process on its way to its first lease, for that many ms (a reload's new worker)
	body='{"error":"no_lease","detail":"test stub","status":"unavailable","starting_ms":'${code#starting:}'}'
	code=503 reason='Service Unavailable'
else body='{"error":"parked","detail":"test stub"}' reason='Service Unavailable'; fi
printf 'HTTP/1.1 %s %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s\n' \
	"$code" "$reason" $((${#body} + 1)) "$body"
EOF
# set_code CODE: what the stub answers from now on (written aside and renamed: the stub never
# reads a half-written file); FLIP_US: the time just before
FLIP_US=0
set_code() {
	FLIP_US=${EPOCHREALTIME/./}
	printf '%s\n' "$1" >"$code_file.tmp" && mv -f "$code_file.tmp" "$code_file"
}
set_code 503
port=
for ((i = 0; i < 8; i++)); do
	try=$((20000 + ($$ * 7 + i * 1009) % 40000))
	own_start socat -lf "$T/hw/stub.log" TCP-LISTEN:$try,bind=127.0.0.1,reuseaddr,fork EXEC:"bash $T/hw/answer.sh $code_file"
	stub=$OWN_PID
	if wait_until 2000 bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' --max-time 0.5 http://127.0.0.1:$try/health) == 503 ]]" &&
		proc_alive "$stub"; then
		port=$try
		break
	fi
	proc_stop "$stub" 1000 # the port was taken: the next one
done
[[ -n $port ]] || fatal "the /health stub listens on 127.0.0.1 (socat)"
stub_url=http://127.0.0.1:$port/health

# wait_state FILE VALUE TIMEOUT_MS: until FILE reads VALUE; SEEN_MS: from FLIP_US to the end of
# the first read that saw it (an upper bound of when it changed, by one poll)
SEEN_MS=
wait_state() {
	local v end now
	end=$((${EPOCHREALTIME/./} + $3 * 1000))
	while :; do
		v=
		{ read -r v <"$1"; } 2>/dev/null
		now=${EPOCHREALTIME/./}
		[[ $v == "$2" ]] && { SEEN_MS=$(((now - FLIP_US) / 1000)); return 0; }
		((now < end)) || { SEEN_MS=none; return 1; }
		sleep 0.01
	done
}
# last_line LOG KIND: the watcher's latest line whose third field is KIND (up, down, hold-down)
last_line() { awk -v k="$2" '$3 == k { l = $0 } END { print l }' "$1"; }
# expect_up WHAT LOG STATE HOLD_MS WHY: after a flip to 200, the state file stays 1 for the whole
# hold-down, then says 0 (within a generous bound: the host may be busy); the hold-down line
# gives its length and WHY
expect_up() {
	local what=$1 log=$2 st=$3 hold=$4 why=$5 l
	if wait_state "$st" 0 $((hold + 2000)); then
		if ((SEEN_MS >= hold)); then
			ok "$what: up only after the $hold ms hold-down (state 0 seen $SEEN_MS ms after the flip)"
		else
			not_ok "$what: up only after the $hold ms hold-down (state 0 seen $SEEN_MS ms after the flip)"
		fi
	else
		not_ok "$what: up within $((hold + 2000)) ms of the flip to 200 (log: $(tail -n 2 "$log" | tr '\n' ' '))"
	fi
	l=$(last_line "$log" hold-down)
	check "$what: the log says 'hold-down $hold ms started' and why ($why): $l" \
		bash -c "[[ \$1 == *' hold-down $hold ms started: code=200, '*\"\$2\"* ]]" _ "$l" "$why"
	check "$what: the log says up after the $hold ms hold-down (a drill-greppable up line)" \
		bash -c "tail -n 1 '$log' | grep -q '^[^ ]* [0-9]* up code=200 after a hold-down of $hold ms '"
}
# expect_down WHAT LOG STATE: after a flip to 503, the state file says 1 within a second (at once:
# one 100 ms check), with a down line
expect_down() {
	local what=$1 log=$2 st=$3
	if wait_state "$st" 1 1000; then
		ok "$what: down at once (state 1 seen $SEEN_MS ms after the flip to 503)"
	else
		not_ok "$what: down within 1 s of the flip to 503 (log: $(tail -n 2 "$log" | tr '\n' ' '))"
	fi
	# the line lands right after the state file: give it a moment
	wait_until 500 bash -c "tail -n 1 '$log' | awk '\$3 == \"down\" && / code=503 / { f = 1 } END { exit !f }'" ||
		not_ok "$what: the log has a down line with code=503 (last: $(tail -n 1 "$log"))"
}

# Watcher A: 300 ms / 1500 ms from the environment, the default 60 s window
hw_log=$T/hw/a.log hw_state=$T/hw/a.state
SF_WATCH_HOLD_DOWN_MS=300 SF_WATCH_FLAP_HOLD_DOWN_MS=1500 own_start "$KA/health_watch.sh" "$stub_url" "$hw_state" "$hw_log"
wait_until 2000 test -s "$hw_state" || fatal "health_watch.sh starts and writes its state file"
check "the watcher starts down (1) while /health answers 503" test "$(cat "$hw_state")" = 1
sleep 0.3
check "... and stays down while it does" test "$(cat "$hw_state")" = 1
check "its start line gives the hold-down settings" \
	grep -q '^[^ ]* [0-9]* start .*hold_down_ms=300 flap_hold_down_ms=1500 flap_window_s=60' "$hw_log"
set_code 200
expect_up "first up after start" "$hw_log" "$hw_state" 300 "first up since the watcher started"
set_code 503
expect_down "first failure" "$hw_log" "$hw_state"
check "the down line counts 1 down in the last 60 s" bash -c "last=\$(tail -n 1 '$hw_log'); [[ \$last == *'; 1 down in the last 60 s' ]]"
sleep 0.2
set_code 200
expect_up "back after one down" "$hw_log" "$hw_state" 300 "1 down in the last 60 s"
set_code 503
expect_down "second failure within the window" "$hw_log" "$hw_state"
sleep 0.2
set_code 200
expect_up "back after two downs within 60 s (flapping)" "$hw_log" "$hw_state" 1500 "flap: 2 downs in the last 60 s"
figure flap_hold_down_seen_ms "$SEEN_MS"
# a failure during a hold-down cancels it; the next good answer starts a new, full one
set_code 503
expect_down "third failure" "$hw_log" "$hw_state"
sleep 0.2
set_code 200
wait_until 1000 bash -c "awk '\$3 == \"hold-down\"' '$hw_log' | wc -l | grep -qx 4" || not_ok "a fourth hold-down starts"
sleep 0.5
set_code 503
if wait_until 1000 bash -c "tail -n 1 '$hw_log' | grep -q 'hold-down cancelled after '"; then
	ok "a failure during the hold-down cancels it: $(tail -n 1 "$hw_log" | cut -d ' ' -f 3-)"
else
	not_ok "a failure during the hold-down cancels it (last: $(tail -n 1 "$hw_log"))"
fi
check "... and the state file stayed 1" test "$(cat "$hw_state")" = 1
sleep 0.2
set_code 200
expect_up "back after a cancelled hold-down (4 downs in the window)" "$hw_log" "$hw_state" 1500 "flap: 4 downs in the last 60 s"
check "every state change is one log line: 1 start, 5 hold-downs, 4 ups, 4 downs" \
	test "$(awk '{ n[$3]++ } END { printf "%d %d %d %d", n["start"], n["hold-down"], n["up"], n["down"] }' "$hw_log")" = "1 5 4 4"
proc_stop "$OWN_PID" 2000

# Watcher B: the same settings as options, a 1 s window: a down older than the window does not count
hw_log=$T/hw/b.log hw_state=$T/hw/b.state
set_code 200
own_start "$KA/health_watch.sh" --hold-down-ms 300 --flap-hold-down-ms 1500 --flap-window-s 1 "$stub_url" "$hw_state" "$hw_log"
expect_up "options: first up" "$hw_log" "$hw_state" 300 "first up since the watcher started"
set_code 503
expect_down "options: first failure" "$hw_log" "$hw_state"
first_down=$(awk '$3 == "down" { print $2; exit }' "$hw_log")
set_code 200
# (the 300 ms length says it is no flap; the count may be 0 on a host so slow that the first good
# answer comes more than 1 s after the down)
expect_up "options: back after one down" "$hw_log" "$hw_state" 300 " in the last 1 s"
# the second down comes more than the 1 s window after the first (the log's own times)
while ((${EPOCHREALTIME/./} / 1000 < first_down + 1300)); do sleep 0.05; done
set_code 503
expect_down "options: a failure 1.3 s after the first" "$hw_log" "$hw_state"
set_code 200
expect_up "options: two downs more than the 1 s window apart are no flap" "$hw_log" "$hw_state" 300 "1 down in the last 1 s"
proc_stop "$OWN_PID" 2000
# stopped while up: nothing vouches for the node any more
check "a watcher stopped with SIGTERM leaves the state file at 1 (down)" test "$(cat "$hw_state")" = 1
check "... and says so in its log: $(tail -n 1 "$hw_log" | cut -d ' ' -f 3-)" \
	bash -c "tail -n 1 '$hw_log' | grep -q ' stop signal=TERM state=down$'"

# Watcher C: a node that was up and answers 503 "starting_ms" (a reload's new worker) stays up for
# the start grace (800 ms here), then goes down like any refusing node; the VRRP check script
# applies the same grace
hw_log=$T/hw/c.log hw_state=$T/hw/c.state
set_code 200
SF_WATCH_START_GRACE_MS=800 own_start "$KA/health_watch.sh" --hold-down-ms 300 "$stub_url" "$hw_state" "$hw_log"
expect_up "start grace: first up" "$hw_log" "$hw_state" 300 "first up since the watcher started"
set_code starting:100
sleep 0.5
check "a reloading node (503, starting_ms 100 < 800) stays up" test "$(cat "$hw_state")" = 0
check "... with one 'starting' log line" test "$(awk '$3 == "starting"' "$hw_log" | wc -l)" = 1
set_code starting:900
expect_down "past the start grace (starting_ms 900 >= 800)" "$hw_log" "$hw_state"
proc_stop "$OWN_PID" 2000
set_code starting:100
check "check_health.sh passes a node starting for 100 ms (grace 800)" "$KA/check_health.sh" "$stub_url" 0.5 800
set_code starting:900
check "check_health.sh fails a node starting for 900 ms (grace 800)" bash -c "! '$KA/check_health.sh' '$stub_url' 0.5 800"
set_code 503
check "check_health.sh fails a plain 503" bash -c "! '$KA/check_health.sh' '$stub_url' 0.5"
set_code 200
check "check_health.sh passes a 200" "$KA/check_health.sh" "$stub_url" 0.5

# bad settings are refused at once, with the name of the setting
for bad in "SF_WATCH_HOLD_DOWN_MS=5s" "SF_WATCH_FLAP_WINDOW_S=-1" "SF_WATCH_INTERVAL_MS=0.1"; do
	if env "$bad" timeout 5 "$KA/health_watch.sh" "$stub_url" "$T/hw/bad.state" 2>"$T/hw/bad.err"; then
		not_ok "health_watch.sh refuses $bad"
	else
		check "health_watch.sh refuses $bad: $(head -n 1 "$T/hw/bad.err")" grep -q "${bad%%=*}" "$T/hw/bad.err"
	fi
done
if timeout 5 "$KA/health_watch.sh" --hold-down-ms 3000 --flap-hold-down-ms 1000 "$stub_url" "$T/hw/bad.state" 2>"$T/hw/bad.err"; then
	not_ok "health_watch.sh refuses a flap hold-down shorter than the normal one"
else
	ok "health_watch.sh refuses a flap hold-down shorter than the normal one: $(head -n 1 "$T/hw/bad.err")"
fi
own_stop
figure config_test_hosts 3
dr_done
