/*
 * ring.c - the vmsplice ring: user memory handed to a destination without
 * copying, with the writer told exactly which bytes it may write again.
 *
 * Positions are 64-bit stream offsets; byte p lives at base[p % size], and
 * the memory is mapped twice back to back (one memfd), so base[p % size ..
 * p % size + n) is contiguous for any n <= size.  Three positions move
 * forward only:
 *
 *   released <= out <= w
 *
 *   w         the writer has committed everything before it;
 *   out       everything before it was handed to the destination (in the
 *             pipe, written, accepted by the socket);
 *   released  the kernel holds no reference to any byte before it: the
 *             writer may use [w, released + size).
 *
 * How `released` follows `out` is the whole point, and depends on the
 * destination (see the header for the reasoning):
 *
 *   pipe    vmsplice() into it (ZCIO_F_VMSPLICE: the caller says the
 *           reader copies out).  A pipe holds at most C bytes (its
 *           capacity: C / page slots of at most a page each), and ours are
 *           the newest, so released = out - C if bytes vmspliced after that
 *           point may still be in it, else out.  No syscall needed: with a
 *           ring of at least 2 C, a pump that hands everything over always
 *           leaves half the ring free.
 *   file    vmsplice() into a pool pipe, splice() into the file, which copies
 *           into the page cache during the call: released = out.
 *   socket  send(MSG_ZEROCOPY); released = the start of the oldest send
 *           whose completion has not arrived (zcsend.c), else out.
 *   copy    write()/send(): released = out.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "endpoint.h"
#include "export.h"
#include "fallback.h"
#include "pipe.h"
#include "sigpipe.h"
#include "stats.h"
#include "sys.h"
#include "thresholds.h"
#include "zcsend.h"
#include "zcio.h"

#define RING_DEFAULT_PIPE (1u << 20)

enum ring_mode {
	RING_PIPE,     /* vmsplice() into the destination pipe */
	RING_FILE,     /* vmsplice() into a pool pipe, splice() into the file */
	RING_SOCKET,   /* send(MSG_ZEROCOPY) with completions */
	RING_COPY,     /* write()/send() only */
};

struct zcio_ring {
	struct zcio__endpoint out_ep;
	enum ring_mode mode;
	unsigned char *base;   /* 2 * size bytes: the same pages twice */
	size_t size;
	uint64_t w, out, released;
	size_t span;           /* length reserve() gave, 0 when none is open */

	bool zero_copy;        /* pipe/file: vmsplice() allowed */
	uint64_t threshold;    /* batches shorter than this are copied */
	uint32_t cap;          /* pipe: the destination's capacity */
	uint64_t vm_end;       /* pipe: end of the last vmsplice()d bytes */
	struct zcio__pipe pipe;/* file: the pool pipe */
	uint32_t pipe_size;
	struct zcio__zc zc;    /* socket */
	bool guard_sigpipe;
	uint32_t reported;     /* bit per zcio_reason already in the stats */
};

static size_t page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (size_t)p : 4096;
}

/*
 * Map size bytes twice, back to back, from one memfd.  MADV_DONTFORK: a
 * child must not inherit a shared mapping of the ring and scribble on pages
 * the parent has in flight.
 */
static int map_ring(struct zcio_ring *r)
{
	void *area, *p;
	int fd, e;

	fd = zcio__memfd("zcio-ring", 0);
	if (fd < 0)
		return fd;
	e = zcio__ftruncate(fd, r->size);
	if (e == 0)
		e = zcio__mmap(NULL, 2 * r->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0,
			       &area);
	if (e < 0) {
		zcio__close(fd);
		return e;
	}
	e = zcio__mmap(area, r->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0, &p);
	if (e == 0)
		e = zcio__mmap((unsigned char *)area + r->size, r->size, PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_FIXED, fd, 0, &p);
	zcio__close(fd); /* the mappings keep the pages */
	if (e < 0) {
		zcio__munmap(area, 2 * r->size);
		return e;
	}
	(void)zcio__madvise(area, 2 * r->size, MADV_DONTFORK);
	r->base = area;
	return 0;
}

