#!/usr/bin/env bash
# zc_thresholds.sh - the thresholds file: where the library looks for it,
# how it reads it (comments, unknown keys, suffixes, "never", bad values),
# that zcio_copy() really uses its "copy" key (and ZCIO_COPY_THRESHOLD
# still wins), and that `zcio calibrate` writes it, keeping the keys it
# did not measure.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"

need_cli || done_testing
need_helpers || done_testing
unset ZCIO_COPY_THRESHOLD

# shown NAME OUTPUT KEY VALUE: `calibrate --show` lists KEY with VALUE.
shown() {
	if grep -qE "^$3 +$4\$" <<<"$2"; then pass "$1"; else fail "$1" "$(tr '\n' ' ' <<<"$2")"; fi
}

# ---- where the file comes from --------------------------------------------

out=$(ZCIO_THRESHOLDS= "$ZCIO" calibrate --show)
shown "ZCIO_THRESHOLDS empty: built-in copy threshold" "$out" copy 16k
shown "ZCIO_THRESHOLDS empty: built-in memory_file" "$out" memory_file never
if grep -qx "source: built-in (no thresholds file read)" <<<"$out"; then
	pass "ZCIO_THRESHOLDS empty: no file read"
else
	fail "ZCIO_THRESHOLDS empty: no file read" "$(head -n 1 <<<"$out")"
fi
out=$(ZCIO_THRESHOLDS=$T_TMP/missing "$ZCIO" calibrate --show)
shown "a missing file: built-in values" "$out" memory_socket 64k

mkdir -p "$T_TMP/home/.config/zcio"
printf 'memory_pipe 48k\n' >"$T_TMP/home/.config/zcio/thresholds"
out=$(env -u ZCIO_THRESHOLDS HOME=$T_TMP/home "$ZCIO" calibrate --show)
shown "without ZCIO_THRESHOLDS: ~/.config/zcio/thresholds" "$out" memory_pipe 48k

# ---- what it reads ----------------------------------------------------------

cat >"$T_TMP/thr" <<'EOF'
# a comment

copy             64k    # a comment after the value
file_pipe        2M
memory_socket    never
memory_pipe      123
socket_socket    lots
a_future_key     7
memory_file      1G
EOF
out=$(ZCIO_THRESHOLDS=$T_TMP/thr "$ZCIO" calibrate --show)
shown "k suffix, trailing comment" "$out" copy 64k
shown "M suffix" "$out" file_pipe 2M
shown "never" "$out" memory_socket never
shown "plain bytes" "$out" memory_pipe 123
shown "G suffix" "$out" memory_file 1024M
shown "a bad value keeps the built-in one" "$out" socket_socket 256k
shown "a missing key keeps the built-in one" "$out" file_socket 256k
if grep -qx "source: $T_TMP/thr" <<<"$out"; then pass "source names the file"
else fail "source names the file" "$(head -n 1 <<<"$out")"; fi

# ---- zcio_copy() uses "copy" ------------------------------------------------

"$ZGEN" 20k 5 >"$T_TMP/f20k"
printf 'copy 64k\n' >"$T_TMP/big"
printf 'copy 4k\n' >"$T_TMP/small"
ZCIO_THRESHOLDS=$T_TMP/big "$ZCOPY" "$T_TMP/f20k" - 2>"$T_TMP/e1" | cat >"$T_TMP/o1"
same_bytes "copy 64k: a 20 KiB file copied to a pipe" "$T_TMP/f20k" "$T_TMP/o1"
expect_bytes "copy 64k: 20 KiB is below it: read/write" "$T_TMP/e1" copy 20480
ZCIO_THRESHOLDS=$T_TMP/small "$ZCOPY" "$T_TMP/f20k" - 2>"$T_TMP/e2" | cat >"$T_TMP/o2"
same_bytes "copy 4k: a 20 KiB file to a pipe" "$T_TMP/f20k" "$T_TMP/o2"
expect_bytes "copy 4k: 20 KiB is above it: splice" "$T_TMP/e2" splice 20480
ZCIO_COPY_THRESHOLD=65536 ZCIO_THRESHOLDS=$T_TMP/small "$ZCOPY" "$T_TMP/f20k" - 2>"$T_TMP/e3" | cat >/dev/null
expect_bytes "ZCIO_COPY_THRESHOLD overrides the file" "$T_TMP/e3" copy 20480
out=$(ZCIO_COPY_THRESHOLD=65536 ZCIO_THRESHOLDS=$T_TMP/small "$ZCIO" calibrate --show)
shown "zcio_threshold(copy) reports the override" "$out" copy 64k

# ---- calibrate writes it ------------------------------------------------------

f=$T_TMP/cal/sub/thresholds
if timeout 120 "$ZCIO" calibrate --quick --routes memory_pipe -o "$f" >"$T_TMP/c1.out" 2>"$T_TMP/c1.err" &&
	timeout 120 "$ZCIO" calibrate --quick --routes file_pipe -o "$f" >"$T_TMP/c2.out" 2>"$T_TMP/c2.err"; then
	if grep -qE '^memory_pipe +([0-9]+[kMG]?|never) +# from an earlier run$' "$f" &&
		grep -qE '^file_pipe +([0-9]+[kMG]?|never)$' "$f"; then
		pass "calibrate: writes the file (making its directory), keeps keys it did not measure"
	else
		fail "calibrate: keeps keys it did not measure" "$(tr '\n' '|' <"$f")"
	fi
	out=$(ZCIO_THRESHOLDS=$f "$ZCIO" calibrate --show)
	if grep -qx "source: $f" <<<"$out"; then pass "calibrate's file is read back"
	else fail "calibrate's file is read back" "$(tr '\n' ' ' <<<"$out")"; fi
	ls "$(dirname "$f")" | grep -q tmp && fail "calibrate leaves no temporary file" "$(ls "$(dirname "$f")")" ||
		pass "calibrate leaves no temporary file"
else
	fail "calibrate --quick --routes" "$(tail -n 3 "$T_TMP/c1.err" "$T_TMP/c2.err" | tr '\n' ' ')"
fi
if "$ZCIO" calibrate --routes nosuchkey -n >/dev/null 2>&1; then
	fail "calibrate --routes rejects unknown keys" "exit 0"
else
	pass "calibrate --routes rejects unknown keys"
fi
out=$(ZCIO_THRESHOLDS= "$ZCIO" calibrate --quick --routes memory_socket_uring 2>&1)
rc=$?
if [ $rc != 0 ] && grep -q "no thresholds file" <<<"$out"; then
	pass "calibrate with ZCIO_THRESHOLDS empty and no --output: an error, nothing written"
else
	fail "calibrate with nowhere to write" "exit $rc: $(tr '\n' ' ' <<<"$out")"
fi

done_testing
