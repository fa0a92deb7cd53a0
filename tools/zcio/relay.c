/*
 * relay.c - `zcio relay LISTEN TARGET`: a TCP/unix relay forwarding each
 * connection through two zcio links (client -> server, server -> client).
 *
 * One epoll loop per worker thread.  Each connection is owned by the worker
 * that accepted it, so nothing on the data path is shared between threads.
 * A direction's half-close is forwarded with shutdown(SHUT_WR) only when its
 * link reports EOF, which it does only once its pipe is empty: a server that
 * writes and closes at once never loses its last bytes (HAProxy #2505).
 * An error or reset on either side closes both; when it is the server that
 * went (an early answer, then a reset), what it sent before reaches the
 * client first, and its reset after that.
 */
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "cli.h"
#include "log.h"
#include "loop.h"
#include "relay.h"
#include "supervise.h"

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

/* Bytes a link may deliver per pump before other connections get a turn. */
#define PUMP_BUDGET (2u << 20)
/* Connections accepted per wake-up before the loop looks at other fds. */
#define ACCEPT_BATCH 64
/* How long the accept loop rests after EMFILE/ENFILE. */
#define ACCEPT_BACKOFF_MS 100
#define TICK_MS 100

struct relay_worker;

struct relay_conn {
	struct loop_watch cw, sw;       /* client and server sockets */
	struct zcio_link *up, *down;    /* client -> server, server -> client */
	struct loop_task pump_task;     /* pump again after a budget ran out */
	struct loop_task free_task;     /* free after the current event batch */
	struct relay_worker *w;
	struct relay_conn *prev, *next;
	int64_t last_active, connect_deadline;
	bool connecting, closed;
	bool up_eof, down_eof;          /* shutdown(SHUT_WR) forwarded */
	bool srv_gone;                  /* the server closed or reset: client bytes dropped,
					   its own still delivered */
	bool srv_reset;                 /* ...with a reset, passed on after its bytes */
	uint64_t up_bytes, down_bytes;
	char peer[64];
};

struct relay_config relay_cfg;
static struct relay_worker *workers;
atomic_uint relay_active;
atomic_bool relay_stopping, relay_forcing;
static const char CMD[] = "relay";

static void conn_pump(struct relay_conn *c);

static void publish(struct relay_worker *w)
{
	atomic_store_explicit(&w->counters.spliced, w->st.path_bytes[ZCIO_PATH_SPLICE_PIPE],
			      memory_order_relaxed);
	atomic_store_explicit(&w->counters.copied, w->st.path_bytes[ZCIO_PATH_COPY],
			      memory_order_relaxed);
}

static void free_conn(struct loop *l, struct loop_task *t)
{
	(void)l;
	free(container_of(t, struct relay_conn, free_task));
}

static void accept_resume(struct relay_worker *w)
{
	if (w->accepting || atomic_load(&relay_stopping))
		return;
	if (loop_add(&w->loop, &w->listen, EPOLLIN | (w->listen_owned ? 0 : EPOLLEXCLUSIVE)) == 0)
		w->accepting = true;
}

static void accept_pause(struct relay_worker *w)
{
	if (!w->accepting)
		return;
	loop_del(&w->loop, &w->listen);
	w->accepting = false;
}

/*
 * Close both sides.  err < 0: an error on one side; a reset is passed on
 * as a reset (SO_LINGER 0), so the other peer learns the stream broke
 * rather than seeing a clean end.
 */
