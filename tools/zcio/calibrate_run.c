/*
 * calibrate_run.c - the measurements of `zcio calibrate`.
 *
 * Crossovers: for each route and transfer size, transfers with zero-copy
 * allowed (copy_threshold 1 / ZCIO_ZCSEND_ALWAYS) and with copying forced
 * (ZCIO_F_COPY) run in short timed runs, alternating A B, B A in pairs; the
 * median over the pairs of the time ratio zero-copy / copy decides.  Bursts
 * of other load spoil a few pairs, not the median.  The crossover of a
 * route is the smallest size from which zero-copy is at least as fast at
 * every larger size measured; "never" when it loses at the largest.
 * Memory sources are touched: the application writes every byte of every
 * buffer before it is sent, as real ones do.
 *
 * send-sizes: message sizes over one TCP connection per method and size,
 * each method on its own, "untouched" (the same bytes resent) and
 * "touched" (every buffer written first; MSG_ZEROCOPY and io_uring SEND_ZC
 * then have to wait for a buffer's completion before writing it again, and
 * move on to another buffer while it is in flight).
 *
 * recv: one sender (MSG_ZEROCOPY, whose pages the kernel copies on local
 * delivery into fresh whole pages, which TCP_ZEROCOPY_RECEIVE can map),
 * received with read() or with zcio_zcrecv, every byte read by the
 * receiver in both cases.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "calibrate.h"

#define NBUF 4                        /* buffers in rotation for zero-copy sends */
#define FILE_SIZE (16u << 20)         /* source file of the file routes */
#define FILE_WRAP (64ull << 20)       /* a destination file restarts here */
#define MIN_ITERS 4
#define MAX_ITERS 20000

void cal_clock_now(struct cal_clock *c)
{
	struct timespec ts;
	struct rusage ru;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	c->wall = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	c->thread_cpu = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
	getrusage(RUSAGE_SELF, &ru);
	c->proc_cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
		      (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* ---- route contexts ---------------------------------------------------- */

struct cal_ctx {
	const struct cal_net *net;
	char why[128];
	int file;                     /* source or destination file */
	int pipe_rd, pipe_wr;
	int snd, rcv;
	struct cal_drain drain;
	bool draining;
	/* socket -> socket: a feeder thread keeps the first connection full */
	int feed_snd, feed_rcv;
	pthread_t feeder;
	bool feeding;
	volatile bool feed_stop;
	uint64_t off;                 /* next offset in the source file */
	/* memory routes */
	struct zcio_ring *ring[2];    /* [1] zero-copy, [0] copying */
	size_t ring_for;              /* transfer size the rings were made for */
	struct zcio_zcsend *zs[2];
	unsigned char *buf[NBUF];
	size_t bufsize;
	unsigned turn;
	unsigned char fill;
	uint64_t last[2][NBUF];       /* per mode: sends counted when buffer b
	                                 was last sent */
};

/* Sends made and completions reaped, of one zcsend.  Completions come in
 * send order, so a buffer whose last send was number k is free again once
 * k completions have been reaped. */
struct zc_count {
	uint64_t sent, reaped;
};

static struct zc_count ms_count[2];

static void ctx_init(struct cal_ctx *c, const struct cal_net *net)
{
	memset(c, 0, sizeof(*c));
	c->net = net;
	c->file = c->pipe_rd = c->pipe_wr = c->snd = c->rcv = c->feed_snd = c->feed_rcv = -1;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void ctx_release(struct cal_ctx *c)
{
	int i;

	for (i = 0; i < 2; i++) {
		zcio_ring_free(c->ring[i]);
		c->ring[i] = NULL;
		zcio_zcsend_free(c->zs[i]);
		c->zs[i] = NULL;
	}
	if (c->feeding) {
		c->feed_stop = true;
		close_fd(&c->feed_rcv); /* the feeder's send fails and it ends */
		pthread_join(c->feeder, NULL);
		c->feeding = false;
	}
	close_fd(&c->feed_snd);
	close_fd(&c->feed_rcv);
	close_fd(&c->snd);
	close_fd(&c->pipe_wr);
	if (c->draining) {
		cal_drain_stop(&c->drain);
		c->draining = false;
		c->rcv = c->pipe_rd = -1; /* closed by the drain */
	}
	close_fd(&c->rcv);
	close_fd(&c->pipe_rd);
	close_fd(&c->file);
	for (i = 0; i < NBUF; i++) {
		free(c->buf[i]);
		c->buf[i] = NULL;
	}
}

static int fail_why(struct cal_ctx *c, int err, const char *what)
{
	snprintf(c->why, sizeof(c->why), "%s: %s", what, strerror(-err));
	return err;
}

/* An unlinked scratch file in /var/tmp (a disk, not tmpfs, like tests). */
static int scratch_file(struct cal_ctx *c, uint64_t fill_bytes)
{
	char path[] = "/var/tmp/zcio-calibrate-XXXXXX";
	unsigned char *chunk;
	uint64_t done = 0;

	c->file = mkostemp(path, O_CLOEXEC);
	if (c->file < 0)
		return fail_why(c, -errno, "scratch file");
	unlink(path);
	if (!fill_bytes)
		return 0;
	chunk = malloc(1u << 20);
	if (!chunk)
		return fail_why(c, -ENOMEM, "scratch file");
	for (size_t i = 0; i < (1u << 20); i++)
		chunk[i] = (unsigned char)(i * 131 + (i >> 12));
	while (done < fill_bytes) {
		ssize_t w = pwrite(c->file, chunk, 1u << 20, (off_t)done);

		if (w <= 0)
			break;
		done += (uint64_t)w;
	}
	free(chunk);
	return done >= fill_bytes ? 0 : fail_why(c, -EIO, "scratch file");
}

static int drained_pipe(struct cal_ctx *c)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) != 0)
		return fail_why(c, -errno, "pipe");
	fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
	c->pipe_rd = fds[0];
	c->pipe_wr = fds[1];
	if (cal_drain_start(&c->drain, c->pipe_rd) != 0)
		return fail_why(c, -EAGAIN, "drain thread");
	c->draining = true;
	return 0;
}

static int drained_connection(struct cal_ctx *c, int *snd)
{
	int r = cal_connect(c->net, 0, snd, &c->rcv);

	if (r < 0)
		return fail_why(c, r, "connect");
	if (cal_drain_start(&c->drain, c->rcv) != 0)
		return fail_why(c, -EAGAIN, "drain thread");
	c->draining = true;
	return 0;
}

