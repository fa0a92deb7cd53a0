/*
 * testutil.h - what the unit tests share: deterministic data and checksums,
 * temporary files, channels (pipe, FIFO, TCP, unix stream and datagram
 * sockets), and the producer and consumer threads that feed and drain them.
 *
 * Every test that moves bytes checks them twice: a consumer compares each
 * byte it receives with the bytes the test expects (so a failure names the
 * first wrong offset) and keeps an FNV-1a checksum of the stream, which the
 * test compares with the checksum of what it sent.
 *
 * Helper threads block SIGPIPE, SIGALRM, SIGUSR1 and SIGUSR2: a write to a
 * closed reader fails with EPIPE instead of killing the test, and the
 * signals a test aims at the copying thread land there.  The copying thread
 * (the test itself) keeps SIGPIPE's default disposition, so a library that
 * lets SIGPIPE through kills the program and the test fails.
 */
#ifndef ZCIO_TESTUTIL_H
#define ZCIO_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "zcio.h"

#define TU_UNUSED __attribute__((unused))
#define TU_KIB 1024u
#define TU_MIB (1024u * 1024u)

/* ---- time ---------------------------------------------------------------- */

static TU_UNUSED int64_t tu_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static TU_UNUSED void tu_sleep_us(unsigned us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* ---- data and checksums -------------------------------------------------- */

#define TU_HASH_INIT 0xcbf29ce484222325ull

/* FNV-1a, 64 bit: streaming, so chunking does not change the result. */
static TU_UNUSED uint64_t tu_hash(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* Fill buf with bytes that depend on seed (xorshift64*). */
static TU_UNUSED void tu_fill(void *buf, size_t n, uint64_t seed)
{
	unsigned char *b = buf;
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
	size_t i;

	for (i = 0; i < n; i += 8) {
		uint64_t v;
		size_t k = n - i < 8 ? n - i : 8;

		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		v = x * 0x2545f4914f6cdd1dull;
		memcpy(b + i, &v, k);
	}
}

/* n pseudo-random bytes (malloc'd; n == 0 gives a valid pointer). */
static TU_UNUSED uint8_t *tu_data(size_t n, uint64_t seed)
{
	uint8_t *b = malloc(n ? n : 1);

	assert_non_null(b);
	tu_fill(b, n, seed);
	return b;
}

/* ---- whole-buffer I/O ----------------------------------------------------- */

static TU_UNUSED int tu_wait_fd(int fd, short ev, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int r;

	do {
		r = poll(&p, 1, timeout_ms);
	} while (r == -1 && errno == EINTR);
	return r;
}

/* Write all of buf (waits on a nonblocking fd).  0 or -errno. */
static TU_UNUSED int tu_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w == -1 && errno == EAGAIN) {
			tu_wait_fd(fd, POLLOUT, -1);
		} else if (w == -1 && errno != EINTR) {
			return -errno;
		}
	}
	return 0;
}

/* Read up to n bytes, stopping at EOF.  Bytes read, or -errno. */
static TU_UNUSED ssize_t tu_read_full(int fd, void *buf, size_t n)
{
	char *p = buf;
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);

		if (r > 0)
			got += (size_t)r;
		else if (r == 0)
			break;
		else if (errno == EAGAIN)
			tu_wait_fd(fd, POLLIN, -1);
		else if (errno != EINTR)
			return -errno;
	}
	return (ssize_t)got;
}

/* Assert that fd holds exactly `expect` from offset off to its end. */
static TU_UNUSED void tu_assert_file(int fd, uint64_t off, const void *expect, size_t n)
{
	struct stat st;
	uint8_t *buf = malloc(n ? n : 1);
	ssize_t r;

	assert_non_null(buf);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal((uint64_t)st.st_size, off + n);
	r = pread(fd, buf, n, (off_t)off);
	assert_int_equal(r, (ssize_t)n);
	assert_int_equal(tu_hash(TU_HASH_INIT, buf, n), tu_hash(TU_HASH_INIT, expect, n));
	assert_memory_equal(buf, expect, n);
	free(buf);
}

/* Bytes a nonblocking-or-not fd has ready to read (FIONREAD). */
static TU_UNUSED int tu_readable(int fd);

/* ---- temporary files ------------------------------------------------------ */

static char tu_dir_path[256];

static TU_UNUSED int tu_rm(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(p);
}

