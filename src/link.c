/*
 * link.c - nonblocking in -> pipe -> out, for event loops.
 *
 * A link holds its bytes in one of two stages, delivered in this order:
 *
 *   pipe   a pool pipe: bytes spliced in from the source (and pushed bytes
 *          written at its head), spliced out to the destination;
 *   buf    a heap buffer: pushed bytes that did not fit the pipe, bytes read
 *          when splicing is off, and bytes rescued from the pipe when the
 *          destination refused splice.
 *
 * New bytes are taken from the source only when both stages are empty (a
 * file source may also top up a non-empty pipe, see below), so the order is
 * always pipe, then buf, then source: the two paths never reorder bytes.
 *
 * Sockets can run dry, so a socket source is spliced only into an EMPTY pipe.
 * Then EAGAIN from the source always means "no data", never "the pipe has no
 * free page slot" (each skb fragment takes a whole slot, so a 64 KiB pipe can
 * be full at 23 KiB), the ambiguity that stalled edge-triggered proxies.
 * Files never run dry: they keep the pipe topped up behind a pushed header,
 * so header and body leave in the same segments.
 *
 * When both stages are empty the pipe goes back to the thread's pool and the
 * buffer is freed: an idle link holds no pipe and no buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "endpoint.h"
#include "export.h"
#include "fallback.h"
#include "pipe.h"
#include "sigpipe.h"
#include "stats.h"
#include "sys.h"
#include "zcio.h"

/* Chunks smaller than this switch a link to copying (HAProxy measured
 * pipe + two splices losing to read + write below about 4 KiB). */
#define LINK_SMALL_DEFAULT 4096u
/* Buffer while chunks are small, and while splicing is impossible. */
#define LINK_BUF_SMALL (16u * 1024)
#define LINK_BUF_LARGE (64u * 1024)
/* sendfile rounds per pump step, like nginx's sendfile_max_chunk. */
#define LINK_SENDFILE_CHUNK (2u << 20)

struct zcio_link {
	struct zcio__endpoint in, out;
	struct zcio__pipe pipe;
	uint32_t pushed_in_pipe;   /* pushed bytes at the head of the pipe */

	unsigned char *buf;        /* NULL when empty */
	size_t buf_off, buf_len, buf_cap;

	uint64_t left;             /* bytes still to take, UINT64_MAX: to EOF */
	bool positional;
	uint64_t in_off, in_end;   /* positional file sources */
	bool src_done;

	bool sendfile_mode;        /* file -> stream socket by sendfile() */
	bool splice_in_ok;         /* the source can be spliced from */
	bool splice_out_ok;        /* the destination can be spliced to */
	bool small_mode;           /* recent chunks were small: copy */
	uint32_t small;            /* what counts as small */
	uint32_t pipe_size;
	bool guard_sigpipe;        /* SIGPIPE was not ignored at creation */
	uint32_t reported;         /* bit per zcio_reason already recorded */
};

static bool kind_splices_in(enum zcio__kind k)
{
	return k == ZCIO__REG || k == ZCIO__BLK || k == ZCIO__PIPE || k == ZCIO__STREAM;
}

static bool kind_splices_out(enum zcio__kind k)
{
	return k == ZCIO__REG || k == ZCIO__BLK || k == ZCIO__PIPE || k == ZCIO__STREAM ||
	       k == ZCIO__CHR;
}

static bool is_file(enum zcio__kind k)
{
	return k == ZCIO__REG || k == ZCIO__BLK;
}

ZCIO_EXPORT int zcio_link_new(int in, int out, uint64_t len, const struct zcio_opts *opts,
			      struct zcio_link **linkp)
{
	static const struct zcio_opts defaults;
	const struct zcio_opts *o = opts ? opts : &defaults;
	struct sigaction sa;
	struct zcio_link *l;
	int r;

