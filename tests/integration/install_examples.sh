#!/usr/bin/env bash
# install_examples.sh - what a user of an installed zcio gets.
#
# Runs `make install PREFIX=/usr DESTDIR=<scratch>`, checks the installed tree
# (header, shared and static library, soname link, zcio.pc, man pages, the
# binary), checks the ABI of the installed libzcio.so (only zcio_* symbols,
# all versioned ZCIO_0.1, exactly the functions zcio.h declares, each with a
# man page; soname libzcio.so.0), then builds every examples/*.c and every
# EXAMPLES program of the man pages against the INSTALLED copy through
# pkg-config, and runs them: bytes are compared by checksum.
. "$(dirname "$0")/../lib.sh"

DEST=$T_TMP/root
USR=$DEST/usr
LIB=$USR/lib
MAN=$USR/share/man
EX=$T_TMP/ex
mkdir -p "$EX"

# The version the header declares: everything installed must agree with it.
VERSION=$(sed -n 's/^#define ZCIO_VERSION_STRING "\(.*\)"$/\1/p' "$ROOT/include/zcio.h")

# ---- make install ------------------------------------------------------------

if make -C "$ROOT" --no-print-directory install PREFIX=/usr DESTDIR="$DEST" \
	>"$T_TMP/install.log" 2>&1; then
	pass "make install PREFIX=/usr DESTDIR=..."
else
	fail "make install PREFIX=/usr DESTDIR=..." "$(tail -n 5 "$T_TMP/install.log" | tr '\n' ' ')"
	done_testing
fi

# ---- the installed tree -------------------------------------------------------

check "installed header is include/zcio.h" cmp -s "$ROOT/include/zcio.h" "$USR/include/zcio.h"
check "libzcio.so.$VERSION installed" test -f "$LIB/libzcio.so.$VERSION" -a ! -L "$LIB/libzcio.so.$VERSION"
check "libzcio.so.0 -> libzcio.so.$VERSION" \
	test "$(readlink "$LIB/libzcio.so.0")" = "libzcio.so.$VERSION"
check "libzcio.so -> libzcio.so.0" test "$(readlink "$LIB/libzcio.so")" = "libzcio.so.0"
if [ -f "$LIB/libzcio.a" ] && ar t "$LIB/libzcio.a" | grep -q 'copy\.o$'; then
	pass "libzcio.a installed, holds the library's objects"
else
	fail "libzcio.a installed, holds the library's objects" "missing or without copy.o"
fi
if [ -x "$USR/bin/zcio" ] && "$USR/bin/zcio" --help >"$T_TMP/help.out" 2>&1; then
	pass "zcio binary installed and runs"
else
	fail "zcio binary installed and runs" "$(head -n 3 "$T_TMP/help.out" 2>&1 | tr '\n' ' ')"
fi
PC=$LIB/pkgconfig/zcio.pc
if [ -f "$PC" ] && ! grep -q '@[A-Z_]*@' "$PC"; then
	pass "zcio.pc installed, every @VAR@ substituted"
else
	fail "zcio.pc installed, every @VAR@ substituted" "$(cat "$PC" 2>&1 | tr '\n' ' ')"
fi

