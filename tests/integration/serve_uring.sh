#!/usr/bin/env bash
# serve_uring.sh - zcio serve --uring: large bodies leave through each
# worker's io_uring (header into a pipe, file spliced behind it, pipe
# spliced to the socket) and keep every promise of the epoll path:
#
#  - bodies of 0, 1, 64 KiB-1, 1 MiB and 64 MiB arrive exact (checksums),
#    and --stats says the large ones went through the ring, none by
#    sendfile;
#  - ranges (206) of a large file, HEAD, keep-alive (several large GETs on
#    one connection) and pipelining (small answers queued behind a large
#    body stay in order);
#  - 64 clients at once fetching 8 MiB each;
#  - clients leaving mid-body: the server stays up and holds no more fds
#    than when it started (sockets, pipes: /proc/PID/fd);
#  - a file truncated while sent: the connection closes short of the
#    announced length, with a true prefix, fast; the server goes on;
#  - a body cancelled in the ring: clients that stop reading, closed by
#    --send-timeout, and SIGTERM with such bodies in flight;
#  - io_uring_setup failing with ENOSYS (not in the kernel) or EPERM
#    (io_uring_disabled, seccomp), io_uring_register failing (no probe:
#    before 5.6): one warning, the epoll path, exact bytes.
#
# Where io_uring cannot run (or zcio was built without liburing) the server
# says so and every part needing it is skipped, visibly.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"
. "$ROOT/tests/helpers/sv_lib.sh"

need_helpers || done_testing
sv_need || done_testing

W=$T_TMP/www
mkdir -p "$W"
: > "$W/zero.bin"
"$ZGEN" 1 1 > "$W/one.bin"
"$ZGEN" 65535 2 > "$W/k64.bin"
"$ZGEN" 1M 3 > "$W/m1.bin"
"$ZGEN" 8M 4 > "$W/m8.bin"
"$ZGEN" 64M 5 > "$T_TMP/orig64"
cp "$T_TMP/orig64" "$W/m64.bin"
"$ZGEN" 7k 6 > "$W/k7.bin"

# stats_line: the last --stats line, after asking for a fresh one.
stats_line() {
	local t n
	n=$(grep -c 'stats:' "$SV_ERR")
	kill -USR1 "$SV_PID"
	for t in $(seq 30); do
		[ "$(grep -c 'stats:' "$SV_ERR")" -gt "$n" ] && break
		sleep 0.1
	done
	grep 'stats:' "$SV_ERR" | tail -n 1
}

# all_fds PID: every fd of the process (rings and eventfds included).
all_fds() { ls "/proc/$1/fd" 2> /dev/null | wc -l; }

# settled_fds: the server's fds other than regular files (sockets, pipes,
# rings, eventfds...) once no connection is left (closing ones linger up
# to 2 s) and an idle worker has closed its spare pipes (back to PIPES0,
# the pipes it inherited).  Files are left out: each worker's open-file
# cache may have opened one more meanwhile.
settled_fds() {
	local t
	for t in $(seq 50); do
		[ "$(sv_kind "$SV_PID" socket)" -le "$SV_SOCKS0" ] &&
			[ "$(sv_kind "$SV_PID" pipe)" -le "$PIPES0" ] && break
		sleep 0.1
	done
	echo $(($(all_fds "$SV_PID") - $(sv_kind "$SV_PID" file)))
}

# ---- does --uring run here? ----------------------------------------------------

sv_start --workers 2 --stats --uring "$W" || done_testing
PIPES0=$(sv_kind "$SV_PID" pipe)
URING_WHY=
if ! grep -q 'bodies via io_uring splice' "$SV_ERR"; then
	URING_WHY=$(grep -m1 -- '--uring' "$SV_ERR" || echo "no io_uring in: $(head -n 2 "$SV_ERR")")
fi

uring() {
	if [ -n "$URING_WHY" ]; then
		skip "$1" "io_uring path unavailable: $URING_WHY"
		return 1
	fi
}

