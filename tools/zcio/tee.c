/*
 * tee.c - `zcio tee`: standard input to standard output and to each DEST,
 * like tee(1), through a zcio fan-out: the stream is duplicated by page
 * reference with tee(), not copied once per output.
 *
 * A DEST is a file, tcp:HOST:PORT or unix:PATH (connected to as a client).
 * One poll() loop drives the fan-out; there is no other thread.
 *
 * Output errors behave like `tee -p` (--output-error=warn-nopipe): an
 * output whose reader has gone (a closed pipe) is dropped quietly and the
 * others carry on; any other failing output is reported and dropped, and
 * the exit status becomes 1.  When no output is left, zcio tee stops
 * reading.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "cli.h"
#include "tee_uring.h"

#define CMD "tee"
/* How long connecting to a tcp: or unix: DEST may take. */
#define CONNECT_TIMEOUT_MS 10000

enum { OPT_APPEND, OPT_POLICY, OPT_DROP_AFTER, OPT_COPY, OPT_STATS, OPT_PIPE_SIZE, OPT_URING };

static const struct cli_option tee_options[] = {
	[OPT_APPEND] = { "-a", "--append", NULL, "append to the given files, do not overwrite" },
	[OPT_POLICY] = { NULL, "--policy", "POLICY",
			 "what to do with an output that cannot keep up: block (the default: "
			 "everyone waits for it, like tee(1)) or drop (it is dropped once a "
			 "full pipe behind, and the exit status is 1)" },
	[OPT_DROP_AFTER] = { NULL, "--drop-after", "SECONDS",
			     "with --policy drop, how long an output may hold the others back "
			     "before it is dropped (default 0.1)" },
	[OPT_COPY] = { NULL, "--copy", NULL,
		       "read each byte once into memory and write it to every output: "
		       "the baseline" },
	[OPT_STATS] = { NULL, "--stats", NULL,
			"at exit, print on stderr the bytes each path moved, in total and "
			"per output, and every fallback with its reason" },
	[OPT_PIPE_SIZE] = { NULL, "--pipe-size", "BYTES",
			    "capacity of the intake pipe and of each output's pipe (default 1M, "
			    "at most pipe-max-size)" },
	[OPT_URING] = { NULL, "--uring", NULL,
			"submit the tee()s and splice()s through io_uring, a round for every "
			"output per io_uring_enter; where io_uring is unavailable, warn and go "
			"on without it (not with --copy or --policy drop)" },
	{ NULL, NULL, NULL, NULL },
};

struct tee_out {
	const char *name;     /* as given; "standard output" for fd 1 */
	int fd;
	int id;               /* in the fan-out; -1 when it never got there */
	bool owned;           /* we opened it: close at the end */
	bool is_socket;
	struct zcio_fanout_dest final;
	bool ended;
};

/* Connect to a tcp:HOST:PORT or unix:PATH DEST.  Returns the connected
 * nonblocking socket or -errno (*why set for a bad address). */
