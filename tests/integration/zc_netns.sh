#!/usr/bin/env bash
# zc_netns.sh - zero-copy from user memory across a veth pair between two
# network namespaces (scripts/netns-testbed), with slow receivers so that
# buffers stay in flight for long: MSG_ZEROCOPY sends (zcio_zcsend), the
# ring to a socket, TCP_ZEROCOPY_RECEIVE, ENOBUFS from a tiny optmem_max,
# and `zcio calibrate --netns` writing a thresholds file the library reads.
# Every byte is checked by the receiver against the stream pattern.
#
# Needs root and iproute2: skipped, visibly, where namespaces cannot be
# made.  Nothing leaves the machine: the two namespaces only know each
# other's 10.x address.
. "$(dirname "$0")/../lib.sh"

PEER=$ROOT/build/helpers/zc_peer
TESTBED=$ROOT/scripts/netns-testbed
# A private bed per run: tests may run in parallel with other users of
# the default names.
export ZCIO_NETNS=zct$$
export ZCIO_NETNS_NET=$((200 + $$ % 50)).$(($$ / 50 % 250))

if [ ! -x "$PEER" ]; then
	fail "zc_peer built" "$PEER missing (run make helpers)"
	done_testing
fi
if [ "$(id -u)" != 0 ] || ! have ip; then
	skip "network namespaces" "needs root and iproute2 (ip netns)"
	done_testing
fi

out=$("$TESTBED" up 2>&1)
rc=$?
if [ $rc = 77 ]; then
	skip "network namespaces" "$out"
	done_testing
fi
at_exit "'$TESTBED' down"
if [ $rc != 0 ]; then
	fail "netns-testbed up" "exit $rc: $out"
	done_testing
fi
eval "$out" # NS_A NS_B ADDR_A ADDR_B ADDR_SINK DEV_A DEV_B
pass "netns-testbed up: $NS_A ($ADDR_A) <-> $NS_B ($ADDR_B)"

# The bed is what it says: two namespaces, one address each, no way out.
if ip netns list | grep -q "^$NS_A\b" && ip netns list | grep -q "^$NS_B\b" &&
	ip -n "$NS_A" -4 addr show dev "$DEV_A" | grep -q "inet $ADDR_A/24" &&
	ip -n "$NS_B" -4 addr show dev "$DEV_B" | grep -q "inet $ADDR_B/24" &&
	! ip -n "$NS_A" route show | grep -q default &&
	! ip -n "$NS_B" route show | grep -q default; then
	pass "testbed: a veth with 10.x/24 addresses, no default route"
else
	fail "testbed: a veth with 10.x/24 addresses, no default route" \
		"$(ip -n "$NS_A" addr 2>&1 | tr '\n' ' ')"
fi
check "testbed: exec runs in namespace a" \
	bash -c "'$TESTBED' exec a ip -4 addr show | grep -q '$ADDR_A'"

port=$((30000 + $$ % 20000))

# key FILE KEY: the value of "KEY: value" in FILE.
key() { sed -n "s/^$2: //p" "$1" | head -n 1; }

# transfer NAME RECV_ARGS -- SEND_ARGS: a receiver in b, a sender in a.
# Leaves the outputs in $T_TMP/recv.out and $T_TMP/send.out.
transfer() {
	local name=$1 i
	shift
	local rargs=() sargs=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do rargs+=("$1"); shift; done
	shift
	sargs=("$@")
	port=$((port + 1))
	"$TESTBED" exec b timeout 120 "$PEER" recv "${rargs[@]}" "$ADDR_B" "$port" \
		>"$T_TMP/recv.out" 2>"$T_TMP/recv.err" &
	local rpid=$!
	for i in $(seq 100); do
		grep -q listening "$T_TMP/recv.out" 2>/dev/null && break
		sleep 0.05
	done
	"$TESTBED" exec a timeout 120 "$PEER" send "${sargs[@]}" "$ADDR_B" "$port" \
		>"$T_TMP/send.out" 2>"$T_TMP/send.err"
	local src=$?
	wait "$rpid"
	local rrc=$?
	local total
	total=$(key "$T_TMP/recv.out" bytes)
	if [ $src = 0 ] && [ $rrc = 0 ] && [ "$(key "$T_TMP/recv.out" bad_at)" = none ]; then
		pass "$name: $total bytes, every one right"
	else
		fail "$name" "send exit $src ($(tr '\n' ' ' <"$T_TMP/send.err")), recv exit $rrc, bytes $total, bad_at $(key "$T_TMP/recv.out" bad_at) ($(tr '\n' ' ' <"$T_TMP/recv.err"))"
		return 1
	fi
}

