/*
 * fanout.c - one source, many destinations, by tee() rather than by copy.
 *
 * Stream positions are absolute byte offsets: `tail` is how many bytes the
 * fan-out has taken from its source, `head` how many it has let go of; the
 * intake holds [head, tail).  Each destination has a position `pos` (the
 * next byte it needs), with head <= pos <= tail: a destination at head can
 * take the intake's bytes, one ahead of head waits until head reaches it,
 * because tee() always duplicates from the front of a pipe and cannot start
 * at an offset.  The intake is consumed up to the smallest pos.
 *
 * Two kinds of intake:
 *
 *   pipe    a pool pipe the source is spliced into.  Each destination at
 *           head gets tee(intake -> its pipe) except one, the "last
 *           consumer", which gets splice(intake -> its fd) of the bytes
 *           every other destination already has: that empties the intake
 *           without a separate syscall.  When no destination can be the
 *           last consumer, the bytes everyone has are spliced to
 *           /dev/null.
 *   memory  a ring buffer the source is read() into; each destination is
 *           written from it at its own position.  This is the copy
 *           fallback: ZCIO_F_COPY, tee() or splice() unsupported, or no
 *           pipe to be had.  Switching to it moves the intake pipe's bytes
 *           into the ring, so nothing is lost or reordered.
 *
 * A pipe source goes through the intake too, rather than being tee()d from
 * directly.  The fan-out must count the bytes it holds, as HAProxy does
 * (EAGAIN from tee() out of a pipe someone else fills cannot say "empty"
 * from "no room", and the drop policy must know when the intake is full),
 * and moving a pipe's buffers into the intake is a reference move, not a
 * copy, that lets one round of tee()s serve up to the intake's 1 MiB when
 * the caller's pipe holds only 64 KiB at a time.
 *
 * Each destination takes its bytes one of three ways (its route):
 *
 *   direct  it is a pipe: tee() into it;
 *   pipe    tee() into a pool pipe of its own, spliced out to its fd;
 *   copy    tee() into its own pipe, then read() into a small buffer and
 *           write() out: terminals, O_APPEND files, datagram sockets, and
 *           fds that refused splice.
 *
 * What a destination holds, its buffer first (read from the front of its
 * pipe), then its pipe, is always delivered before anything it takes
 * next, in either intake mode.
 *
 * Drop policy: a destination at the head whose fd is full holds everyone
 * back; one that does so at every look for drop_ms is removed (see
 * drop_laggards()), and zcio_fanout_timeout() makes the caller look again
 * when that time is up.
 *
 * Wait discipline: a destination is `blocked` once its fd returned EAGAIN
 * and is not tried again until poll() says it is writable (one poll() for
 * all blocked destinations at the start of a pump); the source is polled
 * for only when it returned EAGAIN with room in the intake.  So the fds
 * zcio_fanout_pollfds() names are exactly those that stopped the fan-out.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "endpoint.h"
#include "export.h"
#include "fallback.h"
#include "pipe.h"
#include "sigpipe.h"
#include "stats.h"
#include "sys.h"
#include "thread.h"
#include "zcio.h"

/* A copy-route destination's buffer: one read() from its pipe. */
#define FO_BUF_SIZE (64u * 1024)
/* Datagram destinations get at most this per datagram. */
#define FO_DGRAM_MAX (32u * 1024)
/* Splice and tee take a size_t, but move at most this per call. */
#define FO_MAX_CALL 0x7ffff000u
/* The smallest memory ring. */
#define FO_RING_MIN (64u * 1024)
/* How long a drop destination may hold the others back by default: long
 * enough for a reader that is merely late after a burst (a scheduler
 * tick or two), short enough to be a hiccup for the others. */
#define FO_DROP_MS 100

enum fo_route {
	FO_DIRECT,  /* a pipe: tee() straight into it */
	FO_PIPE,    /* tee() into its own pipe, splice() out */
	FO_COPY,    /* tee() into its own pipe, read() + write() out */
};

struct fo_dest {
	int id;
	uint32_t flags;
	struct zcio__endpoint ep;
	enum fo_route route;
	struct zcio__pipe pipe;     /* its own pipe (routes pipe, copy) */
	unsigned char *buf;         /* copy route: read from the pipe, not written */
	size_t buf_off, buf_len;
	uint64_t joined_at;
	uint64_t pos;               /* next stream offset it needs */
	bool blocked;               /* its fd said EAGAIN; not seen ready since */
	bool polled;                /* scratch for recheck_blocked() */
	int64_t behind_since;       /* drop policy: holding others back since
	                               (monotonic ms), 0 when not */
	bool dead;                  /* removed; compacted away after the round */
	bool nonblock;              /* O_NONBLOCK on its fd */
	uint32_t reported;          /* a bit per zcio_reason recorded */
	struct zcio_stats st;
};

struct zcio_fanout {
	struct zcio__endpoint in;
	uint32_t flags;             /* ZCIO_F_* */
	uint32_t pipe_size;
	bool in_nonblock;

	bool mem;                   /* the intake is the memory ring */
	struct zcio__pipe intake;
	unsigned char *ring;
	size_t ring_cap;            /* a power of two */
	uint64_t head, tail;

	bool src_done;
	int src_err;                /* -errno the source failed with, 0 */
	bool src_wait;              /* the source returned EAGAIN: poll it */
	bool intake_full;           /* EAGAIN from the source while it had data */
	bool last_eagain;           /* the last pump returned -EAGAIN */
	bool saw_epipe;             /* this pump got EPIPE from a destination */
	bool guard_sigpipe;         /* some destination can raise SIGPIPE */
	int devnull;                /* -1 until needed; -2 if it cannot be opened */
	int64_t drop_ms;            /* drop policy: how long a laggard may hold
	                               the others back */
	int64_t timeout_at;         /* pump again then (monotonic ms), 0: no need */
	bool drop_rechecked;        /* drop_laggards() polled in this pump */
	uint32_t reported;          /* fan-out-wide fallbacks recorded */

