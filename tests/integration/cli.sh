#!/usr/bin/env bash
# cli.sh - the zcio command behaves like cat(1) and cp(1) where it claims
# to: operands, "-", missing files, exit codes (0 ok, 1 runtime error, 2
# usage), messages; plus --help, `zcio help CMD`, --version, `zcio probe`,
# and man/zcio.1 being what the command tables produce now.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"

need_helpers || done_testing
need_cli || done_testing

cd "$T_TMP" || exit 1
umask 022
"$ZGEN" 3M 11 > a
"$ZGEN" 100k 12 > b
"$ZGEN" 50k 13 > c
: > empty
mkdir dir
OUT=$T_TMP/out
ERR=$T_TMP/err

# z EXPECTED_STATUS NAME ARGS...: run zcio ARGS (stdin from $STDIN, default
# /dev/null) with stdout to $OUT, stderr to $ERR; check the status.
z() {
	local want=$1 name=$2 rc=0
	shift 2
	timeout -k 5 60 "$ZCIO" "$@" < "${STDIN:-/dev/null}" > "$OUT" 2> "$ERR" || rc=$?
	if [ "$rc" = "$want" ]; then
		pass "$name: exit $want"
	else
		fail "$name: exit $want" "exit $rc; stderr: $(head -c 300 "$ERR" | tr '\n' '|')"
	fi
}

# out_is NAME FILES...: stdout was the concatenation of FILES.
out_is() {
	local name=$1
	shift
	cat "$@" > "$T_TMP/want"
	same_bytes "$name: output" "$T_TMP/want" "$OUT"
}

# err_is NAME TEXT: stderr was exactly TEXT (lines joined with \n).
err_is() {
	local got
	got=$(cat "$ERR")
	if [ "$got" = "$2" ]; then
		pass "$1: stderr"
	else
		fail "$1: stderr" "got '$(tr '\n' '|' < "$ERR")', want '$(printf '%s' "$2" | tr '\n' '|')'"
	fi
}

# err_has NAME REGEX: a stderr line matches the grep -E REGEX.
err_has() {
	if grep -Eq -- "$2" "$ERR"; then
		pass "$1: says '$2'"
	else
		fail "$1: says '$2'" "stderr: $(tr '\n' '|' < "$ERR" | head -c 300)"
	fi
}

# ---- cat: operands ------------------------------------------------------
n="cat a b c"
z 0 "$n" cat a b c
out_is "$n" a b c
err_is "$n" ""

n="cat with no operand reads stdin"
STDIN=b z 0 "$n" cat
out_is "$n" b

n="cat from a pipe on stdin, no operand"
"$ZGEN" 3M 11 | "$ZCIO" cat > "$OUT" 2> "$ERR"
check "$n: exit 0" [ "${PIPESTATUS[1]}" = 0 ]
out_is "$n" a

n="cat a - c, stdin a file"
STDIN=b z 0 "$n" cat a - c
out_is "$n" a b c

# A second "-" finds stdin at its end, as with cat(1).
n="cat - a -, stdin a file"
STDIN=b z 0 "$n" cat - a -
out_is "$n" b a

n="cat - a -, stdin a pipe"
cat b | "$ZCIO" cat - a - > "$OUT" 2> "$ERR"
check "$n: exit 0" [ "${PIPESTATUS[1]}" = 0 ]
out_is "$n" b a

n="cat empty file"
z 0 "$n" cat empty
out_is "$n" empty

n="cat a missing file among others"
z 1 "$n" cat a nosuch b
out_is "$n" a b
err_is "$n" "zcio: cat: nosuch: No such file or directory"

n="cat two missing files"
z 1 "$n" cat nosuch1 c nosuch2
out_is "$n" c
err_is "$n" "zcio: cat: nosuch1: No such file or directory
zcio: cat: nosuch2: No such file or directory"

n="cat a directory"
z 1 "$n" cat a dir b
out_is "$n" a b
err_is "$n" "zcio: cat: dir: Is a directory"

n="cat -- -file (operand after --)"
cp c ./-c
z 0 "$n" cat -- -c
out_is "$n" c

