/*
 * progress.h - the status line of --progress (bytes, rate, ETA on stderr),
 * and copying in slices so that it can move while zcio_copy() blocks.
 *
 * With progress off, cli_progress_copy() is exactly one zcio_copy() call:
 * the default path pays nothing for the feature.
 */
#ifndef ZCIO_CLI_PROGRESS_H
#define ZCIO_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

#include "zcio.h"

enum cli_progress_when {
	CLI_PROGRESS_NEVER,
	CLI_PROGRESS_AUTO,    /* only when stderr is a terminal */
	CLI_PROGRESS_ALWAYS,
};

/* The option's help, shared by the commands that take -p/--progress. */
#define CLI_PROGRESS_HELP \
	"show one status line on stderr (bytes, rate, ETA when the total is " \
	"known), at most 10 updates a second; WHEN is auto (the default: " \
	"only when stderr is a terminal), always or never"

/* Parse the WHEN of --progress[=WHEN]; NULL (plain -p) means auto.
 * Returns an enum cli_progress_when, or -1. */
int cli_progress_parse(const char *when);

struct cli_progress {
	bool on;
	bool total_known;
	uint64_t total;      /* bytes expected, when total_known */
	uint64_t done;       /* bytes so far */
	double start;        /* seconds, CLOCK_MONOTONIC */
	double drawn;        /* when the line was last drawn */
	unsigned width;      /* characters of the line on screen */
	uint64_t slice;      /* bytes per zcio_copy() call */
};

/* Begin: decides whether the line is shown at all (see `when`).  total
 * counts only when total_known. */
void cli_progress_start(struct cli_progress *p, enum cli_progress_when when,
			bool total_known, uint64_t total);

/* Count n more bytes done (copied, or skipped over like a hole) and redraw
 * if the last drawing is 0.1 s old. */
void cli_progress_add(struct cli_progress *p, uint64_t n);

/* Draw the final state and end the line with a newline (if it was shown). */
void cli_progress_finish(struct cli_progress *p);

/*
 * zcio_copy(in, out, len, opts, stats), in slices of about 0.1 s when the
 * line is shown, counting each slice.  With ZCIO_F_OFFSET, each slice reads
 * at opts->in_offset plus what the earlier slices moved.  Returns what
 * zcio_copy() would: the bytes delivered (less than len only at end of
 * file), or -errno.  stats accumulate over the slices as over any calls.
 */
int64_t cli_progress_copy(struct cli_progress *p, int in, int out, uint64_t len,
			  const struct zcio_opts *opts, struct zcio_stats *stats);

#endif
