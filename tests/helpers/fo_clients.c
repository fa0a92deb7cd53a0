/*
 * fo_clients.c - many stream clients in one process, for broadcast tests
 * and benchmarks.
 *
 *   fo_clients [-n N] [-x FILE | -t] [-S K] [-r FILE] [-R FILE] ADDR
 *
 *   ADDR     HOST:PORT (IPv4) or unix:PATH
 *   -n N     open N connections (default 1), all before reading any
 *   -x FILE  check mode: every byte a client receives must continue a run
 *            of FILE's bytes; the run's start (the client's join offset)
 *            is found from its first 64 bytes.  Without -x the bytes are
 *            discarded with splice() (socket -> pipe -> /dev/null), so
 *            the clients cost as little as possible
 *   -t       discard with recv(MSG_TRUNC) instead (TCP only): the kernel
 *            frees what arrived without copying it or building pipe
 *            buffers, the cheapest reader there is
 *   -S K     the first K connections never read (stalled clients); they
 *            are closed once every other client has reached end of file
 *   -r FILE  create FILE once all N are connected (a start signal)
 *   -R FILE  write one line per client there: "PORT OFFSET BYTES STATUS"
 *            (STATUS ok, bad (a byte differed), short (did not reach
 *            FILE's end), reset, stalled)
 *
 * Prints one summary line on stdout: "clients N eof E bad B short S bytes
 * T seconds W" (W: from the first byte received to the last end of file).
 * Exit status 0 when every reading client reached end of file and, with
 * -x, all of them are ok; 1 otherwise; 2 on misuse.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PROBE 64
#define BUF_SIZE (256u * 1024)

struct client {
	int fd;
	unsigned port;
	bool stalled, eof, bad, reset;
	bool located;
	uint64_t offset;       /* where in the expected file it started */
	uint64_t bytes;
	unsigned char probe[PROBE];
	unsigned probe_len;
};

static const unsigned char *expect;
static uint64_t expect_len;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_to(const char *spec)
{
	int fd;

	if (strncmp(spec, "unix:", 5) == 0) {
		struct sockaddr_un un = { .sun_family = AF_UNIX };

		snprintf(un.sun_path, sizeof(un.sun_path), "%s", spec + 5);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&un, sizeof(un)) != 0) {
			close(fd);
			return -1;
		}
		return fd;
	} else {
		struct sockaddr_in in = { .sin_family = AF_INET };
		char host[64];
		const char *colon = strrchr(spec, ':');

		if (!colon || (size_t)(colon - spec) >= sizeof(host))
			return -1;
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
		in.sin_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET, host[0] ? host : "127.0.0.1", &in.sin_addr) != 1)
			return -1;
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&in, sizeof(in)) != 0) {
			close(fd);
			return -1;
		}
		return fd;
	}
}

/* Check n received bytes of c against the expected file. */
static void check(struct client *c, const unsigned char *b, size_t n)
{
	if (c->bad)
		return;
	if (!c->located) {
		size_t k = PROBE - c->probe_len < n ? PROBE - c->probe_len : n;
		const unsigned char *at;

		memcpy(c->probe + c->probe_len, b, k);
		c->probe_len += (unsigned)k;
		b += k;
		n -= k;
		if (c->probe_len < PROBE)
			return;
		/* The data is pseudo-random: 64 bytes occur once. */
		at = memmem(expect, expect_len, c->probe, PROBE);
		if (!at) {
			c->bad = true;
			return;
		}
		c->located = true;
		c->offset = (uint64_t)(at - expect);
		c->bytes = PROBE; /* counted from here on against the file */
	}
	if (c->offset + c->bytes + n > expect_len ||
	    memcmp(expect + c->offset + c->bytes, b, n) != 0) {
		c->bad = true;
		return;
	}
	c->bytes += n;
}

