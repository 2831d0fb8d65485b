-- tests/chaos/report.lua: the chaos soak's timeline as one HTML page an on-call engineer reads at a
-- glance (Lua 5.4 or 5.3, standard libraries only; no JavaScript, nothing fetched).
--
--   lua5.4 report.lua TIMELINE_DIR OUT.html [--title TEXT] [--svg OUT.svg]
--
-- TIMELINE_DIR is what the history checker writes (tests/chaos/check.c --timeline DIR). Every file
-- is a table, tab- or space-separated, its header line first; times are seconds since the start of
-- the load:
--   figures.txt  CHAOS <figure> <value>        (required; lines not starting CHAOS are skipped)
--   slots.tsv    t_s ids_total ids_<node>... err_<code>... failed_requests p99_ms   (required; one
--                row per slot, counts per slot; columns found by their names, any set of them)
--   faults.tsv   id kind target start_s heal_s detail   (a point event: start_s == heal_s)
--   vips.tsv     instance holder from_s to_s           (holder "-": nobody holds it)
--   lease.tsv    node pid state worker from_s to_s
-- The last three are optional: absent, unreadable or header-only, their panel says "no data". In
-- slots.tsv a field that is not a number counts 0; as an end (heal_s, to_s) it means "to the end".
-- A row with more fields than its header puts the rest in its last column (a detail with spaces).
--
-- The page: the title, a verdict line, the figures in file order (duplicates, order_violations,
-- fence_violations, lease_violations, header_mismatches green at 0, red otherwise), then one SVG
-- (the one --svg writes) whose panels share the time axis:
--   1 IDs/s by proxy, stacked (the top edge is the total)
--   2 errors/s by code, stacked on a log scale (the bar's height is the total, the codes split it
--     in proportion: one error a second stays visible beside a burst of thousands), and failed
--     requests/s as a black line on the same scale
--   3 faults: one row per fault, packed (a row holds faults that neither overlap nor crowd each
--     other's labels, so overlapping faults always sit on different rows), each bar labelled
--     kind@target; each fault also shades panels 1-2 (a point event: a vertical line)
--   4 VIP holders: a lane per instance, coloured by holder (the node colours of panel 1); two
--     holders at once (a split brain) open a second sub-lane
--   5 lease state per proxy: a lane per node, a sub-lane per pid alive at once (a reload's old and
--     new pid side by side; pids that follow each other share a sub-lane), coloured by state (a
--     stopped pid stays grey until the next pid on its sub-lane; where segments narrower than a
--     pixel meet, the later state of minting < waiting < claiming < connecting < parked < stopped
--     is drawn on top)
--   6 p99 latency (when slots.tsv has p99_ms): the highest slot of each bin
-- Slots are summed into bins of 0.1, 0.2, 0.5, 1, 2, 5, 10... s, the narrowest giving at most
-- MAX_BINS (600) bins (20 s: 100 ms; 90 s: 200 ms; 600 s: 1 s; 900 s: 2 s): a rate is the bin's count over
-- its width, so a 300 ms outage in a 1 s bin is a dip to 70 %, and its errors still show in panel 2.
-- Every band, fault row, lane and segment carries a <title> (hovering shows kind, target, pid,
-- worker and times); so do the node and code legend entries (their totals over the run).
--
-- Exit status: 0 written; 1 a required input is missing or unreadable, or an output cannot be
-- written (one line on stderr naming the file); 2 bad usage.
-- Run as a script (arg[0] names this file) it renders; required, it returns the module:
--   read_timeline(dir) -> timeline | nil, err;  svg(timeline, opts) -> text;
--   html(timeline, svg_text, opts) -> text;  main(argv) -> exit status;  escape(s) -> text

local io_open, io_stderr = io.open, io.stderr
local os_remove, os_rename = os.remove, os.rename
local string_format = string.format
local table_concat, table_remove, table_sort = table.concat, table.remove, table.sort
local math_ceil, math_floor, math_huge, math_log = math.ceil, math.floor, math.huge, math.log
local math_max, math_min = math.max, math.min
local ipairs, next, select, tonumber, tostring = ipairs, next, select, tonumber, tostring
local utf8_len = utf8.len

local M = {}

-- at most this many bins on the time axis (the plot is PLOT_W px wide: >= 1.6 px a bin)
local MAX_BINS = 600
local BIN_CHOICES = { 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120 }
local TICK_CHOICES = { 1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600 }
local MAX_TICKS = 15

-- the figures that must be 0
local VIOLATIONS = { duplicates = true, order_violations = true, fence_violations = true,
                     lease_violations = true, header_mismatches = true }

-- Okabe-Ito: told apart by colour-blind readers too
local NODE_COLOURS = { "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
                       "#000000" }
-- Paul Tol's muted/bright schemes, one fixed colour per kind of tests/chaos/schedule.lua
local KIND_COLOURS = {
  kill_now = "#CC3311", kill_later = "#EE7733", pause = "#AA3377", link_cut = "#0077BB",
  zk_partition = "#33BBEE", clock_back = "#009988", clock_forward = "#999933", zk_kill = "#666666",
  reload = "#DDAA33", park = "#117733",
}
local CODE_COLOURS = {
  fenced = "#D62728", clock_regressed = "#9467BD", connect_refused = "#FF7F0E", reset = "#8C564B",
  read_timeout = "#E377C2", no_lease = "#BCBD22", parked = "#17BECF", handoff_failed = "#7F7F7F",
}
-- kinds and codes not named above take these, in order of appearance
local SPARE_COLOURS = { "#332288", "#1F77B4", "#2CA02C", "#DDCC77", "#44AA99", "#AEC7E8", "#FFBB78",
                        "#98DF8A", "#C5B0D5", "#C49C94", "#F7B6D2", "#DBDB8D", "#9EDAE5", "#666666" }
-- lease states, drawn in this order (a later state is drawn over an earlier one where both get the
-- one-pixel minimum width)
local STATES = { "minting", "waiting", "claiming", "connecting", "parked", "stopped" }
local STATE_COLOURS = { minting = "#1A9850", waiting = "#FEE08B", claiming = "#91BFDB",
                        connecting = "#4575B4", parked = "#F46D43", stopped = "#BDBDBD" }
local UNKNOWN_STATE_COLOUR = "#762A83"
local UNHELD_COLOUR = "#F4A6A6"

-- ---- text -----------------------------------------------------------------------------------------

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }

-- s as XML/HTML text or attribute value: markup characters escaped, the control characters XML 1.0
-- refuses dropped, and bytes of invalid UTF-8 replaced by "?" (the page must parse whatever the
-- checker wrote)
function M.escape(s)
  s = tostring(s)
  if not utf8_len(s) then s = s:gsub("[\128-\255]", "?") end
  s = s:gsub("[\0-\8\11\12\14-\31]", "")
  return (s:gsub("[&<>\"']", ESCAPES))
end
local esc = M.escape

-- a coordinate: one decimal, no ".0"
local function px(v)
  local s = string_format("%.1f", v)
  if s:sub(-2) == ".0" then s = s:sub(1, -3) end
  if s == "-0" then s = "0" end
  return s