# MSG_ZEROCOPY for every send, a slow receiver: buffers wait in the
# sender's queue for their completions, and are written again only after.
if transfer "zcsend --always, slow receiver" --delay 300 --chunk 64k -- \
	--method zcsend --always --total 24M --msg 128k; then
	zc=$(key "$T_TMP/send.out" zc_sends)
	comp=$(key "$T_TMP/send.out" completions)
	copied=$(key "$T_TMP/send.out" copied)
	echo "# zc sends $zc, completions $comp (copied by the kernel: $copied), notifications $(key "$T_TMP/send.out" notifications)"
	if [ "${zc:-0}" -gt 0 ] && [ "$comp" = "$zc" ] && [ "$(key "$T_TMP/send.out" in_flight)" = 0 ]; then
		pass "zcsend --always: every MSG_ZEROCOPY send completed ($zc)"
	else
		fail "zcsend --always: every MSG_ZEROCOPY send completed" "zc $zc completions $comp"
	fi
fi

# The default: zero-copy until a completion says the kernel copied (a
# receiver on this host always does), then plain sends.
if transfer "zcsend default" -- --method zcsend --total 24M --msg 256k; then
	off=$(key "$T_TMP/send.out" off)
	echo "# default zcsend: zc sends $(key "$T_TMP/send.out" zc_sends), copy sends $(key "$T_TMP/send.out" copy_sends), copied $(key "$T_TMP/send.out" copied), off $off"
	if [ "$(key "$T_TMP/send.out" copied)" -gt 0 ]; then
		if [ "$off" = 3 ] && [ "$(key "$T_TMP/send.out" copy_sends)" -gt 0 ]; then
			pass "zcsend default: COPIED completions across the veth turn zero-copy off"
		else
			fail "zcsend default: COPIED completions turn zero-copy off" "off $off"
		fi
	else
		skip "zcsend default: COPIED completions turn zero-copy off" "the kernel did not copy"
	fi
fi

transfer "ring to a socket across the veth, zero-copy always, slow receiver" \
	--delay 200 --chunk 64k -- --method ring --always --total 16M --msg 64k &&
	grep -q "stats: msg-zerocopy: " "$T_TMP/send.out" &&
	pass "ring --always: bytes went by MSG_ZEROCOPY"

transfer "ring to a socket across the veth, defaults" -- --method ring --total 16M --msg 100k

# TCP_ZEROCOPY_RECEIVE on the receiving side: pages a MSG_ZEROCOPY sender
# sent are copied into whole pages on delivery, which the receiver maps.
if transfer "zcrecv across the veth" --zcrecv -- --method zcsend --always --total 32M --msg 1M; then
	echo "# zcrecv: mapped $(key "$T_TMP/recv.out" mapped), copied $(key "$T_TMP/recv.out" copied_bytes)"
	m=$(key "$T_TMP/recv.out" mapped)
	t=$(key "$T_TMP/recv.out" bytes)
	if [ $((m + $(key "$T_TMP/recv.out" copied_bytes))) = "$t" ]; then
		pass "zcrecv: mapped + copied = received"
	else
		fail "zcrecv: mapped + copied = received" "$(tr '\n' ' ' <"$T_TMP/recv.out")"
	fi
fi
transfer "zcrecv of a write() sender" --zcrecv -- --method write --total 8M

# ---- real zero-copy: frames that leave and are dropped past the veth ------

