/*
 * loop.c - the epoll event loop.
 */
#include "loop.h"

#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256

int64_t loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_wakefd(struct loop *l, struct loop_watch *w, uint32_t events)
{
	uint64_t v;

	(void)events;
	/* Edge-triggered: read to reset the counter. */
	while (read(w->fd, &v, sizeof(v)) == sizeof(v))
		;
	if (l->on_wake)
		l->on_wake(l);
}

int loop_init(struct loop *l, int tick_ms)
{
	*l = (struct loop){ .tick_ms = tick_ms };
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		return -errno;
	l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->wakefd < 0) {
		int e = errno;

		close(l->epfd);
		return -e;
	}
	l->wake = (struct loop_watch){ .fd = l->wakefd, .on_event = on_wakefd };
	l->next_tick = loop_now_ms() + tick_ms;
	return loop_add(l, &l->wake, EPOLLIN);
}

void loop_release(struct loop *l)
{
	close(l->wakefd);
	close(l->epfd);
}

int loop_add(struct loop *l, struct loop_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	if (!(events & EPOLLEXCLUSIVE))
		ev.events |= EPOLLET;
	return epoll_ctl(l->epfd, EPOLL_CTL_ADD, w->fd, &ev) == 0 ? 0 : -errno;
}

int loop_del(struct loop *l, struct loop_watch *w)
{
	return epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL) == 0 ? 0 : -errno;
}

void loop_defer(struct loop *l, struct loop_task *t)
{
	if (t->queued)
		return;
	t->queued = true;
	t->next = NULL;
	if (l->ready_tail)
		l->ready_tail->next = t;
	else
		l->ready = t;
	l->ready_tail = t;
}

void loop_cancel(struct loop *l, struct loop_task *t)
{
	struct loop_task *prev = NULL, *cur;

	if (!t->queued)
		return;
	for (cur = l->ready; cur; prev = cur, cur = cur->next) {
		if (cur != t)
			continue;
		if (prev)
			prev->next = t->next;
		else
			l->ready = t->next;
		if (l->ready_tail == t)
			l->ready_tail = prev;
		break;
	}
	t->queued = false;
}

void loop_free_later(struct loop *l, struct loop_task *t)
{
	loop_cancel(l, t);
	t->next = l->graveyard;
	l->graveyard = t;
}

static void bury(struct loop *l)
{
	while (l->graveyard) {
		struct loop_task *t = l->graveyard;

		l->graveyard = t->next;
		t->run(l, t);
	}
}

void loop_wake(struct loop *l)
{
	uint64_t one = 1;

	(void)!write(l->wakefd, &one, sizeof(one));
}

/* Run the tasks deferred so far; those they defer run next time round. */
static void run_ready(struct loop *l)
{
	struct loop_task *t = l->ready;

	l->ready = l->ready_tail = NULL;
	while (t) {
		struct loop_task *next = t->next;

		t->queued = false;
		t->run(l, t);
		t = next;
	}
}

int loop_run(struct loop *l)
{
	struct epoll_event ev[MAX_EVENTS];

	while (!l->stop) {
		int64_t now = loop_now_ms();
		int timeout = l->ready ? 0 : (int)(l->next_tick > now ? l->next_tick - now : 0);
		int n = epoll_wait(l->epfd, ev, MAX_EVENTS, timeout);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n; i++) {
			struct loop_watch *w = ev[i].data.ptr;

			w->on_event(l, w, ev[i].events);
		}
		run_ready(l);
		bury(l);
		now = loop_now_ms();
		if (now >= l->next_tick) {
			l->next_tick = now + l->tick_ms;
			if (l->on_tick)
				l->on_tick(l);
			bury(l);
		}
	}
	bury(l);
	return 0;
}
