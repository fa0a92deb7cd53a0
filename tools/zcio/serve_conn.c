/*
 * serve_conn.c - connections of `zcio serve`: accepting, reading request
 * heads, sending responses, timeouts and closing, on a worker's
 * edge-triggered event loop.
 *
 * A connection is a small state machine:
 *
 *   C_READ    reading and parsing request heads.  Pipelined requests
 *             whose answers are small are answered in a row into the
 *             output queue, which then leaves in one writev().
 *   C_SEND    the output queue (writev), then a large body through a zcio
 *             link, pumped until the socket says EAGAIN (then EPOLLOUT
 *             wakes us) or a budget runs out (then the loop runs it again
 *             after the other ready connections).  With --uring the
 *             large body goes through the worker's ring instead
 *             (serve_uring.c), which runs the connection again once the
 *             body is out (conn_uring_end).
 *   C_BODY    skipping a request body we will not use.
 *   C_LINGER  after the last answer on a closing connection: our side is
 *             shut down and what the client still sends is read and thrown
 *             away for a while, so that closing with unread bytes cannot
 *             turn into a reset that destroys the answer on its way.
 *
 * Syscalls are the cost that matters for small files, so none is made
 * without cause: a read that returned less than it asked for means the
 * socket is empty (epoll reports the next arrival), and a writev that wrote
 * everything means the socket has room.  A keep-alive request for a cached
 * small file then costs epoll_wait, read and writev.
 *
 * Timeouts.  Each connection waiting on its client sits in one of four
 * lists, each with one timeout (reading a head, idle between requests,
 * sending or skipping a body without progress, lingering).  A connection
 * joins a list at its tail with now + that timeout, so every list is in
 * deadline order and the tick looks at list heads only.  A head that is
 * still incomplete when its time is up is answered with 408.
 *
 * Connections past the worker's share of --max-conns make room by closing
 * the connection idle the longest, so a flood of idle connections cannot
 * lock new clients out.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "serve.h"
#include "serve_uring.h"

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

#define TICK_MS 100
#define ACCEPT_BATCH 64
#define ACCEPT_BACKOFF_MS 100
/* Bytes a large body may deliver per turn before others get theirs. */
#define PUMP_BUDGET (2u << 20)
#define IN_INITIAL 4096u
/* Answers to pipelined requests queued before they are sent. */
#define PIPELINE_BYTES (64u * 1024)
#define LINGER_MS 2000
#define LINGER_BYTES (256u * 1024)

static void conn_run(struct serve_conn *c);

/* ---- timeout lists -------------------------------------------------------- */

static void list_set(struct serve_conn *c, int id, int64_t deadline)
{
	struct serve_worker *w = c->w;
	struct conn_list *l;

	if (c->list != CL_NONE) {
		l = &w->lists[c->list];
		if (c->prev)
			c->prev->next = c->next;
		else
			l->head = c->next;
		if (c->next)
			c->next->prev = c->prev;
		else
			l->tail = c->prev;
	}
	c->prev = c->next = NULL;
	c->list = id;
	if (id == CL_NONE)
		return;
	l = &w->lists[id];
	c->deadline = deadline;
	c->prev = l->tail;
	if (l->tail)
		l->tail->next = c;
	else
		l->head = c;
	l->tail = c;
}

/* Progress while sending: the send timeout starts again. */
static void touch_send(struct serve_conn *c)
{
	int64_t d = loop_now_ms() + serve_cfg.send_timeout_ms;

	if (c->list != CL_SEND || c->deadline != d)
		list_set(c, CL_SEND, d);
}

/* ---- accounting ------------------------------------------------------------ */

const char *worker_date(struct serve_worker *w)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	if (ts.tv_sec != w->date_sec) {
		w->date_sec = ts.tv_sec;
		http_date_format(ts.tv_sec, w->date);
	}
	return w->date;
}

