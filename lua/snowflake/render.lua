-- What HAProxy needs from the Lua config, derived in one place (haproxy/run.sh
-- writes it before starting and before each reload; haproxy.cfg reads it):
--   env        the SF_* values haproxy.cfg expands (layout masks, the rate
--              limit, the node name), written as `setenv` lines of a `global`
--              section (derived.cfg, the first file HAProxy reads): a reload
--              re-reads them like the rest of the configuration
--   peers_cfg  the `backend sf_peers` section: one server a peer, each
--              health-checked on /health (its settings are the named
--              defaults sf_peer_defaults in haproxy.cfg)
--   peers_acl  the addresses a handed-off request is honoured from (one a
--              line; HAProxy's `src -f` reads it), and which the rate limit
--              does not count (their callers were counted where they called)
--
-- As a service (the package's edge-snowflake command: no environment at all),
-- derived.cfg also carries what haproxy/run.sh puts in HAProxy's environment:
-- the listener, threads, log target and stats socket from the config
-- (http.bind, http.threads, http.log_target, http.admin_socket), where the
-- HAProxy files are (SF_HOME) and which config the Lua glue loads
-- (SNOWFLAKE_CONFIG). SF_PEERS_ACL is a `presetenv`: `edge-snowflake check`
-- points it at the file it checks, and the path it names never changes.
--
--   local files = render.haproxy(cfg, default_node[, service])
--   lua5.3 -e 'require("snowflake.render").main(CONFIG, DIR, NODE)'   -- run.sh

local config = require "snowflake.config"

local ipairs, tostring, type, error, pcall = ipairs, tostring, type, error, pcall
local string_format = string.format
local table_concat = table.concat

local M = {}


-- the characters a path may hold in a setenv line (HAProxy would expand a $,
-- split at a space or end at a quote)
local function plain_path(what, path)
  if type(path) ~= "string" or not path:find("^/[%w%._%-/+@]*$") then
    error(string_format("render: %s must be an absolute path of letters, digits and ._-/+@, got %q",
      what, tostring(path)), 0)
  end
  return path
end

-- HAProxy wants ~2 fds a connection (a client and a server side) and sets its
-- own RLIMIT_NOFILE from maxconn, refusing to start (strict-limits, 2.6's
-- default) when the hard limit is lower: a container, or a host whose limit an
-- operator lowered. Below 2 x maxconn + 100 the service runs with the limit
-- there is (ulimit-n, no strict-limits) and a maxconn FD_RESERVE below it:
-- /id and the Lua service answer in HAProxy, one fd a connection; a server
-- side exists only for a handoff to a peer, and those are shared. Returns
-- maxconn, and the ulimit-n to set with a note saying so when it had to fit.
-- (haproxy/run.sh does the same for MAXCONN.)
local FD_RESERVE = 2000
function M.fit_connections(maxconn, fd_limit)
  if not fd_limit or fd_limit >= 2 * maxconn + 100 then return maxconn end
  local fitted = math.min(maxconn, fd_limit - FD_RESERVE)
  if fitted < 200 then
    error(string_format("the fd limit (%d) leaves room for %d connections (limits.maxconn %d): "
      .. "raise LimitNOFILE (the unit's, or the container's hard limit)", fd_limit, fitted, maxconn), 0)
  end
  return fitted, fd_limit, string_format("the fd limit %d is below 2 x limits.maxconn (%d) + 100: "
    .. "maxconn %d, ulimit-n %d", fd_limit, maxconn, fitted, fd_limit)
end

-- cfg: a built config (config.build / config.load); default_node: the node
-- name when the config names none (run.sh: the host name); service (optional):
-- { home = dir of haproxy/ and lua/snowflake/haproxy.lua, config = the config's
-- absolute path, run_dir = where peers.acl is served from, fd_limit = the hard
-- RLIMIT_NOFILE HAProxy will have, nil for none }. Returns { env = { {name,
-- value}, ... }, derived_cfg = text, peers_cfg = text, peers_acl = text,
-- note = what had to be fitted, or nil }.
function M.haproxy(cfg, default_node, service)
  local layout, http = cfg.layout, cfg.http
  local env = {
    { "SF_SEQ_DIV", tostring(1 << layout.sequence_bits) },
    { "SF_WORKER_MASK", tostring((1 << layout.worker_bits) - 1) },
    { "SF_RATE", tostring(cfg.limits.rate_per_10s) },
  }
  -- always set: a reload re-executes HAProxy with the environment the last
  -- setenv left, so a name removed from the config must be replaced, not kept
  local node = http.node_name or cfg.lease.node_name or default_node
  if node then env[#env + 1] = { "SF_NODE", node } end
  local preset, note = {}, nil
  if service then
    local home = plain_path("the service's home", service.home)
    env[#env + 1] = { "SF_HOME", home }
    -- the glue's own directory, which holds no module: snowflake.core and
    -- the modules come from Lua's default paths, where the package puts them
    env[#env + 1] = { "SF_LUA_CPATH", home .. "/lua" }
    env[#env + 1] = { "SNOWFLAKE_CONFIG", plain_path("the config's path", service.config) }
    env[#env + 1] = { "SF_BIND", http.bind }
    env[#env + 1] = { "SF_THREADS", tostring(http.threads) }
    env[#env + 1] = { "SF_LOG_TARGET", http.log_target }
    env[#env + 1] = { "SF_SOCKET", http.admin_socket }
    local maxconn, ulimit_n
    maxconn, ulimit_n, note = M.fit_connections(cfg.limits.maxconn, service.fd_limit)
    env[#env + 1] = { "SF_MAXCONN", tostring(maxconn) }
    env[#env + 1] = { "SF_FRONTEND_MAXCONN", tostring(maxconn - 100) }
    if ulimit_n then env[#env + 1] = { "SF_ULIMIT_N", tostring(ulimit_n) } end
    env[#env + 1] = { "SF_CONN_PER_ADDR", tostring(cfg.limits.conn_per_addr) }
    preset[1] = { "SF_PEERS_ACL", plain_path("the run directory", service.run_dir) .. "/peers.acl" }
  end
  local servers, sources = {}, {}
  for _, name in ipairs(config.sorted_keys(http.peers)) do
    local addr = config.split_peer(http.peers[name])
    servers[#servers + 1] = string_format("    server %s %s check inter %dms", name, http.peers[name],
      http.peer_check_ms)
    sources[#sources + 1] = addr
  end
  local peers_cfg = "# written from the Lua config (lua/snowflake/render.lua); do not edit\n"
    .. "backend sf_peers from sf_peer_defaults\n"
    .. (#servers > 0 and (table_concat(servers, "\n") .. "\n") or "")
  local peers_acl = #sources > 0 and (table_concat(sources, "\n") .. "\n") or ""
  local setenv = {}
  for _, kv in ipairs(env) do setenv[#setenv + 1] = "    setenv " .. kv[1] .. " " .. kv[2] end
  for _, kv in ipairs(preset) do setenv[#setenv + 1] = "    presetenv " .. kv[1] .. " " .. kv[2] end
  if service then
    -- HAProxy stops a non-root process from creating threads once it serves (RLIMIT_NPROC),
    -- and the lease starts its thread and ZooKeeper's from a task: as the service's own user
    -- (not root, which the limit does not bind) every lease start failed with out_of_memory
    setenv[#setenv + 1] = "    insecure-fork-wanted"
  end
  local derived_cfg = "# written from the Lua config (lua/snowflake/render.lua); do not edit\nglobal\n"
    .. table_concat(setenv, "\n") .. "\n"
  return { env = env, derived_cfg = derived_cfg, peers_cfg = peers_cfg, peers_acl = peers_acl, note = note }
end

-- a file whole or not at all (a cut-off address in peers.acl would trust
-- the wrong host)
local function write(path, text)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "w")
  if not f then return nil, err end
  local ok, werr = f:write(text)
  local closed, cerr = f:close()
  if not ok or not closed then
    os.remove(tmp)
    return nil, werr or cerr
  end
  return os.rename(tmp, path)
end

-- Loads the config at config_path, writes DIR/derived.cfg, DIR/peers.cfg and
-- DIR/peers.acl, prints their paths as "NAME=path" lines; exits 1 with the
-- config's message (naming the key) when it is invalid. default_node, service:
-- as for M.haproxy (service.config defaults to config_path).
function M.main(config_path, dir, default_node, service)
  local cfg, err = config.load(config_path)
  if not cfg then
    io.stderr:write(err, "\n")
    os.exit(1)
  end
  -- the credential file as the lease will read it, as this user (the unit's):
  -- a start refuses here, naming the key, not later as a parked lease
  if cfg.lease.auth_file then
    local ok, _, why = require("snowflake.core").auth_file_check(cfg.lease.auth_file)
    if not ok then
      io.stderr:write(tostring(why), "\n") -- it names lease.auth_file and the file
      os.exit(1)
    end
  end
  if service and not service.config then service.config = config_path end
  local rendered, files = pcall(M.haproxy, cfg, default_node ~= "" and default_node or nil, service)
  if not rendered then
    io.stderr:write(tostring(files), "\n")
    os.exit(1)
  end
  if files.note then io.stderr:write("edge-snowflake: ", files.note, "\n") end
  for _, f in ipairs({ { "derived.cfg", files.derived_cfg }, { "peers.cfg", files.peers_cfg },
                       { "peers.acl", files.peers_acl } }) do
    local ok, werr = write(dir .. "/" .. f[1], f[2])
    if not ok then
      io.stderr:write("cannot write ", dir, "/", f[1], ": ", tostring(werr), "\n")
      os.exit(1)
    end
  end
  io.write("SF_DERIVED_CFG=", dir, "/derived.cfg\n", "SF_PEERS_CFG=", dir, "/peers.cfg\n",
           "SF_PEERS_ACL=", dir, "/peers.acl\n")
end

return M
