/*
 * loop.h - one epoll event loop per worker thread, for the network
 * commands (relay, serve, broadcast).
 *
 * Watches are edge-triggered: a callback must carry on until the fd says
 * EAGAIN (which is what zcio_link_pump() does), or defer itself with
 * loop_defer() to be run again after the other ready work (fairness: a
 * connection that used up its budget must not wait for an edge that will
 * not come).  A periodic tick serves timeouts.  loop_wake() may be called
 * from any thread or a signal handler.
 */
#ifndef ZCIO_LOOP_H
#define ZCIO_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;

struct loop_watch {
	int fd;
	void (*on_event)(struct loop *l, struct loop_watch *w, uint32_t events);
};

struct loop_task {
	void (*run)(struct loop *l, struct loop_task *t);
	struct loop_task *next;
	bool queued;
};

struct loop {
	int epfd;
	int wakefd;                         /* eventfd */
	struct loop_watch wake;
	void (*on_wake)(struct loop *l);    /* after loop_wake(), may be NULL */
	struct loop_task *ready, *ready_tail;
	struct loop_task *graveyard;         /* freed after the current batch */
	int tick_ms;
	int64_t next_tick;
	void (*on_tick)(struct loop *l);    /* may be NULL */
	void *data;                         /* the owner's */
	volatile bool stop;
};

/* Monotonic milliseconds. */
int64_t loop_now_ms(void);

/* Returns 0 or -errno. */
int loop_init(struct loop *l, int tick_ms);
void loop_release(struct loop *l);

/* Edge-triggered (EPOLLET is added) unless events has EPOLLEXCLUSIVE, which
 * is level-triggered (listening sockets shared by workers). */
int loop_add(struct loop *l, struct loop_watch *w, uint32_t events);
int loop_del(struct loop *l, struct loop_watch *w);

/* Run t again after the events at hand (once, however often deferred). */
void loop_defer(struct loop *l, struct loop_task *t);
/* Forget a deferred task (its owner is going away). */
void loop_cancel(struct loop *l, struct loop_task *t);

/*
 * Free an object after the events at hand are dispatched: t->run is called
 * then (t removed from the ready list now).  An object with two fds can have
 * a second event in the same batch after the first one closed it; freeing
 * it later keeps that event's pointer valid (the owner marks it closed).
 */
void loop_free_later(struct loop *l, struct loop_task *t);

/* Make loop_run() return from its wait and call on_wake.  Async-signal-safe. */
void loop_wake(struct loop *l);

/* Run until l->stop is set.  Returns 0 or -errno of epoll_wait. */
int loop_run(struct loop *l);

#endif
