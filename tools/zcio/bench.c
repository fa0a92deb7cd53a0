/*
 * bench.c - `zcio bench`: measure zcio against the tools people already use
 * (cat, cp, dd, pv, socat, a hand-written splice loop) on this machine, in
 * one interleaved run, and say whether zero-copy really happened and whether
 * every output was right.  The scenarios are in bench_scenarios.c; see
 * bench.h for the map of the other files and bench/README.md for the JSON.
 */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"

#define DEFAULT_RUNS 5
#define DEFAULT_SIZE (2ull << 30)
#define DEFAULT_FILES 5000
#define DEFAULT_STREAM (4ull << 30)
#define DEFAULT_DURATION 10.0
#define MAX_CHOSEN 64

/* Names that stand for several scenarios. */
static const struct {
	const char *name;
	const char *members[5];
} groups[] = {
	{ "relay", { "relay-stream", "relay-many", "relay-idle", NULL } },
	{ "serve", { "serve-1k", "serve-64k", "serve-1m", "serve-64m", NULL } },
	{ "tee", { "tee-1", "tee-2", "tee-4", "tee-8", NULL } },
};

/* Scenarios that read the big --size file. */
static bool needs_big_file(const char *name)
{
	return !strcmp(name, "cat-pipe") || !strcmp(name, "cp") ||
	       !strcmp(name, "file-socket") || !strcmp(name, "socket-file");
}

/* Find a bench tool built beside zcio: build/zcio -> build/bench/NAME;
 * build/asan/zcio -> build/asan/../bench/NAME.  "" when missing. */
static void find_beside(const char *zcio, const char *name, char *out, size_t len)
{
	static const char *const where[] = { "/bench/", "/../bench/" };
	const char *slash = strrchr(zcio, '/');

	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		snprintf(out, len, "%.*s%s%s", (int)(slash - zcio), zcio, where[i], name);
		if (access(out, X_OK) == 0)
			return;
	}
	out[0] = '\0';
}

static const struct cli_option bench_options[] = {
	{ NULL, "--runs", "N", "Timed runs per tool and case (default 5); medians are over them." },
	{ NULL, "--size", "BYTES", "Size of the big test file (default 2G)." },
	{ NULL, "--files", "N", "Number of files in the small scenario (default 5000)." },
	{ NULL, "--json", "FILE", "Write every result as JSON to FILE (schema: bench/README.md)." },
	{ NULL, "--dir", "DIR", "Make the scratch directory in DIR (default $TMPDIR, else /var/tmp)." },
	{ NULL, "--keep", NULL, "Keep the scratch directory and its files afterwards." },
	{ NULL, "--no-strace", NULL, "Do not trace the verification runs' syscalls with strace." },
	{ NULL, "--stream-size", "BYTES", "Bytes of the relay-stream and tee streams (default 4G, or --size when given)." },
	{ NULL, "--duration", "SECONDS", "Length of each fixed-time run: wrk, request/reply (default 10)." },
	{ NULL, "--netns", "A:B", "send-sizes and recv: measure across these network namespaces (scripts/netns-testbed up)." },
	{ NULL, "--row-seconds", "SECONDS", "send-sizes and recv: length of one timed row (default 0.32); longer rows blur less." },
	{ NULL, NULL, NULL, NULL },
};

static int bench_main(int argc, char **argv);

