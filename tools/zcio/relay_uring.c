/*
 * relay_uring.c - `zcio relay --uring`: the relay's worker loop on io_uring.
 *
 * One ring per worker thread.  The worker accepts on its listening socket
 * (a multishot accept where the kernel has it), connects to the target,
 * then moves each direction of each connection in turns:
 *
 *   read   splice(in -> pipe, up to the pipe's size)   (--copy: recv)
 *   write  splice(pipe -> out, what the read got)       (--copy: send)
 *          ... again until the pipe is empty, then the next read.
 *
 * A direction has at most one request in flight, so bytes cannot be
 * reordered.  The kernel runs every IORING_OP_SPLICE in an io-wq thread
 * (it forces them async); on a socket with nothing to read that thread
 * would block, one per idle direction.  So the sockets and pipes are
 * nonblocking and each splice in is linked behind a POLL_ADD for POLLIN:
 * the splice starts once there is something to move.  A splice out that
 * finds the socket full (-EAGAIN) is retried behind a POLLOUT the same way.
 *
 * A direction holds a pipe only while data moves: an idle connection waits
 * on its poll alone and takes a pipe from the worker's pool once the poll
 * says there is something to read; an empty pipe goes back to the pool
 * unless the last read filled it (a stream in full flow keeps its pipe and
 * the linked poll + splice).  With no connection left, the pool is closed.
 *
 * A direction that reads EOF has delivered everything by then (its pipe is
 * empty: the write before it finished), so its shutdown(SHUT_WR) is passed
 * on at once.  When both directions are done, or either side fails or
 * resets, the connection closes: its requests still in flight are
 * cancelled, and its fds and memory are released only once the last of
 * their completions has arrived (a completion names the connection).
 *
 * Except when it is the server that went (it answered early and closed
 * without reading everything, an HTTP 413: a reset): as the kernel does for
 * a direct connection, everything it sent before reaches the client first.
 * The client's bytes are then read and dropped (a client still sending
 * must not be kept from reading the answer), the server's direction runs
 * to its end (its socket's receive queue, then the reset), the client's
 * sending half is shut down, and the connection closes once the client
 * has acknowledged it all, passing the reset on only then (as relay.c).
 *
 * Timeouts (--connect-timeout, --idle-timeout), --max-conns, the
 * SIGINT/SIGTERM grace period, a reset behind a half-close and the wait
 * for the client's acknowledgements are served by a 100 ms tick: the wait
 * for completions times out at least that often.
 */
#include <errno.h>
#include <string.h>

#include "relay.h"

atomic_uint relay_uring_pipes;

#ifndef ZCIO_HAVE_LIBURING

int relay_uring_probe(const char **why, bool *unavailable)
{
	*why = "not built in (zcio was built without liburing)";
	*unavailable = true;
	return -EOPNOTSUPP;
}

int relay_uring_new(struct relay_worker *w)
{
	(void)w;
	return -EOPNOTSUPP;
}

void relay_uring_run(struct relay_worker *w)
{
	(void)w;
}

#else

#include <fcntl.h>
#include <linux/sockios.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "uring_probe.h"

#define TICK_MS 100
#define ACCEPT_BACKOFF_MS 100
#define SQ_ENTRIES 1024
#define CQ_ENTRIES 16384
/* --copy: each direction's buffer. */
#define COPY_BUF (256u << 10)
#define DEFAULT_PIPE_SIZE (1u << 20)
/* Spare pipes a worker keeps. */
#define POOL_MAX 16
/* Pipes a worker holds at most (in use and spare), and the fds kept free
 * of pipes for the sockets and the rest (see pipe_may_open). */
#define PIPES_MAX 1024
#define FD_RESERVE 64
/* Where a worker's connections read the client's bytes to drop them once
 * their server has gone. */
#define SINK_SIZE (64u << 10)

static const char CMD[] = "relay";

enum uop_kind { UOP_ACCEPT, UOP_CONNECT, UOP_POLL, UOP_READ, UOP_WRITE, UOP_DRAIN };

/* What a completion's user_data points to (0: a cancel request's own
 * completion, ignored). */
struct uop {
	struct uconn *c;        /* NULL for the accept */
	unsigned char kind;
	bool busy;              /* submitted, completion not yet seen */
};

struct udir {
	struct uop poll, io;    /* io: the read or the write; poll: before it */
	int in, out;
	int pipe[2];            /* splice: the kernel buffer, or -1 while idle */
	uint32_t pipe_cap;      /* its size */
	char *buf;              /* --copy */
	uint32_t cap;           /* --copy: bytes one read may take */
	uint32_t held, off;     /* read and not yet written; --copy: sent of buf */
	uint32_t last_read;
	bool poll_alone;        /* the poll in flight waits to take a pipe */
	bool pipe_wait;         /* has something to read, waits for a pipe */
	struct udir *wait_prev, *wait_next;
	struct uconn *c;
	bool eof;               /* the read side ended */
	atomic_ullong *counter; /* the worker's up_bytes or down_bytes */
	uint64_t bytes;
};

