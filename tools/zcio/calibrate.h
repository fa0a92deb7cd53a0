/*
 * calibrate.h - the insides of `zcio calibrate`, shared by
 * tools/zcio/calibrate*.c.
 *
 *   calibrate.c        the command: options, the thresholds file, tables, JSON
 *   calibrate_net.c    connections: loopback, or between two network
 *                      namespaces (scripts/netns-testbed), and drain threads
 *   calibrate_run.c    the measurements: crossovers per route, send-sizes,
 *                      recv
 *
 * Everything runs in this process, through the public API (plus the raw
 * syscalls of the baselines): the sender is the calling thread, peers are
 * threads.  CPU time is measured per thread (CLOCK_THREAD_CPUTIME_ID) for
 * the sender or receiver under test, and for the whole process
 * (getrusage), which includes the peers and the network stack's work done
 * in their context.
 */
#ifndef ZCIO_CALIBRATE_H
#define ZCIO_CALIBRATE_H

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "zcio.h"

#define CAL_GIB (1024.0 * 1024.0 * 1024.0)
#define CAL_MAX_SIZES 12

/* ---- clocks (calibrate_run.c) ---- */

struct cal_clock {
	double wall, thread_cpu, proc_cpu; /* seconds */
};

void cal_clock_now(struct cal_clock *c);

/* ---- connections (calibrate_net.c) ---- */

/* Where TCP connections are made: loopback, or a -> b across a veth. */
struct cal_net {
	bool netns;
	char ns_a[64], ns_b[64];    /* sender's and receiver's namespaces */
	char addr_b[64];            /* receiver's IPv4 address in ns_b */
	char addr_sink[64];         /* the testbed's sink (x.y.z.3): frames to
	                               it are dropped past the veth */
	char error[256];
};

/* Set up net for namespaces "A:B" (NULL: loopback).  Returns 0 or -errno
 * with net->error set. */
int cal_net_init(struct cal_net *net, const char *spec);

/* A new connection: *snd in the sender's namespace, *rcv in the
 * receiver's; both blocking, close-on-exec.  mss > 0 sets TCP_MAXSEG on
 * both before connecting.  Returns 0 or -errno. */
int cal_connect(const struct cal_net *net, int mss, int *snd, int *rcv);

/* A thread that reads fd until end of file (or stop), counting bytes. */
struct cal_drain {
	int fd;
	volatile bool stop;
	uint64_t bytes;
	pthread_t th;
};

int cal_drain_start(struct cal_drain *d, int fd);

/*
 * Put the calling (sending) thread on one CPU and drain threads started
 * from now on another, until cal_pin_end().  Over a veth pair the sender's
 * CPU also runs the receiving TCP stack (in softirq); where the scheduler
 * puts the reader changes from run to run and moves results by 10-20% on
 * two cores, more than the differences between send methods at most sizes.
 * Every method is measured under the same placement.  Returns 0, -ENODEV
 * with a single allowed CPU (nothing changed), or -errno.
 */
int cal_pin_begin(cpu_set_t *saved);
void cal_pin_end(const cpu_set_t *saved);
/* Stop (shut the fd down for reading), join, close fd. */
void cal_drain_stop(struct cal_drain *d);

/* ---- measurements (calibrate_run.c) ---- */

/* One size of one route: zero-copy against copying, back to back. */
struct cal_point {
	uint64_t size;
	double zc_ns, copy_ns;       /* median wall time per transfer */
	double zc_cpu, copy_cpu;     /* process CPU seconds per GiB */
	double ratio;                /* median of the pairs' zc/copy time ratios */
	bool ok;
	char note[96];
};

struct cal_ctx;

struct cal_route {
	const char *key;             /* thresholds file key: "file_pipe" */
	const char *label;           /* "file -> pipe" */
	const char *zc_name, *copy_name; /* "splice", "read/write" */
	bool network;                /* uses TCP (over the veth with --netns) */
	/* Set up peers and buffers for transfers of up to max_size bytes;
	 * -errno (with ctx->why set) when the route cannot be measured. */
	int (*setup)(struct cal_ctx *ctx, uint64_t max_size);
	/* One transfer of size bytes, zero-copy or copying.  0 or -errno. */
	int (*op)(struct cal_ctx *ctx, uint64_t size, bool zc);
	/* End a timed run: hand over whatever is buffered.  May be NULL. */
	int (*finish)(struct cal_ctx *ctx, bool zc);
	/* After the sizes: a reason why the result must not become a
	 * threshold (e.g. the kernel copied every zero-copy send), or NULL. */
	const char *(*verdict)(struct cal_ctx *ctx);
	bool skip;                   /* left out (--routes) */
	bool unusable;               /* measured, but verdict() refused it */
	/* results */
	int npoints;
	struct cal_point points[CAL_MAX_SIZES];
	uint64_t threshold;          /* ZCIO_THRESHOLD_NEVER: copying won */
	bool measured;
	char why[128];               /* when not measured */
};

