# tests/helpers/rl_lib.sh - what the relay tests (tests/integration/relay_*.sh)
# share: start a relay and the peers behind it, count the relay's fds and
# pipes, read its CPU time and memory.  Source it after lib.sh and
# lib-extra.sh:
#
#   . "$(dirname "$0")/../lib.sh"
#   . "$ROOT/tests/helpers/lib-extra.sh"
#   . "$ROOT/tests/helpers/rl_lib.sh"
#
# The peers are build/helpers/rl_peer (see tests/helpers/rl_peer.c).

RL_PEER=$HELPERS/rl_peer
RL_N=0

# need_rl: fail once and return 1 when zcio or rl_peer is not built.
need_rl() {
	need_cli || return 1
	if [ ! -x "$RL_PEER" ]; then
		fail "helpers built" "$RL_PEER missing (run make helpers)"
		return 1
	fi
}

# rl_dir: a fresh directory under $T_TMP, in $RL_DIR.
rl_dir() {
	RL_N=$((RL_N + 1))
	RL_DIR=$T_TMP/rl.$RL_N
	mkdir -p "$RL_DIR"
}

# now_us: microseconds, without a fork.
now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }

# wait_for SECONDS CMD...: poll CMD every 20 ms until it succeeds, for at
# most SECONDS (a whole number).
wait_for() {
	local until=$((${EPOCHREALTIME/./} + $1 * 1000000))
	shift
	while ! "$@"; do
		[ "${EPOCHREALTIME/./}" -lt "$until" ] || return 1
		sleep 0.02
	done
}

# have_ipv6: ::1 can be bound here.
have_ipv6() {
	[ -e /proc/net/if_inet6 ] && grep -q '^0\{31\}1 ' /proc/net/if_inet6
}

# peer_start ADDR [rl_peer server options]: an rl_peer server on ADDR
# (127.0.0.1:0, [::1]:0, unix:PATH).  Sets PEER_PID, PEER_ADDR (where to
# connect), PEER_LOG, PEER_STATUS.
peer_start() {
	local addr=$1 port
	shift
	rl_dir
	PEER_LOG=$RL_DIR/log PEER_STATUS=$RL_DIR/status
	"$RL_PEER" server "$addr" --port-file "$RL_DIR/port" --log "$PEER_LOG" \
		--status "$PEER_STATUS" "$@" 2> "$RL_DIR/err" &
	PEER_PID=$!
	at_exit "kill -9 $PEER_PID"
	if ! wait_for 5 test -s "$PEER_STATUS"; then
		fail "peer on $addr started" "$(cat "$RL_DIR/err")"
		return 1
	fi
	case $addr in
	unix:*) PEER_ADDR=$addr ;;
	\[*) port=$(cat "$RL_DIR/port"); PEER_ADDR="${addr%:*}:$port" ;;
	*) port=$(cat "$RL_DIR/port"); PEER_ADDR="${addr%:*}:$port" ;;
	esac
}

# peer_stop: end the current peer (its summary goes to its log).
peer_stop() {
	kill "$PEER_PID" 2> /dev/null
	wait "$PEER_PID" 2> /dev/null
}

