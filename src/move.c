/*
 * move.c - the paths a blocking transfer can take.  See move.h.
 *
 * Which errnos make a path "unsupported" (fall back, nothing lost) is
 * decided in fallback.c; any other errno is a real error.
 */
#include "move.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "fallback.h"
#include "pipe.h"
#include "stats.h"
#include "sys.h"
#include "thread.h"

/* Linux moves at most MAX_RW_COUNT (INT_MAX rounded down to a page) per
 * call; staying below it also keeps counts clear of any int in between. */
#define MAX_PER_CALL 0x7ffff000u
/* copy_file_range rounds: large (few syscalls; a signal still interrupts
 * them with the partial count), bounded like Rust's std at 1 GiB so that
 * offset + length cannot overflow a filesystem's maximum (EOVERFLOW). */
#define CFR_CHUNK (1u << 30)
/* sendfile rounds: bounded so a blocking call returns now and then
 * (a cancellation point), large enough that syscalls cost nothing. */
#define SENDFILE_CHUNK (4u << 20)
/* Writes to a datagram socket from a stream: one datagram per write. */
#define DGRAM_CHUNK (32u * 1024)

static int unsupported(struct zcio__move *m, int why, int err)
{
	m->why = why;
	m->err = err;
	return ZCIO__MOVE_UNSUPPORTED;
}

/*
 * A syscall already known to be missing or forbidden process-wide: leave the
 * path at once, with the reason and errno that taught us so (seccomp stays
 * "forbidden", not "not in this kernel").  Returns true when it is.
 */
static bool cached_unavailable(struct zcio__move *m, enum zcio__syscall sc)
{
	int why = zcio__sc_unavailable_why(sc);

	if (!why)
		return false;
	unsupported(m, why, why == ZCIO_WHY_FORBIDDEN ? EPERM : ENOSYS);
	return true;
}

static void delivered(struct zcio__move *m, int path, uint64_t n)
{
	m->done += n;
	zcio__stats_delivered(m->st, path, n);
}

static void header_delivered(struct zcio__move *m, size_t n)
{
	m->hdr_done += n;
	/* Headers are copied (written), whatever carries the body. */
	zcio__stats_delivered(m->st, ZCIO_PATH_COPY, n);
}

/*
 * Bytes still to take from the source, when that is certain: the wanted
 * bytes not yet delivered nor held (`held`: taken, not yet delivered), or
 * for a positional file source read to EOF, what the file held when we
 * started.  UINT64_MAX when unknown.  MSG_MORE/SPLICE_F_MORE are set only
 * when this is known to be non-zero: corking a last segment for bytes that
 * never come stalls it (up to 200 ms; Go #41513).
 */
static uint64_t to_take(const struct zcio__move *m, uint64_t held)
{
	uint64_t left = m->want == ZCIO_TO_EOF ? UINT64_MAX : m->want - m->done - held;

	if (m->positional && m->in_end) {
		uint64_t in_file = m->in_end > m->in_off ? m->in_end - m->in_off : 0;

		if (in_file < left)
			left = in_file;
	}
	return left;
}

/*
 * Bytes to ask for in one syscall: what is wanted, at most dflt (or the
 * caller's chunk).  For a positional file source, no more than the file
 * held when we started; once there, a full-size request checks whether it
 * grew (usually it returns 0: EOF).
 */
static size_t chunk_for(const struct zcio__move *m, uint64_t left, size_t dflt)
{
	uint64_t n = left;

	if (m->positional && m->in_end > m->in_off && m->in_end - m->in_off < n)
		n = m->in_end - m->in_off;

	if (m->chunk && m->chunk < dflt)
		dflt = m->chunk;
	if (n > dflt)
		n = dflt;
	if (n > MAX_PER_CALL)
		n = MAX_PER_CALL;
	return (size_t)n;
}

static bool is_file(enum zcio__kind k)
{
	return k == ZCIO__REG || k == ZCIO__BLK;
}

