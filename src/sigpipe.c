/*
 * sigpipe.c - per-thread SIGPIPE blocking around writes that can raise it.
 */
#include "sigpipe.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

void zcio__sigpipe_block(struct zcio__sigpipe *g)
{
	sigset_t set, old;

	g->active = false;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	if (pthread_sigmask(SIG_BLOCK, &set, &old) != 0)
		return;
	/* Already blocked by the caller: leave everything as it was. */
	g->active = !sigismember(&old, SIGPIPE);
}

void zcio__sigpipe_restore(struct zcio__sigpipe *g, bool saw_epipe)
{
	sigset_t set;

	if (!g->active)
		return;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	if (saw_epipe) {
		/* SIGPIPE was unblocked when we started, so none of the
		 * caller's could be pending: a pending one is ours.  A zero
		 * timeout makes this a poll, not a wait. */
		sigset_t pending;
		const struct timespec zero = { 0, 0 };

		if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
			int r;

			do {
				r = sigtimedwait(&set, NULL, &zero);
			} while (r == -1 && errno == EINTR);
		}
	}
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	g->active = false;
}
