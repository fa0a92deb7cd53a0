#!/usr/bin/env bash
# serve_http.sh - zcio serve against real clients (curl, wget): bodies of
# every size class by checksum, response fields, HEAD, byte ranges,
# conditional requests, keep-alive reuse, HTTP/1.0, directories and
# listings, Content-Type, the access log, the open-file cache noticing
# changes, and wget -r of a tree.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"
. "$ROOT/tests/helpers/sv_lib.sh"

need_helpers || done_testing
sv_need || done_testing

W=$T_TMP/www
mkdir -p "$W/sub/deeper" "$W/nolist" "$W/odd"
"$ZGEN" 0 > "$W/empty"
printf x > "$W/one.txt"
"$ZGEN" 1000 1 > "$W/k1.bin"
"$ZGEN" 16k 2 > "$W/k16.bin"      # the largest body sent with writev
"$ZGEN" 16385 3 > "$W/k16p1.bin"  # the smallest sent through a link
"$ZGEN" 64k 4 > "$W/k64.bin"
"$ZGEN" 1M 5 > "$W/m1.bin"
"$ZGEN" 9M 6 > "$W/m9.bin"
echo '<html><body>root index</body></html>' > "$W/index.html"
echo '<html><body>sub index</body></html>' > "$W/sub/index.html"
echo 'body { color: red }' > "$W/style.css"
echo 'console.log(1)' > "$W/app.js"
"$ZGEN" 3000 7 > "$W/pic.png"
echo '{"a":1}' > "$W/data.json"
echo deep > "$W/sub/deeper/file.txt"
echo n > "$W/nolist/x.txt"
echo '<&>' > "$W/odd/a <b> & \"c\".txt"
echo q > "$W/odd/%41 sp.txt"
mkdir "$W/odd/dir one"

FILES="empty one.txt k1.bin k16.bin k16p1.bin k64.bin m1.bin m9.bin"

# get_all NAME: every file by GET, bytes compared.
get_all() {
	local f bad=""
	for f in $FILES; do
		curl -sf --max-time 20 -o "$T_TMP/got" "$SV_URL/$f" || { bad+=" $f(curl $?)"; continue; }
		cmp -s "$T_TMP/got" "$W/$f" || bad+=" $f"
	done
	if [ -z "$bad" ]; then pass "$1: every size, same bytes"; else fail "$1: every size, same bytes" "differ:$bad"; fi
}

for mode in pipe sendfile; do
	sv_start --workers 2 --send=$mode --stats "$W" || continue
	get_all "GET --send=$mode"
	sv_stop "--send=$mode"
	# The stats line at exit says which path carried the large bodies.
	stats=$(grep 'stats:' "$SV_ERR" | tail -n 1)
	if [ $mode = pipe ]; then
		[[ $stats =~ spliced\ ([1-9][0-9.]*\ [KMG]iB) && $stats =~ sendfile\ 0\ B ]] &&
			pass "--send=pipe: bodies spliced, none sendfile()d" ||
			fail "--send=pipe: bodies spliced, none sendfile()d" "$stats"
	else
		[[ $stats =~ sendfile\ ([1-9][0-9.]*\ [KMG]iB) && $stats =~ spliced\ 0\ B ]] &&
			pass "--send=sendfile: bodies sendfile()d, none spliced" ||
			fail "--send=sendfile: bodies sendfile()d, none spliced" "$stats"
	fi
done

sv_start --workers 2 "$W" || done_testing

# ---- response fields ---------------------------------------------------------
H=$T_TMP/h
curl -s -D "$H" -o /dev/null "$SV_URL/k1.bin"
fields_ok=true
for re in '^HTTP/1\.1 200 OK' '^Date: [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} GMT' \
	'^Last-Modified: [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} GMT' \
	'^ETag: "[^"]+"' '^Content-Length: 1000' '^Accept-Ranges: bytes' \
	'^Content-Type: application/octet-stream'; do
	grep -qE "$re" "$H" || { fields_ok=false; fail "response fields" "no line matching $re: $(tr '\r\n' '  ' < "$H")"; }
