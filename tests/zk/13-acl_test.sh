#!/usr/bin/env bash
# Access control (SPEC: Lease "Access control"): with lease.auth_file the claimant authenticates
# with the digest scheme and every node it creates is writable by that identity only (readable by
# anyone). A second client without the credential, and one with other credentials, attack the
# registry: delete or replace the worker node, write a mark, create or clear a quarantine record,
# claim an ID. Every attack is refused and the holder goes on minting. Then: wrong credentials
# (a clear refusal naming the problem), a credential file others may read (refused at start), a
# root anyone may write (a warning; refused with lease.require_acl), and the quarantine cleared
# with the credential through library mode.
set -u
# shellcheck source=tests/zk/lib.sh
. "$(dirname "$0")/lib.sh"
zt_init 13-acl

cs=$(zk_start "$T/zk") || { not_ok "start ZooKeeper"; exit 1; }
ok "ZooKeeper serves at $cs"
R=/t13
printf 'edge:s3cret\n' >"$T/edge.auth"
printf 'intruder:guess\n' >"$T/intruder.auth"
chmod 600 "$T/edge.auth" "$T/intruder.auth"
logged() { grep -E '^LOG [0-9] ' "$1" | grep -qF -- "$2"; }

zt_claimant a "$cs" "$R" --worker-bits 1 --print-ids --every 2000 --auth-file "$T/edge.auth"
A=$T/a.out
if ! zt_wait "$A" '^STATE [0-9]+ [0-9]+ minting [01] ' 10000; then
	not_ok "A mints with lease.auth_file"
	zt_tail_diag "$A" 30
	exit 1
fi
w=$(zt_field "$(zt_state_line "$A" minting)" 5)
o=$((1 - w))
ok "A mints as worker $w with lease.auth_file"
for p in "$R" "$R/workers" "$R/marks" "$R/quarantine" "$R/workers/$w" "$R/marks/$w"; do
	acl=$("$ZKCTL" "$cs" acl "$p" | sort | tr '\n' ' ')
	if [[ $acl =~ ^digest:edge:[^\ ]+\ cdrwa\ world:anyone\ r\ $ ]]; then
		ok "$p: writable by the credential's identity only, readable by anyone ($acl)"
	else
		not_ok "$p: writable by the credential's identity only, readable by anyone ($acl)"
	fi
done
check "no warning about an open root when the lease made it" bash -c "! grep -q 'can be changed by anyone' '$A'"
sleep 0.5
from=$(($(zt_nlines "$A") + 1))
"$ZKCTL" -a edge:s3cret "$cs" create "$R/quarantine/$o" '{"node":"ops","host":"h","pid":1,"at_ms":1,"why":"drill"}' >/dev/null ||
	not_ok "the credential's identity may create a quarantine record"