extern struct cal_route cal_routes[];
extern const int cal_nroutes;

struct cal_config {
	struct cal_net net;
	bool quick;
	int pairs;                   /* back-to-back pairs per point */
	double run_seconds;          /* target length of one timed run */
	double send_seconds;         /* one row of send-sizes, udp-egress, recv */
	int repeat;                  /* runs per row of those, median kept */
	uint64_t sizes[CAL_MAX_SIZES];
	int nsizes;
};

/* Measure every route at every size; fill cal_routes[].  Prints progress
 * to stderr when verbose. */
void cal_measure_crossovers(const struct cal_config *cfg, bool verbose);

/* Runs of one row of send-sizes or udp-egress, at most (--repeat). */
#define CAL_MAX_REPEAT 9

/* send-sizes: one row per (method, size, touched). */
struct cal_send_row {
	const char *method;
	uint64_t size;
	bool touched;
	bool ok;
	double mib_s;                /* throughput, MiB/s */
	double sender_cpu;           /* sender thread CPU s/GiB */
	double proc_cpu;             /* whole process CPU s/GiB */
	uint64_t zc_sends, completions, copied, enobufs;
	uint64_t fixed_sends;        /* of zc_sends, from registered buffers */
	char note[96];
	/* send-sizes, filled by cal_send_sizes(): each run's MiB/s (NaN for a
	 * failed run), in the order of the repetitions. */
	double run_mib[CAL_MAX_REPEAT];
	int nruns;
	/* Paired comparisons: the median over the repetitions of this row's
	 * MiB/s divided by the other's in the same repetition (runs of one size
	 * follow each other, so a slow phase of the machine slows both).
	 * vs_write for every row; vs_best for the auto row only, against the
	 * safe fixed method (write, ring, msg_zerocopy, send_zc) with the
	 * highest median, named in best.  NaN where not measured. */
	double vs_write, vs_best;
	const char *best;
};

/* The send methods, in the order of their rows.  vmsplice has no reuse
 * rule to a socket (shown for its speed only); auto is zcio_zcsend's own
 * choice; send_zc_fixed is SEND_ZC from buffers registered with
 * zcio_zcsend_register(). */
enum cal_send_method {
	SM_WRITE, SM_VMSPLICE, SM_RING, SM_MSG_ZEROCOPY, SM_AUTO, SM_SEND_ZC, SM_SEND_ZC_FIXED,
	CAL_SEND_METHODS
};
extern const char *const cal_send_methods[CAL_SEND_METHODS];

/* Run send-sizes; returns the number of rows stored (at most max). */
int cal_send_sizes(const struct cal_config *cfg, struct cal_send_row *rows, int max, bool verbose);

/* recv: read() against TCP_ZEROCOPY_RECEIVE. */
struct cal_recv_row {
	const char *method;          /* "read", "zerocopy-receive" */
	bool ok;
	double mib_s, receiver_cpu, proc_cpu;
	double mapped_pct;           /* of the bytes, how many were mapped */
	char note[96];
};

int cal_recv(const struct cal_config *cfg, struct cal_recv_row *rows, int max, bool verbose);

/* udp-egress: datagrams that leave through the device and are dropped on
 * the far side before any socket (no listener): the one case on a single
 * host where MSG_ZEROCOPY completions are not COPIED.  Reuses
 * struct cal_send_row (method "send" or "msg_zerocopy", touched). */
int cal_udp_egress(const struct cal_config *cfg, struct cal_send_row *rows, int max, bool verbose);

/* Open a UDP socket in the sender's namespace connected to the testbed's
 * sink (loopback: 127.0.0.1), port `port`.  Returns the fd or -errno. */
int cal_udp_socket(const struct cal_net *net, int port);

#endif
