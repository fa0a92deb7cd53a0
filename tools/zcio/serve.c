/*
 * serve.c - `zcio serve [DIR]`: a static HTTP/1.1 file server.
 *
 * This file is the command: its options, the workers (one thread each,
 * with its own SO_REUSEPORT listening socket, event loop, open-file cache
 * and access-log buffer), signals and --stats.  The rest is in serve_*.c
 * (see serve.h) and the HTTP parser in http*.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "mime.h"
#include "serve.h"
#include "serve_uring.h"
#include "supervise.h"

struct serve_config serve_cfg;
atomic_bool serve_stopping, serve_forcing;

static struct serve_worker *workers;

static void print_stats(void)
{
	uint64_t v[20] = { 0 };
	struct zcio_pool_stats ps;
	char b[32], s[32], f[32], k[32], u[48] = "";

	for (unsigned i = 0; i < serve_cfg.workers; i++) {
		struct serve_counters *c = &workers[i].counters;
		atomic_ullong *a[] = {
			&c->accepted, &c->active, &c->requests, &c->bytes, &c->status[2],
			&c->status[3], &c->status[4], &c->status[5], &c->small, &c->linked,
			&c->truncated, &c->timeouts, &c->evicted, &c->spliced, &c->sendfiled,
			&c->copied, &c->cache_hits, &c->cache_misses,
		};

		for (size_t j = 0; j < sizeof(a) / sizeof(a[0]); j++)
			v[j] += atomic_load_explicit(a[j], memory_order_relaxed);
	}
	zcio_pool_stats(&ps);
	if (serve_uring_wanted)
		snprintf(u, sizeof(u), "; io_uring bodies %llu",
			 (unsigned long long)atomic_load(&serve_uring_bodies));
	log_msg(LOG_ERROR < log_level ? LOG_INFO : LOG_ERROR, SERVE_CMD,
		"stats: connections %llu active, %llu accepted, %llu evicted, %llu timed out; "
		"requests %llu (2xx %llu, 3xx %llu, 4xx %llu, 5xx %llu); sent %s; "
		"writev batches %llu, linked bodies %llu (%llu truncated): spliced %s, "
		"sendfile %s, copied %s; file cache %llu hits, %llu misses; pipes %u%s",
		(unsigned long long)v[1], (unsigned long long)v[0], (unsigned long long)v[12],
		(unsigned long long)v[11], (unsigned long long)v[2], (unsigned long long)v[4],
		(unsigned long long)v[5], (unsigned long long)v[6], (unsigned long long)v[7],
		cli_format_size(v[3], b, sizeof(b)), (unsigned long long)v[8],
		(unsigned long long)v[9], (unsigned long long)v[10],
		cli_format_size(v[13], s, sizeof(s)), cli_format_size(v[14], f, sizeof(f)),
		cli_format_size(v[15], k, sizeof(k)), (unsigned long long)v[16],
		(unsigned long long)v[17], ps.live, u);
}

/*
 * Port 0: the first socket gets a port from the kernel and the others take
 * the same one.  The address as bound goes into the "serving" line, which
 * is how a caller learns the port.
 */
