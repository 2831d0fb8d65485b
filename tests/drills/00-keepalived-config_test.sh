#!/usr/bin/env bash
# keepalived/keepalived.conf.in rendered for each drill host passes `keepalived -t` (the config
# test), carries what the drills rely on (VRRPv3 100 ms adverts, unicast peers, the /health script
# and the fast track file, the notify hook), and a broken rendering is caught by the same test.
# No namespaces, no processes: it runs in a second.
. "$(dirname "$0")/lib.sh"
dr_init keepalived-config 60

for h in p1 p2; do
	mkdir -p "$T/$h"
	ka_render "$h" || fatal "render.sh renders the config of $h"
	# keepalived -t exits 0 even for a file it skips or cannot find: the test also wants no output
	if keepalived -t -f "$T/$h/keepalived.conf" >"$T/$h/t.log" 2>&1 && [[ ! -s $T/$h/t.log ]]; then
		ok "keepalived -t accepts the config rendered for $h, without a warning"
	else
		not_ok "keepalived -t accepts the config rendered for $h"
		sed 's/^/#   /' "$T/$h/t.log"
	fi
	c=$T/$h/keepalived.conf
	other=p2; [[ $h == p2 ]] && other=p1
	check "$h: VRRP version 3 with 100 ms adverts" grep -qE '^\s*vrrp_version 3$' "$c"
	check "$h: advert_int 0.1" grep -qE '^\s*advert_int 0\.1$' "$c"
	check "$h: unicast from ${DR_IP[$h]} to its peer ${DR_IP[$other]}" \
		bash -c "grep -qE '^\s*unicast_src_ip ${DR_IP[$h]}\$' '$c' && grep -qE '^\s*${DR_IP[$other]}\$' '$c'"
	check "$h: the VIP $VIP/24 on eth0" grep -qE "^\s*$VIP/24 dev eth0\$" "$c"
	check "$h: the vrrp_script checks /health" grep -q "check_health.sh http://127.0.0.1:$PORT/health" "$c"
	check "$h: the fast track file is tracked" grep -q "file \"$T/$h/health.state\"" "$c"
	check "$h: transitions go to the notify hook" grep -q "notify.sh $T/$h/vrrp-notify.log $h" "$c"
	check "$h: no placeholder left" bash -c "! grep -q '@[A-Z_]*@' '$c'"
done

# the scripts keepalived runs are root-owned and not writable by others (enable_script_security)
for s in check_health.sh notify.sh health_watch.sh render.sh; do
	f=$DR_REPO/keepalived/$s
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
# render.sh refuses missing or hostile values
if "$DR_REPO/keepalived/render.sh" --host p1 >/dev/null 2>&1; then
	not_ok "render.sh refuses a missing option"
else
	ok "render.sh refuses a missing option"
fi
if "$DR_REPO/keepalived/render.sh" --host 'p1;x' --iface eth0 --src 1.2.3.4 --peer 1.2.3.5 --vip 1.2.3.6/24 \
	--health-url http://127.0.0.1/health --state-file /x --notify-log /y >/dev/null 2>&1; then
	not_ok "render.sh refuses a value with shell or config syntax in it"
else
	ok "render.sh refuses a value with shell or config syntax in it"
fi

# the notify hook writes one timestamped line per transition
"$DR_REPO/keepalived/notify.sh" "$T/n.log" p1 INSTANCE sf_vip MASTER 150
check "notify.sh logs '<RFC 3339 ms> <unix ms> host=p1 INSTANCE sf_vip MASTER prio=150'" \
	grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z [0-9]{13} host=p1 INSTANCE sf_vip MASTER prio=150$' "$T/n.log"
figure config_test_hosts 2
dr_done
