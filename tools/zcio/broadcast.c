/*
 * broadcast.c - `zcio broadcast --listen ADDR`: standard input fanned out to
 * every client that connects, through one zcio fan-out.
 *
 * One thread, one edge-triggered epoll loop: standard input, the listening
 * socket, a signalfd and every client are watched, and any event pumps the
 * fan-out, which knows which fd stopped it (zcio_fanout_pump() reports
 * -EAGAIN only after an fd itself did, so no edge is lost).  A client
 * joins at the fan-out's position: it receives the stream from the moment
 * it connects.  A client that leaves, fails or (with --policy drop) falls
 * a pipe behind is removed by the fan-out and closed here, with a log line.
 * When standard input ends, the listening socket closes, every client
 * gets the rest of the stream and then its end (shutdown), and the command
 * exits; clients that are still receiving after --grace are cut off.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "addr.h"
#include "cli.h"
#include "log.h"
#include "loop.h"

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

static const char CMD[] = "broadcast";

/* Bytes the fan-out may take per pump before accepting and signals get a
 * turn. */
#define PUMP_BUDGET (4u << 20)
#define ACCEPT_BATCH 64
#define ACCEPT_BACKOFF_MS 100
#define TICK_MS 100
/* Held back by slow clients this long (--policy block): say so. */
#define SLOW_NOTICE_MS 5000

struct bc_client {
	struct loop_watch w;
	int id;                 /* in the fan-out */
	char peer[64];
};

struct bc_config {
	struct addr listen;
	uint32_t dest_flags;    /* ZCIO_FANOUT_DROP or 0 */
	unsigned int max_clients;
	int grace_ms;
	bool stats;
	int stats_interval_s;
	struct zcio_opts opts;
};

struct bc_counters {
	uint64_t joined, left, dropped, failed, refused;
};

static struct bc_config cfg;
static struct {
	struct loop loop;
	struct zcio_fanout *fo;
	struct loop_watch in, listen, sig;
	struct loop_task pump_task;
	struct loop_task accept_task;   /* accept more after a full batch */
	bool in_watched;
	bool accepting;
	int64_t accept_resume_at;
	struct bc_client **by_fd;   /* clients by socket fd */
	unsigned int by_fd_cap;
	unsigned int nclients;
	struct bc_counters n;
	struct zcio_stats st;
	int64_t end_deadline;       /* source ended: cut off stragglers then */
	int64_t next_stats;
	int64_t held_since;         /* slow clients hold the stream back since */
	bool slow_noted;
	bool stop_requested;        /* SIGINT or SIGTERM */
	int rc;
} bc;

static void print_stats(void)
{
	struct zcio_pool_stats ps;
	char in[32], out[32];

	zcio_pool_stats(&ps);
	log_msg(LOG_ERROR < log_level ? LOG_INFO : LOG_ERROR, CMD,
		"stats: clients %u connected, %" PRIu64 " joined, %" PRIu64 " left, %" PRIu64
		" dropped, %" PRIu64 " failed, %" PRIu64 " refused; in %s (%" PRIu64
		" bytes); out %s (%" PRIu64 " bytes): tee %" PRIu64 ", splice %" PRIu64
		", copy %" PRIu64 "; pipes %u",
		bc.nclients, bc.n.joined, bc.n.left, bc.n.dropped, bc.n.failed, bc.n.refused,
		cli_format_size(zcio_fanout_position(bc.fo), in, sizeof(in)),
		zcio_fanout_position(bc.fo), cli_format_size(bc.st.bytes, out, sizeof(out)),
		bc.st.bytes, bc.st.path_bytes[ZCIO_PATH_TEE], bc.st.path_bytes[ZCIO_PATH_SPLICE_PIPE],
		bc.st.path_bytes[ZCIO_PATH_COPY], ps.live);
}

static void client_forget(struct bc_client *c)
{
	loop_del(&bc.loop, &c->w);
	bc.by_fd[c->w.fd] = NULL;
	close(c->w.fd);
	free(c);
	bc.nclients--;
}

