/*
 * serve_uring.c - `zcio serve --uring`: the body of a large response goes
 * from the file to the client through a pipe, with IORING_OP_SPLICE.
 *
 * One ring per worker.  Its completions signal an eventfd that sits in the
 * worker's epoll set, so the existing loop wakes for them; a transfer
 * moves in turns, with one request in flight at a time, or one fill with
 * its drain linked behind it (IOSQE_IO_LINK: the drain starts once the
 * fill has completed), so bytes can never be reordered:
 *
 *   the header   written into the transfer's empty pipe with write() when
 *                the response is prepared
 *   fill         splice(file at off -> pipe, what surely fits)
 *   drain        splice(pipe -> socket, what the pipe holds), again until
 *                the pipe is empty; then the next fill
 *
 * Why the header goes into the pipe rather than out with the ring's own
 * SEND: the socket has TCP_NODELAY, so a SEND of a few hundred bytes would
 * leave as a segment of its own, and the client would wake once for the
 * header alone; in the pipe, it leaves in front of the first megabyte, in
 * the same splice.  Writing into an empty pipe cannot block, so it costs
 * one write() on the loop thread and no round trip through the ring, and
 * the order header-then-body is the pipe's own.
 *
 * The kernel runs every IORING_OP_SPLICE in an io-wq thread.  The pipe and
 * the socket are nonblocking, so a drain into a full socket does not hold
 * that thread: it completes with -EAGAIN and is submitted again behind a
 * POLL_ADD for POLLOUT (linked: the splice starts once there is room).  A
 * fill never waits on the pipe: it is asked for at most the room left.
 *
 * A fill that returns 0 before the promised length has met the end of a
 * file that was truncated while sent: what the pipe holds is drained (true
 * bytes of the file) and the connection is then closed, short of its
 * Content-Length: never padded, never hung (as the epoll path does).
 *
 * A client that goes away mid-body makes the drain fail (EPIPE,
 * ECONNRESET), or the connection is closed by a timeout or the shutdown:
 * its requests are then cancelled, and the socket, the pipe and the file
 * reference are let go only when the last of their completions has
 * arrived (the kernel resolves the fd numbers when the request runs).
 */
#include <errno.h>
#include <string.h>

#include "serve_uring.h"

bool serve_uring_wanted;
atomic_ullong serve_uring_bodies;

#ifndef ZCIO_HAVE_LIBURING

int serve_uring_probe(const char **why, bool *unavailable)
{
	*why = "not built in (zcio was built without liburing)";
	*unavailable = true;
	return -EOPNOTSUPP;
}

int serve_uring_worker_init(struct serve_worker *w)
{
	(void)w;
	return -EOPNOTSUPP;
}

void serve_uring_worker_release(struct serve_worker *w)
{
	(void)w;
}

void serve_uring_tick(struct serve_worker *w)
{
	(void)w;
}

bool serve_uring_on(const struct serve_worker *w)
{
	(void)w;
	return false;
}

int serve_uring_prepare(struct serve_conn *c, const char *hdr, size_t hdr_len,
			struct serve_file *f, uint64_t off, uint64_t len)
{
	(void)c, (void)hdr, (void)hdr_len, (void)f, (void)off, (void)len;
	return -EOPNOTSUPP;
}

bool serve_uring_start(struct serve_conn *c)
{
	(void)c;
	return false;
}

void serve_uring_abort(struct serve_conn *c)
{
	(void)c;
}

#else

#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "uring_probe.h"

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

#define SQ_ENTRIES 256
/* Two requests per transfer at most, and cancels: the kernel keeps what
 * does not fit (IORING_FEAT_NODROP), this is only the fast room. */
#define CQ_ENTRIES 4096
#define DEFAULT_PIPE_SIZE (1u << 20)
/* Spare pipes a worker keeps while it sends bodies. */
#define POOL_MAX 16
#define HASH_BUCKETS 1024u

enum uop_kind { UOP_POLL, UOP_FILL, UOP_DRAIN };