static int buffers(struct cal_ctx *c, size_t size, int n)
{
	int i;

	c->bufsize = (size + 4095) / 4096 * 4096;
	for (i = 0; i < n; i++) {
		c->buf[i] = aligned_alloc(4096, c->bufsize);
		if (!c->buf[i])
			return fail_why(c, -ENOMEM, "buffers");
		memset(c->buf[i], 'x', c->bufsize);
	}
	return 0;
}

/* zcio_copy() of size bytes of the source file at the rolling offset. */
static int copy_from_file(struct cal_ctx *c, int out, uint64_t size, bool zc)
{
	struct zcio_opts o = { .flags = ZCIO_F_OFFSET | (zc ? 0 : ZCIO_F_COPY),
			       .copy_threshold = 1 };
	struct zcio_stats st = { 0 };
	int64_t r;

	if (c->off + size > FILE_SIZE)
		c->off = 0; /* the offset of a smaller size may leave too little */
	o.in_offset = c->off;
	r = zcio_copy(c->file, out, size, &o, &st);

	if (r != (int64_t)size) {
		char text[256];

		zcio_stats_format(&st, text, sizeof(text));
		fprintf(stderr, "zcio: calibrate: zcio_copy at %" PRIu64 ": %" PRId64 " of %" PRIu64
			" bytes (%s): %s\n", c->off, r, size, zc ? "zero-copy" : "copy", text);
		return r < 0 ? (int)r : -EIO;
	}
	c->off += size;
	return 0;
}

/* file -> pipe */
static int fp_setup(struct cal_ctx *c, uint64_t max)
{
	int r = scratch_file(c, FILE_SIZE > max ? FILE_SIZE : max);

	return r < 0 ? r : drained_pipe(c);
}

static int fp_op(struct cal_ctx *c, uint64_t size, bool zc)
{
	return copy_from_file(c, c->pipe_wr, size, zc);
}

/* file -> socket */
static int fs_setup(struct cal_ctx *c, uint64_t max)
{
	int r = scratch_file(c, FILE_SIZE > max ? FILE_SIZE : max);

	return r < 0 ? r : drained_connection(c, &c->snd);
}

static int fs_op(struct cal_ctx *c, uint64_t size, bool zc)
{
	return copy_from_file(c, c->snd, size, zc);
}

/* socket -> socket: a feeder fills connection 1, zcio_copy moves size
 * bytes from it to connection 2, which a drain empties. */
static void *feeder_main(void *arg)
{
	struct cal_ctx *c = arg;
	static char chunk[256 * 1024];

	memset(chunk, 'f', sizeof(chunk));
	while (!c->feed_stop) {
		if (send(c->feed_snd, chunk, sizeof(chunk), MSG_NOSIGNAL) < 0 && errno != EINTR)
			break;
	}
	return NULL;
}

static int ss_setup(struct cal_ctx *c, uint64_t max)
{
	int r;

	(void)max;
	r = cal_connect(c->net, 0, &c->feed_snd, &c->feed_rcv);
	if (r < 0)
		return fail_why(c, r, "connect");
	if (pthread_create(&c->feeder, NULL, feeder_main, c) != 0)
		return fail_why(c, -EAGAIN, "feeder thread");
	c->feeding = true;
	return drained_connection(c, &c->snd);
}

static int ss_op(struct cal_ctx *c, uint64_t size, bool zc)
{
	struct zcio_opts o = { .flags = zc ? 0 : ZCIO_F_COPY, .copy_threshold = 1 };
	int64_t r = zcio_copy(c->feed_rcv, c->snd, size, &o, NULL);

	return r == (int64_t)size ? 0 : (r < 0 ? (int)r : -EIO);
}

/* memory -> pipe / file through a zcio ring; the writer touches every
 * byte it commits.  Rings are made per transfer size: a span can be at
 * most half the ring. */
static int ring_op(struct cal_ctx *c, int out, uint64_t size, bool zc)
{
	struct zcio_ring **rp = &c->ring[zc];
	void *span;
	int64_t n;

	if (c->ring_for != size) {
		int i;

		for (i = 0; i < 2; i++) {
			zcio_ring_free(c->ring[i]);
			c->ring[i] = NULL;
		}
		c->ring_for = size;
	}
	if (!*rp) {
		/* The drain thread read()s: vmsplice() is safe into its pipe. */
		struct zcio_opts o = { .flags = zc ? ZCIO_F_VMSPLICE : ZCIO_F_COPY,
				       .copy_threshold = 1 };
		int r = zcio_ring_new(out, 2 * size > (2u << 20) ? 2 * size : 0, &o, rp);

		if (r < 0)
			return r;
	}
	while ((n = zcio_ring_reserve(*rp, size, &span)) == -EAGAIN) {
		struct zcio_stats st = { 0 };
		int64_t p = zcio_ring_pump(*rp, 0, &st);

		if (p == -EAGAIN) {
			struct pollfd pf = { .fd = out,
					     .events = st.wait == ZCIO_WAIT_COMPLETION ? 0 : POLLOUT };

			poll(&pf, 1, 1000);
		} else if (p < 0) {
			return (int)p;
		}
	}
	if (n < 0)
		return (int)n;
	memset(span, c->fill++, size);
	zcio_ring_commit(*rp, size);
	n = zcio_ring_pump(*rp, 0, NULL);
	return n == -EAGAIN ? 0 : (int)n;
}

static int ring_finish(struct cal_ctx *c, bool zc)
{
	return c->ring[zc] ? zcio_ring_flush(c->ring[zc], 10000, NULL) : 0;
}

static int mp_setup(struct cal_ctx *c, uint64_t max)
{
	(void)max;
	return drained_pipe(c);
}

static int mp_op(struct cal_ctx *c, uint64_t size, bool zc)
{
	return ring_op(c, c->pipe_wr, size, zc);
}

static int mf_setup(struct cal_ctx *c, uint64_t max)
{
	(void)max;
	return scratch_file(c, 0);
}

static int mf_op(struct cal_ctx *c, uint64_t size, bool zc)
{
	int r = ring_op(c, c->file, size, zc);

	/* Keep the file small: start over once everything is written. */
	if (r == 0 && lseek(c->file, 0, SEEK_CUR) > (off_t)FILE_WRAP) {
		r = ring_finish(c, zc);
		lseek(c->file, 0, SEEK_SET);
	}
	return r;
}