void conn_log(struct serve_conn *c, int status, const char *line, size_t line_len, uint64_t bytes)
{
	struct serve_counters *k = &c->w->counters;
	struct out_log *lg;

	atomic_fetch_add_explicit(&k->requests, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&k->status[status / 100 % 6], 1, memory_order_relaxed);
	if (serve_cfg.log_fd < 0)
		return;
	if (line_len > 400)
		line_len = 400; /* all the log keeps of it */
	if (c->out_first == c->out_n || c->nlogs == OUT_ITEMS) {
		alog_request(&c->w->log, c->peer, line, line_len, status, bytes);
		return;
	}
	if (c->logbuf_len + line_len > c->logbuf_cap) {
		uint32_t cap = c->logbuf_cap ? c->logbuf_cap : 512;
		char *p;

		while (cap < c->logbuf_len + line_len)
			cap *= 2;
		p = realloc(c->logbuf, cap);
		if (!p) {
			alog_request(&c->w->log, c->peer, line, line_len, status, bytes);
			return;
		}
		c->logbuf = p;
		c->logbuf_cap = cap;
	}
	if (line_len)
		memcpy(c->logbuf + c->logbuf_len, line, line_len);
	lg = &c->logs[c->nlogs++];
	*lg = (struct out_log){
		.end = c->out_total, .bytes = bytes, .line_off = c->logbuf_len,
		.line_len = (uint16_t)line_len, .status = (uint16_t)status,
	};
	c->logbuf_len += (uint32_t)line_len;
}

/* Log the queued answers that are out, or all of them when the connection
 * ends (an answer cut short counts the body bytes that did leave). */
static void logs_flush(struct serve_conn *c, bool all)
{
	unsigned i;

	for (i = 0; i < c->nlogs; i++) {
		struct out_log *lg = &c->logs[i];
		uint64_t bytes = lg->bytes, missing;

		if (lg->end > c->out_done) {
			if (!all)
				break;
			missing = lg->end - c->out_done;
			bytes = missing >= bytes ? 0 : bytes - missing;
		}
		alog_request(&c->w->log, c->peer, c->logbuf + lg->line_off, lg->line_len, lg->status,
			     bytes);
	}
	if (i == c->nlogs) {
		c->nlogs = 0;
		c->logbuf_len = 0;
	} else if (i) {
		memmove(c->logs, c->logs + i, (c->nlogs - i) * sizeof(c->logs[0]));
		c->nlogs -= i;
	}
}

/* ---- the output queue ------------------------------------------------------ */

char *conn_hdr_reserve(struct serve_conn *c, size_t len)
{
	size_t need = (size_t)c->hdr_len + len;

	if (need > c->hdr_cap) {
		size_t cap = c->hdr_cap ? c->hdr_cap : 1024;
		char *p;

		while (cap < need)
			cap *= 2;
		if (cap > UINT32_MAX)
			return NULL;
		p = realloc(c->hdr, cap);
		if (!p)
			return NULL;
		c->hdr = p;
		c->hdr_cap = (uint32_t)cap;
	}
	return c->hdr + c->hdr_len;
}

void conn_out_hdr(struct serve_conn *c, size_t len)
{
	struct out_item *last = c->out_n ? &c->out[c->out_n - 1] : NULL;
	uint32_t off = c->hdr_len;

	c->hdr_len += (uint32_t)len;
	c->out_total += len;
	if (!len)
		return;
	/* Headers of pipelined answers with nothing between them: one item. */
	if (last && !last->ptr && last->off + last->len == off) {
		last->len += len;
		return;
	}
	c->out[c->out_n++] = (struct out_item){ .off = off, .len = len };
}

void conn_out_ref(struct serve_conn *c, const char *p, size_t len, struct serve_file *f, char *owned)
{
	if (f)
		f->refs++;
	c->out_total += len;
	c->out[c->out_n++] = (struct out_item){ .ptr = p, .len = len, .ref = f, .owned = owned };
}