n="cat input file is output file"
cp b self
"$ZCIO" cat a self >> self 2> "$ERR"
check "$n: exit 1" [ "$?" = 1 ]
err_is "$n" "zcio: cat: self: input file is output file"
cat b a > "$T_TMP/want"
same_bytes "$n: file unchanged but for the other operand" "$T_TMP/want" self

n="cat to a full device"
"$ZCIO" cat a > /dev/full 2> "$ERR"
check "$n: exit 1" [ "$?" = 1 ]
err_has "$n" '^zcio: cat: .*No space left on device$'

n="cat with stdout closed"
"$ZCIO" cat a >&- 2> "$ERR"
check "$n: exit 1" [ "$?" = 1 ]
err_has "$n" '^zcio: cat: .*Bad file descriptor$'

n="cat --copy --stats"
z 0 "$n" cat --copy --stats a b
out_is "$n" a b
expect_bytes "$n: all copied" "$ERR" copy $(($(size_of a) + $(size_of b)))
expect_fallback "$n: says why" "$ERR" ' -> copy: copy requested at byte 0$'

n="cat -p (progress, stderr not a terminal)"
z 0 "$n" cat -p a
out_is "$n" a

# ---- cat: usage errors ----------------------------------------------------
n="cat unknown long option"
z 2 "$n" cat --bogus a
err_has "$n" "^zcio: cat: unrecognized option '--bogus'$"
err_has "$n" "^Try 'zcio cat --help'\.$"
check "$n: no output" [ ! -s "$OUT" ]

n="cat unknown short option"
z 2 "$n" cat -Z a
err_has "$n" "^zcio: cat: invalid option -- '?Z'?$"

n="cat bad --progress argument"
z 2 "$n" cat --progress=bogus a
err_has "$n" "bogus"

n="no command"
z 2 "$n"
err_has "$n" "^Try 'zcio --help'\.$"

n="unknown command"
z 2 "$n" bogus
err_has "$n" "^zcio: unknown command 'bogus'$"

n="unknown global option"
z 2 "$n" --bogus
err_has "$n" "bogus"

# ---- bench: option values are checked before anything runs -------------
for v in 0 0.01 61 x; do
	n="bench --row-seconds $v"
	z 2 "$n" bench --row-seconds "$v" send-sizes
	err_has "$n" "--row-seconds: not 0.05 to 60 seconds"
done

# ---- help, version --------------------------------------------------------
n="--help"
z 0 "$n" --help
for c in cat cp probe bench; do
	if grep -Eq "^  $c " "$OUT"; then
		pass "$n: lists $c"
	else
		fail "$n: lists $c" "$(head -c 300 "$OUT")"
	fi
done
check "$n: nothing on stderr" [ ! -s "$ERR" ]

n="cat --help"
z 0 "$n" cat --help
cp "$OUT" "$T_TMP/cat-help"
for o in --copy --stats --progress '\[FILE\|-\]'; do
	if grep -Eq -- "$o" "$OUT"; then
		pass "$n: mentions $o"
	else
		fail "$n: mentions $o" "$(head -c 300 "$OUT")"
	fi
done

n="help cat"
z 0 "$n" help cat
same_bytes "$n: same as cat --help" "$T_TMP/cat-help" "$OUT"

n="help cp"
z 0 "$n" help cp
"$ZCIO" cp --help > "$T_TMP/cp-help" 2>/dev/null
same_bytes "$n: same as cp --help" "$T_TMP/cp-help" "$OUT"

n="help with an unknown command"
z 2 "$n" help bogus

n="--help to a full device"
"$ZCIO" --help > /dev/full 2> "$ERR"
check "$n: exit 1" [ "$?" = 1 ]

n="--version"
z 0 "$n" --version
ver=$(sed -n 's/^#define ZCIO_VERSION_STRING "\(.*\)"/\1/p' "$ROOT/include/zcio.h")
if [ "$(cat "$OUT")" = "zcio $ver" ]; then
	pass "$n: zcio $ver"
else
	fail "$n: zcio $ver" "printed '$(cat "$OUT")'"
fi

# ---- probe ----------------------------------------------------------------
n="probe"
z 0 "$n" probe
err_is "$n" ""
check "$n: says something" [ -s "$OUT" ]

n="probe --json"
z 0 "$n" probe --json
if have python3; then
	if python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["kernel"] and isinstance(d["splice"], bool)' < "$OUT" 2> "$ERR"; then
		pass "$n: valid JSON with kernel and splice"
	else
		fail "$n: valid JSON with kernel and splice" "$(head -c 300 "$ERR")"
	fi
