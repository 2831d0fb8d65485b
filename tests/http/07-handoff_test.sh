#!/usr/bin/env bash
# SPEC "Fleet topology": peer handoff between two real proxies on loopback, sharing one ZooKeeper.
# A (0.0.0.0:PA, its peer b = 127.0.0.2:PB) and B (0.0.0.0:PB, its peer a = 127.0.0.1:PA). A reaches
# B from 127.0.0.1, the address B lists it under: B honours A's handoffs. B reaches A from
# 127.0.0.1 too, not the 127.0.0.2 A lists it under: A does not honour B's (a misconfigured fleet,
# on purpose). The callers talk from 127.0.0.3, an address neither trusts.
#   - A parked: GET /id (text, JSON) and /ids on A are answered by B (its worker and node headers),
#     counted on both sides; B never hands them on;
#   - /peer/id from an untrusted caller is a 404; the mark header from one changes nothing;
#   - B's rate limit counts its callers, not the handoffs A sends it;
#   - both parked: the caller gets a JSON 503 (no peer can mint), and B hands nothing on;
#   - B parked, its peer A not honouring it: A's 404 becomes a 503 handoff_failed, never a 404.
# shellcheck disable=SC2015 # ok and not_ok always succeed: "cond && ok || not_ok" is if-then-else
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ht_init 07-handoff

export ZK_TICK_MS=200
zk=$(zk_start "$T/zk") || { not_ok "ZooKeeper starts"; exit 1; }
pa=$(zk_free_port) && pb=$(zk_free_port) && [[ $pa != "$pb" ]] || { not_ok "two free ports"; exit 1; }
lease='lease = { zk_hosts = "'"$zk"'", root = "/snowflake/http-handoff", session_timeout_ms = 2000, margin_ms = 500 }'
svc_config "$T/a.conf.lua" "$zk" "$T/a/state" "$lease" "state = { dir = \"$T/a/state\" }" \
	"http = { node_name = \"a\", peers = { b = \"127.0.0.2:$pb\" } }"
svc_config "$T/b.conf.lua" "$zk" "$T/b/state" "$lease" "state = { dir = \"$T/b/state\" }" \
	"http = { node_name = \"b\", peers = { a = \"127.0.0.1:$pa\" } }" 'limits = { rate_per_10s = 5 }'
ua=$(SVC_PORT=$pa svc_start "$T/a" ZK_HOSTS="$zk" CONFIG="$T/a.conf.lua" BIND_ADDR=0.0.0.0) || { not_ok "A starts"; exit 1; }
ub=$(SVC_PORT=$pb svc_start "$T/b" ZK_HOSTS="$zk" CONFIG="$T/b.conf.lua" BIND_ADDR=0.0.0.0) || { not_ok "B starts"; exit 1; }
ok "A ($ua) and B ($ub) serve"
# get URL [CURL_ARGS...]: "<status> <node header> <body on one line>", from the untrusted caller
# (CALLER: its address, 127.0.0.3)
get() {
	local url=$1
	shift
	curl -s --interface "${CALLER:-127.0.0.3}" --noproxy '*' --max-time 3 -D "$T/resp.head" -o "$T/resp.body" "$@" "$url" >/dev/null
	printf '%s %s %s\n' "$(awk 'NR == 1 { print $2 }' "$T/resp.head")" \
		"$(awk 'tolower($1) == "x-snowflake-node:" { print $2 }' "$T/resp.head" | tr -d '\r')" \
		"$(tr '\n' ' ' <"$T/resp.body")"
}
metric() { curl -s --max-time 3 "$1/metrics" | awk -v s="$2" '$1 == s { v = $2 } END { print v + 0 }'; }
peer_state() { svc_cli "$1" snowflake status | awk -v p="peer $2:" 'index($0, p) == 1 { print $4 }'; }
handoffs() { curl -s --max-time 3 "$1/metrics" | awk '$1 ~ /^snowflake_handoffs_total\{/ { n += $2 } END { print n + 0 }'; }
# shellcheck disable=SC2317 # called through wait_until
peer_is() { [[ $(peer_state "$1" "$2") == "$3" ]]; }
wait_until 10000 peer_is "$T/a" b UP &&
	ok "A's handoff backend sees B up" || not_ok "A's handoff backend sees B up: $(svc_cli "$T/a" snowflake status | grep '^peer')"