static int connect_dest(const char *spec, const char **why)
{
	struct addr a;
	struct pollfd p;
	bool in_progress;
	int fd, r, soerr = 0;
	socklen_t len = sizeof(soerr);

	if (addr_parse(strncmp(spec, "tcp:", 4) == 0 ? spec + 4 : spec, &a, why) < 0)
		return -EINVAL;
	fd = addr_connect(&a, &in_progress);
	if (fd < 0 || !in_progress)
		return fd;
	p = (struct pollfd){ .fd = fd, .events = POLLOUT };
	do {
		r = poll(&p, 1, CONNECT_TIMEOUT_MS);
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		soerr = ETIMEDOUT;
	else if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
		soerr = errno;
	if (soerr) {
		close(fd);
		return -soerr;
	}
	return fd;
}

static bool is_net_dest(const char *s)
{
	return strncmp(s, "tcp:", 4) == 0 || strncmp(s, "unix:", 5) == 0;
}

/* Report an output the fan-out removed; returns whether it counts as a
 * failure for the exit status. */
static bool report_end(const struct tee_out *o, const struct zcio_fanout_dest *info)
{
	char lag[32];

	switch (info->state) {
	case ZCIO_FANOUT_CLOSED:
		/* Like tee -p: a pipe whose reader left is not an error.  A
		 * socket peer that leaves mid-stream is worth a line. */
		if (!o->is_socket)
			return false;
		cli_error(CMD, "%s: %s", o->name, strerror(-info->err));
		return true;
	case ZCIO_FANOUT_DROPPED:
		cli_error(CMD, "%s: dropped: could not keep up (%s behind, after %" PRIu64 " bytes)",
			  o->name, cli_format_size(info->lag, lag, sizeof(lag)), info->stats.bytes);
		return true;
	case ZCIO_FANOUT_FAILED:
		cli_error(CMD, "%s: %s", o->name, strerror(-info->err));
		return true;
	default:
		return false;
	}
}

static struct tee_out *find_out(struct tee_out *outs, int n, int id)
{
	for (int i = 0; i < n; i++) {
		if (outs[i].id == id)
			return &outs[i];
	}
	return NULL;
}

static void print_stats(const struct zcio_stats *st, struct tee_out *outs, int n)
{
	cli_print_stats(CMD, st);
	for (int i = 0; i < n; i++) {
		const struct zcio_stats *s = &outs[i].final.stats;

		if (outs[i].id < 0)
			continue;
		cli_error(CMD, "stats: output %s: %" PRIu64 " bytes", outs[i].name, s->bytes);
		cli_error(CMD, "stats: output %s: tee %" PRIu64 ", splice %" PRIu64 ", copy %" PRIu64,
			  outs[i].name, s->path_bytes[ZCIO_PATH_TEE],
			  s->path_bytes[ZCIO_PATH_SPLICE_PIPE], s->path_bytes[ZCIO_PATH_COPY]);
	}
}

/* Pump until the source ends and every output has it, or no output is
 * left.  Returns 0, or -errno of the source. */
static int run_fanout(struct zcio_fanout *fo, struct tee_out *outs, int n,
		      struct zcio_stats *st, bool *failed)
{
	struct pollfd *pfd = calloc((size_t)n + 1, sizeof(*pfd));
	struct zcio_fanout_dest info;
	int64_t r;

	if (!pfd)
		return -ENOMEM;
	for (;;) {
		int k;

		r = zcio_fanout_pump(fo, 0, st);
		while (zcio_fanout_removed(fo, &info) == 1) {
			struct tee_out *o = find_out(outs, n, info.id);

			if (!o)
				continue;
			o->final = info;
			o->ended = true;
			if (report_end(o, &info))
				*failed = true;
		}
		if (r != -EAGAIN)
			break;
		if (zcio_fanout_count(fo) == 0)
			break; /* tee(1) stops reading once every output is gone */
		k = zcio_fanout_pollfds(fo, pfd, (unsigned)n + 1);
		if (k <= 0 || k > n + 1) {
			r = k < 0 ? k : -EIO; /* cannot happen: n outputs, one source */
			break;
		}
		/* The timeout: a --policy drop output's time to catch up. */
		st->waits++;
		while (poll(pfd, (nfds_t)k, zcio_fanout_timeout(fo)) < 0 && errno == EINTR)
			;
	}
	free(pfd);
	return r < 0 && r != -EAGAIN ? (int)r : 0;
}

/* --uring: the outputs that could be opened, through io_uring.  Returns
 * 0 when it ran, 1 when the caller is to use the fan-out instead. */
static int run_uring(struct tee_out *outs, int n, uint32_t pipe_size, bool want_stats,
		     bool *failed)
{
	struct tee_uring_out *u = calloc((size_t)n, sizeof(*u));
	unsigned k = 0;
	int r;

	if (!u)
		return 1;
	for (int i = 0; i < n; i++) {
		if (outs[i].fd >= 0)
			u[k++] = (struct tee_uring_out){ .name = outs[i].name, .fd = outs[i].fd,
							 .is_socket = outs[i].is_socket,
							 .owned = outs[i].owned };
	}
	r = tee_uring(STDIN_FILENO, u, k, pipe_size, want_stats, failed);
	free(u);
	return r;
}

static int tee_run(int argc, char **argv)
{
	struct zcio_opts opts = { .flags = ZCIO_F_GROW_PIPE };
	struct zcio_stats st = { 0 };
	struct zcio_fanout *fo = NULL;
	struct cli_args args;
	struct tee_out *outs;
	bool append = false, want_stats = false, failed = false, uring = false;
	uint32_t dflags = 0;
	uint64_t size;
	int opt, n, r, rc = CLI_OK;

	cli_args_init(&args, &cli_tee, argc, argv);
	while ((opt = cli_args_next(&args)) >= 0) {
		switch (opt) {
		case OPT_APPEND:
			append = true;
			break;
		case OPT_POLICY:
			if (strcmp(args.optarg, "block") == 0)
				dflags = 0;
			else if (strcmp(args.optarg, "drop") == 0)
				dflags = ZCIO_FANOUT_DROP;
			else
				return cli_usage_error(&cli_tee, "invalid policy '%s' (block or drop)",
						       args.optarg);
			break;
		case OPT_DROP_AFTER: {
			char *end;
			double v = strtod(args.optarg, &end);

			if (end == args.optarg || *end || v < 0 || v > 3600)
				return cli_usage_error(&cli_tee, "bad delay: %s", args.optarg);
			/* 0 means "at once", which the library spells -1. */
			opts.timeout_ms = v > 0 ? (int32_t)(v * 1000 + 0.5) : -1;
			break;
		}
		case OPT_COPY:
			/* Copying needs no pipe: leave the caller's alone. */
			opts.flags = (opts.flags & ~ZCIO_F_GROW_PIPE) | ZCIO_F_COPY;
			break;
		case OPT_STATS:
			want_stats = true;
			break;
		case OPT_PIPE_SIZE:
			if (cli_parse_size(args.optarg, &size) < 0 || size < 4096 || size > (1u << 30))
				return cli_usage_error(&cli_tee, "bad pipe size: %s", args.optarg);
			opts.pipe_size = (uint32_t)size;
			break;
		case OPT_URING:
			uring = true;
			break;
		}
	}
	/* The io_uring round waits for its slowest output, and copies
	 * nothing into memory: neither option has a meaning there. */
	if (uring && dflags)
		return cli_usage_error(&cli_tee, "--policy drop is not available with --uring");
	if (uring && (opts.flags & ZCIO_F_COPY))
		return cli_usage_error(&cli_tee, "--copy and --uring cannot be combined");
	/* A reader that leaves is reported as -EPIPE, never as a signal. */
	signal(SIGPIPE, SIG_IGN);
	n = args.noperands + 1;
	outs = calloc((size_t)n, sizeof(*outs));
	if (!outs) {
		cli_error(CMD, "%s", strerror(ENOMEM));
		return CLI_ERROR;
	}
	outs[0] = (struct tee_out){ .name = "standard output", .fd = STDOUT_FILENO, .id = -1 };
	for (int i = 1; i < n; i++) {
		const char *name = args.operands[i - 1];
		const char *why = NULL;
		int fd;

		outs[i] = (struct tee_out){ .name = name, .fd = -1, .id = -1 };
		if (is_net_dest(name)) {
			fd = connect_dest(name, &why);
			outs[i].is_socket = true;
		} else {
			fd = open(name, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC),
				  0666);
			fd = fd < 0 ? -errno : fd;
		}
		if (fd < 0) {
			/* tee(1) reports an output it cannot open and writes
			 * to the others. */
			cli_error(CMD, "%s: %s", name, why ? why : strerror(-fd));
			failed = true;
			continue;
		}
		outs[i].fd = fd;
		outs[i].owned = true;
	}
	{
		struct stat sst;

		outs[0].is_socket = fstat(STDOUT_FILENO, &sst) == 0 && S_ISSOCK(sst.st_mode);
	}
	if (uring && run_uring(outs, n, opts.pipe_size, want_stats, &failed) == 0)
		goto out;
	r = zcio_fanout_new(STDIN_FILENO, &opts, &fo);
	if (r < 0) {
		cli_error(CMD, "standard input: %s", strerror(-r));
		rc = CLI_ERROR;
		goto out;
	}
	/* Enough pipes for every output's own and the intake. */
	zcio_pool_set_max((uint32_t)n + 8 > 256 ? (uint32_t)n + 8 : 256);
	for (int i = 0; i < n; i++) {
		if (outs[i].fd < 0)
			continue;
		r = zcio_fanout_add(fo, outs[i].fd, dflags);
		if (r < 0) {
			cli_error(CMD, "%s: %s", outs[i].name, strerror(-r));
			failed = true;
			continue;
		}
		outs[i].id = r;
	}
	r = run_fanout(fo, outs, n, &st, &failed);
	if (r < 0) {
		cli_error(CMD, "standard input: %s", strerror(-r));
		failed = true;
	}
	for (int i = 0; i < n; i++) {
		if (outs[i].id >= 0 && !outs[i].ended)
			zcio_fanout_dest(fo, outs[i].id, &outs[i].final);
	}
	if (want_stats)
		print_stats(&st, outs, n);
out:
	zcio_fanout_free(fo);
	for (int i = 0; i < n; i++) {
		/* close() is where NFS reports a failed write. */
		if (outs[i].owned && close(outs[i].fd) != 0 && errno != EINTR) {
			cli_error(CMD, "%s: %s", outs[i].name, strerror(errno));
			failed = true;
		}
	}
	free(outs);
	return failed ? CLI_ERROR : rc;
}

