/*
 * zsock.c - run a command with a socket as its stdin or stdout.
 *
 *   zsock in  TYPE -- CMD [ARG...]   CMD reads a socket; zsock feeds it
 *                                    what zsock reads from its own stdin
 *   zsock out TYPE -- CMD [ARG...]   CMD writes a socket; zsock copies what
 *                                    arrives to its own stdout
 *
 * TYPE: tcp (a connection on 127.0.0.1, ephemeral port), unix (a unix
 * stream socket pair) or dgram (a unix datagram socket pair).
 *
 * This turns socket endpoints into shell plumbing, so one pipeline can put
 * any fd kind on either side of the program under test, and nesting gives
 * socket to socket:  zgen 1M | zsock in tcp -- zsock out unix -- zcio cat.
 *
 * The relay on zsock's side is a plain read()/write() loop, independent of
 * the code under test.  Datagrams: the relay sends what it reads in
 * datagrams of at most 32 KiB and, at end of input, one empty datagram,
 * which reads as end of file.  In the other direction there is no end of
 * file on a datagram socket, so the relay stops once CMD has exited and the
 * queue is empty.
 *
 * Exit status: CMD's (128 + signal if it was killed), or 125 when CMD
 * succeeded but the relay failed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define RELAY_BUF (64u * 1024)
#define DGRAM_MAX (32u * 1024)

static void die(const char *what)
{
	fprintf(stderr, "zsock: %s: %s\n", what, strerror(errno));
	exit(125);
}

/* sv[0] stays with zsock, sv[1] goes to the command. */
static void make_pair(const char *type, int sv[2], bool *dgram)
{
	*dgram = false;
	if (!strcmp(type, "unix")) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			die("socketpair");
	} else if (!strcmp(type, "dgram")) {
		*dgram = true;
		if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
			die("socketpair");
	} else if (!strcmp(type, "tcp")) {
		struct sockaddr_in a = { .sin_family = AF_INET };
		socklen_t alen = sizeof(a);
		int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (l < 0)
			die("socket");
		if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
		    getsockname(l, (struct sockaddr *)&a, &alen) < 0)
			die("listen on 127.0.0.1");
		sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (sv[0] < 0)
			die("socket");
		/* The backlog holds the connection until accept(). */
		if (connect(sv[0], (struct sockaddr *)&a, sizeof(a)) < 0)
			die("connect to 127.0.0.1");
		sv[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (sv[1] < 0)
			die("accept");
		close(l);
	} else {
		fprintf(stderr, "zsock: unknown socket type %s (tcp, unix, dgram)\n", type);
		exit(2);
	}
}

static bool peer_gone(int err)
{
	return err == EPIPE || err == ECONNRESET || err == ECONNREFUSED;
}

/* Write all of buf; false when the other side has gone. */
static bool put_all(int fd, const char *buf, size_t n, bool *failed)
{
	while (n) {
		ssize_t w = write(fd, buf, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (!peer_gone(errno)) {
				fprintf(stderr, "zsock: write: %s\n", strerror(errno));
				*failed = true;
			}
			return false;
		}
		buf += w;
		n -= (size_t)w;
	}
	return true;
}

/* stdin -> socket, then end of file in the socket's own way. */
static bool relay_in(int s, bool dgram)
{
	static char buf[RELAY_BUF];
	bool failed = false;

	for (;;) {
		ssize_t r = read(0, buf, dgram ? DGRAM_MAX : sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "zsock: read stdin: %s\n", strerror(errno));
			failed = true;
			break;
		}
		if (r == 0) {
			if (dgram) {
				while (send(s, "", 0, 0) < 0 && errno == EINTR)
					;
			} else {
				shutdown(s, SHUT_WR);
			}
			break;
		}
		/* One write, one datagram: r <= DGRAM_MAX fits a unix
		 * socket's default send buffer. */
		if (!put_all(s, buf, (size_t)r, &failed))
			break;
	}
	close(s);
	return !failed;
}

/* socket -> stdout until end of file (streams) or until the command has
 * exited and nothing is queued (datagrams). */
static bool relay_out(int s, bool dgram, pid_t child, int *status, bool *reaped)
{
	static char buf[RELAY_BUF];
	bool failed = false, child_done = false;

	for (;;) {
		ssize_t r;

		if (dgram) {
			struct pollfd p = { .fd = s, .events = POLLIN };
			int pr = poll(&p, 1, child_done ? 0 : 50);

			if (pr < 0 && errno == EINTR)
				continue;
			if (pr == 0) {
				if (child_done)
					break; /* exited, and the queue is empty */
				if (waitpid(child, status, WNOHANG) == child)
					child_done = *reaped = true;
				continue;
			}
		}
		r = read(s, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			if (!peer_gone(errno)) {
				fprintf(stderr, "zsock: read socket: %s\n", strerror(errno));
				failed = true;
			}
			break;
		}
		if (r == 0 && !dgram)
			break;
		if (!put_all(1, buf, (size_t)r, &failed))
			break; /* our reader has gone: the command learns it next */
	}
	close(s);
	return !failed;
}

int main(int argc, char **argv)
{
	int sv[2], status = 0;
	bool in, dgram, ok, reaped = false;
	pid_t child;

	if (argc < 5 || strcmp(argv[3], "--") || (strcmp(argv[1], "in") && strcmp(argv[1], "out"))) {
		fputs("usage: zsock in|out tcp|unix|dgram -- CMD [ARG...]\n", stderr);
		return 2;
	}
	in = !strcmp(argv[1], "in");
	make_pair(argv[2], sv, &dgram);

	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		if (dup2(sv[1], in ? 0 : 1) < 0)
			die("dup2");
		execvp(argv[4], argv + 4);
		fprintf(stderr, "zsock: %s: %s\n", argv[4], strerror(errno));
		_exit(127);
	}
	close(sv[1]);
	/* Only the relay ignores SIGPIPE: the command keeps the default. */
	signal(SIGPIPE, SIG_IGN);
	if (in)
		ok = relay_in(sv[0], dgram);
	else
		ok = relay_out(sv[0], dgram, child, &status, &reaped);
	while (!reaped && waitpid(child, &status, 0) < 0) {
		if (errno != EINTR)
			die("waitpid");
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	if (WEXITSTATUS(status))
		return WEXITSTATUS(status);
	return ok ? 0 : 125;
}
