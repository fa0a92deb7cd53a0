#!/usr/bin/env bash
# relay_halfclose.sh - zcio relay passes a half-close on only after every
# byte before it, and keeps the other direction open:
#
#  - answer: the client sends, shuts down its sending half, and the server
#    answers only once it has read that end; the answer must arrive whole.
#  - serverfirst (the mirror): the server sends and shuts down its sending
#    half first; the client reads to that end, then sends the rest of its
#    stream and ends; the server must get all of it.
#
# Sizes from 0 bytes to 24 MiB, one connection and many at once, TCP and
# unix sockets, spliced and with --copy.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"
. "$ROOT/tests/helpers/rl_lib.sh"

need_rl || done_testing

# run LISTEN TARGET [relay options]
run() {
	local l=$1 t=$2 n total=0
	shift 2
	n="relay $l -> $t${*:+ $*}"
	case $t in
	tcp4) peer_start 127.0.0.1:0 ;;
	unix) rl_dir; peer_start "unix:$RL_DIR/peer.sock" ;;
	esac || return
	relay_start "$l" "$PEER_ADDR" --stats "$@" || { peer_stop; return; }
	RL_UP=0 RL_DOWN=0
	# The client's end, then a 24 MiB answer: pipes and socket buffers
	# hold some of it when the server's close comes behind it.
	rl_client "$n: answer 24 MiB after the client's end" --op answer --up 1M --down 24M
	rl_client "$n: answer after the client's end, nothing sent" --op answer --up 0 --down 100K
	rl_client "$n: empty answer after the client's end" --op answer --up 3M --down 0
	rl_client "$n: 1-byte answer to 1 byte" --op answer --up 1 --down 1
	rl_client "$n: 100 answers, 1 B to 4 MiB, 10 at once" \
		--op answer --sizes 1:4M --count 100 --conns 10 --seed 21
	total=$((total + 104))
	rl_client "$n: server ends first, client sends 16 MiB after" \
		--op serverfirst --up 32M --down 8M
	rl_client "$n: server ends first having sent nothing" --op serverfirst --up 2M --down 0
	rl_client "$n: server ends first, client has nothing more" --op serverfirst --up 1 --down 5M
	rl_client "$n: 100 servers ending first, 1 B to 4 MiB, 10 at once" \
		--op serverfirst --sizes 1:4M --up 3M --count 100 --conns 10 --seed 22
	total=$((total + 103))
	peer_all_ok "$n: the server got every stream whole ($total)" "$total"
	relay_settled "$n"
	relay_stop "$n"
	RELAY_COPY=0
	[[ " $* " == *" --copy "* ]] && RELAY_COPY=1
	relay_counted "$n"
	peer_stop
}

run tcp4 tcp4
run unix unix
run tcp4 unix --copy
run unix tcp4 --workers 1

done_testing
