/*
 * transfer.c - run a planned transfer: route it, guard SIGPIPE, and fall
 * back path by path.  Shared by zcio_copy() and zcio_send_file().
 */
#include "transfer.h"

#include <errno.h>

#include "pipe.h"
#include "route.h"
#include "sigpipe.h"
#include "stats.h"
#include "sys.h"

/* Grow a caller's pipe (ZCIO_F_GROW_PIPE): only ever up, failure ignored. */
static void grow_pipe(int fd, uint32_t want)
{
	int cur = zcio__pipe_get_size(fd);

	if (cur > 0 && (uint32_t)cur < want)
		(void)zcio__pipe_set_size(fd, want);
}

int zcio__transfer_setup(struct zcio__move *m, int in, int out,
			 const struct zcio_opts *o, struct zcio_stats *st)
{
	int r;

	*m = (struct zcio__move){
		.st = st,
		.flags = o->flags,
		.timeout_ms = o->timeout_ms,
		.chunk = o->chunk,
		.pipe_size = o->pipe_size,
	};
	r = zcio__endpoint_init(&m->in, in);
	if (r < 0)
		return r;
	r = zcio__endpoint_init(&m->out, out);
	if (r < 0)
		return r;
	if (m->in.kind == ZCIO__DIR || m->out.kind == ZCIO__DIR)
		return -EISDIR;
	return 0;
}

int zcio__transfer_run(struct zcio__move *m, uint64_t size, uint32_t threshold)
{
	struct zcio__route route;
	struct zcio__sigpipe guard = { 0 };
	bool guarded;
	int r = ZCIO__MOVE_UNSUPPORTED;
	int i;

	zcio__route_plan(m, size, threshold, &route);
	if (route.skipped_why != ZCIO_WHY_NONE)
		zcio__stats_fallback(m->st, route.skipped_from, ZCIO_PATH_COPY,
				     route.skipped_why, 0, m->done);
	if ((m->flags & ZCIO_F_GROW_PIPE) && route.paths[0] != ZCIO_PATH_COPY) {
		uint32_t want = zcio__pipe_size_for(m->pipe_size);

		if (m->out.kind == ZCIO__PIPE)
			grow_pipe(m->out.fd, want);
		if (m->in.kind == ZCIO__PIPE)
			grow_pipe(m->in.fd, want);
	}

	/* Copying into a socket uses MSG_NOSIGNAL; everything else that
	 * writes to a pipe, socket or device can raise SIGPIPE. */
	guarded = zcio__kind_can_sigpipe(m->out.kind) &&
		  !(route.n == 1 && (m->out.kind == ZCIO__STREAM || m->out.kind == ZCIO__DGRAM));
	if (guarded)
		zcio__sigpipe_block(&guard);

	for (i = 0; i < route.n; i++) {
		r = zcio__move_run(m, route.paths[i]);
		if (r != ZCIO__MOVE_UNSUPPORTED)
			break;
		/* Nothing taken from the source is undelivered: the next
		 * path starts at exactly m->done. */
		if (i + 1 < route.n)
			zcio__stats_fallback(m->st, route.paths[i], route.paths[i + 1],
					     m->why, m->err, m->done);
	}
	if (r == ZCIO__MOVE_UNSUPPORTED)
		r = -ENOTSUP; /* unreachable: copy supports every pair */

	if (guarded)
		zcio__sigpipe_restore(&guard, r == -EPIPE);
	return r;
}

