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
 *   file -> socket       splice through a pooled pipe, then sendfile
 *   file -> char device  sendfile
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
 *  - drop (ZCIO_FANOUT_DROP): a destination whose own pipe is full (its fd
 *    takes nothing) while it holds the others back (the intake is full of
 *    bytes it has not taken, or a destination ahead of it waits for bytes
 *    it has not taken: tee() duplicates only from the front of the intake)
 *    is removed and reported as ZCIO_FANOUT_DROPPED once it has done so
 *    for opts->timeout_ms (default 100 ms).  It is then at most the
 *    intake's capacity behind the fan-out's position, on top of what its
 *    own pipe holds, and the others wait for it at most that long.
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
 * pipe-max-size; it also sizes the copy buffer), timeout_ms (how long a
 * ZCIO_FANOUT_DROP destination may hold the others back before it is
 * dropped; 0: 100 ms; negative: no delay).  Other options are not used.
 * No pipe is taken until the first pump.  Returns 0, or -EINVAL
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
 * was removed with).  Its fd is not closed.  Pump afterwards: if it was
 * holding the others back, they can move now, and none of their fds will
 * say so.  Returns 0, or -ENOENT for an unknown id.
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
 * After a pump returned -EAGAIN: how many milliseconds the caller may wait
 * for the fds before pumping again anyway (a drop destination's time to
 * catch up runs out then), 0 to pump at once, or -1 when there is no such
 * deadline.  Pass it as poll()'s or epoll_wait()'s timeout.
 */
int zcio_fanout_timeout(const struct zcio_fanout *fanout);

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

/* True once the source has ended (or failed), whether or not every
 * destination has all its bytes yet. */
int zcio_fanout_source_done(const struct zcio_fanout *fanout);

/* Active destinations (added, not removed; DONE ones included). */
unsigned int zcio_fanout_count(const struct zcio_fanout *fanout);

/* Free the fan-out and its pipes; held bytes are discarded.  The fds stay
 * open.  NULL ok. */
void zcio_fanout_free(struct zcio_fanout *fanout);

/* ---- calibrated thresholds ---------------------------------------------- */

/*
 * Sizes from which a zero-copy mechanism beats copying, per route.  `zcio
 * calibrate` measures them on this machine and writes them to a file the
 * library reads once, on first use (thread-safe):
 *
 *   $ZCIO_THRESHOLDS when set (set but empty: no file at all),
 *   else $HOME/.config/zcio/thresholds.
 *
 * The file is text, one "key value" pair per line; '#' starts a comment,
 * blank lines and unknown keys are ignored (a newer file works with an
 * older library).  A value is a byte count, optionally with a suffix k, M
 * or G (powers of 1024), or "never" (copying won at every size).  Keys are
 * the names zcio_threshold_name() gives.  A key missing from the file, or
 * a value that does not parse, keeps its built-in value.  zcio_copy() uses
 * one value for every route, "copy"; the per-route file_pipe, file_socket
 * and socket_socket are measured and reported (calibrate sets "copy" to
 * the largest of them).
 */
enum zcio_threshold_key {
	ZCIO_THR_COPY = 0,         /* "copy": the default of
	                              zcio_opts.copy_threshold for zcio_copy(),
	                              zcio_send_file() (ZCIO_COPY_THRESHOLD in
	                              the environment overrides it) */
	ZCIO_THR_FILE_PIPE,        /* "file_pipe": splice() file -> pipe */
	ZCIO_THR_FILE_SOCKET,      /* "file_socket": sendfile() file -> socket */
	ZCIO_THR_SOCKET_SOCKET,    /* "socket_socket": splice() through a pipe */
	ZCIO_THR_MEM_PIPE,         /* "memory_pipe": vmsplice() (zcio_ring) */
	ZCIO_THR_MEM_FILE,         /* "memory_file": vmsplice() + splice() into
	                              a file (zcio_ring) */
	ZCIO_THR_MEM_SOCKET,       /* "memory_socket": send(MSG_ZEROCOPY)
	                              (zcio_zcsend, zcio_ring) */
	ZCIO_THR_MEM_SOCKET_URING, /* "memory_socket_uring": io_uring SEND_ZC */
	ZCIO_THR_COUNT
};

