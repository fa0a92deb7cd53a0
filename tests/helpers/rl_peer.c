/*
 * rl_peer.c - both ends of relayed connections, for the relay tests.
 *
 *   rl_peer server ADDR [OPTION]...   accept connections and play the part
 *                                     each client asks for
 *   rl_peer client ADDR [OPTION]...   open connections, move a deterministic
 *                                     stream each way, verify every byte
 *   rl_peer fds PID [INODE,...]       count a process's fds, its pipes and
 *                                     the bytes held in them (pipes INODE,...
 *                                     not counted: the baseline's)
 *   rl_peer stuck ADDR --port-file F  a TCP listener whose backlog is full:
 *                                     connecting to it never completes
 *
 * ADDR: HOST:PORT, [IPV6]:PORT or unix:PATH (port 0: any free port, written
 * to --port-file).
 *
 * The protocol: a client opens with a 32-byte header (magic, op, bytes up,
 * bytes down, seed); the server then plays the op:
 *
 *   echo         echo everything; half-close after the client's end
 *   duplex       send DOWN bytes while reading UP bytes at the same time;
 *                after both, a 24-byte verdict on what arrived, half-close
 *   answer       read UP bytes to the client's end, then answer: verdict,
 *                DOWN bytes, close()
 *   serverfirst  send DOWN bytes and half-close at once; read UP bytes to
 *                the client's end (the client sends half of them only after
 *                the server's end arrived); the verdict goes to the log
 *   source       send DOWN bytes and close() at once
 *   sink         read UP bytes to the end
 *   blackhole    never read again; close when the client goes
 *   quiet        read UP bytes to the client's end, then say nothing and
 *                wait for the client to go (a reset)
 *   early        send DOWN bytes without reading, while the client is still
 *                sending (an early answer, an HTTP 413), and close() once
 *                the peer's kernel has them all (TCP: nothing left in
 *                SIOCOUTQ): the close is a reset, and the client must still
 *                get every byte
 *
 * Streams are windows of a fixed pseudo-random sequence whose period is a
 * prime (1048573), at an offset drawn from the seed: every byte depends on
 * its position, so a byte lost, duplicated, reordered or taken from another
 * connection shows, and checking is one memcmp() per read.  Byte counts are
 * checked exactly.
 *
 * Server options:
 *   --port-file F    write the bound port (TCP) there once listening
 *   --log F          one line per connection that ended (default stdout)
 *   --status F       "accepted= open= peak= ok= fail=", rewritten as it
 *                    changes (every 50 ms at most)
 *   --mode echo      no header: every connection is a plain echo (socat)
 *   --backlog N      listen backlog (default 4096)
 *   --corrupt-at N   flip byte N of every stream sent (checker self-test)
 *   --short N        send N bytes fewer than asked (checker self-test)
 *
 * Client options:
 *   --op OP          one of the ops above (default duplex)
 *   --up N --down N  stream sizes (suffixes K, M, G: powers of 1024)
 *   --sizes LO:HI    instead, draw each connection's sizes log-uniformly in
 *                    [LO, HI] (the first two get LO and HI exactly)
 *   --count N        connections in all (default 1)
 *   --conns N        at most N open at once (default 1)
 *   --seed S         seed of the sizes and streams (default 1)
 *   --hold F --release F2  echo: once every connection has its echo back
 *                    (quiet: once each has sent all and half-closed),
 *                    create F, then wait for F2 to exist before ending them
 *   --stall-ms MS    blackhole: stop when sending made no progress for MS,
 *                    report the bytes sent, then --hold/--release
 *   --abort-after N  end each connection after N bytes moved (sent plus
 *                    received), with --abort rst (SO_LINGER 0) or close;
 *                    --abort with --hold: end them so once released
 *   --corrupt-at N   flip byte N of every stream sent (checker self-test)
 *   --read-rate BPS --slow-for SEC   read at most BPS bytes per second for
 *                    the first SEC seconds, then at full speed
 *   --expect close   the relay must close the connection without a byte
 *   --expect refused connect() itself must be refused
 *   --timeout SEC    give up (and fail) after SEC seconds (default 60)
 *
 * The client prints one summary line ("rl_peer: client: ... ok=N fail=N")
 * and exits 0 only when every connection did what was asked.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define HDR_LEN 32
#define VERDICT_LEN 24
#define HDR_MAGIC 0x31504c52u     /* "RLP1" */
#define VERDICT_MAGIC 0x31564c52u /* "RLV1" */
#define PAT_PERIOD 1048573u       /* prime: no page or pipe size realigns it */
#define CHUNK (256u * 1024)       /* largest read or write; PAT slack */
#define MAX_EVENTS 512

enum op { OP_ECHO, OP_DUPLEX, OP_ANSWER, OP_SERVERFIRST, OP_SOURCE, OP_SINK, OP_BLACKHOLE,
	  OP_QUIET, OP_EARLY, OP_COUNT };
static const char *const op_names[OP_COUNT] = {
	"echo", "duplex", "answer", "serverfirst", "source", "sink", "blackhole", "quiet",
	"early",
};

static unsigned char *pat; /* PAT_PERIOD + CHUNK bytes */

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "rl_peer: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void pat_init(void)
{
	pat = malloc(PAT_PERIOD + CHUNK);
	if (!pat)
		die("out of memory");
	for (uint32_t i = 0; i < PAT_PERIOD; i += 8) {
		uint64_t v = mix64(i);

		for (uint32_t k = 0; k < 8 && i + k < PAT_PERIOD; k++)
			pat[i + k] = (unsigned char)(v >> (8 * k));
	}
	/* The slack repeats the start: any CHUNK-long window is contiguous. */
	memcpy(pat + PAT_PERIOD, pat, CHUNK);
}

/* Where stream `seed` starts in the sequence: streams differ per seed. */
static uint32_t stream_base(uint64_t seed)
{
	return (uint32_t)(mix64(seed ^ 0x5eedull) % PAT_PERIOD);
}

/* The stream's bytes from offset off on (at least CHUNK of them). */
static const unsigned char *pat_at(uint32_t base, uint64_t off)
{
	return pat + (base + off % PAT_PERIOD) % PAT_PERIOD;
}

/* First offset where got differs from the stream, or -1. */
static int64_t pat_check(uint32_t base, uint64_t off, const unsigned char *got, size_t n)
{
	const unsigned char *want = pat_at(base, off);

	if (memcmp(got, want, n) == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (got[i] != want[i])
			return (int64_t)(off + i);
	}
	return -1;
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || v < 0)
		die("bad size: %s", s);
	switch (*end) {
	case 'k': case 'K': v *= 1024; end++; break;
	case 'm': case 'M': v *= 1024 * 1024; end++; break;
	case 'g': case 'G': v *= 1024.0 * 1024 * 1024; end++; break;
	}
	if (*end)
		die("bad size: %s", s);
	return (uint64_t)v;
}

