/*
 * cp.c - `zcio cp`: copy one file's content and permission bits, keeping
 * the holes of a sparse file.
 *
 * Regular to regular walks the source's data extents (SEEK_DATA/SEEK_HOLE)
 * and copies each with zcio_copy() at its offset, so holes stay holes even
 * where copy_file_range() would have filled them with zeros.  Any other
 * pair (a FIFO, /dev/null, a device) is one zcio_copy() to end of file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"

enum { OPT_PROGRESS, OPT_COPY, OPT_STATS };

static const struct cli_option cp_options[] = {
	[OPT_PROGRESS] = { "-p", "--progress", "[=WHEN]", CLI_PROGRESS_HELP },
	[OPT_COPY] = { NULL, "--copy", NULL,
		       "move every byte with read() and write() (holes are still kept)" },
	[OPT_STATS] = { NULL, "--stats", NULL,
			"at exit, print on stderr the bytes each path moved and every "
			"fallback with its reason" },
	{ NULL, NULL, NULL, NULL },
};

/* The source's holes cannot be found: copy it whole. */
#define EXTENTS_UNSUPPORTED 1

/*
 * Copy the data extents of the regular file `in` to the same offsets of the
 * regular file `out`, then set out's size to in's, which leaves every hole,
 * trailing ones included, unwritten.  Returns 0, EXTENTS_UNSUPPORTED when
 * the filesystem cannot report holes (nothing was copied), or -errno.
 */
static int copy_extents(struct cli_progress *p, int in, int out, struct zcio_opts *o,
			struct zcio_stats *st)
{
	off_t pos = 0, data, hole, end;

	o->flags |= ZCIO_F_OFFSET;
	for (;;) {
		int64_t r;

		data = lseek(in, pos, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break; /* only a hole, or nothing, after pos */
		hole = data < 0 ? -1 : lseek(in, data, SEEK_HOLE);
		if (hole < 0) {
			/* EINVAL: a filesystem (or kernel) without
			 * SEEK_DATA/SEEK_HOLE; procfs and the like refuse
			 * them too.  Only safe to switch before any copy. */
			if (pos == 0 && (errno == EINVAL || errno == EOPNOTSUPP))
				return EXTENTS_UNSUPPORTED;
			return -errno;
		}
		cli_progress_add(p, (uint64_t)(data - pos)); /* the hole skipped */
		if (lseek(out, data, SEEK_SET) < 0)
			return -errno;
		o->in_offset = (uint64_t)data;
		r = cli_progress_copy(p, in, out, (uint64_t)(hole - data), o, st);
		if (r < 0)
			return (int)r;
		pos = data + (off_t)r;
		if (r < hole - data)
			break; /* the source shrank while we copied */
	}
	/* The destination ends where the source does now. */
	end = lseek(in, 0, SEEK_END);
	if (end < 0)
		return -errno;
	if (end > pos)
		cli_progress_add(p, (uint64_t)(end - pos)); /* the trailing hole */
	if (ftruncate(out, end) != 0)
		return -errno;
	return 0;
}

/* DST/basename(SRC) for a directory DST; NULL when out of memory. */
static char *target_in_dir(const char *dir, const char *src)
{
	size_t len = strlen(src), start, dlen = strlen(dir);
	char *path;

	while (len > 1 && src[len - 1] == '/')
		len--;
	start = len;
	while (start > 0 && src[start - 1] != '/')
		start--;
	while (dlen > 1 && dir[dlen - 1] == '/')
		dlen--;
	path = malloc(dlen + 1 + (len - start) + 1);
	if (!path)
		return NULL;
	sprintf(path, "%.*s/%.*s", (int)dlen, dir, (int)(len - start), src + start);
	return path;
}

static int cp_run(int argc, char **argv)
{
	struct zcio_opts opts = { 0 };
	struct zcio_stats stats = { 0 };
	struct cli_progress progress;
	struct cli_args args;
	struct stat sst, dst;
	int progress_when = CLI_PROGRESS_NEVER;
	bool want_stats = false;
	const char *src, *target;
	char *alloc = NULL;
	int in, out, opt, r, rc = CLI_ERROR;

	cli_args_init(&args, &cli_cp, argc, argv);
	while ((opt = cli_args_next(&args)) >= 0) {
		switch (opt) {
		case OPT_PROGRESS:
			progress_when = cli_progress_parse(args.optarg);
			if (progress_when < 0)
				return cli_usage_error(&cli_cp, "invalid argument '%s' for '--progress'",
						       args.optarg);
			break;
		case OPT_COPY:
			opts.flags |= ZCIO_F_COPY;
			break;
		case OPT_STATS:
			want_stats = true;
			break;
		}
	}
	if (args.noperands == 0)
		return cli_usage_error(&cli_cp, "missing file operand");
	if (args.noperands == 1)
		return cli_usage_error(&cli_cp, "missing destination file operand after '%s'",
				       args.operands[0]);
	if (args.noperands > 2)
		return cli_usage_error(&cli_cp, "extra operand '%s'", args.operands[2]);
	src = args.operands[0];
	target = args.operands[1];

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		cli_error("cp", "%s: %s", src, strerror(errno));
		return CLI_ERROR;
	}
	if (fstat(in, &sst) != 0) {
		cli_error("cp", "%s: %s", src, strerror(errno));
		goto close_in;
	}
	if (S_ISDIR(sst.st_mode)) {
		cli_error("cp", "%s: is a directory (not copied)", src);
		goto close_in;
	}
	if (stat(target, &dst) == 0 && S_ISDIR(dst.st_mode)) {
		target = alloc = target_in_dir(target, src);
		if (!alloc) {
			cli_error("cp", "%s", strerror(ENOMEM));
			goto close_in;
		}
	}
	/* Checked before O_TRUNC, which would destroy the source. */
	if (stat(target, &dst) == 0 && dst.st_dev == sst.st_dev && dst.st_ino == sst.st_ino) {
		cli_error("cp", "'%s' and '%s' are the same file", src, target);
		goto close_in;
	}
	/*
	 * A new file gets the source's permission bits without set-user-ID,
	 * set-group-ID and sticky, minus the umask (open applies it), as GNU
	 * cp does without --preserve; an existing file keeps its mode.
	 */
	out = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, sst.st_mode & 0777);
	if (out < 0) {
		cli_error("cp", "%s: %s", target, strerror(errno));
		goto close_in;
	}
	if (fstat(out, &dst) != 0) {
		cli_error("cp", "%s: %s", target, strerror(errno));
		goto close_out;
	}

	cli_progress_start(&progress, (enum cli_progress_when)progress_when,
			   S_ISREG(sst.st_mode), (uint64_t)sst.st_size);
	r = EXTENTS_UNSUPPORTED;
	if (S_ISREG(sst.st_mode) && S_ISREG(dst.st_mode))
		r = copy_extents(&progress, in, out, &opts, &stats);
	if (r == EXTENTS_UNSUPPORTED) {
		/* Holes read as zeros; FIFOs and devices take the stream. */
		int64_t n = cli_progress_copy(&progress, in, out, ZCIO_TO_EOF, &opts, &stats);

		r = n < 0 ? (int)n : 0;
	}
	cli_progress_finish(&progress);
	if (r < 0)
		cli_error("cp", "'%s' to '%s': %s", src, target, strerror(-r));
	else
		rc = CLI_OK;
	if (want_stats)
		cli_print_stats("cp", &stats);