static void item_release(struct serve_conn *c, struct out_item *it)
{
	files_put(&c->w->files, it->ref);
	free(it->owned);
	*it = (struct out_item){ 0 };
}

static void out_clear(struct serve_conn *c)
{
	logs_flush(c, true);
	for (unsigned i = c->out_first; i < c->out_n; i++)
		item_release(c, &c->out[i]);
	c->out_first = c->out_n = 0;
	c->out_total = c->out_done = 0;
	c->hdr_len = 0;
}

int conn_start_link(struct serve_conn *c, const char *hdr, size_t hdr_len, struct serve_file *f,
		    uint64_t off, uint64_t len, int status, const char *line, size_t line_len)
{
	struct zcio_opts o = {
		.flags = ZCIO_F_OFFSET | (serve_cfg.send == SEND_SENDFILE ? ZCIO_F_VIA_SENDFILE : 0),
		.in_offset = off,
		.pipe_size = serve_cfg.pipe_size,
	};
	int r = -EOPNOTSUPP;

	/* --uring: the worker's ring takes it (c->link stays NULL), unless
	 * it cannot take this one body; then the link does. */
	if (serve_uring_on(c->w))
		r = serve_uring_prepare(c, hdr, hdr_len, f, off, len);
	if (r < 0) {
		r = zcio_link_new(f->fd, c->watch.fd, len, &o, &c->link);
		if (r == 0)
			r = zcio_link_push(c->link, hdr, hdr_len);
		if (r < 0) {
			zcio_link_free(c->link);
			c->link = NULL;
			return r;
		}
	}
	f->refs++;
	c->link_file = f;
	c->link_want = hdr_len + len;
	c->link_hdr = hdr_len;
	c->link_done = 0;
	c->link_status = status;
	c->link_line = NULL;
	c->link_line_len = 0;
	if (serve_cfg.log_fd >= 0 && line_len) {
		c->link_line = malloc(line_len);
		if (c->link_line) {
			memcpy(c->link_line, line, line_len);
			c->link_line_len = (uint32_t)line_len;
		}
	}
	return 0;
}

/* The large body ended (done or not): log what went out, let go. */
static void link_end(struct serve_conn *c)
{
	struct serve_counters *k = &c->w->counters;
	uint64_t body = c->link_done > c->link_hdr ? c->link_done - c->link_hdr : 0;

	atomic_fetch_add_explicit(&k->linked, 1, memory_order_relaxed);
	conn_log(c, c->link_status, c->link_line, c->link_line_len, body);
	zcio_link_free(c->link); /* NULL for a body the ring sent */
	c->link = NULL;
	files_put(&c->w->files, c->link_file);
	c->link_file = NULL;
	free(c->link_line);
	c->link_line = NULL;
}

/* ---- accept and close ------------------------------------------------------ */

static void free_conn(struct loop *l, struct loop_task *t)
{
	(void)l;
	free(container_of(t, struct serve_conn, free_task));
}

static void accept_resume(struct serve_worker *w)
{
	if (w->accepting || w->listen.fd < 0 || atomic_load(&serve_stopping))
		return;
	if (loop_add(&w->loop, &w->listen, EPOLLIN) == 0)
		w->accepting = true;
}

static void accept_pause(struct serve_worker *w)
{
	if (!w->accepting)
		return;
	loop_del(&w->loop, &w->listen);
	w->accepting = false;
}