/* Parse ADDR into a sockaddr.  Returns the address family. */
static int parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *res;
	char host[128];
	const char *port;

	memset(ss, 0, sizeof(*ss));
	if (strncmp(spec, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)ss;

		if (strlen(spec + 5) >= sizeof(un->sun_path))
			die("unix path too long: %s", spec);
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, spec + 5);
		*len = sizeof(*un);
		return AF_UNIX;
	}
	if (spec[0] == '[') {
		const char *end = strchr(spec, ']');

		if (!end || end[1] != ':' || (size_t)(end - spec) > sizeof(host))
			die("bad address: %s", spec);
		memcpy(host, spec + 1, (size_t)(end - spec - 1));
		host[end - spec - 1] = '\0';
		port = end + 2;
	} else {
		const char *colon = strrchr(spec, ':');

		if (!colon || (size_t)(colon - spec) >= sizeof(host))
			die("bad address: %s", spec);
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
		port = colon + 1;
	}
	if (getaddrinfo(host, port, &hints, &res) != 0)
		die("bad address: %s", spec);
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return ss->ss_family;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void set_events(int ep, int fd, uint32_t *cur, uint32_t want, void *ptr)
{
	struct epoll_event ev = { .events = want, .data.ptr = ptr };

	if (*cur == want)
		return;
	if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
	*cur = want;
}

/* ---- server ------------------------------------------------------------- */

struct sconn {
	int fd;
	uint64_t id;
	uint32_t events;
	int op;                         /* -1 until the header is in */
	unsigned char hdr[HDR_LEN];
	size_t hdr_got;
	uint64_t up_n, down_n;
	uint32_t up_base, down_base;
	uint64_t got, sent;             /* pattern bytes in, out */
	int64_t bad_at;                 /* first wrong byte in, -1 */
	bool rd_eof, shut;
	unsigned char verdict[VERDICT_LEN];
	size_t v_sent;
	bool v_ready;
	unsigned char *ebuf;            /* echo */
	size_t e_len, e_off;
	struct sconn *ack_next;         /* early: waiting for the ACKs */
	bool acking;
};

static struct {
	const char *log_path, *status_path, *port_file;
	bool plain_echo;
	int backlog;
	int64_t corrupt_at;
	uint64_t short_by;
	FILE *log;
	uint64_t accepted, open, peak, ok, fail;
	bool status_dirty;
	bool tcp;
	struct sconn *acking;           /* early answers not yet acknowledged */
} srv = { .backlog = 4096, .corrupt_at = -1 };

static volatile sig_atomic_t srv_quit;

static void on_quit(int sig)
{
	(void)sig;
	srv_quit = 1;
}

static void srv_write_status(void)
{
	char tmp[PATH_MAX];
	FILE *f;

	if (!srv.status_path)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", srv.status_path);
	f = fopen(tmp, "w");
	if (!f)
		die("%s: %s", tmp, strerror(errno));
	fprintf(f, "accepted=%" PRIu64 " open=%" PRIu64 " peak=%" PRIu64 " ok=%" PRIu64
		" fail=%" PRIu64 "\n", srv.accepted, srv.open, srv.peak, srv.ok, srv.fail);
	fclose(f);
	if (rename(tmp, srv.status_path) != 0)
		die("rename %s: %s", tmp, strerror(errno));
	srv.status_dirty = false;
}

static void srv_end(int ep, struct sconn *c, bool ok, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	fprintf(srv.log, "conn %" PRIu64 " %s %s up=%" PRIu64 " down=%" PRIu64 " %s\n", c->id,
		c->op >= 0 ? op_names[c->op] : "-", ok ? "ok" : "FAIL", c->got, c->sent, why);
	fflush(srv.log);
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->ebuf);
	free(c);
	srv.open--;
	if (ok)
		srv.ok++;
	else
		srv.fail++;
	srv.status_dirty = true;
}

/* What the verdict says about the bytes that came in. */
static bool srv_up_ok(const struct sconn *c)
{
	return c->bad_at < 0 && c->got == c->up_n;
}

static void srv_make_verdict(struct sconn *c)
{
	put32(c->verdict, VERDICT_MAGIC);
	put32(c->verdict + 4, srv_up_ok(c));
	put64(c->verdict + 8, c->got);
	put64(c->verdict + 16, (uint64_t)c->bad_at);
	c->v_ready = true;
}

static bool srv_parse_header(struct sconn *c)
{
	uint64_t seed;

	if (get32(c->hdr) != HDR_MAGIC || get32(c->hdr + 4) >= OP_COUNT)
		return false;
	c->op = (int)get32(c->hdr + 4);
	c->up_n = get64(c->hdr + 8);
	c->down_n = get64(c->hdr + 16);
	seed = get64(c->hdr + 24);
	c->up_base = stream_base(seed * 2);
	c->down_base = stream_base(seed * 2 + 1);
	if (c->down_n >= srv.short_by)
		c->down_n -= srv.short_by;
	if (c->op == OP_ECHO && !c->ebuf) {
		c->ebuf = malloc(CHUNK);
		if (!c->ebuf)
			die("out of memory");
	}
	return true;
}

/* The pattern bytes to send next (a flipped copy around --corrupt-at). */
static const unsigned char *srv_next_chunk(struct sconn *c, size_t *n)
{
	static unsigned char flipped;
	uint64_t left = c->down_n - c->sent;
	const unsigned char *p = pat_at(c->down_base, c->sent);

	*n = left < CHUNK ? (size_t)left : CHUNK;
	if (srv.corrupt_at >= 0 && (uint64_t)srv.corrupt_at >= c->sent &&
	    (uint64_t)srv.corrupt_at < c->sent + *n) {
		if ((uint64_t)srv.corrupt_at > c->sent) {
			*n = (size_t)((uint64_t)srv.corrupt_at - c->sent);
		} else {
			flipped = (unsigned char)(p[0] ^ 0x20);
			*n = 1;
			return &flipped;
		}
	}
	return p;
}

/* Returns false when the connection was ended. */
static bool srv_read(int ep, struct sconn *c)
{
	static unsigned char buf[CHUNK];

	for (int rounds = 0; rounds < 16; rounds++) {
		size_t want = CHUNK;
		ssize_t n;

		if (c->op < 0)
			want = HDR_LEN - c->hdr_got;
		else if (c->op == OP_ECHO)
			want = c->e_len ? 0 : CHUNK;
		else if (c->op == OP_BLACKHOLE || c->op == OP_EARLY)
			want = 0;
		if (!want || c->rd_eof)
			return true;
		n = read(c->fd, c->op < 0 ? c->hdr + c->hdr_got : c->op == OP_ECHO ? c->ebuf : buf,
			 want);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return true;
			srv_end(ep, c, false, "read: %s", strerror(errno));
			return false;
		}
		if (n == 0) {
			c->rd_eof = true;
			if (c->op < 0) {
				srv_end(ep, c, false, "end of stream in the header (%zu bytes)",
					c->hdr_got);
				return false;
			}
			return true;
		}
		if (c->op < 0) {
			c->hdr_got += (size_t)n;
			if (c->hdr_got == HDR_LEN && !srv_parse_header(c)) {
				srv_end(ep, c, false, "bad header");
				return false;
			}
			continue;
		}
		if (c->op == OP_ECHO) {
			c->e_len = (size_t)n;
			c->e_off = 0;
			c->got += (uint64_t)n;
			return true;
		}
		if (c->bad_at < 0) {
			uint64_t room = c->got < c->up_n ? c->up_n - c->got : 0;
			size_t k = (uint64_t)n < room ? (size_t)n : (size_t)room;
			int64_t bad = pat_check(c->up_base, c->got, buf, k);

			/* Bytes beyond what was announced are wrong too. */
			if (bad < 0 && (size_t)n > k)
				bad = (int64_t)(c->got + k);
			c->bad_at = bad;
		}
		c->got += (uint64_t)n;
	}
	return true;
}

