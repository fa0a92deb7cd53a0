/*
 * test_zcsend_uring.c - zcio_zcsend with ZCIO_ZCSEND_URING: io_uring
 * SEND_ZC, its two completions, short sends, COPIED notifications, and the
 * fall back to MSG_ZEROCOPY where io_uring cannot be used.
 *
 * The writer (tu_zcsend.h) owns NBUF buffers.  Message k of the stream is the pattern of
 * sequence number k (tu_fill with seed SEED0 + k); the writer writes it into
 * a buffer, sends it (a short send: the rest under the next cookie), and
 * writes that buffer again only after zcio_zcsend_reap() has reported every
 * cookie it was sent under.  A slow reader checks every byte against the
 * patterns, so a buffer written while the kernel still held it shows up as
 * another message's bytes.  Until the reader makes room, pages wait in the
 * sender's queue, referenced (the control test shows it).
 */
#include <sys/syscall.h>
#include <sys/wait.h>

#include "testutil.h"
#include "tu_seccomp.h"
#include "tu_unpriv.h"
#include "tu_zcsend.h"
#include "thresholds.h"
#include "zcsend_uring.h"

#if defined(ZCIO_HAVE_LIBURING) && ZCIO_HAVE_LIBURING
#include <liburing.h>
#endif

#define NBUF TU_ZC_NBUF
#define SEED0 1000

static bool have_send_zc;  /* io_uring with SEND_ZC, and zcio built with it */
static char why_not[128];

static void need_send_zc(void)
{
	if (!have_send_zc) {
		printf("# SKIP: %s\n", why_not);
		skip();
	}
}

struct run {
	size_t total, msg;
	uint32_t flags;
	struct zcio_opts opts;
	unsigned delay_us;
	int small_bufs;          /* SO_RCVBUF/SO_SNDBUF, 0: default */
	int rcvbuf;              /* SO_RCVBUF alone, 0: default */
	int nbuf;                /* buffers in rotation, 0: NBUF */
	/* results */
	struct zcio_stats st;
	struct zcio_zcsend_info info;
	uint64_t cookies, reaped, short_sends;
};

/* The fd where completions are signalled (the ring for SEND_ZC). */
static int completion_fd(struct zcio_zcsend *zs, short *ev)
{
	struct zcio_zcsend_info info;

	assert_int_equal(zcio_zcsend_info(zs, &info), 0);
	*ev = (short)info.wait_events;
	return info.wait_fd;
}

/*
 * Send r->total bytes of the stream over wr, message by message, from NBUF
 * buffers.  Returns NULL, or what went wrong (no cmocka assertions: it
 * also runs in forked children).
 */
static const char *send_stream(struct run *r, int wr)
{
	static char err[160];
	struct tu_zc_writer *w = calloc(1, sizeof(*w));
	uint8_t *buf[NBUF];
	int i, rc, nbuf = r->nbuf ? r->nbuf : NBUF;

	if (!w)
		return "calloc";
	err[0] = 0;
	w->st = &r->st;
	for (i = 0; i < NBUF; i++)
		buf[i] = aligned_alloc(4096, (r->msg + 4095) / 4096 * 4096);
	rc = zcio_zcsend_new(wr, r->flags, &r->opts, &w->zs);
	if (rc < 0) {
		snprintf(err, sizeof(err), "zcio_zcsend_new: %s", strerror(-rc));
		goto out;
	}
	if (!tu_zc_send_stream(w, wr, buf, nbuf, r->total, r->msg, SEED0))
		snprintf(err, sizeof(err), "%s", w->err);
	r->cookies = w->cookies;
	r->reaped = w->reaped;
	r->short_sends = w->short_sends;
	zcio_zcsend_info(w->zs, &r->info);
	zcio_zcsend_free(w->zs);
out:
	for (i = 0; i < NBUF; i++)
		free(buf[i]);
	free(w);
	return err[0] ? err : NULL;
}

