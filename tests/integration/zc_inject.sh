#!/usr/bin/env bash
# zc_inject.sh - the fallbacks of zero-copy from user memory, forced with
# strace fault injection, each checked byte for byte:
#
#   sendmsg ENOBUFS        MSG_ZEROCOPY sends fail: sent by copying at once
#   setsockopt ENOPROTOOPT SO_ZEROCOPY refused (an old kernel): all copies
#   getsockopt ENOPROTOOPT no TCP_ZEROCOPY_RECEIVE: received by recv()
#   vmsplice ENOSYS/EPERM  the ring writes to its pipe instead
#   memfd_create EMFILE    the ring cannot be made: a clean error
#
# Loopback only: the receiver is on this host.
. "$(dirname "$0")/../lib.sh"

PEER=$ROOT/build/helpers/zc_peer
ZLOGGER=$ROOT/build/examples/zlogger

for p in "$PEER" "$ZLOGGER"; do
	if [ ! -x "$p" ]; then
		fail "$(basename "$p") built" "$p missing (make helpers examples)"
		done_testing
	fi
done
need strace "fault injection" || done_testing
if ! strace -qq -e inject=getpid:error=ENOSYS -e trace=getpid true 2>/dev/null; then
	skip "fault injection" "this strace cannot inject faults"
	done_testing
fi

key() { sed -n "s/^$2: //p" "$1" | head -n 1; }
port=$((20000 + $$ % 20000))

# pair NAME "RECV ARGS" "SEND PREFIX" SEND ARGS...: a receiver on loopback,
# a sender run as SEND PREFIX zc_peer send SEND ARGS.
pair() {
	local name=$1 rargs=$2 prefix=$3 i
	shift 3
	port=$((port + 1))
	timeout 120 $PEER recv $rargs 127.0.0.1 "$port" >"$T_TMP/recv.out" 2>"$T_TMP/recv.err" &
	local rpid=$!
	for i in $(seq 100); do
		grep -q listening "$T_TMP/recv.out" 2>/dev/null && break
		sleep 0.05
	done
	timeout 120 $prefix "$PEER" send "$@" 127.0.0.1 "$port" >"$T_TMP/send.out" 2>"$T_TMP/send.err"
	local src=$?
	wait "$rpid"
	local rrc=$?
	if [ $src = 0 ] && [ $rrc = 0 ] && [ "$(key "$T_TMP/recv.out" bad_at)" = none ]; then
		pass "$name: $(key "$T_TMP/recv.out" bytes) bytes right"
	else
		fail "$name" "send $src ($(grep -v '^+++\|^---' "$T_TMP/send.err" | tail -n 2 | tr '\n' ' ')), recv $rrc, bad_at $(key "$T_TMP/recv.out" bad_at)"
		return 1
	fi
}

# Every other MSG_ZEROCOPY sendmsg() fails with ENOBUFS.  Plain sends use
# sendto(), so the fallback itself is not hit.
if pair "sendmsg ENOBUFS" "--delay 100" \
	"strace -f -qq -o /dev/null -e trace=sendmsg -e inject=sendmsg:error=ENOBUFS:when=2+2" \
	--method zcsend --always --total 16M --msg 128k; then
	e=$(key "$T_TMP/send.out" enobufs)
	if [ "${e:-0}" -gt 0 ] && [ "$(key "$T_TMP/send.out" copy_sends)" -gt 0 ] &&
		[ "$(key "$T_TMP/send.out" completions)" = "$(key "$T_TMP/send.out" zc_sends)" ]; then
		pass "sendmsg ENOBUFS: $e sends copied instead, the rest completed"
	else
		fail "sendmsg ENOBUFS: copied instead" "$(tr '\n' ' ' <"$T_TMP/send.out")"
	fi
	grep -q "stats: fallback: msg-zerocopy -> copy: refused for these fds (No buffer space available)" \
		"$T_TMP/send.out" && pass "sendmsg ENOBUFS: the fallback is in the stats" ||
		fail "sendmsg ENOBUFS: the fallback is in the stats" "$(grep stats: "$T_TMP/send.out" | tr '\n' ' ')"
fi

