/*
 * thread.c - per-thread state, its lifetime, and what fork() does to it.
 */
#include "thread.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t key;
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct zcio__thread *registry;
static atomic_uint generation;
static __thread struct zcio__thread *self;

static void unregister(struct zcio__thread *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		registry = t->next;
	if (t->next)
		t->next->prev = t->prev;
	t->prev = t->next = NULL;
}

/* pthread key destructor: the thread is exiting. */
static void thread_exit(void *arg)
{
	struct zcio__thread *t = arg;

	zcio__pool_release(t);
	pthread_mutex_lock(&registry_lock);
	unregister(t);
	pthread_mutex_unlock(&registry_lock);
	free(t->buf);
	free(t);
	self = NULL;
}

/* fork() in progress: hold the registry so the child sees it consistent. */
static void before_fork(void)
{
	pthread_mutex_lock(&registry_lock);
}

static void after_fork_parent(void)
{
	pthread_mutex_unlock(&registry_lock);
}

/*
 * In the child only the forking thread exists, but every pipe any thread
 * had pooled was inherited.  Those pipes are shared with the parent, so
 * using one would interleave the two processes' bytes: close them all, free
 * the state of threads that no longer exist, and start a new generation so
 * pipes held by objects from before the fork are closed, not pooled, when
 * they are given back.
 */
static void after_fork_child(void)
{
	struct zcio__thread *t = registry, *next;

	atomic_fetch_add(&generation, 1);
	for (; t; t = next) {
		next = t->next;
		zcio__pool_release(t);
		if (t != self) {
			unregister(t);
			free(t->buf);
			free(t);
		}
	}
	pthread_mutex_init(&registry_lock, NULL);
}

static void init_once(void)
{
	pthread_key_create(&key, thread_exit);
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

struct zcio__thread *zcio__thread_self(void)
{
	struct zcio__thread *t;

	if (self)
		return self;
	pthread_once(&once, init_once);
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	pthread_mutex_lock(&registry_lock);
	t->next = registry;
	if (registry)
		registry->prev = t;
	registry = t;
	pthread_mutex_unlock(&registry_lock);
	pthread_setspecific(key, t);
	self = t;
	return t;
}

unsigned char *zcio__thread_buffer(void)
{
	struct zcio__thread *t = zcio__thread_self();

	if (!t)
		return NULL;
	if (!t->buf)
		t->buf = malloc(ZCIO__COPY_BUFFER_SIZE);
	return t->buf;
}

uint32_t zcio__fork_generation(void)
{
	return atomic_load_explicit(&generation, memory_order_relaxed);
}
