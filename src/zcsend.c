/*
 * zcsend.c - send(MSG_ZEROCOPY) with completion tracking: zcio_zcsend, and
 * the machinery the ring uses for socket destinations.  See zcsend.h for
 * how completions are matched to sends.
 */
#include "zcsend.h"

#include <errno.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "export.h"
#include "stats.h"
#include "sys.h"
#include "thresholds.h"
#include "zcio.h"
#include "zcsend_uring.h"

/* Older C library headers may lack these; the values are the kernel ABI. */
#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY 60
#endif
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY 0x4000000
#endif
#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY 5
#endif
#ifndef SO_EE_CODE_ZEROCOPY_COPIED
#define SO_EE_CODE_ZEROCOPY_COPIED 1
#endif

#define FIFO_MIN 64 /* a power of two: see zcio__zc_slot() */
_Static_assert((FIFO_MIN & (FIFO_MIN - 1)) == 0, "FIFO_MIN must be a power of two");

int zcio__zc_init(struct zcio__zc *z, int fd, uint64_t threshold, bool copy_only, bool always)
{
	int one = 1;
	int r;

	memset(z, 0, sizeof(*z));
	z->fd = fd;
	z->threshold = threshold;
	z->always = always;
	r = zcio__socket_type(fd);
	if (r < 0)
		return r; /* ENOTSOCK, EBADF */
	if (copy_only) {
		z->off = ZCIO_ZCSEND_OFF_FORCED;
		return 0;
	}
	/* Without SO_ZEROCOPY the kernel silently ignores MSG_ZEROCOPY (old
	 * programs may pass the bit by accident), so it must be set.  It
	 * changes nothing for sends without the flag.  Refused with
	 * EOPNOTSUPP by families without zero-copy (unix sockets), ENOPROTOOPT
	 * before Linux 4.14: those sockets copy. */
	r = zcio__setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one));
	if (r < 0) {
		z->off = ZCIO_ZCSEND_OFF_UNSUPPORTED;
		z->off_errno = -r;
		return 0;
	}
	z->on = true;
	return 0;
}

void zcio__zc_release(struct zcio__zc *z)
{
	free(z->q);
	z->q = NULL;
	z->qcap = z->qlen = z->qhead = 0;
}

int zcio__zc_reserve(struct zcio__zc *z)
{
	struct zcio__zc_rec *nq;
	size_t ncap, i;

	if (z->qlen < z->qcap)
		return 0;
	ncap = z->qcap ? z->qcap * 2 : FIFO_MIN;
	nq = malloc(ncap * sizeof(*nq));
	if (!nq)
		return -ENOMEM;
	for (i = 0; i < z->qlen; i++)
		nq[i] = z->q[zcio__zc_slot(z, i)];
	free(z->q);
	z->q = nq;
	z->qcap = ncap;
	z->qhead = 0;
	return 0;
}

void zcio__zc_push(struct zcio__zc *z, struct zcio__zc_rec rec)
{
	z->q[zcio__zc_slot(z, z->qlen)] = rec;
	z->qlen++;
}

void zcio__zc_pop(struct zcio__zc *z)
{
	if (!z->qlen)
		return;
	z->qhead = zcio__zc_slot(z, 1);
	z->qlen--;
}

/* Record a reason for copying once per zcsend. */
static void note(struct zcio__zc *z, struct zcio_stats *st, int from, int reason, int err)
{
	if (z->reported & (1u << reason))
		return;
	z->reported |= 1u << reason;
	zcio__stats_fallback(st, from, ZCIO_PATH_COPY, reason, err, st->last_bytes);
}

/* Why this send copies, as a zcio_reason (0: it does not). */
int zcio__zc_copy_reason(struct zcio__zc *z, size_t len)
{
	if (!z->on) {
		if (z->off == ZCIO_ZCSEND_OFF_FORCED)
			return ZCIO_WHY_FORCED;
		return ZCIO_WHY_KIND; /* unsupported, or completions said COPIED */
	}
	if (z->backoff) {
		z->backoff--;
		return ZCIO_WHY_REFUSED;
	}
	if (!z->always && len < z->threshold)
		return ZCIO_WHY_SMALL;
	return 0;
}

