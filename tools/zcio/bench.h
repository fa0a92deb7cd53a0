/*
 * bench.h - the insides of `zcio bench`, shared by tools/zcio/bench*.c.
 *
 *   bench.c            the command: options, scratch directory, scenarios
 *   bench_scenarios.c  what each scenario runs (tools, peers, plumbing)
 *   bench_case.c       one case: verification runs, interleaved timed runs,
 *                      medians, ratios, targets
 *   bench_proc.c       processes: spawn a pipeline, time it, collect rusage
 *   bench_data.c       test data: generation, hashing, page-cache residency
 *   bench_report.c     the comparison table and the JSON file
 *   bench_threshold.c  the in-process copy-threshold scenario
 *   bench_svc.c        servers under test: start, readiness, CPU, memory,
 *                      pipes held, stop; the stream pattern
 *   bench_relay.c      relay-stream, relay-many, relay-idle
 *   bench_http.c       serve-1k .. serve-64m (wrk against HTTP servers)
 *   bench_tee.c        tee-N and broadcast
 *   bench_calib.c      send-sizes and recv, from `zcio calibrate --report`
 *
 * Every timed command runs in a child process (the harness's own helpers
 * too, forked), so the CPU time of each run is the wait4() rusage of all
 * the processes in it: source, tool and sink.
 */
#ifndef ZCIO_BENCH_H
#define ZCIO_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>

#define BENCH_GIB (1024.0 * 1024.0 * 1024.0)
#define BENCH_MAX_TOOLS 12
#define BENCH_MAX_PATHS 12
#define BENCH_MAX_SYSCALLS 80
#define BENCH_MAX_TARGETS 10

/* ---- data: hashing and files (bench_data.c) ---- */

/* A fast non-cryptographic 64-bit hash of a byte stream.  It only has to
 * catch lost, duplicated, reordered or altered bytes, not adversaries. */
struct bench_hash {
	uint64_t lane[4];
	uint64_t len;
	unsigned char tail[32];
	unsigned ntail;
};

void bench_hash_init(struct bench_hash *h);
void bench_hash_update(struct bench_hash *h, const void *buf, size_t len);
uint64_t bench_hash_final(const struct bench_hash *h);

/* Write a file of len pseudo-random bytes (seeded); with sync, fsync it so
 * writeback does not disturb the timed runs.  Returns 0 or -errno. */
int bench_file_create(const char *path, uint64_t len, uint64_t seed, bool sync);
/* Read a whole file (page-caching it) into a running hash.  Returns the
 * number of bytes read or -errno. */
int64_t bench_file_hash(const char *path, struct bench_hash *h);
/* Percentage of a file's pages in the page cache (mincore), or -errno. */
double bench_file_cached(const char *path);

/* ---- processes (bench_proc.c) ---- */

enum bench_role { BENCH_SOURCE, BENCH_TOOL, BENCH_SINK, BENCH_ROLES };

/* What a forked helper reports back through shared memory. */
struct bench_shared {
	uint64_t bytes;
	uint64_t hash;
	int err; /* errno of the failure, 0 when fine */
};

struct bench_proc {
	enum bench_role role;
	char *const *argv;          /* a program to exec, or ... */
	int (*fn)(void *arg, struct bench_shared *sh); /* ... a function to fork */
	void *arg;
	struct bench_shared *shared; /* for fn; must be MAP_SHARED memory */
	int fd[3];                  /* becomes stdin, stdout, stderr */
	const char *in_path;        /* or opened as stdin in the child, blocking
	                               (a FIFO: it waits for its writer) */
	const char *cwd;            /* chdir here first, or NULL */
	/* filled by bench_procs_run */
	pid_t pid;
	int status;
	struct rusage ru;
	bool reaped;
};

/* Run the processes concurrently, wait for all, and return 0 with the
 * wall-clock time from the first fork to the last exit in *seconds.  The
 * fds in close_fds (the caller's ends of pipes and sockets) are closed, and
 * set to -1, once every process has its copy.  Returns -ETIMEDOUT (all
 * killed) after timeout_s, -EINTR when interrupted by SIGINT/SIGTERM, or
 * -errno of fork. */
