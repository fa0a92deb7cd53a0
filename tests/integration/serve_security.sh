#!/usr/bin/env bash
# serve_security.sh - zcio serve never serves what lies outside its
# directory: path traversal in 40 spellings (plain, percent-encoded,
# double-encoded, backslashes, overlong UTF-8, NUL), symlinks leading out
# (and in), the same without openat2, dotfiles, FIFOs and devices, files
# the server's user cannot read (served as nobody: 403), very long URLs.
# Runs the sanitizer build of zcio when it is built.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"
SV_SAN=1
. "$ROOT/tests/helpers/sv_lib.sh"

need_helpers || done_testing
sv_need || done_testing

SECRET=TOPSECRET-$RANDOM$RANDOM
W=$T_TMP/www
mkdir -p "$W/sub/deeper" "$W/.git"
echo "$SECRET" > "$T_TMP/secret.txt"
echo public > "$W/public.txt"
echo deeper > "$W/sub/deeper/f.txt"
echo hidden > "$W/.hidden"
echo '[core]' > "$W/.git/config"
echo subhidden > "$W/sub/.x"
ln -s ../secret.txt "$W/link_out"
ln -s "$T_TMP" "$W/dirlink_out"
ln -s /etc/passwd "$W/abs_link"
ln -s public.txt "$W/link_in"
ln -s sub/deeper "$W/dirlink_in"
mkfifo "$W/fifo"
mknod "$W/null" c 1 3 2> /dev/null || true
OUT=$T_TMP/out

sv_start --workers 2 "$W" || done_testing
echo "# server: $SV_BIN"

# Exact bytes on the wire: curl would normalise '..' away itself.
get_raw() {
	printf 'GET %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' "$1" |
		"$SV_RAW" --timeout 3 127.0.0.1 "$SV_PORT" > "$OUT" 2> /dev/null
	sv_first_status "$OUT"
}

refused=0 leaked=""
traversals=(
	'/../secret.txt' '/../../../../../../etc/passwd' '/%2e%2e/secret.txt' '/%2E%2E/secret.txt'
	'/.%2e/secret.txt' '/%2e./secret.txt' '/..%2fsecret.txt' '/..%2Fsecret.txt'
	'/%2e%2e%2fsecret.txt' '/%252e%252e/secret.txt' '/%252e%252e%252fsecret.txt'
	'/..%5csecret.txt' '/..\secret.txt' '/..\..\etc\passwd' '/%c0%ae%c0%ae/secret.txt'
	'/..%c0%afsecret.txt' '/%e0%80%ae%e0%80%ae/secret.txt' '/..%c1%9csecret.txt'
	'/%c0%2e%c0%2e/secret.txt' '/secret.txt%00.html' '/public.txt%00' '/sub/../../secret.txt'
	'/sub/%2e%2e/%2e%2e/secret.txt' '/./../secret.txt' '//../secret.txt' '/..;/secret.txt'
	'/%2e%2e%5c%2e%2e%5csecret.txt' '/..%255c..%255csecret.txt' '/.../secret.txt'
	'http://a/../secret.txt' '/%u002e%u002e/secret.txt' '/sub/..%00/secret.txt'
	'/%2e%2e%2f%2e%2e%2fetc%2fpasswd' '/..././secret.txt' '/....//secret.txt'
	'/%2f%2e%2e%2fsecret.txt' '/sub/deeper/../../../secret.txt' '/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc/passwd'
	'/%%32%65%%32%65/secret.txt' '/.%00./secret.txt' '/%ef%bc%8e%ef%bc%8e/secret.txt'
)
for t in "${traversals[@]}"; do
	code=$(get_raw "$t")
	if grep -qa -e "$SECRET" -e 'root:x:0:0' "$OUT"; then
		leaked+=" $t($code)"
	elif [[ $code =~ ^(400|403|404)$ ]]; then
		refused=$((refused + 1))
	else
		leaked+=" $t(status '$code')"
	fi
done
if [ -z "$leaked" ]; then
	pass "${#traversals[@]} path traversal spellings: all refused (400/403/404), nothing outside served"
else
	fail "path traversal spellings refused" "served or unexpected:$leaked"
fi
sv_expect "'..' is refused, not resolved: /sub/../public.txt is 400" 400 "$(get_raw '/sub/../public.txt')"
sv_expect "encoded '/' is a separator: /sub%2fdeeper%2ff.txt" 200 "$(get_raw '/sub%2fdeeper%2ff.txt')"

# ---- symlinks -------------------------------------------------------------------
sv_expect "symlink leading out of DIR: 403" 403 "$(get_raw /link_out)"
sv_expect "symlinked directory leading out: 403" 403 "$(get_raw /dirlink_out/secret.txt)"
sv_expect "absolute symlink to /etc/passwd: 403" 403 "$(get_raw /abs_link)"
sv_expect "symlink to a file inside DIR: 200" 200 "$(get_raw /link_in)"
sv_expect "symlinked directory inside DIR: 200" 200 "$(get_raw /dirlink_in/f.txt)"

# ---- dotfiles, FIFOs, devices --------------------------------------------------------
for t in /.hidden /.git/config /sub/.x /%2ehidden /sub/%2Ex; do
	sv_expect "dotfile $t: 404" 404 "$(get_raw "$t")"
done
start=$(now_ms)
code=$(get_raw /fifo)
sv_expect "a FIFO in DIR: 403 at once, no hang" "403 fast" "$code $([ $(($(now_ms) - start)) -lt 2000 ] && echo fast)"
[ -e "$W/null" ] && sv_expect "a device node in DIR: 403" 403 "$(get_raw /null)"

