/*
 * zcsend_uring.c - zcio_zcsend through io_uring SEND_ZC (ZCIO_ZCSEND_URING).
 * See zcsend_uring.h for how the two completions of a request are matched
 * to the zcsend's records.
 */
#include "zcsend_uring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "stats.h"
#include "zcio.h"

static int injected; /* zcio__uzc_inject(): tests only */
static int reg_injected; /* zcio__uzc_inject_register(): tests only */

void zcio__uzc_inject(int err)
{
	injected = err;
}

void zcio__uzc_inject_register(int err)
{
	reg_injected = err;
}

#if defined(ZCIO_HAVE_LIBURING) && ZCIO_HAVE_LIBURING

#include <liburing.h>

/* liburing 2.3's copy of the kernel header predates these (Linux 6.2);
 * the values are the kernel ABI. */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

/* One request is submitted at a time; the completion queue (twice this)
 * holds notifications of earlier sends.  More of those than fit wait in
 * the kernel's overflow list (IORING_FEAT_NODROP, long before SEND_ZC)
 * and come out as the queue empties. */
#define RING_ENTRIES 64

struct zcio__uzc {
	struct io_uring ring;
	uint32_t next_id;      /* user_data of the next request */
	uint64_t stray;        /* notifications due for requests that failed:
	                          no record waits for them */
	bool report_usage;     /* ask for IORING_SEND_ZC_REPORT_USAGE */
	void *reg_base;        /* the registered buffer, index 0 */
	size_t reg_len;        /* 0: none */
	/* the request zcio__uzc_send() is sending: from its submission until
	 * its record is in the FIFO (or it failed), its notification may
	 * arrive with no record to mark, even after its result */
	uint32_t cur_id;
	bool cur_open;
	bool cur_done;         /* its result has arrived */
	bool cur_more;         /* ... flagged IORING_CQE_F_MORE */
	bool cur_notified;     /* its notification came first */
	bool cur_copied;
	int32_t cur_res;
};

int zcio__uzc_new(struct zcio__zc *z, struct zcio__uzc **up)
{
	struct io_uring_probe *probe;
	struct zcio__uzc *u;
	bool send_zc;
	int r;

	(void)z;
	*up = NULL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	if (injected && injected != EOPNOTSUPP)
		r = -injected;
	else
		r = io_uring_queue_init(RING_ENTRIES, &u->ring, 0); /* -errno */
	if (r < 0) {
		free(u);
		return r;
	}
	/* IORING_REGISTER_PROBE (5.6) lists the opcodes this kernel knows;
	 * without it there is no SEND_ZC (6.0) either. */
	probe = io_uring_get_probe_ring(&u->ring);
	send_zc = probe && io_uring_opcode_supported(probe, IORING_OP_SEND_ZC) &&
		  injected != EOPNOTSUPP;
	if (probe)
		io_uring_free_probe(probe);
	if (!send_zc) {
		io_uring_queue_exit(&u->ring);
		free(u);
		return -EOPNOTSUPP;
	}
	u->report_usage = true;
	*up = u;
	return 0;
}

void zcio__uzc_free(struct zcio__uzc *u)
{
	if (!u)
		return;
	/* Requests still in flight keep their pages pinned in the kernel
	 * until the network lets go; the ring's teardown waits for them in
	 * the background, close() does not. */
	io_uring_queue_exit(&u->ring);
	free(u);
}

int zcio__uzc_fd(const struct zcio__uzc *u)
{
	return u->ring.ring_fd;
}

/* The notification of request id arrived: mark its record done.  False
 * when no record waits for it. */
static bool complete(struct zcio__zc *z, uint32_t id, bool copied)
{
	size_t i;

	for (i = 0; i < z->qlen; i++) {
		struct zcio__zc_rec *rec = &z->q[zcio__zc_slot(z, i)];

		if (!rec->zc || rec->done || rec->id != id)
			continue;
		rec->done = true;
		z->info.completed++;
		if (z->info.in_flight)
			z->info.in_flight--;
		if (copied) {
			z->info.completed_copied++;
			/* The kernel copied after all (loopback, a receiver on
			 * this host, a device without scatter-gather): as with
			 * MSG_ZEROCOPY, zero-copy stops for this zcsend. */
			if (z->on && !z->always) {
				z->on = false;
				z->off = ZCIO_ZCSEND_OFF_COPIED;
			}
		}
		return true;
	}
	return false;
}

/* Take one completion into account.  Returns the number of sends it
 * completed (0 or 1). */
