/*
 * bench_tee.c - one stream to many: tee-N (a pipe into N outputs, zcio
 * tee against coreutils tee and zcio tee --copy) and broadcast (one
 * stream to 100 loopback TCP clients, zcio broadcast against --copy).
 *
 * tee-N: a source splices the page-cached pattern into the tool's stdin
 * (--size, default 4 GiB).  The N outputs are the tool's stdout, a pipe,
 * then (N >= 2) one file on tmpfs (/dev/shm), then N - 2 FIFOs.  Every
 * pipe is read by `pv -q > /dev/null` (which splices) in timed runs, and
 * by a forked reader that compares every byte with the pattern in the
 * verification run, where the file is read back and compared too.  Only
 * one file, so that 8 outputs of 4 GiB fit in memory.  CPU is every
 * process's: source, tool and consumers.
 *
 * broadcast: build/bench/loadgen fanout opens 100 connections (dropping
 * bytes with recv(MSG_TRUNC), or comparing every byte in the verification
 * run); once the broadcaster holds all 100, the source writes --size / 16
 * bytes into its stdin.  --policy block: every client must get every
 * byte.  Throughput and CPU per GiB count bytes delivered (100 x sent).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"

#define TEE_MAX 8
#define BROADCAST_CLIENTS 100

struct tee_case {
	unsigned n;              /* outputs */
	char file[4300];         /* the tmpfs output, "" when none */
	char fifo[TEE_MAX][4200];
	unsigned nfifo;
	uint64_t bytes;
};

static char peer_tee[4096], peer_pv[4096];
static bool have_pv;
static char shm_dir[4200];
static struct bench_shared *tee_shared; /* one slot per consumer */

static void run_clear(struct bench_run *run)
{
	memset(run, 0, sizeof(*run));
	run->bytes = -1;
	run->rps = run->p50_us = run->p99_us = NAN;
	run->rss = run->pss = run->rss_start = run->pipes = run->fds = NAN;
}

static void stats_paths(struct bench_tool *t, const char *errpath, struct bench_run *run)
{
	/* zcio tee --stats: "zcio: tee: stats: PATH: N bytes" lines; the
	 * per-output lines ("output NAME: ...") are not paths. */
	char *text = bench_slurp(errpath, 256 * 1024);

	if (!text)
		return;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char *s = strstr(line, "stats: "), *colon;
		unsigned long long v;
		int end = 0;

		if (!s || !strncmp(s + 7, "output ", 7) || !strncmp(s + 7, "fallback", 8))
			continue;
		s += 7;
		colon = strchr(s, ':');
		if (!colon || sscanf(colon + 1, " %llu bytes%n", &v, &end) != 1 || !end)
			continue;
		*colon = '\0';
		/* zcio tee --uring counts what it tee()d and spliced as
		 * "io_uring", what it wrote from memory as "copy". */
		if (!strcmp(s, "tee") || !strcmp(s, "splice") || !strcmp(s, "splice-pipe") ||
		    !strcmp(s, "vmsplice") || !strcmp(s, "io_uring"))
			run->zc_bytes += v;
		if (!t->nruns && strcmp(s, "total") && t->npaths < BENCH_MAX_PATHS) {
			/* The first timed run's paths stand for the tool. */
			bool seen = false;

			for (unsigned i = 0; i < t->npaths; i++)
				seen = seen || !strcmp(t->paths[i].name, s);
			if (!seen) {
				snprintf(t->paths[t->npaths].name, sizeof(t->paths[0].name), "%s", s);
				t->paths[t->npaths++].n = v;
			}
		}
	}
	free(text);
}

