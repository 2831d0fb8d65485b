-- edge-snowflake start-up, shared by library mode (snowflake.lua) and the
-- HAProxy glue (snowflake/haproxy.lua): the kernel clock-discipline check
-- and the lease's options from a config. Each mode decides what a failed
-- check does (library mode: start returns nil, code, detail; HAProxy: the
-- generator is revoked with the code).

local tostring = tostring
local string_format = string.format

local M = {}

-- Syslog levels of the log lines written here.
local WARNING = 4

-- Checks the kernel's clock discipline (adjtimex, through `read`, which is
-- core.discipline) per cfg.clock.discipline and cfg.clock.max_error_ms.
-- "ignore" checks nothing; "log" logs a problem as a warning; "refuse"
-- returns it. An unreadable discipline is logged and let through.
-- Returns true, or nil, code, problem (clock_unsynchronised, clock_max_error)
-- when cfg says refuse: the caller logs how it refuses.
function M.check_discipline(cfg, read, log)
  local policy = cfg.clock.discipline
  if policy == "ignore" then return true end
  local d, _, detail = read()
  if not d then
    log(WARNING, "cannot read the clock discipline: " .. tostring(detail))
    return true
  end
  local code, problem
  if not d.synchronised then
    code, problem = "clock_unsynchronised", "the kernel reports the clock as unsynchronised (no NTP discipline)"
  elseif d.max_error_us > cfg.clock.max_error_ms * 1000 then
    code, problem = "clock_max_error", string_format(
      "the kernel's maximum clock error is %d ms, above clock.max_error_ms = %d",
      d.max_error_us // 1000, cfg.clock.max_error_ms)
  end
  if not problem then return true end
  if policy == "refuse" then return nil, code, problem end
  log(WARNING, problem .. " (clock.discipline = \"log\")")
  return true
end

-- The table core.lease_start and core.process_lease_start take, from a
-- built config. node_name: the name to register when lease.node_name is
-- not set (nil: the lease uses the host name).
function M.lease_options(cfg, node_name)
  return {
    zk_hosts = cfg.lease.zk_hosts,
    root = cfg.lease.root,
    node_name = cfg.lease.node_name or node_name,
    state_dir = cfg.state.dir,
    session_timeout_ms = cfg.lease.session_timeout_ms,
    margin_ms = cfg.lease.margin_ms,
    registry_ahead_ms = cfg.lease.registry_ahead_ms,
    local_ahead_ms = cfg.state.ahead_ms,
    start_bound_ms = cfg.lease.start_bound_ms,
    reclaim_delay_ms = cfg.lease.reclaim_delay_ms,
    auth_file = cfg.lease.auth_file,
    require_acl = cfg.lease.require_acl,
  }
end

return M
