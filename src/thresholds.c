/*
 * thresholds.c - calibrated sizes from which zero-copy pays, per route.
 *
 * `zcio calibrate` measures, on the machine at hand, where each zero-copy
 * mechanism starts to beat copying and writes a small "key value" text file.
 * The library reads it once per process, on the first lookup, under a
 * mutex; afterwards a lookup is one atomic load and an array read.
 *
 * The built-in values below come from `zcio calibrate` on the reference
 * machine (2 vCPUs in a VM, Linux 6.18, TCP across a veth between two
 * network namespaces, scripts/netns-testbed; the commands and tables are in
 * the README).  Where that machine could not measure a route (MSG_ZEROCOPY
 * to a receiver on the same host is always copied by the kernel), the value
 * says why below; the run-time checks (COPIED completions turn zero-copy
 * off) keep a wrong guess cheap.
 */
#include "thresholds.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "route.h"
#include "sys.h"
#include "zcio.h"

#define FILE_MAX (64u * 1024)

static const char *const names[ZCIO_THR_COUNT] = {
	[ZCIO_THR_COPY] = "copy",
	[ZCIO_THR_FILE_PIPE] = "file_pipe",
	[ZCIO_THR_FILE_SOCKET] = "file_socket",
	[ZCIO_THR_SOCKET_SOCKET] = "socket_socket",
	[ZCIO_THR_MEM_PIPE] = "memory_pipe",
	[ZCIO_THR_MEM_FILE] = "memory_file",
	[ZCIO_THR_MEM_SOCKET] = "memory_socket",
	[ZCIO_THR_MEM_SOCKET_URING] = "memory_socket_uring",
};

static const uint64_t builtin[ZCIO_THR_COUNT] = {
	/* zcio_copy()'s default: the header's ZCIO_DEFAULT_THRESHOLD.  The
	 * calibrated "copy" (largest of the next three) was 256 KiB there, but
	 * one value for every route would copy file -> pipe transfers that
	 * splice does faster from 1 KiB on. */
	[ZCIO_THR_COPY] = ZCIO_DEFAULT_THRESHOLD,
	/* splice() beat read/write from 1 KiB (0.85 at 1 KiB, 0.17 at 1 MiB);
	 * 4 KiB keeps a margin for the noise of a shared machine. */
	[ZCIO_THR_FILE_PIPE] = 4u * 1024,
	/* sendfile() lost up to 16 KiB (1.08-1.12), tied at 64 KiB, won from
	 * 256 KiB (0.50) across the veth; over loopback it never won. */
	[ZCIO_THR_FILE_SOCKET] = 256u * 1024,
	/* splice through a pipe won from 256 KiB (0.83-0.96), in two runs. */
	[ZCIO_THR_SOCKET_SOCKET] = 256u * 1024,
	/* vmsplice() tied below 16 KiB (0.96-1.07) and won from there (0.61-
	 * 0.82).  Below a page it also wastes a pipe slot per piece. */
	[ZCIO_THR_MEM_PIPE] = 16u * 1024,
	/* Splicing into a file copies into the page cache anyway: vmsplice()
	 * only adds page pinning to the write (1.09-1.63 at every size). */
	[ZCIO_THR_MEM_FILE] = ZCIO_THRESHOLD_NEVER,
	/* Every local receiver gets a copy, so TCP could not tell.  UDP to the
	 * testbed's sink (frames leave, nothing copies) cost 25-40% more CPU
	 * than send() at every size up to 64 KB on that VM; the kernel's
	 * documentation reports gains from about 10 KB on hardware. */
	[ZCIO_THR_MEM_SOCKET] = 64u * 1024,
	/* Across the veth every SEND_ZC completion said COPIED (the receiver
	 * is on this host), and it lost to send() at every size, so nothing
	 * here measured real zero-copy; the same value as MSG_ZEROCOPY, whose
	 * UDP egress measurement is the nearest one that did. */
	[ZCIO_THR_MEM_SOCKET_URING] = 64u * 1024,
};

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int loaded;      /* 1 once values[] and source[] are final */
static uint64_t values[ZCIO_THR_COUNT];
static char source[512];

/* "123", "64k", "2M", "1G", "never".  Returns 0 or -EINVAL. */
static int parse_value(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0, mul = 1;
	size_t i = 0;

	if (n == 5 && memcmp(s, "never", 5) == 0) {
		*out = ZCIO_THRESHOLD_NEVER;
		return 0;
	}
	if (!n || s[0] < '0' || s[0] > '9')
		return -EINVAL;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (i < n) {
		switch (s[i]) {
		case 'k': case 'K': mul = 1ull << 10; break;
		case 'm': case 'M': mul = 1ull << 20; break;
		case 'g': case 'G': mul = 1ull << 30; break;
		default: return -EINVAL;
		}
		if (++i != n)
			return -EINVAL;
	}
	if (v > UINT64_MAX / mul)
		return -EINVAL;
	*out = v * mul;
	return 0;
}

