/*
 * bench_case.c - one benchmark case: a fixed input, a fixed plumbing
 * (pipe, file, socket), and several tools that each move the same bytes.
 *
 * Order of events:
 *   1. one verification run per tool: its output is hashed and compared with
 *      the input's hash (by a hashing reader, or by reading the output file),
 *      and, when strace works here, the tool runs under `strace -f -c` so the
 *      report can say which syscalls it used.  This run is not timed; it also
 *      warms up binaries and caches for every tool alike.
 *   2. the timed runs, interleaved: A B C A B C ... so that drift on the
 *      machine (other load, frequency, writeback) hits every tool alike.
 *      Every timed run must prove its byte count too: a reading sink counts,
 *      zcio's --stats, dd's and splice-loop's summaries count, output files
 *      are stat()ed, and any process exiting non-zero fails the run.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

struct bench_case **bench_cases;
unsigned bench_ncases;

struct bench_case *bench_case_new(struct bench_config *cfg, const char *scenario,
				  const char *id)
{
	struct bench_case *c = calloc(1, sizeof(*c)), **list;

	if (!c)
		return NULL;
	list = realloc(bench_cases, (bench_ncases + 1) * sizeof(*list));
	if (!list) {
		free(c);
		return NULL;
	}
	bench_cases = list;
	bench_cases[bench_ncases++] = c;
	c->scenario = scenario;
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->runs = cfg->runs;
	return c;
}

static struct bench_tool *tool_new(struct bench_case *c, const char *name)
{
	struct bench_tool *t;

	if (c->ntools >= BENCH_MAX_TOOLS)
		return NULL;
	t = &c->tools[c->ntools++];
	memset(t, 0, sizeof(*t));
	t->name = name;
	t->checksum_ok = -1;
	t->zc_happened = -1;
	t->med_seconds = t->bps = t->cpu_per_gib = NAN;
	t->rps = t->p50_us = t->p99_us = t->rss = t->pss = t->rss_start = NAN;
	t->pipes = t->fds = NAN;
	return t;
}

struct bench_tool *bench_case_add(struct bench_case *c, const char *name,
				  enum bench_parse parse, bool zcio, char *const *argv)
{
	struct bench_tool *t = tool_new(c, name);
	unsigned n = 0;

	if (!t)
		return NULL;
	while (argv[n])
		n++;
	t->argv = calloc(n + 1, sizeof(*t->argv));
	for (unsigned i = 0; t->argv && i < n; i++)
		t->argv[i] = strdup(argv[i]);
	t->parse = parse;
	t->zcio = zcio;
	return t;
}

void bench_case_skip(struct bench_case *c, const char *name, const char *why)
{
	struct bench_tool *t = tool_new(c, name);

	if (t)
		t->skip = why;
}

void bench_case_target(struct bench_case *c, const char *tool, const char *peer,
		       const char *metric, double want)
{
	if (c->ntargets < BENCH_MAX_TARGETS)
		c->targets[c->ntargets++] = (struct bench_target){
			.tool = tool, .peer = peer, .metric = metric, .want = want,
			.got = NAN, .met = -1,
		};
}

const struct bench_tool *bench_case_tool(const struct bench_case *c, const char *name)
{
	for (unsigned i = 0; i < c->ntools; i++)
		if (!strcmp(c->tools[i].name, name))
			return &c->tools[i];
	return NULL;
}

void bench_case_free(struct bench_case *c)
{
	for (unsigned i = 0; i < c->ntools; i++) {
		struct bench_tool *t = &c->tools[i];

		if (t->argv)
			for (char **a = t->argv; *a; a++)
				free(*a);
		free(t->argv);
		free(t->runs);
		free(t->error);
	}
	free(c);
}

/* ---- what a run's stderr says ---- */

char *bench_slurp(const char *path, size_t max)
{
	char *buf = malloc(max + 1);
	ssize_t n = -1;
	int fd;

	if (!buf)
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, max);
		close(fd);
	}
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void count_set(struct bench_count *list, unsigned *n, unsigned max,
		      const char *name, size_t namelen, uint64_t v)
{
	if (*n >= max)
		return;
	if (namelen >= sizeof(list[0].name))
		namelen = sizeof(list[0].name) - 1;
	memcpy(list[*n].name, name, namelen);
	list[*n].name[namelen] = '\0';
	list[*n].n = v;
	(*n)++;
}

