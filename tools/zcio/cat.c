/*
 * cat.c - `zcio cat`: concatenate files to standard output, like cat(1),
 * with zcio_copy() choosing splice, sendfile, copy_file_range or read/write
 * for each operand.
 *
 * The per-file path is kept to open, zcio_copy, close: with thousands of
 * small files, syscalls are the whole cost.  Standard output is looked at
 * once, at startup.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"

enum { OPT_PROGRESS, OPT_COPY, OPT_STATS };

static const struct cli_option cat_options[] = {
	[OPT_PROGRESS] = { "-p", "--progress", "[=WHEN]", CLI_PROGRESS_HELP },
	[OPT_COPY] = { NULL, "--copy", NULL,
		       "move every byte with read() and write(): the baseline, and what to "
		       "use when a reader must never see a file change after cat returns" },
	[OPT_STATS] = { NULL, "--stats", NULL,
			"at exit, print on stderr the bytes each path moved and every "
			"fallback with its reason" },
	{ NULL, NULL, NULL, NULL },
};

/*
 * zcio_copy() refuses, with -EINVAL and before moving a byte, to copy a
 * regular file onto itself when that could never end: writes landing ahead
 * of the reads (O_APPEND, or the output's offset past the input's), the
 * very case coreutils cat refuses.  Was that the reason?  Asked only after
 * an -EINVAL, so the per-file path has no fstat of its own.
 */
static bool input_is_output(int in, const struct stat *out)
{
	struct stat st;

	return S_ISREG(out->st_mode) && fstat(in, &st) == 0 && S_ISREG(st.st_mode) &&
	       st.st_dev == out->st_dev && st.st_ino == out->st_ino;
}

/*
 * The same refusal, decided here: needed with --progress, whose slices have
 * a length, and a bounded copy ends, so zcio_copy() lets it through.  The
 * rule is coreutils': a regular file that is standard output, with writes
 * landing ahead of the reads.
 */
static bool input_would_exhaust_output(int in, const struct stat *out)
{
	off_t in_pos, out_pos;
	int fl;

	if (!input_is_output(in, out))
		return false;
	fl = fcntl(STDOUT_FILENO, F_GETFL);
	if (fl >= 0 && (fl & O_APPEND))
		return true;
	in_pos = lseek(in, 0, SEEK_CUR);
	out_pos = lseek(STDOUT_FILENO, 0, SEEK_CUR);
	return in_pos >= 0 && out_pos >= 0 && in_pos < out_pos;
}

/*
 * The reader went away.  The library never lets SIGPIPE kill us (it
 * reports -EPIPE instead), but a shell pipeline expects cat to die of it,
 * quietly: restore the default action and take the signal.
 */
static void die_of_sigpipe(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(SIGPIPE);
	_exit(CLI_ERROR); /* not reached */
}

/* Errors only a write can produce: the output is the problem, not NAME.
 * (zcio_copy() does not say which end failed; for other errnos, such as
 * EIO, the operand's name is the best guess.) */
static bool output_error(int err)
{
	return err == ENOSPC || err == EDQUOT || err == EFBIG || err == EPIPE;
}

/*
 * Block SIGPIPE for the whole run.  Returns whether SIGPIPE was ignored
 * when we started (inherited SIG_IGN, as under some daemons): then cat(1)
 * cannot die of it either, and reports the write error instead.
 */
static bool block_sigpipe(void)
{
	struct sigaction sa;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigprocmask(SIG_BLOCK, &set, NULL);
	return sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN;
}

/* Sum of the operands' sizes, for the ETA; false when one is not a regular
 * file (a pipe's length is unknown). */
static bool total_size(char **names, int n, uint64_t *total)
{
	struct stat st;
	int i;

	*total = 0;
	for (i = 0; i < n; i++) {
		int r = strcmp(names[i], "-") == 0 ? fstat(STDIN_FILENO, &st) : stat(names[i], &st);

		if (r != 0 || !S_ISREG(st.st_mode))
			return false;
		*total += (uint64_t)st.st_size;
	}
	return true;
}

