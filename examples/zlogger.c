/*
 * zlogger.c - a zero-copy logger on a zcio ring.
 *
 * Log lines are formatted straight into the ring's memory (no staging
 * buffer), committed, and pumped to the output when half the ring is full
 * or the input pauses.  Depending on the output, the ring hands the pages
 * over without copying:
 *
 *   a pipe (zlogger -z ... | consumer)  vmsplice(): the consumer reads
 *                                     the logger's own pages (only with -z:
 *                                     the consumer must read(), not splice)
 *   a file                            vmsplice() + splice(), or write()
 *   tcp:HOST:PORT                     send(MSG_ZEROCOPY) with completions,
 *                                     or send() once the kernel says it
 *                                     copies anyway (a receiver on this host)
 *
 * and the writer reuses ring space only when the ring says the kernel is
 * done with it.
 *
 *   zlogger [-n COUNT] [-s] [-a] [-z] OUTPUT
 *
 * OUTPUT is a file name, "-" for standard output, or tcp:HOST:PORT (IPv4).
 * Without -n, each line of standard input is logged, prefixed with its
 * number and the time; with -n, COUNT generated lines are logged (for
 * measurements: "seq=00000042 level=info msg=..." with no time, so the
 * output can be compared byte for byte).  -a appends to a file; -s prints
 * zcio's statistics (which path moved how many bytes) to standard error.
 * -z: the program reading the output pipe copies what it reads (read(), as
 * cat(1) of coreutils 9.1 and tee(1) do), so the logger may vmsplice() its
 * pages into the pipe.  Without -z a pipe gets write() copies: a reader
 * that splices the pages on (pv(1) does) would see later lines in place of
 * earlier ones, since the logger reuses its ring.
 *
 * Build: cc zlogger.c $(pkg-config --cflags --libs zcio) -o zlogger
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <zcio.h>

#define LINE_MAX_LEN 4096 /* the longest line zlogger formats */

struct logger {
	struct zcio_ring *ring;
	int fd;
	struct zcio_stats st;
};

/* Pump until the ring has handed everything over (flush) or just once
 * (when the writer only needs room).  Returns 0 or -errno. */
static int pump(struct logger *lg, bool all)
{
	for (;;) {
		int64_t r = zcio_ring_pump(lg->ring, 0, &lg->st);
		struct pollfd p = { .fd = lg->fd };

		if (r >= 0)
			return 0;
		if (r != -EAGAIN)
			return (int)r;
		if (!all)
			return 0;
		/* The ring names what it waits for: room in the output, or
		 * (sockets) completions, which poll() reports as POLLERR. */
		p.events = lg->st.wait == ZCIO_WAIT_COMPLETION ? 0 : POLLOUT;
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			return -errno;
	}
}

/* A span of at least LINE_MAX_LEN bytes, pumping (and waiting) as needed. */
static int span(struct logger *lg, char **out, size_t *len)
{
	for (;;) {
		void *p;
		int64_t n = zcio_ring_reserve(lg->ring, LINE_MAX_LEN, &p);
		int r;

		if (n > 0) {
			*out = p;
			*len = (size_t)n;
			return 0;
		}
		if (n != -EAGAIN)
			return (int)n;
		r = pump(lg, true);
		if (r < 0)
			return r;
	}
}

/* Format one line into the ring.  Returns 0 or -errno. */
static int log_line(struct logger *lg, unsigned long seq, const char *msg, bool stamp)
{
	char *p = NULL;
	size_t room = 0;
	int n, r = span(lg, &p, &room);

	if (r < 0)
		return r;
	if (stamp) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		n = snprintf(p, LINE_MAX_LEN, "%08lu %lld.%06ld %s\n", seq, (long long)ts.tv_sec,
			     ts.tv_nsec / 1000, msg);
	} else {
		n = snprintf(p, LINE_MAX_LEN, "seq=%08lu level=info msg=%s\n", seq, msg);
	}
	if (n < 0)
		return -EINVAL;
	if (n >= LINE_MAX_LEN) {
		n = LINE_MAX_LEN; /* cut, but keep the newline */
		p[n - 1] = '\n';
	}
	zcio_ring_commit(lg->ring, (size_t)n);
	/* Hand over in batches: large batches are the ones zero-copy pays
	 * for.  The ring keeps half of itself free for the writer. */
	if (zcio_ring_pending(lg->ring) >= zcio_ring_size(lg->ring) / 4)
		return pump(lg, false);
	return 0;
}

