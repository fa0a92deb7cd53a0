/*
 * zc_peer.c - both ends of a TCP stream for the zero-copy integration tests,
 * one process each, so the shell can put them in different network
 * namespaces (ip netns exec) or under strace.
 *
 *   zc_peer recv [--zcrecv] [--delay US] [--chunk N] ADDR PORT
 *       Listen on ADDR:PORT, print "listening" once it does, accept one
 *       connection and read it to the end (with zcio_zcrecv, or read()),
 *       checking every byte against the stream pattern; --delay sleeps
 *       after each read of at most --chunk bytes (a slow receiver).
 *   zc_peer send [--method zcsend|ring|write] [--always] [--msg N]
 *               [--total N] ADDR PORT
 *       Connect and send --total bytes of the stream pattern (default 32M)
 *       in messages of --msg bytes (default 256k).  zcsend: from 4 buffers,
 *       each written again only after zcio_zcsend_reap() has reported its
 *       sends; ring: through a zcio ring, written only into spans it gives;
 *       write: plain send() of one buffer.  --always: ZCIO_ZCSEND_ALWAYS
 *       (ring: copy_threshold 1), zero-copy for every send.
 *
 *   zc_peer udp [--count N] [--msg N] ADDR PORT
 *       Send N datagrams (default 2000) of --msg bytes (default 4k) with
 *       ZCIO_ZCSEND_ALWAYS to ADDR:PORT, waiting for every completion, and
 *       print the zcsend's counts (copied: how many the kernel copied).
 *
 * All print "key: value" lines on stdout (bytes, bad_at, zc_sends,
 * completions, copied, enobufs, off, mapped, copied_bytes...) and
 * zcio_stats lines prefixed "stats: ".  Exit status: 0 when every byte
 * arrived right, 1 otherwise, 2 on misuse.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "zcio.h"

#define NBUF 4

/* The byte at position p of the stream: depends on p's 8-byte word, so a
 * buffer written again for a later position differs everywhere. */
static unsigned char stream_byte(uint64_t p)
{
	uint64_t x = (p / 8 + 1) * 0x9e3779b97f4a7c15ull;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 29;
	return (unsigned char)(x >> ((p % 8) * 8));
}

static void fill(unsigned char *b, size_t n, uint64_t pos)
{
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = stream_byte(pos + i);
}

static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 10);

	switch (*end) {
	case 'k': case 'K': return v << 10;
	case 'm': case 'M': return v << 20;
	case 'g': case 'G': return v << 30;
	default: return v;
	}
}

static void usage(void)
{
	fputs("usage: zc_peer recv [--zcrecv] [--delay US] [--chunk N] ADDR PORT\n"
	      "       zc_peer send [--method zcsend|ring|write] [--always] [--msg N] [--total N] ADDR PORT\n"
	      "       zc_peer udp [--count N] [--msg N] ADDR PORT\n",
	      stderr);
	exit(2);
}

static struct sockaddr_in address(const char *addr, const char *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)) };

	if (inet_pton(AF_INET, addr, &a.sin_addr) != 1)
		usage();
	return a;
}

static void print_stats(const struct zcio_stats *st)
{
	char text[2048], *line, *save = NULL;

	zcio_stats_format(st, text, sizeof(text));
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		printf("stats: %s\n", line);
}