/* memory -> socket: MSG_ZEROCOPY from NBUF buffers in rotation, each
 * written again only after its completions, against send() of one. */
static int reap_some(struct zcio_zcsend *zs, struct zc_count *k)
{
	uint64_t done[64];
	int n;

	do {
		n = zcio_zcsend_reap(zs, done, 64, NULL);
		if (n < 0)
			return n;
		k->reaped += (uint64_t)n;
	} while (n == 64);
	return 0;
}

/* Send all of buf with zs, polling on EAGAIN. */
static int zc_send_all(int snd, struct zcio_zcsend *zs, struct zc_count *k,
		       const unsigned char *buf, uint64_t size)
{
	uint64_t off = 0;

	while (off < size) {
		int64_t n = zcio_zcsend_send(zs, buf + off, size - off, k->sent, NULL);

		if (n == -EAGAIN) {
			struct pollfd pf = { .fd = snd, .events = POLLOUT };

			poll(&pf, 1, 1000);
			if (reap_some(zs, k) < 0)
				return -EIO;
			continue;
		}
		if (n < 0)
			return (int)n;
		k->sent++;
		off += (uint64_t)n;
	}
	return 0;
}

/* Wait until buffer b's sends have completed (sent count `last`), on the
 * fd the zcsend names: the socket (MSG_ZEROCOPY) or its io_uring (SEND_ZC). */
static int wait_free(int snd, struct zcio_zcsend *zs, struct zc_count *k, uint64_t last)
{
	struct zcio_zcsend_info info;
	struct pollfd pf = { .fd = snd, .events = 0 };

	if (zcio_zcsend_info(zs, &info) == 0) {
		pf.fd = info.wait_fd;
		pf.events = (short)info.wait_events;
	}
	while (k->reaped < last) {
		if (reap_some(zs, k) < 0)
			return -EIO;
		if (k->reaped < last)
			poll(&pf, 1, 1000);
	}
	return 0;
}

/* zs[1] sends with zero-copy (zc_flags), zs[0] copies, on one connection. */
static int zs_setup(struct cal_ctx *c, uint64_t max, uint32_t zc_flags)
{
	struct zcio_opts copy = { .flags = ZCIO_F_COPY };
	int r = buffers(c, max, NBUF);

	if (r == 0)
		r = drained_connection(c, &c->snd);
	if (r == 0)
		r = zcio_zcsend_new(c->snd, ZCIO_ZCSEND_ALWAYS | zc_flags, NULL, &c->zs[1]);
	if (r == 0)
		r = zcio_zcsend_new(c->snd, 0, &copy, &c->zs[0]);
	memset(ms_count, 0, sizeof(ms_count));
	return r < 0 ? fail_why(c, r, "zcsend") : 0;
}

static int ms_setup(struct cal_ctx *c, uint64_t max)
{
	return zs_setup(c, max, 0);
}

static int ms_op(struct cal_ctx *c, uint64_t size, bool zc)
{
	/* Both zcsends share the socket, but only the zero-copy one passes
	 * MSG_ZEROCOPY, so the kernel's numbering is its alone. */
	struct zcio_zcsend *zs = c->zs[zc];
	struct zc_count *k = &ms_count[zc];
	unsigned b = zc ? c->turn++ % NBUF : 0;
	int r = wait_free(c->snd, zs, k, c->last[zc][b]);

	if (r < 0)
		return r;
	memset(c->buf[b], c->fill++, size);
	r = zc_send_all(c->snd, zs, k, c->buf[b], size);
	c->last[zc][b] = k->sent;
	return r < 0 ? r : reap_some(zs, k);
}

static int ms_finish(struct cal_ctx *c, bool zc)
{
	/* The run ends when every buffer may be written again. */
	return wait_free(c->snd, c->zs[zc], &ms_count[zc], ms_count[zc].sent);
}

/* A receiver on this host gets a copy of every zero-copy page, made on
 * delivery: then the runs compared a late copy with an early one, not
 * zero-copy with copying, and say nothing about a real device. */
static const char *zc_verdict(struct cal_ctx *c, const char *what)
{
	static char why[128];
	struct zcio_zcsend_info info;

	if (!c->zs[1] || zcio_zcsend_info(c->zs[1], &info) < 0 || !info.completed) {
		snprintf(why, sizeof(why), "no %s completion seen", what);
		return why;
	}
	if (info.completed_copied < info.completed)
		return NULL;
	snprintf(why, sizeof(why),
		 "all %" PRIu64 " completions said COPIED (the receiver is on this host)",
		 info.completed);
	return why;
}

static const char *ms_verdict(struct cal_ctx *c)
{
	return zc_verdict(c, "MSG_ZEROCOPY");
}

/* memory -> socket through io_uring SEND_ZC (ZCIO_ZCSEND_URING): the same
 * runs as MSG_ZEROCOPY, the same buffers in rotation, each written again
 * only after its notification.  Where the zcsend fell back to MSG_ZEROCOPY
 * the route is not measured: it would measure MSG_ZEROCOPY again. */
static int uring_setup(struct cal_ctx *c, uint64_t max)
{
	struct zcio_zcsend_info info;
	int r = zs_setup(c, max, ZCIO_ZCSEND_URING);

	if (r < 0)
		return r;
	if (zcio_zcsend_info(c->zs[1], &info) < 0 || !info.uring) {
		snprintf(c->why, sizeof(c->why), "io_uring SEND_ZC unavailable: %s",
			 strerror(info.uring_errno ? info.uring_errno : EOPNOTSUPP));
		return -EOPNOTSUPP;
	}
	return 0;
}

static const char *uring_verdict(struct cal_ctx *c)
{
	return zc_verdict(c, "SEND_ZC");
}

