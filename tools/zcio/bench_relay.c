/*
 * bench_relay.c - the relay scenarios: zcio relay against socat, HAProxy
 * (with and without splice) and a direct connection, all forwarding
 * loopback TCP from clients to one backend.
 *
 *   relay-stream       one stream (--size, default 4 GiB) backend -> relay
 *                      -> client: throughput, and the relay's own CPU per GiB
 *   relay-many.bulk    256 connections at once, 16 MiB each
 *   relay-many.rr      64 connections asking 1 KiB for 64 KiB, for
 *                      --duration seconds: req/s, p50 and p99 latency
 *   relay-idle         5,000 connections through the relay, each after one
 *                      small exchange, then idle: RSS and pipes held
 *
 * The backend and the clients are build/bench/loadgen (bench/loadgen.c):
 * the backend sends every reply with sendfile() from the page-cached
 * pattern file, the clients drop what they receive with recv(MSG_TRUNC),
 * so neither end copies and the relay is what is measured; the `direct`
 * row (clients straight to the backend) is the limit of that plumbing.
 * Every relay runs with one worker (socat: one process per connection).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"

#define RELAY_MANY_CONNS 256
#define RELAY_MANY_BYTES (16ull << 20)
#define RELAY_RR_CONNS 64
#define RELAY_RR_REQ 1024
#define RELAY_RR_REPLY 65536
#define RELAY_IDLE_CONNS 5000
#define RELAY_IDLE_REPLY 1024

enum relay_mode { RELAY_BULK, RELAY_RR, RELAY_IDLE };

struct relay_case {
	enum relay_mode mode;
	unsigned conns;
	uint64_t per_conn;     /* bulk: reply bytes per connection */
};

/* HAProxy in TCP mode, one thread, pipes of 1 MiB, splicing both ways;
 * maxconn leaves room for relay-idle's 5,000 connections within the fd
 * limit haproxy then asks for (about 2 x maxconn + pipes). */
static const char haproxy_conf[] =
	"global\n"
	"\tnbthread 1\n"
	"\tmaxconn 6000\n"
	"\ttune.pipesize 1048576\n"
	"defaults\n"
	"\tmode tcp\n"
	"\ttimeout connect 10s\n"
	"\ttimeout client 1h\n"
	"\ttimeout server 1h\n"
	"\toption splice-request\n"
	"\toption splice-response\n"
	"listen relay\n"
	"\tbind 127.0.0.1:@PORT@\n"
	"\tserver backend 127.0.0.1:@TARGET@\n";
static const char haproxy_conf_nosplice[] =
	"global\n"
	"\tnbthread 1\n"
	"\tmaxconn 6000\n"
	"defaults\n"
	"\tmode tcp\n"
	"\ttimeout connect 10s\n"
	"\ttimeout client 1h\n"
	"\ttimeout server 1h\n"
	"listen relay\n"
	"\tbind 127.0.0.1:@PORT@\n"
	"\tserver backend 127.0.0.1:@TARGET@\n";

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) ? -errno : 0;
}

/* argv with its placeholders replaced, behind strace when tracing. */
static char **server_argv(struct bench_tool *t, struct bench_config *cfg, int port, int target,
			  const char *conf, const char *trace)
{
	unsigned n = 0, k = 0;
	char **v;

	while (t->argv[n])
		n++;
	v = calloc(n + 10, sizeof(*v));
	if (!v)
		return NULL;
	if (trace) {
		v[k++] = strdup(cfg->strace);
		v[k++] = strdup("-f");
		v[k++] = strdup("-c");
		v[k++] = strdup("-S");
		v[k++] = strdup("calls");
		v[k++] = strdup("-o");
		v[k++] = strdup(trace);
		v[k++] = strdup("--");
	}
	for (unsigned i = 0; i < n; i++)
		v[k++] = bench_expand(t->argv[i], port, target, conf, cfg);
	return v;
}