static bool is_zero_copy(const char *path)
{
	static const char *const zc[] = {
		"copy_file_range", "sendfile", "sendfile64", "splice", "splice-pipe",
		"tee", "vmsplice", "msg-zerocopy", "io_uring-send-zc", "zerocopy-receive",
	};

	for (size_t i = 0; i < sizeof(zc) / sizeof(zc[0]); i++)
		if (!strcmp(path, zc[i]))
			return true;
	return false;
}

struct parsed {
	int64_t bytes;   /* -1: the output said nothing */
	uint64_t zc;
	uint64_t syscalls; /* zcio's count of data-moving syscalls */
	struct bench_count paths[BENCH_MAX_PATHS];
	unsigned npaths;
	char fallbacks[256];
};

/*
 * zcio's `--stats` lines look like "zcio: cat: stats: splice: 2147483648
 * bytes" (see zcio_stats_format and cli_print_stats); "total" is the sum.
 */
static void parse_zcio(char *text, struct parsed *p)
{
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char *s = strstr(line, "stats: "), *colon;
		unsigned long long v;
		int end;

		if (!s)
			continue;
		s += 7;
		if (!strncmp(s, "fallback", 8)) {
			size_t used = strlen(p->fallbacks);

			snprintf(p->fallbacks + used, sizeof(p->fallbacks) - used, "%s%s",
				 used ? "; " : "", s);
			continue;
		}
		colon = strchr(s, ':');
		if (!colon)
			continue;
		end = 0;
		if (!strncmp(s, "syscalls:", 9)) {
			if (sscanf(colon + 1, " %llu", &v) == 1)
				p->syscalls = v;
			continue;
		}
		/* %n is set only when the literal " bytes" matched too. */
		if (sscanf(colon + 1, " %llu bytes%n", &v, &end) != 1 || !end)
			continue;
		if ((size_t)(colon - s) == 5 && !strncmp(s, "total", 5)) {
			p->bytes = (p->bytes < 0 ? 0 : p->bytes) + (int64_t)v;
			continue;
		}
		*colon = '\0';
		if (is_zero_copy(s))
			p->zc += v;
		count_set(p->paths, &p->npaths, BENCH_MAX_PATHS, s, strlen(s), v);
	}
}

static void parse_stderr(enum bench_parse how, const char *path, struct parsed *p)
{
	char *text = bench_slurp(path, 256 * 1024), *s;
	unsigned long long v, calls;

	memset(p, 0, sizeof(*p));
	p->bytes = -1;
	if (!text)
		return;
	switch (how) {
	case BENCH_PARSE_ZCIO:
		parse_zcio(text, p);
		break;
	case BENCH_PARSE_DD:
		/* The last line: "N bytes (2.1 GB, 2.0 GiB) copied, ..." */
		for (s = text; s; s = strchr(s, '\n')) {
			if (*s == '\n')
				s++;
			if (sscanf(s, "%llu bytes", &v) == 1)
				p->bytes = (int64_t)v;
		}
		break;
	case BENCH_PARSE_SPLICE_LOOP:
		s = strstr(text, "splice-loop: ");
		if (s && sscanf(s, "splice-loop: %llu bytes in %llu calls", &v, &calls) == 2) {
			p->bytes = (int64_t)v;
			p->zc = v;
			count_set(p->paths, &p->npaths, BENCH_MAX_PATHS, "splice", 6, v);
		}
		break;
	case BENCH_PARSE_NONE:
		break;
	}
	free(text);
}