int bench_procs_run(struct bench_proc *p, unsigned n, int *close_fds, unsigned nclose,
		    unsigned timeout_s, double *seconds);
/* user + system seconds of a reaped process */
double bench_proc_cpu(const struct bench_proc *p);
/* Exited with status 0? */
bool bench_proc_ok(const struct bench_proc *p);
/* "exit 1", "killed by signal 13 (Broken pipe)" */
const char *bench_proc_status(const struct bench_proc *p, char *buf, size_t len);

/* Forked helpers: fd 0 -> count (and hash); sendfile a file to fd 1. */
struct bench_reader_arg {
	bool hash;
	bool pattern;          /* compare with bench_pattern, cyclically */
};
int bench_reader(void *arg, struct bench_shared *sh);
int bench_sender(void *arg, struct bench_shared *sh); /* arg: path */

/* A connected loopback TCP pair (both CLOEXEC).  Returns 0 or -errno. */
int bench_tcp_pair(int *client, int *server);

/* Memory shared with forked helpers, one slot per role. */
struct bench_shared *bench_shared_get(enum bench_role role);

/* Set by SIGINT/SIGTERM: stop at the next opportunity. */
extern volatile int bench_stop;

/* ---- cases (bench_case.c) ---- */

enum bench_topo {
	BENCH_TOPO_PIPE,      /* tool | sink                     */
	BENCH_TOPO_DEVNULL,   /* tool > /dev/null                */
	BENCH_TOPO_FILE,      /* tool > OUT                      */
	BENCH_TOPO_OWN_FILE,  /* tool writes OUT itself (cp)     */
	BENCH_TOPO_TO_SOCK,   /* tool > socket; sink < socket    */
	BENCH_TOPO_FROM_SOCK, /* source > socket; tool < socket > OUT */
};

enum bench_sink {
	BENCH_SINK_READER,    /* forked reader: read() every byte, 128 KiB at a time */
	BENCH_SINK_PV,        /* pv -q > /dev/null: splices */
};

/* What a tool prints on stderr that proves what it moved. */
enum bench_parse {
	BENCH_PARSE_NONE,
	BENCH_PARSE_ZCIO,     /* `--stats` lines: "zcio: CMD: stats: PATH: N bytes" */
	BENCH_PARSE_DD,       /* "N bytes (...) copied" */
	BENCH_PARSE_SPLICE_LOOP, /* "splice-loop: N bytes in M calls" */
};

struct bench_run {
	unsigned seq;          /* position in the order of all timed runs, from 1 */
	double seconds;
	double cpu[BENCH_ROLES];
	double cpu_total;
	int64_t bytes;         /* bytes proven moved (-1: nothing proves it) */
	uint64_t zc_bytes;     /* zero-copy bytes the tool reported */
	/* service cases only (NaN when not measured) */
	uint64_t requests;     /* request/response cases */
	double rps, p50_us, p99_us;
	double rss, pss, rss_start; /* bytes: the server's tree, loaded and at start */
	double pipes, fds;     /* pipe fds and all fds of the server's tree */
};

struct bench_count {
	char name[24];
	uint64_t n;
};

struct bench_target {
	const char *tool, *peer;
	const char *metric;    /* ratios: "throughput", "cpu", "time", "tool_cpu",
	                          "rps", "p99"; absolute (peer NULL): "rss_mib",
	                          "pipes" */
	double want;           /* ratio tool/peer (or value) must be >= or <= */
	double got;            /* NaN when unknown */
	int met;               /* 1 met, 0 missed, -1 unknown */
};

