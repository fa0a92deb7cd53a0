#!/usr/bin/env bash
# relay_uring.sh - zcio relay --uring, the io_uring data path, keeps every
# promise of the epoll one:
#
#  - bytes both ways at once arrive exact (TCP and unix, spliced and with
#    --copy), and the stats count them: spliced, or with --copy only copied;
#  - a half-close is passed on after the bytes before it, both ways;
#  - a server writing N bytes and closing at once: the client gets exactly
#    N, 2,000 times, 1 byte to 8 MiB;
#  - a server answering early (while the client still sends) and closing
#    without reading, a reset: the client still gets every byte of the
#    answer, as it does without a relay (shown first), 300 times, TCP and
#    unix, spliced and with --copy;
#  - 500 connections at once; 200 idle ones hold no pipe each; 4,000 at
#    once with the fds for their sockets and little more: none fails;
#  - a target refusing connections, a client aborting mid-transfer, a
#    target that never answers (--connect-timeout);
#  - --idle-timeout: an idle connection is closed after that long, a busy
#    one is not; --max-conns: clients past it wait unserved, also when they
#    all arrive at once;
#  - SIGINT/SIGTERM: new clients refused, a transfer in flight finishes
#    within --grace and is cut after it;
#  - io_uring_setup failing with ENOSYS (no io_uring in the kernel) or EPERM
#    (io_uring_disabled, seccomp): one warning, the epoll path, bytes exact;
#    ENOMEM is a failure, not a fallback: the relay exits 1;
#  - afterwards the relay holds no more fds than when it started, no pipe.
#
# Without io_uring here (or a zcio built without liburing) the relay says so
# in its log, and each part is skipped, visibly.  ZCIO=build/asan/zcio runs
# it all under ASan and UBSan.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"
. "$ROOT/tests/helpers/rl_lib.sh"

need_rl || done_testing

# ---- does --uring run here? ----------------------------------------------

peer_start 127.0.0.1:0 || done_testing
relay_start tcp4 "$PEER_ADDR" --uring --workers 1 || done_testing
URING_WHY=
if ! grep -q 'listening on .*(io_uring)' "$RELAY_ERR"; then
	URING_WHY=$(grep -m1 -- '--uring' "$RELAY_ERR" || echo "no (io_uring) in: $(head -n 2 "$RELAY_ERR")")
fi
kill -9 "$RELAY_PID" 2> /dev/null
wait "$RELAY_PID" 2> /dev/null
peer_stop

# uring NAME: skip NAME and return 1 when the io_uring path cannot run.
uring() {
	if [ -n "$URING_WHY" ]; then
		skip "$1" "io_uring path unavailable: $URING_WHY"
		return 1
	fi
}

# uring_used NAME: the relay's log says it runs on io_uring, and it holds
# a ring (an fd on anon_inode:[io_uring]).
uring_used() {
	local rings
	rings=$(find "/proc/$RELAY_PID/fd" -lname 'anon_inode:\[io_uring\]' 2> /dev/null | wc -l)
	if grep -q 'listening on .*(io_uring)' "$RELAY_ERR" && ! grep -q 'using epoll' "$RELAY_ERR" &&
		[ "$rings" -gt 0 ]; then
		pass "$1: runs on io_uring ($rings rings)"
	else
		fail "$1: runs on io_uring" "$rings rings: $(head -n 3 "$RELAY_ERR")"
	fi
}

peer_for() {
	case $1 in
	tcp4) peer_start 127.0.0.1:0 ;;
	unix) rl_dir; peer_start "unix:$RL_DIR/peer.sock" ;;
	esac
}

# finish NAME [relay options]: settled, stopped cleanly, bytes counted.
finish() {
	local n=$1
	shift
	relay_settled "$n"
	relay_stop "$n"
	RELAY_COPY=0
	[[ " $* " == *" --copy "* ]] && RELAY_COPY=1
	relay_counted "$n"
	peer_stop
}

# ---- both ways at once ---------------------------------------------------