static int tee_run(struct bench_case *c, struct bench_config *cfg, struct bench_tool *t,
		   bool verify, struct bench_run *run)
{
	struct tee_case *tc = c->priv;
	struct bench_proc procs[TEE_MAX + 2];
	struct bench_reader_arg rd = { .pattern = true };
	char *pv_argv[] = { peer_pv, "-q", NULL };
	char errpath[4200], tracepath[4200], line[300], why[100], **traced = NULL;
	int in[2] = { -1, -1 }, outp[2] = { -1, -1 }, err = -1, ret = -1, r;
	unsigned n = 0;
	double secs;
	uint64_t bytes = tc->bytes;

	run_clear(run);
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0) {
		bench_tool_fail(t, c, "pipe: %s", strerror(errno));
		goto out;
	}
	snprintf(errpath, sizeof(errpath), "%s/tool.err", cfg->dir);
	err = open(errpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	memset(procs, 0, sizeof(procs));
	memset(tee_shared, 0, sizeof(*tee_shared) * (TEE_MAX + 1));
	/* Consumers first: stdout's, then one per FIFO (each opens its FIFO
	 * itself, and waits there for the tool). */
	for (unsigned i = 0; i <= tc->nfifo; i++) {
		struct bench_proc *p = &procs[n++];

		p->role = BENCH_SINK;
		p->fd[0] = i == 0 ? outp[0] : -1;
		p->in_path = i == 0 ? NULL : tc->fifo[i - 1];
		p->fd[1] = p->fd[2] = -1;
		if (verify || !have_pv) {
			p->fn = bench_reader;
			p->arg = &rd;
			p->shared = &tee_shared[i];
		} else {
			p->argv = pv_argv;
		}
	}
	if (verify && cfg->strace) {
		/* The verification run also says which syscalls the tool used. */
		unsigned na = 0, k = 0;

		while (t->argv[na])
			na++;
		traced = calloc(na + 10, sizeof(*traced));
		snprintf(tracepath, sizeof(tracepath), "%s/strace.txt", cfg->dir);
		if (traced) {
			char *pre[] = { (char *)cfg->strace, "-f", "-c", "-S", "calls", "-o", tracepath,
					"--" };

			for (unsigned i = 0; i < sizeof(pre) / sizeof(pre[0]); i++)
				traced[k++] = pre[i];
			for (unsigned i = 0; i < na; i++)
				traced[k++] = t->argv[i];
		}
	}
	{
		struct bench_proc *p = &procs[n++];

		p->role = BENCH_TOOL;
		p->argv = traced ? traced : t->argv;
		p->fd[0] = in[0];
		p->fd[1] = outp[1];
		p->fd[2] = err;
	}
	{
		struct bench_proc *p = &procs[n++];

		p->role = BENCH_SOURCE;
		p->fn = bench_pattern_source;
		p->arg = &bytes;
		p->shared = bench_shared_get(BENCH_SOURCE);
		memset(p->shared, 0, sizeof(*p->shared));
		p->fd[0] = -1;
		p->fd[1] = in[1];
		p->fd[2] = -1;
	}
	{
		int ends[4] = { in[0], in[1], outp[0], outp[1] };
		unsigned timeout = 60 + (unsigned)(bytes / (20u << 20));

		r = bench_procs_run(procs, n, ends, 4, verify ? timeout * 4 : timeout, &secs);
		in[0] = in[1] = outp[0] = outp[1] = -1;
	}
	if (r < 0) {
		bench_tool_fail(t, c, "%s", r == -ETIMEDOUT ? "timed out, killed" :
				r == -EINTR ? "interrupted" : strerror(-r));
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		static const char *const role[BENCH_ROLES] = { "source", "tool", "consumer" };

		if (!bench_proc_ok(&procs[i])) {
			bench_last_line(errpath, line, sizeof(line));
			bench_tool_fail(t, c, "%s %s%s%s", role[procs[i].role],
					bench_proc_status(&procs[i], why, sizeof(why)),
					procs[i].role == BENCH_TOOL ? ": " : "",
					procs[i].role == BENCH_TOOL ? line : "");
			goto out;
		}
		run->cpu[procs[i].role] += bench_proc_cpu(&procs[i]);
		run->cpu_total += bench_proc_cpu(&procs[i]);
		if (procs[i].shared && procs[i].shared->bytes != bytes) {
			bench_tool_fail(t, c, "%s got %" PRIu64 " bytes, expected %" PRIu64 "%s",
					role[procs[i].role], procs[i].shared->bytes, bytes,
					procs[i].shared->err == EBADMSG ? " (then a wrong byte)" : "");
			goto out;
		}
	}
	if (tc->file[0]) {
		struct stat sb;

		if (stat(tc->file, &sb) < 0 || (uint64_t)sb.st_size != bytes) {
			bench_tool_fail(t, c, "the tmpfs output has %lld bytes, expected %" PRIu64,
					stat(tc->file, &sb) < 0 ? -1LL : (long long)sb.st_size, bytes);
			goto out;
		}
		if (verify && !bench_pattern_file_ok(tc->file, bytes)) {
			bench_tool_fail(t, c, "the tmpfs output differs from the input");
			t->checksum_ok = 0;
			goto out;
		}
	}
	if (t->zcio && !verify)
		stats_paths(t, errpath, run);
	if (traced)
		bench_parse_strace(tracepath, t);
	run->seconds = secs;
	run->bytes = (int64_t)bytes;
	if (verify)
		t->checksum_ok = 1;
	ret = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (outp[i] >= 0)
			close(outp[i]);
	}
	if (err >= 0)
		close(err);
	if (tc->file[0])
		unlink(tc->file);
	free(traced);
	return ret;
}