struct cal_route cal_routes[] = {
	{ .key = "file_pipe", .label = "file -> pipe", .zc_name = "splice",
	  .copy_name = "read/write", .setup = fp_setup, .op = fp_op },
	{ .key = "file_socket", .label = "file -> socket", .zc_name = "sendfile",
	  .copy_name = "read/write", .network = true, .setup = fs_setup, .op = fs_op },
	{ .key = "socket_socket", .label = "socket -> socket", .zc_name = "splice via pipe",
	  .copy_name = "read/write", .network = true, .setup = ss_setup, .op = ss_op },
	{ .key = "memory_pipe", .label = "memory -> pipe", .zc_name = "vmsplice (ring)",
	  .copy_name = "write (ring)", .setup = mp_setup, .op = mp_op, .finish = ring_finish },
	{ .key = "memory_file", .label = "memory -> file", .zc_name = "vmsplice+splice (ring)",
	  .copy_name = "write (ring)", .setup = mf_setup, .op = mf_op, .finish = ring_finish },
	{ .key = "memory_socket", .label = "memory -> socket", .zc_name = "MSG_ZEROCOPY",
	  .copy_name = "send", .network = true, .setup = ms_setup, .op = ms_op,
	  .finish = ms_finish, .verdict = ms_verdict },
	{ .key = "memory_socket_uring", .label = "memory -> socket", .zc_name = "io_uring SEND_ZC",
	  .copy_name = "send", .network = true, .setup = uring_setup, .op = ms_op,
	  .finish = ms_finish, .verdict = uring_verdict },
};
const int cal_nroutes = sizeof(cal_routes) / sizeof(cal_routes[0]);

/* ---- timing ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	if (n <= 0)
		return NAN;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Repeat transfers of size for about `seconds`.  Fills ns per transfer
 * and process CPU seconds per GiB. */
static int timed_run(struct cal_ctx *c, const struct cal_route *rt, uint64_t size, bool zc,
		     double seconds, double *ns, double *cpu)
{
	struct cal_clock t0, t1;
	unsigned n = 0;
	int r = 0;

	cal_clock_now(&t0);
	do {
		r = rt->op(c, size, zc);
		if (r < 0)
			return r;
		n++;
		if (n % 4 == 0 || n < MIN_ITERS)
			cal_clock_now(&t1);
	} while (n < MAX_ITERS && (n < MIN_ITERS || t1.wall - t0.wall < seconds));
	if (rt->finish) {
		r = rt->finish(c, zc);
		if (r < 0)
			return r;
	}
	cal_clock_now(&t1);
	*ns = (t1.wall - t0.wall) * 1e9 / n;
	*cpu = (t1.proc_cpu - t0.proc_cpu) / ((double)n * (double)size / CAL_GIB);
	return 0;
}

static void measure_route(const struct cal_config *cfg, struct cal_route *rt, bool verbose)
{
	struct cal_ctx c;
	uint64_t max = cfg->sizes[cfg->nsizes - 1];
	int i, p, r;

	ctx_init(&c, &cfg->net);
	rt->npoints = 0;
	rt->measured = false;
	rt->threshold = ZCIO_THRESHOLD_NEVER;
	if (rt->skip) {
		snprintf(rt->why, sizeof(rt->why), "not selected");
		return;
	}
	r = rt->setup(&c, max);
	if (r < 0) {
		snprintf(rt->why, sizeof(rt->why), "%s", c.why[0] ? c.why : strerror(-r));
		ctx_release(&c);
		if (verbose)
			fprintf(stderr, "zcio: calibrate: %s (%s): not measured: %s\n", rt->label,
				rt->key, rt->why);
		return;
	}
	for (i = 0; i < cfg->nsizes; i++) {
		struct cal_point *pt = &rt->points[rt->npoints++];
		double ratio[64], zns[64], cns[64], zcpu[64], ccpu[64];
		int np = cfg->pairs < 64 ? cfg->pairs : 64;

		memset(pt, 0, sizeof(*pt));
		pt->size = cfg->sizes[i];
		/* Warm up both ways (page cache, socket buffers, rings). */
		r = timed_run(&c, rt, pt->size, true, cfg->run_seconds / 4, &zns[0], &zcpu[0]);
		if (r == 0)
			r = timed_run(&c, rt, pt->size, false, cfg->run_seconds / 4, &cns[0], &ccpu[0]);
		for (p = 0; r == 0 && p < np; p++) {
			bool zc_first = p % 2 == 0;

			r = timed_run(&c, rt, pt->size, zc_first, cfg->run_seconds,
				      zc_first ? &zns[p] : &cns[p], zc_first ? &zcpu[p] : &ccpu[p]);
			if (r == 0)
				r = timed_run(&c, rt, pt->size, !zc_first, cfg->run_seconds,
					      zc_first ? &cns[p] : &zns[p],
					      zc_first ? &ccpu[p] : &zcpu[p]);
			if (r == 0)
				ratio[p] = zns[p] / cns[p];
		}
		if (r < 0) {
			snprintf(pt->note, sizeof(pt->note), "%s", strerror(-r));
			if (verbose)
				fprintf(stderr, "zcio: calibrate: %s %llu: %s\n", rt->label,
					(unsigned long long)pt->size, pt->note);
			break;
		}
		pt->ratio = median(ratio, np);
		pt->zc_ns = median(zns, np);
		pt->copy_ns = median(cns, np);
		pt->zc_cpu = median(zcpu, np);
		pt->copy_cpu = median(ccpu, np);
		pt->ok = true;
		if (verbose)
			fprintf(stderr, "zcio: calibrate: %-16s %-22s %8llu B: %s/%s time %.3f\n",
				rt->label, rt->zc_name, (unsigned long long)pt->size, rt->zc_name,
				rt->copy_name, pt->ratio);
	}
	rt->unusable = false;
	if (rt->verdict) {
		const char *why = rt->verdict(&c);

		if (why) {
			rt->unusable = true;
			snprintf(rt->why, sizeof(rt->why), "%s", why);
		}
	}
	ctx_release(&c);
	/* The crossover: from the largest size down, as long as zero-copy
	 * keeps winning (or ties). */
	rt->measured = rt->npoints > 0 && rt->points[rt->npoints - 1].ok;
	if (!rt->measured && !rt->why[0])
		snprintf(rt->why, sizeof(rt->why), "%s", rt->npoints ? rt->points[rt->npoints - 1].note : "no sizes");
	for (i = rt->npoints - 1; rt->measured && i >= 0; i--) {
		if (!rt->points[i].ok || rt->points[i].ratio > 1.0)
			break;
		rt->threshold = rt->points[i].size;
	}
}

void cal_measure_crossovers(const struct cal_config *cfg, bool verbose)
{
	int i;

	for (i = 0; i < cal_nroutes; i++)
		measure_route(cfg, &cal_routes[i], verbose);
}