/* A threshold meaning "never use zero-copy here". */
#define ZCIO_THRESHOLD_NEVER UINT64_MAX

/* The threshold in effect for key (enum zcio_threshold_key), in bytes, or
 * ZCIO_THRESHOLD_NEVER; 0 for an unknown key.  Thread-safe. */
uint64_t zcio_threshold(int key);

/* The key's name in the thresholds file ("memory_socket"); NULL if unknown. */
const char *zcio_threshold_name(int key);

/*
 * Where the thresholds in effect come from: writes the path of the file
 * that was read into buf (at most len bytes with the NUL), or "" when
 * none was (no file, unreadable, or $ZCIO_THRESHOLDS empty: built-in
 * values).  Returns the length of the path, like snprintf, or -EINVAL.
 */
int zcio_threshold_source(char *buf, size_t len);

/* ---- zero-copy sends: MSG_ZEROCOPY -------------------------------------- */

/*
 * A zcsend sends from the caller's memory to a TCP socket with
 * send(MSG_ZEROCOPY): the kernel pins the pages and transmits from them
 * instead of copying.  The bytes of a send belong to the kernel until its
 * completion arrives on the socket's error queue, which can be long after
 * send() returned: when the peer has acknowledged them, or when a receiver
 * on this host has taken its copy.  zcio reads the error queue
 * (recvmsg(MSG_ERRQUEUE), sock_extended_err ranges with origin
 * SO_EE_ORIGIN_ZEROCOPY) and matches the ranges to the sends.
 *
 * The rule: every zcio_zcsend_send() that accepts bytes yields exactly one
 * completion of its cookie, which zcio_zcsend_reap() reports in the order of
 * the sends.  Until then the bytes that call accepted must not be written.
 * Reap regularly: a cookie is kept (a few bytes) until it is reported.
 *
 * Sends that copy (their cookie still completes, in order, at the next
 * reap; the buffer could have been reused at once):
 *  - below the threshold: opts->copy_threshold, else
 *    zcio_threshold(ZCIO_THR_MEM_SOCKET);
 *  - ZCIO_F_COPY, or a socket without MSG_ZEROCOPY (SO_ZEROCOPY refused:
 *    unix sockets, old kernels);
 *  - once a completion says the kernel copied anyway
 *    (SO_EE_CODE_ZEROCOPY_COPIED: loopback, any receiver on this host,
 *    including one behind a veth; a device without scatter-gather): the
 *    copy was made late, after pinning, so zero-copy is turned off for this
 *    zcsend for good;
 *  - a send(MSG_ZEROCOPY) that failed with ENOBUFS (net.core.optmem_max or
 *    RLIMIT_MEMLOCK used up by pages in flight) is made again at once
 *    without MSG_ZEROCOPY.  zcio never waits for completions to free that
 *    memory (ENOBUFS raises no POLLERR: waiting could deadlock); zero-copy
 *    resumes after the next completion.
 *
 * Event loops: pending completions make the socket report POLLERR
 * (EPOLLERR).  Here that is not a failure: call zcio_zcsend_reap().  poll()
 * and epoll report it even when not asked for.  A real socket error comes
 * back from the next send.  Sends never block (MSG_DONTWAIT); the socket's
 * own flags are not changed, but SO_ZEROCOPY is set on it.  The socket
 * must not be given MSG_ZEROCOPY sends by anyone else (the kernel numbers
 * them per socket), nor have its error queue read by anyone else while
 * zero-copy sends are in flight (zcio reads it only then).
 *
 * Not thread-safe: one thread at a time per zcsend.  The socket stays the
 * caller's; close it after zcio_zcsend_free().
 *
 * With ZCIO_ZCSEND_URING the zero-copy sends go through io_uring instead
 * (IORING_OP_SEND_ZC, the zcsend's own ring), with the same rule and the
 * same calls.  A SEND_ZC yields two completions: its result (bytes sent,
 * maybe fewer than asked, or -errno) and, flagged IORING_CQE_F_NOTIF, the
 * notification that the kernel has let go of the pages; only the
 * notification completes the cookie.  Each zcio_zcsend_send() submits one
 * request and reads its result before returning, so a short send returns
 * a short count as send() does and later sends cannot overtake it.  A
 * notification whose res has IORING_NOTIF_USAGE_ZC_COPIED (Linux 6.2+,
 * asked for with IORING_SEND_ZC_REPORT_USAGE) counts as a COPIED
 * completion and turns zero-copy off as above; before 6.2 the kernel does
 * not say, and completed_copied stays 0.  Notifications arrive on the
 * ring, not on the socket: wait for them on zcio_zcsend_info().wait_fd.  Sends below zcio_threshold(ZCIO_THR_MEM_SOCKET_URING) copy.
 * SEND_ZC's ENOBUFS is -ENOMEM: a ring made by a process without
 * CAP_IPC_LOCK charges each request's pages (plus two) to RLIMIT_MEMLOCK
 * until its notification; a request over the limit is made again at once
 * by copying, as above (info.enobufs counts it), unless it came from a
 * region registered with zcio_zcsend_register(), charged once instead.
 * Where io_uring cannot be used (no io_uring: ENOSYS; io_uring_disabled
 * or seccomp: EPERM; RLIMIT_MEMLOCK too low for the ring before 5.12:
 * ENOMEM; no SEND_ZC before 6.0, or zcio built without liburing:
 * EOPNOTSUPP) the zcsend uses MSG_ZEROCOPY and zcio_zcsend_info() says why
 * (uring 0, uring_errno).
 */
