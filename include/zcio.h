/*
 * zcio.h - move bytes between file descriptors the fastest correct way.
 *
 * This is the only installed header of libzcio.
 *
 * Invariants that hold for every function below:
 *
 *  - Errors: functions return >= 0 on success and -errno on failure.  They
 *    never read or set errno.
 *  - Progress: a function that moves data reports, through struct zcio_stats,
 *    exactly how many bytes reached the destination, also when it fails.
 *    Bytes taken from a source and not delivered are never silently dropped:
 *    a seekable source is rewound to the first undelivered byte, a link keeps
 *    them in its pipe, and anything else is counted in zcio_stats.stranded.
 *  - Signals: no function lets SIGPIPE kill the caller; a destination whose
 *    reader has gone is reported as -EPIPE.
 *  - File descriptors: the caller's fds keep their flags (O_NONBLOCK,
 *    O_APPEND, ...).  Nonblocking fds are waited for with poll() on the fd
 *    that blocked.  The only change zcio may make to an fd it does not own is
 *    growing a pipe's capacity, and only when asked (ZCIO_F_GROW_PIPE).
 *  - Threads: every function is thread-safe unless its comment says
 *    otherwise.  Internal pipes are pooled per thread and are close-on-exec.
 *  - By reference: zero-copy paths pass page references, not copies.  Bytes a
 *    file source holds are read when they are delivered, not when the call
 *    returns for a pipe destination; see ZCIO_F_STABLE.
 */
#ifndef ZCIO_H
#define ZCIO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZCIO_VERSION_MAJOR 0
#define ZCIO_VERSION_MINOR 1
#define ZCIO_VERSION_PATCH 0
#define ZCIO_VERSION_STRING "0.1.0"

/* The library's version string, e.g. "0.1.0".  Never NULL. */
const char *zcio_version(void);

/* Length meaning "until the source reports end of file". */
#define ZCIO_TO_EOF UINT64_MAX

/*
 * The ways bytes can move.  Stable numbering: values are only appended.
 */
enum zcio_path {
	ZCIO_PATH_COPY = 0,        /* read()/write() through a user buffer */
	ZCIO_PATH_COPY_FILE_RANGE, /* copy_file_range(): file to file, in kernel */
	ZCIO_PATH_SENDFILE,        /* sendfile(): file pages to any fd */
	ZCIO_PATH_SPLICE,          /* splice() directly: one side is a pipe */
	ZCIO_PATH_SPLICE_PIPE,     /* splice() in and out of a pooled pipe */
	ZCIO_PATH_TEE,             /* tee(): pipe pages duplicated by reference */
	ZCIO_PATH_VMSPLICE,        /* vmsplice(): user pages handed to a pipe */
	ZCIO_PATH_MSG_ZEROCOPY,    /* send(MSG_ZEROCOPY) with completions */
	ZCIO_PATH_URING,           /* io_uring operations */
	ZCIO_PATH_URING_SEND_ZC,   /* io_uring zero-copy send */
	ZCIO_PATH_ZEROCOPY_RECV,   /* TCP_ZEROCOPY_RECEIVE page mapping */
	ZCIO_PATH_COUNT
};

/* Room reserved in struct zcio_stats so new paths keep the ABI. */
#define ZCIO_PATH_SLOTS 16

/* Short lowercase name of a path ("splice", "copy", ...); "?" if unknown. */
const char *zcio_path_name(int path);

/*
 * Why a path was not taken or was left.  Stable numbering.
 */