/* ---- send-sizes ------------------------------------------------------- */

const char *const cal_send_methods[CAL_SEND_METHODS] = {
	[SM_WRITE] = "write",
	[SM_VMSPLICE] = "vmsplice",
	[SM_RING] = "ring",
	[SM_MSG_ZEROCOPY] = "msg_zerocopy",
	[SM_AUTO] = "auto",
	[SM_SEND_ZC] = "send_zc",
	[SM_SEND_ZC_FIXED] = "send_zc_fixed",
};

struct sender {
	int snd;
	int pipe[2];
	unsigned char *area;       /* the NBUF buffers, back to back */
	unsigned char *buf[NBUF];
	size_t size;
	bool touched;
	unsigned turn;
	unsigned char fill;
	struct zcio_zcsend *zs;
	struct zcio_ring *ring;
	struct zcio_stats st;
	struct zc_count k;
	uint64_t last[NBUF];
};

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* vmsplice() the message into a pipe and splice() it to the socket.  No
 * reuse rule: the socket keeps references to the pages after splice()
 * returns, so a touched buffer may change in flight.  Shown for its
 * speed, next to the safe methods. */
static int vmsplice_all(struct sender *s, const unsigned char *p, size_t n)
{
	while (n) {
		struct iovec iov = { .iov_base = (void *)p, .iov_len = n };
		ssize_t v = vmsplice(s->pipe[1], &iov, 1, 0);
		ssize_t left;

		if (v < 0 && errno == EINTR)
			continue;
		if (v <= 0)
			return v < 0 ? -errno : -EIO;
		for (left = v; left > 0;) {
			ssize_t m = splice(s->pipe[0], NULL, s->snd, NULL, (size_t)left, SPLICE_F_MORE);

			if (m < 0 && errno == EINTR)
				continue;
			if (m <= 0)
				return m < 0 ? -errno : -EIO;
			left -= m;
		}
		p += v;
		n -= (size_t)v;
	}
	return 0;
}

static int zs_message(struct sender *s)
{
	unsigned b = 0;
	int r;

	if (s->touched) {
		/* Write the buffer written last again if all its sends have
		 * completed (a copied send completes at once), as an
		 * application's free list would hand it out: it is still warm
		 * in the cache, as write()'s single buffer is.  Otherwise move
		 * on to the next one, once its completions are in. */
		b = s->turn;
		if (s->k.reaped < s->last[b]) {
			b = s->turn = (b + 1) % NBUF;
			r = wait_free(s->snd, s->zs, &s->k, s->last[b]);
			if (r < 0)
				return r;
		}
		memset(s->buf[b], s->fill++, s->size);
	}
	r = zc_send_all(s->snd, s->zs, &s->k, s->buf[b], s->size);
	s->last[b] = s->k.sent;
	return r == 0 ? reap_some(s->zs, &s->k) : r;
}

static int ring_message(struct sender *s)
{
	void *span;
	int64_t n;

	while ((n = zcio_ring_reserve(s->ring, s->size, &span)) == -EAGAIN) {
		int64_t p = zcio_ring_pump(s->ring, 0, &s->st);

		if (p == -EAGAIN) {
			struct pollfd pf = { .fd = s->snd,
					     .events = s->st.wait == ZCIO_WAIT_COMPLETION ? 0 : POLLOUT };

			poll(&pf, 1, 1000);
		} else if (p < 0) {
			return (int)p;
		}
	}
	if (n < 0)
		return (int)n;
	/* Untouched: the span keeps whatever bytes it held. */
	if (s->touched)
		memset(span, s->fill++, s->size);
	zcio_ring_commit(s->ring, s->size);
	n = zcio_ring_pump(s->ring, 0, &s->st);
	return n == -EAGAIN || n >= 0 ? 0 : (int)n;
}

static int send_message(struct sender *s, int method)
{
	switch (method) {
	case SM_WRITE:
		if (s->touched)
			memset(s->buf[0], s->fill++, s->size);
		return write_all(s->snd, s->buf[0], s->size);
	case SM_VMSPLICE:
		if (s->touched)
			memset(s->buf[0], s->fill++, s->size);
		return vmsplice_all(s, s->buf[0], s->size);
	case SM_RING:
		return ring_message(s);
	default:
		return zs_message(s);
	}
}

static void send_row(const struct cal_config *cfg, int method, uint64_t size, bool touched,
		     struct cal_send_row *row)
{
	struct sender s;
	struct cal_drain drain;
	struct cal_clock t0, t1;
	uint64_t bytes = 0;
	size_t stride;
	int rcv = -1, r, i;
	unsigned n = 0;
	bool draining;