# Every man page of the source tree, byte for byte, in its section.
missing=""
for m in "$ROOT"/man/*.1 "$ROOT"/man/*.3; do
	[ -f "$m" ] || continue
	sec=${m##*.}
	cmp -s "$m" "$MAN/man$sec/$(basename "$m")" || missing="$missing $(basename "$m")"
done
if [ -z "$missing" ]; then pass "man pages installed"; else fail "man pages installed" "missing:$missing"; fi
check "zcio(1) installed" test -f "$MAN/man1/zcio.1"

# Rendered as man(1) would render them (from the man directory, so that .so
# links resolve), every page must come out without a single groff warning.
if need groff "installed man pages render without warnings"; then
	bad=""
	for m in "$MAN"/man1/*.1 "$MAN"/man3/*.3; do
		rel=${m#"$MAN"/}
		out=$(cd "$MAN" && groff -man -Tutf8 -ww -z "$rel" 2>&1)
		[ -z "$out" ] || bad="$bad $rel: $out;"
		# A .so link must lead to a page that exists.
		if so=$(sed -n 's/^\.so //p' "$m") && [ -n "$so" ] && [ ! -f "$MAN/$so" ]; then
			bad="$bad $rel: .so to missing $so;"
		fi
	done
	if [ -z "$bad" ]; then
		pass "installed man pages render without warnings"
	else
		fail "installed man pages render without warnings" "$bad"
	fi
fi

# ---- the ABI of the installed shared library ----------------------------------

SO=$LIB/libzcio.so.$VERSION
if need readelf "SONAME is libzcio.so.0"; then
	soname=$(readelf -d "$SO" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
	if [ "$soname" = libzcio.so.0 ]; then pass "SONAME is libzcio.so.0"
	else fail "SONAME is libzcio.so.0" "got '$soname'"; fi
fi

if need nm "exports only zcio_* symbols, versioned ZCIO_0.1"; then
	# Defined dynamic symbols: the functions (T name@@ZCIO_0.1) and the
	# version node itself (A ZCIO_0.1).
	nm -D --defined-only "$SO" | awk '{ print $NF }' | grep -vx 'ZCIO_0.1' | sort >"$T_TMP/exports"
	odd=$(grep -vE '^zcio_[a-z0-9_]+@@ZCIO_0\.1$' "$T_TMP/exports" | tr '\n' ' ')
	if [ ! -s "$T_TMP/exports" ]; then
		fail "exports only zcio_* symbols, versioned ZCIO_0.1" "no symbols exported"
	elif [ -n "$odd" ]; then
		fail "exports only zcio_* symbols, versioned ZCIO_0.1" "also: $odd"
	else
		pass "exports only zcio_* symbols, versioned ZCIO_0.1 ($(wc -l <"$T_TMP/exports") functions)"
	fi
	sed 's/@@.*//' "$T_TMP/exports" >"$T_TMP/exported"

	# Prototypes in zcio.h start at column 0 with their type; comments
	# never do.
	grep -oE '^[a-z_][a-z0-9_ ]*[ *]+zcio_[a-z0-9_]+\(' "$ROOT/include/zcio.h" |
		grep -oE 'zcio_[a-z0-9_]+' | sort -u >"$T_TMP/declared"
	diff=$(comm -3 "$T_TMP/declared" "$T_TMP/exported" | tr -s ' \t\n' ' ')
	if [ -s "$T_TMP/declared" ] && [ -z "$diff" ]; then
		pass "exports exactly the functions zcio.h declares"
	else
		fail "exports exactly the functions zcio.h declares" \
			"declared-only / exported-only:$diff"
	fi

	undocumented=""
	while read -r f; do
		[ -f "$MAN/man3/$f.3" ] || undocumented="$undocumented $f"
	done <"$T_TMP/exported"
	if [ -z "$undocumented" ]; then pass "every exported function has a man page"
	else fail "every exported function has a man page" "none for:$undocumented"; fi
fi

# ---- pkg-config, pointed at the installed tree only ---------------------------

if ! need pkg-config "examples build against the installed library"; then
	done_testing
fi
export PKG_CONFIG_LIBDIR=$LIB/pkgconfig   # not the host's .pc files
export PKG_CONFIG_PATH=
export PKG_CONFIG_SYSROOT_DIR=$DEST
# /usr/include and /usr/lib are "system" paths that pkg-config may drop;
# here they are inside DESTDIR and must stay.
export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1

got=$(pkg-config --modversion zcio 2>&1)
if [ "$got" = "$VERSION" ]; then pass "pkg-config --modversion zcio is $VERSION"
else fail "pkg-config --modversion zcio is $VERSION" "got '$got'"; fi
CFLAGS_ZCIO=$(pkg-config --cflags zcio)
LIBS_ZCIO=$(pkg-config --libs zcio)
case " $CFLAGS_ZCIO $LIBS_ZCIO " in
*" -I$USR/include "*" -L$LIB "*"-lzcio "*) pass "pkg-config flags point into the install: $CFLAGS_ZCIO $LIBS_ZCIO" ;;
*) fail "pkg-config flags point into the install" "got '$CFLAGS_ZCIO $LIBS_ZCIO'" ;;
esac

