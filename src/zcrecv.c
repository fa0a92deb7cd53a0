/*
 * zcrecv.c - receive from TCP by mapping the received pages
 * (getsockopt(TCP_ZEROCOPY_RECEIVE)) where the kernel can, by recv() where
 * it cannot, behind one call that hands out views of the stream in order.
 *
 * The kernel maps only whole pages that are whole, page-aligned fragments of
 * its receive buffers and not page-cache or compound pages.  Whatever stands
 * in the way (a short segment, an MSS that is no multiple of the page size,
 * the tail of a partly filled page, fewer than a page of bytes queued) it
 * reports as recv_skip_hint: that many bytes must be read with recv() before
 * mapping can go on.  On this machine's loopback and veth, pages sent with
 * write() arrive in compound page fragments (never mapped), while pages sent
 * with MSG_ZEROCOPY were copied on delivery into fresh pages (mapped).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "export.h"
#include "stats.h"
#include "sys.h"
#include "zcio.h"

#define ZCRECV_WINDOW (512u * 1024) /* what the kernel's tcp_mmap test uses */
#define ZCRECV_MISSES 16            /* calls in a row mapping nothing: give up */

struct zcio_zcrecv {
	int fd;
	bool nonblock;          /* O_NONBLOCK when created */
	bool map_ok;            /* still trying TCP_ZEROCOPY_RECEIVE */
	unsigned char *map;     /* window mmap()ed from the socket */
	size_t win;
	unsigned char *buf;     /* copy buffer, win bytes */
	const unsigned char *view;
	size_t view_len;        /* bytes of the view not handed out yet */
	bool view_mapped;
	size_t mapped;          /* bytes the last getsockopt mapped */
	size_t skip;            /* bytes the kernel said to recv() next */
	int pending_err;        /* socket error reported with mapped data */
	unsigned misses;
	uint32_t reported;
};

static void note(struct zcio_zcrecv *zr, struct zcio_stats *st, int reason, int err)
{
	if (zr->reported & (1u << reason))
		return;
	zr->reported |= 1u << reason;
	zcio__stats_fallback(st, ZCIO_PATH_ZEROCOPY_RECV, ZCIO_PATH_COPY, reason, err,
			     st->last_bytes);
}

ZCIO_EXPORT int zcio_zcrecv_new(int sock, const struct zcio_opts *opts, struct zcio_zcrecv **zrp)
{
	static const struct zcio_opts defaults;
	const struct zcio_opts *o = opts ? opts : &defaults;
	long pg = sysconf(_SC_PAGESIZE);
	size_t page = pg > 0 ? (size_t)pg : 4096;
	struct zcio_zcrecv *zr;
	int fl, r;

	if (!zrp)
		return -EINVAL;
	*zrp = NULL;
	r = zcio__socket_type(sock);
	if (r < 0)
		return r;
	fl = zcio__getfl(sock);
	if (fl < 0)
		return fl;
	zr = calloc(1, sizeof(*zr));
	if (!zr)
		return -ENOMEM;
	zr->fd = sock;
	zr->nonblock = fl & O_NONBLOCK;
	zr->win = o->chunk ? (o->chunk + page - 1) / page * page : ZCRECV_WINDOW;
	zr->buf = malloc(zr->win);
	if (!zr->buf) {
		free(zr);
		return -ENOMEM;
	}
	/* Only TCP sockets can be mapped; anything else (ENODEV for unix
	 * sockets, EINVAL) simply receives by copying. */
	if (!(o->flags & ZCIO_F_COPY) && r == SOCK_STREAM) {
		void *m;

		if (zcio__mmap(NULL, zr->win, PROT_READ, MAP_SHARED, sock, 0, &m) == 0) {
			zr->map = m;
			zr->map_ok = true;
		}
	}
	*zrp = zr;
	return 0;
}

/* Hand out up to max bytes of the current view: they are received now. */
static int64_t hand_out(struct zcio_zcrecv *zr, const void **data, size_t max,
			struct zcio_stats *st)
{
	size_t n = max && max < zr->view_len ? max : zr->view_len;

	*data = zr->view;
	zr->view += n;
	zr->view_len -= n;
	zcio__stats_delivered(st, zr->view_mapped ? ZCIO_PATH_ZEROCOPY_RECV : ZCIO_PATH_COPY, n);
	return (int64_t)n;
}

/* recv() up to want bytes into the buffer.  > 0, 0 at EOF, or -errno. */
static int64_t copy_in(struct zcio_zcrecv *zr, size_t want, struct zcio_stats *st)
{
	ssize_t r = zcio__recv(zr->fd, zr->buf, want, 0);

	st->syscalls++;
	if (r > 0) {
		zr->view = zr->buf;
		zr->view_len = (size_t)r;
		zr->view_mapped = false;
		if (zr->skip)
			zr->skip -= (size_t)r < zr->skip ? (size_t)r : zr->skip;
	} else if (r == -EAGAIN) {
		st->wait = ZCIO_WAIT_IN;
	}
	return r;
}

