/*
 * pipe.h - the pipe pool: pipes zcio creates and uses as kernel buffers.
 *
 * Pool pipes are nonblocking and close-on-exec, sized once with
 * F_SETPIPE_SZ before first use, and counted by hand: `bytes` is what the
 * holder has put in and not yet taken out.  Rules:
 *
 *  - Pools are per thread: no locks on the hot path.  A thread's idle pipes
 *    are closed when it exits.
 *  - A pipe that may hold data (bytes != 0, or after an error) is closed,
 *    never pooled: one stream's bytes must not leak into the next.
 *  - The number of live pipes is capped process-wide.  Past the cap, or when
 *    pipe2() fails (EMFILE, ENFILE), or when the kernel clamps a new pipe to
 *    a page or two (the user passed pipe-user-pages-soft), zcio__pipe_get()
 *    fails with -ENOBUFS/-EMFILE/-ENFILE and callers copy instead.
 *  - After fork() the child closes every idle pipe it inherited and refuses
 *    to pool pipes from before the fork: parent and child never share one.
 */
#ifndef ZCIO_PIPE_H
#define ZCIO_PIPE_H

#include <stdint.h>

struct zcio__pipe {
	int rd, wr;        /* -1 when not held */
	uint32_t cap;      /* capacity in bytes, as the kernel reported it */
	uint32_t bytes;    /* bytes in the pipe, counted by the holder */
	uint32_t gen;      /* fork generation it was created in */
};

#define ZCIO__PIPE_NONE ((struct zcio__pipe){ .rd = -1, .wr = -1 })

/* Default capacity of pool pipes: 1 MiB, Linux's default pipe-max-size. */
#define ZCIO__PIPE_DEFAULT_SIZE (1u << 20)

/* The capacity to ask for: want (0 means the default), clamped to the
 * system's pipe-max-size so unprivileged processes do not get EPERM. */
uint32_t zcio__pipe_size_for(uint32_t want);

/* Take a pipe of about `want` bytes (0: default) from the calling thread's
 * pool, or create one.  Returns 0 or -ENOBUFS (cap reached, or clamped by
 * pipe-user-pages-soft), -EMFILE, -ENFILE. */
int zcio__pipe_get(struct zcio__pipe *p, uint32_t want);

/* Give a pipe back: pooled when empty and from this process generation,
 * closed otherwise.  Safe on a pipe that is not held. */
void zcio__pipe_put(struct zcio__pipe *p);

/* Close a pipe whatever it holds. */
void zcio__pipe_kill(struct zcio__pipe *p);

/* Close every idle pipe of a thread's pool (thread exit, fork child). */
struct zcio__thread;
void zcio__pool_release(struct zcio__thread *t);

#endif
