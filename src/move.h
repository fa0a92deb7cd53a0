/*
 * move.h - one blocking transfer, and the paths that can carry it.
 *
 * A struct zcio__move describes a transfer in progress: the two endpoints,
 * how many body bytes are wanted and delivered, where the source is read,
 * and an optional header that must reach the destination first.  Each path
 * function (a "mover") carries the transfer as far as it can and returns:
 *
 *   ZCIO__MOVE_DONE         all wanted bytes delivered, or the source ended
 *                           (m->eof);
 *   ZCIO__MOVE_UNSUPPORTED  this path cannot go on: m->why and m->err say
 *                           why.  Everything it took from the source has been
 *                           delivered, so the next path continues at exactly
 *                           m->done;
 *   -errno                  a real error.  m->done bytes were delivered and
 *                           m->stranded bytes were taken from the source and
 *                           lost (a seekable source is rewound by the caller).
 *
 * Movers wait with poll() on the fd that blocked; they never spin.
 */
#ifndef ZCIO_MOVE_H
#define ZCIO_MOVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "endpoint.h"
#include "zcio.h"

enum { ZCIO__MOVE_DONE = 0, ZCIO__MOVE_UNSUPPORTED = 1 };

struct zcio__move {
	struct zcio__endpoint in, out;
	struct zcio_stats *st;     /* never NULL */
	uint32_t flags;            /* ZCIO_F_* */
	int timeout_ms;            /* per wait; <= 0 forever */
	uint32_t chunk;            /* caller's cap per syscall; 0: per path */
	uint32_t pipe_size;        /* pool pipe capacity wanted; 0: default */

	uint64_t want;             /* body bytes wanted, or ZCIO_TO_EOF */
	uint64_t done;             /* body bytes delivered */
	bool eof;                  /* the source ended before `want` */
	bool positional;           /* read the source at in_off */
	uint64_t in_off;           /* next source offset when positional */
	uint64_t in_end;           /* positional file sources: the file's size
	                              when the transfer began (0: unknown) */

	const unsigned char *hdr;  /* delivered before the body (may be NULL) */
	size_t hdr_len;
	size_t hdr_done;           /* header bytes delivered */

	uint64_t stranded;         /* taken from the source, lost with an error */
	int why;                   /* enum zcio_reason, after UNSUPPORTED */
	int err;                   /* errno behind `why`, 0 if none */
};

/* Body bytes still wanted (UINT64_MAX until EOF). */
static inline uint64_t zcio__move_left(const struct zcio__move *m)
{
	return m->want == ZCIO_TO_EOF ? UINT64_MAX : m->want - m->done;
}

/* Run one path (enum zcio_path) on the transfer. */
int zcio__move_run(struct zcio__move *m, int path);

/* Deliver what is left of the header with plain writes (MSG_MORE on
 * sockets when a body follows).  Returns 0 or -errno. */
int zcio__move_header(struct zcio__move *m);

#endif