struct relay_uring;

struct uconn {
	struct relay_uring *u;
	struct uconn *prev, *next;
	struct uop connect;
	struct udir d[2];       /* 0: client -> server, 1: server -> client */
	int cfd, sfd;
	unsigned inflight;      /* completions still to come */
	bool connecting, timed_out, closing;
	bool srv_gone;          /* the server closed or reset: the client's bytes
				   are dropped, the server's still delivered */
	bool srv_reset;         /* ...with a reset, passed on after its bytes */
	int64_t last_active, connect_deadline;
	char peer[64];
};

struct relay_uring {
	struct relay_worker *w;
	struct io_uring ring;
	struct uop accept;
	bool multishot;         /* the kernel takes IORING_ACCEPT_MULTISHOT */
	bool accept_cancelled;  /* a cancel for the accept is on its way */
	bool stop_seen;
	int64_t accept_resume_at; /* after EMFILE and the like; 0: none */
	struct uconn *conns;
	unsigned nconns;        /* open (in conns) */
	unsigned closing;       /* closed, waiting for their completions */
	bool copy;
	uint32_t pipe_size;
	struct {
		int fd[2];
		uint32_t cap;
	} pool[POOL_MAX];       /* empty pipes for the next direction */
	unsigned npool;
	unsigned pipes;         /* open: held by directions, and the pool's */
	unsigned nofile;        /* RLIMIT_NOFILE */
	struct udir *wait_head, *wait_tail; /* pipe_wait, oldest first */
	char *sink;             /* SINK_SIZE: what drained clients sent; never read */
	int *parked;            /* accepted past --max-conns, oldest first */
	unsigned nparked, parked_cap;
};

/*
 * Room for one more request.  When the submission queue is full, what is
 * in it goes to the kernel first; completions wait in the completion queue
 * (or the kernel's overflow list: IORING_FEAT_NODROP, checked by the probe),
 * so this always succeeds in the end.
 */
static struct io_uring_sqe *sqe_get(struct relay_uring *u)
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

static void uop_submit(struct io_uring_sqe *sqe, struct uop *op)
{
	io_uring_sqe_set_data(sqe, op);
	op->busy = true;
	if (op->c)
		op->c->inflight++;
}

static void cancel_op(struct relay_uring *u, struct uop *op)
{
	struct io_uring_sqe *sqe;

	if (!op->busy)
		return;
	sqe = sqe_get(u);
	io_uring_prep_cancel(sqe, op, 0);
	io_uring_sqe_set_data(sqe, NULL);
}

/* ---- accepting ---------------------------------------------------------- */

static bool accept_wanted(struct relay_uring *u)
{
	return !atomic_load(&relay_stopping) && u->w->listen.fd >= 0 && !u->accept_resume_at &&
	       u->nparked == 0 && atomic_load(&relay_active) < relay_cfg.max_conns;
}

/*
 * Take one of the --max-conns slots, shared by all workers.  An accept
 * armed in the ring completes without asking us (a multishot accept goes
 * on taking every client queued; each worker has its own armed), so the
 * limit is kept here, when a connection starts, rather than by the accept.
 */
static bool slot_take(void)
{
	unsigned v = atomic_load(&relay_active);

	while (v < relay_cfg.max_conns)
		if (atomic_compare_exchange_weak(&relay_active, &v, v + 1))
			return true;
	return false;
}

/*
 * A client accepted with no slot left waits here, unserved (nothing is
 * read from it, no connection to the target), as it would in the backlog;
 * it starts once a slot frees (relay_uring_run).  Out of memory, it is let
 * go.
 */
static void park(struct relay_uring *u, int cfd)
{
	if (u->nparked == u->parked_cap) {
		unsigned cap = u->parked_cap ? 2 * u->parked_cap : 16;
		int *p = realloc(u->parked, cap * sizeof(*p));

		if (!p) {
			close(cfd);
			return;
		}
		u->parked = p;
		u->parked_cap = cap;
	}
	u->parked[u->nparked++] = cfd;
}

/* Stopping: the clients parked are refused as the backlog's are. */
static void parked_drop(struct relay_uring *u)
{
	while (u->nparked)
		close(u->parked[--u->nparked]);
}

