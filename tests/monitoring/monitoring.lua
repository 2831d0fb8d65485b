-- tests/monitoring/monitoring.lua: the checks of 01-monitoring_test.sh that read the rules, their
-- promtool tests and the dashboard (lua5.4 + lyaml + dkjson). Verdicts are printed as
-- "ok ..." / "not ok ..." lines and figures as "figure NAME VALUE"; the shell script re-emits them.
--
--   lua5.4 monitoring.lua alerts RULES README TEST...  every alert: severity, summary, description,
--                                                      a runbook naming its README section, and a
--                                                      promtool case where it fires and one where not
--   lua5.4 monitoring.lua dashboard DASHBOARD          the dashboard's variables and panels
--   lua5.4 monitoring.lua exprs DASHBOARD OUT          every panel query, its Grafana variables
--                                                      replaced, as recording rules in OUT (for
--                                                      promtool check rules: each must parse)
--   lua5.4 monitoring.lua names RULES DASHBOARD [EXPR...]  every metric name the rules, the dashboard
--                                                      (and the extra EXPRs) query: "name<TAB>where"
--   lua5.4 monitoring.lua page METRICS                 the sample names of a /metrics page, one a line
--   lua5.4 monitoring.lua livetest PAGE0 PAGE1 SECONDS RULES OUT [ALERT=label:value,...]...
--                                                      a promtool test of the rules on two live pages

local lyaml = require "lyaml"
local json = require "dkjson"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function verdict(good, what)
  print((good and "ok " or "not ok ") .. what)
  return good
end

-- ---- PromQL -----------------------------------------------------------------------------

local KEYWORDS = { ["and"] = true, ["or"] = true, unless = true, bool = true, offset = true,
                   by = true, without = true, on = true, ignoring = true, group_left = true,
                   group_right = true, inf = true, nan = true }

