/*
 * test_link.c - zcio_link: nonblocking in -> pipe -> out.
 *
 * Each test runs a producer thread writing a deterministic byte stream into
 * one end, pumps a link in the main thread with poll() or edge-triggered
 * epoll on the fd the link names, and a consumer thread checks every byte
 * it receives against the same stream.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "pipe.h"
#include "zcio.h"

/* The byte at position i of stream `seed`. */
static uint8_t stream_byte(uint64_t seed, uint64_t i)
{
	uint64_t x = (i / 8 + 1) * 0x9e3779b97f4a7c15ull ^ seed;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 29;
	return (uint8_t)(x >> ((i % 8) * 8));
}

static void fill_stream(uint8_t *buf, size_t n, uint64_t seed, uint64_t pos)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = stream_byte(seed, pos + i);
}

struct producer {
	int fd;
	uint64_t len;
	uint64_t seed;
	size_t chunk;        /* bytes per write */
	useconds_t pause;    /* between writes */
	bool shut;           /* shutdown(SHUT_WR) at the end, else close */
	uint64_t written;
	volatile int finished; /* set once the fd was shut or closed */
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	uint8_t *buf = malloc(p->chunk);

	while (p->written < p->len) {
		size_t n = p->len - p->written < p->chunk ? p->len - p->written : p->chunk;
		ssize_t w;

		fill_stream(buf, n, p->seed, p->written);
		w = write(p->fd, buf, n);
		if (w <= 0)
			break;
		p->written += (uint64_t)w;
		if (p->pause)
			usleep(p->pause);
	}
	if (p->shut)
		shutdown(p->fd, SHUT_WR);
	else
		close(p->fd);
	__atomic_store_n(&p->finished, 1, __ATOMIC_RELEASE);
	free(buf);
	return NULL;
}

struct consumer {
	int fd;
	uint64_t seed;
	uint64_t limit;      /* stop (and close) after this many bytes; 0: EOF */
	useconds_t pause;    /* between reads */
	uint64_t got;
	uint64_t bad_at;     /* first wrong byte + 1, 0 if none */
};

static void *consume(void *arg)
{
	struct consumer *c = arg;
	uint8_t buf[65536];

	for (;;) {
		size_t want = sizeof(buf);
		ssize_t n;

		if (c->limit && c->limit - c->got < want)
			want = c->limit - c->got;
		if (c->limit && want == 0)
			break;
		n = read(c->fd, buf, want);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n && !c->bad_at; i++) {
			if (buf[i] != stream_byte(c->seed, c->got + (uint64_t)i))
				c->bad_at = c->got + (uint64_t)i + 1;
		}
		c->got += (uint64_t)n;
		if (c->pause)
			usleep(c->pause);
	}
	close(c->fd);
	return NULL;
}

static void nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Pump until EOF or error, waiting with poll on the fd the link names.
 * Returns the final pump result (0 on EOF). */
static int64_t pump_with_poll(struct zcio_link *l, int in, int out, struct zcio_stats *st,
			      int timeout_ms)
{
	for (;;) {
		int64_t r = zcio_link_pump(l, 256 * 1024, st);
		struct pollfd p;

		if (r > 0)
			continue;
		if (r != -EAGAIN)
			return r;
		p.fd = st->wait == ZCIO_WAIT_IN ? in : out;
		p.events = st->wait == ZCIO_WAIT_IN ? POLLIN : POLLOUT;
		assert_true(st->wait == ZCIO_WAIT_IN || st->wait == ZCIO_WAIT_OUT);
		if (poll(&p, 1, timeout_ms) == 0)
			return -ETIMEDOUT;
	}
}

/* Relay len bytes socket -> link -> socket, checking every byte. */
static void relay_stream(uint64_t len, size_t chunk, const struct zcio_opts *o,
			 struct zcio_stats *st)
{
	int a[2], b[2];
	struct zcio_link *l;
	pthread_t tp, tc;
	struct producer p = { .len = len, .seed = len ^ 0x5a, .chunk = chunk, .shut = true };
	struct consumer c = { .seed = len ^ 0x5a };

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	p.fd = a[1];
	c.fd = b[1];
	nonblock(a[0]);
	nonblock(b[0]);
	assert_int_equal(zcio_link_new(a[0], b[0], ZCIO_TO_EOF, o, &l), 0);
	pthread_create(&tp, NULL, produce, &p);
	pthread_create(&tc, NULL, consume, &c);
	assert_int_equal(pump_with_poll(l, a[0], b[0], st, 10000), 0);
	assert_int_equal(zcio_link_pending(l), 0);
	assert_true(zcio_link_source_done(l));
	shutdown(b[0], SHUT_WR);
	pthread_join(tp, NULL);
	pthread_join(tc, NULL);
	zcio_link_free(l);
	close(a[0]);
	close(b[0]);
	assert_int_equal(c.bad_at, 0);
	assert_int_equal(c.got, len);
	assert_int_equal(st->bytes, len);
}