/* What a completion's user_data points to (NULL: a cancel's own). */
struct uop {
	struct xfer *x;
	unsigned char kind;
	bool busy;              /* submitted, completion not yet seen */
};

struct serve_uring;

/* One large body. */
struct xfer {
	struct serve_uring *u;
	struct serve_conn *c;   /* NULL once the connection has let go */
	struct xfer *hnext;     /* in u->table, while c is set */
	struct uop poll, fill, drain;
	int sock;               /* c's socket; ours to close once c is NULL */
	struct serve_file *f;   /* a reference of ours */
	int pipe[2];
	uint32_t pipe_cap;
	uint32_t held;          /* bytes in the pipe */
	uint64_t off, left;     /* next file offset; file bytes not yet in the pipe */
	unsigned inflight;      /* completions still to come */
	int poll_err;           /* the POLL_ADD before the drain failed */
	bool pair;              /* a fill with its drain linked behind it */
	int fill_res, drain_res; /* of the pair, until both are in */
	bool started;
	bool filled;            /* a fill since the pipe was last empty */
	bool eof;               /* the file ended before its length */
};

struct serve_uring {
	struct serve_worker *w;
	struct io_uring ring;
	struct loop_watch watch;    /* the eventfd of the ring's completions */
	bool reaping;               /* submissions wait for the end of the batch */
	unsigned active, aborted;   /* transfers with and without a connection */
	uint32_t pipe_size;
	uint32_t page;              /* a pipe holds one per slot */
	struct {
		int fd[2];
		uint32_t cap;
	} pool[POOL_MAX];           /* empty pipes */
	unsigned npool;
	struct xfer *table[HASH_BUCKETS];
};

static const char CMD[] = "serve";

/* Indexed by worker: struct serve_worker has no room for the ring. */
static struct serve_uring **rings;

static struct serve_uring *ring_of(const struct serve_worker *w)
{
	return rings ? rings[w->index] : NULL;
}

bool serve_uring_on(const struct serve_worker *w)
{
	return ring_of(w) != NULL;
}

/* ---- the connection -> transfer table ------------------------------------- */

static unsigned bucket(const struct serve_conn *c)
{
	uintptr_t v = (uintptr_t)c;

	return (unsigned)((v >> 4) ^ (v >> 14)) & (HASH_BUCKETS - 1);
}

static struct xfer *find(struct serve_uring *u, const struct serve_conn *c)
{
	struct xfer *x;

	for (x = u->table[bucket(c)]; x; x = x->hnext)
		if (x->c == c)
			return x;
	return NULL;
}

static void unlink_conn(struct xfer *x)
{
	struct xfer **pp = &x->u->table[bucket(x->c)];

	while (*pp != x)
		pp = &(*pp)->hnext;
	*pp = x->hnext;
	x->hnext = NULL;
	x->c = NULL;
}

/* ---- submitting ------------------------------------------------------------- */

static void kick(struct serve_uring *u)
{
	int r;

	if (u->reaping || !io_uring_sq_ready(&u->ring))
		return;
	r = io_uring_submit(&u->ring);
	/* EBUSY/EAGAIN: the completion queue is over its size, or the
	 * kernel is short of memory; the requests stay queued and go with
	 * the next batch or tick. */
	if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
		log_msg(LOG_ERROR, CMD, "io_uring_submit: %s", strerror(-r));
}

/* Room for one more request: a full submission queue is submitted first
 * (IORING_FEAT_NODROP, checked by the probe, keeps completions that do
 * not fit), so this succeeds in the end. */
static struct io_uring_sqe *sqe_get(struct serve_uring *u)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&u->ring))) {
		int r = io_uring_submit(&u->ring);

		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			log_msg(LOG_ERROR, CMD, "io_uring_submit: %s", strerror(-r));
			abort();
		}
	}
	return sqe;
}

/* Room for n requests in a row: a link must not be cut by a submission
 * between its members (the kernel ends a chain at the end of a batch). */
