#!/usr/bin/env bash
# sparse.sh - a 5 GiB sparse file with a few written regions (one across
# 4 GiB, one past it, one ending at the last byte): `zcio cat` streams all
# of it into a pipe (64-bit counts, offsets past 4 GiB), and `zcio cp`
# copies it without filling the holes.  Also: zcio cat stops at once, quiet,
# when its reader leaves early.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"

need_helpers || done_testing
need_cli || done_testing

BIG=$T_TMP/big
ERR=$T_TMP/err
SIZE=$((5 << 30))

if ! "$ZGEN" --sparse "$BIG" 5G > "$T_TMP/regions"; then
	fail "make a sparse file" "zgen --sparse failed"
	done_testing
fi
src_kib=$(du -k "$BIG" | cut -f1)
if [ "$src_kib" -gt 65536 ]; then
	skip "sparse files" "$(df --output=fstype "$T_TMP" | tail -n 1) does not keep holes (${src_kib} KiB used)"
	done_testing
fi
regions=$(wc -l < "$T_TMP/regions")
if [ "$regions" = 5 ]; then
	pass "sparse source has 5 regions, up to the last byte"
else
	fail "sparse source has 5 regions, up to the last byte" "got $regions"
fi

# cksum: CRC and length, several times faster than sha256 for 5 GiB.  The
# first read of the holes fills the page cache (the costly part), so zcio
# reads first and cksum then reads cached pages.
n="cat 5 GiB sparse -> pipe"
got=$(timeout 120 "$ZCIO" cat --stats "$BIG" 2> "$ERR" | cksum)
rc=${PIPESTATUS[0]}
want=$(cksum < "$BIG")
# Give the 5 GiB of cached zero pages back now (fadvise DONTNEED).
dd if="$BIG" iflag=nocache count=0 status=none 2>/dev/null
if [ "$rc" = 0 ] && [ "$got" = "$want" ]; then
	pass "$n: bytes"
else
	fail "$n: bytes" "status $rc, cksum '$got', want '$want'"
fi
expect_bytes "$n: total" "$ERR" total "$SIZE"
expect_bytes "$n: by splice" "$ERR" splice "$SIZE"
expect_quiet "$n: quiet" "$ERR"

for opt in "" --copy; do
	n="cp ${opt:+$opt }5 GiB sparse"
	rm -f "$T_TMP/copy"
	if ! timeout 120 "$ZCIO" cp --stats $opt "$BIG" "$T_TMP/copy" 2> "$ERR"; then
		fail "$n" "exit status $?: $(head -c 300 "$ERR")"
		continue
	fi
	size=$(size_of "$T_TMP/copy")
	if [ "$size" = "$SIZE" ]; then
		pass "$n: size"
	else
		fail "$n: size" "$size bytes, want $SIZE"
	fi
	dst_kib=$(du -k "$T_TMP/copy" | cut -f1)
	if [ "$dst_kib" -le $((src_kib + 1024)) ]; then
		pass "$n: stays sparse"
	else
		fail "$n: stays sparse" "copy uses $dst_kib KiB, source $src_kib KiB"
	fi
	# Same data extents at the same offsets, holding the same bytes: then
	# the files are equal, holes included, without reading 5 GiB again.
	"$HELPERS/zextents" "$BIG" > "$T_TMP/ext-src"
	if ! "$HELPERS/zextents" "$T_TMP/copy" > "$T_TMP/ext-dst"; then
		fail "$n: extents" "zextents failed"
	elif ! cmp -s "$T_TMP/ext-src" "$T_TMP/ext-dst"; then
		fail "$n: extents" "source: $(tr '\n' ' ' < "$T_TMP/ext-src")copy: $(tr '\n' ' ' < "$T_TMP/ext-dst")"
	else
		pass "$n: extents"
		bad=""
		while read -r off len; do
			[ "$off" = size ] && continue
			cmp -s -n "$len" -i "$off" "$BIG" "$T_TMP/copy" || bad+=" $off+$len"
		done < "$T_TMP/ext-src"
		if [ -z "$bad" ]; then
			pass "$n: bytes"
		else
			fail "$n: bytes" "extents differ:$bad"
		fi
	fi
	# Only the data extents move; the filesystem rounds them to blocks.
	moved=$(stat_bytes "$ERR" total)
	if [ "$moved" -gt 0 ] && [ "$moved" -lt $((2 << 20)) ]; then
		pass "$n: only data moved"
	else
		fail "$n: only data moved" "total $moved bytes [$STATS_LINES]"
	fi
	rm -f "$T_TMP/copy"
done

done_testing