static void sleep_us(unsigned us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* ---- receiver ---------------------------------------------------------- */

static int do_recv(int argc, char **argv)
{
	bool zc = false;
	unsigned delay = 0;
	size_t chunk = 256 * 1024;
	struct sockaddr_in a;
	struct zcio_stats st = { 0 };
	uint64_t got = 0, bad_at = UINT64_MAX;
	unsigned char *buf;
	int l, s, one = 1, i;

	for (i = 2; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--zcrecv"))
			zc = true;
		else if (!strcmp(argv[i], "--delay") && i + 1 < argc)
			delay = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--chunk") && i + 1 < argc)
			chunk = parse_size(argv[++i]);
		else
			usage();
	}
	if (argc - i != 2 || !chunk)
		usage();
	a = address(argv[i], argv[i + 1]);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0) {
		perror("zc_peer: listen");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0) {
		perror("zc_peer: accept");
		return 1;
	}
	close(l);
	buf = malloc(chunk);
	if (zc) {
		struct zcio_zcrecv *zr;
		const void *p;
		int64_t n;
		int r = zcio_zcrecv_new(s, NULL, &zr);

		if (r < 0) {
			fprintf(stderr, "zc_peer: zcio_zcrecv_new: %s\n", strerror(-r));
			return 1;
		}
		while ((n = zcio_zcrecv_next(zr, &p, chunk, &st)) > 0) {
			const unsigned char *b = p;

			for (int64_t k = 0; k < n && bad_at == UINT64_MAX; k++) {
				if (b[k] != stream_byte(got + (uint64_t)k))
					bad_at = got + (uint64_t)k;
			}
			got += (uint64_t)n;
			if (delay)
				sleep_us(delay);
		}
		if (n < 0)
			fprintf(stderr, "zc_peer: zcio_zcrecv_next: %s\n", strerror((int)-n));
		zcio_zcrecv_free(zr);
	} else {
		ssize_t n;

		while ((n = read(s, buf, chunk)) > 0) {
			for (ssize_t k = 0; k < n && bad_at == UINT64_MAX; k++) {
				if (buf[k] != stream_byte(got + (uint64_t)k))
					bad_at = got + (uint64_t)k;
			}
			got += (uint64_t)n;
			if (delay)
				sleep_us(delay);
		}
	}
	printf("bytes: %" PRIu64 "\n", got);
	if (bad_at == UINT64_MAX)
		printf("bad_at: none\n");
	else
		printf("bad_at: %" PRIu64 "\n", bad_at);
	printf("mapped: %" PRIu64 "\n", st.path_bytes[ZCIO_PATH_ZEROCOPY_RECV]);
	printf("copied_bytes: %" PRIu64 "\n", st.path_bytes[ZCIO_PATH_COPY]);
	print_stats(&st);
	free(buf);
	close(s);
	return bad_at == UINT64_MAX ? 0 : 1;
}

/* ---- sender ------------------------------------------------------------- */

struct send_state {
	int s;
	struct zcio_zcsend *zs;
	struct zcio_stats st;
	uint64_t sent_pieces, reaped;
	uint64_t last[NBUF];
};

static int reap(struct send_state *x)
{
	uint64_t done[64];
	int n;

	do {
		n = zcio_zcsend_reap(x->zs, done, 64, &x->st);
		if (n < 0)
			return n;
		x->reaped += (uint64_t)n;
	} while (n == 64);
	return 0;
}

static int send_zcsend(struct send_state *x, uint64_t total, size_t msg, bool always)
{
	unsigned char *buf[NBUF];
	uint64_t pos = 0;
	unsigned b = 0;
	int r, i;

	r = zcio_zcsend_new(x->s, always ? ZCIO_ZCSEND_ALWAYS : 0, NULL, &x->zs);
	if (r < 0)
		return r;
	for (i = 0; i < NBUF; i++)
		buf[i] = aligned_alloc(4096, (msg + 4095) / 4096 * 4096);
	while (pos < total) {
		size_t n = total - pos < msg ? (size_t)(total - pos) : msg, off = 0;

		/* Buffer b is written again only once every send made from it
		 * has completed: completions come in send order. */
		while (x->reaped < x->last[b]) {
			struct pollfd p = { .fd = x->s, .events = 0 };

			if ((r = reap(x)) < 0)
				return r;
			if (x->reaped < x->last[b])
				poll(&p, 1, 1000);
		}
		fill(buf[b], n, pos);
		while (off < n) {
			int64_t k = zcio_zcsend_send(x->zs, buf[b] + off, n - off, x->sent_pieces, &x->st);

			if (k == -EAGAIN) {
				struct pollfd p = { .fd = x->s, .events = POLLOUT };

				poll(&p, 1, 1000);
				if ((r = reap(x)) < 0)
					return r;
				continue;
			}
			if (k < 0)
				return (int)k;
			x->sent_pieces++;
			off += (size_t)k;
		}
		x->last[b] = x->sent_pieces;
		pos += n;
		b = (b + 1) % NBUF;
		if ((r = reap(x)) < 0)
			return r;
	}
	while (x->reaped < x->sent_pieces) {
		struct pollfd p = { .fd = x->s, .events = 0 };

		if ((r = reap(x)) < 0)
			return r;
		if (x->reaped < x->sent_pieces)
			poll(&p, 1, 1000);
	}
	for (i = 0; i < NBUF; i++)
		free(buf[i]);
	return 0;
}