const struct cli_command cli_bench = {
	.name = "bench",
	.synopsis = "[--runs N] [--size BYTES] [--duration S] [--json FILE] [--dir DIR] [SCENARIO...]",
	.summary = "measure zcio against cat, cp, socat, haproxy, nginx, tee on this machine",
	.description =
		"Runs each SCENARIO (default: all) with zcio and its peers side by\n"
		"side, interleaving their runs (A B C A B C ...) so that drift on the\n"
		"machine hits all of them alike.  Prints per tool the median\n"
		"throughput, the CPU seconds per GiB of every process involved\n"
		"(source, tool and consumer), the ratio to the main peer, whether\n"
		"zero-copy really happened (zcio's --stats, or the syscalls strace\n"
		"saw), and whether a checksum of the output matched the input.\n"
		"\n"
		"Scenarios:\n"
		"  cat-pipe     a page-cached file into a pipe, read by pv -q (which\n"
		"               splices) and by a reader that read()s every byte;\n"
		"               peers cat, dd bs=1M, pv, zcio cat --copy, splice-loop\n"
		"  cp           a file to a new file; peers cp, zcio cp --copy\n"
		"  file-socket  a file into loopback TCP; peers socat, cat, --copy\n"
		"  socket-file  loopback TCP into a new file; same peers\n"
		"  small        5000 files of 1-16 KiB through one cat, to a pipe,\n"
		"               /dev/null and a file; peer cat\n"
		"  threshold    in-process zcio_copy with and without zero-copy from\n"
		"               1 KiB to 1 MiB: where zero-copy starts to win\n"
		"  relay-stream one 4 GiB stream through zcio relay; peers socat -b\n"
		"               65536, haproxy with and without splice, --copy, and\n"
		"               no relay at all (the limit)\n"
		"  relay-many   256 streams of 16 MiB at once, and 64 connections of\n"
		"               1 KiB requests for 64 KiB replies (req/s, p50, p99)\n"
		"  relay-idle   5,000 idle connections: the relay's RSS and pipes\n"
		"  serve-1k serve-64k serve-1m serve-64m (or serve: all four)\n"
		"               wrk -t2 -c64 against zcio serve, nginx, lighttpd\n"
		"  tee-1 tee-2 tee-4 tee-8 (or tee: all four)\n"
		"               a 4 GiB stream into N outputs; peers tee, --copy\n"
		"  broadcast    one stream to 100 loopback clients; peer --copy\n"
		"  send-sizes recv   zcio calibrate --report, folded into the results\n"
		"(relay: relay-stream relay-many relay-idle.)\n"
		"\n"
		"Test files go in a fresh scratch directory, removed afterwards.\n"
		"Exit status 1 means some run failed or gave wrong output; missed\n"
		"targets are reported, not treated as errors.",
	.options = bench_options,
	.examples =
		"zcio bench\n"
		"zcio bench cat-pipe cp --runs 3 --size 256M\n"
		"zcio bench relay-stream serve-64k tee-4 --runs 3 --duration 5\n"
		"zcio bench --json results.json threshold",
	.run = bench_main,
};