static int handle(struct zcio__uzc *u, struct zcio__zc *z, const struct io_uring_cqe *cqe)
{
	uint32_t id = (uint32_t)cqe->user_data;

	if (cqe->flags & IORING_CQE_F_NOTIF) {
		/* res is 0, or has IORING_NOTIF_USAGE_ZC_COPIED when the
		 * request asked for the report and any of its data was
		 * copied. */
		bool copied = u->report_usage && ((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED);

		z->info.notifications++;
		if (complete(z, id, copied))
			return 1;
		if (u->cur_open && id == u->cur_id) {
			u->cur_notified = true;
			u->cur_copied = copied;
		} else if (u->stray) {
			u->stray--;
		}
		return 0;
	}
	if (id == u->cur_id && !u->cur_done) {
		u->cur_done = true;
		u->cur_res = cqe->res;
		u->cur_more = cqe->flags & IORING_CQE_F_MORE;
	}
	return 0;
}

static int drain(struct zcio__uzc *u, struct zcio__zc *z)
{
	struct io_uring_cqe *cqe;
	int n = 0;

	while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
		n += handle(u, z, cqe);
		io_uring_cqe_seen(&u->ring, cqe);
	}
	return n;
}

/* Submit SEND_ZC of buf (from the registered buffer when fixed) and wait
 * for its result (not its notification).  Returns the result's res, or
 * -errno of io_uring_enter. */
static int submit_one(struct zcio__uzc *u, struct zcio__zc *z, const void *buf, size_t len,
		      bool fixed, struct zcio_stats *st)
{
	unsigned zc_flags = u->report_usage ? IORING_SEND_ZC_REPORT_USAGE : 0;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	int r;

	if (!sqe)
		return -EBUSY; /* cannot happen: one request at a time */
	/* MSG_DONTWAIT: the request completes during submission, with
	 * -EAGAIN when the socket is full, instead of waiting in the ring
	 * while later sends could be submitted. */
	if (fixed)
		io_uring_prep_send_zc_fixed(sqe, z->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL,
					    zc_flags, 0);
	else
		io_uring_prep_send_zc(sqe, z->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL, zc_flags);
	u->cur_id = u->next_id++;
	sqe->user_data = u->cur_id;
	u->cur_done = u->cur_more = u->cur_notified = u->cur_copied = false;
	u->cur_open = true;
	do {
		r = io_uring_submit(&u->ring);
		st->syscalls++;
	} while (r == -EINTR);
	if (r < 0)
		return r;
	while (!u->cur_done) {
		struct io_uring_cqe *cqe;

		(void)drain(u, z);
		if (u->cur_done)
			break;
		r = io_uring_wait_cqe(&u->ring, &cqe);
		st->syscalls++;
		if (r < 0 && r != -EINTR)
			return r;
	}
	if (u->cur_res <= 0) {
		u->cur_open = false;
		if (u->cur_more && !u->cur_notified)
			u->stray++; /* a failed request's notification is still due */
	}
	return u->cur_res;
}

ssize_t zcio__uzc_send(struct zcio__uzc *u, struct zcio__zc *z, const void *buf, size_t len,
		       uint64_t cookie, struct zcio_stats *st)
{
	int why = zcio__zc_copy_reason(z, len);
	uintptr_t at = (uintptr_t)buf - (uintptr_t)u->reg_base;
	bool fixed;
	int r;

	if (zcio__zc_reserve(z) < 0)
		return -ENOMEM;
	if (why)
		return zcio__zc_copy(z, buf, len, cookie, 0, true, why, ZCIO_PATH_URING_SEND_ZC, st);
	if (len > INT32_MAX)
		len = INT32_MAX; /* the result is an int: ask for what fits */
	/* Wholly inside the registered buffer (at wraps for a buf below it).
	 * The kernel would refuse a range that leaves it with EFAULT. */
	fixed = u->reg_len && at < u->reg_len && len <= u->reg_len - at;
	r = submit_one(u, z, buf, len, fixed, st);
	if (r == -EINVAL && u->report_usage) {
		/* IORING_SEND_ZC_REPORT_USAGE came with Linux 6.2; 6.0 and 6.1
		 * refuse unknown zc flags with EINVAL.  Without it a copy is not
		 * reported: completed_copied stays 0. */
		u->report_usage = false;
		r = submit_one(u, z, buf, len, fixed, st);
	}
	if (r > 0) {
		zcio__zc_push(z, (struct zcio__zc_rec){ .a = cookie, .id = u->cur_id, .zc = true });
		z->backoff_next = 0;
		z->info.zc_sends++;
		z->info.zc_bytes += (uint64_t)r;
		if (fixed) {
			z->info.fixed_sends++;
			z->info.fixed_bytes += (uint64_t)r;
		}
		z->info.in_flight++;
		zcio__stats_delivered(st, ZCIO_PATH_URING_SEND_ZC, (uint64_t)r);
		/* No notification follows (no IORING_CQE_F_MORE), or it came
		 * before the result: the send is complete now. */
		u->cur_open = false;
		if (!u->cur_more || u->cur_notified)
			(void)complete(z, u->cur_id, u->cur_copied);
		return r;
	}
	switch (r) {
	case 0:
		return -EIO; /* len > 0: a stream socket never accepts nothing */
	case -EAGAIN:
		st->wait = ZCIO_WAIT_OUT;
		return r;
	case -ENOMEM:
		/* SEND_ZC's "no memory for more pages in flight".  A ring made
		 * by a process without CAP_IPC_LOCK charges every unregistered
		 * request its pages plus two (io_notif_account_mem) against
		 * RLIMIT_MEMLOCK of the ring's user, and gives them back with
		 * the notification; over the limit the request fails with
		 * -ENOMEM (and IORING_CQE_F_MORE: its notification still
		 * comes).  The socket's own accounting (optmem, ENOBUFS for
		 * MSG_ZEROCOPY) is not used: the ring supplies the ubuf_info.
		 * Fixed-buffer sends are charged at registration instead. */
	case -ENOBUFS:
		/* As for MSG_ZEROCOPY (zcsend.c): nothing wakes a writer when
		 * that memory comes back, so never wait: read the completions
		 * that are in, copy now and for a while. */
		z->info.enobufs++;
		z->refused_errno = -r;
		(void)zcio__uzc_reap(u, z);
		z->backoff_next = z->backoff_next ? z->backoff_next * 2 : 4;
		if (z->backoff_next > 1024)
			z->backoff_next = 1024;
		z->backoff = z->backoff_next;
		why = ZCIO_WHY_REFUSED;
		break;
	case -EOPNOTSUPP:
		/* SEND_ZC needs a protocol that supports zero-copy
		 * (SOCK_SUPPORT_ZC: TCP, UDP); others refuse every request. */
		z->on = false;
		z->off = ZCIO_ZCSEND_OFF_UNSUPPORTED;
		z->off_errno = EOPNOTSUPP;
		why = ZCIO_WHY_KIND;
		break;
	default:
		return r;
	}
	return zcio__zc_copy(z, buf, len, cookie, 0, true, why, ZCIO_PATH_URING_SEND_ZC, st);
}