/* The fan-out removed a client by itself: say why, and close it. */
static void client_removed(const struct zcio_fanout_dest *info)
{
	struct bc_client *c = info->fd >= 0 && (unsigned)info->fd < bc.by_fd_cap ? bc.by_fd[info->fd] : NULL;
	char lag[32];

	if (!c || c->id != info->id)
		return;
	switch (info->state) {
	case ZCIO_FANOUT_DROPPED:
		bc.n.dropped++;
		log_msg(LOG_WARN, CMD, "%s: dropped: could not keep up (%s behind) after %" PRIu64 " bytes",
			c->peer, cli_format_size(info->lag, lag, sizeof(lag)), info->stats.bytes);
		break;
	case ZCIO_FANOUT_CLOSED:
		bc.n.left++;
		log_msg(LOG_DEBUG, CMD, "%s: left after %" PRIu64 " bytes", c->peer, info->stats.bytes);
		break;
	default:
		bc.n.failed++;
		log_msg(LOG_WARN, CMD, "%s: %s after %" PRIu64 " bytes", c->peer, strerror(-info->err),
			info->stats.bytes);
		break;
	}
	client_forget(c);
}

/* The client goes on our initiative (hang-up seen, shutdown). */
static void client_drop_now(struct bc_client *c, const char *why)
{
	struct zcio_fanout_dest info;

	if (zcio_fanout_remove(bc.fo, c->id, &info) == 0)
		log_msg(LOG_DEBUG, CMD, "%s: %s after %" PRIu64 " bytes", c->peer, why, info.stats.bytes);
	bc.n.left++;
	client_forget(c);
}

/* Everything is delivered (or the grace period is over): end each client's
 * stream and stop. */
static void finish(void)
{
	for (unsigned int fd = 0; fd < bc.by_fd_cap; fd++) {
		struct bc_client *c = bc.by_fd[fd];

		if (!c)
			continue;
		shutdown(c->w.fd, SHUT_WR);
		client_drop_now(c, "stream ended");
	}
	bc.loop.stop = true;
}

static void stop_accepting(void)
{
	if (bc.listen.fd < 0)
		return;
	if (bc.accepting)
		loop_del(&bc.loop, &bc.listen);
	loop_cancel(&bc.loop, &bc.accept_task);
	bc.accepting = false;
	close(bc.listen.fd);
	bc.listen.fd = -1;
	if (cfg.listen.family == AF_UNIX)
		unlink(((struct sockaddr_un *)&cfg.listen.sa)->sun_path);
}

/* Slow clients holding the stream back (--policy block): one line per
 * episode, after SLOW_NOTICE_MS. */
static void note_slow(bool held_back)
{
	if (!held_back) {
		bc.held_since = 0;
		bc.slow_noted = false;
		return;
	}
	if (!bc.held_since) {
		bc.held_since = loop_now_ms();
		return;
	}
	if (!bc.slow_noted && loop_now_ms() - bc.held_since >= SLOW_NOTICE_MS) {
		struct pollfd p[8];
		int n = zcio_fanout_pollfds(bc.fo, p, 8);
		char names[400] = "";
		size_t at = 0;

		for (int i = 0; i < n && i < 8 && at < sizeof(names) - 70; i++) {
			struct bc_client *c = (unsigned)p[i].fd < bc.by_fd_cap ? bc.by_fd[p[i].fd] : NULL;

			if (c)
				at += (size_t)snprintf(names + at, sizeof(names) - at, "%s%s", at ? ", " : "",
						       c->peer);
		}
		log_msg(LOG_WARN, CMD, "%d slow client%s holding the stream back for %d s: %s%s", n,
			n == 1 ? "" : "s", SLOW_NOTICE_MS / 1000, names, n > 8 ? ", ..." : "");
		bc.slow_noted = true;
	}
}

static void run_pump(void)
{
	struct zcio_fanout_dest info;
	int64_t r;

	if (bc.stop_requested) {
		stop_accepting();
		finish();
		return;
	}
	r = zcio_fanout_pump(bc.fo, PUMP_BUDGET, &bc.st);

	while (zcio_fanout_removed(bc.fo, &info) == 1)
		client_removed(&info);
	if (zcio_fanout_source_done(bc.fo) && !bc.end_deadline) {
		stop_accepting();
		bc.end_deadline = loop_now_ms() + cfg.grace_ms;
		log_msg(LOG_DEBUG, CMD, "end of input after %" PRIu64 " bytes; %u clients finishing",
			zcio_fanout_position(bc.fo), bc.nclients);
	}
	if (r > 0) {
		loop_defer(&bc.loop, &bc.pump_task);
		note_slow(false);
		return;
	}
	if (r == -EAGAIN) {
		note_slow(!zcio_fanout_source_done(bc.fo) && bc.st.wait == ZCIO_WAIT_OUT &&
			  cfg.dest_flags == 0);
		return;
	}
	if (r < 0) {
		log_msg(LOG_ERROR, CMD, "standard input: %s", strerror((int)-r));
		bc.rc = CLI_ERROR;
	}
	finish();
}

