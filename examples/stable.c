/*
 * stable.c - what ZCIO_F_STABLE changes.
 *
 * zcio_copy() from a file into a pipe splices: the pipe receives references
 * to the file's page-cache pages, not copies.  Whoever reads the pipe later
 * reads those pages as they are *then*, so a write to the file made after
 * zcio_copy() returned but before the reader consumed the bytes shows up in
 * what the reader gets.  With ZCIO_F_STABLE the bytes are copied out of
 * the file during the call, and later writes cannot reach the reader.
 *
 *   stable [DIR]      (a scratch file is made in DIR, default /tmp)
 *
 * Prints, for each mode, how many of the bytes read from the pipe came from
 * the later write.  Exits 1 if the stable mode let any through.
 *
 * Build: cc stable.c $(pkg-config --cflags --libs zcio) -o stable
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zcio.h>

/* Well below a pipe's default 64 KiB, so zcio_copy() never waits for a
 * reader, and above the copy threshold, so splice is chosen by size. */
#define SIZE (32 * 1024)

static char before[SIZE], after[SIZE], got[SIZE];

/* The path that moved the most bytes, by name. */
static const char *main_path(const struct zcio_stats *st)
{
	int best = 0, i;

	for (i = 1; i < ZCIO_PATH_COUNT; i++) {
		if (st->path_bytes[i] > st->path_bytes[best])
			best = i;
	}
	return zcio_path_name(best);
}

/* Copy the file into a pipe, overwrite the file, then read the pipe.
 * Returns how many bytes read came from the overwrite, or -1. */
static long run(int file, uint32_t flags, const char *label)
{
	struct zcio_opts opts = { .flags = flags };
	struct zcio_stats st = { 0 };
	long changed = 0;
	size_t have = 0;
	int p[2], i;
	int64_t n;

	/* zcio_copy() reads from the file's offset and leaves it just past
	 * the bytes it delivered: start each run at 0. */
	if (pwrite(file, before, SIZE, 0) != SIZE || lseek(file, 0, SEEK_SET) != 0 ||
	    pipe(p) < 0) {
		perror("stable");
		return -1;
	}
	n = zcio_copy(file, p[1], SIZE, &opts, &st);
	if (n != SIZE) {
		fprintf(stderr, "stable: zcio_copy: %s\n", n < 0 ? strerror((int)-n) : "short");
		return -1;
	}
	/* zcio_copy() has returned: the bytes are "in the pipe".  Now the
	 * file changes before anyone has read them. */
	if (pwrite(file, after, SIZE, 0) != SIZE) {
		perror("stable: pwrite");
		return -1;
	}
	while (have < SIZE) {
		ssize_t r = read(p[0], got + have, SIZE - have);

		if (r <= 0) {
			perror("stable: read");
			return -1;
		}
		have += (size_t)r;
	}
	for (i = 0; i < SIZE; i++)
		changed += got[i] == after[i];
	printf("%-14s %-6s %ld of %d bytes read from the pipe came from the later write\n",
	       label, main_path(&st), changed, SIZE);
	close(p[0]);
	close(p[1]);
	return changed;
}

int main(int argc, char **argv)
{
	char path[4096];
	long by_ref, stable;
	int file;

	snprintf(path, sizeof(path), "%s/zcio-stable.XXXXXX", argc > 1 ? argv[1] : "/tmp");
	file = mkstemp(path);
	if (file < 0) {
		fprintf(stderr, "stable: %s: %s\n", path, strerror(errno));
		return 1;
	}
	unlink(path);
	memset(before, 'a', SIZE);
	memset(after, 'b', SIZE);

	by_ref = run(file, 0, "by reference");
	stable = run(file, ZCIO_F_STABLE, "ZCIO_F_STABLE");
	close(file);
	if (by_ref < 0 || stable < 0)
		return 1;
	return stable == 0 ? 0 : 1;
}