# build NAME SOURCE: compile against the installed header and library, with
# the warnings a careful user would turn on, and prove which header was used.
build() {
	local name=$1 src=$2 deps
	if ! cc -Wall -Wextra -Werror $CFLAGS_ZCIO -o "$EX/$name" "$src" $LIBS_ZCIO \
		-Wl,-rpath,"$LIB" >"$EX/$name.cc.log" 2>&1; then
		fail "build $name" "$(head -n 5 "$EX/$name.cc.log" | tr '\n' ' ')"
		return 1
	fi
	deps=$(cc $CFLAGS_ZCIO -M "$src" 2>/dev/null)
	case $deps in
	*"$USR/include/zcio.h"*) pass "build $name against the installed zcio.h and libzcio.so" ;;
	*) fail "build $name" "did not use $USR/include/zcio.h"; return 1 ;;
	esac
}

for src in "$ROOT"/examples/*.c; do
	[ -f "$src" ] || continue
	build "$(basename "$src" .c)" "$src"
done

# The runtime linker must load the installed library, not the build tree's.
if [ -x "$EX/copy" ] && have ldd; then
	lib=$(ldd "$EX/copy" | awk '/libzcio/ { print $3 }')
	if [ "$lib" = "$LIB/libzcio.so.0" ]; then pass "examples load $lib"
	else fail "examples load the installed libzcio.so.0" "ldd says '$lib'"; fi
fi

# ---- run the examples --------------------------------------------------------

make_file "$T_TMP/a" 3M
make_file "$T_TMP/b" 100K
cat "$T_TMP/a" "$T_TMP/b" >"$T_TMP/ab"

if [ -x "$EX/copy" ]; then
	timeout 60 "$EX/copy" "$T_TMP/a" "$T_TMP/b" >"$T_TMP/copy.out" 2>"$T_TMP/copy.err"
	rc=$?
	if [ $rc = 0 ]; then
		same_bytes "copy: two files to a file, checksums match" "$T_TMP/ab" "$T_TMP/copy.out"
	else
		fail "copy: two files to a file" "exit $rc: $(tr '\n' ' ' <"$T_TMP/copy.err")"
	fi
	total=$(( $(stat -c %s "$T_TMP/a") + $(stat -c %s "$T_TMP/b") ))
	if grep -qx "total: $total bytes" "$T_TMP/copy.err"; then
		pass "copy: stats count $total bytes"
	else
		fail "copy: stats count $total bytes" "$(tr '\n' ' ' <"$T_TMP/copy.err")"
	fi
	# Through pipes on both sides, and "-" for standard input.
	timeout 60 "$EX/copy" - <"$T_TMP/a" 2>/dev/null | timeout 60 "$EX/copy" 2>/dev/null >"$T_TMP/copy.pipe"
	same_bytes "copy: stdin pipe to stdout pipe, checksums match" "$T_TMP/a" "$T_TMP/copy.pipe"
fi

if [ -x "$EX/probe" ]; then
	timeout 30 "$EX/probe" >"$T_TMP/probe.out" 2>&1
	rc=$?
	if [ $rc = 0 ] && grep -qE '^splice +(yes|no)$' "$T_TMP/probe.out"; then
		pass "probe: prints splice ($(sed -n 's/^splice  *//p' "$T_TMP/probe.out"))"
	else
		fail "probe: prints splice" "exit $rc: $(head -n 5 "$T_TMP/probe.out" | tr '\n' ' ')"
	fi
	if grep -qx "zcio *$VERSION (header $VERSION)" "$T_TMP/probe.out"; then
		pass "probe: library and header both say $VERSION"
	else
		fail "probe: library and header both say $VERSION" "$(head -n 1 "$T_TMP/probe.out")"
	fi
fi

if [ -x "$EX/stable" ]; then
	# Exits 1 if ZCIO_F_STABLE let a later write through to the reader.
	timeout 30 "$EX/stable" "$T_TMP" >"$T_TMP/stable.out" 2>&1
	rc=$?
	if [ $rc = 0 ] && grep -qE '^ZCIO_F_STABLE +[a-z_-]+ +0 of ' "$T_TMP/stable.out"; then
		pass "stable: with ZCIO_F_STABLE the reader sees none of a later write"
	else
		fail "stable: with ZCIO_F_STABLE the reader sees none of a later write" \
			"exit $rc: $(tr '\n' ' ' <"$T_TMP/stable.out")"
	fi
	sed 's/^/# /' "$T_TMP/stable.out"
