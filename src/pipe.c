/*
 * pipe.c - the pipe pool.  See pipe.h for the rules it keeps.
 */
#include "pipe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>

#include "export.h"
#include "sys.h"
#include "thread.h"
#include "zcio.h"

#define DEFAULT_MAX_LIVE 256u

static atomic_uint live;
static atomic_uint max_live = DEFAULT_MAX_LIVE;
static atomic_uint clamped;
static atomic_ullong created;
static atomic_ullong reused;
static atomic_uint pipe_max_size; /* /proc/sys/fs/pipe-max-size, 0: unread */

uint32_t zcio__pipe_size_for(uint32_t want)
{
	uint32_t max = atomic_load_explicit(&pipe_max_size, memory_order_relaxed);

	if (!max) {
		uint64_t v = zcio__read_proc_u64("/proc/sys/fs/pipe-max-size");

		/* Unreadable (no /proc): 1 MiB is the kernel's default. */
		max = v ? (v > UINT32_MAX ? UINT32_MAX : (uint32_t)v) : ZCIO__PIPE_DEFAULT_SIZE;
		atomic_store(&pipe_max_size, max);
	}
	if (!want)
		want = ZCIO__PIPE_DEFAULT_SIZE;
	return want < max ? want : max;
}

static void close_pipe(struct zcio__pipe *p)
{
	zcio__close(p->rd);
	zcio__close(p->wr);
	*p = ZCIO__PIPE_NONE;
	atomic_fetch_sub(&live, 1);
}

static int create_pipe(struct zcio__pipe *p, uint32_t want)
{
	int fds[2];
	int r, size;
	unsigned int n = atomic_fetch_add(&live, 1);

	if (n >= atomic_load(&max_live)) {
		atomic_fetch_sub(&live, 1);
		return -ENOBUFS;
	}
	/* Nonblocking: a pool pipe must never put its holder to sleep;
	 * close-on-exec: it must not leak into programs we never see. */
	r = zcio__pipe2(fds, O_NONBLOCK | O_CLOEXEC);
	if (r < 0) {
		atomic_fetch_sub(&live, 1);
		return r; /* EMFILE, ENFILE: the caller copies instead */
	}
	*p = (struct zcio__pipe){ .rd = fds[0], .wr = fds[1],
				  .gen = zcio__fork_generation() };
	size = zcio__pipe_set_size(p->wr, want);
	if (size < 0) {
		/* EPERM: the user is over pipe-user-pages-soft (new pipes are
		 * clamped to two pages and cannot grow) or asked past
		 * pipe-max-size; EBUSY/ENOMEM are transient.  None is fatal:
		 * see what we got. */
		size = zcio__pipe_get_size(p->wr);
		if (size < 0) {
			/* Cannot even ask (a sandbox refusing fcntl): assume
			 * the kernel default.  Capacity is only a request
			 * size for splice, which moves what fits. */
			size = 16 * 4096;
		}
	}
	/* A clamped pipe moves a page or two per splice pair: copying
	 * through a 128 KiB buffer is faster, so refuse it. */
	if ((uint32_t)size < (want < 65536 ? want : 65536)) {
		close_pipe(p);
		atomic_fetch_add(&clamped, 1);
		return -ENOBUFS;
	}
	p->cap = (uint32_t)size;
	atomic_fetch_add(&created, 1);
	return 0;
}

int zcio__pipe_get(struct zcio__pipe *p, uint32_t want)
{
	struct zcio__thread *t = zcio__thread_self();

	want = zcio__pipe_size_for(want);
	if (t && t->nidle) {
		*p = t->idle[--t->nidle];
		if (p->cap < want) {
			/* Our own empty pipe: growing it is safe. */
			int size = zcio__pipe_set_size(p->wr, want);

			if (size > 0)
				p->cap = (uint32_t)size;
		}
		atomic_fetch_add(&reused, 1);
		return 0;
	}
	return create_pipe(p, want);
}

void zcio__pipe_kill(struct zcio__pipe *p)
{
	if (p->rd < 0)
		return;
	close_pipe(p);
}

void zcio__pipe_put(struct zcio__pipe *p)
{
	struct zcio__thread *t;

	if (p->rd < 0)
		return;
	if (p->bytes != 0 || p->gen != zcio__fork_generation()) {
		/* Dirty, or shared with the parent process: never pooled. */
		zcio__pipe_kill(p);
		return;
	}
	t = zcio__thread_self();
	if (!t || t->nidle >= ZCIO__POOL_IDLE_MAX) {
		zcio__pipe_kill(p);
		return;
	}
	t->idle[t->nidle++] = *p;
	*p = ZCIO__PIPE_NONE;
}

void zcio__pool_release(struct zcio__thread *t)
{
	while (t->nidle)
		zcio__pipe_kill(&t->idle[--t->nidle]);
}

ZCIO_EXPORT int zcio_pool_stats(struct zcio_pool_stats *out)
{
	struct zcio__thread *t;

	if (!out)
		return -EINVAL;
	t = zcio__thread_self();
	*out = (struct zcio_pool_stats){
		.live = atomic_load(&live),
		.idle = t ? t->nidle : 0,
		.max_live = atomic_load(&max_live),
		.clamped = atomic_load(&clamped),
		.created = atomic_load(&created),
		.reused = atomic_load(&reused),
	};
	return 0;
}

ZCIO_EXPORT int zcio_pool_set_max(uint32_t n)
{
	atomic_store(&max_live, n ? n : DEFAULT_MAX_LIVE);
	return 0;
}

ZCIO_EXPORT void zcio_pool_flush(void)
{
	struct zcio__thread *t = zcio__thread_self();

	if (t)
		zcio__pool_release(t);
}
