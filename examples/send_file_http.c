/*
 * send_file_http.c - zcio_send_file(): an HTTP response header and a file's
 * bytes as one stream to a connected socket.
 *
 *   send_file_http FILE PORT
 *
 * Listens on 127.0.0.1:PORT (0 picks a free port), prints the address it
 * listens on, answers one client's request (whatever it asks for) with
 * FILE, and exits.  Try: curl -o copy http://127.0.0.1:PORT/
 *
 * Build: cc send_file_http.c $(pkg-config --cflags --libs zcio) -o send_file_http
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zcio.h>

static int die(const char *what, int err)
{
	fprintf(stderr, "send_file_http: %s: %s\n", what, strerror(err));
	return 1;
}

/* Listen on 127.0.0.1:port; returns the socket or -errno. */
static int listen_loopback(unsigned port, unsigned *bound)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	socklen_t alen = sizeof(a);
	int one = 1;
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return -errno;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0 ||
	    getsockname(s, (struct sockaddr *)&a, &alen) < 0) {
		int err = errno;

		close(s);
		return -err;
	}
	*bound = ntohs(a.sin_port);
	return s;
}

/*
 * Read the request head (up to the empty line).  Its content does not
 * matter here, but it must be read: closing a socket with unread bytes
 * makes the kernel reset the connection, and the client may lose the end
 * of the response.
 */
static int read_request(int c)
{
	char buf[8192];
	size_t have = 0;

	while (have < sizeof(buf) - 1) {
		ssize_t n = read(c, buf + have, sizeof(buf) - 1 - have);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		have += (size_t)n;
		buf[have] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			return 0;
	}
	return -E2BIG;
}

int main(int argc, char **argv)
{
	struct zcio_stats st = { 0 };
	char hdr[256], text[1024];
	struct stat sb;
	unsigned port = 0;
	int fd, s, c, hlen, r;
	int64_t n;

	if (argc != 3) {
		fprintf(stderr, "usage: send_file_http FILE PORT\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0)
		return die(argv[1], errno);
	s = listen_loopback((unsigned)strtoul(argv[2], NULL, 10), &port);
	if (s < 0)
		return die("listen", -s);
	printf("listening on 127.0.0.1:%u\n", port);
	fflush(stdout);

	c = accept(s, NULL, NULL);
	if (c < 0)
		return die("accept", errno);
	r = read_request(c);
	if (r < 0)
		return die("request", -r);

	/* The length promised here is the length asked of zcio_send_file():
	 * if the file shrinks meanwhile, it stops short with -ENODATA
	 * instead of padding, and the connection must be closed. */
	hlen = snprintf(hdr, sizeof(hdr),
			"HTTP/1.1 200 OK\r\n"
			"Content-Type: application/octet-stream\r\n"
			"Content-Length: %jd\r\n"
			"Connection: close\r\n\r\n", (intmax_t)sb.st_size);
	n = zcio_send_file(c, hdr, (size_t)hlen, fd, 0, (uint64_t)sb.st_size, NULL, &st);
	if (n < 0)
		fprintf(stderr, "send_file_http: send: %s after %" PRIu64 " bytes\n",
			strerror((int)-n), st.last_bytes);
	/* hdr may be reused (or freed) as soon as the call returns: the
	 * header was copied into the pipe or the socket. */
	zcio_stats_format(&st, text, sizeof(text));
	fputs(text, stderr);

	shutdown(c, SHUT_WR);
	close(c);
	close(s);
	close(fd);
	return n < 0 ? 1 : 0;
}