# ---- very long URLs -------------------------------------------------------------------
long=$(printf 'abcdefgh/%.0s' $(seq 400))   # 3,600 bytes: within every limit
sv_expect "a 3.6 KB path of 400 segments: 404" 404 "$(get_raw "/${long}x")"
long=$(head -c 9000 /dev/zero | tr '\0' x)
sv_expect "a 9 KB URL: 414" 414 "$(get_raw "/$long")"
sv_fds "traversal" 20
sv_stop "traversal"

sv_start --workers 1 --max-request-line 64k --max-header-size 64k "$W" || done_testing
long=$(head -c 5000 /dev/zero | tr '\0' y)
sv_expect "a path longer than PATH_MAX (limits raised): 414" 414 "$(get_raw "/$long")"
sv_stop "long paths"

# ---- --follow-symlinks and --dotfiles lift the rules ----------------------------------
sv_start --workers 1 --follow-symlinks --dotfiles --list "$W" || done_testing
get_raw /link_out > /dev/null
if grep -q "$SECRET" "$OUT"; then
	pass "--follow-symlinks: a symlink leading out is followed"
else
	fail "--follow-symlinks: a symlink leading out is followed" "$(head -n 1 "$OUT")"
fi
sv_expect "--follow-symlinks: '..' is still refused" 400 "$(get_raw /../secret.txt)"
sv_expect "--dotfiles: /.hidden served" 200 "$(get_raw /.hidden)"
get_raw / > /dev/null
if grep -q '>\.hidden</a>' "$OUT"; then pass "--dotfiles --list: dotfiles listed"; else fail "--dotfiles --list: dotfiles listed" "$(grep -c '<li>' "$OUT") entries"; fi
sv_stop "--follow-symlinks"

sv_start --workers 1 --list "$W" || done_testing
get_raw / > /dev/null
if ! grep -q 'hidden' "$OUT" && grep -q 'public.txt' "$OUT"; then
	pass "--list hides dotfiles"
else
	fail "--list hides dotfiles" "$(grep '<li>' "$OUT" | tr '\n' ' ')"
fi
sv_stop "--list"

# ---- without openat2 (kernels before 5.6): every symlink refused ----------------------------
if need_inject "without openat2: symlinks refused"; then
	SV_BIN_SAVE=$SV_BIN
	SV_BIN=$T_TMP/zcio-no-openat2
	printf '#!/bin/sh\nexec strace -f -qq -o /dev/null -e trace=openat2 -e inject=openat2:error=ENOSYS "%s" "$@"\n' \
		"$ZCIO" > "$SV_BIN"
	chmod +x "$SV_BIN"
	if sv_start --workers 1 "$W"; then
		sv_expect "without openat2: a plain file is served" 200 "$(get_raw /sub/deeper/f.txt)"
		sv_expect "without openat2: symlink leading out: 403" 403 "$(get_raw /link_out)"
		sv_expect "without openat2: symlinked directory leading out: 403/404" 1 "$([[ $(get_raw /dirlink_out/secret.txt) =~ ^40[34]$ ]] && echo 1)"
		sv_expect "without openat2: even a symlink inside is refused" 403 "$(get_raw /link_in)"
		sv_expect "without openat2: traversal still 400" 400 "$(get_raw /%2e%2e/secret.txt)"
		sv_stop "without openat2"
	fi
	SV_BIN=$SV_BIN_SAVE
fi

# ---- a file the server cannot read: 403 (the server runs as nobody) ----------------------
NAME="unreadable file: 403"
if ! have setpriv; then
	skip "$NAME" "setpriv not installed"
elif ! id nobody > /dev/null 2>&1; then
	skip "$NAME" "no user nobody"
else
	P=$T_TMP/pub
	mkdir -p "$P/closed"
	echo open > "$P/open.txt"
	echo shut > "$P/shut.txt"
	echo inner > "$P/closed/inner.txt"
	chmod 600 "$P/shut.txt"
	chmod 700 "$P/closed"
	chmod 755 "$T_TMP" "$P"
	group=$(id -gn nobody)
	AS_NOBODY="setpriv --reuid=nobody --regid=$group --clear-groups"
	if ! $AS_NOBODY test -x "$SV_BIN" || ! $AS_NOBODY test -r "$P/open.txt"; then
		skip "$NAME" "user nobody cannot run $SV_BIN or read the test directory"
	else
		SV_BIN_SAVE=$SV_BIN
		SV_BIN=$T_TMP/zcio-nobody
		printf '#!/bin/sh\nexec %s "%s" "$@"\n' "$AS_NOBODY" "$SV_BIN_SAVE" > "$SV_BIN"
		chmod 755 "$SV_BIN"
		if sv_start --workers 1 "$P"; then
			sv_expect "as nobody: a world-readable file: 200" 200 "$(get_raw /open.txt)"
			sv_expect "as nobody: a file of mode 600 (root's): 403" 403 "$(get_raw /shut.txt)"
			sv_expect "as nobody: a file in a directory of mode 700: 403" 403 "$(get_raw /closed/inner.txt)"
			sv_stop "as nobody"
		fi
		SV_BIN=$SV_BIN_SAVE
	fi
fi

for e in "$T_TMP"/serve*.err; do
	if grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error' "$e"; then
		fail "no sanitizer report" "$(grep -m 3 -E 'Sanitizer|runtime error' "$e")"
		done_testing
	fi
done
pass "no sanitizer report"
done_testing