# Every local receiver gets a copy of MSG_ZEROCOPY pages; the testbed's sink
# (a neighbour whose MAC nobody has) is where frames go out and are not
# delivered: there the kernel sends the pages themselves.
if "$TESTBED" exec a timeout 60 "$PEER" udp --count 3000 --msg 4k "$ADDR_SINK" 9 \
	>"$T_TMP/udp.out" 2>"$T_TMP/udp.err"; then
	zc=$(key "$T_TMP/udp.out" zc_sends)
	echo "# udp to the sink: zc sends $zc, completions $(key "$T_TMP/udp.out" completions), copied $(key "$T_TMP/udp.out" copied)"
	if [ "${zc:-0}" -gt 0 ] && [ "$(key "$T_TMP/udp.out" completions)" = "$zc" ] &&
		[ "$(key "$T_TMP/udp.out" copied)" = 0 ]; then
		pass "MSG_ZEROCOPY to the sink: every send completed, none copied"
	else
		fail "MSG_ZEROCOPY to the sink: none copied" "$(tr '\n' ' ' <"$T_TMP/udp.out")"
	fi
else
	fail "MSG_ZEROCOPY to the sink" "$(tr '\n' ' ' <"$T_TMP/udp.err") $(tr '\n' ' ' <"$T_TMP/udp.out")"
fi

# ---- ENOBUFS: optmem_max of 1000 bytes in the sender's namespace ----------

if out=$("$TESTBED" up --optmem 1000 2>&1); then
	eval "$out"
	if transfer "ENOBUFS: tiny optmem_max, zcsend --always" --delay 200 --chunk 64k -- \
		--method zcsend --always --total 8M --msg 64k; then
		e=$(key "$T_TMP/send.out" enobufs)
		echo "# enobufs $e, zc sends $(key "$T_TMP/send.out" zc_sends), copy sends $(key "$T_TMP/send.out" copy_sends)"
		if [ "${e:-0}" -gt 0 ] && [ "$(key "$T_TMP/send.out" copy_sends)" -gt 0 ]; then
			pass "ENOBUFS: answered by copying, never waited for"
		else
			fail "ENOBUFS: answered by copying" "$(tr '\n' ' ' <"$T_TMP/send.out")"
		fi
	fi
else
	skip "ENOBUFS: tiny optmem_max" "$out"
fi

# ---- calibrate across the veth -------------------------------------------

if [ -x "$ZCIO" ]; then
	thr=$T_TMP/thresholds
	if timeout 120 "$ZCIO" calibrate --quick --netns "$NS_A:$NS_B" \
		--routes file_socket,memory_socket -o "$thr" >"$T_TMP/cal.out" 2>"$T_TMP/cal.err"; then
		if grep -qE '^file_socket +([0-9]+[kMG]?|never)$' "$thr" && grep -q 'across a veth' "$thr"; then
			pass "calibrate --netns: thresholds file with file_socket"
		else
			fail "calibrate --netns: thresholds file" "$(tr '\n' ' ' <"$thr")"
		fi
		# The receiver is on this host: every MSG_ZEROCOPY completion
		# is COPIED, and such a result must not become a threshold.
		if grep -q '^# memory_socket: not written: all [0-9]* completions said COPIED' "$thr" &&
			! grep -q '^memory_socket ' "$thr"; then
			pass "calibrate --netns: memory_socket not written, every completion was COPIED"
		elif grep -qE '^memory_socket +([0-9]+[kMG]?|never)$' "$thr"; then
			pass "calibrate --netns: memory_socket measured with real zero-copy completions"
		else
			fail "calibrate --netns: memory_socket" "$(tr '\n' ' ' <"$thr")"
		fi
		want=$(sed -n 's/^file_socket  *//p' "$thr")
		got=$(ZCIO_THRESHOLDS=$thr "$ZCIO" calibrate --show)
		if grep -qx "source: $thr" <<<"$got" && grep -qE "^file_socket +$want$" <<<"$got"; then
			pass "the library reads the file calibrate wrote (file_socket $want)"
		else
			fail "the library reads the file calibrate wrote" "$(tr '\n' ' ' <<<"$got")"
		fi
	else
		fail "calibrate --netns" "$(tail -n 3 "$T_TMP/cal.err" | tr '\n' ' ')"
	fi
