/*
 * serve_uring.h - `zcio serve --uring`: large bodies leave through io_uring.
 *
 * Everything but the body transfer stays on the worker's epoll loop
 * (serve_conn.c): parsing, limits, timeouts, logging, keep-alive.  A large
 * body (one that would otherwise go through a zcio link) is handed to the
 * worker's ring instead; when its last byte is out, or it failed, the ring
 * hands the connection back with conn_uring_end().
 *
 * Lifetimes.  While a body is in flight the kernel names the connection's
 * socket, the file and a pipe by fd number; none of them may be closed
 * before the last completion naming them has arrived.  A connection that
 * closes mid-body therefore gives its socket to the transfer
 * (serve_uring_abort), which closes it after the cancelled requests have
 * completed.
 *
 * All of it runs on the worker's thread; nothing is shared between
 * workers but serve_uring_wanted (set before the workers start) and the
 * bodies counter.
 */
#ifndef ZCIO_SERVE_URING_H
#define ZCIO_SERVE_URING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "serve.h"

/* --uring was given and the probe found io_uring usable here. */
extern bool serve_uring_wanted;
/* Bodies sent whole through the rings, all workers. */
extern atomic_ullong serve_uring_bodies;

/*
 * Can this process use the io_uring path?  Returns 0, or -errno with *why
 * saying what failed and *unavailable whether that means io_uring is
 * absent, forbidden or too old here (the caller warns once and keeps the
 * epoll path) rather than broken (the caller reports it and exits).
 */
int serve_uring_probe(const char **why, bool *unavailable);

/* Give w a ring, its eventfd registered in w's loop.  Returns 0 or -errno
 * (w then sends every body through zcio links). */
int serve_uring_worker_init(struct serve_worker *w);
/* After the last connection of w is closed: wait for every completion
 * still due (cancelled transfers), then free w's ring. */
void serve_uring_worker_release(struct serve_worker *w);
/* The worker's tick: submit what a busy kernel refused, close the spare
 * pipes of an idle worker. */
void serve_uring_tick(struct serve_worker *w);
/* w has a ring. */
bool serve_uring_on(const struct serve_worker *w);

/*
 * Take the large body of c: the header hdr (copied now, into a pipe), then
 * len bytes of f from off.  Nothing is sent before serve_uring_start.
 * Returns 0, or -errno when this body cannot go this way (no pipe, a
 * header larger than the pipe): the caller sends it through a zcio link.
 */
int serve_uring_prepare(struct serve_conn *c, const char *hdr, size_t hdr_len,
			struct serve_file *f, uint64_t off, uint64_t len);
/* Start c's prepared body, once what was queued before it is out.  true
 * when it started now, false when it was running already. */
bool serve_uring_start(struct serve_conn *c);
/* c closes: cancel its body if one is in flight; the transfer then owns
 * c's socket (c->watch.fd becomes -1) and closes it once the kernel is
 * done with it.  Nothing happens when c has no body here. */
void serve_uring_abort(struct serve_conn *c);

/*
 * Called by the ring, implemented in serve_conn.c.
 *
 * conn_uring_progress: n more bytes (header and body) reached c's socket.
 * conn_uring_end: the body is over: r is 0 (all out: the connection goes on
 * with what comes next), -ENODATA (the file ended early: truncated while
 * sent) or another -errno (the client went away); the last two close c.
 */
void conn_uring_progress(struct serve_conn *c, uint64_t n);
void conn_uring_end(struct serve_conn *c, int r);

#endif