static int open_output(const char *out, bool append)
{
	if (strcmp(out, "-") == 0)
		return 1;
	if (strncmp(out, "tcp:", 4) == 0) {
		struct sockaddr_in a = { .sin_family = AF_INET };
		char host[64];
		const char *colon = strrchr(out + 4, ':');
		int s;

		if (!colon || (size_t)(colon - (out + 4)) >= sizeof(host)) {
			fprintf(stderr, "zlogger: tcp:HOST:PORT expected\n");
			return -1;
		}
		memcpy(host, out + 4, (size_t)(colon - (out + 4)));
		host[colon - (out + 4)] = '\0';
		a.sin_port = htons((uint16_t)strtoul(colon + 1, NULL, 10));
		if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
			fprintf(stderr, "zlogger: bad address %s\n", host);
			return -1;
		}
		s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
			perror("zlogger: connect");
			return -1;
		}
		return s;
	}
	int fd = open(out, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);

	if (fd < 0)
		fprintf(stderr, "zlogger: %s: %s\n", out, strerror(errno));
	return fd;
}

/*
 * Log each line of standard input.  Lines are handed over in batches while
 * input keeps coming, and at once when it pauses (nothing more to read
 * right now), so a quiet program's last lines are not held back.
 */
static int log_stdin(struct logger *lg)
{
	static char buf[64 * 1024];
	size_t have = 0;
	unsigned long seq = 0;
	int r = 0;

	for (;;) {
		char *nl;
		ssize_t n;
		struct pollfd p = { .fd = 0, .events = POLLIN };

		while ((nl = memchr(buf, '\n', have)) || have == sizeof(buf)) {
			size_t len = nl ? (size_t)(nl - buf) : have;

			if (len > LINE_MAX_LEN - 64)
				len = LINE_MAX_LEN - 64;
			buf[len] = '\0'; /* the newline, or the line is cut */
			r = log_line(lg, seq++, buf, true);
			if (r < 0)
				return r;
			len = nl ? (size_t)(nl - buf) + 1 : have;
			memmove(buf, buf + len, have - len);
			have -= len;
		}
		if (poll(&p, 1, 0) == 0 && zcio_ring_pending(lg->ring)) {
			r = pump(lg, true); /* input paused: hand everything over */
			if (r < 0)
				return r;
		}
		n = read(0, buf + have, sizeof(buf) - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {
			if (have) {
				buf[have] = '\0';
				r = log_line(lg, seq++, buf, true);
			}
			return r;
		}
		have += (size_t)n;
	}
}

int main(int argc, char **argv)
{
	struct logger lg = { 0 };
	unsigned long count = 0, seq;
	bool generate = false, stats = false, append = false;
	struct zcio_opts opts = { 0 };
	int c, r = 0;

	while ((c = getopt(argc, argv, "n:saz")) != -1) {
		switch (c) {
		case 'n':
			count = strtoul(optarg, NULL, 10);
			generate = true;
			break;
		case 's':
			stats = true;
			break;
		case 'a':
			append = true;
			break;
		case 'z':
			opts.flags |= ZCIO_F_VMSPLICE;
			break;
		default:
			fprintf(stderr, "usage: zlogger [-n COUNT] [-s] [-a] [-z] OUTPUT\n");
			return 2;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: zlogger [-n COUNT] [-s] [-a] [-z] OUTPUT\n");
		return 2;
	}
	/* A logger whose reader goes away gets -EPIPE, not death. */
	signal(SIGPIPE, SIG_IGN);
	lg.fd = open_output(argv[optind], append);
	if (lg.fd < 0)
		return 1;
	/* 0: the ring sizes itself (twice the pipe it feeds, 2 MiB by
	 * default); the output's flags are left as they are. */
	r = zcio_ring_new(lg.fd, 0, &opts, &lg.ring);
	if (r < 0) {
		fprintf(stderr, "zlogger: zcio_ring_new: %s\n", strerror(-r));
		return 1;
	}
	if (generate) {
		for (seq = 0; r == 0 && seq < count; seq++)
			r = log_line(&lg, seq, "the quick brown fox jumps over the lazy dog", false);
	} else {
		r = log_stdin(&lg);
	}
	if (r == 0)
		r = zcio_ring_flush(lg.ring, 0, &lg.st);
	if (stats) {
		char text[1024];

		zcio_stats_format(&lg.st, text, sizeof(text));
		fputs(text, stderr);
	}
	zcio_ring_free(lg.ring);
	if (r < 0) {
		fprintf(stderr, "zlogger: %s\n", strerror(-r));
		return 1;
	}
	if (lg.fd != 1 && close(lg.fd) < 0) {
		perror("zlogger: close");
		return 1;
	}
	return 0;
}