done
$fields_ok && pass "response fields: Date, Last-Modified, strong ETag, Content-Length, Accept-Ranges, Content-Type"
lm_want=$(TZ=GMT date -r "$W/k1.bin" '+%a, %d %b %Y %H:%M:%S GMT')
sv_expect "Last-Modified is the file's mtime" "Last-Modified: $lm_want" "$(grep -i '^Last-Modified' "$H" | tr -d '\r')"
ETAG=$(sed -n 's/^ETag: \(.*\)\r$/\1/p' "$H")
LM=$(sed -n 's/^Last-Modified: \(.*\)\r$/\1/p' "$H")

for pair in "style.css text/css" "app.js text/javascript" "pic.png image/png" \
	"data.json application/json" "index.html text/html" "one.txt text/plain"; do
	set -- $pair
	got=$(curl -s -o /dev/null -w '%{content_type}' "$SV_URL/$1")
	sv_expect "Content-Type of $1" "$2" "$got"
done

# ---- HEAD --------------------------------------------------------------------
for f in k1.bin m1.bin; do
	printf 'HEAD /%s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' "$f" |
		"$SV_RAW" 127.0.0.1 "$SV_PORT" > "$T_TMP/head" 2> /dev/null
	hlen=$(grep -a -c . "$T_TMP/head")
	size=$(size_of "$W/$f")
	if grep -q "^Content-Length: $size" "$T_TMP/head" && [ "$(tail -c 4 "$T_TMP/head" | od -An -c | tr -d ' ')" = '\r\n\r\n' ]; then
		pass "HEAD /$f: Content-Length $size, no body"
	else
		fail "HEAD /$f: Content-Length $size, no body" "$hlen lines: $(head -c 400 "$T_TMP/head")"
	fi
done

# ---- ranges ------------------------------------------------------------------
# range NAME FILE RANGE FIRST COUNT: 206, Content-Range, and the bytes.
range() {
	local code cr size
	size=$(size_of "$W/$2")
	code=$(curl -s -D "$H" -o "$T_TMP/part" -w '%{http_code}' -H "Range: $3" "$SV_URL/$2")
	tail -c +$(($4 + 1)) "$W/$2" | head -c "$5" > "$T_TMP/want"
	cr=$(sed -n 's/^Content-Range: \(.*\)\r$/\1/p' "$H")
	if [ "$code" = 206 ] && [ "$cr" = "bytes $4-$(($4 + $5 - 1))/$size" ] &&
		cmp -s "$T_TMP/part" "$T_TMP/want"; then
		pass "$1"
	else
		fail "$1" "status $code, Content-Range '$cr', $(size_of "$T_TMP/part") bytes"
	fi
}
range "Range bytes=0-99 of 16 KiB (writev)" k16.bin "bytes=0-99" 0 100
range "Range bytes=100- of 16 KiB" k16.bin "bytes=100-" 100 16284
range "Range bytes=-500 of 16 KiB" k16.bin "bytes=-500" 15884 500
range "Range bytes=1000-1999 of 9 MiB (small slice, pread)" m9.bin "bytes=1000-1999" 1000 1000
range "Range bytes=4194305- of 9 MiB (linked, odd offset)" m9.bin "bytes=4194305-" 4194305 5242879
range "Range bytes=-3000000 of 9 MiB" m9.bin "bytes=-3000000" 6437184 3000000
range "Range last beyond the end is clipped" k64.bin "bytes=65000-99999999" 65000 536
range "Range suffix longer than the file is all of it" k1.bin "bytes=-5000" 0 1000
code=$(curl -s -D "$H" -o "$T_TMP/part" -w '%{http_code}' -H "Range: bytes=99999999-" "$SV_URL/k64.bin")
cr=$(sed -n 's/^Content-Range: \(.*\)\r$/\1/p' "$H")
sv_expect "unsatisfiable Range: 416 with Content-Range bytes */size" "416 bytes */65536" "$code $cr"
sv_expect "Range bytes=0-0 of an empty file: 416" 416 "$(sv_code "$SV_URL/empty" -H 'Range: bytes=0-0')"
for r in "bytes=0-1,5-6" "bytes=abc" "bytes=5-1" "lines=0-1" "bytes=-"; do
	code=$(curl -s -o "$T_TMP/part" -w '%{http_code}' -H "Range: $r" "$SV_URL/k1.bin")
	if [ "$code" = 200 ] && cmp -s "$T_TMP/part" "$W/k1.bin"; then
		pass "Range '$r' ignored: 200 and the whole file"
	else
		fail "Range '$r' ignored: 200 and the whole file" "status $code"
	fi
