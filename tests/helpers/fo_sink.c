/*
 * fo_sink.c - a one-connection stream server that saves what it receives.
 *
 *   fo_sink [-p READY] ADDR OUT
 *
 *   ADDR   HOST:PORT (IPv4; port 0 picks a free one) or unix:PATH
 *   OUT    file the received bytes are written to (created or truncated)
 *   -p F   once listening, write the port (0 for unix) and a newline to
 *          F.tmp and rename it to F, so a test can wait for F to appear
 *
 * Accepts one connection, copies it to OUT with plain read()/write() until
 * end of file, and exits 0 (1 on an error, 2 on misuse).  Destinations of
 * `zcio tee` in tests: independent of the code under test.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int listen_on(const char *spec, unsigned *port)
{
	int fd, one = 1;

	*port = 0;
	if (strncmp(spec, "unix:", 5) == 0) {
		struct sockaddr_un un = { .sun_family = AF_UNIX };

		snprintf(un.sun_path, sizeof(un.sun_path), "%s", spec + 5);
		unlink(un.sun_path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&un, sizeof(un)) != 0 || listen(fd, 4) != 0)
			return -1;
		return fd;
	} else {
		struct sockaddr_in in = { .sin_family = AF_INET };
		socklen_t len = sizeof(in);
		char host[64];
		const char *colon = strrchr(spec, ':');

		if (!colon || (size_t)(colon - spec) >= sizeof(host))
			return -1;
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
		in.sin_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET, host, &in.sin_addr) != 1)
			return -1;
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&in, sizeof(in)) != 0 || listen(fd, 4) != 0 ||
		    getsockname(fd, (struct sockaddr *)&in, &len) != 0)
			return -1;
		*port = ntohs(in.sin_port);
		return fd;
	}
}

int main(int argc, char **argv)
{
	const char *ready = NULL;
	static char buf[1 << 18];
	unsigned port;
	int opt, l, c, out;

	while ((opt = getopt(argc, argv, "p:")) != -1) {
		if (opt == 'p')
			ready = optarg;
		else
			return 2;
	}
	if (optind != argc - 2)
		return 2;
	l = listen_on(argv[optind], &port);
	if (l < 0) {
		perror("fo_sink: listen");
		return 1;
	}
	out = open(argv[optind + 1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0) {
		perror(argv[optind + 1]);
		return 1;
	}
	if (ready) {
		char tmp[4096];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s.tmp", ready);
		f = fopen(tmp, "w");
		if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0 || rename(tmp, ready) != 0) {
			perror(ready);
			return 1;
		}
	}
	c = accept(l, NULL, NULL);
	if (c < 0) {
		perror("fo_sink: accept");
		return 1;
	}
	close(l);
	for (;;) {
		ssize_t n = read(c, buf, sizeof(buf));

		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("fo_sink: read");
			return 1;
		}
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));

			if (w < 0) {
				perror("fo_sink: write");
				return 1;
			}
			off += w;
		}
	}
	return close(out) == 0 ? 0 : 1;
}
