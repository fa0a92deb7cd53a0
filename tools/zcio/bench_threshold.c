/*
 * bench_threshold.c - the `threshold` scenario: where does zero-copy start
 * to beat copying?
 *
 * In this process, through the public API only: for transfer sizes from
 * 1 KiB to 1 MiB, call zcio_copy() many times with copy_threshold = 1 (never
 * copy because of size) and again with ZCIO_F_COPY (always copy), on four
 * routes, each with a real peer thread on the other end:
 *
 *   file -> pipe      a thread read()s the pipe
 *   file -> socket    loopback TCP, a thread read()s the other end
 *   socket -> file    a thread write()s into loopback TCP; the file is
 *                     rewritten from offset 0 each time (stays in cache)
 *   socket -> socket  a writer thread -> TCP -> zcio_copy -> TCP -> a reader
 *
 * Time is wall-clock per transfer; CPU is getrusage(RUSAGE_SELF), which
 * includes the peer threads.  The two modes alternate (A B, then B A) in
 * each of 3N back-to-back pairs (N = --runs, at least 9 pairs), and the
 * median of the pairs' time ratios decides.  The crossover of a
 * route is the smallest size from which zero-copy is at least as fast at
 * every larger size too; ZCIO_DEFAULT_THRESHOLD should follow it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "zcio.h"

#define THR_SIZES 11            /* 1 KiB .. 1 MiB */
/*
 * Many short back-to-back pairs rather than a few long ones: bursts of other
 * load then spoil a few pairs, and the median of the pairs' ratios ignores
 * them.
 */
#define THR_BYTES (4u << 20)    /* bytes per measurement ... */
#define THR_MIN_ITERS 50u       /* ... but at least this many transfers */
#define THR_MAX_ITERS 4000u     /* ... and at most this many */
#define THR_MIN_PAIRS 9u        /* pairs per point: 3 x --runs, at least this */
#define THR_MAX_PAIRS 64u
#define PEER_BUF (256u * 1024)

enum thr_route { FILE_PIPE, FILE_SOCK, SOCK_FILE, SOCK_SOCK, THR_ROUTES };

static const char *const route_name[THR_ROUTES] = {
	"file->pipe", "file->socket", "socket->file", "socket->socket",
};

struct thr_point {
	uint32_t size;
	unsigned iters;
	double ns[2], cpu_ns[2];   /* [0] zero-copy allowed, [1] ZCIO_F_COPY */
	double ratio;              /* median over runs of zero-copy/copy time,
	                              each pair measured back to back */
	char paths[2][64];         /* which paths moved the bytes, per mode */
	bool ok;
};

static struct thr_point points[THR_ROUTES][THR_SIZES];
static uint32_t crossover[THR_ROUTES]; /* 0: copying won at every size */
static unsigned thr_runs;
static bool thr_ran;
static char thr_error[256];

struct peer {
	int fd;
	uint64_t total;
	int err;
	pthread_t thread;
	bool started;
};

/*
 * With two or more CPUs, the transferring thread runs on CPU 0 and the peer
 * thread on CPU 1: without pinning, the scheduler's choice to put both on
 * one CPU, or not, changed per-transfer times by 2x from run to run.
 */
static void pin(int cpu)
{
	cpu_set_t set;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	(void)sched_setaffinity(0, sizeof(set), &set);
}

static void *reader_main(void *arg)
{
	struct peer *p = arg;
	char *buf = malloc(PEER_BUF);
	uint64_t got = 0;

	pin(1);
	if (!buf) {
		p->err = ENOMEM;
		return NULL;
	}
	while (got < p->total) {
		ssize_t n = read(p->fd, buf, PEER_BUF);

		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			p->err = n < 0 ? errno : EPIPE;
			break;
		}
		got += (uint64_t)n;
	}
	free(buf);
	return NULL;
}

static void *writer_main(void *arg)
{
	struct peer *p = arg;
	char *buf = malloc(PEER_BUF);
	uint64_t put = 0;

	pin(1);
	if (!buf) {
		p->err = ENOMEM;
		return NULL;
	}
	memset(buf, 'z', PEER_BUF);
	while (put < p->total) {
		uint64_t left = p->total - put;
		/* send(): if the transfer fails and the socket is shut down,
		 * this thread gets EPIPE, not a process-killing SIGPIPE. */
		ssize_t n = send(p->fd, buf, left < PEER_BUF ? (size_t)left : PEER_BUF,
				 MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			p->err = errno;
			break;
		}
		put += (uint64_t)n;
	}
	free(buf);
	return NULL;
}