static void conn_close(struct relay_conn *c, const char *why, int err)
{
	struct relay_worker *w = c->w;

	if (c->closed)
		return;
	c->closed = true;
	if (err == -ECONNRESET) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(c->cw.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		if (c->sw.fd >= 0)
			setsockopt(c->sw.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	loop_cancel(&w->loop, &c->pump_task);
	close(c->cw.fd);
	if (c->sw.fd >= 0)
		close(c->sw.fd);
	zcio_link_free(c->up);
	zcio_link_free(c->down);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	atomic_fetch_sub(&relay_active, 1);
	atomic_fetch_sub_explicit(&w->counters.active, 1, memory_order_relaxed);
	if (err < 0 && err != -EPIPE && err != -ECONNRESET)
		log_msg(LOG_WARN, CMD, "%s: %s: %s", c->peer, why, strerror(-err));
	else if (log_enabled(LOG_DEBUG))
		log_msg(LOG_DEBUG, CMD, "%s: closed (%s%s%s), %llu bytes up, %llu down", c->peer, why,
			err ? ": " : "", err ? strerror(-err) : "",
			(unsigned long long)c->up_bytes, (unsigned long long)c->down_bytes);
	loop_free_later(&w->loop, &c->free_task);
	if (atomic_load(&relay_stopping) && w->nconns == 0)
		w->loop.stop = true;
	else if (!w->accepting && !w->accept_resume_at)
		accept_resume(w); /* a slot under --max-conns may be free */
}

static void conn_connected(struct relay_conn *c)
{
	int r;

	c->connecting = false;
	r = zcio_link_new(c->cw.fd, c->sw.fd, ZCIO_TO_EOF, &relay_cfg.link_opts, &c->up);
	if (r == 0)
		r = zcio_link_new(c->sw.fd, c->cw.fd, ZCIO_TO_EOF, &relay_cfg.link_opts, &c->down);
	if (r < 0) {
		conn_close(c, "link", r);
		return;
	}
	conn_pump(c);
}

/* Pump one direction.  Returns true when it ran out of budget. */
static bool pump_one(struct relay_conn *c, struct zcio_link *l, int dst, bool *eof,
		     uint64_t *bytes, atomic_ullong *counter, int *err)
{
	struct relay_worker *w = c->w;
	int64_t r = zcio_link_pump(l, PUMP_BUDGET, &w->st);

	if (w->st.last_bytes) {
		*bytes += w->st.last_bytes;
		atomic_fetch_add_explicit(counter, w->st.last_bytes, memory_order_relaxed);
		c->last_active = loop_now_ms();
	}
	if (r == 0) {
		/* Everything the source sent has been delivered. */
		shutdown(dst, SHUT_WR);
		*eof = true;
		return false;
	}
	if (r > 0)
		return true;
	if (r != -EAGAIN)
		*err = (int)r;
	return false;
}

/*
 * Did a transfer fail because the server went away (closed or reset),
 * rather than the client?  A TCP socket that took a reset is in TCP_CLOSE.
 * A unix socket: only writing to it fails with EPIPE, and once its peer
 * has gone and its queue is read, a peek finds the end.
 */
bool relay_server_gone(int sfd, int err)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	char b;

	if (relay_cfg.target.family == AF_UNIX)
		return err == -EPIPE || recv(sfd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
	return getsockopt(sfd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
	       ti.tcpi_state == TCP_CLOSE;
}

/*
 * Has the client got everything sent to it (or gone)?  A reset, or a
 * close() while the client's own bytes sit unread, throws away what its
 * socket here still holds unacknowledged.  Unix sockets: yes, their bytes
 * are in the client's queue once written.
 */
bool relay_client_has_all(int cfd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);
	int n = 0;

	if (relay_cfg.listen.family == AF_UNIX)
		return true;
	if (getsockopt(cfd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
	    ti.tcpi_state == TCP_CLOSE)
		return true;
	return ioctl(cfd, SIOCOUTQ, &n) != 0 || n == 0;
}

/* Read and drop what the client sends once the server reads no more.
 * Returns true when it ran out of budget. */
static bool drain_client(struct relay_conn *c, int *err)
{
	char sink[16384];
	uint64_t n = 0;

	while (n < PUMP_BUDGET) {
		ssize_t r = read(c->cw.fd, sink, sizeof(sink));

		if (r > 0) {
			n += (uint64_t)r;
			continue;
		}
		if (r == 0)
			c->up_eof = true;
		else if (errno == EINTR)
			continue;
		else if (errno != EAGAIN)
			*err = -errno;
		return false;
	}
	return true;
}

static void conn_pump(struct relay_conn *c)
{
	struct relay_worker *w = c->w;
	bool again = false;
	int err = 0;

	if (c->closed || c->connecting)
		return;
	if (!c->up_eof && !c->srv_gone) {
		again |= pump_one(c, c->up, c->sw.fd, &c->up_eof, &c->up_bytes,
				  &w->counters.up_bytes, &err);
		if (err && relay_server_gone(c->sw.fd, err)) {
			/* The server closed without reading everything (an
			 * early answer, an HTTP 413): what it sent before is
			 * still in its socket here and must reach the client,
			 * as it would without a relay.  From now on the
			 * client's bytes are dropped, so that a client still
			 * sending is not blocked from reading the answer. */
			c->srv_gone = true;
			err = 0;
		}
	}
	if (!err && c->srv_gone && !c->up_eof)
		again |= drain_client(c, &err);
	if (!err && !c->down_eof) {
		again |= pump_one(c, c->down, c->cw.fd, &c->down_eof, &c->down_bytes,
				  &w->counters.down_bytes, &err);
		if (err && (c->srv_gone || relay_server_gone(c->sw.fd, err))) {
			/* The server's reset, read behind its last bytes: the
			 * end of its stream.  Passed on now, it would discard
			 * what the kernel still holds for the client; it goes
			 * once the client has everything (below).  (Had the
			 * client gone as well, reading it says so.) */
			c->srv_gone = c->srv_reset = true;
			shutdown(c->cw.fd, SHUT_WR);
			c->down_eof = true;
			err = 0;
		}
	}
	publish(w);
	if (err) {
		conn_close(c, "forwarding", err);
		return;
	}
	if (c->down_eof && (c->srv_gone ? relay_client_has_all(c->cw.fd) : c->up_eof)) {
		conn_close(c, "done", c->srv_reset ? -ECONNRESET : 0);
		return;
	}
	if (again)
		loop_defer(&w->loop, &c->pump_task);
}

static void on_pump_task(struct loop *l, struct loop_task *t)
{
	(void)l;
	conn_pump(container_of(t, struct relay_conn, pump_task));
}

/*
 * A reset on a socket whose incoming stream has already ended: no pump
 * reads that socket again, so the reset would go unnoticed until the other
 * peer spoke, holding its connection open meanwhile.  The pumps have just
 * run; pass the reset on now.
 */
static void conn_check_reset(struct relay_conn *c, int fd, struct zcio_link *from, uint32_t events)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (c->closed || !(events & (EPOLLERR | EPOLLHUP)) || !zcio_link_source_done(from))
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || !soerr)
		return;
	if (fd == c->sw.fd) {
		/* The server's bytes before its reset still go to the
		 * client first (conn_pump). */
		c->srv_gone = c->srv_reset = true;
		conn_pump(c);
		return;
	}
	/* A reset received after the peer's FIN (CLOSE_WAIT) reads as EPIPE. */
	conn_close(c, "reset", soerr == EPIPE ? -ECONNRESET : -soerr);
}

static void on_client_event(struct loop *l, struct loop_watch *wt, uint32_t events)
{
	struct relay_conn *c = container_of(wt, struct relay_conn, cw);

	(void)l;
	if (c->closed)
		return;
	if (c->connecting) {
		/* Bytes from the client wait in its socket until the server
		 * answers; a client that leaves meanwhile is let go. */
		if (events & (EPOLLERR | EPOLLHUP))
			conn_close(c, "client left while connecting", 0);
		return;
	}
	conn_pump(c);
	conn_check_reset(c, c->cw.fd, c->up, events);
}

static void on_server_event(struct loop *l, struct loop_watch *wt, uint32_t events)
{
	struct relay_conn *c = container_of(wt, struct relay_conn, sw);

	(void)l;
	if (c->closed)
		return;
	if (c->connecting) {
		int soerr = 0;
		socklen_t len = sizeof(soerr);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(c->sw.fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
			soerr = errno;
		if (soerr) {
			atomic_fetch_add_explicit(&c->w->counters.refused, 1, memory_order_relaxed);
			conn_close(c, "connect", -soerr);
			return;
		}
		conn_connected(c);
		return;
	}
	conn_pump(c);
	conn_check_reset(c, c->sw.fd, c->down, events);
}

static void nodelay(int fd)
{
	int one = 1;

	/* Forwarded bytes leave as soon as they arrive; the links set
	 * MSG_MORE themselves when more is certainly coming. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* cfd: the accepted client; sfd: a fresh socket for the target. */
static void conn_start(struct relay_worker *w, int cfd, int sfd)
{
	struct relay_conn *c = calloc(1, sizeof(*c));
	bool in_progress;

	if (!c) {
		close(cfd);
		close(sfd);
		return;
	}
	c->w = w;
	c->cw = (struct loop_watch){ .fd = cfd, .on_event = on_client_event };
	c->sw = (struct loop_watch){ .fd = -1, .on_event = on_server_event };
	c->pump_task.run = on_pump_task;
	c->free_task.run = free_conn;
	c->last_active = loop_now_ms();
	if (log_enabled(LOG_DEBUG) || log_enabled(LOG_WARN))
		addr_peer_text(cfd, c->peer, sizeof(c->peer));
	if (relay_cfg.listen.family != AF_UNIX)
		nodelay(cfd);
	sfd = addr_connect_fd(&relay_cfg.target, sfd, &in_progress);
	if (sfd < 0) {
		atomic_fetch_add_explicit(&w->counters.refused, 1, memory_order_relaxed);
		log_msg(LOG_WARN, CMD, "%s: connect to %s: %s", c->peer, relay_cfg.target.text, strerror(-sfd));
		close(cfd);
		free(c);
		return;
	}
	if (relay_cfg.target.family != AF_UNIX)
		nodelay(sfd);
	c->sw.fd = sfd;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	atomic_fetch_add(&relay_active, 1);
	atomic_fetch_add_explicit(&w->counters.accepted, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->counters.active, 1, memory_order_relaxed);
	if (loop_add(&w->loop, &c->cw, EPOLLIN | EPOLLOUT | EPOLLRDHUP) != 0 ||
	    loop_add(&w->loop, &c->sw, EPOLLIN | EPOLLOUT | EPOLLRDHUP) != 0) {
		conn_close(c, "epoll", -errno);
		return;
	}
	if (in_progress) {
		c->connecting = true;
		c->connect_deadline = c->last_active + relay_cfg.connect_timeout_ms;
		return;
	}
	conn_connected(c);
}

static void on_listen(struct loop *l, struct loop_watch *wt, uint32_t events)
{
	struct relay_worker *w = l->data;

	(void)events;
	for (int i = 0; i < ACCEPT_BATCH && w->accepting; i++) {
		int fd = -1, sfd;

		if (atomic_load(&relay_active) >= relay_cfg.max_conns) {
			/* Leave further clients in the backlog until a
			 * connection ends. */
			accept_pause(w);
			return;
		}
		/* The socket to the target first: out of fds, a client is
		 * left queued (and the loop rests, below) rather than
		 * accepted only to be dropped for want of a second fd. */
		sfd = socket(relay_cfg.target.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (sfd >= 0)
			fd = accept4(wt->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			conn_start(w, fd, sfd);
			continue;
		}
		if (sfd >= 0) {
			int e = errno;

			close(sfd);
			errno = e;
		}
		switch (errno) {
		case EAGAIN:
			return;
		case EINTR:
		case ECONNABORTED:
			continue;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			/* Out of fds or memory: the pending connection stays
			 * queued and the listening socket stays readable, so
			 * retrying now would spin.  Rest, then try again. */
			log_msg(LOG_WARN, CMD, "accept: %s; pausing %d ms", strerror(errno),
				ACCEPT_BACKOFF_MS);
			accept_pause(w);
			w->accept_resume_at = loop_now_ms() + ACCEPT_BACKOFF_MS;
			return;
		default:
			log_msg(LOG_ERROR, CMD, "accept: %s", strerror(errno));
			return;
		}
	}
	/* A full batch and no EAGAIN yet: an edge-triggered listener will
	 * not report the clients still queued until another one arrives.
	 * Come back once the other ready work has had its turn. */
	if (w->accepting)
		loop_defer(l, &w->accept_task);
}

static void on_accept_task(struct loop *l, struct loop_task *t)
{
	struct relay_worker *w = container_of(t, struct relay_worker, accept_task);

	on_listen(l, &w->listen, EPOLLIN);
}

static void on_tick(struct loop *l)
{
	struct relay_worker *w = l->data;
	int64_t now = loop_now_ms();
	struct relay_conn *c, *next;

	/* Links give their pipes back to this thread's pool, which keeps up
	 * to 8 for the next connection.  Once the worker has no connection
	 * left, close them: an idle relay holds no pipe. */
	if (w->nconns == 0)
		zcio_pool_flush();
	if (w->accept_resume_at && now >= w->accept_resume_at) {
		w->accept_resume_at = 0;
		accept_resume(w);
	}
	if (!w->accepting && !w->accept_resume_at && atomic_load(&relay_active) < relay_cfg.max_conns)
		accept_resume(w);
	for (c = w->conns; c; c = next) {
		next = c->next;
		if (c->connecting && now >= c->connect_deadline) {
			atomic_fetch_add_explicit(&w->counters.refused, 1, memory_order_relaxed);
			conn_close(c, "connect", -ETIMEDOUT);
		} else if (relay_cfg.idle_timeout_ms && now - c->last_active >= relay_cfg.idle_timeout_ms) {
			conn_close(c, "idle timeout", 0);
		} else if (c->srv_gone && c->down_eof) {
			/* Waiting for the client to have the whole answer:
			 * acknowledgements raise no event. */
			conn_pump(c);
		}
	}
}

static void on_wake(struct loop *l)
{
	struct relay_worker *w = l->data;

	if (atomic_load(&relay_stopping)) {
		accept_pause(w);
		if (w->listen_owned && w->listen.fd >= 0) {
			close(w->listen.fd);
			w->listen.fd = -1;
		} else if (w->listen.fd >= 0) {
			/* A listener shared by the workers (unix, or a single
			 * worker) stays open until they are all done, and
			 * the kernel would go on queueing clients nobody
			 * serves.  shutdown() makes it refuse them now (TCP
			 * leaves LISTEN; unix connect() gets ECONNREFUSED);
			 * any worker may call it, and again. */
			shutdown(w->listen.fd, SHUT_RD);
		}
	}
	if (atomic_load(&relay_forcing)) {
		while (w->conns)
			conn_close(w->conns, "shutdown", 0);
	}
	if (atomic_load(&relay_stopping) && w->nconns == 0)
		l->stop = true;
}

static void *worker_main(void *arg)
{
	struct relay_worker *w = arg;

	if (w->uring) {
		relay_uring_run(w);
		return NULL;
	}
	accept_resume(w);
	loop_run(&w->loop);
	while (w->conns)
		conn_close(w->conns, "shutdown", 0);
	zcio_pool_flush();
	return NULL;
}

static void print_stats(void)
{
	uint64_t accepted = 0, refused = 0, active = 0, up = 0, down = 0, spliced = 0, copied = 0;
	struct zcio_pool_stats ps;
	char a[32], b[32], s[32], k[32];

	for (unsigned i = 0; i < relay_cfg.workers; i++) {
		struct relay_counters *rc = &workers[i].counters;

		accepted += atomic_load_explicit(&rc->accepted, memory_order_relaxed);
		refused += atomic_load_explicit(&rc->refused, memory_order_relaxed);
		active += atomic_load_explicit(&rc->active, memory_order_relaxed);
		up += atomic_load_explicit(&rc->up_bytes, memory_order_relaxed);
		down += atomic_load_explicit(&rc->down_bytes, memory_order_relaxed);
		spliced += atomic_load_explicit(&rc->spliced, memory_order_relaxed);
		copied += atomic_load_explicit(&rc->copied, memory_order_relaxed);
	}
	zcio_pool_stats(&ps);
	log_msg(LOG_ERROR < log_level ? LOG_INFO : LOG_ERROR, CMD,
		"stats: connections %llu active, %llu accepted, %llu failed to connect; "
		"up %s (%llu bytes), down %s (%llu bytes); spliced %s, copied %s; pipes %u",
		(unsigned long long)active, (unsigned long long)accepted, (unsigned long long)refused,
		cli_format_size(up, a, sizeof(a)), (unsigned long long)up,
		cli_format_size(down, b, sizeof(b)), (unsigned long long)down,
		cli_format_size(spliced, s, sizeof(s)), cli_format_size(copied, k, sizeof(k)),
		ps.live + atomic_load(&relay_uring_pipes));
}

/* Fds for 5,000 connections need more than the usual soft limit of 1024. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max > 1048576 ? 1048576 : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int start_workers(void)
{
	int shared = -1;
	bool reuseport = relay_cfg.listen.family != AF_UNIX && relay_cfg.workers > 1;

	workers = calloc(relay_cfg.workers, sizeof(*workers));
	if (!workers)
		return -ENOMEM;
	for (unsigned i = 0; i < relay_cfg.workers; i++) {
		struct relay_worker *w = &workers[i];
		int r = loop_init(&w->loop, TICK_MS);
		int fd;

		if (r < 0)
			return r;
		w->index = i;
		w->loop.data = w;
		w->loop.on_tick = on_tick;
		w->loop.on_wake = on_wake;
		w->accept_task.run = on_accept_task;
		/* TCP: one SO_REUSEPORT socket per worker, the kernel spreads
		 * connections evenly.  Unix sockets cannot share a path that
		 * way: one socket, watched by every worker (EPOLLEXCLUSIVE). */
		if (reuseport || shared < 0) {
			fd = addr_listen(&relay_cfg.listen, reuseport, 4096);
			if (fd < 0)
				return fd;
			if (!reuseport)
				shared = fd;
		} else {
			fd = shared;
		}
		w->listen = (struct loop_watch){ .fd = fd, .on_event = on_listen };
		w->listen_owned = reuseport;
		if (relay_cfg.uring && (r = relay_uring_new(w)) < 0) {
			/* The probe's ring worked, this one did not (RLIMIT_MEMLOCK
			 * on kernels before 5.12, which charge rings to it). */
			log_msg(LOG_WARN, CMD, "worker %u: io_uring: %s; using epoll", i,
				strerror(-r));
		}
	}
	for (unsigned i = 0; i < relay_cfg.workers; i++) {
		if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0)
			return -EAGAIN;
	}
	return 0;
}

static struct loop *worker_loop(unsigned i)
{
	return &workers[i].loop;
}

static void announce_stop(void)
{
	log_msg(LOG_INFO, CMD, "stopping: no new connections; %u active get %d s to finish",
		atomic_load(&relay_active), relay_cfg.grace_ms / 1000);
}

static int run_relay(void)
{
	sigset_t sigs;
	int r;

	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	/* Room for a pipe per direction of every connection with data in
	 * flight; past it, links copy. */
	zcio_pool_set_max(relay_cfg.max_conns * 2 > 256 ? relay_cfg.max_conns * 2 : 256);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGUSR1);
	/* Workers inherit the mask: signals are taken only here. */
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if (relay_cfg.uring) {
		const char *why = "";
		bool unavailable = false;

		r = relay_uring_probe(&why, &unavailable);
		if (r < 0 && !unavailable) {
			log_msg(LOG_ERROR, CMD, "--uring: %s: %s", why, strerror(-r));
			return CLI_ERROR;
		}
		if (r < 0) {
			log_msg(LOG_WARN, CMD, "--uring: %s (%s); using epoll", why, strerror(-r));
			relay_cfg.uring = false;
		}
	}
	r = start_workers();
	if (r < 0) {
		log_msg(LOG_ERROR, CMD, "listen on %s: %s", relay_cfg.listen.text, strerror(-r));
		return CLI_ERROR;
	}
	log_msg(LOG_INFO, CMD, "listening on %s, forwarding to %s, %u worker%s%s%s", relay_cfg.listen.text,
		relay_cfg.target.text, relay_cfg.workers, relay_cfg.workers == 1 ? "" : "s",
		relay_cfg.uring ? " (io_uring)" : "",
		(relay_cfg.link_opts.flags & ZCIO_F_COPY) ? " (copy)" : "");
	{
		struct supervisor sup = {
			.nworkers = relay_cfg.workers,
			.loop_of = worker_loop,
			.announce_stop = announce_stop,
			.print_stats = print_stats,
			.stopping = &relay_stopping,
			.forcing = &relay_forcing,
			.grace_ms = relay_cfg.grace_ms,
			.stats_interval_s = relay_cfg.stats ? relay_cfg.stats_interval_s : 0,
		};

		supervise(&sup, &sigs);
	}
	for (unsigned i = 0; i < relay_cfg.workers; i++)
		pthread_join(workers[i].thread, NULL);
	if (relay_cfg.stats)
		print_stats();
	if (relay_cfg.listen.family == AF_UNIX)
		unlink(((struct sockaddr_un *)&relay_cfg.listen.sa)->sun_path);
	return CLI_OK;
}

