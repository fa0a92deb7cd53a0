/*
 * relay.c - a TCP relay from two zcio links, driven by poll(): one link per
 * direction, bytes spliced through pipes from zcio's pool.
 *
 *   relay LISTEN_PORT TARGET_PORT
 *
 * Listens on 127.0.0.1:LISTEN_PORT (0 picks a free port), prints the
 * address it listens on, accepts one client, connects it to
 * 127.0.0.1:TARGET_PORT, and relays both directions until both have ended.
 * The end of each direction is passed on with shutdown(SHUT_WR), so
 * half-closed connections work.
 *
 * Build: cc relay.c $(pkg-config --cflags --libs zcio) -o relay
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
#include <unistd.h>

#include <zcio.h>

struct direction {
	const char *name;
	int in, out;
	struct zcio_link *link;
	struct zcio_stats st;
	bool done;
};

static int tcp_socket(void)
{
	return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

static struct sockaddr_in loopback(unsigned port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

/* The sockets are ours: making them nonblocking changes no one else's. */
static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/*
 * Pump one direction.  Returns 0 and, when the link waits, fills *p with
 * the descriptor and event to poll for; returns -errno on an error.
 */
static int step(struct direction *d, struct pollfd *p, bool *waits)
{
	int64_t n = zcio_link_pump(d->link, 0, &d->st);

	*waits = false;
	if (n == -EAGAIN) {
		/* The link names the descriptor that blocked. */
		bool in = d->st.wait == ZCIO_WAIT_IN;

		*p = (struct pollfd){ .fd = in ? d->in : d->out, .events = in ? POLLIN : POLLOUT };
		*waits = true;
		return 0;
	}
	if (n < 0)
		return (int)n;
	/* 0: the source ended and everything was delivered; pass the end
	 * on.  (n > 0 cannot happen: no budget was given.) */
	shutdown(d->out, SHUT_WR);
	d->done = true;
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	struct direction d[2];
	char text[1024];
	int ls, client, server, one = 1, status = 0, i, r;

	if (argc != 3) {
		fprintf(stderr, "usage: relay LISTEN_PORT TARGET_PORT\n");
		return 2;
	}
	/* A server ignores SIGPIPE; the links then need not mask it on
	 * every pump, and a gone peer is still reported as -EPIPE. */
	signal(SIGPIPE, SIG_IGN);

	a = loopback((unsigned)strtoul(argv[1], NULL, 10));
	ls = tcp_socket();
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 1) < 0 ||
	    getsockname(ls, (struct sockaddr *)&a, &alen) < 0) {
		perror("relay: listen");
		return 1;
	}
	printf("listening on 127.0.0.1:%u\n", ntohs(a.sin_port));
	fflush(stdout);
	client = accept(ls, NULL, NULL);
	if (client < 0) {
		perror("relay: accept");
		return 1;
	}
	a = loopback((unsigned)strtoul(argv[2], NULL, 10));
	server = tcp_socket();
	if (server < 0 || connect(server, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("relay: connect");
		return 1;
	}
	set_nonblock(client);
	set_nonblock(server);

	d[0] = (struct direction){ .name = "client -> server", .in = client, .out = server };
	d[1] = (struct direction){ .name = "server -> client", .in = server, .out = client };
	for (i = 0; i < 2; i++) {
		r = zcio_link_new(d[i].in, d[i].out, ZCIO_TO_EOF, NULL, &d[i].link);
		if (r < 0) {
			fprintf(stderr, "relay: zcio_link_new: %s\n", strerror(-r));
			return 1;
		}
	}

	while (!d[0].done || !d[1].done) {
		struct pollfd p[2];
		int np = 0;

		for (i = 0; i < 2; i++) {
			bool waits;

			if (d[i].done)
				continue;
			r = step(&d[i], &p[np], &waits);
			if (r < 0) {
				fprintf(stderr, "relay: %s: %s (%llu bytes held)\n", d[i].name,
					strerror(-r),
					(unsigned long long)zcio_link_pending(d[i].link));
				status = 1;
				goto out;
			}
			np += waits;
		}
		if (np && poll(p, (nfds_t)np, -1) < 0 && errno != EINTR) {
			perror("relay: poll");
			status = 1;
			break;
		}
	}
out:
	for (i = 0; i < 2; i++) {
		zcio_stats_format(&d[i].st, text, sizeof(text));
		fprintf(stderr, "%s:\n%s", d[i].name, text);
		zcio_link_free(d[i].link);
	}
	close(client);
	close(server);
	close(ls);
	return status;
}
