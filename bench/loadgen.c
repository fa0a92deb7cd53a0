/*
 * loadgen.c - the traffic of the relay and broadcast benchmarks: a backend
 * server and the clients that load a relay (or the backend directly), in
 * one self-contained program that uses no part of zcio.
 *
 *   loadgen server PORT PATTERN         backend on 127.0.0.1:PORT
 *   loadgen bulk  [OPTS] PORT           N connections, one big reply each
 *   loadgen rr    [OPTS] PORT           N connections, request/reply loops
 *   loadgen idle  [OPTS] PORT           N connections, one small exchange
 *                                       each, then idle until SIGTERM
 *   loadgen fanout [OPTS] PORT          N connections that read to EOF
 *                                       (clients of a broadcaster)
 *
 * Every stream is PATTERN (a file) repeated without end: the byte at
 * position k of a reply that starts at offset o is PATTERN[(o + k) mod
 * its size].  A request is REQ bytes (default 1024) that start with
 * "ZCLGREQ1", the reply length and the offset (two little-endian 64-bit
 * numbers); the server answers with sendfile() from PATTERN, so the
 * backend costs little and copies nothing.
 *
 * Clients discard what they receive with recv(MSG_TRUNC) (the kernel
 * frees it without copying: the cheapest reader there is) unless
 * --verify PATTERN is given: then every byte is compared with the
 * pattern at its position, and a single wrong byte fails the run.
 *
 * Client options:
 *   -n N             connections (default 1)
 *   --bytes B        bulk: reply size per connection (suffix K M G)
 *   --req B          request size (default 1024)
 *   --reply B        rr and idle: reply size (default 65536; idle 1024)
 *   --duration S     rr: stop issuing requests after S seconds (default 10)
 *   --verify FILE    compare every byte with the pattern FILE
 *   --ready FILE     idle, fanout: create FILE once all N are connected
 *                    (idle: and have had their exchange)
 *
 * Each client mode prints one line on stdout, "loadgen: KEY VALUE ...":
 *   bulk    conns N bytes B seconds S errors E bad K
 *   rr      conns N requests R bytes B seconds S rps X p50_us P p99_us Q
 *           errors E bad K
 *   idle    conns N ready R closed C errors E bad K
 *   fanout  conns N eof F bytes B seconds S errors E bad K
 * and exits 0 when every connection did all it should, 1 otherwise, 2 on
 * misuse.  seconds is from the first byte asked for (bulk, rr) or received
 * (fanout) to the last byte received.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAGIC "ZCLGREQ1"
#define HDR 24
#define MAX_REQ (1u << 20)
#define RBUF (1u << 20)
#define TRUNC_MAX (1 << 24)
#define CONNECT_BATCH 256

enum mode { M_BULK, M_RR, M_IDLE, M_FANOUT };

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end)
		return -1;
	*out = v;
	return 0;
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* ---- the pattern ---- */

static int pat_fd = -1;
static const unsigned char *pat;
static uint64_t pat_len;

static int pattern_open(const char *path, bool map)
{
	struct stat sb;

	pat_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pat_fd < 0 || fstat(pat_fd, &sb) < 0 || sb.st_size <= 0) {
		fprintf(stderr, "loadgen: %s: %s\n", path, pat_fd < 0 ? strerror(errno) : "empty");
		return -1;
	}
	pat_len = (uint64_t)sb.st_size;
	if (map) {
		void *m = mmap(NULL, pat_len, PROT_READ, MAP_SHARED, pat_fd, 0);

		if (m == MAP_FAILED) {
			fprintf(stderr, "loadgen: mmap %s: %s\n", path, strerror(errno));
			return -1;
		}
		pat = m;
	}
	return 0;
}

/* Do buf[0..n) equal the stream from position pos? */
static bool pattern_matches(uint64_t pos, const unsigned char *buf, size_t n)
{
	uint64_t at = pos % pat_len;

	while (n) {
		size_t k = pat_len - at < n ? (size_t)(pat_len - at) : n;

		if (memcmp(pat + at, buf, k))
			return false;
		buf += k;
		n -= k;
		at = 0;
	}
	return true;
}

