/*
 * calibrate_net.c - TCP connections for `zcio calibrate`: over loopback, or
 * from one network namespace to another across a veth pair
 * (scripts/netns-testbed up), and threads that drain them.
 *
 * A network namespace is a property of a thread (setns() changes only the
 * caller's), and a socket keeps the namespace it was created in.  So each
 * socket is created by a short-lived thread that first enters its
 * namespace; the sockets are then used from any thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "calibrate.h"

struct ns_job {
	const char *ns;              /* NULL: stay where we are */
	int (*fn)(struct ns_job *j);
	const struct cal_net *net;
	int mss;
	int fd;                      /* result */
	uint16_t port;               /* in/out */
	char addr[64];               /* in/out */
	int err;
};

static void *ns_thread(void *arg)
{
	struct ns_job *j = arg;
	char path[128];
	int fd;

	if (j->ns) {
		snprintf(path, sizeof(path), "/run/netns/%s", j->ns);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
			j->err = -errno;
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		close(fd);
	}
	j->err = j->fn(j);
	return NULL;
}

/* Run j->fn in a thread inside namespace j->ns. */
static int in_ns(struct ns_job *j)
{
	pthread_t th;
	int r = pthread_create(&th, NULL, ns_thread, j);

	if (r)
		return -r;
	pthread_join(th, NULL);
	return j->err;
}

static int find_addr(struct ns_job *j)
{
	struct ifaddrs *ifa, *i;

	if (getifaddrs(&ifa) != 0)
		return -errno;
	for (i = ifa; i; i = i->ifa_next) {
		struct sockaddr_in *a = (struct sockaddr_in *)i->ifa_addr;

		if (!a || a->sin_family != AF_INET || ntohl(a->sin_addr.s_addr) >> 24 == 127)
			continue;
		inet_ntop(AF_INET, &a->sin_addr, j->addr, sizeof(j->addr));
		break;
	}
	freeifaddrs(ifa);
	return j->addr[0] ? 0 : -EADDRNOTAVAIL;
}

int cal_net_init(struct cal_net *net, const char *spec)
{
	struct ns_job j = { .fn = find_addr };
	const char *colon;
	int r;

	memset(net, 0, sizeof(*net));
	if (!spec)
		return 0;
	colon = strchr(spec, ':');
	if (!colon || colon == spec || !colon[1] || (size_t)(colon - spec) >= sizeof(net->ns_a) ||
	    strlen(colon + 1) >= sizeof(net->ns_b)) {
		snprintf(net->error, sizeof(net->error), "--netns wants SENDER_NS:RECEIVER_NS");
		return -EINVAL;
	}
	memcpy(net->ns_a, spec, (size_t)(colon - spec));
	strcpy(net->ns_b, colon + 1);
	j.ns = net->ns_b;
	r = in_ns(&j);
	if (r < 0) {
		snprintf(net->error, sizeof(net->error),
			 "namespace %s: %s (scripts/netns-testbed up creates zcio-a:zcio-b)",
			 net->ns_b, strerror(-r));
		return r;
	}
	strcpy(net->addr_b, j.addr);
	/* scripts/netns-testbed's sink: the same /24, host 3. */
	snprintf(net->addr_sink, sizeof(net->addr_sink), "%.*s.3",
		 (int)(strrchr(j.addr, '.') - j.addr), j.addr);
	net->netns = true;
	return 0;
}

static void set_mss(int fd, int mss)
{
	if (mss > 0)
		setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss));
}

static int make_listener(struct ns_job *j)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int one = 1;
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return -errno;
	inet_pton(AF_INET, j->addr, &a.sin_addr);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	set_mss(s, j->mss);
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s, 4) != 0 ||
	    getsockname(s, (struct sockaddr *)&a, &alen) != 0) {
		int e = -errno;

		close(s);
		return e;
	}
	j->fd = s;
	j->port = ntohs(a.sin_port);
	return 0;
}

static int make_client(struct ns_job *j)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(j->port) };
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return -errno;
	inet_pton(AF_INET, j->addr, &a.sin_addr);
	set_mss(s, j->mss);
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
		int e = -errno;

		close(s);
		return e;
	}
	j->fd = s;
	return 0;
}