enum zcio_reason {
	ZCIO_WHY_NONE = 0,
	ZCIO_WHY_FORCED,      /* the caller asked for copying (ZCIO_F_COPY) */
	ZCIO_WHY_STABLE,      /* ZCIO_F_STABLE: file sources are copied */
	ZCIO_WHY_SMALL,       /* below the copy threshold: copying is cheaper */
	ZCIO_WHY_KIND,        /* no zero-copy route between these fd kinds */
	ZCIO_WHY_APPEND,      /* O_APPEND destination: splice and friends refuse */
	ZCIO_WHY_NOSYS,       /* the kernel lacks the syscall (cached process-wide) */
	ZCIO_WHY_FORBIDDEN,   /* EPERM confirmed by a probe: seccomp or similar */
	ZCIO_WHY_REFUSED,     /* the kernel refused it for these fds (EINVAL, ...) */
	ZCIO_WHY_CROSS_FS,    /* EXDEV: copy_file_range across filesystems */
	ZCIO_WHY_ZERO_FIRST,  /* first call moved 0 bytes: not trusted as EOF */
	ZCIO_WHY_NO_PIPE,     /* no pipe available: pool cap, EMFILE, clamped size */
	ZCIO_WHY_COUNT
};

/* Short lowercase phrase for a reason; "?" if unknown. */
const char *zcio_reason_name(int reason);

/* One fallback: the path left, the path taken, why, and where. */
struct zcio_fallback {
	uint8_t from;     /* enum zcio_path abandoned */
	uint8_t to;       /* enum zcio_path taken next */
	uint16_t reason;  /* enum zcio_reason */
	int32_t err;      /* the errno behind it, 0 when none */
	uint64_t at;      /* bytes the call had delivered when it happened */
};

#define ZCIO_STATS_FALLBACKS 8

/* Which fd a nonblocking operation waits for (zcio_stats.wait). */
enum zcio_wait {
	ZCIO_WAIT_NONE = 0,
	ZCIO_WAIT_IN = 1,   /* poll the source for POLLIN */
	ZCIO_WAIT_OUT = 2,  /* poll the destination for POLLOUT */
};

/*
 * Counters filled by every data-moving function.
 *
 * Counters accumulate over calls: zero the struct once (= {0}) and pass it to
 * as many calls as you like.  last_bytes, stranded and wait describe only the
 * most recent call and are overwritten by each one.  A NULL stats pointer is
 * accepted everywhere.
 */
struct zcio_stats {
	uint64_t bytes;        /* bytes delivered, all calls */
	uint64_t last_bytes;   /* bytes delivered by the latest call, even on error */
	uint64_t path_bytes[ZCIO_PATH_SLOTS]; /* bytes delivered per enum zcio_path */
	uint64_t syscalls;     /* data-moving syscalls issued, all calls */
	uint64_t waits;        /* times a call waited in poll(), all calls */
	uint64_t stranded;     /* latest call: bytes taken from an unseekable source
	                          and lost with the error it returns */
	uint64_t pending;      /* latest call (links): bytes held in the link's pipe */
	int32_t wait;          /* latest call (links): enum zcio_wait after -EAGAIN */
	uint32_t nfallbacks;   /* fallbacks, all calls (may exceed the array) */
	struct zcio_fallback fallback[ZCIO_STATS_FALLBACKS]; /* the first ones */
	uint64_t reserved[8];
};

/*
 * Format stats as human-readable lines: "total: N bytes", then one line per
 * path used ("splice: 2147483648 bytes"), then one per distinct fallback
 * with its reason and errno.  Writes at most
 * len bytes including the terminating NUL; returns the length it wanted to
 * write (like snprintf), or -EINVAL.
 */
int zcio_stats_format(const struct zcio_stats *st, char *buf, size_t len);

/* ---- options ------------------------------------------------------------ */

/* Force read()/write() for everything: the baseline. */
#define ZCIO_F_COPY        (1u << 0)
/*
 * Snapshot semantics for file sources: copy bytes out of regular files
 * instead of passing page references, so that writes made to the file after
 * the call returns can never show up at the destination.  Without it, bytes
 * spliced from a file into a pipe are read from the page cache when the pipe's
 * reader consumes them (sendfile(2) asks the same of its callers).
 */
#define ZCIO_F_STABLE      (1u << 1)
/* Read the source at zcio_opts.in_offset with positional I/O; the source
 * fd's own offset is neither used nor moved.  Regular-file sources only. */