# duplex LISTEN TARGET [relay options]
duplex() {
	local l=$1 t=$2 n
	shift 2
	n="uring $l -> $t${*:+ $*}"
	uring "$n" || return
	peer_for "$t" || return
	relay_start "$l" "$PEER_ADDR" --uring --stats "$@" || { peer_stop; return; }
	uring_used "$n"
	RL_UP=0 RL_DOWN=0
	rl_client "$n: 8 MiB each way at once, 3 connections" \
		--op duplex --up 8M --down 8M --count 3 --conns 3 --seed 31
	rl_client "$n: echo 4 MiB, 2 connections" --op echo --up 4M --count 2 --conns 2 --seed 32
	rl_client "$n: 64 connections, 1 B to 1 MiB each way" \
		--op duplex --sizes 1:1M --count 64 --conns 8 --seed 33
	peer_all_ok "$n: the server saw all 69 streams whole" 69
	finish "$n" "$@"
}

duplex tcp4 tcp4
duplex unix unix
duplex tcp4 unix --workers 1
duplex unix tcp4 --copy
duplex tcp4 tcp4 --copy --workers 1
duplex tcp4 tcp4 --pipe-size 4096

# ---- half-close, both ways -----------------------------------------------

halfclose() {
	local l=$1 t=$2 n
	shift 2
	n="uring half-close $l -> $t${*:+ $*}"
	uring "$n" || return
	peer_for "$t" || return
	relay_start "$l" "$PEER_ADDR" --uring --stats "$@" || { peer_stop; return; }
	RL_UP=0 RL_DOWN=0
	rl_client "$n: answer 24 MiB after the client's end" --op answer --up 1M --down 24M
	rl_client "$n: empty answer after the client's end" --op answer --up 3M --down 0
	rl_client "$n: 50 answers, 1 B to 4 MiB, 10 at once" \
		--op answer --sizes 1:4M --count 50 --conns 10 --seed 41
	rl_client "$n: server ends first, client sends 16 MiB after" \
		--op serverfirst --up 32M --down 8M
	rl_client "$n: server ends first having sent nothing" --op serverfirst --up 2M --down 0
	rl_client "$n: 50 servers ending first, 1 B to 4 MiB, 10 at once" \
		--op serverfirst --sizes 1:4M --up 3M --count 50 --conns 10 --seed 42
	peer_all_ok "$n: the server got every stream whole" 104
	finish "$n" "$@"
}

halfclose tcp4 tcp4
halfclose unix unix --copy

# ---- write N bytes and close at once (HAProxy #2505) ---------------------

N=${RELAY_URING_2505_COUNT:-2000}
source_close() {
	local n="uring: server writes N bytes and closes${*:+ $*}"
	uring "$n" || return
	peer_start 127.0.0.1:0 || return
	relay_start tcp4 "$PEER_ADDR" --uring --stats "$@" || { peer_stop; return; }
	RL_UP=0 RL_DOWN=0
	rl_client "$n: $N connections, 1 B to 8 MiB, each got exactly N" \
		--op source --sizes 1:8M --count "$N" --conns 16 --seed 2505 --timeout 60
	if [ "$(client_field "$RL_OUT" ok)" = "$N" ]; then
		pass "$n: $N connections counted"
	else
		fail "$n: $N connections counted" "$(head -n 1 "$RL_OUT")"
	fi
	peer_all_ok "$n: the server wrote and closed $N times" "$N"
	finish "$n" "$@"
}

source_close
source_close --copy

# ---- an early answer, then a reset ---------------------------------------

# The server answers while the client is still sending and closes without
# reading (an HTTP 413): its close is a reset.  It closes once its answer
# is acknowledged (in the relay's socket by then), and the relay must still
# deliver all of it before passing the reset on, as the kernel does for a
# direct connection.  rl_peer checks every byte and each answer's length.
E=${RELAY_URING_EARLY_COUNT:-300}
EARLY=(--op early --up 1M --sizes 1:1M --count "$E" --conns 8 --timeout 60)

# early_direct TARGET: the baseline, without a relay.
early_direct() {
	local n="early answer to $1, no relay"
	peer_for "$1" || return
	if "$RL_PEER" client "$PEER_ADDR" "${EARLY[@]}" --seed 1 > "$RL_DIR/direct.out" 2>&1; then
		pass "$n: the client gets every byte ($E connections)"
	else
		fail "$n: the client gets every byte" "$(head -n 3 "$RL_DIR/direct.out")"
	fi
	peer_all_ok "$n: the server answered $E times" "$E"
	peer_stop
}