/* Record a fallback once per ring and reason. */
static void note(struct zcio_ring *r, struct zcio_stats *st, int from, int reason, int err)
{
	if (r->reported & (1u << reason))
		return;
	r->reported |= 1u << reason;
	zcio__stats_fallback(st, from, ZCIO_PATH_COPY, reason, err, st->last_bytes);
}

static int setup_mode(struct zcio_ring *r, const struct zcio_opts *o, size_t *min_size)
{
	enum zcio__kind k = r->out_ep.kind;
	bool copy = o->flags & ZCIO_F_COPY;
	int c;

	*min_size = 2u * RING_DEFAULT_PIPE;
	switch (k) {
	case ZCIO__PIPE:
		if ((o->flags & ZCIO_F_GROW_PIPE) && o->pipe_size) {
			c = zcio__pipe_get_size(r->out_ep.fd);
			if (c > 0 && (uint32_t)c < o->pipe_size)
				(void)zcio__pipe_set_size(r->out_ep.fd, zcio__pipe_size_for(o->pipe_size));
		}
		c = zcio__pipe_get_size(r->out_ep.fd);
		/* vmsplice() only when the caller vouches that the reader copies
		 * out: one that splices the pages on takes references the ring
		 * cannot see (pv does).  Without the capacity the ring cannot
		 * know when the pipe has let go of a page: copy. */
		if (copy || !(o->flags & ZCIO_F_VMSPLICE) || (o->flags & ZCIO_F_STABLE) || c <= 0) {
			r->mode = RING_COPY;
			return 0;
		}
		r->mode = RING_PIPE;
		r->cap = (uint32_t)c;
		*min_size = 2u * r->cap;
		r->threshold = zcio__threshold_for(ZCIO_THR_MEM_PIPE, o->copy_threshold);
		r->zero_copy = true;
		return 0;
	case ZCIO__REG:
	case ZCIO__BLK:
	case ZCIO__CHR:
		r->pipe_size = zcio__pipe_size_for(o->pipe_size);
		*min_size = 2u * r->pipe_size;
		/* splice() refuses O_APPEND files (EINVAL). */
		if (copy || (k == ZCIO__REG && zcio__endpoint_append(&r->out_ep))) {
			r->mode = RING_COPY;
			return 0;
		}
		r->mode = RING_FILE;
		r->threshold = zcio__threshold_for(ZCIO_THR_MEM_FILE, o->copy_threshold);
		r->zero_copy = !zcio__sc_unavailable(ZCIO__SC_VMSPLICE) &&
			       !zcio__sc_unavailable(ZCIO__SC_SPLICE);
		return 0;
	case ZCIO__STREAM:
		r->mode = copy ? RING_COPY : RING_SOCKET;
		/* copy_threshold 1 insists on zero-copy: also after COPIED
		 * completions (tests and measurements need sends in flight). */
		return zcio__zc_init(&r->zc, r->out_ep.fd,
				     zcio__threshold_for(ZCIO_THR_MEM_SOCKET, o->copy_threshold),
				     copy, o->copy_threshold == 1);
	case ZCIO__TTY:
	case ZCIO__OTHER:
		r->mode = RING_COPY;
		return 0;
	case ZCIO__DIR:
		return -EISDIR;
	case ZCIO__DGRAM:
	default:
		/* Commits are merged into one byte stream: datagram boundaries
		 * would be arbitrary. */
		return -EINVAL;
	}
}

ZCIO_EXPORT int zcio_ring_new(int out, size_t size, const struct zcio_opts *opts,
			      struct zcio_ring **ringp)
{
	static const struct zcio_opts defaults;
	const struct zcio_opts *o = opts ? opts : &defaults;
	struct zcio_ring *r;
	struct sigaction sa;
	size_t min_size, pg = page_size();
	int e;

