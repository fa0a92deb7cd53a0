#!/usr/bin/env bash
# relay_duplex.sh - zcio relay moves bytes both ways at once, byte-exact,
# between every pair of socket kinds: TCP over IPv4 and IPv6 and unix
# sockets on either side, spliced and with --copy, with one worker, and
# with pipes of one page and of 64 KiB.  Each pair gets large
# streams both ways at once, an echo, and many connections of sizes from 1
# byte to 1 MiB (below and above the 4 KiB copy threshold).  Afterwards the
# relay holds no more fds than when it started and no pipe, and its --stats
# count exactly the bytes each way, some spliced (none with --copy).
#
# First, the checker itself: a flipped byte either way, or a short stream,
# must make the client fail.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"
. "$ROOT/tests/helpers/rl_lib.sh"

need_rl || done_testing

# ---- the checker catches what it must ------------------------------------
peer_start 127.0.0.1:0 --corrupt-at 1000000 || done_testing
if "$RL_PEER" client "$PEER_ADDR" --op duplex --up 2M --down 2M > "$T_TMP/c.out" 2>&1; then
	fail "checker: a flipped byte coming back fails" "client passed: $(cat "$T_TMP/c.out")"
elif grep -q 'wrong byte at offset 1000000 ' "$T_TMP/c.out"; then
	pass "checker: a flipped byte coming back fails"
else
	fail "checker: a flipped byte coming back fails" "$(head -c 300 "$T_TMP/c.out")"
fi
peer_stop
peer_start 127.0.0.1:0 --short 1 || done_testing
if "$RL_PEER" client "$PEER_ADDR" --op source --down 3M > "$T_TMP/c.out" 2>&1; then
	fail "checker: a stream one byte short fails" "client passed: $(cat "$T_TMP/c.out")"
elif grep -q 'stream ended after 3145727 of 3145728 bytes' "$T_TMP/c.out"; then
	pass "checker: a stream one byte short fails"
else
	fail "checker: a stream one byte short fails" "$(head -c 300 "$T_TMP/c.out")"
fi
peer_stop
peer_start 127.0.0.1:0 || done_testing
if "$RL_PEER" client "$PEER_ADDR" --op duplex --up 2M --down 1M --corrupt-at 7 > "$T_TMP/c.out" 2>&1; then
	fail "checker: a flipped byte going out fails" "client passed: $(cat "$T_TMP/c.out")"
elif grep -q 'server got 2097152 of 2097152 bytes, first wrong at 7$\|first wrong at 7 ' "$T_TMP/c.out"; then
	pass "checker: a flipped byte going out fails"
else
	fail "checker: a flipped byte going out fails" "$(head -c 300 "$T_TMP/c.out")"
fi
if "$RL_PEER" client "$PEER_ADDR" --op duplex --up 2M --down 1M > "$T_TMP/c.out" 2>&1; then
	pass "checker: the same exchange unharmed passes"
else
	fail "checker: the same exchange unharmed passes" "$(head -c 300 "$T_TMP/c.out")"
fi
peer_stop

# ---- the matrix ----------------------------------------------------------

# target_addr KIND: where a peer of that kind listens.
peer_for() {
	case $1 in
	tcp4) peer_start 127.0.0.1:0 ;;
	tcp6) peer_start "[::1]:0" ;;
	unix) rl_dir; peer_start "unix:$RL_DIR/peer.sock" ;;
	esac
}

# pair LISTEN TARGET [relay options]
pair() {
	local l=$1 t=$2 n
	shift 2
	n="relay $l -> $t${*:+ $*}"
	if [ "$l" = tcp6 ] || [ "$t" = tcp6 ]; then
		if ! have_ipv6; then
			skip "$n" "no IPv6 loopback (::1)"
			return
		fi
	fi
	peer_for "$t" || return
	relay_start "$l" "$PEER_ADDR" --stats "$@" || { peer_stop; return; }
	RL_UP=0 RL_DOWN=0
	rl_client "$n: 8 MiB each way at once, 3 connections" \
		--op duplex --up 8M --down 8M --count 3 --conns 3 --seed 11
	rl_client "$n: echo 4 MiB, 2 connections" --op echo --up 4M --count 2 --conns 2 --seed 12
	rl_client "$n: 64 connections, 1 B to 1 MiB each way" \
		--op duplex --sizes 1:1M --count 64 --conns 8 --seed 13
	peer_all_ok "$n: the server saw all 69 streams whole" 69
	relay_settled "$n"
	relay_stop "$n"
	RELAY_COPY=0
	[[ " $* " == *" --copy "* ]] && RELAY_COPY=1
	relay_counted "$n"
	peer_stop
}

for l in tcp4 tcp6 unix; do
	for t in tcp4 tcp6 unix; do
		pair "$l" "$t"
	done
done
pair tcp4 tcp4 --copy
pair unix tcp6 --copy
pair tcp4 unix --workers 1
# Small pipes: a page, and the kernel's default 64 KiB, where socket data
# fills the page slots long before the bytes.
pair tcp4 tcp4 --pipe-size 4096
pair unix tcp4 --pipe-size 64K

done_testing