/* Write what the op has to say now.  Returns false when ended. */
static bool srv_write(int ep, struct sconn *c)
{
	for (int rounds = 0; rounds < 16; rounds++) {
		const unsigned char *p = NULL;
		size_t n = 0;
		ssize_t w;
		bool is_verdict = false, is_echo = false;

		if (c->op < 0)
			return true;
		if (c->shut)
			break;
		switch (c->op) {
		case OP_ECHO:
			if (c->e_off < c->e_len) {
				p = c->ebuf + c->e_off;
				n = c->e_len - c->e_off;
				is_echo = true;
			}
			break;
		case OP_DUPLEX:
			if (c->sent < c->down_n) {
				p = srv_next_chunk(c, &n);
			} else if (c->rd_eof && c->v_sent < VERDICT_LEN) {
				if (!c->v_ready)
					srv_make_verdict(c);
				p = c->verdict + c->v_sent;
				n = VERDICT_LEN - c->v_sent;
				is_verdict = true;
			}
			break;
		case OP_ANSWER:
			if (!c->rd_eof)
				break;
			if (c->v_sent < VERDICT_LEN) {
				if (!c->v_ready)
					srv_make_verdict(c);
				p = c->verdict + c->v_sent;
				n = VERDICT_LEN - c->v_sent;
				is_verdict = true;
			} else if (c->sent < c->down_n) {
				p = srv_next_chunk(c, &n);
			}
			break;
		case OP_SERVERFIRST:
		case OP_SOURCE:
		case OP_EARLY:
			if (c->sent < c->down_n)
				p = srv_next_chunk(c, &n);
			break;
		}
		if (!p)
			break;
		w = write(c->fd, p, n);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return true;
			srv_end(ep, c, false, "write: %s", strerror(errno));
			return false;
		}
		if (is_verdict)
			c->v_sent += (size_t)w;
		else if (is_echo)
			c->e_off += (size_t)w;
		else
			c->sent += (uint64_t)w;
		if (is_echo) {
			c->sent += (uint64_t)w;
			if (c->e_off == c->e_len) {
				c->e_off = c->e_len = 0;
				if (!srv_read(ep, c))
					return false;
			}
		}
	}
	/* Ends of the stream each op defines. */
	switch (c->op) {
	case OP_ECHO:
		if (c->rd_eof && c->e_off == c->e_len) {
			srv_end(ep, c, true, "echoed");
			return false;
		}
		break;
	case OP_DUPLEX:
		if (c->v_sent == VERDICT_LEN) {
			bool ok = srv_up_ok(c);

			srv_end(ep, c, ok, "bad_at=%" PRId64, c->bad_at);
			return false;
		}
		break;
	case OP_ANSWER:
		if (c->v_sent == VERDICT_LEN && c->sent == c->down_n) {
			bool ok = srv_up_ok(c);

			srv_end(ep, c, ok, "answered, bad_at=%" PRId64, c->bad_at);
			return false;
		}
		break;
	case OP_SERVERFIRST:
		if (c->sent == c->down_n && !c->shut) {
			shutdown(c->fd, SHUT_WR);
			c->shut = true;
		}
		if (c->shut && c->rd_eof) {
			bool ok = srv_up_ok(c);

			srv_end(ep, c, ok, "bad_at=%" PRId64, c->bad_at);
			return false;
		}
		break;
	case OP_SOURCE:
		if (c->sent == c->down_n) {
			/* close() at once, nothing else: the relay must still
			 * deliver every byte (HAProxy #2505). */
			srv_end(ep, c, c->got == 0, "closed after sending");
			return false;
		}
		break;
	case OP_EARLY:
		if (c->sent == c->down_n && !c->acking) {
			/* close() only once every byte is out of our socket:
			 * with the client's bytes unread, close() resets the
			 * connection and drops what it still holds. */
			c->acking = true;
			c->ack_next = srv.acking;
			srv.acking = c;
			set_events(ep, c->fd, &c->events, 0, c);
			return false;
		}
		break;
	case OP_SINK:
		if (c->rd_eof) {
			bool ok = srv_up_ok(c);

			srv_end(ep, c, ok, "end of stream, bad_at=%" PRId64, c->bad_at);
			return false;
		}
		break;
	}
	return true;
}

static void srv_update(int ep, struct sconn *c)
{
	uint32_t want = 0;
	bool has_out = false;

	if (c->op == OP_BLACKHOLE) {
		set_events(ep, c->fd, &c->events, EPOLLRDHUP, c);
		return;
	}
	if (!c->rd_eof && (c->op != OP_ECHO || c->e_len == 0) && c->op != OP_EARLY)
		want |= EPOLLIN;
	switch (c->op) {
	case OP_ECHO: has_out = c->e_off < c->e_len; break;
	case OP_DUPLEX: has_out = c->sent < c->down_n || c->rd_eof; break;
	case OP_ANSWER: has_out = c->rd_eof; break;
	case OP_SERVERFIRST:
	case OP_SOURCE:
	case OP_EARLY: has_out = c->sent < c->down_n; break;
	}
	if (has_out && !c->shut)
		want |= EPOLLOUT;
	set_events(ep, c->fd, &c->events, want, c);
}

static void srv_event(int ep, struct sconn *c, uint32_t ev)
{
	if (c->acking)
		return; /* ended from the main loop */
	if (c->op == OP_QUIET && c->rd_eof && (ev & (EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		srv_end(ep, c, srv_up_ok(c), "client gone after its end: %s",
			err ? strerror(err) : "hang-up");
		return;
	}
	if (c->op == OP_BLACKHOLE) {
		if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			srv_end(ep, c, true, "client gone, never read");
		return;
	}
	if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !srv_read(ep, c))
		return;
	if (c->op == OP_ECHO && c->rd_eof && c->e_len == 0 && !c->shut) {
		shutdown(c->fd, SHUT_WR);
		c->shut = true;
	}
	if (!srv_write(ep, c))
		return;
	if (c->op == OP_BLACKHOLE) {
		srv_update(ep, c);
		return;
	}
	if ((ev & EPOLLERR) || ((ev & EPOLLHUP) && !c->rd_eof)) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		srv_end(ep, c, false, "socket error: %s", strerror(err ? err : EPIPE));
		return;
	}
	if (c->op == OP_ECHO && c->shut && c->rd_eof) {
		srv_end(ep, c, true, "echoed");
		return;
	}
	srv_update(ep, c);
}

