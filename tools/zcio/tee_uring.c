/*
 * tee_uring.c - `zcio tee --uring`: standard input to every output with
 * IORING_OP_TEE and IORING_OP_SPLICE, one io_uring_enter per round.
 *
 * The source is standard input when it is a pipe (its bytes are tee()d
 * straight from it), else an intake pipe it is spliced into.  Positions are
 * stream offsets, as in src/fanout.c: `head` is what has been consumed from
 * the source pipe, each output's `pos` what it has taken, head <= pos.  A
 * tee() always duplicates from the front of the pipe, so only an output at
 * head can take more; the pipe may be consumed only up to the smallest pos.
 *
 * A round, submitted at once, is:
 *
 *   - for each output holding bytes in its own pipe: a SPLICE out of that
 *     pipe to its fd (a READ into a buffer, then a WRITE, for the outputs
 *     splice() cannot write: terminals, O_APPEND files);
 *   - one chain, linked in this order:
 *       SPLICE source -> the "last" output, of the bytes every other
 *              output already has (this consumes them; with no output
 *              able to be last, a SPLICE to /dev/null does);
 *       TEE source -> each other output at the new head: into its own
 *              pipe, or straight into it when it is a pipe.
 *     The link keeps a tee from running before the consuming splice is
 *     done (it would duplicate bytes about to go, or miss some).  A short
 *     splice fails the link and cancels the tees after it, which would
 *     otherwise start at the wrong offset; a short tee cancels the tees
 *     behind it, which try again next round.  Every result, however short,
 *     is added to the positions, so outputs may get different amounts in
 *     a round and the next round evens them out: nothing is lost,
 *     duplicated or reordered.
 *
 * The next round is built once every completion of this one is in.  The
 * one exception is the intake's filling SPLICE (standard input -> intake),
 * which may wait on an idle source for as long as it likes: it is not part
 * of a round, and rounds go on beside it (it only appends to the intake,
 * and a round only tee()s bytes already counted in it).
 *
 * The kernel runs IORING_OP_TEE and IORING_OP_SPLICE in its io-wq worker
 * threads, blocking there: an output that does not read holds its own
 * tee, and the round, so the slowest output paces the stream (--policy
 * block).  An fd that is O_NONBLOCK (a caller's) answers -EAGAIN instead;
 * the operation is then tried again behind POLL_ADDs on its ends.
 */
#include <errno.h>
#include <string.h>

#include "cli.h"
#include "tee_uring.h"

#define CMD "tee"

#ifndef ZCIO_HAVE_LIBURING

int tee_uring(int in, struct tee_uring_out *outs, unsigned n, uint32_t pipe_size,
	      bool want_stats, bool *failed)
{
	(void)in, (void)outs, (void)n, (void)pipe_size, (void)want_stats, (void)failed;
	cli_error(CMD, "--uring: not built in (zcio was built without liburing); "
		  "using the poll() fan-out");
	return 1;
}

#else

#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "uring_probe.h"

#define DEFAULT_PIPE_SIZE (1u << 20)
/* A copy-route output's buffer: what one READ from its pipe takes. */
#define COPY_BUF (64u << 10)
/* What one round may submit: per output, its way out (and a poll) and
 * its tee (and two polls); the chain's head (and two polls) and the
 * intake's fill (and a poll). */
#define OPS_PER_OUT 5
#define OPS_FIXED 5
/* IORING_MAX_ENTRIES: a round must fit in one submission, or a chain
 * would be cut where the submission queue was flushed. */
#define SQ_MAX 32768u

enum tu_route {
	TU_DIRECT,   /* a pipe: tee() straight into it */
	TU_PIPE,     /* tee() into its own pipe, splice() out */
	TU_COPY,     /* tee() into its own pipe, read() + write() out */
};

enum tu_kind {
	K_POLL, K_OUT_SPLICE, K_OUT_READ, K_OUT_WRITE, K_TEE, K_LAST, K_DISCARD,
	K_FILL, K_FILL_READ, K_FILL_WRITE,
};
/* user_data: the length asked for << 32 | the output's index << 8 | kind,
 * and this bit for the fill's operations, which are not part of a round. */
#define UD_FILL 0x80u