static void on_pump_task(struct loop *l, struct loop_task *t)
{
	(void)l;
	(void)t;
	run_pump();
}

/*
 * Events only ask for a pump, which runs once after the whole batch: one
 * pump serves every client that became writable, and clients the fan-out
 * removes are freed outside event dispatch, where no later event of the
 * same batch can still point at them.
 */
static void on_input(struct loop *l, struct loop_watch *w, uint32_t events)
{
	(void)w;
	(void)events;
	loop_defer(l, &bc.pump_task);
}

static void on_client(struct loop *l, struct loop_watch *w, uint32_t events)
{
	struct bc_client *c = container_of(w, struct bc_client, w);

	(void)l;
	if (events & EPOLLIN) {
		/* Whatever a client says is not part of the broadcast; read
		 * it so that closing the socket later sends a FIN, not a
		 * reset that could destroy bytes still queued for it. */
		char junk[4096];

		while (read(c->w.fd, junk, sizeof(junk)) > 0)
			;
	}
	if (events & (EPOLLERR | EPOLLHUP))
		client_drop_now(c, "hung up"); /* the others may move again now */
	loop_defer(l, &bc.pump_task);
}

static bool client_slot(int fd)
{
	if ((unsigned)fd < bc.by_fd_cap)
		return true;
	unsigned int cap = bc.by_fd_cap ? bc.by_fd_cap : 1024;

	while (cap <= (unsigned)fd)
		cap *= 2;
	struct bc_client **n = realloc(bc.by_fd, cap * sizeof(*n));

	if (!n)
		return false;
	memset(n + bc.by_fd_cap, 0, (cap - bc.by_fd_cap) * sizeof(*n));
	bc.by_fd = n;
	bc.by_fd_cap = cap;
	return true;
}

static void client_start(int fd)
{
	struct bc_client *c;
	char peer[64];
	int id;

	addr_peer_text(fd, peer, sizeof(peer));
	if (bc.nclients >= cfg.max_clients) {
		bc.n.refused++;
		log_msg(LOG_WARN, CMD, "%s: refused: %u clients already (--max-clients)", peer,
			bc.nclients);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !client_slot(fd)) {
		free(c);
		close(fd);
		return;
	}
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->w = (struct loop_watch){ .fd = fd, .on_event = on_client };
	id = zcio_fanout_add(bc.fo, fd, cfg.dest_flags);
	if (id < 0) {
		log_msg(LOG_WARN, CMD, "%s: %s", peer, strerror(-id));
		free(c);
		close(fd);
		return;
	}
	c->id = id;
	if (loop_add(&bc.loop, &c->w, EPOLLIN | EPOLLOUT | EPOLLRDHUP) != 0) {
		zcio_fanout_remove(bc.fo, id, NULL);
		free(c);
		close(fd);
		return;
	}
	bc.by_fd[fd] = c;
	bc.nclients++;
	bc.n.joined++;
	log_msg(LOG_DEBUG, CMD, "%s: joined at byte %" PRIu64, c->peer, zcio_fanout_position(bc.fo));
}

static void accept_pause(int ms)
{
	if (bc.accepting)
		loop_del(&bc.loop, &bc.listen);
	bc.accepting = false;
	bc.accept_resume_at = loop_now_ms() + ms;
}