static void test_socket_to_socket_splices(void **state)
{
	struct zcio_stats st = { 0 };

	(void)state;
	relay_stream(32u << 20, 256 * 1024, NULL, &st);
	/* Large chunks: nearly everything goes through the pipe. */
	assert_true(st.path_bytes[ZCIO_PATH_SPLICE_PIPE] > st.bytes / 2);
}

static void test_forced_copy_is_exact(void **state)
{
	struct zcio_opts o = { .flags = ZCIO_F_COPY };
	struct zcio_stats st = { 0 };

	(void)state;
	relay_stream(8u << 20, 100000, &o, &st);
	assert_int_equal(st.path_bytes[ZCIO_PATH_COPY], 8u << 20);
	assert_int_equal(st.path_bytes[ZCIO_PATH_SPLICE_PIPE], 0);
}

static void test_small_chunks_switch_to_copy(void **state)
{
	struct zcio_stats st = { 0 };
	int a[2], b[2];
	struct zcio_link *l;
	uint8_t buf[512];

	(void)state;
	/* One small write, one pump: the chunk is below the threshold, so
	 * the next chunk goes through the buffer. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	nonblock(a[0]);
	nonblock(b[0]);
	assert_int_equal(zcio_link_new(a[0], b[0], ZCIO_TO_EOF, NULL, &l), 0);
	for (int round = 0; round < 3; round++) {
		fill_stream(buf, sizeof(buf), 7, (uint64_t)round * sizeof(buf));
		assert_int_equal(write(a[1], buf, sizeof(buf)), sizeof(buf));
		assert_int_equal(zcio_link_pump(l, 0, &st), -EAGAIN);
		assert_int_equal(st.wait, ZCIO_WAIT_IN);
	}
	assert_int_equal(st.bytes, 3 * sizeof(buf));
	assert_int_equal(st.path_bytes[ZCIO_PATH_SPLICE_PIPE], sizeof(buf));
	assert_int_equal(st.path_bytes[ZCIO_PATH_COPY], 2 * sizeof(buf));
	for (int i = 0; i < 3; i++) {
		uint8_t got[sizeof(buf)], want[sizeof(buf)];

		assert_int_equal(read(b[1], got, sizeof(got)), sizeof(got));
		fill_stream(want, sizeof(want), 7, (uint64_t)i * sizeof(buf));
		assert_memory_equal(got, want, sizeof(got));
	}
	zcio_link_free(l);
	close(a[0]); close(a[1]); close(b[0]); close(b[1]);
}

/* Edge-triggered epoll: wait only after the link reported EAGAIN for that
 * fd; a wrong EAGAIN (pipe full read as "socket empty") would stall here. */
static void test_edge_triggered_epoll_never_stalls(void **state)
{
	int a[2], b[2], ep;
	struct zcio_link *l;
	pthread_t tp, tc;
	uint64_t len = 64u << 20;
	struct producer p = { .len = len, .seed = 99, .chunk = 1460 * 3, .shut = true };
	struct consumer c = { .seed = 99, .pause = 50 };
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET };
	struct zcio_stats st = { 0 };
	int64_t r;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	p.fd = a[1];
	c.fd = b[1];
	nonblock(a[0]);
	nonblock(b[0]);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.data.fd = a[0];
	epoll_ctl(ep, EPOLL_CTL_ADD, a[0], &ev);
	ev.data.fd = b[0];
	epoll_ctl(ep, EPOLL_CTL_ADD, b[0], &ev);
	assert_int_equal(zcio_link_new(a[0], b[0], ZCIO_TO_EOF, NULL, &l), 0);
	pthread_create(&tp, NULL, produce, &p);
	pthread_create(&tc, NULL, consume, &c);
	for (;;) {
		struct epoll_event got[2];

		r = zcio_link_pump(l, 0, &st);
		if (r != -EAGAIN)
			break;
		/* Any event may wake us; a 5 s silence means a stall. */
		if (epoll_wait(ep, got, 2, 5000) == 0) {
			r = -ETIMEDOUT;
			break;
		}
	}
	assert_int_equal(r, 0);
	shutdown(b[0], SHUT_WR);
	pthread_join(tp, NULL);
	pthread_join(tc, NULL);
	zcio_link_free(l);
	close(ep); close(a[0]); close(b[0]);
	assert_int_equal(c.bad_at, 0);
	assert_int_equal(c.got, len);
}