struct tu_out {
	struct tee_uring_out *o;
	enum tu_route route;
	int pipe[2];            /* its own pipe, -1 until needed */
	uint32_t cap, held;     /* its capacity, and bytes in it */
	char *buf;              /* copy route: read from the pipe, not yet written */
	uint32_t buf_off, buf_len;
	uint64_t pos;
	uint64_t bytes;         /* delivered */
	uint64_t copied;        /* ...of them written from memory (copy route) */
	bool dead, released;
	bool out_again;         /* its fd said EAGAIN: poll it before the next try */
	bool tee_again;         /* its tee said EAGAIN */
};

struct tu {
	struct io_uring ring;
	bool ring_ok;           /* ring set up: exit it */
	int in;                 /* standard input */
	int src;                /* the pipe tee()d from: in, or intake[0] */
	int intake[2];          /* -1 when in is a pipe */
	bool direct;            /* src is in */
	uint32_t pipe_size;
	uint32_t intake_cap;
	uint64_t head, tail;    /* tail: what the intake has taken (intake only) */
	bool eof;
	int src_err;
	bool fill_again;
	bool fill_copy;         /* standard input cannot be spliced: read it */
	char *fill_buf;         /* fill_copy: read, not yet written to the intake */
	uint32_t fill_off, fill_len;
	unsigned fill_left;     /* the fill's completions to come */
	unsigned round_left;    /* this round's completions to come */
	struct tu_out *out;
	unsigned n;
	int last;               /* index of the last consumer, -1 for none */
	int devnull;
	bool *failed;
	uint64_t enters, rounds, ops_tee, ops_splice, ops_copy, ops_poll;
	uint64_t short_tee, short_splice; /* chain operations that moved less than asked */
};

static uint32_t pipe_max(void)
{
	FILE *f = fopen("/proc/sys/fs/pipe-max-size", "re");
	unsigned long v = 0;

	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v >= 4096 && v <= (1ul << 30) ? (uint32_t)v : DEFAULT_PIPE_SIZE;
}

/* Grow a pipe to want, never shrink it; returns its capacity. */
static uint32_t pipe_grow(int fd, uint32_t want)
{
	int cur = fcntl(fd, F_GETPIPE_SZ);

	/* A pipe cannot grow past pipe-user-pages-soft without privilege
	 * (EPERM): it stays as it is. */
	if (cur > 0 && (uint32_t)cur < want && fcntl(fd, F_SETPIPE_SZ, (int)want) > 0)
		cur = fcntl(fd, F_GETPIPE_SZ);
	return cur > 0 ? (uint32_t)cur : 0;
}

static int pipe_new(int p[2], uint32_t want, uint32_t *cap)
{
	if (pipe2(p, O_CLOEXEC) != 0)
		return -errno;
	*cap = pipe_grow(p[1], want);
	return *cap ? 0 : -EIO;
}

static void pipe_close(int p[2])
{
	for (int i = 0; i < 2; i++) {
		if (p[i] >= 0)
			close(p[i]);
		p[i] = -1;
	}
}

static bool is_fifo(int fd)
{
	struct stat sb;

	return fstat(fd, &sb) == 0 && S_ISFIFO(sb.st_mode);
}

/* The route by the fd's kind, as the fan-out picks it (src/fanout.c). */
static enum tu_route route_for(int fd)
{
	struct stat sb;
	int fl = fcntl(fd, F_GETFL);

	if (fstat(fd, &sb) != 0)
		return TU_COPY;
	if (S_ISFIFO(sb.st_mode))
		return TU_DIRECT;
	if (S_ISREG(sb.st_mode))
		/* splice() into an O_APPEND file fails with EINVAL. */
		return fl >= 0 && (fl & O_APPEND) ? TU_COPY : TU_PIPE;
	if (S_ISSOCK(sb.st_mode)) {
		int type = 0;
		socklen_t len = sizeof(type);

		/* A datagram socket would see spliced pages merged into
		 * messages of any size. */
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type != SOCK_STREAM)
			return TU_COPY;
		return TU_PIPE;
	}
	if (S_ISBLK(sb.st_mode))
		return TU_PIPE;
	/* Terminals have a line discipline and no splice_write. */
	if (S_ISCHR(sb.st_mode) && !isatty(fd))
		return TU_PIPE;
	return TU_COPY;
}