#define ZCIO_F_OFFSET      (1u << 2)
/*
 * Allow growing a source or destination pipe the caller passed (not one zcio
 * created) to zcio_opts.pipe_size with F_SETPIPE_SZ.  A larger pipe cuts
 * context switches for its reader several-fold, but the pipe is shared with
 * another process, and old kernels (before 5.16) could hang a reader when a
 * pipe was resized under it.  Only ever grows, never shrinks; failure is
 * ignored.
 */
#define ZCIO_F_GROW_PIPE   (1u << 3)
/* More data will follow this call to the same socket: keep the last segment
 * corked (MSG_MORE / SPLICE_F_MORE).  Without it the last bytes leave at
 * once.  sendfile() cannot carry it, so with this flag a file goes to a
 * socket through a pipe.  Ignored by links. */
#define ZCIO_F_MORE        (1u << 4)
/* Choose the body method of zcio_send_file() (default: library's choice). */
#define ZCIO_F_VIA_SENDFILE (1u << 5)  /* header with send(MSG_MORE), then sendfile() */
#define ZCIO_F_VIA_PIPE     (1u << 6)  /* header written into a pipe, file spliced behind */

/* Threshold used when zcio_opts.copy_threshold is 0, before calibration. */
#define ZCIO_DEFAULT_THRESHOLD (16u * 1024)

struct zcio_opts {
	uint32_t flags;           /* ZCIO_F_* */
	uint32_t copy_threshold;  /* transfers known to be smaller are copied;
	                             0: library default; 1: never copy for size */
	uint32_t pipe_size;       /* capacity wanted for pipes; 0: 1 MiB, clamped
	                             to /proc/sys/fs/pipe-max-size */
	uint32_t chunk;           /* max bytes per syscall; 0: automatic */
	int32_t timeout_ms;       /* blocking calls on nonblocking fds: give up with
	                             -ETIMEDOUT after waiting this long for one fd;
	                             0: wait forever */
	uint32_t reserved0;
	uint64_t in_offset;       /* with ZCIO_F_OFFSET */
	uint64_t reserved[4];
};

/* ---- probing ------------------------------------------------------------ */

#define ZCIO_HAVE_SPLICE          (1u << 0)
#define ZCIO_HAVE_TEE             (1u << 1)
#define ZCIO_HAVE_VMSPLICE        (1u << 2)
#define ZCIO_HAVE_SENDFILE        (1u << 3)
#define ZCIO_HAVE_COPY_FILE_RANGE (1u << 4)
#define ZCIO_HAVE_MSG_ZEROCOPY    (1u << 5)
#define ZCIO_HAVE_IO_URING        (1u << 6)
#define ZCIO_HAVE_ZEROCOPY_RECV   (1u << 7)
#define ZCIO_HAVE_PIPE_RESIZE     (1u << 8)

/* io_uring opcodes zcio can use (zcio_features.uring_ops). */
#define ZCIO_URING_SPLICE   (1u << 0)
#define ZCIO_URING_TEE      (1u << 1)
#define ZCIO_URING_SEND     (1u << 2)
#define ZCIO_URING_RECV     (1u << 3)
#define ZCIO_URING_SEND_ZC  (1u << 4)
#define ZCIO_URING_SENDMSG_ZC (1u << 5)
#define ZCIO_URING_READ     (1u << 6)
#define ZCIO_URING_WRITE    (1u << 7)
#define ZCIO_URING_POLL_ADD (1u << 8)