fi

# printed_port FILE PID: wait (5 s at most) for the "listening on
# 127.0.0.1:PORT" line a server example prints once it listens; print PORT.
printed_port() {
	local port=""
	for _ in $(seq 100); do
		port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$1")
		[ -n "$port" ] && break
		kill -0 "$2" 2>/dev/null || break
		sleep 0.05
	done
	echo "$port"
}

# finish PID: wait for a server example to exit (10 s at most); its status.
finish() {
	timeout 10 tail --pid="$1" -f /dev/null
	kill "$1" 2>/dev/null
	wait "$1"
}

if [ -x "$EX/send_file_http" ] && need curl "send_file_http: serves a file to curl"; then
	srv_out=$T_TMP/http.out
	"$EX/send_file_http" "$T_TMP/a" 0 >"$srv_out" 2>"$T_TMP/http.err" &
	srv=$!
	at_exit "kill $srv"
	port=$(printed_port "$srv_out" "$srv")
	if [ -z "$port" ]; then
		fail "send_file_http: serves a file to curl" "server did not listen: $(cat "$T_TMP/http.err")"
	else
		timeout 30 curl -sS --max-time 20 -o "$T_TMP/http.got" "http://127.0.0.1:$port/" 2>"$T_TMP/curl.err"
		crc=$?
		finish "$srv"
		src=$?
		if [ $crc = 0 ] && [ $src = 0 ]; then
			same_bytes "send_file_http: serves a file to curl, checksums match" "$T_TMP/a" "$T_TMP/http.got"
		else
			fail "send_file_http: serves a file to curl" \
				"curl exit $crc ($(cat "$T_TMP/curl.err")), server exit $src ($(tr '\n' ' ' <"$T_TMP/http.err"))"
		fi
		sed 's/^/# server: /' "$T_TMP/http.err"
	fi
fi

# Both directions of the relay at once: a file goes through it to an echo
# server and comes back; each side's end is passed on by shutdown().
if [ -x "$EX/relay" ] && need socat "relay: a file echoed through two links"; then
	up=$(free_port)
	socat TCP-LISTEN:"$up",bind=127.0.0.1,reuseaddr PIPE 2>/dev/null &
	echo_pid=$!
	at_exit "kill $echo_pid"
	for _ in $(seq 100); do
		ss -Htln "sport = :$up" 2>/dev/null | grep -q . && break
		sleep 0.05
	done
	"$EX/relay" 0 "$up" >"$T_TMP/relay.out" 2>"$T_TMP/relay.err" &
	relay=$!
	at_exit "kill $relay"
	port=$(printed_port "$T_TMP/relay.out" "$relay")
	if [ -z "$port" ]; then
		fail "relay: a file echoed through two links" "relay did not listen: $(cat "$T_TMP/relay.err")"
	else
		timeout 60 socat -t 5 - TCP:127.0.0.1:"$port" <"$T_TMP/a" >"$T_TMP/relay.got" 2>"$T_TMP/socat.err"
		crc=$?
		finish "$relay"
		rrc=$?
		if [ $crc = 0 ] && [ $rrc = 0 ]; then
			same_bytes "relay: a file echoed through two links, checksums match" "$T_TMP/a" "$T_TMP/relay.got"
		else
			fail "relay: a file echoed through two links" \
				"socat exit $crc ($(cat "$T_TMP/socat.err")), relay exit $rrc ($(tr '\n' ' ' <"$T_TMP/relay.err"))"
		fi
		sed 's/^/# relay: /' "$T_TMP/relay.err"
	fi
fi

# ---- static linking: Libs.private must be complete ----------------------------