	memset(&s, 0, sizeof(s));
	memset(row, 0, sizeof(*row));
	row->method = cal_send_methods[method];
	row->size = size;
	row->touched = touched;
	s.size = size;
	s.touched = touched;
	s.pipe[0] = s.pipe[1] = -1;
	r = cal_connect(&cfg->net, 0, &s.snd, &rcv);
	if (r < 0) {
		snprintf(row->note, sizeof(row->note), "connect: %s", strerror(-r));
		return;
	}
	stride = (size + 4095) / 4096 * 4096;
	s.area = aligned_alloc(4096, NBUF * stride);
	if (!s.area) {
		snprintf(row->note, sizeof(row->note), "out of memory");
		close(s.snd);
		close(rcv);
		return;
	}
	memset(s.area, 'm', NBUF * stride);
	for (i = 0; i < NBUF; i++)
		s.buf[i] = s.area + (size_t)i * stride;
	r = cal_drain_start(&drain, rcv);
	draining = r == 0;
	if (!draining)
		close(rcv);
	if (r == 0 && method == SM_VMSPLICE) {
		if (pipe2(s.pipe, O_CLOEXEC) != 0)
			r = -errno;
		else
			fcntl(s.pipe[1], F_SETPIPE_SZ, 1 << 20);
	}
	if (r == 0 && method == SM_RING)
		r = zcio_ring_new(s.snd, 2 * size > (2u << 20) ? 2 * size : 0, NULL, &s.ring);
	if (r == 0 && method >= SM_MSG_ZEROCOPY)
		r = zcio_zcsend_new(s.snd,
				    method == SM_MSG_ZEROCOPY ? ZCIO_ZCSEND_ALWAYS :
				    method == SM_AUTO ? 0 : ZCIO_ZCSEND_ALWAYS | ZCIO_ZCSEND_URING,
				    NULL, &s.zs);
	if (r == 0 && method == SM_SEND_ZC_FIXED)
		r = zcio_zcsend_register(s.zs, s.area, NBUF * stride);
	if (r == 0 && (method == SM_SEND_ZC || method == SM_SEND_ZC_FIXED)) {
		struct zcio_zcsend_info info;

		/* Fallen back to MSG_ZEROCOPY: that is the msg_zerocopy row;
		 * unregistered SEND_ZC is the send_zc row. */
		zcio_zcsend_info(s.zs, &info);
		if (!info.uring) {
			snprintf(row->note, sizeof(row->note), "io_uring SEND_ZC unavailable: %s",
				 strerror(info.uring_errno ? info.uring_errno : EOPNOTSUPP));
			r = -EOPNOTSUPP;
		} else if (method == SM_SEND_ZC_FIXED && !info.registered) {
			snprintf(row->note, sizeof(row->note), "buffers not registered: %s",
				 strerror(info.register_errno ? info.register_errno : EOPNOTSUPP));
			r = -EOPNOTSUPP;
		}
	}
	cal_clock_now(&t0);
	t1 = t0;
	while (r == 0 && (n < MIN_ITERS || t1.wall - t0.wall < cfg->send_seconds) && n < 10000000) {
		r = send_message(&s, method);
		bytes += size;
		if (++n % 8 == 0)
			cal_clock_now(&t1);
	}
	/* The run ends when every byte is handed over and every buffer may
	 * be written again. */
	if (r == 0 && s.ring)
		r = zcio_ring_flush(s.ring, 10000, &s.st);
	if (r == 0 && s.zs)
		r = wait_free(s.snd, s.zs, &s.k, s.k.sent);
	cal_clock_now(&t1);
	if (r == 0) {
		row->ok = true;
		row->mib_s = (double)bytes / (1 << 20) / (t1.wall - t0.wall);
		row->sender_cpu = (t1.thread_cpu - t0.thread_cpu) / ((double)bytes / CAL_GIB);
		row->proc_cpu = (t1.proc_cpu - t0.proc_cpu) / ((double)bytes / CAL_GIB);
	} else if (!row->note[0]) {
		snprintf(row->note, sizeof(row->note), "%s", strerror(-r));
	}
	if (s.zs) {
		struct zcio_zcsend_info info;

		zcio_zcsend_info(s.zs, &info);
		row->zc_sends = info.zc_sends;
		row->completions = info.completed;
		row->copied = info.completed_copied;
		row->enobufs = info.enobufs;
		row->fixed_sends = info.fixed_sends;
		if (!row->note[0] && info.off == ZCIO_ZCSEND_OFF_COPIED)
			snprintf(row->note, sizeof(row->note), "zero-copy off after COPIED");
	}
	if (s.ring && !row->note[0])
		snprintf(row->note, sizeof(row->note), "%.0f%% by MSG_ZEROCOPY",
			 s.st.bytes ? 100.0 * (double)s.st.path_bytes[ZCIO_PATH_MSG_ZEROCOPY] / (double)s.st.bytes : 0.0);
	if (method == 1 && touched && !row->note[0])
		snprintf(row->note, sizeof(row->note), "unsafe: buffer rewritten in flight");
	zcio_ring_free(s.ring);
	zcio_zcsend_free(s.zs);
	close(s.snd);
	if (draining)
		cal_drain_stop(&drain);
	if (s.pipe[0] >= 0) {
		close(s.pipe[0]);
		close(s.pipe[1]);
	}
	free(s.area);
}

/* Fold `reps` runs of one row into rows[0]: medians of the rates and
 * CPU times, counts of the last run; a row is ok if most runs were. */
static void fold(struct cal_send_row *runs, int reps, struct cal_send_row *out)
{
	double mib[CAL_MAX_REPEAT], scpu[CAL_MAX_REPEAT], pcpu[CAL_MAX_REPEAT];
	int ok = 0, i;

	for (i = 0; i < reps; i++) {
		if (!runs[i].ok)
			continue;
		mib[ok] = runs[i].mib_s;
		scpu[ok] = runs[i].sender_cpu;
		pcpu[ok] = runs[i].proc_cpu;
		ok++;
	}
	*out = runs[reps - 1];
	out->nruns = reps;
	for (i = 0; i < reps; i++)
		out->run_mib[i] = runs[i].ok ? runs[i].mib_s : NAN;
	out->vs_write = out->vs_best = NAN;
	out->best = NULL;
	if (ok * 2 <= reps) {
		out->ok = false;
		for (i = 0; i < reps && !out->note[0]; i++)
			snprintf(out->note, sizeof(out->note), "%s", runs[i].note);
		return;
	}
	out->ok = true;
	out->mib_s = median(mib, ok);
	out->sender_cpu = median(scpu, ok);
	out->proc_cpu = median(pcpu, ok);
}

/* The median over the repetitions of a's MiB/s over b's, pairing runs of
 * the same repetition; NaN when no repetition has both. */
static double paired_ratio(const struct cal_send_row *a, const struct cal_send_row *b)
{
	double q[CAL_MAX_REPEAT];
	int i, k = 0;

	for (i = 0; i < a->nruns && i < b->nruns; i++) {
		if (a->run_mib[i] > 0 && b->run_mib[i] > 0)
			q[k++] = a->run_mib[i] / b->run_mib[i];
	}
	return k ? median(q, k) : NAN;
}

/* Fill vs_write, vs_best and best of one group: the CAL_SEND_METHODS rows
 * of one size and one touched setting, in method order. */
static void compare_group(struct cal_send_row *g)
{
	const struct cal_send_row *best = NULL;
	int m;

	for (m = 0; m < CAL_SEND_METHODS; m++) {
		/* vmsplice to a socket has no reuse rule (its buffer may change
		 * in flight), and auto is the one compared: neither is a
		 * candidate for the best safe fixed method. */
		if (m == SM_VMSPLICE || m == SM_AUTO || !g[m].ok)
			continue;
		if (!best || g[m].mib_s > best->mib_s)
			best = &g[m];
	}
	for (m = 0; m < CAL_SEND_METHODS; m++)
		g[m].vs_write = g[SM_WRITE].ok && g[m].ok ? paired_ratio(&g[m], &g[SM_WRITE]) : NAN;
	if (best && g[SM_AUTO].ok) {
		g[SM_AUTO].vs_best = paired_ratio(&g[SM_AUTO], best);
		g[SM_AUTO].best = best->method;
	}
}