static int tee_prepare(struct bench_config *cfg)
{
	int r = bench_pattern_make(cfg);

	if (r < 0) {
		cli_error("bench", "pattern file: %s", strerror(-r));
		return r;
	}
	if (!tee_shared) {
		void *m = mmap(NULL, sizeof(*tee_shared) * (TEE_MAX + 1), PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

		if (m == MAP_FAILED)
			return -errno;
		tee_shared = m;
	}
	have_pv = bench_which("pv", peer_pv, sizeof(peer_pv)) == 0;
	return 0;
}

/* The tmpfs directory for tee's file output, removed at exit. */
static void shm_cleanup(void)
{
	if (shm_dir[0])
		rmdir(shm_dir);
}

static int tee_scenario(struct bench_config *cfg, unsigned nout)
{
	static bool looked, uring;
	struct tee_case *tc = calloc(1, sizeof(*tc));
	char id[16], sz[32], *argv[TEE_MAX + 6];
	struct bench_case *c;
	unsigned k;
	int r;

	if (!tc)
		return -ENOMEM;
	r = tee_prepare(cfg);
	if (r < 0)
		return r;
	tc->n = nout;
	tc->bytes = cfg->stream_size;
	if (nout >= 2) {
		if (!shm_dir[0]) {
			snprintf(shm_dir, sizeof(shm_dir), "/dev/shm/zcio-bench.XXXXXX");
			if (!mkdtemp(shm_dir)) {
				/* No tmpfs: the scratch directory will do. */
				snprintf(shm_dir, sizeof(shm_dir), "%s", cfg->dir);
			} else {
				atexit(shm_cleanup);
			}
		}
		snprintf(tc->file, sizeof(tc->file), "%s/tee-out", shm_dir);
	}
	for (unsigned i = 2; i < nout; i++) {
		snprintf(tc->fifo[tc->nfifo], sizeof(tc->fifo[0]), "%s/fifo%u", cfg->dir, i);
		if (mkfifo(tc->fifo[tc->nfifo], 0600) < 0 && errno != EEXIST)
			return -errno;
		tc->nfifo++;
	}
	snprintf(id, sizeof(id), "tee-%u", nout);
	c = bench_case_new(cfg, id, id);
	if (!c)
		return -ENOMEM;
	c->runner = tee_run;
	c->priv = tc;
	c->bytes = tc->bytes;
	c->plumbing = "source (splice from the page-cached pattern) | TOOL [tmpfs file] [FIFOs] | "
		      "pv -q > /dev/null, and pv -q < each FIFO";
	snprintf(c->title, sizeof(c->title),
		 "%s from a pipe into %u output%s: stdout%s%s%s", cli_format_size(tc->bytes, sz,
		 sizeof(sz)), nout, nout > 1 ? "s" : "", nout > 1 ? " + a tmpfs file" : "",
		 nout > 2 ? " + FIFOs" : "", have_pv ? ", pipes read by pv -q" : "");
	/* The outputs, in the same order for every tool. */
#define OUTPUTS() do { \
		if (tc->file[0]) \
			argv[k++] = tc->file; \
		for (unsigned i = 0; i < tc->nfifo; i++) \
			argv[k++] = tc->fifo[i]; \
		argv[k] = NULL; \
	} while (0)
	k = 0;
	argv[k++] = cfg->zcio;
	argv[k++] = "tee";
	argv[k++] = "--stats";
	OUTPUTS();
	bench_case_add(c, "zcio tee", BENCH_PARSE_NONE, true, argv);
	k = 0;
	argv[k++] = cfg->zcio;
	argv[k++] = "tee";
	argv[k++] = "--copy";
	argv[k++] = "--stats";
	OUTPUTS();
	bench_case_add(c, "zcio tee --copy", BENCH_PARSE_NONE, true, argv);
	if (!looked) {
		looked = true;
		uring = bench_zcio_has_option(cfg, "tee", "--uring");
	}
	if (uring) {
		k = 0;
		argv[k++] = cfg->zcio;
		argv[k++] = "tee";
		argv[k++] = "--uring";
		argv[k++] = "--stats";
		OUTPUTS();
		bench_case_add(c, "zcio tee --uring", BENCH_PARSE_NONE, true, argv);
	} else {
		bench_case_skip(c, "zcio tee --uring", "zcio tee --help shows no --uring option");
	}
	if (bench_which("tee", peer_tee, sizeof(peer_tee)) == 0) {
		k = 0;
		argv[k++] = peer_tee;
		OUTPUTS();
		bench_case_add(c, "tee", BENCH_PARSE_NONE, false, argv);
	} else {
		bench_case_skip(c, "tee", "tee not found in PATH");
	}
#undef OUTPUTS
	c->main_peer = "tee";
	if (nout == 4) {
		bench_case_target(c, "zcio tee", "tee", "throughput", 2.5);
		bench_case_target(c, "zcio tee", "tee", "cpu", 0.3);
	}
	if (nout == 1)
		bench_case_target(c, "zcio tee", "tee", "throughput", 1.5);
	bench_case_target(c, "zcio tee --uring", "zcio tee", "throughput", 1.0);
	return bench_run_and_print(c, cfg);
}

