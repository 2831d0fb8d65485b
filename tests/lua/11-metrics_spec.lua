-- snowflake.metrics: one definition per family, each sample's source exists,
-- every C counter is exported by exactly one family; the Prometheus writer.
local helpers = require "spec_helpers"
local metrics = require "snowflake.metrics"
local core = helpers.core

-- the lease status fields absent by design in a status without a worker
local ABSENT_WITHOUT_WORKER = { worker = true }

-- A real lease:status(): a lease on a manual generator, against a registry
-- that is never there (a closed port), stopped again at once.
local function lease_status()
  local gen = helpers.bare_gen()
  local dir = helpers.tmpdir()
  local lease = assert(core.lease_start(gen, { zk_hosts = "127.0.0.1:1", root = "/snowflake/spec", state_dir = dir }))
  local st = lease:status()
  lease:stop()
  core.logs()
  return st
end

local function each_source(fn)
  for _, f in ipairs(metrics.families) do
    for _, s in ipairs(f.samples) do
      if s.source then fn(f, s.source, "source") end
      for _, from in ipairs(s.from or {}) do fn(f, from, "from") end
    end
  end
end

describe("snowflake.metrics", function()
  after_each(helpers.cleanup)

  it("defines each family once, with a Prometheus name, type and help", function()
    local seen = {}
    for _, f in ipairs(metrics.families) do
      assert.truthy(f.name:match("^snowflake_[a-z0-9_]+$"), f.name)
      assert.is_nil(seen[f.name], "defined twice: " .. f.name)
      seen[f.name] = true
      assert.truthy(({ counter = true, gauge = true, histogram = true })[f.type], f.name)
      assert.truthy(f.help:match("^[%u%d].*%.$"), f.name .. ": help " .. f.help)
      if f.type == "counter" then assert.truthy(f.name:match("_total$"), f.name) end
      assert.is_true(#f.samples > 0, f.name)
    end
  end)

  it("exports every key core.counters() returns from exactly one family", function()
    local owners = {}
    each_source(function(f, source, role)
      local tbl, key = metrics.split_source(source)
      if tbl == "counters" and role == "source" then
        owners[key] = owners[key] or {}
        owners[key][#owners[key] + 1] = f.name
      end
    end)
    local keys = 0
    for key in pairs(core.counters()) do
      keys = keys + 1
      assert.are.equal(1, owners[key] and #owners[key] or 0,
        "counters." .. key .. " is the source of " .. table.concat(owners[key] or { "no family" }, ", "))
    end
    assert.is_true(keys >= 7)
  end)

  it("reads only sources that exist", function()
    local snap = {
      counters = core.counters(),
      gen = helpers.manual_gen():stats(),
      lease = lease_status(),
      clock = { source = (core.clock_source()) },
      peers = { up = {} },
    }
    assert.is_nil(snap.lease.worker)
    each_source(function(f, source)
      local tbl, key = metrics.split_source(source)
      assert.is_not_nil(tbl, f.name .. ": a source is table.key, got " .. source)
      assert.is_not_nil(snap[tbl], f.name .. ": no source table " .. tbl)
      if not (tbl == "lease" and ABSENT_WITHOUT_WORKER[key]) then
        assert.is_not_nil(snap[tbl][key], f.name .. ": " .. source .. " does not exist")
      end
    end)
    -- and the page builds from them
    assert.truthy(metrics.text(snap):find("# TYPE snowflake_worker_id gauge\nsnowflake_worker_id -1\n", 1, true))
  end)

  it("writes the page from the table: families in order, samples scaled, refusals sorted", function()
    local snap = {
      counters = {
        ids = 4200, id_requests = 104, batch_requests = 2, clock_waits = 2, clock_wait_ns = 7000000,
        refusals = { parked = 3, fenced = 0, no_lease = 0, clock_regressed = 0, hwm_ahead = 0 },
        handoffs = { parked = 0, fenced = 0, no_lease = 0, clock_regressed = 7, hwm_ahead = 1 },
        handoffs_served = 5,
        batch_buckets = { { le = 1, count = 0 }, { le = 4096, count = 2 }, { le = "+Inf", count = 2 } },
      },
      gen = { clock_waits = 5, clock_refusals = 2, clock_borrows = 1, sequence_exhausted = 9, last_regression_ms = 1234 },
      lease = { state = "minting", worker = 17, lease_ms_left = 4321, registry_round_trips = 99, last_rtt_us = 812,
                claims = 1, canaries = 0, quarantined_ids = 2, sessions = 2,
                local_mark_ms = 1718000001500, registry_mark_ms = 1718000003000 },
      clock = { source = "tsc" },
      peers = { up = { p3 = 0, p2 = 1 } },
    }
    local want = table.concat({
      "# HELP snowflake_ids_issued_total IDs handed out by this process.",
      "# TYPE snowflake_ids_issued_total counter",
      "snowflake_ids_issued_total 4200",
      "# HELP snowflake_requests_total Requests answered with IDs, by endpoint.",
      "# TYPE snowflake_requests_total counter",
      'snowflake_requests_total{endpoint="id"} 104',
      'snowflake_requests_total{endpoint="ids"} 2',
      "# HELP snowflake_batch_size IDs per /ids request.",
      "# TYPE snowflake_batch_size histogram",
      'snowflake_batch_size_bucket{le="1"} 0',
      'snowflake_batch_size_bucket{le="4096"} 2',
      'snowflake_batch_size_bucket{le="+Inf"} 2',
      "snowflake_batch_size_sum 4096",
      "snowflake_batch_size_count 2",
      "# HELP snowflake_clock_regressions_total Clock readings at or below the last used millisecond, by outcome.",
      "# TYPE snowflake_clock_regressions_total counter",
      'snowflake_clock_regressions_total{outcome="wait"} 5',
      'snowflake_clock_regressions_total{outcome="refuse"} 2',
      'snowflake_clock_regressions_total{outcome="borrow"} 1',
      "# HELP snowflake_clock_wait_seconds_total Time spent waiting out clock regressions.",
      "# TYPE snowflake_clock_wait_seconds_total counter",
      "snowflake_clock_wait_seconds_total 0.007",
      "# HELP snowflake_clock_waits_total Clock regressions the service waited out before minting.",
      "# TYPE snowflake_clock_waits_total counter",
      "snowflake_clock_waits_total 2",
      "# HELP snowflake_clock_last_regression_seconds Size of the latest clock regression seen.",
      "# TYPE snowflake_clock_last_regression_seconds gauge",
      "snowflake_clock_last_regression_seconds 1.234",
      "# HELP snowflake_refusals_total Requests refused with 503, by reason.",
      "# TYPE snowflake_refusals_total counter",
      'snowflake_refusals_total{reason="clock_regressed"} 0',
      'snowflake_refusals_total{reason="fenced"} 0',
      'snowflake_refusals_total{reason="no_lease"} 0',
      'snowflake_refusals_total{reason="parked"} 3',
      "# HELP snowflake_handoffs_total Requests this proxy could not mint for, handed to a healthy peer, by the refusal.",
      "# TYPE snowflake_handoffs_total counter",
      'snowflake_handoffs_total{reason="clock_regressed"} 7',
      'snowflake_handoffs_total{reason="fenced"} 0',
      'snowflake_handoffs_total{reason="hwm_ahead"} 1',
      'snowflake_handoffs_total{reason="no_lease"} 0',
      "# HELP snowflake_handoffs_served_total Requests handed over by a peer and answered here.",
      "# TYPE snowflake_handoffs_served_total counter",
      "snowflake_handoffs_served_total 5",
      "# HELP snowflake_peer_up 1 while a peer passes its /health check (it takes handoffs), else 0.",
      "# TYPE snowflake_peer_up gauge",
      'snowflake_peer_up{peer="p2"} 1',
      'snowflake_peer_up{peer="p3"} 0',
      "# HELP snowflake_clock_source_info 1 for the clock minting reads: tsc, or clock_gettime.",
      "# TYPE snowflake_clock_source_info gauge",
      'snowflake_clock_source_info{source="tsc"} 1',
      "# HELP snowflake_sequence_exhausted_total Milliseconds whose sequence ran out.",
      "# TYPE snowflake_sequence_exhausted_total counter",
      "snowflake_sequence_exhausted_total 9",
      "# HELP snowflake_lease_state 1 for the lease's current state.",
      "# TYPE snowflake_lease_state gauge",
      'snowflake_lease_state{state="connecting"} 0',
      'snowflake_lease_state{state="claiming"} 0',
      'snowflake_lease_state{state="waiting"} 0',
      'snowflake_lease_state{state="minting"} 1',
      'snowflake_lease_state{state="parked"} 0',
      'snowflake_lease_state{state="stopped"} 0',
      "# HELP snowflake_lease_seconds_left Time until minting stops without a registry answer.",
      "# TYPE snowflake_lease_seconds_left gauge",
      "snowflake_lease_seconds_left 4.321",
      "# HELP snowflake_worker_id The worker ID held, -1 for none.",
      "# TYPE snowflake_worker_id gauge",
      "snowflake_worker_id 17",
      "# HELP snowflake_registry_round_trips_total Registry requests acknowledged.",
      "# TYPE snowflake_registry_round_trips_total counter",
      "snowflake_registry_round_trips_total 99",
      "# HELP snowflake_registry_rtt_seconds Latest keep-alive round trip to the registry.",
      "# TYPE snowflake_registry_rtt_seconds gauge",
      "snowflake_registry_rtt_seconds 0.000812",
      "# HELP snowflake_lease_claims_total Worker IDs claimed.",
      "# TYPE snowflake_lease_claims_total counter",
      "snowflake_lease_claims_total 1",
      "# HELP snowflake_lease_canaries_total Lease nodes found gone or foreign while held.",
      "# TYPE snowflake_lease_canaries_total counter",
      "snowflake_lease_canaries_total 0",
      "# HELP snowflake_quarantined_ids Worker IDs under the registry's quarantine/, as this node last counted them (every 10 s).",
      "# TYPE snowflake_quarantined_ids gauge",
      "snowflake_quarantined_ids 2",
      "# HELP snowflake_registry_sessions_total Registry sessions established.",
      "# TYPE snowflake_registry_sessions_total counter",
      "snowflake_registry_sessions_total 2",
      "# HELP snowflake_high_water_mark_seconds Durable high-water marks, Unix time.",
      "# TYPE snowflake_high_water_mark_seconds gauge",
      'snowflake_high_water_mark_seconds{store="local"} 1718000001.5',
      'snowflake_high_water_mark_seconds{store="registry"} 1718000003',
    }, "\n") .. "\n"
    assert.are.equal(want, metrics.text(snap))
  end)

  it("writes Prometheus text with HELP, TYPE and sorted labels", function()
    local m = metrics.writer()
    m:family("x_total", "counter", "X.")
    m:sample("x_total", 3, { b = "2", a = "1" })
    m:sample("x_total", 0.5)
    m:sample("x_total", true, { a = 'q"\\\n' })
    assert.are.equal('# HELP x_total X.\n# TYPE x_total counter\nx_total{a="1",b="2"} 3\nx_total 0.5\nx_total{a="q___"} 1\n',
      m:text())
  end)
end)