struct zcio_zcsend;

/* Flags of zcio_zcsend_new(). */
#define ZCIO_ZCSEND_ALWAYS (1u << 0)  /* MSG_ZEROCOPY for every send whatever
                                         its size, kept after COPIED
                                         completions (for measurements) */
#define ZCIO_ZCSEND_URING  (1u << 1)  /* io_uring SEND_ZC instead of
                                         MSG_ZEROCOPY where the kernel has it */

/*
 * Create a zcsend on the TCP socket sock.  flags: 0, ZCIO_ZCSEND_ALWAYS,
 * ZCIO_ZCSEND_URING (one io_uring per zcsend: an fd and a few pages).
 * opts (may be NULL): ZCIO_F_COPY, copy_threshold (sends shorter than this
 * copy; 0: zcio_threshold(ZCIO_THR_MEM_SOCKET); 1: never copy for size).
 * Returns 0 and sets *zs, or -EINVAL, -ENOMEM, -ENOTSOCK, -EBADF (and with
 * ZCIO_ZCSEND_URING, -EMFILE, -ENFILE: no fd for the ring).  A socket that
 * refuses SO_ZEROCOPY is not an error: its sends copy; nor is an io_uring
 * that cannot be used: MSG_ZEROCOPY takes over.
 */
int zcio_zcsend_new(int sock, uint32_t flags, const struct zcio_opts *opts,
		    struct zcio_zcsend **zs);

/*
 * Send up to len bytes of buf under cookie (any value, for the caller).
 * Returns the number of bytes accepted (1 .. len: send the rest with
 * another call), -EAGAIN when the socket takes nothing now (poll it for
 * POLLOUT; stats->wait is ZCIO_WAIT_OUT), or -errno (-EPIPE, -ECONNRESET,
 * -ENOMEM...).  A call that returns an error accepted nothing and yields no
 * completion.  stats (may be NULL): path_bytes[ZCIO_PATH_MSG_ZEROCOPY] or
 * [ZCIO_PATH_COPY] count the bytes, and a fallback is recorded once per
 * reason.
 */