static void set_bufs(int rd, int wr, int size)
{
	if (size) {
		setsockopt(rd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
		setsockopt(wr, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	}
}

static void print_run(const struct run *r)
{
	tu_print_stats(&r->st);
	printf("# uring %d (errno %d), zc sends %llu, copy sends %llu, short %llu, completed %llu (copied %llu), notifications %llu, enobufs %llu, off %d\n",
	       r->info.uring, r->info.uring_errno, (unsigned long long)r->info.zc_sends,
	       (unsigned long long)r->info.copy_sends, (unsigned long long)r->short_sends,
	       (unsigned long long)r->info.completed, (unsigned long long)r->info.completed_copied,
	       (unsigned long long)r->info.notifications, (unsigned long long)r->info.enobufs,
	       r->info.off);
}

static void run_stream(struct run *r)
{
	uint8_t *expect = tu_zc_stream(r->total, r->msg, SEED0);
	struct tu_consumer c = { .expect = expect, .expect_len = r->total, .chunk = 32 * TU_KIB,
				 .delay_us = r->delay_us };
	const char *err;
	int rd, wr;

	tu_tcp_pair(&rd, &wr);
	set_bufs(rd, wr, r->small_bufs);
	if (r->rcvbuf)
		setsockopt(rd, SOL_SOCKET, SO_RCVBUF, &r->rcvbuf, sizeof(r->rcvbuf));
	c.fd = rd;
	tu_consumer_start(&c);
	err = send_stream(r, wr);
	close(wr);
	tu_consumer_check(&c);
	close(rd);
	print_run(r);
	if (err)
		fail_msg("%s", err);
	assert_int_equal(r->st.bytes, r->total);
	assert_int_equal(r->reaped, r->cookies);
	assert_int_equal(r->reaped, r->info.zc_sends + r->info.copy_sends);
	assert_int_equal(r->info.in_flight, 0);
	assert_int_equal(r->info.zc_bytes + r->info.copy_bytes, r->total);
	/* Every zero-copy send that sent bytes was completed.  SEND_ZC: one
	 * notification each, and one more per request that failed with
	 * IORING_CQE_F_MORE (-EAGAIN); MSG_ZEROCOPY merges ranges. */
	assert_int_equal(r->info.completed, r->info.zc_sends);
	if (r->info.uring)
		assert_true(r->info.notifications >= r->info.completed);
	else
		assert_true(r->info.notifications <= r->info.completed);
	assert_true(r->info.completed_copied <= r->info.completed);
	free(expect);
}

/* ---- SEND_ZC ---------------------------------------------------------------- */

/* ALWAYS keeps every send on SEND_ZC: buffers wait in the sender's queue
 * until the slow reader makes room, and are written again only after
 * their notifications. */
static void uring_slow_reader_reuses_only_after_notification(void **state)
{
	struct run r = { .total = 24 * TU_MIB, .msg = 128 * 1024, .delay_us = 300,
			 .small_bufs = 64 * 1024, .flags = ZCIO_ZCSEND_ALWAYS | ZCIO_ZCSEND_URING };

	(void)state;
	need_send_zc();
	run_stream(&r);
	assert_int_equal(r.info.uring, 1);
	assert_int_equal(r.info.uring_errno, 0);
	assert_int_equal(r.info.copy_sends, 0);
	assert_int_equal(r.info.off, ZCIO_ZCSEND_ON);
	assert_int_equal(r.st.path_bytes[ZCIO_PATH_URING_SEND_ZC], r.total);
	assert_int_equal(r.st.path_bytes[ZCIO_PATH_MSG_ZEROCOPY], 0);
}

/*
 * Two buffers, and a send buffer that holds many messages while the
 * receive window is small: every buffer is written again while bytes sent
 * from it before could still wait in the sender's queue.  Reusing it
 * before its notification would put the next message's bytes there (the
 * reader would see them); the zcsend makes the writer wait instead.
 */
static void uring_two_buffers_deep_send_queue(void **state)
{
	struct run r = { .total = 16 * TU_MIB, .msg = 64 * 1024, .delay_us = 300,
			 .rcvbuf = 64 * 1024, .nbuf = 2,
			 .flags = ZCIO_ZCSEND_ALWAYS | ZCIO_ZCSEND_URING };

	(void)state;
	need_send_zc();
	run_stream(&r);
	assert_int_equal(r.info.uring, 1);
	assert_int_equal(r.info.copy_sends, 0);
	assert_int_equal(r.st.path_bytes[ZCIO_PATH_URING_SEND_ZC], r.total);
}

/* A socket buffer far smaller than a message: SEND_ZC takes part of it,
 * the caller sends the rest, and the reader sees every byte in order. */
static void uring_short_sends_deliver_the_rest_in_order(void **state)
{
	struct run r = { .total = 16 * TU_MIB, .msg = 1 * TU_MIB, .delay_us = 100,
			 .small_bufs = 32 * 1024, .flags = ZCIO_ZCSEND_ALWAYS | ZCIO_ZCSEND_URING };

	(void)state;
	need_send_zc();
	run_stream(&r);
	assert_int_equal(r.info.uring, 1);
	assert_true(r.short_sends > 0);
	assert_true(r.cookies > r.total / r.msg);
	assert_int_equal(r.st.path_bytes[ZCIO_PATH_URING_SEND_ZC], r.total);
}

/*
 * Loopback: the kernel copies zero-copy pages when it queues them to the
 * local receiver.  Since Linux 6.2 the notification says so
 * (IORING_NOTIF_USAGE_ZC_COPIED), and without ALWAYS the zcsend stops
 * zero-copy; whatever the kernel reports, info must agree with itself.
 */
static void uring_loopback_copied_accounting(void **state)
{
	struct run r = { .total = 16 * TU_MIB, .msg = 256 * 1024, .delay_us = 200,
			 .small_bufs = 128 * 1024, .flags = ZCIO_ZCSEND_URING,
			 .opts = { .copy_threshold = 1 } };
	struct run a = { .total = 8 * TU_MIB, .msg = 256 * 1024, .delay_us = 200,
			 .small_bufs = 128 * 1024, .flags = ZCIO_ZCSEND_URING | ZCIO_ZCSEND_ALWAYS };

	(void)state;
	need_send_zc();
	run_stream(&r);
	assert_int_equal(r.info.uring, 1);
	assert_true(r.info.zc_sends > 0);
	assert_int_equal(r.st.path_bytes[ZCIO_PATH_URING_SEND_ZC], r.info.zc_bytes);
	assert_int_equal(r.st.path_bytes[ZCIO_PATH_COPY], r.info.copy_bytes);
	if (r.info.completed_copied) {
		/* Sends made before the first COPIED notification was read
		 * used SEND_ZC, the rest copied. */
		assert_int_equal(r.info.off, ZCIO_ZCSEND_OFF_COPIED);
		assert_true(r.info.copy_sends > 0);
		assert_true(tu_has_reason(&r.st, ZCIO_WHY_KIND));
	} else {
		printf("# no notification said COPIED (a kernel before 6.2 does not report)\n");
		assert_int_equal(r.info.off, ZCIO_ZCSEND_ON);
		assert_int_equal(r.info.copy_sends, 0);
	}
	/* ALWAYS: zero-copy stays on; every send was delivered locally, so
	 * every notification of a kernel that reports says COPIED, or none. */
	run_stream(&a);
	assert_int_equal(a.info.off, ZCIO_ZCSEND_ON);
	assert_int_equal(a.info.copy_sends, 0);
	assert_true(a.info.completed_copied == a.info.completed ||
		    (a.info.completed_copied == 0 && r.info.completed_copied == 0));
}

/*
 * The order of the two completions, through the API: with a reader that
 * does not read, sends go out until the socket is full; the last ones
 * wait in the sender's queue, and their cookies must not be reported
 * (their results have arrived, their notifications cannot have).  Once the
 * reader has read everything, every cookie comes back, in order.
 */
static void uring_cookie_waits_for_the_notification(void **state)
{
	size_t msg = 64 * 1024, nmsg = 256, i;
	uint8_t *region = aligned_alloc(4096, msg * nmsg), *got = malloc(msg * nmsg);
	struct zcio_zcsend *zs;
	struct zcio_zcsend_info info;
	uint64_t cookies[64], sent = 0, reaped = 0, early;
	size_t bytes = 0;
	int rd, wr, n, tries;
	short ev = 0;

	(void)state;
	need_send_zc();
	tu_tcp_pair(&rd, &wr);
	set_bufs(rd, wr, 64 * 1024);
	for (i = 0; i < nmsg; i++)
		tu_fill(region + i * msg, msg, SEED0 + i);
	assert_int_equal(zcio_zcsend_new(wr, ZCIO_ZCSEND_ALWAYS | ZCIO_ZCSEND_URING, NULL, &zs), 0);
	while (bytes < msg * nmsg) {
		size_t left = msg - bytes % msg; /* to the end of this message */
		int64_t w = zcio_zcsend_send(zs, region + bytes, left, sent, NULL);

		if (w == -EAGAIN)
			break;
		assert_true(w > 0);
		bytes += (size_t)w;
		sent++;
	}
	assert_true(bytes < msg * nmsg); /* the socket filled up */
	tu_sleep_us(100 * 1000);
	n = zcio_zcsend_reap(zs, cookies, 64, NULL);
	assert_true(n >= 0);
	for (i = 0; i < (size_t)n; i++)
		assert_int_equal(cookies[i], reaped + i);
	reaped += (uint64_t)n;
	early = reaped;
	printf("# %llu sends accepted %zu bytes; %llu released while the reader did not read\n",
	       (unsigned long long)sent, bytes, (unsigned long long)early);
	assert_true(early < sent);
	assert_int_equal(zcio_zcsend_pending(zs), sent - early);
	assert_int_equal(zcio_zcsend_info(zs, &info), 0);
	assert_int_equal(info.in_flight, sent - early);
	assert_int_equal(info.zc_sends, sent);
	/* Now read everything: the notifications follow, and they make the
	 * ring readable. */
	shutdown(wr, SHUT_WR);
	assert_int_equal(tu_read_full(rd, got, msg * nmsg), (ssize_t)bytes);
	assert_memory_equal(got, region, bytes);
	for (tries = 0; tries < 500 && reaped < sent; tries++) {
		int fd = completion_fd(zs, &ev);

		assert_int_equal(ev, POLLIN);
		tu_wait_fd(fd, ev, 10);
		n = zcio_zcsend_reap(zs, cookies, 64, NULL);
		assert_true(n >= 0);
		for (i = 0; i < (size_t)n; i++)
			assert_int_equal(cookies[i], reaped + i);
		reaped += (uint64_t)n;
	}
	assert_int_equal(reaped, sent);
	assert_int_equal(zcio_zcsend_pending(zs), 0);
	zcio_zcsend_free(zs);
	close(rd);
	close(wr);
	free(region);
	free(got);
}

#if defined(ZCIO_HAVE_LIBURING) && ZCIO_HAVE_LIBURING
/*
 * The control, with liburing alone: a SEND_ZC's result (IORING_CQE_F_MORE
 * set) does not release the buffer.  Overwrite it after the result and
 * before the notification, and the reader sees the new bytes.  The
 * notification comes only once the reader has taken them.
 */
static void control_result_is_not_release(void **state)
{
	size_t n = 4 * TU_MIB, changed = 0, i;
	uint8_t *buf = aligned_alloc(4096, n), *got = malloc(n);
	struct io_uring ring;
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	struct __kernel_timespec ts = { .tv_nsec = 100 * 1000 * 1000 };
	int rd, wr, res;
	unsigned flags;

	(void)state;
	need_send_zc();
	tu_tcp_pair(&rd, &wr);
	assert_int_equal(io_uring_queue_init(8, &ring, 0), 0);
	memset(buf, 'a', n);
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_send_zc(sqe, wr, buf, n, MSG_DONTWAIT, 0);
	sqe->user_data = 7;
	assert_int_equal(io_uring_submit(&ring), 1);
	assert_int_equal(io_uring_wait_cqe(&ring, &cqe), 0);
	res = cqe->res;
	flags = cqe->flags;
	io_uring_cqe_seen(&ring, cqe);
	printf("# result %d, flags %#x\n", res, flags);
	assert_true(res > 0);
	assert_false(flags & IORING_CQE_F_NOTIF);
	assert_true(flags & IORING_CQE_F_MORE);
	/* No notification while the bytes wait for the reader. */
	assert_int_equal(io_uring_wait_cqe_timeout(&ring, &cqe, &ts), -ETIME);
	memset(buf, 'b', n);
	shutdown(wr, SHUT_WR);
	assert_int_equal(tu_read_full(rd, got, (size_t)res), res);
	for (i = 0; i < (size_t)res; i++)
		changed += got[i] == 'b';
	printf("# %zu of %d bytes came out overwritten\n", changed, res);
	assert_true(changed > 0);
	ts.tv_sec = 5;
	ts.tv_nsec = 0;
	assert_int_equal(io_uring_wait_cqe_timeout(&ring, &cqe, &ts), 0);
	assert_true(cqe->flags & IORING_CQE_F_NOTIF);
	assert_int_equal(cqe->user_data, 7);
	io_uring_cqe_seen(&ring, cqe);
	io_uring_queue_exit(&ring);
	close(rd);
	close(wr);
	free(buf);
	free(got);
}
#endif

/* Sends below zcio_threshold(ZCIO_THR_MEM_SOCKET_URING) copy. */
static void uring_small_sends_copy(void **state)
{
	struct run r = { .total = 1 * TU_MIB, .msg = 1000, .flags = ZCIO_ZCSEND_URING };

	(void)state;
	need_send_zc();
	assert_true(zcio_threshold(ZCIO_THR_MEM_SOCKET_URING) > 1000);
	run_stream(&r);
	assert_int_equal(r.info.uring, 1);
	assert_int_equal(r.info.zc_sends, 0);
	assert_int_equal(r.st.path_bytes[ZCIO_PATH_COPY], r.total);
	assert_true(tu_has_reason(&r.st, ZCIO_WHY_SMALL));
}

/* info.wait_fd: the ring with POLLIN for SEND_ZC, the socket with 0
 * for MSG_ZEROCOPY; with ZCIO_F_COPY no ring is made. */
static void fd_names_ring_or_socket(void **state)
{
	struct zcio_zcsend *zs;
	struct zcio_zcsend_info info;
	struct zcio_opts copy = { .flags = ZCIO_F_COPY };
	short ev = -1;
	int rd, wr, fd;

	(void)state;
	tu_tcp_pair(&rd, &wr);
	assert_int_equal(zcio_zcsend_new(wr, 0, NULL, &zs), 0);
	assert_int_equal(completion_fd(zs, &ev), wr);
	assert_int_equal(ev, 0);
	zcio_zcsend_free(zs);
	assert_int_equal(zcio_zcsend_new(wr, ZCIO_ZCSEND_URING, &copy, &zs), 0);
	assert_int_equal(completion_fd(zs, &ev), wr);
	assert_int_equal(zcio_zcsend_info(zs, &info), 0);
	assert_int_equal(info.uring, 0);
	assert_int_equal(info.uring_errno, 0);
	zcio_zcsend_free(zs);
	if (have_send_zc) {
		assert_int_equal(zcio_zcsend_new(wr, ZCIO_ZCSEND_URING, NULL, &zs), 0);
		fd = completion_fd(zs, &ev);
		assert_true(fd >= 0 && fd != wr && fd != rd);
		assert_int_equal(ev, POLLIN);
		assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
		zcio_zcsend_free(zs);
	}
	close(rd);
	close(wr);
}

/* A peer that is gone: the result carries -EPIPE or -ECONNRESET, returned
 * as such, and no SIGPIPE (MSG_NOSIGNAL reaches the socket through the
 * ring too; this thread keeps SIGPIPE's default action). */
static void uring_peer_gone_is_an_error_not_sigpipe(void **state)
{
	struct zcio_zcsend *zs;
	struct zcio_zcsend_info info;
	char buf[65536];
	int rd, wr, i;
	int64_t r = 0;

	(void)state;
	need_send_zc();
	memset(buf, 'x', sizeof(buf));
	tu_tcp_pair(&rd, &wr);
	assert_int_equal(zcio_zcsend_new(wr, ZCIO_ZCSEND_ALWAYS | ZCIO_ZCSEND_URING, NULL, &zs), 0);
	close(rd);
	for (i = 0; i < 100; i++) {
		r = zcio_zcsend_send(zs, buf, sizeof(buf), (uint64_t)i, NULL);
		if (r < 0 && r != -EAGAIN)
			break;
		tu_sleep_us(1000);
	}
	assert_true(r == -EPIPE || r == -ECONNRESET);
	assert_int_equal(zcio_zcsend_info(zs, &info), 0);
	assert_int_equal(info.uring, 1);
	zcio_zcsend_free(zs);
	close(wr);
}

/* ---- the limit on pinned pages: ENOMEM from SEND_ZC ------------------------ */

/* Whether stats recorded a fallback for reason with errno err. */
static bool has_fallback(const struct zcio_stats *st, int reason, int err)
{
	uint32_t i, n = st->nfallbacks < ZCIO_STATS_FALLBACKS ? st->nfallbacks : ZCIO_STATS_FALLBACKS;

	for (i = 0; i < n; i++)
		if (st->fallback[i].reason == reason && st->fallback[i].err == err)
			return true;
	return false;
}

/*
 * For real: a child without CAP_IPC_LOCK (as root it becomes another uid)
 * and with RLIMIT_MEMLOCK 1 MiB makes the zcsend (the ring's creator is
 * the user charged: it must be made after the drop) and sends 16 MiB in
 * 128 KiB messages to a slow reader.  Every SEND_ZC request is charged its
 * pages plus two until its notification, so about seven fit; the next one
 * fails with -ENOMEM.  That send must be made by copying at once (a
 * writer waiting for memory to come back could wait forever), counted in
 * info.enobufs, and the parent must read every byte in order.  Exit: 0
 * pass, 77 skip (said on stdout), 1 fail (said on stderr).
 */
static void uring_memlock_limit_copies_instead_of_failing(void **state)
{
	struct run r = { .total = 16 * TU_MIB, .msg = 128 * 1024, .delay_us = 300,
			 .flags = ZCIO_ZCSEND_ALWAYS | ZCIO_ZCSEND_URING };
	uint8_t *expect = tu_zc_stream(r.total, r.msg, SEED0);
	struct tu_consumer c = { .expect = expect, .expect_len = r.total, .chunk = 32 * TU_KIB,
				 .delay_us = r.delay_us };
	int rd, wr, status;
	pid_t pid;

	(void)state;
	need_send_zc();
	tu_tcp_pair(&rd, &wr);
	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const char *e = tu_become_unprivileged(1 * TU_MIB);

		close(rd);
		if (e) {
			printf("# SKIP: %s\n", e);
			_exit(77);
		}
		e = send_stream(&r, wr);
		print_run(&r);
		if (!e && !r.info.uring) {
			printf("# SKIP: io_uring refused to an unprivileged user (errno %d)\n",
			       r.info.uring_errno);
			_exit(77);
		}
		if (!e && !r.info.enobufs)
			e = "SEND_ZC never ran into RLIMIT_MEMLOCK";
		if (!e && !has_fallback(&r.st, ZCIO_WHY_REFUSED, ENOMEM))
			e = "no fallback recorded as refused with ENOMEM";
		if (!e && (!r.info.zc_sends || !r.info.copy_sends))
			e = "expected both SEND_ZC and copied sends";
		if (!e && r.st.path_bytes[ZCIO_PATH_URING_SEND_ZC] + r.st.path_bytes[ZCIO_PATH_COPY] !=
				  r.total)
			e = "bytes by path do not add up";
		if (!e && r.info.completed != r.info.zc_sends)
			e = "a SEND_ZC was not completed";
		if (e)
			fprintf(stderr, "child: %s\n", e);
		_exit(e ? 1 : 0);
	}
	close(wr);
	c.fd = rd;
	tu_consumer_start(&c);
	tu_consumer_check(&c);
	close(rd);
	free(expect);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		skip();
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- io_uring unavailable: MSG_ZEROCOPY does the job -------------------------- */

/* The stream with zcio__uzc_new() failing as io_uring_setup() would with
 * err (EOPNOTSUPP: the probe lacks SEND_ZC). */
static void fallback_case(int err)
{
	struct run r = { .total = 8 * TU_MIB, .msg = 128 * 1024, .delay_us = 100,
			 .small_bufs = 64 * 1024, .flags = ZCIO_ZCSEND_ALWAYS | ZCIO_ZCSEND_URING };

	zcio__uzc_inject(err);
	run_stream(&r);
	zcio__uzc_inject(0);
	assert_int_equal(r.info.uring, 0);
	assert_int_equal(r.info.uring_errno, err);
	assert_int_equal(r.st.path_bytes[ZCIO_PATH_URING_SEND_ZC], 0);
	assert_int_equal(r.st.path_bytes[ZCIO_PATH_MSG_ZEROCOPY], r.total);
}

/* ENOSYS: a kernel without io_uring. */
static void no_io_uring_falls_back(void **state)
{
	(void)state;
	fallback_case(ENOSYS);
}

/* EPERM: kernel.io_uring_disabled, or a seccomp filter. */
static void io_uring_forbidden_falls_back(void **state)
{
	(void)state;
	fallback_case(EPERM);
}

/* ENOMEM: the ring's memory over RLIMIT_MEMLOCK (kernels before 5.12). */
static void io_uring_no_memory_falls_back(void **state)
{
	(void)state;
	fallback_case(ENOMEM);
}

/* EOPNOTSUPP: io_uring without SEND_ZC (before 6.0). */
static void no_send_zc_falls_back(void **state)
{
	(void)state;
	fallback_case(EOPNOTSUPP);
}

/* Any other failure of io_uring_setup is the caller's, and leaks nothing. */
static void other_setup_errors_are_returned(void **state)
{
	struct zcio_zcsend *zs = (void *)1;
	int rd, wr, before;

	(void)state;
	tu_tcp_pair(&rd, &wr);
	before = tu_count_fds();
	zcio__uzc_inject(EMFILE);
	assert_int_equal(zcio_zcsend_new(wr, ZCIO_ZCSEND_URING, NULL, &zs), -EMFILE);
	zcio__uzc_inject(0);
	assert_null(zs);
	assert_int_equal(tu_count_fds(), before);
	close(rd);
	close(wr);
}

/* ---- the same, from a real seccomp filter, in a child ------------------------ */


/*
 * The child sends the stream through a zcsend asked for SEND_ZC under a
 * filter that fails io_uring_setup with err; the parent reads and checks
 * every byte.  The child's exit: 0 fell back and sent everything by
 * MSG_ZEROCOPY, 77 no seccomp here, 1 anything else (said on stderr).
 */
static void seccomp_case(int err)
{
	struct run r = { .total = 8 * TU_MIB, .msg = 128 * 1024, .delay_us = 100,
			 .flags = ZCIO_ZCSEND_ALWAYS | ZCIO_ZCSEND_URING };
	uint8_t *expect = tu_zc_stream(r.total, r.msg, SEED0);
	struct tu_consumer c = { .expect = expect, .expect_len = r.total, .chunk = 32 * TU_KIB,
				 .delay_us = r.delay_us };
	int rd, wr, status;
	pid_t pid;

	tu_tcp_pair(&rd, &wr);
	set_bufs(rd, wr, 64 * 1024);
	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const char *e;

		close(rd);
		if (tu_deny(__NR_io_uring_setup, err) != 0)
			_exit(77);
		e = send_stream(&r, wr);
		if (!e && (r.info.uring != 0 || r.info.uring_errno != err))
			e = "did not fall back with the filter's errno";
		if (!e && r.st.path_bytes[ZCIO_PATH_MSG_ZEROCOPY] != r.total)
			e = "not every byte went by MSG_ZEROCOPY";
		if (e)
			fprintf(stderr, "child: %s (uring %d, errno %d)\n", e, r.info.uring,
				r.info.uring_errno);
		_exit(e ? 1 : 0);
	}
	close(wr);
	c.fd = rd;
	tu_consumer_start(&c);
	tu_consumer_check(&c);
	close(rd);
	free(expect);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		printf("# SKIP: seccomp filters unavailable here\n");
		skip();
	}
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void seccomp_enosys_falls_back(void **state)
{
	(void)state;
	seccomp_case(ENOSYS);
}

static void seccomp_eperm_falls_back(void **state)
{
	(void)state;
	seccomp_case(EPERM);
}

/* ---- lifetime ----------------------------------------------------------------- */

/* Each zcsend owns one ring fd, closed by zcio_zcsend_free(), also with
 * notifications still unread. */
static void no_fd_leak_over_300_zcsends(void **state)
{
	char buf[65536], sink[65536];
	int rd, wr, before, i;

	(void)state;
	need_send_zc();
	memset(buf, 'r', sizeof(buf));
	tu_tcp_pair(&rd, &wr);
	before = tu_count_fds();
	for (i = 0; i < 300; i++) {
		struct zcio_zcsend *zs;
		uint64_t cookie;

		assert_int_equal(zcio_zcsend_new(wr, ZCIO_ZCSEND_URING | ZCIO_ZCSEND_ALWAYS, NULL,
						 &zs), 0);
		assert_int_equal(tu_count_fds(), before + 1);
		assert_int_equal(zcio_zcsend_send(zs, buf, sizeof(buf), (uint64_t)i, NULL),
				 (int64_t)sizeof(buf));
		assert_int_equal(tu_read_full(rd, sink, sizeof(sink)), (ssize_t)sizeof(sink));
		if (i % 2 == 0) {
			/* half of them wait for their completion first */
			int tries;

			for (tries = 0; tries < 100 && zcio_zcsend_pending(zs); tries++) {
				short ev = 0;

				tu_wait_fd(completion_fd(zs, &ev), ev, 100);
				assert_true(zcio_zcsend_reap(zs, &cookie, 1, NULL) >= 0);
			}
			assert_int_equal(zcio_zcsend_pending(zs), 0);
			assert_int_equal(cookie, (uint64_t)i);
		}
		zcio_zcsend_free(zs);
	}
	assert_int_equal(tu_count_fds(), before);
	close(rd);
	close(wr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(uring_slow_reader_reuses_only_after_notification),
		cmocka_unit_test(uring_two_buffers_deep_send_queue),
		cmocka_unit_test(uring_short_sends_deliver_the_rest_in_order),
		cmocka_unit_test(uring_loopback_copied_accounting),
		cmocka_unit_test(uring_cookie_waits_for_the_notification),
#if defined(ZCIO_HAVE_LIBURING) && ZCIO_HAVE_LIBURING
		cmocka_unit_test(control_result_is_not_release),
#endif
		cmocka_unit_test(uring_small_sends_copy),
		cmocka_unit_test(fd_names_ring_or_socket),
		cmocka_unit_test(uring_peer_gone_is_an_error_not_sigpipe),
		cmocka_unit_test(uring_memlock_limit_copies_instead_of_failing),
		cmocka_unit_test(no_io_uring_falls_back),
		cmocka_unit_test(io_uring_forbidden_falls_back),
		cmocka_unit_test(io_uring_no_memory_falls_back),
		cmocka_unit_test(no_send_zc_falls_back),
		cmocka_unit_test(other_setup_errors_are_returned),
		cmocka_unit_test(seccomp_enosys_falls_back),
		cmocka_unit_test(seccomp_eperm_falls_back),
		cmocka_unit_test(no_fd_leak_over_300_zcsends),
	};
	struct zcio_features f;

	setenv("ZCIO_THRESHOLDS", "", 1);
	tu_init(300);
	if (zcio_probe(&f) == 0 && !(f.have & ZCIO_HAVE_MSG_ZEROCOPY)) {
		printf("1..0 # SKIP: no MSG_ZEROCOPY in this kernel (the fallback)\n");
		return 77;
	}
#if !defined(ZCIO_HAVE_LIBURING) || !ZCIO_HAVE_LIBURING
	snprintf(why_not, sizeof(why_not), "zcio built without liburing");
#else
	if (!(f.have & ZCIO_HAVE_IO_URING))
		snprintf(why_not, sizeof(why_not), "no io_uring here: %s", strerror(-f.uring_error));
	else if (!(f.uring_ops & ZCIO_URING_SEND_ZC))
		snprintf(why_not, sizeof(why_not), "io_uring without SEND_ZC (Linux 6.0+)");
	else
		have_send_zc = true;
#endif
	return cmocka_run_group_tests_name("zcsend_uring", tests, NULL, NULL);
}
