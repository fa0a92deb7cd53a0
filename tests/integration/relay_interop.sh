#!/usr/bin/env bash
# relay_interop.sh - zcio relay between real programs:
#
#  - curl through the relay to nginx (and to lighttpd), each started here
#    on a free 127.0.0.1 port (and nginx on a unix socket) with its own
#    configuration, logs and temporary files under $T_TMP: files of sizes
#    from 0 bytes to 16 MiB fetched over one keep-alive connection, and 4
#    clients at once, bodies compared by checksum;
#  - socat as a client sending a file through the relay to an echo server
#    (TCP and unix), getting it back byte for byte.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/helpers/lib-extra.sh"
. "$ROOT/tests/helpers/rl_lib.sh"

need_rl || done_testing

WWW=$T_TMP/www
mkdir -p "$WWW"
SIZES="0 1 4095 4097 100000 1048579 16777217"
for s in $SIZES; do
	make_file "$WWW/f$s" "$s"
done

# ---- web servers ---------------------------------------------------------

# nginx_start DIR LISTEN: nginx in the foreground, all its files in DIR.
nginx_start() {
	local dir=$1
	mkdir -p "$dir/tmp"
	cat > "$dir/nginx.conf" <<-EOF
	daemon off;
	master_process off;
	worker_processes 1;
	pid $dir/nginx.pid;
	error_log $dir/error.log warn;
	events { worker_connections 128; }
	http {
		access_log off;
		client_body_temp_path $dir/tmp/body;
		proxy_temp_path $dir/tmp/proxy;
		fastcgi_temp_path $dir/tmp/fastcgi;
		uwsgi_temp_path $dir/tmp/uwsgi;
		scgi_temp_path $dir/tmp/scgi;
		default_type application/octet-stream;
		keepalive_requests 1000;
		server {
			listen $2;
			root $WWW;
		}
	}
	EOF
	nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" 2> "$dir/stderr" &
	WEB_PID=$!
	at_exit "kill -9 $WEB_PID"
}

# lighttpd_start DIR PORT
lighttpd_start() {
	local dir=$1
	cat > "$dir/lighttpd.conf" <<-EOF
	server.document-root = "$WWW"
	server.bind = "127.0.0.1"
	server.port = $2
	server.errorlog = "$dir/error.log"
	server.upload-dirs = ( "$dir" )
	mimetype.assign = ( "" => "application/octet-stream" )
	EOF
	lighttpd -D -f "$dir/lighttpd.conf" 2> "$dir/stderr" &
	WEB_PID=$!
	at_exit "kill -9 $WEB_PID"
}

# web_up ADDR: something answers HTTP at ADDR (host:port or unix:PATH).
web_up() {
	case $1 in
	unix:*) curl -s -o /dev/null --unix-socket "${1#unix:}" http://localhost/f1 ;;
	*) curl -s -o /dev/null "http://$1/f1" ;;
	esac
}

# web_start NAME KIND [unix]: start nginx or lighttpd; sets WEB_ADDR.
web_start() {
	local kind=$2 try port
	rl_dir
	for try in 1 2 3; do
		if [ "${3:-}" = unix ]; then
			WEB_ADDR=unix:$RL_DIR/web.sock
			nginx_start "$RL_DIR" "unix:$RL_DIR/web.sock"
		else
			port=$(free_port)
			WEB_ADDR=127.0.0.1:$port
			"${kind}_start" "$RL_DIR" "127.0.0.1:$port"
			[ "$kind" = lighttpd ] && { kill -9 "$WEB_PID"; wait "$WEB_PID" 2> /dev/null
				lighttpd_start "$RL_DIR" "$port"; }
		fi
		if wait_for 5 web_up "$WEB_ADDR"; then
			return 0
		fi
		kill -9 "$WEB_PID" 2> /dev/null
		wait "$WEB_PID" 2> /dev/null
	done
	fail "$1: $kind started" "$(cat "$RL_DIR/stderr" "$RL_DIR/error.log" 2> /dev/null | head -c 300)"
	return 1
}

web_stop() {
	kill "$WEB_PID" 2> /dev/null
	wait_bg "$WEB_PID" 5 > /dev/null 2>&1
}

