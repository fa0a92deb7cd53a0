/*
 * progress.c - the --progress status line and sliced copying.  See
 * progress.h.
 */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* At most this many drawings a second. */
#define DRAW_INTERVAL 0.1
/* Slices: start here, then aim for half a DRAW_INTERVAL per slice.  The
 * floor keeps every slice far above the copy threshold (a smaller length
 * would be copied instead of spliced) and the syscall overhead negligible;
 * the ceiling bounds how stale the line gets when the rate drops. */
#define SLICE_FIRST (4u << 20)
#define SLICE_MIN (1u << 20)
#define SLICE_MAX (256u << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cli_progress_parse(const char *when)
{
	if (!when || strcmp(when, "auto") == 0)
		return CLI_PROGRESS_AUTO;
	if (strcmp(when, "always") == 0)
		return CLI_PROGRESS_ALWAYS;
	if (strcmp(when, "never") == 0)
		return CLI_PROGRESS_NEVER;
	return -1;
}

void cli_progress_start(struct cli_progress *p, enum cli_progress_when when,
			bool total_known, uint64_t total)
{
	*p = (struct cli_progress){
		.on = when == CLI_PROGRESS_ALWAYS ||
		      (when == CLI_PROGRESS_AUTO && isatty(STDERR_FILENO)),
		.total_known = total_known,
		.total = total,
		.slice = SLICE_FIRST,
	};
	if (p->on)
		p->start = p->drawn = now();
}

/* "1:05" or "2:03:04". */
static void format_duration(double secs, char *buf, size_t len)
{
	unsigned long s = secs < 0 ? 0 : secs > 359999999.0 ? 359999999ul : (unsigned long)(secs + 0.5);

	if (s >= 3600)
		snprintf(buf, len, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, len, "%lu:%02lu", s / 60, s % 60);
}

static void draw(struct cli_progress *p, double t, bool final)
{
	char line[160], done[32], total[32], rate[32], when[32];
	double elapsed = t - p->start;
	double bps = elapsed > 0 ? (double)p->done / elapsed : 0;
	size_t n;

	cli_format_size(p->done, done, sizeof(done));
	cli_format_size(bps > 0 ? (uint64_t)bps : 0, rate, sizeof(rate));
	if (final)
		format_duration(elapsed, when, sizeof(when));
	if (p->total_known) {
		uint64_t left = p->total > p->done ? p->total - p->done : 0;
		unsigned pct = p->total ? (unsigned)((double)(p->total - left) * 100 / (double)p->total) : 100;

		cli_format_size(p->total, total, sizeof(total));
		if (!final) {
			if (bps > 0)
				format_duration((double)left / bps, when, sizeof(when));
			else
				snprintf(when, sizeof(when), "?");
		}
		snprintf(line, sizeof(line), "\r%s / %s  %3u%%  %s/s  %s %s", done, total, pct,
			 rate, final ? "in" : "ETA", when);
	} else if (final) {
		snprintf(line, sizeof(line), "\r%s  %s/s  in %s", done, rate, when);
	} else {
		snprintf(line, sizeof(line), "\r%s  %s/s", done, rate);
	}
	n = strlen(line);
	/* Blank what is left of a longer previous line; no terminal escapes,
	 * so a log file forced with --progress=always stays readable. */
	while (n - 1 < p->width && n < sizeof(line) - 2)
		line[n++] = ' ';
	p->width = (unsigned)strlen(line) - 1;
	if (final)
		line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
	p->drawn = t;
}

void cli_progress_add(struct cli_progress *p, uint64_t n)
{
	double t;

	p->done += n;
	if (!p->on)
		return;
	t = now();
	if (t - p->drawn >= DRAW_INTERVAL)
		draw(p, t, false);
}

void cli_progress_finish(struct cli_progress *p)
{
	if (!p->on)
		return;
	draw(p, now(), true);
	p->on = false;
}

int64_t cli_progress_copy(struct cli_progress *p, int in, int out, uint64_t len,
			  const struct zcio_opts *opts, struct zcio_stats *stats)
{
	struct zcio_opts o = { 0 };
	uint64_t moved = 0;

	if (!p->on)
		return zcio_copy(in, out, len, opts, stats);
	if (opts)
		o = *opts;
	while (moved < len) {
		uint64_t ask = len - moved < p->slice ? len - moved : p->slice;
		double t0 = now(), dt;
		int64_t r = zcio_copy(in, out, ask, &o, stats);

		if (r < 0) {
			/* What the failing slice delivered still counts. */
			if (stats)
				cli_progress_add(p, stats->last_bytes);
			return r;
		}
		moved += (uint64_t)r;
		o.in_offset += (uint64_t)r;
		cli_progress_add(p, (uint64_t)r);
		if ((uint64_t)r < ask)
			break; /* end of file */
		/* Aim the next slice at half a drawing interval of work, so
		 * that a drawing falls due about every DRAW_INTERVAL. */
		dt = now() - t0;
		if (dt > 0) {
			double want = (double)r * (DRAW_INTERVAL / 2) / dt;

			p->slice = want < SLICE_MIN ? SLICE_MIN : want > SLICE_MAX ? SLICE_MAX : (uint64_t)want;
		}
	}
	return (int64_t)moved;
}
