/*
 * test_zcsend.c - zcio_zcsend: MSG_ZEROCOPY sends, completions, and the
 * ways zero-copy is left (COPIED completions, ENOBUFS, small sends, sockets
 * without it).
 *
 * The writer owns NBUF buffers.  It fills a buffer with the stream's bytes
 * for the positions it sends next, sends it under the buffer's number as
 * cookie, and fills that buffer again only after zcio_zcsend_reap() has
 * reported the cookie.  A slow reader checks every byte.  Loopback delivers
 * to a local socket, where the kernel copies zero-copy pages on delivery
 * (COPIED), but until the receive window opens the pages wait in the
 * sender's queue, referenced, so early reuse would be seen (see the
 * control test).
 */
#include <net/if.h>
#include <sched.h>
#include <sys/wait.h>

#include "testutil.h"
#include "thresholds.h"

#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY 0x4000000
#endif
#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY 60
#endif

#define NBUF 8

struct run {
	size_t total, msg;
	uint32_t flags;
	struct zcio_opts opts;
	unsigned delay_us;
	int small_bufs;         /* SO_RCVBUF/SO_SNDBUF, 0: default */
	bool unix_socket;
	/* results */
	struct zcio_stats st;
	struct zcio_zcsend_info info;
	uint64_t reaped;
};

#define COOKIES 65536 /* more pieces than this are never in flight */

struct sender {
	struct zcio_zcsend *zs;
	struct run *r;
	uint64_t next_cookie, expect_cookie;
	int outstanding[NBUF];   /* cookies in flight per buffer */
	uint8_t owner[COOKIES];  /* buffer of cookie c: owner[c % COOKIES] */
};

/* Reap completions: each cookie must come back once, in send order. */
static void reap(struct sender *s)
{
	uint64_t done[NBUF];
	int n, k;

	do {
		n = zcio_zcsend_reap(s->zs, done, NBUF, &s->r->st);
		assert_true(n >= 0);
		for (k = 0; k < n; k++) {
			assert_int_equal(done[k], s->expect_cookie);
			s->expect_cookie++;
			s->outstanding[s->owner[done[k] % COOKIES]]--;
			s->r->reaped++;
		}
	} while (n == NBUF);
}

/* Send r->total bytes of expect over wr, from NBUF buffers, each filled
 * again only once every cookie it was sent under has completed. */
static void send_stream(struct run *r, int wr, const uint8_t *expect)
{
	struct sender *s = calloc(1, sizeof(*s));
	uint8_t *buf[NBUF];
	size_t sent = 0;
	int i, b = 0;

	assert_non_null(s);
	s->r = r;
	for (i = 0; i < NBUF; i++)
		buf[i] = aligned_alloc(4096, (r->msg + 4095) / 4096 * 4096);
	assert_int_equal(zcio_zcsend_new(wr, r->flags, &r->opts, &s->zs), 0);
	while (sent < r->total) {
		size_t len = r->total - sent < r->msg ? r->total - sent : r->msg, off = 0;

		reap(s);
		if (s->outstanding[b]) {
			/* The oldest buffer is still the kernel's: wait for a
			 * completion (POLLERR), never touch it. */
			tu_wait_fd(wr, 0, 1000);
			continue;
		}
		memcpy(buf[b], expect + sent, len);
		while (off < len) {
			int64_t n = zcio_zcsend_send(s->zs, buf[b] + off, len - off, s->next_cookie,
						     &r->st);

			if (n == -EAGAIN) {
				assert_int_equal(r->st.wait, ZCIO_WAIT_OUT);
				tu_wait_fd(wr, POLLOUT, 1000);
				reap(s);
				continue;
			}
			assert_true(n > 0);
			/* A partial send: the rest goes under a new cookie. */
			s->owner[s->next_cookie % COOKIES] = (uint8_t)b;
			s->outstanding[b]++;
			s->next_cookie++;
			off += (size_t)n;
		}
		sent += len;
		b = (b + 1) % NBUF;
	}
	while (zcio_zcsend_pending(s->zs)) {
		reap(s);
		if (zcio_zcsend_pending(s->zs))
			tu_wait_fd(wr, 0, 1000);
	}
	assert_int_equal(s->expect_cookie, s->next_cookie);
	assert_int_equal(zcio_zcsend_info(s->zs, &r->info), 0);
	zcio_zcsend_free(s->zs);
	for (i = 0; i < NBUF; i++)
		free(buf[i]);
	free(s);
}

