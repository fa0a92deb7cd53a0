/*
 * tee_uring.h - `zcio tee --uring`: the fan-out with its tee()s and
 * splice()s submitted through io_uring, a round for every output per
 * io_uring_enter (tee_uring.c).
 */
#ifndef ZCIO_TEE_URING_H
#define ZCIO_TEE_URING_H

#include <stdbool.h>
#include <stdint.h>

/* One output, as tee.c opened it. */
struct tee_uring_out {
	const char *name;       /* for messages */
	int fd;                 /* open; closed by the caller */
	bool is_socket;         /* a peer that leaves is reported; a pipe's reader is not */
	bool owned;             /* opened by zcio tee: its flags may be changed */
};

/*
 * Copy `in` (standard input) to every output until its end, or until no
 * output is left.  Outputs that fail are reported on stderr and dropped
 * by the rule of tee.c (a pipe whose reader left: quietly; anything else:
 * a message and *failed set).  pipe_size: each pipe's capacity, 0 for the
 * default.  want_stats: print --stats lines at the end.
 *
 * Returns 0 when it ran (a failed source is reported, *failed set), or 1
 * when io_uring cannot be used here (a kernel without it or without its
 * tee and splice opcodes, or a sandbox forbidding it): one warning is
 * printed and nothing was read, so the caller goes on with the poll()
 * fan-out.  Not thread-safe; called once.
 */
int tee_uring(int in, struct tee_uring_out *outs, unsigned n, uint32_t pipe_size,
	      bool want_stats, bool *failed);

#endif