done
sv_expect "Range ignored for HEAD" 200 "$(sv_code "$SV_URL/k1.bin" -I -H 'Range: bytes=0-1')"

# ---- conditional requests -------------------------------------------------------
sv_expect "If-None-Match: the ETag -> 304" 304 "$(sv_code "$SV_URL/k1.bin" -H "If-None-Match: $ETAG")"
sv_expect "If-None-Match: W/ETag (weak comparison) -> 304" 304 "$(sv_code "$SV_URL/k1.bin" -H "If-None-Match: \"x\", W/$ETAG")"
sv_expect "If-None-Match: * -> 304" 304 "$(sv_code "$SV_URL/k1.bin" -H 'If-None-Match: *')"
sv_expect "If-None-Match: another tag -> 200" 200 "$(sv_code "$SV_URL/k1.bin" -H 'If-None-Match: "nope"')"
sv_expect "If-Modified-Since: Last-Modified -> 304" 304 "$(sv_code "$SV_URL/k1.bin" -H "If-Modified-Since: $LM")"
sv_expect "If-Modified-Since: 1994 -> 200" 200 "$(sv_code "$SV_URL/k1.bin" -H 'If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT')"
sv_expect "If-Modified-Since in asctime form -> 304" 304 "$(sv_code "$SV_URL/k1.bin" -H "If-Modified-Since: $(TZ=GMT date -d "$LM" '+%a %b %e %H:%M:%S %Y')")"
sv_expect "If-None-Match wins over If-Modified-Since" 200 "$(sv_code "$SV_URL/k1.bin" -H 'If-None-Match: "nope"' -H "If-Modified-Since: $LM")"
curl -s -D "$H" -o "$T_TMP/body304" -H "If-None-Match: $ETAG" "$SV_URL/k1.bin"
if [ ! -s "$T_TMP/body304" ] && grep -q "^ETag: $ETAG" "$H"; then
	pass "304 has no body and repeats the ETag"
else
	fail "304 has no body and repeats the ETag" "$(size_of "$T_TMP/body304") bytes"
fi
ETAG9=$(curl -sI "$SV_URL/m9.bin" | sed -n 's/^ETag: \(.*\)\r$/\1/p')
LM9=$(curl -sI "$SV_URL/m9.bin" | sed -n 's/^Last-Modified: \(.*\)\r$/\1/p')
sv_expect "If-Range: current ETag -> 206" 206 "$(sv_code "$SV_URL/m9.bin" -H 'Range: bytes=0-9' -H "If-Range: $ETAG9")"
sv_expect "If-Range: Last-Modified -> 206" 206 "$(sv_code "$SV_URL/m9.bin" -H 'Range: bytes=0-9' -H "If-Range: $LM9")"
sv_expect "If-Range: old ETag -> 200" 200 "$(sv_code "$SV_URL/m9.bin" -H 'Range: bytes=0-9' -H 'If-Range: "old"')"
sv_expect "If-Range: weak ETag never matches -> 200" 200 "$(sv_code "$SV_URL/m9.bin" -H 'Range: bytes=0-9' -H "If-Range: W/$ETAG9")"
sv_expect "If-Range: old date -> 200" 200 "$(sv_code "$SV_URL/m9.bin" -H 'Range: bytes=0-9' -H 'If-Range: Sun, 06 Nov 1994 08:49:37 GMT')"