enum {
	OPT_WORKERS, OPT_CONNECT_TIMEOUT, OPT_IDLE_TIMEOUT, OPT_MAX_CONNS, OPT_GRACE,
	OPT_COPY, OPT_STATS, OPT_PIPE_SIZE, OPT_URING, OPT_VERBOSE, OPT_QUIET,
};

static const struct cli_option relay_options[] = {
	[OPT_WORKERS] = { NULL, "--workers", "N",
			  "worker threads, each with its own event loop (default: the number of CPUs)" },
	[OPT_CONNECT_TIMEOUT] = { NULL, "--connect-timeout", "SECONDS",
				  "give up connecting to TARGET after this long (default 10)" },
	[OPT_IDLE_TIMEOUT] = { NULL, "--idle-timeout", "SECONDS",
			       "close a connection with no traffic either way for this long "
			       "(default: never)" },
	[OPT_MAX_CONNS] = { NULL, "--max-conns", "N",
			    "at most N connections at once; further clients wait in the listen "
			    "backlog (default 10000)" },
	[OPT_GRACE] = { NULL, "--grace", "SECONDS",
			"on SIGINT or SIGTERM, stop accepting and give open connections this "
			"long to finish (default 10); a second signal ends them at once" },
	[OPT_COPY] = { NULL, "--copy", NULL,
		       "forward with read() and write() only: the baseline" },
	[OPT_STATS] = { NULL, "--stats", "[=SECONDS]",
			"print connections, bytes each way, bytes spliced and copied, and pipes "
			"in use every SECONDS (default: only on SIGUSR1) and at exit" },
	[OPT_PIPE_SIZE] = { NULL, "--pipe-size", "BYTES",
			    "capacity of the pipe each direction uses while data is in flight "
			    "(default 1M, at most pipe-max-size)" },
	[OPT_URING] = { NULL, "--uring", NULL,
			"move the bytes with io_uring: splice through a pipe per direction "
			"(with --copy, recv and send); where io_uring is unavailable, warn and "
			"use epoll" },
	[OPT_VERBOSE] = { "-v", "--verbose", NULL, "also log every connection" },
	[OPT_QUIET] = { "-q", "--quiet", NULL, "log errors only" },
	{ NULL, NULL, NULL, NULL },
};