static void on_stop(int sig)
{
	(void)sig;
	bench_stop = 1;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static const struct bench_scenario *scenario_find(const char *name)
{
	for (unsigned i = 0; i < bench_nscenarios; i++)
		if (!strcmp(bench_scenarios[i].name, name))
			return &bench_scenarios[i];
	return NULL;
}

static int parse_count(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > max)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* strace must not only exist but be allowed to trace (containers). */
static void find_strace(struct bench_config *cfg)
{
	static char path[4096];
	char *argv[] = { path, "-f", "-c", "-o", "/dev/null", "true", NULL };
	struct bench_proc p = { .role = BENCH_TOOL, .argv = argv, .fd = { -1, -1, -1 } };
	double secs;

	cfg->strace = NULL;
	if (bench_which("strace", path, sizeof(path)) < 0) {
		fprintf(stderr, "zcio: bench: strace not installed: syscalls of peers not traced\n");
		return;
	}
	if (bench_procs_run(&p, 1, NULL, 0, 30, &secs) < 0 || !bench_proc_ok(&p)) {
		fprintf(stderr, "zcio: bench: strace cannot trace here: syscalls not traced\n");
		return;
	}
	cfg->strace = path;
}

static int scratch_make(struct bench_config *cfg, bool big)
{
	const char *base = cfg->base_dir;
	struct statvfs sv;
	uint64_t need;

	if (!base)
		base = getenv("TMPDIR");
	if (!base || !*base)
		base = "/var/tmp";
	snprintf(cfg->dir, sizeof(cfg->dir), "%s/zcio-bench.XXXXXX", base);
	if (!mkdtemp(cfg->dir)) {
		cli_error("bench", "cannot make a scratch directory in %s: %s", base, strerror(errno));
		return -errno;
	}
	/* The source and one output at a time, the small files, slack. */
	need = (big ? 2 * cfg->size : 0) + (uint64_t)cfg->files * 16384 + (200u << 20);
	if (statvfs(cfg->dir, &sv) == 0 && (uint64_t)sv.f_bavail * sv.f_frsize < need) {
		char a[32], b[32];

		cli_error("bench", "%s has %s free, the benchmark needs %s (try --size or --dir)",
			  cfg->dir, cli_format_size((uint64_t)sv.f_bavail * sv.f_frsize, a, sizeof(a)),
			  cli_format_size(need, b, sizeof(b)));
		rmdir(cfg->dir);
		return -ENOSPC;
	}
	return 0;
}

static int bench_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "runs", required_argument, NULL, 'r' },
		{ "size", required_argument, NULL, 's' },
		{ "files", required_argument, NULL, 'f' },
		{ "json", required_argument, NULL, 'j' },
		{ "dir", required_argument, NULL, 'd' },
		{ "keep", no_argument, NULL, 'k' },
		{ "no-strace", no_argument, NULL, 'S' },
		{ "stream-size", required_argument, NULL, 'Z' },
		{ "duration", required_argument, NULL, 'D' },
		{ "netns", required_argument, NULL, 'N' },
		{ "row-seconds", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench_config cfg = {
		.runs = DEFAULT_RUNS, .size = DEFAULT_SIZE, .files = DEFAULT_FILES,
		.duration = DEFAULT_DURATION,
	};
	const struct bench_scenario *chosen[MAX_CHOSEN];
	unsigned nchosen = 0;
	bool no_strace = false, big = false, failed = false, size_set = false;
	struct sigaction sa = { .sa_handler = on_stop };
	struct utsname un;
	char sz[32], sz2[32];
	ssize_t n;
	int opt, r = 0;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			if (parse_count(optarg, 1000, &cfg.runs) < 0) {
				cli_error("bench", "--runs: not a count from 1 to 1000: %s", optarg);
				return CLI_USAGE;
			}
			break;
		case 's':
			if (cli_parse_size(optarg, &cfg.size) < 0 || cfg.size == 0) {
				cli_error("bench", "--size: not a size: %s", optarg);
				return CLI_USAGE;
			}
			size_set = true;
			break;
		case 'Z':
			if (cli_parse_size(optarg, &cfg.stream_size) < 0 || cfg.stream_size == 0) {
				cli_error("bench", "--stream-size: not a size: %s", optarg);
				return CLI_USAGE;
			}
			break;
		case 'D': {
			char *end;

			cfg.duration = strtod(optarg, &end);
			if (end == optarg || *end || !(cfg.duration >= 0.5 && cfg.duration <= 3600)) {
				cli_error("bench", "--duration: not 0.5 to 3600 seconds: %s", optarg);
				return CLI_USAGE;
			}
			break;
		}
		case 'R': {
			char *end;

			cfg.row_seconds = strtod(optarg, &end);
			if (end == optarg || *end || !(cfg.row_seconds >= 0.05 && cfg.row_seconds <= 60)) {
				cli_error("bench", "--row-seconds: not 0.05 to 60 seconds: %s", optarg);
				return CLI_USAGE;
			}
			break;
		}
		case 'N':
			if (!strchr(optarg, ':')) {
				cli_error("bench", "--netns: want A:B, got %s", optarg);
				return CLI_USAGE;
			}
			cfg.netns = optarg;
			break;
		case 'f':
			if (parse_count(optarg, 100000, &cfg.files) < 0) {
				cli_error("bench", "--files: not a count from 1 to 100000: %s", optarg);
				return CLI_USAGE;
			}
			break;
		case 'j':
			cfg.json = optarg;
			break;
		case 'd':
			cfg.base_dir = optarg;
			break;
		case 'k':
			cfg.keep = true;
			break;
		case 'S':
			no_strace = true;
			break;
		case 'h':
			cli_usage(&cli_bench, false);
			return CLI_OK;
		default:
			cli_usage(&cli_bench, true);
			return CLI_USAGE;
		}
	}
	for (int i = optind; i < argc; i++) {
		const struct bench_scenario *s = scenario_find(argv[i]);
		bool grouped = false;

		if (!strcmp(argv[i], "all")) {
			for (unsigned k = 0; k < bench_nscenarios && nchosen < MAX_CHOSEN; k++)
				chosen[nchosen++] = &bench_scenarios[k];
			continue;
		}
		for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
			if (strcmp(groups[g].name, argv[i]))
				continue;
			grouped = true;
			for (unsigned k = 0; groups[g].members[k] && nchosen < MAX_CHOSEN; k++)
				chosen[nchosen++] = scenario_find(groups[g].members[k]);
		}
		if (grouped)
			continue;
		if (!s) {
			cli_error("bench", "no scenario %s; there are:", argv[i]);
			for (unsigned k = 0; k < bench_nscenarios; k++)
				fprintf(stderr, "  %-12s %s\n", bench_scenarios[k].name,
					bench_scenarios[k].summary);
			fprintf(stderr, "  (relay, serve and tee name their groups; all: everything)\n");
			return CLI_USAGE;
		}
		if (nchosen < MAX_CHOSEN)
			chosen[nchosen++] = s;
	}
	if (!nchosen)
		for (unsigned k = 0; k < bench_nscenarios; k++)
			chosen[nchosen++] = &bench_scenarios[k];
	for (unsigned i = 0; i < nchosen; i++)
		big = big || needs_big_file(chosen[i]->name);
	if (!cfg.stream_size)
		cfg.stream_size = size_set ? cfg.size : DEFAULT_STREAM;

	/* The tool under test is this very binary. */
	n = readlink("/proc/self/exe", cfg.zcio, sizeof(cfg.zcio) - 1);
	if (n <= 0) {
		cli_error("bench", "cannot find my own binary: %s", strerror(errno));
		return CLI_ERROR;
	}
	cfg.zcio[n] = '\0';
	find_beside(cfg.zcio, "splice-loop", cfg.splice_loop, sizeof(cfg.splice_loop));
	find_beside(cfg.zcio, "loadgen", cfg.loadgen, sizeof(cfg.loadgen));
	if (!no_strace)
		find_strace(&cfg);

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	r = scratch_make(&cfg, big);
	if (r < 0)
		return CLI_ERROR;
	uname(&un);
	cfg.load_start = bench_loadavg();
	/* Two busy cores are enough to halve a result: say so up front. */
	if (cfg.load_start > 0.5)
		fprintf(stderr, "zcio: bench: warning: load average is %.2f: other work "
			"on this machine will blur the results\n", cfg.load_start);
	printf("zcio bench: Linux %s, %ld cores; big file %s, streams %s, %u runs per tool, "
	       "%g s fixed-time runs, load %.2f, scratch %s\n",
	       un.release, sysconf(_SC_NPROCESSORS_ONLN), cli_format_size(cfg.size, sz, sizeof(sz)),
	       cli_format_size(cfg.stream_size, sz2, sizeof(sz2)), cfg.runs, cfg.duration,
	       cfg.load_start, cfg.dir);
	fflush(stdout);

	for (unsigned i = 0; i < nchosen && !bench_stop; i++) {
		r = chosen[i]->run(&cfg);
		if (r < 0 && r != -EINTR) {
			cli_error("bench", "%s: %s", chosen[i]->name, strerror(-r));
			failed = true;
		}
	}
	cfg.load_end = bench_loadavg();
	for (unsigned k = 0; k < bench_ncases; k++)
		failed = failed || bench_cases[k]->failed;
	bench_report_targets(stdout);

	if (cfg.json) {
		r = bench_report_json(cfg.json, &cfg);
		if (r < 0) {
			cli_error("bench", "%s: %s", cfg.json, strerror(-r));
			failed = true;
		}
	}
	if (cfg.keep)
		fprintf(stderr, "zcio: bench: kept %s\n", cfg.dir);
	else
		nftw(cfg.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	for (unsigned k = 0; k < bench_ncases; k++)
		bench_case_free(bench_cases[k]);
	free(bench_cases);
	bench_cases = NULL;
	bench_ncases = 0;
	if (bench_stop) {
		cli_error("bench", "interrupted");
		return CLI_ERROR;
	}
	if (failed)
		cli_error("bench", "some runs failed or gave wrong output (see above)");
	return failed ? CLI_ERROR : CLI_OK;
}