/*
 * Ask the kernel to map the next pages.  Returns the bytes mapped (> 0);
 * 0 when bytes are queued but cannot be mapped (zr->skip of them must be
 * copied first); -EAGAIN when nothing is queued; -ENOSYS when mapping does
 * not work here (copy from now on); -EIO when the stream has ended or
 * failed (recv() says which); or the socket's error.
 */
static int64_t map_next(struct zcio_zcrecv *zr, struct zcio_stats *st)
{
	struct tcp_zerocopy_receive zc;
	socklen_t len = sizeof(zc);
	int r;

	memset(&zc, 0, sizeof(zc));
	zc.address = (uint64_t)(uintptr_t)zr->map;
	zc.length = (uint32_t)zr->win;
	r = zcio__getsockopt(zr->fd, IPPROTO_TCP, TCP_ZEROCOPY_RECEIVE, &zc, &len);
	st->syscalls++;
	if (r == -EIO)
		return -EIO; /* no data and the peer is done: recv() says 0 or why */
	if (r < 0) {
		/* ENOPROTOOPT: a kernel without it (before 4.18); EOPNOTSUPP:
		 * no MMU; EINVAL: a socket in a state that cannot map (listening,
		 * or TCP_REPAIR), or a mapping the kernel did not recognize.
		 * None changes while this zcrecv lives. */
		zr->map_ok = false;
		note(zr, st, ZCIO_WHY_REFUSED, -r);
		return -ENOSYS;
	}
	if (zc.err && !zc.length) {
		zr->skip = 0;
		return -(int64_t)(zc.err < 0 ? -zc.err : zc.err);
	}
	if (zc.err)
		zr->pending_err = zc.err < 0 ? -zc.err : zc.err;
	zr->skip = zc.recv_skip_hint;
	if (zc.length) {
		zr->misses = 0;
		zr->mapped = zc.length;
		zr->view = zr->map;
		zr->view_len = zc.length;
		zr->view_mapped = true;
		return zc.length;
	}
	if (!zr->skip)
		return -EAGAIN; /* nothing queued at all */
	/* Bytes are queued but none of them can be mapped. */
	if (++zr->misses >= ZCRECV_MISSES) {
		zr->map_ok = false;
		note(zr, st, ZCIO_WHY_KIND, 0);
	}
	return 0;
}

static int64_t next(struct zcio_zcrecv *zr, const void **data, size_t max, struct zcio_stats *st)
{
	int64_t r;

	if (zr->view_len)
		return hand_out(zr, data, max, st);
	if (zr->mapped) {
		/* The caller is done with the mapped view: let the pages go
		 * now rather than in the next getsockopt (tcp_mmap.c notes that
		 * this is cheaper). */
		(void)zcio__madvise(zr->map, zr->mapped, MADV_DONTNEED);
		zr->mapped = 0;
	}
	if (zr->pending_err) {
		int e = zr->pending_err;

		zr->pending_err = 0;
		return -e;
	}
	for (;;) {
		if (zr->skip)
			break; /* these bytes must be copied before mapping resumes */
		if (!zr->map_ok)
			break;
		r = map_next(zr, st);
		if (r > 0)
			return hand_out(zr, data, max, st);
		if (r == 0)
			continue; /* zr->skip is set now */
		if (r == -EAGAIN) {
			if (zr->nonblock) {
				st->wait = ZCIO_WAIT_IN;
				return -EAGAIN;
			}
			/* getsockopt() never waits: a blocking socket waits
			 * here, then maps what arrived. */
			r = zcio__wait(zr->fd, POLLIN, 0);
			st->waits++;
			if (r < 0)
				return r;
			continue;
		}
		if (r == -ENOSYS || r == -EIO)
			break;
		return r;
	}
	r = copy_in(zr, zr->skip && zr->skip < zr->win ? zr->skip : zr->win, st);
	if (r > 0)
		return hand_out(zr, data, max, st);
	return r;
}

ZCIO_EXPORT int64_t zcio_zcrecv_next(struct zcio_zcrecv *zr, const void **data, size_t max,
				     struct zcio_stats *stats)
{
	struct zcio_stats local = { 0 };
	struct zcio_stats *st = stats ? stats : &local;

	if (!zr || !data)
		return -EINVAL;
	zcio__stats_begin(st);
	return next(zr, data, max, st);
}

ZCIO_EXPORT void zcio_zcrecv_free(struct zcio_zcrecv *zr)
{
	if (!zr)
		return;
	if (zr->map)
		zcio__munmap(zr->map, zr->win);
	free(zr->buf);
	free(zr);
}
