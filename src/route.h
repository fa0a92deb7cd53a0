/*
 * route.h - which paths a transfer tries, in order.
 */
#ifndef ZCIO_ROUTE_H
#define ZCIO_ROUTE_H

#include <stdint.h>

#include "move.h"

#define ZCIO__ROUTE_MAX 4

struct zcio__route {
	int paths[ZCIO__ROUTE_MAX]; /* enum zcio_path, the last is always COPY */
	int n;
	/* When the zero-copy route was skipped for a reason worth reporting
	 * (small, forced, O_APPEND...): the path it would have started with,
	 * and why not.  skipped_why is ZCIO_WHY_NONE otherwise. */
	int skipped_from;
	int skipped_why;
};

/*
 * Plan the transfer m describes.  `size` is the number of body bytes known
 * to be coming (UINT64_MAX when unknown); transfers smaller than threshold
 * are copied.  Reads F_GETFL of the destination only when a zero-copy route
 * exists (for O_APPEND).
 */
void zcio__route_plan(struct zcio__move *m, uint64_t size, uint32_t threshold,
		      struct zcio__route *r);

/* The copy threshold in effect for opts (0 there means the default). */
uint32_t zcio__threshold(uint32_t from_opts);

#endif