static int send_ring(struct send_state *x, uint64_t total, size_t msg, bool always)
{
	struct zcio_opts o = { .copy_threshold = always ? 1 : 0 };
	struct zcio_ring *ring;
	uint64_t pos = 0;
	int r = zcio_ring_new(x->s, 2 * msg > (2u << 20) ? 2 * msg : 0, &o, &ring);

	while (r == 0 && pos < total) {
		size_t n = total - pos < msg ? (size_t)(total - pos) : msg;
		void *span;
		int64_t k = zcio_ring_reserve(ring, n, &span);

		if (k == -EAGAIN) {
			int64_t p = zcio_ring_pump(ring, 0, &x->st);

			if (p == -EAGAIN) {
				struct pollfd pf = { .fd = x->s,
						     .events = x->st.wait == ZCIO_WAIT_COMPLETION ? 0 : POLLOUT };

				poll(&pf, 1, 1000);
			} else if (p < 0) {
				r = (int)p;
			}
			continue;
		}
		if (k < 0) {
			r = (int)k;
			break;
		}
		fill(span, n, pos);
		zcio_ring_commit(ring, n);
		pos += n;
		k = zcio_ring_pump(ring, 0, &x->st);
		if (k < 0 && k != -EAGAIN)
			r = (int)k;
	}
	if (r == 0) {
		struct zcio_stats fs = { 0 };

		r = zcio_ring_flush(ring, 30000, &fs);
		for (int i = 0; i < ZCIO_PATH_SLOTS; i++)
			x->st.path_bytes[i] += fs.path_bytes[i];
		x->st.bytes += fs.bytes;
	}
	zcio_ring_free(ring);
	return r;
}

static int send_write(struct send_state *x, uint64_t total, size_t msg)
{
	unsigned char *buf = malloc(msg);
	uint64_t pos = 0;

	while (pos < total) {
		size_t n = total - pos < msg ? (size_t)(total - pos) : msg, off = 0;

		fill(buf, n, pos);
		while (off < n) {
			ssize_t w = send(x->s, buf + off, n - off, MSG_NOSIGNAL);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				free(buf);
				return -errno;
			}
			off += (size_t)w;
		}
		pos += n;
	}
	free(buf);
	return 0;
}