	if (!ringp)
		return -EINVAL;
	*ringp = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->pipe = ZCIO__PIPE_NONE;
	e = zcio__endpoint_init(&r->out_ep, out);
	if (e == 0)
		e = setup_mode(r, o, &min_size);
	if (e < 0) {
		free(r);
		return e;
	}
	if (!size)
		size = min_size;
	if (size < min_size && r->mode == RING_PIPE)
		size = min_size; /* the discipline needs twice the pipe */
	if (size > (SIZE_MAX >> 2))
		size = SIZE_MAX >> 2;
	size = (size + pg - 1) / pg * pg;
	if (size < 2 * pg)
		size = 2 * pg;
	r->size = size;
	e = map_ring(r);
	if (e < 0) {
		zcio__zc_release(&r->zc);
		free(r);
		return e;
	}
	r->guard_sigpipe = zcio__kind_can_sigpipe(r->out_ep.kind) && r->out_ep.kind != ZCIO__STREAM &&
			   !(sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN);
	*ringp = r;
	return 0;
}

ZCIO_EXPORT size_t zcio_ring_size(const struct zcio_ring *r)
{
	return r ? r->size : 0;
}

ZCIO_EXPORT uint64_t zcio_ring_pending(const struct zcio_ring *r)
{
	return r ? r->w - r->out : 0;
}

/* Move `released` as far as what is known allows, without a syscall. */
static void update_released(struct zcio_ring *r)
{
	struct zcio__zc_rec *rec;
	uint64_t rel = r->out;

	switch (r->mode) {
	case RING_PIPE:
		/* At most cap bytes of ours are still in the pipe: the newest. */
		if (r->out >= r->cap) {
			if (r->vm_end > r->out - r->cap)
				rel = r->out - r->cap;
		} else if (r->vm_end > 0) {
			rel = 0;
		}
		break;
	case RING_FILE:
		/* [out, pool pipe's end) is in the pool pipe. */
		break;
	case RING_SOCKET:
		while ((rec = zcio__zc_head(&r->zc)) && rec->done)
			zcio__zc_pop(&r->zc);
		if (rec)
			rel = rec->a; /* the oldest send not completed starts here */
		break;
	case RING_COPY:
		break;
	}
	if (rel > r->released)
		r->released = rel;
}

static uint64_t free_bytes(struct zcio_ring *r)
{
	update_released(r);
	return r->released + r->size - r->w;
}

ZCIO_EXPORT int64_t zcio_ring_reserve(struct zcio_ring *r, size_t min, void **span)
{
	uint64_t n;

	if (!r || !span || !min || min > r->size / 2)
		return -EINVAL;
	n = free_bytes(r);
	if (n < min)
		return -EAGAIN;
	*span = r->base + (r->w % r->size);
	r->span = (size_t)n;
	return (int64_t)n;
}

ZCIO_EXPORT int zcio_ring_commit(struct zcio_ring *r, size_t n)
{
	if (!r || n > r->span)
		return -EINVAL;
	r->w += n;
	r->span = 0;
	return 0;
}

ZCIO_EXPORT int64_t zcio_ring_write(struct zcio_ring *r, const void *buf, size_t len)
{
	void *span;
	int64_t n;

	if (!r || (!buf && len))
		return -EINVAL;
	if (!len)
		return 0;
	n = zcio_ring_reserve(r, len, &span);
	if (n < 0)
		return n;
	memcpy(span, buf, len);
	zcio_ring_commit(r, len);
	return (int64_t)len;
}

/* write()/send() n bytes from out.  0: progress; -EAGAIN; -errno. */
static int copy_out(struct zcio_ring *r, size_t n, struct zcio_stats *st)
{
	const unsigned char *p = r->base + (r->out % r->size);
	ssize_t w;

	if (r->out_ep.kind == ZCIO__STREAM)
		w = zcio__send(r->out_ep.fd, p, n, MSG_DONTWAIT);
	else
		w = zcio__write(r->out_ep.fd, p, n);
	st->syscalls++;
	if (w > 0) {
		r->out += (uint64_t)w;
		zcio__stats_delivered(st, ZCIO_PATH_COPY, (uint64_t)w);
		return 0;
	}
	if (w == -EAGAIN)
		st->wait = ZCIO_WAIT_OUT;
	return w == 0 ? -EIO : (int)w;
}

/* vmsplice() n bytes at position pos into fd.  Returns the count or -errno;
 * an errno meaning "vmsplice is not available" turns zero-copy off and
 * returns -ENOSYS after noting why. */
