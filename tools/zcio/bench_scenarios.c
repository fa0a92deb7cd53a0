/*
 * bench_scenarios.c - what each scenario of `zcio bench` runs: its input,
 * its plumbing, zcio's commands and the peers they are compared with, and
 * the targets the project has set for them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"

/*
 * socat's fairest setup: it gets the same fds as every other tool (no
 * connect or file open of its own, `socat -u STDIN STDOUT`) and the buffer
 * size that made it fastest here, in interleaved runs of -b 8 KiB (its
 * default, 4-6x slower) up to 8 MiB: 1 MiB when it writes into the socket,
 * 4 MiB when it reads from it (bench/README.md has the numbers).
 */
#define SOCAT_BUF_TO_SOCKET "1048576"
#define SOCAT_BUF_FROM_SOCKET "4194304"

static char src_path[4200], out_path[4200], small_dir[4200];
static bool src_ready;
static uint64_t src_hash;

static char peer_cat[4096], peer_dd[4096], peer_pv[4096], peer_cp[4096], peer_socat[4096];
static const char *no_cat, *no_dd, *no_pv, *no_cp, *no_socat;

static void find_peers(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	if (bench_which("cat", peer_cat, sizeof(peer_cat)) < 0)
		no_cat = "cat not found in PATH";
	if (bench_which("dd", peer_dd, sizeof(peer_dd)) < 0)
		no_dd = "dd not found in PATH";
	if (bench_which("pv", peer_pv, sizeof(peer_pv)) < 0)
		no_pv = "pv not installed (Debian package pv)";
	if (bench_which("cp", peer_cp, sizeof(peer_cp)) < 0)
		no_cp = "cp not found in PATH";
	if (bench_which("socat", peer_socat, sizeof(peer_socat)) < 0)
		no_socat = "socat not installed (Debian package socat)";
}

static const char *gib(uint64_t n, char *buf, unsigned len)
{
	return cli_format_size(n, buf, len);
}

/* The big input file: created once, page-cached before every case. */
static int big_file(struct bench_config *cfg)
{
	struct bench_hash h;
	double cached;
	int64_t n;

	snprintf(src_path, sizeof(src_path), "%s/src", cfg->dir);
	snprintf(out_path, sizeof(out_path), "%s/out", cfg->dir);
	if (!src_ready) {
		char sz[32];
		double t0 = bench_now();
		int r;

		fprintf(stderr, "zcio: bench: writing %s test file %s\n",
			gib(cfg->size, sz, sizeof(sz)), src_path);
		r = bench_file_create(src_path, cfg->size, 1, true);
		if (r < 0) {
			cli_error("bench", "%s: %s", src_path, strerror(-r));
			return r;
		}
		bench_hash_init(&h);
		n = bench_file_hash(src_path, &h);
		if (n < 0 || (uint64_t)n != cfg->size) {
			cli_error("bench", "%s: read back %" PRId64 " bytes", src_path, n);
			return -EIO;
		}
		src_hash = bench_hash_final(&h);
		src_ready = true;
		fprintf(stderr, "zcio: bench: test file ready in %.1f s, hash %016" PRIx64 "\n",
			bench_now() - t0, src_hash);
	}
	/* Reading it once puts every page in the cache; check, since other
	 * cases' output files compete for memory. */
	cached = bench_file_cached(src_path);
	if (cached < 100.0) {
		bench_hash_init(&h);
		bench_file_hash(src_path, &h);
		cached = bench_file_cached(src_path);
	}
	if (cached < 100.0)
		fprintf(stderr, "zcio: bench: warning: only %.1f%% of %s is page-cached\n",
			cached, src_path);
	return 0;
}

static struct bench_case *big_case(struct bench_config *cfg, const char *scenario,
				   const char *id, enum bench_topo topo)
{
	struct bench_case *c = bench_case_new(cfg, scenario, id);

	if (!c)
		return NULL;
	c->topo = topo;
	c->src = src_path;
	c->bytes = cfg->size;
	c->hash = src_hash;
	if (topo == BENCH_TOPO_FILE || topo == BENCH_TOPO_OWN_FILE ||
	    topo == BENCH_TOPO_FROM_SOCK || topo == BENCH_TOPO_DEVNULL)
		c->out = out_path;
	return c;
}

int bench_run_and_print(struct bench_case *c, struct bench_config *cfg)
{
	int r = bench_case_run(c, cfg);

	bench_report_table(stdout, c);
	fflush(stdout);
	return r;
}

/* ---- cat-pipe ---- */

