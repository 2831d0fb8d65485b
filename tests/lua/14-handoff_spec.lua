-- Peer handoff: the route decision (snowflake.handoff) on a real generator
-- on the manual clock, the config's http.peers, what render.lua gives
-- HAProxy. (The service's side of a handed-over request, /peer/...: in
-- 10-service_spec.lua, on its fixture.)
local helpers = require "spec_helpers"
local config = require "snowflake.config"
local ladder_mod = require "snowflake.ladder"
local handoff_mod = require "snowflake.handoff"
local render = require "snowflake.render"
local core = helpers.core
local MS, T0_NS = helpers.MS, helpers.T0_NS

local function route_fixture(clock_cfg)
  local gen, clock = helpers.manual_gen()
  local f = { gen = gen, clock = clock, counted = {}, asked = 0 }
  local function count(name, n)
    core.count(name, n) -- the real counter: an unknown name raises
    f.counted[name] = (f.counted[name] or 0) + n
  end
  f.ladder = ladder_mod.new(clock_cfg or { max_wait_ms = 20, borrow = false }, function() end, function() end, count)
  gen:set_max_wait_ms(f.ladder:generator_bound_ms())
  f.logs = {}
  f.h = handoff_mod.new({ gen = gen, ladder = f.ladder, count = count,
                          log = function(level, line) f.logs[#f.logs + 1] = { level = level, line = line } end,
                          wall_ns = function() return clock:wall() end })
  f.peers = 2
  function f.route()
    return f.h:route(function()
      f.asked = f.asked + 1
      return f.peers
    end)
  end
  return f
end

describe("snowflake.handoff", function()
  it("serves here whenever the generator can mint, without asking for peers", function()
    local f = route_fixture()
    assert.is_nil(f.route())
    assert.are.equal(0, f.asked)
    assert.are.same({}, f.counted)
  end)

  it("serves here a small regression the ladder waits out", function()
    local f = route_fixture()
    assert(f.gen:next())
    f.clock:set_wall(T0_NS - 5 * MS)
    assert.is_nil(f.route())
    assert.are.same({}, f.counted)
  end)

  it("hands off a regression past clock.max_wait_ms, counted by its code", function()
    local f = route_fixture()
    assert(f.gen:next())
    f.clock:set_wall(T0_NS - 500 * MS)
    assert.are.equal("clock_regressed", f.route())
    assert.are.same({ ["handoff.clock_regressed"] = 1 }, f.counted)
  end)

  it("hands off a small regression an operator's clock.policy refuses to wait, as clock_regressed", function()
    local f = route_fixture({ max_wait_ms = 20, borrow = false, policy = function() return "refuse" end })
    assert(f.gen:next())
    f.clock:set_wall(T0_NS - 5 * MS)
    assert.are.equal("clock_regressed", f.route())
    assert.are.same({ ["handoff.clock_regressed"] = 1 }, f.counted)
  end)

  it("still pages a clock regression it hands off, at most once a second", function()
    local f = route_fixture()
    assert(f.gen:next())
    f.clock:set_wall(T0_NS - 500 * MS)
    for _ = 1, 3 do assert.are.equal("clock_regressed", f.route()) end
    assert.are.equal(1, #f.logs)
    assert.are.equal(1, f.logs[1].level)
    assert.truthy(f.logs[1].line:find("^PAGE clock regressed, handing requests to peers: "), f.logs[1].line)
    f.clock:set_wall(T0_NS - 500 * MS + 1001 * MS)
    f.gen:revoke("parked") -- any refusal: the page is only for the clock
    f.route()
    assert.are.equal(1, #f.logs)
  end)

  it("hands off parked, fenced, no_lease and the mark refusals", function()
    for _, code in ipairs({ "parked", "fenced", "no_lease", "hwm_stalled", "quarantined", "stopped" }) do
      local f = route_fixture()
      f.gen:revoke(code)
      assert.are.equal(code, f.route(), code)
      assert.are.equal(1, f.counted["handoff." .. code], code)
    end
  end)

  it("serves here (the service's 503) when no peer is healthy, and counts no handoff", function()
    local f = route_fixture()
    f.gen:revoke("parked")
    f.peers = 0
    assert.is_nil(f.route())
    assert.are.equal(1, f.asked)
    assert.are.same({}, f.counted)
  end)
end)

describe("config http.peers", function()
  it("takes name = \"a.b.c.d:port\"", function()
    local cfg = assert(config.build({ http = { peers = { p2 = "10.213.0.12:8080", p3 = "10.213.0.13:8080" } } }))
    assert.are.same({ p2 = "10.213.0.12:8080", p3 = "10.213.0.13:8080" }, cfg.http.peers)
    assert.are.same({}, assert(config.build({})).http.peers)
  end)

  it("refuses what HAProxy could not use, naming the key", function()
    local cases = {
      { { "10.0.0.2:80" }, "^http.peers must map names to addresses" },
      { { p2 = "10.0.0.2" }, '^http.peers.p2 must be "a.b.c.d:port"' },
      { { p2 = "host.example:80" }, '^http.peers.p2 must be "a.b.c.d:port"' },
      { { p2 = "10.0.0.256:80" }, '^http.peers.p2 must be' },
      { { p2 = "10.0.0.2:0" }, '^http.peers.p2 must be' },
      { { p2 = "10.0.0.2:65536" }, '^http.peers.p2 must be' },
      { { p2 = 8080 }, '^http.peers.p2 must be' },
      { { ["2p"] = "10.0.0.2:80" }, "^http.peers: a peer's name must start with a letter" },
      { { ["p 2"] = "10.0.0.2:80" }, "^http.peers: a peer's name" },
      { { p2 = "10.0.0.2:80", p3 = "10.0.0.2:80" }, "^http.peers.p3: 10.0.0.2:80 is also http.peers.p2" },
      { "10.0.0.2:80", "^http.peers must be a table" },
    }
    for _, c in ipairs(cases) do
      local cfg, err = config.build({ http = { peers = c[1] } })
      assert.is_nil(cfg)
      assert.truthy(err:find(c[2]), err)
    end
  end)
end)

describe("snowflake.render", function()
  it("writes one checked server a peer, the trusted addresses and the SF_* values", function()
    local cfg = assert(config.build({
      layout = { worker_bits = 8, sequence_bits = 14, timestamp_bits = 41 },
      lease = { node_name = "p1" }, limits = { rate_per_10s = 777 },
      http = { peers = { p3 = "10.213.0.13:8080", p2 = "10.213.0.12:8080" }, peer_check_ms = 150 },
    }))
    local files = render.haproxy(cfg)
    assert.are.same({ { "SF_SEQ_DIV", "16384" }, { "SF_WORKER_MASK", "255" }, { "SF_RATE", "777" }, { "SF_NODE", "p1" } },
      files.env)
    assert.are.equal("# written from the Lua config (lua/snowflake/render.lua); do not edit\nglobal\n"
      .. "    setenv SF_SEQ_DIV 16384\n    setenv SF_WORKER_MASK 255\n    setenv SF_RATE 777\n    setenv SF_NODE p1\n",
      files.derived_cfg)
    assert.truthy(files.peers_cfg:find("\nbackend sf_peers from sf_peer_defaults\n"
      .. "    server p2 10.213.0.12:8080 check inter 150ms\n"
      .. "    server p3 10.213.0.13:8080 check inter 150ms\n$"), files.peers_cfg)
    assert.are.equal("10.213.0.12\n10.213.0.13\n", files.peers_acl)
  end)

  it("gives a proxy without peers an empty backend and no trusted address", function()
    local files = render.haproxy(assert(config.build({})), "host-a")
    assert.truthy(files.peers_cfg:find("\nbackend sf_peers from sf_peer_defaults\n$"))
    assert.are.equal("", files.peers_acl)
    -- no node name in the config: the one run.sh gives (the host name), always set
    assert.are.same({ "SF_NODE", "host-a" }, files.env[4])
  end)

  it("as a service, derives the listener, threads, log, socket and paths from the config", function()
    local cfg = assert(config.build({ http = { bind = "0.0.0.0:8081", threads = 3, log_target = "/dev/log",
                                               admin_socket = "/run/x/a.sock", node_name = "p9" },
                                      limits = { maxconn = 5000, conn_per_addr = 50 } }))
    local files = render.haproxy(cfg, "host-a", { home = "/usr/share/edge-snowflake",
                                                  config = "/etc/edge-snowflake/config.lua", run_dir = "/run/x" })
    assert.are.equal("# written from the Lua config (lua/snowflake/render.lua); do not edit\nglobal\n"
      .. "    setenv SF_SEQ_DIV 4096\n    setenv SF_WORKER_MASK 1023\n    setenv SF_RATE 100000\n    setenv SF_NODE p9\n"
      .. "    setenv SF_HOME /usr/share/edge-snowflake\n    setenv SF_LUA_CPATH /usr/share/edge-snowflake/lua\n"
      .. "    setenv SNOWFLAKE_CONFIG /etc/edge-snowflake/config.lua\n    setenv SF_BIND 0.0.0.0:8081\n"
      .. "    setenv SF_THREADS 3\n    setenv SF_LOG_TARGET /dev/log\n    setenv SF_SOCKET /run/x/a.sock\n"
      .. "    setenv SF_MAXCONN 5000\n    setenv SF_FRONTEND_MAXCONN 4900\n    setenv SF_CONN_PER_ADDR 50\n"
      .. "    presetenv SF_PEERS_ACL /run/x/peers.acl\n    insecure-fork-wanted\n", files.derived_cfg)
  end)

  it("as a service, fits maxconn to an fd limit below 2 x maxconn + 100, and says so", function()
    local cfg = assert(config.build({ limits = { maxconn = 20000 } }))
    local svc = { home = "/usr/share/edge-snowflake", config = "/etc/edge-snowflake/config.lua", run_dir = "/run/x" }
    svc.fd_limit = 65536
    local roomy = render.haproxy(cfg, "h", svc)
    assert.truthy(roomy.derived_cfg:find("setenv SF_MAXCONN 20000\n    setenv SF_FRONTEND_MAXCONN 19900\n", 1, true))
    assert.is_nil(roomy.derived_cfg:find("SF_ULIMIT_N", 1, true))
    assert.is_nil(roomy.note)
    svc.fd_limit = 20000
    local tight = render.haproxy(cfg, "h", svc)
    assert.truthy(tight.derived_cfg:find("setenv SF_MAXCONN 18000\n    setenv SF_FRONTEND_MAXCONN 17900\n", 1, true))
    assert.truthy(tight.derived_cfg:find("setenv SF_ULIMIT_N 20000\n", 1, true))
    assert.truthy(tight.note:find("maxconn 18000, ulimit-n 20000", 1, true), tight.note)
    svc.fd_limit = 2100
    local ok, err = pcall(render.haproxy, cfg, "h", svc)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("raise LimitNOFILE", 1, true), err)
  end)

  it("as a service, refuses a path HAProxy would read as syntax", function()
    local cfg = assert(config.build({}))
    for _, bad in ipairs({ "relative.lua", "/etc/my config.lua", "/etc/$HOME.lua", '/etc/"q".lua' }) do
      local ok, err = pcall(render.haproxy, cfg, "h", { home = "/usr/share/edge-snowflake", config = bad, run_dir = "/run/x" })
      assert.is_false(ok)
      assert.truthy(tostring(err):find("the config's path must be an absolute path", 1, true), err)
    end
  end)
end)