static void sqe_room(struct serve_uring *u, unsigned n)
{
	while (io_uring_sq_space_left(&u->ring) < n) {
		int r = io_uring_submit(&u->ring);

		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			log_msg(LOG_ERROR, CMD, "io_uring_submit: %s", strerror(-r));
			abort();
		}
	}
}

static void uop_submit(struct io_uring_sqe *sqe, struct uop *op)
{
	io_uring_sqe_set_data(sqe, op);
	op->busy = true;
	op->x->inflight++;
}

static void cancel_op(struct serve_uring *u, struct uop *op)
{
	struct io_uring_sqe *sqe;

	if (!op->busy)
		return;
	sqe = sqe_get(u);
	io_uring_prep_cancel(sqe, op, 0);
	io_uring_sqe_set_data(sqe, NULL);
}

/* ---- pipes ---------------------------------------------------------------- */

static int pipe_get(struct serve_uring *u, struct xfer *x)
{
	int sz;

	if (u->npool) {
		u->npool--;
		x->pipe[0] = u->pool[u->npool].fd[0];
		x->pipe[1] = u->pool[u->npool].fd[1];
		x->pipe_cap = u->pool[u->npool].cap;
		return 0;
	}
	if (pipe2(x->pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
		x->pipe[0] = x->pipe[1] = -1;
		return -errno;
	}
	/* Past pipe-user-pages-soft (unprivileged users), F_SETPIPE_SZ fails
	 * and the pipe keeps its size: use the size it has. */
	fcntl(x->pipe[1], F_SETPIPE_SZ, (int)u->pipe_size);
	sz = fcntl(x->pipe[1], F_GETPIPE_SZ);
	x->pipe_cap = sz > 0 ? (uint32_t)sz : 65536;
	return 0;
}

/* A pipe holding bytes is closed, never pooled: they would lead the next
 * body. */
static void pipe_put(struct serve_uring *u, struct xfer *x)
{
	if (x->pipe[0] < 0)
		return;
	if (x->held == 0 && u->npool < POOL_MAX) {
		u->pool[u->npool].fd[0] = x->pipe[0];
		u->pool[u->npool].fd[1] = x->pipe[1];
		u->pool[u->npool].cap = x->pipe_cap;
		u->npool++;
	} else {
		close(x->pipe[0]);
		close(x->pipe[1]);
	}
	x->pipe[0] = x->pipe[1] = -1;
}

static void pool_flush(struct serve_uring *u)
{
	while (u->npool) {
		u->npool--;
		close(u->pool[u->npool].fd[0]);
		close(u->pool[u->npool].fd[1]);
	}
}

/* ---- a transfer -------------------------------------------------------------- */

static void xfer_free(struct xfer *x)
{
	struct serve_uring *u = x->u;

	if (x->c) {
		unlink_conn(x);
		u->active--;
	} else {
		/* Let go by its connection: the socket is ours now.  What
		 * completed after the cancel was not counted: the pipe may
		 * hold bytes. */
		close(x->sock);
		u->aborted--;
		x->held = 1;
	}
	pipe_put(u, x);
	files_put(&u->w->files, x->f);
	free(x);
}

/* The body is over: hand the connection back (after x is gone, as the
 * connection may start its next body at once). */
static void xfer_end(struct xfer *x, int r)
{
	struct serve_conn *c = x->c;

	if (r == 0)
		atomic_fetch_add_explicit(&serve_uring_bodies, 1, memory_order_relaxed);
	xfer_free(x);
	conn_uring_end(c, r);
}

/* after_poll: the socket was full; splice once it has room. */
static void drain(struct xfer *x, bool after_poll)
{
	struct io_uring_sqe *sqe;

	if (after_poll) {
		sqe_room(x->u, 2);
		sqe = sqe_get(x->u);
		io_uring_prep_poll_add(sqe, x->sock, POLLOUT);
		sqe->flags |= IOSQE_IO_LINK;
		x->poll_err = 0;
		uop_submit(sqe, &x->poll);
	}
	sqe = sqe_get(x->u);
	io_uring_prep_splice(sqe, x->pipe[0], -1, x->sock, -1, x->held,
			     SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	uop_submit(sqe, &x->drain);
}

/*
 * Fill the pipe.  When the pipe has room to spare, the drain is linked
 * behind the fill: one trip through the ring instead of two.  The fill
 * then asks for what surely fits (n bytes at any offset span at most
 * n / page + 1 pages, one slot each; the header holds one more), because a
 * short splice breaks the link: the drain then completes -ECANCELED and is
 * submitted again on its own (pair_done).
 */
static void fill(struct xfer *x)
{
	struct io_uring_sqe *sqe;
	uint32_t page = x->u->page, slots = x->pipe_cap / page, used = x->held ? 1 : 0;
	uint64_t n = x->pipe_cap - x->held;
	bool link = slots >= 4;

	if (link)
		n = (uint64_t)(slots - used - 1) * page;
	if (n > x->left)
		n = x->left;
	sqe_room(x->u, link ? 2 : 1);
	sqe = sqe_get(x->u);
	/* An empty pipe cannot make the splice wait; one holding the header
	 * can be full (a --pipe-size of one page): then -EAGAIN, not a
	 * thread of the kernel's blocked on a pipe nobody drains. */
	io_uring_prep_splice(sqe, x->f->fd, (int64_t)x->off, x->pipe[1], -1, (unsigned)n,
			     SPLICE_F_MOVE | (x->held ? SPLICE_F_NONBLOCK : 0));
	if (link)
		sqe->flags |= IOSQE_IO_LINK;
	uop_submit(sqe, &x->fill);
	if (!link)
		return;
	x->pair = true;
	sqe = sqe_get(x->u);
	io_uring_prep_splice(sqe, x->pipe[0], -1, x->sock, -1, x->held + (unsigned)n,
			     SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	uop_submit(sqe, &x->drain);
}

/* The next request, or the end. */
static void next(struct xfer *x)
{
	if (!x->filled && x->left && !x->eof)
		fill(x);
	else if (x->held)
		drain(x, false);
	else
		xfer_end(x, x->left ? -ENODATA : 0);
}

/* Take in what a fill did.  Returns 0 (go on), or -errno to end with. */
static int fill_result(struct xfer *x, int res)
{
	if (res > 0) {
		x->held += (uint32_t)res;
		x->off += (uint64_t)res;
		x->left -= (uint64_t)res;
		x->filled = true;
		return 0;
	}
	switch (res) {
	case 0:
		/* The end of the file before the promised length: it was
		 * truncated while being sent.  What the pipe holds is true
		 * bytes; they go, then the connection closes. */
		x->eof = true;
		return 0;
	case -EAGAIN:
		/* The pipe had no free slot (the header holds a page of its
		 * own, which the byte count does not show): drain first. */
		if (x->held) {
			x->filled = true;
			return 0;
		}
		return -EIO;
	case -EINTR:
		return 0; /* not filled: next() fills again */
	default:
		/* EIO from the file system, ...: the body cannot be
		 * completed; closing says so. */
		return res;
	}
}

static void on_drain(struct xfer *x, int res)
{
	if (res > 0) {
		x->held -= (uint32_t)res;
		conn_uring_progress(x->c, (uint64_t)res);
		if (x->held == 0)
			x->filled = false;
		next(x);
		return;
	}
	switch (res) {
	case -EAGAIN:
		/* The socket's send buffer is full. */
		drain(x, true);
		return;
	case -EINTR:
		drain(x, false);
		return;
	case 0:
		/* Nothing taken from a pipe that holds bytes: the socket
		 * cannot take more (a shut-down socket answers EPIPE). */
		xfer_end(x, -EPIPE);
		return;
	case -ECANCELED:
		/* The POLL_ADD linked before it failed. */
		xfer_end(x, x->poll_err ? x->poll_err : -EPIPE);
		return;
	default:
		/* EPIPE, ECONNRESET: the client went away. */
		xfer_end(x, res);
	}
}

/* Both completions of a linked fill + drain are in, in whichever order
 * they came: the fill's result first, then the drain's. */
static void pair_done(struct xfer *x)
{
	int r = fill_result(x, x->fill_res);

	x->pair = false;
	if (r < 0)
		xfer_end(x, r); /* the drain was cancelled */
	else if (x->drain_res == -ECANCELED)
		next(x); /* a short fill broke the link */
	else
		on_drain(x, x->drain_res);
}

static void on_cqe(struct serve_uring *u, struct uop *op, int res)
{
	struct xfer *x;
	int r;

	(void)u;
	if (!op)
		return; /* a cancel request's own completion */
	x = op->x;
	op->busy = false;
	x->inflight--;
	if (!x->c) {
		if (x->inflight == 0)
			xfer_free(x);
		return;
	}
	switch (op->kind) {
	case UOP_POLL:
		/* The splice linked behind it runs now, or completes
		 * ECANCELED when the poll failed. */
		if (res < 0)
			x->poll_err = res;
		return;
	case UOP_FILL:
		if (x->pair) {
			x->fill_res = res;
			if (!x->drain.busy)
				pair_done(x);
			return;
		}
		r = fill_result(x, res);
		if (r < 0)
			xfer_end(x, r);
		else
			next(x);
		return;
	default:
		if (x->pair) {
			x->drain_res = res;
			if (!x->fill.busy)
				pair_done(x);
			return;
		}
		on_drain(x, res);
	}
}

/* Handle every completion that has arrived, without submitting. */
static void handle_cqes(struct serve_uring *u)
{
	struct io_uring_cqe *cqe;

	u->reaping = true;
	/* One at a time, marked seen before it is handled: handlers submit,
	 * and a full submission queue is flushed then. */
	while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
		struct uop *op = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&u->ring, cqe);
		on_cqe(u, op, res);
	}
	u->reaping = false;
}

static void reap(struct serve_uring *u)
{
	handle_cqes(u);
	kick(u);
}

static void on_ring_event(struct loop *l, struct loop_watch *wt, uint32_t events)
{
	struct serve_uring *u = container_of(wt, struct serve_uring, watch);
	uint64_t v;

	(void)l;
	(void)events;
	/* Reset the counter; completions posted after the read signal it
	 * again, and epoll reports that edge. */
	(void)!read(wt->fd, &v, sizeof(v));
	reap(u);
}

/* ---- the connection's side ----------------------------------------------------- */

int serve_uring_prepare(struct serve_conn *c, const char *hdr, size_t hdr_len,
			struct serve_file *f, uint64_t off, uint64_t len)
{
	struct serve_uring *u = ring_of(c->w);
	struct xfer *x;
	ssize_t n;
	int r;

	if (!u)
		return -EOPNOTSUPP;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->u = u;
	x->poll = (struct uop){ .x = x, .kind = UOP_POLL };
	x->fill = (struct uop){ .x = x, .kind = UOP_FILL };
	x->drain = (struct uop){ .x = x, .kind = UOP_DRAIN };
	r = pipe_get(u, x);
	if (r < 0) {
		free(x);
		return r;
	}
	/* Into an empty pipe: all of it at once, with room left for the
	 * file, or the pipe is too small for this header (a tiny
	 * --pipe-size): the epoll path takes it. */
	r = -EMSGSIZE;
	if (hdr_len < x->pipe_cap) {
		do
			n = write(x->pipe[1], hdr, hdr_len);
		while (n < 0 && errno == EINTR);
		r = n == (ssize_t)hdr_len ? 0 : n < 0 ? -errno : -EMSGSIZE;
	}
	if (r < 0) {
		x->held = 1; /* dirty, or at least not known clean */
		pipe_put(u, x);
		free(x);
		return r;
	}
	x->held = (uint32_t)hdr_len;
	x->sock = c->watch.fd;
	x->f = f;
	f->refs++;
	x->off = off;
	x->left = len;
	x->c = c;
	x->hnext = u->table[bucket(c)];
	u->table[bucket(c)] = x;
	u->active++;
	return 0;
}

bool serve_uring_start(struct serve_conn *c)
{
	struct serve_uring *u = ring_of(c->w);
	struct xfer *x = u ? find(u, c) : NULL;

	if (!x || x->started)
		return false;
	x->started = true;
	next(x);
	kick(u);
	return true;
}

void serve_uring_abort(struct serve_conn *c)
{
	struct serve_uring *u = ring_of(c->w);
	struct xfer *x = u ? find(u, c) : NULL;

	if (!x)
		return;
	if (x->inflight == 0) {
		/* Prepared, not started: nothing of the kernel's to wait for. */
		xfer_free(x);
		return;
	}
	/* The kernel still names the socket: it stays open, out of the
	 * epoll set (its events would come to a freed connection), until
	 * the last completion. */
	loop_del(&c->w->loop, &c->watch);
	c->watch.fd = -1;
	unlink_conn(x);
	u->active--;
	u->aborted++;
	cancel_op(u, &x->poll);
	cancel_op(u, &x->fill);
	cancel_op(u, &x->drain);
	kick(u);
}

/* ---- the worker's ring -------------------------------------------------------- */

int serve_uring_probe(const char **why, bool *unavailable)
{
	static const struct uring_need_op ops[] = {
		{ IORING_OP_SPLICE, "IORING_OP_SPLICE" },
		{ IORING_OP_POLL_ADD, "IORING_OP_POLL_ADD" },
		{ IORING_OP_ASYNC_CANCEL, "IORING_OP_ASYNC_CANCEL" },
	};

	/* IORING_FEAT_NODROP (5.5): completions are never lost when the
	 * queue is full, which sqe_get() relies on. */
	return uring_probe(ops, sizeof(ops) / sizeof(ops[0]), IORING_FEAT_NODROP,
			   "this kernel's io_uring is too old (no IORING_FEAT_NODROP)", why, unavailable);
}

int serve_uring_worker_init(struct serve_worker *w)
{
	struct serve_uring *u;
	int r, efd;

	if (!rings) {
		rings = calloc(serve_cfg.workers, sizeof(*rings));
		if (!rings)
			return -ENOMEM;
	}
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->w = w;
	u->pipe_size = serve_cfg.pipe_size ? serve_cfg.pipe_size : DEFAULT_PIPE_SIZE;
	u->page = (uint32_t)sysconf(_SC_PAGESIZE);
	r = uring_ring_init(&u->ring, SQ_ENTRIES, CQ_ENTRIES);
	if (r < 0) {
		free(u);
		return r;
	}
	efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (efd < 0) {
		r = -errno;
		goto fail;
	}
	u->watch = (struct loop_watch){ .fd = efd, .on_event = on_ring_event };
	r = io_uring_register_eventfd(&u->ring, efd);
	if (r == 0)
		r = loop_add(&w->loop, &u->watch, EPOLLIN);
	if (r < 0) {
		close(efd);
		goto fail;
	}
	rings[w->index] = u;
	return 0;
fail:
	io_uring_queue_exit(&u->ring);
	free(u);
	return r;
}

void serve_uring_tick(struct serve_worker *w)
{
	struct serve_uring *u = ring_of(w);

	if (!u)
		return;
	kick(u);
	/* An idle worker holds no pipe. */
	if (u->active == 0 && u->aborted == 0)
		pool_flush(u);
}

void serve_uring_worker_release(struct serve_worker *w)
{
	struct serve_uring *u = ring_of(w);

	if (!u)
		return;
	/* Every connection is closed: what is left are cancelled transfers
	 * waiting for their last completions. */
	while (u->aborted) {
		int r = io_uring_submit_and_wait(&u->ring, 1);

		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY && r != -ETIME) {
			log_msg(LOG_ERROR, CMD, "io_uring wait: %s", strerror(-r));
			break;
		}
		handle_cqes(u);
	}
	pool_flush(u);
	loop_del(&w->loop, &u->watch);
	close(u->watch.fd);
	io_uring_queue_exit(&u->ring);
	rings[w->index] = NULL;
	free(u);
}

#endif /* ZCIO_HAVE_LIBURING */