static void run_stream(struct run *r)
{
	uint8_t *expect = tu_data(r->total, 77);
	struct tu_consumer c = { .expect = expect, .expect_len = r->total, .chunk = 32 * TU_KIB,
				 .delay_us = r->delay_us };
	int rd, wr;

	if (r->unix_socket) {
		int s[2];

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
		rd = s[0];
		wr = s[1];
	} else {
		tu_tcp_pair(&rd, &wr);
	}
	if (r->small_bufs) {
		setsockopt(rd, SOL_SOCKET, SO_RCVBUF, &r->small_bufs, sizeof(r->small_bufs));
		setsockopt(wr, SOL_SOCKET, SO_SNDBUF, &r->small_bufs, sizeof(r->small_bufs));
	}
	c.fd = rd;
	tu_consumer_start(&c);
	send_stream(r, wr, expect);
	close(wr);
	tu_consumer_check(&c);
	close(rd);
	tu_print_stats(&r->st);
	printf("# zc sends %llu, copy sends %llu, completed %llu (copied %llu), notifications %llu, enobufs %llu, off %d\n",
	       (unsigned long long)r->info.zc_sends, (unsigned long long)r->info.copy_sends,
	       (unsigned long long)r->info.completed, (unsigned long long)r->info.completed_copied,
	       (unsigned long long)r->info.notifications, (unsigned long long)r->info.enobufs,
	       r->info.off);
	assert_int_equal(r->st.bytes, r->total);
	assert_int_equal(r->reaped, r->info.zc_sends + r->info.copy_sends);
	assert_int_equal(r->info.in_flight, 0);
	free(expect);
}

/* Loopback always copies on delivery: the first completion says so and the
 * zcsend stops zero-copy. */
static void loopback_copied_turns_zero_copy_off(void **state)
{
	struct run r = { .total = 16 * TU_MIB, .msg = 256 * 1024, .delay_us = 200,
			 .small_bufs = 128 * 1024, .opts = { .copy_threshold = 1 } };

	(void)state;
	run_stream(&r);
	assert_true(r.info.zc_sends > 0);
	assert_true(r.info.completed_copied > 0);
	assert_int_equal(r.info.completed, r.info.zc_sends);
	assert_int_equal(r.info.off, ZCIO_ZCSEND_OFF_COPIED);
	assert_true(r.info.copy_sends > 0);
	assert_int_equal(r.st.path_bytes[ZCIO_PATH_MSG_ZEROCOPY], r.info.zc_bytes);
	assert_int_equal(r.st.path_bytes[ZCIO_PATH_COPY], r.info.copy_bytes);
	assert_true(tu_has_reason(&r.st, ZCIO_WHY_KIND));
}

/* ALWAYS keeps every send zero-copy: buffers are in flight until the slow
 * reader makes room, and are reused only after their completions. */
static void always_zero_copy_slow_reader_reuses_only_after_completion(void **state)
{
	struct run r = { .total = 24 * TU_MIB, .msg = 128 * 1024, .delay_us = 300,
			 .small_bufs = 64 * 1024, .flags = ZCIO_ZCSEND_ALWAYS };

	(void)state;
	run_stream(&r);
	assert_int_equal(r.info.copy_sends, 0);
	assert_int_equal(r.info.completed, r.info.zc_sends);
	assert_int_equal(r.info.off, ZCIO_ZCSEND_ON);
	assert_int_equal(r.st.path_bytes[ZCIO_PATH_MSG_ZEROCOPY], r.total);
	/* Fewer notifications than sends: the kernel merges ranges. */
	assert_true(r.info.notifications >= 1);
	assert_true(r.info.notifications <= r.info.completed);
}

static void small_sends_copy_and_complete_in_order(void **state)
{
	struct run r = { .total = 1 * TU_MIB, .msg = 1000 };

	(void)state;
	setenv("ZCIO_THRESHOLDS", "", 1);
	run_stream(&r);
	assert_int_equal(r.info.zc_sends, 0);
	assert_int_equal(r.st.path_bytes[ZCIO_PATH_COPY], r.total);
	assert_true(tu_has_reason(&r.st, ZCIO_WHY_SMALL));
}

/* The memory_socket threshold of the thresholds file decides, when the
 * caller passes no copy_threshold. */
