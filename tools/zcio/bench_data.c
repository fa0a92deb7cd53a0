/*
 * bench_data.c - the benchmark's test data: pseudo-random files, the hash
 * that proves an output equals its input, and page-cache residency.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define IO_BUF (1u << 20)

static uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static uint64_t load64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

void bench_hash_init(struct bench_hash *h)
{
	memset(h, 0, sizeof(*h));
	h->lane[0] = P1 + P2;
	h->lane[1] = P2;
	h->lane[2] = 0;
	h->lane[3] = -P1;
}

/* Four independent lanes keep the multiplier busy: about as fast as
 * reading the page cache, so verification runs stay short. */
static void hash_block(uint64_t lane[4], const unsigned char *p)
{
	for (int i = 0; i < 4; i++)
		lane[i] = rotl(lane[i] + load64(p + 8 * i) * P2, 31) * P1;
}

void bench_hash_update(struct bench_hash *h, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	h->len += len;
	if (h->ntail) {
		size_t take = 32 - h->ntail;

		if (take > len)
			take = len;
		memcpy(h->tail + h->ntail, p, take);
		h->ntail += (unsigned)take;
		p += take;
		len -= take;
		if (h->ntail < 32)
			return;
		hash_block(h->lane, h->tail);
		h->ntail = 0;
	}
	while (len >= 32) {
		hash_block(h->lane, p);
		p += 32;
		len -= 32;
	}
	memcpy(h->tail, p, len);
	h->ntail = (unsigned)len;
}

uint64_t bench_hash_final(const struct bench_hash *h)
{
	uint64_t v = rotl(h->lane[0], 1) + rotl(h->lane[1], 7) +
		     rotl(h->lane[2], 12) + rotl(h->lane[3], 18);

	v ^= h->len * P1;
	for (unsigned i = 0; i < h->ntail; i++)
		v = rotl(v ^ (h->tail[i] * P1), 11) * P2;
	v ^= v >> 33;
	v *= P2;
	v ^= v >> 29;
	v *= P1;
	v ^= v >> 32;
	return v;
}

/* xorshift64*: plenty random for data no filesystem or pipe can shortcut. */
static uint64_t next_random(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int bench_file_create(const char *path, uint64_t len, uint64_t seed, bool sync)
{
	uint64_t *buf, s = seed * P1 + 1;
	int fd, r = 0;

	buf = malloc(IO_BUF);
	if (!buf)
		return -ENOMEM;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		free(buf);
		return r;
	}
	while (len && !r) {
		size_t n = len < IO_BUF ? (size_t)len : IO_BUF;

		for (size_t i = 0; i < (n + 7) / 8; i++)
			buf[i] = next_random(&s);
		r = write_all(fd, buf, n);
		len -= n;
	}
	/* Write back now: a flusher thread writing gigabytes later would
	 * steal CPU and disk from whichever run happened to be timed then. */
	if (!r && sync && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	free(buf);
	return r;
}

int64_t bench_file_hash(const char *path, struct bench_hash *h)
{
	int64_t total = 0;
	char *buf;
	int fd;

	buf = malloc(IO_BUF);
	if (!buf)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		total = -errno;
		free(buf);
		return total;
	}
	for (;;) {
		ssize_t n = read(fd, buf, IO_BUF);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			total = -errno;
			break;
		}
		if (n == 0)
			break;
		bench_hash_update(h, buf, (size_t)n);
		total += n;
	}
	close(fd);
	free(buf);
	return total;
}

double bench_file_cached(const char *path)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *vec;
	struct stat sb;
	size_t pages, in = 0;
	void *map;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (sb.st_size == 0) {
		close(fd);
		return 100.0;
	}
	pages = ((size_t)sb.st_size + (size_t)page - 1) / (size_t)page;
	map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return -errno;
	vec = malloc(pages);
	if (!vec) {
		munmap(map, (size_t)sb.st_size);
		return -ENOMEM;
	}
	/* mincore on a shared file mapping reports the page cache itself,
	 * whether or not this process ever touched the pages. */
	r = mincore(map, (size_t)sb.st_size, vec) < 0 ? -errno : 0;
	for (size_t i = 0; !r && i < pages; i++)
		in += vec[i] & 1;
	free(vec);
	munmap(map, (size_t)sb.st_size);
	return r < 0 ? r : 100.0 * (double)in / (double)pages;
}
