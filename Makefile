# slotd: build, test, demo, install.
#
#   make            build slotd (and the tools) into build/
#   make check      install missing Debian packages, build, run every test,
#                   then the same suite under ASan + UBSan
#   make demo       a private redis-server, slotd and workers: routing, a failover, a join
#   make bench      the benchmark (see docs/performance.md)
#
# SAN=1 builds with AddressSanitizer + UndefinedBehaviorSanitizer into build/san.

VERSION := 0.1.0
PREFIX  ?= /usr/local
DESTDIR ?=
SAN     ?= 0

ifeq ($(SAN),1)
BUILD   ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT     ?= -O1 -g
else
BUILD   ?= build
SANFLAGS :=
OPT     ?= -O2 -g
endif

CC      ?= cc
PKGS    := hiredis libevent yaml-0.1 jansson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wno-format-nonliteral -Wpointer-arith -Wcast-qual -Wundef
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -MMD -MP $(OPT) $(WARN) $(SANFLAGS) \
              -DSLOTD_VERSION='"$(VERSION)"' -Isrc $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS := $(SANFLAGS) $(LDFLAGS)

# Every src/*.c but the programs' mains goes into one archive that the
# programs and the tests link against.
MAINS   := src/slotd.c src/worker.c src/slotctl.c
CORE_SRC := $(filter-out $(MAINS),$(wildcard src/*.c))
CORE_OBJ := $(CORE_SRC:src/%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/dashboard.o
CORE_LIB := $(BUILD)/libslotdcore.a

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
ITEST_SRC := $(wildcard tests/integration/test_*.c)
ITEST_BIN := $(ITEST_SRC:tests/integration/%.c=$(BUILD)/tests/integration/%)
SCRIPT_TESTS := $(wildcard tests/scripts/test_*.sh)
HARNESS_OBJ := $(BUILD)/obj/tests/harness.o $(BUILD)/obj/tests/env.o $(BUILD)/obj/tests/load.o \
               $(BUILD)/obj/tests/harness_cluster.o $(BUILD)/obj/tests/syncworker.o

PROGS   := $(BUILD)/slotd $(BUILD)/slotd-worker $(BUILD)/slotctl $(BUILD)/libslotd.a

# libslotd: the worker and producer library and what it needs, for C programs to link.
LIB_OBJ := $(addprefix $(BUILD)/obj/,slotd_worker.o slotd_producer.o dial.o sentinel.o cluster.o deadletter.o base64.o bytes.o utf8.o keys.o keyslot.o crc16.o slotmap.o route.o taskkey.o clock.o)

.SECONDARY:
.PHONY: all deps deps-build fuzz bench check test unit integration demo bench clean install uninstall
all: $(PROGS)

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# The dashboard page, turned into a C string.
$(BUILD)/gen/dashboard.c: src/dashboard.html
	@mkdir -p $(dir $@)
	awk 'BEGIN { print "/* generated from src/dashboard.html */"; print "const char dashboard_html[] =" } \
	     { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); print "\"" $$0 "\\n\"" } END { print ";" }' $< > $@

$(BUILD)/obj/gen/dashboard.o: $(BUILD)/gen/dashboard.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-variable-declarations -c -o $@ $<

$(CORE_LIB): $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/slotd: $(BUILD)/obj/slotd.o $(CORE_LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(BUILD)/slotd-worker: $(BUILD)/obj/worker.o $(CORE_LIB)
	$(CC) $(ALL_LDFLAGS) -pthread -o $@ $^ $(PKG_LIBS) -lm

$(BUILD)/slotctl: $(BUILD)/obj/slotctl.o $(CORE_LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(BUILD)/libslotd.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/obj/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Itests -c -o $@ $<

$(BUILD)/obj/tests/unit/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Itests -c -o $@ $<

$(BUILD)/obj/tests/integration/%.o: tests/integration/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Itests -c -o $@ $<

$(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -pthread -o $@ $^ $(PKG_LIBS) $(CHECK_LIBS) -lm

$(BUILD)/tests/integration/%: $(BUILD)/obj/tests/integration/%.o $(HARNESS_OBJ) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -pthread -o $@ $^ $(PKG_LIBS) $(CHECK_LIBS) -lm

# The benchmark: see docs/performance.md. BENCH_TASKS=N for a smaller run.
$(BUILD)/bench: $(BUILD)/obj/tests/bench/bench.o $(BUILD)/obj/tests/bench/benchutil.o \
                $(BUILD)/obj/tests/harness.o $(CORE_LIB)
	$(CC) $(ALL_LDFLAGS) -pthread -o $@ $^ $(PKG_LIBS) $(CHECK_LIBS) -lm

# Its cluster mode: one namespace in 1, 2 and 3 shards on a Redis Cluster.
$(BUILD)/bench-cluster: $(BUILD)/obj/tests/bench/bench_cluster.o \
                        $(BUILD)/obj/tests/bench/benchutil.o $(BUILD)/obj/tests/harness.o \
                        $(BUILD)/obj/tests/harness_cluster.o $(CORE_LIB)
	$(CC) $(ALL_LDFLAGS) -pthread -o $@ $^ $(PKG_LIBS) $(CHECK_LIBS) -lm

$(BUILD)/obj/tests/bench/%.o: tests/bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Itests -c -o $@ $<

# For the bench only: slotd without the commit script's checks, to measure
# what they cost side by side (never installed).
$(BUILD)/obj/bench/dispatch-unchecked.o: src/dispatch.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DSLOTD_BENCH_UNCHECKED -c -o $@ $<

$(BUILD)/slotd-unchecked: $(BUILD)/obj/slotd.o $(BUILD)/obj/bench/dispatch-unchecked.o $(CORE_LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

# For the lease and shard tests only: slotd with test hooks that stop it
# between a transaction's pushes and its commit, or kill it between a
# forwarded batch's two writes (never installed).
$(BUILD)/obj/test/dispatch-testhooks.o: src/dispatch.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DSLOTD_TESTING -c -o $@ $<

$(BUILD)/obj/test/forward-testhooks.o: src/forward.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DSLOTD_TESTING -c -o $@ $<

$(BUILD)/slotd-testhooks: $(BUILD)/obj/slotd.o $(BUILD)/obj/test/dispatch-testhooks.o \
                          $(BUILD)/obj/test/forward-testhooks.o $(CORE_LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

bench: deps-build
	$(MAKE) all build/bench build/bench-cluster build/slotd-unchecked
	@if command -v npm >/dev/null; then sh tests/node-deps.sh; fi
	@BUILD=build build/bench
	@BUILD=build build/bench-cluster

deps:
	@sh tests/deps.sh check

deps-build:
	@sh tests/deps.sh build

# The test suite: unit tests, then integration tests against throwaway
# redis-servers. tests/run.sh prints one "N passed, N failed" line.
# SKIP_TESTS: tests left out of this run, as the tail of their path
# ("integration/test_x", "scripts/test_y.sh"); make check runs some once.
TEST_ALL := $(UNIT_BIN) $(ITEST_BIN) $(SCRIPT_TESTS)
TEST_RUN := $(filter-out $(addprefix %/,$(SKIP_TESTS)),$(TEST_ALL))

test: $(PROGS) $(UNIT_BIN) $(ITEST_BIN) build/bench build/bench-cluster build/slotd-unchecked \
      $(BUILD)/slotd-testhooks
	@BUILD=$(BUILD) sh tests/run.sh $(TEST_RUN)

unit: $(UNIT_BIN)
	@BUILD=$(BUILD) sh tests/run.sh $(UNIT_BIN)

integration: $(PROGS) $(ITEST_BIN)
	@BUILD=$(BUILD) sh tests/run.sh $(ITEST_BIN)

# Both builds run every unit and integration test, but for two kinds run
# once: the Sentinel suites (topologies of six processes; in the sanitized
# build, where they also look for memory errors) and the scripts that test
# no build of their own (they use build/, or none).
ONCE_SAN   := integration/test_sentinel integration/test_sentinel_sync integration/test_cluster \
              integration/test_cluster_sync
ONCE_PLAIN := $(addprefix scripts/,test_bench_smoke.sh test_install.sh test_fuzz_smoke.sh \
              test_units.sh test_python_client.sh test_node_client.sh)

check: deps
	$(MAKE) test SKIP_TESTS="$(ONCE_SAN)"
	$(MAKE) SAN=1 test SKIP_TESTS="$(ONCE_PLAIN)"

demo: deps-build
	$(MAKE) all
	@sh examples/demo.sh $(BUILD)

# Install. DESTDIR stages; an existing /etc/slotd/slotd.yaml is never overwritten.
# The TLS sidecar's unit is installed, not enabled; its example configuration
# goes to the docs (docs/operations.md, TLS).
BINDIR  := $(DESTDIR)$(PREFIX)/bin
LIBDIR  := $(DESTDIR)$(PREFIX)/lib
INCDIR  := $(DESTDIR)$(PREFIX)/include
MANDIR  := $(DESTDIR)$(PREFIX)/share/man
DOCDIR  := $(DESTDIR)$(PREFIX)/share/doc/slotd
UNITDIR := $(DESTDIR)/etc/systemd/system
ETCDIR  := $(DESTDIR)/etc/slotd

install: all
	install -d $(BINDIR) $(LIBDIR) $(INCDIR) $(MANDIR)/man1 $(MANDIR)/man3 $(MANDIR)/man5 $(MANDIR)/man8 \
	    $(DOCDIR) $(UNITDIR) $(ETCDIR)
	install -m 755 $(BUILD)/slotd $(BUILD)/slotd-worker $(BUILD)/slotctl $(BINDIR)
	install -m 644 $(BUILD)/libslotd.a $(LIBDIR)
	install -m 644 src/slotd_worker.h src/slotd_producer.h $(INCDIR)
	install -m 644 docs/man/slotctl.1 docs/man/slotd-worker.1 $(MANDIR)/man1
	install -m 644 docs/man/libslotd.3 $(MANDIR)/man3
	install -m 644 docs/man/slotd.yaml.5 $(MANDIR)/man5
	install -m 644 docs/man/slotd.8 $(MANDIR)/man8
	install -m 644 README.md docs/*.md conf/slotd.yaml conf/slotd-stunnel.conf $(DOCDIR)
	install -m 755 examples/tls-certs.sh $(DOCDIR)
	for u in systemd/slotd.service systemd/slotd@.service systemd/slotd-worker@.service \
	    systemd/slotd-stunnel.service; do \
	    sed 's|/usr/local/bin/|$(PREFIX)/bin/|g' "$$u" > $(UNITDIR)/$$(basename "$$u"); \
	    chmod 644 $(UNITDIR)/$$(basename "$$u"); done
	if [ -e $(ETCDIR)/slotd.yaml ]; then \
	    echo "keeping the existing $(ETCDIR)/slotd.yaml (the sample is in $(DOCDIR))"; \
	else install -m 644 conf/slotd.yaml $(ETCDIR)/slotd.yaml; fi

uninstall:
	rm -f $(BINDIR)/slotd $(BINDIR)/slotd-worker $(BINDIR)/slotctl $(LIBDIR)/libslotd.a \
	    $(INCDIR)/slotd_worker.h $(INCDIR)/slotd_producer.h $(MANDIR)/man1/slotctl.1 $(MANDIR)/man1/slotd-worker.1 \
	    $(MANDIR)/man3/libslotd.3 $(MANDIR)/man5/slotd.yaml.5 $(MANDIR)/man8/slotd.8 \
	    $(UNITDIR)/slotd.service $(UNITDIR)/slotd@.service $(UNITDIR)/slotd-worker@.service \
	    $(UNITDIR)/slotd-stunnel.service
	rm -rf $(DOCDIR)
	@echo "$(ETCDIR)/slotd.yaml is left in place"

clean:
	rm -rf build

# ---- taskkey: differential test and libFuzzer target (both use tests/oracle.c) ----
#   make fuzz         fuzz taskkey against jansson for FUZZ_TIME seconds (60)
#   make fuzz-smoke   the same for FUZZ_SMOKE_TIME seconds (10)
# New inputs are kept in build/fuzz-corpus; tests/fuzz/corpus holds the seeds.
$(BUILD)/tests/unit/test_taskkey_diff: $(BUILD)/obj/tests/oracle.o

FUZZ_TIME       ?= 60
FUZZ_SMOKE_TIME ?= 10
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -g -O1 $(WARN) -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=all -Isrc -Itests
FUZZ_ARGS  := -max_len=8192 -dict=tests/fuzz/taskkey.dict build/fuzz-corpus tests/fuzz/corpus

build/fuzz_taskkey: tests/fuzz/fuzz_taskkey.c tests/oracle.c tests/oracle.h src/taskkey.c src/taskkey.h \
                    src/utf8.c src/utf8.h
	@mkdir -p build
	clang $(FUZZ_FLAGS) -o $@ $(filter %.c,$^) $(shell pkg-config --cflags --libs jansson) -lm

.PHONY: fuzz fuzz-smoke
fuzz: deps build/fuzz_taskkey
	@mkdir -p build/fuzz-corpus
	build/fuzz_taskkey -max_total_time=$(FUZZ_TIME) $(FUZZ_ARGS)

fuzz-smoke: build/fuzz_taskkey
	@mkdir -p build/fuzz-corpus
	build/fuzz_taskkey -max_total_time=$(FUZZ_SMOKE_TIME) $(FUZZ_ARGS)
# ---- end of taskkey ------------------------------------------------------------

-include $(wildcard $(BUILD)/obj/*.d $(BUILD)/obj/test/*.d $(BUILD)/obj/tests/*.d $(BUILD)/obj/tests/*/*.d)