static bool is_socket(enum zcio__kind k)
{
	return k == ZCIO__STREAM || k == ZCIO__DGRAM;
}

/*
 * Sources whose "0 bytes" is not proof of EOF on the first call: procfs,
 * sysfs, overlayfs and CIFS before 5.19 return 0 from copy_file_range,
 * sendfile and splice on files that have data (Go #44272, systemd #18810).
 * Pipes and sockets mean it.
 */
static bool zero_may_lie(enum zcio__kind k)
{
	return k != ZCIO__PIPE && !is_socket(k);
}

static int wait_fd(struct zcio__move *m, int fd, short events)
{
	m->st->waits++;
	return zcio__wait(fd, events, m->timeout_ms);
}

static int wait_in(struct zcio__move *m)
{
	return wait_fd(m, m->in.fd, POLLIN);
}

static int wait_out(struct zcio__move *m)
{
	return wait_fd(m, m->out.fd, POLLOUT);
}

/*
 * EAGAIN from a syscall that touches two fds: wait for the one that blocked.
 * Ask poll() which is not ready.  Which fd is nonblocking does not tell:
 * splice() turns on SPLICE_F_NONBLOCK for both ends when either is
 * O_NONBLOCK (pipe to pipe), and a unix socket source honours that flag,
 * so an empty *blocking* source next to a nonblocking pipe also gives
 * EAGAIN (waiting on the ready pipe instead spun at 100% CPU).  If both
 * look ready (a pipe has room for bytes but not for another page slot,
 * say), sleep a millisecond rather than spin.
 */
static int wait_either(struct zcio__move *m)
{
	int which;

	which = zcio__which_blocked(m->in.fd, m->out.fd);
	if (which == 1)
		return wait_in(m);
	if (which == 2)
		return wait_out(m);
	m->st->waits++;
	nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
	return 0;
}

/* ---- writing out through user memory ------------------------------------- */

/*
 * Write what is left of the header and then len bytes of data to the
 * destination, all of it, waiting when it is nonblocking and full.  Sockets
 * get sendmsg(MSG_NOSIGNAL), and MSG_MORE when `more` says bytes follow.
 * On error *written says how many data bytes went out.
 */
static int write_full(struct zcio__move *m, const unsigned char *data, size_t len,
		      size_t *written, bool more)
{
	size_t dw = 0;

	while (m->hdr_done < m->hdr_len || dw < len) {
		struct iovec iov[2];
		size_t hleft = m->hdr_len - m->hdr_done;
		int cnt = 0;
		ssize_t r;

		if (hleft)
			iov[cnt++] = (struct iovec){ (void *)(m->hdr + m->hdr_done), hleft };
		if (dw < len)
			iov[cnt++] = (struct iovec){ (void *)(data + dw), len - dw };
		if (is_socket(m->out.kind)) {
			struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };

			r = zcio__sendmsg(m->out.fd, &msg, more ? MSG_MORE : 0);
		} else if (cnt == 1) {
			r = zcio__write(m->out.fd, iov[0].iov_base, iov[0].iov_len);
		} else {
			r = zcio__writev(m->out.fd, iov, cnt);
		}
		m->st->syscalls++;
		if (r > 0) {
			size_t h = (size_t)r < hleft ? (size_t)r : hleft;

			if (h)
				header_delivered(m, h);
			if ((size_t)r > h) {
				dw += (size_t)r - h;
				delivered(m, ZCIO_PATH_COPY, (size_t)r - h);
			}
			continue;
		}
		if (r == -EAGAIN) {
			r = wait_out(m);
			if (r == 0)
				continue;
		} else if (r == 0) {
			r = -EIO; /* a write that accepts nothing and no error */
		}
		*written = dw;
		return (int)r;
	}
	*written = dw;
	return 0;
}

int zcio__move_header(struct zcio__move *m)
{
	size_t unused;

	return write_full(m, NULL, 0, &unused, zcio__move_left(m) > 0);
}