struct zcio_features {
	uint32_t have;                 /* ZCIO_HAVE_* */
	uint32_t uring_ops;            /* ZCIO_URING_*, 0 without io_uring */
	int32_t uring_error;           /* -errno of io_uring_setup, 0 if it worked */
	uint32_t page_size;
	uint64_t pipe_max_size;        /* /proc/sys/fs/pipe-max-size, 0 if unreadable */
	uint64_t pipe_user_pages_soft; /* 0 if unreadable or unlimited */
	uint64_t pipe_user_pages_hard; /* 0 if unreadable or unlimited */
	int32_t pipe_limits_apply;     /* 1 when this process is subject to them
	                                  (no CAP_SYS_RESOURCE/CAP_SYS_ADMIN) */
	uint32_t reserved0;
	char kernel[64];               /* uname release */
	uint64_t reserved[8];
};

/*
 * Ask the running kernel which mechanisms it offers.  Probes each syscall
 * with invalid fds (EBADF means present), so it moves no data; every call
 * probes again and re-reads the /proc limits (a few dozen syscalls: call it
 * once, not per transfer).  Returns 0, or -EINVAL for a NULL pointer.
 * Thread-safe.
 */
int zcio_probe(struct zcio_features *out);

/* ---- blocking copies ---------------------------------------------------- */

/*
 * Move len bytes (or until end of file with ZCIO_TO_EOF) from fd in to fd
 * out, choosing the route from what the two fds are:
 *
 *   file -> file         copy_file_range, then sendfile, then read/write
 *   file -> pipe         splice
 *   file -> socket, dev  sendfile
 *   pipe -> anything     splice
 *   socket -> pipe       splice
 *   socket -> file/socket  splice through a pooled pipe
 *   tty, datagram socket, O_APPEND file, procfs ...   read/write
 *
 * Transfers known to be smaller than the copy threshold are copied.  When a
 * path turns out unsupported part-way, the next one continues at exactly the
 * byte where it stopped, after delivering what an intermediate pipe held.
 *
 * Blocking: waits until done.  A nonblocking fd is waited for with poll();
 * opts->timeout_ms bounds each wait.  The source's fd offset (regular files,
 * unless ZCIO_F_OFFSET) ends just past the last byte delivered, also on
 * error; the destination's offset advances by what was written.
 *
 * Returns the number of bytes delivered (less than len only at end of file),
 * or -errno: -EPIPE when the destination's reader has gone, -ETIMEDOUT,
 * -EISDIR, -EBADF, -EINVAL for a regular file copied onto itself to EOF
 * with the writes landing ahead of the reads (O_APPEND, or the output
 * offset past the input's: it would never end), an I/O error...  On error stats->last_bytes says how many
 * bytes were delivered first.  opts and stats may be NULL.  Thread-safe;
 * two threads must not use the same fds at once.
 *
 * stdio: flush a FILE * (fflush) before passing its fd, or its buffered
 * bytes come out after zcio's.
 */
int64_t zcio_copy(int in, int out, uint64_t len,
		  const struct zcio_opts *opts, struct zcio_stats *stats);

/*
 * Send hdr (may be NULL when hdrlen is 0) followed by len bytes of the
 * regular file fd starting at off (ZCIO_TO_EOF: to its end), to out as one
 * stream.  out may be a stream socket, a pipe or a file.
 *
 * Small totals (below the copy threshold) go out with one writev()/sendmsg().
 * Larger ones put the header in a pipe and splice the file behind it
 * (ZCIO_F_VIA_PIPE), or send the header with MSG_MORE and sendfile() the
 * body (ZCIO_F_VIA_SENDFILE); without either flag the library picks.  fd's
 * offset is not used or moved.
 *
 * If the file is shorter than off + len (truncated while sending), fewer
 * bytes are sent and -ENODATA is returned with stats->last_bytes telling how
 * many (header included) went out: never padding, never hanging.
 *
 * Returns hdrlen + body bytes sent, or -errno.  Blocking, like zcio_copy().
 * Same by-reference rule as zcio_copy (ZCIO_F_STABLE).  Thread-safe.
 */
int64_t zcio_send_file(int out, const void *hdr, size_t hdrlen,
		       int fd, uint64_t off, uint64_t len,
		       const struct zcio_opts *opts, struct zcio_stats *stats);