static TU_UNUSED pid_t tu_dir_owner;

static TU_UNUSED void tu_dir_cleanup(void)
{
	/* Only the process that made it removes it (not forked children). */
	if (tu_dir_path[0] && getpid() == tu_dir_owner)
		nftw(tu_dir_path, tu_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* A private directory for this test program, removed at exit.  On the
 * root filesystem (not tmpfs), where copy_file_range does real work. */
static TU_UNUSED const char *tu_dir(void)
{
	if (!tu_dir_path[0]) {
		const char *base = getenv("ZCIO_TEST_TMPDIR");

		int n = snprintf(tu_dir_path, sizeof(tu_dir_path), "%s/zcio-unit-XXXXXX",
				 base ? base : "/var/tmp");

		assert_true(n > 0 && (size_t)n < sizeof(tu_dir_path));
		assert_non_null(mkdtemp(tu_dir_path));
		tu_dir_owner = getpid();
		atexit(tu_dir_cleanup);
	}
	return tu_dir_path;
}

/* path = tu_dir()/name; returns path. */
static TU_UNUSED char *tu_path(char *path, size_t len, const char *name)
{
	snprintf(path, len, "%s/%s", tu_dir(), name);
	return path;
}

/* A new file (unlinked at once) opened with flags | O_CREAT, holding data. */
static TU_UNUSED int tu_file_flags(const void *data, size_t n, int flags)
{
	static unsigned counter;
	char path[PATH_MAX], name[64];
	int fd;

	snprintf(name, sizeof(name), "f%u", __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
	tu_path(path, sizeof(path), name);
	fd = open(path, flags | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(unlink(path), 0);
	if (n) {
		assert_int_equal(pwrite(fd, data, n, 0), (ssize_t)n);
	}
	return fd;
}

/* A read-write file holding data, offset 0. */
static TU_UNUSED int tu_file(const void *data, size_t n)
{
	return tu_file_flags(data, n, O_RDWR);
}

/* ---- channels ------------------------------------------------------------ */

enum tu_chan {
	TU_PIPE,
	TU_FIFO,
	TU_TCP,
	TU_UNIX,
	TU_DGRAM,
	TU_CHAN_COUNT
};

static TU_UNUSED const char *tu_chan_name(enum tu_chan k)
{
	static const char *const n[] = { "pipe", "fifo", "tcp", "unix", "dgram" };

	return (unsigned)k < TU_CHAN_COUNT ? n[k] : "?";
}

/* Bytes flow from wr to rd. */
struct tu_channel {
	enum tu_chan kind;
	int rd, wr;
};

static TU_UNUSED void tu_tcp_pair(int *rd, int *wr)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int one = 1;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(l >= 0 && c >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
	assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	*rd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(*rd >= 0);
	close(l);
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*wr = c;
}

static TU_UNUSED void tu_channel_open(struct tu_channel *c, enum tu_chan kind)
{
	int fds[2];

	c->kind = kind;
	switch (kind) {
	case TU_PIPE:
		assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
		c->rd = fds[0];
		c->wr = fds[1];
		break;
	case TU_FIFO: {
		static unsigned counter;
		char path[PATH_MAX], name[64];

		snprintf(name, sizeof(name), "fifo%u",
			 __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
		tu_path(path, sizeof(path), name);
		assert_int_equal(mkfifo(path, 0600), 0);
		/* Nonblocking open of the reader first, so neither blocks. */
		c->rd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		assert_true(c->rd >= 0);
		c->wr = open(path, O_WRONLY | O_CLOEXEC);
		assert_true(c->wr >= 0);
		assert_int_equal(fcntl(c->rd, F_SETFL, O_RDONLY), 0);
		unlink(path);
		break;
	}
	case TU_TCP:
		tu_tcp_pair(&c->rd, &c->wr);
		break;
	case TU_UNIX:
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
		c->rd = fds[0];
		c->wr = fds[1];
		break;
	case TU_DGRAM:
		assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fds), 0);
		c->rd = fds[0];
		c->wr = fds[1];
		break;
	default:
		fail();
	}
}

static TU_UNUSED void tu_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static TU_UNUSED void tu_channel_close(struct tu_channel *c)
{
	tu_close(&c->rd);
	tu_close(&c->wr);
}

/*
 * End the stream at the writing side: close it, after an empty datagram for
 * datagram sockets (they have no end of stream; the consumers here and
 * zcio's copy path both take a 0-byte read as the end).
 */
static TU_UNUSED void tu_channel_end(struct tu_channel *c)
{
	if (c->kind == TU_DGRAM && c->wr >= 0)
		(void)send(c->wr, "", 0, MSG_NOSIGNAL);
	tu_close(&c->wr);
}

static TU_UNUSED void tu_set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	assert_true(fl >= 0);
	assert_int_equal(fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK), 0);
}

/* ---- helper threads --------------------------------------------------------- */

static TU_UNUSED void tu_block_test_signals(void)
{
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, SIGPIPE);
	sigaddset(&s, SIGALRM);
	sigaddset(&s, SIGUSR1);
	sigaddset(&s, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
}

/*
 * Writes data to fd in chunks (0: all at once), sleeping delay_us between
 * them, then ends the stream (closes fd; an empty datagram first for
 * datagram sockets) unless keep_open.  err: 0 or -errno of the first failed
 * write.  A datagram producer sends each chunk as one datagram.
 */
struct tu_producer {
	int fd;
	const uint8_t *data;
	size_t len;
	size_t chunk;
	unsigned delay_us;
	bool dgram;
	bool keep_open;
	size_t sent;
	int err;
	pthread_t th;
};

static TU_UNUSED void *tu_producer_main(void *arg)
{
	struct tu_producer *p = arg;

	tu_block_test_signals();
	while (p->sent < p->len) {
		size_t n = p->len - p->sent;
		ssize_t w;

		if (p->chunk && n > p->chunk)
			n = p->chunk;
		if (p->dgram)
			w = send(p->fd, p->data + p->sent, n, MSG_NOSIGNAL);
		else
			w = write(p->fd, p->data + p->sent, n);
		if (w > 0) {
			p->sent += (size_t)w;
			if (p->delay_us)
				tu_sleep_us(p->delay_us);
		} else if (w == -1 && errno == EAGAIN) {
			tu_wait_fd(p->fd, POLLOUT, -1);
		} else if (w == -1 && errno != EINTR) {
			p->err = -errno;
			break;
		}
	}
	if (!p->keep_open) {
		if (p->dgram)
			(void)send(p->fd, "", 0, MSG_NOSIGNAL);
		close(p->fd);
		p->fd = -1;
	}
	return NULL;
}

static TU_UNUSED void tu_producer_start(struct tu_producer *p)
{
	assert_int_equal(pthread_create(&p->th, NULL, tu_producer_main, p), 0);
}

static TU_UNUSED void tu_producer_join(struct tu_producer *p)
{
	pthread_join(p->th, NULL);
}

/*
 * Reads fd until end of stream (an empty datagram for datagram sockets),
 * comparing every byte with expect (when not NULL) and hashing.  Reads at
 * most `chunk` bytes at a time (0: 256 KiB), sleeping delay_us after each.
 * bad_at: offset of the first byte that differs from expect, or past its
 * end; SIZE_MAX when all matched.
 */
struct tu_consumer {
	int fd;
	const uint8_t *expect;
	size_t expect_len;
	size_t chunk;
	unsigned delay_us;
	bool dgram;
	bool close_at_end;
	size_t got;
	size_t bad_at;
	uint64_t hash;
	int err;
	pthread_t th;
};

static TU_UNUSED void *tu_consumer_main(void *arg)
{
	struct tu_consumer *c = arg;
	size_t bufsize = c->chunk ? c->chunk : 256 * TU_KIB;
	uint8_t *buf;

	tu_block_test_signals();
	if (c->dgram && bufsize < 64 * TU_KIB)
		bufsize = 64 * TU_KIB; /* a datagram must fit whole */
	buf = malloc(bufsize);
	c->hash = TU_HASH_INIT;
	c->bad_at = SIZE_MAX;
	if (!buf) {
		c->err = -ENOMEM;
		return NULL;
	}
	for (;;) {
		ssize_t r = read(c->fd, buf, c->chunk && !c->dgram ? c->chunk : bufsize);

		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && errno == EAGAIN) {
			tu_wait_fd(c->fd, POLLIN, -1);
			continue;
		}
		if (r == -1) {
			c->err = -errno;
			break;
		}
		if (r == 0)
			break;
		if (c->expect && c->bad_at == SIZE_MAX) {
			size_t n = (size_t)r, i;

			if (c->got + n > c->expect_len) {
				c->bad_at = c->got > c->expect_len ? c->got : c->expect_len;
			}
			if (c->got < c->expect_len) {
				size_t m = n < c->expect_len - c->got ? n : c->expect_len - c->got;

				if (memcmp(buf, c->expect + c->got, m) != 0) {
					for (i = 0; i < m && buf[i] == c->expect[c->got + i]; i++)
						;
					c->bad_at = c->got + i;
				}
			}
		}
		c->hash = tu_hash(c->hash, buf, (size_t)r);
		c->got += (size_t)r;
		if (c->delay_us)
			tu_sleep_us(c->delay_us);
	}
	free(buf);
	if (c->close_at_end) {
		close(c->fd);
		c->fd = -1;
	}
	return NULL;
}

