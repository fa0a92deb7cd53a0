/*
 * supervise.h - the main thread of a server with worker threads (zcio
 * relay, zcio serve): it takes the signals, prints statistics, and runs
 * the stop sequence while the workers run their own event loops.
 */
#ifndef ZCIO_SUPERVISE_H
#define ZCIO_SUPERVISE_H

#include <signal.h>
#include <stdatomic.h>

#include "loop.h"

struct supervisor {
	unsigned nworkers;
	struct loop *(*loop_of)(unsigned i);  /* worker i's loop */
	void (*announce_stop)(void);          /* log that stopping began */
	void (*print_stats)(void);            /* on SIGUSR1 and every interval */
	atomic_bool *stopping;                /* set: accept no more */
	atomic_bool *forcing;                 /* set: end what is still open */
	int grace_ms;                         /* from stopping to forcing */
	unsigned stats_interval_s;            /* 0: statistics only on SIGUSR1 */
};

/*
 * Wait for sigs (SIGINT, SIGTERM, SIGUSR1, blocked in every thread) until
 * every worker's loop has stopped.  The first SIGINT/SIGTERM sets
 * *stopping and wakes the workers; grace_ms later, or at a second signal,
 * *forcing is set and they are woken again.
 */
void supervise(const struct supervisor *s, const sigset_t *sigs);

#endif