# The ring to a socket, ENOBUFS on every MSG_ZEROCOPY send.
pair "ring, sendmsg ENOBUFS always" "--delay 50" \
	"strace -f -qq -o /dev/null -e trace=sendmsg -e inject=sendmsg:error=ENOBUFS" \
	--method ring --always --total 8M --msg 64k &&
	{ grep -q "stats: copy: 8388608 bytes" "$T_TMP/send.out" &&
		pass "ring, sendmsg ENOBUFS always: everything copied, nothing waited" ||
		fail "ring, sendmsg ENOBUFS always: everything copied" "$(grep stats: "$T_TMP/send.out" | tr '\n' ' ')"; }

# SO_ZEROCOPY refused.
if pair "setsockopt ENOPROTOOPT" "" \
	"strace -f -qq -o /dev/null -e trace=setsockopt -e inject=setsockopt:error=ENOPROTOOPT" \
	--method zcsend --always --total 8M; then
	if [ "$(key "$T_TMP/send.out" off)" = 2 ] && [ "$(key "$T_TMP/send.out" zc_sends)" = 0 ]; then
		pass "setsockopt ENOPROTOOPT: zero-copy off (unsupported), every send copied"
	else
		fail "setsockopt ENOPROTOOPT: zero-copy off" "$(tr '\n' ' ' <"$T_TMP/send.out")"
	fi
fi

# No TCP_ZEROCOPY_RECEIVE: the receiver copies everything.  (The first
# getsockopt() is zcrecv_new's SO_TYPE; the ones after it are the receives.)
port=$((port + 1))
timeout 60 strace -f -qq -o /dev/null -e trace=getsockopt -e inject=getsockopt:error=ENOPROTOOPT:when=2+ \
	"$PEER" recv --zcrecv 127.0.0.1 "$port" >"$T_TMP/recv.out" 2>"$T_TMP/recv.err" &
rpid=$!
for i in $(seq 100); do grep -q listening "$T_TMP/recv.out" 2>/dev/null && break; sleep 0.05; done
timeout 60 "$PEER" send --method zcsend --always --total 8M 127.0.0.1 "$port" >"$T_TMP/send.out" 2>&1
wait "$rpid"
if [ "$(key "$T_TMP/recv.out" bad_at)" = none ] && [ "$(key "$T_TMP/recv.out" mapped)" = 0 ] &&
	[ "$(key "$T_TMP/recv.out" copied_bytes)" = 8388608 ]; then
	pass "getsockopt ENOPROTOOPT: zcrecv received all 8 MiB by copy"
else
	fail "getsockopt ENOPROTOOPT: zcrecv received by copy" "$(tr '\n' ' ' <"$T_TMP/recv.out")"
fi

# ---- the ring's vmsplice() and memfd_create() ----------------------------

N=200000
awk -v n=$N 'BEGIN { for (i = 0; i < n; i++) printf "seq=%08d level=info msg=the quick brown fox jumps over the lazy dog\n", i }' >"$T_TMP/want"

for err in ENOSYS EPERM; do
	timeout 60 strace -qq -o /dev/null -e trace=vmsplice -e inject=vmsplice:error=$err \
		"$ZLOGGER" -z -s -n $N - 2>"$T_TMP/zl.err" | cat >"$T_TMP/got"
	same_bytes "vmsplice $err: the ring writes its pipe instead" "$T_TMP/want" "$T_TMP/got"
	why=$([ $err = ENOSYS ] && echo "syscall not in this kernel" || echo "syscall forbidden")
	if grep -q "fallback: vmsplice -> copy: $why" "$T_TMP/zl.err" && ! grep -q "^vmsplice:" "$T_TMP/zl.err"; then
		pass "vmsplice $err: recorded as '$why', no byte by vmsplice"
	else
		fail "vmsplice $err: recorded" "$(tr '\n' ' ' <"$T_TMP/zl.err")"
	fi
done

timeout 60 strace -qq -o /dev/null -e trace=memfd_create -e inject=memfd_create:error=EMFILE \
	"$ZLOGGER" -n 10 - >/dev/null 2>"$T_TMP/zl.err"
rc=$?
if [ $rc = 1 ] && grep -q "zcio_ring_new: Too many open files" "$T_TMP/zl.err"; then
	pass "memfd_create EMFILE: zcio_ring_new fails cleanly"
else
	fail "memfd_create EMFILE: zcio_ring_new fails cleanly" "exit $rc: $(tr '\n' ' ' <"$T_TMP/zl.err")"
fi

done_testing
