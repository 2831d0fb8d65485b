# Fuzzing (README "Fuzzing"), included by the Makefile: the libFuzzer targets tests/fuzz/fuzz_*.c
# (clang, ASan + UBSan) and the Lua config harness tests/fuzz/config_fuzz.lua.
#   make fuzz [FUZZ_SECONDS=60]   every target for FUZZ_SECONDS each: "FUZZ <target> execs N crashes N"
#   make test-fuzz                the same for FUZZ_TEST_SECONDS each, as ok/not ok checks (make test)
# Seeds and regression inputs: tests/fuzz/corpus/<target>/; what a run finds and its crash inputs
# stay under build/fuzz/ (tests/fuzz/run.sh says where).

FUZZ_CC           ?= clang
FUZZ_SECONDS      ?= 60
FUZZ_TEST_SECONDS ?= 2
# make test's seed: the same Lua cases every run (libFuzzer's mutations still vary with time)
FUZZ_TEST_SEED    ?= 1
FUZZ_DIR          := $(BUILD)/fuzz
FUZZ_TARGETS      := $(patsubst tests/fuzz/fuzz_%.c,%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_BINS         := $(addprefix $(FUZZ_DIR)/bin/fuzz_,$(FUZZ_TARGETS))
FUZZ_CORE_OBJ     := $(patsubst core/%.c,$(FUZZ_DIR)/obj/%.o,$(CORE_SRC))
FUZZ_CFLAGS        = $(CSTD) -O1 -g $(WARN) -pthread -fno-omit-frame-pointer \
                     -fsanitize=address,undefined -fno-sanitize-recover=all
# the HTTP argument targets run lua/snowflake/http.lua in an embedded Lua 5.3 (HAProxy's)
FUZZ_LUA_CFLAGS    = $(LUA_CFLAGS_5.3) -DHTTP_LUA='"$(abspath lua/snowflake/http.lua)"'
FUZZ_LUA_LIBS      = $(or $(shell pkg-config --libs lua5.3 2>/dev/null),-llua5.3)
FUZZ_RUN           = FUZZ_BIN_DIR=$(FUZZ_DIR)/bin FUZZ_WORK=$(FUZZ_DIR) FUZZ_LUA_VERSIONS="$(LUA_VERSIONS)" \
                     BUILD=$(BUILD)

.PHONY: fuzz test-fuzz fuzz-build

# the core once with coverage, for every target
$(FUZZ_DIR)/obj/%.o: core/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_DIR)/bin/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) $(FUZZ_CORE_OBJ)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -I core $(FUZZ_LUA_CFLAGS) -o $@ $< $(FUZZ_CORE_OBJ) \
		$(LDLIBS_CORE) $(FUZZ_LUA_LIBS)

fuzz-build: $(FUZZ_BINS) lua ## build the fuzz targets into build/fuzz/bin

fuzz: deps fuzz-build ## every fuzz target for FUZZ_SECONDS (60) each: "FUZZ <target> execs N crashes N"
	@$(FUZZ_RUN) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_OUTPUT=fuzz $(if $(FUZZ_SEED),FUZZ_SEED=$(FUZZ_SEED)) \
		tests/fuzz/run.sh

test-fuzz: fuzz-build ## every fuzz target for FUZZ_TEST_SECONDS (2) each, as checks
	@$(FUZZ_RUN) FUZZ_SECONDS=$(FUZZ_TEST_SECONDS) FUZZ_OUTPUT=tap FUZZ_SEED=$(FUZZ_TEST_SEED) \
		tests/tools/run-c.sh $(RESULTS)/fuzz tests/fuzz/run.sh