static void argv_free(char **v)
{
	if (!v)
		return;
	for (char **a = v; *a; a++)
		free(*a);
	free(v);
}

int bench_tool_server_start(struct bench_case *c, struct bench_config *cfg, struct bench_tool *t,
			    struct bench_svc *s, int in_fd, int port, int target, bool trace)
{
	char conf[4200], tracepath[4200], line[300];
	char **argv;
	int r;

	snprintf(conf, sizeof(conf), "%s/server.conf", cfg->dir);
	snprintf(tracepath, sizeof(tracepath), "%s/strace.txt", cfg->dir);
	snprintf(s->errpath, sizeof(s->errpath), "%s/server.out", cfg->dir);
	if (t->conf) {
		char *text = bench_expand(t->conf, port, target, conf, cfg);

		r = text ? write_file(conf, text) : -ENOMEM;
		free(text);
		if (r < 0) {
			bench_tool_fail(t, c, "%s: %s", conf, strerror(-r));
			return -1;
		}
	}
	trace = trace && cfg->strace;
	if (trace)
		unlink(tracepath);
	argv = server_argv(t, cfg, port, target, conf, trace ? tracepath : NULL);
	if (!argv) {
		bench_tool_fail(t, c, "out of memory");
		return -1;
	}
	r = bench_svc_start(s, argv, in_fd, port, NULL, 20);
	argv_free(argv);
	if (r < 0) {
		bench_last_line(s->errpath, line, sizeof(line));
		bench_tool_fail(t, c, "server %s: %s", r == -ECHILD ? "exited at start" :
				r == -EINTR ? "interrupted" : "not listening after 20 s", line);
		bench_svc_stop(s, SIGKILL, 0, 5);
		return -1;
	}
	return 0;
}

int bench_tool_server_stop(struct bench_config *cfg, struct bench_tool *t, struct bench_svc *s,
			   bool trace, double wait_exit)
{
	char tracepath[4200];
	int r;

	trace = trace && cfg->strace;
	if (!trace)
		bench_svc_settle(s, 0, 2.0);
	/* strace takes its time to detach from thousands of processes, and
	 * is not timed: a traced server that has to be killed is no fault. */
	r = bench_svc_stop(s, 0, wait_exit, trace ? 60 : 15);
	if (trace) {
		r = 0;
		snprintf(tracepath, sizeof(tracepath), "%s/strace.txt", cfg->dir);
		bench_parse_strace(tracepath, t);
	}
	return r;
}

static void run_clear(struct bench_run *run)
{
	memset(run, 0, sizeof(*run));
	run->bytes = -1;
	run->rps = run->p50_us = run->p99_us = NAN;
	run->rss = run->pss = run->rss_start = run->pipes = run->fds = NAN;
}

static void sleep_ms(unsigned ms)
{
	usleep(ms * 1000u);
}