/* Arm the accept, or cancel it, as the state of the worker asks. */
static void accept_update(struct relay_uring *u)
{
	struct io_uring_sqe *sqe;
	int fd = u->w->listen.fd;

	if (!accept_wanted(u)) {
		if (u->accept.busy && !u->accept_cancelled) {
			cancel_op(u, &u->accept);
			u->accept_cancelled = true;
		}
		return;
	}
	if (u->accept.busy)
		return;
	sqe = sqe_get(u);
	if (u->multishot)
		io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	else
		io_uring_prep_accept(sqe, fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	uop_submit(sqe, &u->accept);
}

/* ---- the pipes ---------------------------------------------------------- */

/*
 * May one more pipe be opened?  The splices run asynchronously, so a burst
 * of connections each with a few bytes to move would hold a pipe per
 * direction at once: two more fds each beside its two sockets, past
 * RLIMIT_NOFILE with 5,000 connections (pipe2 then fails with EMFILE).
 * Pipes take only the fds the open connections (two each, in all
 * workers) leave, less a reserve for accepting and connecting.  One pipe
 * in use per worker is always allowed (pipe2 says if the fds really run
 * out): with none in use here, none would come back to the directions
 * waiting.
 */
static bool pipe_may_open(const struct relay_uring *u)
{
	uint64_t fds = 2 * ((uint64_t)atomic_load(&relay_uring_pipes) + 1) +
		       2 * (uint64_t)atomic_load(&relay_active) + FD_RESERVE;

	if (u->pipes == u->npool)
		return true;
	return u->pipes < PIPES_MAX && fds <= u->nofile;
}

/* A pipe for d: from the pool, or a new one.  Returns 0, -EAGAIN when none
 * can be had now (d waits for one: pipe_wait_add), or -errno. */
static int pipe_get(struct relay_uring *u, struct udir *d)
{
	int sz;

	if (u->npool) {
		u->npool--;
		d->pipe[0] = u->pool[u->npool].fd[0];
		d->pipe[1] = u->pool[u->npool].fd[1];
		d->pipe_cap = u->pool[u->npool].cap;
		return 0;
	}
	if (!pipe_may_open(u))
		return -EAGAIN;
	if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
		int r = -errno;

		d->pipe[0] = d->pipe[1] = -1;
		/* Out of fds all the same (another thread's, the process
		 * limit lowered, or the system's): a pipe given back or a
		 * connection closed makes room. */
		return r == -EMFILE || r == -ENFILE ? -EAGAIN : r;
	}
	u->pipes++;
	atomic_fetch_add(&relay_uring_pipes, 1);
	/* Past pipe-user-pages-soft (unprivileged users), F_SETPIPE_SZ fails
	 * and the pipe keeps its size: use the size it has. */
	fcntl(d->pipe[1], F_SETPIPE_SZ, (int)u->pipe_size);
	sz = fcntl(d->pipe[1], F_GETPIPE_SZ);
	d->pipe_cap = sz > 0 ? (uint32_t)sz : 65536;
	return 0;
}

/* Give d's pipe back: to the pool when the caller knows it is empty (every
 * byte read into it written), else closed: a dirty pipe is never reused. */
static void pipe_put(struct relay_uring *u, struct udir *d, bool empty)
{
	if (d->pipe[0] < 0)
		return;
	if (empty && d->held == 0 && u->npool < POOL_MAX) {
		u->pool[u->npool].fd[0] = d->pipe[0];
		u->pool[u->npool].fd[1] = d->pipe[1];
		u->pool[u->npool].cap = d->pipe_cap;
		u->npool++;
	} else {
		close(d->pipe[0]);
		close(d->pipe[1]);
		u->pipes--;
		atomic_fetch_sub(&relay_uring_pipes, 1);
	}
	d->pipe[0] = d->pipe[1] = -1;
}

/* d has something to read and no pipe to be had: it waits, in turn, until
 * relay_uring_run gives it one (pipe_wait_serve). */
static void pipe_wait_add(struct relay_uring *u, struct udir *d)
{
	d->pipe_wait = true;
	d->wait_next = NULL;
	d->wait_prev = u->wait_tail;
	if (u->wait_tail)
		u->wait_tail->wait_next = d;
	else
		u->wait_head = d;
	u->wait_tail = d;
}

static void pipe_wait_del(struct relay_uring *u, struct udir *d)
{
	if (!d->pipe_wait)
		return;
	d->pipe_wait = false;
	if (d->wait_prev)
		d->wait_prev->wait_next = d->wait_next;
	else
		u->wait_head = d->wait_next;
	if (d->wait_next)
		d->wait_next->wait_prev = d->wait_prev;
	else
		u->wait_tail = d->wait_prev;
	d->wait_prev = d->wait_next = NULL;
}

static void pool_flush(struct relay_uring *u)
{
	while (u->npool) {
		u->npool--;
		close(u->pool[u->npool].fd[0]);
		close(u->pool[u->npool].fd[1]);
		u->pipes--;
		atomic_fetch_sub(&relay_uring_pipes, 1);
	}
}

/* ---- closing ------------------------------------------------------------ */

static void conn_free(struct uconn *c)
{
	struct relay_uring *u = c->u;

	close(c->cfd);
	close(c->sfd);
	for (int i = 0; i < 2; i++) {
		/* A read may have completed into it after the close. */
		pipe_put(u, &c->d[i], false);
		free(c->d[i].buf);
	}
	u->closing--;
	free(c);
}

/*
 * Close both sides.  err < 0: an error on one side; a reset is passed on
 * as a reset (SO_LINGER 0), so the other peer learns the stream broke
 * rather than seeing a clean end.  The fds stay open, and c allocated,
 * until every request naming them has completed.
 */