int64_t zcio_zcsend_send(struct zcio_zcsend *zs, const void *buf, size_t len,
			 uint64_t cookie, struct zcio_stats *stats);

/*
 * Read the completions that have arrived (never waits) and store the
 * cookies of the oldest completed sends, in send order, into cookies[0 ..
 * n-1].  Returns how many were stored (0: none yet), or -errno from the
 * error queue.  cookies may be NULL with n 0: completions are read and kept
 * for later calls.  The bytes of every reported send may be reused.
 */
int zcio_zcsend_reap(struct zcio_zcsend *zs, uint64_t *cookies, unsigned int n,
		     struct zcio_stats *stats);

/* Sends whose cookie has not been reported by zcio_zcsend_reap() yet. */
uint64_t zcio_zcsend_pending(const struct zcio_zcsend *zs);

/* Why new sends do not use zero-copy (zcio_zcsend_info.off). */
enum zcio_zcsend_off {
	ZCIO_ZCSEND_ON = 0,       /* they do, above the threshold */
	ZCIO_ZCSEND_OFF_FORCED,   /* ZCIO_F_COPY */
	ZCIO_ZCSEND_OFF_UNSUPPORTED, /* SO_ZEROCOPY refused (off_errno says why) */
	ZCIO_ZCSEND_OFF_COPIED,   /* a completion said the kernel copied */
};

/* What a zcsend has done: proof of whether zero-copy really happened. */
struct zcio_zcsend_info {
	uint64_t zc_sends;        /* sends made with MSG_ZEROCOPY */
	uint64_t zc_bytes;
	uint64_t copy_sends;      /* sends made without it */
	uint64_t copy_bytes;
	uint64_t notifications;   /* completion messages read (one may cover
	                             many sends) */
	uint64_t completed;       /* MSG_ZEROCOPY sends completed */
	uint64_t completed_copied; /* of those, marked "copied" by the kernel */
	uint64_t enobufs;         /* ENOBUFS (SEND_ZC: ENOMEM) answered with a
	                             plain send */
	uint64_t in_flight;       /* MSG_ZEROCOPY sends not completed yet */
	int32_t off;              /* enum zcio_zcsend_off */
	int32_t off_errno;        /* with ZCIO_ZCSEND_OFF_UNSUPPORTED */
	int32_t uring;            /* 1: zero-copy sends use io_uring SEND_ZC
	                             (zc_sends counts them) */
	int32_t uring_errno;      /* ZCIO_ZCSEND_URING asked, uring 0: why
	                             (ENOSYS, EPERM, ENOMEM, EOPNOTSUPP) */
	int32_t wait_fd;          /* poll this fd for wait_events, then reap:
	                             the socket with 0 (MSG_ZEROCOPY: POLLERR
	                             comes unasked), or the zcsend's io_uring
	                             with POLLIN; valid until zcio_zcsend_free() */
	int32_t wait_events;
	/* Taken from what was reserved[4]: the struct keeps its size. */
	uint64_t fixed_sends;     /* of zc_sends, made from the registered
	                             region (zcio_zcsend_register) */
	uint64_t fixed_bytes;
	int32_t registered;       /* 1: a region is registered */
	int32_t register_errno;   /* the last zcio_zcsend_register() found
	                             no use for its region: why (EOPNOTSUPP:
	                             this zcsend does not use io_uring; ENOMEM,
	                             EFAULT, EPERM, ENOSYS: the kernel refused) */
	uint64_t reserved[1];
};

/* Fill *info.  Returns 0 or -EINVAL. */
int zcio_zcsend_info(const struct zcio_zcsend *zs, struct zcio_zcsend_info *info);

/* The most zcio_zcsend_register() takes: the kernel's limit for one
 * registered buffer. */
#define ZCIO_ZCSEND_REGISTER_MAX ((size_t)1 << 30)