int zcio__thresholds_parse(const char *text, uint64_t *vals)
{
	const char *p = text;
	int set = 0;

	while (*p) {
		const char *eol = strchr(p, '\n');
		const char *end = eol ? eol : p + strlen(p);
		const char *hash = memchr(p, '#', (size_t)(end - p));
		const char *stop = hash ? hash : end;
		const char *k, *v;
		size_t klen, vlen;
		uint64_t val;
		int key;

		k = p;
		while (k < stop && (*k == ' ' || *k == '\t' || *k == '\r'))
			k++;
		for (klen = 0; k + klen < stop && k[klen] != ' ' && k[klen] != '\t' &&
			       k[klen] != '\r' && k[klen] != '='; klen++)
			;
		v = k + klen;
		while (v < stop && (*v == ' ' || *v == '\t' || *v == '='))
			v++;
		for (vlen = 0; v + vlen < stop && v[vlen] != ' ' && v[vlen] != '\t' &&
			       v[vlen] != '\r'; vlen++)
			;
		for (key = 0; klen && key < ZCIO_THR_COUNT; key++) {
			if (strlen(names[key]) == klen && memcmp(names[key], k, klen) == 0)
				break;
		}
		/* Unknown keys are a newer calibrator's: ignore them.  A value
		 * that does not parse keeps the built-in one. */
		if (klen && key < ZCIO_THR_COUNT && parse_value(v, vlen, &val) == 0) {
			vals[key] = val;
			set++;
		}
		p = eol ? eol + 1 : end;
	}
	return set;
}

/* The file to read, or false for none.  secure_getenv: a set-user-ID
 * program linked with zcio must not read a file its caller names. */
static bool thresholds_path(char *buf, size_t len)
{
	const char *env = secure_getenv("ZCIO_THRESHOLDS");
	const char *home;
	int n;

	if (env)
		n = snprintf(buf, len, "%s", env);
	else if ((home = secure_getenv("HOME")) && home[0])
		n = snprintf(buf, len, "%s/.config/zcio/thresholds", home);
	else
		return false;
	return n > 0 && (size_t)n < len;
}

static void load(void)
{
	char path[sizeof(source)];
	char *text;
	size_t got = 0;
	int fd;

	memcpy(values, builtin, sizeof(values));
	source[0] = '\0';
	if (!thresholds_path(path, sizeof(path)))
		return;
	fd = zcio__open(path, O_RDONLY);
	if (fd < 0)
		return; /* no calibration yet: built-in values */
	text = malloc(FILE_MAX + 1);
	if (text) {
		for (;;) {
			ssize_t r = zcio__read(fd, text + got, FILE_MAX - got);

			if (r <= 0)
				break;
			got += (size_t)r;
			if (got == FILE_MAX)
				break;
		}
		text[got] = '\0';
		if (zcio__thresholds_parse(text, values) > 0)
			memcpy(source, path, sizeof(source));
		free(text);
	}
	zcio__close(fd);
}

static void ensure_loaded(void)
{
	if (atomic_load_explicit(&loaded, memory_order_acquire))
		return;
	pthread_mutex_lock(&load_lock);
	if (!atomic_load_explicit(&loaded, memory_order_relaxed)) {
		load();
		atomic_store_explicit(&loaded, 1, memory_order_release);
	}
	pthread_mutex_unlock(&load_lock);
}

void zcio__thresholds_reset(void)
{
	pthread_mutex_lock(&load_lock);
	atomic_store(&loaded, 0);
	pthread_mutex_unlock(&load_lock);
}

uint64_t zcio__threshold_file(int key)
{
	if (key < 0 || key >= ZCIO_THR_COUNT)
		return 0;
	ensure_loaded();
	return values[key];
}

uint64_t zcio__threshold_for(int key, uint32_t from_opts)
{
	if (from_opts)
		return from_opts;
	return zcio__threshold_file(key);
}

ZCIO_EXPORT uint64_t zcio_threshold(int key)
{
	if (key == ZCIO_THR_COPY) {
		/* What zcio_copy() uses: the environment override first. */
		uint32_t v = zcio__threshold(0);

		return v == UINT32_MAX ? ZCIO_THRESHOLD_NEVER : v;
	}
	return zcio__threshold_file(key);
}

ZCIO_EXPORT const char *zcio_threshold_name(int key)
{
	if (key < 0 || key >= ZCIO_THR_COUNT)
		return NULL;
	return names[key];
}

ZCIO_EXPORT int zcio_threshold_source(char *buf, size_t len)
{
	if (!buf && len)
		return -EINVAL;
	ensure_loaded();
	return snprintf(buf, len, "%s", source);
}
