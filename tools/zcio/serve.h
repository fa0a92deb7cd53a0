/*
 * serve.h - what the parts of `zcio serve` share: the configuration, the
 * worker (one thread, one event loop, its own listening socket, file cache
 * and access-log buffer), and the connection.
 *
 *   serve.c        the command: options, workers, signals, --stats
 *   serve_conn.c   connections: accept, read, send, timeouts, close
 *   serve_resp.c   a parsed request -> a queued response
 *   serve_files.c  the open-file cache and the confined open
 *   serve_list.c   directory listings
 *   serve_log.c    the buffered access log
 *
 * Nothing on the data path is shared between workers: a connection lives
 * and dies in the worker that accepted it, so only counters (relaxed
 * atomics) and the access log's final write cross threads.
 */
#ifndef ZCIO_SERVE_H
#define ZCIO_SERVE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>

#include "addr.h"
#include "http.h"
#include "loop.h"
#include "zcio.h"

#define SERVE_CMD "serve"

enum serve_send { SEND_PIPE, SEND_SENDFILE };

struct serve_config {
	const char *dir;
	int root_fd;                 /* the served directory (O_PATH) */
	struct addr listen;
	unsigned workers;
	unsigned max_conns;          /* in total; each worker takes its share */
	int header_timeout_ms;       /* to receive a whole request head */
	int keepalive_timeout_ms;    /* idle between requests */
	int send_timeout_ms;         /* without the client taking a byte */
	int grace_ms;
	struct http_limits limits;
	uint64_t max_body;           /* request bodies up to this are skipped */
	bool list, dotfiles, follow_symlinks;
	int send;                    /* enum serve_send */
	unsigned cache_entries;      /* per worker; 0: no cache */
	int cache_valid_ms;          /* re-check a cached file after this */
	uint32_t small_max;          /* bodies up to this go out with writev */
	int log_fd;                  /* access log, -1: none */
	bool stats;
	int stats_interval_s;
	uint32_t pipe_size;
};

extern struct serve_config serve_cfg;
extern atomic_bool serve_stopping, serve_forcing;

/* ---- the open-file cache (serve_files.c) --------------------------------- */

struct serve_file {
	char *path;                  /* key: the normalised path, "" for the root */
	uint32_t hash;
	struct serve_file *hnext;    /* hash chain */
	struct serve_file *lprev, *lnext; /* LRU, most recent first */
	bool in_table;
	unsigned refs;               /* the table's and each response's */
	int fd;
	bool is_dir;
	dev_t dev;
	ino_t ino;
	uint64_t size;
	int64_t mtime;               /* seconds */
	int64_t mtime_ns, ctime_ns;  /* for change detection */
	int64_t checked_ms;          /* last validation */
	char *data;                  /* the whole content when small, else NULL */
	/* Response fields that depend only on the file, ready to copy:
	 * Content-Type, Accept-Ranges, then (from validators_off) the
	 * validators Last-Modified and ETag, each line ending in CRLF. */
	char *fields;
	uint32_t fields_len, validators_off;
	char etag[64];
	uint32_t etag_len;
	char last_modified[HTTP_DATE_LEN + 1];
};

struct serve_files {
	struct serve_file **buckets;
	unsigned nbuckets;           /* power of two */
	unsigned count;
	struct serve_file *lru_head, *lru_tail;
	uint64_t hits, misses, revalidated, replaced;
};

int files_init(struct serve_files *fc);
void files_release(struct serve_files *fc);

/*
 * The file (or directory) at the normalised path, opened beneath the served
 * directory under the symlink rule, with a reference for the caller (drop it
 * with files_put).  A cached entry younger than cache_valid_ms is used as
 * it is; an older one is checked against the file system first and
 * replaced if the file changed.  Returns 0, or -errno: ENOENT/ENOTDIR (404),
 * EACCES/EPERM (403), ELOOP/EXDEV (a symlink refused: 403), ENODEV (neither
 * a regular file nor a directory: 403), ...
 */
int files_get(struct serve_files *fc, const char *path, int64_t now_ms, struct serve_file **out);
void files_put(struct serve_files *fc, struct serve_file *f);

/* Forget the validation time of f: the next files_get checks it. */
void files_suspect(struct serve_file *f);

/* ---- access log (serve_log.c) -------------------------------------------- */

struct serve_log {
	char *buf;
	size_t len, cap;
	int64_t sec;                 /* second the cached time is for */
	char time[40];               /* "10/Oct/2000:13:55:36 +0000" */
};

int alog_init(struct serve_log *lg);
void alog_release(struct serve_log *lg);
/* Append a Common Log Format line; written in batches by alog_flush. */
void alog_request(struct serve_log *lg, const char *peer, const char *line, size_t line_len,
		  int status, uint64_t bytes);
/* Write what is buffered (one write, under a lock shared by the workers). */
void alog_flush(struct serve_log *lg);

/* ---- directory listing (serve_list.c) ------------------------------------ */

/* HTML listing of the directory open at dirfd, titled with its URL path
 * (decoded).  Returns 0 and a malloc'd body in *out, or -errno. */
int list_render(int dirfd, const char *url_path, bool dotfiles, char **out, size_t *len);

/* ---- workers and connections (serve_conn.c) ------------------------------ */

