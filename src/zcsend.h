/*
 * zcsend.h - MSG_ZEROCOPY sends and their completions, for zcio_zcsend and
 * for the ring's socket destinations.
 *
 * The kernel numbers the MSG_ZEROCOPY sends of a socket 0, 1, 2, ... (a
 * 32-bit counter that wraps): every send() with MSG_ZEROCOPY that accepts
 * at least one byte takes the next number; one that fails takes none (the
 * kernel gives it back).  Completions arrive on the error queue as
 * inclusive ranges [ee_info, ee_data] of those numbers.  So zcio counts its
 * own successful sends and keeps a FIFO of records, one per send it has to
 * wait for; a range marks records done, and records leave the FIFO from
 * its head, in send order, once done.
 */
#ifndef ZCIO_ZCSEND_H
#define ZCIO_ZCSEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "zcio.h"

struct zcio__zc_rec {
	uint64_t a, b;     /* the caller's: a cookie, or a [start, end) range */
	uint32_t id;       /* the kernel's number, when zc */
	bool zc;           /* sent with MSG_ZEROCOPY: waits for a completion */
	bool done;
};

struct zcio__zc {
	int fd;
	bool on;           /* new sends above the threshold use MSG_ZEROCOPY */
	bool always;       /* ZCIO_ZCSEND_ALWAYS */
	uint32_t backoff;  /* after ENOBUFS: sends left to copy before trying
	                      zero-copy again (a completion clears it) */
	uint32_t backoff_next; /* the next backoff: doubles while ENOBUFS lasts */
	int32_t refused_errno; /* what refused the last zero-copy send: ENOBUFS
	                          (MSG_ZEROCOPY), ENOMEM (SEND_ZC) */
	int32_t off, off_errno;  /* enum zcio_zcsend_off */
	uint32_t next_id;  /* the kernel's number for our next MSG_ZEROCOPY send */
	uint64_t threshold;
	struct zcio__zc_rec *q;  /* circular FIFO */
	size_t qcap, qhead, qlen;
	uint32_t reported; /* bit per zcio_reason already in the stats */
	struct zcio_zcsend_info info;
};

/*
 * Set up z for socket fd: SO_ZEROCOPY is set unless copy_only.  threshold:
 * sends shorter than this copy (UINT64_MAX: always).  Returns 0, or
 * -ENOTSOCK/-EBADF for an fd that is not a socket.
 */
int zcio__zc_init(struct zcio__zc *z, int fd, uint64_t threshold, bool copy_only, bool always);

/* Free the FIFO. */
void zcio__zc_release(struct zcio__zc *z);

/*
 * Send up to len bytes without blocking, with MSG_ZEROCOPY when z says so.
 * A MSG_ZEROCOPY send is recorded with (a, b); a plain one too when
 * record_copies.  Returns bytes sent, -EAGAIN (stats->wait set), -ENOMEM
 * (no room to record: nothing was sent), or -errno.
 */
ssize_t zcio__zc_send(struct zcio__zc *z, const void *buf, size_t len, uint64_t a, uint64_t b,
		      bool record_copies, struct zcio_stats *st);

/* Read every completion waiting on the error queue (never blocks).
 * Returns how many MSG_ZEROCOPY sends it completed, or -errno. */
int zcio__zc_reap(struct zcio__zc *z);

/* The oldest record, or NULL when none is left. */
/* The FIFO slot of the i-th oldest record.  qcap is a power of two
 * (FIFO_MIN, doubled as it grows), so a mask does what % would with a
 * division on every send and reap. */
static inline size_t zcio__zc_slot(const struct zcio__zc *z, size_t i)
{
	return (z->qhead + i) & (z->qcap - 1);
}

static inline struct zcio__zc_rec *zcio__zc_head(struct zcio__zc *z)
{
	return z->qlen ? &z->q[z->qhead] : NULL;
}

/* Drop the oldest record (it must be done). */
void zcio__zc_pop(struct zcio__zc *z);

#endif
