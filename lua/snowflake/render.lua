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
--   local files = render.haproxy(cfg, default_node)
--   lua5.3 -e 'require("snowflake.render").main(CONFIG, DIR, NODE)'   -- run.sh

local config = require "snowflake.config"

local ipairs, pairs, tostring = ipairs, pairs, tostring
local string_format = string.format
local table_concat, table_sort = table.concat, table.sort

local M = {}

local function sorted_names(peers)
  local names = {}
  for name in pairs(peers) do names[#names + 1] = name end
  table_sort(names)
  return names
end

-- cfg: a built config (config.build / config.load); default_node: the node
-- name when the config names none (run.sh: the host name). Returns
-- { env = { {name, value}, ... }, derived_cfg = text, peers_cfg = text, peers_acl = text }.
function M.haproxy(cfg, default_node)
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
  local servers, sources = {}, {}
  for _, name in ipairs(sorted_names(http.peers)) do
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
  local derived_cfg = "# written from the Lua config (lua/snowflake/render.lua); do not edit\nglobal\n"
    .. table_concat(setenv, "\n") .. "\n"
  return { env = env, derived_cfg = derived_cfg, peers_cfg = peers_cfg, peers_acl = peers_acl }
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
-- config's message (naming the key) when it is invalid. default_node: as for
-- M.haproxy.
function M.main(config_path, dir, default_node)
  local cfg, err = config.load(config_path)
  if not cfg then
    io.stderr:write(err, "\n")
    os.exit(1)
  end
  local files = M.haproxy(cfg, default_node ~= "" and default_node or nil)
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