end

local function round1(v) return math_floor(v * 10 + 0.5) / 10 end

local function secs(t) return string_format("%.3f s", t) end

-- 12345 -> "12.3k"
local function si(v)
  local a = v < 0 and -v or v
  if a >= 1e9 then return string_format("%.3g", v / 1e9) .. "G" end
  if a >= 1e6 then return string_format("%.3g", v / 1e6) .. "M" end
  if a >= 1e3 then return string_format("%.3g", v / 1e3) .. "k" end
  return string_format("%.3g", v)
end

-- 12345678 -> "12,345,678"
local function count_text(v)
  local s = string_format("%.0f", v)
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

-- black or white, whichever reads better on colour ("#RRGGBB")
local function ink_on(colour)
  local r, g, b = colour:match("^#(%x%x)(%x%x)(%x%x)$")
  if not r then return "#000" end
  local luma = 0.299 * tonumber(r, 16) + 0.587 * tonumber(g, 16) + 0.114 * tonumber(b, 16)
  return luma > 150 and "#000" or "#fff"
end

local function id_of(s) return (tostring(s):gsub("[^%w_.-]", "_")) end

-- ---- reading ----------------------------------------------------------------------------------------

-- the whole file, or nil, message, "absent" | "unreadable"
local function slurp(path)
  local f, err = io_open(path, "rb")
  if not f then
    return nil, err, (err:find("No such file", 1, true) and "absent" or "unreadable")
  end
  local data, rerr = f:read("a")
  f:close()
  if not data then return nil, path .. ": " .. tostring(rerr), "unreadable" end
  return data
end