static ssize_t vmsplice_at(struct zcio_ring *r, int fd, uint64_t pos, size_t n,
			   struct zcio_stats *st)
{
	struct iovec iov = { .iov_base = r->base + (pos % r->size), .iov_len = n };
	ssize_t v = zcio__vmsplice(fd, &iov, 1, SPLICE_F_NONBLOCK);
	int why;

	st->syscalls++;
	if (v >= 0 || v == -EAGAIN || v == -EPIPE)
		return v;
	/* ENOSYS (no vmsplice), EPERM (seccomp) are cached process-wide;
	 * EINVAL here means the kernel refuses these pages or this pipe. */
	why = zcio__sc_classify(ZCIO__SC_VMSPLICE, (int)-v);
	if (!why && v == -EINVAL)
		why = ZCIO_WHY_REFUSED;
	if (!why)
		return v;
	r->zero_copy = false;
	note(r, st, ZCIO_PATH_VMSPLICE, why, (int)-v);
	return -ENOSYS;
}

static int step_pipe(struct zcio_ring *r, size_t n, struct zcio_stats *st)
{
	ssize_t v;

	if (!r->zero_copy || n < r->threshold) {
		if (r->zero_copy)
			note(r, st, ZCIO_PATH_VMSPLICE, ZCIO_WHY_SMALL, 0);
		return copy_out(r, n, st);
	}
	if (n > r->cap)
		n = r->cap;
	v = vmsplice_at(r, r->out_ep.fd, r->out, n, st);
	if (v > 0) {
		r->out += (uint64_t)v;
		r->vm_end = r->out;
		zcio__stats_delivered(st, ZCIO_PATH_VMSPLICE, (uint64_t)v);
		return 0;
	}
	if (v == -ENOSYS)
		return copy_out(r, n, st);
	if (v == -EAGAIN)
		st->wait = ZCIO_WAIT_OUT;
	return v == 0 ? -EIO : (int)v;
}

/* File destination: the pool pipe's bytes go first. */
static int step_file(struct zcio_ring *r, size_t n, struct zcio_stats *st)
{
	ssize_t v;
	int why;

	if (r->pipe.bytes) {
		v = zcio__splice(r->pipe.rd, NULL, r->out_ep.fd, NULL, r->pipe.bytes,
				 SPLICE_F_NONBLOCK);
		st->syscalls++;
		if (v > 0) {
			r->pipe.bytes -= (uint32_t)v;
			r->out += (uint64_t)v;
			zcio__stats_delivered(st, ZCIO_PATH_VMSPLICE, (uint64_t)v);
			return 0;
		}
		if (v == -EAGAIN) {
			st->wait = ZCIO_WAIT_OUT;
			return -EAGAIN;
		}
		why = v < 0 ? zcio__splice_unsupported((int)-v) : 0;
		if (!why)
			return v == 0 ? -EIO : (int)v;
		/* The destination refuses splice.  The bytes in the pool pipe
		 * are still in the ring (not released): drop the pipe and write
		 * them from the ring instead. */
		zcio__pipe_kill(&r->pipe);
		r->zero_copy = false;
		note(r, st, ZCIO_PATH_VMSPLICE, why, (int)-v);
		return 0;
	}
	if (!r->zero_copy || n < r->threshold) {
		if (r->zero_copy)
			note(r, st, ZCIO_PATH_VMSPLICE, ZCIO_WHY_SMALL, 0);
		return copy_out(r, n, st);
	}
	if (r->pipe.rd < 0) {
		int e = zcio__pipe_get(&r->pipe, r->pipe_size);

		if (e < 0) {
			/* Pool cap, EMFILE, clamped pipes: copy this batch. */
			note(r, st, ZCIO_PATH_VMSPLICE, ZCIO_WHY_NO_PIPE, -e);
			return copy_out(r, n, st);
		}
	}
	if (n > r->pipe.cap)
		n = r->pipe.cap;
	v = vmsplice_at(r, r->pipe.wr, r->out, n, st);
	if (v > 0) {
		r->pipe.bytes += (uint32_t)v;
		return 0;
	}
	if (v == -ENOSYS || v == -EAGAIN) {
		/* EAGAIN: an empty pool pipe cannot be full; copy anyway. */
		return copy_out(r, n, st);
	}
	return v == 0 ? -EIO : (int)v;
}