/*
 * Register the region [base, base + len) that a zcsend with io_uring
 * sends from, once, instead of having the kernel pin and unpin the pages
 * of every send (io_uring registered buffers): zero-copy sends whose bytes
 * lie wholly inside the region go as fixed-buffer SEND_ZC (counted in
 * zcio_zcsend_info().fixed_sends); others, such as one that crosses the
 * region's end, go as before.  The buffer rules do not change: a send's
 * bytes stay the kernel's until its cookie is reaped.  Pinned pages are
 * counted once, at registration, against RLIMIT_MEMLOCK for a process
 * without CAP_IPC_LOCK, instead of per send in flight.
 *
 * Replaces the region registered before; len 0 (base may be NULL)
 * unregisters.  The region must stay mapped while registered: until
 * another call replaces it, or zcio_zcsend_free().  len is at most
 * ZCIO_ZCSEND_REGISTER_MAX.
 *
 * Returns 0 also when the region cannot be used and sends simply go
 * unregistered: info.registered says 0, register_errno why.  That is so
 * for a zcsend without io_uring (MSG_ZEROCOPY, ZCIO_F_COPY, zcio built
 * without liburing: EOPNOTSUPP), and when the kernel refuses: RLIMIT_MEMLOCK
 * (ENOMEM), memory it cannot pin for long, such as a shared mapping of a
 * regular file (EFAULT; EOPNOTSUPP from older kernels), or a seccomp
 * filter on io_uring_register (EPERM, ENOSYS).  Returns -EINVAL (zs NULL,
 * base NULL with len, len too large) or -EBUSY while any zero-copy send is
 * in flight (zcio_zcsend_pending() tells; reap them first): the
 * registration is then unchanged.  Not thread-safe, like every zcsend call.
 */
int zcio_zcsend_register(struct zcio_zcsend *zs, void *base, size_t len);

/* Free the zcsend.  Sends still in flight stay safe for the kernel (it
 * holds the pages), but their buffers must stay untouched until the socket
 * is closed and the peer has the data.  The socket is not closed.  NULL ok. */
void zcio_zcsend_free(struct zcio_zcsend *zs);

/* ---- the vmsplice ring: zero-copy from user memory ---------------------- */

/*
 * A ring is memory the caller writes into and zcio moves to one
 * destination, without copying where that is safe.  The writer asks for a
 * span (zcio_ring_reserve), fills it, commits what it wrote
 * (zcio_ring_commit); a pump (zcio_ring_pump) hands committed bytes to the
 * destination, nonblocking, and says which fd to wait for, like a link.
 * The writer never asks the kernel whether space is free again: the ring
 * knows, from the rules below.
 *
 *  - Pipe destination, with ZCIO_F_VMSPLICE: committed bytes are
 *    vmsplice()d into the pipe: the pipe holds references to the ring's
 *    pages, and its reader copies out of them.  A pipe holds at most its
 *    capacity C in bytes, so once the ring has handed over position P,
 *    every byte before P - C has been consumed.  The ring is at least 2 x C
 *    and the writer gets only space outside [P - C, P): it can fill one
 *    half while the pipe holds the other, and never asks.  The ring reads C
 *    once: do not grow that pipe while the ring writes into it.  This holds
 *    only if the pipe's reader copies the bytes out (read(), or splice()
 *    into a file): a reader that splice()s or tee()s them on to another
 *    pipe or a socket (pv, zcio cat, newer cat(1)) takes the page
 *    references with it, and would see the ring's later bytes.  The ring
 *    cannot tell, so without ZCIO_F_VMSPLICE a pipe gets write() copies.
 *  - File (regular file, block or character device): bytes are
 *    vmsplice()d into a pool pipe and spliced into the file, which copies
 *    them into the page cache during the call; space is free once that
 *    call returns.  O_APPEND files and terminals get write().
 *  - Stream socket: NOT by vmsplice + splice.  splice() into a socket puts
 *    page references into the socket's buffers, held until the peer
 *    acknowledges the data, by retransmit copies in the device queues,
 *    and, for a receiver on this host (loopback, veth), in the receiver's
 *    socket until it reads, long after the ACK.  Neither the pipe's
 *    capacity nor the unacknowledged byte count (SIOCOUTQ) says when the
 *    pages are free.  So the ring sends from its memory with
 *    send(MSG_ZEROCOPY) (see zcio_zcsend), and space becomes free only when
 *    the kernel's completion for it arrives; or, below the threshold, when
 *    zero-copy is off, or after COPIED completions, with a plain send(),
 *    which frees the space at once.
 *
 * Below the threshold (opts->copy_threshold, else zcio_threshold() for
 * memory_pipe, memory_file or memory_socket), a pump step that finds fewer
 * committed bytes than that copies them (write()/send()).  copy_threshold
 * 1 means zero-copy always, and for a socket also after COPIED completions
 * (for tests and measurements).
 *
 * The ring's memory is mapped twice back to back, so every span is
 * contiguous, also across the wrap.  Not thread-safe: one thread at a time
 * per ring.  The destination fd stays the caller's and keeps its flags
 * (for a socket, SO_ZEROCOPY is set); give it a nonblocking fd, or pumps
 * may block on it (sockets never block: MSG_DONTWAIT).
 */
