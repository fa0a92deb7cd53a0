/*
 * uring_probe.c - whether io_uring can be used here, and with what.
 */
#ifdef ZCIO_HAVE_LIBURING
#include <errno.h>
#include <stdio.h>

#include "uring_probe.h"

int uring_ring_init(struct io_uring *ring, unsigned sq, unsigned cq)
{
	struct io_uring_params p = { .flags = IORING_SETUP_CQSIZE, .cq_entries = cq };

	return io_uring_queue_init_params(sq, ring, &p);
}

int uring_probe(const struct uring_need_op *ops, size_t nops, unsigned features,
		const char *features_why, const char **why, bool *unavailable)
{
	static __thread char text[96];
	struct io_uring ring;
	struct io_uring_probe *p;
	int r = uring_ring_init(&ring, 8, 16);

	*unavailable = true;
	switch (r) {
	case 0:
		break;
	case -ENOSYS:
		/* A kernel built without CONFIG_IO_URING (or older than
		 * 5.1): io_uring_setup does not exist. */
		*why = "io_uring not in this kernel";
		return r;
	case -EPERM:
		/* kernel.io_uring_disabled = 2 (or = 1 and we are not in
		 * kernel.io_uring_group), or a seccomp filter (container
		 * runtimes' default profiles answer EPERM). */
		*why = "io_uring not permitted";
		return r;
	default:
		/* Anything else (ENOMEM: RLIMIT_MEMLOCK before 5.12; EMFILE)
		 * is a real failure the caller reports, not an absent
		 * feature. */
		*why = "io_uring_setup failed";
		*unavailable = false;
		return r;
	}
	r = 0;
	if ((ring.features & features) != features) {
		*why = features_why;
		r = -EOPNOTSUPP;
	}
	p = r == 0 ? io_uring_get_probe_ring(&ring) : NULL;
	if (r == 0 && !p) {
		/* IORING_REGISTER_PROBE came in 5.6, splice in 5.7. */
		*why = "this kernel's io_uring cannot say what it supports (before 5.6)";
		r = -EOPNOTSUPP;
	}
	for (size_t i = 0; p && i < nops; i++) {
		if (!io_uring_opcode_supported(p, ops[i].op)) {
			/* An older kernel has io_uring but not all that the
			 * path needs (splice came in 5.7). */
			snprintf(text, sizeof(text), "this kernel's io_uring has no %s", ops[i].name);
			*why = text;
			r = -EOPNOTSUPP;
			break;
		}
	}
	if (p)
		io_uring_free_probe(p);
	io_uring_queue_exit(&ring);
	return r;
}
#endif