static int step_socket(struct zcio_ring *r, size_t n, struct zcio_stats *st)
{
	ssize_t v;

	if (r->zc.info.in_flight)
		(void)zcio__zc_reap(&r->zc);
	v = zcio__zc_send(&r->zc, r->base + (r->out % r->size), n, r->out, 0, false, st);
	if (v > 0) {
		r->out += (uint64_t)v;
		return 0;
	}
	return v == 0 ? -EIO : (int)v;
}

static int64_t pump(struct zcio_ring *r, uint64_t max, struct zcio_stats *st)
{
	for (;;) {
		uint64_t n = r->w - r->out;
		int e;

		if (max && st->last_bytes >= max)
			return (int64_t)st->last_bytes;
		if (!n && !(r->mode == RING_FILE && r->pipe.bytes))
			break;
		if (max && n > max - st->last_bytes)
			n = max - st->last_bytes;
		switch (r->mode) {
		case RING_PIPE:
			e = step_pipe(r, (size_t)n, st);
			break;
		case RING_FILE:
			e = step_file(r, (size_t)n, st);
			break;
		case RING_SOCKET:
			e = step_socket(r, (size_t)n, st);
			break;
		default:
			e = copy_out(r, (size_t)n, st);
			break;
		}
		if (e < 0)
			return e;
	}
	if (r->pipe.rd >= 0 && !r->pipe.bytes)
		zcio__pipe_put(&r->pipe); /* an idle ring holds no pipe */
	/* Everything is handed over.  Promise the writer half the ring: only
	 * zero-copy sends still waiting for completions can stand in the way. */
	if (free_bytes(r) < r->size / 2 && r->mode == RING_SOCKET) {
		int got = zcio__zc_reap(&r->zc);

		st->syscalls++;
		if (got < 0)
			return got;
		if (free_bytes(r) < r->size / 2) {
			st->wait = ZCIO_WAIT_COMPLETION;
			return -EAGAIN;
		}
	}
	return 0;
}

ZCIO_EXPORT int64_t zcio_ring_pump(struct zcio_ring *r, uint64_t max, struct zcio_stats *stats)
{
	struct zcio_stats local = { 0 };
	struct zcio_stats *st = stats ? stats : &local;
	struct zcio__sigpipe guard = { 0 };
	int64_t e;

	if (!r)
		return -EINVAL;
	zcio__stats_begin(st);
	if (r->guard_sigpipe)
		zcio__sigpipe_block(&guard);
	e = pump(r, max, st);
	if (r->guard_sigpipe)
		zcio__sigpipe_restore(&guard, e == -EPIPE);
	st->pending = r->w - r->out;
	return e;
}

ZCIO_EXPORT int zcio_ring_flush(struct zcio_ring *r, int timeout_ms, struct zcio_stats *stats)
{
	struct zcio_stats local = { 0 };
	struct zcio_stats *st = stats ? stats : &local;
	uint64_t done = 0;

	if (!r)
		return -EINVAL;
	for (;;) {
		int64_t e = zcio_ring_pump(r, 0, st);
		int w;

		done += st->last_bytes;
		if (e >= 0)
			break;
		if (e != -EAGAIN) {
			st->last_bytes = done;
			return (int)e;
		}
		/* events 0 for completions: POLLERR is reported regardless. */
		w = zcio__wait(r->out_ep.fd, st->wait == ZCIO_WAIT_COMPLETION ? 0 : POLLOUT,
			       timeout_ms);
		st->waits++;
		if (w < 0) {
			st->last_bytes = done;
			return w;
		}
	}
	st->last_bytes = done;
	return 0;
}

ZCIO_EXPORT void zcio_ring_free(struct zcio_ring *r)
{
	if (!r)
		return;
	/* Pages the pool pipe or a socket still references live on in the
	 * kernel; unmapping only removes our view of them. */
	if (r->pipe.bytes)
		zcio__pipe_kill(&r->pipe);
	else
		zcio__pipe_put(&r->pipe);
	zcio__zc_release(&r->zc);
	zcio__munmap(r->base, 2 * r->size);
	free(r);
}
