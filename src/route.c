/*
 * route.c - the route table: (source kind, destination kind, size) -> paths.
 *
 *   source \ dest   file/blk          pipe     stream socket   char dev
 *   file/blk        cfr, sendfile     splice   pipe, sendfile  sendfile
 *   pipe            splice            splice   splice          splice
 *   stream socket   splice via pipe   splice   splice via pipe splice via pipe
 *
 * "pipe" is splice through a pooled pipe; a header in front of the file
 * (zcio_send_file) is written into that pipe first.
 *
 * Every route ends with read()/write(), which works for any pair.  Terminals,
 * datagram sockets (splice would merge messages), character-device sources
 * (their bytes are generated, there are no pages to share), anonymous
 * inodes, O_APPEND destinations (the splice family refuses them with
 * EINVAL/EBADF), and transfers below the threshold are copied outright.
 *
 * The threshold spares small transfers the setup of a zero-copy path (a
 * pipe, two syscalls per round).  It does not apply to file -> file:
 * copy_file_range() is one syscall and one in-kernel copy, never more than
 * read() + write(), whatever the size (coreutils cat uses it the same way).
 * Except with a header in front (zcio_send_file: header and small body go
 * out in one writev) or a source of size 0 (procfs: read() tells at once).
 */
#include "route.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "thresholds.h"

static int natural_route(const struct zcio__move *m, int *paths)
{
	enum zcio__kind in = m->in.kind, out = m->out.kind;
	bool out_file = out == ZCIO__REG || out == ZCIO__BLK;
	int n = 0;

	if (in == ZCIO__REG || in == ZCIO__BLK) {
		if (out_file) {
			paths[n++] = ZCIO_PATH_COPY_FILE_RANGE;
			paths[n++] = ZCIO_PATH_SENDFILE;
		} else if (out == ZCIO__PIPE) {
			paths[n++] = ZCIO_PATH_SPLICE;
		} else if (out == ZCIO__STREAM) {
			/*
			 * Through a pooled pipe, then sendfile().  sendfile()
			 * moves file pages through a hidden 64 KiB pipe, so a
			 * socket gets many small batches: measured over
			 * loopback, a 1 MiB pipe gave 1.3-1.8x the throughput
			 * and half the receiver's CPU per byte.  A header goes
			 * into the pipe ahead of the file: one stream, no
			 * corking games.  And only splice can say that more
			 * follows the call (SPLICE_F_MORE, for ZCIO_F_MORE).
			 * ZCIO_F_VIA_SENDFILE asks for sendfile() first.
			 */
			if ((m->flags & ZCIO_F_VIA_SENDFILE) && !(m->flags & ZCIO_F_MORE)) {
				paths[n++] = ZCIO_PATH_SENDFILE;
			} else {
				paths[n++] = ZCIO_PATH_SPLICE_PIPE;
				paths[n++] = ZCIO_PATH_SENDFILE;
			}
		} else if (out == ZCIO__CHR) {
			paths[n++] = ZCIO_PATH_SENDFILE;
		}
	} else if (in == ZCIO__PIPE) {
		if (out_file || out == ZCIO__PIPE || out == ZCIO__STREAM || out == ZCIO__CHR)
			paths[n++] = ZCIO_PATH_SPLICE;
	} else if (in == ZCIO__STREAM) {
		if (out == ZCIO__PIPE)
			paths[n++] = ZCIO_PATH_SPLICE;
		else if (out_file || out == ZCIO__STREAM || out == ZCIO__CHR)
			paths[n++] = ZCIO_PATH_SPLICE_PIPE;
	}
	paths[n++] = ZCIO_PATH_COPY;
	return n;
}

void zcio__route_plan(struct zcio__move *m, uint64_t size, uint32_t threshold,
		      struct zcio__route *r)
{
	int why = ZCIO_WHY_NONE;

	r->n = natural_route(m, r->paths);
	r->skipped_from = r->paths[0];
	r->skipped_why = ZCIO_WHY_NONE;
	if (r->n == 1)
		return; /* copy is the only route: nothing was skipped */

	if (m->flags & ZCIO_F_COPY)
		why = ZCIO_WHY_FORCED;
	else if ((m->flags & ZCIO_F_STABLE) &&
		 (m->in.kind == ZCIO__REG || m->in.kind == ZCIO__BLK))
		why = ZCIO_WHY_STABLE;
	else if (size < threshold && !(r->paths[0] == ZCIO_PATH_COPY_FILE_RANGE &&
					 size > 0 && !m->hdr_len))
		why = ZCIO_WHY_SMALL;
	else if (m->out.kind == ZCIO__REG && zcio__endpoint_append(&m->out))
		why = ZCIO_WHY_APPEND;
	if (why != ZCIO_WHY_NONE) {
		r->paths[0] = ZCIO_PATH_COPY;
		r->n = 1;
		r->skipped_why = why;
	}
}

uint32_t zcio__threshold(uint32_t from_opts)
{
	static _Atomic uint32_t from_env; /* 0: not read; UINT32_MAX: none set */

	if (from_opts)
		return from_opts;
	if (!atomic_load_explicit(&from_env, memory_order_relaxed)) {
		/* ZCIO_COPY_THRESHOLD overrides the built-in value for
		 * programs that do not pass options (benchmarks, tests). */
		const char *s = getenv("ZCIO_COPY_THRESHOLD");
		unsigned long v = s ? strtoul(s, NULL, 0) : 0;

		atomic_store_explicit(&from_env,
				      v ? (v > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)v) : UINT32_MAX,
				      memory_order_relaxed);
	}
	uint32_t v = atomic_load_explicit(&from_env, memory_order_relaxed);

	if (v != UINT32_MAX)
		return v;
	/* Then what `zcio calibrate` measured here, else the built-in value. */
	uint64_t t = zcio__threshold_file(ZCIO_THR_COPY);

	return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}