# attack CLIENT_LABEL ZKCTL_ARGS...: every write an intruder would try; each must fail with ZNOAUTH
attack() {
	local who=$1 err
	shift
	local -a z=("$ZKCTL" "$@" "$cs")
	local -a attempts=(
		"delete the worker node|delete $R/workers/$w"
		"replace the worker node's data|put $R/workers/$w forged"
		"write a mark|put $R/marks/$w 1"
		"delete the mark|delete $R/marks/$w"
		"create a quarantine record|create $R/quarantine/$w x"
		"clear a quarantine record|delete $R/quarantine/$o"
		"claim the free ID|create $R/workers/$o x -e"
		"delete the registry's workers/|delete $R/workers"
	)
	local a label cmd
	for a in "${attempts[@]}"; do
		label=${a%%|*} cmd=${a#*|}
		# shellcheck disable=SC2086 # cmd is words on purpose
		if err=$("${z[@]}" $cmd 2>&1 >/dev/null); then
			not_ok "$who cannot $label (it could)"
		elif [[ $err == *"not authenticated"* ]]; then
			ok "$who cannot $label (not authenticated)"
		else
			not_ok "$who cannot $label, refused by the ACL ($err)"
		fi
	done
}
attack "a client without credentials"
attack "a client with other credentials" -a intruder:guess
check "the worker node is still A's" test "$("$ZKCTL" "$cs" ls "$R/workers" | tr '\n' ' ')" = "$w "
check "the quarantine record is still there" bash -c "'$ZKCTL' '$cs' get '$R/quarantine/$o' >/dev/null"
sleep 1
n=$(tail -n "+$from" "$A" | grep -c '^STATE ')
check "A went on minting through every attack (state changes: $n)" test "$n" = 0
check "A minted during the attacks" test "$(tail -n "+$from" "$A" | grep -c '^ID ')" -gt 0

# ---- wrong credentials -------------------------------------------------------------------------
zt_claimant b "$cs" "$R" --worker-bits 1 --print-ids --every 2000 --auth-file "$T/intruder.auth" --reclaim 300
B=$T/b.out
if zt_wait "$B" '^STATE [0-9]+ [0-9]+ parked -?[0-9]+ registry_access' 10000; then
	ok "wrong credentials: B refuses to claim (parked, registry_access)"
else
	not_ok "wrong credentials: B refuses to claim (parked, registry_access)"
	zt_tail_diag "$B"
fi
check "wrong credentials: the log names the problem" \
	logged "$B" "the credentials in lease.auth_file are not the identity the registry's ACL allows"
check "wrong credentials: B never mints" test "$(grep -c '^ID ' "$B")" = 0
proc_stop "$(<"$T/b.pid")"

# ---- a credential file others may read --------------------------------------------------------
cp "$T/edge.auth" "$T/loose.auth"
chmod 644 "$T/loose.auth"
mkdir -p "$T/state-c"
"$CLAIMANT" --hosts "$cs" --root "$R" --state "$T/state-c" --node c --auth-file "$T/loose.auth" \
	--duration 2000 >"$T/c.out" 2>"$T/c.err"
rc=$?
check "a credential file with mode 0644: the start is refused (exit $rc)" test "$rc" = 1
check "a credential file with mode 0644: the refusal says so" \
	grep -q "has mode 0644: others than its owner may read it; chmod 600 it" "$T/c.out"
printf 'no-colon\n' >"$T/bad.auth"
chmod 600 "$T/bad.auth"
"$CLAIMANT" --hosts "$cs" --root "$R" --state "$T/state-c" --node c --auth-file "$T/bad.auth" \
	--duration 2000 >"$T/c2.out" 2>&1
check "a credential file without user:password: refused, saying what it must hold" \
	grep -q "must hold one line user:password" "$T/c2.out"

# ---- a root anyone may write -----------------------------------------------------------------
"$ZKCTL" "$cs" put /t13open/workers "" >/dev/null
zt_claimant d "$cs" /t13open --worker-bits 1 --print-ids --every 2000
if zt_wait "$T/d.out" '^STATE [0-9]+ [0-9]+ minting ' 10000 &&
	logged "$T/d.out" "lease: /t13open can be changed by anyone (ACL world:anyone cdrwa)"; then
	ok "an open root: the claimant mints and warns at start"
else
	not_ok "an open root: the claimant mints and warns at start"
	zt_tail_diag "$T/d.out"
fi
proc_stop "$(<"$T/d.pid")"
zt_claimant e "$cs" /t13open --worker-bits 1 --print-ids --every 2000 --require-acl --reclaim 300
if zt_wait "$T/e.out" '^STATE [0-9]+ [0-9]+ parked -?[0-9]+ registry_access' 10000 &&
	logged "$T/e.out" "lease.require_acl is set: not claiming"; then
	ok "an open root under lease.require_acl: refused (parked, registry_access), saying why"
else
	not_ok "an open root under lease.require_acl: refused (parked, registry_access), saying why"
	zt_tail_diag "$T/e.out"
fi
check "under lease.require_acl it never mints" test "$(grep -c '^ID ' "$T/e.out")" = 0
proc_stop "$(<"$T/e.pid")"

# ---- quarantine clear with the credential (library mode) --------------------------------------
for v in 5.3 5.4; do
	"$ZKCTL" -a edge:s3cret "$cs" create "$R/quarantine/$o" '{"node":"ops","host":"h","pid":1,"at_ms":1,"why":"drill"}' \
		>/dev/null 2>&1 # again, for the second Lua (the first cleared it)
	out=$(cd "$ZT_REPO" && LUA_PATH="$ZT_REPO/lua/?.lua;;" LUA_CPATH="$BUILD/lua$v/?.so;;" timeout 30 "lua$v" - \
		"$cs" "$R" "$T/state-lib" "$T/edge.auth" "$o" <<'EOF'
local snowflake = require "snowflake"
local hosts, root, dir, auth, id = arg[1], arg[2], arg[3], arg[4], tonumber(arg[5])
local node, _, detail = snowflake.start({
  lease = { zk_hosts = hosts, root = root, session_timeout_ms = 2000, margin_ms = 500, auth_file = auth },
  state = { dir = dir }, layout = { worker_bits = 1, sequence_bits = 21 },
}, { wait = false }) -- the only free ID is quarantined: it never mints, and need not
if not node then print("start failed: " .. tostring(detail)) os.exit(1) end
local list = node:quarantine_list()
for _, q in ipairs(list or {}) do print("listed " .. tostring(q.worker) .. " " .. q.record) end
local ok, code, d = node:quarantine_clear(id)
print(ok and "cleared" or ("clear failed: " .. tostring(code) .. " " .. tostring(d)))
node:stop()
EOF
	)
	if [[ $out == *"listed $o at "*"by node ops (host h, pid 1): drill; it issued no ID"* ]]; then
		ok "lua$v: quarantine list shows the record, readable"
	else
		not_ok "lua$v: quarantine list shows the record, readable ($out)"
	fi
	check "lua$v: quarantine clear works with the credential ($(tail -n 1 <<<"$out"))" \
		test "$(tail -n 1 <<<"$out")" = cleared
	check "lua$v: the record is gone" bash -c "! '$ZKCTL' '$cs' get '$R/quarantine/$o' >/dev/null 2>&1"
done

res=$(zt_fence_check "$A")
read -r _ v _ _ _ n <<<"$res"
check "A: not one ID started at or after the fence in force ($n IDs checked)" test "$v" = 0
check "A: no duplicate ID" test -z "$(zt_dups "$A")"
zt_done
