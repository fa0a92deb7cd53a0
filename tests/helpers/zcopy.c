/*
 * zcopy.c - drive zcio_copy() and zcio_send_file() from the shell.
 *
 *   zcopy [OPTIONS] IN OUT
 *
 * IN and OUT are a path, "-" (stdin / stdout) or "fd:N" (an inherited fd).
 * It lets integration tests reach library routes the CLI does not use
 * (socket to socket, socket to file through the pooled pipe, a header in
 * front of a file) and watch them under strace fault injection.
 *
 * On stderr it prints, each line prefixed "zcopy: ":
 *   stats: LINE        zcio_stats_format() output, one line each
 *   result: N          what the last call returned (N (strerror) if < 0)
 *   stranded: N        stats.stranded, when not 0
 *   fds: B F L         with --repeat: open fds before the first copy, after
 *                      the first, and after the last
 *   errors: N          with --keep-going: how many calls failed
 *   pool: live L created C reused R clamped K
 * Exit status: 0 when every call succeeded, 1 when one failed, 2 on misuse.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zcio.h"

struct args {
	struct zcio_opts opts;
	uint64_t len;
	uint64_t offset;
	bool offset_set;
	bool send_file;
	const char *header;
	uint64_t repeat;
	uint32_t pool_max;
	bool append;
	bool keep_going;
	const char *in, *out;
};

static void usage(void)
{
	fputs("usage: zcopy [--copy] [--stable] [--grow-pipe] [--more] [--threshold N]\n"
	      "             [--len N] [--offset N] [--chunk N] [--pipe-size N] [--timeout MS]\n"
	      "             [--send-file] [--header TEXT] [--via-pipe|--via-sendfile]\n"
	      "             [--repeat N [--keep-going]] [--pool-max N] [--append] IN OUT\n"
	      "IN, OUT: PATH, - (stdin/stdout) or fd:N\n", stderr);
	exit(2);
}

static uint64_t parse_size(const char *s)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		usage();
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K':
		shift = 10;
		break;
	case 'm': case 'M':
		shift = 20;
		break;
	case 'g': case 'G':
		shift = 30;
		break;
	default:
		usage();
	}
	if (*end && end[1])
		usage();
	return (uint64_t)v << shift;
}

static uint32_t parse_u32(const char *s)
{
	uint64_t v = parse_size(s);

	if (v > UINT32_MAX)
		usage();
	return (uint32_t)v;
}

static void parse_args(int argc, char **argv, struct args *a)
{
	int i;

	*a = (struct args){ .len = ZCIO_TO_EOF, .repeat = 1 };
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(o, "--")) {
			i++;
			break;
		}
		if (!strcmp(o, "--copy")) {
			a->opts.flags |= ZCIO_F_COPY;
		} else if (!strcmp(o, "--stable")) {
			a->opts.flags |= ZCIO_F_STABLE;
		} else if (!strcmp(o, "--grow-pipe")) {
			a->opts.flags |= ZCIO_F_GROW_PIPE;
		} else if (!strcmp(o, "--more")) {
			a->opts.flags |= ZCIO_F_MORE;
		} else if (!strcmp(o, "--via-pipe")) {
			a->opts.flags |= ZCIO_F_VIA_PIPE;
		} else if (!strcmp(o, "--via-sendfile")) {
			a->opts.flags |= ZCIO_F_VIA_SENDFILE;
		} else if (!strcmp(o, "--send-file")) {
			a->send_file = true;
		} else if (!strcmp(o, "--append")) {
			a->append = true;
		} else if (!strcmp(o, "--keep-going")) {
			a->keep_going = true;
		} else if (!v) {
			usage();
		} else if (!strcmp(o, "--threshold")) {
			a->opts.copy_threshold = parse_u32(v), i++;
		} else if (!strcmp(o, "--len")) {
			a->len = parse_size(v), i++;
		} else if (!strcmp(o, "--offset")) {
			a->offset = parse_size(v), a->offset_set = true, i++;
		} else if (!strcmp(o, "--chunk")) {
			a->opts.chunk = parse_u32(v), i++;
		} else if (!strcmp(o, "--pipe-size")) {
			a->opts.pipe_size = parse_u32(v), i++;
		} else if (!strcmp(o, "--timeout")) {
			a->opts.timeout_ms = (int32_t)parse_u32(v), i++;
		} else if (!strcmp(o, "--header")) {
			a->header = v, a->send_file = true, i++;
		} else if (!strcmp(o, "--repeat")) {
			a->repeat = parse_size(v), i++;
		} else if (!strcmp(o, "--pool-max")) {
			a->pool_max = parse_u32(v), i++;
		} else {
			usage();
		}
	}
	if (argc - i != 2 || !a->repeat)
		usage();
	a->in = argv[i];
	a->out = argv[i + 1];
	if (a->offset_set && !a->send_file) {
		a->opts.flags |= ZCIO_F_OFFSET;
		a->opts.in_offset = a->offset;
	}
}

/* "-" and "fd:N" name inherited fds; anything else is a path. */
static int named_fd(const char *name, int std_fd)
{
	char *end;
	long v;

	if (!strcmp(name, "-"))
		return std_fd;
	if (strncmp(name, "fd:", 3))
		return -1;
	v = strtol(name + 3, &end, 10);
	if (end == name + 3 || *end || v < 0 || v > 65535) {
		fprintf(stderr, "zcopy: bad fd name %s\n", name);
		exit(2);
	}
	return (int)v;
}