ssize_t zcio__zc_send(struct zcio__zc *z, const void *buf, size_t len, uint64_t a, uint64_t b,
		      bool record_copies, struct zcio_stats *st)
{
	int why = zcio__zc_copy_reason(z, len);
	ssize_t r;

	if (zcio__zc_reserve(z) < 0)
		return -ENOMEM;
	if (!why) {
		struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

		r = zcio__sendmsg(z->fd, &msg, MSG_ZEROCOPY | MSG_DONTWAIT);
		st->syscalls++;
		if (r > 0) {
			zcio__zc_push(z, (struct zcio__zc_rec){ .a = a, .b = b,
								.id = z->next_id++, .zc = true });
			z->backoff_next = 0;
			z->info.zc_sends++;
			z->info.zc_bytes += (uint64_t)r;
			z->info.in_flight++;
			zcio__stats_delivered(st, ZCIO_PATH_MSG_ZEROCOPY, (uint64_t)r);
			return r;
		}
		if (r != -ENOBUFS) {
			if (r == -EAGAIN)
				st->wait = ZCIO_WAIT_OUT;
			return r == 0 ? -EIO : r;
		}
		/* ENOBUFS: the kernel could not account for more pinned pages
		 * (net.core.optmem_max per socket, or RLIMIT_MEMLOCK without
		 * CAP_IPC_LOCK).  Completions free that memory, but ENOBUFS
		 * raises no POLLERR, so waiting for one can deadlock: read what
		 * has arrived and send this one by copying, now.  The failed
		 * call took no number.  The next few sends copy too (more
		 * each time ENOBUFS comes back, as when nothing is in flight
		 * and the limit is simply too low), unless a completion
		 * returns memory first. */
		z->info.enobufs++;
		z->refused_errno = ENOBUFS;
		(void)zcio__zc_reap(z);
		z->backoff_next = z->backoff_next ? z->backoff_next * 2 : 4;
		if (z->backoff_next > 1024)
			z->backoff_next = 1024;
		z->backoff = z->backoff_next;
		why = ZCIO_WHY_REFUSED;
	}
	return zcio__zc_copy(z, buf, len, a, b, record_copies, why, ZCIO_PATH_MSG_ZEROCOPY, st);
}

ssize_t zcio__zc_copy(struct zcio__zc *z, const void *buf, size_t len, uint64_t a, uint64_t b,
		      bool record_copies, int why, int from, struct zcio_stats *st)
{
	int err = 0;
	ssize_t r;

	if (why == ZCIO_WHY_KIND)
		err = z->off_errno;
	else if (why == ZCIO_WHY_REFUSED)
		err = z->refused_errno ? z->refused_errno : ENOBUFS;
	note(z, st, from, why, err);
	r = zcio__send(z->fd, buf, len, MSG_DONTWAIT);
	st->syscalls++;
	if (r > 0) {
		if (record_copies)
			zcio__zc_push(z, (struct zcio__zc_rec){ .a = a, .b = b, .done = true });
		z->info.copy_sends++;
		z->info.copy_bytes += (uint64_t)r;
		zcio__stats_delivered(st, ZCIO_PATH_COPY, (uint64_t)r);
		return r;
	}
	if (r == -EAGAIN)
		st->wait = ZCIO_WAIT_OUT;
	return r == 0 ? -EIO : r;
}

/* Mark the records numbered lo .. hi (inclusive, modulo 2^32) done. */
static int complete_range(struct zcio__zc *z, uint32_t lo, uint32_t hi, bool copied)
{
	uint32_t span = hi - lo;
	int n = 0;
	size_t i;

	for (i = 0; i < z->qlen; i++) {
		struct zcio__zc_rec *rec = &z->q[zcio__zc_slot(z, i)];

		if (!rec->zc || rec->done)
			continue;
		if (rec->id - lo <= span) {
			rec->done = true;
			n++;
		} else if ((int32_t)(rec->id - hi) > 0) {
			break; /* numbers grow along the FIFO: the rest are later */
		}
	}
	z->info.completed += (uint64_t)n;
	if (copied)
		z->info.completed_copied += (uint64_t)n;
	z->info.in_flight -= (uint64_t)n <= z->info.in_flight ? (uint64_t)n : z->info.in_flight;
	return n;
}