# ---- keep-alive -------------------------------------------------------------------
curl -sv -o "$T_TMP/ka1" "$SV_URL/k16.bin" -o "$T_TMP/ka2" "$SV_URL/m1.bin" \
	-o "$T_TMP/ka3" "$SV_URL/k1.bin" 2> "$T_TMP/ka.err"
if [ "$(grep -c 'Re-using existing connection' "$T_TMP/ka.err")" = 2 ] &&
	cmp -s "$T_TMP/ka1" "$W/k16.bin" && cmp -s "$T_TMP/ka2" "$W/m1.bin" && cmp -s "$T_TMP/ka3" "$W/k1.bin"; then
	pass "curl reuses the connection for 3 requests (small, linked, small), same bytes"
else
	fail "curl reuses the connection for 3 requests" "$(grep -E 'Re-using|Connected|Closing' "$T_TMP/ka.err" | tr '\n' ' ')"
fi
curl -sv -0 -o "$T_TMP/ka1" "$SV_URL/k1.bin" -o "$T_TMP/ka2" "$SV_URL/k1.bin" 2> "$T_TMP/ka.err"
if ! grep -q 'Re-using existing connection' "$T_TMP/ka.err" && cmp -s "$T_TMP/ka2" "$W/k1.bin"; then
	pass "HTTP/1.0 without keep-alive: one request per connection"
else
	fail "HTTP/1.0 without keep-alive: one request per connection" "$(grep -E 'Re-using|Closing' "$T_TMP/ka.err" | tr '\n' ' ')"
fi
curl -sv -0 -H 'Connection: keep-alive' -o "$T_TMP/ka1" "$SV_URL/k1.bin" -o "$T_TMP/ka2" "$SV_URL/m1.bin" 2> "$T_TMP/ka.err"
if grep -q 'Re-using existing connection' "$T_TMP/ka.err" && grep -q '< Connection: keep-alive' "$T_TMP/ka.err" &&
	cmp -s "$T_TMP/ka2" "$W/m1.bin"; then
	pass "HTTP/1.0 with Connection: keep-alive is kept alive"
else
	fail "HTTP/1.0 with Connection: keep-alive is kept alive" "$(grep -E 'Re-using|Connection' "$T_TMP/ka.err" | tr '\n' ' ')"
fi
curl -sv -H 'Connection: close' -o /dev/null "$SV_URL/k1.bin" -o /dev/null "$SV_URL/k1.bin" 2> "$T_TMP/ka.err"
if ! grep -q 'Re-using existing connection' "$T_TMP/ka.err" && grep -q '< Connection: close' "$T_TMP/ka.err"; then
	pass "Connection: close is honoured"
else
	fail "Connection: close is honoured" "$(grep -E 'Re-using|Connection' "$T_TMP/ka.err" | tr '\n' ' ')"
fi

# ---- methods ----------------------------------------------------------------------------
curl -s -D "$H" -o /dev/null -X POST "$SV_URL/k1.bin"
if grep -q '^HTTP/1.1 405' "$H" && grep -q '^Allow: GET, HEAD' "$H"; then
	pass "POST: 405 with Allow: GET, HEAD"
else
	fail "POST: 405 with Allow: GET, HEAD" "$(head -n 1 "$H")"
fi
sv_expect "DELETE: 405" 405 "$(sv_code "$SV_URL/k1.bin" -X DELETE)"
sv_expect "unknown method BREW: 501" 501 "$(sv_code "$SV_URL/k1.bin" -X BREW)"