static void conn_close(struct serve_conn *c)
{
	struct serve_worker *w = c->w;

	if (c->closed)
		return;
	c->closed = true;
	out_clear(c); /* its answers come before the large body's */
	if (c->link_file) {
		/* A body in the ring takes the socket, to close it when the
		 * kernel is done with it. */
		serve_uring_abort(c);
		link_end(c);
	}
	list_set(c, CL_NONE, 0);
	loop_cancel(&w->loop, &c->task);
	if (c->watch.fd >= 0)
		close(c->watch.fd); /* also leaves the epoll set: the fd is ours alone */
	free(c->in);
	free(c->hdr);
	free(c->logbuf);
	c->in = c->hdr = c->logbuf = NULL;
	w->nconns--;
	atomic_fetch_sub_explicit(&w->counters.active, 1, memory_order_relaxed);
	loop_free_later(&w->loop, &c->free_task);
	if (atomic_load(&serve_stopping)) {
		if (w->nconns == 0)
			w->loop.stop = true;
	} else if (!w->accepting && !w->accept_resume_at) {
		accept_resume(w); /* a slot under --max-conns is free */
	}
}

/* Our answers are all out and nothing more will come: shut our side and
 * read what the client still sends until it closes too. */
static void start_linger(struct serve_conn *c)
{
	shutdown(c->watch.fd, SHUT_WR);
	c->state = C_LINGER;
	c->in_head = c->in_len = 0;
	c->lingered = 0;
	list_set(c, CL_LINGER, loop_now_ms() + LINGER_MS);
}

static void on_task(struct loop *l, struct loop_task *t)
{
	(void)l;
	conn_run(container_of(t, struct serve_conn, task));
}

static void on_conn_event(struct loop *l, struct loop_watch *wt, uint32_t events)
{
	struct serve_conn *c = container_of(wt, struct serve_conn, watch);

	(void)l;
	if (c->closed)
		return;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = true;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		c->blocked_out = false;
	conn_run(c);
}

static void conn_new(struct serve_worker *w, int fd, const struct sockaddr_storage *sa)
{
	struct serve_conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (!c) {
		close(fd);
		return;
	}
	c->w = w;
	c->watch = (struct loop_watch){ .fd = fd, .on_event = on_conn_event };
	c->task.run = on_task;
	c->free_task.run = free_conn;
	c->list = CL_NONE;
	c->state = C_READ;
	/* Clients usually send their request at once: try reading before
	 * waiting for an event. */
	c->readable = true;
	http_parser_init(&c->parser, &serve_cfg.limits);
	if (serve_cfg.log_fd >= 0) {
		if (sa->ss_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, c->peer,
				  sizeof(c->peer));
		else if (sa->ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, c->peer,
				  sizeof(c->peer));
	}
	if (sa->ss_family == AF_INET || sa->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	w->nconns++;
	atomic_fetch_add_explicit(&w->counters.accepted, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->counters.active, 1, memory_order_relaxed);
	list_set(c, CL_HEADER, loop_now_ms() + serve_cfg.header_timeout_ms);
	if (loop_add(&w->loop, &c->watch, EPOLLIN | EPOLLOUT | EPOLLRDHUP) != 0) {
		conn_close(c);
		return;
	}
	conn_run(c);
}

/*
 * At the connection limit, the connection a new client may replace: one
 * already answered and closing, else the one idle the longest between
 * requests, else the one that has been sending its head the longest.
 * Never one that is being answered.  NULL: none.
 */
static struct serve_conn *evictable(struct serve_worker *w)
{
	if (w->lists[CL_LINGER].head)
		return w->lists[CL_LINGER].head;
	if (w->lists[CL_IDLE].head)
		return w->lists[CL_IDLE].head;
	return w->lists[CL_HEADER].head;
}

static void accept_some(struct serve_worker *w)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage sa;
		socklen_t len = sizeof(sa);
		int fd;

		if (!w->accepting)
			return;
		if (w->nconns >= w->max_conns && !evictable(w)) {
			/* Everyone is being answered: new clients wait in the
			 * backlog until a connection ends. */
			accept_pause(w);
			return;
		}
		fd = accept4(w->listen.fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			/* Evict only for a client really there. */
			if (w->nconns >= w->max_conns) {
				atomic_fetch_add_explicit(&w->counters.evicted, 1, memory_order_relaxed);
				conn_close(evictable(w));
			}
			conn_new(w, fd, &sa);
			continue;
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
			/* The pending connection stays queued and the socket
			 * readable: retrying now would spin.  Rest first. */
			log_msg(LOG_WARN, SERVE_CMD, "accept: %s; pausing %d ms", strerror(errno),
				ACCEPT_BACKOFF_MS);
			accept_pause(w);
			w->accept_resume_at = loop_now_ms() + ACCEPT_BACKOFF_MS;
			return;
		default:
			log_msg(LOG_ERROR, SERVE_CMD, "accept: %s", strerror(errno));
			return;
		}
	}
	/* Edge-triggered: more may be waiting with no new edge to come. */
	loop_defer(&w->loop, &w->accept_task);
}