local function split_fields(line)
  local fields = {}
  for w in line:gmatch("[^\t ]+") do fields[#fields + 1] = w end
  return fields
end

-- a header-first table: { header = { names }, rows = { { fields }, ... } }, or nil, message, why.
-- Blank lines are skipped, and after the header lines starting "#"; a "#" before the header's
-- first name is dropped.
local function read_table(path)
  local data, err, why = slurp(path)
  if not data then return nil, err, why end
  local header, rows = nil, {}
  for line in data:gmatch("[^\n]+") do
    local fields = split_fields(line:gsub("\r$", ""))
    if #fields > 0 then
      if not header then
        if fields[1] == "#" then table_remove(fields, 1) else fields[1] = fields[1]:gsub("^#", "") end
        header = fields
      elseif fields[1]:sub(1, 1) ~= "#" then
        local n = #header
        if n > 0 and #fields > n then
          fields[n] = table_concat(fields, " ", n)
          for i = #fields, n + 1, -1 do fields[i] = nil end
        end
        rows[#rows + 1] = fields
      end
    end
  end
  return { header = header or {}, rows = rows }
end

-- name -> column: by the header's names, else by the position in names
local function columns(header, names)
  local at = {}
  for i, name in ipairs(header) do at[name] = at[name] or i end
  local col = {}
  for i, name in ipairs(names) do col[name] = at[name] or i end
  return col
end

local function read_figures(path)
  local data, err = slurp(path)
  if not data then return nil, err end
  local figures = {}
  for line in data:gmatch("[^\n]+") do
    local name, value = line:gsub("\r$", ""):match("^%s*CHAOS%s+(%S+)%s*(.-)%s*$")
    if name then figures[#figures + 1] = { name = name, value = value } end
  end
  return figures
end

local function read_slots(path)
  local tbl, err = read_table(path)
  if not tbl then return nil, err end
  local header = tbl.header
  local col = {}
  for i, name in ipairs(header) do col[name] = col[name] or i end
  if #tbl.rows > 0 and not col.t_s then return nil, path .. ": no t_s column in the header" end
  local s = { nodes = {}, codes = {}, ids = {}, errs = {}, t = {}, total = {} }
  local node_col, code_col = {}, {}
  for i, name in ipairs(header) do
    local node, code = name:match("^ids_(.+)$"), name:match("^err_(.+)$")
    if node and node ~= "total" and not s.ids[node] then
      s.nodes[#s.nodes + 1], s.ids[node], node_col[node] = node, {}, i
    elseif code and not s.errs[code] then
      s.codes[#s.codes + 1], s.errs[code], code_col[code] = code, {}, i
    end
  end
  if col.failed_requests then s.failed = {} end
  if col.p99_ms then s.p99 = {} end
  -- rows in time order, whatever order the file has
  local rows = {}
  for _, row in ipairs(tbl.rows) do
    local t = tonumber(row[col.t_s])
    if t then rows[#rows + 1] = { t = t, row = row } end
  end
  table_sort(rows, function(a, b) return a.t < b.t end)
  for k, r in ipairs(rows) do
    local row = r.row
    s.t[k] = r.t
    local sum = 0
    for _, node in ipairs(s.nodes) do
      local v = tonumber(row[node_col[node]]) or 0
      s.ids[node][k], sum = v, sum + v
    end
    for _, code in ipairs(s.codes) do s.errs[code][k] = tonumber(row[code_col[code]]) or 0 end
    s.total[k] = col.ids_total and tonumber(row[col.ids_total]) or sum
    if s.failed then s.failed[k] = tonumber(row[col.failed_requests]) or 0 end
    if s.p99 then s.p99[k] = tonumber(row[col.p99_ms]) end
  end
  -- a file with ids_total and no per-node column: one series
  if #s.nodes == 0 and col.ids_total then s.nodes[1], s.ids.all, s.total_only = "all", s.total, true end
  -- the slot width: the smallest step between rows
  local sw = math_huge
  for k = 2, #s.t do
    local d = s.t[k] - s.t[k - 1]
    if d > 1e-9 and d < sw then sw = d end
  end
  s.width = sw < math_huge and sw or 0.1
  return s
end

-- an optional table: its rows (maybe none), or nil and why the panel is empty
local function read_optional(path, name, names, convert)
  local tbl, err, why = read_table(path)
  if not tbl then
    return nil, why == "absent" and (name .. " absent") or err
  end
  local col = columns(tbl.header, names)
  local out = {}
  for _, row in ipairs(tbl.rows) do
    local r = convert(row, col)
    if r then out[#out + 1] = r end
  end
  if #out == 0 then
    return nil, #tbl.rows == 0 and (name .. ": header only") or (name .. ": no readable row")
  end
  return out
end

local function field(row, col, name)
  local v = row[col[name]]
  if v == nil or v == "" then return "-" end
  return v
end

local function to_fault(row, col)
  local start = tonumber(row[col.start_s])
  if not start then return nil end
  local heal = tonumber(row[col.heal_s])
  return { id = field(row, col, "id"), kind = field(row, col, "kind"), target = field(row, col, "target"),
           start = start, heal = heal or math_huge, healed = heal ~= nil, detail = field(row, col, "detail") }
end

local function to_vip(row, col)
  local from = tonumber(row[col.from_s])
  if not from then return nil end
  return { instance = field(row, col, "instance"), holder = field(row, col, "holder"), from = from,
           to = tonumber(row[col.to_s]) or math_huge }
end

local function to_lease(row, col)
  local from = tonumber(row[col.from_s])
  if not from then return nil end
  return { node = field(row, col, "node"), pid = field(row, col, "pid"), state = field(row, col, "state"),
           worker = field(row, col, "worker"), from = from, to = tonumber(row[col.to_s]) or math_huge }
end

local function unheld(holder) return holder == "-" or holder == "none" or holder == "" end

-- Reads TIMELINE_DIR. Returns the timeline, or nil and a message naming the file when figures.txt or
-- slots.tsv is missing or unreadable (the optional files never fail: their *_note says why empty).
function M.read_timeline(dir)
  local tl = { dir = dir }
  local err
  tl.figures, err = read_figures(dir .. "/figures.txt")
  if not tl.figures then return nil, err end
  tl.slots, err = read_slots(dir .. "/slots.tsv")
  if not tl.slots then return nil, err end
  if #tl.slots.t == 0 then tl.slots_note = "slots.tsv: header only" end
  tl.faults, tl.faults_note = read_optional(dir .. "/faults.tsv", "faults.tsv",
    { "id", "kind", "target", "start_s", "heal_s", "detail" }, to_fault)
  tl.vips, tl.vips_note = read_optional(dir .. "/vips.tsv", "vips.tsv",
    { "instance", "holder", "from_s", "to_s" }, to_vip)
  tl.lease, tl.lease_note = read_optional(dir .. "/lease.tsv", "lease.tsv",
    { "node", "pid", "state", "worker", "from_s", "to_s" }, to_lease)

  -- the nodes, one colour each: slots.tsv's order, then VIP holders and lease nodes as they appear
  tl.nodes, tl.node_colour = {}, {}
  local function add_node(n)
    if tl.node_colour[n] or unheld(n) then return end
    tl.nodes[#tl.nodes + 1] = n
    tl.node_colour[n] = NODE_COLOURS[(#tl.nodes - 1) % #NODE_COLOURS + 1]
  end
  if tl.slots.total_only then
    tl.node_colour.all = "#555555"
  else
    for _, n in ipairs(tl.slots.nodes) do add_node(n) end
  end
  for _, l in ipairs(tl.lease or {}) do add_node(l.node) end
  for _, v in ipairs(tl.vips or {}) do add_node(v.holder) end

  -- the time axis: the slots, stretched to hold every fault
  local s = tl.slots
  local t0, t1 = 0, 0
  if #s.t > 0 then t0, t1 = math_min(0, s.t[1]), s.t[#s.t] + s.width end
  for _, f in ipairs(tl.faults or {}) do
    t0 = math_min(t0, f.start)
    t1 = math_max(t1, f.start, f.healed and f.heal or f.start)
  end
  if t1 - t0 < 1 then t1 = t0 + 1 end
  tl.t0, tl.t1 = t0, t1
  for _, f in ipairs(tl.faults or {}) do
    if not f.healed then f.heal = t1 end
  end
  return tl
end

-- ---- drawing helpers ---------------------------------------------------------------------------------

-- colour for name from fixed, else the next spare one (remembered in spare)
local function colour_for(name, fixed, spare)
  if fixed[name] then return fixed[name] end
  if not spare[name] then
    spare.n = (spare.n or 0) + 1
    spare[name] = SPARE_COLOURS[(spare.n - 1) % #SPARE_COLOURS + 1]
  end
  return spare[name]
end

-- the bin width for slots of width sw over duration seconds
local function bin_width(sw, duration)
  for _, b in ipairs(BIN_CHOICES) do
    if b >= sw - 1e-9 and duration / b <= MAX_BINS then return b end
  end
  return math_max(sw, duration / MAX_BINS)
end

-- the step of the time ticks: the smallest giving at most MAX_TICKS
local function tick_step(duration)
  for _, s in ipairs(TICK_CHOICES) do
    if duration / s <= MAX_TICKS then return s end
  end
  return math_ceil(duration / MAX_TICKS / 3600) * 3600
end

local function tick_label(t, step)
  if step < 60 then return string_format("%g", t) end
  local neg = t < 0 and "-" or ""
  t = math_floor(math.abs(t) + 0.5)
  return string_format("%s%d:%02d", neg, t // 60, t % 60)
end

-- a linear axis for values up to vmax: step (1, 2 or 5 times a power of ten) and top
local function linear_axis(vmax)
  if vmax <= 0 then return 1, 1 end
  local raw = vmax / 4
  local e = 10 ^ math_floor(math_log(raw, 10))
  local step = 10 * e
  for _, m in ipairs({ 1, 2, 5, 10 }) do
    if m * e >= raw * (1 - 1e-9) then step = m * e break end
  end
  return step, math_ceil(vmax / step - 1e-9) * step
end

-- the path of the area between two step lines over bins: x[i]..x[i+1] is bin i, lo and hi its edges
local function step_area(x, lo, hi)
  local n = #lo
  local p = { "M", px(x[1]), px(lo[1]), "V", px(hi[1]) }
  local cur = hi[1]
  for i = 2, n do
    if hi[i] ~= cur then
      p[#p + 1] = "H" .. px(x[i]) .. "V" .. px(hi[i])
      cur = hi[i]
    end
  end
  p[#p + 1] = "H" .. px(x[n + 1]) .. "V" .. px(lo[n])
  cur = lo[n]
  for i = n - 1, 1, -1 do
    if lo[i] ~= cur then
      p[#p + 1] = "H" .. px(x[i + 1]) .. "V" .. px(lo[i])
      cur = lo[i]
    end
  end
  p[#p + 1] = "H" .. px(x[1]) .. "Z"
  return table_concat(p, " ")
end

-- the path of a step line (nil where y is nil: a gap)
local function step_line(x, y)
  local p, pen, cur = {}, false, nil
  for i = 1, #x - 1 do
    local v = y[i]
    if v == nil then
      pen = false
    elseif not pen then
      p[#p + 1] = "M" .. px(x[i]) .. " " .. px(v) .. "H" .. px(x[i + 1])
      pen, cur = true, v
    else
      if v ~= cur then p[#p + 1] = "V" .. px(v) end
      p[#p + 1] = "H" .. px(x[i + 1])
      cur = v
    end
  end
  return table_concat(p)
end

-- rows for intervals { a, b } (sorted by a): the first row whose last interval ends at or before a
-- (plus gap); sets iv.row and returns the number of rows
local function pack(intervals, gap)
  local row_end = {}
  for _, iv in ipairs(intervals) do
    local r = 1
    while row_end[r] and row_end[r] + gap > iv.a + 1e-9 do r = r + 1 end
    iv.row, row_end[r] = r, iv.b
  end
  return #row_end
end

-- ---- the picture -------------------------------------------------------------------------------------

local SVG_W = 1280
local PLOT_X, PLOT_W = 128, 960
local LEGEND_X = PLOT_X + PLOT_W + 16
local CHAR_W = 6.1 -- a character of the 10 px labels, about
local IDS_H, ERR_H, P99_H = 170, 130, 70
local FAULT_ROW, VIP_LANE, LEASE_SUB = 15, 18, 12
local LEGEND_ROW = 14

local CSS = table_concat({
  "text{font:11px sans-serif;fill:#222}",
  ".h{font-weight:bold;font-size:12px}",
  ".t{font-size:16px;font-weight:bold}",
  ".s{font-size:10px}",
  ".m{font-size:10px;fill:#555}",
  ".r{text-anchor:end}",
  ".c{text-anchor:middle}",
  ".frame{fill:#fcfcfc;stroke:#999;stroke-width:1}",
  ".grid{stroke:#e4e4e4;stroke-width:1}",
  ".tick{stroke:#999;stroke-width:1}",
  ".band{fill-opacity:.16;stroke-opacity:.75;stroke-width:.8}",
  ".point{stroke-width:1.5;stroke-opacity:.9}",
  ".bar{fill-opacity:.45;stroke-width:1}",
  ".lane{fill:#f0f0f0}",
  ".nodata{fill:#f6f6f6;stroke:#bbb;stroke-dasharray:4 3}",
  ".failed{fill:none;stroke:#000;stroke-width:1.3;stroke-dasharray:5 2}",
  ".p99{fill:none;stroke:#444;stroke-width:1.2}",
}, "\n")

-- The drawing surface of one picture: the output buffer, drawing helpers bound to it (add, text,
-- rect, legend, no_data, heading), the time axis (x_of) and the bins (bw, nbins, xs, bin_of, rates).
local function canvas_new(tl)
  local b = {}
  local s = tl.slots
  local t0, t1 = tl.t0, tl.t1
  local cv = { b = b, tl = tl, s = s, t0 = t0, t1 = t1, kind_spare = {}, code_spare = {} }
  function cv.add(...) for i = 1, select("#", ...) do b[#b + 1] = select(i, ...) end end
  local add = cv.add
  function cv.x_of(t)
    if t < t0 then t = t0 elseif t > t1 then t = t1 end
    return PLOT_X + (t - t0) / (t1 - t0) * PLOT_W
  end
  function cv.text(x, y, str, class, title)
    add('<text x="', px(x), '" y="', px(y), '"', class and (' class="' .. class .. '"') or "", ">",
        title and ("<title>" .. esc(title) .. "</title>") or "", esc(str), "</text>\n")
  end
  function cv.rect(x, y, w, h, attrs, title)
    add('<rect x="', px(x), '" y="', px(y), '" width="', px(w), '" height="', px(h), '"', attrs or "")
    if title then add("><title>", esc(title), "</title></rect>\n") else add("/>\n") end
  end
  -- legend entries { colour, label, title, opacity, style = "dash"|nil } from (x, y); returns its height
  function cv.legend(x, y, entries)
    for i, e in ipairs(entries) do
      local yy = y + (i - 1) * LEGEND_ROW
      add("<g>")
      if e.title then add("<title>", esc(e.title), "</title>") end
      if e.style == "dash" then
        add('<path d="M', px(x), " ", px(yy + 5), 'h12" class="failed"/>')
      else
        add('<rect x="', px(x), '" y="', px(yy), '" width="12" height="10" fill="', e.colour, '"',
            e.opacity and (' fill-opacity="' .. e.opacity .. '"') or "", "/>")
      end
      add('<text x="', px(x + 17), '" y="', px(yy + 9), '" class="s">', esc(e.label), "</text></g>\n")
    end
    return #entries * LEGEND_ROW
  end
  function cv.no_data(y, h, why)
    cv.rect(PLOT_X, y, PLOT_W, h, ' class="nodata"')
    cv.text(PLOT_X + PLOT_W / 2, y + h / 2 + 4, "no data (" .. why .. ")", "c m")
  end
  function cv.heading(y, str)
    cv.text(PLOT_X, y + 12, str, "h")
    return y + 18
  end

  local bw = bin_width(s.width, t1 - t0)
  local nbins = math_max(1, math_ceil((t1 - t0) / bw - 1e-6))
  local xs = {}
  for i = 1, nbins + 1 do xs[i] = round1(cv.x_of(t0 + (i - 1) * bw)) end
  cv.bw, cv.nbins, cv.xs = bw, nbins, xs
  function cv.bin_of(t) return math_min(nbins, math_max(1, math_floor((t - t0) / bw + 1e-6) + 1)) end
  local bin_of = cv.bin_of
  local function bin_span(i) return math_max(1e-9, math_min(bw, t1 - (t0 + (i - 1) * bw))) end
  -- the per-second rates of one slots.tsv series over the bins
  function cv.rates(series)
    local r = {}
    for i = 1, nbins do r[i] = 0 end
    for k, t in ipairs(s.t) do
      local i = bin_of(t)
      r[i] = r[i] + (series[k] or 0)
    end
    for i = 1, nbins do r[i] = r[i] / bin_span(i) end
    return r
  end
  return cv
end

-- Panel 1, IDs/s by node stacked, from y; returns the y below it and the top of its plot
local function draw_ids(cv, y)
  local tl, s = cv.tl, cv.s
  local nbins, xs, rates = cv.nbins, cv.xs, cv.rates
  local add, text, rect, legend, no_data, heading = cv.add, cv.text, cv.rect, cv.legend, cv.no_data, cv.heading
  y = heading(y, "IDs/s by proxy (stacked: the top edge is the total)")
  local ids_top = y
  local id_entries = {}
  for _, node in ipairs(s.nodes) do
    local total = 0
    for _, v in ipairs(s.ids[node]) do total = total + v end
    id_entries[#id_entries + 1] = { colour = tl.node_colour[node] or "#888", label = node .. "  " .. si(total),
                                    title = string_format("%s: %s IDs", node, count_text(total)) }
  end
  local ids_h = math_max(IDS_H, #id_entries * LEGEND_ROW)
  if tl.slots_note then
    no_data(y, ids_h, tl.slots_note)
  else
    rect(PLOT_X, y, PLOT_W, ids_h, ' class="frame"')
    local node_rates, vmax = {}, 0
    local cum = {}
    for i = 1, nbins do cum[i] = 0 end
    for _, node in ipairs(s.nodes) do
      local r = rates(s.ids[node])
      node_rates[node] = r
      for i = 1, nbins do cum[i] = cum[i] + r[i] end
    end
    for i = 1, nbins do vmax = math_max(vmax, cum[i]) end
    local ystep, ytop = linear_axis(vmax)
    local function y_of(v) return round1(y + ids_h - v / ytop * ids_h) end
    local lo = {}
    for i = 1, nbins do lo[i] = 0 end
    for _, node in ipairs(s.nodes) do
      local hi, lo_y, hi_y, any = {}, {}, {}, false
      for i = 1, nbins do
        hi[i] = lo[i] + node_rates[node][i]
        lo_y[i], hi_y[i] = y_of(lo[i]), y_of(hi[i])
        if hi_y[i] ~= lo_y[i] then any = true end
      end
      if any then
        add('<path d="', step_area(xs, lo_y, hi_y), '" fill="', tl.node_colour[node] or "#888",
            '" fill-opacity=".85"><title>', esc(node), " IDs/s</title></path>\n")
      end
      lo = hi
    end
    local v = 0
    while v <= ytop + 1e-9 do
      local yy = y_of(v)
      add('<path d="M', px(PLOT_X - 4), " ", px(yy), 'h4" class="tick"/>')
      text(PLOT_X - 6, yy + 4, si(v), "s r")
      v = v + ystep
    end
  end
  add('<text transform="translate(', px(PLOT_X - 46), ",", px(y + ids_h / 2), ') rotate(-90)" class="s c">IDs/s</text>\n')
  legend(LEGEND_X, y, id_entries)
  y = y + ids_h + 10
  return y, ids_top
end

-- Panel 2, errors/s by code stacked on log10(1 + v) and failed requests/s, from y; returns the y
-- below it and the bottom of its plot
local function draw_errors(cv, y)
  local tl, s = cv.tl, cv.s
  local nbins, xs, rates, code_spare = cv.nbins, cv.xs, cv.rates, cv.code_spare
  local add, text, rect, legend, no_data, heading = cv.add, cv.text, cv.rect, cv.legend, cv.no_data, cv.heading
  y = heading(y, "errors/s by code (log scale, stacked: the height is the total) and failed requests/s")
  local code_entries = {}
  for _, code in ipairs(s.codes) do
    local total = 0
    for _, v in ipairs(s.errs[code]) do total = total + v end
    code_entries[#code_entries + 1] = { colour = colour_for(code, CODE_COLOURS, code_spare),
                                        label = code .. "  " .. si(total),
                                        title = string_format("%s: %s errors", code, count_text(total)) }
  end
  if s.failed then
    local total = 0
    for _, v in ipairs(s.failed) do total = total + v end
    code_entries[#code_entries + 1] = { style = "dash", label = "failed requests  " .. si(total),
                                        title = string_format("failed requests: %s", count_text(total)) }
  end
  local err_h = math_max(ERR_H, #code_entries * LEGEND_ROW)
  if tl.slots_note then
    no_data(y, err_h, tl.slots_note)
  else
    rect(PLOT_X, y, PLOT_W, err_h, ' class="frame"')
    local code_rates, totals, vmax = {}, {}, 0
    for i = 1, nbins do totals[i] = 0 end
    for _, code in ipairs(s.codes) do
      local r = rates(s.errs[code])
      code_rates[code] = r
      for i = 1, nbins do totals[i] = totals[i] + r[i] end
    end
    local failed = s.failed and rates(s.failed)
    for i = 1, nbins do vmax = math_max(vmax, totals[i], failed and failed[i] or 0) end
    local decades = math_max(1, math_ceil(math_log(math_max(vmax, 1), 10) - 1e-9))
    local scale = math_log(1 + 10 ^ decades, 10)
    local function h_of(v) return math_log(1 + v, 10) / scale * err_h end
    local base = y + err_h
    local lo = {}
    for i = 1, nbins do lo[i] = 0 end
    for _, code in ipairs(s.codes) do
      local hi, lo_y, hi_y, any = {}, {}, {}, false
      for i = 1, nbins do
        local share = totals[i] > 0 and code_rates[code][i] / totals[i] or 0
        hi[i] = lo[i] + h_of(totals[i]) * share
        lo_y[i], hi_y[i] = round1(base - lo[i]), round1(base - hi[i])
        if hi_y[i] ~= lo_y[i] then any = true end
      end
      if any then
        add('<path d="', step_area(xs, lo_y, hi_y), '" fill="', colour_for(code, CODE_COLOURS, code_spare),
            '"><title>', esc(code), " errors/s</title></path>\n")
      end
      lo = hi
    end
    if failed then
      local fy, any = {}, false
      for i = 1, nbins do
        fy[i] = round1(base - h_of(failed[i]))
        if failed[i] > 0 then any = true end
      end
      if any then
        add('<path d="', step_line(xs, fy), '" class="failed"><title>failed requests/s</title></path>\n')
      end
    end
    for d = 0, decades do
      local v = d == 0 and 0 or 10 ^ d
      if d == 0 or decades <= 6 or d % 2 == 0 then
        local yy = base - h_of(v)
        add('<path d="M', px(PLOT_X - 4), " ", px(yy), 'h4" class="tick"/>')
        text(PLOT_X - 6, yy + 4, si(v), "s r")
      end
    end
    -- 1/s: one error a second, the smallest step most readers look for
    add('<path d="M', px(PLOT_X - 4), " ", px(base - h_of(1)), 'h4" class="tick"/>')
    text(PLOT_X - 6, base - h_of(1) + 4, "1", "s r")
    if #s.codes == 0 and not failed then
      text(PLOT_X + PLOT_W / 2, y + err_h / 2, "no error columns in slots.tsv", "c m")
    end
  end
  add('<text transform="translate(', px(PLOT_X - 46), ",", px(y + err_h / 2), ') rotate(-90)" class="s c">errors/s</text>\n')
  legend(LEGEND_X, y, code_entries)
  local bands_bottom = y + err_h
  y = y + err_h + 10
  return y, bands_bottom
end

-- Panel 3, one packed row per fault, from y, and the bands over panels 1-2 (ids_top to
-- bands_bottom); returns the y below it
local function draw_faults(cv, y, ids_top, bands_bottom)
  local tl, x_of, kind_spare = cv.tl, cv.x_of, cv.kind_spare
  local add, text, rect, legend, no_data, heading = cv.add, cv.text, cv.rect, cv.legend, cv.no_data, cv.heading
  y = heading(y, "faults (a row per overlap; each also shades the panels above)")
  local faults = {}
  for i, f in ipairs(tl.faults or {}) do faults[i] = f end
  table_sort(faults, function(p, q)
    if p.start ~= q.start then return p.start < q.start end
    return p.heal < q.heal
  end)
  local kinds, kind_seen = {}, {}
  local spans = {}
  for _, f in ipairs(faults) do
    if not kind_seen[f.kind] then
      kind_seen[f.kind] = true
      kinds[#kinds + 1] = f.kind
    end
    local label = f.kind .. "@" .. f.target
    local xa, xb = x_of(f.start), math_max(x_of(f.heal), x_of(f.start) + 1)
    local lw = #label * CHAR_W + 4
    local span = { f = f, label = label, xa = xa, xb = xb, a = xa, b = xb }
    if xb - xa >= lw + 4 then
      span.inside = true
    elseif xb + 3 + lw <= PLOT_X + PLOT_W then
      span.b = xb + 3 + lw
    else
      span.a, span.left = xa - 3 - lw, true
    end
    spans[#spans + 1] = span
  end
  table_sort(spans, function(p, q) return p.a < q.a end)
  local nrows = pack(spans, 4)
  local faults_top = y
  local faults_h
  local kind_entries = {}
  for _, k in ipairs(kinds) do
    kind_entries[#kind_entries + 1] = { colour = colour_for(k, KIND_COLOURS, kind_spare), label = k, opacity = ".6" }
  end
  if #spans == 0 then
    faults_h = 24
    no_data(y, faults_h, tl.faults_note or "no fault")
  else
    faults_h = math_max(nrows * FAULT_ROW + 4, #kind_entries * LEGEND_ROW)
    -- every band first, then the rows: no band is drawn over a row's label
    for _, sp in ipairs(spans) do
      local f = sp.f
      local colour = colour_for(f.kind, KIND_COLOURS, kind_spare)
      local title = string_format("fault %s: %s %s%s", f.id, sp.label,
        f.start == f.heal and ("at " .. secs(f.start))
          or string_format("from %s to %s (%s)", secs(f.start), secs(f.heal), secs(f.heal - f.start)),
        f.healed and "" or " (not healed)")
      if f.detail ~= "-" then title = title .. "; " .. f.detail end
      sp.title, sp.colour = title, colour
      local row_y = faults_top + 2 + (sp.row - 1) * FAULT_ROW
      sp.row_y = row_y
      if f.start == f.heal then
        add('<path id="fault-', id_of(f.id), '" class="band point" d="M', px(sp.xa), " ", px(ids_top), "V",
            px(row_y + FAULT_ROW - 3), '" stroke="', colour, '"><title>', esc(title), "</title></path>\n")
      else
        rect(sp.xa, ids_top, sp.xb - sp.xa, bands_bottom - ids_top,
             ' id="fault-' .. id_of(f.id) .. '" class="band" fill="' .. colour .. '" stroke="' .. colour .. '"', title)
      end
    end
    for _, sp in ipairs(spans) do
      local f = sp.f
      add('<g class="fault-row" id="fault-row-', id_of(f.id), '"><title>', esc(sp.title), "</title>")
      if f.start == f.heal then
        add('<path d="M', px(sp.xa), " ", px(sp.row_y + 1), "l4 5.5 -4 5.5 -4 -5.5Z", '" fill="', sp.colour, '"/>')
      else
        add('<rect x="', px(sp.xa), '" y="', px(sp.row_y), '" width="', px(sp.xb - sp.xa), '" height="',
            px(FAULT_ROW - 3), '" class="bar" fill="', sp.colour, '" stroke="', sp.colour, '"/>')
      end
      local tx = sp.inside and sp.xa + 3 or sp.left and sp.a or sp.xb + 3
      if f.start == f.heal and not sp.left then tx = tx + 3 end
      add('<text x="', px(tx), '" y="', px(sp.row_y + FAULT_ROW - 5.5), '" class="s">', esc(sp.label), "</text></g>\n")
    end
  end
  text(PLOT_X - 6, faults_top + 13, "faults", "s r")
  legend(LEGEND_X, faults_top, kind_entries)
  y = y + faults_h + 10
  return y
end

-- Panel 4, a lane per VIP instance coloured by holder, from y; returns the y below it
local function draw_vips(cv, y)
  local tl, t0, t1, x_of = cv.tl, cv.t0, cv.t1, cv.x_of
  local add, text, rect, legend, no_data, heading = cv.add, cv.text, cv.rect, cv.legend, cv.no_data, cv.heading
  y = heading(y, "VIP holders (colour: the holder, as in the IDs/s panel)")
  if not tl.vips then
    no_data(y, 24, tl.vips_note)
    y = y + 24 + 10
  else
    local instances, by_instance = {}, {}
    for _, v in ipairs(tl.vips) do
      if not by_instance[v.instance] then
        by_instance[v.instance] = {}
        instances[#instances + 1] = v.instance
      end
      local list = by_instance[v.instance]
      list[#list + 1] = { v = v, a = math_max(v.from, t0), b = math_min(v.to, t1) }
    end
    table_sort(instances)
    local vip_top = y
    for _, inst in ipairs(instances) do
      local list = by_instance[inst]
      table_sort(list, function(p, q) return p.a < q.a end)
      local sub = pack(list, 0)
      local lane_h = VIP_LANE * sub
      add('<g class="vip-lane" id="vip-', id_of(inst), '"><title>', esc(string_format("VIP %s: %d holdings",
        inst, #list)), "</title>")
      rect(PLOT_X, y, PLOT_W, lane_h - 2, ' class="lane"')
      add("</g>\n")
      text(PLOT_X - 6, y + 12, #inst > 20 and inst:sub(1, 19) .. "~" or inst, "s r", inst)
      for _, iv in ipairs(list) do
        local v = iv.v
        if iv.b >= t0 and iv.a <= t1 then
          local xa = x_of(iv.a)
          local w = math_max(1, x_of(iv.b) - xa)
          local yy = y + (iv.row - 1) * VIP_LANE
          local colour = unheld(v.holder) and UNHELD_COLOUR or (tl.node_colour[v.holder] or "#888")
          local title = string_format("%s %s from %s to %s (%s)", inst,
            unheld(v.holder) and "held by nobody" or ("held by " .. v.holder), secs(v.from),
            v.to == math_huge and "the end" or secs(v.to), v.to == math_huge and "open" or secs(v.to - v.from))
          rect(xa, yy, w, VIP_LANE - 4, ' fill="' .. colour .. '"', title)
          if not unheld(v.holder) and w >= #v.holder * CHAR_W + 6 then
            add('<text x="', px(xa + 3), '" y="', px(yy + 10.5), '" class="s" style="fill:', ink_on(colour), '">',
                esc(v.holder), "</text>\n")
          end
        end
      end
      y = y + lane_h
    end
    local holder_entries = {}
    for _, n in ipairs(tl.nodes) do holder_entries[#holder_entries + 1] = { colour = tl.node_colour[n], label = n } end
    holder_entries[#holder_entries + 1] = { colour = UNHELD_COLOUR, label = "nobody" }
    local lh = legend(LEGEND_X, vip_top, holder_entries)
    y = math_max(y, vip_top + lh) + 10
  end
  return y
end

-- Panel 5, a lane per node, a sub-lane per pid alive at once, coloured by state, from y; returns
-- the y below it
local function draw_lease(cv, y)
  local tl, t0, t1, x_of = cv.tl, cv.t0, cv.t1, cv.x_of
  local add, text, rect, legend, no_data, heading = cv.add, cv.text, cv.rect, cv.legend, cv.no_data, cv.heading
  y = heading(y, "lease state per proxy (a sub-lane per pid alive at once)")
  local state_entries = {}
  for _, st in ipairs(STATES) do
    state_entries[#state_entries + 1] = { colour = STATE_COLOURS[st], label = st }
  end
  local state_rank = {}
  for i, st in ipairs(STATES) do state_rank[st] = i end
  if not tl.lease then
    no_data(y, 24, tl.lease_note)
    legend(LEGEND_X, y, state_entries)
    y = y + math_max(24, #state_entries * LEGEND_ROW) + 10
  else
    local lease_top = y
    local node_list, by_node = {}, {}
    local extra_states = {}
    for _, l in ipairs(tl.lease) do
      if not by_node[l.node] then
        by_node[l.node] = { pids = {}, order = {} }
        node_list[#node_list + 1] = l.node
      end
      local n = by_node[l.node]
      if not n.pids[l.pid] then
        n.pids[l.pid] = { pid = l.pid, rows = {}, a = math_huge, b = -math_huge }
        n.order[#n.order + 1] = n.pids[l.pid]
      end
      local p = n.pids[l.pid]
      p.rows[#p.rows + 1] = l
      p.a = math_min(p.a, l.from)
      -- a pid's stopped tail does not keep its sub-lane: it ends where the next pid there begins
      if l.state ~= "stopped" then p.b = math_max(p.b, math_min(l.to, t1)) end
      if not state_rank[l.state] and not extra_states[l.state] then
        extra_states[l.state] = true
        state_entries[#state_entries + 1] = { colour = UNKNOWN_STATE_COLOUR, label = l.state }
      end
    end
    -- the nodes in the panel 1 order
    local rank = {}
    for i, n in ipairs(tl.nodes) do rank[n] = i end
    table_sort(node_list, function(p, q) return (rank[p] or math_huge) < (rank[q] or math_huge) end)
    for _, node in ipairs(node_list) do
      local n = by_node[node]
      for _, p in ipairs(n.order) do
        if p.b < p.a then p.b = p.a end
      end
      table_sort(n.order, function(p, q) return p.a < q.a end)
      local sub = pack(n.order, 0)
      local next_start = {}
      for i = #n.order, 1, -1 do
        local p = n.order[i]
        p.next_a = next_start[p.row] or math_huge
        next_start[p.row] = p.a
      end
      local lane_h = sub * LEASE_SUB
      add('<g class="lease-lane" id="lease-', id_of(node), '"><title>', esc(string_format("lease of %s: %d pid%s",
        node, #n.order, #n.order == 1 and "" or "s")), "</title>")
      rect(PLOT_X, y, PLOT_W, lane_h, ' class="lane"')
      add("</g>\n")
      text(PLOT_X - 6, y + math_min(lane_h, 2 * LEASE_SUB) / 2 + 4, #node > 20 and node:sub(1, 19) .. "~" or node, "s r", node)
      add('<rect x="', px(PLOT_X - 4), '" y="', px(y), '" width="3" height="', px(lane_h), '" fill="',
          tl.node_colour[node] or "#888", '"/>\n')
      local segs = {}
      for _, p in ipairs(n.order) do
        for _, l in ipairs(p.rows) do
          local a, z = l.from, l.to
          if l.state == "stopped" then z = math_min(z, p.next_a) end
          segs[#segs + 1] = { l = l, a = a, z = z, row = p.row }
        end
      end
      table_sort(segs, function(p, q)
        local rp, rq = state_rank[p.l.state] or 0, state_rank[q.l.state] or 0
        if rp ~= rq then return rp < rq end
        return p.a < q.a
      end)
      for _, sg in ipairs(segs) do
        local l = sg.l
        if sg.z >= t0 and sg.a <= t1 then
          local xa = x_of(sg.a)
          local w = math_max(1, x_of(sg.z) - xa)
          local yy = y + (sg.row - 1) * LEASE_SUB
          local title = string_format("%s pid %s: %s%s from %s to %s", node, l.pid, l.state,
            l.worker ~= "-" and (" worker " .. l.worker) or "", secs(l.from), l.to == math_huge and "the end" or secs(l.to))
          rect(xa, yy + 1, w, LEASE_SUB - 2, ' fill="' .. (STATE_COLOURS[l.state] or UNKNOWN_STATE_COLOUR) .. '"', title)
        end
      end
      y = y + lane_h + 4
    end
    local lh = legend(LEGEND_X, lease_top, state_entries)
    y = math_max(y, lease_top + lh) + 6
  end
  return y
end

-- Panel 6, p99 latency (the worst slot of each bin), from y when slots.tsv has p99_ms; returns the
-- y below it
local function draw_p99(cv, y)
  local tl, s = cv.tl, cv.s
  local nbins, xs, bin_of = cv.nbins, cv.xs, cv.bin_of
  local add, text, rect, heading = cv.add, cv.text, cv.rect, cv.heading
  if s.p99 and not tl.slots_note then
    y = heading(y, "p99 latency, ms (the highest slot of each bin)")
    local worst, vmax = {}, 0
    for k, t in ipairs(s.t) do
      local v = s.p99[k]
      if v then
        local i = bin_of(t)
        worst[i] = math_max(worst[i] or 0, v)
        vmax = math_max(vmax, v)
      end
    end
    rect(PLOT_X, y, PLOT_W, P99_H, ' class="frame"')
    if not next(worst) then text(PLOT_X + PLOT_W / 2, y + P99_H / 2 + 4, "no p99_ms value in slots.tsv", "c m") end
    local ystep, ytop = linear_axis(vmax)
    local py = {}
    for i = 1, nbins do py[i] = worst[i] and round1(y + P99_H - worst[i] / ytop * P99_H) end
    add('<path d="', step_line(xs, py), '" class="p99"><title>p99 latency, ms</title></path>\n')
    local v = 0
    while v <= ytop + 1e-9 do
      local yy = y + P99_H - v / ytop * P99_H
      add('<path d="M', px(PLOT_X - 4), " ", px(yy), 'h4" class="tick"/>')
      text(PLOT_X - 6, yy + 4, si(v), "s r")
      v = v + ystep * 2
    end
    y = y + P99_H + 6
  end
  return y
end

-- Draws the timeline. opts.title: the caption. Returns the <svg> element (no XML declaration).
function M.svg(tl, opts)
  opts = opts or {}
  local cv = canvas_new(tl)
  local b, s, t0, t1, x_of, text = cv.b, cv.s, cv.t0, cv.t1, cv.x_of, cv.text
  local bw = cv.bw
  local y = 8
  local grid_at = #b + 1
  cv.add("") -- the grid, drawn first, once the height is known
  text(PLOT_X, y + 16, opts.title or ("chaos report: " .. tl.dir), "t")
  y = y + 24
  local per_bin = math_floor(bw / s.width + 0.5)
  local binning = per_bin == 1 and string_format("%g ms slots, unbinned", s.width * 1000)
    or string_format("bins of %g s (%d slots of %g ms)", bw, per_bin, s.width * 1000)
  text(PLOT_X, y + 11, string_format("%s to %s, %s; hover a band or lane for its times",
    secs(t0), secs(t1), binning), "m")
  y = y + 18
  local step = tick_step(t1 - t0)
  local first_tick = math_ceil(t0 / step - 1e-9) * step
  local function tick_labels(yy)
    local t = first_tick
    while t <= t1 + 1e-9 do
      text(x_of(t), yy, tick_label(t, step), "s c")
      t = t + step
    end
  end
  tick_labels(y + 10)
  y = y + 16
  local grid_top = y

  local ids_top, bands_bottom
  y, ids_top = draw_ids(cv, y)
  y, bands_bottom = draw_errors(cv, y)
  y = draw_faults(cv, y, ids_top, bands_bottom)
  y = draw_vips(cv, y)
  y = draw_lease(cv, y)
  y = draw_p99(cv, y)

  local grid_bottom = y
  tick_labels(y + 10)
  text(PLOT_X + PLOT_W / 2, y + 26, step < 60 and "time since the start of the load, s"
    or "time since the start of the load, m:ss", "s c")
  y = y + 34

  local g = { '<g class="grid-lines">' }
  local t = first_tick
  while t <= t1 + 1e-9 do
    g[#g + 1] = '<path d="M' .. px(x_of(t)) .. " " .. px(grid_top) .. "V" .. px(grid_bottom) .. '" class="grid"/>'
    t = t + step
  end
  g[#g + 1] = "</g>\n"
  b[grid_at] = table_concat(g)

  local head = string_format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" ' ..
    'role="img" font-family="sans-serif">\n<title>%s</title>\n<style>\n%s\n</style>\n' ..
    '<rect width="100%%" height="100%%" fill="#fff"/>\n', SVG_W, math_ceil(y), SVG_W, math_ceil(y),
    esc(opts.title or ("chaos report: " .. tl.dir)), CSS)
  return head .. table_concat(b) .. "</svg>\n"
end

-- ---- the page ----------------------------------------------------------------------------------------

local PAGE_CSS = table_concat({
  "body{font:14px/1.4 sans-serif;margin:16px 24px;color:#222;background:#fff}",
  "h1{font-size:20px;margin:0 0 8px}",
  ".verdict{font-weight:bold;padding:6px 10px;border-radius:4px;display:inline-block;margin:4px 0 10px}",
  ".verdict.pass{background:#d9f2d9;color:#14521c}",
  ".verdict.fail{background:#f8d3d3;color:#8a1212}",
  "table{border-collapse:collapse;margin:0 0 14px}",
  "th,td{border:1px solid #ccc;padding:2px 8px;text-align:left;font-variant-numeric:tabular-nums}",
  "th{font-weight:normal}",
  "thead th{background:#eee;font-weight:bold}",
  "tr.good th,tr.good td{background:#d9f2d9;color:#14521c;font-weight:bold}",
  "tr.bad th,tr.bad td{background:#f8b9b9;color:#8a1212;font-weight:bold}",
  ".note{color:#555;font-size:12px;margin:4px 0}",
  "svg{max-width:100%;height:auto;display:block}",
  "details{margin-top:12px}",
}, "\n")

-- The page around svg_text. opts.title: the page's title. Returns the HTML (also well-formed XML).
function M.html(tl, svg_text, opts)
  opts = opts or {}
  local title = opts.title or ("chaos report: " .. tl.dir)
  local b = {}
  local function add(...) for i = 1, select("#", ...) do b[#b + 1] = select(i, ...) end end
  add('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8"/>\n<title>', esc(title),
      "</title>\n<style>\n", PAGE_CSS, "\n</style>\n</head>\n<body>\n<h1>", esc(title), "</h1>\n")

  local bad, checked = {}, 0
  for _, f in ipairs(tl.figures) do
    if VIOLATIONS[f.name] then
      checked = checked + 1
      if tonumber(f.value) ~= 0 then bad[#bad + 1] = f.name .. " " .. f.value end
    end
  end
  if #bad > 0 then
    add('<p class="verdict fail">VIOLATIONS: ', esc(table_concat(bad, ", ")), "</p>\n")
  elseif checked > 0 then
    add('<p class="verdict pass">no violation (', checked, " checked figure", checked == 1 and "" or "s",
        " at 0)</p>\n")
  end

  if #tl.figures == 0 then
    add('<p class="note">figures.txt holds no CHAOS line</p>\n')
  else
    add('<table class="figures">\n<thead><tr><th>figure</th><th>value</th></tr></thead>\n<tbody>\n')
    for _, f in ipairs(tl.figures) do
      local class = ""
      if VIOLATIONS[f.name] then class = tonumber(f.value) == 0 and ' class="good"' or ' class="bad"' end
      add("<tr", class, '><th scope="row">', esc(f.name), "</th><td>", esc(f.value), "</td></tr>\n")
    end
    add("</tbody>\n</table>\n")
  end
  add('<p class="note">timeline: ', esc(tl.dir), "</p>\n")
  add(svg_text)

  if tl.faults then
    add("<details>\n<summary>the faults (", #tl.faults, ")</summary>\n<table>\n<thead><tr><th>id</th><th>kind</th>",
        "<th>target</th><th>start, s</th><th>heal, s</th><th>detail</th></tr></thead>\n<tbody>\n")
    for _, f in ipairs(tl.faults) do
      add("<tr><td>", esc(f.id), "</td><td>", esc(f.kind), "</td><td>", esc(f.target), "</td><td>",
          string_format("%.3f", f.start), "</td><td>", f.healed and string_format("%.3f", f.heal) or "not healed",
          "</td><td>", esc(f.detail), "</td></tr>\n")
    end
    add("</tbody>\n</table>\n</details>\n")
  end
  add("</body>\n</html>\n")
  return table_concat(b)
end

-- ---- the command -----------------------------------------------------------------------------------

local USAGE = "usage: report.lua TIMELINE_DIR OUT.html [--title TEXT] [--svg OUT.svg]\n"

-- writes text to path through path.tmp (a failed run leaves no half page); nil, message on failure
local function write_file(path, text)
  local tmp = path .. ".tmp"
  local f, err = io_open(tmp, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(text)
  local closed, cerr = f:close()
  if not ok or not closed then
    os_remove(tmp)
    return nil, tmp .. ": " .. tostring(werr or cerr)
  end
  local renamed, rerr = os_rename(tmp, path)
  if not renamed then
    os_remove(tmp)
    return nil, rerr
  end
  return true
end

-- argv as the script's arg table; returns the exit status
function M.main(argv)
  local pos, title, svg_path = {}, nil, nil
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--title" or a == "--svg" then
      local v = argv[i + 1]
      if not v then
        io_stderr:write("report.lua: ", a, " needs a value\n", USAGE)
        return 2
      end
      if a == "--title" then title = v else svg_path = v end
      i = i + 2
    elseif a:sub(1, 2) == "--" then
      io_stderr:write("report.lua: unknown option ", a, "\n", USAGE)
      return 2
    else
      pos[#pos + 1] = a
      i = i + 1
    end
  end
  if #pos ~= 2 then
    io_stderr:write(USAGE)
    return 2
  end
  local tl, err = M.read_timeline(pos[1])
  if not tl then
    io_stderr:write("report.lua: ", err, "\n")
    return 1
  end
  local svg = M.svg(tl, { title = title })
  local ok, werr = write_file(pos[2], M.html(tl, svg, { title = title }))
  if ok and svg_path then
    ok, werr = write_file(svg_path, '<?xml version="1.0" encoding="UTF-8"?>\n' .. svg)
  end
  if not ok then
    io_stderr:write("report.lua: ", werr, "\n")
    return 1
  end
  return 0
end

if arg and arg[0] and arg[0]:match("report%.lua$") then os.exit(M.main(arg)) end

return M