	if (!linkp)
		return -EINVAL;
	*linkp = NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->pipe = ZCIO__PIPE_NONE;
	r = zcio__endpoint_init(&l->in, in);
	if (r == 0)
		r = zcio__endpoint_init(&l->out, out);
	if (r == 0 && (l->in.kind == ZCIO__DIR || l->out.kind == ZCIO__DIR))
		r = -EISDIR;
	if (r == 0 && (o->flags & ZCIO_F_OFFSET) && !is_file(l->in.kind))
		r = -ESPIPE;
	if (r < 0) {
		free(l);
		return r;
	}
	l->left = len;
	l->src_done = len == 0;
	if (o->flags & ZCIO_F_OFFSET) {
		l->positional = true;
		l->in_off = o->in_offset;
		l->in_end = l->in.kind == ZCIO__REG ? l->in.size : 0;
	}
	/* Splicing is decided per pair once (kinds, O_APPEND), then per
	 * errno: EINVAL and friends turn one side off for this link only. */
	l->splice_in_ok = !(o->flags & ZCIO_F_COPY) && kind_splices_in(l->in.kind) &&
			  !((o->flags & ZCIO_F_STABLE) && is_file(l->in.kind));
	l->splice_out_ok = !(o->flags & ZCIO_F_COPY) && kind_splices_out(l->out.kind) &&
			   !(l->out.kind == ZCIO__REG && zcio__endpoint_append(&l->out));
	/* ZCIO_F_VIA_SENDFILE: a file goes to a stream socket by sendfile(),
	 * pushed bytes (a header) by send(MSG_MORE) in front of it. */
	l->sendfile_mode = (o->flags & ZCIO_F_VIA_SENDFILE) && !(o->flags & (ZCIO_F_COPY | ZCIO_F_STABLE)) &&
			   is_file(l->in.kind) && l->out.kind == ZCIO__STREAM;
	l->small = o->copy_threshold ? o->copy_threshold : LINK_SMALL_DEFAULT;
	l->pipe_size = o->pipe_size;
	/* A program that ignores SIGPIPE (every server should) needs no
	 * per-pump signal masking; asked once, here. */
	l->guard_sigpipe = zcio__kind_can_sigpipe(l->out.kind) &&
			   !(sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN);
	*linkp = l;
	return 0;
}

static size_t buffered(const struct zcio_link *l)
{
	return l->buf_len - l->buf_off;
}

ZCIO_EXPORT uint64_t zcio_link_pending(const struct zcio_link *l)
{
	return l ? l->pipe.bytes + buffered(l) : 0;
}

ZCIO_EXPORT int zcio_link_source_done(const struct zcio_link *l)
{
	return l && l->src_done;
}

/* Record a fallback once per link and reason. */
static void note(struct zcio_link *l, struct zcio_stats *st, int from, int reason, int err)
{
	if (l->reported & (1u << reason))
		return;
	l->reported |= 1u << reason;
	zcio__stats_fallback(st, from, ZCIO_PATH_COPY, reason, err, st->last_bytes);
}

/* Make room for n more bytes at the end of buf. */
static int buf_reserve(struct zcio_link *l, size_t n)
{
	size_t need;
	unsigned char *nb;

	if (!buffered(l))
		l->buf_off = l->buf_len = 0;
	need = l->buf_len + n;
	if (need <= l->buf_cap)
		return 0;
	if (l->buf_off) {
		memmove(l->buf, l->buf + l->buf_off, buffered(l));
		l->buf_len -= l->buf_off;
		l->buf_off = 0;
		need = l->buf_len + n;
		if (need <= l->buf_cap)
			return 0;
	}
	nb = realloc(l->buf, need);
	if (!nb)
		return -ENOMEM;
	l->buf = nb;
	l->buf_cap = need;
	return 0;
}

/* Both stages empty: hand the pipe back and free the buffer. */
static void release_idle(struct zcio_link *l)
{
	if (l->pipe.rd >= 0 && l->pipe.bytes == 0)
		zcio__pipe_put(&l->pipe);
	if (l->buf && !buffered(l)) {
		free(l->buf);
		l->buf = NULL;
		l->buf_off = l->buf_len = l->buf_cap = 0;
	}
}

ZCIO_EXPORT int zcio_link_push(struct zcio_link *l, const void *data, size_t len)
{
	const unsigned char *p = data;
	int r;

	if (!l || (!data && len))
		return -EINVAL;
	if (!len)
		return 0;
	/* Into the pipe when the link holds nothing, so the source's bytes can
	 * follow them there; behind held bytes, into the buffer (the order is
	 * pipe, then buffer). */
	if (!buffered(l) && l->pipe.bytes == 0 && l->splice_out_ok && !l->sendfile_mode &&
	    !zcio__sc_unavailable(ZCIO__SC_SPLICE)) {
		if (l->pipe.rd < 0)
			(void)zcio__pipe_get(&l->pipe, l->pipe_size);
		if (l->pipe.rd >= 0) {
			ssize_t w = zcio__write(l->pipe.wr, p, len);

			if (w > 0) {
				l->pipe.bytes += (uint32_t)w;
				l->pushed_in_pipe += (uint32_t)w;
				p += w;
				len -= (size_t)w;
			}
		}
	}
	if (!len)
		return 0;
	r = buf_reserve(l, len);
	if (r < 0)
		return r;
	memcpy(l->buf + l->buf_len, p, len);
	l->buf_len += len;
	return 0;
}

