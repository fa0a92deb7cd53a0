/*
 * copy.c - zcio_copy() as a tiny cat: each FILE (or standard input, also
 * for "-") goes to standard output, then the counters say which kernel
 * paths moved the bytes.
 *
 *   copy [FILE]... > OUT
 *
 * Build: cc copy.c $(pkg-config --cflags --libs zcio) -o copy
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zcio.h>

/* Print the counters: ask zcio_stats_format() for the length first, the
 * way snprintf() is used, so no line is ever cut. */
static void print_stats(const struct zcio_stats *st)
{
	int need = zcio_stats_format(st, NULL, 0);
	char *text;

	if (need < 0)
		return;
	text = malloc((size_t)need + 1);
	if (!text)
		return;
	zcio_stats_format(st, text, (size_t)need + 1);
	fputs(text, stderr);
	free(text);
}

int main(int argc, char **argv)
{
	/* Zeroed once: the counters then add up over every call. */
	struct zcio_stats st = { 0 };
	int nfiles = argc > 1 ? argc - 1 : 1;
	int status = 0;
	int i;

	for (i = 0; i < nfiles; i++) {
		const char *name = argc > 1 ? argv[i + 1] : "-";
		int fd = strcmp(name, "-") ? open(name, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
		int64_t n;

		if (fd < 0) {
			fprintf(stderr, "copy: %s: %s\n", name, strerror(errno));
			status = 1;
			continue;
		}
		n = zcio_copy(fd, STDOUT_FILENO, ZCIO_TO_EOF, NULL, &st);
		if (n < 0) {
			/* last_bytes is exact even on error. */
			fprintf(stderr, "copy: %s: %s after %llu bytes\n", name,
				strerror((int)-n), (unsigned long long)st.last_bytes);
			status = 1;
		}
		if (fd != STDIN_FILENO)
			close(fd);
		if (n == -EPIPE)
			break; /* nobody reads standard output any more */
	}
	print_stats(&st);
	return status;
}