static void on_listen(struct loop *l, struct loop_watch *wt, uint32_t events)
{
	(void)wt;
	(void)events;
	accept_some(l->data);
}

static void on_accept_task(struct loop *l, struct loop_task *t)
{
	(void)t;
	accept_some(l->data);
}

/* ---- reading ---------------------------------------------------------------- */

/* Room to read into; false when the head cannot grow any more. */
static bool in_room(struct serve_conn *c)
{
	uint32_t limit = serve_cfg.limits.max_head + IN_INITIAL;

	if (c->in_head == c->in_len)
		c->in_head = c->in_len = 0;
	if (c->in_len < c->in_cap)
		return true;
	if (c->in_head) {
		memmove(c->in, c->in + c->in_head, c->in_len - c->in_head);
		c->in_len -= c->in_head;
		c->in_head = 0;
		return true;
	}
	if (c->in_cap < limit) {
		uint32_t cap = c->in_cap ? c->in_cap * 2 : IN_INITIAL;
		char *p;

		if (cap > limit)
			cap = limit;
		p = realloc(c->in, cap);
		if (!p)
			return false;
		c->in = p;
		c->in_cap = cap;
		return true;
	}
	return false;
}

/* Read once.  1: bytes arrived; 0: none now (wait); -1: closed. */
static int fill(struct serve_conn *c)
{
	uint32_t room;
	ssize_t n;

	if (!c->readable)
		return 0;
	if (!in_room(c)) {
		conn_close(c);
		return -1;
	}
	room = c->in_cap - c->in_len;
	do
		n = read(c->watch.fd, c->in + c->in_len, room);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		c->in_len += (uint32_t)n;
		/* A short read emptied the socket; epoll reports the next
		 * arrival, so no read to see EAGAIN is needed. */
		if ((uint32_t)n < room)
			c->readable = false;
		return 1;
	}
	if (n < 0 && errno == EAGAIN) {
		c->readable = false;
		return 0;
	}
	conn_close(c); /* end of stream, or an error (reset) */
	return -1;
}

/* Skip request body bytes already received. */
static void skip_body(struct serve_conn *c)
{
	uint32_t avail = c->in_len - c->in_head;
	uint32_t n = c->discard < avail ? (uint32_t)c->discard : avail;

	c->in_head += n;
	c->discard -= n;
}