/* ---- outputs ------------------------------------------------------------- */

static void delivered(struct tu_out *d, int64_t n, bool copied)
{
	d->bytes += (uint64_t)n;
	if (copied)
		d->copied += (uint64_t)n;
}

/* The output failed or its reader left: reported by tee.c's rule. */
static void out_end(struct tu *u, struct tu_out *d, int err)
{
	if (d->dead)
		return;
	d->dead = true;
	if (u->last == d - u->out)
		u->last = -1;
	if ((err == -EPIPE || err == -ECONNRESET) && !d->o->is_socket)
		return; /* like tee -p: a pipe whose reader left is no error */
	cli_error(CMD, "%s: %s", d->o->name, strerror(-err));
	*u->failed = true;
}

/* Free a dead output's pipe and buffer once nothing of the round uses
 * them any more. */
static void out_release(struct tu_out *d)
{
	if (!d->dead || d->released)
		return;
	d->released = true;
	pipe_close(d->pipe);
	free(d->buf);
	d->buf = NULL;
}

/* Give d its own pipe (and buffer) when its route needs them. */
static int out_prepare(struct tu *u, struct tu_out *d)
{
	int r;

	if (d->route != TU_DIRECT && d->pipe[0] < 0) {
		r = pipe_new(d->pipe, u->pipe_size, &d->cap);
		if (r < 0)
			return r;
	}
	if (d->route == TU_COPY && !d->buf) {
		d->buf = malloc(COPY_BUF);
		if (!d->buf)
			return -ENOMEM;
	}
	return 0;
}

/* splice() refuses this fd: copy out of its pipe from now on.  What its
 * pipe holds stays there and goes first. */
static int to_copy(struct tu *u, struct tu_out *d)
{
	d->route = TU_COPY;
	return out_prepare(u, d);
}

/* ---- building a round ----------------------------------------------------- */

static struct io_uring_sqe *sqe_for(struct tu *u, unsigned idx, unsigned kind)
{
	/* The ring has room for the largest round (tee_uring sizes it). */
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (!sqe)
		abort();
	io_uring_sqe_set_data64(sqe, (uint64_t)idx << 8 | kind);
	if (kind & UD_FILL)
		u->fill_left++;
	else
		u->round_left++;
	return sqe;
}

/* Remember what a chain operation asked for, to count short results. */
static void asked(struct io_uring_sqe *sqe, uint64_t len)
{
	sqe->user_data |= len << 32;
}

/* POLL_ADD linked in front of the next operation. */
static void poll_first(struct tu *u, unsigned idx, int fd, short events, unsigned fill)
{
	struct io_uring_sqe *sqe = sqe_for(u, idx, K_POLL | fill);

	io_uring_prep_poll_add(sqe, fd, (unsigned)events);
	sqe->flags |= IOSQE_IO_LINK;
	u->ops_poll++;
}

/* Each output's way out of its own pipe. */
static void add_outs(struct tu *u)
{
	for (unsigned i = 0; i < u->n; i++) {
		struct tu_out *d = &u->out[i];
		struct io_uring_sqe *sqe;
		int fd = d->o->fd;

		if (d->dead || (d->buf_len == d->buf_off && !d->held))
			continue;
		if (d->buf_len > d->buf_off) {
			if (d->out_again)
				poll_first(u, i, fd, POLLOUT, 0);
			sqe = sqe_for(u, i, K_OUT_WRITE);
			io_uring_prep_write(sqe, fd, d->buf + d->buf_off, d->buf_len - d->buf_off,
					    (uint64_t)-1);
			u->ops_copy++;
		} else if (d->route == TU_COPY) {
			/* Our pipe holds held bytes: the read takes them
			 * without waiting. */
			sqe = sqe_for(u, i, K_OUT_READ);
			io_uring_prep_read(sqe, d->pipe[0], d->buf,
					   d->held < COPY_BUF ? d->held : COPY_BUF, (uint64_t)-1);
			u->ops_copy++;
		} else {
			if (d->out_again)
				poll_first(u, i, fd, POLLOUT, 0);
			sqe = sqe_for(u, i, K_OUT_SPLICE);
			io_uring_prep_splice(sqe, d->pipe[0], -1, fd, -1, d->held, 0);
			u->ops_splice++;
		}
	}
}