int cal_send_sizes(const struct cal_config *cfg, struct cal_send_row *rows, int max, bool verbose)
{
	static const uint64_t full[] = { 64, 256, 1024, 4096, 16384, 65536, 262144, 1 << 20, 4 << 20 };
	static const uint64_t quick[] = { 64, 65536, 1 << 20 };
	static struct cal_send_row runs[128][CAL_MAX_REPEAT];
	const uint64_t *sizes = cfg->quick ? quick : full;
	int nsizes = cfg->quick ? 3 : 9, n = 0, m, i, t, rep;
	int reps = cfg->repeat < 1 ? 1 : cfg->repeat > CAL_MAX_REPEAT ? CAL_MAX_REPEAT : cfg->repeat;
	cpu_set_t saved;
	bool pinned;

	if (max > 128)
		max = 128;
	pinned = cal_pin_begin(&saved) == 0;
	/* Every row once, then every row again...: slow phases of the machine
	 * spread over all rows instead of spoiling a few. */
	for (rep = 0; rep < reps; rep++) {
		n = 0;
		for (i = 0; i < nsizes; i++) {
			for (t = 0; t < 2 && n + CAL_SEND_METHODS <= max; t++) {
				for (m = 0; m < CAL_SEND_METHODS; m++) {
					/* Each repetition starts with another method, so
					 * none always runs first or last in its group. */
					int mm = (m + rep) % CAL_SEND_METHODS;
					struct cal_send_row *r = &runs[n + mm][rep];

					send_row(cfg, mm, sizes[i], t == 1, r);
					if (verbose && r->ok)
						fprintf(stderr, "zcio: calibrate: send %-12s %8llu B %-9s %9.1f MiB/s  sender %.3f s/GiB\n",
							r->method, (unsigned long long)sizes[i],
							t ? "touched" : "untouched", r->mib_s, r->sender_cpu);
				}
				n += CAL_SEND_METHODS;
			}
		}
	}
	if (pinned)
		cal_pin_end(&saved);
	for (i = 0; i < n; i++)
		fold(runs[i], reps, &rows[i]);
	for (i = 0; i + CAL_SEND_METHODS <= n; i += CAL_SEND_METHODS)
		compare_group(&rows[i]);
	return n;
}

/* ---- recv ------------------------------------------------------------- */

struct recv_sender {
	int snd;
	volatile bool stop;
	pthread_t th;
};

static void *recv_sender_main(void *arg)
{
	struct recv_sender *rs = arg;
	struct zcio_zcsend *zs;
	struct zc_count k = { 0 };
	size_t size = 1u << 20, i;
	unsigned char *buf = aligned_alloc(4096, size);

	if (!buf || zcio_zcsend_new(rs->snd, ZCIO_ZCSEND_ALWAYS, NULL, &zs) < 0) {
		free(buf);
		shutdown(rs->snd, SHUT_WR);
		return NULL;
	}
	for (i = 0; i < size; i++)
		buf[i] = (unsigned char)(i * 7);
	/* The same bytes again and again: nothing is written in flight. */
	while (!rs->stop) {
		if (zc_send_all(rs->snd, zs, &k, buf, size) < 0 || reap_some(zs, &k) < 0)
			break;
	}
	shutdown(rs->snd, SHUT_WR);
	(void)wait_free(rs->snd, zs, &k, k.sent);
	zcio_zcsend_free(zs);
	free(buf);
	return NULL;
}

/* What a receiver does with its bytes: read every one of them. */
static uint64_t consume(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t x = 0, v;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&v, b + i, 8);
		x ^= v;
	}
	for (; i < n; i++)
		x ^= b[i];
	return x;
}

static void recv_row(const struct cal_config *cfg, bool zero_copy, struct cal_recv_row *row)
{
	struct recv_sender rs = { 0 };
	struct zcio_zcrecv *zr = NULL;
	struct zcio_stats st = { 0 };
	struct cal_clock t0, t1;
	uint64_t bytes = 0, sink = 0;
	unsigned calls = 0;
	unsigned char *buf = malloc(1u << 20);
	int rcv = -1, r;

	memset(row, 0, sizeof(*row));
	row->method = zero_copy ? "zerocopy-receive" : "read";
	r = buf ? cal_connect(&cfg->net, 0, &rs.snd, &rcv) : -ENOMEM;
	if (r == 0 && zero_copy)
		r = zcio_zcrecv_new(rcv, NULL, &zr);
	if (r == 0)
		r = -pthread_create(&rs.th, NULL, recv_sender_main, &rs);
	if (r < 0) {
		snprintf(row->note, sizeof(row->note), "%s", strerror(-r));
		if (rcv >= 0)
			close(rcv);
		free(buf);
		return;
	}
	cal_clock_now(&t0);
	t1 = t0;
	for (;;) {
		const void *p;
		int64_t n;

		if (!rs.stop && t1.wall - t0.wall >= 2 * cfg->send_seconds) {
			rs.stop = true;
			cal_clock_now(&t1); /* the measured part ends here */
			row->mib_s = (double)bytes / (1 << 20) / (t1.wall - t0.wall);
			row->receiver_cpu = (t1.thread_cpu - t0.thread_cpu) / ((double)bytes / CAL_GIB);
			row->proc_cpu = (t1.proc_cpu - t0.proc_cpu) / ((double)bytes / CAL_GIB);
			row->mapped_pct = 100.0 * (double)st.path_bytes[ZCIO_PATH_ZEROCOPY_RECV] /
					  (double)(st.bytes ? st.bytes : 1);
		}
		if (zero_copy) {
			n = zcio_zcrecv_next(zr, &p, 0, &st);
		} else {
			n = read(rcv, buf, 1u << 20);
			p = buf;
			if (n < 0)
				n = -errno;
		}
		if (n == -EINTR)
			continue;
		if (n <= 0) {
			r = (int)n;
			break;
		}
		sink ^= consume(p, (size_t)n);
		if (!rs.stop) {
			bytes += (uint64_t)n;
			if (++calls % 16 == 0)
				cal_clock_now(&t1);
		}
	}
	pthread_join(rs.th, NULL);
	row->ok = r == 0 && bytes > 0;
	if (r < 0)
		snprintf(row->note, sizeof(row->note), "%s", strerror(-r));
	else if (!zero_copy)
		snprintf(row->note, sizeof(row->note), "checksum %016llx", (unsigned long long)sink);
	zcio_zcrecv_free(zr);
	close(rcv);
	close(rs.snd);
	free(buf);
}

