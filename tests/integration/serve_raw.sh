#!/usr/bin/env bash
# serve_raw.sh - HTTP/1.1 conformance of zcio serve with hand-made bytes
# (tests/helpers/sv_raw.c): malformed request lines, versions, oversized
# heads, Host, request-target forms, requests with bodies, smuggling
# attempts (Transfer-Encoding with Content-Length, duplicate lengths,
# whitespace before the colon, line folding, bare CR), and pipelines split
# across packets.  Runs the sanitizer build of zcio when it is built.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"
SV_SAN=1
. "$ROOT/tests/helpers/sv_lib.sh"

need_helpers || done_testing
sv_need || done_testing

W=$T_TMP/www
mkdir -p "$W"
"$ZGEN" 1000 1 > "$W/a.bin"
"$ZGEN" 5000 2 > "$W/b.bin"
"$ZGEN" 300k 3 > "$W/c.bin"
echo '<html>i</html>' > "$W/index.html"
OUT=$T_TMP/out
ERR=$T_TMP/err

sv_start --workers 2 --max-body 64k "$W" || done_testing
echo "# server: $SV_BIN"

# raw NAME WANT_STATUS WANT_END [SV_RAW OPTIONS]... < request
#   WANT_END: closed (the server closes after answering) or open (the
#   connection is kept: checked by holding it 0.5 s).
raw() {
	local name=$1 want=$2 end=$3 got how
	shift 3
	if [ "$end" = open ]; then
		"$SV_RAW" --hold 0.5 "$@" 127.0.0.1 "$SV_PORT" > "$OUT" 2> "$ERR"
	else
		"$SV_RAW" --timeout 3 "$@" 127.0.0.1 "$SV_PORT" > "$OUT" 2> "$ERR"
	fi
	got=$(sv_first_status "$OUT")
	how=$(sed -n 's/^sv_raw: \([a-z]*\) after.*/\1/p' "$ERR")
	if [ "$got" = "$want" ] && [ "$how" = "$end" ]; then
		pass "$name: $want, $end"
	else
		fail "$name: $want, $end" "got status '$got', connection $how; $(head -c 200 "$OUT" | tr '\r\n' '  ')"
	fi
}

# ---- request lines ------------------------------------------------------------
printf 'GET\r\n\r\n' | raw "request line without target" 400 closed
printf 'GET /\r\n\r\n' | raw "HTTP/0.9 request line (no version)" 400 closed
printf 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n' | raw "two spaces after the method" 400 closed
printf 'GET / HTTP/1.1 x\r\nHost: a\r\n\r\n' | raw "junk after the version" 400 closed
printf 'G@T / HTTP/1.1\r\nHost: a\r\n\r\n' | raw "method with a non-token character" 400 closed
printf 'get / HTTP/1.1\r\nHost: a\r\n\r\n' | raw "lower-case method (another method)" 501 open
printf 'GET / http/1.1\r\nHost: a\r\n\r\n' | raw "lower-case protocol name" 400 closed
printf 'GET / HTTP/1.10\r\nHost: a\r\n\r\n' | raw "version HTTP/1.10" 400 closed
printf 'GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n' | raw "NUL in the target" 400 closed
printf 'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n' | raw "space in the target" 400 closed
printf 'GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n' | raw "raw non-ASCII byte in the target" 400 closed
printf 'GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n' | raw "fragment in the target" 400 closed
printf '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' | raw "TLS ClientHello" 400 closed
printf 'GET / HTTP/1.1\rHost: a\r\n\r\n' | raw "bare CR ending the request line" 400 closed

# ---- versions -----------------------------------------------------------------
for v in HTTP/2.0 HTTP/3.0 HTTP/0.9 HTTP/2; do
	printf 'GET / %s\r\nHost: a\r\n\r\n' "$v" | raw "version $v" 505 closed
done
printf 'GET /a.bin HTTP/1.2\r\nHost: a\r\n\r\n' | raw "HTTP/1.2 is answered as 1.1" 200 open
printf 'GET /a.bin HTTP/1.0\r\n\r\n' | raw "HTTP/1.0 needs no Host, closes by default" 200 closed

# ---- sizes ----------------------------------------------------------------------
long=$(head -c 9000 /dev/zero | tr '\0' a)
printf 'GET /%s HTTP/1.1\r\nHost: a\r\n\r\n' "$long" | raw "request line of 9 KB (limit 8 KiB)" 414 closed
printf 'GET / HTTP/1.1\r\nHost: a\r\nX-Big: %s%s\r\n\r\n' "$long" "$long" | raw "a 18 KB header field (head limit 16 KiB)" 431 closed
{ printf 'GET / HTTP/1.1\r\nHost: a\r\n'; for i in $(seq 150); do printf 'X-%d: v\r\n' "$i"; done; printf '\r\n'; } |
	raw "150 header fields (limit 100)" 431 closed
{ printf 'GET /a.bin HTTP/1.1\r\nHost: a\r\n'; for i in $(seq 98); do printf 'X-%d: v\r\n' "$i"; done; printf '\r\n'; } |
	raw "99 header fields" 200 open
