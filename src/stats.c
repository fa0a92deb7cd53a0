/*
 * stats.c - names of paths and reasons, and the text form of the stats.
 */
#include "stats.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "zcio.h"

#include "export.h"

static const char *const path_names[ZCIO_PATH_COUNT] = {
	[ZCIO_PATH_COPY] = "copy",
	[ZCIO_PATH_COPY_FILE_RANGE] = "copy_file_range",
	[ZCIO_PATH_SENDFILE] = "sendfile",
	[ZCIO_PATH_SPLICE] = "splice",
	[ZCIO_PATH_SPLICE_PIPE] = "splice-pipe",
	[ZCIO_PATH_TEE] = "tee",
	[ZCIO_PATH_VMSPLICE] = "vmsplice",
	[ZCIO_PATH_MSG_ZEROCOPY] = "msg-zerocopy",
	[ZCIO_PATH_URING] = "io_uring",
	[ZCIO_PATH_URING_SEND_ZC] = "io_uring-send-zc",
	[ZCIO_PATH_ZEROCOPY_RECV] = "zerocopy-receive",
};

static const char *const reason_names[ZCIO_WHY_COUNT] = {
	[ZCIO_WHY_NONE] = "none",
	[ZCIO_WHY_FORCED] = "copy requested",
	[ZCIO_WHY_STABLE] = "stable source requested",
	[ZCIO_WHY_SMALL] = "below copy threshold",
	[ZCIO_WHY_KIND] = "no zero-copy route for these fds",
	[ZCIO_WHY_APPEND] = "destination is O_APPEND",
	[ZCIO_WHY_NOSYS] = "syscall not in this kernel",
	[ZCIO_WHY_FORBIDDEN] = "syscall forbidden (seccomp)",
	[ZCIO_WHY_REFUSED] = "refused for these fds",
	[ZCIO_WHY_CROSS_FS] = "cross-filesystem",
	[ZCIO_WHY_ZERO_FIRST] = "first call returned 0",
	[ZCIO_WHY_NO_PIPE] = "no pipe available",
};

ZCIO_EXPORT const char *zcio_path_name(int path)
{
	if (path < 0 || path >= ZCIO_PATH_COUNT || !path_names[path])
		return "?";
	return path_names[path];
}

ZCIO_EXPORT const char *zcio_reason_name(int reason)
{
	if (reason < 0 || reason >= ZCIO_WHY_COUNT || !reason_names[reason])
		return "?";
	return reason_names[reason];
}

void zcio__stats_fallback(struct zcio_stats *st, int from, int to, int reason,
			  int err, uint64_t at)
{
	if (st->nfallbacks < ZCIO_STATS_FALLBACKS) {
		st->fallback[st->nfallbacks] = (struct zcio_fallback){
			.from = (uint8_t)from, .to = (uint8_t)to,
			.reason = (uint16_t)reason, .err = err, .at = at,
		};
	}
	st->nfallbacks++;
}

/* Append to buf like snprintf, tracking the length it wanted. */
static void put(char *buf, size_t len, size_t *at, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t len, size_t *at, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(*at < len ? buf + *at : NULL, *at < len ? len - *at : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		*at += (size_t)n;
}

ZCIO_EXPORT int zcio_stats_format(const struct zcio_stats *st, char *buf, size_t len)
{
	size_t at = 0;
	uint32_t shown, i, j;

	if (!st || (!buf && len))
		return -EINVAL;
	if (len)
		buf[0] = '\0';
	put(buf, len, &at, "total: %" PRIu64 " bytes\n", st->bytes);
	for (i = 0; i < ZCIO_PATH_COUNT; i++) {
		if (st->path_bytes[i])
			put(buf, len, &at, "%s: %" PRIu64 " bytes\n",
			    zcio_path_name((int)i), st->path_bytes[i]);
	}
	shown = st->nfallbacks < ZCIO_STATS_FALLBACKS ? st->nfallbacks : ZCIO_STATS_FALLBACKS;
	for (i = 0; i < shown; i++) {
		const struct zcio_fallback *f = &st->fallback[i];
		int dup = 0;

		/* The same fallback for many files (cat of small files) is
		 * shown once. */
		for (j = 0; j < i && !dup; j++)
			dup = st->fallback[j].from == f->from && st->fallback[j].to == f->to &&
			      st->fallback[j].reason == f->reason && st->fallback[j].err == f->err;
		if (dup)
			continue;
		put(buf, len, &at, "fallback: %s -> %s: %s", zcio_path_name(f->from),
		    zcio_path_name(f->to), zcio_reason_name(f->reason));
		if (f->err)
			put(buf, len, &at, " (%s)", strerrordesc_np(f->err) ? strerrordesc_np(f->err) : "unknown error");
		put(buf, len, &at, " at byte %" PRIu64 "\n", f->at);
	}
	if (st->nfallbacks > shown)
		put(buf, len, &at, "fallbacks: %" PRIu32 " in all\n", st->nfallbacks);
	return at > INT32_MAX ? INT32_MAX : (int)at;
}
