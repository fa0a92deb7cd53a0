/*
 * uring_probe.h - can this process use io_uring for what a --uring path
 * needs?  Shared by zcio relay --uring and zcio serve --uring.
 */
#ifndef ZCIO_URING_PROBE_H
#define ZCIO_URING_PROBE_H

#ifdef ZCIO_HAVE_LIBURING
#include <stdbool.h>
#include <stddef.h>
#include <liburing.h>

struct uring_need_op {
	int op;              /* IORING_OP_... */
	const char *name;    /* for the message */
};

/* A ring with sq submission and cq completion entries (CQSIZE). */
int uring_ring_init(struct io_uring *ring, unsigned sq, unsigned cq);

/*
 * Make a small ring and check it has the features (IORING_FEAT_...) and
 * opcodes asked for.  Returns 0, or -errno with *why saying what is
 * missing.  *unavailable is true when the answer means "no io_uring
 * here" (ENOSYS, EPERM, an old kernel: EOPNOTSUPP), which a caller treats
 * as a reason to use epoll; false for a real failure (ENOMEM, EMFILE).
 */
int uring_probe(const struct uring_need_op *ops, size_t nops, unsigned features,
		const char *features_why, const char **why, bool *unavailable);
#endif

#endif