struct zcio_ring;

/* The wait of zcio_stats.wait meaning: poll the destination with events 0
 * (POLLERR is always reported): zero-copy completions are what is missing. */
#define ZCIO_WAIT_COMPLETION 3

/* zcio_ring_new(): the destination pipe's reader copies what it reads
 * (read()), so the ring may vmsplice() its pages into the pipe. */
#define ZCIO_F_VMSPLICE    (1u << 16)

/*
 * Create a ring writing to out: a pipe or FIFO, a regular file, a block or
 * character device, or a stream socket.  size: the ring's bytes (0: twice
 * the pipe capacity, 2 MiB by default), rounded up to a page, and raised to
 * twice the capacity of a destination pipe.  opts (may be NULL):
 * ZCIO_F_COPY (always write()/send()), ZCIO_F_VMSPLICE (vmsplice() into a
 * destination pipe whose reader copies), copy_threshold, pipe_size (the
 * pool pipe of a file destination; with ZCIO_F_GROW_PIPE, grow a
 * destination pipe to it first).
 * Returns 0 and sets *ring, or -EINVAL (datagram socket, NULL ring),
 * -EISDIR, -ENOMEM, -EBADF, -EMFILE.
 */
int zcio_ring_new(int out, size_t size, const struct zcio_opts *opts,
		  struct zcio_ring **ring);

/* The ring's size in bytes: spans of up to half of it can be reserved. */
size_t zcio_ring_size(const struct zcio_ring *ring);

/*
 * Get a span of at least min bytes (1 .. zcio_ring_size() / 2) to write:
 * sets *span and returns its length (>= min; all the free space, which may
 * be more).  The span stays valid, and the writer may write into it, until
 * it commits.  Returns -EAGAIN when less than min bytes are free: pump (a
 * pump that returns 0 leaves half the ring free); -EINVAL for a bad min.
 * Never calls the kernel.
 */
int64_t zcio_ring_reserve(struct zcio_ring *ring, size_t min, void **span);

/*
 * Commit the first n bytes of the span (n <= what reserve returned): they
 * will be delivered after everything committed before.  The span is gone:
 * reserve again to write more.  Returns 0 or -EINVAL.  Never calls the
 * kernel.
 */
int zcio_ring_commit(struct zcio_ring *ring, size_t n);

/* Copy len bytes in (reserve, memcpy, commit).  Returns len, -EAGAIN
 * (less than len free: pump), or -EINVAL (len above half the ring). */
int64_t zcio_ring_write(struct zcio_ring *ring, const void *buf, size_t len);

