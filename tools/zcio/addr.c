/*
 * addr.c - parse, listen on, and connect to socket addresses.
 */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int addr_parse(const char *spec, struct addr *a, const char **why)
{
	char host[256];
	const char *port;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	size_t hlen;
	int r;

	memset(a, 0, sizeof(*a));
	snprintf(a->text, sizeof(a->text), "%s", spec);
	if (strncmp(spec, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)&a->sa;
		size_t plen = strlen(spec + 5);

		if (plen == 0 || plen >= sizeof(un->sun_path)) {
			*why = "unix socket path empty or too long";
			return -EINVAL;
		}
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, spec + 5, plen + 1);
		a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + 1);
		a->family = AF_UNIX;
		return 0;
	}
	if (spec[0] == '[') {
		const char *end = strchr(spec, ']');

		if (!end || end[1] != ':') {
			*why = "expected [IPV6]:PORT";
			return -EINVAL;
		}
		hlen = (size_t)(end - spec - 1);
		port = end + 2;
		if (hlen >= sizeof(host))
			hlen = sizeof(host) - 1;
		memcpy(host, spec + 1, hlen);
		host[hlen] = '\0';
	} else {
		const char *colon = strrchr(spec, ':');

		if (!colon) {
			*why = "expected HOST:PORT, [IPV6]:PORT or unix:PATH";
			return -EINVAL;
		}
		hlen = (size_t)(colon - spec);
		if (hlen >= sizeof(host))
			hlen = sizeof(host) - 1;
		memcpy(host, spec, hlen);
		host[hlen] = '\0';
		port = colon + 1;
	}
	if (!*port || strspn(port, "0123456789") != strlen(port) || atoi(port) > 65535) {
		*why = "bad port";
		return -EINVAL;
	}
	if (!host[0]) {
		struct sockaddr_in *in = (struct sockaddr_in *)&a->sa;

		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)atoi(port));
		in->sin_addr.s_addr = htonl(INADDR_ANY);
		a->len = sizeof(*in);
		a->family = AF_INET;
		return 0;
	}
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0 || !res) {
		*why = r == EAI_NONAME ? "unknown host" : gai_strerror(r);
		return -EINVAL;
	}
	memcpy(&a->sa, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	a->family = res->ai_family;
	freeaddrinfo(res);
	return 0;
}

int addr_listen(const struct addr *a, bool reuseport, int backlog)
{
	int one = 1;
	int fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd == -1)
		return -errno;
	if (a->family == AF_UNIX) {
		const struct sockaddr_un *un = (const struct sockaddr_un *)&a->sa;
		struct stat st;

		/* A socket file left by a server that died: take its place.
		 * Anything else at that path is an error (EADDRINUSE). */
		if (stat(un->sun_path, &st) == 0 && S_ISSOCK(st.st_mode)) {
			int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

			if (probe >= 0 && connect(probe, (const struct sockaddr *)&a->sa, a->len) != 0 &&
			    errno == ECONNREFUSED)
				unlink(un->sun_path);
			if (probe >= 0)
				close(probe);
		}
	} else {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (reuseport)
			setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
		if (a->family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	if (bind(fd, (const struct sockaddr *)&a->sa, a->len) != 0 || listen(fd, backlog) != 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

int addr_connect(const struct addr *a, bool *in_progress)
{
	int fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	*in_progress = false;
	if (fd == -1)
		return -errno;
	return addr_connect_fd(a, fd, in_progress);
}

int addr_connect_fd(const struct addr *a, int fd, bool *in_progress)
{
	*in_progress = false;
	if (connect(fd, (const struct sockaddr *)&a->sa, a->len) == 0)
		return fd;
	if (errno == EINPROGRESS) {
		*in_progress = true;
		return fd;
	}
	{
		/* A unix socket with a full backlog says EAGAIN: to a client
		 * that is a refusal, not a reason to wait. */
		int e = errno == EAGAIN ? ECONNREFUSED : errno;

		close(fd);
		return -e;
	}
}

void addr_peer_text(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN];

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0) {
		snprintf(buf, len, "?");
		return;
	}
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, len, "unix");
	}
}