static bool may_be_last(const struct tu *u, const struct tu_out *d)
{
	return !d->dead && d->route != TU_COPY && d->pos == u->head && !d->held &&
	       d->buf_len == d->buf_off;
}

/* The output that consumes the source: the one before if it still can,
 * else one at head holding nothing, a file or socket rather than a pipe
 * (spliced to directly, it skips the hop through a pipe of its own). */
static void pick_last(struct tu *u)
{
	if (u->last >= 0 && may_be_last(u, &u->out[u->last]))
		return;
	u->last = -1;
	for (unsigned i = 0; i < u->n; i++) {
		struct tu_out *d = &u->out[i];

		if (may_be_last(u, d) &&
		    (u->last < 0 || (u->out[u->last].route == TU_DIRECT && d->route == TU_PIPE)))
			u->last = (int)i;
	}
}

/* The chain: consume what everyone else has, then tee to those at the new
 * head.  The chain's final operation links to nothing. */
static void add_chain(struct tu *u)
{
	struct io_uring_sqe *sqe, *tail_sqe = NULL;
	uint64_t m = UINT64_MAX, newhead = u->head, len;
	bool others = false;

	if (u->direct && u->eof)
		return;
	pick_last(u);
	for (unsigned i = 0; i < u->n; i++) {
		const struct tu_out *d = &u->out[i];

		if (!d->dead && (int)i != u->last) {
			others = true;
			if (d->pos < m)
				m = d->pos;
		}
	}
	if (u->last >= 0) {
		struct tu_out *d = &u->out[u->last];

		if (others)
			len = m - u->head;
		else if (u->direct)
			len = u->pipe_size; /* whatever the pipe has */
		else
			len = u->tail - u->head;
		if (len > u->pipe_size)
			len = u->pipe_size; /* never more than a pipe holds */
		if (len) {
			if (d->out_again) {
				poll_first(u, (unsigned)u->last, u->src, POLLIN, 0);
				poll_first(u, (unsigned)u->last, d->o->fd, POLLOUT, 0);
			}
			sqe = sqe_for(u, (unsigned)u->last, K_LAST);
			io_uring_prep_splice(sqe, u->src, -1, d->o->fd, -1, (unsigned)len, 0);
			asked(sqe, len);
			sqe->flags |= IOSQE_IO_LINK;
			tail_sqe = sqe;
			u->ops_splice++;
			newhead = u->head + len;
		}
	} else if (others && m > u->head) {
		/* Everyone has these bytes and no one can take them by
		 * consuming them: drop the page references. */
		len = m - u->head;
		if (len > u->pipe_size)
			len = u->pipe_size;
		sqe = sqe_for(u, 0, K_DISCARD);
		io_uring_prep_splice(sqe, u->src, -1, u->devnull, -1, (unsigned)len, 0);
		asked(sqe, len);
		sqe->flags |= IOSQE_IO_LINK;
		tail_sqe = sqe;
		u->ops_splice++;
		newhead = u->head + len;
	}
	for (unsigned i = 0; i < u->n; i++) {
		struct tu_out *d = &u->out[i];
		int target;

		if (d->dead || (int)i == u->last || d->pos != newhead)
			continue;
		if (d->route == TU_DIRECT) {
			target = d->o->fd;
			len = u->pipe_size;
		} else {
			target = d->pipe[1];
			len = d->cap - d->held;
		}
		if (!u->direct && len > u->tail - newhead)
			len = u->tail - newhead; /* only what the intake holds */
		if (!len)
			continue;
		if (d->tee_again) {
			/* An O_NONBLOCK end said EAGAIN: wait until the source
			 * has bytes and the target has room. */
			poll_first(u, i, u->src, POLLIN, 0);
			poll_first(u, i, target, POLLOUT, 0);
		}
		sqe = sqe_for(u, i, K_TEE);
		io_uring_prep_tee(sqe, u->src, target, (unsigned)len, 0);
		asked(sqe, len);
		sqe->flags |= IOSQE_IO_LINK;
		tail_sqe = sqe;
		u->ops_tee++;
	}
	if (tail_sqe)
		tail_sqe->flags &= (__u8)~IOSQE_IO_LINK;
}