/* C_READ: parse what we have, answer complete heads, read for more. */
static bool do_read(struct serve_conn *c)
{
	int r;

	if (c->in_len > c->in_head) {
		r = http_parse(&c->parser, c->in + c->in_head, c->in_len - c->in_head);
		if (r > 0) {
			resp_request(c, c->in + c->in_head, &c->parser.req);
			c->served = true;
			c->in_head += (uint32_t)r;
			skip_body(c);
			http_parser_init(&c->parser, &serve_cfg.limits);
			/* link_file: a large body, by link or by ring */
			if (c->discard || c->link_file || c->close_after || c->out_n > OUT_ITEMS - 4 ||
			    c->hdr_len > PIPELINE_BYTES)
				c->state = C_SEND;
			return true;
		}
		if (r < 0) {
			resp_error(c, -r, c->in + c->in_head, c->in_len - c->in_head);
			c->state = C_SEND;
			return true;
		}
	}
	if (c->out_n) {
		/* Answer what we have before waiting for more requests. */
		c->state = C_SEND;
		return true;
	}
	if (c->in_len == c->in_head) {
		if (c->served && c->list != CL_IDLE)
			list_set(c, CL_IDLE, loop_now_ms() + serve_cfg.keepalive_timeout_ms);
	} else if (c->list != CL_HEADER) {
		/* The first bytes of a request: its head has this long. */
		list_set(c, CL_HEADER, loop_now_ms() + serve_cfg.header_timeout_ms);
	}
	r = fill(c);
	if (r > 0 && c->list != CL_HEADER)
		list_set(c, CL_HEADER, loop_now_ms() + serve_cfg.header_timeout_ms);
	return r > 0;
}

/* C_BODY: skip the rest of a request body. */
static bool do_body(struct serve_conn *c)
{
	skip_body(c);
	if (!c->discard) {
		c->state = C_READ;
		return true;
	}
	touch_send(c);
	return fill(c) > 0;
}

/* C_LINGER: throw away what arrives until the client closes. */
static bool do_linger(struct serve_conn *c)
{
	int r;

	c->in_head = c->in_len;
	r = fill(c);
	if (r <= 0)
		return false;
	c->lingered += c->in_len - c->in_head;
	c->in_head = c->in_len;
	if (c->lingered > LINGER_BYTES) {
		conn_close(c);
		return false;
	}
	return true;
}

/* ---- sending ---------------------------------------------------------------- */

/* writev the output queue.  true: all sent; false: wait (or closed). */
static bool send_queue(struct serve_conn *c)
{
	struct serve_counters *k = &c->w->counters;

	if (c->out_first == c->out_n)
		return true;
	while (c->out_first < c->out_n) {
		struct iovec iov[OUT_ITEMS];
		int n = 0;
		ssize_t done;

		if (c->blocked_out)
			return false;
		for (unsigned i = c->out_first; i < c->out_n; i++, n++) {
			struct out_item *it = &c->out[i];

			iov[n].iov_base = (void *)(it->ptr ? it->ptr : c->hdr + it->off);
			iov[n].iov_len = it->len;
		}
		done = writev(c->watch.fd, iov, n);
		if (done < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				c->blocked_out = true;
				touch_send(c);
				return false;
			}
			conn_close(c);
			return false;
		}
		atomic_fetch_add_explicit(&k->bytes, (unsigned long long)done, memory_order_relaxed);
		c->out_done += (uint64_t)done;
		while (done > 0) {
			struct out_item *it = &c->out[c->out_first];
			size_t m = (size_t)done < it->len ? (size_t)done : it->len;

			if (it->ptr)
				it->ptr += m;
			else
				it->off += (uint32_t)m;
			it->len -= m;
			done -= (ssize_t)m;
			if (it->len == 0) {
				item_release(c, it);
				c->out_first++;
			}
		}
		if (c->nlogs)
			logs_flush(c, false);
		if (c->out_first < c->out_n)
			touch_send(c);
	}
	c->out_first = c->out_n = 0;
	c->out_total = c->out_done = 0;
	c->hdr_len = 0;
	atomic_fetch_add_explicit(&k->small, 1, memory_order_relaxed);
	return true;
}

