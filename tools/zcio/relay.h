/*
 * relay.h - what `zcio relay`'s two data paths share: the configuration,
 * the worker (its listening socket, its counters), and the flags the main
 * thread raises on SIGINT/SIGTERM.
 *
 * relay.c owns all of it: it parses the options, creates the listening
 * sockets, starts one thread per worker and takes the signals.  A worker
 * runs either the epoll loop (relay.c) or, with --uring, the io_uring loop
 * (relay_uring.c).  Either way it sets w->loop.stop once it has finished
 * after relay_stopping, which is what the main thread waits for.
 */
#ifndef ZCIO_RELAY_H
#define ZCIO_RELAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "addr.h"
#include "loop.h"
#include "zcio.h"

struct relay_config {
	struct addr listen, target;
	unsigned workers;
	int connect_timeout_ms;
	int idle_timeout_ms;      /* 0: none */
	unsigned max_conns;
	int grace_ms;
	int stats_interval_s;     /* 0: only on SIGUSR1 and at exit */
	bool stats;
	struct zcio_opts link_opts;
	bool uring;               /* --uring, and io_uring works here */
};

struct relay_conn;
struct relay_uring;

/* Counters a worker writes and the main thread reads (relaxed atomics). */
struct relay_counters {
	atomic_ullong accepted, refused, active;
	atomic_ullong up_bytes, down_bytes, spliced, copied;
};

struct relay_worker {
	struct loop loop;
	pthread_t thread;
	unsigned index;
	struct loop_watch listen;
	bool listen_owned;              /* this worker's own SO_REUSEPORT socket */
	bool accepting;
	struct loop_task accept_task;   /* accept again after a full batch */
	int64_t accept_resume_at;       /* after EMFILE backoff; 0: none */
	struct relay_conn *conns;
	unsigned nconns;
	struct zcio_stats st;           /* accumulated over every pump */
	struct relay_counters counters;
	struct relay_uring *uring;      /* --uring: this worker's ring, or NULL */
};

extern struct relay_config relay_cfg;
/* Connections open in all workers (--max-conns). */
extern atomic_uint relay_active;
/* SIGINT/SIGTERM: stop accepting; and after --grace: end every connection. */
extern atomic_bool relay_stopping, relay_forcing;
/* Pipes the io_uring connections hold (the epoll path's are in the pool). */
extern atomic_uint relay_uring_pipes;

/*
 * The io_uring data path (relay_uring.c).
 *
 * relay_uring_probe: can this process run it?  Returns 0, or -errno with
 * *why saying what failed and *unavailable whether that means io_uring is
 * absent or forbidden here, or too old (the caller then warns and runs the
 * epoll path: -EOPNOTSUPP also when built without liburing), rather than
 * broken (the caller reports the error and exits).
 *
 * relay_uring_new: give w its ring (w->uring), before its thread starts, so
 * that the relay holds every fd it keeps once it says it is listening.
 * Returns 0 or -errno (the caller then runs the epoll loop for w).
 *
 * relay_uring_run: the worker loop for w, on its thread, until
 * relay_stopping and no connection left; then frees w->uring and sets
 * w->loop.stop.
 */
int relay_uring_probe(const char **why, bool *unavailable);

/* Shared by both paths (relay.c): has the server behind sfd gone (closed
 * or reset) after a transfer failed with err; has the client behind cfd
 * acknowledged everything sent to it (or gone)? */
bool relay_server_gone(int sfd, int err);
bool relay_client_has_all(int cfd);
int relay_uring_new(struct relay_worker *w);
void relay_uring_run(struct relay_worker *w);

#endif