static int parse_seconds(const char *s, int *ms)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || v < 0 || v > 86400 * 365)
		return -EINVAL;
	*ms = (int)(v * 1000);
	return 0;
}

static int relay_main(int argc, char **argv)
{
	struct cli_args args;
	const char *why = NULL;
	long n;
	int opt;
	uint64_t size;

	relay_cfg = (struct relay_config){
		.workers = (unsigned)sysconf(_SC_NPROCESSORS_ONLN),
		.connect_timeout_ms = 10000,
		.max_conns = 10000,
		.grace_ms = 10000,
	};
	if (relay_cfg.workers < 1)
		relay_cfg.workers = 1;
	cli_args_init(&args, &cli_relay, argc, argv);
	while ((opt = cli_args_next(&args)) >= 0) {
		switch (opt) {
		case OPT_WORKERS:
			n = strtol(args.optarg, NULL, 10);
			if (n < 1 || n > 1024)
				return cli_usage_error(&cli_relay, "bad worker count: %s", args.optarg);
			relay_cfg.workers = (unsigned)n;
			break;
		case OPT_CONNECT_TIMEOUT:
			if (parse_seconds(args.optarg, &relay_cfg.connect_timeout_ms) < 0 ||
			    relay_cfg.connect_timeout_ms == 0)
				return cli_usage_error(&cli_relay, "bad timeout: %s", args.optarg);
			break;
		case OPT_IDLE_TIMEOUT:
			if (parse_seconds(args.optarg, &relay_cfg.idle_timeout_ms) < 0)
				return cli_usage_error(&cli_relay, "bad timeout: %s", args.optarg);
			break;
		case OPT_MAX_CONNS:
			n = strtol(args.optarg, NULL, 10);
			if (n < 1 || n > 10000000)
				return cli_usage_error(&cli_relay, "bad connection limit: %s", args.optarg);
			relay_cfg.max_conns = (unsigned)n;
			break;
		case OPT_GRACE:
			if (parse_seconds(args.optarg, &relay_cfg.grace_ms) < 0)
				return cli_usage_error(&cli_relay, "bad grace period: %s", args.optarg);
			break;
		case OPT_COPY:
			relay_cfg.link_opts.flags |= ZCIO_F_COPY;
			break;
		case OPT_STATS:
			relay_cfg.stats = true;
			if (args.optarg) {
				n = strtol(args.optarg, NULL, 10);
				if (n < 1)
					return cli_usage_error(&cli_relay, "bad interval: %s", args.optarg);
				relay_cfg.stats_interval_s = (int)n;
			}
			break;
		case OPT_PIPE_SIZE:
			if (cli_parse_size(args.optarg, &size) < 0 || size < 4096 || size > (1u << 30))
				return cli_usage_error(&cli_relay, "bad pipe size: %s", args.optarg);
			relay_cfg.link_opts.pipe_size = (uint32_t)size;
			break;
		case OPT_URING:
			relay_cfg.uring = true;
			break;
		case OPT_VERBOSE:
			log_level = LOG_DEBUG;
			break;
		case OPT_QUIET:
			log_level = LOG_ERROR;
			break;
		}
	}
	if (args.noperands != 2)
		return cli_usage_error(&cli_relay, "expected LISTEN and TARGET addresses");
	if (addr_parse(args.operands[0], &relay_cfg.listen, &why) < 0)
		return cli_usage_error(&cli_relay, "%s: %s", args.operands[0], why);
	if (addr_parse(args.operands[1], &relay_cfg.target, &why) < 0)
		return cli_usage_error(&cli_relay, "%s: %s", args.operands[1], why);
	return run_relay();
}