big=$(head -c 100000 /dev/zero | tr '\0' b)
printf 'GET / HTTP/1.1\r\nHost: a\r\nX: %s\r\n\r\n' "$big" | raw "a 100 KB head is refused early" 431 closed

# ---- Host -------------------------------------------------------------------------
printf 'GET /a.bin HTTP/1.1\r\n\r\n' | raw "HTTP/1.1 without Host" 400 closed
printf 'GET /a.bin HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n' | raw "two Host fields" 400 closed
printf 'GET /a.bin HTTP/1.1\r\nHost: a b\r\n\r\n' | raw "Host with a space" 400 closed
printf 'GET /a.bin HTTP/1.1\r\nHost:\r\n\r\n' | raw "empty Host" 200 open

# ---- request-target forms -----------------------------------------------------------
printf 'GET http://example.com/a.bin HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n' |
	"$SV_RAW" --split "$T_TMP/abs" 127.0.0.1 "$SV_PORT" > "$OUT" 2> "$ERR"
if grep -q 'response 1 200 1000' "$ERR" && cmp -s "$T_TMP/abs.1" "$W/a.bin"; then
	pass "absolute-form target: 200 and the file"
else
	fail "absolute-form target: 200 and the file" "$(tr '\n' ' ' < "$ERR")"
fi
printf 'GET HTTPS://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n' | raw "absolute-form without a path is /" 200 open
printf 'GET ftp://example.com/a.bin HTTP/1.1\r\nHost: a\r\n\r\n' | raw "absolute-form with another scheme" 400 closed
printf 'GET http:///a.bin HTTP/1.1\r\nHost: a\r\n\r\n' | raw "absolute-form without authority" 400 closed
printf 'GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n' | raw "authority-form for GET" 400 closed
printf 'CONNECT example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n' | raw "CONNECT" 405 open
printf 'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n' | raw "OPTIONS *" 405 open
printf 'GET * HTTP/1.1\r\nHost: a\r\n\r\n' | raw "asterisk-form for GET" 400 closed
mkdir -p "$W/dir"
printf 'GET //dir?q HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' | "$SV_RAW" 127.0.0.1 "$SV_PORT" > "$OUT" 2> "$ERR"
sv_expect "//dir redirects to /dir/, never to another host" "/dir/?q" "$(sed -n 's/^Location: \(.*\)\r$/\1/p' "$OUT")"

# ---- requests with bodies ------------------------------------------------------------------
printf 'GET /a.bin HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /b.bin HTTP/1.1\r\nHost: a\r\n\r\n' |
	"$SV_RAW" --hold 0.5 --split "$T_TMP/body" 127.0.0.1 "$SV_PORT" > "$OUT" 2> "$ERR"
if grep -q 'response 1 200 1000' "$ERR" && grep -q 'response 2 200 5000' "$ERR" &&
	cmp -s "$T_TMP/body.1" "$W/a.bin" && cmp -s "$T_TMP/body.2" "$W/b.bin" && ! grep -q rest "$ERR"; then
	pass "GET with a 5-byte body, then a pipelined GET: both answered, body skipped"
else
	fail "GET with a body, then a pipelined GET" "$(tr '\n' ' ' < "$ERR")"
fi
{ printf 'POST /a.bin HTTP/1.1\r\nHost: a\r\nContent-Length: 40000\r\n\r\n'; head -c 40000 /dev/zero
  printf 'GET /b.bin HTTP/1.1\r\nHost: a\r\n\r\n'; } |
	"$SV_RAW" --chunk 3000 --hold 1 --split "$T_TMP/post" 127.0.0.1 "$SV_PORT" > "$OUT" 2> "$ERR"
if grep -q 'response 1 405' "$ERR" && grep -q 'response 2 200 5000' "$ERR" && cmp -s "$T_TMP/post.2" "$W/b.bin"; then
	pass "POST with a 40 KB body in pieces: 405, body skipped, next request answered"
else
	fail "POST with a 40 KB body in pieces" "$(tr '\n' ' ' < "$ERR")"
fi
printf 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n' | raw "body over --max-body" 413 closed
printf 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n' |
	raw "a body announced with Expect: 100-continue (never sent)" 405 closed

