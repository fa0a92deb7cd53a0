#!/usr/bin/env bash
# serve_send.sh - how zcio serve sends bodies, in both --send modes: 64 MiB
# whole, many clients at once, slow clients (EAGAIN, EPOLLOUT), clients
# that leave mid-body, a file truncated while it is sent (the connection
# closes short of Content-Length, never padded, never hung), a file that
# grows while it is sent (exactly the announced length), small pipes, and
# no open-file cache at all.  Every body is compared by checksum.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"
. "$ROOT/tests/helpers/sv_lib.sh"

need_helpers || done_testing
sv_need || done_testing

W=$T_TMP/www
mkdir -p "$W"
"$ZGEN" 64M 1 > "$T_TMP/orig64"
cp "$T_TMP/orig64" "$W/m64.bin"
"$ZGEN" 9M 2 > "$W/m9.bin"
"$ZGEN" 100k 3 > "$W/k100.bin"
"$ZGEN" 7k 4 > "$W/k7.bin"

for mode in pipe sendfile; do
	sv_start --workers 2 --send=$mode --stats "$W" || continue

	curl -s -o "$T_TMP/got" "$SV_URL/m64.bin"
	same_bytes "--send=$mode: 64 MiB body" "$W/m64.bin" "$T_TMP/got"

	# 24 clients at once, large and small bodies mixed.
	pids=()
	for i in $(seq 24); do
		case $((i % 3)) in 0) f=m9.bin ;; 1) f=k100.bin ;; *) f=k7.bin ;; esac
		curl -s -o "$T_TMP/par$i" "$SV_URL/$f" &
		pids+=($!)
	done
	wait "${pids[@]}"
	bad=""
	for i in $(seq 24); do
		case $((i % 3)) in 0) f=m9.bin ;; 1) f=k100.bin ;; *) f=k7.bin ;; esac
		cmp -s "$T_TMP/par$i" "$W/$f" || bad+=" $i"
	done
	[ -z "$bad" ] && pass "--send=$mode: 24 concurrent clients, same bytes" ||
		fail "--send=$mode: 24 concurrent clients, same bytes" "differ:$bad"

	# A slow reader: the socket fills, the link waits for EPOLLOUT.
	curl -s --limit-rate 6M -o "$T_TMP/got" "$SV_URL/m9.bin"
	same_bytes "--send=$mode: a client reading at 6 MB/s" "$W/m9.bin" "$T_TMP/got"

	# A client leaving mid-body: the server lets go of it.
	curl -s --limit-rate 5M --max-time 0.5 -o /dev/null "$SV_URL/m64.bin"
	sv_expect "--send=$mode: a client leaving mid-body (curl timed out)" 28 "$?"

	# The file grows while it is sent: exactly Content-Length bytes, the
	# ones that were there.
	cp "$W/m9.bin" "$W/grow.bin"
	curl -s --max-time 10 --limit-rate 10M -o "$T_TMP/got" "$SV_URL/grow.bin" &
	cpid=$!
	sleep 0.3
	"$ZGEN" 2M 9 >> "$W/grow.bin"
	wait "$cpid"
	same_bytes "--send=$mode: a file growing while sent: the announced length" "$W/m9.bin" "$T_TMP/got"

	# Truncated while it is sent: the client gets a short, correct prefix
	# and an early close, fast.
	check_truncated_while_sent "--send=$mode"
	if sv_log_wait '"GET /trunc\.bin HTTP/1\.1" 200 [0-9]+$' && ! grep -q '"GET /trunc\.bin HTTP/1\.1" 200 67108864$' "$SV_OUT"; then
		pass "--send=$mode: the access log shows the short count"
	else
		fail "--send=$mode: the access log shows the short count" "$(grep trunc "$SV_OUT")"
	fi
	# The cached entry was marked suspect: the next request sees 1 MiB.
	curl -s -o "$T_TMP/got" "$SV_URL/trunc.bin"
	head -c 1M "$T_TMP/orig64" > "$T_TMP/want"
	same_bytes "--send=$mode: after truncation the file is served at its new size" "$T_TMP/want" "$T_TMP/got"

	sv_fds "--send=$mode" 20
	sv_stop "--send=$mode"
	stats=$(grep 'stats:' "$SV_ERR" | tail -n 1)
	if [[ $stats =~ \(1\ truncated\) ]]; then
		pass "--send=$mode: --stats counts the truncated body"
	else
		fail "--send=$mode: --stats counts the truncated body" "$stats"
	fi
	rm -f "$W/grow.bin" "$W/trunc.bin"