/* ---- nonblocking links -------------------------------------------------- */

/*
 * A link moves bytes one way, in -> out, without blocking: the building
 * block of relays and servers driven by an event loop (epoll, poll,
 * io_uring poll, libev...; level- or edge-triggered).  Bytes travel through
 * a pipe from the pool (splice in, splice out) or, when splicing is
 * unsupported for the pair, no pipe is available, or chunks are small,
 * through a small buffer.  The two are never mixed out of order.
 *
 * A link holds a pipe or a buffer only while bytes are in flight: an idle
 * link holds neither.  It never changes the flags of its fds; give it
 * nonblocking fds (with blocking ones, pump blocks).  Not thread-safe: one
 * thread at a time per link.  Free it with zcio_link_free(); the fds stay
 * the caller's.
 */
struct zcio_link;

/*
 * Create a link from in to out moving at most len bytes (ZCIO_TO_EOF: until
 * the source ends).  opts (may be NULL): ZCIO_F_COPY (never splice),
 * ZCIO_F_STABLE (copy from file sources), ZCIO_F_OFFSET (in is a regular
 * file read at opts->in_offset), ZCIO_F_VIA_SENDFILE (a file source goes to
 * a stream socket by sendfile(), pushed bytes by send(MSG_MORE) in front of
 * it, instead of through the pipe), pipe_size, copy_threshold (chunks from a
 * socket or pipe smaller than this, default 4096, switch the link to its
 * buffer until a large one arrives).  Other options do not apply to links.
 * Returns 0 and sets *link, or -EINVAL (NULL link), -ENOMEM, -EBADF,
 * -EISDIR, -ESPIPE.
 */
int zcio_link_new(int in, int out, uint64_t len, const struct zcio_opts *opts,
		  struct zcio_link **link);

/*
 * Move bytes until one of the fds would block, the source ends, or `max`
 * bytes (0: no limit) have been delivered in this call.  Returns:
 *
 *   -EAGAIN  nothing more can move now: poll stats->wait's fd (ZCIO_WAIT_IN:
 *            the source for POLLIN; ZCIO_WAIT_OUT: the destination for
 *            POLLOUT) and call again.  Only reported after that fd itself
 *            returned EAGAIN, so edge-triggered loops do not stall.
 *   0        the source has ended (or len was reached) and every byte it
 *            gave has been delivered: the caller may now shutdown(out,
 *            SHUT_WR).  Never returned while bytes are still in the pipe.
 *   > 0      `max` bytes were delivered (the budget): call again, no wait.
 *   -errno   an error on either fd (-EPIPE, -ECONNRESET...).  Bytes the
 *            link still holds stay there: see zcio_link_pending/drain.
 *
 * stats (may be NULL): last_bytes is what this call delivered; pending is
 * what the link holds afterwards.
 */
int64_t zcio_link_pump(struct zcio_link *link, uint64_t max, struct zcio_stats *stats);

/*
 * Queue len bytes from memory to be delivered before anything the link
 * takes from its source next (an HTTP header in front of a file body: it is
 * written into the pipe and the file is spliced behind it).  The bytes are
 * copied; buf may be reused at once.  Returns 0 or -ENOMEM.
 */
int zcio_link_push(struct zcio_link *link, const void *buf, size_t len);

/* Bytes the link has taken (from its source or zcio_link_push) and not yet
 * delivered. */
uint64_t zcio_link_pending(const struct zcio_link *link);

/* True once the source has reported its end (or len was reached), whether
 * or not everything has been delivered yet. */
int zcio_link_source_done(const struct zcio_link *link);

/*
 * Recovery: copy up to len bytes of what the link holds, in order, into
 * buf, removing them from the link.  Returns the number of bytes copied
 * (0 when nothing is held), or -errno.
 */
int64_t zcio_link_drain(struct zcio_link *link, void *buf, size_t len);

/* Free the link: its pipe goes back to the pool if empty, else is closed.
 * Held bytes are discarded (drain them first if they matter).  NULL ok. */
