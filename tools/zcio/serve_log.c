/*
 * serve_log.c - the access log of `zcio serve`, in Common Log Format:
 *
 *   127.0.0.1 - - [10/Oct/2000:13:55:36 +0200] "GET /a.html HTTP/1.1" 200 2326
 *
 * Each worker appends lines to its own buffer and writes the buffer in one
 * write() when it fills up and on every loop tick (100 ms): a write per
 * request would cost more than the request.  The writes of all workers
 * take one lock so that batches never interleave, whatever the log is (a
 * file, a pipe with writes above PIPE_BUF, a terminal).
 *
 * The request line is the client's: bytes outside printable ASCII, '"'
 * and '\' are written as \xHH so a line can never be forged or broken.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "serve.h"

#define ALOG_CAP (64u * 1024)
/* A line never takes more than this (the request line is cut). */
#define ALOG_LINE_MAX 2048u

static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

int alog_init(struct serve_log *lg)
{
	memset(lg, 0, sizeof(*lg));
	lg->sec = -1;
	lg->buf = malloc(ALOG_CAP);
	if (!lg->buf)
		return -ENOMEM;
	lg->cap = ALOG_CAP;
	return 0;
}

void alog_release(struct serve_log *lg)
{
	alog_flush(lg);
	free(lg->buf);
	lg->buf = NULL;
}

void alog_flush(struct serve_log *lg)
{
	size_t off = 0;

	if (!lg->len || serve_cfg.log_fd < 0)
		return;
	pthread_mutex_lock(&write_lock);
	while (off < lg->len) {
		ssize_t n = write(serve_cfg.log_fd, lg->buf + off, lg->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* a full disk loses log lines, never requests */
		off += (size_t)n;
	}
	pthread_mutex_unlock(&write_lock);
	lg->len = 0;
}

static void refresh_time(struct serve_log *lg)
{
	time_t now = time(NULL);
	struct tm tm;

	if (now == lg->sec)
		return;
	lg->sec = now;
	localtime_r(&now, &tm);
	strftime(lg->time, sizeof(lg->time), "%d/%b/%Y:%H:%M:%S %z", &tm);
}

void alog_request(struct serve_log *lg, const char *peer, const char *line, size_t line_len,
		  int status, uint64_t bytes)
{
	static const char hexd[] = "0123456789abcdef";
	char *p;
	int n;

	if (serve_cfg.log_fd < 0 || !lg->buf)
		return;
	if (lg->cap - lg->len < ALOG_LINE_MAX)
		alog_flush(lg);
	refresh_time(lg);
	p = lg->buf + lg->len;
	n = snprintf(p, 200, "%s - - [%s] \"", peer[0] ? peer : "-", lg->time);
	if (n < 0 || n >= 200)
		return;
	p += n;
	if (line_len > 400)
		line_len = 400; /* 4 bytes each at most: stays under ALOG_LINE_MAX */
	for (size_t i = 0; i < line_len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
			*p++ = '\\';
			*p++ = 'x';
			*p++ = hexd[c >> 4];
			*p++ = hexd[c & 15];
		} else {
			*p++ = (char)c;
		}
	}
	if (bytes)
		n = snprintf(p, 64, "\" %d %llu\n", status, (unsigned long long)bytes);
	else
		n = snprintf(p, 64, "\" %d -\n", status);
	if (n < 0 || n >= 64)
		return;
	p += n;
	lg->len = (size_t)(p - lg->buf);
}
