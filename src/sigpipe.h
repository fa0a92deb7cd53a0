/*
 * sigpipe.h - keep SIGPIPE from killing the caller.
 *
 * splice(), sendfile() and write() into a pipe or socket whose reader has
 * gone raise SIGPIPE, and only send() has a flag (MSG_NOSIGNAL) to stop it.
 * A library must not change the process's signal dispositions, so around
 * such calls zcio blocks SIGPIPE in the calling thread only; the signal the
 * kernel then raises stays pending, and is consumed before the mask is
 * restored, once the call has seen EPIPE.  If the caller had SIGPIPE blocked
 * already, nothing is touched: a pending SIGPIPE is then the caller's
 * business, as it would be without zcio.
 */
#ifndef ZCIO_SIGPIPE_H
#define ZCIO_SIGPIPE_H

#include <stdbool.h>

struct zcio__sigpipe {
	bool active;       /* we blocked it and must restore */
};

void zcio__sigpipe_block(struct zcio__sigpipe *g);

/* Restore the mask; consume the SIGPIPE our own EPIPE raised, if any. */
void zcio__sigpipe_restore(struct zcio__sigpipe *g, bool saw_epipe);

#endif