-- The metric names an expression selects: identifiers outside label matchers, ranges and
-- grouping clauses that are not a function or aggregation call nor a keyword.
local function metric_names(expr)
  local s = expr:gsub('"[^"]*"', '""')
  s = s:gsub("%b{}", " "):gsub("%b[]", " ")
  for _, kw in ipairs({ "by", "without", "on", "ignoring", "group_left", "group_right" }) do
    s = s:gsub("%f[%w_:]" .. kw .. "%s*%b()", " ")
  end
  local names = {}
  for pos, name in s:gmatch("()%f[%w_:]([%a_:][%w_:]*)") do
    local after = s:match("^%s*(.?)", pos + #name)
    if after ~= "(" and not KEYWORDS[name] then names[#names + 1] = name end
  end
  return names
end

-- ---- the rules ------------------------------------------------------------------------------

local function each_alert(rules, fn)
  for _, g in ipairs(rules.groups or {}) do
    for _, r in ipairs(g.rules or {}) do
      if r.alert then fn(r, g.name) end
    end
  end
end

local function alerts(rules_path, readme_path, tests)
  local rules = lyaml.load(read(rules_path))
  local readme = read(readme_path)
  local headings = {}
  for h in readme:gmatch("\n#+ ([^\n]+)") do headings[h] = true end
  -- per alert: cases where it fires, cases where it stays quiet
  local fires, quiet, cases = {}, {}, 0
  for _, path in ipairs(tests) do
    local doc = lyaml.load(read(path))
    for _, t in ipairs(doc.tests or {}) do
      for _, c in ipairs(t.alert_rule_test or {}) do
        cases = cases + 1
        local n = c.alertname
        if #(c.exp_alerts or {}) > 0 then fires[n] = (fires[n] or 0) + 1 else quiet[n] = (quiet[n] or 0) + 1 end
      end
    end
  end
  local known, count = {}, 0
  each_alert(rules, function(r, group)
    count = count + 1
    known[r.alert] = true
    local a, l = r.annotations or {}, r.labels or {}
    local problems = {}
    if l.severity ~= "critical" and l.severity ~= "warning" then problems[#problems + 1] = "severity critical or warning" end
    for _, key in ipairs({ "summary", "description", "runbook" }) do
      if type(a[key]) ~= "string" or a[key] == "" then problems[#problems + 1] = "annotation " .. key end
    end
    local section = type(a.runbook) == "string" and a.runbook:match("^monitoring/README%.md, ([%w_]+):")
    if section ~= r.alert then
      problems[#problems + 1] = "runbook starting \"monitoring/README.md, " .. r.alert .. ":\""
    elseif not headings[r.alert] then
      problems[#problems + 1] = "a section \"" .. r.alert .. "\" in monitoring/README.md"
    end
    if (fires[r.alert] or 0) == 0 then problems[#problems + 1] = "a promtool case where it fires" end
    if (quiet[r.alert] or 0) == 0 then problems[#problems + 1] = "a promtool case where it does not fire" end
    verdict(#problems == 0, string.format("%s (%s, %s): fires in %d promtool cases, quiet in %d%s", r.alert, group,
      tostring(l.severity), fires[r.alert] or 0, quiet[r.alert] or 0,
      #problems == 0 and "; severity, summary, description, runbook" or "; missing: " .. table.concat(problems, ", ")))
  end)
  local strays = {}
  for _, seen in ipairs({ fires, quiet }) do
    for name in pairs(seen) do
      if not known[name] and not strays[name] then
        strays[name] = true
        strays[#strays + 1] = name
      end
    end
  end
  table.sort(strays)
  verdict(#strays == 0, "every alertname in the promtool cases is an alert of the rules" ..
    (#strays == 0 and "" or ": not " .. table.concat(strays, ", ")))
  print("figure alerts " .. count)
  print("figure alert_test_cases " .. cases)
end

-- ---- the dashboard ------------------------------------------------------------------------

local function load_dashboard(path)
  local d, _, err = json.decode(read(path))
  assert(d, "dashboard JSON: " .. tostring(err))
  return d
end

local function each_panel(d, fn)
  local function walk(list)
    for _, p in ipairs(list or {}) do
      if p.type == "row" then walk(p.panels) else fn(p) end
    end
  end
  walk(d.panels)
end

-- Grafana's variables as Prometheus would see them once substituted
local function substituted(expr)
  return (expr:gsub("%$__rate_interval", "1m"):gsub("%$__interval", "1m"):gsub("%$__range", "1h")
    :gsub("%${?instance}?", ".*"))
end

local function dashboard(path)
  local d = load_dashboard(path)
  local vars = {}
  for _, v in ipairs(d.templating and d.templating.list or {}) do vars[v.name] = v end
  local ds = vars.DS_PROMETHEUS
  verdict(ds and ds.type == "datasource" and ds.query == "prometheus",
    "the dashboard has a Prometheus datasource variable DS_PROMETHEUS")
  local inst = vars.instance
  local q = inst and (type(inst.query) == "table" and inst.query.query or inst.query)
  verdict(inst and inst.type == "query" and type(q) == "string" and q:match("^label_values%(.*, instance%)$") ~= nil,
    "the dashboard has an instance variable from label_values(..., instance)")
  local panels, bad = 0, {}
  each_panel(d, function(p)
    panels = panels + 1
    local good = type(p.datasource) == "table" and p.datasource.uid == "${DS_PROMETHEUS}" and #(p.targets or {}) > 0
    for _, t in ipairs(p.targets or {}) do
      good = good and type(t.expr) == "string" and t.expr ~= "" and t.expr:find("instance=~\"$instance\"", 1, true) ~= nil
        and type(t.datasource) == "table" and t.datasource.uid == "${DS_PROMETHEUS}"
    end
    if not good then bad[#bad + 1] = p.title or ("panel " .. tostring(p.id)) end
  end)
  verdict(#bad == 0 and panels > 0, string.format("every one of the %d panels queries ${DS_PROMETHEUS} and filters on $instance%s",
    panels, #bad == 0 and "" or ": not " .. table.concat(bad, ", ")))
  print("figure dashboard_panels " .. panels)
end

local function exprs(path, out)
  local d = load_dashboard(path)
  local lines, n = { "groups:", "  - name: dashboard-expressions", "    rules:" }, 0
  local function add(expr)
    n = n + 1
    lines[#lines + 1] = string.format("      - record: dashboard:expr_%d", n)
    lines[#lines + 1] = "        expr: " .. json.encode(substituted(expr))
  end
  each_panel(d, function(p)
    for _, t in ipairs(p.targets or {}) do add(t.expr) end
  end)
  local f = assert(io.open(out, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  print("figure dashboard_expressions " .. n)
end

-- ---- names ---------------------------------------------------------------------------------

local function names(rules_path, dash_path, extra)
  local where, order = {}, {}
  local function add(expr, origin)
    for _, n in ipairs(metric_names(expr)) do
      if not where[n] then
        where[n] = {}
        order[#order + 1] = n
      end
      where[n][origin] = true
    end
  end
  each_alert(lyaml.load(read(rules_path)), function(r) add(r.expr, "rules") end)
  local d = load_dashboard(dash_path)
  each_panel(d, function(p)
    for _, t in ipairs(p.targets or {}) do add(substituted(t.expr), "dashboard") end
  end)
  for _, v in ipairs(d.templating and d.templating.list or {}) do
    local q = type(v.query) == "table" and v.query.query or v.query
    local inner = type(q) == "string" and q:match("^label_values%((.*),[^,]*%)$")
    if inner then add(inner, "dashboard variable " .. v.name) end
  end
  for _, e in ipairs(extra) do add(e, "extra") end
  table.sort(order)
  for _, n in ipairs(order) do
    local o = {}
    for k in pairs(where[n]) do o[#o + 1] = k end
    table.sort(o)
    print(n .. "\t" .. table.concat(o, ", "))
  end
end

local function page(path)
  local seen, order = {}, {}
  for line in read(path):gmatch("[^\n]+") do
    local n = line:match("^([%a_:][%w_:]*)[{ ]")
    if n and not seen[n] then
      seen[n] = true
      order[#order + 1] = n
    end
  end
  table.sort(order)
  for _, n in ipairs(order) do print(n) end
end

-- ---- the rules on the live pages -----------------------------------------------------------

-- A page's samples: { name =, labels = "k=\"v\",...", value = }, and each family's type.
local function samples(path)
  local out, types = {}, {}
  for line in read(path):gmatch("[^\n]+") do
    local fam, kind = line:match("^# TYPE (%S+) (%S+)")
    if fam then
      types[fam] = kind
    elseif not line:match("^#") then
      local name, labels, value = line:match("^([%a_:][%w_:]*)({?[^}]*}?)%s+(%S+)$")
      if name then out[#out + 1] = { name = name, labels = labels:sub(2, -2), value = tonumber(value) } end
    end
  end
  return out, types
end

local function family_type(types, name)
  return types[name] or types[(name:gsub("_bucket$", ""):gsub("_sum$", ""):gsub("_count$", ""))]
end

-- A promtool test file (OUT) from two scrapes of a live node, S seconds apart: 20 minutes of one
-- target scraped every 15 s, each counter growing at the rate it grew between the scrapes, each
-- gauge as in the second. Every alert of the rules is expected quiet at 10 and 20 minutes, but
-- those named in FIRING (name=label:value,...) with those labels; their annotations are the
-- rule's, each {{ $labels.x }} replaced.
local function livetest(page0, page1, seconds, rules_path, out, firing)
  local before = {}
  for _, smp in ipairs((samples(page0))) do before[smp.name .. "{" .. smp.labels .. "}"] = smp.value end
  local now, types = samples(page1)
  local target = 'job="edge-snowflake",instance="live:8080"'
  local lines = { "# written by tests/monitoring/monitoring.lua livetest from two scrapes of a live node",
                  "rule_files:", "  - " .. rules_path, "evaluation_interval: 15s", "tests:",
                  "  - interval: 15s", "    input_series:" }
  local function series(sel, values)
    lines[#lines + 1] = "      - series: " .. json.encode(sel)
    lines[#lines + 1] = "        values: " .. json.encode(values)
  end
  series("up{" .. target .. "}", "1x80")
  for _, smp in ipairs(now) do
    local key = smp.name .. "{" .. smp.labels .. "}"
    local sel = smp.name .. "{" .. target .. (smp.labels ~= "" and "," .. smp.labels or "") .. "}"
    local kind = family_type(types, smp.name)
    if (kind == "counter" or kind == "histogram") and before[key] then
      local step = (smp.value - before[key]) * 15 / seconds
      series(sel, string.format("%.17g+%.17gx80", before[key], step))
    else
      series(sel, string.format("%.17gx80", smp.value))
    end
  end
  local expect = {}
  for _, f in ipairs(firing) do
    local name, labels = f:match("^([%w_]+)=(.*)$")
    expect[name] = {}
    for k, v in labels:gmatch("([%w_]+):([^,]+)") do expect[name][k] = v end
  end
  lines[#lines + 1] = "    alert_rule_test:"
  local n = 0
  each_alert(lyaml.load(read(rules_path)), function(r)
    for _, at in ipairs({ "10m", "20m" }) do
      n = n + 1
      lines[#lines + 1] = "      - eval_time: " .. at
      lines[#lines + 1] = "        alertname: " .. r.alert
      local want = expect[r.alert]
      if not want then
        lines[#lines + 1] = "        exp_alerts: []"
      else
        local labels = { job = "edge-snowflake", instance = "live:8080", severity = r.labels.severity }
        for k, v in pairs(want) do labels[k] = v end
        lines[#lines + 1] = "        exp_alerts:"
        lines[#lines + 1] = "          - exp_labels: " .. json.encode(labels)
        local ann = {}
        for k, v in pairs(r.annotations) do
          ann[k] = v:gsub("{{ %$labels%.([%w_]+) }}", function(l) return labels[l] or "" end)
        end
        lines[#lines + 1] = "            exp_annotations: " .. json.encode(ann)
      end
    end
  end)
  local f = assert(io.open(out, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  print("figure live_series " .. #now)
  print("figure live_alert_cases " .. n)
end

local cmd = arg[1]
if cmd == "alerts" then
  alerts(arg[2], arg[3], { table.unpack(arg, 4) })
elseif cmd == "dashboard" then
  dashboard(arg[2])
elseif cmd == "exprs" then
  exprs(arg[2], arg[3])
elseif cmd == "names" then
  names(arg[2], arg[3], { table.unpack(arg, 4) })
elseif cmd == "page" then
  page(arg[2])
elseif cmd == "livetest" then
  livetest(arg[2], arg[3], tonumber(arg[4]), arg[5], arg[6], { table.unpack(arg, 7) })
else
  io.stderr:write("usage: monitoring.lua alerts|dashboard|exprs|names|page ...\n")
  os.exit(2)
end