/* `strace -c -S calls` table: "% time seconds usecs/call calls [errors] syscall" */
void bench_parse_strace(const char *path, struct bench_tool *t)
{
	char *text = bench_slurp(path, 256 * 1024);

	t->nsyscalls = 0;
	if (!text)
		return;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		double pct, secs;
		unsigned long usecs, calls;
		char *name;
		int used;

		if (sscanf(line, " %lf %lf %lu %lu%n", &pct, &secs, &usecs, &calls, &used) != 4)
			continue;
		name = strrchr(line, ' ');
		if (!name || !strcmp(name + 1, "total"))
			continue;
		count_set(t->syscalls, &t->nsyscalls, BENCH_MAX_SYSCALLS, name + 1,
			  strlen(name + 1), calls);
	}
	free(text);
}

/* ---- one run ---- */

void bench_tool_fail(struct bench_tool *t, struct bench_case *c, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "zcio: bench: %s: %s: %s\n", c->id, t->name, buf);
	if (!t->error)
		t->error = strdup(buf);
	c->failed = true;
}

void bench_first_line(const char *path, char *out, size_t len)
{
	char *text = bench_slurp(path, 4096), *nl;

	out[0] = '\0';
	if (!text)
		return;
	nl = strchr(text, '\n');
	if (nl)
		*nl = '\0';
	snprintf(out, len, "%s", text);
	free(text);
}

static void scratch(const struct bench_config *cfg, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s", cfg->dir, name);
}