enum conn_list_id { CL_HEADER, CL_IDLE, CL_SEND, CL_LINGER, CL_COUNT, CL_NONE = CL_COUNT };

struct conn_list {
	struct serve_conn *head, *tail;
};

struct serve_counters {
	atomic_ullong accepted, active, requests, bytes, status[6]; /* status[1..5]: 1xx..5xx */
	atomic_ullong small, linked, truncated, timeouts, evicted;
	atomic_ullong spliced, sendfiled, copied;
	atomic_ullong cache_hits, cache_misses;
};

struct serve_worker {
	struct loop loop;
	pthread_t thread;
	unsigned index;
	struct loop_watch listen;
	bool accepting;
	int64_t accept_resume_at;
	struct loop_task accept_task;
	struct conn_list lists[CL_COUNT];
	unsigned nconns, max_conns;
	struct serve_files files;
	struct serve_log log;
	struct zcio_stats st;        /* every pump of this worker */
	struct serve_counters counters;
	int64_t date_sec;
	char date[HTTP_DATE_LEN + 1];
};

/* An item of a connection's output queue: bytes of its header buffer
 * (ptr NULL) or of memory it holds a reference to. */
struct out_item {
	const char *ptr;
	uint32_t off;
	size_t len;
	struct serve_file *ref;      /* dropped once sent */
	char *owned;                 /* freed once sent */
};

#define OUT_ITEMS 32

/* The access-log line of a queued answer, written once its last byte is
 * out (or the connection ends), with the body bytes really sent. */
struct out_log {
	uint64_t end;                /* out_total when the answer is all out */
	uint64_t bytes;              /* its body */
	uint32_t line_off;           /* request line in the connection's logbuf */
	uint16_t line_len;
	uint16_t status;
};

enum conn_state { C_READ, C_BODY, C_SEND, C_LINGER };

struct serve_conn {
	struct loop_watch watch;
	struct serve_worker *w;
	struct serve_conn *prev, *next;   /* in w->lists[list] */
	int list;                         /* enum conn_list_id */
	int64_t deadline;
	struct loop_task task;            /* run again (budget, accept) */
	struct loop_task free_task;
	int state;                        /* enum conn_state */
	bool readable;                    /* the socket may hold unread bytes */
	bool closed;
	bool close_after;                 /* close once the output is sent */
	bool served;                      /* a request was answered */
	bool blocked_out;                 /* sending hit EAGAIN: wait for EPOLLOUT */
	uint32_t lingered;                /* bytes discarded while closing */

	char *in;                         /* received bytes */
	uint32_t in_head, in_len, in_cap; /* current request starts at in_head */
	struct http_parser parser;
	uint64_t discard;                 /* request body bytes still to skip */

	char *hdr;                        /* header bytes of queued responses */
	uint32_t hdr_len, hdr_cap;
	struct out_item out[OUT_ITEMS];
	unsigned out_first, out_n;
	uint64_t out_total, out_done;     /* bytes queued and written, this batch */
	struct out_log logs[OUT_ITEMS];   /* one answer takes one item at least */
	unsigned nlogs;
	char *logbuf;
	uint32_t logbuf_len, logbuf_cap;

	struct zcio_link *link;           /* a large body in flight */
	struct serve_file *link_file;
	uint64_t link_want, link_done, link_hdr;
	int link_status;
	char *link_line;                  /* its request line, for the log */
	uint32_t link_line_len;

	char peer[48];
};

/* Room for len more bytes at the end of the header buffer (not yet an
 * item); returns where to write them, or NULL. */
char *conn_hdr_reserve(struct serve_conn *c, size_t len);
/* The len bytes just written at the end of the header buffer become an
 * output item. */
void conn_out_hdr(struct serve_conn *c, size_t len);
/* Queue len bytes at p, kept alive by a new reference to f, or owned
 * (freed once sent). */
void conn_out_ref(struct serve_conn *c, const char *p, size_t len, struct serve_file *f, char *owned);
/* Start a large body: the header hdr, then len bytes of f from off. */
int conn_start_link(struct serve_conn *c, const char *hdr, size_t hdr_len, struct serve_file *f,
		    uint64_t off, uint64_t len, int status, const char *line, size_t line_len);

/* Count a response and log it (bytes: its body).  An answer still in the
 * output queue is logged once it has left, with what was really sent. */
void conn_log(struct serve_conn *c, int status, const char *line, size_t line_len, uint64_t bytes);

/* The Date header value for now, cached per second. */
const char *worker_date(struct serve_worker *w);

/* ---- responses (serve_resp.c) -------------------------------------------- */

/*
 * Answer the request whose head the parser has just accepted (its bytes
 * at base; r's spans refer to them), or, with resp_error, a head that
 * failed to parse with status (the bytes received so far at base).  Queues
 * the response on c, sets c->close_after when the connection must end
 * after it, and c->discard for a request body to skip.
 */
void resp_request(struct serve_conn *c, const char *base, const struct http_request *r);
void resp_error(struct serve_conn *c, int status, const char *base, size_t avail);

/* Worker threads (serve_conn.c). */
int worker_start(struct serve_worker *w, unsigned index, int listen_fd);
void *worker_main(void *arg);

#endif