check "metrics: A's snowflake_peer_up{peer=\"b\"} is 1" test "$(metric "$ua" 'snowflake_peer_up{peer="b"}')" = 1

# 1. A parked: B answers A's callers
[[ $(svc_cli "$T/a" snowflake park) == ok* ]] || not_ok "snowflake park on A"
r=$(get "$ua/id")
[[ $r =~ ^200\ b\ [0-9]+\ $ ]] && ok "GET /id on parked A: 200 from B ($r)" || not_ok "GET /id on parked A: 200 from B (got: $r)"
r=$(get "$ua/id" -H 'Accept: application/json')
[[ $r =~ ^200\ b\ \{\"id\":\"[0-9]+\"\}\ $ ]] && ok "JSON /id on parked A: 200 from B ($r)" || not_ok "JSON /id on parked A: 200 from B (got: $r)"
r=$(get "$ua/ids?count=5")
[[ $r =~ ^200\ b\ ([0-9]+\ ){5}$ ]] && ok "GET /ids?count=5 on parked A: 5 IDs from B" || not_ok "GET /ids?count=5 on parked A: 5 IDs from B (got: $r)"
r=$(get "$ua/ids?count=0")
[[ $r == 400* ]] && ok "a bad count handed to B is B's 400 (as A would have said)" || not_ok "a bad count handed to B is a 400 (got: $r)"
for i in 1 2 3 4 5 6 7; do get "$ua/id" >/dev/null; done
check "A counted its handoffs (snowflake_handoffs_total{reason=\"parked\"} >= 10)" \
	test "$(metric "$ua" 'snowflake_handoffs_total{reason="parked"}')" -ge 10
check "B counted the ones it served (snowflake_handoffs_served_total >= 10)" \
	test "$(metric "$ub" snowflake_handoffs_served_total)" -ge 10
check "B's rate limit (5 in 10 s) did not count A's handoffs: A's last /id is still B's 200" \
	bash -c "[[ \$(curl -s --interface 127.0.0.3 -o /dev/null -w '%{http_code}' '$ua/id') == 200 ]]"
# 2. the mark is honoured only from a peer
r=$(get "$ub/peer/id")
[[ $r == 404* ]] && ok "/peer/id from an untrusted caller is an unknown path (404)" || not_ok "/peer/id from an untrusted caller is a 404 (got: $r)"
# B's own callers are counted: its sixth request in 10 s from one address is a 429
codes=
for i in 1 2 3 4 5 6 7; do codes+="$(curl -s --interface 127.0.0.3 -o /dev/null -w '%{http_code}' -H 'X-Snowflake-Handoff: a' "$ub/id") "; done
[[ $codes == *429* ]] && ok "B's rate limit counts its own callers, the mark notwithstanding ($codes)" ||
	not_ok "B's rate limit counts its own callers, the mark notwithstanding ($codes)"
check "B handed nothing on" test "$(handoffs "$ub")" = 0

# 3. both parked: no peer can mint; B never hands a handed-off request on
[[ $(svc_cli "$T/b" snowflake park) == ok* ]] || not_ok "snowflake park on B"
sleep 1 # A's checks see B down
r=$(get "$ua/id")
[[ $r =~ ^503\ \ \{\"error\":\"parked\" ]] && ok "both parked: A's caller gets the JSON 503 parked ($r)" || not_ok "both parked: a JSON 503 parked (got: $r)"
check "A sees B down" test "$(peer_state "$T/a" b)" = DOWN
check "B still handed nothing on" test "$(handoffs "$ub")" = 0

# 4. B parked, A unparked: B hands to A, which does not list B's source address: A's 404 must
#    become a 503 handoff_failed for B's caller
[[ $(svc_cli "$T/a" snowflake unpark) == ok* ]] || not_ok "snowflake unpark on A"
wait_until 5000 peer_is "$T/b" a UP || not_ok "B sees A up"
# (another caller: 127.0.0.3 is still over B's rate limit, a sliding 10 s window)
r=$(CALLER=127.0.0.4 get "$ub/id")
[[ $r =~ ^503\ \ \{\"error\":\"handoff_failed\" ]] && ok "a peer's 404 becomes 503 handoff_failed ($r)" || not_ok "a peer's 404 becomes 503 handoff_failed (got: $r)"
r=$(get "$ua/id")
[[ $r =~ ^200\ a\ [0-9]+ ]] && ok "A, unparked, serves itself again ($r)" || not_ok "A serves itself again (got: $r)"
ht_done