static void cat_pipe_tools(struct bench_case *c, struct bench_config *cfg)
{
	char *zcat[] = { cfg->zcio, "cat", "--stats", src_path, NULL };
	char *zcopy[] = { cfg->zcio, "cat", "--copy", "--stats", src_path, NULL };
	char *cat[] = { peer_cat, src_path, NULL };
	char ifarg[4300];
	char *dd[] = { peer_dd, ifarg, "bs=1M", NULL };
	char *pv[] = { peer_pv, "-q", src_path, NULL };
	char *sl[] = { cfg->splice_loop, src_path, NULL };
	char *slg[] = { cfg->splice_loop, "--grow", src_path, NULL };
	const char *nosl = cfg->splice_loop[0] ? NULL :
			   "build/bench/splice-loop not found beside zcio (make bench-tools)";
	const char *sink_missing = c->sink == BENCH_SINK_PV ? no_pv : NULL;

	snprintf(ifarg, sizeof(ifarg), "if=%s", src_path);
#define ADD(name, why, parse, zcio, argv) \
	do { \
		const char *w = sink_missing ? "the pv sink is not installed" : (why); \
		if (w) \
			bench_case_skip(c, name, w); \
		else \
			bench_case_add(c, name, parse, zcio, argv); \
	} while (0)
	ADD("zcio cat", NULL, BENCH_PARSE_ZCIO, true, zcat);
	ADD("zcio cat --copy", NULL, BENCH_PARSE_ZCIO, true, zcopy);
	ADD("cat", no_cat, BENCH_PARSE_NONE, false, cat);
	ADD("dd bs=1M", no_dd, BENCH_PARSE_DD, false, dd);
	ADD("pv", no_pv, BENCH_PARSE_NONE, false, pv);
	ADD("splice-loop", nosl, BENCH_PARSE_SPLICE_LOOP, false, sl);
	ADD("splice-loop --grow", nosl, BENCH_PARSE_SPLICE_LOOP, false, slg);
#undef ADD
	c->main_peer = "cat";
}

static int scenario_cat_pipe(struct bench_config *cfg)
{
	struct bench_case *c;
	char sz[32];
	int r;

	find_peers();
	r = big_file(cfg);
	if (r < 0)
		return r;
	gib(cfg->size, sz, sizeof(sz));

	c = big_case(cfg, "cat-pipe", "cat-pipe.pv", BENCH_TOPO_PIPE);
	if (!c)
		return -ENOMEM;
	c->sink = BENCH_SINK_PV;
	snprintf(c->title, sizeof(c->title),
		 "%s page-cached file | pv -q >/dev/null (a sink that splices)", sz);
	cat_pipe_tools(c, cfg);
	bench_case_target(c, "zcio cat", "cat", "throughput", 5.0);
	bench_case_target(c, "zcio cat", "splice-loop", "throughput", 0.9);
	bench_case_target(c, "zcio cat", "splice-loop --grow", "throughput", 0.9);
	bench_case_target(c, "zcio cat", "cat", "cpu", 0.2);
	r = bench_run_and_print(c, cfg);
	if (r < 0)
		return r;

	c = big_case(cfg, "cat-pipe", "cat-pipe.read", BENCH_TOPO_PIPE);
	if (!c)
		return -ENOMEM;
	c->sink = BENCH_SINK_READER;
	snprintf(c->title, sizeof(c->title),
		 "%s page-cached file | a reader that read()s every byte, 128 KiB at a time", sz);
	cat_pipe_tools(c, cfg);
	return bench_run_and_print(c, cfg);
}

/* ---- cp ---- */

static int scenario_cp(struct bench_config *cfg)
{
	struct bench_case *c;
	char sz[32];
	int r;

	find_peers();
	r = big_file(cfg);
	if (r < 0)
		return r;
	c = big_case(cfg, "cp", "cp", BENCH_TOPO_OWN_FILE);
	if (!c)
		return -ENOMEM;
	snprintf(c->title, sizeof(c->title),
		 "%s page-cached file to a new file on the same filesystem (deleted after each run)",
		 gib(cfg->size, sz, sizeof(sz)));
	unlink(out_path);
	{
		char *zcp[] = { cfg->zcio, "cp", "--stats", src_path, out_path, NULL };
		char *zcopy[] = { cfg->zcio, "cp", "--copy", "--stats", src_path, out_path, NULL };
		char *cp[] = { peer_cp, src_path, out_path, NULL };

		bench_case_add(c, "zcio cp", BENCH_PARSE_ZCIO, true, zcp);
		bench_case_add(c, "zcio cp --copy", BENCH_PARSE_ZCIO, true, zcopy);
		if (no_cp)
			bench_case_skip(c, "cp", no_cp);
		else
			bench_case_add(c, "cp", BENCH_PARSE_NONE, false, cp);
	}
	c->main_peer = "cp";
	bench_case_target(c, "zcio cp", "cp", "throughput", 0.95);
	return bench_run_and_print(c, cfg);
}

/* ---- file-socket and socket-file ---- */

