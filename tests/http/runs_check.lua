-- tests/http/runs_check.lua: no replay across restarts.
--   lua5.4 runs_check.lua WORKER_BITS SEQUENCE_BITS FILE_OF_RUN1 FILE_OF_RUN2 ...
-- Each file holds the IDs received from one run of the service (one a line). For every worker and
-- every pair of runs i < j: every ID of run j is above every ID of run i. Prints one line per run
-- ("RUN i workers w:count:min:max ..."), "REUSED w i j" for a worker that served in two runs,
-- "REPLAY ..." for each violation, and "RESULT ok|replay reused=N". Exit 0 when no replay.
local wb, sb = tonumber(arg[1]), tonumber(arg[2])
local mask = (1 << wb) - 1
local runs = {}
for i = 3, #arg do
  local per = {}
  for line in io.lines(arg[i]) do
    local id = math.tointeger(tonumber(line))
    if id then
      local w = (id >> sb) & mask
      local e = per[w]
      if not e then per[w] = { n = 1, min = id, max = id }
      else
        e.n = e.n + 1
        if id < e.min then e.min = id end
        if id > e.max then e.max = id end
      end
    end
  end
  runs[#runs + 1] = per
  local parts = {}
  for w, e in pairs(per) do parts[#parts + 1] = string.format("%d:%d:%d:%d", w, e.n, e.min, e.max) end
  table.sort(parts)
  print("RUN " .. (i - 2) .. " workers " .. table.concat(parts, " "))
end
local bad, reused = 0, 0
for i = 1, #runs do
  for j = i + 1, #runs do
    for w, ej in pairs(runs[j]) do
      local ei = runs[i][w]
      if ei then
        reused = reused + 1
        print(string.format("REUSED %d %d %d", w, i, j))
        if ej.min <= ei.max then
          bad = bad + 1
          print(string.format("REPLAY worker %d: run %d issued %d, not above run %d's %d", w, j, ej.min, i, ei.max))
        end
      end
    end
  end
end
print(string.format("RESULT %s reused=%d", bad == 0 and "ok" or "replay", reused))
os.exit(bad == 0 and 0 or 1)