static int server_main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	int family, lfd, ep, one = 1;
	struct epoll_event ev, evs[MAX_EVENTS];
	int64_t next_status = 0;
	const char *addr;

	if (argc < 1)
		die("server: ADDR missing");
	addr = argv[0];
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(o, "--mode") && v && !strcmp(v, "echo"))
			srv.plain_echo = true;
		else if (!strcmp(o, "--port-file") && v)
			srv.port_file = v;
		else if (!strcmp(o, "--log") && v)
			srv.log_path = v;
		else if (!strcmp(o, "--status") && v)
			srv.status_path = v;
		else if (!strcmp(o, "--backlog") && v)
			srv.backlog = atoi(v);
		else if (!strcmp(o, "--corrupt-at") && v)
			srv.corrupt_at = (int64_t)parse_size(v);
		else if (!strcmp(o, "--short") && v)
			srv.short_by = parse_size(v);
		else
			die("server: bad option %s", o);
		i++;
	}
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_quit);
	signal(SIGINT, on_quit);
	srv.log = srv.log_path ? fopen(srv.log_path, "a") : stdout;
	if (!srv.log)
		die("%s: %s", srv.log_path, strerror(errno));
	family = parse_addr(addr, &ss, &slen);
	srv.tcp = family != AF_UNIX;
	lfd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket: %s", strerror(errno));
	if (family == AF_UNIX)
		unlink(((struct sockaddr_un *)&ss)->sun_path);
	else
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&ss, slen) != 0)
		die("bind %s: %s", addr, strerror(errno));
	if (listen(lfd, srv.backlog) != 0)
		die("listen: %s", strerror(errno));
	if (srv.port_file) {
		char tmp[PATH_MAX];
		unsigned port = 0;
		FILE *f;

		slen = sizeof(ss);
		getsockname(lfd, (struct sockaddr *)&ss, &slen);
		if (family == AF_INET)
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (family == AF_INET6)
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		snprintf(tmp, sizeof(tmp), "%s.tmp", srv.port_file);
		f = fopen(tmp, "w");
		if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0 ||
		    rename(tmp, srv.port_file) != 0)
			die("%s: %s", srv.port_file, strerror(errno));
	}
	srv.status_dirty = true;
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	while (!srv_quit) {
		int n = epoll_wait(ep, evs, MAX_EVENTS, srv.acking ? 1 : 50);
		int64_t now;
		struct sconn **pp = &srv.acking;

		while (*pp) {
			struct sconn *c = *pp;
			int outq = 0;

			if (srv.tcp && ioctl(c->fd, SIOCOUTQ, &outq) == 0 && outq > 0) {
				pp = &c->ack_next;
				continue;
			}
			*pp = c->ack_next;
			srv_end(ep, c, true, "answered early and closed");
		}

		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			struct sconn *c = evs[i].data.ptr;

			if (c) {
				srv_event(ep, c, evs[i].events);
				continue;
			}
			for (int k = 0; k < 256; k++) {
				int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

				if (fd < 0) {
					if (errno != EAGAIN && errno != ECONNABORTED && errno != EINTR)
						fprintf(stderr, "rl_peer: accept: %s\n", strerror(errno));
					break;
				}
				c = calloc(1, sizeof(*c));
				if (!c)
					die("out of memory");
				c->fd = fd;
				c->id = ++srv.accepted;
				c->op = -1;
				c->bad_at = -1;
				if (srv.plain_echo) {
					c->op = OP_ECHO;
					c->ebuf = malloc(CHUNK);
					if (!c->ebuf)
						die("out of memory");
				}
				ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = c };
				c->events = EPOLLIN;
				if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
					die("epoll_ctl: %s", strerror(errno));
				if (++srv.open > srv.peak)
					srv.peak = srv.open;
				srv.status_dirty = true;
			}
		}
		now = now_ms();
		if (srv.status_dirty && now >= next_status) {
			srv_write_status();
			next_status = now + 50;
		}
	}
	srv_write_status();
	fprintf(srv.log, "summary accepted=%" PRIu64 " open=%" PRIu64 " peak=%" PRIu64 " ok=%" PRIu64
		" fail=%" PRIu64 "\n", srv.accepted, srv.open, srv.peak, srv.ok, srv.fail);
	fflush(srv.log);
	if (family == AF_UNIX)
		unlink(((struct sockaddr_un *)&ss)->sun_path);
	return 0;
}

/* ---- client ------------------------------------------------------------- */

enum { ABORT_NONE, ABORT_RST, ABORT_CLOSE };
enum { EXPECT_DATA, EXPECT_CLOSE, EXPECT_REFUSED };

struct cconn {
	int fd;
	uint64_t idx;
	uint32_t events;
	bool connecting, done, failed, held, shut, rd_eof, stalled;
	unsigned char hdr[HDR_LEN];
	size_t hdr_sent;
	uint64_t up_n, down_n;
	uint32_t up_base, down_base;
	uint64_t sent, rx;              /* pattern bytes out; all bytes in */
	unsigned char verdict[VERDICT_LEN];
	int64_t t_start, t_progress;
	char why[200];
};

static struct {
	const char *addr;
	struct sockaddr_storage ss;
	socklen_t slen;
	int family;
	int op;
	uint64_t up, down, lo, hi;
	bool sizes;
	uint64_t count, conns, seed;
	const char *hold, *release;
	int64_t stall_ms;
	uint64_t abort_after;
	int abort_how;
	int64_t corrupt_at;
	uint64_t read_rate;
	int64_t slow_for_ms;
	int expect;
	int64_t timeout_ms;
	/* results */
	uint64_t started, finished, ok, fail, held, up_total, down_total;
	uint64_t min_size, max_size, hist[64];
	int64_t t0, first_close_ms, last_close_ms;
	uint64_t stall_sent;
	unsigned reported;
	uint64_t rng;
} cli = { .op = OP_DUPLEX, .count = 1, .conns = 1, .seed = 1, .timeout_ms = 60000,
	  .min_size = UINT64_MAX, .first_close_ms = -1, .corrupt_at = -1 };

static uint64_t rng_next(void)
{
	cli.rng += 0x9e3779b97f4a7c15ull;
	return mix64(cli.rng);
}

static int bit_length(uint64_t v)
{
	int b = 0;

	while (v) {
		b++;
		v >>= 1;
	}
	return b;
}

/*
 * About log-uniform in [lo, hi]: a power-of-two class [2^k, 2^(k+1)) drawn
 * uniformly, then a size uniformly inside it, drawn again when outside
 * [lo, hi]: 10-byte and 10-MiB streams are about as common.
 */
