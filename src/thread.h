/*
 * thread.h - per-thread state: the idle pipe pool and the copy buffer.
 *
 * Each thread that uses zcio gets one struct zcio__thread, created on first
 * use and freed when the thread exits.  All of them are registered in one
 * list so that the child of a fork() can close every pooled pipe it
 * inherited, whichever thread pooled it.
 */
#ifndef ZCIO_THREAD_H
#define ZCIO_THREAD_H

#include <stddef.h>
#include <stdint.h>

#include "pipe.h"

#define ZCIO__POOL_IDLE_MAX 8
#define ZCIO__COPY_BUFFER_SIZE (128u * 1024)

struct zcio__thread {
	struct zcio__pipe idle[ZCIO__POOL_IDLE_MAX];
	unsigned int nidle;
	unsigned char *buf;    /* copy buffer, ZCIO__COPY_BUFFER_SIZE bytes */
	struct zcio__thread *prev, *next;
};

/* The calling thread's state; NULL only when out of memory. */
struct zcio__thread *zcio__thread_self(void);

/* The calling thread's copy buffer (ZCIO__COPY_BUFFER_SIZE bytes), or NULL
 * when out of memory. */
unsigned char *zcio__thread_buffer(void);

/* Current fork generation: incremented in every child after fork(). */
uint32_t zcio__fork_generation(void);


#endif
