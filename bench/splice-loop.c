/*
 * splice-loop.c - the practical speed limit for "file -> pipe": the smallest
 * program that moves a file to its standard output with splice(2).
 *
 *   splice-loop [--grow] [FILE]
 *
 * Splices FILE (or standard input, if it is a file) to standard output, which
 * must be a pipe, until splice returns 0.  With --grow it first enlarges the
 * stdout pipe to /proc/sys/fs/pipe-max-size with F_SETPIPE_SZ, as zcio cat
 * does, so the benchmark can tell the pipe size's share from the loop's.
 *
 * It prints one line on stderr, "splice-loop: N bytes in M calls (pipe P)",
 * so the benchmark can check that every byte moved.  It uses no part of zcio
 * on purpose: it is the yardstick zcio is measured against.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long pipe_max_size(void)
{
	FILE *f = fopen("/proc/sys/fs/pipe-max-size", "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	uint64_t total = 0, calls = 0;
	int grow = 0, in = 0, i, size;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--grow") || !strcmp(argv[i], "-g"))
			grow = 1;
		else if (!path && argv[i][0] != '-')
			path = argv[i];
		else {
			fprintf(stderr, "usage: splice-loop [--grow] [FILE]\n");
			return 2;
		}
	}
	if (path) {
		in = open(path, O_RDONLY | O_CLOEXEC);
		if (in < 0) {
			fprintf(stderr, "splice-loop: %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	if (grow) {
		long max = pipe_max_size();

		/* Failure (not a pipe, over the user's pipe quota) leaves the
		 * pipe as it was; the size it really has is printed below. */
		if (max > 0)
			(void)fcntl(STDOUT_FILENO, F_SETPIPE_SZ, (int)max);
	}
	size = fcntl(STDOUT_FILENO, F_GETPIPE_SZ);

	for (;;) {
		/* Ask for more than any pipe holds: the kernel caps each call
		 * at the room left in the pipe. */
		ssize_t n = splice(in, NULL, STDOUT_FILENO, NULL, 1u << 30, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "splice-loop: splice: %s\n", strerror(errno));
			return 1;
		}
		calls++;
		if (n == 0)
			break;
		total += (uint64_t)n;
	}
	fprintf(stderr, "splice-loop: %" PRIu64 " bytes in %" PRIu64 " calls (pipe %d)\n",
		total, calls, size);
	return 0;
}