static void thresholds_file_sets_the_size_for_zero_copy(void **state)
{
	char path[PATH_MAX];
	struct zcio_zcsend *zs;
	struct zcio_stats st = { 0 };
	struct zcio_zcsend_info info;
	char buf[16384] = { 0 }, sink[16384];
	int rd, wr, fd;

	(void)state;
	tu_path(path, sizeof(path), "thresholds");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(tu_write_all(fd, "# test\nmemory_socket 8k\n", 25), 0);
	close(fd);
	setenv("ZCIO_THRESHOLDS", path, 1);
	zcio__thresholds_reset();
	assert_int_equal(zcio_threshold(ZCIO_THR_MEM_SOCKET), 8192);
	tu_tcp_pair(&rd, &wr);
	assert_int_equal(zcio_zcsend_new(wr, 0, NULL, &zs), 0);
	assert_int_equal(zcio_zcsend_send(zs, buf, 4096, 1, &st), 4096);
	assert_int_equal(tu_read_full(rd, sink, 4096), 4096);
	assert_int_equal(zcio_zcsend_send(zs, buf, 16384, 2, &st), 16384);
	assert_int_equal(tu_read_full(rd, sink, 16384), 16384);
	assert_int_equal(zcio_zcsend_info(zs, &info), 0);
	assert_int_equal(info.copy_sends, 1);
	assert_int_equal(info.zc_sends, 1);
	assert_int_equal(st.path_bytes[ZCIO_PATH_COPY], 4096);
	assert_int_equal(st.path_bytes[ZCIO_PATH_MSG_ZEROCOPY], 16384);
	zcio_zcsend_free(zs);
	close(rd);
	close(wr);
	setenv("ZCIO_THRESHOLDS", "", 1);
	zcio__thresholds_reset();
	assert_int_equal(zcio_threshold(ZCIO_THR_MEM_SOCKET), 65536);
}

static void forced_copy(void **state)
{
	struct run r = { .total = 4 * TU_MIB, .msg = 256 * 1024, .opts = { .flags = ZCIO_F_COPY } };

	(void)state;
	run_stream(&r);
	assert_int_equal(r.info.zc_sends, 0);
	assert_int_equal(r.info.off, ZCIO_ZCSEND_OFF_FORCED);
	assert_true(tu_has_reason(&r.st, ZCIO_WHY_FORCED));
}

/* Unix sockets refuse SO_ZEROCOPY: everything copies, nothing breaks. */
static void unix_socket_has_no_zero_copy(void **state)
{
	struct run r = { .total = 4 * TU_MIB, .msg = 256 * 1024, .unix_socket = true,
			 .flags = ZCIO_ZCSEND_ALWAYS };

	(void)state;
	run_stream(&r);
	assert_int_equal(r.info.zc_sends, 0);
	assert_int_equal(r.info.off, ZCIO_ZCSEND_OFF_UNSUPPORTED);
	assert_int_equal(r.info.off_errno, EOPNOTSUPP);
}

/*
 * The control: send with MSG_ZEROCOPY while the reader does not read,
 * overwrite the buffer at once, then read: the bytes still queued at the
 * sender come out overwritten.  Reuse before the completion is seen.
 */
static void control_reuse_before_completion_is_seen_by_reader(void **state)
{
	size_t n = 4 * TU_MIB, sent = 0, changed = 0, i;
	uint8_t *buf = aligned_alloc(4096, n), *got = malloc(n);
	int rd, wr, one = 1;

	(void)state;
	tu_tcp_pair(&rd, &wr);
	assert_int_equal(setsockopt(wr, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)), 0);
	memset(buf, 'a', n);
	while (sent < n) {
		ssize_t s = send(wr, buf + sent, n - sent, MSG_ZEROCOPY | MSG_DONTWAIT);

		if (s <= 0)
			break;
		sent += (size_t)s;
	}
	assert_true(sent > 0);
	memset(buf, 'b', n);
	shutdown(wr, SHUT_WR);
	assert_int_equal(tu_read_full(rd, got, sent), (ssize_t)sent);
	for (i = 0; i < sent; i++)
		changed += got[i] == 'b';
	printf("# %zu of %zu bytes came out overwritten\n", changed, sent);
	assert_true(changed > 0);
	close(rd);
	close(wr);
	free(buf);
	free(got);
}

