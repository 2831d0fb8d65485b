#!/usr/bin/env bash
# shellcheck disable=SC2317 # the outage hooks are called indirectly, by zt_outage
# Registry outage, single node (SPEC: Safety 3 "Fencing before expiry", Lease "Registry outage").
# Two outages of the one ZooKeeper server under a claimant that mints about once a millisecond:
#  A. crash (SIGKILL), then a restart on the same port and data dir;
#  B. hang (SIGSTOP) for longer than the session timeout, then SIGCONT.
# Each time: minting goes on after the outage began, up to the published fence (deadline - margin);
# not one ID is started at or after the fence in force; the fence never reaches beyond the last moment
# the server could have acknowledged plus timeout - margin; the claimant parks with "fenced"; when the
# server is back it resumes within 2 s, same process (no restart).
# Figures: minting kept during the outage (vs the session timeout), time to resume.
set -u
# shellcheck source=tests/zk/lib.sh
. "$(dirname "$0")/lib.sh"
zt_init 03-outage

cs=$(zk_start "$T/zk") || { not_ok "start ZooKeeper"; exit 1; }
port=$(<"$T/zk/zk.port")
ok "ZooKeeper serves at $cs"
R=/t03
zt_minting_claimant o "$cs" "$R"
cpid=$CPID O=$OUT tmo=$TMO

down_A() { zk_kill "$T/zk"; }
up_A() { zk_start "$T/zk" "$port" >/dev/null; }
down_B() { zk_pause "$T/zk"; }
up_B() { zk_resume "$T/zk"; }

zt_outage "server crash" A "$O" "$cpid" "$tmo" down_A up_A
sleep 1.5 # minting, and acknowledged keep-alives again, before the next outage
# hung for the fence time plus 2 s: longer than the session timeout, so the server expires the
# session when it wakes (the claimant must take a new session, perhaps a new ID)
zt_outage "server hang" B "$O" "$cpid" "$tmo" down_B up_B 2000
sleep 0.5

zt_safety_after "$cpid" "$O"
zt_done
