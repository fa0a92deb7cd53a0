/*
 * stats.h - recording into struct zcio_stats.
 */
#ifndef ZCIO_STATS_H
#define ZCIO_STATS_H

#include <stdint.h>

#include "zcio.h"

/* Count n bytes delivered by path. */
static inline void zcio__stats_delivered(struct zcio_stats *st, int path, uint64_t n)
{
	st->bytes += n;
	st->last_bytes += n;
	st->path_bytes[path] += n;
}

/* Record that the path `from` was left for `to`, why, and where. */
void zcio__stats_fallback(struct zcio_stats *st, int from, int to, int reason,
			  int err, uint64_t at);

/* Start a call: reset the per-call fields. */
static inline void zcio__stats_begin(struct zcio_stats *st)
{
	st->last_bytes = 0;
	st->stranded = 0;
	st->pending = 0;
	st->wait = ZCIO_WAIT_NONE;
}

#endif