int bench_tee_1(struct bench_config *cfg) { return tee_scenario(cfg, 1); }
int bench_tee_2(struct bench_config *cfg) { return tee_scenario(cfg, 2); }
int bench_tee_4(struct bench_config *cfg) { return tee_scenario(cfg, 4); }
int bench_tee_8(struct bench_config *cfg) { return tee_scenario(cfg, 8); }

/* ---- broadcast ---- */

static int broadcast_run(struct bench_case *c, struct bench_config *cfg, struct bench_tool *t,
			 bool verify, struct bench_run *run)
{
	uint64_t sent = c->bytes / BROADCAST_CLIENTS;
	struct bench_svc bc = { 0 }, cl = { 0 };
	struct bench_proc src = { .role = BENCH_SOURCE, .fn = bench_pattern_source, .arg = &sent };
	char port_s[16], n_s[16], ready[4200], *text = NULL, line[300];
	char *cargv[12];
	int p[2] = { -1, -1 }, port = bench_free_port(), k = 0, ret = -1, r;
	struct bench_mem mem;
	double secs, until;

	run_clear(run);
	if (port < 0 || pipe2(p, O_CLOEXEC) < 0) {
		bench_tool_fail(t, c, "no free port or pipe");
		return -1;
	}
	if (bench_tool_server_start(c, cfg, t, &bc, p[0], port, 0, verify) < 0)
		goto out;
	close(p[0]);
	p[0] = -1;
	snprintf(port_s, sizeof(port_s), "%d", port);
	snprintf(n_s, sizeof(n_s), "%d", BROADCAST_CLIENTS);
	snprintf(ready, sizeof(ready), "%s/clients.ready", cfg->dir);
	snprintf(cl.errpath, sizeof(cl.errpath), "%s/client.out", cfg->dir);
	unlink(ready);
	cargv[k++] = cfg->loadgen;
	cargv[k++] = "fanout";
	cargv[k++] = "-n";
	cargv[k++] = n_s;
	cargv[k++] = "--ready";
	cargv[k++] = ready;
	if (verify) {
		cargv[k++] = "--verify";
		cargv[k++] = bench_pattern.path;
	}
	cargv[k++] = port_s;
	cargv[k] = NULL;
	if (bench_svc_start(&cl, cargv, -1, 0, ready, 30) < 0) {
		bench_first_line(cl.errpath, line, sizeof(line));
		bench_tool_fail(t, c, "clients did not connect: %s", line);
		goto out;
	}
	/* Connected is not yet accepted: wait until the broadcaster holds
	 * them all, or some would miss the start of the stream. */
	until = bench_now() + 20;
	do {
		if (bench_tree_mem(bc.pid, &mem) < 0 || mem.sockets > BROADCAST_CLIENTS)
			break;
		usleep(5000);
	} while (bench_now() < until);
	if (mem.sockets <= BROADCAST_CLIENTS) {
		bench_tool_fail(t, c, "the broadcaster holds %u sockets, want %d clients + 1",
				mem.sockets, BROADCAST_CLIENTS);
		goto out;
	}
	bc.cpu0 = bench_tree_cpu(bc.pid, NULL);
	src.shared = bench_shared_get(BENCH_SOURCE);
	memset(src.shared, 0, sizeof(*src.shared));
	src.fd[0] = src.fd[2] = -1;
	src.fd[1] = p[1];
	r = bench_procs_run(&src, 1, &p[1], 1, 60 + (unsigned)(c->bytes / (20u << 20)), &secs);
	if (r < 0 || !bench_proc_ok(&src)) {
		bench_tool_fail(t, c, "source failed: %s", strerror(src.shared->err ? src.shared->err : EIO));
		goto out;
	}
	run->cpu[BENCH_SOURCE] = bench_proc_cpu(&src);
	/* The clients end when the broadcaster has sent everything and
	 * closed; then it exits by itself. */
	bench_svc_stop(&cl, SIGTERM, 60 + (double)c->bytes / (20u << 20), 5);
	run->cpu[BENCH_SINK] = cl.cpu + cl.cpu0;
	text = bench_slurp(cl.errpath, 64 * 1024);
	if (!WIFEXITED(cl.status) || WEXITSTATUS(cl.status) != 0 ||
	    bench_kv(text, "bytes") != (double)c->bytes) {
		bench_tool_fail(t, c, "clients: %s", text ? text : "");
		goto out;
	}
	if (bench_tool_server_stop(cfg, t, &bc, verify, 15) < 0 ||
	    !WIFEXITED(bc.status) || WEXITSTATUS(bc.status) != 0) {
		bench_last_line(bc.errpath, line, sizeof(line));
		bench_tool_fail(t, c, "the broadcaster did not exit 0 at the end of its input: %s", line);
		goto out;
	}
	run->cpu[BENCH_TOOL] = bc.cpu;
	run->seconds = bench_kv(text, "seconds");
	run->bytes = (int64_t)c->bytes;
	for (int i = 0; i < BENCH_ROLES; i++)
		run->cpu_total += run->cpu[i];
	if (verify)
		t->checksum_ok = 1;
	ret = 0;
out:
	if (cl.pid)
		bench_svc_stop(&cl, SIGKILL, 0, 5);
	if (bc.pid)
		bench_svc_stop(&bc, SIGKILL, 0, 5);
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
	free(text);
	return ret;
}