void zcio_link_free(struct zcio_link *link);

/* ---- fan-out ------------------------------------------------------------ */

/*
 * A fan-out sends one source to many destinations without copying the
 * bytes once per destination: the stream goes into an intake pipe (a pool
 * pipe the source is spliced into) and tee() duplicates the intake's page
 * references into each destination's pipe.  A destination that is a pipe
 * is tee()d into directly; a file, socket or device gets a pool pipe of its
 * own that is spliced out to it; the destination that would be the last to
 * need a piece of the intake gets it by splice(), which also empties the
 * intake.  Destinations that cannot be spliced into (terminals, O_APPEND
 * files, datagram sockets) get their bytes from their pipe with read() and
 * write().  When tee() or splice() is unsupported, or no pipe is to be had
 * (pool cap, EMFILE), the fan-out copies instead: each byte is read once
 * into a buffer and written to every destination.  Bytes are never
 * reordered at a destination, whichever way they travel.
 *
 * It is nonblocking and event-loop agnostic, like a link: zcio_fanout_pump()
 * moves what it can and, when nothing more can move, says through
 * zcio_fanout_pollfds() which fds to wait for.
 *
 * Positions: the fan-out counts the bytes it has taken from its source (its
 * position, zcio_fanout_position()).  A destination added when the position
 * is P receives exactly the bytes at P and after: those the fan-out takes
 * from then on, none it took before.  The source's bytes are consumed only
 * once every destination has them, so the fan-out holds at most its intake
 * pipe's capacity (opts->pipe_size, default 1 MiB) beyond the slowest
 * destination, plus what each destination's own pipe holds.
 *
 * Slow destinations, chosen per destination:
 *  - block (the default): like tee(1), everyone waits for the slowest; the
 *    fan-out then waits in poll() for that destination only, never spins.
 *  - drop (ZCIO_FANOUT_DROP): a destination that cannot take more while
 *    the intake is full of bytes it has not taken (it is the intake's
 *    capacity behind the fan-out's position, on top of what its own pipe
 *    holds) is removed and reported as ZCIO_FANOUT_DROPPED; the others
 *    never wait for it for longer than it takes to fill the intake.
 * A destination whose reader goes away (-EPIPE, -ECONNRESET: no SIGPIPE
 * reaches the caller) or that fails (-EIO, -ENOSPC...) is removed and
 * reported without disturbing the others.
 *
 * With no destination at all the fan-out still reads its source and
 * discards what it reads: a live stream does not wait for listeners.  A
 * caller who wants it to wait simply does not pump.
 *
 * By reference: bytes taken from a regular file are page references until
 * each destination's reader consumes them (ZCIO_F_STABLE copies instead).
 *
 * The fds stay the caller's: the fan-out never closes them and never
 * changes their flags (except growing a pipe's capacity with
 * ZCIO_F_GROW_PIPE).  Give it nonblocking sockets: pipes are never waited
 * for inside a call (SPLICE_F_NONBLOCK), and a blocking pipe or terminal
 * source is polled before it is read, but a write to a blocking socket or
 * terminal waits until it is done.  Not thread-safe: one thread at a time
 * per fan-out; different fan-outs in different threads are fine.
 */
struct zcio_fanout;
struct pollfd;

/* Flags of zcio_fanout_add(). */
#define ZCIO_FANOUT_DROP (1u << 0)  /* drop this destination when it falls behind */

/* What became of a destination (zcio_fanout_dest.state). */
enum zcio_fanout_state {
	ZCIO_FANOUT_ACTIVE = 0,  /* receiving */
	ZCIO_FANOUT_DONE,        /* the source ended and it has every byte */
	ZCIO_FANOUT_REMOVED,     /* removed by zcio_fanout_remove() */
	ZCIO_FANOUT_CLOSED,      /* its reader went away: err is -EPIPE or -ECONNRESET */
	ZCIO_FANOUT_FAILED,      /* another error, in err */
	ZCIO_FANOUT_DROPPED,     /* ZCIO_FANOUT_DROP, and it fell too far behind */
};

