# fuzz/fuzz.mk - libFuzzer targets (`make fuzz` runs this file).
#
#   make fuzz                  build build/fuzz/fuzz_http
#   make -f fuzz/fuzz.mk run   build it, then fuzz for FUZZ_TIME seconds
#
# Needs clang with libFuzzer (Debian: clang).  Each target is built with
# AddressSanitizer and UndefinedBehaviorSanitizer; a crash, a sanitizer
# report or a failed property stops the run with a non-zero status and a
# crash-* file holding the input.  The seed corpus in fuzz/corpus/ is only
# read: new inputs go to a scratch directory.

CLANG     ?= clang
FUZZ_B    := build/fuzz
FUZZ_TIME ?= 60
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -Itools/zcio -Iinclude \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer -Wall -Wextra

HTTP_SRC := tools/zcio/http.c tools/zcio/http_path.c tools/zcio/http_field.c

.PHONY: all run
all: $(FUZZ_B)/fuzz_http

$(FUZZ_B)/fuzz_http: fuzz/fuzz_http.c $(HTTP_SRC) tools/zcio/http.h fuzz/fuzz.mk
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ fuzz/fuzz_http.c $(HTTP_SRC)

run: $(FUZZ_B)/fuzz_http
	@mkdir -p $(FUZZ_B)/corpus-http
	$(FUZZ_B)/fuzz_http -max_total_time=$(FUZZ_TIME) -artifact_prefix=$(FUZZ_B)/ \
		$(FUZZ_B)/corpus-http fuzz/corpus/http