/* EOF is reported only once the pipe is empty (HAProxy #2505): the source
 * writes and closes at once while the destination is full. */
static void test_eof_waits_for_the_pipe_to_empty(void **state)
{
	int a[2], b[2];
	struct zcio_link *l;
	struct zcio_stats st = { 0 };
	pthread_t tp;
	struct producer p = { .len = 1u << 20, .seed = 3, .chunk = 1u << 20, .shut = false };
	static uint8_t got[1u << 20];
	uint64_t total = 0;
	bool ended_while_holding = false;
	int64_t r = -EAGAIN;
	int small = 4096, waited_ms = 0;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	/* A tiny destination buffer: most bytes must wait in the link. */
	setsockopt(b[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	p.fd = a[1];
	nonblock(a[0]);
	nonblock(b[0]);
	assert_int_equal(zcio_link_new(a[0], b[0], ZCIO_TO_EOF, NULL, &l), 0);
	pthread_create(&tp, NULL, produce, &p);
	for (int rounds = 0; rounds < 1000000; rounds++) {
		r = zcio_link_pump(l, 0, &st);
		if (r == 0)
			break;
		assert_int_equal(r, -EAGAIN);
		if (st.wait == ZCIO_WAIT_IN) {
			struct pollfd pf = { .fd = a[0], .events = POLLIN };

			assert_int_equal(poll(&pf, 1, 5000), 1);
			continue;
		}
		/* The source has written everything and closed, bytes are
		 * still held, and pump said "wait", not "EOF". */
		if (__atomic_load_n(&p.finished, __ATOMIC_ACQUIRE) && zcio_link_pending(l) > 0)
			ended_while_holding = true;
		/* Past half the stream, the reader waits (up to 5 s) for the
		 * producer to close, so the close surely comes while the
		 * link still holds bytes: without that the reader could
		 * empty the link before the producer thread ran again. */
		if (total >= p.len / 2 && waited_ms < 5000 &&
		    !__atomic_load_n(&p.finished, __ATOMIC_ACQUIRE)) {
			usleep(1000);
			waited_ms++;
			continue;
		}
		/* The reader takes a little only when the link is stuck. */
		{
			ssize_t n = read(b[1], got + total, sizeof(got) - total < 8192 ? sizeof(got) - total : 8192);

			assert_true(n > 0);
			total += (uint64_t)n;
		}
	}
	assert_int_equal(r, 0);
	assert_true(ended_while_holding);
	assert_int_equal(zcio_link_pending(l), 0);
	shutdown(b[0], SHUT_WR);
	for (;;) {
		ssize_t n = read(b[1], got + total, sizeof(got) - total);

		if (n <= 0)
			break;
		total += (uint64_t)n;
	}
	pthread_join(tp, NULL);
	assert_int_equal(total, p.len);
	for (uint64_t i = 0; i < total; i++) {
		if (got[i] != stream_byte(3, i))
			fail_msg("byte %llu differs", (unsigned long long)i);
	}
	zcio_link_free(l);
	close(a[0]); close(b[0]); close(b[1]);
}

/* A pushed header, then a file behind it, to a socket: spliced through the
 * pipe (default) or by sendfile (ZCIO_F_VIA_SENDFILE). */
static void push_header_then_file(uint32_t flags, int body_path)
{
	char path[] = "/tmp/zcio-link-XXXXXX";
	const char hdr[] = "HTTP/1.1 200 OK\r\nContent-Length: 3000000\r\n\r\n";
	uint8_t *data = malloc(3000000), *got = malloc(3000000 + sizeof(hdr));
	int fd = mkstemp(path);
	int s[2];
	struct zcio_link *l;
	struct zcio_opts o = { .flags = ZCIO_F_OFFSET | flags, .in_offset = 1000 };
	struct zcio_stats st = { 0 };
	size_t total = 0;
	int64_t r;

	fill_stream(data, 3000000, 11, 0);
	assert_int_equal(write(fd, data, 3000000), 3000000);
	unlink(path);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
	nonblock(s[0]);
	/* Body: bytes 1000.. of the file, 2,000,000 of them. */
	assert_int_equal(zcio_link_new(fd, s[0], 2000000, &o, &l), 0);
	assert_int_equal(zcio_link_push(l, hdr, sizeof(hdr) - 1), 0);
	assert_int_equal(zcio_link_pending(l), sizeof(hdr) - 1);
	for (;;) {
		r = zcio_link_pump(l, 0, &st);
		if (r == 0)
			break;
		assert_int_equal(r, -EAGAIN);
		assert_int_equal(st.wait, ZCIO_WAIT_OUT);
		for (;;) {
			ssize_t n = recv(s[1], got + total, 3000000 + sizeof(hdr) - total, MSG_DONTWAIT);

			if (n <= 0)
				break;
			total += (size_t)n;
		}
	}
	shutdown(s[0], SHUT_WR);
	for (;;) {
		ssize_t n = read(s[1], got + total, 3000000 + sizeof(hdr) - total);

		if (n <= 0)
			break;
		total += (size_t)n;
	}
	assert_int_equal(total, sizeof(hdr) - 1 + 2000000);
	assert_memory_equal(got, hdr, sizeof(hdr) - 1);
	assert_memory_equal(got + sizeof(hdr) - 1, data + 1000, 2000000);
	/* The header was copied, the body spliced or sent by sendfile. */
	assert_int_equal(st.path_bytes[ZCIO_PATH_COPY], sizeof(hdr) - 1);
	assert_int_equal(st.path_bytes[body_path], 2000000);
	/* The file's own offset was not used. */
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 3000000);
	zcio_link_free(l);
	close(fd); close(s[0]); close(s[1]);
	free(data);
	free(got);
}

static void test_push_header_then_file_spliced(void **state)
{
	(void)state;
	push_header_then_file(0, ZCIO_PATH_SPLICE_PIPE);
}

static void test_push_header_then_file_sendfile(void **state)
{
	(void)state;
	push_header_then_file(ZCIO_F_VIA_SENDFILE, ZCIO_PATH_SENDFILE);
}

/* Idle links hold no pipe: the pipe goes back to the thread's pool as soon
 * as the link is empty. */
static void test_idle_link_holds_no_pipe(void **state)
{
	int a[2], b[2];
	struct zcio_link *l[50];
	struct zcio_pool_stats before, after;
	struct zcio_stats st = { 0 };
	uint8_t buf[65536];
	int i;

	(void)state;
	zcio_pool_flush();
	assert_int_equal(zcio_pool_stats(&before), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	nonblock(a[0]);
	nonblock(b[0]);
	fill_stream(buf, sizeof(buf), 5, 0);
	for (i = 0; i < 50; i++) {
		assert_int_equal(zcio_link_new(a[0], b[0], ZCIO_TO_EOF, NULL, &l[i]), 0);
		assert_int_equal(write(a[1], buf, sizeof(buf)), sizeof(buf));
		assert_int_equal(zcio_link_pump(l[i], 0, &st), -EAGAIN);
		assert_int_equal(st.wait, ZCIO_WAIT_IN);
		assert_int_equal(zcio_link_pending(l[i]), 0);
		while (recv(b[1], buf, sizeof(buf), MSG_DONTWAIT) > 0)
			;
		fill_stream(buf, sizeof(buf), 5, 0);
	}
	assert_int_equal(zcio_pool_stats(&after), 0);
	/* 50 links moved data, at most one pipe is live (idle in the pool). */
	assert_true(after.live - before.live <= 1);
	for (i = 0; i < 50; i++)
		zcio_link_free(l[i]);
	close(a[0]); close(a[1]); close(b[0]); close(b[1]);
}

/* No pipe available (pool cap): the link copies, byte-exact. */
static void test_pool_exhausted_copies(void **state)
{
	struct zcio_stats st = { 0 };
	struct zcio_pool_stats ps;
	struct zcio__pipe held = ZCIO__PIPE_NONE;

	(void)state;
	zcio_pool_flush();
	zcio_pool_stats(&ps);
	/* Take one pipe ourselves and cap the pool right there. */
	zcio_pool_set_max(ps.live + 1);
	assert_int_equal(zcio__pipe_get(&held, 0), 0);
	relay_stream(4u << 20, 65536, NULL, &st);
	zcio__pipe_kill(&held);
	zcio_pool_set_max(0);
	assert_int_equal(st.path_bytes[ZCIO_PATH_SPLICE_PIPE], 0);
	assert_true(st.nfallbacks >= 1);
	assert_int_equal(st.fallback[0].reason, ZCIO_WHY_NO_PIPE);
}

/* The destination goes away: -EPIPE, no SIGPIPE death, and every byte the
 * link took but could not deliver can be drained. */
static void test_error_keeps_pending_bytes_for_drain(void **state)
{
	int a[2], b[2];
	struct zcio_link *l;
	struct zcio_stats st = { 0 };
	uint8_t buf[100000], back[100000];
	int64_t r;
	int small = 4096;

	(void)state;
	signal(SIGPIPE, SIG_DFL);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	setsockopt(b[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	nonblock(a[0]);
	nonblock(b[0]);
	fill_stream(buf, sizeof(buf), 8, 0);
	assert_int_equal(write(a[1], buf, sizeof(buf)), sizeof(buf));
	assert_int_equal(zcio_link_new(a[0], b[0], ZCIO_TO_EOF, NULL, &l), 0);
	r = zcio_link_pump(l, 0, &st);
	assert_int_equal(r, -EAGAIN);
	assert_int_equal(st.wait, ZCIO_WAIT_OUT);
	close(b[1]); /* the reader goes away without reading */
	r = zcio_link_pump(l, 0, &st);
	assert_true(r == -EPIPE || r == -ECONNRESET);
	{
		uint64_t pending = zcio_link_pending(l);
		int64_t n = zcio_link_drain(l, back, sizeof(back));

		assert_true(pending > 0);
		assert_int_equal(n, pending);
		/* The drained bytes are the ones right after those delivered. */
		assert_memory_equal(back, buf + st.bytes, (size_t)n);
	}
	assert_int_equal(zcio_link_pending(l), 0);
	zcio_link_free(l);
	close(a[0]); close(a[1]); close(b[0]);
}

/* A slow reader: the link waits in poll and burns no CPU. */
static void test_slow_reader_no_spin(void **state)
{
	int a[2], b[2];
	struct zcio_link *l;
	pthread_t tp, tc;
	struct producer p = { .len = 2u << 20, .seed = 4, .chunk = 65536, .shut = true };
	struct consumer c = { .seed = 4, .pause = 20000 }; /* ~3 MB/s */
	struct zcio_stats st = { 0 };
	struct rusage r0, r1;
	double cpu;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	p.fd = a[1];
	c.fd = b[1];
	nonblock(a[0]);
	nonblock(b[0]);
	assert_int_equal(zcio_link_new(a[0], b[0], ZCIO_TO_EOF, NULL, &l), 0);
	pthread_create(&tp, NULL, produce, &p);
	pthread_create(&tc, NULL, consume, &c);
	getrusage(RUSAGE_THREAD, &r0);
	assert_int_equal(pump_with_poll(l, a[0], b[0], &st, 10000), 0);
	getrusage(RUSAGE_THREAD, &r1);
	shutdown(b[0], SHUT_WR);
	pthread_join(tp, NULL);
	pthread_join(tc, NULL);
	zcio_link_free(l);
	close(a[0]); close(b[0]);
	assert_int_equal(c.got, p.len);
	assert_int_equal(c.bad_at, 0);
	cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
	      (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
	/* About 0.7 s of wall time; a spinning pump would use all of it. */
	assert_true(cpu < 0.1);
}

/* len is honoured exactly; the rest stays in the source. */
static void test_length_limit_is_exact(void **state)
{
	int a[2], b[2];
	struct zcio_link *l;
	struct zcio_stats st = { 0 };
	uint8_t buf[300000], rest[300000];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	nonblock(a[0]);
	nonblock(b[0]);
	fill_stream(buf, sizeof(buf), 12, 0);
	assert_int_equal(write(a[1], buf, 100000), 100000);
	assert_int_equal(zcio_link_new(a[0], b[0], 77777, NULL, &l), 0);
	assert_int_equal(zcio_link_pump(l, 0, &st), 0);
	assert_int_equal(st.last_bytes, 77777);
	assert_int_equal(read(a[0], rest, sizeof(rest)), 100000 - 77777);
	assert_memory_equal(rest, buf + 77777, 100000 - 77777);
	zcio_link_free(l);
	close(a[0]); close(a[1]); close(b[0]); close(b[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_socket_to_socket_splices),
		cmocka_unit_test(test_forced_copy_is_exact),
		cmocka_unit_test(test_small_chunks_switch_to_copy),
		cmocka_unit_test(test_edge_triggered_epoll_never_stalls),
		cmocka_unit_test(test_eof_waits_for_the_pipe_to_empty),
		cmocka_unit_test(test_push_header_then_file_spliced),
		cmocka_unit_test(test_push_header_then_file_sendfile),
		cmocka_unit_test(test_idle_link_holds_no_pipe),
		cmocka_unit_test(test_pool_exhausted_copies),
		cmocka_unit_test(test_error_keeps_pending_bytes_for_drain),
		cmocka_unit_test(test_slow_reader_no_spin),
		cmocka_unit_test(test_length_limit_is_exact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