static void usage(void)
{
	fprintf(stderr, "usage: fo_clients [-n N] [-x FILE | -t] [-S K] [-r FILE] [-R FILE] ADDR\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *xfile = NULL, *ready = NULL, *report = NULL;
	unsigned n = 1, stall = 0, open_readers, eofs = 0, bad = 0, shorts = 0;
	struct client *cl;
	struct rlimit rl;
	unsigned char *buf = malloc(BUF_SIZE);
	uint64_t total = 0;
	double first = 0, last = 0;
	int opt, ep, sink[2] = { -1, -1 }, devnull;
	bool trunc = false;

	while ((opt = getopt(argc, argv, "n:x:S:r:R:t")) != -1) {
		switch (opt) {
		case 't': trunc = true; break;
		case 'n': n = (unsigned)atoi(optarg); break;
		case 'x': xfile = optarg; break;
		case 'S': stall = (unsigned)atoi(optarg); break;
		case 'r': ready = optarg; break;
		case 'R': report = optarg; break;
		default: usage();
		}
	}
	if (optind != argc - 1 || n == 0 || stall > n || !buf)
		usage();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (xfile) {
		int fd = open(xfile, O_RDONLY | O_CLOEXEC);
		struct stat st;

		if (fd < 0 || fstat(fd, &st) != 0) {
			perror(xfile);
			return 2;
		}
		expect_len = (uint64_t)st.st_size;
		expect = expect_len ? mmap(NULL, expect_len, PROT_READ, MAP_PRIVATE, fd, 0) : buf;
		if (expect == MAP_FAILED) {
			perror("mmap");
			return 2;
		}
		close(fd);
	} else {
		if (pipe2(sink, O_CLOEXEC | O_NONBLOCK) != 0)
			return 2;
		fcntl(sink[1], F_SETPIPE_SZ, 1 << 20);
	}
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	cl = calloc(n, sizeof(*cl));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!cl || ep < 0 || devnull < 0)
		return 2;
	for (unsigned i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u32 = i };

		cl[i].fd = connect_to(argv[optind]);
		if (cl[i].fd < 0) {
			fprintf(stderr, "fo_clients: connection %u: %s\n", i, strerror(errno));
			return 1;
		}
		if (getsockname(cl[i].fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET)
			cl[i].port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		cl[i].stalled = i < stall;
		fcntl(cl[i].fd, F_SETFL, O_NONBLOCK);
		if (!cl[i].stalled && epoll_ctl(ep, EPOLL_CTL_ADD, cl[i].fd, &ev) != 0)
			return 2;
	}
	if (ready) {
		int fd = open(ready, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

		if (fd >= 0)
			close(fd);
	}
	open_readers = n - stall;
	while (open_readers) {
		struct epoll_event evs[256];
		int k = epoll_wait(ep, evs, 256, 60000);

		if (k == 0) {
			fprintf(stderr, "fo_clients: nothing for 60 s, %u clients still open\n",
				open_readers);
			break;
		}
		for (int j = 0; j < k; j++) {
			struct client *c = &cl[evs[j].data.u32];

			for (;;) {
				ssize_t r;

				if (xfile) {
					r = read(c->fd, buf, BUF_SIZE);
					if (r > 0)
						check(c, buf, (size_t)r);
				} else if (trunc) {
					r = recv(c->fd, NULL, 1 << 24, MSG_TRUNC | MSG_DONTWAIT);
					if (r > 0)
						c->bytes += (uint64_t)r;
				} else {
					r = splice(c->fd, NULL, sink[1], NULL, 1 << 20, SPLICE_F_NONBLOCK);
					if (r > 0) {
						c->bytes += (uint64_t)r;
						for (ssize_t left = r; left > 0;) {
							ssize_t m = splice(sink[0], NULL, devnull, NULL,
									   (size_t)left, 0);

							if (m <= 0)
								return 1;
							left -= m;
						}
					}
				}
				if (r > 0) {
					total += (uint64_t)r;
					if (!first)
						first = now_s();
					continue;
				}
				if (r < 0 && errno == EAGAIN)
					break;
				if (r < 0 && errno == EINTR)
					continue;
				if (r < 0)
					c->reset = true;
				else
					c->eof = true;
				last = now_s();
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				c->fd = -1;
				open_readers--;
				break;
			}
		}
	}
	for (unsigned i = 0; i < n; i++) {
		struct client *c = &cl[i];
		const char *status = "ok";

		if (c->stalled) {
			status = "stalled";
		} else if (c->reset || !c->eof) {
			status = "reset";
			bad++;
		} else if (xfile && (c->bad || (!c->located && c->probe_len))) {
			status = "bad";
			bad++;
		} else if (xfile && c->located && c->offset + c->bytes != expect_len) {
			status = "short";
			shorts++;
		}
		if (!c->stalled && c->eof)
			eofs++;
		if (xfile && !c->located)
			c->bytes = c->probe_len;
		if (report) {
			static FILE *rf;

			if (!rf)
				rf = fopen(report, "w");
			if (rf)
				fprintf(rf, "%u %llu %llu %s\n", c->port,
					(unsigned long long)(c->located ? c->offset : 0),
					(unsigned long long)c->bytes, status);
			if (rf && i == n - 1)
				fclose(rf);
		}
		if (c->fd >= 0)
			close(c->fd);
	}
	printf("clients %u eof %u bad %u short %u bytes %llu seconds %.3f\n", n, eofs, bad, shorts,
	       (unsigned long long)total, last > first ? last - first : 0.0);
	return eofs == n - stall && bad == 0 && shorts == 0 ? 0 : 1;
}