static uint64_t draw_size(uint64_t i)
{
	int kl = bit_length(cli.lo) - 1, kh = bit_length(cli.hi) - 1;

	if (i == 0)
		return cli.lo;
	if (i == 1)
		return cli.hi;
	for (;;) {
		int k = kl + (int)(rng_next() % (uint64_t)(kh - kl + 1));
		uint64_t v = (1ull << k) + rng_next() % (1ull << k);

		if (v >= cli.lo && v <= cli.hi)
			return v;
	}
}

static void cli_note_size(uint64_t n)
{
	int b = 0;

	if (n < cli.min_size)
		cli.min_size = n;
	if (n > cli.max_size)
		cli.max_size = n;
	while (b < 63 && (1ull << (b + 1)) <= n)
		b++;
	cli.hist[n ? b : 0]++;
}

static void cli_finish(int ep, struct cconn *c, bool ok, const char *fmt, ...)
{
	int64_t t = now_ms() - cli.t0;

	if (c->done)
		return;
	if (!ok && fmt) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(c->why, sizeof(c->why), fmt, ap);
		va_end(ap);
	}
	c->done = true;
	c->failed = !ok;
	if (c->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	cli.finished++;
	if (ok) {
		cli.ok++;
	} else {
		cli.fail++;
		if (cli.reported++ < 10)
			fprintf(stderr, "rl_peer: client: conn %" PRIu64 " (%s up=%" PRIu64
				" down=%" PRIu64 "): %s (sent %" PRIu64 ", received %" PRIu64 ")\n",
				c->idx, op_names[cli.op], c->up_n, c->down_n, c->why, c->sent, c->rx);
	}
	if (cli.first_close_ms < 0)
		cli.first_close_ms = t;
	cli.last_close_ms = t;
}

static struct cconn *cli_start(int ep, uint64_t idx)
{
	struct cconn *c = calloc(1, sizeof(*c));
	struct epoll_event ev;
	uint64_t seed = cli.seed * 1000003 + idx;

	if (!c)
		die("out of memory");
	c->idx = idx;
	c->up_n = cli.up;
	c->down_n = cli.down;
	if (cli.sizes) {
		uint64_t s = draw_size(idx);

		if (cli.op == OP_SOURCE || cli.op == OP_SERVERFIRST || cli.op == OP_EARLY)
			c->down_n = s;
		if (cli.op == OP_ECHO || cli.op == OP_SINK || cli.op == OP_ANSWER ||
		    cli.op == OP_DUPLEX)
			c->up_n = s;
		if (cli.op == OP_DUPLEX || cli.op == OP_ANSWER)
			c->down_n = draw_size(idx + 2);
		cli_note_size(s);
	}
	if (cli.op == OP_BLACKHOLE)
		c->up_n = UINT64_MAX / 2;
	c->up_base = stream_base(seed * 2);
	c->down_base = stream_base(seed * 2 + 1);
	put32(c->hdr, HDR_MAGIC);
	put32(c->hdr + 4, (uint32_t)cli.op);
	put64(c->hdr + 8, c->up_n);
	put64(c->hdr + 16, c->down_n);
	put64(c->hdr + 24, seed);
	c->t_start = c->t_progress = now_ms();
	cli.started++;
	c->fd = socket(cli.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&cli.ss, cli.slen) != 0) {
		if (errno == EINPROGRESS) {
			c->connecting = true;
		} else if (cli.expect == EXPECT_REFUSED && (errno == ECONNREFUSED || errno == ENOENT)) {
			cli_finish(ep, c, true, NULL);
			return c;
		} else {
			cli_finish(ep, c, false, "connect: %s", strerror(errno));
			return c;
		}
	}
	c->events = EPOLLIN | EPOLLOUT;
	ev = (struct epoll_event){ .events = c->events, .data.ptr = c };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
	return c;
}

/* Pattern bytes this connection may send now. */
static uint64_t cli_up_limit(const struct cconn *c)
{
	if (cli.op == OP_SOURCE)
		return 0;
	if (cli.op == OP_SERVERFIRST && !c->rd_eof)
		return c->up_n / 2; /* the rest only after the server's end */
	return c->up_n;
}

static bool cli_may_shut(const struct cconn *c)
{
	if (cli.op == OP_SOURCE || cli.op == OP_BLACKHOLE)
		return false; /* stays open: the server ends these */
	if (cli.op == OP_ECHO && cli.hold && !c->held)
		return false;
	if (cli.op == OP_ECHO && cli.hold && cli.release && access(cli.release, F_OK) != 0)
		return false;
	return true;
}

/* Expected size of everything the server sends. */
static uint64_t cli_down_total(const struct cconn *c)
{
	switch (cli.op) {
	case OP_ECHO: return c->up_n;
	case OP_DUPLEX:
	case OP_ANSWER: return c->down_n + VERDICT_LEN;
	case OP_SERVERFIRST:
	case OP_SOURCE:
	case OP_EARLY: return c->down_n;
	default: return 0;
	}
}

static void cli_abort(int ep, struct cconn *c)
{
	if (cli.abort_how == ABORT_RST) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	cli_finish(ep, c, true, NULL);
}

/* Check received bytes at stream offset c->rx.  Returns false on a mismatch. */
static bool cli_check(int ep, struct cconn *c, const unsigned char *buf, size_t n)
{
	uint64_t total = cli_down_total(c);
	uint64_t pat_start = cli.op == OP_ANSWER ? VERDICT_LEN : 0;
	uint64_t pat_len = cli.op == OP_ECHO ? c->up_n : c->down_n;
	uint32_t base = cli.op == OP_ECHO ? c->up_base : c->down_base;
	uint64_t off = c->rx;

	if (off + n > total) {
		cli_finish(ep, c, false, "%" PRIu64 " bytes more than the %" PRIu64 " expected",
			   off + n - total, total);
		return false;
	}
	while (n) {
		size_t k;

		if (off >= pat_start && off < pat_start + pat_len) {
			int64_t bad;

			k = (size_t)(pat_start + pat_len - off) < n ? (size_t)(pat_start + pat_len - off)
								     : n;
			bad = pat_check(base, off - pat_start, buf, k);
			if (bad >= 0) {
				cli_finish(ep, c, false, "wrong byte at offset %" PRId64 " of %" PRIu64,
					   bad, pat_len);
				return false;
			}
		} else {
			/* The verdict: before the pattern (answer) or after it. */
			uint64_t voff = off < pat_start ? off : off - pat_start - pat_len;

			k = (size_t)(VERDICT_LEN - voff) < n ? (size_t)(VERDICT_LEN - voff) : n;
			memcpy(c->verdict + voff, buf, k);
		}
		buf += k;
		n -= k;
		off += k;
	}
	return true;
}