# early LISTEN TARGET [relay options]
early() {
	local l=$1 t=$2 n
	shift 2
	n="uring early answer $l -> $t${*:+ $*}"
	uring "$n" || return
	peer_for "$t" || return
	relay_start "$l" "$PEER_ADDR" --uring --stats "$@" || { peer_stop; return; }
	uring_used "$n"
	RL_UP=0 RL_DOWN=0
	rl_client "$n: $E early answers, then resets: every byte arrives" "${EARLY[@]}" --seed 7
	peer_all_ok "$n: the server answered $E times" "$E"
	relay_settled "$n"
	relay_stop "$n"
	# Every byte of the answers went through the relay, and not one more
	# (the client's bytes are dropped once the server has gone: fewer went
	# up than it sent).
	last_stats
	if [ "$S_DOWN" = "$RL_DOWN" ] && [ "$S_UP" -le "$RL_UP" ]; then
		pass "$n: relay counted the $RL_DOWN bytes down"
	else
		fail "$n: relay counted the $RL_DOWN bytes down, at most $RL_UP up" "$S_LINE"
	fi
	peer_stop
}

early_direct tcp4
early_direct unix
early tcp4 tcp4
early tcp4 tcp4 --copy
early tcp4 unix
early tcp4 unix --copy
early unix tcp4 --workers 1

# ---- many at once --------------------------------------------------------

many() {
	local n="uring: 500 connections at once"
	uring "$n" || return
	peer_start 127.0.0.1:0 || return
	relay_start tcp4 "$PEER_ADDR" --uring --stats --workers 2 || { peer_stop; return; }
	RL_UP=0 RL_DOWN=0
	rl_client "$n: all exact, 1 B to 256 KiB each way" \
		--op duplex --sizes 1:256K --count 500 --conns 500 --seed 51 --timeout 30
	peer_all_ok "$n: the server saw 500 streams whole" 500
	finish "$n"
}

many

# ---- idle connections hold no pipe ---------------------------------------

idle() {
	local n="uring: 200 idle connections" slow
	uring "$n" || return
	peer_start 127.0.0.1:0 || return
	relay_start tcp4 "$PEER_ADDR" --uring --workers 1 || { peer_stop; return; }
	rl_dir
	"$RL_PEER" client "$RELAY_ADDR" --op echo --up 1000 --count 200 --conns 200 \
		--hold "$RL_DIR/h" --release "$RL_DIR/r" --timeout 20 > "$RL_DIR/c.out" 2>&1 &
	slow=$!
	at_exit "kill -9 $slow"
	if wait_for 10 test -e "$RL_DIR/h"; then
		relay_fds
		# At most the worker's pool of 16 spare pipes, not one per
		# direction of each connection.
		if [ "$RL_PIPES" -le 16 ]; then
			pass "$n, echoed 1000 bytes each: hold $RL_PIPES pipes (pool of 16 at most)"
		else
			fail "$n, echoed 1000 bytes each: hold at most 16 pipes" "$RL_PIPES pipes, $RL_FDS fds"
		fi
	else
		fail "$n: echoed" "$(cat "$RL_DIR/c.out")"
	fi
	touch "$RL_DIR/r"
	if wait "$slow"; then
		pass "$n: every echo exact"
	else
		fail "$n: every echo exact" "$(cat "$RL_DIR/c.out")"
	fi
	relay_settled "$n"
	relay_stop "$n"
	peer_stop
}

idle

# ---- a burst of connections near the fd limit ----------------------------