if uring "--uring: each worker holds a ring"; then
	rings=$(find "/proc/$SV_PID/fd" -lname 'anon_inode:\[io_uring\]' 2> /dev/null | wc -l)
	if [ "$rings" = 2 ] && ! grep -q 'using epoll' "$SV_ERR"; then
		pass "--uring: each worker holds a ring ($rings rings)"
	else
		fail "--uring: each worker holds a ring" "$rings rings: $(head -n 3 "$SV_ERR")"
	fi
fi

if [ -z "$URING_WHY" ]; then
	# ---- bodies, whole ----------------------------------------------------------
	for f in zero one k64 m1 m64; do
		curl -s --max-time 20 -o "$T_TMP/got" "$SV_URL/$f.bin"
		same_bytes "--uring: $f.bin ($(size_of "$W/$f.bin") bytes)" "$W/$f.bin" "$T_TMP/got"
	done
	# k64, m1, m64: three large bodies, all through the ring.
	st=$(stats_line)
	nb=0
	[[ $st =~ io_uring\ bodies\ ([0-9]+) ]] && nb=${BASH_REMATCH[1]}
	if [ "$nb" -ge 3 ] && [[ $st =~ sendfile\ 0\ B ]]; then
		pass "--uring: --stats: $nb bodies by the ring, none by sendfile"
	else
		fail "--uring: --stats: large bodies by the ring" "$st"
	fi

	# ---- ranges and HEAD ------------------------------------------------------------
	code=$(curl -s --max-time 20 -r 1000-40000999 -o "$T_TMP/got" -w '%{http_code}' "$SV_URL/m64.bin")
	tail -c +1001 "$T_TMP/orig64" | head -c 40000000 > "$T_TMP/want"
	if [ "$code" = 206 ] && cmp -s "$T_TMP/got" "$T_TMP/want"; then
		pass "--uring: a 40 MB range at offset 1000: 206 and its bytes"
	else
		fail "--uring: a 40 MB range at offset 1000" "status $code, $(size_of "$T_TMP/got") bytes"
	fi
	code=$(curl -s --max-time 20 -r -20000 -o "$T_TMP/got" -w '%{http_code}' "$SV_URL/m64.bin")
	tail -c 20000 "$T_TMP/orig64" > "$T_TMP/want"
	if [ "$code" = 206 ] && cmp -s "$T_TMP/got" "$T_TMP/want"; then
		pass "--uring: the last 20000 bytes (a suffix range above 16 KiB): 206 and its bytes"
	else
		fail "--uring: a suffix range" "status $code, $(size_of "$T_TMP/got") bytes"
	fi
	# HEAD, then a GET on the same connection: no body after the head.
	curl -s --max-time 20 -I -o "$T_TMP/head" "$SV_URL/m64.bin" \
		--next -s -o "$T_TMP/got" "$SV_URL/m1.bin" -w '%{num_connects}'> "$T_TMP/nc"
	if grep -q $'^Content-Length: 67108864\r$' "$T_TMP/head" && cmp -s "$T_TMP/got" "$W/m1.bin" &&
		[ "$(cat "$T_TMP/nc")" = 0 ]; then
		pass "--uring: HEAD of 64 MiB: its length, no body; the connection serves a GET next"
	else
		fail "--uring: HEAD of 64 MiB" "$(tr -d '\r' < "$T_TMP/head" | tr '\n' ' '), reused: $(cat "$T_TMP/nc")"
	fi

	# ---- keep-alive and pipelining --------------------------------------------------------
	curl -s --max-time 30 -w '%{num_connects} ' \
		-o "$T_TMP/ka1" "$SV_URL/m8.bin" -o "$T_TMP/ka2" "$SV_URL/m64.bin" \
		-o "$T_TMP/ka3" "$SV_URL/k7.bin" -o "$T_TMP/ka4" "$SV_URL/m1.bin" \
		-o "$T_TMP/ka5" "$SV_URL/m8.bin" > "$T_TMP/nc"
	if [ "$(cat "$T_TMP/nc")" = "1 0 0 0 0 " ] && cmp -s "$T_TMP/ka1" "$W/m8.bin" &&
		cmp -s "$T_TMP/ka2" "$T_TMP/orig64" && cmp -s "$T_TMP/ka3" "$W/k7.bin" &&
		cmp -s "$T_TMP/ka4" "$W/m1.bin" && cmp -s "$T_TMP/ka5" "$W/m8.bin"; then
		pass "--uring: keep-alive: 8M, 64M, 7k, 1M, 8M on one connection, exact"
	else
		fail "--uring: keep-alive on one connection" "connects: $(cat "$T_TMP/nc")"
	fi
	# Sent at once: the small answers behind a large body must wait for it.
	printf '%s' "GET /m1.bin HTTP/1.1"$'\r\n'"Host: a"$'\r\n\r\n' \
		"GET /k7.bin HTTP/1.1"$'\r\n'"Host: a"$'\r\n\r\n' \
		"GET /k64.bin HTTP/1.1"$'\r\n'"Host: a"$'\r\n\r\n' \
		"GET /m8.bin HTTP/1.1"$'\r\n'"Host: a"$'\r\n'"Range: bytes=12345-5012344"$'\r\n\r\n' \
		"GET /one.bin HTTP/1.1"$'\r\n'"Host: a"$'\r\n\r\n' \
		"GET /m1.bin HTTP/1.1"$'\r\n'"Host: a"$'\r\n'"Connection: close"$'\r\n\r\n' |
		"$SV_RAW" --timeout 10 --split "$T_TMP/pl" 127.0.0.1 "$SV_PORT" > /dev/null 2> "$T_TMP/pl.err"
	tail -c +12346 "$W/m8.bin" | head -c 5000000 > "$T_TMP/want"
	if grep -q 'response 1 200 1048576' "$T_TMP/pl.err" && grep -q 'response 2 200 7168' "$T_TMP/pl.err" &&
		grep -q 'response 3 200 65535' "$T_TMP/pl.err" && grep -q 'response 4 206 5000000' "$T_TMP/pl.err" &&
		grep -q 'response 5 200 1$' "$T_TMP/pl.err" && grep -q 'response 6 200 1048576' "$T_TMP/pl.err" &&
		cmp -s "$T_TMP/pl.1" "$W/m1.bin" && cmp -s "$T_TMP/pl.2" "$W/k7.bin" &&
		cmp -s "$T_TMP/pl.3" "$W/k64.bin" && cmp -s "$T_TMP/pl.4" "$T_TMP/want" &&
		cmp -s "$T_TMP/pl.5" "$W/one.bin" && cmp -s "$T_TMP/pl.6" "$W/m1.bin" &&
		grep -q 'closed after' "$T_TMP/pl.err" && ! grep -q 'rest' "$T_TMP/pl.err"; then
		pass "--uring: 6 pipelined requests (large, small, range) answered in order, exact"
	else
		fail "--uring: 6 pipelined requests in order" "$(tr '\n' ' ' < "$T_TMP/pl.err")"
	fi

	# ---- many at once --------------------------------------------------------------
	pids=()
	for i in $(seq 64); do
		curl -s --max-time 40 -o "$T_TMP/par$i" "$SV_URL/m8.bin" &
		pids+=($!)
	done
	wait "${pids[@]}"
	bad=""
	for i in $(seq 64); do
		cmp -s "$T_TMP/par$i" "$W/m8.bin" || bad+=" $i"
		rm -f "$T_TMP/par$i"
	done
	[ -z "$bad" ] && pass "--uring: 64 clients at once, 8 MiB each, exact" ||
		fail "--uring: 64 clients at once, 8 MiB each" "differ:$bad"

	# ---- clients leaving mid-body ----------------------------------------------------
	fds0=$(settled_fds)
	# Slow readers cut off by curl (the socket full: a poll waits in the
	# ring) and fast ones reset: cancelled, completions awaited, freed.
	pids=()
	for i in $(seq 8); do
		curl -s --limit-rate 4M --max-time 0.4 -o /dev/null "$SV_URL/m64.bin" &
		pids+=($!)
	done
	for i in $(seq 8); do
		curl -s --max-time 0.05 -o /dev/null "$SV_URL/m64.bin" &
		pids+=($!)
	done
	wait "${pids[@]}"
	curl -s --max-time 20 -o "$T_TMP/got" "$SV_URL/m1.bin"
	same_bytes "--uring: after 16 clients left mid-body, the server answers" "$W/m1.bin" "$T_TMP/got"
	fds=$(settled_fds)
	if [ "$fds" -le "$fds0" ]; then
		pass "--uring: clients leaving mid-body: no fd left behind ($fds fds, $fds0 before)"
	else
		fail "--uring: clients leaving mid-body: no fd left behind" \
			"$fds fds, $fds0 before: $(ls -l "/proc/$SV_PID/fd" | awk '{print $NF}' | sed 's/:\[*[0-9]*\]*$//' | sort | uniq -c | tr '\n' ' ')"
	fi

	# ---- truncated while sent --------------------------------------------------------
	check_truncated_while_sent --uring
	curl -s --max-time 20 -o "$T_TMP/got" "$SV_URL/trunc.bin"
	head -c 1M "$T_TMP/orig64" > "$T_TMP/want"
	same_bytes "--uring: after truncation the file is served at its new size" "$T_TMP/want" "$T_TMP/got"
	st=$(stats_line)
	if [[ $st =~ \(1\ truncated\) ]]; then
		pass "--uring: --stats counts the truncated body"
	else
		fail "--uring: --stats counts the truncated body" "$st"
	fi
	rm -f "$W/trunc.bin"
	sv_fds "--uring" 20