/* Pump the large body.  true: done; false: wait, run later, or closed. */
static bool send_link(struct serve_conn *c)
{
	struct serve_worker *w = c->w;
	int64_t r;

	if (c->blocked_out)
		return false;
	r = zcio_link_pump(c->link, PUMP_BUDGET, &w->st);
	if (w->st.last_bytes) {
		c->link_done += w->st.last_bytes;
		atomic_fetch_add_explicit(&w->counters.bytes, w->st.last_bytes, memory_order_relaxed);
		touch_send(c);
	}
	if (r == -EAGAIN) {
		if (w->st.wait == ZCIO_WAIT_OUT)
			c->blocked_out = true;
		else
			loop_defer(&w->loop, &c->task); /* a file never blocks for long */
		touch_send(c);
		return false;
	}
	if (r > 0) {
		loop_defer(&w->loop, &c->task); /* budget spent: others first */
		return false;
	}
	if (r < 0) {
		conn_close(c); /* the client went away (EPIPE, ECONNRESET) */
		return false;
	}
	if (c->link_done < c->link_want) {
		/* The file ended before the promised length: it was truncated
		 * while being sent.  Closing is the only honest signal left. */
		atomic_fetch_add_explicit(&w->counters.truncated, 1, memory_order_relaxed);
		files_suspect(c->link_file);
		conn_close(c);
		return false;
	}
	link_end(c);
	return true;
}

void conn_uring_progress(struct serve_conn *c, uint64_t n)
{
	struct serve_worker *w = c->w;

	c->link_done += n;
	w->st.path_bytes[ZCIO_PATH_SPLICE_PIPE] += n;
	atomic_fetch_add_explicit(&w->counters.bytes, n, memory_order_relaxed);
	touch_send(c);
}

void conn_uring_end(struct serve_conn *c, int r)
{
	if (r == -ENODATA) {
		/* As in send_link: truncated while sent, close. */
		atomic_fetch_add_explicit(&c->w->counters.truncated, 1, memory_order_relaxed);
		files_suspect(c->link_file);
	}
	if (r < 0) {
		conn_close(c);
		return;
	}
	link_end(c);
	conn_run(c); /* still C_SEND: on to what comes next */
}

/* C_SEND: everything queued, then what comes next. */
static bool do_send(struct serve_conn *c)
{
	if (!send_queue(c))
		return false;
	if (c->link && !send_link(c))
		return false;
	if (c->link_file && !c->link) {
		/* A body in the ring: conn_uring_end() runs us again. */
		if (serve_uring_start(c))
			touch_send(c);
		return false;
	}
	if (c->close_after) {
		start_linger(c);
		return true;
	}
	if (atomic_load_explicit(&serve_stopping, memory_order_relaxed) && !c->discard &&
	    c->in_len == c->in_head) {
		conn_close(c);
		return false;
	}
	c->state = c->discard ? C_BODY : C_READ;
	return true;
}

static void conn_run(struct serve_conn *c)
{
	bool more = true;

	while (more && !c->closed) {
		switch (c->state) {
		case C_READ:
			more = do_read(c);
			break;
		case C_BODY:
			more = do_body(c);
			break;
		case C_SEND:
			more = do_send(c);
			break;
		case C_LINGER:
			more = do_linger(c);
			break;
		default:
			more = false;
		}
	}
}

/* ---- the worker -------------------------------------------------------------- */

static void publish(struct serve_worker *w)
{
	struct serve_counters *k = &w->counters;

	atomic_store_explicit(&k->spliced, w->st.path_bytes[ZCIO_PATH_SPLICE_PIPE],
			      memory_order_relaxed);
	atomic_store_explicit(&k->sendfiled, w->st.path_bytes[ZCIO_PATH_SENDFILE],
			      memory_order_relaxed);
	atomic_store_explicit(&k->copied, w->st.path_bytes[ZCIO_PATH_COPY], memory_order_relaxed);
	atomic_store_explicit(&k->cache_hits, w->files.hits + w->files.revalidated,
			      memory_order_relaxed);
	atomic_store_explicit(&k->cache_misses, w->files.misses + w->files.replaced,
			      memory_order_relaxed);
}