static void conn_close(struct uconn *c, const char *why, int err)
{
	struct relay_uring *u = c->u;
	struct relay_worker *w = u->w;

	if (c->closing)
		return;
	c->closing = true;
	if (err == -ECONNRESET) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(c->cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		setsockopt(c->sfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	cancel_op(u, &c->connect);
	for (int i = 0; i < 2; i++) {
		pipe_wait_del(u, &c->d[i]);
		cancel_op(u, &c->d[i].poll);
		cancel_op(u, &c->d[i].io);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		u->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	u->nconns--;
	u->closing++;
	atomic_fetch_sub(&relay_active, 1);
	atomic_fetch_sub_explicit(&w->counters.active, 1, memory_order_relaxed);
	if (err < 0 && err != -EPIPE && err != -ECONNRESET)
		log_msg(LOG_WARN, CMD, "%s: %s: %s", c->peer, why, strerror(-err));
	else if (log_enabled(LOG_DEBUG))
		log_msg(LOG_DEBUG, CMD, "%s: closed (%s%s%s), %llu bytes up, %llu down", c->peer, why,
			err ? ": " : "", err ? strerror(-err) : "",
			(unsigned long long)c->d[0].bytes, (unsigned long long)c->d[1].bytes);
	if (c->inflight == 0)
		conn_free(c);
	accept_update(u); /* a slot under --max-conns may be free */
}

/* ---- moving the bytes --------------------------------------------------- */

/* Read into the empty pipe (buffer) once the source has something. */
static void dir_read(struct uconn *c, struct udir *d)
{
	struct relay_uring *u = c->u;
	struct io_uring_sqe *sqe;

	d->held = d->off = 0;
	if (!u->copy) {
		/* The splice would otherwise block an io-wq thread until
		 * the peer sends (see the top of the file). */
		sqe = sqe_get(u);
		io_uring_prep_poll_add(sqe, d->in, POLLIN);
		if (d->pipe[0] < 0) {
			/* Idle: the pipe is taken once there is data. */
			d->poll_alone = true;
			uop_submit(sqe, &d->poll);
			return;
		}
		sqe->flags |= IOSQE_IO_LINK;
		uop_submit(sqe, &d->poll);
		sqe = sqe_get(u);
		io_uring_prep_splice(sqe, d->in, -1, d->pipe[1], -1, d->pipe_cap,
				     SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	} else {
		/* recv waits for data inside the kernel by itself. */
		sqe = sqe_get(u);
		io_uring_prep_recv(sqe, d->in, d->buf, d->cap, 0);
	}
	d->io.kind = UOP_READ;
	uop_submit(sqe, &d->io);
}

/* Write what the last read got; after_poll: the socket was full. */
static void dir_write(struct uconn *c, struct udir *d, bool after_poll)
{
	struct relay_uring *u = c->u;
	struct io_uring_sqe *sqe;

	if (after_poll) {
		sqe = sqe_get(u);
		io_uring_prep_poll_add(sqe, d->out, POLLOUT);
		sqe->flags |= IOSQE_IO_LINK;
		uop_submit(sqe, &d->poll);
	}
	sqe = sqe_get(u);
	if (!u->copy)
		io_uring_prep_splice(sqe, d->pipe[0], -1, d->out, -1, d->held,
				     SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	else
		io_uring_prep_send(sqe, d->out, d->buf + d->off, d->held, MSG_NOSIGNAL);
	d->io.kind = UOP_WRITE;
	uop_submit(sqe, &d->io);
}

/*
 * Close the connection if it is done: both directions ended; or, once the
 * server has gone, its direction ended and the client has acknowledged all
 * of it (acknowledgements raise no completion: the tick asks again).
 */
static void conn_check_done(struct uconn *c)
{
	if (c->closing || !c->d[1].eof)
		return;
	if (c->srv_gone ? relay_client_has_all(c->cfd) : c->d[0].eof)
		conn_close(c, "done", c->srv_reset ? -ECONNRESET : 0);
}

static void dir_done(struct uconn *c, struct udir *d)
{
	/* Everything read has been written (held is 0): the close can
	 * follow the last byte. */
	shutdown(d->out, SHUT_WR);
	conn_check_done(c);
}

/*
 * The server has gone: the client -> server direction drops what it holds
 * (its pipe, dirty, is closed) and from now on reads the client into the
 * worker's sink, so that a client still sending can go on to read the
 * answer.  Called when that direction has no request in flight.
 */
static void up_drain(struct uconn *c)
{
	struct udir *d = &c->d[0];
	struct io_uring_sqe *sqe;

	d->held = d->off = 0;
	pipe_put(c->u, d, false);
	if (d->eof)
		return;
	/* recv waits for data inside the kernel (io_uring polls the socket
	 * itself), so no POLL_ADD in front, as with --copy. */
	sqe = sqe_get(c->u);
	io_uring_prep_recv(sqe, d->in, c->u->sink, SINK_SIZE, 0);
	d->io.kind = UOP_DRAIN;
	uop_submit(sqe, &d->io);
}

static void on_drain(struct uconn *c, struct udir *d, int res)
{
	if (res > 0) {
		c->last_active = loop_now_ms();
		up_drain(c);
		return;
	}
	switch (res) {
	case 0:
		d->eof = true;
		conn_check_done(c);
		return;
	case -EAGAIN:
	case -EINTR:
		up_drain(c);
		return;
	default:
		/* The client has gone too: nobody is left to deliver to. */
		conn_close(c, "forwarding", res);
	}
}

/*
 * The client -> server direction failed with err (writing to the server).
 * Returns true when that is the server having gone, and the direction
 * drains the client from now on; false: the caller closes.
 */
static bool up_failed(struct uconn *c, int err)
{
	if (!c->srv_gone && !relay_server_gone(c->sfd, err))
		return false;
	/* An early answer, then a close without reading everything (an HTTP
	 * 413): what the server sent before is still in its socket here and
	 * must reach the client, as it would without a relay.  A TCP write
	 * that reports the reset itself (rather than EPIPE after it) has
	 * taken it from the socket: the server direction will read only the
	 * end, so the reset is noted here. */
	c->srv_gone = true;
	if (err == -ECONNRESET)
		c->srv_reset = true;
	up_drain(c);
	conn_check_done(c);
	return true;
}

/*
 * The server -> client direction failed with err (reading the server).
 * Returns true when that is the server's reset, read behind its last
 * bytes (all written to the client by now: a read follows only a complete
 * write): the end of its stream.  Passed on now, the reset would throw away
 * what the kernel still holds for the client; it goes once the client has
 * it all (conn_check_done).  Had the client gone as well, the drain or the
 * acknowledgements say so.
 */
static bool down_failed(struct uconn *c, struct udir *d, int err)
{
	if (!c->srv_gone && !relay_server_gone(c->sfd, err))
		return false;
	c->srv_gone = c->srv_reset = true;
	d->eof = true;
	pipe_put(c->u, d, true);
	shutdown(d->out, SHUT_WR);
	/* The client -> server direction turns to draining when its
	 * request in flight completes (on_read, on_write); one waiting for
	 * a pipe has none in flight, and needs no pipe now. */
	if (c->d[0].pipe_wait) {
		pipe_wait_del(c->u, &c->d[0]);
		up_drain(c);
	}
	conn_check_done(c);
	return true;
}

/*
 * Nothing reads a socket whose stream has ended, so a reset arriving on it
 * would go unnoticed until the other side spoke.  A poll cannot wait for
 * it: io_uring always reports POLLRDHUP, which such a socket has for good.
 * The tick asks each one instead, and asks whether a client waiting for
 * the rest of a gone server's answer has it by now.
 */
static void conn_check_reset(struct uconn *c)
{
	for (int i = 0; i < 2; i++) {
		int soerr = 0;
		socklen_t len = sizeof(soerr);

		if (!c->d[i].eof || (i == 1 && c->srv_gone) ||
		    getsockopt(c->d[i].in, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || !soerr)
			continue;
		if (i == 1) {
			/* The server's reset behind its end: everything it
			 * sent has been written to the client; the reset
			 * follows once the client has it (below). */
			c->srv_gone = c->srv_reset = true;
			continue;
		}
		/* A reset received after the peer's FIN reads as EPIPE. */
		conn_close(c, "reset", soerr == EPIPE ? -ECONNRESET : -soerr);
		return;
	}
	conn_check_done(c);
}

/* Splice from d's source into the pipe it has just taken. */
static void dir_splice_in(struct uconn *c, struct udir *d)
{
	struct io_uring_sqe *sqe;

	sqe = sqe_get(c->u);
	io_uring_prep_splice(sqe, d->in, -1, d->pipe[1], -1, d->pipe_cap,
			     SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	d->io.kind = UOP_READ;
	uop_submit(sqe, &d->io);
}

/* The poll of an idle direction saw data (or an end, or an error, which
 * the splice reports): take a pipe and splice, or wait for a pipe. */
static void dir_read_now(struct uconn *c, struct udir *d)
{
	int r = pipe_get(c->u, d);

	if (r == -EAGAIN) {
		pipe_wait_add(c->u, d);
		return;
	}
	if (r < 0) {
		conn_close(c, "pipe", r);
		return;
	}
	dir_splice_in(c, d);
}

/*
 * Give the directions waiting for a pipe one each, oldest first, while
 * pipes can be had.  Called from the loop, between completions: a
 * connection closed here (a pipe failing otherwise) is no handler's.
 */
static void pipe_wait_serve(struct relay_uring *u)
{
	while (u->wait_head) {
		struct udir *d = u->wait_head;
		struct uconn *c = d->c;
		int r = pipe_get(u, d);

		if (r == -EAGAIN)
			return;
		pipe_wait_del(u, d);
		if (r < 0)
			conn_close(c, "pipe", r);
		else
			dir_splice_in(c, d);
	}
}

static void on_read(struct uconn *c, struct udir *d, int res)
{
	d->last_read = res > 0 ? (uint32_t)res : 0;
	if (res > 0 && d == &c->d[0] && c->srv_gone) {
		/* Read from the client before the server was found gone:
		 * nobody takes it now. */
		c->last_active = loop_now_ms();
		up_drain(c);
		return;
	}
	if (res > 0) {
		d->held = (uint32_t)res;
		c->last_active = loop_now_ms();
		dir_write(c, d, false);
		return;
	}
	switch (res) {
	case 0:
		d->eof = true;
		pipe_put(c->u, d, true);
		dir_done(c, d);
		return;
	case -EAGAIN:
	case -EINTR:
		/* Readable, then not (another reader cannot exist, but a
		 * wakeup can be spurious): wait again. */
		if (d == &c->d[0] && c->srv_gone)
			up_drain(c);
		else
			dir_read(c, d);
		return;
	default:
		if (d == &c->d[1] && down_failed(c, d, res))
			return;
		conn_close(c, "forwarding", res);
	}
}

static void on_write(struct uconn *c, struct udir *d, int res)
{
	struct relay_counters *rc = &c->u->w->counters;

	if (res > 0) {
		d->held -= (uint32_t)res;
		d->off += (uint32_t)res;
		d->bytes += (uint64_t)res;
		atomic_fetch_add_explicit(d->counter, (uint64_t)res, memory_order_relaxed);
		atomic_fetch_add_explicit(c->u->copy ? &rc->copied : &rc->spliced, (uint64_t)res,
					  memory_order_relaxed);
		c->last_active = loop_now_ms();
	}
	if (d == &c->d[0] && c->srv_gone) {
		/* The server went while this was being written: what is
		 * left of it is dropped, and the client's next bytes. */
		up_drain(c);
		return;
	}
	if (res > 0) {
		if (d->held) {
			dir_write(c, d, false); /* a partial write: the rest */
			return;
		}
		/* A read that filled the pipe leaves more behind it,
		 * most likely: keep the pipe for the next one. */
		if (!c->u->copy && d->last_read < d->pipe_cap)
			pipe_put(c->u, d, true);
		dir_read(c, d);
		return;
	}
	switch (res) {
	case -EAGAIN:
		/* The socket's send buffer is full. */
		dir_write(c, d, true);
		return;
	case -EINTR:
		dir_write(c, d, false);
		return;
	case 0:
		/* Nothing written of a nonempty pipe: the peer cannot take
		 * more (a shut-down socket answers EPIPE, not 0). */
		res = -EPIPE;
		break;
	}
	if (d == &c->d[0] && up_failed(c, res))
		return;
	conn_close(c, "forwarding", res);
}

static void on_connect(struct uconn *c, int res)
{
	struct relay_counters *rc = &c->u->w->counters;

	if (res == -ECANCELED && c->timed_out)
		res = -ETIMEDOUT;
	if (res < 0) {
		atomic_fetch_add_explicit(&rc->refused, 1, memory_order_relaxed);
		conn_close(c, "connect", res);
		return;
	}
	c->connecting = false;
	c->last_active = loop_now_ms();
	dir_read(c, &c->d[0]);
	dir_read(c, &c->d[1]);
}

/* ---- opening ------------------------------------------------------------ */

static void nodelay(int fd)
{
	int one = 1;

	/* Forwarded bytes leave as soon as they arrive. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int dir_init(struct relay_uring *u, struct uconn *c, struct udir *d, int in, int out)
{
	d->c = c;
	d->in = in;
	d->out = out;
	d->pipe[0] = d->pipe[1] = -1;
	if (u->copy) {
		d->buf = malloc(COPY_BUF);
		d->cap = COPY_BUF;
		return d->buf ? 0 : -ENOMEM;
	}
	return 0;
}

/* Serve the client cfd, for which the caller took a slot (slot_take). */
static void conn_start(struct relay_uring *u, int cfd)
{
	struct relay_worker *w = u->w;
	struct uconn *c;
	struct io_uring_sqe *sqe;
	int sfd, r;

	sfd = socket(relay_cfg.target.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sfd == -1) {
		r = -errno;
		log_msg(LOG_WARN, CMD, "socket for %s: %s; pausing accept %d ms", relay_cfg.target.text,
			strerror(-r), ACCEPT_BACKOFF_MS);
		close(cfd);
		atomic_fetch_sub(&relay_active, 1);
		u->accept_resume_at = loop_now_ms() + ACCEPT_BACKOFF_MS;
		accept_update(u);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfd);
		close(sfd);
		atomic_fetch_sub(&relay_active, 1);
		return;
	}
	c->u = u;
	c->cfd = cfd;
	c->sfd = sfd;
	c->connect = (struct uop){ .c = c, .kind = UOP_CONNECT };
	for (int i = 0; i < 2; i++) {
		c->d[i].poll = (struct uop){ .c = c, .kind = UOP_POLL };
		c->d[i].io = (struct uop){ .c = c, .kind = UOP_READ };
	}
	c->d[0].counter = &w->counters.up_bytes;
	c->d[1].counter = &w->counters.down_bytes;
	r = dir_init(u, c, &c->d[0], cfd, sfd);
	if (r == 0)
		r = dir_init(u, c, &c->d[1], sfd, cfd);
	c->last_active = loop_now_ms();
	if (log_enabled(LOG_WARN))
		addr_peer_text(cfd, c->peer, sizeof(c->peer));
	if (relay_cfg.listen.family != AF_UNIX)
		nodelay(cfd);
	if (relay_cfg.target.family != AF_UNIX)
		nodelay(sfd);
	c->next = u->conns;
	if (u->conns)
		u->conns->prev = c;
	u->conns = c;
	u->nconns++;
	atomic_fetch_add_explicit(&w->counters.accepted, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->counters.active, 1, memory_order_relaxed);
	if (r < 0) {
		conn_close(c, "pipe", r);
		return;
	}
	c->connecting = true;
	c->connect_deadline = c->last_active + relay_cfg.connect_timeout_ms;
	sqe = sqe_get(u);
	io_uring_prep_connect(sqe, sfd, (struct sockaddr *)&relay_cfg.target.sa, relay_cfg.target.len);
	uop_submit(sqe, &c->connect);
}

static void on_accept(struct relay_uring *u, int res, unsigned flags)
{
	if (!(flags & IORING_CQE_F_MORE)) {
		u->accept.busy = false;
		u->accept_cancelled = false;
	}
	if (res >= 0) {
		if (atomic_load(&relay_stopping)) {
			/* Raced with the stop: not served. */
			close(res);
			return;
		}
		if (u->nparked == 0 && slot_take())
			conn_start(u, res);
		else
			park(u, res);
	} else {
		switch (-res) {
		case EINVAL:
			if (u->multishot && !atomic_load(&relay_stopping)) {
				/* Kernels before 5.19 know no multishot accept and
				 * reject the flag: accept one at a time. */
				u->multishot = false;
				break;
			}
			if (!atomic_load(&relay_stopping))
				log_msg(LOG_ERROR, CMD, "accept: %s", strerror(-res));
			u->accept_resume_at = loop_now_ms() + ACCEPT_BACKOFF_MS;
			break;
		case ECANCELED:  /* ours: --max-conns, a backoff, or the stop */
		case EINTR:
		case EAGAIN:
		case ECONNABORTED:
			break;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			/* Out of fds or memory: the client stays queued;
			 * accepting again now would fail again. */
			log_msg(LOG_WARN, CMD, "accept: %s; pausing %d ms", strerror(-res),
				ACCEPT_BACKOFF_MS);
			u->accept_resume_at = loop_now_ms() + ACCEPT_BACKOFF_MS;
			break;
		default:
			if (!atomic_load(&relay_stopping))
				log_msg(LOG_ERROR, CMD, "accept: %s", strerror(-res));
			u->accept_resume_at = loop_now_ms() + ACCEPT_BACKOFF_MS;
		}
	}
	accept_update(u);
}

/* ---- the loop ----------------------------------------------------------- */

static void on_cqe(struct relay_uring *u, struct uop *op, int res, unsigned flags)
{
	struct uconn *c;
	struct udir *d;

	if (!op)
		return; /* a cancel request's own completion */
	if (op->kind == UOP_ACCEPT) {
		on_accept(u, res, flags);
		return;
	}
	c = op->c;
	op->busy = false;
	c->inflight--;
	if (c->closing) {
		if (c->inflight == 0)
			conn_free(c);
		return;
	}
	if (op->kind == UOP_CONNECT) {
		on_connect(c, res);
		return;
	}
	d = op == &c->d[0].poll || op == &c->d[0].io ? &c->d[0] : &c->d[1];
	if (op->kind == UOP_POLL) {
		/* The request linked behind it runs now, or comes back
		 * ECANCELED when the poll failed. */
		if (res < 0)
			conn_close(c, "poll", res);
		else if (d->poll_alone) {
			d->poll_alone = false;
			if (d == &c->d[0] && c->srv_gone)
				up_drain(c);
			else
				dir_read_now(c, d);
		}
		return;
	}
	if (res == -ECANCELED) {
		/* Its poll failed (that closed the connection), or it was
		 * cancelled by conn_close: either way c is closing, so this
		 * is not reached; be safe. */
		conn_close(c, "forwarding", res);
		return;
	}
	if (op->kind == UOP_READ)
		on_read(c, d, res);
	else if (op->kind == UOP_DRAIN)
		on_drain(c, d, res);
	else
		on_write(c, d, res);
}

static void on_tick(struct relay_uring *u)
{
	struct relay_worker *w = u->w;
	int64_t now = loop_now_ms();
	struct uconn *c, *next;

	if (atomic_load(&relay_stopping) && !u->stop_seen) {
		u->stop_seen = true;
		parked_drop(u);
		if (w->listen_owned && w->listen.fd >= 0) {
			close(w->listen.fd); /* the accept holds its own reference */
			w->listen.fd = -1;
		} else if (w->listen.fd >= 0) {
			/* Shared by the workers: make the kernel refuse new
			 * clients now rather than queue them (as relay.c). */
			shutdown(w->listen.fd, SHUT_RD);
		}
	}
	if (atomic_load(&relay_forcing)) {
		while (u->conns)
			conn_close(u->conns, "shutdown", 0);
	}
	/* An idle relay holds no pipe. */
	if (u->nconns == 0 && u->closing == 0)
		pool_flush(u);
	if (u->accept_resume_at && now >= u->accept_resume_at)
		u->accept_resume_at = 0;
	accept_update(u);
	for (c = u->conns; c; c = next) {
		next = c->next;
		if (c->connecting && now >= c->connect_deadline) {
			if (!c->timed_out) {
				c->timed_out = true;
				cancel_op(u, &c->connect);
			}
		} else if (!c->connecting && relay_cfg.idle_timeout_ms &&
			   now - c->last_active >= relay_cfg.idle_timeout_ms) {
			conn_close(c, "idle timeout", 0);
		} else if (c->d[0].eof || c->d[1].eof || c->srv_gone) {
			conn_check_reset(c);
		}
	}
}

int relay_uring_probe(const char **why, bool *unavailable)
{
	static const struct uring_need_op ops[] = {
		{ IORING_OP_SPLICE, "IORING_OP_SPLICE" },
		{ IORING_OP_ACCEPT, "IORING_OP_ACCEPT" },
		{ IORING_OP_CONNECT, "IORING_OP_CONNECT" },
		{ IORING_OP_POLL_ADD, "IORING_OP_POLL_ADD" },
		{ IORING_OP_ASYNC_CANCEL, "IORING_OP_ASYNC_CANCEL" },
		{ IORING_OP_RECV, "IORING_OP_RECV" },
		{ IORING_OP_SEND, "IORING_OP_SEND" },
	};

	/* IORING_FEAT_NODROP (5.5): completions never lost when the queue is
	 * full, which sqe_get() relies on; EXT_ARG (5.11): the tick's
	 * timed wait. */
	return uring_probe(ops, sizeof(ops) / sizeof(ops[0]), IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG,
			   "this kernel's io_uring is too old (no IORING_FEAT_NODROP or EXT_ARG)", why, unavailable);
}

int relay_uring_new(struct relay_worker *w)
{
	struct relay_uring *u = calloc(1, sizeof(*u));
	struct rlimit rl;
	int r;

	if (!u)
		return -ENOMEM;
	*u = (struct relay_uring){
		.w = w,
		.accept = { .kind = UOP_ACCEPT },
		.multishot = true,
		.copy = (relay_cfg.link_opts.flags & ZCIO_F_COPY) != 0,
		.pipe_size = relay_cfg.link_opts.pipe_size ? relay_cfg.link_opts.pipe_size
							   : DEFAULT_PIPE_SIZE,
	};
	u->nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < UINT_MAX ?
			    (unsigned)rl.rlim_cur : UINT_MAX;
	u->sink = malloc(SINK_SIZE);
	if (!u->sink) {
		free(u);
		return -ENOMEM;
	}
	r = uring_ring_init(&u->ring, SQ_ENTRIES, CQ_ENTRIES);
	if (r < 0) {
		free(u->sink);
		free(u);
		return r;
	}
	w->uring = u;
	return 0;
}

void relay_uring_run(struct relay_worker *w)
{
	struct relay_uring *u = w->uring;
	int64_t next_tick = loop_now_ms() + TICK_MS;
	int r;

	accept_update(u);
	for (;;) {
		struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = TICK_MS * 1000000L };
		struct io_uring_cqe *cqe;
		int64_t now;

		r = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
		if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			log_msg(LOG_ERROR, CMD, "io_uring wait: %s", strerror(-r));
			abort();
		}
		/* One at a time, marked seen before it is handled: handlers
		 * submit, and a full submission queue is flushed then. */
		while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
			struct uop *op = io_uring_cqe_get_data(cqe);
			int res = cqe->res;
			unsigned flags = cqe->flags;

			io_uring_cqe_seen(&u->ring, cqe);
			on_cqe(u, op, res, flags);
		}
		/* Slots freed here or in another worker go to the clients
		 * parked first (a connection closing may not start one
		 * itself: that could fail and close, and so on). */
		while (u->nparked && !atomic_load(&relay_stopping) && slot_take()) {
			int cfd = u->parked[0];

			memmove(u->parked, u->parked + 1, --u->nparked * sizeof(*u->parked));
			conn_start(u, cfd);
		}
		pipe_wait_serve(u);
		accept_update(u);
		now = loop_now_ms();
		if (now >= next_tick || atomic_load(&relay_stopping)) {
			on_tick(u);
			next_tick = now + TICK_MS;
		}
		if (u->stop_seen && u->nconns == 0 && u->closing == 0 && !u->accept.busy)
			break;
	}
	pool_flush(u);
	parked_drop(u);
	io_uring_queue_exit(&u->ring);
	w->uring = NULL;
	free(u->parked);
	free(u->sink);
	free(u);
	w->loop.stop = true;
}

#endif /* ZCIO_HAVE_LIBURING */
