/*
 * test_zcsend_fixed.c - zcio_zcsend_register(): SEND_ZC from a registered
 * region (io_uring fixed buffers), sends outside it, the refusals that
 * leave sends unregistered, and what registration is charged.
 *
 * The writer (tu_zcsend.h) owns one region cut into NBUF slices.  Message k of the
 * stream is the pattern of sequence number k (tu_fill with seed SEED0 + k);
 * the writer writes it into slice k % nbuf, sends it (a short send: the
 * rest under the next cookie), and writes that slice again only after
 * zcio_zcsend_reap() has reported every cookie it was sent under.  A slow
 * reader checks every byte, so a slice written while the kernel still held
 * it shows up as another message's bytes.  info.fixed_sends and
 * fixed_bytes say which sends used the registered buffer.
 */
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "testutil.h"
#include "tu_seccomp.h"
#include "tu_unpriv.h"
#include "tu_zcsend.h"
#include "zcsend_uring.h"

#define NBUF TU_ZC_NBUF
#define SEED0 5000

static bool have_send_zc;
static char why_not[128];

static void need_send_zc(void)
{
	if (!have_send_zc) {
		printf("# SKIP: %s\n", why_not);
		skip();
	}
}

struct frun {
	size_t total, msg;
	int nbuf;                /* slices in rotation, 0: NBUF */
	unsigned delay_us;       /* the reader's pause per 32 KiB */
	int small_bufs;          /* SO_RCVBUF/SO_SNDBUF, 0: default */
	uint32_t flags;          /* of zcio_zcsend_new */
	uint8_t *region;         /* the slices, back to back; NULL: allocated */
	size_t reg_len;          /* registered from region, 0: nothing */
	/* results */
	int reg_rc;              /* what zcio_zcsend_register() returned */
	struct zcio_stats st;
	struct zcio_zcsend_info reg_info; /* right after registering */
	struct zcio_zcsend_info info;     /* at the end */
	uint64_t cookies, reaped;
	size_t slice_bytes[NBUF]; /* bytes sent from each slice */
};

/*
 * Make a zcsend on wr, register r->reg_len bytes of the region, and send
 * r->total bytes of the stream from its slices.  Returns NULL, or what went
 * wrong (no cmocka assertions: it also runs in forked children).
 */
static const char *send_slices(struct frun *r, int wr)
{
	static char err[160];
	struct tu_zc_writer *w = calloc(1, sizeof(*w));
	uint8_t *slices[NBUF];
	int nbuf = r->nbuf ? r->nbuf : NBUF, i, rc;
	bool own = !r->region;

	err[0] = 0;
	if (!w)
		return "calloc";
	w->st = &r->st;
	if (own)
		r->region = aligned_alloc(4096, (r->msg * (size_t)nbuf + 4095) / 4096 * 4096);
	for (i = 0; i < nbuf; i++)
		slices[i] = r->region + (size_t)i * r->msg;
	rc = zcio_zcsend_new(wr, r->flags, NULL, &w->zs);
	if (rc < 0) {
		snprintf(err, sizeof(err), "zcio_zcsend_new: %s", strerror(-rc));
		goto out;
	}
	r->reg_rc = r->reg_len ? zcio_zcsend_register(w->zs, r->region, r->reg_len) : 0;
	zcio_zcsend_info(w->zs, &r->reg_info);
	if (!tu_zc_send_stream(w, wr, slices, nbuf, r->total, r->msg, SEED0))
		snprintf(err, sizeof(err), "%s", w->err);
	r->cookies = w->cookies;
	r->reaped = w->reaped;
	memcpy(r->slice_bytes, w->buf_bytes, sizeof(r->slice_bytes));
	zcio_zcsend_info(w->zs, &r->info);
	zcio_zcsend_free(w->zs);
out:
	if (own) {
		free(r->region);
		r->region = NULL;
	}
	free(w);
	return err[0] ? err : NULL;
}