/* The whole stream arrived and ended: was it right? */
static void cli_eof(int ep, struct cconn *c)
{
	uint64_t total = cli_down_total(c);

	if (cli.expect == EXPECT_CLOSE) {
		if (c->rx)
			cli_finish(ep, c, false, "expected a close, got %" PRIu64 " bytes", c->rx);
		else
			cli_finish(ep, c, true, NULL);
		return;
	}
	if (c->rx != total) {
		cli_finish(ep, c, false, "stream ended after %" PRIu64 " of %" PRIu64 " bytes", c->rx,
			   total);
		return;
	}
	if (!c->shut && (cli.op == OP_ECHO || cli.op == OP_DUPLEX || cli.op == OP_ANSWER)) {
		/* These servers end only after the client did. */
		cli_finish(ep, c, false, "closed before the client's end");
		return;
	}
	if (cli.op == OP_DUPLEX || cli.op == OP_ANSWER) {
		if (get32(c->verdict) != VERDICT_MAGIC) {
			cli_finish(ep, c, false, "no verdict");
			return;
		}
		if (!get32(c->verdict + 4) || get64(c->verdict + 8) != c->up_n) {
			cli_finish(ep, c, false,
				   "server got %" PRIu64 " of %" PRIu64 " bytes, first wrong at %" PRId64,
				   get64(c->verdict + 8), c->up_n, (int64_t)get64(c->verdict + 16));
			return;
		}
	}
}

/* Read what is there.  Returns false when the connection ended. */
static bool cli_read(int ep, struct cconn *c, uint64_t *budget)
{
	static unsigned char buf[CHUNK];

	while (!c->rd_eof) {
		size_t want = CHUNK;
		ssize_t n;

		if (*budget < want)
			want = (size_t)*budget;
		if (!want)
			return true;
		n = read(c->fd, buf, want);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return true;
			if (cli.expect == EXPECT_CLOSE && c->rx == 0 &&
			    (errno == ECONNRESET || errno == EPIPE)) {
				cli_finish(ep, c, true, NULL);
				return false;
			}
			if (cli.op == OP_EARLY && errno == ECONNRESET) {
				/* The server's reset, after its answer. */
				c->rd_eof = true;
				cli_eof(ep, c);
				return !c->done;
			}
			cli_finish(ep, c, false, "read: %s", strerror(errno));
			return false;
		}
		if (n == 0) {
			c->rd_eof = true;
			cli_eof(ep, c);
			return !c->done;
		}
		*budget -= (uint64_t)n;
		c->t_progress = now_ms();
		if (!cli_check(ep, c, buf, (size_t)n))
			return false;
		c->rx += (uint64_t)n;
		cli.down_total += (uint64_t)n;
		if (cli.abort_after && c->sent + c->rx >= cli.abort_after) {
			cli_abort(ep, c);
			return false;
		}
	}
	return true;
}

/* Send what may be sent.  Returns false when the connection ended. */
static bool cli_write(int ep, struct cconn *c)
{
	for (int rounds = 0; rounds < 16; rounds++) {
		uint64_t limit = cli_up_limit(c);
		const unsigned char *p;
		size_t n;
		ssize_t w;

		if (c->shut)
			return true;
		if (c->hdr_sent < HDR_LEN) {
			p = c->hdr + c->hdr_sent;
			n = HDR_LEN - c->hdr_sent;
		} else if (c->sent < limit) {
			p = pat_at(c->up_base, c->sent);
			n = limit - c->sent < CHUNK ? (size_t)(limit - c->sent) : CHUNK;
			if (cli.abort_after && cli.abort_after - c->rx - c->sent < n)
				n = (size_t)(cli.abort_after - c->rx - c->sent);
			if (cli.corrupt_at >= 0 && (uint64_t)cli.corrupt_at >= c->sent &&
			    (uint64_t)cli.corrupt_at < c->sent + n) {
				static unsigned char flipped;

				if ((uint64_t)cli.corrupt_at > c->sent) {
					n = (size_t)((uint64_t)cli.corrupt_at - c->sent);
				} else {
					flipped = (unsigned char)(p[0] ^ 0x20);
					p = &flipped;
					n = 1;
				}
			}
		} else {
			if (c->sent == c->up_n && cli_may_shut(c)) {
				shutdown(c->fd, SHUT_WR);
				c->shut = true;
			}
			return true;
		}
		w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return true;
			if (cli.op == OP_EARLY && (errno == EPIPE || errno == ECONNRESET)) {
				/* The server has gone: stop sending, read on. */
				c->shut = true;
				return true;
			}
			if (cli.expect == EXPECT_CLOSE && c->rx == 0) {
				cli_finish(ep, c, true, NULL);
				return false;
			}
			cli_finish(ep, c, false, "write: %s", strerror(errno));
			return false;
		}
		c->t_progress = now_ms();
		if (c->hdr_sent < HDR_LEN) {
			c->hdr_sent += (size_t)w;
			continue;
		}
		c->sent += (uint64_t)w;
		cli.up_total += (uint64_t)w;
		if (cli.abort_after && c->sent + c->rx >= cli.abort_after) {
			cli_abort(ep, c);
			return false;
		}
	}
	return true;
}

static void cli_update(int ep, struct cconn *c, bool may_read)
{
	uint32_t want = 0;

	if (c->done)
		return;
	if (c->connecting) {
		set_events(ep, c->fd, &c->events, EPOLLOUT, c);
		return;
	}
	if (!c->rd_eof && may_read)
		want |= EPOLLIN;
	if (c->shut)
		;
	else if (c->hdr_sent < HDR_LEN || c->sent < cli_up_limit(c))
		want |= EPOLLOUT;
	else if (c->sent == c->up_n && cli_may_shut(c))
		want |= EPOLLOUT;
	set_events(ep, c->fd, &c->events, want, c);
}

/* Done when both ways are done, by the op's rules. */
static void cli_maybe_done(int ep, struct cconn *c)
{
	if (c->done || !c->rd_eof)
		return;
	if (cli.op == OP_SOURCE || cli.op == OP_SINK || cli.op == OP_EARLY || c->shut)
		cli_finish(ep, c, true, NULL);
}

static uint64_t cli_read_budget(void)
{
	int64_t el;

	if (!cli.read_rate)
		return UINT64_MAX;
	el = now_ms() - cli.t0;
	if (el >= cli.slow_for_ms)
		return UINT64_MAX;
	/* A tenth of a second's worth ahead at most. */
	{
		uint64_t allowed = cli.read_rate * (uint64_t)el / 1000 + cli.read_rate / 10;

		return allowed > cli.down_total ? allowed - cli.down_total : 0;
	}
}

static void cli_event(int ep, struct cconn *c, uint32_t ev, uint64_t *budget)
{
	if (c->connecting) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			if (cli.expect == EXPECT_REFUSED && err == ECONNREFUSED)
				cli_finish(ep, c, true, NULL);
			else
				cli_finish(ep, c, false, "connect: %s", strerror(err));
			return;
		}
		c->connecting = false;
		if (cli.expect == EXPECT_REFUSED) {
			cli_finish(ep, c, false, "connect succeeded, expected a refusal");
			return;
		}
	}
	if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !cli_read(ep, c, budget))
		return;
	if (!cli_write(ep, c))
		return;
	if ((ev & EPOLLERR) && !c->done && cli.op != OP_EARLY) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (cli.expect == EXPECT_CLOSE && c->rx == 0)
			cli_finish(ep, c, true, NULL);
		else
			cli_finish(ep, c, false, "socket error: %s", strerror(err));
		return;
	}
	cli_maybe_done(ep, c);
	if (!c->done && cli.hold && !c->held &&
	    ((cli.op == OP_ECHO && c->sent == c->up_n && c->rx == c->up_n) ||
	     (cli.op == OP_QUIET && c->shut))) {
		c->held = true;
		cli.held++;
	}
}