fi
sv_stop "--uring"

# ---- clients that stop reading: the body is cancelled in the ring ----------------------
# The socket fills, a POLLOUT waits in the ring with the splice linked
# behind it.  --send-timeout closes such connections from the epoll side:
# the requests are cancelled, the socket and the pipe closed only after
# their completions.  Then SIGTERM with such bodies in flight: the worker
# waits for their cancels and exits.
if uring "--uring: stalled clients, --send-timeout" &&
	sv_start --workers 2 --stats --uring --send-timeout 1 --grace 1 "$W"; then
	PIPES0=$(sv_kind "$SV_PID" pipe)
	curl -s --max-time 20 -o "$T_TMP/got" "$SV_URL/m64.bin"
	same_bytes "--uring --send-timeout 1: 64 MiB exact" "$T_TMP/orig64" "$T_TMP/got"
	fds0=$(settled_fds)
	req=$'GET /m64.bin HTTP/1.1\r\nHost: a\r\n\r\n'
	sleep 3 | "$SV_IDLE" --send "$req" 127.0.0.1 "$SV_PORT" 6 > "$T_TMP/idle.out"
	st=$(stats_line)
	fds=$(settled_fds)
	if grep -q 'ready 6' "$T_TMP/idle.out" &&
		[[ $st =~ ([0-9]+)\ timed\ out ]] && [ "${BASH_REMATCH[1]}" -ge 6 ] &&
		[ "$fds" -le "$fds0" ]; then
		pass "--uring: 6 clients that stop reading: closed by --send-timeout, no fd left ($fds fds, $fds0 before)"
	else
		fail "--uring: 6 clients that stop reading" \
			"$(tr '\n' ' ' < "$T_TMP/idle.out"); $st; $fds fds, $fds0 before"
	fi
	curl -s --max-time 20 -o "$T_TMP/got" "$SV_URL/m64.bin"
	same_bytes "--uring: after the timeouts, 64 MiB exact" "$T_TMP/orig64" "$T_TMP/got"
	sleep 5 | "$SV_IDLE" --send "$req" 127.0.0.1 "$SV_PORT" 2 > /dev/null &
	ipid=$!
	sleep 0.3
	t0=$(now_ms)
	sv_stop "--uring: SIGTERM with bodies stalled in the ring"
	ms=$(($(now_ms) - t0))
	if [ "$ms" -lt 4000 ]; then
		pass "--uring: stopped within --grace and its cancels ($ms ms)"
	else
		fail "--uring: stopped within --grace and its cancels" "$ms ms"
	fi
	wait "$ipid"