static int open_end(const char *name, bool out, bool append)
{
	int fd = named_fd(name, out ? 1 : 0);
	int flags = out ? O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC) : O_RDONLY;

	if (fd >= 0)
		return fd;
	fd = open(name, flags | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "zcopy: %s: %s\n", name, strerror(errno));
		exit(1);
	}
	return fd;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

static void print_stats(const struct zcio_stats *st)
{
	char buf[4096];
	char *line, *save = NULL;
	int n = zcio_stats_format(st, buf, sizeof(buf));

	if (n < 0) {
		fprintf(stderr, "zcopy: stats: format failed: %s\n", strerror(-n));
		return;
	}
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		fprintf(stderr, "zcopy: stats: %s\n", line);
}

static int64_t run_once(const struct args *a, int in, int out, struct zcio_stats *st)
{
	if (a->send_file) {
		const char *h = a->header ? a->header : "";

		return zcio_send_file(out, h, strlen(h), in, a->offset, a->len, &a->opts, st);
	}
	return zcio_copy(in, out, a->len, &a->opts, st);
}

int main(int argc, char **argv)
{
	struct args a;
	struct zcio_stats st = { 0 };
	struct zcio_pool_stats ps;
	bool in_is_path, failed = false;
	int in, out, fds_before, fds_first = -1;
	uint64_t errors = 0;
	int64_t r = 0;
	uint64_t i;

	parse_args(argc, argv, &a);
	if (a.pool_max)
		zcio_pool_set_max(a.pool_max);
	in_is_path = named_fd(a.in, 0) < 0;
	out = open_end(a.out, true, a.append);
	fds_before = count_fds();
	for (i = 0; i < a.repeat; i++) {
		in = open_end(a.in, false, false);
		if (!in_is_path && i > 0)
			(void)lseek(in, 0, SEEK_SET); /* seekable ones start over */
		r = run_once(&a, in, out, &st);
		if (r < 0) {
			failed = true;
			errors++;
		}
		if (in_is_path)
			close(in);
		if (i == 0)
			fds_first = count_fds();
		if (r < 0 && !a.keep_going)
			break;
	}
	print_stats(&st);
	if (r < 0)
		fprintf(stderr, "zcopy: result: %" PRId64 " (%s)\n", r, strerror((int)-r));
	else
		fprintf(stderr, "zcopy: result: %" PRId64 "\n", r);
	if (st.stranded)
		fprintf(stderr, "zcopy: stranded: %" PRIu64 "\n", st.stranded);
	if (a.repeat > 1)
		fprintf(stderr, "zcopy: fds: %d %d %d\n", fds_before, fds_first, count_fds());
	if (a.keep_going)
		fprintf(stderr, "zcopy: errors: %" PRIu64 "\n", errors);
	if (zcio_pool_stats(&ps) == 0)
		fprintf(stderr, "zcopy: pool: live %" PRIu32 " created %" PRIu64 " reused %" PRIu64
			" clamped %" PRIu32 "\n", ps.live, ps.created, ps.reused, ps.clamped);
	if (close(out) < 0 && !failed) {
		fprintf(stderr, "zcopy: close: %s\n", strerror(errno));
		failed = true;
	}
	return failed ? 1 : 0;
}