# fetch_all NAME: every file over one connection through the relay.
fetch_all() {
	local n=$1 args=() s out bad=""
	out=$T_TMP/got.$RL_N
	mkdir -p "$out"
	for s in $SIZES; do
		args+=(-o "$out/f$s" "http://$RELAY_ADDR/f$s")
	done
	if ! curl -sS --fail "${args[@]}" 2> "$out/err"; then
		fail "$n: curl fetches $(wc -w <<< "$SIZES") files over one connection" "$(cat "$out/err")"
		return
	fi
	for s in $SIZES; do
		[ "$(csum "$WWW/f$s")" = "$(csum "$out/f$s")" ] || bad+=" f$s"
	done
	if [ -z "$bad" ]; then
		pass "$n: curl fetches $(wc -w <<< "$SIZES") files, 0 B to 16 MiB, over one connection: checksums match"
	else
		fail "$n: curl fetches files over one connection: checksums match" "differ:$bad"
	fi
}

# fetch_parallel NAME: 4 curls at once, the largest file each.
fetch_parallel() {
	local n=$1 out i pids=() bad=0 want
	out=$T_TMP/par.$RL_N
	mkdir -p "$out"
	for i in 1 2 3 4; do
		curl -sS --fail -o "$out/$i" "http://$RELAY_ADDR/f16777217" 2> "$out/$i.err" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i" || bad=$((bad + 1))
	done
	want=$(csum "$WWW/f16777217")
	for i in 1 2 3 4; do
		[ -e "$out/$i" ] && [ "$(csum "$out/$i")" = "$want" ] || bad=$((bad + 1))
	done
	if [ "$bad" = 0 ]; then
		pass "$n: 4 curls at once get 16 MiB each, checksums match"
	else
		fail "$n: 4 curls at once get 16 MiB each, checksums match" "$bad bad: $(cat "$out"/*.err | head -c 300)"
	fi
}

web_test() {
	local n=$1 kind=$2 listen=$3 web=${4:-}
	shift 4
	if ! have "$kind"; then
		skip "$n" "$kind not installed"
		return
	fi
	web_start "$n" "$kind" "$web" || return
	relay_start "$listen" "$WEB_ADDR" "$@" || { web_stop; return; }
	fetch_all "$n"
	fetch_parallel "$n"
	relay_settled "$n"
	relay_stop "$n"
	web_stop
}

if have curl; then
	web_test "curl -> relay -> nginx" nginx tcp4 ""
	web_test "curl -> relay --copy -> nginx" nginx tcp4 "" --copy
	web_test "curl -> relay -> nginx on a unix socket" nginx tcp4 unix
	web_test "curl -> relay -> lighttpd" lighttpd tcp4 ""
else
	skip "curl through the relay" "curl not installed"
fi

# ---- socat ---------------------------------------------------------------

socat_test() {
	local n=$1 kind=$2 connect
	shift 2
	if ! have socat; then
		skip "$n" "socat not installed"
		return
	fi
	peer_start 127.0.0.1:0 --mode echo || return
	relay_start "$kind" "$PEER_ADDR" "$@" || { peer_stop; return; }
	case $RELAY_ADDR in
	unix:*) connect=UNIX-CONNECT:${RELAY_ADDR#unix:} ;;
	*) connect=TCP:$RELAY_ADDR ;;
	esac
	for s in 0 1 1048579 16777217; do
		# -t: after sending, wait for the echo's end (not the 0.5 s
		# default, which could cut a slow echo short).
		if timeout 60 socat -t 30 - "$connect" < "$WWW/f$s" > "$T_TMP/echo" 2> "$T_TMP/socat.err"; then
			same_bytes "$n: socat sends $s bytes, gets them back" "$WWW/f$s" "$T_TMP/echo"
		else
			fail "$n: socat sends $s bytes, gets them back" "$(cat "$T_TMP/socat.err")"
		fi
	done
	peer_all_ok "$n: the echo server saw 4 connections end" 4
	relay_settled "$n"
	relay_stop "$n"
	peer_stop
}

socat_test "socat -> relay tcp4 -> echo" tcp4
socat_test "socat -> relay unix -> echo" unix
socat_test "socat -> relay tcp4 --copy -> echo" tcp4 --copy

done_testing