static void touch(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	close(fd);
}

static void cli_print_summary(int64_t elapsed)
{
	printf("rl_peer: client: op=%s conns=%" PRIu64 " ok=%" PRIu64 " fail=%" PRIu64
	       " up=%" PRIu64 " down=%" PRIu64 " elapsed_ms=%" PRId64 " first_close_ms=%" PRId64
	       " last_close_ms=%" PRId64, op_names[cli.op], cli.finished, cli.ok, cli.fail,
	       cli.up_total, cli.down_total, elapsed, cli.first_close_ms, cli.last_close_ms);
	if (cli.op == OP_BLACKHOLE)
		printf(" stall_sent=%" PRIu64, cli.stall_sent);
	printf("\n");
	if (cli.sizes) {
		printf("rl_peer: client: sizes %" PRIu64 "..%" PRIu64 " bytes; per power of two:",
		       cli.min_size, cli.max_size);
		for (int b = 0; b < 64; b++) {
			if (cli.hist[b])
				printf(" 2^%d:%" PRIu64, b, cli.hist[b]);
		}
		printf("\n");
	}
	fflush(stdout);
}

static int client_main(int argc, char **argv)
{
	struct cconn **conns;
	struct epoll_event evs[MAX_EVENTS];
	uint64_t next = 0, open_now = 0;
	bool hold_signalled = false;
	int ep;

	if (argc < 1)
		die("client: ADDR missing");
	cli.addr = argv[0];
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			die("client: %s needs a value", o);
		if (!strcmp(o, "--op")) {
			cli.op = -1;
			for (int k = 0; k < OP_COUNT; k++) {
				if (!strcmp(v, op_names[k]))
					cli.op = k;
			}
			if (cli.op < 0)
				die("client: unknown op %s", v);
		} else if (!strcmp(o, "--up")) {
			cli.up = parse_size(v);
		} else if (!strcmp(o, "--down")) {
			cli.down = parse_size(v);
		} else if (!strcmp(o, "--sizes")) {
			const char *colon = strchr(v, ':');
			char lo[64];

			if (!colon || (size_t)(colon - v) >= sizeof(lo))
				die("client: --sizes LO:HI");
			memcpy(lo, v, (size_t)(colon - v));
			lo[colon - v] = '\0';
			cli.lo = parse_size(lo);
			cli.hi = parse_size(colon + 1);
			if (!cli.lo || cli.hi < cli.lo)
				die("client: --sizes LO:HI with 1 <= LO <= HI");
			cli.sizes = true;
		} else if (!strcmp(o, "--count")) {
			cli.count = parse_size(v);
		} else if (!strcmp(o, "--conns")) {
			cli.conns = parse_size(v);
		} else if (!strcmp(o, "--seed")) {
			cli.seed = parse_size(v);
		} else if (!strcmp(o, "--hold")) {
			cli.hold = v;
		} else if (!strcmp(o, "--release")) {
			cli.release = v;
		} else if (!strcmp(o, "--stall-ms")) {
			cli.stall_ms = (int64_t)parse_size(v);
		} else if (!strcmp(o, "--abort-after")) {
			cli.abort_after = parse_size(v);
		} else if (!strcmp(o, "--abort")) {
			cli.abort_how = !strcmp(v, "rst") ? ABORT_RST : !strcmp(v, "close") ? ABORT_CLOSE : -1;
			if (cli.abort_how < 0)
				die("client: --abort rst|close");
		} else if (!strcmp(o, "--read-rate")) {
			cli.read_rate = parse_size(v);
		} else if (!strcmp(o, "--slow-for")) {
			cli.slow_for_ms = (int64_t)(atof(v) * 1000);
		} else if (!strcmp(o, "--expect")) {
			cli.expect = !strcmp(v, "close") ? EXPECT_CLOSE : !strcmp(v, "refused") ? EXPECT_REFUSED : -1;
			if (cli.expect < 0)
				die("client: --expect close|refused");
		} else if (!strcmp(o, "--corrupt-at")) {
			cli.corrupt_at = (int64_t)parse_size(v);
		} else if (!strcmp(o, "--timeout")) {
			cli.timeout_ms = (int64_t)(atof(v) * 1000);
		} else {
			die("client: bad option %s", o);
		}
		i++;
	}
	if (cli.abort_how && !cli.abort_after && !cli.hold)
		die("client: --abort needs --abort-after or --hold");
	if (cli.hold && cli.conns < cli.count)
		die("client: --hold needs --conns >= --count");
	if (cli.read_rate && !cli.slow_for_ms)
		cli.slow_for_ms = INT64_MAX / 2;
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	cli.family = parse_addr(cli.addr, &cli.ss, &cli.slen);
	cli.rng = cli.seed;
	conns = calloc(cli.count, sizeof(*conns));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!conns || ep < 0)
		die("setup: %s", strerror(errno));
	cli.t0 = now_ms();
	for (;;) {
		int64_t now = now_ms();
		uint64_t budget;
		int n;

		/* Open connections, a few hundred per round at most, so the
		 * listen backlogs on the way do not overflow. */
		for (int k = 0; k < 256 && next < cli.count && open_now < cli.conns; k++) {
			conns[next] = cli_start(ep, next);
			next++;
			open_now++;
		}
		open_now = cli.started - cli.finished;
		if (cli.finished == cli.count)
			break;
		if (now - cli.t0 > cli.timeout_ms) {
			uint64_t shown = 0;

			for (uint64_t i = 0; i < next; i++) {
				struct cconn *c = conns[i];

				if (c->done)
					continue;
				if (shown++ < 5)
					fprintf(stderr, "rl_peer: client: conn %" PRIu64 " stuck: %s, sent %"
						PRIu64 "/%" PRIu64 ", received %" PRIu64 "/%" PRIu64
						"%s%s\n", c->idx, c->connecting ? "connecting" : "open",
						c->sent, c->up_n, c->rx, cli_down_total(c),
						c->shut ? ", half-closed" : "", c->rd_eof ? ", at EOF" : "");
				snprintf(c->why, sizeof(c->why), "timed out");
				cli_finish(ep, c, false, "timed out");
			}
			fprintf(stderr, "rl_peer: client: timed out after %" PRId64 " ms\n",
				cli.timeout_ms);
			break;
		}
		budget = cli_read_budget();
		n = epoll_wait(ep, evs, MAX_EVENTS, budget ? 20 : 5);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			struct cconn *c = evs[i].data.ptr;

			if (c->done)
				continue;
			cli_event(ep, c, evs[i].events, &budget);
			cli_update(ep, c, budget > 0);
		}
		if (cli.read_rate) {
			/* Readers were muted while over budget: wake them. */
			budget = cli_read_budget();
			for (uint64_t i = 0; i < next; i++)
				cli_update(ep, conns[i], budget > 0);
		}
		if (cli.op == OP_BLACKHOLE && cli.stall_ms) {
			now = now_ms();
			for (uint64_t i = 0; i < next; i++) {
				struct cconn *c = conns[i];

				if (!c->done && !c->stalled && !c->connecting &&
				    now - c->t_progress >= cli.stall_ms) {
					c->stalled = true;
					c->held = true;
					cli.held++;
					cli.stall_sent += c->sent;
				}
			}
		}
		if (cli.hold && !hold_signalled && cli.held + cli.fail == cli.count) {
			hold_signalled = true;
			cli_print_summary(now_ms() - cli.t0);
			touch(cli.hold);
		}
		if (hold_signalled && cli.release && access(cli.release, F_OK) == 0) {
			if (cli.op == OP_BLACKHOLE || cli.abort_how) {
				for (uint64_t i = 0; i < next; i++) {
					if (conns[i]->done)
						continue;
					if (cli.abort_how)
						cli_abort(ep, conns[i]);
					else
						cli_finish(ep, conns[i], true, NULL);
				}
			} else {
				for (uint64_t i = 0; i < next; i++) {
					cli_write(ep, conns[i]);
					cli_update(ep, conns[i], true);
				}
			}
			cli.release = NULL;
		}
	}
	cli_print_summary(now_ms() - cli.t0);
	return cli.fail || cli.ok != cli.count ? 1 : 0;
}