int zcio__zc_reap(struct zcio__zc *z)
{
	int total = 0;

	/* Nothing of ours in flight, nothing to read: no syscall (copied sends
	 * complete at once, so small sends cost what send() costs).  Other
	 * errors on the queue are the caller's (IP_RECVERR, timestamps). */
	if (!z->info.in_flight)
		return 0;
	for (;;) {
		union {
			char buf[CMSG_SPACE(sizeof(struct sock_extended_err) +
					    sizeof(struct sockaddr_in6))];
			struct cmsghdr align;
		} ctl;
		struct msghdr msg = { .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
		struct cmsghdr *cm;
		ssize_t r = zcio__recvmsg(z->fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);

		if (r == -EAGAIN)
			break;
		if (r < 0)
			return total ? total : (int)r;
		for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			struct sock_extended_err serr;
			bool copied;

			/* IPv4 sockets report on SOL_IP, IPv6 ones (also for
			 * v4-mapped peers) on SOL_IPV6. */
			if (!((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
			      (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR)))
				continue;
			memcpy(&serr, CMSG_DATA(cm), sizeof(serr));
			/* Other origins (ICMP errors with IP_RECVERR, timestamps)
			 * are not ours; reading them took them off the queue,
			 * which is why the socket must not have other readers. */
			if (serr.ee_origin != SO_EE_ORIGIN_ZEROCOPY || serr.ee_errno != 0)
				continue;
			z->info.notifications++;
			copied = serr.ee_code & SO_EE_CODE_ZEROCOPY_COPIED;
			total += complete_range(z, serr.ee_info, serr.ee_data, copied);
			/* The kernel copied after pinning (loopback, a receiver on
			 * this host, a device without scatter-gather): zero-copy
			 * cost more than the copy it did not save.  The kernel
			 * documentation suggests stopping; zcio does, for good. */
			if (copied && z->on && !z->always) {
				z->on = false;
				z->off = ZCIO_ZCSEND_OFF_COPIED;
			}
		}
		if (!z->info.in_flight)
			break; /* all of ours are in: leave the rest queued */
	}
	if (total)
		z->backoff = 0; /* memory came back: try zero-copy again */
	return total;
}

/* ---- the public zcsend ------------------------------------------------ */

struct zcio_zcsend {
	struct zcio__zc z;
	struct zcio__uzc *u;   /* io_uring SEND_ZC in use (zcsend_uring.c) */
	int32_t uring_errno;   /* ZCIO_ZCSEND_URING asked but not in use: why */
	int32_t register_errno; /* the last region registered to no use: why */
	/* Where sends count when the caller passes no stats: nobody reads it,
	 * and zeroing a fresh one on the stack for every send showed as a
	 * few percent of a 64-byte send's time. */
	struct zcio_stats scratch;
};

/* ZCIO_ZCSEND_URING: set up SEND_ZC, or say why MSG_ZEROCOPY stays.
 * Returns 0, or -errno for a failure that is not a reason to fall back. */
static int uring_start(struct zcio_zcsend *zs, bool always, uint32_t copy_threshold)
{
	int r;

	if (!zs->z.on)
		return 0; /* ZCIO_F_COPY, or a socket without zero-copy at all */
	r = zcio__uzc_new(&zs->z, &zs->u);
	switch (r) {
	case 0:
		zs->z.threshold = always ? 0 : zcio__threshold_for(ZCIO_THR_MEM_SOCKET_URING,
								   copy_threshold);
		return 0;
	/* ENOSYS: a kernel before 5.1 or built without io_uring.  EPERM:
	 * kernel.io_uring_disabled (2, or 1 outside io_uring_group), or a
	 * seccomp filter (container runtimes forbid io_uring_setup).
	 * ENOMEM: ring memory counted against RLIMIT_MEMLOCK (before 5.12)
	 * and that limit used up.  EOPNOTSUPP: io_uring without SEND_ZC
	 * (before 6.0), or zcio built without liburing.  MSG_ZEROCOPY does
	 * the same job through the socket. */
	case -ENOSYS:
	case -EPERM:
	case -ENOMEM:
	case -EOPNOTSUPP:
		zs->uring_errno = -r;
		return 0;
	default:
		return r;
	}
}

ZCIO_EXPORT int zcio_zcsend_new(int sock, uint32_t flags, const struct zcio_opts *opts,
				struct zcio_zcsend **zsp)
{
	static const struct zcio_opts defaults;
	const struct zcio_opts *o = opts ? opts : &defaults;
	struct zcio_zcsend *zs;
	bool always = flags & ZCIO_ZCSEND_ALWAYS;
	int r;

	if (!zsp || (flags & ~(ZCIO_ZCSEND_ALWAYS | ZCIO_ZCSEND_URING)))
		return -EINVAL;
	*zsp = NULL;
	zs = calloc(1, sizeof(*zs));
	if (!zs)
		return -ENOMEM;
	r = zcio__zc_init(&zs->z, sock,
			  always ? 0 : zcio__threshold_for(ZCIO_THR_MEM_SOCKET, o->copy_threshold),
			  o->flags & ZCIO_F_COPY, always);
	if (r == 0 && (flags & ZCIO_ZCSEND_URING))
		r = uring_start(zs, always, o->copy_threshold);
	if (r < 0) {
		zcio__zc_release(&zs->z);
		free(zs);
		return r;
	}
	*zsp = zs;
	return 0;
}

ZCIO_EXPORT int64_t zcio_zcsend_send(struct zcio_zcsend *zs, const void *buf, size_t len,
				     uint64_t cookie, struct zcio_stats *stats)
{
	struct zcio_stats *st;

	if (!zs || (!buf && len))
		return -EINVAL;
	st = stats ? stats : &zs->scratch;
	zcio__stats_begin(st);
	if (!len)
		return -EINVAL; /* a zero-byte send would yield no completion */
	if (zs->u)
		return zcio__uzc_send(zs->u, &zs->z, buf, len, cookie, st);
	return zcio__zc_send(&zs->z, buf, len, cookie, 0, true, st);
}

ZCIO_EXPORT int zcio_zcsend_reap(struct zcio_zcsend *zs, uint64_t *cookies, unsigned int n,
				 struct zcio_stats *stats)
{
	struct zcio__zc_rec *rec;
	unsigned int got = 0;
	int r;

	if (!zs || (!cookies && n))
		return -EINVAL;
	r = zs->u ? zcio__uzc_reap(zs->u, &zs->z) : zcio__zc_reap(&zs->z);
	if (stats)
		stats->syscalls++;
	if (r < 0)
		return r;
	while (got < n && (rec = zcio__zc_head(&zs->z)) && rec->done) {
		cookies[got++] = rec->a;
		zcio__zc_pop(&zs->z);
	}
	return (int)got;
}

ZCIO_EXPORT uint64_t zcio_zcsend_pending(const struct zcio_zcsend *zs)
{
	return zs ? zs->z.qlen : 0;
}

ZCIO_EXPORT int zcio_zcsend_info(const struct zcio_zcsend *zs, struct zcio_zcsend_info *info)
{
	if (!zs || !info)
		return -EINVAL;
	*info = zs->z.info;
	info->off = zs->z.on ? ZCIO_ZCSEND_ON : zs->z.off;
	info->off_errno = zs->z.off_errno;
	info->uring = zs->u != NULL;
	info->uring_errno = zs->uring_errno;
	/* SEND_ZC notifications make the ring readable; MSG_ZEROCOPY ones
	 * raise POLLERR on the socket, reported whatever is asked for. */
	info->wait_fd = zs->u ? zcio__uzc_fd(zs->u) : zs->z.fd;
	info->wait_events = zs->u ? POLLIN : 0;
	info->registered = zs->u && zcio__uzc_registered(zs->u);
	info->register_errno = zs->register_errno;
	return 0;
}

ZCIO_EXPORT int zcio_zcsend_register(struct zcio_zcsend *zs, void *base, size_t len)
{
	int r;

	if (!zs || (!base && len) || len > ZCIO_ZCSEND_REGISTER_MAX)
		return -EINVAL;
	if (!zs->u) {
		/* MSG_ZEROCOPY has no registered buffers (the socket pins the
		 * pages of each send), and copies pin nothing. */
		zs->register_errno = len ? EOPNOTSUPP : 0;
		return 0;
	}
	r = zcio__uzc_register(zs->u, &zs->z, base, len);
	switch (r) {
	case 0:
		zs->register_errno = 0;
		return 0;
	/* ENOMEM: the region's pages over RLIMIT_MEMLOCK (a process without
	 * CAP_IPC_LOCK; pages of unregistered SEND_ZC in flight count too),
	 * or no memory to pin them.  EFAULT: pages that cannot be pinned for
	 * long (FOLL_LONGTERM): a shared mapping of a regular file on a disk
	 * filesystem, DAX, memory that is not mapped.  EOPNOTSUPP: file-backed
	 * memory as older kernels said it.  EPERM, ENOSYS: a seccomp filter
	 * or LSM that lets io_uring_setup through but not io_uring_register.
	 * Unregistered SEND_ZC works in each case: the sends pin per request. */
	case -ENOMEM:
	case -EFAULT:
	case -EOPNOTSUPP:
	case -EPERM:
	case -ENOSYS:
		zs->register_errno = -r;
		return 0;
	default:
		return r; /* EBUSY: sends in flight */
	}
}

ZCIO_EXPORT void zcio_zcsend_free(struct zcio_zcsend *zs)
{
	if (!zs)
		return;
	/* Unregister now when nothing is in flight, so that the pages and
	 * their RLIMIT_MEMLOCK charge come back before this returns; else
	 * (-EBUSY) the ring's teardown does it once the kernel lets go. */
	if (zs->u)
		(void)zcio__uzc_register(zs->u, &zs->z, NULL, 0);
	zcio__uzc_free(zs->u);
	zcio__zc_release(&zs->z);
	free(zs);
}