# peer_field NAME: a field of the peer's status line (accepted, open, peak,
# ok, fail).
peer_field() {
	local line
	line=$(cat "$PEER_STATUS")
	line=" $line"
	line=${line#* $1=}
	echo "${line%% *}"
}

# peer_is FIELD VALUE: the peer's status says FIELD=VALUE.
peer_is() { [ "$(peer_field "$1")" = "$2" ]; }

_peer_quiet() { peer_is accepted "$1" && peer_is open 0; }

# peer_all_ok NAME N: the peer accepted N connections in all, none is still
# open, and every one did what its client asked (waits up to 5 s: the
# status file trails by up to 50 ms, and the server may finish last).
peer_all_ok() {
	wait_for 5 _peer_quiet "$2"
	if peer_is accepted "$2" && peer_is open 0 && peer_is ok "$2"; then
		pass "$1"
	else
		fail "$1" "want $2 ok: $(cat "$PEER_STATUS"); $(grep FAIL "$PEER_LOG" | head -n 3 | tr '\n' ' ')"
	fi
}

# relay_start KIND TARGET [relay options]: start `zcio relay` listening on
# KIND (tcp4, tcp6 or unix: a free port or a fresh path) and forwarding to
# TARGET, with at most $RELAY_NOFILE fds when that is set.  Sets RELAY_PID, RELAY_ADDR, RELAY_ERR, and the baseline
# RELAY_FDS0 / RELAY_PIPES0 (fds and pipe fds once listening).
relay_start() {
	local kind=$1 target=$2 addr try
	shift 2
	rl_dir
	RELAY_ERR=$RL_DIR/relay.err
	for try in 1 2 3 4 5; do
		case $kind in
		tcp4) addr=127.0.0.1:$(free_port) ;;
		tcp6) addr="[::1]:$(free_port)" ;;
		unix) addr=unix:$RL_DIR/relay.sock ;;
		esac
		if [ -n "${RELAY_NOFILE:-}" ]; then
			(ulimit -n "$RELAY_NOFILE" && exec "$ZCIO" relay "$@" "$addr" "$target") \
				< /dev/null > /dev/null 2> "$RELAY_ERR" &
		else
			"$ZCIO" relay "$@" "$addr" "$target" < /dev/null > /dev/null 2> "$RELAY_ERR" &
		fi
		RELAY_PID=$!
		at_exit "kill -9 $RELAY_PID"
		if wait_for 5 grep -qs 'listening on' "$RELAY_ERR"; then
			RELAY_ADDR=$addr
			RL_BASE_INODES=
			relay_fds
			RELAY_FDS0=$RL_FDS RELAY_PIPES0=$RL_PIPE_FDS RL_BASE_INODES=$RL_INODES
			return 0
		fi
		kill -9 "$RELAY_PID" 2> /dev/null
		wait "$RELAY_PID" 2> /dev/null
		grep -q 'in use' "$RELAY_ERR" || break
	done
	fail "relay $kind -> $target started" "$(head -c 300 "$RELAY_ERR")"
	return 1
}

