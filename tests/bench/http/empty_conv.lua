-- The floor of the cheapest Lua path: a per-thread Lua converter that does nothing (HAProxy 2.6
-- builds no txn object for a converter call, as it does for a fetch). The product's /id calls
-- its C function the same way (int(0),lua.sf_id); tests/bench/http_bench.sh compares the two.
core.register_converters("empty", function() return 1 end)