/* ---- the paths ----------------------------------------------------------- */

/* read()/write() through the thread's buffer: works for every pair. */
static int move_copy(struct zcio__move *m)
{
	unsigned char *buf = zcio__thread_buffer();
	size_t bufsize = ZCIO__COPY_BUFFER_SIZE;

	if (!buf)
		return -ENOMEM;
	if (m->out.kind == ZCIO__DGRAM && m->in.kind != ZCIO__DGRAM)
		bufsize = DGRAM_CHUNK;
	while (zcio__move_left(m) > 0) {
		size_t n = chunk_for(m, zcio__move_left(m), bufsize);
		size_t written = 0, got;
		ssize_t r;
		bool more;
		int w;

		if (m->positional)
			r = zcio__pread(m->in.fd, buf, n, m->in_off);
		else if (m->in.kind == ZCIO__DGRAM)
			r = zcio__recv(m->in.fd, buf, n, MSG_TRUNC);
		else
			r = zcio__read(m->in.fd, buf, n);
		m->st->syscalls++;
		if (r == -EAGAIN) {
			r = wait_in(m);
			if (r < 0)
				return (int)r;
			continue;
		}
		if (r < 0)
			return (int)r;
		if (r == 0) {
			m->eof = true;
			break;
		}
		if ((size_t)r > n) {
			/* MSG_TRUNC: the datagram was larger than the buffer
			 * and its tail is gone. */
			m->stranded = (uint64_t)r;
			return -EMSGSIZE;
		}
		got = (size_t)r;
		if (m->positional)
			m->in_off += got;
		/* Cork only while more file data is certainly coming; bytes
		 * from a socket or pipe leave at once (no 200 ms stalls). */
		more = (m->flags & ZCIO_F_MORE) ||
		       (is_file(m->in.kind) && to_take(m, got) != UINT64_MAX && to_take(m, got) > 0);
		w = write_full(m, buf, got, &written, more);
		if (w < 0) {
			m->stranded = got - written;
			return w;
		}
	}
	if (m->hdr_done < m->hdr_len)
		return zcio__move_header(m);
	return ZCIO__MOVE_DONE;
}

/*
 * A small regular file read from its current offset (not positionally) to
 * EOF has delivered all it had once `done` reaches the size it had when
 * the call began: that is only possible from offset 0, so another call
 * would return 0.  Skipping that call saves one syscall in seven per small
 * file (zcio cat of many small files).  A file that grows meanwhile may
 * lose its new bytes to this, the race cat(1) has with its last read too.
 * Sizes of 0 (procfs, empty files) never end a copy this way.
 */
static bool whole_file_delivered(const struct zcio__move *m)
{
	return !m->positional && m->want == ZCIO_TO_EOF && m->in.kind == ZCIO__REG &&
	       m->in.size > 0 && m->done == m->in.size;
}

/* copy_file_range(): file to file inside the kernel (or a reflink). */
static int move_copy_file_range(struct zcio__move *m)
{
	if (cached_unavailable(m, ZCIO__SC_COPY_FILE_RANGE))
		return ZCIO__MOVE_UNSUPPORTED;
	while (zcio__move_left(m) > 0) {
		loff_t off = (loff_t)m->in_off;
		size_t n = chunk_for(m, zcio__move_left(m), CFR_CHUNK);
		ssize_t r = zcio__copy_file_range(m->in.fd, m->positional ? &off : NULL,
						  m->out.fd, NULL, n, 0);
		int why;

		m->st->syscalls++;
		if (r > 0) {
			if (m->positional)
				m->in_off += (uint64_t)r;
			delivered(m, ZCIO_PATH_COPY_FILE_RANGE, (uint64_t)r);
			if (whole_file_delivered(m)) {
				m->eof = true;
				break;
			}
			continue;
		}
		if (r == 0) {
			if (m->done == 0)
				return unsupported(m, ZCIO_WHY_ZERO_FIRST, 0);
			m->eof = true;
			break;
		}
		why = zcio__cfr_unsupported((int)-r);
		if (why)
			return unsupported(m, why, (int)-r);
		return (int)r;
	}
	return ZCIO__MOVE_DONE;
}