static void on_listen(struct loop *l, struct loop_watch *w, uint32_t events)
{
	(void)l;
	(void)events;
	for (int i = 0; i < ACCEPT_BATCH && bc.accepting; i++) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			client_start(fd);
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
			/* The connection stays queued and the socket readable:
			 * retrying now would spin.  Rest, then try again. */
			log_msg(LOG_WARN, CMD, "accept: %s; pausing %d ms", strerror(errno),
				ACCEPT_BACKOFF_MS);
			accept_pause(ACCEPT_BACKOFF_MS);
			return;
		default:
			log_msg(LOG_ERROR, CMD, "accept: %s", strerror(errno));
			return;
		}
	}
	/* A full batch: come back after the other events (the watch is
	 * edge-triggered: no new edge comes for connections already queued). */
	if (bc.accepting)
		loop_defer(&bc.loop, &bc.accept_task);
}

static void on_accept_task(struct loop *l, struct loop_task *t)
{
	(void)t;
	if (bc.accepting)
		on_listen(l, &bc.listen, EPOLLIN);
}

static void on_signal(struct loop *l, struct loop_watch *w, uint32_t events)
{
	struct signalfd_siginfo si;

	(void)l;
	(void)events;
	while (read(w->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			print_stats();
			continue;
		}
		log_msg(LOG_INFO, CMD, "%s: stopping, %u clients connected", strsignal((int)si.ssi_signo),
			bc.nclients);
		bc.stop_requested = true;
		loop_defer(&bc.loop, &bc.pump_task);
		return;
	}
}

static void on_tick(struct loop *l)
{
	int64_t now = loop_now_ms();

	(void)l;
	if (bc.accept_resume_at && now >= bc.accept_resume_at && bc.listen.fd >= 0) {
		bc.accept_resume_at = 0;
		if (loop_add(&bc.loop, &bc.listen, EPOLLIN) == 0) {
			bc.accepting = true;
			on_listen(&bc.loop, &bc.listen, EPOLLIN);
		}
	}
	if (bc.next_stats && now >= bc.next_stats) {
		print_stats();
		bc.next_stats = now + cfg.stats_interval_s * 1000;
	}
	if (bc.end_deadline && now >= bc.end_deadline && !bc.loop.stop) {
		log_msg(LOG_WARN, CMD, "%u clients still receiving %d s after the end of input: "
			"cutting them off", bc.nclients, cfg.grace_ms / 1000);
		finish();
		return;
	}
	/* A client's time to catch up (--policy drop) has run out. */
	if (zcio_fanout_timeout(bc.fo) == 0)
		run_pump();
	/* Keeps the slow-client notice going while nothing else happens. */
	if (bc.held_since && !bc.loop.stop)
		note_slow(true);
}

static int setup(void)
{
	sigset_t sigs;
	int r, fd;

	cli_raise_fd_limit();
	/* A pipe for every client that is not keeping up, and the intake. */
	zcio_pool_set_max(cfg.max_clients + 64 > 256 ? cfg.max_clients + 64 : 256);
	r = loop_init(&bc.loop, TICK_MS);
	if (r < 0)
		return r;
	bc.loop.on_tick = on_tick;
	bc.pump_task.run = on_pump_task;
	bc.accept_task.run = on_accept_task;
	r = zcio_fanout_new(STDIN_FILENO, &cfg.opts, &bc.fo);
	if (r < 0) {
		log_msg(LOG_ERROR, CMD, "standard input: %s", strerror(-r));
		return r;
	}
	fd = addr_listen(&cfg.listen, false, 4096);
	if (fd < 0) {
		log_msg(LOG_ERROR, CMD, "listen on %s: %s", cfg.listen.text, strerror(-fd));
		return fd;
	}
	bc.listen = (struct loop_watch){ .fd = fd, .on_event = on_listen };
	if (loop_add(&bc.loop, &bc.listen, EPOLLIN) != 0)
		return -errno;
	bc.accepting = true;
	/* Regular files and block devices cannot be watched (EPERM), and
	 * need not be: they are always ready, and the pump task keeps
	 * reading them. */
	bc.in = (struct loop_watch){ .fd = STDIN_FILENO, .on_event = on_input };
	bc.in_watched = loop_add(&bc.loop, &bc.in, EPOLLIN | EPOLLRDHUP) == 0;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGUSR1);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	bc.sig = (struct loop_watch){ .fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC),
				      .on_event = on_signal };
	if (bc.sig.fd < 0 || loop_add(&bc.loop, &bc.sig, EPOLLIN) != 0)
		return -errno;
	return 0;
}