/* Bytes still to come from the source, when certain (for MSG_MORE). */
static bool more_certain(const struct zcio_link *l, uint64_t held)
{
	if (!is_file(l->in.kind) || l->src_done)
		return false;
	if (l->left != ZCIO_TO_EOF)
		return l->left > 0;
	return l->positional && l->in_end > l->in_off + held;
}

/* The destination refused splice: move the pipe's bytes to the buffer. */
static int pipe_to_buf(struct zcio_link *l)
{
	int r = buf_reserve(l, l->pipe.bytes);

	if (r < 0)
		return r;
	/* The pipe's bytes come before anything in buf: buf is empty here
	 * (pipe bytes are flushed before buf bytes, and push appends to buf
	 * only behind them), so appending keeps the order. */
	while (l->pipe.bytes) {
		ssize_t n = zcio__read(l->pipe.rd, l->buf + l->buf_len, l->pipe.bytes);

		if (n <= 0)
			return n < 0 ? (int)n : -EIO;
		l->buf_len += (size_t)n;
		l->pipe.bytes -= (uint32_t)n;
	}
	l->pushed_in_pipe = 0;
	zcio__pipe_put(&l->pipe);
	return 0;
}

/* Deliver from the pipe.  0: progress; -EAGAIN: destination full. */
static int flush_pipe(struct zcio_link *l, struct zcio_stats *st, uint64_t budget)
{
	size_t n = l->pipe.bytes < budget ? l->pipe.bytes : (size_t)budget;
	unsigned int flags = SPLICE_F_NONBLOCK;
	ssize_t r;
	int why;

	if (more_certain(l, 0))
		flags |= SPLICE_F_MORE;
	r = zcio__splice(l->pipe.rd, NULL, l->out.fd, NULL, n, flags);
	st->syscalls++;
	if (r > 0) {
		uint32_t h = (uint32_t)r < l->pushed_in_pipe ? (uint32_t)r : l->pushed_in_pipe;

		l->pipe.bytes -= (uint32_t)r;
		l->pushed_in_pipe -= h;
		if (h)
			zcio__stats_delivered(st, ZCIO_PATH_COPY, h);
		zcio__stats_delivered(st, ZCIO_PATH_SPLICE_PIPE, (uint64_t)r - h);
		return 0;
	}
	if (r == -EAGAIN) {
		st->wait = ZCIO_WAIT_OUT;
		return -EAGAIN;
	}
	if (r == 0)
		return -EIO; /* our pipe holds bytes: cannot happen */
	why = zcio__splice_unsupported((int)-r);
	if (!why)
		return (int)r;
	l->splice_out_ok = false;
	note(l, st, ZCIO_PATH_SPLICE_PIPE, why, (int)-r);
	return pipe_to_buf(l);
}

/* Deliver from the buffer.  0: progress; -EAGAIN: destination full. */
static int flush_buf(struct zcio_link *l, struct zcio_stats *st, uint64_t budget)
{
	size_t n = buffered(l) < budget ? buffered(l) : (size_t)budget;
	ssize_t r;

	if (l->out.kind == ZCIO__STREAM || l->out.kind == ZCIO__DGRAM)
		r = zcio__send(l->out.fd, l->buf + l->buf_off, n,
			       more_certain(l, 0) ? MSG_MORE : 0);
	else
		r = zcio__write(l->out.fd, l->buf + l->buf_off, n);
	st->syscalls++;
	if (r > 0) {
		l->buf_off += (size_t)r;
		zcio__stats_delivered(st, ZCIO_PATH_COPY, (uint64_t)r);
		return 0;
	}
	if (r == -EAGAIN) {
		st->wait = ZCIO_WAIT_OUT;
		return -EAGAIN;
	}
	return r == 0 ? -EIO : (int)r;
}