# cc prints a bare "libc.a" when it has no static C library.
if [ "$(cc -print-file-name=libc.a)" != libc.a ]; then
	if cc -static $(pkg-config --cflags zcio) -o "$EX/copy-static" "$ROOT/examples/copy.c" \
		$(pkg-config --static --libs zcio) >"$EX/static.log" 2>&1 &&
		timeout 60 "$EX/copy-static" "$T_TMP/b" >"$T_TMP/static.out" 2>/dev/null; then
		same_bytes "static link with pkg-config --static: copy works" "$T_TMP/b" "$T_TMP/static.out"
	else
		fail "static link with pkg-config --static" "$(head -n 5 "$EX/static.log" | tr '\n' ' ')"
	fi
else
	skip "static link with pkg-config --static" "no static libc (libc6-dev)"
fi

# ---- the EXAMPLES section of every man page ------------------------------------

# The first .EX block of the EXAMPLES section that holds a main(), with the
# roff escapes used in code (\e, \-) turned back into C.
man_example() {
	awk '/^\.SH EXAMPLES/ { in_ex = 1; next }
	     /^\.SH / { in_ex = 0 }
	     in_ex && /^\.EX/ { blk = ""; on = 1; next }
	     in_ex && /^\.EE/ { if (blk ~ /int main/) { printf "%s", blk; exit } on = 0; next }
	     in_ex && on { blk = blk $0 "\n" }' "$1" |
		sed -e 's/\\-/-/g' -e 's/\\e/\\/g'
}

for m in "$MAN"/man3/*.3; do
	name=$(basename "$m" .3)
	man_example "$m" >"$EX/man_$name.c"
	if [ ! -s "$EX/man_$name.c" ]; then
		grep -q '^\.so ' "$m" || fail "man $name: EXAMPLES has a program" "none found"
		rm -f "$EX/man_$name.c"
		continue
	fi
	build "man_$name" "$EX/man_$name.c"
done

# Run the ones whose output can be checked.
if [ -x "$EX/man_zcio_copy" ]; then
	timeout 60 "$EX/man_zcio_copy" "$T_TMP/a" "$T_TMP/man_copy.out" 2>/dev/null
	same_bytes "man zcio_copy example copies a file" "$T_TMP/a" "$T_TMP/man_copy.out"
fi
if [ -x "$EX/man_zcio_send_file" ]; then
	timeout 60 "$EX/man_zcio_send_file" "$T_TMP/b" >"$T_TMP/man_send.out" 2>/dev/null
	{ printf 'Content-Length: %s\r\n\r\n' "$(stat -c %s "$T_TMP/b")"; cat "$T_TMP/b"; } >"$T_TMP/man_send.want"
	same_bytes "man zcio_send_file example writes header and file" "$T_TMP/man_send.want" "$T_TMP/man_send.out"
fi
if [ -x "$EX/man_zcio_stats_format" ]; then
	timeout 60 "$EX/man_zcio_stats_format" <"$T_TMP/b" 2>/dev/null | cat >"$T_TMP/man_stats.out"
	same_bytes "man zcio_stats_format example copies stdin to stdout" "$T_TMP/b" "$T_TMP/man_stats.out"
fi
if [ -x "$EX/man_zcio_link_new" ] && need socat "man zcio_link_new example reads a socket to stdout"; then
	up=$(free_port)
	socat -u OPEN:"$T_TMP/a" TCP-LISTEN:"$up",bind=127.0.0.1,reuseaddr 2>/dev/null &
	src_pid=$!
	at_exit "kill $src_pid"
	for _ in $(seq 100); do
		ss -Htln "sport = :$up" 2>/dev/null | grep -q . && break
		sleep 0.05
	done
	timeout 60 "$EX/man_zcio_link_new" "$up" 2>"$T_TMP/man_link.err" | cat >"$T_TMP/man_link.out"
	same_bytes "man zcio_link_new example reads a socket to stdout" "$T_TMP/a" "$T_TMP/man_link.out"
fi
if [ -x "$EX/man_zcio_version" ]; then
	got=$("$EX/man_zcio_version")
	if [ "$got" = "built with zcio $VERSION, running with $VERSION" ]; then
		pass "man zcio_version example prints $VERSION twice"
	else
		fail "man zcio_version example prints $VERSION twice" "got '$got'"
	fi
fi

done_testing