# ---- smuggling attempts: 400 and close, nothing after is answered ----------------------------
smuggle() {
	local name=$1 code=${2:-400}
	"$SV_RAW" --timeout 3 127.0.0.1 "$SV_PORT" > "$OUT" 2> "$ERR"
	n=$(grep -c '^HTTP/1.1 ' "$OUT")
	if [ "$(sv_first_status "$OUT")" = "$code" ] && [ "$n" = 1 ] && grep -q 'closed after' "$ERR"; then
		pass "$name: $code, closed, the smuggled request unanswered"
	else
		fail "$name: $code, closed, the smuggled request unanswered" "$n responses: $(grep '^HTTP' "$OUT" | tr '\r\n' '  '); $(cat "$ERR")"
	fi
}
NEXT='GET /a.bin HTTP/1.1\r\nHost: a\r\n\r\n'
printf "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n$NEXT" | smuggle "CL.TE"
printf "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n$NEXT" | smuggle "TE.CL"
printf "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n$NEXT" | smuggle "Transfer-Encoding alone (not implemented)" 501
printf "GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n$NEXT" | smuggle "Transfer-Encoding in HTTP/1.0"
printf "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello$NEXT" | smuggle "Content-Length twice, same value"
printf "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!$NEXT" | smuggle "Content-Length twice, different values"
printf "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello$NEXT" | smuggle "Content-Length as a list"
printf "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello$NEXT" | smuggle "Content-Length with a sign"
printf "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello$NEXT" | smuggle "Content-Length in hex"
printf "GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello$NEXT" | smuggle "whitespace before the colon"
printf "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n$NEXT" | smuggle "whitespace before the colon of Transfer-Encoding"
printf "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n Content-Length: 5\r\n\r\nhello$NEXT" | smuggle "obsolete line folding"
printf "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\rContent-Length: 5\r\n\r\nhello$NEXT" | smuggle "bare CR inside a field"
printf "GET / HTTP/1.1\r\nHost: a\r\nX\x00A: 1\r\n\r\n$NEXT" | smuggle "NUL in a field name"
printf "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x00\r\n\r\n$NEXT" | smuggle "NUL in a field value"
printf "GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n$NEXT" | smuggle "empty field name"

# ---- pipelines -----------------------------------------------------------------------------
printf 'GET /a.bin HTTP/1.1\r\nHost: a\r\n\r\nGET /c.bin HTTP/1.1\r\nHost: a\r\n\r\nGET /b.bin HTTP/1.1\r\nHost: a\r\n\r\n' |
	"$SV_RAW" --chunk 7 --delay 2 --hold 1 --split "$T_TMP/pipe" 127.0.0.1 "$SV_PORT" > "$OUT" 2> "$ERR"
if grep -q 'response 3 200 5000' "$ERR" && cmp -s "$T_TMP/pipe.1" "$W/a.bin" && cmp -s "$T_TMP/pipe.2" "$W/c.bin" &&
	cmp -s "$T_TMP/pipe.3" "$W/b.bin" && grep -q 'open after' "$ERR"; then
	pass "3 pipelined requests split into 7-byte packets: answered in order, connection kept"
else
	fail "3 pipelined requests split into 7-byte packets" "$(tr '\n' ' ' < "$ERR")"
fi
{ for i in $(seq 60); do
	case $((i % 3)) in 0) f=a.bin ;; 1) f=b.bin ;; *) f=c.bin ;; esac
	printf 'GET /%s HTTP/1.1\r\nHost: a\r\n\r\n' "$f"
  done; } | "$SV_RAW" --hold 2 --split "$T_TMP/many" 127.0.0.1 "$SV_PORT" > "$OUT" 2> "$ERR"
bad=""
for i in $(seq 60); do
	case $((i % 3)) in 0) f=a.bin ;; 1) f=b.bin ;; *) f=c.bin ;; esac
	cmp -s "$T_TMP/many.$i" "$W/$f" || bad+=" $i"
done
if [ -z "$bad" ] && ! grep -q rest "$ERR"; then
	pass "60 pipelined requests in one write (small and linked bodies): all in order"
else
	fail "60 pipelined requests in one write" "wrong bodies:$bad; $(tail -n 2 "$ERR" | tr '\n' ' ')"
fi
want=$(for i in $(seq 60); do case $((i % 3)) in 0) echo "a.bin 1000" ;; 1) echo "b.bin 5000" ;; *) echo "c.bin 307200" ;; esac; done)
sleep 0.3
got=$(sed -n 's|.*"GET /\([abc]\.bin\) HTTP/1\.1" 200 \([0-9]*\)$|\1 \2|p' "$SV_OUT" | tail -n 60)
sv_expect "access log: the 60 pipelined answers in order, with their sizes" "$want" "$got"
printf 'GET /a.bin HTTP/1.1\r\nHost: a\r\n\r\n' | raw "a request one byte per packet" 200 open --chunk 1
printf 'GET /a.bin HTTP/1.1\nHost: a\n\n' | raw "lines ended by LF alone" 200 open
printf '\r\n\r\nGET /a.bin HTTP/1.1\r\nHost: a\r\n\r\n' | raw "empty lines before the request line" 200 open
printf '\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n' | raw "many empty lines before the request line" 400 closed
printf 'GET /a.bin HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n' | raw "Connection: close among other tokens" 200 closed
printf 'GET /a.bin HTTP/1.1\r\nHost: a\r\n\r\n' | raw "client half-closes after its request" 200 closed --shut

sv_fds "raw requests" 20
sv_stop "raw requests"
if grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error' "$SV_ERR"; then
	fail "no sanitizer report" "$(grep -m 3 -E 'Sanitizer|runtime error' "$SV_ERR")"
else
	pass "no sanitizer report"
fi
done_testing