static void took(struct zcio_link *l, uint64_t n)
{
	if (l->left != ZCIO_TO_EOF)
		l->left -= n;
	if (l->positional)
		l->in_off += n;
	if (l->left == 0)
		l->src_done = true;
}

/* Splice from the source into the pipe.  0: progress or EOF; 1: splicing
 * is off for this link, copy instead; -EAGAIN: source empty. */
static int fill_pipe(struct zcio_link *l, struct zcio_stats *st)
{
	uint64_t room = l->pipe.cap - l->pipe.bytes;
	loff_t off = (loff_t)l->in_off;
	ssize_t r;
	int why;

	if (l->pipe.rd < 0) {
		r = zcio__pipe_get(&l->pipe, l->pipe_size);
		if (r < 0) {
			/* Pool cap, EMFILE, or pipes clamped by
			 * pipe-user-pages-soft: copy this chunk. */
			note(l, st, ZCIO_PATH_SPLICE_PIPE, ZCIO_WHY_NO_PIPE, (int)-r);
			return 1;
		}
		room = l->pipe.cap;
	}
	if (room > l->left)
		room = l->left;
	if (l->positional && l->in_end > l->in_off && l->in_end - l->in_off < room)
		room = l->in_end - l->in_off;
	if (room > 0x7ffff000u)
		room = 0x7ffff000u;
	r = zcio__splice(l->in.fd, l->positional ? &off : NULL, l->pipe.wr, NULL, (size_t)room,
			 SPLICE_F_NONBLOCK);
	st->syscalls++;
	if (r > 0) {
		l->pipe.bytes += (uint32_t)r;
		took(l, (uint64_t)r);
		if ((uint64_t)r < l->small && !is_file(l->in.kind))
			l->small_mode = true;
		return 0;
	}
	if (r == 0) {
		l->src_done = true;
		return 0;
	}
	if (r == -EAGAIN) {
		if (l->pipe.bytes)
			return 0; /* a file topping up a full pipe: flush */
		st->wait = ZCIO_WAIT_IN;
		return -EAGAIN;
	}
	why = zcio__splice_unsupported((int)-r);
	if (!why)
		return (int)r;
	l->splice_in_ok = false;
	note(l, st, ZCIO_PATH_SPLICE_PIPE, why, (int)-r);
	return 1;
}

/* Read from the source into the buffer.  0: progress or EOF; -EAGAIN. */
static int fill_buf(struct zcio_link *l, struct zcio_stats *st)
{
	size_t cap = l->small_mode ? LINK_BUF_SMALL : LINK_BUF_LARGE;
	ssize_t r;
	int e;

	if (cap > l->left)
		cap = (size_t)l->left;
	e = buf_reserve(l, cap);
	if (e < 0)
		return e;
	if (l->positional)
		r = zcio__pread(l->in.fd, l->buf + l->buf_len, cap, l->in_off);
	else
		r = zcio__read(l->in.fd, l->buf + l->buf_len, cap);
	st->syscalls++;
	if (r > 0) {
		l->buf_len += (size_t)r;
		took(l, (uint64_t)r);
		/* A full buffer: the source has more than small chunks to
		 * give, so splicing pays again. */
		if ((size_t)r == cap && cap == LINK_BUF_SMALL)
			l->small_mode = false;
		return 0;
	}
	if (r == 0) {
		l->src_done = true;
		return 0;
	}
	if (r == -EAGAIN) {
		st->wait = ZCIO_WAIT_IN;
		return -EAGAIN;
	}
	return (int)r;
}

/* sendfile() from the file source.  0: progress or EOF; 1: sendfile is off
 * for this link, take the pipe route; -EAGAIN: destination full. */
static int send_file_body(struct zcio_link *l, struct zcio_stats *st, uint64_t budget)
{
	uint64_t n = l->left < budget ? l->left : budget;
	off_t off = (off_t)l->in_off;
	ssize_t r;
	int why;

	if (l->positional && l->in_end > l->in_off && l->in_end - l->in_off < n)
		n = l->in_end - l->in_off;
	/* Bounded rounds: a connection does not hog its worker. */
	if (n > LINK_SENDFILE_CHUNK)
		n = LINK_SENDFILE_CHUNK;
	r = zcio__sendfile(l->out.fd, l->in.fd, l->positional ? &off : NULL, (size_t)n);
	st->syscalls++;
	if (r > 0) {
		took(l, (uint64_t)r);
		zcio__stats_delivered(st, ZCIO_PATH_SENDFILE, (uint64_t)r);
		return 0;
	}
	if (r == 0) {
		/* The file ended (or was truncated while being sent). */
		l->src_done = true;
		return 0;
	}
	if (r == -EAGAIN) {
		st->wait = ZCIO_WAIT_OUT;
		return -EAGAIN;
	}
	why = zcio__sendfile_unsupported((int)-r);
	if (!why)
		return (int)r;
	l->sendfile_mode = false;
	note(l, st, ZCIO_PATH_SENDFILE, why, (int)-r);
	return 1;
}