/* One destination, as zcio_fanout_dest(), _remove() and _removed() report it. */
struct zcio_fanout_dest {
	int32_t id;          /* what zcio_fanout_add() returned */
	int32_t fd;
	uint32_t flags;      /* ZCIO_FANOUT_* given to zcio_fanout_add() */
	int32_t state;       /* enum zcio_fanout_state */
	int32_t err;         /* -errno behind CLOSED or FAILED, else 0 */
	int32_t wait;        /* ZCIO_WAIT_OUT while the fan-out waits for its fd */
	uint64_t joined_at;  /* stream offset of its first byte */
	uint64_t held;       /* taken for it, not yet delivered (discarded when
	                        it is removed) */
	uint64_t lag;        /* bytes the fan-out has taken that it has not
	                        (when it was removed, for removed ones) */
	struct zcio_stats stats; /* its deliveries: stats.bytes is what reached
	                            its fd, stats.path_bytes how, stats.fallback why */
	uint64_t reserved[4];
};

/*
 * Create a fan-out reading from in (any fd kind but a directory) and store
 * it in *fanout; it has no destination yet.  opts (may be NULL):
 * ZCIO_F_COPY (never tee or splice: the read-once, write-to-each baseline),
 * ZCIO_F_STABLE (copy from a regular-file source), ZCIO_F_GROW_PIPE (grow a
 * source pipe and destination pipes to pipe_size), pipe_size (capacity of
 * the intake pipe and of the destinations' pipes; 0: 1 MiB, at most
 * pipe-max-size; it also sizes the copy buffer).  Other options are not
 * used.  No pipe is taken until the first pump.  Returns 0, or -EINVAL
 * (NULL fanout), -ENOMEM, -EBADF, -EISDIR.
 */
int zcio_fanout_new(int in, const struct zcio_opts *opts, struct zcio_fanout **fanout);

/*
 * Add a destination: fd receives every byte the fan-out takes from its
 * source from now on (see Positions above).  flags: 0 (block) or
 * ZCIO_FANOUT_DROP.  May be called at any time, also between pumps of a
 * running stream; the new destination is served from the next pump.
 * Returns its id (>= 0, never reused by this fan-out), or -EINVAL (bad
 * flags), -EBADF, -EISDIR, -ENOMEM.  A source that has already ended
 * gives nothing: the destination is DONE at once.
 */
int zcio_fanout_add(struct zcio_fanout *fanout, int fd, uint32_t flags);

/*
 * Remove destination id now, whatever it holds (its bytes are discarded:
 * info->held says how many), or take back a destination the fan-out removed
 * by itself and has not yet reported through zcio_fanout_removed().  info
 * (may be NULL) gets its final state (ZCIO_FANOUT_REMOVED, or the state it
 * was removed with).  Its fd is not closed.  Returns 0, or -ENOENT for an
 * unknown id.
 */
int zcio_fanout_remove(struct zcio_fanout *fanout, int id, struct zcio_fanout_dest *info);