static int cat_run(int argc, char **argv)
{
	static char *stdin_only[] = { "-" };
	struct zcio_opts opts = { .flags = ZCIO_F_GROW_PIPE };
	struct zcio_stats stats = { 0 };
	struct stat out_st;
	struct cli_progress progress;
	struct cli_args args;
	int progress_when = CLI_PROGRESS_NEVER;
	bool want_stats = false, total_known, sigpipe_ignored;
	uint64_t total = 0;
	char **names;
	int nnames, rc = CLI_OK, opt, i;

	cli_args_init(&args, &cli_cat, argc, argv);
	while ((opt = cli_args_next(&args)) >= 0) {
		switch (opt) {
		case OPT_PROGRESS:
			progress_when = cli_progress_parse(args.optarg);
			if (progress_when < 0)
				return cli_usage_error(&cli_cat, "invalid argument '%s' for '--progress'",
						       args.optarg);
			break;
		case OPT_COPY:
			/* Copying needs no pipe: leave stdout's alone. */
			opts.flags = ZCIO_F_COPY;
			break;
		case OPT_STATS:
			want_stats = true;
			break;
		}
	}
	names = args.noperands ? args.operands : stdin_only;
	nnames = args.noperands ? args.noperands : 1;

	/*
	 * zcio_copy() blocks SIGPIPE around each call and unblocks it after:
	 * two sigprocmask calls per file.  Blocked here once, the library
	 * sees it blocked and leaves the mask alone (one call), and an EPIPE's
	 * signal stays pending until die_of_sigpipe() lets it in.
	 */
	sigpipe_ignored = block_sigpipe();
	if (fstat(STDOUT_FILENO, &out_st) != 0) {
		cli_error("cat", "standard output: %s", strerror(errno));
		return CLI_ERROR;
	}
	total_known = progress_when != CLI_PROGRESS_NEVER && total_size(names, nnames, &total);
	cli_progress_start(&progress, (enum cli_progress_when)progress_when, total_known,
			   total_known ? total : 0);

	for (i = 0; i < nnames; i++) {
		const char *name = names[i];
		bool is_stdin = strcmp(name, "-") == 0;
		int in = is_stdin ? STDIN_FILENO : open(name, O_RDONLY | O_CLOEXEC);
		int64_t r;

		if (in < 0) {
			cli_error("cat", "%s: %s", name, strerror(errno));
			rc = CLI_ERROR;
			continue;
		}
		if (progress.on && input_would_exhaust_output(in, &out_st))
			r = -EINVAL;
		else
			r = cli_progress_copy(&progress, in, STDOUT_FILENO, ZCIO_TO_EOF, &opts,
					      &stats);
		if (r == -EPIPE && !sigpipe_ignored) {
			cli_progress_finish(&progress);
			if (want_stats)
				cli_print_stats("cat", &stats);
			die_of_sigpipe();
		}
		if (r < 0 && output_error((int)-r)) {
			/* Every other operand would fail the same way. */
			cli_error("cat", "write error: %s", strerror((int)-r));
			rc = CLI_ERROR;
			if (!is_stdin)
				close(in);
			break;
		}
		if (r == -EINVAL && input_is_output(in, &out_st)) {
			cli_error("cat", "%s: input file is output file", name);
			rc = CLI_ERROR;
		} else if (r < 0) {
			cli_error("cat", "%s: %s", name, strerror((int)-r));
			rc = CLI_ERROR;
		}
		if (!is_stdin)
			close(in);
	}
	cli_progress_finish(&progress);
	if (want_stats)
		cli_print_stats("cat", &stats);
	return rc;
}

const struct cli_command cli_cat = {
	.name = "cat",
	.synopsis = "[-p] [--copy] [--stats] [FILE|-]...",
	.summary = "concatenate files to standard output, the fastest correct way",
	.description =
		"Copies each FILE, in order, to standard output, like cat(1).  With no\n"
		"FILE, or when FILE is -, reads standard input.  Each file moves by the\n"
		"fastest path its two ends allow: splice() into a pipe, sendfile() to a\n"
		"socket or device, copy_file_range() to a file, read() and write()\n"
		"for terminals, small files and everything else.\n"
		"\n"
		"When standard output is a pipe, zcio grows it to 1 MiB (capped by\n"
		"/proc/sys/fs/pipe-max-size) before splicing into it: the reader then\n"
		"wakes up once per megabyte instead of once per 64 KiB, which makes the\n"
		"whole pipeline several times faster.  The pipe is shared with the\n"
		"reader, and kernels before 5.16 could stall a reader when a pipe was\n"
		"resized under it; --copy leaves the pipe alone.\n"
		"\n"
		"Spliced bytes are references to the file's pages: a reader that has\n"
		"not yet consumed them sees writes made to the file after zcio cat\n"
		"returned.  Use --copy when the output must be a snapshot.\n"
		"\n"
		"A file that cannot be read is reported and skipped; the others are\n"
		"still copied and the exit status is 1.  A regular file that is also\n"
		"standard output is refused (\"input file is output file\") when the\n"
		"copy would never end.  When the reader of standard output goes away,\n"
		"zcio cat stops at once and dies of SIGPIPE, silently, as cat(1) does\n"
		"(or, when it was started with SIGPIPE ignored, reports the write\n"
		"error and exits 1).",
	.options = cat_options,
	.examples =
		"zcio cat part1 part2 part3 > whole\n"
		"zcio cat big.iso | sha256sum\n"
		"zcio cat -p --stats big.iso > /dev/null\n"
		"producer | zcio cat - trailer | consumer",
	.run = cat_run,
};