done

# A small body leaves with its header in one writev(); a large one by
# sendfile() or splice(), never through write() (strace counts them).
if need_inject "one writev per small response (strace)"; then
	SV_BIN_SAVE=$SV_BIN
	SV_BIN=$T_TMP/zcio-traced
	printf '#!/bin/sh\nexec strace -f -qq -o "%s" -e trace=write,writev,sendto,sendmsg,sendfile,splice "%s" "$@"\n' \
		"$T_TMP/trace" "$ZCIO" > "$SV_BIN"
	chmod +x "$SV_BIN"
	for mode in sendfile pipe; do
		if sv_start --workers 1 --quiet --send=$mode "$W"; then
			curl -s -o "$T_TMP/a1" "$SV_URL/k7.bin" -o "$T_TMP/a2" "$SV_URL/k7.bin" -o "$T_TMP/a3" "$SV_URL/m9.bin"
			sv_stop "traced, --send=$mode"
			small=$(grep -c 'writev(.*HTTP/1.1 200 OK.*iov_len=7168}\], 2)' "$T_TMP/trace")
			# Bodies never go through write(); its messages on
			# stderr do, and headers of large bodies, and the
			# wake-ups of the event loops (8 bytes to an eventfd).
			other=$(grep -E '^[0-9]+ +(write|sendto|sendmsg)\(' "$T_TMP/trace" | grep -v '(2, "zcio: ' |
				grep -v 'HTTP/1.1 200 OK' | grep -vc '"\\1\\0\\0\\0\\0\\0\\0\\0", 8)')
			big=$(grep -cE "^[0-9]+ +$mode\(" "$T_TMP/trace")
			[ $mode = pipe ] && big=$(grep -cE '^[0-9]+ +splice\(' "$T_TMP/trace")
			if [ "$small" = 2 ] && [ "$other" = 0 ] && [ "$big" -ge 2 ] && cmp -s "$T_TMP/a2" "$W/k7.bin" &&
				cmp -s "$T_TMP/a3" "$W/m9.bin"; then
				pass "--send=$mode: 7 KiB bodies in one writev (header + body), 9 MiB by $([ $mode = pipe ] && echo splice || echo sendfile)"
			else
				fail "--send=$mode: one writev per small body" "$small writev, $other other writes, $big large-body calls: $(grep -vE 'epoll|resumed' "$T_TMP/trace" | head -c 600)"
			fi
		fi
	done
	SV_BIN=$SV_BIN_SAVE
fi

sv_start --workers 1 --pipe-size 64k "$W" || done_testing
curl -s -o "$T_TMP/got" "$SV_URL/m9.bin" -o "$T_TMP/got2" "$SV_URL/k100.bin"
if cmp -s "$T_TMP/got" "$W/m9.bin" && cmp -s "$T_TMP/got2" "$W/k100.bin"; then
	pass "--pipe-size 64k: same bytes"
else
	fail "--pipe-size 64k: same bytes" "differ"
fi
sv_stop "--pipe-size 64k"

sv_start --workers 2 --cache 0 "$W" || done_testing
for i in 1 2 3; do
	curl -s -o "$T_TMP/a$i" "$SV_URL/k7.bin" -o "$T_TMP/b$i" "$SV_URL/m9.bin"
done
if cmp -s "$T_TMP/a3" "$W/k7.bin" && cmp -s "$T_TMP/b3" "$W/m9.bin" && cmp -s "$T_TMP/b1" "$W/m9.bin"; then
	pass "--cache 0: same bytes"
else
	fail "--cache 0: same bytes" "differ"
fi
sv_fds "--cache 0: no file kept open" 0
sv_stop "--cache 0"
done_testing