	struct fo_dest **dests;
	unsigned int ndests, dests_cap;
	struct pollfd *pfd;         /* scratch for polling blocked destinations */
	unsigned int pfd_cap;
	struct zcio_fanout_dest *gone; /* removed by the fan-out, not yet reported */
	unsigned int ngone, gone_cap;
	int next_id;
};

static bool is_file(enum zcio__kind k)
{
	return k == ZCIO__REG || k == ZCIO__BLK;
}

static size_t buffered(const struct fo_dest *d)
{
	return d->buf_len - d->buf_off;
}

static uint64_t held(const struct fo_dest *d)
{
	return d->pipe.bytes + buffered(d);
}

/* Capacity of the intake in use. */
static uint64_t intake_cap(const struct zcio_fanout *f)
{
	return f->mem ? f->ring_cap : f->intake.cap;
}

static void delivered(struct fo_dest *d, struct zcio_stats *st, int path, uint64_t n)
{
	zcio__stats_delivered(&d->st, path, n);
	zcio__stats_delivered(st, path, n);
}

static void count_call(struct fo_dest *d, struct zcio_stats *st)
{
	st->syscalls++;
	if (d)
		d->st.syscalls++;
}

/* Record a destination's fallback once per reason, in its stats and the
 * call's. */
static void note_dest(struct fo_dest *d, struct zcio_stats *st, int from, int to, int why,
		      int err)
{
	if (d->reported & (1u << why))
		return;
	d->reported |= 1u << why;
	zcio__stats_fallback(&d->st, from, to, why, err, d->pos);
	zcio__stats_fallback(st, from, to, why, err, d->pos);
}

/* Record a fan-out-wide fallback once per reason. */
static void note(struct zcio_fanout *f, struct zcio_stats *st, int from, int why, int err)
{
	if (f->reported & (1u << why))
		return;
	f->reported |= 1u << why;
	zcio__stats_fallback(st, from, ZCIO_PATH_COPY, why, err, f->tail);
}

/* tee() errnos that mean "no tee here", with the kernel behaviour behind
 * them; 0 for a real error.  ENOSYS and EPERM go through the process-wide
 * cache, like every cached syscall. */
static int tee_unsupported(int err)
{
	int why = zcio__sc_classify(ZCIO__SC_TEE, err);

	if (why)
		return why; /* ENOSYS: no tee in this kernel; EPERM: seccomp */
	switch (err) {
	case EINVAL:
		/* An end is not a pipe (a FIFO that is not one any more
		 * cannot happen, but a caller's "pipe" may be a pipe-like
		 * device), both ends are the same pipe, or a pipe type tee
		 * refuses (watch queues). */
		return ZCIO_WHY_REFUSED;
	default:
		return 0;
	}
}

/* ---- destinations -------------------------------------------------------- */

static void fill_info(const struct zcio_fanout *f, const struct fo_dest *d, int state,
		      int err, struct zcio_fanout_dest *info)
{
	*info = (struct zcio_fanout_dest){
		.id = d->id,
		.fd = d->ep.fd,
		.flags = d->flags,
		.state = state,
		.err = err,
		.wait = d->blocked ? ZCIO_WAIT_OUT : ZCIO_WAIT_NONE,
		.joined_at = d->joined_at,
		.held = held(d),
		.lag = f->tail - d->pos,
		.stats = d->st,
	};
	info->stats.pending = held(d);
	info->stats.wait = info->wait;
}

static int live_state(const struct zcio_fanout *f, const struct fo_dest *d)
{
	return f->src_done && d->pos == f->tail && !held(d) ? ZCIO_FANOUT_DONE : ZCIO_FANOUT_ACTIVE;
}

static void dest_release(struct fo_dest *d)
{
	if (d->pipe.bytes)
		zcio__pipe_kill(&d->pipe); /* dirty: never pooled */
	else
		zcio__pipe_put(&d->pipe);
	free(d->buf);
	d->buf = NULL;
	d->buf_off = d->buf_len = 0;
}

/* The fan-out gives up on d: queue it for zcio_fanout_removed(). */
static void dest_end(struct zcio_fanout *f, struct fo_dest *d, int state, int err)
{
	struct zcio_fanout_dest info;

	if (d->dead)
		return;
	if (err == -EPIPE)
		f->saw_epipe = true;
	fill_info(f, d, state, err, &info);
	info.wait = ZCIO_WAIT_NONE;
	if (f->ngone == f->gone_cap) {
		unsigned int cap = f->gone_cap ? f->gone_cap * 2 : 8;
		struct zcio_fanout_dest *g = realloc(f->gone, cap * sizeof(*g));

		if (g) {
			f->gone = g;
			f->gone_cap = cap;
		}
	}
	/* Out of memory: the destination still goes; only its report is
	 * lost (zcio_fanout_remove() then answers -ENOENT). */
	if (f->ngone < f->gone_cap)
		f->gone[f->ngone++] = info;
	dest_release(d);
	d->dead = true;
}

/* An error on d's fd: closed reader or failure. */
static void dest_error(struct zcio_fanout *f, struct fo_dest *d, int err)
{
	dest_end(f, d, err == -EPIPE || err == -ECONNRESET ? ZCIO_FANOUT_CLOSED : ZCIO_FANOUT_FAILED,
		 err);
}

/* Free the dead destinations and close the gaps. */
static void compact(struct zcio_fanout *f)
{
	unsigned int i, j = 0;

	for (i = 0; i < f->ndests; i++) {
		if (f->dests[i]->dead)
			free(f->dests[i]);
		else
			f->dests[j++] = f->dests[i];
	}
	f->ndests = j;
}

static struct fo_dest *find(const struct zcio_fanout *f, int id)
{
	unsigned int i;

	for (i = 0; i < f->ndests; i++) {
		if (f->dests[i]->id == id && !f->dests[i]->dead)
			return f->dests[i];
	}
	return NULL;
}

/* Grow a caller's pipe (ZCIO_F_GROW_PIPE): only up; failure is ignored. */
static void grow_pipe(int fd, uint32_t want)
{
	int cur = zcio__pipe_get_size(fd);

	if (cur > 0 && (uint32_t)cur < want)
		(void)zcio__pipe_set_size(fd, want);
}

