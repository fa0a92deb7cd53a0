#!/usr/bin/env bash
# serve_browser.sh - headless Chromium loads a page with its stylesheet,
# script and images from zcio serve: the DOM it dumps shows the script ran
# with the stylesheet applied and both images decoded (one small, sent with
# writev; one of 192 KiB, sent through a link), and the access log shows
# each of those requests answered 200 with its full size.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"
. "$ROOT/tests/helpers/sv_lib.sh"

need_helpers || done_testing
sv_need || done_testing
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
	skip "headless Chromium loads a page" "chromium not installed"
	done_testing
fi

W=$T_TMP/www
mkdir -p "$W/css" "$W/js" "$W/img"
cat > "$W/index.html" <<'EOF'
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>zcio test page</title>
<link rel="stylesheet" href="css/site.css">
</head>
<body>
<h1 id="title">Served by zcio</h1>
<img id="dot" src="img/dot.png" alt="dot">
<img id="big" src="img/big.bmp" alt="big">
<p id="report">script did not run</p>
<script src="js/app.js"></script>
</body></html>
EOF
echo 'h1 { color: rgb(1, 2, 3); }' > "$W/css/site.css"
cat > "$W/js/app.js" <<'EOF'
function report() {
	var dot = document.getElementById('dot'), big = document.getElementById('big');
	document.getElementById('report').textContent = 'script ran; css ' +
		getComputedStyle(document.getElementById('title')).color + '; dot ' +
		dot.naturalWidth + 'x' + dot.naturalHeight + '; big ' +
		big.naturalWidth + 'x' + big.naturalHeight;
}
report();
window.addEventListener('load', report);
EOF
# A 1x1 PNG, and a 256x256 24-bit BMP of pseudo-random pixels.
printf '\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90\x77\x53\xde\x00\x00\x00\x0c\x49\x44\x41\x54\x78\x9c\x63\xf8\xdf\xc0\x00\x00\x04\x01\x01\x80\xc5\x2a\x18\x5d\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82' > "$W/img/dot.png"
le32() { printf "\\x$(printf %02x $(($1 & 255)))\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))\\x$(printf %02x $(($1 >> 24 & 255)))"; }
{
	printf 'BM'; le32 196662; le32 0; le32 54
	le32 40; le32 256; le32 256; printf '\x01\x00\x18\x00'; le32 0; le32 196608
	le32 2835; le32 2835; le32 0; le32 0
	"$ZGEN" 196608 5
} > "$W/img/big.bmp"

sv_start --workers 2 "$W" || done_testing
PROFILE=$T_TMP/prof
chrome() {
	timeout -k 5 90 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--disable-dev-shm-usage --user-data-dir="$PROFILE" "$@"
}
chrome --dump-dom "$SV_URL/" > "$T_TMP/dom" 2> "$T_TMP/chrome.err"
rc=$?
if [ "$rc" = 0 ] && grep -q 'Served by zcio' "$T_TMP/dom" &&
	grep -q 'script ran; css rgb(1, 2, 3); dot 1x1; big 256x256' "$T_TMP/dom"; then
	pass "chromium: the page, its script run, stylesheet applied, both images decoded"
else
	fail "chromium: the page, script, stylesheet and images" "status $rc; $(grep -o '<p id="report">[^<]*' "$T_TMP/dom"); $(tail -n 3 "$T_TMP/chrome.err")"
fi
all=true
for want in '"GET / HTTP/1.1" 200 [0-9]+' '"GET /css/site.css HTTP/1.1" 200 28' \
	'"GET /js/app.js HTTP/1.1" 200 [0-9]+' '"GET /img/dot.png HTTP/1.1" 200 69' \
	'"GET /img/big.bmp HTTP/1.1" 200 196662'; do
	sv_log_wait "$want\$" || { all=false; fail "access log: $want" "$(grep -c GET "$SV_OUT") lines: $(cut -d'"' -f2,3 "$SV_OUT" | tr '\n' ';')"; }
done
$all && pass "access log: the page, stylesheet, script and both images, 200 and full size"

chrome --screenshot="$T_TMP/shot.png" --window-size=640,480 "$SV_URL/" > /dev/null 2>> "$T_TMP/chrome.err"
if [ "$(head -c 8 "$T_TMP/shot.png" 2>/dev/null | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ]; then
	pass "chromium --screenshot of the page"
else
	fail "chromium --screenshot of the page" "$(tail -n 3 "$T_TMP/chrome.err")"
fi
sv_fds "chromium" 20
sv_stop "chromium"
done_testing
