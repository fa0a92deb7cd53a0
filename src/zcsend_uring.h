/*
 * zcsend_uring.h - io_uring SEND_ZC sends for zcio_zcsend (ZCIO_ZCSEND_URING).
 *
 * A SEND_ZC request yields two completions with the same user_data: the
 * result (bytes sent or -errno), flagged IORING_CQE_F_MORE when a second
 * one follows, and the notification (IORING_CQE_F_NOTIF), posted once the
 * kernel has let go of the pages.  zcio numbers its requests itself (the
 * user_data), keeps one record per accepted send in the zcsend's FIFO
 * (struct zcio__zc, zcsend.h) with that number as id, and marks the record
 * done when the notification arrives; zcio_zcsend_reap() hands cookies out
 * from the FIFO's head as for MSG_ZEROCOPY.
 *
 * Each send is submitted alone, with MSG_DONTWAIT, and its result is read
 * before the call returns: a short send comes back to the caller as a short
 * count exactly like send(), the caller sends the rest with the next call,
 * and no second request can overtake it on the socket.
 */
#ifndef ZCIO_ZCSEND_URING_H
#define ZCIO_ZCSEND_URING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "zcsend.h"

struct zcio__uzc;

/*
 * Set up an io_uring for SEND_ZC on z's socket.  Returns 0 and sets *up, or
 * a -errno that means "use MSG_ZEROCOPY instead" (*up stays NULL):
 * -ENOSYS, -EPERM, -ENOMEM from io_uring_setup, -EOPNOTSUPP when the kernel
 * lacks SEND_ZC or zcio was built without liburing.  Other errors (-EMFILE,
 * -ENFILE...) are returned too; the caller decides.
 */
int zcio__uzc_new(struct zcio__zc *z, struct zcio__uzc **up);

/* Like zcio__zc_send() with record_copies, through SEND_ZC when z says
 * zero-copy.  Returns bytes accepted (maybe short), -EAGAIN, or -errno. */
ssize_t zcio__uzc_send(struct zcio__uzc *u, struct zcio__zc *z, const void *buf, size_t len,
		       uint64_t cookie, struct zcio_stats *st);

/* Read the completions that have arrived (never waits).  Returns how many
 * sends it completed, or -errno. */
int zcio__uzc_reap(struct zcio__uzc *u, struct zcio__zc *z);

/*
 * Make [base, base + len) the ring's one registered buffer, replacing the
 * one before (len 0: only unregister).  Sends wholly inside it then go as
 * fixed-buffer SEND_ZC.  Returns 0; -EBUSY while a zero-copy send is in
 * flight (nothing changed); or -errno of io_uring_register (the old region
 * is gone, none is registered): the caller decides which mean "send
 * unregistered".
 */
int zcio__uzc_register(struct zcio__uzc *u, struct zcio__zc *z, void *base, size_t len);

/* Bytes registered, 0 when none. */
size_t zcio__uzc_registered(const struct zcio__uzc *u);

/* The ring's fd: readable (POLLIN) when completions are waiting. */
int zcio__uzc_fd(const struct zcio__uzc *u);

/* Close the ring.  NULL ok. */
void zcio__uzc_free(struct zcio__uzc *u);

/* Tests only: make the next zcio__uzc_new() fail as if io_uring_setup()
 * returned -err, or (err == EOPNOTSUPP) as if the probe lacked SEND_ZC.
 * 0 clears it. */
void zcio__uzc_inject(int err);

/* Tests only: make registrations fail as if io_uring_register() returned
 * -err, until called with 0. */
void zcio__uzc_inject_register(int err);

/* ---- lent by zcsend.c --------------------------------------------------- */

/* Why a send of len bytes copies (a zcio_reason), 0 when it may not. */
int zcio__zc_copy_reason(struct zcio__zc *z, size_t len);

/* Room in the FIFO for one more record: 0 or -ENOMEM. */
int zcio__zc_reserve(struct zcio__zc *z);

/* Append a record (room reserved first). */
void zcio__zc_push(struct zcio__zc *z, struct zcio__zc_rec rec);

/*
 * Send with plain send() because of `why` (recorded once in stats as a
 * fallback from path `from`), recording (a, b) as done when record_copies.
 * Returns bytes sent, -EAGAIN or -errno.
 */
ssize_t zcio__zc_copy(struct zcio__zc *z, const void *buf, size_t len, uint64_t a, uint64_t b,
		      bool record_copies, int why, int from, struct zcio_stats *st);

#endif