static void expire(struct serve_worker *w, int64_t now)
{
	struct serve_conn *c;

	while ((c = w->lists[CL_HEADER].head) && c->deadline <= now) {
		if (c->state == C_READ && c->in_len > c->in_head) {
			/* Part of a head, too slowly: answer 408 and close. */
			atomic_fetch_add_explicit(&w->counters.timeouts, 1, memory_order_relaxed);
			resp_error(c, 408, c->in + c->in_head, c->in_len - c->in_head);
			c->state = C_SEND;
			touch_send(c);
			conn_run(c);
		} else {
			conn_close(c);
		}
	}
	while ((c = w->lists[CL_IDLE].head) && c->deadline <= now)
		conn_close(c);
	while ((c = w->lists[CL_SEND].head) && c->deadline <= now) {
		atomic_fetch_add_explicit(&w->counters.timeouts, 1, memory_order_relaxed);
		conn_close(c);
	}
	while ((c = w->lists[CL_LINGER].head) && c->deadline <= now)
		conn_close(c);
}

static void on_tick(struct loop *l)
{
	struct serve_worker *w = l->data;
	int64_t now = loop_now_ms();

	if (w->accept_resume_at && now >= w->accept_resume_at) {
		w->accept_resume_at = 0;
		accept_resume(w);
	}
	if (!w->accepting && !w->accept_resume_at && w->nconns < w->max_conns)
		accept_resume(w);
	expire(w, now);
	alog_flush(&w->log);
	serve_uring_tick(w);
	publish(w);
}

static void on_wake(struct loop *l)
{
	struct serve_worker *w = l->data;

	if (atomic_load(&serve_stopping)) {
		accept_pause(w);
		if (w->listen.fd >= 0) {
			close(w->listen.fd);
			w->listen.fd = -1;
		}
		/* Idle connections have nothing to finish. */
		while (w->lists[CL_IDLE].head)
			conn_close(w->lists[CL_IDLE].head);
		for (struct serve_conn *c = w->lists[CL_HEADER].head, *next; c; c = next) {
			next = c->next;
			if (c->in_len == c->in_head)
				conn_close(c);
		}
	}
	if (atomic_load(&serve_forcing)) {
		for (int i = 0; i < CL_COUNT; i++) {
			while (w->lists[i].head)
				conn_close(w->lists[i].head);
		}
	}
	if (atomic_load(&serve_stopping) && w->nconns == 0)
		l->stop = true;
}

int worker_start(struct serve_worker *w, unsigned index, int listen_fd)
{
	int r = loop_init(&w->loop, TICK_MS);

	if (r < 0)
		return r;
	w->index = index;
	w->loop.data = w;
	w->loop.on_tick = on_tick;
	w->loop.on_wake = on_wake;
	w->listen = (struct loop_watch){ .fd = listen_fd, .on_event = on_listen };
	w->accept_task.run = on_accept_task;
	w->date_sec = -1;
	w->max_conns = (serve_cfg.max_conns + serve_cfg.workers - 1) / serve_cfg.workers;
	r = files_init(&w->files);
	if (r == 0)
		r = alog_init(&w->log);
	if (r == 0 && serve_uring_wanted && (r = serve_uring_worker_init(w)) < 0) {
		/* The probe's ring worked, this one did not (RLIMIT_MEMLOCK
		 * on kernels before 5.12, which charge rings to it). */
		log_msg(LOG_WARN, SERVE_CMD, "worker %u: io_uring: %s; using epoll", index,
			strerror(-r));
		r = 0;
	}
	return r;
}

void *worker_main(void *arg)
{
	struct serve_worker *w = arg;

	accept_resume(w);
	loop_run(&w->loop);
	for (int i = 0; i < CL_COUNT; i++) {
		while (w->lists[i].head)
			conn_close(w->lists[i].head);
	}
	loop_run(&w->loop); /* stopped already: frees what was closed */
	serve_uring_worker_release(w); /* before the files its transfers hold */
	publish(w);
	alog_flush(&w->log);
	files_release(&w->files);
	zcio_pool_flush();
	return NULL;
}