/* sendfile(): file pages to any destination, one syscall per round. */
static int move_sendfile(struct zcio__move *m)
{
	if (cached_unavailable(m, ZCIO__SC_SENDFILE))
		return ZCIO__MOVE_UNSUPPORTED;
	while (zcio__move_left(m) > 0) {
		off_t off = (off_t)m->in_off;
		size_t n = chunk_for(m, zcio__move_left(m), SENDFILE_CHUNK);
		ssize_t r = zcio__sendfile(m->out.fd, m->in.fd, m->positional ? &off : NULL, n);
		int why;

		m->st->syscalls++;
		if (r > 0) {
			if (m->positional)
				m->in_off += (uint64_t)r;
			delivered(m, ZCIO_PATH_SENDFILE, (uint64_t)r);
			continue;
		}
		if (r == 0) {
			if (m->done == 0)
				return unsupported(m, ZCIO_WHY_ZERO_FIRST, 0);
			m->eof = true; /* the file ended (or was truncated) */
			break;
		}
		if (r == -EAGAIN) {
			r = wait_out(m);
			if (r < 0)
				return (int)r;
			continue;
		}
		why = zcio__sendfile_unsupported((int)-r);
		if (why)
			return unsupported(m, why, (int)-r);
		return (int)r;
	}
	return ZCIO__MOVE_DONE;
}

/* splice() straight from source to destination: one of them is a pipe. */
static int move_splice(struct zcio__move *m)
{
	unsigned int flags = (m->flags & ZCIO_F_MORE) ? SPLICE_F_MORE : 0;
	bool offset_in = m->positional && m->in.kind != ZCIO__PIPE;

	if (cached_unavailable(m, ZCIO__SC_SPLICE))
		return ZCIO__MOVE_UNSUPPORTED;
	while (zcio__move_left(m) > 0) {
		loff_t off = (loff_t)m->in_off;
		/* Ask for a lot: the kernel moves what the pipe can hold and
		 * returns, it does not wait to fill the request. */
		size_t n = chunk_for(m, zcio__move_left(m), MAX_PER_CALL);
		ssize_t r = zcio__splice(m->in.fd, offset_in ? &off : NULL, m->out.fd, NULL, n, flags);
		int why;

		m->st->syscalls++;
		if (r > 0) {
			if (offset_in)
				m->in_off += (uint64_t)r;
			delivered(m, ZCIO_PATH_SPLICE, (uint64_t)r);
			continue;
		}
		if (r == 0) {
			if (m->done == 0 && zero_may_lie(m->in.kind))
				return unsupported(m, ZCIO_WHY_ZERO_FIRST, 0);
			m->eof = true;
			break;
		}
		if (r == -EAGAIN) {
			r = wait_either(m);
			if (r < 0)
				return (int)r;
			continue;
		}
		why = zcio__splice_unsupported((int)-r);
		if (why)
			return unsupported(m, why, (int)-r);
		return (int)r;
	}
	return ZCIO__MOVE_DONE;
}

/* What a pool pipe holds, in order: header bytes, then body bytes. */
struct pipe_state {
	struct zcio__pipe p;
	size_t hdr_queued;       /* header bytes put in the pipe or delivered */
	size_t hdr_in_pipe;
	uint64_t body_in_pipe;
};

/* Account for n bytes that left the pipe for the destination. */
static void pipe_delivered(struct zcio__move *m, struct pipe_state *ps, uint64_t n)
{
	size_t h = n < ps->hdr_in_pipe ? (size_t)n : ps->hdr_in_pipe;

	ps->p.bytes -= (uint32_t)n;
	if (h) {
		ps->hdr_in_pipe -= h;
		header_delivered(m, h);
	}
	if (n > h) {
		ps->body_in_pipe -= n - h;
		delivered(m, ZCIO_PATH_SPLICE_PIPE, n - h);
	}
}