struct bench_tool {
	const char *name;      /* unique within the case */
	char **argv;
	const char *skip;      /* why it did not run, or NULL */
	const char *stdin_path; /* its stdin, instead of the case's */
	enum bench_parse parse;
	bool zcio;             /* a zcio command: its --stats count */
	/* results */
	struct bench_run *runs;
	unsigned nruns;
	char *error;           /* first failure, or NULL */
	int checksum_ok;       /* 1, 0, -1 not checked */
	uint64_t checksum;     /* hash of its output in the verification run */
	int zc_happened;       /* 1, 0, -1 unknown */
	const char *zc_source; /* "zcio --stats", "strace", "splice-loop", NULL */
	const char *zc_unit;   /* "bytes" or "calls" */
	struct bench_count paths[BENCH_MAX_PATHS];
	unsigned npaths;
	struct bench_count syscalls[BENCH_MAX_SYSCALLS];
	unsigned nsyscalls;
	char fallbacks[256];   /* zcio's fallback lines, ';'-joined */
	uint64_t zcio_syscalls; /* zcio's own count of data-moving syscalls */
	double med_seconds, bps, cpu_per_gib, cpu_role_per_gib[BENCH_ROLES];
	/* service cases: argv is the server's, with @PORT@ (where it listens),
	 * @TARGET@ (the backend's port), @CONF@ (conf, written per run),
	 * @DIR@ and @WWW@ replaced at each run */
	const char *conf;      /* config file template, or NULL */
	bool direct;           /* no server: the clients reach the backend (limit) */
	double rps, p50_us, p99_us, rss, pss, rss_start, pipes, fds; /* medians */
};

enum bench_kind {
	BENCH_KIND_STREAM,    /* a fixed number of bytes: time and throughput */
	BENCH_KIND_RR,        /* requests for a fixed time: req/s, latency */
	BENCH_KIND_IDLE,      /* idle connections: memory and pipes held */
};

struct bench_case;
struct bench_config;
/* A case's own way to run one tool once (service cases); verify: the
 * untimed checked run.  Returns 0, or -1 after bench_tool_fail(). */
typedef int (*bench_runner)(struct bench_case *c, struct bench_config *cfg,
			    struct bench_tool *t, bool verify, struct bench_run *run);

struct bench_case {
	const char *scenario;  /* "cat-pipe" */
	char id[32];           /* "cat-pipe.pv" */
	char title[160];
	enum bench_topo topo;
	enum bench_sink sink;
	const char *src;       /* input file (stdin of FROM_SOCK's source) */
	const char *stdin_path; /* stdin of the tool, or NULL for /dev/null */
	const char *out;       /* output file for FILE, OWN_FILE, FROM_SOCK */
	const char *cwd;       /* where tools run, or NULL */
	uint64_t bytes;        /* bytes each run must deliver */
	uint64_t hash;         /* hash of those bytes */
	const char *main_peer;
	unsigned runs;
	struct bench_tool tools[BENCH_MAX_TOOLS];
	unsigned ntools;
	struct bench_target targets[BENCH_MAX_TARGETS];
	unsigned ntargets;
	bool failed;           /* some run failed or a checksum was wrong */
	/* service cases */
	bench_runner runner;   /* NULL: the plumbing of topo */
	enum bench_kind kind;
	bool per_run_bytes;    /* bytes differ per run (fixed-time cases) */
	unsigned conns;        /* client connections, 0: not applicable */
	double duration;       /* seconds of a fixed-time run, 0: none */
	const char *plumbing;  /* how clients, server and backend connect */
	void *priv;            /* the scenario's own data */
};

struct bench_config {
	unsigned runs;
	uint64_t size;
	unsigned files;        /* small: number of files */
	const char *json;
	const char *base_dir;
	char dir[4096];        /* the scratch directory */
	char zcio[4096];       /* this program, run as the tool */
	char splice_loop[4096];
	const char *strace;    /* path, or NULL when unusable */
	char loadgen[4096];    /* build/bench/loadgen, or "" */
	uint64_t stream_size;  /* relay-stream and tee (default 4G, or --size) */
	double duration;       /* seconds of each fixed-time run (wrk, rr) */
	const char *netns;     /* --netns A:B for calibrate, or NULL */
	double row_seconds;    /* --row-seconds for calibrate's rows, or 0 */
	bool keep;
	unsigned seq;          /* runs so far, all cases */
	double load_start, load_end; /* 1-minute load average (-1: unknown) */
};

/* Add a tool to a case.  argv is copied (NULL-terminated list). */
struct bench_tool *bench_case_add(struct bench_case *c, const char *name,
				  enum bench_parse parse, bool zcio, char *const *argv);