close_out:
	/* A filesystem may report a failed write only now (NFS). */
	if (close(out) != 0 && rc == CLI_OK) {
		cli_error("cp", "%s: %s", target, strerror(errno));
		rc = CLI_ERROR;
	}
close_in:
	close(in);
	free(alloc);
	return rc;
}

const struct cli_command cli_cp = {
	.name = "cp",
	.synopsis = "[-p] [--copy] [--stats] SRC DST",
	.summary = "copy a file's content and permissions, keeping its holes",
	.description =
		"Copies SRC to DST, or into DST/SRC's-name when DST is an existing\n"
		"directory.  File to file uses copy_file_range() (a reflink on\n"
		"filesystems that share extents), then sendfile(), then read() and\n"
		"write(); other destinations (a FIFO, /dev/null, a device) take\n"
		"whatever zcio_copy() picks for them.\n"
		"\n"
		"Holes stay holes: for a regular SRC and DST, only the data extents\n"
		"(found with lseek SEEK_DATA and SEEK_HOLE) are copied, each to the\n"
		"same offset, and DST's size is then set to SRC's.  A filesystem that\n"
		"cannot report holes gets the whole file, holes read as zeros.\n"
		"\n"
		"A new DST gets SRC's permission bits without the set-user-ID,\n"
		"set-group-ID and sticky bits, minus the umask, as cp(1) does; an\n"
		"existing DST is truncated and keeps its mode, owner and links.  SRC\n"
		"may not be a directory, and SRC and DST may not be the same file.",
	.options = cp_options,
	.examples =
		"zcio cp disk.img /backup/\n"
		"zcio cp -p --stats vm.qcow2 /mnt/vm.qcow2\n"
		"zcio cp big.iso /dev/null",
	.run = cp_run,
};