const struct cli_command cli_tee = {
	.name = "tee",
	.synopsis = "[-a] [--policy block|drop] [--drop-after SECONDS] [--copy] [--uring] [--stats] "
		    "[DEST]...",
	.summary = "copy standard input to standard output and to each DEST, by reference",
	.description =
		"Copies standard input to standard output and to each DEST, like tee(1).\n"
		"A DEST is a file (created, or truncated unless -a is given), tcp:HOST:PORT\n"
		"or unix:PATH (zcio tee connects to it as a client).\n"
		"\n"
		"The stream is not copied once per output: it goes into a pipe, and\n"
		"tee() duplicates the pipe's page references into each output's pipe,\n"
		"from where splice() hands them to files and sockets.  An output that\n"
		"is a pipe gets them directly.  Terminals, files opened with -a and\n"
		"other outputs that cannot be spliced to get their bytes copied from\n"
		"their pipe; with --copy, or where tee() and splice() do not work,\n"
		"each byte is read once into memory and written to every output.\n"
		"\n"
		"When standard input or an output is a pipe, zcio tee grows it to the\n"
		"pipe size (1 MiB by default), as zcio cat does; --copy leaves pipes\n"
		"alone.\n"
		"\n"
		"Outputs that cannot keep up: with --policy block (the default) the\n"
		"others wait for them, as with tee(1); with --policy drop an output\n"
		"whose pipe is full while it holds the others back, for longer than\n"
		"--drop-after, is dropped with a message and the others go on at\n"
		"full speed.\n"
		"\n"
		"With --uring, the same tee()s and splice()s are submitted through\n"
		"io_uring: each round, one io_uring_enter asks for every output's\n"
		"share, and the slowest output paces the stream (--policy block).\n"
		"Where io_uring, or its tee and splice operations, cannot be used,\n"
		"zcio tee says so once and goes on without it.\n"
		"\n"
		"An output whose reader goes away (a closed pipe) is dropped quietly and\n"
		"the others carry on, like tee -p; zcio tee never dies of SIGPIPE.  Any\n"
		"other output that fails, or cannot be opened or connected to, is\n"
		"reported and dropped, and the exit status is 1.  When no output is\n"
		"left, zcio tee stops reading.",
	.options = tee_options,
	.examples =
		"encoder | zcio tee recording.ts tcp:127.0.0.1:9000 > /dev/null\n"
		"producer | zcio tee -a log.txt | consumer\n"
		"zcio tee --stats copy1 copy2 < big.iso > copy3",
	.run = tee_run,
};