/* The intake's fill, outside the rounds: one at a time. */
static void add_fill(struct tu *u)
{
	struct io_uring_sqe *sqe;
	uint64_t room;

	if (u->direct || u->eof || u->fill_left)
		return;
	room = u->intake_cap - (u->tail - u->head);
	if (!room)
		return;
	if (u->fill_copy && u->fill_len > u->fill_off) {
		/* Our intake, blocking, with room for what was read. */
		sqe = sqe_for(u, 0, K_FILL_WRITE | UD_FILL);
		io_uring_prep_write(sqe, u->intake[1], u->fill_buf + u->fill_off,
				    u->fill_len - u->fill_off, (uint64_t)-1);
		u->ops_copy++;
		return;
	}
	if (u->fill_again)
		poll_first(u, 0, u->in, POLLIN, UD_FILL);
	if (u->fill_copy) {
		sqe = sqe_for(u, 0, K_FILL_READ | UD_FILL);
		io_uring_prep_read(sqe, u->in, u->fill_buf, room < COPY_BUF ? (unsigned)room : COPY_BUF,
				   (uint64_t)-1);
		u->ops_copy++;
		return;
	}
	sqe = sqe_for(u, 0, K_FILL | UD_FILL);
	io_uring_prep_splice(sqe, u->in, -1, u->intake[1], -1, (unsigned)room, 0);
	u->ops_splice++;
}

/* Read standard input into memory from now on.  Returns 0 or -ENOMEM. */
static int to_fill_copy(struct tu *u)
{
	u->fill_copy = true;
	if (!u->fill_buf)
		u->fill_buf = malloc(COPY_BUF);
	return u->fill_buf ? 0 : -ENOMEM;
}

/* ---- completions -------------------------------------------------------- */

/* Errnos that say "nothing happened, try again next round". */
static bool retry_later(int res)
{
	/* ECANCELED: an operation before it in the chain came up short or
	 * failed, or its poll did.  EINTR: the io-wq worker was signalled. */
	return res == -ECANCELED || res == -EINTR;
}