/* ---- creation -------------------------------------------------------------- */

ZCIO_EXPORT int zcio_fanout_new(int in, const struct zcio_opts *opts, struct zcio_fanout **fp)
{
	static const struct zcio_opts defaults;
	const struct zcio_opts *o = opts ? opts : &defaults;
	struct zcio_fanout *f;
	int r;

	if (!fp)
		return -EINVAL;
	*fp = NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->intake = ZCIO__PIPE_NONE;
	f->devnull = -1;
	r = zcio__endpoint_init(&f->in, in);
	if (r == 0 && f->in.kind == ZCIO__DIR)
		r = -EISDIR;
	if (r < 0) {
		free(f);
		return r;
	}
	f->flags = o->flags;
	f->pipe_size = o->pipe_size;
	f->drop_ms = o->timeout_ms > 0 ? o->timeout_ms : o->timeout_ms < 0 ? 0 : FO_DROP_MS;
	f->in_nonblock = zcio__endpoint_nonblock(&f->in);
	if ((f->flags & ZCIO_F_GROW_PIPE) && !(f->flags & ZCIO_F_COPY) && f->in.kind == ZCIO__PIPE)
		grow_pipe(in, zcio__pipe_size_for(f->pipe_size));
	*fp = f;
	return 0;
}

ZCIO_EXPORT int zcio_fanout_add(struct zcio_fanout *f, int fd, uint32_t flags)
{
	struct fo_dest *d;
	struct sigaction sa;
	int r;

	if (!f || (flags & ~ZCIO_FANOUT_DROP) || f->next_id == INT_MAX)
		return -EINVAL;
	if (f->ndests == f->dests_cap) {
		unsigned int cap = f->dests_cap ? f->dests_cap * 2 : 8;
		struct fo_dest **nd = realloc(f->dests, cap * sizeof(*nd));

		if (!nd)
			return -ENOMEM;
		f->dests = nd;
		f->dests_cap = cap;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	r = zcio__endpoint_init(&d->ep, fd);
	if (r == 0 && d->ep.kind == ZCIO__DIR)
		r = -EISDIR;
	if (r < 0) {
		free(d);
		return r;
	}
	d->id = f->next_id++;
	d->flags = flags;
	d->pipe = ZCIO__PIPE_NONE;
	d->joined_at = d->pos = f->tail;
	d->nonblock = zcio__endpoint_nonblock(&d->ep);
	switch (d->ep.kind) {
	case ZCIO__PIPE:
		d->route = FO_DIRECT;
		break;
	case ZCIO__REG:
		/* splice() into an O_APPEND file fails with EINVAL. */
		d->route = zcio__endpoint_append(&d->ep) ? FO_COPY : FO_PIPE;
		break;
	case ZCIO__BLK:
	case ZCIO__STREAM:
	case ZCIO__CHR:
		d->route = FO_PIPE;
		break;
	default:
		/* Terminals (line discipline, no splice_write), datagram
		 * sockets (splice would merge messages), eventfd and friends. */
		d->route = FO_COPY;
		break;
	}
	if (d->route == FO_DIRECT && (f->flags & ZCIO_F_GROW_PIPE) && !(f->flags & ZCIO_F_COPY))
		grow_pipe(fd, zcio__pipe_size_for(f->pipe_size));
	/* A program that ignores SIGPIPE needs no masking around pumps. */
	if (zcio__kind_can_sigpipe(d->ep.kind) &&
	    !(sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN))
		f->guard_sigpipe = true;
	f->dests[f->ndests++] = d;
	return d->id;
}

/* ---- the memory intake ---------------------------------------------------- */

static uint64_t ring_size_for(uint32_t pipe_size)
{
	uint64_t want = zcio__pipe_size_for(pipe_size), cap = FO_RING_MIN;

	while (cap < want)
		cap <<= 1;
	return cap;
}

/*
 * Continue with the memory intake, from exactly where the pipe stopped:
 * the intake pipe's bytes [head, tail) are read into the ring at their
 * stream offsets.  Destinations keep what they hold and deliver it first.
 */
static int switch_to_mem(struct zcio_fanout *f, struct zcio_stats *st, int from, int why, int err)
{
	size_t cap;

	if (f->mem)
		return 0;
	cap = (size_t)ring_size_for(f->pipe_size);
	if (f->intake.rd >= 0 && f->intake.cap > cap) {
		while (cap < f->intake.cap)
			cap <<= 1;
	}
	f->ring = malloc(cap);
	if (!f->ring)
		return -ENOMEM;
	f->ring_cap = cap;
	while (f->intake.rd >= 0 && f->intake.bytes) {
		uint64_t at = f->tail - f->intake.bytes;
		size_t off = (size_t)(at & (cap - 1));
		size_t n = cap - off < f->intake.bytes ? cap - off : f->intake.bytes;
		ssize_t r = zcio__read(f->intake.rd, f->ring + off, n);

		st->syscalls++;
		if (r <= 0) {
			/* Our own pipe, holding bytes we counted: a read cannot
			 * fail.  If it does, the stream cannot go on whole. */
			free(f->ring);
			f->ring = NULL;
			return r < 0 ? (int)r : -EIO;
		}
		f->intake.bytes -= (uint32_t)r;
	}
	zcio__pipe_put(&f->intake);
	f->mem = true;
	f->intake_full = false;
	note(f, st, from, why, err);
	return 0;
}

/* ---- delivering what a destination holds --------------------------------- */

/*
 * Write n bytes from memory to d.  Sockets get MSG_DONTWAIT, so even a
 * blocking socket never puts the pump to sleep.  Another blocking fd (a
 * pipe, terminal or device) of a drop destination is polled first and
 * given at most PIPE_BUF bytes, which a writable pipe takes without
 * waiting; a block destination may simply wait there, as everyone waits
 * for it anyway.
 */
static ssize_t write_out(struct fo_dest *d, const unsigned char *p, size_t n)
{
	if (d->ep.kind == ZCIO__STREAM || d->ep.kind == ZCIO__DGRAM) {
		if (d->ep.kind == ZCIO__DGRAM && n > FO_DGRAM_MAX)
			n = FO_DGRAM_MAX;
		return zcio__send(d->ep.fd, p, n, MSG_DONTWAIT);
	}
	if ((d->flags & ZCIO_FANOUT_DROP) && !d->nonblock && !is_file(d->ep.kind)) {
		struct pollfd pf = { .fd = d->ep.fd, .events = POLLOUT };
		int r = zcio__poll(&pf, 1, 0);

		if (r == 0)
			return -EAGAIN;
		if (n > PIPE_BUF)
			n = PIPE_BUF;
	}
	return zcio__write(d->ep.fd, p, n);
}

/* The destination refused splice: copy from its pipe from now on. */
static void to_copy_route(struct fo_dest *d, struct zcio_stats *st, int why, int err)
{
	int from = d->route == FO_DIRECT ? ZCIO_PATH_TEE : ZCIO_PATH_SPLICE_PIPE;

	d->route = FO_COPY;
	note_dest(d, st, from, ZCIO_PATH_COPY, why, err);
}

/*
 * Deliver what d holds: its buffer, then its pipe.  Returns 0 (d's fd
 * blocked, it holds nothing, or it was removed) or -ENOMEM; *progress is
 * set when bytes moved.
 */
static int deliver_held(struct zcio_fanout *f, struct fo_dest *d, struct zcio_stats *st,
			bool *progress)
{
	while (!d->dead && held(d)) {
		ssize_t r;

		if (buffered(d)) {
			r = write_out(d, d->buf + d->buf_off, buffered(d));
			count_call(d, st);
			if (r > 0) {
				d->buf_off += (size_t)r;
				if (d->buf_off == d->buf_len)
					d->buf_off = d->buf_len = 0;
				delivered(d, st, ZCIO_PATH_COPY, (uint64_t)r);
				*progress = true;
			} else if (r == -EAGAIN) {
				d->blocked = true;
				return 0;
			} else {
				dest_error(f, d, r == 0 ? -EIO : (int)r);
				*progress = true;
			}
			continue;
		}
		if (d->route == FO_COPY) {
			if (!d->buf) {
				d->buf = malloc(FO_BUF_SIZE);
				if (!d->buf)
					return -ENOMEM;
			}
			r = zcio__read(d->pipe.rd, d->buf,
				       d->pipe.bytes < FO_BUF_SIZE ? d->pipe.bytes : FO_BUF_SIZE);
			st->syscalls++;
			if (r <= 0) {
				dest_error(f, d, r < 0 ? (int)r : -EIO); /* our pipe: cannot happen */
				continue;
			}
			d->pipe.bytes -= (uint32_t)r;
			d->buf_off = 0;
			d->buf_len = (size_t)r;
			continue;
		}
		r = zcio__splice(d->pipe.rd, NULL, d->ep.fd, NULL, d->pipe.bytes, SPLICE_F_NONBLOCK);
		count_call(d, st);
		if (r > 0) {
			d->pipe.bytes -= (uint32_t)r;
			delivered(d, st, ZCIO_PATH_TEE, (uint64_t)r);
			*progress = true;
		} else if (r == -EAGAIN) {
			d->blocked = true;
			return 0;
		} else if (r == 0) {
			dest_error(f, d, -EIO); /* our pipe holds bytes: cannot happen */
			*progress = true;
		} else {
			int why = zcio__splice_unsupported((int)-r);

			if (why)
				to_copy_route(d, st, why, (int)-r);
			else
				dest_error(f, d, (int)r);
			*progress = true;
		}
	}
	return 0;
}

/* ---- the pipe intake ------------------------------------------------------ */

/* d's own pipe, taken on first use and kept while d lives (handing it back
 * between rounds would cost two syscalls a round).  Returns 0, or -errno
 * when the pool has none to give. */
static int dest_pipe(struct zcio_fanout *f, struct fo_dest *d)
{
	if (d->pipe.rd >= 0)
		return 0;
	return zcio__pipe_get(&d->pipe, f->pipe_size);
}

/*
 * Give d a duplicate of the intake's bytes with tee().  Returns 0 or
 * -errno for a fan-out-wide problem (the caller switches to copying).
 */
static int take_tee(struct zcio_fanout *f, struct fo_dest *d, struct zcio_stats *st,
		    bool *progress)
{
	uint64_t n = f->tail - f->head;
	int target, why;
	ssize_t r;

	if (d->route == FO_DIRECT) {
		if (d->blocked)
			return 0;
		target = d->ep.fd;
	} else {
		r = dest_pipe(f, d);
		if (r < 0) {
			/* Pool cap, EMFILE, or pipes clamped: this destination
			 * cannot have a pipe, so the fan-out copies. */
			return switch_to_mem(f, st, ZCIO_PATH_TEE, ZCIO_WHY_NO_PIPE, (int)-r);
		}
		if (d->pipe.bytes >= d->pipe.cap)
			return 0; /* full: it waits for its fd */
		target = d->pipe.wr;
	}
	if (n > FO_MAX_CALL)
		n = FO_MAX_CALL;
	r = zcio__tee(f->intake.rd, target, (size_t)n, SPLICE_F_NONBLOCK);
	count_call(d, st);
	if (r > 0) {
		d->pos += (uint64_t)r;
		if (d->route == FO_DIRECT)
			delivered(d, st, ZCIO_PATH_TEE, (uint64_t)r);
		else
			d->pipe.bytes += (uint32_t)r;
		*progress = true;
		return 0;
	}
	if (r == -EAGAIN) {
		/* Its pipe has no free slot.  Our own pipe is emptied into
		 * its fd before each tee, so that fd is what blocked. */
		if (d->route == FO_DIRECT || d->pipe.bytes)
			d->blocked = true;
		return 0;
	}
	if (r == 0)
		return -EIO; /* the intake holds n bytes: cannot happen */
	why = tee_unsupported((int)-r);
	if (d->route == FO_DIRECT && why == ZCIO_WHY_REFUSED) {
		/* This pipe refuses tee: give it a pipe of ours to splice
		 * from. */
		d->route = FO_PIPE;
		note_dest(d, st, ZCIO_PATH_TEE, ZCIO_PATH_SPLICE_PIPE, why, (int)-r);
		*progress = true;
		return 0;
	}
	if (why)
		return switch_to_mem(f, st, ZCIO_PATH_TEE, why, (int)-r);
	if (d->route == FO_DIRECT) {
		dest_error(f, d, (int)r); /* -EPIPE: its reader has gone */
		*progress = true;
		return 0;
	}
	/* tee between two pipes of ours failed (ENOMEM): copy. */
	return switch_to_mem(f, st, ZCIO_PATH_TEE, ZCIO_WHY_REFUSED, (int)-r);
}

/*
 * The last consumer: splice n bytes from the intake straight to d, which
 * empties the intake as it goes.  Returns 0 or -errno (fan-out-wide).
 */
static int take_splice(struct zcio_fanout *f, struct fo_dest *d, uint64_t n,
		       struct zcio_stats *st, bool *progress)
{
	ssize_t r;
	int why;

	if (n > FO_MAX_CALL)
		n = FO_MAX_CALL;
	r = zcio__splice(f->intake.rd, NULL, d->ep.fd, NULL, (size_t)n, SPLICE_F_NONBLOCK);
	count_call(d, st);
	if (r > 0) {
		f->head += (uint64_t)r;
		f->intake.bytes -= (uint32_t)r;
		f->intake_full = false;
		d->pos += (uint64_t)r;
		delivered(d, st, ZCIO_PATH_SPLICE_PIPE, (uint64_t)r);
		*progress = true;
		return 0;
	}
	if (r == -EAGAIN) {
		d->blocked = true;
		return 0;
	}
	if (r == 0)
		return -EIO; /* the intake holds n bytes: cannot happen */
	why = zcio__splice_unsupported((int)-r);
	if (why == ZCIO_WHY_NOSYS || why == ZCIO_WHY_FORBIDDEN)
		return switch_to_mem(f, st, ZCIO_PATH_SPLICE_PIPE, why, (int)-r);
	if (why) {
		/* This fd refuses splice (no splice_write): nothing moved. */
		to_copy_route(d, st, why, (int)-r);
		*progress = true;
		return 0;
	}
	dest_error(f, d, (int)r);
	*progress = true;
	return 0;
}

/* Can d be the last consumer: would a splice from the intake reach its fd
 * directly, in order, now? */
static bool can_splice_last(const struct fo_dest *d)
{
	if (d->blocked)
		return false;
	return d->route == FO_DIRECT || (d->route == FO_PIPE && !held(d));
}

/* Give the intake's bytes to every destination waiting at head. */
static int distribute(struct zcio_fanout *f, struct zcio_stats *st, bool *progress)
{
	struct fo_dest *last = NULL;
	unsigned int i;
	uint64_t m;
	int r;

	for (i = 0; i < f->ndests; i++) {
		struct fo_dest *d = f->dests[i];

		if (!d->dead && d->pos == f->head && can_splice_last(d)) {
			/* A pipe-route destination's splice saves a hop (no
			 * tee into its pipe, no splice out): prefer it. */
			if (!last || (last->route == FO_DIRECT && d->route == FO_PIPE))
				last = d;
		}
	}
	for (i = 0; i < f->ndests && !f->mem; i++) {
		struct fo_dest *d = f->dests[i];

		if (d->dead || d == last || d->pos != f->head)
			continue;
		r = take_tee(f, d, st, progress);
		if (r < 0)
			return r;
	}
	if (!last || f->mem || last->dead)
		return 0;
	/* The last consumer may take what every other destination has. */
	m = f->tail;
	for (i = 0; i < f->ndests; i++) {
		struct fo_dest *d = f->dests[i];

		if (!d->dead && d != last && d->pos < m)
			m = d->pos;
	}
	if (m > f->head)
		return take_splice(f, last, m - f->head, st, progress);
	return take_tee(f, last, st, progress);
}

/* The smallest position of a live destination; tail when there is none. */
static uint64_t min_pos(const struct zcio_fanout *f)
{
	uint64_t m = f->tail;
	unsigned int i;

	for (i = 0; i < f->ndests; i++) {
		if (!f->dests[i]->dead && f->dests[i]->pos < m)
			m = f->dests[i]->pos;
	}
	return m;
}

/* Let go of the intake's bytes every destination has: splice them to
 * /dev/null (which only drops the page references), or read them into
 * the thread's buffer if /dev/null cannot be had. */
static int discard(struct zcio_fanout *f, uint64_t n, struct zcio_stats *st, bool *progress)
{
	while (n) {
		size_t want = n > FO_MAX_CALL ? FO_MAX_CALL : (size_t)n;
		ssize_t r = -1;

		if (f->devnull == -1) {
			int fd = zcio__open("/dev/null", O_WRONLY);

			f->devnull = fd >= 0 ? fd : -2;
		}
		if (f->devnull >= 0) {
			r = zcio__splice(f->intake.rd, NULL, f->devnull, NULL, want, SPLICE_F_NONBLOCK);
			st->syscalls++;
			if (r < 0) {
				/* /dev/null refused splice (a sandbox's fake
				 * one): read instead, from now on. */
				zcio__close(f->devnull);
				f->devnull = -2;
			}
		}
		if (f->devnull < 0) {
			unsigned char *buf = zcio__thread_buffer();

			if (!buf)
				return -ENOMEM;
			r = zcio__read(f->intake.rd, buf,
				       want < ZCIO__COPY_BUFFER_SIZE ? want : ZCIO__COPY_BUFFER_SIZE);
			st->syscalls++;
		}
		if (r <= 0)
			return r < 0 ? (int)r : -EIO; /* our own pipe: cannot happen */
		f->head += (uint64_t)r;
		f->intake.bytes -= (uint32_t)r;
		f->intake_full = false;
		n -= (uint64_t)r;
		*progress = true;
	}
	return 0;
}

/* Splice from the source into the intake.  Returns bytes taken, 0 when
 * nothing was (source empty, intake full, or a state change that counts as
 * progress through *progress), or -errno for a failed source. */
static int64_t fill_pipe(struct zcio_fanout *f, uint64_t budget, struct zcio_stats *st,
			 bool *progress)
{
	uint64_t room = f->intake.cap - f->intake.bytes;
	ssize_t r;
	int why;

	if (room == 0) {
		f->intake_full = true;
		return 0;
	}
	if (room > budget)
		room = budget;
	if (room > FO_MAX_CALL)
		room = FO_MAX_CALL;
	for (int tries = 0;; tries++) {
		struct pollfd pf = { .fd = f->in.fd, .events = POLLIN };

		r = zcio__splice(f->in.fd, NULL, f->intake.wr, NULL, (size_t)room, SPLICE_F_NONBLOCK);
		st->syscalls++;
		if (r != -EAGAIN)
			break;
		/*
		 * Either the source has nothing, or the intake has no free
		 * slot (a pipe's slots can run out before its bytes: each
		 * spliced socket fragment takes a whole one).  An empty
		 * intake settles it.  Otherwise ask poll() about the source,
		 * and if it has data try once more, since the data may have
		 * arrived just after the splice: only a second EAGAIN with
		 * data waiting means the intake is full.
		 */
		if (!f->intake.bytes || zcio__poll(&pf, 1, 0) <= 0) {
			f->src_wait = true;
			return 0;
		}
		if (tries) {
			f->intake_full = true;
			return 0;
		}
	}
	if (r > 0) {
		f->tail += (uint64_t)r;
		f->intake.bytes += (uint32_t)r;
		return r;
	}
	if (r == 0) {
		f->src_done = true;
		*progress = true;
		return 0;
	}
	why = zcio__splice_unsupported((int)-r);
	if (why) {
		int e = switch_to_mem(f, st, ZCIO_PATH_SPLICE_PIPE, why, (int)-r);

		if (e < 0)
			return e;
		*progress = true;
		return 0;
	}
	return r;
}

/* ---- the memory intake at work -------------------------------------------- */

/* Write each destination's share of the ring. */
static void mem_deliver(struct zcio_fanout *f, struct zcio_stats *st, bool *progress)
{
	size_t mask = f->ring_cap - 1;
	unsigned int i;

	for (i = 0; i < f->ndests; i++) {
		struct fo_dest *d = f->dests[i];

		while (!d->dead && !d->blocked && !held(d) && d->pos < f->tail) {
			size_t off = (size_t)(d->pos & mask);
			uint64_t n = f->tail - d->pos;
			ssize_t r;

			if (n > f->ring_cap - off)
				n = f->ring_cap - off;
			r = write_out(d, f->ring + off, (size_t)n);
			count_call(d, st);
			if (r > 0) {
				d->pos += (uint64_t)r;
				delivered(d, st, ZCIO_PATH_COPY, (uint64_t)r);
				*progress = true;
			} else if (r == -EAGAIN) {
				d->blocked = true;
			} else {
				dest_error(f, d, r == 0 ? -EIO : (int)r);
				*progress = true;
			}
		}
	}
}

/* read() from the source into the ring.  Same returns as fill_pipe(). */
static int64_t fill_mem(struct zcio_fanout *f, uint64_t budget, struct zcio_stats *st)
{
	size_t off = (size_t)(f->tail & (f->ring_cap - 1));
	uint64_t room = f->ring_cap - (f->tail - f->head);
	ssize_t r;

	if (room == 0) {
		f->intake_full = true;
		return 0;
	}
	if (room > f->ring_cap - off)
		room = f->ring_cap - off;
	if (room > budget)
		room = budget;
	r = zcio__read(f->in.fd, f->ring + off, (size_t)room);
	st->syscalls++;
	if (r > 0) {
		f->tail += (uint64_t)r;
		return r;
	}
	if (r == 0) {
		f->src_done = true;
		return 0;
	}
	if (r == -EAGAIN) {
		f->src_wait = true;
		return 0;
	}
	return r;
}

/* ---- the pump ---------------------------------------------------------------- */

/*
 * Clear `blocked` on the destinations (of those `only` is true for) whose
 * fds are writable again, with one poll() for all of them.  When the poll
 * cannot be made, they are simply tried again.  Returns how many were
 * cleared.
 */
static unsigned int recheck_blocked(struct zcio_fanout *f, bool (*only)(const struct zcio_fanout *,
									   const struct fo_dest *))
{
	unsigned int i, n = 0, cleared = 0;
	bool known = false;

	for (i = 0; i < f->ndests; i++) {
		struct fo_dest *d = f->dests[i];

		d->polled = d->blocked && !d->dead && (!only || only(f, d));
		n += d->polled;
	}
	if (n == 0)
		return 0;
	if (f->pfd_cap < n) {
		struct pollfd *p = realloc(f->pfd, n * sizeof(*p));

		if (p) {
			f->pfd = p;
			f->pfd_cap = n;
		}
	}
	if (f->pfd_cap >= n) {
		n = 0;
		for (i = 0; i < f->ndests; i++) {
			if (f->dests[i]->polled)
				f->pfd[n++] = (struct pollfd){ .fd = f->dests[i]->ep.fd,
							       .events = POLLOUT };
		}
		known = zcio__poll(f->pfd, n, 0) >= 0;
	}
	n = 0;
	for (i = 0; i < f->ndests; i++) {
		struct fo_dest *d = f->dests[i];

		if (!d->polled)
			continue;
		/* An error or hang-up is "ready" too: the next write tells. */
		if (!known || f->pfd[n++].revents) {
			d->blocked = false;
			cleared++;
		}
	}
	return cleared;
}

/* A source that could put a read to sleep: a blocking pipe (when read()),
 * socket, terminal or device.  Such a source is polled before each read. */
static bool source_may_sleep(const struct zcio_fanout *f)
{
	if (f->in_nonblock || is_file(f->in.kind))
		return false;
	/* SPLICE_F_NONBLOCK keeps a splice from a pipe from waiting. */
	return f->mem || f->in.kind != ZCIO__PIPE;
}

static int64_t fill(struct zcio_fanout *f, uint64_t budget, struct zcio_stats *st, bool *progress)
{
	if (source_may_sleep(f)) {
		struct pollfd pf = { .fd = f->in.fd, .events = POLLIN };
		int r;

		if (f->tail - f->head >= intake_cap(f)) {
			f->intake_full = true;
			return 0;
		}
		r = zcio__poll(&pf, 1, 0);
		if (r == 0) {
			f->src_wait = true;
			return 0;
		}
	}
	return f->mem ? fill_mem(f, budget, st) : fill_pipe(f, budget, st, progress);
}

static bool holds_head(const struct zcio_fanout *f, const struct fo_dest *d)
{
	return (d->flags & ZCIO_FANOUT_DROP) && d->pos == f->head;
}

/* d is ahead of the intake's head and has room for bytes the intake holds:
 * it waits for the destinations at the head. */
static bool waits_for_head(const struct zcio_fanout *f, const struct fo_dest *d)
{
	if (d->dead || d->pos <= f->head || d->pos >= f->tail)
		return false;
	if (d->route == FO_DIRECT)
		return !d->blocked;
	return d->pipe.rd < 0 || d->pipe.bytes < d->pipe.cap;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Drop policy.  A ZCIO_FANOUT_DROP destination at the intake's head whose
 * fd is full (so its own pipe is full too) holds everyone back when the
 * intake is full (the source waits) or when a destination ahead of it has
 * room for bytes it cannot be given (tee() only duplicates from the head).
 * Once it has done so at every look for drop_ms, it goes; the fan-out then
 * holds at most the intake's capacity more than it has taken.  The delay
 * keeps a reader that was merely late (not yet scheduled after a burst)
 * from being dropped.  Returns whether anything changed; sets timeout_at
 * when a destination's time is not yet up.
 */
static bool drop_laggards(struct zcio_fanout *f)
{
	bool held = false, dropped = false;
	unsigned int i;
	int64_t now;

	f->timeout_at = 0;
	if (!f->src_done && f->tail > f->head) {
		held = f->intake_full || f->tail - f->head >= intake_cap(f);
		for (i = 0; i < f->ndests && !held; i++)
			held = waits_for_head(f, f->dests[i]);
	}
	/* Once per pump, so that an fd that polls writable but takes
	 * nothing cannot keep the pump going round. */
	if (held && !f->drop_rechecked) {
		f->drop_rechecked = true;
		if (recheck_blocked(f, holds_head))
			return true; /* a reader caught up: go on */
	}
	now = held ? now_ms() : 0;
	for (i = 0; i < f->ndests; i++) {
		struct fo_dest *d = f->dests[i];

		if (!held || d->dead || !d->blocked || !holds_head(f, d)) {
			d->behind_since = 0;
			continue;
		}
		if (!d->behind_since)
			d->behind_since = now;
		if (now - d->behind_since >= f->drop_ms) {
			dest_end(f, d, ZCIO_FANOUT_DROPPED, 0);
			dropped = true;
		} else if (!f->timeout_at || d->behind_since + f->drop_ms < f->timeout_at) {
			f->timeout_at = d->behind_since + f->drop_ms;
		}
	}
	if (dropped)
		f->timeout_at = 0;
	return dropped;
}

static bool all_delivered(const struct zcio_fanout *f)
{
	unsigned int i;

	if (!f->src_done || f->head != f->tail)
		return false;
	for (i = 0; i < f->ndests; i++) {
		const struct fo_dest *d = f->dests[i];

		if (!d->dead && (d->pos != f->tail || held(d)))
			return false;
	}
	return true;
}

/* Make sure the pipe intake has a pipe, or switch to memory. */
static int ensure_intake(struct zcio_fanout *f, struct zcio_stats *st)
{
	int r, why = 0, from = ZCIO_PATH_SPLICE_PIPE;

	if (f->mem || f->intake.rd >= 0 || (f->src_done && f->head == f->tail))
		return 0;
	if (f->flags & ZCIO_F_COPY) {
		why = ZCIO_WHY_FORCED;
	} else if ((f->flags & ZCIO_F_STABLE) && is_file(f->in.kind)) {
		why = ZCIO_WHY_STABLE;
	} else if (!is_file(f->in.kind) && f->in.kind != ZCIO__PIPE &&
		   f->in.kind != ZCIO__STREAM && f->in.kind != ZCIO__CHR) {
		why = ZCIO_WHY_KIND; /* terminals, datagram sockets...: no splice_read */
	} else if (zcio__sc_unavailable(ZCIO__SC_SPLICE)) {
		why = zcio__sc_unavailable_why(ZCIO__SC_SPLICE);
	} else if (zcio__sc_unavailable(ZCIO__SC_TEE)) {
		why = zcio__sc_unavailable_why(ZCIO__SC_TEE);
		from = ZCIO_PATH_TEE;
	}
	if (why)
		return switch_to_mem(f, st, from, why, 0);
	r = zcio__pipe_get(&f->intake, f->pipe_size);
	if (r < 0)
		return switch_to_mem(f, st, ZCIO_PATH_SPLICE_PIPE, ZCIO_WHY_NO_PIPE, -r);
	return 0;
}

static int64_t pump(struct zcio_fanout *f, uint64_t max, struct zcio_stats *st)
{
	uint64_t taken = 0;
	unsigned int i;
	int r;

	recheck_blocked(f, NULL);
	f->drop_rechecked = false;
	f->src_wait = false;
	f->intake_full = false;
	for (;;) {
		bool progress = false, was_mem = f->mem;
		int64_t n;

		r = ensure_intake(f, st);
		if (r < 0)
			return r;
		for (i = 0; i < f->ndests; i++) {
			struct fo_dest *d = f->dests[i];

			if (!d->dead && !d->blocked && held(d)) {
				r = deliver_held(f, d, st, &progress);
				if (r < 0)
					return r;
			}
		}
		if (f->mem) {
			uint64_t m;

			mem_deliver(f, st, &progress);
			m = min_pos(f);
			if (m > f->head) {
				f->head = m;
				f->intake_full = false;
			}
		} else {
			if (f->tail > f->head) {
				r = distribute(f, st, &progress);
				if (r < 0)
					return r;
			}
			if (!f->mem) {
				uint64_t m = min_pos(f);

				if (m > f->head) {
					r = discard(f, m - f->head, st, &progress);
					if (r < 0)
						return r;
				}
			}
		}
		compact(f);
		/* A switch to copying changes what can move: look again. */
		if (f->mem != was_mem)
			progress = true;
		if (!f->src_done && (!max || taken < max)) {
			n = fill(f, max ? max - taken : UINT64_MAX, st, &progress);
			if (n < 0) {
				/* The source failed: what was taken is still
				 * delivered; the end is reported as this error. */
				f->src_done = true;
				f->src_err = (int)n;
				progress = true;
			} else if (n > 0) {
				taken += (uint64_t)n;
				progress = true;
			}
		}
		if (!progress && drop_laggards(f)) {
			compact(f);
			progress = true;
		}
		if (!progress)
			break;
		if (max && taken >= max)
			return (int64_t)taken;
	}
	if (all_delivered(f)) {
		/* Done: hand the pipes back now rather than at free. */
		if (f->intake.rd >= 0)
			zcio__pipe_put(&f->intake);
		for (i = 0; i < f->ndests; i++)
			zcio__pipe_put(&f->dests[i]->pipe);
		return f->src_err;
	}
	return -EAGAIN;
}

static uint64_t pending(const struct zcio_fanout *f)
{
	uint64_t n = f->tail - f->head;
	unsigned int i;

	for (i = 0; i < f->ndests; i++)
		n += held(f->dests[i]);
	return n;
}

ZCIO_EXPORT int64_t zcio_fanout_pump(struct zcio_fanout *f, uint64_t max, struct zcio_stats *stats)
{
	struct zcio_stats local = { 0 };
	struct zcio_stats *st = stats ? stats : &local;
	struct zcio__sigpipe guard = { 0 };
	int64_t r;

	if (!f)
		return -EINVAL;
	zcio__stats_begin(st);
	f->saw_epipe = false;
	if (f->guard_sigpipe)
		zcio__sigpipe_block(&guard);
	r = pump(f, max, st);
	if (f->guard_sigpipe)
		zcio__sigpipe_restore(&guard, f->saw_epipe);
	f->last_eagain = r == -EAGAIN;
	st->pending = pending(f);
	if (r == -EAGAIN)
		st->wait = f->src_wait ? ZCIO_WAIT_IN : ZCIO_WAIT_OUT;
	return r;
}

ZCIO_EXPORT int zcio_fanout_pollfds(const struct zcio_fanout *f, struct pollfd *fds, unsigned int n)
{
	unsigned int i, count = 0;

	if (!f || (!fds && n))
		return -EINVAL;
	if (!f->last_eagain)
		return 0;
	if (f->src_wait) {
		if (count < n)
			fds[count] = (struct pollfd){ .fd = f->in.fd, .events = POLLIN };
		count++;
	}
	for (i = 0; i < f->ndests; i++) {
		if (!f->dests[i]->blocked)
			continue;
		if (count < n)
			fds[count] = (struct pollfd){ .fd = f->dests[i]->ep.fd, .events = POLLOUT };
		count++;
	}
	return (int)count;
}

ZCIO_EXPORT int zcio_fanout_timeout(const struct zcio_fanout *f)
{
	int64_t left;

	if (!f || !f->last_eagain || !f->timeout_at)
		return -1;
	left = f->timeout_at - now_ms();
	return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

/* ---- bookkeeping ------------------------------------------------------------- */

ZCIO_EXPORT int zcio_fanout_remove(struct zcio_fanout *f, int id, struct zcio_fanout_dest *info)
{
	struct fo_dest *d;
	unsigned int i;

	if (!f)
		return -EINVAL;
	d = find(f, id);
	if (d) {
		if (info) {
			fill_info(f, d, ZCIO_FANOUT_REMOVED, 0, info);
			info->wait = ZCIO_WAIT_NONE;
		}
		dest_release(d);
		d->dead = true;
		compact(f);
		return 0;
	}
	for (i = 0; i < f->ngone; i++) {
		if (f->gone[i].id != id)
			continue;
		if (info)
			*info = f->gone[i];
		memmove(f->gone + i, f->gone + i + 1, (f->ngone - i - 1) * sizeof(*f->gone));
		f->ngone--;
		return 0;
	}
	return -ENOENT;
}

ZCIO_EXPORT int zcio_fanout_removed(struct zcio_fanout *f, struct zcio_fanout_dest *info)
{
	if (!f || !info)
		return -EINVAL;
	if (!f->ngone)
		return 0;
	*info = f->gone[0];
	memmove(f->gone, f->gone + 1, (f->ngone - 1) * sizeof(*f->gone));
	f->ngone--;
	return 1;
}

ZCIO_EXPORT int zcio_fanout_dest(const struct zcio_fanout *f, int id, struct zcio_fanout_dest *info)
{
	const struct fo_dest *d;

	if (!f || !info)
		return -EINVAL;
	d = find(f, id);
	if (!d)
		return -ENOENT;
	fill_info(f, d, live_state(f, d), 0, info);
	return 0;
}

ZCIO_EXPORT uint64_t zcio_fanout_position(const struct zcio_fanout *f)
{
	return f ? f->tail : 0;
}

ZCIO_EXPORT int zcio_fanout_source_done(const struct zcio_fanout *f)
{
	return f && f->src_done;
}

ZCIO_EXPORT unsigned int zcio_fanout_count(const struct zcio_fanout *f)
{
	return f ? f->ndests : 0;
}

ZCIO_EXPORT void zcio_fanout_free(struct zcio_fanout *f)
{
	unsigned int i;

	if (!f)
		return;
	for (i = 0; i < f->ndests; i++) {
		dest_release(f->dests[i]);
		free(f->dests[i]);
	}
	if (f->intake.bytes)
		zcio__pipe_kill(&f->intake);
	else
		zcio__pipe_put(&f->intake);
	if (f->devnull >= 0)
		zcio__close(f->devnull);
	free(f->dests);
	free(f->gone);
	free(f->pfd);
	free(f->ring);
	free(f);
}