static int run_broadcast(void)
{
	int r;

	/* Clients that leave are reported as -EPIPE, never as a signal. */
	signal(SIGPIPE, SIG_IGN);
	bc.listen.fd = -1;
	r = setup();
	if (r < 0) {
		if (r != -EADDRINUSE && bc.fo)
			log_msg(LOG_ERROR, CMD, "setup: %s", strerror(-r));
		return CLI_ERROR;
	}
	log_msg(LOG_INFO, CMD, "listening on %s, policy %s%s", cfg.listen.text,
		cfg.dest_flags ? "drop" : "block", (cfg.opts.flags & ZCIO_F_COPY) ? " (copy)" : "");
	if (cfg.stats && cfg.stats_interval_s)
		bc.next_stats = loop_now_ms() + cfg.stats_interval_s * 1000;
	/* The first pump reads whatever is there (and a file source, which
	 * never signals, needs it). */
	loop_defer(&bc.loop, &bc.pump_task);
	loop_run(&bc.loop);
	stop_accepting();
	if (cfg.stats) {
		print_stats();
		/* Which paths moved the bytes, and every fallback with its
		 * reason, as the other commands' --stats say it. */
		cli_print_stats(CMD, &bc.st);
	}
	zcio_fanout_free(bc.fo);
	if (bc.sig.fd >= 0)
		close(bc.sig.fd);
	loop_release(&bc.loop);
	free(bc.by_fd);
	return bc.rc;
}

enum { OPT_LISTEN, OPT_POLICY, OPT_DROP_AFTER, OPT_MAX_CLIENTS, OPT_STATS, OPT_COPY,
       OPT_PIPE_SIZE, OPT_GRACE, OPT_VERBOSE, OPT_QUIET };

static const struct cli_option broadcast_options[] = {
	[OPT_LISTEN] = { "-l", "--listen", "ADDR",
			 "where clients connect: HOST:PORT, [IPV6]:PORT, :PORT or unix:PATH "
			 "(required)" },
	[OPT_POLICY] = { NULL, "--policy", "POLICY",
			 "what to do with a client that cannot keep up: drop (the default: it is "
			 "disconnected once a full pipe behind, with a log line, and the others "
			 "go on) or block (everyone waits for it)" },
	[OPT_DROP_AFTER] = { NULL, "--drop-after", "SECONDS",
			     "with --policy drop, how long a client may hold the others back before "
			     "it is disconnected (default 0.1)" },
	[OPT_MAX_CLIENTS] = { NULL, "--max-clients", "N",
			      "at most N clients at once; more are refused with a log line "
			      "(default 10000)" },
	[OPT_STATS] = { NULL, "--stats", "[=SECONDS]",
			"print clients, bytes in and out and how they moved every SECONDS "
			"(default: only on SIGUSR1) and at exit" },
	[OPT_COPY] = { NULL, "--copy", NULL,
		       "read each byte once into memory and write it to every client: the "
		       "baseline" },
	[OPT_PIPE_SIZE] = { NULL, "--pipe-size", "BYTES",
			    "capacity of the intake pipe and of each client's pipe, which is also "
			    "how far behind a client may fall (default 1M, at most pipe-max-size)" },
	[OPT_GRACE] = { NULL, "--grace", "SECONDS",
			"after the end of input, give clients this long to receive the rest "
			"(default 10)" },
	[OPT_VERBOSE] = { "-v", "--verbose", NULL,
			  "also log every client that joins (with its join offset) and leaves" },
	[OPT_QUIET] = { "-q", "--quiet", NULL, "log errors only" },
	{ NULL, NULL, NULL, NULL },
};