int cal_recv(const struct cal_config *cfg, struct cal_recv_row *rows, int max, bool verbose)
{
	int n = 0, i;

	for (i = 0; i < 2 && n < max; i++) {
		recv_row(cfg, i == 1, &rows[n]);
		if (verbose && rows[n].ok)
			fprintf(stderr, "zcio: calibrate: recv %-16s %9.1f MiB/s  receiver %.3f s/GiB  mapped %.0f%%\n",
				rows[n].method, rows[n].mib_s, rows[n].receiver_cpu, rows[n].mapped_pct);
		n++;
	}
	return n;
}

/* ---- udp-egress ------------------------------------------------------- */

/*
 * Connected UDP to a port nobody listens on: the datagrams cross the
 * device and are dropped on the other side before reaching any socket, so
 * no local delivery copies them.  (ICMP "port unreachable" may come back
 * as ECONNREFUSED on a later send: that send is simply retried.)
 * Datagrams must fit the device's MTU: fragmenting copies, and checksums
 * must be offloaded for the kernel to send pages as they are.
 */
static void udp_row(const struct cal_config *cfg, bool zc, uint64_t size, bool touched,
		    struct cal_send_row *row)
{
	struct zcio_zcsend *zs = NULL;
	struct zcio_opts copy = { .flags = ZCIO_F_COPY };
	struct zc_count k = { 0 };
	uint64_t last[NBUF] = { 0 }, bytes = 0;
	unsigned char *buf[NBUF] = { NULL };
	struct cal_clock t0, t1;
	unsigned n = 0, fill = 0;
	int s, r, i;

	memset(row, 0, sizeof(*row));
	row->method = zc ? "msg_zerocopy" : "send";
	row->size = size;
	row->touched = touched;
	s = cal_udp_socket(&cfg->net, 9);
	if (s < 0) {
		snprintf(row->note, sizeof(row->note), "udp socket: %s", strerror(-s));
		return;
	}
	r = zcio_zcsend_new(s, zc ? ZCIO_ZCSEND_ALWAYS : 0, zc ? NULL : &copy, &zs);
	for (i = 0; r == 0 && i < NBUF; i++) {
		buf[i] = aligned_alloc(4096, (size + 4095) / 4096 * 4096);
		if (!buf[i])
			r = -ENOMEM;
		else
			memset(buf[i], 'u', size);
	}
	cal_clock_now(&t0);
	t1 = t0;
	while (r == 0 && (n < MIN_ITERS || t1.wall - t0.wall < cfg->send_seconds)) {
		unsigned b = touched ? n % NBUF : 0;
		int64_t w;

		if (touched) {
			r = wait_free(s, zs, &k, last[b]);
			if (r < 0)
				break;
			memset(buf[b], (int)fill++, size);
		}
		w = zcio_zcsend_send(zs, buf[b], size, k.sent, NULL);
		if (w == -EAGAIN || w == -ECONNREFUSED) {
			struct pollfd pf = { .fd = s, .events = POLLOUT };

			if (w == -EAGAIN)
				poll(&pf, 1, 100);
			r = reap_some(zs, &k);
			continue;
		}
		if (w < 0) {
			r = (int)w;
			break;
		}
		k.sent++;
		last[b] = k.sent;
		bytes += (uint64_t)w;
		r = reap_some(zs, &k);
		if (++n % 8 == 0)
			cal_clock_now(&t1);
	}
	if (r == 0)
		r = wait_free(s, zs, &k, k.sent);
	cal_clock_now(&t1);
	if (r == 0 && bytes) {
		struct zcio_zcsend_info info;

		zcio_zcsend_info(zs, &info);
		row->ok = true;
		row->mib_s = (double)bytes / (1 << 20) / (t1.wall - t0.wall);
		row->sender_cpu = (t1.thread_cpu - t0.thread_cpu) / ((double)bytes / CAL_GIB);
		row->proc_cpu = (t1.proc_cpu - t0.proc_cpu) / ((double)bytes / CAL_GIB);
		row->zc_sends = info.zc_sends;
		row->completions = info.completed;
		row->copied = info.completed_copied;
		row->enobufs = info.enobufs;
	} else {
		snprintf(row->note, sizeof(row->note), "%s", r ? strerror(-r) : "nothing sent");
	}
	zcio_zcsend_free(zs);
	close(s);
	for (i = 0; i < NBUF; i++)
		free(buf[i]);
}

int cal_udp_egress(const struct cal_config *cfg, struct cal_send_row *rows, int max, bool verbose)
{
	/* Up to the largest UDP payload; sizes above the MTU are fragmented,
	 * which copies (the copied column shows it). */
	static const uint64_t sizes[] = { 1024, 4096, 8192, 16384, 32768, 65000 };
	static struct cal_send_row runs[32][CAL_MAX_REPEAT];
	int n = 0, i, t, zc, rep, nsizes = cfg->quick ? 3 : 6;
	int reps = cfg->repeat < 1 ? 1 : cfg->repeat > CAL_MAX_REPEAT ? CAL_MAX_REPEAT : cfg->repeat;

	if (max > 32)
		max = 32;
	for (rep = 0; rep < reps; rep++) {
		n = 0;
		for (i = 0; i < nsizes; i++) {
			for (t = 0; t < 2; t++) {
				for (zc = 0; zc < 2 && n < max; zc++) {
					struct cal_send_row *r = &runs[n][rep];

					udp_row(cfg, zc, sizes[i], t, r);
					if (verbose && r->ok)
						fprintf(stderr, "zcio: calibrate: udp %-12s %6llu B %-9s %8.1f MiB/s  sender %.3f s/GiB  copied %llu of %llu\n",
							r->method, (unsigned long long)sizes[i],
							t ? "touched" : "untouched", r->mib_s, r->sender_cpu,
							(unsigned long long)r->copied,
							(unsigned long long)r->completions);
					n++;
				}
			}
		}
	}
	for (i = 0; i < n; i++)
		fold(runs[i], reps, &rows[i]);
	return n;
}