void bench_case_skip(struct bench_case *c, const char *name, const char *why);
void bench_case_target(struct bench_case *c, const char *tool, const char *peer,
		       const char *metric, double want);
/* Record a tool's failure (the first one is kept) and mark the case failed. */
void bench_tool_fail(struct bench_tool *t, struct bench_case *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Fill t->syscalls from an `strace -f -c -S calls` summary file. */
void bench_parse_strace(const char *path, struct bench_tool *t);
/* A target whose metric is absolute (peer NULL), not a ratio. */
bool bench_target_absolute(const struct bench_target *g);
/* Does the metric want measured >= want (else <=)? */
bool bench_target_at_least(const struct bench_target *g);
/* Verify every tool once, then time them interleaved; fills results. */
int bench_case_run(struct bench_case *c, struct bench_config *cfg);
const struct bench_tool *bench_case_tool(const struct bench_case *c, const char *name);
void bench_case_free(struct bench_case *c);

/* ---- scenarios (bench_scenarios.c) ---- */

struct bench_scenario {
	const char *name;
	const char *summary;
	/* Prepare data, run its cases, print tables; cases are appended to
	 * the list for the JSON file. */
	int (*run)(struct bench_config *cfg);
};

extern const struct bench_scenario bench_scenarios[];
extern const unsigned bench_nscenarios;

/* Every case run so far, in order, for the JSON report and summary. */
struct bench_case *bench_case_new(struct bench_config *cfg, const char *scenario,
				  const char *id);
extern struct bench_case **bench_cases;
extern unsigned bench_ncases;

/* ---- services (bench_svc.c) ---- */

/* The stream every service scenario moves: a file of pseudo-random bytes,
 * repeated (byte k of a stream from offset o is pattern[(o + k) mod len]). */
struct bench_pattern {
	char path[4200];
	uint64_t len;
	const unsigned char *map;
	int fd;
};
extern struct bench_pattern bench_pattern;
int bench_pattern_make(struct bench_config *cfg);
bool bench_pattern_matches(uint64_t pos, const unsigned char *buf, size_t n);
/* Forked helper: write *(uint64_t *)arg bytes of the pattern, from offset
 * 0, into fd 1 (splice into a pipe, else sendfile, else write). */
int bench_pattern_source(void *arg, struct bench_shared *sh);
/* Does a file hold exactly len bytes of the pattern from offset 0? */
bool bench_pattern_file_ok(const char *path, uint64_t len);

struct bench_svc {
	pid_t pid;             /* the server (or strace running it) */
	double cpu0;           /* CPU of its process tree once ready */
	char errpath[4200];    /* its stdout and stderr */
	bool reaped;
	int status;
	double cpu;            /* after bench_svc_stop: CPU since cpu0 */
};

struct bench_mem {
	double rss, pss;       /* bytes, summed over the process tree */
	unsigned pipes, sockets, fds;
	unsigned procs;
};

/* A free TCP port on 127.0.0.1 (bound, then released), or -errno. */
int bench_free_port(void);
/* Is something listening on 127.0.0.1:port (TCP)? */
bool bench_port_listening(int port);
/* tmpl with @PORT@, @TARGET@, @CONF@, @DIR@, @WWW@ replaced (malloc'd). */
char *bench_expand(const char *tmpl, int port, int target, const char *conf,
		   const struct bench_config *cfg);
/*
 * Start argv in a process group of its own, stdin in_fd (-1: /dev/null),
 * stdout and stderr to s->errpath; wait until it listens on port (> 0) or
 * ready_file exists (non-NULL), at most timeout_s.  Returns 0, -ETIMEDOUT,
 * or -ECHILD when it died (its stderr says why).
 */
int bench_svc_start(struct bench_svc *s, char *const *argv, int in_fd, int port,
		    const char *ready_file, double timeout_s);
/* Wait (at most timeout_s) until the server's tree has at most n
 * descendants: children of a forking server (socat) are reaped, so their
 * CPU time is in the server's. */
void bench_svc_settle(struct bench_svc *s, unsigned n, double timeout_s);
/* With wait_exit > 0, give it that long to exit by itself; then signal
 * its group (sig, 0: SIGTERM), wait (SIGKILL after timeout_s), and set
 * s->cpu to the CPU its tree used since cpu0.  Returns 0 or -errno. */
int bench_svc_stop(struct bench_svc *s, int sig, double wait_exit, double timeout_s);
/* CPU seconds of pid's tree: itself, its live descendants, and all the
 * children they reaped; *n (if non-NULL) gets the number of descendants. */
double bench_tree_cpu(pid_t pid, unsigned *n);
/* Memory, fds and pipes of pid's tree. */
int bench_tree_mem(pid_t pid, struct bench_mem *m);
/* The first line of a file (for error messages). */
void bench_first_line(const char *path, char *out, size_t len);
/* Its last non-blank line (servers say why they stopped last). */
void bench_last_line(const char *path, char *out, size_t len);
/* In "loadgen: KEY VALUE ..." text, the number after KEY; NaN if absent. */
double bench_kv(const char *text, const char *key);
/* A file's first max bytes, NUL-terminated, malloc'd; NULL on failure. */
char *bench_slurp(const char *path, size_t max);
/* Does `zcio CMD --help` mention OPTION? */
bool bench_zcio_has_option(const struct bench_config *cfg, const char *cmd, const char *option);
/* Raise RLIMIT_NOFILE to its hard limit (thousands of sockets). */
void bench_raise_nofile(void);
/* Start a tool's server (t->argv, placeholders replaced; t->conf written
 * to $DIR/server.conf): stdin in_fd, listening on port, target the
 * backend's port; under strace when trace and strace works.  Returns 0,
 * or -1 after bench_tool_fail(). */
int bench_tool_server_start(struct bench_case *c, struct bench_config *cfg, struct bench_tool *t,
			    struct bench_svc *s, int in_fd, int port, int target, bool trace);
/* Stop it (after its forked children are reaped, unless traced; with
 * wait_exit > 0 it may first exit by itself); what strace saw goes to
 * t->syscalls.  Returns bench_svc_stop's result. */
int bench_tool_server_stop(struct bench_config *cfg, struct bench_tool *t, struct bench_svc *s,
			   bool trace, double wait_exit);

/* ---- threshold (bench_threshold.c) ---- */

int bench_threshold_run(struct bench_config *cfg);
void bench_threshold_json(FILE *f);
void bench_threshold_summary(FILE *f, bool table);

/* ---- service scenarios ---- */

int bench_relay_stream(struct bench_config *cfg);
int bench_relay_many(struct bench_config *cfg);
int bench_relay_idle(struct bench_config *cfg);
int bench_serve_1k(struct bench_config *cfg);
int bench_serve_64k(struct bench_config *cfg);
int bench_serve_1m(struct bench_config *cfg);
int bench_serve_64m(struct bench_config *cfg);
int bench_tee_1(struct bench_config *cfg);
int bench_tee_2(struct bench_config *cfg);
int bench_tee_4(struct bench_config *cfg);
int bench_tee_8(struct bench_config *cfg);
int bench_broadcast(struct bench_config *cfg);
int bench_calib_send_sizes(struct bench_config *cfg);
int bench_calib_recv(struct bench_config *cfg);
void bench_calib_json(FILE *f);
void bench_calib_summary(FILE *f);
/* Print a case's table (and flush); returns bench_case_run's result. */
int bench_run_and_print(struct bench_case *c, struct bench_config *cfg);

/* ---- report (bench_report.c) ---- */

void bench_report_table(FILE *f, const struct bench_case *c);
void bench_report_targets(FILE *f);
int bench_report_json(const char *path, const struct bench_config *cfg);
void bench_json_string(FILE *f, const char *s);
/* A double as JSON: a number, or null for NaN/inf. */
void bench_json_number(FILE *f, double v);

/* ---- helpers ---- */

double bench_now(void);
double bench_loadavg(void);
double bench_median(const double *v, unsigned n);
int bench_which(const char *prog, char *out, size_t len);

#endif