/*
 * Move bytes: take from the source and deliver to every destination until
 * nothing more can move without waiting, the source ends, or the fan-out
 * has taken max bytes from its source in this call (0: no limit).
 * Returns:
 *
 *   -EAGAIN  nothing more can move now: wait for the fds
 *            zcio_fanout_pollfds() lists, then call again.  An fd is listed
 *            only after it returned EAGAIN itself (and has not been seen
 *            ready since), so edge-triggered loops do not stall; a source
 *            whose bytes cannot be taken because a destination is behind
 *            is not listed, so level-triggered loops do not spin.
 *   0        the source has ended and every active destination has every
 *            byte (they are all ZCIO_FANOUT_DONE); also with no
 *            destination left.
 *   > 0      max bytes were taken: call again without waiting.
 *   -errno   the source failed (-EIO, -ECONNRESET...), and every byte
 *            taken before the failure has been delivered: the error takes
 *            the place of 0.  Destination errors are never returned here:
 *            those destinations are removed (see zcio_fanout_removed()).
 *            -ENOMEM and -EIO may also come from the fan-out itself.
 *
 * Destinations removed by this call (closed, failed, dropped) are queued
 * for zcio_fanout_removed(); check it after each pump.  stats (may be NULL)
 * adds up every destination: last_bytes is what this call delivered to all
 * of them together, path_bytes splits that by path (ZCIO_PATH_TEE: via a
 * tee()d pipe; ZCIO_PATH_SPLICE_PIPE: spliced on from the intake;
 * ZCIO_PATH_COPY: written from memory), pending is what the fan-out holds
 * (intake and destinations' pipes), wait is ZCIO_WAIT_IN when the source is
 * among the fds to wait for, else ZCIO_WAIT_OUT.
 */
int64_t zcio_fanout_pump(struct zcio_fanout *fanout, uint64_t max, struct zcio_stats *stats);

/*
 * After a pump returned -EAGAIN: fill fds[0 .. n-1] with the fds to wait
 * for and their events (POLLIN for the source, POLLOUT for destinations),
 * revents zeroed, ready for poll().  Returns how many entries there are,
 * which may be more than n (then only n were written; call again with a
 * larger array), or 0 when there is nothing to wait for (the fan-out is
 * done, or the last pump did not return -EAGAIN).  For epoll, register
 * every fd once (edge-triggered is fine) and pump on any event instead.
 */
int zcio_fanout_pollfds(const struct zcio_fanout *fanout, struct pollfd *fds, unsigned int n);

/*
 * Take the next destination the fan-out removed by itself (closed, failed,
 * dropped), oldest first, into *info.  Returns 1 when one was taken (its id
 * is then forgotten; the caller may close its fd), 0 when there is none,
 * -EINVAL for a NULL argument.
 */
int zcio_fanout_removed(struct zcio_fanout *fanout, struct zcio_fanout_dest *info);

/* A destination's current state.  Returns 0, or -ENOENT for an id that is
 * not (or no longer) in the fan-out. */
int zcio_fanout_dest(const struct zcio_fanout *fanout, int id, struct zcio_fanout_dest *info);

/* Bytes taken from the source so far: the join offset of a destination
 * added now. */
uint64_t zcio_fanout_position(const struct zcio_fanout *fanout);

/* Active destinations (added, not removed; DONE ones included). */
unsigned int zcio_fanout_count(const struct zcio_fanout *fanout);

/* Free the fan-out and its pipes; held bytes are discarded.  The fds stay
 * open.  NULL ok. */
void zcio_fanout_free(struct zcio_fanout *fanout);

/* ---- the pipe pool ------------------------------------------------------ */

struct zcio_pool_stats {
	uint32_t live;          /* pipes zcio holds open, process-wide */
	uint32_t idle;          /* of those, idle in the calling thread's pool */
	uint32_t max_live;      /* the cap; past it, zcio copies */
	uint32_t clamped;       /* pipes refused because the kernel clamped them */
	uint64_t created;       /* pipes created, process-wide */
	uint64_t reused;        /* pipes taken from a pool, process-wide */
	uint64_t reserved[4];
};

/* Read the pool's counters.  Returns 0 or -EINVAL.  Thread-safe. */
int zcio_pool_stats(struct zcio_pool_stats *out);

/*
 * Set the cap on pipes zcio keeps open process-wide (default 256).  Past it,
 * operations copy instead of failing.  0 restores the default.  Returns 0.
 */
int zcio_pool_set_max(uint32_t max_live);

/* Close the idle pipes of the calling thread's pool.  Pools are also emptied
 * when a thread exits, and in the child after fork(). */
void zcio_pool_flush(void);

#ifdef __cplusplus
}
#endif

#endif /* ZCIO_H */
