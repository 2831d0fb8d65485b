# edge-snowflake — `make help` lists the targets.

PREFIX      ?= /usr/local
DESTDIR     ?=
LUA_VERSIONS ?= 5.3 5.4
CC          ?= cc
BUILD       ?= build
# overridable like every variable here, e.g. `make bench BENCH_ROUNDS=7`
BENCH_ROUNDS ?= 5

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wpointer-arith -Wformat=2 -Wno-missing-field-initializers
CSTD     := -std=c11 -D_GNU_SOURCE
OPT      ?= -O2 -g
CFLAGS_ALL = $(CSTD) $(OPT) $(WARN) -fPIC -fvisibility=hidden -pthread -MMD -MP $(CFLAGS)
LDLIBS_CORE := -pthread -lzookeeper_mt

CORE_SRC := $(wildcard core/sf_*.c)
CORE_OBJ := $(patsubst core/%.c,$(BUILD)/obj/core/%.o,$(CORE_SRC))
CORE_A   := $(BUILD)/libsnowflake.a
CORE_SO  := $(BUILD)/libsnowflake.so

LUA_SO   := $(foreach v,$(LUA_VERSIONS),$(BUILD)/lua$(v)/snowflake/core.so)

C_TEST_SRC := $(wildcard tests/c/test_*.c)
C_TESTS    := $(patsubst tests/c/%.c,$(BUILD)/tests/%,$(C_TEST_SRC))
C_TESTS_SAN := $(patsubst tests/c/%.c,$(BUILD)/tests-san/%,$(C_TEST_SRC))
STRESS_TSAN := $(BUILD)/tests-tsan/test_stress
CLAIMANT    := $(BUILD)/tests/claimant
ZKCTL       := $(BUILD)/tests/zkctl
CONNFLOOD   := $(BUILD)/tests/connflood
ZK_TESTS    := $(sort $(wildcard tests/zk/*_test.sh))

SAN_FLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer

DEB_PACKAGES := gcc make haproxy liblua5.3-dev liblua5.4-dev lua5.3 lua5.4 lua-busted lua-socket lua-dkjson lua-yaml \
                libzookeeper-mt-dev zookeeper keepalived iproute2 wrk faketime socat curl prometheus \
                pkg-config shellcheck lua-check clang libclang-rt-dev debhelper mmdebstrap systemd-container \
                lintian man-db

RESULTS := $(BUILD)/results

.PHONY: run install all core lua test test-c test-san test-tsan test-lua test-zk test-config test-http \
        test-monitoring test-drills test-chaos test-fuzz fuzz test-package drill chaos bench lint deps help clean \
        deb install-package package-prep test-package-built
.DEFAULT_GOAL := all

all: core lua ## build the core library and the Lua modules into build/

core: $(CORE_A) $(CORE_SO) ## build build/libsnowflake.{a,so}

lua: $(LUA_SO) ## build snowflake.core for every Lua in LUA_VERSIONS

$(BUILD)/obj/core/%.o: core/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(CORE_A): $(CORE_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(CORE_SO): $(CORE_OBJ)
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,libsnowflake.so.0 $(LDFLAGS) -o $@ $^ $(LDLIBS_CORE)

# Every binding source is compiled once per Lua version against that version's
# headers (LUA_CFLAGS_<v>: pkg-config's, or set LUA_INCDIR_<v>=/path); the
# module is never linked to a liblua (the host program, HAProxy or the lua
# interpreter, provides the symbols).
# --exclude-libs: the module exports luaopen_snowflake_core only, so its calls
# never bind to another copy of the core loaded in the same process.
LUA_SRC := $(wildcard lua/*.c)
define lua_version_rules
LUA_INCDIR_$(1) ?=
LUA_CFLAGS_$(1) ?= $$(if $$(LUA_INCDIR_$(1)),-I$$(LUA_INCDIR_$(1)),$$(or $$(shell pkg-config --cflags lua$(1) 2>/dev/null),-I/usr/include/lua$(1)))
LUA_OBJ_$(1) := $$(patsubst lua/%.c,$$(BUILD)/obj/lua$(1)/%.o,$$(LUA_SRC))
$$(BUILD)/obj/lua$(1)/%.o: lua/%.c
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS_ALL) -I core $$(LUA_CFLAGS_$(1)) -c $$< -o $$@
$$(BUILD)/lua$(1)/snowflake/core.so: $$(LUA_OBJ_$(1)) $$(CORE_A)
	@mkdir -p $$(@D)
	$$(CC) -shared -Wl,--exclude-libs,ALL $$(LDFLAGS) -o $$@ $$(LUA_OBJ_$(1)) $$(CORE_A) $$(LDLIBS_CORE)
endef
$(foreach v,$(LUA_VERSIONS),$(eval $(call lua_version_rules,$(v))))

# ---- tests ---------------------------------------------------------------

$(BUILD)/tests/%: tests/c/%.c tests/c/check.h $(CORE_A)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -I core -o $@ $< $(CORE_A) $(LDLIBS_CORE)

$(CLAIMANT): tests/zk/claimant.c $(CORE_A)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -I core -o $@ $< $(CORE_A) $(LDLIBS_CORE)

# idle and slowloris floods with a caller measured beside them (tests/http/09, tests/bench/hostile_bench.sh)
$(CONNFLOOD): tests/http/connflood.c
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(OPT) $(WARN) -pthread -o $@ $<

$(ZKCTL): tests/zk/zkctl.c
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(OPT) $(WARN) -DTHREADED -o $@ $< -lzookeeper_mt

CORE_HDR := $(wildcard core/*.h)

$(BUILD)/tests-san/%: tests/c/%.c tests/c/check.h $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(@D)
	$(CC) $(CSTD) -O1 -g $(WARN) -pthread $(SAN_FLAGS) -I core -o $@ $< $(CORE_SRC) $(LDLIBS_CORE)

$(BUILD)/tests-tsan/%: tests/c/%.c tests/c/check.h $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(@D)
	$(CC) $(CSTD) -O1 -g $(WARN) -pthread $(TSAN_FLAGS) -I core -o $@ $< $(CORE_SRC) $(LDLIBS_CORE)

# snowflake.core for Lua 5.4 under ASan + UBSan, for tests that load it into the (uninstrumented)
# lua5.4 with gcc's libasan preloaded (tests/zk/11-lease-lifetime_test.sh): one compiler call over
# the binding and the core, test-only.
LUA_ASAN_SO := $(BUILD)/lua5.4-asan/snowflake/core.so
$(LUA_ASAN_SO): $(LUA_SRC) $(wildcard lua/*.h) $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(@D)
	$(CC) $(CSTD) -O1 -g $(WARN) -fPIC -fvisibility=hidden -pthread $(SAN_FLAGS) -shared -I core \
		$(LUA_CFLAGS_5.4) -o $@ $(LUA_SRC) $(CORE_SRC) $(LDLIBS_CORE)

test: deps ## install what is missing, build, run every suite, print "N passed, N failed"
	@rm -rf $(RESULTS) && mkdir -p $(RESULTS)
	@$(MAKE) --no-print-directory -j2 all $(C_TESTS) $(C_TESTS_SAN) $(STRESS_TSAN) $(CLAIMANT) $(ZKCTL) $(CONNFLOOD) \
		$(LUA_ASAN_SO) fuzz-build
	@# the .deb and the install test's root built in the background while the unit suites run (if
	@# the root could not be made there, the install test makes it itself, in the foreground)
	@mkdir -p $(PKG_CACHE) && setsid $(MAKE) --no-print-directory package-prep >$(RESULTS)/package-prep.log 2>&1 </dev/null &
	@# lint at the lowest CPU priority beside the suites: it takes what they leave idle (test-zk
	@# mostly waits on timeouts: 0.7 of 2 cores busy), so it costs them next to nothing and make
	@# test ~1.5 min less; its lines are printed once the suites are done
	@nice -n 19 $(MAKE) --no-print-directory lint >$(RESULTS)/lint.out 2>&1 </dev/null & lint_pid=$$!; \
	$(MAKE) --no-print-directory -k test-c test-san test-tsan test-lua test-fuzz test-config test-zk test-http \
		test-monitoring test-drills test-chaos test-package-built; \
	wait $$lint_pid; cat $(RESULTS)/lint.out; true
	@tests/tools/summary.sh $(RESULTS)

test-c: $(C_TESTS) ## C unit tests and the stress test (real clocks: on the TSC clock and without it)
	@tests/tools/run-c.sh $(RESULTS)/c $(C_TESTS)
	@SNOWFLAKE_CLOCK_SOURCE=clock_gettime tests/tools/run-c.sh $(RESULTS)/c-clock_gettime \
		$(BUILD)/tests/test_tsc $(BUILD)/tests/test_fence $(BUILD)/tests/test_stress

test-san: $(C_TESTS_SAN) ## the same under AddressSanitizer + UBSan
	@tests/tools/run-c.sh $(RESULTS)/asan-ubsan $(C_TESTS_SAN)

test-tsan: $(STRESS_TSAN) ## the multi-thread stress test under ThreadSanitizer
	@TSAN_OPTIONS=halt_on_error=1 tests/tools/run-c.sh $(RESULTS)/tsan $(STRESS_TSAN)
	@SNOWFLAKE_CLOCK_SOURCE=clock_gettime TSAN_OPTIONS=halt_on_error=1 \
		tests/tools/run-c.sh $(RESULTS)/tsan-clock_gettime $(STRESS_TSAN)

test-lua: lua ## busted specs of the binding under every Lua in LUA_VERSIONS
	@for v in $(LUA_VERSIONS); do \
		tests/tools/run-busted.sh $$v $(BUILD)/lua$$v $(RESULTS)/busted-$$v tests/lua; \
	done

test-zk: $(CLAIMANT) $(ZKCTL) lua $(LUA_ASAN_SO) ## lease tests against real ZooKeeper servers (started by each test)
	@CLAIMANT=$(abspath $(CLAIMANT)) ZKCTL=$(abspath $(ZKCTL)) LUA_ASAN_CPATH=$(abspath $(BUILD))/lua5.4-asan/?.so \
		tests/tools/run-c.sh $(RESULTS)/zk $(ZK_TESTS)

test-config: all ## haproxy -c on every shipped configuration
	@tests/tools/run-c.sh $(RESULTS)/config $(sort $(wildcard tests/config/*_test.sh))

test-http: all $(ZKCTL) $(CONNFLOOD) ## the HTTP service against a real HAProxy and ZooKeeper
	@CONNFLOOD=$(abspath $(CONNFLOOD)) tests/tools/run-c.sh $(RESULTS)/http $(sort $(wildcard tests/http/*_test.sh))

test-monitoring: all $(ZKCTL) ## monitoring/: promtool check and test rules, the dashboard, their metric names on a live /metrics
	@tests/tools/run-c.sh $(RESULTS)/monitoring $(sort $(wildcard tests/monitoring/*_test.sh))

# the history checker of the drills and the chaos soak (a test tool: the product never uses it)
CHAOS_CHECK := $(BUILD)/chaos/check
$(CHAOS_CHECK): tests/chaos/check.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 $(WARN) -o $@ $< -lm

test-drills: all $(CHAOS_CHECK) ## failover drills: keepalived and HAProxy hosts in network namespaces
	@tests/drills/run-all.sh -q -r $(RESULTS)/drills

drill: deps all $(CHAOS_CHECK) ## run the failover drills and print each drill's figures
	@tests/drills/run-all.sh

# the chaos soak: SECONDS (default 600) of a seeded random mix of every fault, then the history
# checker; SEED= replays a run (tests/chaos/chaos.sh prints its seed first)
CHAOS_SECONDS := $(if $(SECONDS),$(SECONDS),600)
chaos: deps all $(CHAOS_CHECK) ## every fault at once for SECONDS (600), SEED= to replay; report in build/chaos/report.html
	@tests/chaos/chaos.sh -s $(CHAOS_SECONDS) $(if $(SEED),-S $(SEED)) -o $(BUILD)/chaos

test-chaos: all $(CHAOS_CHECK) ## the history checker's and the report's tests, and a 90 s chaos with a fixed seed
	@tests/tools/run-c.sh $(RESULTS)/chaos $(sort $(wildcard tests/chaos/*_test.sh))

include tests/fuzz/fuzz.mk

# ---- lint ----------------------------------------------------------------

lint: ## shellcheck on every shell script, luacheck on every Lua file
	@tests/tools/run-lint.sh $(RESULTS)/lint

# ---- benchmarks ----------------------------------------------------------

$(BUILD)/bench/bench_core: tests/bench/bench_core.c $(CORE_A)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -O3 -I core -o $@ $< $(CORE_A) $(LDLIBS_CORE)

$(BUILD)/bench/chaos_history: tests/bench/chaos_history.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -o $@ $<

bench: deps $(BUILD)/bench/bench_core lua $(CHAOS_CHECK) $(BUILD)/bench/chaos_history $(CONNFLOOD) ## print the benchmark table (BENCH name value unit)
	@$(BUILD)/bench/bench_core $(BENCH_ROUNDS)
	@SNOWFLAKE_CLOCK_SOURCE=clock_gettime $(BUILD)/bench/bench_core $(BENCH_ROUNDS) clock_gettime | grep -v '^#'
	@tests/bench/http_bench.sh
	@tests/bench/hostile_bench.sh $(CONNFLOOD)
	@tests/bench/chaos_check_bench.sh $(CHAOS_CHECK) $(BUILD)/bench/chaos_history

# ---- running -------------------------------------------------------------

PORT ?= 8080
AUTH ?=
run: deps all ## start ZooKeeper and HAProxy serving the API on 127.0.0.1:$(PORT), in the foreground (AUTH=1: with ZooKeeper ACLs)
	@PORT=$(PORT) ZK_AUTH=$(AUTH) exec haproxy/run.sh

# ---- install -------------------------------------------------------------

# the Lua modules `make install` puts beside snowflake.lua (haproxy.lua is
# HAProxy's entry point, loaded from the tree by haproxy.cfg, not a module)
LUA_MODULES := $(addprefix lua/snowflake/,config.lua boot.lua ladder.lua http.lua metrics.lua service.lua cli.lua)

install: all ## install the library, headers and Lua modules under $(DESTDIR)$(PREFIX)
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/edge-snowflake
	install -m 0644 $(CORE_A) $(DESTDIR)$(PREFIX)/lib/libsnowflake.a
	install -m 0755 $(CORE_SO) $(DESTDIR)$(PREFIX)/lib/libsnowflake.so.0
	ln -sf libsnowflake.so.0 $(DESTDIR)$(PREFIX)/lib/libsnowflake.so
	install -m 0644 core/snowflake.h core/sf_lease.h $(DESTDIR)$(PREFIX)/include/edge-snowflake/
	@for v in $(LUA_VERSIONS); do \
		set -e; \
		install -d $(DESTDIR)$(PREFIX)/share/lua/$$v/snowflake $(DESTDIR)$(PREFIX)/lib/lua/$$v/snowflake; \
		install -m 0644 lua/snowflake.lua $(DESTDIR)$(PREFIX)/share/lua/$$v/snowflake.lua; \
		install -m 0644 $(LUA_MODULES) $(DESTDIR)$(PREFIX)/share/lua/$$v/snowflake/; \
		install -m 0755 $(BUILD)/lua$$v/snowflake/core.so $(DESTDIR)$(PREFIX)/lib/lua/$$v/snowflake/core.so; \
		echo "installed Lua $$v modules under $(DESTDIR)$(PREFIX)"; \
	done

# ---- the Debian package (debian.mk: make deb, make test-package) ----------

include debian.mk

# ---- set-up --------------------------------------------------------------

deps: ## install the missing Debian packages (idempotent; needs root)
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "deps: run as root to install:$$missing" >&2; exit 1; fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q --no-install-recommends $$missing >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $$missing; }; \
	fi

help: ## list the targets
	@grep -hE '^[a-z][a-zA-Z0-9_-]*:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  make %-12s %s\n", $$1, $$2}'

clean: ## remove build/
	rm -rf $(BUILD)

# every object's and test program's dependency file (-MMD writes one beside each output); not the
# Debian roots of test-package under build/package (their /etc/*.d are directories)
-include $(shell find $(BUILD) -path $(BUILD)/package -prune -o -name '*.d' -type f -print 2>/dev/null)