/*
 * The destination refused splice after bytes were already taken from the
 * source into the pipe: copy them out with read()+write() so the next path
 * starts exactly where the stream is.  Header bytes in the pipe are simply
 * dropped: m->hdr still holds them and write_full() sends them first.
 */
static int drain_pipe_by_copy(struct zcio__move *m, struct pipe_state *ps)
{
	unsigned char *buf = zcio__thread_buffer();

	if (!buf)
		return -ENOMEM;
	while (ps->p.bytes > 0) {
		size_t n = ps->p.bytes < ZCIO__COPY_BUFFER_SIZE ? ps->p.bytes : ZCIO__COPY_BUFFER_SIZE;
		ssize_t r = zcio__read(ps->p.rd, buf, n);
		size_t h, written = 0;
		int w;

		m->st->syscalls++;
		if (r <= 0)
			return r < 0 ? (int)r : -EIO; /* our own pipe: cannot happen */
		ps->p.bytes -= (uint32_t)r;
		h = (size_t)r < ps->hdr_in_pipe ? (size_t)r : ps->hdr_in_pipe;
		ps->hdr_in_pipe -= h;
		ps->body_in_pipe -= (uint64_t)r - h;
		w = write_full(m, buf + h, (size_t)r - h, &written, ps->p.bytes > 0);
		if (w < 0) {
			ps->body_in_pipe += (size_t)r - h - written;
			return w;
		}
	}
	ps->hdr_queued = m->hdr_done;
	return 0;
}

/*
 * splice() in and out of a pooled pipe: socket to socket or file, and a
 * header followed by a file (the web server's case from the splice design:
 * write the header into the pipe, splice the file behind it, splice the
 * pipe to the socket).
 *
 * For sources that can run dry (sockets), the pipe is filled only when it
 * is empty.  Then an EAGAIN from the fill can only mean "source empty",
 * never "pipe has no free slot" (each spliced skb fragment takes a whole
 * page slot, so a 64 KiB pipe can be full at 23 KiB; sozu PR #1323 stalled
 * on that).  Files never run dry, so they keep the pipe topped up.
 */
