-- The floor of any Lua path: a per-thread Lua fetch that does nothing, used by
-- tests/bench/http_bench.sh in the same shape as the /id fast path.
core.register_fetches("empty", function() return 1 end)