static int broadcast_main(int argc, char **argv)
{
	struct cli_args args;
	const char *why = NULL, *listen = NULL;
	uint64_t size;
	long n;
	int opt;

	cfg = (struct bc_config){ .dest_flags = ZCIO_FANOUT_DROP, .max_clients = 10000,
				  .grace_ms = 10000 };
	cli_args_init(&args, &cli_broadcast, argc, argv);
	while ((opt = cli_args_next(&args)) >= 0) {
		switch (opt) {
		case OPT_LISTEN:
			listen = args.optarg;
			break;
		case OPT_POLICY:
			if (strcmp(args.optarg, "drop") == 0)
				cfg.dest_flags = ZCIO_FANOUT_DROP;
			else if (strcmp(args.optarg, "block") == 0)
				cfg.dest_flags = 0;
			else
				return cli_usage_error(&cli_broadcast, "invalid policy '%s' (drop or block)",
						       args.optarg);
			break;
		case OPT_DROP_AFTER: {
			int ms;

			if (cli_parse_seconds(args.optarg, &ms) < 0 || ms > 3600 * 1000)
				return cli_usage_error(&cli_broadcast, "bad delay: %s", args.optarg);
			/* 0 means "at once", which the library spells -1. */
			cfg.opts.timeout_ms = ms > 0 ? ms : -1;
			break;
		}
		case OPT_MAX_CLIENTS:
			n = strtol(args.optarg, NULL, 10);
			if (n < 1 || n > 1000000)
				return cli_usage_error(&cli_broadcast, "bad client limit: %s", args.optarg);
			cfg.max_clients = (unsigned int)n;
			break;
		case OPT_STATS:
			cfg.stats = true;
			if (args.optarg) {
				n = strtol(args.optarg, NULL, 10);
				if (n < 1)
					return cli_usage_error(&cli_broadcast, "bad interval: %s", args.optarg);
				cfg.stats_interval_s = (int)n;
			}
			break;
		case OPT_COPY:
			cfg.opts.flags |= ZCIO_F_COPY;
			break;
		case OPT_PIPE_SIZE:
			if (cli_parse_size(args.optarg, &size) < 0 || size < 4096 || size > (1u << 30))
				return cli_usage_error(&cli_broadcast, "bad pipe size: %s", args.optarg);
			cfg.opts.pipe_size = (uint32_t)size;
			break;
		case OPT_GRACE:
			if (cli_parse_seconds(args.optarg, &cfg.grace_ms) < 0)
				return cli_usage_error(&cli_broadcast, "bad grace period: %s", args.optarg);
			break;
		case OPT_VERBOSE:
			log_level = LOG_DEBUG;
			break;
		case OPT_QUIET:
			log_level = LOG_ERROR;
			break;
		}
	}
	if (args.noperands)
		return cli_usage_error(&cli_broadcast, "unexpected operand '%s'", args.operands[0]);
	if (!listen)
		return cli_usage_error(&cli_broadcast, "--listen ADDR is required");
	if (addr_parse(listen, &cfg.listen, &why) < 0)
		return cli_usage_error(&cli_broadcast, "%s: %s", listen, why);
	return run_broadcast();
}

const struct cli_command cli_broadcast = {
	.name = "broadcast",
	.synopsis = "--listen ADDR [--policy drop|block] [--max-clients N] [--stats] [--copy]",
	.summary = "send standard input to every client that connects, by reference",
	.description =
		"Listens on ADDR and sends standard input to every client connected to\n"
		"it, like a live stream: a client receives the stream from the moment it\n"
		"connects, none of what came before.  Whatever clients send is ignored.\n"
		"\n"
		"The stream is not copied once per client: it goes into a pipe, and\n"
		"tee() duplicates the pipe's page references into each client's pipe,\n"
		"from where splice() hands them to its socket.  With --copy, or where\n"
		"tee() and splice() do not work, each byte is read once into memory and\n"
		"written to every client.\n"
		"\n"
		"A client that cannot keep up is disconnected, with a log line, once its\n"
		"pipe is full and it has held the others back for --drop-after (--policy\n"
		"drop, the default), so the others keep the pace of the input; with\n"
		"--policy block everyone waits for the slowest, as with tee(1), and a\n"
		"line says who is holding the stream back.\n"
		"With no client connected, the input is read and thrown away.\n"
		"\n"
		"When standard input ends, no more clients are accepted, every client\n"
		"receives the rest of the stream and then its end, and zcio broadcast\n"
		"exits (0; 1 when standard input failed).  SIGUSR1 prints the\n"
		"statistics line; SIGINT or SIGTERM disconnect everyone and exit.",
	.options = broadcast_options,
	.examples =
		"encoder | zcio broadcast --listen :9000\n"
		"tail -f /var/log/syslog | zcio broadcast -v --policy block --listen unix:/run/log.sock\n"
		"zcio broadcast --stats=10 --max-clients 500 --listen [::1]:9000 < /dev/ttyUSB0",
	.run = broadcast_main,
};