# ---- directories ----------------------------------------------------------------------------
got=$(curl -s "$SV_URL/")
sv_expect "/ serves index.html" "<html><body>root index</body></html>" "$got"
curl -s -D "$H" -o /dev/null "$SV_URL/sub?x=1"
sv_expect "/sub redirects to /sub/ (query kept)" "301 /sub/?x=1" \
	"$(sed -n 's|^HTTP/1.1 \([0-9]*\).*|\1|p' "$H" | tr -d '\r') $(sed -n 's/^Location: \(.*\)\r$/\1/p' "$H")"
sv_expect "curl -L follows /sub to its index" "<html><body>sub index</body></html>" "$(curl -sL "$SV_URL/sub")"
sv_expect "a directory without index.html: 403 without --list" 403 "$(sv_code "$SV_URL/nolist/")"
sv_expect "a file asked for as a directory: 404" 404 "$(sv_code "$SV_URL/one.txt/")"
sv_expect "a missing file: 404" 404 "$(sv_code "$SV_URL/nope.html")"

# ---- the access log -------------------------------------------------------------------------
curl -s -o /dev/null "$SV_URL/k16.bin?log=1"
if sv_log_wait '^127\.0\.0\.1 - - \[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9:]{8} [-+][0-9]{4}\] "GET /k16\.bin\?log=1 HTTP/1\.1" 200 16384$'; then
	pass "access log: Common Log Format line, status and size"
else
	fail "access log: Common Log Format line, status and size" "$(tail -n 3 "$SV_OUT")"
fi
if sv_log_wait '"GET /m9\.bin HTTP/1\.1" 206 10$' && sv_log_wait '"GET /k1\.bin HTTP/1\.1" 304 -$' &&
	sv_log_wait '"GET /nope\.html HTTP/1\.1" 404 [0-9]+$'; then
	pass "access log: 206, 304 and 404 lines"
else
	fail "access log: 206, 304 and 404 lines" "$(grep -E ' (206|304|404) ' "$SV_OUT" | head -n 3)"
fi

# ---- the open-file cache notices changes ----------------------------------------------------
echo 'version one' > "$W/live.txt"
v1=$(curl -s "$SV_URL/live.txt")
printf 'version TWO\n' > "$W/live.txt"   # same size, new bytes
sleep 1.2
v2=$(curl -s "$SV_URL/live.txt")
echo 'renamed in' > "$W/live.tmp" && mv "$W/live.tmp" "$W/live.txt"
sleep 1.2
v3=$(curl -s "$SV_URL/live.txt")
rm "$W/live.txt"
sleep 1.2
sv_expect "cached file rewritten, replaced by rename, removed: seen within 1 s" \
	"version one|version TWO|renamed in|404" "$v1|$v2|$v3|$(sv_code "$SV_URL/live.txt")"

sv_fds "curl session" 60
sv_stop "curl session"

# ---- --list, --access-log, --quiet ------------------------------------------------------------
sv_start --workers 1 --list --access-log "$T_TMP/access.log" "$W" || done_testing
curl -s -o "$T_TMP/list" "$SV_URL/odd/"
if grep -qF '<a href="./a%20%3Cb%3E%20%26%20%22c%22.txt">a &lt;b&gt; &amp; &quot;c&quot;.txt</a>' "$T_TMP/list" &&
	grep -qF '<a href="./dir%20one/">dir one/</a>' "$T_TMP/list" &&
	grep -qF '<a href="./%2541%20sp.txt">%41 sp.txt</a>' "$T_TMP/list"; then
	pass "--list: names HTML-escaped, links percent-encoded, directories marked"
else
	fail "--list: names HTML-escaped, links percent-encoded" "$(grep -F '<li>' "$T_TMP/list" | head -c 600)"
fi
got=$(curl -s "$SV_URL/odd/a%20%3Cb%3E%20%26%20%22c%22.txt")
sv_expect "--list: a listed link fetches its file" "<&>" "$got"
sv_expect "--list: a directory with index.html still gets it" "<html><body>sub index</body></html>" "$(curl -s "$SV_URL/sub/")"
sleep 0.3
if grep -q '"GET /odd/ HTTP/1.1" 200' "$T_TMP/access.log" && [ ! -s "$SV_OUT" ]; then
	pass "--access-log FILE: lines go to FILE, not standard output"
