/*
 * zgen.c - test data: fast deterministic pseudo-random bytes, and sparse files.
 *
 *   zgen SIZE [SEED]          SIZE bytes (suffix k, M, G: powers of 1024) of
 *                             xorshift output on stdout; same SIZE and SEED,
 *                             same bytes.  A prefix of a longer run with the
 *                             same seed is the shorter run.
 *   zgen --sparse PATH SIZE   create PATH as a sparse file of SIZE bytes with
 *                             a few written regions: at the start, one at an
 *                             odd offset in the middle, one across 4 GiB, one
 *                             past 4 GiB, and one ending at the very last byte
 *                             (those that fit in SIZE).  Prints the regions
 *                             ("OFFSET LENGTH" lines) on stdout.
 *
 * Tests need inputs that are cheap to make at gigabytes per second and that
 * no path can fake (runs of zeros would hide a misplaced page), hence a
 * 64-bit xorshift rather than /dev/urandom or a block cipher.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUF_SIZE (64u * 1024) /* also the largest datagram it makes */

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
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
		return -1;
	}
	if (*end && end[1])
		return -1;
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* xorshift64*: full period, passes the checks a copy test needs. */
struct gen {
	uint64_t s;
};

static void gen_init(struct gen *g, uint64_t seed)
{
	/* Never zero, and nearby seeds give unrelated streams. */
	g->s = (seed + 1) * 0x9E3779B97F4A7C15ull;
	if (!g->s)
		g->s = 1;
}

static uint64_t gen_next(struct gen *g)
{
	g->s ^= g->s >> 12;
	g->s ^= g->s << 25;
	g->s ^= g->s >> 27;
	return g->s * 0x2545F4914F6CDD1Dull;
}

/* Fill buf (len a multiple of 8). */
static void gen_fill(struct gen *g, unsigned char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i += 8) {
		uint64_t v = gen_next(g);

		memcpy(buf + i, &v, 8);
	}
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int stream(uint64_t size, uint64_t seed)
{
	static unsigned char buf[BUF_SIZE];
	struct gen g;

	gen_init(&g, seed);
	while (size) {
		size_t n = size < BUF_SIZE ? (size_t)size : BUF_SIZE;

		/* Generate whole blocks so a prefix is seed-stable. */
		gen_fill(&g, buf, BUF_SIZE);
		if (write_all(1, buf, n) < 0) {
			if (errno == EPIPE)
				return 0; /* the reader had enough */
			fprintf(stderr, "zgen: write: %s\n", strerror(errno));
			return 1;
		}
		size -= n;
	}
	return 0;
}

static int write_region(int fd, uint64_t off, uint64_t len)
{
	static unsigned char buf[BUF_SIZE];
	struct gen g;

	gen_init(&g, off);
	while (len) {
		size_t n = len < BUF_SIZE ? (size_t)len : BUF_SIZE;
		ssize_t w;

		gen_fill(&g, buf, BUF_SIZE);
		w = pwrite(fd, buf, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		/* Regular files write in full unless the disk is full. */
		if ((size_t)w != n) {
			errno = EIO;
			return -1;
		}
		off += n;
		len -= n;
	}
	return 0;
}

static int sparse(const char *path, uint64_t size)
{
	const uint64_t G4 = 4ull << 30;
	/* Candidates in increasing order; those that do not fit (or would
	 * overlap the previous one) are left out. */
	const uint64_t cand[][2] = {
		{ 0, 100000 },
		{ ((size / 3) & ~4095ull) + 1234, 70000 },
		{ G4 - 5000, 10000 },
		{ G4 + (1 << 20) + 17, 50000 },
		{ size > 33333 ? size - 33333 : 0, 33333 },
	};
	uint64_t prev_end = 0;
	size_t i;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0) {
		fprintf(stderr, "zgen: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		fprintf(stderr, "zgen: %s: truncate: %s\n", path, strerror(errno));
		close(fd);
		return 1;
	}
	for (i = 0; i < sizeof(cand) / sizeof(cand[0]); i++) {
		uint64_t off = cand[i][0], len = cand[i][1];

		if (off < prev_end || off + len > size || (i && off == 0))
			continue;
		if (write_region(fd, off, len) < 0) {
			fprintf(stderr, "zgen: %s: write: %s\n", path, strerror(errno));
			close(fd);
			return 1;
		}
		printf("%" PRIu64 " %" PRIu64 "\n", off, len);
		prev_end = off + len;
	}
	if (close(fd) < 0) {
		fprintf(stderr, "zgen: %s: close: %s\n", path, strerror(errno));
		return 1;
	}
	return 0;
}

static void usage(void)
{
	fputs("usage: zgen SIZE [SEED]\n"
	      "       zgen --sparse PATH SIZE\n", stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t size, seed = 0;

	if (argc == 4 && !strcmp(argv[1], "--sparse")) {
		if (parse_size(argv[3], &size) < 0)
			usage();
		return sparse(argv[2], size);
	}
	if (argc < 2 || argc > 3 || parse_size(argv[1], &size) < 0)
		usage();
	if (argc == 3 && parse_size(argv[2], &seed) < 0)
		usage();
	return stream(size, seed);
}