static int relay_run(struct bench_case *c, struct bench_config *cfg, struct bench_tool *t,
		     bool verify, struct bench_run *run)
{
	const struct relay_case *rc = c->priv;
	struct bench_svc backend = { 0 }, relay = { 0 }, idle = { 0 };
	char bport_s[16], rport_s[16], n_s[16], bytes_s[32], dur_s[32], req_s[16], reply_s[16];
	char outpath[4200], readypath[4200], line[300], *text = NULL;
	char *bargv[] = { cfg->loadgen, "server", bport_s, bench_pattern.path, NULL };
	char *cargv[20];
	struct bench_mem mem;
	int bport, rport, out = -1, k = 0, ret = -1;
	bool trace;
	double secs;

	run_clear(run);
	bport = bench_free_port();
	rport = t->direct ? bport : bench_free_port();
	if (bport < 0 || rport < 0) {
		bench_tool_fail(t, c, "no free port");
		return -1;
	}
	snprintf(bport_s, sizeof(bport_s), "%d", bport);
	snprintf(rport_s, sizeof(rport_s), "%d", rport);
	snprintf(backend.errpath, sizeof(backend.errpath), "%s/backend.out", cfg->dir);
	snprintf(outpath, sizeof(outpath), "%s/client.out", cfg->dir);
	snprintf(readypath, sizeof(readypath), "%s/client.ready", cfg->dir);
	unlink(readypath);

	if (bench_svc_start(&backend, bargv, -1, bport, NULL, 10) < 0) {
		bench_first_line(backend.errpath, line, sizeof(line));
		bench_tool_fail(t, c, "backend (loadgen server) did not start: %s", line);
		goto out;
	}
	/* Idle connections: what matters is memory, not syscalls, and strace
	 * following socat's 5,000 processes would take minutes. */
	trace = verify && rc->mode != RELAY_IDLE;
	if (!t->direct &&
	    bench_tool_server_start(c, cfg, t, &relay, -1, rport, bport, trace) < 0)
		goto out;

	/* The client's command line. */
	snprintf(n_s, sizeof(n_s), "%u", rc->conns);
	cargv[k++] = cfg->loadgen;
	cargv[k++] = rc->mode == RELAY_BULK ? "bulk" : rc->mode == RELAY_RR ? "rr" : "idle";
	cargv[k++] = "-n";
	cargv[k++] = n_s;
	if (rc->mode == RELAY_BULK) {
		snprintf(bytes_s, sizeof(bytes_s), "%" PRIu64, rc->per_conn);
		cargv[k++] = "--bytes";
		cargv[k++] = bytes_s;
	} else {
		snprintf(req_s, sizeof(req_s), "%u", RELAY_RR_REQ);
		snprintf(reply_s, sizeof(reply_s), "%u",
			 rc->mode == RELAY_RR ? RELAY_RR_REPLY : RELAY_IDLE_REPLY);
		cargv[k++] = "--req";
		cargv[k++] = req_s;
		cargv[k++] = "--reply";
		cargv[k++] = reply_s;
	}
	if (rc->mode == RELAY_RR) {
		snprintf(dur_s, sizeof(dur_s), "%g", c->duration);
		cargv[k++] = "--duration";
		cargv[k++] = dur_s;
	}
	if (rc->mode == RELAY_IDLE) {
		cargv[k++] = "--ready";
		cargv[k++] = readypath;
	}
	if (verify) {
		cargv[k++] = "--verify";
		cargv[k++] = bench_pattern.path;
	}
	cargv[k++] = rport_s;
	cargv[k] = NULL;

	if (rc->mode == RELAY_IDLE) {
		double t0 = bench_now();

		if (!t->direct && bench_tree_mem(relay.pid, &mem) == 0) {
			run->rss_start = mem.rss;
			run->pipes = -(double)mem.pipes; /* the baseline, added below */
		}
		snprintf(idle.errpath, sizeof(idle.errpath), "%s", outpath);
		if (bench_svc_start(&idle, cargv, -1, 0, readypath, 120) < 0) {
			bench_first_line(outpath, line, sizeof(line));
			bench_tool_fail(t, c, "idle clients not all connected within 120 s: %s", line);
			bench_svc_stop(&idle, SIGTERM, 0, 5);
			goto out;
		}
		run->seconds = bench_now() - t0;
		/* Let the relay finish with its last exchanges and go idle. */
		sleep_ms(500);
		if (!t->direct && bench_tree_mem(relay.pid, &mem) == 0) {
			run->rss = mem.rss;
			run->pss = mem.pss;
			run->pipes += mem.pipes;
			run->fds = mem.fds;
		}
		bench_svc_stop(&idle, SIGTERM, 0, 10);
		run->cpu[BENCH_SINK] = idle.cpu;
		text = bench_slurp(outpath, 64 * 1024);
		if (!WIFEXITED(idle.status) || WEXITSTATUS(idle.status) != 0) {
			bench_tool_fail(t, c, "idle clients failed: %s", text ? text : "");
			goto out;
		}
		run->bytes = (int64_t)rc->conns * (RELAY_RR_REQ + RELAY_IDLE_REPLY);
	} else {
		struct bench_proc p = { .role = BENCH_SINK, .argv = cargv, .fd = { -1, -1, -1 } };
		unsigned timeout = 60 + (unsigned)(c->bytes / (20u << 20)) + (unsigned)c->duration;

		out = open(outpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (out < 0) {
			bench_tool_fail(t, c, "%s: %s", outpath, strerror(errno));
			goto out;
		}
		p.fd[1] = p.fd[2] = out;
		if (verify)
			timeout *= 4;
		k = bench_procs_run(&p, 1, &out, 1, timeout, &secs);
		if (k < 0) {
			bench_tool_fail(t, c, "clients: %s", k == -ETIMEDOUT ? "timed out, killed" :
					k == -EINTR ? "interrupted" : strerror(-k));
			goto out;
		}
		run->cpu[BENCH_SINK] = bench_proc_cpu(&p);
		text = bench_slurp(outpath, 64 * 1024);
		if (!bench_proc_ok(&p)) {
			char why[100];

			bench_tool_fail(t, c, "clients %s: %s", bench_proc_status(&p, why, sizeof(why)),
					text ? text : "");
			goto out;
		}
		run->seconds = bench_kv(text, "seconds");
		run->bytes = (int64_t)bench_kv(text, "bytes");
		if (rc->mode == RELAY_BULK && (uint64_t)run->bytes != c->bytes) {
			bench_tool_fail(t, c, "clients received %" PRId64 " bytes, expected %" PRIu64,
					run->bytes, c->bytes);
			goto out;
		}
		if (rc->mode == RELAY_RR) {
			run->requests = (uint64_t)bench_kv(text, "requests");
			run->rps = bench_kv(text, "rps");
			run->p50_us = bench_kv(text, "p50_us");
			run->p99_us = bench_kv(text, "p99_us");
			if (run->bytes != (int64_t)(run->requests * RELAY_RR_REPLY)) {
				bench_tool_fail(t, c, "%" PRIu64 " replies but %" PRId64 " bytes",
						run->requests, run->bytes);
				goto out;
			}
		}
		if (!(run->seconds > 0)) {
			bench_tool_fail(t, c, "clients said nothing usable: %s", text ? text : "");
			goto out;
		}
	}
	if (!t->direct) {
		if (bench_tool_server_stop(cfg, t, &relay, trace, 0) < 0) {
			bench_tool_fail(t, c, "relay did not stop within 15 s of SIGTERM");
			goto out;
		}
		run->cpu[BENCH_TOOL] = relay.cpu;
	}
	bench_svc_stop(&backend, 0, 0, 5);
	run->cpu[BENCH_SOURCE] = backend.cpu;
	for (int i = 0; i < BENCH_ROLES; i++)
		run->cpu_total += run->cpu[i];
	if (verify)
		t->checksum_ok = 1; /* the clients compared every byte (--verify) */
	ret = 0;
out:
	if (relay.pid)
		bench_svc_stop(&relay, SIGKILL, 0, 5);
	if (backend.pid)
		bench_svc_stop(&backend, SIGKILL, 0, 5);
	free(text);
	return ret;
}

/* ---- the peers ---- */

static char peer_socat[4096], peer_haproxy[4096];

static void relay_tools(struct bench_case *c, struct bench_config *cfg, bool with_direct)
{
	static bool looked, uring;
	char *socat[] = { peer_socat, "-b", "65536",
			  "TCP-LISTEN:@PORT@,bind=127.0.0.1,fork,reuseaddr,backlog=4096",
			  "TCP:127.0.0.1:@TARGET@", NULL };
	char *haproxy[] = { peer_haproxy, "-db", "-f", "@CONF@", NULL };
	char *zcopy[] = { cfg->zcio, "relay", "--workers", "1", "--copy", "--quiet",
			  "127.0.0.1:@PORT@", "127.0.0.1:@TARGET@", NULL };
	char *zrelay[] = { cfg->zcio, "relay", "--workers", "1", "--quiet",
			   "127.0.0.1:@PORT@", "127.0.0.1:@TARGET@", NULL };
	char *zuring[] = { cfg->zcio, "relay", "--workers", "1", "--uring", "--quiet",
			   "127.0.0.1:@PORT@", "127.0.0.1:@TARGET@", NULL };
	char *direct[] = { "(no relay: clients connect to the backend)", NULL };
	struct bench_tool *t;
	bool have_socat = bench_which("socat", peer_socat, sizeof(peer_socat)) == 0;
	bool have_haproxy = bench_which("haproxy", peer_haproxy, sizeof(peer_haproxy)) == 0;

	if (!looked) {
		looked = true;
		uring = bench_zcio_has_option(cfg, "relay", "--uring");
	}
	if (have_socat)
		bench_case_add(c, "socat", BENCH_PARSE_NONE, false, socat);
	else
		bench_case_skip(c, "socat", "socat not installed (Debian package socat)");
	if (have_haproxy) {
		t = bench_case_add(c, "haproxy", BENCH_PARSE_NONE, false, haproxy);
		if (t)
			t->conf = haproxy_conf;
		t = bench_case_add(c, "haproxy nosplice", BENCH_PARSE_NONE, false, haproxy);
		if (t)
			t->conf = haproxy_conf_nosplice;
	} else {
		bench_case_skip(c, "haproxy", "haproxy not installed (Debian package haproxy)");
		bench_case_skip(c, "haproxy nosplice", "haproxy not installed (Debian package haproxy)");
	}
	bench_case_add(c, "zcio relay --copy", BENCH_PARSE_NONE, true, zcopy);
	bench_case_add(c, "zcio relay", BENCH_PARSE_NONE, true, zrelay);
	if (uring)
		bench_case_add(c, "zcio relay --uring", BENCH_PARSE_NONE, true, zuring);
	else
		bench_case_skip(c, "zcio relay --uring", "zcio relay --help shows no --uring option");
	if (with_direct) {
		t = bench_case_add(c, "direct", BENCH_PARSE_NONE, false, direct);
		if (t)
			t->direct = true;
	}
}

static int relay_prepare(struct bench_config *cfg)
{
	int r;

	if (!cfg->loadgen[0]) {
		cli_error("bench", "build/bench/loadgen not found beside zcio (make bench-tools)");
		return -ENOENT;
	}
	bench_raise_nofile();
	r = bench_pattern_make(cfg);
	if (r < 0)
		cli_error("bench", "pattern file: %s", strerror(-r));
	return r;
}

static struct bench_case *relay_case_new(struct bench_config *cfg, const char *scenario,
					 const char *id, struct relay_case *rc)
{
	struct bench_case *c = bench_case_new(cfg, scenario, id);

	if (!c)
		return NULL;
	c->runner = relay_run;
	c->priv = rc;
	c->conns = rc->conns;
	c->plumbing = "loadgen clients -> TOOL on 127.0.0.1 -> loadgen server (sendfile from "
		      "the page-cached pattern); clients drop bytes with recv(MSG_TRUNC)";
	return c;
}

int bench_relay_stream(struct bench_config *cfg)
{
	static struct relay_case rc = { .mode = RELAY_BULK, .conns = 1 };
	struct bench_case *c;
	char sz[32];
	int r = relay_prepare(cfg);

	if (r < 0)
		return r;
	rc.per_conn = cfg->stream_size;
	c = relay_case_new(cfg, "relay-stream", "relay-stream", &rc);
	if (!c)
		return -ENOMEM;
	c->bytes = cfg->stream_size;
	snprintf(c->title, sizeof(c->title),
		 "one %s stream, backend -> relay -> client over loopback TCP",
		 cli_format_size(cfg->stream_size, sz, sizeof(sz)));
	relay_tools(c, cfg, true);
	c->main_peer = "socat";
	bench_case_target(c, "zcio relay", "socat", "throughput", 1.5);
	bench_case_target(c, "zcio relay", "haproxy", "throughput", 1.05);
	bench_case_target(c, "zcio relay", "direct", "throughput", 0.85);
	bench_case_target(c, "zcio relay", "socat", "tool_cpu", 0.4);
	bench_case_target(c, "zcio relay --uring", "zcio relay", "throughput", 1.0);
	return bench_run_and_print(c, cfg);
}

int bench_relay_many(struct bench_config *cfg)
{
	static struct relay_case bulk = { .mode = RELAY_BULK, .conns = RELAY_MANY_CONNS };
	static struct relay_case rr = { .mode = RELAY_RR, .conns = RELAY_RR_CONNS };
	struct bench_case *c;
	char sz[32];
	int r = relay_prepare(cfg);

	if (r < 0)
		return r;
	/* 16 MiB each at the default stream size; smaller with --size. */
	bulk.per_conn = cfg->stream_size / RELAY_MANY_CONNS;
	if (bulk.per_conn > RELAY_MANY_BYTES)
		bulk.per_conn = RELAY_MANY_BYTES;
	if (!bulk.per_conn)
		bulk.per_conn = 1;
	c = relay_case_new(cfg, "relay-many", "relay-many.bulk", &bulk);
	if (!c)
		return -ENOMEM;
	c->bytes = bulk.per_conn * RELAY_MANY_CONNS;
	snprintf(c->title, sizeof(c->title),
		 "%u connections at once, %s each, backend -> relay -> clients",
		 RELAY_MANY_CONNS, cli_format_size(bulk.per_conn, sz, sizeof(sz)));
	relay_tools(c, cfg, true);
	c->main_peer = "haproxy";
	r = bench_run_and_print(c, cfg);
	if (r < 0)
		return r;

	c = relay_case_new(cfg, "relay-many", "relay-many.rr", &rr);
	if (!c)
		return -ENOMEM;
	c->kind = BENCH_KIND_RR;
	c->per_run_bytes = true;
	c->duration = cfg->duration;
	snprintf(c->title, sizeof(c->title),
		 "%u connections, each asking %u B for %u KiB in turn, for %g s",
		 RELAY_RR_CONNS, RELAY_RR_REQ, RELAY_RR_REPLY / 1024, cfg->duration);
	relay_tools(c, cfg, true);
	c->main_peer = "haproxy";
	bench_case_target(c, "zcio relay", "haproxy", "rps", 1.0);
	bench_case_target(c, "zcio relay", "haproxy", "p99", 1.1);
	return bench_run_and_print(c, cfg);
}

int bench_relay_idle(struct bench_config *cfg)
{
	static struct relay_case rc = { .mode = RELAY_IDLE, .conns = RELAY_IDLE_CONNS };
	struct bench_case *c;
	int r = relay_prepare(cfg);

	if (r < 0)
		return r;
	c = relay_case_new(cfg, "relay-idle", "relay-idle", &rc);
	if (!c)
		return -ENOMEM;
	c->kind = BENCH_KIND_IDLE;
	c->bytes = (uint64_t)rc.conns * (RELAY_RR_REQ + RELAY_IDLE_REPLY);
	snprintf(c->title, sizeof(c->title),
		 "%u connections through the relay, one 1 KiB exchange each, then idle: "
		 "memory and pipes held", rc.conns);
	relay_tools(c, cfg, false);
	c->main_peer = "haproxy";
	bench_case_target(c, "zcio relay", NULL, "rss_mib", 32);
	/* The worker's pool keeps up to 8 spare pipes while it has any
	 * connection (relay.c); one pipe per idle connection would be 10,000
	 * fds here.  Above 16, idle connections hold pipes. */
	bench_case_target(c, "zcio relay", NULL, "pipes", 16);
	return bench_run_and_print(c, cfg);
}