int bench_broadcast(struct bench_config *cfg)
{
	char *zb[] = { cfg->zcio, "broadcast", "--listen", "127.0.0.1:@PORT@", "--policy", "block",
		       "--quiet", NULL };
	char *zc[] = { cfg->zcio, "broadcast", "--listen", "127.0.0.1:@PORT@", "--policy", "block",
		       "--copy", "--quiet", NULL };
	struct bench_case *c;
	char sz[32], sz2[32];
	int r;

	if (!cfg->loadgen[0]) {
		cli_error("bench", "build/bench/loadgen not found beside zcio (make bench-tools)");
		return -ENOENT;
	}
	bench_raise_nofile();
	r = bench_pattern_make(cfg);
	if (r < 0)
		return r;
	c = bench_case_new(cfg, "broadcast", "broadcast");
	if (!c)
		return -ENOMEM;
	c->runner = broadcast_run;
	c->conns = BROADCAST_CLIENTS;
	/* A sixteenth of the stream size to each of 100 clients. */
	c->bytes = (cfg->stream_size / 16 ? cfg->stream_size / 16 : 1) * BROADCAST_CLIENTS;
	c->plumbing = "source (splice from the pattern) | TOOL --policy block -> 100 loadgen fanout "
		      "clients on 127.0.0.1 (recv MSG_TRUNC)";
	snprintf(c->title, sizeof(c->title),
		 "%s to each of %d loopback clients (%s delivered in all)",
		 cli_format_size(c->bytes / BROADCAST_CLIENTS, sz, sizeof(sz)), BROADCAST_CLIENTS,
		 cli_format_size(c->bytes, sz2, sizeof(sz2)));
	bench_case_add(c, "zcio broadcast", BENCH_PARSE_NONE, true, zb);
	bench_case_add(c, "zcio broadcast --copy", BENCH_PARSE_NONE, true, zc);
	c->main_peer = "zcio broadcast --copy";
	bench_case_target(c, "zcio broadcast", "zcio broadcast --copy", "throughput", 2.0);
	return bench_run_and_print(c, cfg);
}