else
	fail "zcio built" "$ZCIO missing"
fi

# ---- send-sizes: the automatic choice compared run by run ----------------
# calibrate --report pairs the runs of one repetition: auto/best must be
# the median of auto's MiB/s over the best safe fixed method's, run by run,
# and "best" the safe method with the highest median.  Recomputed here from
# the runs the JSON lists.

if [ -x "$ZCIO" ] && have python3; then
	if timeout 120 "$ZCIO" calibrate --report --quick --repeat 2 --netns "$NS_A:$NS_B" \
		--routes memory_pipe -n --json "$T_TMP/report.json" >"$T_TMP/report.out" 2>"$T_TMP/report.err"; then
		if python3 - "$T_TMP/report.json" >"$T_TMP/report.check" 2>&1 <<'PY'
import json, math, statistics, sys
d = json.load(open(sys.argv[1]))
rows = d["send_sizes"]
methods = ["write", "vmsplice", "ring", "msg_zerocopy", "auto", "send_zc", "send_zc_fixed"]
safe = ["write", "ring", "msg_zerocopy", "send_zc", "send_zc_fixed"]
groups = {}
for r in rows:
    groups.setdefault((r["size"], r["touched"]), {})[r["method"]] = r
assert len(groups) == 6, "3 sizes x untouched/touched: %d groups" % len(groups)
for key, g in groups.items():
    assert sorted(g) == sorted(methods), (key, sorted(g))
    for r in g.values():
        assert len(r["runs_mib_s"]) == 2, (key, r["method"], r["runs_mib_s"])
    ok = [m for m in safe if g[m]["ok"]]
    best = max(ok, key=lambda m: g[m]["mib_s"])
    a = g["auto"]
    assert a["best"] == best, (key, a["best"], best)
    q = [x / y for x, y in zip(a["runs_mib_s"], g[best]["runs_mib_s"]) if x and y]
    want = statistics.median(q)
    assert math.isclose(a["vs_best"], want, rel_tol=1e-4), (key, a["vs_best"], want)
    q = [x / y for x, y in zip(a["runs_mib_s"], g["write"]["runs_mib_s"]) if x and y]
    assert math.isclose(a["vs_write"], statistics.median(q), rel_tol=1e-4), key
    # SEND_ZC from registered buffers: every zero-copy send was a fixed one,
    # and none of the unregistered method's.
    f = g["send_zc_fixed"]
    if f["ok"]:
        assert f["zc_sends"] > 0 and f["fixed_sends"] == f["zc_sends"], (key, f["zc_sends"], f["fixed_sends"])
        assert g["send_zc"]["fixed_sends"] == 0, key
    else:
        assert "unavailable" in f["note"] or "not registered" in f["note"], (key, f["note"])
    print(key, "auto/best %.3f (%s)" % (a["vs_best"], best))
PY
		then
			pass "calibrate --report: auto/best and auto/write are the paired medians of the listed runs"
		else
			fail "calibrate --report: paired ratios" "$(tail -n 3 "$T_TMP/report.check" | tr '\n' ' ')"
		fi
		if grep -q 'auto/best (best)' "$T_TMP/report.out"; then
			pass "calibrate --report prints auto/best per size"
		else
			fail "calibrate --report prints auto/best" "$(head -c 300 "$T_TMP/report.out")"
		fi
	else
		fail "calibrate --report" "$(tail -n 3 "$T_TMP/report.err" | tr '\n' ' ')"
	fi
elif [ -x "$ZCIO" ]; then
	skip "calibrate --report: paired ratios" "python3 not installed"
fi

# ---- down removes everything ---------------------------------------------

"$TESTBED" down
if ip netns list | grep -qE "^($NS_A|$NS_B)\b" || ip link show "$DEV_A" >/dev/null 2>&1; then
	fail "netns-testbed down removes the namespaces and the veth" "$(ip netns list | tr '\n' ' ')"
else
	pass "netns-testbed down removes the namespaces and the veth"
fi
check "netns-testbed down twice is fine" "$TESTBED" down
check "netns-testbed status fails when down" bash -c "! '$TESTBED' status"

done_testing