/*
 * Hand committed bytes to the destination until it would block, or max
 * bytes (0: no limit) went in this call.  Returns:
 *
 *   0        every committed byte was handed over, and at least half the
 *            ring is free for the writer.
 *   > 0      max bytes were handed over: call again.
 *   -EAGAIN  poll stats->wait's way: ZCIO_WAIT_OUT (the destination is
 *            full: POLLOUT), ZCIO_WAIT_COMPLETION (only zero-copy
 *            completions can free space: poll the socket, events 0).
 *   -errno   from the destination (-EPIPE, -ENOSPC, -ECONNRESET...);
 *            committed bytes not handed over stay in the ring.
 *
 * "Handed over" means: in the pipe, written to the file, accepted by the
 * socket.  stats (may be NULL): which path moved the bytes (vmsplice,
 * also for file destinations, msg-zerocopy, copy); pending is
 * zcio_ring_pending().
 */
int64_t zcio_ring_pump(struct zcio_ring *ring, uint64_t max, struct zcio_stats *stats);

/*
 * Pump until every committed byte is handed over, waiting with poll() for
 * the destination (timeout_ms > 0 bounds each wait: -ETIMEDOUT).  Returns 0
 * or the pump's -errno.
 */
int zcio_ring_flush(struct zcio_ring *ring, int timeout_ms, struct zcio_stats *stats);

/* Bytes committed and not yet handed to the destination. */
uint64_t zcio_ring_pending(const struct zcio_ring *ring);

/*
 * Free the ring.  Bytes not handed over are discarded (flush first).  The
 * pages the destination still references stay alive in the kernel until it
 * lets go, so this is safe at any time.  The fd is not closed.  NULL ok.
 */
void zcio_ring_free(struct zcio_ring *ring);

/* ---- zero-copy receive: TCP_ZEROCOPY_RECEIVE ----------------------------- */

/*
 * A zcrecv receives from a TCP socket by mapping the received pages into
 * the process (getsockopt(TCP_ZEROCOPY_RECEIVE) on a window mmap()ed from
 * the socket) instead of copying them, and receives with recv() what
 * cannot be mapped: bytes that do not fill whole, page-aligned pages in the
 * kernel's buffers (small segments, an MSS that is not a multiple of the
 * page size, pages shared with a sender on this host), and everything when
 * the kernel or the socket has no zero-copy receive (unix sockets, old
 * kernels, ZCIO_F_COPY).  The caller sees only views of the stream, in
 * order, and stats say which way the bytes came:
 * path_bytes[ZCIO_PATH_ZEROCOPY_RECV] (mapped) and [ZCIO_PATH_COPY].
 *
 * When nothing can be mapped for a while (16 calls in a row), the zcrecv
 * stops trying and only copies.  Not thread-safe: one thread at a time per
 * zcrecv.  The socket stays the caller's, and its flags are not changed:
 * on a blocking socket next() waits for data.
 */
struct zcio_zcrecv;

/*
 * Create a zcrecv on socket sock.  opts (may be NULL): ZCIO_F_COPY (never
 * map), chunk (bytes per mapping window and copy buffer; 0: 512 KiB;
 * rounded to pages).  Returns 0 and sets *zr, or -EINVAL, -ENOMEM, -EBADF.
 */
int zcio_zcrecv_new(int sock, const struct zcio_opts *opts, struct zcio_zcrecv **zr);

/*
 * Receive: set *data to the next bytes of the stream and return how many
 * (1 .. max; max 0 means no limit).  The view is read-only and stays valid
 * until the next call on this zcrecv or zcio_zcrecv_free().  Returns 0 at
 * the end of the stream, -EAGAIN (nonblocking socket with nothing to
 * read: stats->wait is ZCIO_WAIT_IN), or -errno.
 */
int64_t zcio_zcrecv_next(struct zcio_zcrecv *zr, const void **data, size_t max,
			 struct zcio_stats *stats);

/* Free the zcrecv and its mapping; the socket is not closed.  NULL ok. */
void zcio_zcrecv_free(struct zcio_zcrecv *zr);

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