static void socket_tools(struct bench_case *c, struct bench_config *cfg, bool from_file)
{
	char *zcat[] = { cfg->zcio, "cat", "--stats", from_file ? src_path : NULL, NULL };
	char *zcopy[] = { cfg->zcio, "cat", "--copy", "--stats", from_file ? src_path : NULL, NULL };
	char *socat[] = { peer_socat, "-u", "-b",
			  from_file ? SOCAT_BUF_TO_SOCKET : SOCAT_BUF_FROM_SOCKET,
			  "STDIN", "STDOUT", NULL };
	char *cat[] = { peer_cat, NULL };
	struct bench_tool *t;

	bench_case_add(c, "zcio cat", BENCH_PARSE_ZCIO, true, zcat);
	bench_case_add(c, "zcio cat --copy", BENCH_PARSE_ZCIO, true, zcopy);
	if (no_socat) {
		bench_case_skip(c, "socat", no_socat);
	} else {
		t = bench_case_add(c, "socat", BENCH_PARSE_NONE, false, socat);
		/* socat reads the file through its stdin: no open of its own. */
		if (t && from_file)
			t->stdin_path = src_path;
	}
	if (no_cat) {
		bench_case_skip(c, "cat", no_cat);
	} else {
		t = bench_case_add(c, "cat", BENCH_PARSE_NONE, false, cat);
		if (t && from_file)
			t->stdin_path = src_path;
	}
	c->main_peer = "socat";
	bench_case_target(c, "zcio cat", "socat", "throughput", 1.3);
}

static int scenario_file_socket(struct bench_config *cfg)
{
	struct bench_case *c;
	char sz[32];
	int r;

	find_peers();
	r = big_file(cfg);
	if (r < 0)
		return r;
	c = big_case(cfg, "file-socket", "file-socket", BENCH_TOPO_TO_SOCK);
	if (!c)
		return -ENOMEM;
	snprintf(c->title, sizeof(c->title),
		 "%s page-cached file > loopback TCP socket; a reader read()s the other end",
		 gib(cfg->size, sz, sizeof(sz)));
	socket_tools(c, cfg, true);
	return bench_run_and_print(c, cfg);
}

static int scenario_socket_file(struct bench_config *cfg)
{
	struct bench_case *c;
	char sz[32];
	int r;

	find_peers();
	r = big_file(cfg);
	if (r < 0)
		return r;
	c = big_case(cfg, "socket-file", "socket-file", BENCH_TOPO_FROM_SOCK);
	if (!c)
		return -ENOMEM;
	snprintf(c->title, sizeof(c->title),
		 "%s sent with sendfile() into loopback TCP; tool < socket > new file",
		 gib(cfg->size, sz, sizeof(sz)));
	socket_tools(c, cfg, false);
	return bench_run_and_print(c, cfg);
}

/* ---- small ---- */

static char **small_names;
static uint64_t small_bytes, small_hash;

