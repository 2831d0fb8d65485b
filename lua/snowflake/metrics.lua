-- edge-snowflake metrics (SPEC "HTTP API", /metrics): every family defined
-- once (name, type, help) with the source of each of its samples, and the
-- Prometheus text written from that one table.
--
-- A source is "<table>.<key>" in the snapshot /metrics takes:
--   counters  core.counters(): the C counters the service moves with
--             core.count(name) (each thread its own block, summed here)
--   gen       gen:stats(): the generator's own counters
--   lease     lease:status(): the lease's state and counters
--   clock     { source = core.clock_source() }
--   peers     { up = { <peer name> = 1 | 0 } }: the peer backend's health checks
-- Every key core.counters() returns is the `source` of exactly one family
-- (the metrics spec holds that). A sample that restates a value
-- another family exports (a histogram's _sum and _count) names it as `from`.
--
-- A sample is { source, labels = , scale = (divisor), default = (when the
-- key is absent) } or one of the expanding kinds:
--   buckets  a list of { le =, count = } -> <name>_bucket{le=...}
--   by_label a map -> one sample per key (label `label`), those `keep` accepts
--   state    one sample per value of `values`: 1 for the current one, else 0
--   info     1, with the source's value as label `label`

local ipairs, pairs, tostring, type = ipairs, pairs, tostring, type
local math_type = math.type
local string_format, string_match, string_gsub = string.format, string.match, string.gsub
local table_concat, table_sort = table.concat, table.sort

local M = {}

-- The lease states of snowflake_lease_state, in their order on the page.
M.LEASE_STATES = { "connecting", "claiming", "waiting", "minting", "parked", "stopped" }

-- Refusal reasons shown at 0 too, so an alert on them has a series to watch.
local ALWAYS_SHOWN = { clock_regressed = true, fenced = true, no_lease = true }

local function family(name, kind, help, samples)
  return { name = name, type = kind, help = help, samples = samples }
end

M.families = {
  family("snowflake_ids_issued_total", "counter", "IDs handed out by this process.", {
    { source = "counters.ids" },
  }),
  family("snowflake_requests_total", "counter", "Requests answered with IDs, by endpoint.", {
    { source = "counters.id_requests", labels = { endpoint = "id" } },
    { source = "counters.batch_requests", labels = { endpoint = "ids" } },
  }),
  family("snowflake_batch_size", "histogram", "IDs per /ids request.", {
    { source = "counters.batch_buckets", kind = "buckets" },
    -- every ID counted that no /id request took came in a batch
    { suffix = "_sum", from = { "counters.ids", "counters.id_requests" },
      value = function(snap) return snap.counters.ids - snap.counters.id_requests end },
    { suffix = "_count", from = { "counters.batch_requests" },
      value = function(snap) return snap.counters.batch_requests end },
  }),
  family("snowflake_clock_regressions_total", "counter",
    "Clock readings at or below the last used millisecond, by outcome.", {
    { source = "gen.clock_waits", labels = { outcome = "wait" } },
    { source = "gen.clock_refusals", labels = { outcome = "refuse" } },
    { source = "gen.clock_borrows", labels = { outcome = "borrow" } },
  }),
  family("snowflake_clock_wait_seconds_total", "counter", "Time spent waiting out clock regressions.", {
    { source = "counters.clock_wait_ns", scale = 1e9 },
  }),
  family("snowflake_clock_waits_total", "counter", "Clock regressions the service waited out before minting.", {
    { source = "counters.clock_waits" },
  }),
  family("snowflake_clock_last_regression_seconds", "gauge", "Size of the latest clock regression seen.", {
    { source = "gen.last_regression_ms", scale = 1e3 },
  }),
  family("snowflake_refusals_total", "counter", "Requests refused with 503, by reason.", {
    { source = "counters.refusals", kind = "by_label", label = "reason",
      keep = function(reason, n) return n > 0 or ALWAYS_SHOWN[reason] end },
  }),
  family("snowflake_handoffs_total", "counter",
    "Requests this proxy could not mint for, handed to a healthy peer, by the refusal.", {
    { source = "counters.handoffs", kind = "by_label", label = "reason",
      keep = function(reason, n) return n > 0 or ALWAYS_SHOWN[reason] end },
  }),
  family("snowflake_handoffs_served_total", "counter", "Requests handed over by a peer and answered here.", {
    { source = "counters.handoffs_served" },
  }),
  family("snowflake_peer_up", "gauge", "1 while a peer passes its /health check (it takes handoffs), else 0.", {
    { source = "peers.up", kind = "by_label", label = "peer", keep = function() return true end },
  }),
  family("snowflake_clock_source_info", "gauge", "1 for the clock minting reads: tsc, or clock_gettime.", {
    { source = "clock.source", kind = "info", label = "source" },
  }),
  family("snowflake_sequence_exhausted_total", "counter", "Milliseconds whose sequence ran out.", {
    { source = "gen.sequence_exhausted" },
  }),
  family("snowflake_lease_state", "gauge", "1 for the lease's current state.", {
    { source = "lease.state", kind = "state", label = "state", values = M.LEASE_STATES },
  }),
  family("snowflake_lease_seconds_left", "gauge", "Time until minting stops without a registry answer.", {
    { source = "lease.lease_ms_left", scale = 1e3, default = 0 },
  }),
  family("snowflake_worker_id", "gauge", "The worker ID held, -1 for none.", {
    { source = "lease.worker", default = -1 },
  }),
  family("snowflake_registry_round_trips_total", "counter", "Registry requests acknowledged.", {
    { source = "lease.registry_round_trips", default = 0 },
  }),
  family("snowflake_registry_rtt_seconds", "gauge", "Latest keep-alive round trip to the registry.", {
    { source = "lease.last_rtt_us", scale = 1e6, default = 0 },
  }),
  family("snowflake_lease_claims_total", "counter", "Worker IDs claimed.", {
    { source = "lease.claims", default = 0 },
  }),
  family("snowflake_lease_canaries_total", "counter", "Lease nodes found gone or foreign while held.", {
    { source = "lease.canaries", default = 0 },
  }),
  family("snowflake_quarantined_ids", "gauge",
    "Worker IDs under the registry's quarantine/, as this node last counted them (every 10 s).", {
    { source = "lease.quarantined_ids", default = 0 },
  }),
  family("snowflake_registry_sessions_total", "counter", "Registry sessions established.", {
    { source = "lease.sessions", default = 0 },
  }),
  family("snowflake_high_water_mark_seconds", "gauge", "Durable high-water marks, Unix time.", {
    { source = "lease.local_mark_ms", scale = 1e3, default = 0, labels = { store = "local" } },
    { source = "lease.registry_mark_ms", scale = 1e3, default = 0, labels = { store = "registry" } },
  }),
}

-- "counters.ids" -> "counters", "ids"
function M.split_source(source)
  return string_match(source, "^(%a+)%.([%w_]+)$")
end

-- ---- Prometheus text ---------------------------------------------------------

local function labels_text(labels)
  if not labels then return "" end
  local keys = {}
  for k in pairs(labels) do keys[#keys + 1] = k end
  table_sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    parts[#parts + 1] = k .. '="' .. string_gsub(tostring(labels[k]), '[\\"\n]', "_") .. '"'
  end
  return "{" .. table_concat(parts, ",") .. "}"
end

local Writer = {}
Writer.__index = Writer

-- A text page: writer:family(name, type, help), writer:sample(name, value
-- [, labels]), writer:text().
function M.writer()
  return setmetatable({ lines = {} }, Writer)
end

function Writer:family(name, kind, help)
  local l = self.lines
  l[#l + 1] = "# HELP " .. name .. " " .. help
  l[#l + 1] = "# TYPE " .. name .. " " .. kind
end

function Writer:sample(name, value, labels)
  local v = value
  if type(v) == "boolean" then v = v and 1 or 0 end
  -- 15 significant digits: a Unix time in seconds keeps its milliseconds,
  -- and no binary noise (0.007, not 0.0070000000000000001)
  if math_type(v) == "float" then
    v = string_format("%.15g", v)
  end
  self.lines[#self.lines + 1] = name .. labels_text(labels) .. " " .. tostring(v)
end

function Writer:text()
  return table_concat(self.lines, "\n") .. "\n"
end

-- ---- the page ------------------------------------------------------------------

local function with_label(labels, key, value)
  local out = { [key] = value }
  for k, v in pairs(labels or {}) do out[k] = v end
  return out
end

local function write_sample(w, name, s, snap)
  if s.value then
    w:sample(name .. (s.suffix or ""), s.value(snap), s.labels)
    return
  end
  local tbl, key = M.split_source(s.source)
  local v = snap[tbl][key]
  if s.kind == "buckets" then
    for _, b in ipairs(v) do
      w:sample(name .. "_bucket", b.count, with_label(s.labels, "le", tostring(b.le)))
    end
  elseif s.kind == "by_label" then
    local names = {}
    for k in pairs(v) do names[#names + 1] = k end
    table_sort(names)
    for _, k in ipairs(names) do
      if s.keep(k, v[k]) then w:sample(name, v[k], with_label(s.labels, s.label, k)) end
    end
  elseif s.kind == "state" then
    for _, value in ipairs(s.values) do
      w:sample(name, v == value and 1 or 0, with_label(s.labels, s.label, value))
    end
  elseif s.kind == "info" then
    w:sample(name, 1, with_label(s.labels, s.label, v))
  else
    if v == nil then v = s.default end
    w:sample(name, s.scale and v / s.scale or v, s.labels)
  end
end

-- The /metrics page for a snapshot { counters =, gen =, lease =, clock =, peers = }
-- (see the sources above; a lease status may lack every field but state).
function M.text(snap)
  local w = M.writer()
  for _, f in ipairs(M.families) do
    w:family(f.name, f.type, f.help)
    for _, s in ipairs(f.samples) do
      write_sample(w, f.name, s, snap)
    end
  end
  return w:text()
end

return M