const struct cli_command cli_relay = {
	.name = "relay",
	.synopsis = "[OPTION]... LISTEN TARGET",
	.summary = "forward TCP or unix connections, splicing through pipes",
	.description =
		"Accept connections on LISTEN and forward each one to TARGET, both ways at\n"
		"once.  Addresses are HOST:PORT, [IPV6]:PORT, :PORT (every IPv4 address) or\n"
		"unix:PATH.  Bytes travel socket -> pipe -> socket with splice(), without\n"
		"being copied to user memory; chunks smaller than 4 KiB, and pairs the\n"
		"kernel cannot splice, go through a small buffer instead.  A connection\n"
		"holds a pipe only while data is in flight.\n"
		"\n"
		"When one side closes its sending half, the relay passes the close on only\n"
		"after every byte that side sent has been delivered, so answers that follow\n"
		"a half-close arrive whole.  A reset or error on either side closes both.\n"
		"On EMFILE the accept loop rests rather than spins.  SIGUSR1 prints the\n"
		"statistics line; SIGINT or SIGTERM stop accepting and let transfers finish\n"
		"within the grace period.",
	.options = relay_options,
	.examples =
		"zcio relay 127.0.0.1:8000 127.0.0.1:80\n"
		"zcio relay --workers 2 --stats=10 [::1]:9000 unix:/run/app.sock",
	.run = relay_main,
};