static bool may_splice(const struct zcio_link *l)
{
	return l->splice_in_ok && l->splice_out_ok && !l->small_mode &&
	       !zcio__sc_unavailable(ZCIO__SC_SPLICE);
}

static int64_t pump(struct zcio_link *l, uint64_t max, struct zcio_stats *st)
{
	for (;;) {
		uint64_t budget = max ? max - st->last_bytes : UINT64_MAX;
		int r;

		if (max && st->last_bytes >= max)
			return (int64_t)st->last_bytes;
		/* A file keeps the pipe topped up behind what it holds. */
		if (l->pipe.bytes && !buffered(l) && !l->src_done && is_file(l->in.kind) &&
		    l->pipe.bytes < l->pipe.cap && may_splice(l)) {
			r = fill_pipe(l, st);
			if (r < 0 && r != -EAGAIN)
				return r;
		}
		if (l->pipe.bytes) {
			r = flush_pipe(l, st, budget);
			if (r < 0)
				return r;
			continue;
		}
		if (buffered(l)) {
			r = flush_buf(l, st, budget);
			if (r < 0)
				return r;
			continue;
		}
		release_idle(l);
		if (l->src_done)
			return 0;
		if (l->sendfile_mode) {
			r = send_file_body(l, st, budget);
			if (r == 0 || r == -EAGAIN)
				goto next;
			if (r < 0)
				return r;
		}
		r = may_splice(l) ? fill_pipe(l, st) : 1;
		if (r == 1)
			r = fill_buf(l, st);
next:
		if (r < 0) {
			if (r == -EAGAIN)
				release_idle(l);
			return r;
		}
	}
}

ZCIO_EXPORT int64_t zcio_link_pump(struct zcio_link *l, uint64_t max, struct zcio_stats *stats)
{
	struct zcio_stats local = { 0 };
	struct zcio_stats *st = stats ? stats : &local;
	struct zcio__sigpipe guard = { 0 };
	int64_t r;

	if (!l)
		return -EINVAL;
	zcio__stats_begin(st);
	if (l->guard_sigpipe)
		zcio__sigpipe_block(&guard);
	r = pump(l, max, st);
	if (l->guard_sigpipe)
		zcio__sigpipe_restore(&guard, r == -EPIPE);
	st->pending = zcio_link_pending(l);
	return r;
}

ZCIO_EXPORT int64_t zcio_link_drain(struct zcio_link *l, void *out, size_t len)
{
	unsigned char *p = out;
	size_t got = 0;

	if (!l || (!out && len))
		return -EINVAL;
	while (got < len && l->pipe.bytes) {
		size_t want = len - got < l->pipe.bytes ? len - got : l->pipe.bytes;
		ssize_t n = zcio__read(l->pipe.rd, p + got, want);

		if (n <= 0)
			return got ? (int64_t)got : (n < 0 ? n : -EIO);
		got += (size_t)n;
		l->pipe.bytes -= (uint32_t)n;
		l->pushed_in_pipe -= (uint32_t)n < l->pushed_in_pipe ? (uint32_t)n : l->pushed_in_pipe;
	}
	if (got < len && buffered(l)) {
		size_t n = len - got < buffered(l) ? len - got : buffered(l);

		memcpy(p + got, l->buf + l->buf_off, n);
		l->buf_off += n;
		got += n;
	}
	if (!zcio_link_pending(l))
		release_idle(l);
	return (int64_t)got;
}

ZCIO_EXPORT void zcio_link_free(struct zcio_link *l)
{
	if (!l)
		return;
	if (l->pipe.bytes)
		zcio__pipe_kill(&l->pipe); /* dirty: never pooled */
	else
		zcio__pipe_put(&l->pipe);
	free(l->buf);
	free(l);
}