static void complete(struct tu *u, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	unsigned kind = ud & 0x7f, idx = (unsigned)(ud >> 8) & 0xffffffu;
	struct tu_out *d = idx < u->n ? &u->out[idx] : NULL;
	int res = cqe->res;

	if (ud & UD_FILL)
		u->fill_left--;
	else
		u->round_left--;
	if (res > 0 && (uint64_t)res < ud >> 32) {
		/* Short: what the chain had behind it was cancelled. */
		if (kind == K_TEE)
			u->short_tee++;
		else
			u->short_splice++;
	}
	switch (kind) {
	case K_POLL:
		return; /* the operation it guards says what happened */
	case K_FILL:
		if (res > 0) {
			u->tail += (uint64_t)res;
			u->fill_again = false;
		} else if (res == 0) {
			u->eof = true;
		} else if (res == -EAGAIN) {
			u->fill_again = true; /* an O_NONBLOCK standard input */
		} else if (res == -EINVAL) {
			/* No splice_read for this kind of file (/dev/null,
			 * some character devices and file systems): nothing
			 * was taken, read it instead. */
			if (to_fill_copy(u) < 0) {
				u->src_err = -ENOMEM;
				u->eof = true;
			}
		} else if (!retry_later(res)) {
			u->src_err = res;
			u->eof = true;
		}
		return;
	case K_FILL_READ:
		if (res > 0) {
			u->fill_off = 0;
			u->fill_len = (uint32_t)res;
			u->fill_again = false;
		} else if (res == 0) {
			u->eof = true;
		} else if (res == -EAGAIN) {
			u->fill_again = true;
		} else if (!retry_later(res)) {
			u->src_err = res;
			u->eof = true;
		}
		return;
	case K_FILL_WRITE:
		if (res > 0) {
			u->tail += (uint64_t)res;
			u->fill_off += (uint32_t)res;
			if (u->fill_off == u->fill_len)
				u->fill_off = u->fill_len = 0;
		} else if (!retry_later(res)) {
			/* Our own pipe, which we read: cannot happen. */
			u->src_err = res ? res : -EIO;
			u->eof = true;
		}
		return;
	case K_DISCARD:
		if (res > 0) {
			u->head += (uint64_t)res;
		} else if (!retry_later(res)) {
			/* /dev/null takes anything; our pipe holds the bytes. */
			u->src_err = res < 0 ? res : -EIO;
			u->eof = true;
		}
		return;
	default:
		break;
	}
	if (!d || d->dead)
		return;
	switch (kind) {
	case K_OUT_SPLICE:
		if (res > 0) {
			d->held -= (uint32_t)res;
			delivered(d, res, false);
			d->out_again = false;
		} else if (res == -EAGAIN) {
			d->out_again = true;
		} else if (res == -EINVAL) {
			/* An fd without splice_write (some character devices
			 * since 5.10): nothing moved, copy from its pipe. */
			if (to_copy(u, d) < 0)
				out_end(u, d, -ENOMEM);
		} else if (!retry_later(res)) {
			out_end(u, d, res ? res : -EIO);
		}
		break;
	case K_OUT_READ:
		if (res > 0) {
			d->held -= (uint32_t)res;
			d->buf_off = 0;
			d->buf_len = (uint32_t)res;
		} else if (!retry_later(res)) {
			out_end(u, d, res ? res : -EIO); /* our own pipe: cannot happen */
		}
		break;
	case K_OUT_WRITE:
		if (res > 0) {
			d->buf_off += (uint32_t)res;
			if (d->buf_off == d->buf_len)
				d->buf_off = d->buf_len = 0;
			delivered(d, res, true);
			d->out_again = false;
		} else if (res == -EAGAIN) {
			d->out_again = true;
		} else if (!retry_later(res)) {
			out_end(u, d, res ? res : -EIO);
		}
		break;
	case K_TEE:
		if (res > 0) {
			d->pos += (uint64_t)res;
			if (d->route == TU_DIRECT)
				delivered(d, res, false);
			else
				d->held += (uint32_t)res;
			d->tee_again = false;
		} else if (res == 0) {
			/* tee() from an empty pipe with no writer left: the
			 * end of standard input (the intake is only tee()d
			 * from for bytes it holds). */
			if (u->direct)
				u->eof = true;
			else
				out_end(u, d, -EIO);
		} else if (res == -EAGAIN) {
			d->tee_again = true;
		} else if (res == -EINVAL && d->route == TU_DIRECT) {
			/* A pipe that refuses tee(): give it a pipe of ours
			 * to splice from. */
			d->route = TU_PIPE;
			if (out_prepare(u, d) < 0)
				out_end(u, d, -ENOMEM);
		} else if (!retry_later(res)) {
			out_end(u, d, res); /* EPIPE: a FIFO's reader left */
		}
		break;
	case K_LAST:
		if (res > 0) {
			u->head += (uint64_t)res;
			d->pos += (uint64_t)res;
			delivered(d, res, false);
			d->out_again = false;
		} else if (res == 0) {
			if (u->direct)
				u->eof = true; /* empty, no writer: the end */
			else
				out_end(u, d, -EIO);
		} else if (res == -EAGAIN) {
			d->out_again = true;
		} else if (res == -EINVAL) {
			/* This fd refuses splice: nothing consumed. */
			if (to_copy(u, d) < 0)
				out_end(u, d, -ENOMEM);
		} else if (!retry_later(res)) {
			out_end(u, d, res);
		}
		break;
	}
}

/* Submit what was prepared and wait for the round's completions (and the
 * fill's when the round is empty).  Returns 0 or -errno of the ring. */
static int run_round(struct tu *u)
{
	while (u->round_left || (u->fill_left && !u->round_left)) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		unsigned want = u->round_left ? u->round_left : 1;
		int r = io_uring_submit_and_wait(&u->ring, want);

		u->enters++;
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
			return r;
		io_uring_for_each_cqe(&u->ring, head, cqe) {
			complete(u, cqe);
			seen++;
		}
		io_uring_cq_advance(&u->ring, seen);
		if (!u->round_left && seen)
			break; /* an empty round ends with whatever came in */
	}
	return 0;
}