int zcio__uzc_reap(struct zcio__uzc *u, struct zcio__zc *z)
{
	int total;

	if (!z->info.in_flight && !u->stray)
		return 0;
	if (!io_uring_cq_ready(&u->ring)) {
		/* Notifications are posted by task work of this thread, run
		 * when it enters the kernel: enter once, without waiting. */
		int r = io_uring_get_events(&u->ring);

		if (r < 0 && r != -EINTR)
			return r;
	}
	total = drain(u, z);
	if (total)
		z->backoff = 0; /* pages came back: try zero-copy again */
	return total;
}

int zcio__uzc_register(struct zcio__uzc *u, struct zcio__zc *z, void *base, size_t len)
{
	struct iovec iov = { .iov_base = base, .iov_len = len };
	int r;

	/* Before Linux 6.13, unregistering waits until every request holding
	 * the ring's resources has finished, and each SEND_ZC notification
	 * holds them: with sends stuck behind a slow peer that would block
	 * here.  So only with nothing in flight (failed requests' late
	 * notifications included). */
	(void)zcio__uzc_reap(u, z);
	if (z->info.in_flight || u->stray)
		return -EBUSY;
	if (u->reg_len) {
		/* Gives the pages and their RLIMIT_MEMLOCK charge back now.  If
		 * that fails the kernel keeps the old pages until the ring
		 * closes, but no send uses them again: the caller may unmap
		 * the region and map other memory at the same address. */
		r = io_uring_unregister_buffers(&u->ring);
		u->reg_base = NULL;
		u->reg_len = 0;
		if (r < 0)
			return r;
	}
	if (!len)
		return 0;
	r = reg_injected ? -reg_injected : io_uring_register_buffers(&u->ring, &iov, 1);
	if (r < 0)
		return r;
	u->reg_base = base;
	u->reg_len = len;
	return 0;
}

size_t zcio__uzc_registered(const struct zcio__uzc *u)
{
	return u->reg_len;
}

#else /* built without liburing */

struct zcio__uzc {
	int unused;
};

int zcio__uzc_new(struct zcio__zc *z, struct zcio__uzc **up)
{
	(void)z;
	*up = NULL;
	/* No liburing at build time: as if the kernel had no SEND_ZC. */
	return injected && injected != EOPNOTSUPP ? -injected : -EOPNOTSUPP;
}

ssize_t zcio__uzc_send(struct zcio__uzc *u, struct zcio__zc *z, const void *buf, size_t len,
		       uint64_t cookie, struct zcio_stats *st)
{
	(void)u;
	(void)z;
	(void)buf;
	(void)len;
	(void)cookie;
	(void)st;
	return -EOPNOTSUPP;
}

int zcio__uzc_reap(struct zcio__uzc *u, struct zcio__zc *z)
{
	(void)u;
	(void)z;
	return 0;
}

int zcio__uzc_fd(const struct zcio__uzc *u)
{
	(void)u;
	return -EBADF;
}

int zcio__uzc_register(struct zcio__uzc *u, struct zcio__zc *z, void *base, size_t len)
{
	(void)u;
	(void)z;
	(void)base;
	(void)len;
	return -EOPNOTSUPP;
}

size_t zcio__uzc_registered(const struct zcio__uzc *u)
{
	(void)u;
	return 0;
}

void zcio__uzc_free(struct zcio__uzc *u)
{
	(void)u;
}

#endif
