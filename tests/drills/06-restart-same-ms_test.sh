#!/usr/bin/env bash
# Drill restart-same-ms: kill -9 one proxy's HAProxy under load and start it again at once, same
# state dir. The layout has two worker bits, the three proxies hold three of the four worker IDs
# and a library-mode node (snowflake.lua, on the client host) holds the fourth, so the restarted
# proxy can only get its own old ID back (once ZooKeeper expires the killed session): the
# hardest case for "restart never replays". It must wait past the write-ahead marks (local and
# registry) before minting. Its VIP goes to the next proxy meanwhile, and comes back after the
# hold-down: every ID it issues under its old worker ID must lie above every ID that worker
# issued before the kill. A second client asks the restarted node directly from the moment it is
# started again, so its very first answers are checked too (handed to peers until it mints).
. "$(dirname "$0")/lib.sh"
dr_init restart-same-ms 120
SEQ_BITS=20 WORKER_BITS=2
DR_LAYOUT=$SEQ_BITS:$WORKER_BITS # the history checker of dr_done reads IDs with it too

LAYOUT="layout = { worker_bits = $WORKER_BITS, sequence_bits = $SEQ_BITS }"
dr_standard_up 3 "$LAYOUT"
# the fourth worker ID: a library-mode node (the Lua 5.3 module, as an application embeds it)
mkdir -p "$T/c"
lua_config "$T/c/holder.conf.lua" \
	"lease = { zk_hosts = \"$DR_ZK_HOSTS\", root = \"/snowflake/drill\", node_name = \"holder\", session_timeout_ms = $DR_SESSION_MS, margin_ms = $DR_MARGIN_MS }" \
	"state = { dir = \"$T/c/holder-state\" }" "$LAYOUT"
# shellcheck disable=SC2016 # Lua, not shell
dr_spawn c holder env LUA_PATH="$DR_REPO/lua/?.lua;;" LUA_CPATH="$BUILD/lua5.3/?.so;;" SF_CFG="$T/c/holder.conf.lua" lua5.3 -e '
	local config = require "snowflake.config"
	local node = assert(require("snowflake").start(assert(config.load(os.getenv("SF_CFG")))))
	io.write("holder worker ", tostring(node:status().worker), "\n") io.stdout:flush()
	while true do os.execute("sleep 1") node:drain_logs() end' || fatal "the library-mode holder starts"
wait_until 15000 grep -q '^holder worker [0-9]' "$T/c/holder.log" || fatal "the library-mode node holds the fourth worker ID ($(tail -n 3 "$T/c/holder.log"))"
diag "$(grep '^holder worker' "$T/c/holder.log")"
dr_load 40000
client=$LOAD_PID
sleep 4
dr_pick p1
[[ -n ${W[p1]} && -n ${W[p2]} && -n ${W[p3]} ]] || fatal "the three proxies hold worker IDs (${W[p1]}, ${W[p2]}, ${W[p3]})"
mapfile -t pids < <(hap_pids "$ACT")
ev kill
kill -KILL "${pids[@]}"
kill_mono=$EV_MONO
# run.sh notices its HAProxy is gone and exits; start it again at once
for ((i = 0; i < 200; i++)); do read -r rp <"$T/$ACT/run.pid"; proc_alive "$rp" || break; sleep 0.005; done
# a SIGKILLed multi-threaded process stays a zombie with live threads until every thread has exited
# (seen: still there when run.sh had exited, under a load average of 4): wait for that, bounded
for p in "${pids[@]}"; do
	for ((i = 0; i < 400; i++)); do proc_alive "$p" || break; sleep 0.005; done
	if proc_alive "$p"; then not_ok "$ACT's killed HAProxy process $p is gone"; fi
done
# from here on, every ID under $ACT's worker comes from the new process
ev restart
restart_mono=$EV_MONO
hap_start "$ACT" || not_ok "run.sh starts again on $ACT"
figure restart_after_kill_ms "$(ms_since "$kill_mono")"
# a second client hammers the restarted node directly: its very first IDs are seen
client_start direct "${DR_IP[$ACT]}" 8000 -c 2 -r 200 -T 1000 -t 1000 -k 20 || fatal "the direct client starts"
direct=$CLIENT_PID
if wait_until 3000 vip_of_moved "$ACT"; then ok "$ACT's VIP moved to $(vip_holders "${DR_VIP[$ACT]}") while it restarted"; else not_ok "$ACT's VIP moved while it restarted (holders: $(vip_holders "${DR_VIP[$ACT]}"))"; fi
if hap_wait "$ACT" 200 20000; then
	ready_ms=$(ms_since "$kill_mono")
	ready_mono=$NOW_MONO
	figure kill_to_ready_ms "$ready_ms"
	w_new=$(hap_worker "$ACT")
	if [[ $w_new == "$W_ACT" ]]; then
		ok "the restarted $ACT got its old worker ID $W_ACT back, ready ${ready_ms} ms after the kill"
	else
		not_ok "the restarted $ACT got its old worker ID $W_ACT back (now $w_new)"
	fi
else
	not_ok "the restarted $ACT serves again within 20 s"
fi
wait_line=$(grep -o "waiting [0-9]* ms for the clock to pass the marks of worker [0-9]*" "$T/$ACT/haproxy.log" | tail -n 1)
if [[ -n $wait_line ]]; then
	ok "the restarted $ACT waited for the clock to pass its marks (${wait_line})"
	figure mark_wait_ms "$(awk '{ print $2 }' <<<"$wait_line")"
else
	diag "no 'waiting ... for the clock to pass the marks' line in $ACT's log"
fi
dr_vip_came_back "${ready_mono:-$NOW_MONO}"
park_mono=$NOW_MONO
sleep 2
ev end
kill -TERM "$client" "$direct" 2>/dev/null
client_wait "$client" 5000 || not_ok "the client ends"
client_wait "$direct" 5000 || not_ok "the direct client ends"

analyze --layout "$SEQ_BITS:$WORKER_BITS" --phase "kill:$kill_mono:$park_mono" \
	--vip-phase "act:$ACT_VIX:$kill_mono:$park_mono" "$T/vip.log" || fatal "the client log is readable"
figure error_window_ms "${A[vphase_act_window_ms]}"
dr_zero failed_requests "${A[phase_kill_failed_requests]}" "every request got an ID through a retry on the next VIP"
analyze --layout "$SEQ_BITS:$WORKER_BITS" --worker-phase "before:$W_ACT:0:$restart_mono" \
	--worker-phase "after:$W_ACT:$restart_mono:$EV_MONO" "$T/vip.log" "$T/direct.log" || fatal "the client logs are readable"
figure ids_received "${A[ids]}"
diag "both clients: errors by kind: ${A[errors_by]}; IDs by worker: ${A[workers]}"
first_direct=$(awk '$1 == "I" { print $3; exit }' "$T/direct.log")
[[ -n $first_direct ]] && figure first_direct_id_after_kill_ms $(((first_direct - kill_mono) / 1000))
dr_after_above_before "no replay: worker $W_ACT's IDs after the restart vs before it" replay_gap_ms
check_safety "restart-same-ms"
dr_done