# 4,000 connections arrive at once, each echoing 1,000 bytes, and stay open
# (the bench's relay-idle, smaller).  The splices run asynchronously, so
# each connection with bytes in flight held a pipe beside its two sockets:
# past RLIMIT_NOFILE, pipe2 failed with EMFILE and the connection was
# closed before its echo.  With the relay's fds limited to 10,500 (8,000 go
# to the sockets, and a worker holds at most 1,024 pipes: 2,048 fds), a
# direction must wait for a pipe instead.  The limit is not tighter: a
# pipe opened while fewer connections were open keeps its fds when more
# arrive, and then socket() for a new connection's target fails (seen at
# 8,500 and 9,000 under other load).
burst() {
	local n="uring: 4000 connections at once, 10500 fds" cl
	uring "$n" || return
	peer_start 127.0.0.1:0 || return
	RELAY_NOFILE=10500 relay_start tcp4 "$PEER_ADDR" --uring --workers 1 || { peer_stop; return; }
	rl_dir
	"$RL_PEER" client "$RELAY_ADDR" --op echo --up 1000 --count 4000 --conns 4000 --seed 71 \
		--hold "$RL_DIR/h" --release "$RL_DIR/r" --timeout 30 > "$RL_DIR/c.out" 2>&1 &
	cl=$!
	at_exit "kill -9 $cl"
	# The hold file appears once every connection has its echo back
	# or has failed; the client's status says which.
	wait_for 30 test -e "$RL_DIR/h" || fail "$n: the clients reach their hold" "$(head -n 3 "$RL_DIR/c.out")"
	relay_fds
	touch "$RL_DIR/r"
	if wait "$cl"; then
		pass "$n: all 4000 open at once, each with its 1000 bytes echoed exact ($RL_PIPES pipes held)"
	else
		fail "$n: all 4000 open at once, each with its 1000 bytes echoed exact" \
			"$(grep -v sizes "$RL_DIR/c.out" | head -n 3 | tr '\n' ' ')"
	fi
	peer_all_ok "$n: the server saw 4000 echoes whole" 4000
	relay_settled "$n"
	relay_stop "$n"
	peer_stop
}

burst

# ---- a target refusing connections ---------------------------------------

refused() {
	local n="uring: refusing target $1" target=$2
	uring "$n" || return
	relay_start tcp4 "$target" --uring || return
	rl_client "$n: the client's connection is closed" --op source --down 1M --expect close \
		--timeout 5
	rl_client "$n: 50 more clients closed the same way" --op duplex --up 100K --down 1 \
		--expect close --count 50 --conns 50 --timeout 10
	if grep -qE 'warn: .*connect.*(refused|No such file)' "$RELAY_ERR"; then
		pass "$n: the relay logs a warning"
	else
		fail "$n: the relay logs a warning" "$(head -c 300 "$RELAY_ERR")"
	fi
	kill -USR1 "$RELAY_PID"
	if wait_for 2 grep -q '51 failed to connect' "$RELAY_ERR"; then
		pass "$n: counted as failed to connect"
	else
		fail "$n: counted as failed to connect" "$(grep stats: "$RELAY_ERR")"
	fi
	relay_alive "$n"
	relay_settled "$n"
	relay_stop "$n" 'connect'
}

refused tcp "127.0.0.1:$(free_port)"
rl_dir
refused unix "unix:$RL_DIR/nobody.sock"

# ---- clients aborting ----------------------------------------------------

_server_quiet() { peer_is open 0 && peer_is accepted "$1"; }

aborts() {
	local n="uring: clients abort${*:+ $*}" conns=0 how
	uring "$n" || return
	peer_start 127.0.0.1:0 || return
	relay_start tcp4 "$PEER_ADDR" --uring "$@" || { peer_stop; return; }
	for how in rst close; do
		rl_client "$n: client ${how}s mid-transfer both ways" \
			--op duplex --up 1G --down 1G --abort-after 16M --abort "$how" --count 3 --conns 3
		conns=$((conns + 3))
		rl_client "$n: client ${how}s mid-download" \
			--op source --down 1G --abort-after 8M --abort "$how" --count 3 --conns 3
		conns=$((conns + 3))
		if wait_for 3 _server_quiet "$conns"; then
			pass "$n: after ${how}s the server's side closed"
		else
			fail "$n: after ${how}s the server's side closed" "$(cat "$PEER_STATUS")"
		fi
	done
	# Nothing reads the client once it has half-closed; its reset
	# must end the connection all the same.
	rl_dir
	rl_client "$n: client resets after its half-close, server silent" --op quiet --up 100K \
		--count 3 --conns 3 --hold "$RL_DIR/h" --release /dev/null --abort rst
	conns=$((conns + 3))
	if wait_for 3 _server_quiet "$conns"; then
		pass "$n: a reset after the half-close ends it"
	else
		fail "$n: a reset after the half-close ends it" "$(cat "$PEER_STATUS")"
	fi
	relay_alive "$n"
	rl_client "$n: a normal exchange afterwards" --op duplex --up 4M --down 4M --count 4 --conns 4
	relay_settled "$n"
	relay_stop "$n"
	peer_stop
}

