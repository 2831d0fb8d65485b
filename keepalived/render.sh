#!/bin/sh
# Renders keepalived/keepalived.conf.in for one host of the fleet; prints the config on stdout.
#
#   keepalived/render.sh --host p1 --iface eth0 \
#       --proxy p1=10.213.0.11 --proxy p2=10.213.0.12 --proxy p3=10.213.0.13 \
#       --vip 10.213.0.100/24 --vip 10.213.0.101/24 --vip 10.213.0.102/24 \
#       --health-url http://127.0.0.1:8080/health \
#       --state-file /run/edge-snowflake/health.state --notify-log /var/log/edge-snowflake/vrrp.log \
#       [--vrid-base 51] [--template FILE]
#
# Active-active (SPEC "Fleet topology"): N proxies, N VIPs, one VRRP instance per VIP, every proxy in
# every instance. --proxy NAME=ADDR lists the whole fleet, this host included, in one fixed order:
# give every host the same list, since that order is the ring that decides who backs up whom. The
# i-th --vip is the i-th proxy's own VIP. Instance i is named sf_vip_<NAME i> (so keepalived's log
# and the notify lines say which VIP) and has virtual_router_id BASE + i - 1; this host sends from
# its own ADDR to every other proxy's (unicast).
#
# Priorities and weights (the why is in keepalived.conf.in's header; the table for 3 proxies in
# keepalived/README.md): in the instance of the VIP owned by proxy o, the proxy at ring distance
# d = (its position - o's position) mod N has priority TOP - STEP * d (the owner TOP); a failing
# vrrp_script takes SCRIPT_WEIGHT; a failing track file (the watcher: down or in its hold-down)
# takes that proxy's priority - FLOOR - SCRIPT_WEIGHT. So with one signal failing a proxy is below
# every healthy one, and with both failing every proxy of an instance sits at FLOOR.
# Check the result with `keepalived -t -f FILE` (it must exit 0 and print nothing).
set -eu
TOP=250
SCRIPT_WEIGHT=100
FLOOR=10
# The owner with only its vrrp_script failing (TOP - SCRIPT_WEIGHT) must stay below the last healthy
# backup (TOP - STEP * (N - 1)): STEP * (N - 1) < SCRIPT_WEIGHT, so STEP = (SCRIPT_WEIGHT - 1) / (N - 1),
# as wide as that allows. Why wide: when an owner fails, every backup's master-down timer runs
# 3 adverts + (256 - priority) / 256 adverts, so two backups one point apart fire 0.4 ms apart
# (advert_int 100 ms), and on a loaded host the lower one sometimes fired first: a second, needless
# VIP move 300 ms later (seen in CI). 3 proxies get STEP 49 (19 ms apart); 50, the most, get 2.
# (FLOOR + SCRIPT_WEIGHT, a failing track file, is below every healthy backup as long as
# STEP * (N - 1) < TOP - FLOOR - SCRIPT_WEIGHT = 140; every weight is within keepalived's [-253, 253].)
MAX_PROXIES=50

here=$(cd "$(dirname "$0")" && pwd -P)
template=$here/keepalived.conf.in
host='' iface='' url='' state='' notify='' vrid_base=51
names='' addrs='' vips='' fleet='' n=0 nvip=0
die() { echo "render.sh: $*" >&2; exit 2; }
# the characters a value may hold: nothing that keepalived's parser (spaces, quotes, braces, # and !
# comments) or a shell would read as syntax
plain() { case $1 in '' | *[!A-Za-z0-9._:/@%+=-]*) return 1 ;; esac; }
# a proxy name becomes part of the instance name: letters, digits, . _ -, at most 32, not a leading -
name_ok() {
	case $1 in '' | [-.]* | *[!A-Za-z0-9._-]*) return 1 ;; esac
	[ ${#1} -le 32 ]
}
# dotted-quad IPv4, no leading zeros (some tools read 010 as octal): the fields peeled off one by
# one (no subshell: render.sh checks 2N addresses)
ipv4_ok() {
	case $1 in *[!0-9.]* | .* | *. | *..*) return 1 ;; esac
	rest=$1. k=0
	while [ -n "$rest" ]; do
		o=${rest%%.*} rest=${rest#*.} k=$((k + 1))
		case $o in [0-9] | [1-9][0-9] | 1[0-9][0-9] | 2[0-4][0-9] | 25[0-5]) ;; *) return 1 ;; esac
	done
	[ "$k" -eq 4 ]
}
# word_in WORD LIST: WORD is one of the space-separated LIST
word_in() { case " $2 " in *" $1 "*) return 0 ;; esac; return 1; }

