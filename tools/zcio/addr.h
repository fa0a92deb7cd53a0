/*
 * addr.h - socket addresses as the commands write them:
 *
 *   HOST:PORT      127.0.0.1:8080, localhost:8080 (first address found)
 *   [IPV6]:PORT    [::1]:8080
 *   :PORT          all IPv4 addresses
 *   unix:PATH      a unix stream socket
 */
#ifndef ZCIO_ADDR_H
#define ZCIO_ADDR_H

#include <stdbool.h>
#include <sys/socket.h>

struct addr {
	struct sockaddr_storage sa;
	socklen_t len;
	int family;          /* AF_INET, AF_INET6, AF_UNIX */
	char text[128];      /* as given, for messages */
};

/* Parse spec.  Returns 0, or -EINVAL with a reason in *why. */
int addr_parse(const char *spec, struct addr *a, const char **why);

/*
 * A nonblocking, close-on-exec listening socket bound to a.  reuseport:
 * several sockets may bind the same TCP address and the kernel spreads
 * connections over them.  A unix path left by a dead server is replaced.
 * Returns the fd, or -errno.
 */
int addr_listen(const struct addr *a, bool reuseport, int backlog);

/* A nonblocking, close-on-exec socket with connect() started.  Returns the
 * fd (*in_progress set while the connect completes) or -errno. */
int addr_connect(const struct addr *a, bool *in_progress);

/* The same on a socket the caller made beforehand (nonblocking, of
 * a->family), for callers that must know they have an fd for it before
 * committing to anything.  Closes fd on failure.  Returns fd or -errno. */
int addr_connect_fd(const struct addr *a, int fd, bool *in_progress);

/* "127.0.0.1:5000" / "[::1]:5000" / "unix" for a connected socket's peer. */
void addr_peer_text(int fd, char *buf, size_t len);

#endif