static bool all_done(const struct tu *u)
{
	bool any = false;

	for (unsigned i = 0; i < u->n; i++) {
		const struct tu_out *d = &u->out[i];

		if (d->dead)
			continue;
		any = true;
		if (!u->eof || d->pos != u->head || d->held || d->buf_len != d->buf_off)
			return false;
	}
	/* tee(1) stops reading once every output is gone. */
	if (!any)
		return true;
	return u->direct || u->head == u->tail;
}

static int pump(struct tu *u)
{
	for (;;) {
		int r;

		for (unsigned i = 0; i < u->n; i++)
			out_release(&u->out[i]);
		if (all_done(u))
			return 0;
		add_outs(u);
		add_fill(u);
		add_chain(u);
		if (!u->round_left && !u->fill_left) {
			/* Nothing to do and not done: a state the rules above
			 * cannot reach; say so rather than spin. */
			return -EIO;
		}
		u->rounds++;
		r = run_round(u);
		if (r < 0)
			return r;
	}
}

/* ---- setting up ------------------------------------------------------------ */

static int probe(const char **why, bool *unavailable)
{
	static const struct uring_need_op ops[] = {
		{ IORING_OP_TEE, "IORING_OP_TEE" },
		{ IORING_OP_SPLICE, "IORING_OP_SPLICE" },
		{ IORING_OP_POLL_ADD, "IORING_OP_POLL_ADD" },
		{ IORING_OP_READ, "IORING_OP_READ" },
		{ IORING_OP_WRITE, "IORING_OP_WRITE" },
	};

	/* No feature flag needed: the completion queue is twice the
	 * largest round, so it cannot overflow. */
	return uring_probe(ops, sizeof(ops) / sizeof(ops[0]), 0, "", why, unavailable);
}

static void print_stats(const struct tu *u)
{
	struct zcio_stats st = { 0 };

	/* io_uring: by IORING_OP_TEE and IORING_OP_SPLICE, page references;
	 * copy: by IORING_OP_WRITE from memory. */
	for (unsigned i = 0; i < u->n; i++) {
		st.bytes += u->out[i].bytes;
		st.path_bytes[ZCIO_PATH_URING] += u->out[i].bytes - u->out[i].copied;
		st.path_bytes[ZCIO_PATH_COPY] += u->out[i].copied;
	}
	st.syscalls = u->enters;
	st.waits = u->rounds;
	cli_print_stats(CMD, &st);
	cli_error(CMD, "stats: io_uring: %" PRIu64 " rounds, %" PRIu64 " io_uring_enter, "
		  "%" PRIu64 " tee, %" PRIu64 " splice, %" PRIu64 " read+write, %" PRIu64 " poll "
		  "operations, %s; short: %" PRIu64 " tee, %" PRIu64 " consuming splice",
		  u->rounds, u->enters, u->ops_tee, u->ops_splice, u->ops_copy, u->ops_poll,
		  u->direct ? "tee()d from standard input" : "through an intake pipe",
		  u->short_tee, u->short_splice);
	for (unsigned i = 0; i < u->n; i++)
		cli_error(CMD, "stats: output %s: %" PRIu64 " bytes", u->out[i].o->name,
			  u->out[i].bytes);
}

/* Returns 0, or -errno with *why; *fallback set when nothing has been read
 * and the poll() fan-out can take over. */