fi

# ---- io_uring unavailable: ENOSYS, EPERM, no probe --------------------------------------
# ENOSYS: a kernel without CONFIG_IO_URING.  EPERM: kernel.io_uring_disabled,
# or a seccomp profile.  io_uring_register failing: a kernel before 5.6,
# which cannot say whether it has IORING_OP_SPLICE (5.7).  Each: one
# warning, then the epoll path for every body.
for case in io_uring_setup:ENOSYS io_uring_setup:EPERM io_uring_register:EINVAL; do
	sc=${case%:*} err=${case#*:}
	name="--uring with $sc failing $err"
	if [ -n "$URING_WHY" ]; then
		skip "$name" "io_uring path unavailable anyway: $URING_WHY"
		continue
	fi
	need_inject "$name" || continue
	SV_BIN_SAVE=$SV_BIN
	SV_BIN=$T_TMP/zcio-inject
	printf '#!/bin/sh\nexec strace -f -qq -o /dev/null -e trace=%s -e inject=%s:error=%s "%s" "$@"\n' \
		"$sc" "$sc" "$err" "$ZCIO" > "$SV_BIN"
	chmod +x "$SV_BIN"
	if sv_start --workers 2 --stats --uring "$W"; then
		case $err in
		ENOSYS) msg='io_uring not in this kernel (Function not implemented); using epoll' ;;
		EPERM) msg='io_uring not permitted (Operation not permitted); using epoll' ;;
		EINVAL) msg='cannot say what it supports (before 5.6) (Operation not supported); using epoll' ;;
		esac
		if [ "$(grep -c -- '--uring' "$SV_ERR")" = 1 ] && grep -qF -- "$msg" "$SV_ERR" &&
			grep -q 'bodies via sendfile' "$SV_ERR"; then
			pass "$name: one warning naming it, bodies via sendfile"
		else
			fail "$name: one warning naming it" "$(head -n 3 "$SV_ERR" | tr '\n' ' ')"
		fi
		curl -s --max-time 30 -o "$T_TMP/got" "$SV_URL/m64.bin" -o "$T_TMP/got1" "$SV_URL/m1.bin" \
			-o "$T_TMP/got2" "$SV_URL/one.bin"
		if cmp -s "$T_TMP/got" "$T_TMP/orig64" && cmp -s "$T_TMP/got1" "$W/m1.bin" &&
			cmp -s "$T_TMP/got2" "$W/one.bin"; then
			pass "$name: 64 MiB, 1 MiB and 1 byte exact"
		else
			fail "$name: bodies exact" "$(size_of "$T_TMP/got") / $(size_of "$T_TMP/got1") bytes"
		fi
		st=$(stats_line)
		sf=
		[[ $st =~ sendfile\ ([0-9.]+\ [KMG]i?B) ]] && sf=${BASH_REMATCH[1]}
		if [ -n "$sf" ] && [[ ! $st =~ io_uring ]]; then
			pass "$name: --stats: sendfile $sf, no ring"
		else
			fail "$name: --stats: the epoll path" "$st"
		fi
		sv_stop "$name"
	fi
	SV_BIN=$SV_BIN_SAVE
done

done_testing
