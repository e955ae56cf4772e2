# Parley build. `make run` and `make test` are the two commands that matter;
# both install what is missing first (scripts/deps.sh, the only script that
# installs anything; make bench too, with `deps.sh bench`). See README.md.

CC      ?= cc
PKGS    := libuv jansson hiredis libutf8proc sqlite3 libcrypto libcurl
PORT    ?= 8080
SANITIZE ?=

ifeq ($(SANITIZE),1)
BUILD   ?= build-asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT     := -O1
else
BUILD   ?= build
SANFLAGS :=
OPT     := -O2
endif

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
ifeq ($(CI),true)
WARN    += -Werror
endif
ifeq ($(WERROR),1)
WARN    += -Werror
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS  += -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) $(SANFLAGS) $(PKG_CFLAGS) -Isrc -MMD -MP
LDFLAGS += $(SANFLAGS)
LDLIBS  += $(PKG_LIBS) -lhttp_parser -lm

LIB_SRC  := $(sort $(shell find src -name '*.c' ! -path src/main.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
CONF_BIN := $(BUILD)/conformance-server
# Programs run against a live Redis Cluster by tests/redis/run.sh: every
# tests/redis/NAME.c is one, built into $(BUILD)/tests/redis/NAME.
REDIS_SRC := $(sort $(wildcard tests/redis/*.c))
REDIS_BIN := $(REDIS_SRC:tests/redis/%.c=$(BUILD)/tests/redis/%)
# The benchmark's load generator: plain libc + epoll, no library.
LOADGEN_SRC := $(sort $(wildcard bench/loadgen/*.c))
LOADGEN     := $(BUILD)/bench/loadgen

.PHONY: bench bench-scale bench-smoke
.PHONY: all deps deps-test deps-bench web run test test-unit test-integration test-python test-redis \
        conformance conformance-server clean fuzz fuzz-build help install uninstall

all: $(BUILD)/parley

help:
	@echo "make            build $(BUILD)/parley"
	@echo "make run        install what is missing, build everything, serve on :$(PORT)"
	@echo "make test       install test needs, run every test (SANITIZE=1 for ASan+UBSan)"
	@echo "make conformance CONFORMANCE_DIR=..   run the official protocol suites"
	@echo "make fuzz       run every libFuzzer target FUZZ_SECONDS (20) each"
	@echo "make bench      parley vs the Node.js socket.io peer (about 15 minutes)"
	@echo "make deps | deps-test | deps-bench   install what building | testing | benchmarking needs"

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libparley.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/parley: $(BUILD)/src/main.o $(BUILD)/libparley.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libparley.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(BUILD)/libparley.a $(LDLIBS) -lcmocka -o $@

$(BUILD)/tests/redis/%: tests/redis/%.c $(BUILD)/libparley.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(BUILD)/libparley.a $(LDLIBS) -o $@

$(CONF_BIN): tests/conformance/server.c $(BUILD)/libparley.a
	$(CC) $(CFLAGS) $(LDFLAGS) $< $(BUILD)/libparley.a $(LDLIBS) -o $@

$(LOADGEN): $(LOADGEN_SRC) $(wildcard bench/loadgen/*.h)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -g -O2 $(WARN) $(LOADGEN_SRC) -o $@

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

deps-bench:
	@scripts/deps.sh bench

web: deps
	@scripts/build-web.sh

run: deps
	$(MAKE) all web
	./$(BUILD)/parley --port $(PORT) --static web/dist

# Parallel jobs of the builds that `make test` and `make fuzz` start.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

# What `make test` builds before it runs anything, in parallel. The
# benchmark smoke run uses build/parley whatever SANITIZE says
# (scripts/bench-lib.sh), so the sanitizer pass leaves it (and the load
# generator) to the plain one. Recipes marked + run scripts that call make
# themselves (tests/redis/run.sh, scripts/bench-lib.sh,
# scripts/cluster-up.sh): they share its jobserver.
TEST_BUILD := all web $(CONF_BIN) $(UNIT_BIN) $(REDIS_BIN)
ifneq ($(SANITIZE),1)
TEST_BUILD += $(LOADGEN)
endif
test: deps-test
	$(MAKE) -j$(JOBS) $(TEST_BUILD)
ifeq ($(SANITIZE),1)
	@echo "== bench smoke: skipped with SANITIZE=1 (it runs build/parley, not $(BUILD)/parley; the plain make test runs it)"
else
	+@scripts/bench.sh --smoke
endif
	+@scripts/test.sh

test-unit: $(UNIT_BIN)
	+@scripts/test.sh unit

test-integration: all $(CONF_BIN)
	+@scripts/test.sh integration

test-redis: $(REDIS_BIN)
	+@scripts/test.sh redis

conformance-server: $(CONF_BIN)
	./$(CONF_BIN) --port $${PORT:-3000}

conformance: $(CONF_BIN)
	@scripts/conformance.sh "$(CONFORMANCE_DIR)"

# libFuzzer targets: every tests/fuzz/fuzz_NAME.c, linked with the whole
# library built by clang with the fuzzer, ASan and UBSan instrumentation.
# make fuzz runs each for FUZZ_SECONDS, FUZZ_JOBS of them at a time (one
# per core by default; each is one process).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 20
FUZZ_JOBS    ?= $(JOBS)
FUZZ_FLAGS   := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer-no-link,address,undefined \
                $(PKG_CFLAGS) -Isrc
FUZZ_SRC     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN     := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
FUZZ_OBJ     := $(LIB_SRC:%.c=build-fuzz/%.o)

build-fuzz/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -c $< -o $@

build-fuzz/libparley.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c build-fuzz/libparley.a
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $< build-fuzz/libparley.a $(LDLIBS) -o $@

fuzz-build: deps-test
	$(MAKE) -j$(JOBS) $(FUZZ_BIN)

fuzz: fuzz-build
	@FUZZ_JOBS=$(FUZZ_JOBS) scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

# make install [PREFIX=/usr/local] [DESTDIR=]: the binary, the web UI built
# by `make web` (skipped with a note when web/dist is missing), the man page
# printed by the binary itself from its option table, and the example
# config. The installed server does not look for the web UI by itself: the
# config file (deploy/parley.conf.example) names it with `static = ...`.
PREFIX  ?= /usr/local
DESTDIR ?=
INSTALL_BIN  = $(DESTDIR)$(PREFIX)/bin
INSTALL_WEB  = $(DESTDIR)$(PREFIX)/share/parley/web
INSTALL_MAN1 = $(DESTDIR)$(PREFIX)/share/man/man1
INSTALL_DOC  = $(DESTDIR)$(PREFIX)/share/doc/parley

install: $(BUILD)/parley
	install -d "$(INSTALL_BIN)" "$(INSTALL_MAN1)" "$(INSTALL_DOC)"
	install -m 0755 $(BUILD)/parley "$(INSTALL_BIN)/parley"
	$(BUILD)/parley --print-man > "$(INSTALL_MAN1)/parley.1.tmp"
	mv -f "$(INSTALL_MAN1)/parley.1.tmp" "$(INSTALL_MAN1)/parley.1"
	chmod 0644 "$(INSTALL_MAN1)/parley.1"
	install -m 0644 deploy/parley.conf.example "$(INSTALL_DOC)/parley.conf.example"
	@if [ -d web/dist ]; then \
	    rm -rf "$(INSTALL_WEB)" && install -d "$(INSTALL_WEB)" && \
	    cp -R web/dist/. "$(INSTALL_WEB)/" && \
	    find "$(INSTALL_WEB)" -type d -exec chmod 0755 {} + && \
	    find "$(INSTALL_WEB)" -type f -exec chmod 0644 {} + && \
	    echo "installed the web UI in $(INSTALL_WEB)"; \
	else \
	    echo "note: web/dist does not exist (run make web first); web UI not installed" >&2; \
	fi

uninstall:
	rm -f "$(INSTALL_BIN)/parley" "$(INSTALL_MAN1)/parley.1" "$(INSTALL_DOC)/parley.conf.example"
	rm -rf "$(INSTALL_WEB)"
	rmdir "$(INSTALL_DOC)" "$(DESTDIR)$(PREFIX)/share/parley" 2>/dev/null || true

# Benchmarks (docs/BENCHMARKS.md): parley against the Node.js socket.io peer.
bench: deps-bench
	+@scripts/bench.sh

bench-scale: deps-bench
	+@scripts/bench-scale.sh

bench-smoke: all $(LOADGEN)
	+@scripts/bench.sh --smoke

# The local cluster (docs/OPERATIONS.md, "Cluster"): 6 Redis nodes, two
# backends and NGINX on loopback; ports and CLUSTER_DIR from the environment.
.PHONY: cluster-up cluster-down
cluster-up: deps-test
	$(MAKE) all web
	+@scripts/cluster-up.sh

cluster-down:
	@scripts/cluster-down.sh

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJ:.o=.d) $(BUILD)/src/main.d $(wildcard $(BUILD)/tests/*.d $(BUILD)/tests/redis/*.d)
