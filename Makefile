# zcio: GNU Make build.
#
#   make            library (shared + static), the zcio CLI, examples
#   make test       install missing Debian packages, build, run every test
#   make demo       install missing Debian packages, build, run a short benchmark
#   make install PREFIX=/usr/local DESTDIR=
#
# New files need no edits here: src/*.c form the library, tools/zcio/*.c the
# CLI, tests/unit/*.c one test program each, examples/*.c one program each.

VERSION    := 0.1.0
SOVERSION  := 0
PREFIX     ?= /usr/local
DESTDIR    ?=
LIBDIR     ?= $(PREFIX)/lib
BINDIR     ?= $(PREFIX)/bin
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig

CC      ?= cc
AR      ?= ar
B       := build

WARN    := -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes -Wshadow \
           -Wvla -Wformat=2
ifneq ($(WERROR),)
WARN    += -Werror
endif
# CI builds with -Werror (WERROR=1 is set by .ci/run).
OPT     ?= -O2 -g
BASE_CFLAGS := -std=gnu11 $(OPT) $(WARN) -D_GNU_SOURCE -pthread $(CFLAGS)
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

LIB_SRC := $(sort $(wildcard src/*.c))
CLI_SRC := $(sort $(wildcard tools/zcio/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
EX_SRC  := $(sort $(wildcard examples/*.c))
HELPER_SRC := $(sort $(wildcard tests/helpers/*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))
FUZZ_SRC := $(sort $(wildcard fuzz/*.c))

LIB_OBJ := $(LIB_SRC:%.c=$(B)/obj/%.o)
LIB_SAN_OBJ := $(LIB_SRC:%.c=$(B)/asan/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(B)/obj/%.o)

SONAME  := libzcio.so.$(SOVERSION)
SHLIB   := $(B)/libzcio.so.$(VERSION)
STLIB   := $(B)/libzcio.a
STLIB_SAN := $(B)/asan/libzcio.a
CLI     := $(B)/zcio
CLI_SAN := $(B)/asan/zcio
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
UNIT_SAN_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/asan/tests/%)
EX_BIN  := $(EX_SRC:examples/%.c=$(B)/examples/%)
HELPER_BIN := $(HELPER_SRC:tests/helpers/%.c=$(B)/helpers/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(B)/bench/%)

# liburing is optional at build time: the io_uring backend is compiled in
# only when its header is present (scripts/deps installs it on Debian).
HAVE_LIBURING := $(shell echo 'int main(void){return 0;}' | \
	$(CC) -include liburing.h -x c - -o /dev/null -luring >/dev/null 2>&1 && echo 1)
ifeq ($(HAVE_LIBURING),1)
LIB_DEFS := -DZCIO_HAVE_LIBURING=1
LIB_LIBS := -luring
endif
LIB_LIBS += -pthread

# The library sees its own headers; everything else sees only include/.
LIB_CFLAGS := $(BASE_CFLAGS) -fPIC -fvisibility=hidden -Iinclude -Isrc $(LIB_DEFS)
# LIB_DEFS: the CLI's own io_uring code (relay --uring) is built with liburing too.
CLI_CFLAGS := $(BASE_CFLAGS) -Iinclude $(LIB_DEFS)
# Unit tests may reach internals (src/*.h) to test them directly.
UNIT_CFLAGS := $(BASE_CFLAGS) -Iinclude -Isrc -Itests/unit $(LIB_DEFS)

.PHONY: all lib cli test unit demo install uninstall clean deps examples bench-tools fuzz helpers check-installed
all: lib cli examples helpers bench-tools

lib: $(SHLIB) $(B)/$(SONAME) $(B)/libzcio.so $(STLIB)
cli: $(CLI)
examples: $(EX_BIN)
helpers: $(HELPER_BIN)
bench-tools: $(BENCH_BIN)

$(B)/obj/src/%.o: src/%.c $(wildcard src/*.h) include/zcio.h
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(B)/asan/src/%.o: src/%.c $(wildcard src/*.h) include/zcio.h
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) $(SAN) -c $< -o $@

$(SHLIB): $(LIB_OBJ) src/libzcio.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=src/libzcio.map \
		-Wl,-z,defs -Wl,-z,relro -Wl,-z,now -o $@ $(LIB_OBJ) $(LIB_LIBS) $(LDFLAGS)

$(B)/$(SONAME): $(SHLIB)
	ln -sf $(notdir $(SHLIB)) $@
$(B)/libzcio.so: $(B)/$(SONAME)
	ln -sf $(SONAME) $@

$(STLIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(STLIB_SAN): $(LIB_SAN_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@
	$(AR) rcs $@ $^

# The CLI links the static library so build/zcio runs from anywhere.
$(B)/obj/tools/zcio/%.o: tools/zcio/%.c $(wildcard tools/zcio/*.h) include/zcio.h
	@mkdir -p $(dir $@)
	$(CC) $(CLI_CFLAGS) -c $< -o $@

$(CLI): $(CLI_OBJ) $(STLIB)
	$(CC) $(BASE_CFLAGS) -o $@ $(CLI_OBJ) $(STLIB) $(LIB_LIBS) -lm $(LDFLAGS)

$(CLI_SAN): $(CLI_SRC) $(wildcard tools/zcio/*.h) $(STLIB_SAN)
	@mkdir -p $(dir $@)
	$(CC) $(CLI_CFLAGS) $(SAN) -o $@ $(CLI_SRC) $(STLIB_SAN) $(LIB_LIBS) -lm $(LDFLAGS)

$(B)/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(STLIB) -lcmocka $(LIB_LIBS) $(LDFLAGS)

$(B)/asan/tests/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(STLIB_SAN)
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) $(SAN) -o $@ $< $(STLIB_SAN) -lcmocka $(LIB_LIBS) $(LDFLAGS)

$(B)/examples/%: examples/%.c $(SHLIB) $(B)/libzcio.so
	@mkdir -p $(dir $@)
	$(CC) $(CLI_CFLAGS) -o $@ $< -L$(B) -lzcio -Wl,-rpath,'$$ORIGIN/..' $(LDFLAGS)

$(B)/helpers/%: tests/helpers/%.c $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(CLI_CFLAGS) -o $@ $< $(STLIB) $(LIB_LIBS) $(LDFLAGS)

# Benchmark reference programs use no part of zcio.
$(B)/bench/%: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -o $@ $< $(LDFLAGS)

deps:
	@scripts/deps

unit: $(UNIT_BIN) $(UNIT_SAN_BIN)

# Everything the test runner needs, normal and sanitized.
test: deps
	@$(MAKE) --no-print-directory all unit $(CLI_SAN)
	@tests/run

demo: deps
	@$(MAKE) --no-print-directory all
	@bench/run --demo

fuzz:
	@$(MAKE) --no-print-directory -f fuzz/fuzz.mk

install: lib cli
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
	install -m 644 include/zcio.h $(DESTDIR)$(INCLUDEDIR)/zcio.h
	install -m 755 $(SHLIB) $(DESTDIR)$(LIBDIR)/
	ln -sf $(notdir $(SHLIB)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libzcio.so
	install -m 644 $(STLIB) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(CLI) $(DESTDIR)$(BINDIR)/zcio
	install -m 644 man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 644 man/*.3 $(DESTDIR)$(MANDIR)/man3/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@LIBS_PRIVATE@|$(LIB_LIBS)|' \
	    zcio.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/zcio.pc

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/zcio.h $(DESTDIR)$(LIBDIR)/libzcio.* \
	      $(DESTDIR)$(BINDIR)/zcio $(DESTDIR)$(PKGCONFIGDIR)/zcio.pc
	for m in man/*.1; do rm -f $(DESTDIR)$(MANDIR)/man1/$${m#man/}; done
	for m in man/*.3; do rm -f $(DESTDIR)$(MANDIR)/man3/$${m#man/}; done

clean:
	rm -rf $(B)