aborts
aborts --copy

# ---- --connect-timeout ---------------------------------------------------

connect_timeout() {
	local n="uring: --connect-timeout 1" ms
	uring "$n" || return
	rl_dir
	"$RL_PEER" stuck 127.0.0.1:0 --port-file "$RL_DIR/port" 2> "$RL_DIR/err" &
	STUCK_PID=$!
	at_exit "kill -9 $STUCK_PID"
	if ! wait_for 5 test -s "$RL_DIR/port"; then
		fail "$n: a listener whose backlog is full" "$(cat "$RL_DIR/err")"
		return
	fi
	relay_start tcp4 "127.0.0.1:$(cat "$RL_DIR/port")" --uring --connect-timeout 1 || return
	if rl_client "$n: the clients are closed" --op source --down 1M --expect close --count 3 \
		--conns 3 --timeout 10; then
		ms=$(client_field "$RL_OUT" last_close_ms)
		if [ "$ms" -ge 900 ] && [ "$ms" -le 2500 ]; then
			pass "$n: after about 1 s ($ms ms)"
		else
			fail "$n: after about 1 s" "$ms ms"
		fi
	fi
	if grep -q 'warn: .*connect: Connection timed out' "$RELAY_ERR"; then
		pass "$n: the relay logs a warning"
	else
		fail "$n: the relay logs a warning" "$(head -c 300 "$RELAY_ERR")"
	fi
	relay_settled "$n"
	relay_stop "$n" 'timed out'
	kill "$STUCK_PID"
	wait "$STUCK_PID" 2> /dev/null
}

connect_timeout

# ---- --idle-timeout ------------------------------------------------------

idle_timeout() {
	local n="uring --idle-timeout 1${*:+ $*}"
	uring "$n" || return
	peer_start 127.0.0.1:0 || return
	relay_start tcp4 "$PEER_ADDR" --uring --idle-timeout 1 "$@" || { peer_stop; return; }
	rl_dir
	check_idle_timeout_one "$n"
	relay_settled "$n"
	relay_stop "$n"
	peer_stop
}

idle_timeout
idle_timeout --copy

# ---- --max-conns ---------------------------------------------------------

_n_held() { [ "$(find "$RL_DIR" -name '*.held' | wc -l)" -ge "$1" ]; }

max_conns() {
	local n="uring --max-conns 2"
	uring "$n" || return
	peer_start 127.0.0.1:0 || return
	relay_start tcp4 "$PEER_ADDR" --uring --max-conns 2 || { peer_stop; return; }
	rl_dir
	check_max_conns_two "$n"
	relay_settled "$n"
	relay_stop "$n"
	peer_stop
}

# max_conns_burst [relay options]: 8 clients arriving at once, then 64 from
# one process.  An accept the kernel goes on running by itself (multishot),
# or one armed in each worker, must not let more than the limit through.
max_conns_burst() {
	local n="uring --max-conns 2, clients at once${*:+ $*}" c pid held
	uring "$n" || return
	peer_start 127.0.0.1:0 || return
	relay_start tcp4 "$PEER_ADDR" --uring --max-conns 2 "$@" || { peer_stop; return; }
	rl_dir
	for c in a b c d e f g h; do
		held_client "$c" go
	done
	wait_for 5 _n_held 2
	sleep 1
	held=$(find "$RL_DIR" -name '*.held' | wc -l)
	if [ "$held" = 2 ] && peer_is accepted 2; then
		pass "$n: 2 served, 6 wait"
	else
		fail "$n: 2 served, 6 wait" "$held served; server: $(cat "$PEER_STATUS")"
	fi
	touch "$RL_DIR/go"
	for c in a b c d e f g h; do
		eval "pid=\$pid_$c"
		wait "$pid" || fail "$n: client $c exits 0" "$(cat "$RL_DIR/$c.out")"
	done
	peer_all_ok "$n: eight exchanges whole" 8
	rl_client "$n: 64 in one burst, 100 KiB echoed each" --op echo --up 100K --count 64 \
		--conns 64 --timeout 30
	peer_all_ok "$n: 72 exchanges whole" 72
	if peer_is peak 2; then
		pass "$n: never more than 2 at the server"
	else
		fail "$n: never more than 2 at the server" "$(cat "$PEER_STATUS")"
	fi
	relay_settled "$n"
	relay_stop "$n"
	peer_stop
}