static int move_splice_pipe(struct zcio__move *m)
{
	struct pipe_state ps = { .p = ZCIO__PIPE_NONE, .hdr_queued = m->hdr_done };
	bool in_file = is_file(m->in.kind);
	bool offset_in = m->positional && m->in.kind != ZCIO__PIPE;
	int stop = 0;        /* <0: error to return, 1: unsupported */
	int why = 0, err = 0;
	int r;

	if (cached_unavailable(m, ZCIO__SC_SPLICE))
		return ZCIO__MOVE_UNSUPPORTED;
	r = zcio__pipe_get(&ps.p, m->pipe_size);
	if (r < 0)
		return unsupported(m, ZCIO_WHY_NO_PIPE, -r);

	for (;;) {
		uint64_t fill_left = zcio__move_left(m) - ps.body_in_pipe;

		/* 1. The header goes in first (write() copies it; it is
		 * small).  A full pipe just waits for the drain below. */
		if (ps.hdr_queued < m->hdr_len) {
			ssize_t w = zcio__write(ps.p.wr, m->hdr + ps.hdr_queued,
						m->hdr_len - ps.hdr_queued);

			m->st->syscalls++;
			if (w > 0) {
				ps.p.bytes += (uint32_t)w;
				ps.hdr_queued += (size_t)w;
				ps.hdr_in_pipe += (size_t)w;
			} else if (w != -EAGAIN && !stop) {
				stop = (int)w;
			}
		}

		/* 2. The body behind it. */
		if (!stop && ps.hdr_queued == m->hdr_len && !m->eof && fill_left > 0 &&
		    ps.p.bytes < ps.p.cap && (in_file || ps.p.bytes == 0)) {
			loff_t off = (loff_t)m->in_off;
			size_t n = chunk_for(m, fill_left, ps.p.cap - ps.p.bytes);
			ssize_t f = zcio__splice(m->in.fd, offset_in ? &off : NULL, ps.p.wr, NULL,
						 n, SPLICE_F_NONBLOCK);

			m->st->syscalls++;
			if (f > 0) {
				ps.p.bytes += (uint32_t)f;
				ps.body_in_pipe += (uint64_t)f;
				if (offset_in)
					m->in_off += (uint64_t)f;
			} else if (f == 0) {
				if (m->done == 0 && ps.body_in_pipe == 0 && zero_may_lie(m->in.kind)) {
					stop = 1;
					why = ZCIO_WHY_ZERO_FIRST;
				} else {
					m->eof = true;
				}
			} else if (f == -EAGAIN) {
				if (ps.p.bytes == 0) {
					if (in_file) {
						/* An empty pipe refusing a file's
						 * pages: nothing to wait for. */
						stop = 1;
						why = ZCIO_WHY_REFUSED;
						err = EAGAIN;
					} else {
						/* The pipe is empty, so the
						 * source is. */
						r = wait_in(m);
						if (r < 0)
							stop = r;
					}
				}
				/* else: no free slot; drain first */
			} else if ((why = zcio__splice_unsupported((int)-f))) {
				stop = 1;
				err = (int)-f;
			} else {
				stop = (int)f;
			}
		}

		/* 3. Out to the destination. */
		if (ps.p.bytes > 0) {
			uint64_t next = to_take(m, ps.body_in_pipe);
			bool more = (m->flags & ZCIO_F_MORE) ||
				    (in_file && !m->eof && !stop && next != UINT64_MAX && next > 0);
			ssize_t d = zcio__splice(ps.p.rd, NULL, m->out.fd, NULL, ps.p.bytes,
						 more ? SPLICE_F_MORE : 0);
			int dwhy;

			m->st->syscalls++;
			if (d > 0) {
				pipe_delivered(m, &ps, (uint64_t)d);
				continue;
			}
			if (d == -EAGAIN) {
				r = wait_out(m);
				if (r == 0)
					continue;
				d = r;
			} else if (d == 0) {
				d = -EIO; /* our pipe holds data: cannot happen */
			} else if ((dwhy = zcio__splice_unsupported((int)-d))) {
				r = drain_pipe_by_copy(m, &ps);
				if (r == 0) {
					if (stop >= 0) {
						stop = 1;
						why = dwhy;
						err = (int)-d;
					}
					continue;
				}
				d = r;
			}
			/* A real error with bytes in the pipe: they came out of
			 * the source and cannot reach the destination. */
			m->stranded = ps.body_in_pipe;
			zcio__pipe_kill(&ps.p);
			return (int)d;
		}

		/* The pipe is empty here. */
		if (stop)
			break;
		if (ps.hdr_queued == m->hdr_len && (m->eof || zcio__move_left(m) == 0))
			break;
	}
	zcio__pipe_put(&ps.p);
	if (stop < 0)
		return stop;
	if (stop)
		return unsupported(m, why, err);
	return ZCIO__MOVE_DONE;
}

int zcio__move_run(struct zcio__move *m, int path)
{
	int r;

	switch (path) {
	case ZCIO_PATH_COPY:
		return move_copy(m);
	case ZCIO_PATH_SPLICE_PIPE:
		return move_splice_pipe(m);
	default:
		break;
	}
	/* The remaining paths carry only the body. */
	if (m->hdr_done < m->hdr_len) {
		r = zcio__move_header(m);
		if (r < 0)
			return r;
	}
	switch (path) {
	case ZCIO_PATH_COPY_FILE_RANGE:
		return move_copy_file_range(m);
	case ZCIO_PATH_SENDFILE:
		return move_sendfile(m);
	case ZCIO_PATH_SPLICE:
		return move_splice(m);
	default:
		return unsupported(m, ZCIO_WHY_KIND, 0);
	}
}