static void learn_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN];
	struct addr *a = &serve_cfg.listen;

	if (a->family == AF_UNIX || getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		((struct sockaddr_in *)&a->sa)->sin_port = in->sin_port;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(a->text, sizeof(a->text), "%s:%u", host, ntohs(in->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		((struct sockaddr_in6 *)&a->sa)->sin6_port = in6->sin6_port;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(a->text, sizeof(a->text), "[%s]:%u", host, ntohs(in6->sin6_port));
	}
}

static int start_workers(void)
{
	bool reuseport = serve_cfg.listen.family != AF_UNIX && serve_cfg.workers > 1;
	int shared = -1;

	workers = calloc(serve_cfg.workers, sizeof(*workers));
	if (!workers)
		return -ENOMEM;
	for (unsigned i = 0; i < serve_cfg.workers; i++) {
		int fd, r;

		/* TCP: a socket per worker; the kernel spreads connections. */
		if (reuseport || shared < 0) {
			fd = addr_listen(&serve_cfg.listen, reuseport, 4096);
			if (fd < 0)
				return fd;
			if (i == 0)
				learn_port(fd);
			if (!reuseport)
				shared = fd;
		} else {
			/* A unix socket path cannot be shared that way: one
			 * socket, accepted from by every worker. */
			fd = dup(shared);
			if (fd < 0)
				return -errno;
		}
		r = worker_start(&workers[i], i, fd);
		if (r < 0)
			return r;
	}
	for (unsigned i = 0; i < serve_cfg.workers; i++) {
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
	log_msg(LOG_INFO, SERVE_CMD, "stopping: no new connections; answers in flight "
		"get %d s to finish", serve_cfg.grace_ms / 1000);
}

static int run_serve(void)
{
	sigset_t sigs;
	int r;

	/* A client that leaves mid-answer is an EPIPE, never a signal. */
	signal(SIGPIPE, SIG_IGN);
	cli_raise_fd_limit();
	/* Room for a pipe per connection with a large body in flight; past
	 * it, bodies are copied. */
	zcio_pool_set_max(serve_cfg.max_conns > 256 ? serve_cfg.max_conns : 256);
	mime_load(NULL);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGUSR1);
	/* Workers inherit the mask: signals are taken here only. */
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if (serve_uring_wanted) {
		const char *why = "";
		bool unavailable = false;

		r = serve_uring_probe(&why, &unavailable);
		if (r < 0 && !unavailable) {
			log_msg(LOG_ERROR, SERVE_CMD, "--uring: %s: %s", why, strerror(-r));
			return CLI_ERROR;
		}
		if (r < 0) {
			/* ENOSYS, EPERM, an old kernel (see the probe): the
			 * epoll path sends every body, as without --uring. */
			log_msg(LOG_WARN, SERVE_CMD, "--uring: %s (%s); using epoll", why,
				strerror(-r));
			serve_uring_wanted = false;
		}
	}
	r = start_workers();
	if (r < 0) {
		log_msg(LOG_ERROR, SERVE_CMD, "listen on %s: %s", serve_cfg.listen.text, strerror(-r));
		return CLI_ERROR;
	}
	log_msg(LOG_INFO, SERVE_CMD, "serving %s on http://%s/ with %u worker%s, bodies via %s",
		serve_cfg.dir, serve_cfg.listen.text, serve_cfg.workers,
		serve_cfg.workers == 1 ? "" : "s",
		serve_uring_wanted ? "io_uring splice" :
		serve_cfg.send == SEND_PIPE ? "pipe" : "sendfile");
	{
		struct supervisor sup = {
			.nworkers = serve_cfg.workers,
			.loop_of = worker_loop,
			.announce_stop = announce_stop,
			.print_stats = print_stats,
			.stopping = &serve_stopping,
			.forcing = &serve_forcing,
			.grace_ms = serve_cfg.grace_ms,
			.stats_interval_s = serve_cfg.stats ? serve_cfg.stats_interval_s : 0,
		};

		supervise(&sup, &sigs);
	}
	for (unsigned i = 0; i < serve_cfg.workers; i++)
		pthread_join(workers[i].thread, NULL);
	if (serve_cfg.stats)
		print_stats();
	if (serve_cfg.listen.family == AF_UNIX)
		unlink(((struct sockaddr_un *)&serve_cfg.listen.sa)->sun_path);
	return CLI_OK;
}

enum {
	OPT_LISTEN, OPT_WORKERS, OPT_SEND, OPT_LIST, OPT_DOTFILES, OPT_FOLLOW, OPT_ACCESS_LOG,
	OPT_QUIET, OPT_MAX_CONNS, OPT_HEADER_TIMEOUT, OPT_KEEPALIVE_TIMEOUT,
	OPT_SEND_TIMEOUT, OPT_MAX_LINE, OPT_MAX_HEAD, OPT_MAX_HEADERS, OPT_MAX_BODY, OPT_CACHE,
	OPT_CACHE_VALID, OPT_PIPE_SIZE, OPT_GRACE, OPT_STATS, OPT_URING,
};

static const struct cli_option serve_options[] = {
	[OPT_LISTEN] = { "-l", "--listen", "ADDR",
			 "address to listen on: HOST:PORT, [IPV6]:PORT, :PORT or unix:PATH; port 0 "
			 "picks a free one (default 127.0.0.1:8080)" },
	[OPT_WORKERS] = { NULL, "--workers", "N",
			  "worker threads, each with its own event loop and listening socket "
			  "(default: the number of CPUs)" },
	[OPT_SEND] = { NULL, "--send", "pipe|sendfile",
		       "how bodies above 16 KiB travel: the header sent with MSG_MORE and "
		       "the file sendfile()d, or the header written into a pipe and the file "
		       "spliced behind it (default sendfile: a syscall fewer per body, and "
		       "faster on loopback)" },
	[OPT_LIST] = { NULL, "--list", NULL,
		       "list directories that have no index.html (default: 403)" },
	[OPT_DOTFILES] = { NULL, "--dotfiles", NULL,
			   "serve and list names starting with '.' (default: 404)" },
	[OPT_FOLLOW] = { NULL, "--follow-symlinks", NULL,
			 "follow symlinks wherever they lead (default: only to files inside DIR)" },
	[OPT_ACCESS_LOG] = { NULL, "--access-log", "FILE",
			     "append the access log (Common Log Format) to FILE instead of "
			     "standard output" },
	[OPT_QUIET] = { "-q", "--quiet", NULL, "no access log" },
	[OPT_MAX_CONNS] = { NULL, "--max-conns", "N",
			    "at most N connections at once; past it the connection idle the longest "
			    "is closed to make room (default 10000)" },
	[OPT_HEADER_TIMEOUT] = { NULL, "--header-timeout", "SECONDS",
				 "a request head must arrive within this long of its first byte, "
				 "or of connecting for the first request, else 408 and close "
				 "(default 10)" },
	[OPT_KEEPALIVE_TIMEOUT] = { NULL, "--keepalive-timeout", "SECONDS",
				    "close a connection idle between requests for this long "
				    "(default 15)" },
	[OPT_SEND_TIMEOUT] = { NULL, "--send-timeout", "SECONDS",
			       "close a connection whose client takes no byte for this long "
			       "(default 60)" },
	[OPT_MAX_LINE] = { NULL, "--max-request-line", "BYTES",
			   "longest request line; longer is 414 (default 8k)" },
	[OPT_MAX_HEAD] = { NULL, "--max-header-size", "BYTES",
			   "largest request head, request line included; larger is 431 "
			   "(default 16k)" },
	[OPT_MAX_HEADERS] = { NULL, "--max-headers", "N",
			      "most header fields in a request; more is 431 (default 100)" },
	[OPT_MAX_BODY] = { NULL, "--max-body", "BYTES",
			   "request bodies (which are read and ignored) up to this size; larger "
			   "is 413 (default 1M)" },
	[OPT_CACHE] = { NULL, "--cache", "N",
			"open files each worker keeps (fd, stat, validators, and the content of "
			"files up to 16 KiB); 0 opens every file per request (default 1000)" },
	[OPT_CACHE_VALID] = { NULL, "--cache-valid", "SECONDS",
			      "trust a cached file this long before checking it again (default 1)" },
	[OPT_PIPE_SIZE] = { NULL, "--pipe-size", "BYTES",
			    "capacity of the pipe a large body goes through (default 1M, at most "
			    "pipe-max-size)" },
	[OPT_GRACE] = { NULL, "--grace", "SECONDS",
			"on SIGINT or SIGTERM, stop accepting and give answers in flight this long "
			"(default 10); a second signal stops at once" },
	[OPT_STATS] = { NULL, "--stats", "[=SECONDS]",
			"print connections, requests by status class, bytes sent by path, cache "
			"hits and pipes in use every SECONDS (default: only on SIGUSR1) and at exit" },
	[OPT_URING] = { NULL, "--uring", NULL,
			"send bodies above 16 KiB with io_uring: the header written into a pipe, "
			"the file spliced behind it and the pipe spliced to the socket, by each "
			"worker's ring (requests stay on epoll); where io_uring or its splice is "
			"unavailable, warn and use --send" },
	{ NULL, NULL, NULL, NULL },
};

static int parse_count(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_bytes(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	return cli_parse_size(s, out) < 0 || *out < lo || *out > hi ? -EINVAL : 0;
}

static int serve_main(int argc, char **argv)
{
	const struct cli_command *cmd = &cli_serve;
	const char *listen = "127.0.0.1:8080", *access_log = NULL, *why = NULL;
	bool quiet = false;
	struct cli_args args;
	struct stat st;
	uint64_t size;
	long n;
	int opt, ms;

	serve_cfg = (struct serve_config){
		.workers = (unsigned)sysconf(_SC_NPROCESSORS_ONLN),
		.max_conns = 10000,
		.header_timeout_ms = 10000,
		.keepalive_timeout_ms = 15000,
		.send_timeout_ms = 60000,
		.grace_ms = 10000,
		.limits = { .max_line = 8192, .max_head = 16384, .max_headers = 100 },
		.max_body = 1 << 20,
		.send = SEND_SENDFILE,
		.cache_entries = 1000,
		.cache_valid_ms = 1000,
		.small_max = ZCIO_DEFAULT_THRESHOLD,
		.log_fd = STDOUT_FILENO,
	};
	serve_uring_wanted = false;
	if (serve_cfg.workers < 1)
		serve_cfg.workers = 1;
	cli_args_init(&args, cmd, argc, argv);
	while ((opt = cli_args_next(&args)) >= 0) {
		const char *a = args.optarg;

		switch (opt) {
		case OPT_LISTEN:
			listen = a;
			break;
		case OPT_WORKERS:
			if (parse_count(a, 1, 1024, &n) < 0)
				return cli_usage_error(cmd, "bad worker count: %s", a);
			serve_cfg.workers = (unsigned)n;
			break;
		case OPT_SEND:
			if (strcmp(a, "pipe") == 0)
				serve_cfg.send = SEND_PIPE;
			else if (strcmp(a, "sendfile") == 0)
				serve_cfg.send = SEND_SENDFILE;
			else
				return cli_usage_error(cmd, "--send takes pipe or sendfile, not '%s'", a);
			break;
		case OPT_LIST:
			serve_cfg.list = true;
			break;
		case OPT_DOTFILES:
			serve_cfg.dotfiles = true;
			break;
		case OPT_FOLLOW:
			serve_cfg.follow_symlinks = true;
			break;
		case OPT_ACCESS_LOG:
			access_log = a;
			break;
		case OPT_QUIET:
			quiet = true;
			break;
		case OPT_MAX_CONNS:
			if (parse_count(a, 1, 10000000, &n) < 0)
				return cli_usage_error(cmd, "bad connection limit: %s", a);
			serve_cfg.max_conns = (unsigned)n;
			break;
		case OPT_HEADER_TIMEOUT:
		case OPT_KEEPALIVE_TIMEOUT:
		case OPT_SEND_TIMEOUT:
		case OPT_GRACE:
		case OPT_CACHE_VALID:
			if (cli_parse_seconds(a, &ms) < 0 || (ms == 0 && opt != OPT_GRACE &&
							  opt != OPT_CACHE_VALID))
				return cli_usage_error(cmd, "bad time: %s", a);
			if (opt == OPT_HEADER_TIMEOUT)
				serve_cfg.header_timeout_ms = ms;
			else if (opt == OPT_KEEPALIVE_TIMEOUT)
				serve_cfg.keepalive_timeout_ms = ms;
			else if (opt == OPT_SEND_TIMEOUT)
				serve_cfg.send_timeout_ms = ms;
			else if (opt == OPT_GRACE)
				serve_cfg.grace_ms = ms;
			else
				serve_cfg.cache_valid_ms = ms;
			break;
		case OPT_MAX_LINE:
			if (parse_bytes(a, 64, 1 << 20, &size) < 0)
				return cli_usage_error(cmd, "bad request line limit: %s", a);
			serve_cfg.limits.max_line = (uint32_t)size;
			break;
		case OPT_MAX_HEAD:
			if (parse_bytes(a, 256, 1 << 20, &size) < 0)
				return cli_usage_error(cmd, "bad header size limit: %s", a);
			serve_cfg.limits.max_head = (uint32_t)size;
			break;
		case OPT_MAX_HEADERS:
			if (parse_count(a, 1, 10000, &n) < 0)
				return cli_usage_error(cmd, "bad header count: %s", a);
			serve_cfg.limits.max_headers = (uint32_t)n;
			break;
		case OPT_MAX_BODY:
			if (parse_bytes(a, 0, UINT64_MAX, &size) < 0)
				return cli_usage_error(cmd, "bad body size: %s", a);
			serve_cfg.max_body = size;
			break;
		case OPT_CACHE:
			if (parse_count(a, 0, 1000000, &n) < 0)
				return cli_usage_error(cmd, "bad cache size: %s", a);
			serve_cfg.cache_entries = (unsigned)n;
			break;
		case OPT_PIPE_SIZE:
			if (parse_bytes(a, 4096, 1u << 30, &size) < 0)
				return cli_usage_error(cmd, "bad pipe size: %s", a);
			serve_cfg.pipe_size = (uint32_t)size;
			break;
		case OPT_URING:
			serve_uring_wanted = true;
			break;
		case OPT_STATS:
			serve_cfg.stats = true;
			if (a) {
				if (parse_count(a, 1, 86400, &n) < 0)
					return cli_usage_error(cmd, "bad interval: %s", a);
				serve_cfg.stats_interval_s = (int)n;
			}
			break;
		}
	}
	if (args.noperands > 1)
		return cli_usage_error(cmd, "expected at most one directory");
	serve_cfg.dir = args.noperands ? args.operands[0] : ".";
	if (serve_cfg.limits.max_line > serve_cfg.limits.max_head)
		serve_cfg.limits.max_line = serve_cfg.limits.max_head;
	if (addr_parse(listen, &serve_cfg.listen, &why) < 0)
		return cli_usage_error(cmd, "%s: %s", listen, why);
	serve_cfg.root_fd = open(serve_cfg.dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (serve_cfg.root_fd < 0 || fstat(serve_cfg.root_fd, &st) != 0) {
		cli_error(cmd->name, "%s: %s", serve_cfg.dir, strerror(errno));
		return CLI_ERROR;
	}
	if (quiet) {
		serve_cfg.log_fd = -1;
	} else if (access_log) {
		serve_cfg.log_fd = open(access_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (serve_cfg.log_fd < 0) {
			cli_error(cmd->name, "%s: %s", access_log, strerror(errno));
			return CLI_ERROR;
		}
	}
	return run_serve();
}

const struct cli_command cli_serve = {
	.name = "serve",
	.synopsis = "[OPTION]... [DIR]",
	.summary = "serve the files under a directory over HTTP/1.1",
	.description =
		"Serve the files under DIR (default: the current directory) to HTTP/1.0 and\n"
		"HTTP/1.1 clients: GET and HEAD, keep-alive and pipelining, single byte\n"
		"ranges, If-None-Match, If-Modified-Since and If-Range, with strong ETags,\n"
		"Last-Modified and Content-Type from /etc/mime.types (or a built-in table).\n"
		"A directory is answered with its index.html, or listed with --list; a\n"
		"directory asked for without its trailing slash is redirected (301).\n"
		"\n"
		"Bodies up to 16 KiB leave with their header in one writev(), from an\n"
		"open-file cache that keeps each worker's hot files open with their\n"
		"content, checked again at most every second (--cache-valid).  Larger ones\n"
		"travel through a zcio link without being copied to user memory: the\n"
		"header sent and the file passed to sendfile(), or the header written into\n"
		"a pipe and the file spliced behind it (--send=pipe).  With --uring, each\n"
		"worker's io_uring moves them instead (the header written into a pipe, the\n"
		"file spliced into it and the pipe spliced to the socket), while requests,\n"
		"timeouts and the log stay on its epoll loop.\n"
		"\n"
		"Files are sent by reference: bytes are read from the page cache when they\n"
		"leave, so a file rewritten while it is being sent may deliver some new\n"
		"bytes within the length announced.  A file truncated while it is being\n"
		"sent ends the connection before the announced length: the client sees a\n"
		"short body, never padding and never a hang.\n"
		"\n"
		"Nothing outside DIR is served: the path is percent-decoded once and then\n"
		"checked, so '..' segments (however encoded), NUL bytes, backslashes and\n"
		"malformed UTF-8 are refused (400); symlinks may lead anywhere inside DIR\n"
		"but not out of it (openat2 RESOLVE_BENEATH; on kernels before 5.6 every\n"
		"symlink is refused), unless --follow-symlinks; names starting with '.' are\n"
		"hidden unless --dotfiles.  A file the server's user cannot open is 403.\n"
		"\n"
		"Requests are parsed strictly: a request line or head over its limit is\n"
		"414 or 431, an HTTP/1.1 request without Host, whitespace before a colon,\n"
		"line folding, bare CR or a duplicate Content-Length is 400, and\n"
		"Transfer-Encoding is refused (400 with Content-Length, else 501), each\n"
		"closing the connection.  A head that does not arrive within\n"
		"--header-timeout is answered 408.  Access log lines (Common Log Format) are\n"
		"buffered per worker and written in batches.  SIGUSR1 prints the\n"
		"statistics line; SIGINT or SIGTERM stop accepting and let answers in\n"
		"flight finish within the grace period.",
	.options = serve_options,
	.examples =
		"zcio serve --listen 127.0.0.1:8000 /var/www\n"
		"zcio serve --list --dotfiles .\n"
		"zcio serve --workers 2 --quiet --send=sendfile --listen :8080 site/",
	.run = serve_main,
};