max_conns
max_conns_burst --workers 1
max_conns_burst --workers 4
# ---- SIGINT / SIGTERM ----------------------------------------------------

# graceful KIND SIGNAL [relay options]: a transfer in flight finishes within
# --grace, new clients are refused, the relay exits once it is done.
graceful() {
	local kind=$1 sig=$2 n rc=0 t0 done_ms gone_ms
	shift 2
	n="uring $kind SIG$sig${*:+ $*}"
	uring "$n" || return
	peer_start 127.0.0.1:0 || return
	relay_start "$kind" "$PEER_ADDR" --uring --grace 8 "$@" || { peer_stop; return; }
	rl_dir
	# About 1.5 s at 4 MB/s.
	"$RL_PEER" client "$RELAY_ADDR" --op source --down 6M --read-rate 4M --timeout 20 \
		> "$RL_DIR/slow.out" 2>&1 &
	local slow=$!
	at_exit "kill -9 $slow"
	sleep 0.3
	t0=$(now_ms)
	kill "-$sig" "$RELAY_PID"
	if wait_for 2 grep -q 'stopping: no new connections; 1 active' "$RELAY_ERR"; then
		pass "$n: stops with 1 connection active"
	else
		fail "$n: stops with 1 connection active" "$(tail -n 2 "$RELAY_ERR")"
	fi
	sleep 0.3 # the workers look at the flag every 100 ms
	rl_client "$n: a new client is refused" --op source --down 1 --expect refused --timeout 2
	wait "$slow" || rc=$?
	done_ms=$(($(now_ms) - t0))
	if [ "$rc" = 0 ]; then
		pass "$n: the transfer in flight finishes whole ($done_ms ms after the signal)"
	else
		fail "$n: the transfer in flight finishes whole" "$(cat "$RL_DIR/slow.out")"
	fi
	rc=0
	wait_bg "$RELAY_PID" 10 || rc=$?
	gone_ms=$(($(now_ms) - t0))
	if [ "$rc" = 0 ] && [ "$gone_ms" -lt $((done_ms + 1000)) ]; then
		pass "$n: exits 0 as soon as it is done ($gone_ms ms)"
	else
		fail "$n: exits 0 as soon as it is done" "status $rc at $gone_ms ms, transfer done at $done_ms ms"
	fi
	peer_all_ok "$n: the server sent it whole" 1
	peer_stop
}

graceful tcp4 TERM --workers 1
graceful unix INT

past_grace() {
	local n="uring --grace 1" rc=0 t0 ms
	uring "$n" || return
	peer_start 127.0.0.1:0 || return
	relay_start tcp4 "$PEER_ADDR" --uring --grace 1 || { peer_stop; return; }
	rl_dir
	"$RL_PEER" client "$RELAY_ADDR" --op source --down 60M --read-rate 2M --timeout 40 \
		> "$RL_DIR/slow.out" 2>&1 &
	local slow=$!
	at_exit "kill -9 $slow"
	sleep 0.3
	t0=$(now_ms)
	kill -TERM "$RELAY_PID"
	wait_bg "$RELAY_PID" 6 || rc=$?
	ms=$(($(now_ms) - t0))
	if [ "$rc" = 0 ] && [ "$ms" -ge 900 ] && [ "$ms" -le 2500 ]; then
		pass "$n: ends the transfer when the grace period is over ($ms ms), exits 0"
	else
		fail "$n: ends the transfer when the grace period is over" "status $rc after $ms ms"
	fi
	if wait_bg "$slow" 3; then
		fail "$n: the client sees its transfer cut" "it completed: $(cat "$RL_DIR/slow.out")"
	elif grep -q 'stream ended after' "$RL_DIR/slow.out"; then
		pass "$n: the client sees its transfer cut"
	else
		fail "$n: the client sees its transfer cut" "$(cat "$RL_DIR/slow.out")"
	fi
	peer_stop
}