static int small_files(struct bench_config *cfg)
{
	struct bench_hash h;
	uint64_t seed = 12345;
	double t0 = bench_now();

	if (small_names)
		return 0;
	snprintf(small_dir, sizeof(small_dir), "%s/small", cfg->dir);
	if (mkdir(small_dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	small_names = calloc(cfg->files + 1, sizeof(*small_names));
	if (!small_names)
		return -ENOMEM;
	bench_hash_init(&h);
	for (unsigned i = 0; i < cfg->files; i++) {
		char path[4300], name[32];
		uint64_t size;
		int64_t n;
		int r;

		/* Sizes spread evenly over 1..16 KiB, the same every time. */
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		size = 1024 + (seed >> 33) % (15 * 1024 + 1);
		snprintf(name, sizeof(name), "f%05u", i);
		snprintf(path, sizeof(path), "%s/%s", small_dir, name);
		small_names[i] = strdup(name);
		r = bench_file_create(path, size, i + 100, false);
		if (r < 0)
			return r;
		n = bench_file_hash(path, &h);
		if (n < 0 || (uint64_t)n != size)
			return -EIO;
		small_bytes += size;
	}
	small_hash = bench_hash_final(&h);
	/* One writeback for all of them, before any timing. */
	{
		int dfd = open(small_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd >= 0) {
			syncfs(dfd);
			close(dfd);
		}
	}
	fprintf(stderr, "zcio: bench: %u small files (%" PRIu64 " bytes) ready in %.1f s\n",
		cfg->files, small_bytes, bench_now() - t0);
	return 0;
}

/* argv: prefix..., then every small file name, relative to small_dir. */
static char **small_argv(char *const *prefix)
{
	unsigned np = 0, nf = 0;
	char **argv;

	while (prefix[np])
		np++;
	while (small_names[nf])
		nf++;
	argv = calloc(np + nf + 1, sizeof(*argv));
	if (!argv)
		return NULL;
	memcpy(argv, prefix, np * sizeof(*argv));
	memcpy(argv + np, small_names, nf * sizeof(*argv));
	return argv;
}

static int scenario_small(struct bench_config *cfg)
{
	static const struct {
		const char *id;
		enum bench_topo topo;
		const char *what;
	} outs[] = {
		{ "small.pipe", BENCH_TOPO_PIPE, "a pipe read by a reader, 128 KiB at a time" },
		{ "small.null", BENCH_TOPO_DEVNULL, "/dev/null" },
		{ "small.file", BENCH_TOPO_FILE, "a new file (deleted after each run)" },
	};
	int r;

	find_peers();
	r = small_files(cfg);
	if (r < 0) {
		cli_error("bench", "small files: %s", strerror(-r));
		return r;
	}
	snprintf(out_path, sizeof(out_path), "%s/out", cfg->dir);
	for (size_t k = 0; k < sizeof(outs) / sizeof(outs[0]); k++) {
		char *zp[] = { cfg->zcio, "cat", "--stats", NULL };
		char *zc[] = { cfg->zcio, "cat", "--copy", "--stats", NULL };
		char *cp[] = { peer_cat, NULL };
		char **a;
		struct bench_case *c = bench_case_new(cfg, "small", outs[k].id);

		if (!c)
			return -ENOMEM;
		c->topo = outs[k].topo;
		c->sink = BENCH_SINK_READER;
		c->cwd = small_dir;
		c->out = out_path;
		c->bytes = small_bytes;
		c->hash = small_hash;
		/* One run of zcio takes tens of milliseconds: take twice as
		 * many to keep the medians steady. */
		c->runs = cfg->runs * 2;
		snprintf(c->title, sizeof(c->title),
			 "%u page-cached files of 1-16 KiB, one invocation, to %s",
			 cfg->files, outs[k].what);
		a = small_argv(zp);
		if (a)
			bench_case_add(c, "zcio cat", BENCH_PARSE_ZCIO, true, a);
		free(a);
		a = small_argv(zc);
		if (a)
			bench_case_add(c, "zcio cat --copy", BENCH_PARSE_ZCIO, true, a);
		free(a);
		if (no_cat) {
			bench_case_skip(c, "cat", no_cat);
		} else {
			a = small_argv(cp);
			if (a)
				bench_case_add(c, "cat", BENCH_PARSE_NONE, false, a);
			free(a);
		}
		c->main_peer = "cat";
		bench_case_target(c, "zcio cat", "cat", "time", 1.05);
		r = bench_run_and_print(c, cfg);
		if (r < 0)
			return r;
	}
	return 0;
}

static int scenario_threshold(struct bench_config *cfg)
{
	return bench_threshold_run(cfg);
}

/* The order of `zcio bench` with no scenario named; bench.c knows which
 * of them need the big file (the first four). */
const struct bench_scenario bench_scenarios[] = {
	{ "cat-pipe", "a big file into a pipe, two kinds of reader", scenario_cat_pipe },
	{ "cp", "a big file to a new file", scenario_cp },
	{ "file-socket", "a big file into a loopback TCP socket", scenario_file_socket },
	{ "socket-file", "a loopback TCP socket into a new file", scenario_socket_file },
	{ "small", "thousands of 1-16 KiB files through one cat", scenario_small },
	{ "threshold", "zero-copy against copying, 1 KiB to 1 MiB, in-process", scenario_threshold },
	{ "relay-stream", "one big stream through a TCP relay (socat, haproxy)", bench_relay_stream },
	{ "relay-many", "256 streams, and 64 request/reply loops, through a relay", bench_relay_many },
	{ "relay-idle", "5,000 idle connections through a relay: memory, pipes", bench_relay_idle },
	{ "serve-1k", "wrk fetching a 1 KiB file (nginx, lighttpd)", bench_serve_1k },
	{ "serve-64k", "wrk fetching a 64 KiB file", bench_serve_64k },
	{ "serve-1m", "wrk fetching a 1 MiB file", bench_serve_1m },
	{ "serve-64m", "wrk fetching a 64 MiB file", bench_serve_64m },
	{ "tee-1", "a pipe into 1 output (coreutils tee)", bench_tee_1 },
	{ "tee-2", "a pipe into 2 outputs", bench_tee_2 },
	{ "tee-4", "a pipe into 4 outputs", bench_tee_4 },
	{ "tee-8", "a pipe into 8 outputs", bench_tee_8 },
	{ "broadcast", "one stream to 100 loopback clients", bench_broadcast },
	{ "send-sizes", "zcio calibrate --report: message sizes per send method", bench_calib_send_sizes },
	{ "recv", "zcio calibrate --report: read() against zero-copy receive", bench_calib_recv },
};
const unsigned bench_nscenarios = sizeof(bench_scenarios) / sizeof(bench_scenarios[0]);