else
	fail "--access-log FILE: lines go to FILE" "file: $(head -c 200 "$T_TMP/access.log"); stdout: $(head -c 200 "$SV_OUT")"
fi
sv_stop "--list"

sv_start --workers 1 --quiet "$W" || done_testing
curl -s -o /dev/null "$SV_URL/k1.bin"
curl -s -o /dev/null "$SV_URL/nope"
sleep 0.3
if [ ! -s "$SV_OUT" ] && ! grep -qv ': serve: info: ' "$SV_ERR"; then
	pass "--quiet: no access log"
else
	fail "--quiet: no access log" "stdout: $(head -c 200 "$SV_OUT"); stderr: $(head -c 200 "$SV_ERR")"
fi
sv_stop "--quiet"

# ---- other listening addresses ---------------------------------------------------------
SOCK=$T_TMP/serve.sock
"$SV_BIN" serve --quiet --workers 2 --listen "unix:$SOCK" "$W" 2> "$T_TMP/unix.err" &
upid=$!
at_exit "kill -9 $upid"
for t in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.05; done
curl -s --unix-socket "$SOCK" -o "$T_TMP/got" http://localhost/m1.bin
same_bytes "--listen unix:PATH, 2 workers on one socket" "$W/m1.bin" "$T_TMP/got"
kill -TERM "$upid"
wait_bg "$upid" 10
sv_expect "--listen unix:PATH: the socket is removed at exit" "no" "$([ -e "$SOCK" ] && echo yes || echo no)"
if ! ip -6 addr show lo 2>/dev/null | grep -q 'inet6 ::1'; then
	skip "--listen [::1]:0" "no IPv6 loopback"
else
	"$SV_BIN" serve --quiet --workers 2 --listen '[::1]:0' "$W" 2> "$T_TMP/v6.err" &
	vpid=$!
	at_exit "kill -9 $vpid"
	for t in $(seq 50); do grep -q 'http://\[' "$T_TMP/v6.err" && break; sleep 0.05; done
	v6=$(sed -n 's|.* on http://\(\[::1\]:[0-9]*\)/.*|\1|p' "$T_TMP/v6.err")
	curl -s -o "$T_TMP/got" "http://$v6/k64.bin"
	same_bytes "--listen [::1]:0: the port is reported, bytes served over IPv6" "$W/k64.bin" "$T_TMP/got"
	kill -TERM "$vpid"
	wait_bg "$vpid" 10
fi

# ---- wget -r of a tree --------------------------------------------------------------------------
if need wget "wget -r of a tree"; then
	sv_start --workers 2 --list "$W/sub" || done_testing
	T=$W/sub
	for i in 1 2 3; do
		mkdir -p "$T/d$i/e"
		"$ZGEN" $((i * 7000)) $((10 + i)) > "$T/d$i/small$i.bin"
		"$ZGEN" $((i * 300))k $((20 + i)) > "$T/d$i/e/large$i.bin"
	done
	rm "$T/index.html"   # let the listing link everything
	(cd "$T_TMP" && wget -q -r -np -nH -P mirror "$SV_URL/")
	bad="" n=0
	while IFS= read -r f; do
		n=$((n + 1))
		cmp -s "$T/$f" "$T_TMP/mirror/$f" || bad+=" $f"
	done < <(cd "$T" && find . -type f | sed 's|^\./||')
	if [ -z "$bad" ] && [ "$n" -ge 7 ]; then
		pass "wget -r: all $n files of the tree, same bytes"
	else
		fail "wget -r: all files of the tree" "$n files, differing or missing:$bad"
	fi
	sv_fds "wget -r" 60
	sv_stop "wget -r"
fi

done_testing