static double cpu_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static void paths_of(const struct zcio_stats *st, char *buf, size_t len)
{
	size_t at = 0;

	buf[0] = '\0';
	for (int i = 0; i < ZCIO_PATH_COUNT && at < len; i++) {
		if (!st->path_bytes[i])
			continue;
		int n = snprintf(buf + at, len - at, "%s%s", at ? "+" : "", zcio_path_name(i));

		if (n < 0)
			break;
		at += (size_t)n;
	}
}

/*
 * Time iters transfers of size bytes on route r.  Returns 0 and fills
 * *ns and *cpu_ns per transfer, or -errno.
 */
static int measure(enum thr_route r, int src, int dst_file, uint32_t size, bool copy,
		   unsigned iters, double *ns, double *cpu_ns, char *paths, size_t plen)
{
	struct zcio_opts opts = { .copy_threshold = 1 };
	struct zcio_stats st = { 0 };
	struct peer rd = { .fd = -1 }, wr = { .fd = -1 };
	int fds[4] = { -1, -1, -1, -1 }, in = -1, out = -1, ret = 0;
	uint64_t total = (uint64_t)size * iters;
	double t0, c0;

	opts.flags = copy ? ZCIO_F_COPY : 0;
	switch (r) {
	case FILE_PIPE:
		if (pipe2(fds, O_CLOEXEC) < 0)
			return -errno;
		rd.fd = fds[0];
		in = src;
		out = fds[1];
		break;
	case FILE_SOCK:
		ret = bench_tcp_pair(&fds[0], &fds[1]);
		in = src;
		out = fds[0];
		rd.fd = fds[1];
		break;
	case SOCK_FILE:
		ret = bench_tcp_pair(&fds[0], &fds[1]);
		wr.fd = fds[0];
		in = fds[1];
		out = dst_file;
		break;
	case SOCK_SOCK:
		ret = bench_tcp_pair(&fds[0], &fds[1]);
		if (!ret)
			ret = bench_tcp_pair(&fds[2], &fds[3]);
		wr.fd = fds[0];
		in = fds[1];
		out = fds[2];
		rd.fd = fds[3];
		break;
	default:
		return -EINVAL;
	}
	if (ret < 0)
		goto out;
	if (in == src) {
		/* Every transfer sends the same first size bytes of the file. */
		opts.flags |= ZCIO_F_OFFSET;
		opts.in_offset = 0;
	}
	rd.total = wr.total = total;

	t0 = bench_now();
	c0 = cpu_now();
	if (rd.fd >= 0) {
		if (pthread_create(&rd.thread, NULL, reader_main, &rd) != 0) {
			ret = -EAGAIN;
			goto out;
		}
		rd.started = true;
	}
	if (wr.fd >= 0) {
		if (pthread_create(&wr.thread, NULL, writer_main, &wr) != 0) {
			ret = -EAGAIN;
			goto join;
		}
		wr.started = true;
	}
	for (unsigned i = 0; i < iters; i++) {
		int64_t n;

		if (r == SOCK_FILE && lseek(out, 0, SEEK_SET) < 0) {
			ret = -errno;
			break;
		}
		n = zcio_copy(in, out, size, &opts, &st);
		if (n != (int64_t)size) {
			ret = n < 0 ? (int)n : -EIO;
			break;
		}
	}
join:
	if (ret < 0) {
		/* Unblock the peers: shut the sockets and pipes down. */
		for (int i = 0; i < 4; i++)
			if (fds[i] >= 0)
				shutdown(fds[i], SHUT_RDWR);
		if (r == FILE_PIPE && fds[1] >= 0) {
			close(fds[1]);
			fds[1] = -1;
		}
	}
	if (rd.started)
		pthread_join(rd.thread, NULL);
	if (wr.started)
		pthread_join(wr.thread, NULL);
	*ns = (bench_now() - t0) * 1e9 / iters;
	*cpu_ns = (cpu_now() - c0) * 1e9 / iters;
	if (!ret && (rd.err || wr.err))
		ret = -(rd.err ? rd.err : wr.err);
	paths_of(&st, paths, plen);
out:
	for (int i = 0; i < 4; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return ret;
}

int bench_threshold_run(struct bench_config *cfg)
{
	char src_path[4200], out_path[4200];
	int src, dst, ret = 0;
	cpu_set_t saved_cpus;
	bool have_saved = false;

	snprintf(src_path, sizeof(src_path), "%s/threshold-src", cfg->dir);
	snprintf(out_path, sizeof(out_path), "%s/threshold-out", cfg->dir);
	ret = bench_file_create(src_path, 1u << 20, 7, true);
	if (ret < 0) {
		cli_error("bench", "%s: %s", src_path, strerror(-ret));
		return ret;
	}
	src = open(src_path, O_RDONLY | O_CLOEXEC);
	dst = open(out_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (src < 0 || dst < 0) {
		ret = -errno;
		goto out;
	}
	{
		struct bench_hash h;

		bench_hash_init(&h);
		bench_file_hash(src_path, &h); /* page-cache it */
	}
	thr_runs = cfg->runs * 3;
	if (thr_runs < THR_MIN_PAIRS)
		thr_runs = THR_MIN_PAIRS;
	if (thr_runs > THR_MAX_PAIRS)
		thr_runs = THR_MAX_PAIRS;
	if (sched_getaffinity(0, sizeof(saved_cpus), &saved_cpus) == 0)
		have_saved = true;
	pin(0);
	fprintf(stderr, "== threshold: zcio_copy, copy_threshold=1 vs ZCIO_F_COPY, 1 KiB..1 MiB\n");
	for (int r = 0; r < THR_ROUTES && !bench_stop; r++) {
		for (int s = 0; s < THR_SIZES && !bench_stop; s++) {
			struct thr_point *p = &points[r][s];
			uint32_t size = 1024u << s;
			unsigned iters = THR_BYTES / size;
			double v[2][THR_MAX_PAIRS], c[2][THR_MAX_PAIRS], q[THR_MAX_PAIRS];
			double warm_ns, warm_cpu;
			unsigned runs = thr_runs;

			if (iters < THR_MIN_ITERS)
				iters = THR_MIN_ITERS;
			if (iters > THR_MAX_ITERS)
				iters = THR_MAX_ITERS;
			p->size = size;
			p->iters = iters;
			p->ok = true;
			/* Warm up both modes: pooled pipes, socket buffers. */
			for (int m = 0; m < 2 && p->ok; m++)
				if (measure((enum thr_route)r, src, dst, size, m, iters / 10 + 1,
					    &warm_ns, &warm_cpu, p->paths[m], sizeof(p->paths[m])) < 0)
					p->ok = false;
			for (unsigned k = 0; k < runs && p->ok && !bench_stop; k++) {
				for (int j = 0; j < 2; j++) {
					/* A B, then B A: neither mode always goes first. */
					int m = (int)((k + (unsigned)j) % 2);
					int e = measure((enum thr_route)r, src, dst, size, m, iters,
							&v[m][k], &c[m][k], p->paths[m],
							sizeof(p->paths[m]));

					if (e < 0) {
						snprintf(thr_error, sizeof(thr_error),
							 "%s %u bytes %s: %s", route_name[r], size,
							 m ? "copy" : "zero-copy", strerror(-e));
						fprintf(stderr, "zcio: bench: threshold: %s\n", thr_error);
						p->ok = false;
						ret = e;
						break;
					}
				}
			}
			if (p->ok) {
				for (int m = 0; m < 2; m++) {
					p->ns[m] = bench_median(v[m], runs);
					p->cpu_ns[m] = bench_median(c[m], runs);
				}
				for (unsigned k = 0; k < runs; k++)
					q[k] = v[0][k] / v[1][k];
				p->ratio = bench_median(q, runs);
				fprintf(stderr, "   %-14s %7u B: zero-copy %9.0f ns (%s), copy %9.0f ns, "
					"ratio %.2f\n", route_name[r], size, p->ns[0], p->paths[0],
					p->ns[1], p->ratio);
			}
		}
		/*
		 * The crossover: zero-copy at least as fast from here on up.
		 * Judged by the paired ratio: other load on the machine moves
		 * both halves of a back-to-back pair alike, so their ratio is
		 * steadier than either median.
		 */
		crossover[r] = 0;
		for (int s = THR_SIZES - 1; s >= 0; s--) {
			const struct thr_point *p = &points[r][s];

			if (!p->ok || p->ratio > 1.0)
				break;
			crossover[r] = p->size;
		}
	}
	thr_ran = true;
	bench_threshold_summary(stdout, true);
out:
	if (have_saved)
		sched_setaffinity(0, sizeof(saved_cpus), &saved_cpus);
	if (src >= 0)
		close(src);
	if (dst >= 0)
		close(dst);
	unlink(src_path);
	unlink(out_path);
	return bench_stop ? -EINTR : ret;
}

/*
 * The largest crossover among the routes where zero-copy wins at all: from
 * there up, zero-copy is no slower on any of them.  Routes where copying won
 * even at 1 MiB are left out (and named in the summary); 0 when none wins.
 */
static uint32_t suggested(void)
{
	uint32_t best = 0;

	for (int r = 0; r < THR_ROUTES; r++)
		if (crossover[r] > best)
			best = crossover[r];
	return best;
}

void bench_threshold_summary(FILE *f, bool table)
{
	char sz[32];

	if (!thr_ran)
		return;
	if (table) {
		fprintf(f, "\nthreshold: ns per zcio_copy() of SIZE bytes, median of %u back-to-back pairs; "
			"zero = copy_threshold 1, copy = ZCIO_F_COPY,\n  z/c = median of back-to-back zero/copy ratios\n  %-8s", thr_runs, "size");
		for (int r = 0; r < THR_ROUTES; r++)
			fprintf(f, " %22s", route_name[r]);
		fprintf(f, "\n  %-8s", "");
		for (int r = 0; r < THR_ROUTES; r++)
			fprintf(f, " %8s %8s %4s", "zero", "copy", "z/c");
		fputc('\n', f);
		for (int s = 0; s < THR_SIZES; s++) {
			fprintf(f, "  %-8s", cli_format_size(1024u << s, sz, sizeof(sz)));
			for (int r = 0; r < THR_ROUTES; r++) {
				const struct thr_point *p = &points[r][s];

				if (p->ok)
					fprintf(f, " %8.0f %8.0f %4.2f", p->ns[0], p->ns[1], p->ratio);
				else
					fprintf(f, " %22s", "-");
			}
			fputc('\n', f);
		}
		fprintf(f, "  %-8s", "paths");
		for (int r = 0; r < THR_ROUTES; r++)
			fprintf(f, " %8.8s %8.8s %4s", points[r][THR_SIZES - 1].paths[0],
				points[r][THR_SIZES - 1].paths[1], "");
		fputc('\n', f);
	}
	for (int r = 0; r < THR_ROUTES; r++) {
		fprintf(f, "  crossover %-14s ", route_name[r]);
		if (crossover[r])
			fprintf(f, "%s (zero-copy at least as fast from here up)\n",
				cli_format_size(crossover[r], sz, sizeof(sz)));
		else
			fprintf(f, "none: copying won at 1 MiB\n");
	}
	if (suggested()) {
		char def[32];
		bool left_out = false;

		fprintf(f, "  threshold suggested by this run: %s (ZCIO_DEFAULT_THRESHOLD is %s)",
			cli_format_size(suggested(), sz, sizeof(sz)),
			cli_format_size(ZCIO_DEFAULT_THRESHOLD, def, sizeof(def)));
		for (int r = 0; r < THR_ROUTES; r++) {
			if (crossover[r])
				continue;
			fprintf(f, "%s%s", left_out ? ", " : "; leaving out ", route_name[r]);
			left_out = true;
		}
		fputc('\n', f);
	}
	if (thr_error[0])
		fprintf(f, "  threshold error: %s\n", thr_error);
}

void bench_threshold_json(FILE *f)
{
	if (!thr_ran) {
		fputs("null", f);
		return;
	}
	fprintf(f, "{\"runs\": %u, \"default_threshold\": %u, \"suggested_threshold\": ",
		thr_runs, (unsigned)ZCIO_DEFAULT_THRESHOLD);
	if (suggested())
		fprintf(f, "%u", suggested());
	else
		fputs("null", f);
	fputs(", \"error\": ", f);
	if (thr_error[0])
		bench_json_string(f, thr_error);
	else
		fputs("null", f);
	fputs(",\n \"routes\": [\n", f);
	for (int r = 0; r < THR_ROUTES; r++) {
		fputs("  {\"route\": ", f);
		bench_json_string(f, route_name[r]);
		fputs(", \"crossover\": ", f);
		if (crossover[r])
			fprintf(f, "%u", crossover[r]);
		else
			fputs("null", f);
		fprintf(f, "}%s\n", r + 1 < THR_ROUTES ? "," : "");
	}
	fputs(" ],\n \"points\": [\n", f);
	for (int r = 0; r < THR_ROUTES; r++) {
		for (int s = 0; s < THR_SIZES; s++) {
			const struct thr_point *p = &points[r][s];

			fputs("  {\"route\": ", f);
			bench_json_string(f, route_name[r]);
			fprintf(f, ", \"size\": %u, \"iters\": %u, \"ok\": %s, \"zero_copy_ns\": ",
				1024u << s, p->iters, p->ok ? "true" : "false");
			bench_json_number(f, p->ok ? p->ns[0] : NAN);
			fputs(", \"copy_ns\": ", f);
			bench_json_number(f, p->ok ? p->ns[1] : NAN);
			fputs(", \"zero_copy_cpu_ns\": ", f);
			bench_json_number(f, p->ok ? p->cpu_ns[0] : NAN);
			fputs(", \"copy_cpu_ns\": ", f);
			bench_json_number(f, p->ok ? p->cpu_ns[1] : NAN);
			fputs(", \"zero_copy_ratio\": ", f);
			bench_json_number(f, p->ok ? p->ratio : NAN);
			fputs(", \"zero_copy_paths\": ", f);
			bench_json_string(f, p->paths[0]);
			fputs(", \"copy_paths\": ", f);
			bench_json_string(f, p->paths[1]);
			fprintf(f, "}%s\n", r + 1 < THR_ROUTES || s + 1 < THR_SIZES ? "," : "");
		}
	}
	fputs(" ]}", f);
}
