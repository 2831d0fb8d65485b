-- Experiments only (tests/bench/http/experiments.sh): Lua fetches that do nothing but
-- return a constant: lua.estr a 18-digit string (an ID's length), lua.eint a 64-bit
-- integer of the same size (the product's fetch returns an integer).
core.register_fetches("estr", function() return "383081689537163264" end)
core.register_fetches("eint", function() return 383081689537163264 end)