while [ $# -gt 0 ]; do
	case $1 in
	--src | --peer | --vrid | --priority)
		die "$1 is gone: the fleet is active-active; --proxy NAME=ADDR lists every proxy (this host included), --vip one VIP per proxy, --vrid-base the first VRID (see the header of $0)" ;;
	esac
	[ $# -ge 2 ] || die "$1 needs a value"
	case $1 in
	--host) host=$2 ;;
	--iface) iface=$2 ;;
	--proxy)
		case $2 in *=*) ;; *) die "--proxy $2: expected NAME=ADDR, e.g. --proxy p1=10.213.0.11" ;; esac
		p_name=${2%%=*} p_addr=${2#*=}
		name_ok "$p_name" || die "--proxy $2: the name must be 1..32 letters, digits, . _ - (not starting with - or .)"
		ipv4_ok "$p_addr" || die "--proxy $2: '$p_addr' is not an IPv4 address (a.b.c.d, each 0..255, no leading zeros)"
		word_in "$p_name" "$names" && die "--proxy $2: the name $p_name is given twice"
		word_in "$p_addr" "$addrs" && die "--proxy $2: the address $p_addr is given twice"
		names="$names${names:+ }$p_name" addrs="$addrs${addrs:+ }$p_addr" fleet="$fleet${fleet:+ }$2"
		n=$((n + 1)) ;;
	--vip)
		v_addr=${2%/*} v_len=${2##*/}
		case $2 in */*) ;; *) die "--vip $2: expected ADDR/PREFIX, e.g. --vip 10.213.0.100/24" ;; esac
		ipv4_ok "$v_addr" || die "--vip $2: '$v_addr' is not an IPv4 address (a.b.c.d, each 0..255, no leading zeros)"
		case $v_len in [1-9] | [12][0-9] | 3[0-2]) ;; *) die "--vip $2: the prefix length must be 1..32" ;; esac
		for v in $vips; do [ "${v%/*}" = "$v_addr" ] && die "--vip $2: the address $v_addr is given twice"; done
		vips="$vips${vips:+ }$2"
		nvip=$((nvip + 1)) ;;
	--health-url) url=$2 ;;
	--state-file) state=$2 ;;
	--notify-log) notify=$2 ;;
	--vrid-base) vrid_base=$2 ;;
	--template) template=$2 ;;
	*) die "unknown option $1 (see the header of $0)" ;;
	esac
	shift 2
done

[ -n "$host" ] || die "--host is required (see the header of $0)"
[ -n "$iface" ] || die "--iface is required"
[ -n "$url" ] || die "--health-url is required"
[ -n "$state" ] || die "--state-file is required"
[ -n "$notify" ] || die "--notify-log is required"
for v in "$iface" "$url" "$state" "$notify" "$here"; do
	plain "$v" || die "'$v': values (and the path of keepalived/) may only hold letters, digits and . _ : / @ % + = -"
done
name_ok "$host" || die "--host $host: the name must be 1..32 letters, digits, . _ - (not starting with - or .)"
case $iface in *[!A-Za-z0-9._:-]*) die "--iface $iface: an interface name holds letters, digits and . _ : -" ;; esac
[ ${#iface} -le 15 ] || die "--iface $iface: an interface name has at most 15 characters"
case $url in http://?* | https://?*) ;; *) die "--health-url $url: expected http://HOST:PORT/health" ;; esac
[ "$n" -ge 2 ] || die "give the whole fleet, at least two --proxy NAME=ADDR (this host included); got $n"
[ "$n" -le "$MAX_PROXIES" ] || die "$n proxies: at most $MAX_PROXIES (the priority ladder needs STEP * (N - 1) < the script weight $SCRIPT_WEIGHT, with STEP >= 2)"
[ "$nvip" -eq "$n" ] || die "$n --proxy but $nvip --vip: give exactly one VIP per proxy, in the same order (the i-th --vip is the i-th proxy's own)"
word_in "$host" "$names" || die "--host $host is not one of the --proxy names ($names)"
for v in $vips; do
	word_in "${v%/*}" "$addrs" && die "--vip $v is also a proxy's own address"
done
case $vrid_base in '' | *[!0-9]* | 0* | ????*) die "--vrid-base $vrid_base must be a number 1..$((256 - n)) (VRIDs base .. base + N - 1 must fit in 1..255)" ;; esac
[ "$vrid_base" -le $((256 - n)) ] || die "--vrid-base $vrid_base: with $n VIPs the VRIDs run to $((vrid_base + n - 1)); the base must be 1..$((256 - n))"
[ -r "$template" ] || die "no template $template"

# this host's position in the fleet (1-based)
self=0 i=0
for p in $names; do
	i=$((i + 1))
	[ "$p" = "$host" ] && self=$i
done

# Substitutes the @NAME@ placeholders line by line, in one pass (a value is never read again, so
# no value can inject a placeholder); repeats the block between @BEGIN_INSTANCE@ and @END_INSTANCE@
# once per VIP, in fleet order. An unknown placeholder or a missing block is an error; the output
# is printed only when complete.
out=$(awk -v host="$host" -v iface="$iface" -v url="$url" -v state="$state" -v notify="$notify" \
	-v dir="$here" -v names="$names" -v addrs="$addrs" -v vips="$vips" -v fleet="$fleet" -v self="$self" \
	-v vrid_base="$vrid_base" -v top="$TOP" -v script_w="$SCRIPT_WEIGHT" -v floor="$FLOOR" '
function fill(line,   out, key) {
	out = ""
	while (match(line, /@[A-Z_]+@/)) {
		key = substr(line, RSTART + 1, RLENGTH - 2)
		if (!(key in v)) {
			if (!err) err = sprintf("the template has an unknown placeholder @%s@ (line %d)", key, NR)
			return ""
		}
		out = out substr(line, 1, RSTART - 1) v[key]
		line = substr(line, RSTART + RLENGTH)
	}
	return out line
}
function emit(s) { text = text s "\n" }
BEGIN {
	n = split(names, name, " "); split(addrs, addr, " "); split(vips, vip, " ")
	v["HOST"] = host; v["IFACE"] = iface; v["HEALTH_URL"] = url; v["STATE_FILE"] = state
	v["NOTIFY_LOG"] = notify; v["KEEPALIVED_DIR"] = dir; v["SRC_IP"] = addr[self]; v["FLEET"] = fleet
	v["N"] = n; v["TOP"] = top; v["FLOOR"] = floor; v["SCRIPT_WEIGHT"] = script_w
	step = (n > 1) ? int((script_w - 1) / (n - 1)) : 0; v["STEP"] = step
	# the shared track_file default: the largest drop (the owner'"'"'s); every instance sets its own
	v["FILE_WEIGHT_MAX"] = top - floor - script_w
	peers = ""
	for (i = 1; i <= n; i++) if (i != self) peers = peers (peers == "" ? "" : "\n") "        " addr[i]
	v["PEERS"] = peers
}
$0 == "@BEGIN_INSTANCE@" { if (inblock) err = "nested @BEGIN_INSTANCE@"; inblock = 1; nb = 0; blocks++; next }
$0 == "@END_INSTANCE@" {
	if (!inblock) { err = "@END_INSTANCE@ without @BEGIN_INSTANCE@"; next }
	inblock = 0
	for (o = 1; o <= n; o++) {
		d = (self - o + n) % n
		v["OWNER"] = name[o]; v["VIP"] = vip[o]; v["VRID"] = vrid_base + o - 1
		v["PRIORITY"] = top - step * d; v["FILE_WEIGHT"] = top - step * d - floor - script_w
		v["ROLE"] = (d == 0) ? "this host owns it" : sprintf("this host is backup %d of %d (ring distance %d from %s)", d, n - 1, d, name[o])
		for (k = 1; k <= nb; k++) emit(fill(block[k]))
	}
	next
}
inblock { block[++nb] = $0; next }
{ emit(fill($0)) }
END {
	if (inblock) err = "@BEGIN_INSTANCE@ without @END_INSTANCE@"
	if (!blocks && !err) err = "the template has no @BEGIN_INSTANCE@ ... @END_INSTANCE@ block"
	if (err) { print err; exit 3 }
	printf "%s", text
}' "$template") || die "${out:-awk failed} ($template)"
printf '%s\n' "$out"