static int setup(struct tu *u, int in, struct tee_uring_out *outs, unsigned n, uint32_t pipe_size,
		 const char **why, bool *fallback)
{
	unsigned sq = 8, want = n * OPS_PER_OUT + OPS_FIXED;
	int r;

	*fallback = false;
	u->in = in;
	u->n = n;
	u->last = -1;
	u->intake[0] = u->intake[1] = -1;
	u->devnull = -1;
	u->pipe_size = pipe_size ? pipe_size : DEFAULT_PIPE_SIZE;
	if (u->pipe_size > pipe_max())
		u->pipe_size = pipe_max();
	*why = "setting up";
	u->out = calloc(n ? n : 1, sizeof(*u->out));
	if (!u->out)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++)
		u->out[i].pipe[0] = u->out[i].pipe[1] = -1;
	while (sq < want)
		sq <<= 1;
	if (sq > SQ_MAX) {
		*why = "too many outputs for one ring";
		*fallback = true;
		return -E2BIG;
	}
	r = uring_ring_init(&u->ring, sq, sq * 2);
	if (r == -ENOSYS || r == -EPERM) {
		/* The probe's small ring was allowed and this one is not:
		 * io_uring_disabled or a seccomp filter that changed between
		 * the two, or a filter on the ring's size. */
		*why = "io_uring_setup refused";
		*fallback = true;
		return r;
	}
	if (r < 0) {
		*why = "io_uring_setup failed";
		return r;
	}
	u->ring_ok = true;
	u->direct = is_fifo(in);
	if (u->direct) {
		u->src = in;
		(void)pipe_grow(in, u->pipe_size);
	} else {
		r = pipe_new(u->intake, u->pipe_size, &u->intake_cap);
		if (r < 0)
			goto no_pipe;
		u->src = u->intake[0];
		/* Terminals and datagram sockets cannot be spliced from:
		 * they are read (the route an output of that kind gets). */
		if (route_for(in) == TU_COPY && (r = to_fill_copy(u)) < 0)
			return r;
	}
	u->devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (u->devnull < 0)
		return -errno;
	for (unsigned i = 0; i < n; i++) {
		struct tu_out *d = &u->out[i];

		d->o = &outs[i];
		d->route = route_for(outs[i].fd);
		if (d->route == TU_DIRECT)
			(void)pipe_grow(outs[i].fd, u->pipe_size);
		r = out_prepare(u, d);
		if (r == -ENOMEM)
			return r;
		if (r < 0)
			goto no_pipe;
	}
	for (unsigned i = 0; i < n; i++) {
		if (outs[i].owned && outs[i].is_socket) {
			/* Our own socket, connected nonblocking: blocking is
			 * what an io-wq worker wants (no EAGAIN, no poll).
			 * Last, so that a fallback finds it as it was. */
			int fl = fcntl(outs[i].fd, F_GETFL);

			if (fl >= 0)
				(void)fcntl(outs[i].fd, F_SETFL, fl & ~O_NONBLOCK);
		}
	}
	return 0;
no_pipe:
	/* EMFILE, ENFILE: no fd for a pipe; the fan-out copies through
	 * memory where it cannot have one. */
	*why = "no pipe";
	*fallback = r == -EMFILE || r == -ENFILE;
	return r;
}

static void teardown(struct tu *u)
{
	if (u->ring_ok)
		io_uring_queue_exit(&u->ring);
	for (unsigned i = 0; u->out && i < u->n; i++) {
		pipe_close(u->out[i].pipe);
		free(u->out[i].buf);
	}
	free(u->out);
	free(u->fill_buf);
	pipe_close(u->intake);
	if (u->devnull >= 0)
		close(u->devnull);
}

int tee_uring(int in, struct tee_uring_out *outs, unsigned n, uint32_t pipe_size,
	      bool want_stats, bool *failed)
{
	struct tu u = { .failed = failed };
	const char *why = "";
	bool unavailable = false;
	int r = probe(&why, &unavailable);

	if (r < 0 && unavailable) {
		cli_error(CMD, "--uring: %s (%s); using the poll() fan-out", why, strerror(-r));
		return 1;
	}
	if (r < 0) {
		cli_error(CMD, "--uring: %s: %s", why, strerror(-r));
		*failed = true;
		return 0;
	}
	r = setup(&u, in, outs, n, pipe_size, &why, &unavailable);
	if (r < 0) {
		teardown(&u);
		if (unavailable) {
			cli_error(CMD, "--uring: %s (%s); using the poll() fan-out", why, strerror(-r));
			return 1;
		}
		cli_error(CMD, "--uring: %s: %s", why, strerror(-r));
		*failed = true;
		return 0;
	}
	r = pump(&u);
	if (r < 0) {
		cli_error(CMD, "--uring: %s", r == -EIO ? "the fan-out stalled" : strerror(-r));
		*failed = true;
	} else if (u.src_err) {
		cli_error(CMD, "standard input: %s", strerror(-u.src_err));
		*failed = true;
	}
	if (want_stats)
		print_stats(&u);
	teardown(&u);
	return 0;
}

#endif