/* Completions raise POLLERR, which reap clears. */
static void completions_raise_pollerr_until_reaped(void **state)
{
	struct zcio_zcsend *zs;
	char buf[65536], sink[65536];
	uint64_t cookie = 0;
	int rd, wr, i;
	struct pollfd p;

	(void)state;
	memset(buf, 'z', sizeof(buf));
	tu_tcp_pair(&rd, &wr);
	assert_int_equal(zcio_zcsend_new(wr, ZCIO_ZCSEND_ALWAYS, NULL, &zs), 0);
	assert_int_equal(zcio_zcsend_send(zs, buf, sizeof(buf), 42, NULL), (int64_t)sizeof(buf));
	assert_int_equal(tu_read_full(rd, sink, sizeof(buf)), (ssize_t)sizeof(buf));
	p = (struct pollfd){ .fd = wr, .events = 0 };
	for (i = 0; i < 100 && poll(&p, 1, 100) == 0; i++)
		;
	assert_true(p.revents & POLLERR);
	assert_int_equal(zcio_zcsend_reap(zs, &cookie, 1, NULL), 1);
	assert_int_equal(cookie, 42);
	p.revents = 0;
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(zcio_zcsend_pending(zs), 0);
	zcio_zcsend_free(zs);
	close(rd);
	close(wr);
}

/* reap() hands out no more than asked, the rest at the next call. */
static void reap_in_pieces(void **state)
{
	struct zcio_zcsend *zs;
	char buf[4096], sink[4096];
	uint64_t c[4];
	int rd, wr, i, got = 0, n;

	(void)state;
	memset(buf, 'q', sizeof(buf));
	tu_tcp_pair(&rd, &wr);
	assert_int_equal(zcio_zcsend_new(wr, ZCIO_ZCSEND_ALWAYS, NULL, &zs), 0);
	for (i = 0; i < 10; i++) {
		assert_int_equal(zcio_zcsend_send(zs, buf, sizeof(buf), 100 + i, NULL), 4096);
		assert_int_equal(tu_read_full(rd, sink, sizeof(sink)), 4096);
	}
	for (i = 0; i < 200 && got < 10; i++) {
		n = zcio_zcsend_reap(zs, c, 3, NULL);
		assert_true(n >= 0 && n <= 3);
		for (int k = 0; k < n; k++)
			assert_int_equal(c[k], 100 + got + k);
		got += n;
		if (!n)
			tu_sleep_us(5000);
	}
	assert_int_equal(got, 10);
	zcio_zcsend_free(zs);
	close(rd);
	close(wr);
}

static void peer_gone_is_an_error_not_sigpipe(void **state)
{
	struct zcio_zcsend *zs;
	char buf[65536];
	int rd, wr, i;
	int64_t r = 0;

	(void)state;
	memset(buf, 'x', sizeof(buf));
	tu_tcp_pair(&rd, &wr);
	assert_int_equal(zcio_zcsend_new(wr, ZCIO_ZCSEND_ALWAYS, NULL, &zs), 0);
	close(rd);
	for (i = 0; i < 100; i++) {
		r = zcio_zcsend_send(zs, buf, sizeof(buf), (uint64_t)i, NULL);
		if (r < 0 && r != -EAGAIN)
			break;
		tu_sleep_us(1000);
	}
	assert_true(r == -EPIPE || r == -ECONNRESET);
	zcio_zcsend_free(zs);
	close(wr);
}

static void bad_arguments(void **state)
{
	struct zcio_zcsend *zs;
	int fd = tu_file(NULL, 0), rd, wr;

	(void)state;
	assert_int_equal(zcio_zcsend_new(fd, 0, NULL, &zs), -ENOTSOCK);
	assert_int_equal(zcio_zcsend_new(-1, 0, NULL, &zs), -EBADF);
	tu_tcp_pair(&rd, &wr);
	assert_int_equal(zcio_zcsend_new(wr, 0x80, NULL, &zs), -EINVAL);
	assert_int_equal(zcio_zcsend_new(wr, 0, NULL, NULL), -EINVAL);
	assert_int_equal(zcio_zcsend_new(wr, 0, NULL, &zs), 0);
	assert_int_equal(zcio_zcsend_send(zs, NULL, 1, 0, NULL), -EINVAL);
	assert_int_equal(zcio_zcsend_send(zs, "x", 0, 0, NULL), -EINVAL);
	assert_int_equal(zcio_zcsend_reap(zs, NULL, 1, NULL), -EINVAL);
	assert_int_equal(zcio_zcsend_info(zs, NULL), -EINVAL);
	zcio_zcsend_free(zs);
	zcio_zcsend_free(NULL);
	close(rd);
	close(wr);
	close(fd);
}

static void no_fd_leak_over_1000_zcsends(void **state)
{
	int rd, wr, before, i;
	char sink[64];

	(void)state;
	tu_tcp_pair(&rd, &wr);
	before = tu_count_fds();
	for (i = 0; i < 1000; i++) {
		struct zcio_zcsend *zs;

		assert_int_equal(zcio_zcsend_new(wr, ZCIO_ZCSEND_ALWAYS, NULL, &zs), 0);
		assert_int_equal(zcio_zcsend_send(zs, "0123456789", 10, 0, NULL), 10);
		assert_int_equal(tu_read_full(rd, sink, 10), 10);
		zcio_zcsend_free(zs);
	}
	assert_int_equal(tu_count_fds(), before);
	close(rd);
	close(wr);
}

