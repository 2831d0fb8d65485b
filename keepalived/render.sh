#!/bin/sh
# Renders keepalived/keepalived.conf.in for one host; prints the config on stdout.
#
#   keepalived/render.sh --host p1 --iface eth0 --src 10.213.0.11 --peer 10.213.0.12 [--peer ...] \
#       --vip 10.213.0.100/24 --health-url http://127.0.0.1:8080/health \
#       --state-file /run/edge-snowflake/health.state --notify-log /var/log/edge-snowflake/vrrp.log \
#       [--vrid 51] [--priority 150] [--template FILE]
#
# Every host of one VIP gets the same --vrid and --priority; --peer lists every other host.
# Check the result with `keepalived -t -f FILE`.
set -eu
here=$(cd "$(dirname "$0")" && pwd -P)
template=$here/keepalived.conf.in
host='' iface='' src='' vip='' url='' state='' notify='' vrid=51 prio=150 peers=''
die() { echo "render.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
	[ $# -ge 2 ] || die "$1 needs a value"
	case $1 in
	--host) host=$2 ;;
	--iface) iface=$2 ;;
	--src) src=$2 ;;
	--peer) peers="$peers        $2
" ;;
	--vip) vip=$2 ;;
	--health-url) url=$2 ;;
	--state-file) state=$2 ;;
	--notify-log) notify=$2 ;;
	--vrid) vrid=$2 ;;
	--priority) prio=$2 ;;
	--template) template=$2 ;;
	*) die "unknown option $1" ;;
	esac
	shift 2
done
for v in host iface src vip url state notify; do
	eval "[ -n \"\$$v\" ]" || die "--$v is required (see the header of $0)"
done
[ -n "$peers" ] || die "at least one --peer is required"
case $host$iface$src$vip$url$state$notify$vrid$prio in
*[!A-Za-z0-9._:/@%+=-]*) die "values may only hold letters, digits and . _ : / @ % + = -" ;;
esac
case $vrid in *[!0-9]*) die "--vrid must be 1..255" ;; esac
case $prio in *[!0-9]*) die "--priority must be 1..254" ;; esac
if [ "$vrid" -lt 1 ] || [ "$vrid" -gt 255 ]; then die "--vrid must be 1..255"; fi
if [ "$prio" -lt 51 ] || [ "$prio" -gt 254 ]; then die "--priority must be 51..254 (each failing check takes 50)"; fi
[ -r "$template" ] || die "no template $template"
# the peers block is multi-line: substitute it with awk, the rest with sed
sed -e "s|@HOST@|$host|g" -e "s|@IFACE@|$iface|g" -e "s|@SRC_IP@|$src|g" -e "s|@VIP@|$vip|g" \
	-e "s|@HEALTH_URL@|$url|g" -e "s|@STATE_FILE@|$state|g" -e "s|@NOTIFY_LOG@|$notify|g" \
	-e "s|@VRID@|$vrid|g" -e "s|@PRIORITY@|$prio|g" -e "s|@KEEPALIVED_DIR@|$here|g" "$template" |
	awk -v peers="$peers" '$0 == "@PEERS@" { printf "%s", peers; next } { print }'