static TU_UNUSED void tu_consumer_start(struct tu_consumer *c)
{
	assert_int_equal(pthread_create(&c->th, NULL, tu_consumer_main, c), 0);
}

/* Join and assert: no error, exactly expect_len bytes, all of them right. */
static TU_UNUSED void tu_consumer_check(struct tu_consumer *c)
{
	pthread_join(c->th, NULL);
	assert_int_equal(c->err, 0);
	assert_int_equal(c->got, c->expect_len);
	assert_int_equal(c->hash, tu_hash(TU_HASH_INIT, c->expect, c->expect_len));
	assert_int_equal(c->bad_at, SIZE_MAX);
}

/* ---- process state ----------------------------------------------------------- */

/* Open file descriptors of this process. */
static TU_UNUSED int tu_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

static TU_UNUSED bool tu_fd_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

static TU_UNUSED int tu_readable(int fd)
{
	int n = 0;

	if (ioctl(fd, FIONREAD, &n) == -1)
		return -errno;
	return n;
}

/* Current offset of fd. */
static TU_UNUSED int64_t tu_offset(int fd)
{
	return (int64_t)lseek(fd, 0, SEEK_CUR);
}

/* Options forcing zero-copy routes whatever the size (threshold 1). */
static TU_UNUSED struct zcio_opts tu_opts_zc(void)
{
	return (struct zcio_opts){ .copy_threshold = 1 };
}