/* ---- ENOBUFS: a network namespace with a tiny optmem_max ---------------- */

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -EIO;
}

static int lo_up(void)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r;

	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	r = ioctl(s, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	if (r == 0)
		r = ioctl(s, SIOCSIFFLAGS, &ifr);
	close(s);
	return r;
}

/*
 * In a child in its own network namespace (net.core.optmem_max is per
 * namespace since Linux 6.9), with optmem_max so small that at most one
 * zero-copy send fits in flight (1000 bytes), or none (1 byte): the other
 * MSG_ZEROCOPY sends fail with ENOBUFS, and must go out copied at once,
 * without waiting for completions; with room for one, zero-copy resumes
 * after completions.  Exit 0 pass, 1 fail, 77 skip (no namespaces here).
 */
static int enobufs_child(const char *optmem, bool expect_zc)
{
	struct run r = { .total = 8 * TU_MIB, .msg = 64 * 1024, .delay_us = 200,
			 .small_bufs = 64 * 1024, .flags = ZCIO_ZCSEND_ALWAYS };
	char v[32];
	int fd;
	ssize_t n;

	if (unshare(CLONE_NEWNET) != 0 || lo_up() != 0) {
		printf("# SKIP: cannot make a network namespace: %s\n", strerror(errno));
		return 77;
	}
	if (write_file("/proc/sys/net/core/optmem_max", optmem) != 0) {
		printf("# SKIP: cannot set optmem_max in the namespace\n");
		return 77;
	}
	fd = open("/proc/sys/net/core/optmem_max", O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, v, sizeof(v) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0 || strtol(v, NULL, 10) != strtol(optmem, NULL, 10)) {
		printf("# SKIP: optmem_max is not per network namespace here\n");
		return 77;
	}
	run_stream(&r);
	if (r.info.enobufs == 0) {
		printf("# no ENOBUFS seen\n");
		return 1;
	}
	if (r.info.copy_sends == 0 || r.st.path_bytes[ZCIO_PATH_COPY] == 0) {
		printf("# ENOBUFS did not lead to copies\n");
		return 1;
	}
	if (!tu_has_reason(&r.st, ZCIO_WHY_REFUSED)) {
		printf("# ENOBUFS fallback not recorded\n");
		return 1;
	}
	if (expect_zc && r.info.zc_sends < 2) {
		printf("# zero-copy did not resume after ENOBUFS\n");
		return 1;
	}
	return 0;
}

static void enobufs_case(const char *optmem, bool expect_zc)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(enobufs_child(optmem, expect_zc));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void enobufs_room_for_one_copies_then_resumes(void **state)
{
	(void)state;
	enobufs_case("1000", true);
}

static void enobufs_room_for_none_copies_without_waiting(void **state)
{
	(void)state;
	enobufs_case("1", false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(loopback_copied_turns_zero_copy_off),
		cmocka_unit_test(always_zero_copy_slow_reader_reuses_only_after_completion),
		cmocka_unit_test(small_sends_copy_and_complete_in_order),
		cmocka_unit_test(thresholds_file_sets_the_size_for_zero_copy),
		cmocka_unit_test(forced_copy),
		cmocka_unit_test(unix_socket_has_no_zero_copy),
		cmocka_unit_test(control_reuse_before_completion_is_seen_by_reader),
		cmocka_unit_test(completions_raise_pollerr_until_reaped),
		cmocka_unit_test(reap_in_pieces),
		cmocka_unit_test(peer_gone_is_an_error_not_sigpipe),
		cmocka_unit_test(bad_arguments),
		cmocka_unit_test(no_fd_leak_over_1000_zcsends),
		cmocka_unit_test(enobufs_room_for_one_copies_then_resumes),
		cmocka_unit_test(enobufs_room_for_none_copies_without_waiting),
	};
	struct zcio_features f;

	setenv("ZCIO_THRESHOLDS", "", 1);
	tu_init(300);
	if (zcio_probe(&f) == 0 && !(f.have & ZCIO_HAVE_MSG_ZEROCOPY)) {
		printf("1..0 # SKIP: no MSG_ZEROCOPY in this kernel\n");
		return 77;
	}
	return cmocka_run_group_tests_name("zcsend", tests, NULL, NULL);
}
