/*
 * zextents.c - list the data extents of a file, as the kernel reports them.
 *
 *   zextents PATH
 *
 * Prints one "OFFSET LENGTH" line per data extent (lseek SEEK_DATA /
 * SEEK_HOLE), then "size SIZE".  Two files with the same listing and the
 * same bytes in each extent are equal without reading their holes: that is
 * how tests check a copy of a multi-gigabyte sparse file in milliseconds,
 * and that the copy kept its holes.
 * Exit status: 0, or 1 on error (e.g. a filesystem without SEEK_DATA).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct stat st;
	off_t pos = 0, data, hole;
	int fd;

	if (argc != 2) {
		fputs("usage: zextents PATH\n", stderr);
		return 2;
	}
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "zextents: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (;;) {
		data = lseek(fd, pos, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break; /* nothing but a hole after pos */
		hole = data < 0 ? -1 : lseek(fd, data, SEEK_HOLE);
		if (hole < 0) {
			fprintf(stderr, "zextents: %s: %s\n", argv[1], strerror(errno));
			return 1;
		}
		printf("%jd %jd\n", (intmax_t)data, (intmax_t)(hole - data));
		pos = hole;
	}
	printf("size %jd\n", (intmax_t)st.st_size);
	close(fd);
	return 0;
}