/* ---- fds ---------------------------------------------------------------- */

/*
 * Count PID's fds, how many are pipes, and the bytes its pipes hold (each
 * pipe opened once more through /proc for FIONREAD: a reader that never
 * reads changes nothing).  Pipes listed in argv[1] (comma-separated
 * inodes, as printed in "inodes=") are left out of pipes= and held=: the
 * ones it inherited, its stdout to a test runner say.
 */
static int fds_main(int argc, char **argv)
{
	char dir[64], path[PATH_MAX], link[128];
	unsigned long inodes[4096];
	unsigned ninodes = 0, nfds = 0, npipe_fds = 0, nignored = 0;
	char list[8192] = "";
	size_t ll = 0;
	uint64_t held = 0, held_max = 0;
	struct dirent *de;
	DIR *d;

	if (argc < 1)
		die("fds: PID missing");
	snprintf(dir, sizeof(dir), "/proc/%s/fd", argv[0]);
	d = opendir(dir);
	if (!d)
		die("%s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		unsigned long ino;
		ssize_t n;
		bool seen = false;

		if (de->d_name[0] == '.')
			continue;
		nfds++;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (sscanf(link, "pipe:[%lu]", &ino) != 1)
			continue;
		npipe_fds++;
		for (unsigned i = 0; i < ninodes; i++)
			seen |= inodes[i] == ino;
		if (seen || ninodes == sizeof(inodes) / sizeof(inodes[0]))
			continue;
		inodes[ninodes++] = ino;
		if (ll < sizeof(list) - 24)
			ll += (size_t)snprintf(list + ll, sizeof(list) - ll, "%s%lu", ll ? "," : "", ino);
		if (argc > 1) {
			char want[32];
			const char *p = argv[1];
			bool skip = false;

			snprintf(want, sizeof(want), "%lu", ino);
			while (*p && !skip) {
				size_t k = strcspn(p, ",");

				skip = k == strlen(want) && strncmp(p, want, k) == 0;
				p += k + (p[k] == ',');
			}
			if (skip) {
				nignored++;
				continue;
			}
		}
		{
			int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
			int q = 0;

			if (fd >= 0 && ioctl(fd, FIONREAD, &q) == 0) {
				held += (uint64_t)q;
				if ((uint64_t)q > held_max)
					held_max = (uint64_t)q;
			}
			if (fd >= 0)
				close(fd);
		}
	}
	closedir(d);
	printf("fds=%u pipe_fds=%u pipes=%u held=%" PRIu64 " held_max=%" PRIu64 " inodes=%s\n", nfds,
	       npipe_fds, ninodes - nignored, held, held_max, list);
	return 0;
}

/* ---- stuck --------------------------------------------------------------- */

/*
 * A listener with backlog 0 that never accepts, its queue filled by its
 * own connections: further SYNs are dropped, so connecting to it neither
 * succeeds nor fails (until the client's own timeout).  Nothing leaves the
 * machine.
 */
static int stuck_main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	int family, lfd, one = 1, filled = 0;
	const char *port_file = NULL;

	if (argc < 1)
		die("stuck: ADDR missing");
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port-file"))
			port_file = argv[i + 1];
		else
			die("stuck: bad option %s", argv[i]);
	}
	family = parse_addr(argv[0], &ss, &slen);
	if (family == AF_UNIX)
		die("stuck: TCP only (a full unix backlog refuses at once)");
	lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&ss, slen) != 0 || listen(lfd, 0) != 0)
		die("stuck: listen %s: %s", argv[0], strerror(errno));
	slen = sizeof(ss);
	getsockname(lfd, (struct sockaddr *)&ss, &slen);
	/* Connect until one connection stays pending: the queue is full. */
	for (int i = 0; i < 16; i++) {
		int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		int64_t until = now_ms() + 300;
		bool done = false;

		if (fd < 0)
			die("socket: %s", strerror(errno));
		if (connect(fd, (struct sockaddr *)&ss, slen) == 0)
			continue;
		if (errno != EINPROGRESS)
			die("stuck: connect: %s", strerror(errno));
		while (!done && now_ms() < until) {
			int err = 0;
			socklen_t len = sizeof(err);
			struct sockaddr_storage peer;
			socklen_t plen = sizeof(peer);

			usleep(10000);
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
			done = getpeername(fd, (struct sockaddr *)&peer, &plen) == 0;
		}
		if (!done) {
			filled = 1;
			break;
		}
	}
	if (!filled)
		die("stuck: the backlog never filled");
	if (port_file) {
		FILE *f = fopen(port_file, "w");
		unsigned port = family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
						  : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);

		if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0)
			die("%s: %s", port_file, strerror(errno));
	}
	for (;;)
		pause();
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		die("usage: rl_peer server|client|fds|stuck ...");
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "server")) {
		pat_init();
		return server_main(argc - 2, argv + 2);
	}
	if (!strcmp(argv[1], "client")) {
		pat_init();
		return client_main(argc - 2, argv + 2);
	}
	if (!strcmp(argv[1], "fds"))
		return fds_main(argc - 2, argv + 2);
	if (!strcmp(argv[1], "stuck"))
		return stuck_main(argc - 2, argv + 2);
	die("unknown command %s", argv[1]);
	return 2;
}
