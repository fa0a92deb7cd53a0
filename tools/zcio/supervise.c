/*
 * supervise.c - signals, periodic statistics and the graceful stop of a
 * server's worker threads, shared by zcio relay and zcio serve.
 *
 * Signals are blocked in every thread and taken here with sigtimedwait(),
 * so no handler runs in the middle of a worker's data path.  The 100 ms
 * timeout is what lets the grace period and the statistics interval pass
 * without a signal.
 */
#include <time.h>

#include "supervise.h"

static void wake_all(const struct supervisor *s)
{
	for (unsigned i = 0; i < s->nworkers; i++)
		loop_wake(s->loop_of(i));
}

void supervise(const struct supervisor *s, const sigset_t *sigs)
{
	int64_t stop_deadline = 0, next_stats = 0;

	if (s->stats_interval_s)
		next_stats = loop_now_ms() + (int64_t)s->stats_interval_s * 1000;
	for (;;) {
		struct timespec ts = { .tv_sec = 0, .tv_nsec = 100 * 1000000 };
		int sig = sigtimedwait(sigs, NULL, &ts);
		int64_t now = loop_now_ms();
		bool all_done = true;

		if (sig == SIGUSR1)
			s->print_stats();
		if ((sig == SIGINT || sig == SIGTERM) && !atomic_load(s->stopping)) {
			s->announce_stop();
			atomic_store(s->stopping, true);
			stop_deadline = now + s->grace_ms;
			wake_all(s);
		} else if ((sig == SIGINT || sig == SIGTERM) && !atomic_load(s->forcing)) {
			stop_deadline = now; /* a second signal: stop now */
		}
		if (stop_deadline && now >= stop_deadline && !atomic_load(s->forcing)) {
			atomic_store(s->forcing, true);
			wake_all(s);
		}
		if (next_stats && now >= next_stats) {
			s->print_stats();
			next_stats = now + (int64_t)s->stats_interval_s * 1000;
		}
		if (!atomic_load(s->stopping))
			continue;
		for (unsigned i = 0; i < s->nworkers; i++)
			all_done &= s->loop_of(i)->stop;
		if (all_done)
			return;
	}
}
