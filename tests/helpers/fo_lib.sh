# tests/helpers/fo_lib.sh - what the fan-out tests (tee_*.sh, broadcast_*.sh)
# share, on top of tests/lib.sh and tests/helpers/lib-extra.sh.
#
#   fo_sink     a one-connection server saving what it receives (tcp: and
#               unix: destinations of zcio tee)
#   fo_clients  many clients at once, checking or discarding what they get
#   reset_dests, add_dest, check_dests, status: zcio tee's destinations of
#               every kind, and the check that each got the whole input

FO_SINK=$HELPERS/fo_sink
FO_CLIENTS=$HELPERS/fo_clients

# need_fo_helpers: fail once (and return 1) when they are not built.
need_fo_helpers() {
	local h
	for h in "$FO_SINK" "$FO_CLIENTS" "$ZGEN"; do
		if [ ! -x "$h" ]; then
			fail "helpers built" "$h missing (run make helpers)"
			return 1
		fi
	done
}

# wait_for FILE [TENTHS]: wait until FILE exists (default 10 s).
wait_for() {
	local t=${2:-100}
	while [ ! -e "$1" ] && [ "$t" -gt 0 ]; do
		sleep 0.1
		t=$((t - 1))
	done
	[ -e "$1" ]
}

# start_sink ADDR OUT: a fo_sink in the background, listening when this
# returns; SINK_PID, and SINK_PORT for tcp (ADDR 127.0.0.1:0).
start_sink() {
	local ready
	ready=$T_TMP/sink.ready.$RANDOM$RANDOM
	"$FO_SINK" -p "$ready" "$1" "$2" &
	SINK_PID=$!
	at_exit "kill $SINK_PID"
	wait_for "$ready" || return 1
	SINK_PORT=$(cat "$ready")
}

# cpu_ms PID: user + system CPU time of a running process, in ms.
cpu_ms() {
	local f
	read -r -a f < "/proc/$1/stat" || return 1
	# Fields 14 and 15 (utime, stime) in clock ticks; the name in field 2
	# has no spaces here.
	echo $(((f[13] + f[14]) * 1000 / $(getconf CLK_TCK)))
}

# ---- zcio broadcast ------------------------------------------------------------
#
# bc_start LOG [OPTION]...: zcio broadcast --listen 127.0.0.1:$BC_PORT with
# the options, its standard input a FIFO the test writes through fd 7
# (close it with bc_end), stderr to LOG; returns once it listens.  Start
# other background programs with 7>&- so that only the test holds the
# FIFO open.
bc_start() {
	local log=$1 i
	shift
	BC_FIFO=$T_TMP/bc.fifo.$RANDOM$RANDOM
	mkfifo "$BC_FIFO"
	BC_PORT=$(free_port)
	"$ZCIO" broadcast --listen "127.0.0.1:$BC_PORT" "$@" < "$BC_FIFO" 2> "$log" 7>&- &
	BC_PID=$!
	at_exit "kill $BC_PID"
	exec 7> "$BC_FIFO"
	for i in $(seq 200); do
		grep -q "listening on" "$log" && return 0
		kill -0 "$BC_PID" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

bc_end() { exec 7>&-; }

# bc_wait_joins LOG N: wait (up to 30 s) until the log (-v) shows N joins.
bc_wait_joins() {
	local i
	for i in $(seq 600); do
		[ "$(grep -c "joined at byte" "$1")" -ge "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

# open_fds_of PID: open fds of a running process.
open_fds_of() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

# The destinations add_dest built: operands, the files holding what each
# got, bytes before the stream in each (-a), and readers to wait for.
DESTS=() CHECK=() SKIPB=() WAITS=()

reset_dests() {
	DESTS=() CHECK=() SKIPB=() WAITS=()
	rm -rf "$T_TMP"/out.* "$T_TMP"/fifo.* "$T_TMP"/sock.* "$OUT"
}

# add_dest KIND I: destination I of KIND: file, append (a file holding 5000
# bytes first; only with -a, which applies to every file), fifo (read by
# cat), slowfifo (read 64 KiB at a time with a nap between reads), tcp,
# unix (a fo_sink each).
add_dest() {
	local out=$T_TMP/out.$2
	case $1 in
	file) DESTS+=("$out") CHECK+=("$out") SKIPB+=(0) ;;
	append)
		"$ZGEN" 5000 12 > "$out"
		DESTS+=("$out") CHECK+=("$out") SKIPB+=(5000)
		;;
	fifo)
		mkfifo "$T_TMP/fifo.$2"
		cat "$T_TMP/fifo.$2" > "$out" &
		WAITS+=($!)
		at_exit "kill $!"
		DESTS+=("$T_TMP/fifo.$2") CHECK+=("$out") SKIPB+=(0)
		;;
	slowfifo)
		mkfifo "$T_TMP/fifo.$2"
		(exec < "$T_TMP/fifo.$2"; while :; do
			head -c 65536 > "$out.part" || break
			[ -s "$out.part" ] || break
			cat "$out.part" >> "$out"
			sleep 0.02
		done) &
		WAITS+=($!)
		at_exit "kill $!"
		: > "$out"
		DESTS+=("$T_TMP/fifo.$2") CHECK+=("$out") SKIPB+=(0)
		;;
	tcp)
		start_sink 127.0.0.1:0 "$out" || return 1
		WAITS+=("$SINK_PID")
		DESTS+=("tcp:127.0.0.1:$SINK_PORT") CHECK+=("$out") SKIPB+=(0)
		;;
	unix)
		start_sink "unix:$T_TMP/sock.$2" "$out" || return 1
		WAITS+=("$SINK_PID")
		DESTS+=("unix:$T_TMP/sock.$2") CHECK+=("$out") SKIPB+=(0)
		;;
	esac
}

# check_dests NAME [SUM]: standard output ($OUT) and every destination hold
# the input whose sha256 is SUM (default $SUM), after what -a files held
# before, which must be intact.
check_dests() {
	local i got bad="" want=${2:-$SUM}
	for i in "${WAITS[@]}"; do
		wait_bg "$i" 30 || bad+=" (a reader did not finish)"
	done
	[ "$(csum "$OUT")" = "$want" ] || bad+=" stdout($(size_of "$OUT"))"
	for i in "${!CHECK[@]}"; do
		if [ "${SKIPB[i]}" = 0 ]; then
			got=$(csum "${CHECK[i]}")
		else
			got=$(tail -c +"$((SKIPB[i] + 1))" "${CHECK[i]}" | sha256sum)
			got=${got%% *}
			cmp -s -n "${SKIPB[i]}" <("$ZGEN" 5000 12) "${CHECK[i]}" ||
				bad+=" ${DESTS[i]}(prefix lost)"
		fi
		[ "$got" = "$want" ] || bad+=" ${DESTS[i]}($(size_of "${CHECK[i]}"))"
	done
	if [ -z "$bad" ]; then
		pass "$1: every output exact"
	else
		fail "$1: every output exact" "wrong:$bad; stderr: $(grep -v stats: "$ERR" | head -c 300)"
	fi
}

# status NAME WANT: zcio tee's exit status, in RC, is WANT.
status() {
	if [ "$RC" = "$2" ]; then
		pass "$1: exit status $2"
	else
		fail "$1: exit status $2" "got $RC; stderr: $(head -c 400 "$ERR")"
	fi
}