/* ---- server ---- */

struct sconn {
	int fd;
	unsigned char req[HDR];
	size_t got;          /* request bytes read (only HDR are kept) */
	uint64_t left;       /* reply bytes still to send */
	off_t off;           /* position in the pattern file */
};

static size_t server_req = 1024;

static void server_close(int ep, struct sconn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

/* Send what the socket takes.  Returns 0 when done or waiting, -1 on error. */
static int server_send(int ep, struct sconn *c)
{
	while (c->left) {
		size_t n = c->left;
		ssize_t k;

		if ((uint64_t)c->off >= pat_len)
			c->off = 0;
		if (n > pat_len - (uint64_t)c->off)
			n = (size_t)(pat_len - (uint64_t)c->off);
		k = sendfile(c->fd, pat_fd, &c->off, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };

				return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
			}
			return -1;
		}
		if (k == 0)
			return -1;
		c->left -= (uint64_t)k;
	}
	{
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

		return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	}
}

/* Read requests; start a reply for each complete one. */
static int server_read(int ep, struct sconn *c)
{
	static unsigned char junk[MAX_REQ];

	while (!c->left) {
		ssize_t k = read(c->fd, junk, server_req - c->got);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -1;
		}
		if (k == 0)
			return -1;
		if (c->got < HDR)
			memcpy(c->req + c->got, junk,
			       (size_t)k < HDR - c->got ? (size_t)k : HDR - c->got);
		c->got += (size_t)k;
		if (c->got < server_req)
			continue;
		c->got = 0;
		if (memcmp(c->req, MAGIC, 8))
			return -1;
		c->left = get64(c->req + 8);
		c->off = (off_t)(get64(c->req + 16) % pat_len);
		if (server_send(ep, c) < 0)
			return -1;
	}
	return 0;
}