# relay_fds [PID]: the relay's fds now, into RL_FDS, RL_PIPE_FDS (fds on
# pipes), RL_PIPES (distinct pipes), RL_HELD (bytes in all its pipes),
# RL_HELD_MAX (in the fullest one), RL_INODES.  Pipes it had at start
# (RL_BASE_INODES: inherited ones) count in RL_PIPE_FDS only.
relay_fds() {
	local out
	out=$("$RL_PEER" fds "${1:-$RELAY_PID}" ${RL_BASE_INODES:+"$RL_BASE_INODES"}) || return 1
	out=" $out"
	RL_FDS=${out#* fds=}; RL_FDS=${RL_FDS%% *}
	RL_PIPE_FDS=${out#* pipe_fds=}; RL_PIPE_FDS=${RL_PIPE_FDS%% *}
	RL_PIPES=${out#* pipes=}; RL_PIPES=${RL_PIPES%% *}
	RL_HELD=${out#* held=}; RL_HELD=${RL_HELD%% *}
	RL_HELD_MAX=${out#* held_max=}; RL_HELD_MAX=${RL_HELD_MAX%% *}
	RL_INODES=${out#* inodes=}; RL_INODES=${RL_INODES%% *}
}

_rl_at_baseline() {
	relay_fds && [ "$RL_FDS" = "$RELAY_FDS0" ] && [ "$RL_PIPE_FDS" = "$RELAY_PIPES0" ]
}

# relay_settled NAME [SECONDS]: once its connections closed, the relay is
# back to its baseline fd count and holds no pipe (waits up to SECONDS, 5 by
# default: closing is asynchronous).
relay_settled() {
	if wait_for "${2:-5}" _rl_at_baseline; then
		pass "$1: relay back to $RELAY_FDS0 fds, no pipe held"
	else
		fail "$1: relay back to $RELAY_FDS0 fds, no pipe held" \
			"$RL_FDS fds ($RL_PIPE_FDS pipe fds, baseline $RELAY_PIPES0; $RL_HELD bytes held)"
	fi
}

# relay_alive NAME: the relay process is still running.
relay_alive() {
	if kill -0 "$RELAY_PID" 2> /dev/null; then
		pass "$1: relay still running"
	else
		fail "$1: relay still running" "it exited: $(tail -n 3 "$RELAY_ERR")"
	fi
}

# relay_stop NAME [ALLOW]: SIGTERM; the relay must exit 0 within 5 s, and
# its log hold no warning or error except lines matching the regex ALLOW.
relay_stop() {
	local rc=0 bad
	kill -TERM "$RELAY_PID" 2> /dev/null
	wait_bg "$RELAY_PID" 5 || rc=$?
	if [ "$rc" = 0 ]; then
		pass "$1: relay exits 0 on SIGTERM"
	else
		fail "$1: relay exits 0 on SIGTERM" "status $rc: $(tail -n 3 "$RELAY_ERR")"
	fi
	bad=$(grep -E ': (warn|error): ' "$RELAY_ERR" | grep -vE "${2:-^$}" | head -n 3)
	if [ -z "$bad" ]; then
		pass "$1: no unexpected warning"
	else
		fail "$1: no unexpected warning" "$bad"
	fi
}

# rl_client NAME [rl_peer client options]: run a client against the relay;
# pass when it exits 0.  Its output is in $RL_OUT (a file).  RL_UP and
# RL_DOWN add up the bytes its clients sent (32-byte headers included) and
# received, to compare with the relay's own count.
RL_UP=0 RL_DOWN=0
rl_client() {
	local name=$1 rc=0
	shift
	rl_dir
	RL_OUT=$RL_DIR/client.out
	"$RL_PEER" client "$RELAY_ADDR" "$@" > "$RL_OUT" 2>&1 || rc=$?
	local up down conns
	up=$(client_field "$RL_OUT" up) down=$(client_field "$RL_OUT" down)
	conns=$(client_field "$RL_OUT" conns)
	RL_UP=$((RL_UP + ${up:-0} + 32 * ${conns:-0}))
	RL_DOWN=$((RL_DOWN + ${down:-0}))
	if [ "$rc" = 0 ]; then
		pass "$name"
	else
		fail "$name" "status $rc: $(grep -v '^rl_peer: client: sizes' "$RL_OUT" | head -n 6 | tr '\n' ' ')"
	fi
	return "$rc"
}

# client_field FILE NAME: a field of a client's summary line.
client_field() {
	local line
	line=$(grep '^rl_peer: client: op=' "$1" | tail -n 1)
	line=" $line"
	line=${line#* $2=}
	echo "${line%% *}"
}

# to_bytes "16.0 MiB": bytes, roughly (the stats line rounds).
to_bytes() {
	awk -v v="$1" -v u="$2" 'BEGIN {
		m = 1
		if (u == "KiB") m = 1024; else if (u == "MiB") m = 1048576
		else if (u == "GiB") m = 1073741824
		printf "%d\n", v * m }'
}

# last_stats: fields of the relay's last stats line into S_UP, S_DOWN (exact
# byte counts), S_SPLICED, S_COPIED (rounded), S_LINE.
last_stats() {
	S_LINE=$(grep 'stats: connections' "$RELAY_ERR" | tail -n 1)
	S_UP=$(sed -n 's/.* up [^(]*(\([0-9]*\) bytes).*/\1/p' <<< "$S_LINE")
	S_DOWN=$(sed -n 's/.* down [^(]*(\([0-9]*\) bytes).*/\1/p' <<< "$S_LINE")
	read -r v u <<< "$(sed -n 's/.* spliced \([0-9.]*\) \([A-Za-z]*\),.*/\1 \2/p' <<< "$S_LINE")"
	S_SPLICED=$(to_bytes "${v:-0}" "${u:-B}")
	read -r v u <<< "$(sed -n 's/.* copied \([0-9.]*\) \([A-Za-z]*\);.*/\1 \2/p' <<< "$S_LINE")"
	S_COPIED=$(to_bytes "${v:-0}" "${u:-B}")
}

# relay_counted NAME: the relay's last stats line counts exactly RL_UP and
# RL_DOWN bytes, and (unless it ran with --copy, RELAY_COPY=1) spliced some
# of them; with --copy, none.
relay_counted() {
	last_stats
	if [ "$S_UP" = "$RL_UP" ] && [ "$S_DOWN" = "$RL_DOWN" ]; then
		pass "$1: relay counted $RL_UP bytes up, $RL_DOWN down"
	else
		fail "$1: relay counted $RL_UP bytes up, $RL_DOWN down" "$S_LINE"
	fi
	if [ "${RELAY_COPY:-0}" = 1 ]; then
		if [ "$S_SPLICED" = 0 ]; then
			pass "$1: nothing spliced"
		else
			fail "$1: nothing spliced" "$S_LINE"
		fi
	elif [ "$S_SPLICED" -gt 0 ]; then
		pass "$1: spliced (about $S_SPLICED bytes)"
	else
		fail "$1: spliced" "$S_LINE"
	fi
}

# cpu_ticks PID: user + system time of a process, in clock ticks.
cpu_ticks() {
	local s
	s=$(cat "/proc/$1/stat") || return 1
	s=${s##*) }
	# Fields from the state on: utime is the 12th, stime the 13th.
	set -- $s
	echo $((${12} + ${13}))
}

# rss_kb PID: resident memory in KiB.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

RL_HZ=$(getconf CLK_TCK)

# held_client NAME [RELEASE]: an echo client (100 bytes) through the relay
# that holds its connection open once served ($RL_DIR/NAME.held) until
# $RL_DIR/RELEASE (default NAME.go) exists; its pid in $pid_NAME.
held_client() {
	"$RL_PEER" client "$RELAY_ADDR" --op echo --up 100 --hold "$RL_DIR/$1.held" \
		--release "$RL_DIR/${2:-$1.go}" --timeout 30 > "$RL_DIR/$1.out" 2>&1 &
	eval "pid_$1=$!"
	at_exit "kill -9 $!"
}

# check_max_conns_two NAME: with a relay started with --max-conns 2 in
# front of a fresh peer, two clients are served, a third waits unserved
# until one of them closes, and the server never sees more than two.
check_max_conns_two() {
	local n=$1 c pid t0
	held_client a
	held_client b
	if wait_for 5 test -e "$RL_DIR/a.held" && wait_for 5 test -e "$RL_DIR/b.held"; then
		pass "$n: two clients served"
	else
		fail "$n: two clients served" "$(cat "$RL_DIR/a.out" "$RL_DIR/b.out")"
	fi
	held_client c
	sleep 1.5
	if [ ! -e "$RL_DIR/c.held" ] && peer_is accepted 2; then
		pass "$n: the third waits, unserved, while two are open"
	else
		fail "$n: the third waits, unserved, while two are open" "server: $(cat "$PEER_STATUS")"
	fi
	t0=$(now_ms)
	touch "$RL_DIR/a.go"
	if wait_for 5 test -e "$RL_DIR/c.held"; then
		pass "$n: the third is served once one closes ($(($(now_ms) - t0)) ms)"
	else
		fail "$n: the third is served once one closes" "$(cat "$RL_DIR/c.out")"
	fi
	touch "$RL_DIR/b.go" "$RL_DIR/c.go"
	for c in a b c; do
		eval "pid=\$pid_$c"
		wait "$pid" || fail "$n: client $c exits 0" "$(cat "$RL_DIR/$c.out")"
	done
	peer_all_ok "$n: three exchanges whole" 3
	if peer_is peak 2; then
		pass "$n: never more than 2 at the server"
	else
		fail "$n: never more than 2 at the server" "$(cat "$PEER_STATUS")"
	fi
}

# check_idle_timeout_one NAME: with a relay started with --idle-timeout 1
# in front of a fresh peer, a served client that then stays idle is closed
# after about a second and sees it; one moving bytes for 3 s is left alone.
check_idle_timeout_one() {
	local n=$1 t0 ms
	held_client idle
	if wait_for 5 test -e "$RL_DIR/idle.held"; then
		t0=$(now_ms)
		# The peer's status file trails by up to 50 ms: see the
		# connection open there before waiting for it to close.
		wait_for 5 peer_is open 1
		if wait_for 5 peer_is open 0; then
			ms=$(($(now_ms) - t0))
			if [ "$ms" -ge 700 ] && [ "$ms" -le 2500 ]; then
				pass "$n: an idle connection is closed after about 1 s ($ms ms)"
			else
				fail "$n: an idle connection is closed after about 1 s" "closed after $ms ms"
			fi
		else
			fail "$n: an idle connection is closed" "still open after 5 s: $(cat "$PEER_STATUS")"
		fi
		touch "$RL_DIR/idle.go"
		if wait "$pid_idle"; then
			fail "$n: the client sees its connection closed" "the exchange completed"
		elif grep -q 'closed before the client' "$RL_DIR/idle.out"; then
			pass "$n: the client sees its connection closed"
		else
			fail "$n: the client sees its connection closed" "$(cat "$RL_DIR/idle.out")"
		fi
	else
		fail "$n: client served" "$(cat "$RL_DIR/idle.out")"
	fi
	# Bytes flowing all along, for three times the timeout.
	rl_client "$n: a connection busy for 3 s is left alone" --op source --down 3M \
		--read-rate 1M --timeout 20
}
