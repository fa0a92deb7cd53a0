/*
 * transfer.h - the driver shared by zcio_copy() and zcio_send_file().
 */
#ifndef ZCIO_TRANSFER_H
#define ZCIO_TRANSFER_H

#include <stdint.h>

#include "move.h"
#include "zcio.h"

/* Classify both fds and fill m from the options.  Returns 0, or -errno
 * (-EBADF, -EISDIR). */
int zcio__transfer_setup(struct zcio__move *m, int in, int out,
			 const struct zcio_opts *o, struct zcio_stats *st);

/*
 * Move m->want body bytes (after m's header) along the planned route,
 * falling back path by path.  size: bytes known to be coming, for the
 * threshold.  Returns 0 (m->done delivered, m->eof if the source ended
 * early) or -errno (m->done delivered, m->stranded lost).
 */
int zcio__transfer_run(struct zcio__move *m, uint64_t size, uint32_t threshold);

#endif
