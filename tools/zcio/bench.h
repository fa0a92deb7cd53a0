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
#define BENCH_MAX_SYSCALLS 24
#define BENCH_MAX_TARGETS 6

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
};

struct bench_count {
	char name[24];
	uint64_t n;
};

struct bench_target {
	const char *tool, *peer;
	const char *metric;    /* "throughput", "cpu" or "time" */
	double want;           /* ratio tool/peer must be >= (throughput) or <= */
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
};

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

/* ---- threshold (bench_threshold.c) ---- */

int bench_threshold_run(struct bench_config *cfg);
void bench_threshold_json(FILE *f);
void bench_threshold_summary(FILE *f, bool table);

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
