#!/usr/bin/env bash
# `make run AUTH=...` (haproxy/run.sh ZK_AUTH): the service with ZooKeeper ACLs, end to end.
# run.sh writes the credential file (mode 0600) and a config with lease.auth_file and
# lease.require_acl; the service mints, the nodes it created are writable by that identity only,
# a client without the credential cannot remove the worker node, and `snowflake quarantine clear`
# on the CLI clears a record with the service's credential. (Without ZK_AUTH, every other HTTP
# test runs the same run.sh.)
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ht_init 08-auth

ZKCTL=${ZKCTL:-$HT_REPO/build/tests/zkctl}
[[ -x $ZKCTL ]] || { not_ok "zkctl at $ZKCTL (make build/tests/zkctl)"; exit 1; }
url=$(svc_start "$T/svc" ZK_AUTH=edge:pw-for-the-test) || { not_ok "the service starts with ZK_AUTH"; exit 1; }
ok "the service starts with ZK_AUTH (make run AUTH=...)"
zk=$(<"$T/svc/zk/zk.port") && zk=127.0.0.1:$zk
mode=$(stat -c %a "$T/svc/zk.auth")
check "run.sh wrote the credential file with mode 600 ($mode)" test "$mode" = 600
check "the config it wrote names it and requires ACLs" \
	grep -q "auth_file = \"$T/svc/zk.auth\", require_acl = true" "$T/svc/snowflake.conf.lua"
code=$(curl -s -o "$T/id" -w '%{http_code}' "$url/id")
check "GET /id answers 200 ($code)" test "$code" = 200
R=/snowflake/local-auth
w=$("$ZKCTL" "$zk" ls "$R/workers" | head -n 1)
acl=$("$ZKCTL" "$zk" acl "$R/workers/$w" | sort | tr '\n' ' ')
if [[ $acl =~ ^digest:edge:[^\ ]+\ cdrwa\ world:anyone\ r\ $ ]]; then
	ok "its worker node is writable by edge only ($acl)"
else
	not_ok "its worker node is writable by edge only ($acl)"
fi
err=$("$ZKCTL" "$zk" delete "$R/workers/$w" 2>&1 >/dev/null)
check "a client without the credential cannot delete it ($err)" grep -q "not authenticated" <<<"$err"
"$ZKCTL" -a edge:pw-for-the-test "$zk" create "$R/quarantine/1023" \
	'{"node":"ops","host":"h","pid":1,"at_ms":1733140800000,"why":"drill"}' >/dev/null ||
	not_ok "write a quarantine record with the credential"
out=$(svc_cli "$T/svc" "snowflake quarantine list")
check "the CLI lists it, readable ($out)" grep -q "^1023 at 2024-12-02T12:00:00.000Z by node ops (host h, pid 1): drill; it issued no ID" <<<"$out"
out=$(svc_cli "$T/svc" "snowflake quarantine clear 1023")
check "the CLI clears it with the service's credential ($out)" grep -q "ok: cleared 1023" <<<"$out"
check "the record is gone" bash -c "! '$ZKCTL' '$zk' get '$R/quarantine/1023' >/dev/null 2>&1"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/id")
check "GET /id still answers 200 ($code)" test "$code" = 200
ht_done