static int run_server(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct epoll_event evs[256], ev;
	int lfd, ep, one = 1, i = 0;
	uint64_t req = 1024;

	if (argc >= 2 && !strcmp(argv[0], "--req")) {
		if (parse_size(argv[1], &req) < 0 || req < HDR || req > MAX_REQ)
			return 2;
		argc -= 2;
		argv += 2;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: loadgen server [--req B] PORT PATTERN\n");
		return 2;
	}
	server_req = (size_t)req;
	if (pattern_open(argv[1], false) < 0)
		return 1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)atoi(argv[0]));
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0) {
		fprintf(stderr, "loadgen: server: port %s: %s\n", argv[0], strerror(errno));
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	while (!stop) {
		int n = epoll_wait(ep, evs, 256, -1);

		for (i = 0; i < n; i++) {
			struct sconn *c = evs[i].data.ptr;

			if (!c) {
				int fd;

				while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					c = calloc(1, sizeof(*c));
					if (!c) {
						close(fd);
						continue;
					}
					c->fd = fd;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			if ((c->left ? server_send(ep, c) : 0) < 0 ||
			    (!c->left && server_read(ep, c) < 0))
				server_close(ep, c);
		}
	}
	return 0;
}

/* ---- clients ---- */

struct cconn {
	int fd;
	unsigned idx;
	bool connected, done, failed;
	size_t req_sent;      /* bytes of the current request sent */
	bool waiting;         /* request sent, reading the reply */
	uint64_t want, got;   /* reply bytes expected / received */
	uint64_t off;         /* the reply's offset in the pattern */
	uint64_t total;       /* all reply bytes received */
	double t_req;         /* when the current request started */
	unsigned nreq;
};

struct client {
	enum mode mode;
	unsigned n;
	uint64_t bytes, req, reply;
	double duration;
	const char *verify, *ready;
	/* results */
	uint64_t requests, total, errors, bad, closed, eof, ready_n;
	uint32_t *lat;        /* microseconds per request */
	size_t nlat, caplat;
	double t_first, t_last;
};

static unsigned char reqbuf[MAX_REQ];
static unsigned char rbuf[RBUF];

static int connect_start(unsigned short port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(port);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static void lat_add(struct client *cl, double secs)
{
	if (cl->nlat == cl->caplat) {
		size_t cap = cl->caplat ? cl->caplat * 2 : 65536;
		uint32_t *p = realloc(cl->lat, cap * sizeof(*p));

		if (!p)
			return;
		cl->lat = p;
		cl->caplat = cap;
	}
	cl->lat[cl->nlat++] = (uint32_t)(secs * 1e6 + 0.5);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Each request asks for its reply at its own offset in the pattern. */
static uint64_t next_offset(const struct cconn *c)
{
	uint64_t x = (uint64_t)c->idx * 0x9E3779B97F4A7C15ull + (uint64_t)c->nreq * 0xBF58476D1CE4E5B9ull;

	x ^= x >> 31;
	return x;
}

static int send_request(struct client *cl, struct cconn *c)
{
	if (!c->req_sent) {
		memcpy(reqbuf, MAGIC, 8);
		c->want = cl->mode == M_BULK ? cl->bytes : cl->reply;
		c->off = next_offset(c);
		put64(reqbuf + 8, c->want);
		put64(reqbuf + 16, c->off);
		c->got = 0;
		c->t_req = now_s();
		if (cl->t_first == 0)
			cl->t_first = c->t_req;
	}
	while (c->req_sent < cl->req) {
		ssize_t k = send(c->fd, reqbuf + c->req_sent, cl->req - c->req_sent, MSG_NOSIGNAL);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -1;
		}
		c->req_sent += (size_t)k;
	}
	c->waiting = true;
	return 0;
}

/* Read what arrived for the current reply.  Returns 1 when it is whole,
 * 0 when more is to come, -1 on error or early end. */
static int read_reply(struct client *cl, struct cconn *c)
{
	while (c->got < c->want || cl->mode == M_FANOUT) {
		ssize_t k;
		uint64_t room = cl->mode == M_FANOUT ? TRUNC_MAX : c->want - c->got;

		if (cl->verify)
			k = recv(c->fd, rbuf, room < RBUF ? (size_t)room : RBUF, MSG_DONTWAIT);
		else
			k = recv(c->fd, NULL, room < TRUNC_MAX ? (size_t)room : TRUNC_MAX,
				 MSG_TRUNC | MSG_DONTWAIT);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -1;
		}
		if (k == 0) {
			if (cl->mode == M_FANOUT) {
				c->done = true;
				cl->eof++;
				return 1;
			}
			return -1;
		}
		if (cl->t_first == 0)
			cl->t_first = now_s();
		if (cl->verify && !pattern_matches(c->off + c->got, rbuf, (size_t)k)) {
			cl->bad++;
			return -1;
		}
		c->got += (uint64_t)k;
		c->total += (uint64_t)k;
		cl->total += (uint64_t)k;
	}
	return 1;
}

static int run_client(struct client *cl, unsigned short port)
{
	struct cconn *conns = calloc(cl->n, sizeof(*conns));
	struct epoll_event *evs = calloc(1024, sizeof(*evs));
	unsigned started = 0, inflight = 0, live = 0, finished = 0;
	double deadline = 0;
	bool ready_written = false;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (!conns || !evs || ep < 0)
		return -1;
	for (;;) {
		int n;

		/* Open connections, at most CONNECT_BATCH connecting at a time
		 * so a listen backlog is never flooded with SYNs. */
		while (started < cl->n && inflight < CONNECT_BATCH) {
			struct cconn *c = &conns[started];
			struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };

			c->idx = started++;
			c->fd = connect_start(port);
			if (c->fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
				c->failed = c->done = true;
				cl->errors++;
				finished++;
				continue;
			}
			inflight++;
			live++;
		}
		/* rr: the clock starts once every connection is open. */
		if (cl->mode == M_RR && !deadline && started == cl->n && !inflight) {
			double t = now_s();

			deadline = t + cl->duration;
			cl->t_first = t;
			for (unsigned i = 0; i < cl->n; i++) {
				struct cconn *c = &conns[i];
				struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

				if (c->done)
					continue;
				if (send_request(cl, c) < 0) {
					c->failed = c->done = true;
					cl->errors++;
					finished++;
					close(c->fd);
					continue;
				}
				if (!c->waiting)
					ev.events = EPOLLOUT;
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
			}
		}
		if ((cl->mode == M_IDLE || cl->mode == M_FANOUT) && !ready_written &&
		    started == cl->n && !inflight &&
		    (cl->mode == M_FANOUT || finished + cl->ready_n >= cl->n)) {
			ready_written = true;
			if (cl->ready) {
				int fd = open(cl->ready, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

				if (fd >= 0) {
					char line[64];
					int len = snprintf(line, sizeof(line), "ready %" PRIu64 "\n",
							   cl->mode == M_IDLE ? cl->ready_n : (uint64_t)live);

					if (write(fd, line, (size_t)len) < 0)
						cl->errors++;
					close(fd);
				}
			}
		}
		if (finished >= cl->n && started == cl->n)
			break;
		if (stop && (cl->mode == M_IDLE || cl->mode == M_FANOUT))
			break;
		n = epoll_wait(ep, evs, 1024, 100);
		if (n < 0 && errno != EINTR)
			return -1;
		for (int i = 0; i < n; i++) {
			struct cconn *c = evs[i].data.ptr;
			struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
			int r;

			if (c->done)
				continue;
			if (!c->connected) {
				int err = 0;
				socklen_t el = sizeof(err);

				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				inflight--;
				if (err) {
					c->failed = c->done = true;
					cl->errors++;
					finished++;
					close(c->fd);
					live--;
					continue;
				}
				c->connected = true;
				/* fanout only reads, from offset 0 of the pattern. */
				c->waiting = cl->mode == M_FANOUT;
				if (cl->mode == M_FANOUT || cl->mode == M_RR) {
					/* fanout only reads; rr waits for the start. */
					epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
					continue;
				}
				if (send_request(cl, c) < 0)
					goto failed;
				if (!c->waiting)
					ev.events = EPOLLOUT;
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				continue;
			}
			if (!c->waiting) {
				if (send_request(cl, c) < 0)
					goto failed;
				if (c->waiting)
					epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				continue;
			}
			if (cl->mode == M_IDLE && c->got == c->want) {
				/* An idle connection that becomes readable: the
				 * other side closed it (or, wrongly, sent more). */
				char b;

				if (recv(c->fd, &b, 1, MSG_DONTWAIT) == 0 ||
				    (errno != EAGAIN && errno != EINTR)) {
					cl->closed++;
					c->done = true;
					epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				}
				continue;
			}
			r = read_reply(cl, c);
			if (r < 0)
				goto failed;
			if (r == 0)
				continue;
			if (cl->mode == M_FANOUT) {
				cl->t_last = now_s();
				finished++;
				close(c->fd);
				continue;
			}
			/* A whole reply. */
			cl->requests++;
			c->nreq++;
			c->req_sent = 0;
			c->waiting = false;
			cl->t_last = now_s();
			if (cl->mode == M_RR) {
				lat_add(cl, cl->t_last - c->t_req);
				if (cl->t_last < deadline) {
					if (send_request(cl, c) < 0)
						goto failed;
					if (!c->waiting) {
						ev.events = EPOLLOUT;
						epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
					}
					continue;
				}
			}
			if (cl->mode == M_IDLE) {
				/* Stay open, idle; readable again only if closed. */
				cl->ready_n++;
				continue;
			}
			c->done = true;
			finished++;
			close(c->fd);
			continue;
failed:
			if (!c->failed)
				cl->errors++;
			c->failed = c->done = true;
			finished++;
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
		}
	}
	free(evs);
	free(conns);
	return 0;
}

static int client_main(enum mode mode, int argc, char **argv)
{
	struct client cl = { .mode = mode, .n = 1, .req = 1024, .duration = 10 };
	const char *port = NULL;
	double secs;

	cl.reply = mode == M_IDLE ? 1024 : 65536;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t x;

		if (!strcmp(a, "-n") && v) {
			cl.n = (unsigned)atoi(v);
			i++;
		} else if (!strcmp(a, "--bytes") && v && !parse_size(v, &cl.bytes)) {
			i++;
		} else if (!strcmp(a, "--req") && v && !parse_size(v, &x) && x >= HDR && x <= MAX_REQ) {
			cl.req = x;
			i++;
		} else if (!strcmp(a, "--reply") && v && !parse_size(v, &cl.reply)) {
			i++;
		} else if (!strcmp(a, "--duration") && v) {
			cl.duration = atof(v);
			i++;
		} else if (!strcmp(a, "--verify") && v) {
			cl.verify = v;
			i++;
		} else if (!strcmp(a, "--ready") && v) {
			cl.ready = v;
			i++;
		} else if (a[0] != '-' && !port) {
			port = a;
		} else {
			fprintf(stderr, "loadgen: bad argument %s\n", a);
			return 2;
		}
	}
	if (!port || !cl.n || (mode == M_BULK && !cl.bytes) || !(cl.duration > 0)) {
		fprintf(stderr, "loadgen: missing PORT, -n, --bytes or --duration\n");
		return 2;
	}
	if (cl.verify && pattern_open(cl.verify, true) < 0)
		return 1;
	if (run_client(&cl, (unsigned short)atoi(port)) < 0) {
		fprintf(stderr, "loadgen: %s\n", strerror(errno));
		return 1;
	}
	secs = cl.t_last > cl.t_first ? cl.t_last - cl.t_first : 0;
	switch (mode) {
	case M_BULK:
		printf("loadgen: conns %u bytes %" PRIu64 " seconds %.6f errors %" PRIu64
		       " bad %" PRIu64 "\n", cl.n, cl.total, secs, cl.errors, cl.bad);
		return cl.errors || cl.bad || cl.requests != cl.n;
	case M_RR: {
		uint32_t p50 = 0, p99 = 0;

		if (cl.nlat) {
			qsort(cl.lat, cl.nlat, sizeof(*cl.lat), cmp_u32);
			p50 = cl.lat[(cl.nlat - 1) / 2];
			p99 = cl.lat[(size_t)((double)(cl.nlat - 1) * 0.99)];
		}
		printf("loadgen: conns %u requests %" PRIu64 " bytes %" PRIu64 " seconds %.6f rps %.1f"
		       " p50_us %u p99_us %u errors %" PRIu64 " bad %" PRIu64 "\n", cl.n,
		       cl.requests, cl.total, secs, secs > 0 ? (double)cl.requests / secs : 0.0,
		       p50, p99, cl.errors, cl.bad);
		return cl.errors || cl.bad || !cl.requests;
	}
	case M_IDLE:
		printf("loadgen: conns %u ready %" PRIu64 " closed %" PRIu64 " errors %" PRIu64
		       " bad %" PRIu64 "\n", cl.n, cl.ready_n, cl.closed, cl.errors, cl.bad);
		return cl.errors || cl.bad || cl.ready_n != cl.n || cl.closed;
	case M_FANOUT:
		printf("loadgen: conns %u eof %" PRIu64 " bytes %" PRIu64 " seconds %.6f errors %"
		       PRIu64 " bad %" PRIu64 "\n", cl.n, cl.eof, cl.total, secs, cl.errors, cl.bad);
		return cl.errors || cl.bad || cl.eof != cl.n;
	}
	return 1;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_term };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if (argc >= 2 && !strcmp(argv[1], "server"))
		return run_server(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "bulk"))
		return client_main(M_BULK, argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "rr"))
		return client_main(M_RR, argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "idle"))
		return client_main(M_IDLE, argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "fanout"))
		return client_main(M_FANOUT, argc - 2, argv + 2);
	fprintf(stderr, "usage: loadgen server|bulk|rr|idle|fanout ... (see bench/loadgen.c)\n");
	return 2;
}
