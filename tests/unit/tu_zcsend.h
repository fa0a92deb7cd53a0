/*
 * tu_zcsend.h - the patterned writer of the zcsend tests that run through
 * io_uring (test_zcsend_uring, test_zcsend_fixed).
 *
 * Message k of the stream is the pattern of sequence number seed0 + k
 * (tu_fill).  The writer writes it into buffer k % nbuf, sends it (a short
 * send: the rest under the next cookie), and writes that buffer again only
 * after zcio_zcsend_reap() has reported every cookie it was sent under.  A
 * reader that checks every byte then sees another message's bytes wherever
 * a buffer was written while the kernel still held it.
 */
#ifndef ZCIO_TU_ZCSEND_H
#define ZCIO_TU_ZCSEND_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define TU_ZC_NBUF 8
#define TU_ZC_COOKIES 65536 /* more pieces than this are never in flight */

/* The whole stream, to compare the reader's bytes with. */
static TU_UNUSED uint8_t *tu_zc_stream(size_t total, size_t msg, uint64_t seed0)
{
	uint8_t *s = malloc(total);
	size_t off;

	assert_non_null(s);
	for (off = 0; off < total; off += msg)
		tu_fill(s + off, total - off < msg ? total - off : msg, seed0 + off / msg);
	return s;
}

struct tu_zc_writer {
	struct zcio_zcsend *zs;
	struct zcio_stats *st;   /* the sends' and reaps' stats */
	uint64_t cookies;        /* sends accepted (one cookie each) */
	uint64_t reaped;         /* cookies reported */
	uint64_t short_sends;    /* sends that took less than offered */
	size_t buf_bytes[TU_ZC_NBUF]; /* bytes sent from each buffer */
	int outstanding[TU_ZC_NBUF];  /* cookies in flight per buffer */
	uint8_t owner[TU_ZC_COOKIES]; /* buffer of cookie c: owner[c % TU_ZC_COOKIES] */
	char err[160];
};

/* Reap completions: each cookie must come back once, in send order. */
static TU_UNUSED bool tu_zc_reap(struct tu_zc_writer *w)
{
	uint64_t done[TU_ZC_NBUF];
	int n, k;

	do {
		n = zcio_zcsend_reap(w->zs, done, TU_ZC_NBUF, w->st);
		if (n < 0) {
			snprintf(w->err, sizeof(w->err), "reap: %s", strerror(-n));
			return false;
		}
		for (k = 0; k < n; k++) {
			if (done[k] != w->reaped) {
				snprintf(w->err, sizeof(w->err), "cookie %llu reported, %llu expected",
					 (unsigned long long)done[k], (unsigned long long)w->reaped);
				return false;
			}
			w->outstanding[w->owner[done[k] % TU_ZC_COOKIES]]--;
			w->reaped++;
		}
	} while (n == TU_ZC_NBUF);
	return true;
}

/* Wait for completions on the fd the zcsend names (its ring for SEND_ZC). */
static TU_UNUSED void tu_zc_wait_completion(struct zcio_zcsend *zs)
{
	struct zcio_zcsend_info info;

	if (zcio_zcsend_info(zs, &info) == 0)
		tu_wait_fd(info.wait_fd, (short)info.wait_events, 1000);
}

/*
 * Send total bytes of the stream over wr with w->zs from bufs[0 .. nbuf),
 * then wait until every cookie is reported.  Returns false with w->err set
 * if anything went wrong (no cmocka assertions: it also runs in forked
 * children).
 */
static TU_UNUSED bool tu_zc_send_stream(struct tu_zc_writer *w, int wr, uint8_t *const *bufs,
					int nbuf, size_t total, size_t msg, uint64_t seed0)
{
	size_t sent = 0;
	uint64_t k = 0;
	int b = 0;

	while (sent < total && !w->err[0]) {
		size_t len = total - sent < msg ? total - sent : msg, off = 0;

		if (!tu_zc_reap(w))
			return false;
		if (w->outstanding[b]) {
			/* This buffer is still the kernel's: never touch it. */
			tu_zc_wait_completion(w->zs);
			continue;
		}
		tu_fill(bufs[b], len, seed0 + k);
		while (off < len) {
			int64_t n = zcio_zcsend_send(w->zs, bufs[b] + off, len - off, w->cookies, w->st);

			if (n == -EAGAIN) {
				if (w->st->wait != ZCIO_WAIT_OUT) {
					snprintf(w->err, sizeof(w->err), "EAGAIN without ZCIO_WAIT_OUT");
					return false;
				}
				tu_wait_fd(wr, POLLOUT, 1000);
				if (!tu_zc_reap(w))
					return false;
				continue;
			}
			if (n <= 0) {
				snprintf(w->err, sizeof(w->err), "send: %s", strerror((int)-n));
				return false;
			}
			if ((size_t)n < len - off)
				w->short_sends++;
			w->owner[w->cookies % TU_ZC_COOKIES] = (uint8_t)b;
			w->outstanding[b]++;
			w->buf_bytes[b] += (size_t)n;
			w->cookies++;
			off += (size_t)n;
		}
		sent += len;
		k++;
		b = (b + 1) % nbuf;
	}
	while (!w->err[0] && zcio_zcsend_pending(w->zs)) {
		if (!tu_zc_reap(w))
			return false;
		if (zcio_zcsend_pending(w->zs))
			tu_zc_wait_completion(w->zs);
	}
	if (!w->err[0] && w->reaped != w->cookies)
		snprintf(w->err, sizeof(w->err), "%llu of %llu cookies reported",
			 (unsigned long long)w->reaped, (unsigned long long)w->cookies);
	return !w->err[0];
}

#endif