past_grace

# ---- io_uring refused: the epoll path ------------------------------------

# injected ERRNO NAME: the relay under strace, io_uring_setup failing with
# ERRNO.  Sets RELAY_PID (the relay, strace's child), INJ_PID (strace).
injected() {
	local err=$1 n=$2 i
	rl_dir
	RELAY_ERR=$RL_DIR/relay.err
	RELAY_ADDR=127.0.0.1:$(free_port)
	# LeakSanitizer cannot run under ptrace (an ASan build of zcio).
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
		strace -f -qq -o /dev/null -e trace=io_uring_setup -e inject=io_uring_setup:error="$err" \
		"$ZCIO" relay --uring --stats --workers 2 "$RELAY_ADDR" "$PEER_ADDR" \
		< /dev/null > /dev/null 2> "$RELAY_ERR" &
	INJ_PID=$!
	at_exit "kill -9 $INJ_PID"
	RELAY_PID=
	for i in $(seq 100); do
		RELAY_PID=$(cat "/proc/$INJ_PID/task/$INJ_PID/children" 2> /dev/null)
		RELAY_PID=${RELAY_PID%% *}
		[ -n "$RELAY_PID" ] && grep -qs 'listening on\|error' "$RELAY_ERR" && break
		sleep 0.05
	done
}

# inject_fallback ERRNO TEXT: TEXT is strerror(ERRNO).
inject_fallback() {
	local err=$1 text=$2 n="uring: io_uring_setup fails with $1" rc=0
	# Without the io_uring path, nothing would show that the injected
	# errno, rather than its absence, made the relay fall back.
	uring "$n" || return
	need_inject "$n" || return
	peer_start 127.0.0.1:0 || return
	injected "$err" "$n"
	if ! grep -q 'listening on' "$RELAY_ERR"; then
		fail "$n: the relay starts" "$(head -c 300 "$RELAY_ERR")"
		peer_stop
		return
	fi
	RL_BASE_INODES=
	relay_fds
	RELAY_FDS0=$RL_FDS RELAY_PIPES0=$RL_PIPE_FDS RL_BASE_INODES=$RL_INODES
	if [ "$(grep -c "warn: --uring: .*($text); using epoll" "$RELAY_ERR")" = 1 ] &&
		grep -q 'listening on' "$RELAY_ERR" && ! grep -q '(io_uring)' "$RELAY_ERR"; then
		pass "$n: one warning, then the epoll path"
	else
		fail "$n: one warning, then the epoll path" "$(head -n 3 "$RELAY_ERR")"
	fi
	RL_UP=0 RL_DOWN=0
	rl_client "$n: 4 MiB each way at once, exact" --op duplex --up 4M --down 4M --count 2 --conns 2
	rl_client "$n: 32 servers closing after N bytes, exact" \
		--op source --sizes 1:4M --count 32 --conns 8 --seed 61
	peer_all_ok "$n: the server saw every stream whole" 34
	relay_settled "$n"
	kill -TERM "$RELAY_PID"
	wait_bg "$INJ_PID" 10 || rc=$?
	if [ "$rc" = 0 ]; then
		pass "$n: relay exits 0 on SIGTERM"
	else
		fail "$n: relay exits 0 on SIGTERM" "status $rc: $(tail -n 3 "$RELAY_ERR")"
	fi
	relay_counted "$n"
	peer_stop
}

inject_fallback ENOSYS 'Function not implemented'
inject_fallback EPERM 'Operation not permitted'

inject_fatal() {
	local n="uring: io_uring_setup fails with ENOMEM" rc=0
	uring "$n" || return
	need_inject "$n" || return
	peer_start 127.0.0.1:0 || return
	injected ENOMEM "$n"
	wait_bg "$INJ_PID" 5 || rc=$?
	if [ "$rc" = 1 ] && grep -q 'error: --uring: io_uring_setup failed: Cannot allocate memory' "$RELAY_ERR"; then
		pass "$n: not taken for an absent feature: the relay exits 1 and says why"
	else
		fail "$n: not taken for an absent feature: the relay exits 1 and says why" \
			"status $rc: $(head -n 3 "$RELAY_ERR")"
	fi
	peer_stop
}

inject_fatal

done_testing