static void print_frun(const struct frun *r)
{
	tu_print_stats(&r->st);
	printf("# uring %d, registered %d (errno %d), zc sends %llu (fixed %llu, %llu bytes), copy sends %llu, completed %llu, enobufs %llu\n",
	       r->info.uring, r->reg_info.registered, r->reg_info.register_errno,
	       (unsigned long long)r->info.zc_sends, (unsigned long long)r->info.fixed_sends,
	       (unsigned long long)r->info.fixed_bytes, (unsigned long long)r->info.copy_sends,
	       (unsigned long long)r->info.completed, (unsigned long long)r->info.enobufs);
}

static void set_bufs(int rd, int wr, int size)
{
	if (size) {
		setsockopt(rd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
		setsockopt(wr, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	}
}

/* The stream over loopback TCP to a slow reader that checks every byte;
 * then what must hold of any run. */
static void run_fixed(struct frun *r)
{
	uint8_t *expect = tu_zc_stream(r->total, r->msg, SEED0);
	struct tu_consumer c = { .expect = expect, .expect_len = r->total, .chunk = 32 * TU_KIB,
				 .delay_us = r->delay_us };
	const char *err;
	int rd, wr;

	tu_tcp_pair(&rd, &wr);
	set_bufs(rd, wr, r->small_bufs);
	c.fd = rd;
	tu_consumer_start(&c);
	err = send_slices(r, wr);
	close(wr);
	tu_consumer_check(&c);
	close(rd);
	print_frun(r);
	free(expect);
	if (err)
		fail_msg("%s", err);
	assert_int_equal(r->reg_rc, 0);
	assert_int_equal(r->st.bytes, r->total);
	assert_int_equal(r->reaped, r->cookies);
	assert_int_equal(r->info.in_flight, 0);
	assert_int_equal(r->info.completed, r->info.zc_sends);
	assert_int_equal(r->info.zc_bytes + r->info.copy_bytes, r->total);
	assert_true(r->info.fixed_sends <= r->info.zc_sends);
	assert_true(r->info.fixed_bytes <= r->info.zc_bytes);
}

/* ---- fixed-buffer sends ------------------------------------------------------ */

/*
 * The whole ring registered: every send is a fixed-buffer SEND_ZC, the
 * slices are reused only after their cookies, and the slow reader (small
 * socket buffers: sends wait in the sender's queue, some are short) gets
 * every byte right.
 */
static void fixed_ring_every_send_fixed_every_byte_right(void **state)
{
	struct frun r = { .total = 24 * TU_MIB, .msg = 128 * 1024, .delay_us = 300,
			  .small_bufs = 64 * 1024, .flags = ZCIO_ZCSEND_ALWAYS | ZCIO_ZCSEND_URING };

	(void)state;
	need_send_zc();
	r.reg_len = r.msg * NBUF;
	run_fixed(&r);
	assert_int_equal(r.reg_info.registered, 1);
	assert_int_equal(r.reg_info.register_errno, 0);
	assert_int_equal(r.info.uring, 1);
	assert_int_equal(r.info.copy_sends, 0);
	assert_int_equal(r.info.fixed_sends, r.info.zc_sends);
	assert_int_equal(r.info.fixed_sends, r.cookies);
	assert_int_equal(r.info.fixed_bytes, r.total);
	assert_int_equal(r.st.path_bytes[ZCIO_PATH_URING_SEND_ZC], r.total);
	/* zcio_zcsend_free() unregistered it: nothing says otherwise, but a
	 * new zcsend can register the same memory again at once. */
}

/*
 * The region ends halfway through the last slice: every send from that
 * slice ends past it and goes unregistered (and still arrives right);
 * every other send is fixed.  The byte counts say exactly which.
 */
static void fixed_sends_past_the_region_end_go_unregistered(void **state)
{
	struct frun r = { .total = 16 * TU_MIB, .msg = 128 * 1024, .delay_us = 100,
			  .small_bufs = 64 * 1024, .flags = ZCIO_ZCSEND_ALWAYS | ZCIO_ZCSEND_URING };

	(void)state;
	need_send_zc();
	r.reg_len = r.msg * NBUF - r.msg / 2;
	run_fixed(&r);
	assert_int_equal(r.reg_info.registered, 1);
	assert_int_equal(r.info.copy_sends, 0);
	assert_true(r.slice_bytes[NBUF - 1] > 0);
	assert_int_equal(r.info.fixed_bytes, r.total - r.slice_bytes[NBUF - 1]);
	assert_true(r.info.fixed_sends > 0 && r.info.fixed_sends < r.info.zc_sends);
	assert_int_equal(r.st.path_bytes[ZCIO_PATH_URING_SEND_ZC], r.total);
}

/*
 * The control: a fixed-buffer send's pages are read when the bytes leave
 * the send queue, not when the call returns.  Overwrite the region after
 * the sends, before their cookies, with a reader that has not read yet,
 * and the reader sees some of the new bytes.  This is what makes the
 * tests above able to fail: a slice reused too early shows.
 */
static void control_fixed_send_reads_the_region_late(void **state)
{
	size_t n = 4 * TU_MIB, bytes = 0, changed = 0, i;
	uint8_t *region = aligned_alloc(4096, n), *got = malloc(n);
	struct zcio_zcsend *zs;
	struct zcio_zcsend_info info;
	int rd, wr, rcv = 64 * 1024;

	(void)state;
	need_send_zc();
	tu_tcp_pair(&rd, &wr);
	setsockopt(rd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	memset(region, 'a', n);
	assert_int_equal(zcio_zcsend_new(wr, ZCIO_ZCSEND_ALWAYS | ZCIO_ZCSEND_URING, NULL, &zs), 0);
	assert_int_equal(zcio_zcsend_register(zs, region, n), 0);
	while (bytes < n) {
		int64_t w = zcio_zcsend_send(zs, region + bytes, n - bytes, 0, NULL);

		if (w == -EAGAIN)
			break;
		assert_true(w > 0);
		bytes += (size_t)w;
	}
	assert_int_equal(zcio_zcsend_info(zs, &info), 0);
	assert_true(info.fixed_sends > 0);
	assert_int_equal(info.fixed_bytes, bytes);
	memset(region, 'b', n); /* against the rule, on purpose */
	shutdown(wr, SHUT_WR);
	assert_int_equal(tu_read_full(rd, got, n), (ssize_t)bytes);
	for (i = 0; i < bytes; i++)
		changed += got[i] == 'b';
	printf("# %zu of %zu bytes sent from the registered region came out overwritten\n",
	       changed, bytes);
	assert_true(changed > 0);
	zcio_zcsend_free(zs);
	close(rd);
	close(wr);
	free(region);
	free(got);
}

/* ---- the calls around it ----------------------------------------------------- */

/* Unregister, register again, arguments, and -EBUSY while sends are in
 * flight (a reader that does not read keeps them there). */
static void register_replace_unregister_busy(void **state)
{
	size_t msg = 64 * 1024, nmsg = 64, bytes = 0;
	uint8_t *region = aligned_alloc(4096, msg * nmsg), *got = malloc(msg * nmsg);
	uint8_t *other = aligned_alloc(4096, msg);
	struct zcio_zcsend *zs;
	struct zcio_zcsend_info info;
	uint64_t cookies[64], sent = 0, reaped = 0, fixed_before;
	int rd, wr, n, tries;

	(void)state;
	need_send_zc();
	tu_tcp_pair(&rd, &wr);
	set_bufs(rd, wr, 64 * 1024);
	tu_fill(region, msg * nmsg, SEED0);
	assert_int_equal(zcio_zcsend_new(wr, ZCIO_ZCSEND_ALWAYS | ZCIO_ZCSEND_URING, NULL, &zs), 0);
	assert_int_equal(zcio_zcsend_register(NULL, region, msg), -EINVAL);
	assert_int_equal(zcio_zcsend_register(zs, NULL, msg), -EINVAL);
	assert_int_equal(zcio_zcsend_register(zs, region, ZCIO_ZCSEND_REGISTER_MAX + 1), -EINVAL);
	assert_int_equal(zcio_zcsend_info(zs, &info), 0);
	assert_int_equal(info.registered, 0);
	/* Register one region, then another in its place. */
	assert_int_equal(zcio_zcsend_register(zs, other, msg), 0);
	assert_int_equal(zcio_zcsend_register(zs, region, msg * nmsg), 0);
	assert_int_equal(zcio_zcsend_info(zs, &info), 0);
	assert_int_equal(info.registered, 1);
	assert_int_equal(info.register_errno, 0);
	/* Fill the socket: the last sends wait in the sender's queue. */
	while (bytes < msg * nmsg) {
		int64_t w = zcio_zcsend_send(zs, region + bytes, msg - bytes % msg, sent, NULL);

		if (w == -EAGAIN)
			break;
		assert_true(w > 0);
		bytes += (size_t)w;
		sent++;
	}
	assert_true(bytes < msg * nmsg);
	assert_true(zcio_zcsend_pending(zs) > 0);
	assert_int_equal(zcio_zcsend_register(zs, NULL, 0), -EBUSY);
	assert_int_equal(zcio_zcsend_register(zs, other, msg), -EBUSY);
	assert_int_equal(zcio_zcsend_info(zs, &info), 0);
	assert_int_equal(info.registered, 1); /* unchanged */
	assert_int_equal(info.fixed_sends, sent);
	/* Read everything, reap everything: now it may change. */
	shutdown(wr, SHUT_WR);
	assert_int_equal(tu_read_full(rd, got, msg * nmsg), (ssize_t)bytes);
	assert_memory_equal(got, region, bytes);
	for (tries = 0; tries < 500 && reaped < sent; tries++) {
		tu_zc_wait_completion(zs);
		n = zcio_zcsend_reap(zs, cookies, 64, NULL);
		assert_true(n >= 0);
		reaped += (uint64_t)n;
	}
	assert_int_equal(reaped, sent);
	assert_int_equal(zcio_zcsend_register(zs, NULL, 0), 0);
	assert_int_equal(zcio_zcsend_info(zs, &info), 0);
	assert_int_equal(info.registered, 0);
	assert_int_equal(info.register_errno, 0);
	fixed_before = info.fixed_sends;
	zcio_zcsend_free(zs);
	close(rd);
	close(wr);

	/* Unregistered: the same region sends as before, not fixed. */
	tu_tcp_pair(&rd, &wr);
	assert_int_equal(zcio_zcsend_new(wr, ZCIO_ZCSEND_ALWAYS | ZCIO_ZCSEND_URING, NULL, &zs), 0);
	assert_int_equal(zcio_zcsend_register(zs, region, msg), 0);
	assert_int_equal(zcio_zcsend_register(zs, NULL, 0), 0);
	assert_int_equal(zcio_zcsend_send(zs, region, msg, 0, NULL), (int64_t)msg);
	assert_int_equal(tu_read_full(rd, got, msg), (ssize_t)msg);
	assert_memory_equal(got, region, msg);
	assert_int_equal(zcio_zcsend_info(zs, &info), 0);
	assert_int_equal(info.fixed_sends, 0);
	assert_int_equal(info.zc_sends, 1);
	printf("# %llu fixed sends before unregistering, 0 after\n",
	       (unsigned long long)fixed_before);
	zcio_zcsend_free(zs);
	close(rd);
	close(wr);
	free(region);
	free(other);
	free(got);
}

/* A zcsend without io_uring has nothing to register: 0, and info says
 * why (EOPNOTSUPP); its sends are as ever. */
static void without_io_uring_register_is_harmless(void **state)
{
	static const uint32_t flags[] = { 0, ZCIO_ZCSEND_URING, ZCIO_ZCSEND_URING };
	struct zcio_opts copy = { .flags = ZCIO_F_COPY };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		struct zcio_zcsend *zs;
		struct zcio_zcsend_info info;
		uint8_t *buf = aligned_alloc(4096, 65536), got[65536];
		int rd, wr;

		tu_tcp_pair(&rd, &wr);
		/* 0: MSG_ZEROCOPY; 1: ZCIO_F_COPY; 2: io_uring refused */
		if (i == 2)
			zcio__uzc_inject(ENOSYS);
		assert_int_equal(zcio_zcsend_new(wr, flags[i], i == 1 ? &copy : NULL, &zs), 0);
		zcio__uzc_inject(0);
		assert_int_equal(zcio_zcsend_register(zs, buf, 65536), 0);
		assert_int_equal(zcio_zcsend_info(zs, &info), 0);
		assert_int_equal(info.uring, 0);
		assert_int_equal(info.registered, 0);
		assert_int_equal(info.register_errno, EOPNOTSUPP);
		tu_fill(buf, 65536, SEED0 + i);
		assert_int_equal(zcio_zcsend_send(zs, buf, 65536, 1, NULL), 65536);
		assert_int_equal(tu_read_full(rd, got, sizeof(got)), (ssize_t)sizeof(got));
		assert_memory_equal(got, buf, sizeof(got));
		assert_int_equal(zcio_zcsend_info(zs, &info), 0);
		assert_int_equal(info.fixed_sends, 0);
		assert_int_equal(zcio_zcsend_register(zs, NULL, 0), 0);
		assert_int_equal(zcio_zcsend_info(zs, &info), 0);
		assert_int_equal(info.register_errno, 0);
		zcio_zcsend_free(zs);
		close(rd);
		close(wr);
		free(buf);
	}
}

/* ---- refusals: the sends go unregistered --------------------------------------- */

/* Registration failing as io_uring_register() would with err: 0 all the
 * same, info says err, and the stream goes by unregistered SEND_ZC. */
static void refusal_case(int err)
{
	struct frun r = { .total = 4 * TU_MIB, .msg = 128 * 1024, .delay_us = 100,
			  .small_bufs = 64 * 1024, .flags = ZCIO_ZCSEND_ALWAYS | ZCIO_ZCSEND_URING };

	need_send_zc();
	r.reg_len = r.msg * NBUF;
	zcio__uzc_inject_register(err);
	run_fixed(&r);
	zcio__uzc_inject_register(0);
	assert_int_equal(r.reg_info.registered, 0);
	assert_int_equal(r.reg_info.register_errno, err);
	assert_int_equal(r.info.fixed_sends, 0);
	assert_int_equal(r.info.zc_sends, r.cookies);
	assert_int_equal(r.st.path_bytes[ZCIO_PATH_URING_SEND_ZC], r.total);
}

/* ENOMEM: over RLIMIT_MEMLOCK without CAP_IPC_LOCK (real below). */
static void refused_enomem_sends_unregistered(void **state)
{
	(void)state;
	refusal_case(ENOMEM);
}

/* EFAULT: pages that cannot be pinned for long (real below). */
static void refused_efault_sends_unregistered(void **state)
{
	(void)state;
	refusal_case(EFAULT);
}

/* EOPNOTSUPP: file-backed memory, as older kernels say it. */
static void refused_eopnotsupp_sends_unregistered(void **state)
{
	(void)state;
	refusal_case(EOPNOTSUPP);
}

/* EPERM, ENOSYS: seccomp on io_uring_register (real below). */
static void refused_eperm_sends_unregistered(void **state)
{
	(void)state;
	refusal_case(EPERM);
}

static void refused_enosys_sends_unregistered(void **state)
{
	(void)state;
	refusal_case(ENOSYS);
}

/* Any other failure is returned, and nothing is registered. */
static void other_register_errors_are_returned(void **state)
{
	struct zcio_zcsend *zs;
	struct zcio_zcsend_info info;
	uint8_t *buf = aligned_alloc(4096, 65536);
	int rd, wr;

	(void)state;
	need_send_zc();
	tu_tcp_pair(&rd, &wr);
	assert_int_equal(zcio_zcsend_new(wr, ZCIO_ZCSEND_URING, NULL, &zs), 0);
	zcio__uzc_inject_register(EINVAL);
	assert_int_equal(zcio_zcsend_register(zs, buf, 65536), -EINVAL);
	zcio__uzc_inject_register(0);
	assert_int_equal(zcio_zcsend_info(zs, &info), 0);
	assert_int_equal(info.registered, 0);
	zcio_zcsend_free(zs);
	close(rd);
	close(wr);
	free(buf);
}

/*
 * For real: a shared mapping of a regular file on the disk filesystem
 * (not tmpfs) cannot be pinned for long, and registration says so; the
 * stream still goes out of that mapping, unregistered, byte for byte.
 */
static void file_backed_region_sends_unregistered(void **state)
{
	struct frun r = { .total = 4 * TU_MIB, .msg = 128 * 1024, .delay_us = 100,
			  .small_bufs = 64 * 1024, .flags = ZCIO_ZCSEND_ALWAYS | ZCIO_ZCSEND_URING };
	char path[512];
	size_t size = r.msg * NBUF;
	int fd, rc;

	(void)state;
	need_send_zc();
	tu_path(path, sizeof(path), "region");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	/* Blocks allocated now: a write fault into a sparse shared mapping
	 * that finds the disk full (for a moment) is a SIGBUS. */
	rc = posix_fallocate(fd, 0, (off_t)size);
	if (rc != 0) {
		close(fd);
		unlink(path);
		printf("# SKIP: posix_fallocate %s: %s\n", path, strerror(rc));
		skip();
	}
	r.region = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(r.region != MAP_FAILED);
	r.reg_len = size;
	run_fixed(&r);
	munmap(r.region, size);
	close(fd);
	unlink(path);
	if (r.reg_info.registered) {
		printf("# SKIP: %s took a long-term pin of a shared file mapping (tmpfs?)\n", path);
		skip();
	}
	assert_true(r.reg_info.register_errno == EFAULT ||
		    r.reg_info.register_errno == EOPNOTSUPP);
	assert_int_equal(r.info.fixed_sends, 0);
	assert_int_equal(r.st.path_bytes[ZCIO_PATH_URING_SEND_ZC], r.total);
}

/* Run fn in a forked child that sends r's stream over a TCP connection
 * whose reader (here) checks every byte.  fn returns NULL or what failed;
 * it may exit 77 to skip (saying why on stdout). */
static void in_child(struct frun *r, const char *(*fn)(struct frun *r, int wr))
{
	uint8_t *expect = tu_zc_stream(r->total, r->msg, SEED0);
	struct tu_consumer c = { .expect = expect, .expect_len = r->total, .chunk = 32 * TU_KIB,
				 .delay_us = r->delay_us };
	int rd, wr, status;
	pid_t pid;

	tu_tcp_pair(&rd, &wr);
	set_bufs(rd, wr, r->small_bufs);
	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const char *e;

		close(rd);
		e = fn(r, wr);
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

/*
 * The child of seccomp_register_denied: the zcsend is made first (liburing
 * probes SEND_ZC through io_uring_register), and a first region
 * registered; then the filter.  Registering again must unregister the
 * first region, which the filter refuses too: the kernel keeps those
 * pages, so no send may use them any more (the caller may put other
 * memory at those addresses); the stream from that very region goes
 * unregistered.
 */
static const char *child_seccomp(struct frun *r, int wr)
{
	struct zcio_zcsend *zs;
	struct zcio_zcsend_info info;
	uint8_t *buf = aligned_alloc(4096, r->total);
	size_t off = 0;
	int rc;

	if (zcio_zcsend_new(wr, r->flags, NULL, &zs) != 0)
		return "zcio_zcsend_new";
	if (zcio_zcsend_register(zs, buf, r->total) != 0 || zcio_zcsend_info(zs, &info) != 0 ||
	    !info.registered)
		return "registration before the filter";
	if (tu_deny(__NR_io_uring_register, EPERM) != 0) {
		printf("# SKIP: seccomp filters unavailable here\n");
		_exit(77);
	}
	for (size_t k = 0; k * r->msg < r->total; k++)
		tu_fill(buf + k * r->msg, r->msg, SEED0 + k);
	rc = zcio_zcsend_register(zs, buf, r->total);
	zcio_zcsend_info(zs, &info);
	if (rc != 0 || info.registered || info.register_errno != EPERM)
		return "registration under the filter did not fall back with EPERM";
	/* One buffer, never rewritten: no need to wait for cookies. */
	while (off < r->total) {
		int64_t n = zcio_zcsend_send(zs, buf + off, r->total - off, 0, NULL);

		if (n == -EAGAIN) {
			tu_wait_fd(wr, POLLOUT, 1000);
			(void)zcio_zcsend_reap(zs, NULL, 0, NULL);
			continue;
		}
		if (n <= 0)
			return "send failed";
		off += (size_t)n;
	}
	zcio_zcsend_info(zs, &info);
	printf("# under the filter: registered %d (errno %d), zc sends %llu, fixed %llu\n",
	       info.registered, info.register_errno, (unsigned long long)info.zc_sends,
	       (unsigned long long)info.fixed_sends);
	if (!info.uring || !info.zc_sends || info.fixed_sends)
		return "expected unregistered SEND_ZC";
	/* Drop the zcsend with sends maybe in flight: the buffer is not
	 * touched again before exit. */
	zcio_zcsend_free(zs);
	return NULL;
}

/* For real: a seccomp filter that fails io_uring_register with EPERM. */
static void seccomp_register_denied_sends_unregistered(void **state)
{
	struct frun r = { .total = 4 * TU_MIB, .msg = 128 * 1024, .delay_us = 100,
			  .flags = ZCIO_ZCSEND_ALWAYS | ZCIO_ZCSEND_URING };

	(void)state;
	need_send_zc();
	in_child(&r, child_seccomp);
}

/*
 * The child of memlock_charged_at_registration_not_per_send, with
 * RLIMIT_MEMLOCK 1 MiB and no CAP_IPC_LOCK: a 768 KiB region registers;
 * a second zcsend's 768 KiB does not (ENOMEM: the charge is the user's)
 * until the first zcsend is freed (zcio_zcsend_free unregistered it at
 * once).  Then the stream from the registered region to a slow reader:
 * fixed sends are not charged again, so none meets ENOMEM, where
 * unregistered ones do (test_zcsend_uring's
 * uring_memlock_limit_copies_instead_of_failing).
 */
static const char *child_memlock(struct frun *r, int wr)
{
	const char *e = tu_become_unprivileged(1 * TU_MIB);
	struct zcio_zcsend *a, *b;
	struct zcio_zcsend_info ia, ib;
	size_t size = r->msg * NBUF;
	uint8_t *ra = aligned_alloc(4096, size);

	if (e) {
		printf("# SKIP: %s\n", e);
		_exit(77);
	}
	if (zcio_zcsend_new(wr, r->flags, NULL, &a) != 0 ||
	    zcio_zcsend_new(wr, r->flags, NULL, &b) != 0)
		return "zcio_zcsend_new";
	zcio_zcsend_info(a, &ia);
	if (!ia.uring) {
		printf("# SKIP: io_uring refused to an unprivileged user (errno %d)\n",
		       ia.uring_errno);
		_exit(77);
	}
	r->region = aligned_alloc(4096, size);
	if (zcio_zcsend_register(a, ra, size) != 0 || zcio_zcsend_register(b, r->region, size) != 0)
		return "register";
	zcio_zcsend_info(a, &ia);
	zcio_zcsend_info(b, &ib);
	printf("# as uid %d with RLIMIT_MEMLOCK 1 MiB: first %zu KiB registered %d (errno %d), second registered %d (errno %d)\n",
	       (int)getuid(), size / 1024, ia.registered, ia.register_errno, ib.registered,
	       ib.register_errno);
	if (!ia.registered)
		return "the first region did not register";
	if (ib.registered || ib.register_errno != ENOMEM)
		return "the second region registered over the limit";
	zcio_zcsend_free(a);
	if (zcio_zcsend_register(b, r->region, size) != 0)
		return "register again";
	zcio_zcsend_info(b, &ib);
	printf("# after freeing the first zcsend: second registered %d (errno %d)\n", ib.registered,
	       ib.register_errno);
	if (!ib.registered)
		return "zcio_zcsend_free did not give the first region's charge back";
	zcio_zcsend_free(b);
	free(ra);
	/* Now the stream, through a zcsend of its own. */
	r->reg_len = size;
	e = send_slices(r, wr);
	print_frun(r);
	if (e)
		return e;
	if (!r->reg_info.registered)
		return "the stream's region did not register";
	if (r->info.enobufs)
		return "a fixed-buffer send met ENOMEM";
	if (r->info.fixed_bytes != r->total || r->info.copy_sends)
		return "not every byte went by fixed-buffer SEND_ZC";
	return NULL;
}

static void memlock_charged_at_registration_not_per_send(void **state)
{
	struct frun r = { .total = 16 * TU_MIB, .msg = 96 * 1024, .delay_us = 300,
			  .flags = ZCIO_ZCSEND_ALWAYS | ZCIO_ZCSEND_URING };

	(void)state;
	need_send_zc();
	in_child(&r, child_memlock);
}

/* ---- lifetime ------------------------------------------------------------------ */

/* Each zcsend owns one ring fd, closed by zcio_zcsend_free() with its
 * region registered, whether its sends were reaped or not. */
static void no_fd_leak_with_registered_regions(void **state)
{
	uint8_t *buf = aligned_alloc(4096, 65536), sink[65536];
	int rd, wr, before, i;

	(void)state;
	need_send_zc();
	tu_fill(buf, 65536, SEED0);
	tu_tcp_pair(&rd, &wr);
	before = tu_count_fds();
	for (i = 0; i < 200; i++) {
		struct zcio_zcsend *zs;
		struct zcio_zcsend_info info;

		assert_int_equal(zcio_zcsend_new(wr, ZCIO_ZCSEND_URING | ZCIO_ZCSEND_ALWAYS, NULL,
						 &zs), 0);
		assert_int_equal(zcio_zcsend_register(zs, buf, 65536), 0);
		assert_int_equal(tu_count_fds(), before + 1);
		assert_int_equal(zcio_zcsend_send(zs, buf, 65536, (uint64_t)i, NULL), 65536);
		assert_int_equal(tu_read_full(rd, sink, sizeof(sink)), (ssize_t)sizeof(sink));
		assert_memory_equal(sink, buf, sizeof(sink));
		assert_int_equal(zcio_zcsend_info(zs, &info), 0);
		assert_int_equal(info.fixed_sends, 1);
		if (i % 2 == 0) {
			uint64_t cookie = ~0ull;
			int tries;

			for (tries = 0; tries < 100 && zcio_zcsend_pending(zs); tries++) {
				tu_zc_wait_completion(zs);
				assert_true(zcio_zcsend_reap(zs, &cookie, 1, NULL) >= 0);
			}
			assert_int_equal(cookie, (uint64_t)i);
		}
		zcio_zcsend_free(zs);
	}
	assert_int_equal(tu_count_fds(), before);
	close(rd);
	close(wr);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fixed_ring_every_send_fixed_every_byte_right),
		cmocka_unit_test(fixed_sends_past_the_region_end_go_unregistered),
		cmocka_unit_test(control_fixed_send_reads_the_region_late),
		cmocka_unit_test(register_replace_unregister_busy),
		cmocka_unit_test(without_io_uring_register_is_harmless),
		cmocka_unit_test(refused_enomem_sends_unregistered),
		cmocka_unit_test(refused_efault_sends_unregistered),
		cmocka_unit_test(refused_eopnotsupp_sends_unregistered),
		cmocka_unit_test(refused_eperm_sends_unregistered),
		cmocka_unit_test(refused_enosys_sends_unregistered),
		cmocka_unit_test(other_register_errors_are_returned),
		cmocka_unit_test(file_backed_region_sends_unregistered),
		cmocka_unit_test(seccomp_register_denied_sends_unregistered),
		cmocka_unit_test(memlock_charged_at_registration_not_per_send),
		cmocka_unit_test(no_fd_leak_with_registered_regions),
	};
	struct zcio_features f;

	setenv("ZCIO_THRESHOLDS", "", 1);
	tu_init(300);
	if (zcio_probe(&f) == 0 && !(f.have & ZCIO_HAVE_MSG_ZEROCOPY)) {
		printf("1..0 # SKIP: no MSG_ZEROCOPY in this kernel\n");
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
	return cmocka_run_group_tests_name("zcsend_fixed", tests, NULL, NULL);
}