int cal_connect(const struct cal_net *net, int mss, int *snd, int *rcv)
{
	struct ns_job l = { .fn = make_listener, .mss = mss, .fd = -1 };
	struct ns_job c = { .fn = make_client, .mss = mss, .fd = -1 };
	int r, one = 1;

	strcpy(l.addr, net->netns ? net->addr_b : "127.0.0.1");
	l.ns = net->netns ? net->ns_b : NULL;
	r = in_ns(&l);
	if (r < 0)
		return r;
	strcpy(c.addr, l.addr);
	c.port = l.port;
	c.ns = net->netns ? net->ns_a : NULL;
	r = in_ns(&c);
	if (r < 0) {
		close(l.fd);
		return r;
	}
	/* The handshake is done: accept() finds it in the backlog. */
	*rcv = accept4(l.fd, NULL, NULL, SOCK_CLOEXEC);
	r = *rcv < 0 ? -errno : 0;
	close(l.fd);
	if (r < 0) {
		close(c.fd);
		return r;
	}
	setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	*snd = c.fd;
	return 0;
}

static int make_udp(struct ns_job *j)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(j->port) };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return -errno;
	inet_pton(AF_INET, j->addr, &a.sin_addr);
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
		int e = -errno;

		close(s);
		return e;
	}
	j->fd = s;
	return 0;
}

int cal_udp_socket(const struct cal_net *net, int port)
{
	struct ns_job j = { .fn = make_udp, .fd = -1, .port = (uint16_t)port };
	int r;

	strcpy(j.addr, net->netns ? net->addr_sink : "127.0.0.1");
	j.ns = net->netns ? net->ns_a : NULL;
	r = in_ns(&j);
	return r < 0 ? r : j.fd;
}

/* The CPU drain threads run on while cal_pin_begin() is in effect, or -1. */
static int drain_cpu = -1;

int cal_pin_begin(cpu_set_t *saved)
{
	cpu_set_t allowed, one;
	int cpu, first = -1, second = -1;

	if (sched_getaffinity(0, sizeof(*saved), saved) != 0)
		return -errno;
	allowed = *saved;
	for (cpu = 0; cpu < CPU_SETSIZE && second < 0; cpu++) {
		if (!CPU_ISSET(cpu, &allowed))
			continue;
		if (first < 0)
			first = cpu;
		else
			second = cpu;
	}
	if (second < 0)
		return -ENODEV; /* one CPU: nothing to separate */
	CPU_ZERO(&one);
	CPU_SET(first, &one);
	if (sched_setaffinity(0, sizeof(one), &one) != 0)
		return -errno;
	drain_cpu = second;
	return 0;
}

void cal_pin_end(const cpu_set_t *saved)
{
	drain_cpu = -1;
	(void)sched_setaffinity(0, sizeof(*saved), saved);
}

static void *drain_main(void *arg)
{
	struct cal_drain *d = arg;
	size_t cap = 1u << 20;
	char *buf = malloc(cap);

	if (drain_cpu >= 0) {
		cpu_set_t one;

		CPU_ZERO(&one);
		CPU_SET(drain_cpu, &one);
		(void)sched_setaffinity(0, sizeof(one), &one);
	}

	while (buf && !d->stop) {
		ssize_t n = read(d->fd, buf, cap);

		if (n > 0)
			d->bytes += (uint64_t)n;
		else if (n == 0 || errno != EINTR)
			break;
	}
	free(buf);
	return NULL;
}

int cal_drain_start(struct cal_drain *d, int fd)
{
	d->fd = fd;
	d->stop = false;
	d->bytes = 0;
	return -pthread_create(&d->th, NULL, drain_main, d);
}

void cal_drain_stop(struct cal_drain *d)
{
	d->stop = true;
	/* A socket's blocked read() returns 0 after SHUT_RD; a pipe's drain
	 * ends when its write end is closed (the caller does that first). */
	shutdown(d->fd, SHUT_RD);
	pthread_join(d->th, NULL);
	close(d->fd);
	d->fd = -1;
}
