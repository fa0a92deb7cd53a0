/*
 * sv_raw.c - a raw HTTP client for the `zcio serve` tests: sends the bytes
 * it reads on stdin exactly as they are (malformed requests, pipelines,
 * NUL bytes), in pieces if asked, and writes whatever the server answers
 * to stdout until the server closes or a timeout passes.
 *
 *   sv_raw [--chunk N] [--delay MS] [--timeout S] [--shut] [--hold S] HOST PORT
 *
 *   --chunk N    send N bytes per write (default: all at once)
 *   --delay MS   pause between writes (default 0)
 *   --timeout S  give up reading after S seconds without the server closing
 *                (default 5; fractions allowed)
 *   --shut       shutdown(SHUT_WR) once everything is sent
 *   --hold S     after sending, read for S seconds only, then report
 *                "open" if the server has not closed (keep-alive checks)
 *   --split P    also cut what was received into responses (framed by
 *                Content-Length; GET answers only) and write the body of
 *                the Nth to P.N, with a line "sv_raw: response N STATUS
 *                LENGTH" on stderr for each; bytes left over that do not
 *                form a whole response are reported as "sv_raw: rest N"
 *
 * The last line on stderr says how the connection ended: "sv_raw: closed
 * after N ms", "sv_raw: reset after N ms" or "sv_raw: open after N ms".
 * Exit status: 0 closed by the server, 3 still open, 4 reset, 1 error.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dial(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	int fd, one = 1;

	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -1;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Everything received, kept for --split. */
static char *got;
static size_t got_len, got_cap;

static void keep(const char *p, size_t n)
{
	fwrite(p, 1, n, stdout);
	if (got_len + n > got_cap) {
		got_cap = (got_len + n) * 2;
		got = realloc(got, got_cap);
		if (!got)
			exit(1);
	}
	memcpy(got + got_len, p, n);
	got_len += n;
}

/* Take what has arrived; -1 once the server has closed (stop sending). */
static int drain_out(int fd)
{
	char buf[65536];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n > 0) {
			keep(buf, (size_t)n);
			continue;
		}
		return n == 0 || errno != EAGAIN ? -1 : 0;
	}
}

/* Cut got[] into responses: status line, fields, empty line, then
 * Content-Length bytes of body (none for 1xx, 204 and 304). */
static void split(const char *prefix)
{
	size_t at = 0;
	int n = 0;

	while (at < got_len) {
		const char *h = got + at, *end = memmem(h, got_len - at, "\r\n\r\n", 4);
		const char *cl;
		unsigned long long len = 0;
		int status = 0;
		char name[4096];
		FILE *f;

		if (!end || sscanf(h, "HTTP/1.%*d %d", &status) != 1)
			break;
		cl = memmem(h, (size_t)(end - h), "\r\nContent-Length: ", 18);
		if (cl)
			len = strtoull(cl + 18, NULL, 10);
		if (status < 200 || status == 204 || status == 304)
			len = 0;
		if ((size_t)(end + 4 - got) + len > got_len)
			break;
		n++;
		snprintf(name, sizeof(name), "%s.%d", prefix, n);
		f = fopen(name, "wb");
		if (f) {
			fwrite(end + 4, 1, len, f);
			fclose(f);
		}
		fprintf(stderr, "sv_raw: response %d %d %llu\n", n, status, len);
		at = (size_t)(end + 4 - got) + len;
	}
	if (at < got_len)
		fprintf(stderr, "sv_raw: rest %zu\n", got_len - at);
}

int main(int argc, char **argv)
{
	size_t chunk = 0, len = 0, cap = 1 << 16, off = 0;
	double timeout = 5, hold = -1;
	long delay = 0;
	int shut = 0, fd, i;
	char *req = malloc(cap), buf[65536];
	long long start, limit;
	const char *how, *split_prefix = NULL;
	int status;

	signal(SIGPIPE, SIG_IGN);
	for (i = 1; i < argc - 2; i++) {
		if (!strcmp(argv[i], "--chunk") && i + 1 < argc - 2)
			chunk = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--delay") && i + 1 < argc - 2)
			delay = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--timeout") && i + 1 < argc - 2)
			timeout = strtod(argv[++i], NULL);
		else if (!strcmp(argv[i], "--hold") && i + 1 < argc - 2)
			hold = strtod(argv[++i], NULL);
		else if (!strcmp(argv[i], "--split") && i + 1 < argc - 2)
			split_prefix = argv[++i];
		else if (!strcmp(argv[i], "--shut"))
			shut = 1;
		else
			break;
	}
	if (i != argc - 2 || !req) {
		fprintf(stderr, "usage: sv_raw [--chunk N] [--delay MS] [--timeout S] [--shut] "
				"[--hold S] [--split PREFIX] HOST PORT < request\n");
		return 2;
	}
	for (;;) {
		ssize_t n;

		if (len == cap && !(req = realloc(req, cap *= 2)))
			return 1;
		n = read(0, req + len, cap - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	fd = dial(argv[argc - 2], argv[argc - 1]);
	if (fd < 0) {
		fprintf(stderr, "sv_raw: connect: %s\n", strerror(errno));
		return 1;
	}
	start = now_ms();
	while (off < len) {
		size_t n = chunk && chunk < len - off ? chunk : len - off;
		ssize_t w = send(fd, req + off, n, MSG_NOSIGNAL);

		if (w < 0) {
			/* The server may answer and close before we finish
			 * (an early 431): read what it said. */
			break;
		}
		off += (size_t)w;
		if (drain_out(fd) < 0)
			break;
		if (delay && off < len) {
			struct pollfd p = { .fd = fd, .events = POLLIN };

			/* Wait, but notice at once when the server answers. */
			if (poll(&p, 1, (int)delay) > 0 && drain_out(fd) < 0)
				break;
		}
	}
	if (shut)
		shutdown(fd, SHUT_WR);
	limit = start + (long long)((hold >= 0 ? hold : timeout) * 1000);
	how = "open";
	status = 3;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long left = limit - now_ms();
		ssize_t n;

		if (left <= 0)
			break;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0) {
			keep(buf, (size_t)n);
			continue;
		}
		if (n == 0) {
			how = "closed";
			status = 0;
		} else {
			how = errno == ECONNRESET ? "reset" : "error";
			status = errno == ECONNRESET ? 4 : 1;
		}
		break;
	}
	fflush(stdout);
	if (split_prefix)
		split(split_prefix);
	fprintf(stderr, "sv_raw: %s after %lld ms\n", how, now_ms() - start);
	close(fd);
	return status;
}