static int do_send(int argc, char **argv)
{
	const char *method = "zcsend";
	bool always = false;
	size_t msg = 256 * 1024;
	uint64_t total = 32u << 20;
	struct send_state x = { 0 };
	struct sockaddr_in a;
	int i, r, one = 1;

	for (i = 2; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--method") && i + 1 < argc)
			method = argv[++i];
		else if (!strcmp(argv[i], "--always"))
			always = true;
		else if (!strcmp(argv[i], "--msg") && i + 1 < argc)
			msg = parse_size(argv[++i]);
		else if (!strcmp(argv[i], "--total") && i + 1 < argc)
			total = parse_size(argv[++i]);
		else
			usage();
	}
	if (argc - i != 2 || !msg)
		usage();
	a = address(argv[i], argv[i + 1]);
	x.s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (x.s < 0 || connect(x.s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("zc_peer: connect");
		return 1;
	}
	setsockopt(x.s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!strcmp(method, "zcsend"))
		r = send_zcsend(&x, total, msg, always);
	else if (!strcmp(method, "ring"))
		r = send_ring(&x, total, msg, always);
	else if (!strcmp(method, "write"))
		r = send_write(&x, total, msg);
	else
		usage();
	if (x.zs) {
		struct zcio_zcsend_info info;

		zcio_zcsend_info(x.zs, &info);
		printf("zc_sends: %" PRIu64 "\ncopy_sends: %" PRIu64 "\ncompletions: %" PRIu64
		       "\ncopied: %" PRIu64 "\nnotifications: %" PRIu64 "\nenobufs: %" PRIu64
		       "\nin_flight: %" PRIu64 "\noff: %d\n",
		       info.zc_sends, info.copy_sends, info.completed, info.completed_copied,
		       info.notifications, info.enobufs, info.in_flight, info.off);
		zcio_zcsend_free(x.zs);
	}
	printf("result: %d\n", r);
	print_stats(&x.st);
	close(x.s);
	if (r < 0) {
		fprintf(stderr, "zc_peer: send: %s\n", strerror(-r));
		return 1;
	}
	return 0;
}

static int do_udp(int argc, char **argv)
{
	struct send_state x = { 0 };
	struct sockaddr_in a;
	uint64_t count = 2000, n;
	size_t msg = 4096;
	unsigned char *buf;
	int i, r = 0;

	for (i = 2; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--count") && i + 1 < argc)
			count = parse_size(argv[++i]);
		else if (!strcmp(argv[i], "--msg") && i + 1 < argc)
			msg = parse_size(argv[++i]);
		else
			usage();
	}
	if (argc - i != 2 || !msg)
		usage();
	a = address(argv[i], argv[i + 1]);
	x.s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (x.s < 0 || connect(x.s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("zc_peer: connect");
		return 1;
	}
	buf = malloc(msg);
	memset(buf, 'u', msg);
	r = zcio_zcsend_new(x.s, ZCIO_ZCSEND_ALWAYS, NULL, &x.zs);
	for (n = 0; r == 0 && n < count;) {
		int64_t k = zcio_zcsend_send(x.zs, buf, msg, n, &x.st);

		if (k == -EAGAIN || k == -ECONNREFUSED) {
			struct pollfd p = { .fd = x.s, .events = POLLOUT };

			if (k == -EAGAIN)
				poll(&p, 1, 100);
			continue;
		}
		if (k < 0)
			r = (int)k;
		else
			x.sent_pieces++, n++;
		if (r == 0)
			r = reap(&x);
	}
	while (r == 0 && x.reaped < x.sent_pieces) {
		struct pollfd p = { .fd = x.s, .events = 0 };

		r = reap(&x);
		if (r == 0 && x.reaped < x.sent_pieces && poll(&p, 1, 5000) == 0)
			r = -ETIMEDOUT;
	}
	if (x.zs) {
		struct zcio_zcsend_info info;

		zcio_zcsend_info(x.zs, &info);
		printf("zc_sends: %" PRIu64 "\ncompletions: %" PRIu64 "\ncopied: %" PRIu64 "\n",
		       info.zc_sends, info.completed, info.completed_copied);
		zcio_zcsend_free(x.zs);
	}
	printf("result: %d\n", r);
	free(buf);
	close(x.s);
	return r < 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "recv"))
		return do_recv(argc, argv);
	if (!strcmp(argv[1], "send"))
		return do_send(argc, argv);
	if (!strcmp(argv[1], "udp"))
		return do_udp(argc, argv);
	usage();
	return 2;
}
