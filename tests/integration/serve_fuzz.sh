#!/usr/bin/env bash
# serve_fuzz.sh - the libFuzzer target for zcio serve's HTTP code
# (fuzz/fuzz_http.c: request parser, Range parser, path normaliser, dates
# and entity tags), built with ASan and UBSan and run for 60 seconds
# (ZCIO_FUZZ_TIME) from the seed corpus in fuzz/corpus/http.  Any crash,
# sanitizer report or failed property fails the test.  Without clang and
# libFuzzer the test is skipped, visibly.
. "$(dirname "$0")/../lib.sh"

TIME=${ZCIO_FUZZ_TIME:-60}
NAME="fuzz_http for ${TIME}s"

if ! have "${CLANG:-clang}"; then
	skip "$NAME" "clang not installed"
	done_testing
fi
# libFuzzer ships with clang's runtime; probe for it rather than guess.
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' > "$T_TMP/probe.c"
if ! "${CLANG:-clang}" -fsanitize=fuzzer "$T_TMP/probe.c" -o "$T_TMP/probe" 2> "$T_TMP/probe.err"; then
	skip "$NAME" "no libFuzzer runtime: $(head -n 1 "$T_TMP/probe.err")"
	done_testing
fi
if ! make -C "$ROOT" --no-print-directory -s fuzz > "$T_TMP/build.log" 2>&1; then
	fail "fuzz target builds" "$(tail -n 20 "$T_TMP/build.log")"
	done_testing
fi
pass "fuzz target builds"

FUZZ=$ROOT/build/fuzz/fuzz_http
SEEDS=$ROOT/fuzz/corpus/http
nseeds=$(ls "$SEEDS" | wc -l)
mkdir -p "$T_TMP/corpus" "$T_TMP/crash"
# Every seed first, on its own: they must all pass as they are.
if "$FUZZ" -runs=0 -artifact_prefix="$T_TMP/crash/" "$SEEDS" > "$T_TMP/seeds.log" 2>&1; then
	pass "the $nseeds seeds run clean"
else
	fail "the $nseeds seeds run clean" "$(grep -m 5 -E 'ERROR|property|SUMMARY' "$T_TMP/seeds.log")"
fi

rm -f "$T_TMP"/crash/*
# New inputs go to a scratch corpus; the committed seeds are only read.
"$FUZZ" -max_total_time="$TIME" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
	-artifact_prefix="$T_TMP/crash/" "$T_TMP/corpus" "$SEEDS" > "$T_TMP/fuzz.log" 2>&1
rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$T_TMP/fuzz.log")
cov=$(grep -oE 'cov: [0-9]+' "$T_TMP/fuzz.log" | tail -n 1)
echo "# $NAME: ${runs:-?} inputs, ${cov:-no coverage line}"
if [ "$rc" = 0 ] && [ -z "$(ls "$T_TMP/crash")" ] && [ "${runs:-0}" -gt 1000 ]; then
	pass "$NAME: no crash in ${runs} inputs"
else
	fail "$NAME: no crash" "status $rc, $(ls "$T_TMP/crash" | head -n 3 | tr '\n' ' ')$(grep -m 8 -E 'ERROR|property|SUMMARY|#0 |#1 |#2 ' "$T_TMP/fuzz.log")"
	for f in "$T_TMP"/crash/*; do
		[ -f "$f" ] && echo "# crashing input (hex): $(od -An -tx1 -N 256 "$f" | tr -d '\n')"
	done
fi
done_testing