else
	skip "$n: valid JSON" "python3 not installed"
fi

# ---- cp -------------------------------------------------------------------
n="cp file file"
z 0 "$n" cp --stats a copy-a
same_bytes "$n: content" a copy-a
expect_bytes "$n: by copy_file_range" "$ERR" copy_file_range "$(size_of a)"

n="cp keeps the mode of a new file"
chmod 0751 b
z 0 "$n" cp b copy-b
same_bytes "$n: content" b copy-b
check "$n: mode 751" [ "$(stat -c %a copy-b)" = 751 ]

n="cp drops set-user-ID and applies the umask"
chmod 4777 c
z 0 "$n" cp c copy-c
check "$n: mode 755" [ "$(stat -c %a copy-c)" = 755 ]
chmod 0644 c

n="cp onto an existing file keeps its mode"
"$ZGEN" 10M 14 > existing
chmod 0600 existing
z 0 "$n" cp b existing
same_bytes "$n: content replaced, not appended" b existing
check "$n: mode 600" [ "$(stat -c %a existing)" = 600 ]

n="cp into a directory"
z 0 "$n" cp a dir
same_bytes "$n: DIR/NAME" a dir/a

n="cp into a directory given with a slash"
z 0 "$n" cp b dir/
same_bytes "$n: DIR/NAME" b dir/b

n="cp empty file"
z 0 "$n" cp empty copy-empty
check "$n: empty" test -f copy-empty -a ! -s copy-empty

n="cp a directory"
z 1 "$n" cp dir copy-dir
err_has "$n" '^zcio: cp: dir: .*directory'
check "$n: nothing created" [ ! -e copy-dir ]

n="cp a missing file"
z 1 "$n" cp nosuch copy-nosuch
err_is "$n" "zcio: cp: nosuch: No such file or directory"

n="cp a file onto itself"
z 1 "$n" cp a a
err_has "$n" 'same file'
same_bytes "$n: untouched" copy-a a

n="cp to /dev/null"
z 0 "$n" cp a /dev/null

n="cp from a FIFO"
mkfifo fifo
cat b > fifo &
writer=$!
z 0 "$n" cp fifo copy-fifo
same_bytes "$n: content" b copy-fifo
# If cp never opened the FIFO, the writer still waits for a reader.
kill -0 "$writer" 2>/dev/null && cat fifo > /dev/null &
wait_bg "$writer" 10 || fail "$n: writer finished" "status $?"

n="cp usage: missing operand"
z 2 "$n" cp a
n="cp usage: extra operand"
z 2 "$n" cp a b c

# ---- the man page -----------------------------------------------------------
n="man/zcio.1 is current"
if [ -x "$ROOT/scripts/gen-man" ]; then
	if ZCIO=$ZCIO "$ROOT/scripts/gen-man" --check > "$T_TMP/gen" 2>&1; then
		pass "$n"
	else
		fail "$n" "$(head -c 600 "$T_TMP/gen")"
	fi
else
	"$ZCIO" --man > "$T_TMP/zcio.1"
	if cmp -s "$T_TMP/zcio.1" "$ROOT/man/zcio.1"; then
		pass "$n"
	else
		fail "$n" "zcio --man differs from man/zcio.1"
	fi
fi

# Every long option --help lists is in the page (both come from one table).
n="man/zcio.1 documents every option"
missing=""
for c in cat cp probe bench; do
	for o in $("$ZCIO" "$c" --help 2>/dev/null | grep -Eo -- '--[a-z][a-z-]*' | sort -u); do
		grep -qF -- "${o//-/\\-}" "$ROOT/man/zcio.1" || missing+=" $c:$o"
	done
done
if [ -z "$missing" ]; then
	pass "$n"
else
	fail "$n" "missing:$missing"
fi

n="man/zcio.1 renders without warnings"
if have groff; then
	if w=$(groff -man -ww -z "$ROOT/man/zcio.1" 2>&1) && [ -z "$w" ]; then
		pass "$n"
	else
		fail "$n" "$(head -c 300 <<< "$w")"
	fi
else
	skip "$n" "groff not installed"
fi

done_testing
