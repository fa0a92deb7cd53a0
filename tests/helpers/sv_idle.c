/*
 * sv_idle.c - hold many idle connections open against a server, for the
 * `zcio serve` flood tests.
 *
 *   sv_idle [--send STRING] HOST PORT N
 *
 * Opens N TCP connections (each optionally sending STRING, e.g. the first
 * bytes of a request that never ends), prints "ready N" on stdout once all
 * are connected, then waits until stdin reaches end of file.  It then
 * prints "closed K" - how many of the N the server had closed meanwhile -
 * and exits 0 (1 if it could not connect them all).
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	const char *send_str = NULL;
	struct pollfd *p;
	struct rlimit rl;
	int argi = 1, n, closed = 0;
	char c;

	signal(SIGPIPE, SIG_IGN);
	if (argc > 2 && !strcmp(argv[1], "--send")) {
		send_str = argv[2];
		argi = 3;
	}
	if (argc - argi != 3) {
		fprintf(stderr, "usage: sv_idle [--send STRING] HOST PORT N\n");
		return 2;
	}
	n = atoi(argv[argi + 2]);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)n + 64 ? rl.rlim_max : (rlim_t)n + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getaddrinfo(argv[argi], argv[argi + 1], &hints, &res) != 0) {
		fprintf(stderr, "sv_idle: cannot resolve %s\n", argv[argi]);
		return 1;
	}
	p = calloc((size_t)n, sizeof(*p));
	for (int i = 0; i < n; i++) {
		int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
			fprintf(stderr, "sv_idle: connection %d: %s\n", i, strerror(errno));
			return 1;
		}
		if (send_str)
			(void)!send(fd, send_str, strlen(send_str), MSG_NOSIGNAL);
		p[i] = (struct pollfd){ .fd = fd, .events = POLLIN };
	}
	freeaddrinfo(res);
	printf("ready %d\n", n);
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	/* A connection the server closed reads as end of file (perhaps after
	 * an answer such as 408) or as a reset. */
	poll(p, (nfds_t)n, 0);
	for (int i = 0; i < n; i++) {
		if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
			char buf[4096];
			ssize_t r;

			while ((r = recv(p[i].fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
				;
			if (r == 0 || (r < 0 && errno != EAGAIN))
				closed++;
		}
		close(p[i].fd);
	}
	printf("closed %d\n", closed);
	return 0;
}