/* Whether stats recorded a fallback with this reason (any from/to). */
static TU_UNUSED bool tu_has_reason(const struct zcio_stats *st, int reason)
{
	uint32_t i, n = st->nfallbacks < ZCIO_STATS_FALLBACKS ? st->nfallbacks : ZCIO_STATS_FALLBACKS;

	for (i = 0; i < n; i++)
		if (st->fallback[i].reason == reason)
			return true;
	return false;
}

/* Print stats as TAP comments (shown by tests/run next to a failure). */
static TU_UNUSED void tu_print_stats(const struct zcio_stats *st)
{
	char buf[1024], *line, *save = NULL;

	zcio_stats_format(st, buf, sizeof(buf));
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		printf("# %s\n", line);
}

/* ---- program setup ------------------------------------------------------------- */

static unsigned tu_watchdog_s;

static TU_UNUSED void *tu_watchdog_main(void *arg)
{
	(void)arg;
	tu_block_test_signals();
	tu_sleep_us(tu_watchdog_s * 1000000u);
	printf("not ok - watchdog: the program ran longer than %u s (a hang)\n", tu_watchdog_s);
	fflush(stdout);
	_exit(1);
}

/*
 * Call first in main(): line-buffered stdout (nothing lost if a child or the
 * watchdog exits), no stray environment threshold, a watchdog that ends a
 * hung program after `seconds` with a visible failure, and an optional name
 * filter (ZCIO_TEST_FILTER, cmocka's pattern syntax) for debugging.
 */
static TU_UNUSED void tu_init(unsigned seconds)
{
	pthread_t th;

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* ZCIO_TEST_FILTER=pattern runs only the tests whose names match. */
	if (getenv("ZCIO_TEST_FILTER"))
		cmocka_set_test_filter(getenv("ZCIO_TEST_FILTER"));
	unsetenv("ZCIO_COPY_THRESHOLD");
	signal(SIGPIPE, SIG_DFL);
	tu_dir();
	tu_watchdog_s = seconds;
	if (pthread_create(&th, NULL, tu_watchdog_main, NULL) == 0)
		pthread_detach(th);
}

#endif