static int open_err(const struct bench_config *cfg, const char *role, char *path, size_t len)
{
	char name[64];

	snprintf(name, sizeof(name), "stderr.%s", role);
	scratch(cfg, name, path, len);
	return open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

enum run_mode {
	RUN_TIMED,
	RUN_VERIFY,  /* hash the output; trace syscalls if the plumbing is real */
	RUN_TRACE,   /* only trace syscalls, with the timed runs' plumbing */
};

/*
 * Run tool t once.  Returns 0 when every process succeeded and every count
 * matched.
 */
static int run_once(struct bench_case *c, struct bench_config *cfg, struct bench_tool *t,
		    enum run_mode mode, struct bench_run *run)
{
	bool verify = mode == RUN_VERIFY;
	static const char *const role_name[BENCH_ROLES] = { "source", "tool", "sink" };
	struct bench_reader_arg rd = { .hash = verify };
	char *pv_argv[] = { "pv", "-q", NULL };
	struct bench_proc procs[3];
	char errpath[BENCH_ROLES][4200], tracepath[4200], why[1200], line[512];
	char **argv = t->argv, **traced = NULL;
	struct parsed parsed;
	enum bench_topo topo = c->topo;
	int pfd[2] = { -1, -1 }, sock[2] = { -1, -1 }, out = -1, in = -1;
	int errfd[BENCH_ROLES];
	unsigned n = 0, timeout;
	bool proven = false;
	double secs = 0;
	int r, ret = -1;

	memset(procs, 0, sizeof(procs));
	memset(run, 0, sizeof(*run));
	run->bytes = -1;
	for (int i = 0; i < BENCH_ROLES; i++) {
		struct bench_shared *sh = bench_shared_get((enum bench_role)i);

		if (!sh) {
			bench_tool_fail(t, c, "no shared memory");
			return -1;
		}
		memset(sh, 0, sizeof(*sh));
		errfd[i] = open_err(cfg, role_name[i], errpath[i], sizeof(errpath[i]));
	}
	/* Output to /dev/null cannot be hashed: verify through a file, and
	 * trace in a run of its own, since a file takes other syscalls. */
	if (verify && topo == BENCH_TOPO_DEVNULL)
		topo = BENCH_TOPO_FILE;

	if (cfg->strace && (mode == RUN_TRACE || (verify && topo == c->topo))) {
		unsigned na = 0;

		while (argv[na])
			na++;
		traced = calloc(na + 10, sizeof(*traced));
		if (traced) {
			unsigned k = 0;

			scratch(cfg, "strace.txt", tracepath, sizeof(tracepath));
			traced[k++] = (char *)cfg->strace;
			traced[k++] = "-f";
			traced[k++] = "-c";
			traced[k++] = "-S";
			traced[k++] = "calls";
			traced[k++] = "-o";
			traced[k++] = tracepath;
			traced[k++] = "--";
			for (unsigned i = 0; i < na; i++)
				traced[k++] = argv[i];
			argv = traced;
		}
	}

	if (t->stdin_path || c->stdin_path) {
		const char *ip = t->stdin_path ? t->stdin_path : c->stdin_path;

		in = open(ip, O_RDONLY | O_CLOEXEC);
		if (in < 0) {
			bench_tool_fail(t, c, "%s: %s", ip, strerror(errno));
			goto out;
		}
	}
	if (topo == BENCH_TOPO_FILE || topo == BENCH_TOPO_FROM_SOCK) {
		out = open(c->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (out < 0) {
			bench_tool_fail(t, c, "%s: %s", c->out, strerror(errno));
			goto out;
		}
	}
	if (topo == BENCH_TOPO_PIPE && pipe2(pfd, O_CLOEXEC) < 0) {
		bench_tool_fail(t, c, "pipe: %s", strerror(errno));
		goto out;
	}
	if (topo == BENCH_TOPO_TO_SOCK || topo == BENCH_TOPO_FROM_SOCK) {
		r = bench_tcp_pair(&sock[0], &sock[1]);
		if (r < 0) {
			bench_tool_fail(t, c, "loopback connection: %s", strerror(-r));
			goto out;
		}
	}

	/* The sink first, the source last: nobody waits long for a peer. */
	if (topo == BENCH_TOPO_PIPE || topo == BENCH_TOPO_TO_SOCK) {
		struct bench_proc *s = &procs[n++];

		s->role = BENCH_SINK;
		s->fd[0] = topo == BENCH_TOPO_PIPE ? pfd[0] : sock[1];
		s->fd[1] = -1;
		s->fd[2] = errfd[BENCH_SINK];
		if (!verify && topo == BENCH_TOPO_PIPE && c->sink == BENCH_SINK_PV) {
			s->argv = pv_argv;
		} else {
			s->fn = bench_reader;
			s->arg = &rd;
			s->shared = bench_shared_get(BENCH_SINK);
		}
	}
	{
		struct bench_proc *p = &procs[n++];

		p->role = BENCH_TOOL;
		p->argv = argv;
		p->cwd = c->cwd;
		p->fd[0] = topo == BENCH_TOPO_FROM_SOCK ? sock[1] : in;
		switch (topo) {
		case BENCH_TOPO_PIPE: p->fd[1] = pfd[1]; break;
		case BENCH_TOPO_TO_SOCK: p->fd[1] = sock[0]; break;
		case BENCH_TOPO_FILE:
		case BENCH_TOPO_FROM_SOCK: p->fd[1] = out; break;
		default: p->fd[1] = -1; break;
		}
		p->fd[2] = errfd[BENCH_TOOL];
	}
	if (topo == BENCH_TOPO_FROM_SOCK) {
		struct bench_proc *s = &procs[n++];

		s->role = BENCH_SOURCE;
		s->fn = bench_sender;
		s->arg = (void *)c->src;
		s->shared = bench_shared_get(BENCH_SOURCE);
		s->fd[0] = -1;
		s->fd[1] = sock[0];
		s->fd[2] = errfd[BENCH_SOURCE];
	}

	/* Generous: a run slower than 20 MB/s plus a minute is hung. */
	timeout = 60 + (unsigned)(c->bytes / (20u << 20));
	if (traced)
		timeout *= 4;
	{
		int ends[4] = { pfd[0], pfd[1], sock[0], sock[1] };

		r = bench_procs_run(procs, n, ends, 4, timeout, &secs);
		pfd[0] = pfd[1] = sock[0] = sock[1] = -1;
	}
	if (r < 0) {
		bench_tool_fail(t, c, "%s", r == -ETIMEDOUT ? "timed out, killed" :
				     r == -EINTR ? "interrupted" : strerror(-r));
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		enum bench_role role = procs[i].role;

		if (!bench_proc_ok(&procs[i])) {
			bench_first_line(errpath[role], line, sizeof(line));
			bench_proc_status(&procs[i], why, sizeof(why));
			bench_tool_fail(t, c, "%s %s%s%s", role_name[role], why,
				  line[0] ? ": " : "", line);
			goto out;
		}
		run->cpu[role] += bench_proc_cpu(&procs[i]);
		run->cpu_total += bench_proc_cpu(&procs[i]);
	}
	run->seconds = secs;

	/* Byte counts: every source of proof available must agree. */
	parse_stderr(t->parse, errpath[BENCH_TOOL], &parsed);
	if (parsed.bytes >= 0) {
		if ((uint64_t)parsed.bytes != c->bytes) {
			bench_tool_fail(t, c, "reported %" PRId64 " bytes, expected %" PRIu64,
				  parsed.bytes, c->bytes);
			goto out;
		}
		proven = true;
	} else if (t->parse != BENCH_PARSE_NONE) {
		bench_first_line(errpath[BENCH_TOOL], line, sizeof(line));
		bench_tool_fail(t, c, "printed no byte count (stderr: %s)", line);
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		const struct bench_shared *sh = procs[i].shared;

		if (!procs[i].fn || !sh)
			continue;
		if (sh->bytes != c->bytes) {
			bench_tool_fail(t, c, "%s moved %" PRIu64 " bytes, expected %" PRIu64,
				  role_name[procs[i].role], sh->bytes, c->bytes);
			goto out;
		}
		proven = true;
	}
	if (topo == BENCH_TOPO_FILE || topo == BENCH_TOPO_OWN_FILE ||
	    topo == BENCH_TOPO_FROM_SOCK) {
		struct stat sb;

		if (stat(c->out, &sb) < 0 || (uint64_t)sb.st_size != c->bytes) {
			bench_tool_fail(t, c, "output file has %lld bytes, expected %" PRIu64,
				  (long long)(stat(c->out, &sb) < 0 ? -1 : sb.st_size), c->bytes);
			goto out;
		}
		proven = true;
	}
	run->bytes = proven ? (int64_t)c->bytes : -1;
	run->zc_bytes = parsed.zc;

	if (verify) {
		uint64_t got;

		if (topo == BENCH_TOPO_PIPE || topo == BENCH_TOPO_TO_SOCK) {
			got = bench_shared_get(BENCH_SINK)->hash;
		} else {
			struct bench_hash h;

			bench_hash_init(&h);
			if (bench_file_hash(c->out, &h) < 0) {
				bench_tool_fail(t, c, "cannot read back %s", c->out);
				goto out;
			}
			got = bench_hash_final(&h);
		}
		t->checksum = got;
		t->checksum_ok = got == c->hash;
		if (!t->checksum_ok)
			bench_tool_fail(t, c, "checksum mismatch: output %016" PRIx64 ", input %016" PRIx64,
				  got, c->hash);
	}
	if (traced)
		bench_parse_strace(tracepath, t);
	if (mode != RUN_TIMED) {
		/* Paths and byte counts come from the timed runs. */
	} else if (t->zcio && !t->npaths) {
		/* The first timed run's paths stand for the tool. */
		memcpy(t->paths, parsed.paths, sizeof(parsed.paths));
		t->npaths = parsed.npaths;
		t->zcio_syscalls = parsed.syscalls;
		snprintf(t->fallbacks, sizeof(t->fallbacks), "%s", parsed.fallbacks);
	} else if (t->parse == BENCH_PARSE_SPLICE_LOOP && !t->npaths) {
		memcpy(t->paths, parsed.paths, sizeof(parsed.paths));
		t->npaths = parsed.npaths;
	}
	ret = t->error ? -1 : 0;
out:
	for (int i = 0; i < 2; i++) {
		if (pfd[i] >= 0)
			close(pfd[i]);
		if (sock[i] >= 0)
			close(sock[i]);
	}
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	for (int i = 0; i < BENCH_ROLES; i++)
		if (errfd[i] >= 0)
			close(errfd[i]);
	if (c->out) {
		/* Deleting a just-written file drops its dirty pages: no
		 * writeback is left over to slow the next run down. */
		unlink(c->out);
	}
	free(traced);
	return ret;
}

/* ---- results ---- */

static void tool_summarise(struct bench_case *c, struct bench_tool *t)
{
	double *v;
	unsigned n = t->nruns;
	double gib = (double)c->bytes / BENCH_GIB;

	if (!n)
		return;
	v = malloc(n * sizeof(*v));
	if (!v)
		return;
	for (unsigned i = 0; i < n; i++)
		v[i] = t->runs[i].seconds;
	t->med_seconds = bench_median(v, n);
	if (c->per_run_bytes) {
		/* Fixed-time runs move different amounts: rates per run. */
		for (unsigned i = 0; i < n; i++)
			v[i] = (double)t->runs[i].bytes / t->runs[i].seconds;
		t->bps = bench_median(v, n);
	} else {
		t->bps = (double)c->bytes / t->med_seconds;
	}
#define RUN_GIB(i) (c->per_run_bytes ? (double)t->runs[i].bytes / BENCH_GIB : gib)
	for (unsigned i = 0; i < n; i++)
		v[i] = t->runs[i].cpu_total / RUN_GIB(i);
	t->cpu_per_gib = bench_median(v, n);
	for (int role = 0; role < BENCH_ROLES; role++) {
		for (unsigned i = 0; i < n; i++)
			v[i] = t->runs[i].cpu[role] / RUN_GIB(i);
		t->cpu_role_per_gib[role] = bench_median(v, n);
	}
#undef RUN_GIB
	if (c->runner) {
#define MED(field, out) do { \
		for (unsigned i = 0; i < n; i++) \
			v[i] = t->runs[i].field; \
		out = bench_median(v, n); \
	} while (0)
		MED(rps, t->rps);
		MED(p50_us, t->p50_us);
		MED(p99_us, t->p99_us);
		MED(rss, t->rss);
		MED(pss, t->pss);
		MED(rss_start, t->rss_start);
		MED(pipes, t->pipes);
		MED(fds, t->fds);
#undef MED
	}
	free(v);

	/* Zero copy: zcio and splice-loop count bytes per path in every
	 * run; for other tools, the syscalls strace saw are the evidence. */
	/* Service cases' zcio rows have paths only where the runner read
	 * zcio's --stats (tee); the others go by strace like any peer. */
	if ((t->zcio && (!c->runner || t->npaths)) || t->parse == BENCH_PARSE_SPLICE_LOOP) {
		bool all = true;

		for (unsigned i = 0; i < n; i++)
			all = all && t->runs[i].zc_bytes > 0;
		t->zc_happened = all;
		t->zc_source = t->zcio ? "zcio --stats" : "splice-loop";
		t->zc_unit = "bytes";
	} else if (t->nsyscalls) {
		t->zc_happened = 0;
		t->npaths = 0;
		for (unsigned i = 0; i < t->nsyscalls; i++) {
			const struct bench_count *s = &t->syscalls[i];
			bool zc = is_zero_copy(s->name);

			if (zc && s->n)
				t->zc_happened = 1;
			/* pread64 is the dynamic loader reading ELF headers. */
			if (zc || !strcmp(s->name, "read") || !strcmp(s->name, "write") ||
			    !strcmp(s->name, "readv") || !strcmp(s->name, "writev") ||
			    !strcmp(s->name, "recvfrom") || !strcmp(s->name, "sendto") ||
			    !strcmp(s->name, "sendmsg") || !strcmp(s->name, "recvmsg"))
				count_set(t->paths, &t->npaths, BENCH_MAX_PATHS, s->name,
					  strlen(s->name), s->n);
		}
		t->zc_source = "strace";
		t->zc_unit = "calls";
	}
}

bool bench_target_absolute(const struct bench_target *g)
{
	return !g->peer;
}

bool bench_target_at_least(const struct bench_target *g)
{
	return !strcmp(g->metric, "throughput") || !strcmp(g->metric, "rps");
}

static void targets_eval(struct bench_case *c)
{
	for (unsigned i = 0; i < c->ntargets; i++) {
		struct bench_target *g = &c->targets[i];
		const struct bench_tool *a = bench_case_tool(c, g->tool);
		const struct bench_tool *b = g->peer ? bench_case_tool(c, g->peer) : NULL;

		if (!a || a->skip || a->error || !a->nruns)
			continue;
		if (g->peer && (!b || b->skip || b->error || !b->nruns))
			continue;
		if (!strcmp(g->metric, "throughput"))
			g->got = a->bps / b->bps;
		else if (!strcmp(g->metric, "cpu"))
			g->got = a->cpu_per_gib / b->cpu_per_gib;
		else if (!strcmp(g->metric, "tool_cpu"))
			g->got = a->cpu_role_per_gib[BENCH_TOOL] / b->cpu_role_per_gib[BENCH_TOOL];
		else if (!strcmp(g->metric, "rps"))
			g->got = a->rps / b->rps;
		else if (!strcmp(g->metric, "p99"))
			g->got = a->p99_us / b->p99_us;
		else if (!strcmp(g->metric, "rss_mib"))
			g->got = a->rss / (1024.0 * 1024.0);
		else if (!strcmp(g->metric, "pipes"))
			g->got = a->pipes;
		else
			g->got = a->med_seconds / b->med_seconds;
		if (isnan(g->got))
			continue;
		g->met = bench_target_at_least(g) ? g->got >= g->want : g->got <= g->want;
	}
}

int bench_case_run(struct bench_case *c, struct bench_config *cfg)
{
	for (unsigned i = 0; i < c->ntools; i++) {
		struct bench_tool *t = &c->tools[i];

		if (t->skip)
			continue;
		t->runs = calloc(c->runs, sizeof(*t->runs));
		if (!t->runs || !t->argv)
			return -ENOMEM;
	}

	double t0 = bench_now();

	fprintf(stderr, "== %s: %s\n", c->id, c->title);
	for (unsigned i = 0; i < c->ntools && !bench_stop; i++) {
		struct bench_tool *t = &c->tools[i];
		struct bench_run run;

		if (t->skip) {
			fprintf(stderr, "   %-22s skipped: %s\n", t->name, t->skip);
			continue;
		}
		if (c->runner) {
			if (c->runner(c, cfg, t, true, &run) < 0)
				continue;
			fprintf(stderr, "   %-22s verified: every byte checked%s\n", t->name,
				t->nsyscalls ? ", syscalls traced" : "");
			continue;
		}
		if (run_once(c, cfg, t, RUN_VERIFY, &run) < 0)
			continue;
		if (c->topo == BENCH_TOPO_DEVNULL && cfg->strace &&
		    run_once(c, cfg, t, RUN_TRACE, &run) < 0)
			continue;
		fprintf(stderr, "   %-22s verified: %" PRIu64 " bytes, checksum ok%s\n",
			t->name, c->bytes, t->nsyscalls ? ", syscalls traced" : "");
	}
	for (unsigned r = 0; r < c->runs && !bench_stop; r++) {
		fprintf(stderr, "   round %u/%u:", r + 1, c->runs);
		for (unsigned i = 0; i < c->ntools && !bench_stop; i++) {
			struct bench_tool *t = &c->tools[i];
			struct bench_run *run;

			if (t->skip || t->error)
				continue;
			run = &t->runs[t->nruns];
			if ((c->runner ? c->runner(c, cfg, t, false, run) :
					 run_once(c, cfg, t, RUN_TIMED, run)) < 0)
				continue;
			run->seq = ++cfg->seq;
			t->nruns++;
			if (c->kind == BENCH_KIND_RR)
				fprintf(stderr, " %s %.0f/s", t->name, run->rps);
			else if (c->kind == BENCH_KIND_IDLE)
				fprintf(stderr, " %s %.1fMiB", t->name, run->rss / (1024.0 * 1024.0));
			else
				fprintf(stderr, " %s %.3fs", t->name, run->seconds);
		}
		fputc('\n', stderr);
	}
	for (unsigned i = 0; i < c->ntools; i++)
		tool_summarise(c, &c->tools[i]);
	targets_eval(c);
	fprintf(stderr, "   %s took %.1f s\n", c->id, bench_now() - t0);
	return bench_stop ? -EINTR : 0;
}
