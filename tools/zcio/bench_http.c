/*
 * bench_http.c - the serve scenarios: one file of 1 KiB, 64 KiB, 1 MiB or
 * 64 MiB fetched over and over by wrk (2 threads, 64 keep-alive
 * connections, --duration seconds) from zcio serve, nginx and lighttpd,
 * each with 2 workers.
 *
 * Before timing, every server answers one GET of the file from a forked
 * client here, whose body is hashed and compared with the file's hash.
 * In every timed run wrk must report no error of any kind, and at least
 * (requests x file size) bytes read.  wrk's numbers come from a Lua
 * done() hook that prints them exactly (bytes, microseconds).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"

#define SERVE_WORKERS "2"

struct serve_case {
	const char *file;      /* name under $DIR/www */
	uint64_t size;
	uint64_t hash;
};

/* nginx as the issue has it: sendfile, tcp_nopush, no access log, the
 * open file cache, 2 workers; keep-alive connections are never closed
 * for their request count (no server here does), and it runs as root
 * because the scratch directory is private. */
static const char nginx_conf[] =
	"worker_processes " SERVE_WORKERS ";\n"
	"daemon off;\n"
	"master_process on;\n"
	"user root;\n"
	"pid @DIR@/nginx.pid;\n"
	"error_log stderr warn;\n"
	"events { worker_connections 4096; }\n"
	"http {\n"
	"\tsendfile on;\n"
	"\ttcp_nopush on;\n"
	"\taccess_log off;\n"
	"\topen_file_cache max=1000 inactive=60s;\n"
	"\topen_file_cache_valid 60s;\n"
	"\tkeepalive_requests 10000000;\n"
	"\tkeepalive_timeout 60s;\n"
	"\tdefault_type application/octet-stream;\n"
	"\tclient_body_temp_path @DIR@/nginx-body;\n"
	"\tserver {\n"
	"\t\tlisten 127.0.0.1:@PORT@;\n"
	"\t\troot @WWW@;\n"
	"\t}\n"
	"}\n";

/* lighttpd with 2 workers (server.max-worker), its default network
 * backend (sendfile on Linux), no access log (none unless mod_accesslog),
 * and keep-alive connections not closed for their request count. */
static const char lighttpd_conf[] =
	"server.document-root = \"@WWW@\"\n"
	"server.bind = \"127.0.0.1\"\n"
	"server.port = @PORT@\n"
	"server.max-worker = " SERVE_WORKERS "\n"
	"server.max-keep-alive-requests = 10000000\n"
	"server.max-keep-alive-idle = 60\n"
	"server.max-fds = 16384\n"
	"mimetype.assign = ( \"\" => \"application/octet-stream\" )\n";

static const char wrk_lua[] =
	"-- written by zcio bench: exact totals for the harness\n"
	"done = function(summary, latency, requests)\n"
	"\tlocal e = summary.errors\n"
	"\tio.write(string.format(\"zcio-wrk: requests %d bytes %d duration_us %d \" ..\n"
	"\t\t\"sock_errors %d status_errors %d timeouts %d p50_us %d p99_us %d\\n\",\n"
	"\t\tsummary.requests, summary.bytes, summary.duration,\n"
	"\t\te.connect + e.read + e.write, e.status, e.timeout,\n"
	"\t\tlatency:percentile(50), latency:percentile(99)))\n"
	"end\n";

static char peer_nginx[4096], peer_lighttpd[4096], peer_wrk[4096];

struct fetch_arg {
	int port;
	const char *file;
};

/* Forked: GET the file once, HTTP/1.1, Connection: close; hash the body. */
static int fetch(void *arg, struct bench_shared *sh)
{
	const struct fetch_arg *a = arg;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char req[512], *buf = malloc(1u << 20), *body;
	struct bench_hash h;
	size_t have = 0;
	long long clen = -1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), n;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)a->port);
	if (!buf || fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		sh->err = errno ? errno : ENOMEM;
		return 1;
	}
	n = snprintf(req, sizeof(req), "GET /%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		     "Connection: close\r\n\r\n", a->file);
	if (write(fd, req, (size_t)n) != n) {
		sh->err = errno;
		return 1;
	}
	/* The head. */
	for (;;) {
		ssize_t k = read(fd, buf + have, (1u << 20) - 1 - have);

		if (k <= 0) {
			sh->err = k < 0 ? errno : EPROTO;
			return 1;
		}
		have += (size_t)k;
		buf[have] = '\0';
		body = strstr(buf, "\r\n\r\n");
		if (body)
			break;
		if (have >= (1u << 20) - 1) {
			sh->err = EPROTO;
			return 1;
		}
	}
	if (strncmp(buf, "HTTP/1.1 200", 12) && strncmp(buf, "HTTP/1.0 200", 12)) {
		sh->err = EPROTO;
		return 1;
	}
	for (char *p = buf; p < body; p++) {
		if ((p == buf || p[-1] == '\n') && !strncasecmp(p, "content-length:", 15)) {
			clen = strtoll(p + 15, NULL, 10);
			break;
		}
	}
	body += 4;
	bench_hash_init(&h);
	bench_hash_update(&h, body, have - (size_t)(body - buf));
	sh->bytes = have - (size_t)(body - buf);
	for (;;) {
		ssize_t k = read(fd, buf, 1u << 20);

		if (k < 0) {
			sh->err = errno;
			return 1;
		}
		if (k == 0)
			break;
		bench_hash_update(&h, buf, (size_t)k);
		sh->bytes += (uint64_t)k;
	}
	sh->hash = bench_hash_final(&h);
	if (clen < 0 || (uint64_t)clen != sh->bytes) {
		sh->err = EPROTO;
		return 1;
	}
	return 0;
}

static int serve_run(struct bench_case *c, struct bench_config *cfg, struct bench_tool *t,
		     bool verify, struct bench_run *run)
{
	const struct serve_case *sc = c->priv;
	struct bench_svc srv = { 0 };
	char url[256], dur[32], script[4200], outpath[4200], *text = NULL;
	char *wargv[] = { peer_wrk, "-t2", "-c64", "-d", dur, "--timeout", "60s", "-s", script,
			  url, NULL };
	int port = bench_free_port(), out = -1, ret = -1, r;
	double secs;

	memset(run, 0, sizeof(*run));
	run->bytes = -1;
	run->rps = run->p50_us = run->p99_us = NAN;
	run->rss = run->pss = run->rss_start = run->pipes = run->fds = NAN;
	if (port < 0) {
		bench_tool_fail(t, c, "no free port");
		return -1;
	}
	if (bench_tool_server_start(c, cfg, t, &srv, -1, port, 0, verify) < 0)
		return -1;
	snprintf(outpath, sizeof(outpath), "%s/client.out", cfg->dir);
	if (verify) {
		struct fetch_arg a = { .port = port, .file = sc->file };
		struct bench_proc p = { .role = BENCH_SINK, .fn = fetch, .arg = &a,
					.shared = bench_shared_get(BENCH_SINK), .fd = { -1, -1, -1 } };

		memset(p.shared, 0, sizeof(*p.shared));
		r = bench_procs_run(&p, 1, NULL, 0, 120, &secs);
		if (r < 0 || !bench_proc_ok(&p)) {
			bench_tool_fail(t, c, "GET /%s failed: %s", sc->file,
					strerror(p.shared->err ? p.shared->err : EIO));
			goto out;
		}
		t->checksum = p.shared->hash;
		t->checksum_ok = p.shared->hash == sc->hash && p.shared->bytes == sc->size;
		if (!t->checksum_ok) {
			bench_tool_fail(t, c, "GET /%s: %" PRIu64 " bytes, hash %016" PRIx64
					", want %" PRIu64 " bytes, hash %016" PRIx64, sc->file,
					p.shared->bytes, p.shared->hash, sc->size, sc->hash);
			goto out;
		}
		run->seconds = secs;
		run->bytes = (int64_t)sc->size;
	} else {
		struct bench_proc p = { .role = BENCH_SINK, .argv = wargv, .fd = { -1, -1, -1 } };

		snprintf(url, sizeof(url), "http://127.0.0.1:%d/%s", port, sc->file);
		snprintf(dur, sizeof(dur), "%.0fs", c->duration);
		snprintf(script, sizeof(script), "%s/wrk.lua", cfg->dir);
		out = open(outpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (out < 0) {
			bench_tool_fail(t, c, "%s: %s", outpath, strerror(errno));
			goto out;
		}
		p.fd[1] = p.fd[2] = out;
		r = bench_procs_run(&p, 1, &out, 1, (unsigned)c->duration + 120, &secs);
		text = bench_slurp(outpath, 64 * 1024);
		if (r < 0 || !bench_proc_ok(&p)) {
			bench_tool_fail(t, c, "wrk failed: %s", text ? text : "");
			goto out;
		}
		run->cpu[BENCH_SINK] = bench_proc_cpu(&p);
		/* Only the Lua hook's line: wrk's own report has the same words. */
		{
			char *line = strstr(text, "zcio-wrk: ");

			if (!line) {
				bench_tool_fail(t, c, "wrk printed no zcio-wrk line: %s", text);
				goto out;
			}
			memmove(text, line, strlen(line) + 1);
		}
		run->requests = (uint64_t)bench_kv(text, "requests");
		run->bytes = (int64_t)bench_kv(text, "bytes");
		run->seconds = bench_kv(text, "duration_us") * 1e-6;
		run->p50_us = bench_kv(text, "p50_us");
		run->p99_us = bench_kv(text, "p99_us");
		if (!(run->seconds > 0) || !run->requests) {
			bench_tool_fail(t, c, "wrk made no request: %s", text ? text : "");
			goto out;
		}
		run->rps = (double)run->requests / run->seconds;
		if (bench_kv(text, "sock_errors") != 0 || bench_kv(text, "status_errors") != 0 ||
		    bench_kv(text, "timeouts") != 0) {
			bench_tool_fail(t, c, "wrk saw errors: %.*s", (int)strcspn(text, "\n"), text);
			goto out;
		}
		if ((uint64_t)run->bytes < run->requests * sc->size) {
			bench_tool_fail(t, c, "wrk read %" PRId64 " bytes for %" PRIu64
					" responses of %" PRIu64, run->bytes, run->requests, sc->size);
			goto out;
		}
	}
	if (bench_tool_server_stop(cfg, t, &srv, verify, 0) < 0) {
		bench_tool_fail(t, c, "server did not stop within 15 s of SIGTERM");
		goto out;
	}
	run->cpu[BENCH_TOOL] = srv.cpu;
	run->cpu_total = run->cpu[BENCH_TOOL] + run->cpu[BENCH_SINK];
	ret = 0;
out:
	if (srv.pid)
		bench_svc_stop(&srv, SIGKILL, 0, 5);
	free(text);
	return ret;
}

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) ? -errno : 0;
}

static int serve_scenario(struct bench_config *cfg, const char *id, const char *file,
			  uint64_t size, bool big, double rps_target, double mbs_target)
{
	static bool looked, uring;
	struct serve_case *sc = calloc(1, sizeof(*sc));
	char dir[4200], path[4300], sz[32];
	struct bench_case *c;
	struct bench_hash h;
	struct bench_tool *t;
	int r;

	if (!sc)
		return -ENOMEM;
	sc->file = file;
	sc->size = size;
	snprintf(dir, sizeof(dir), "%s/www", cfg->dir);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	r = bench_file_create(path, size, size + 5, true);
	if (r < 0)
		return r;
	bench_hash_init(&h);
	if (bench_file_hash(path, &h) != (int64_t)size)
		return -EIO;
	sc->hash = bench_hash_final(&h);
	snprintf(path, sizeof(path), "%s/wrk.lua", cfg->dir);
	r = write_text(path, wrk_lua);
	if (r < 0)
		return r;
	if (!looked) {
		looked = true;
		uring = bench_zcio_has_option(cfg, "serve", "--uring");
	}

	c = bench_case_new(cfg, id, id);
	if (!c)
		return -ENOMEM;
	c->runner = serve_run;
	c->priv = sc;
	c->kind = BENCH_KIND_RR;
	c->per_run_bytes = true;
	c->duration = cfg->duration < 1 ? 1 : floor(cfg->duration + 0.5);
	c->conns = 64;
	c->plumbing = "wrk -t2 -c64 (keep-alive, one URL) -> SERVER on 127.0.0.1, 2 workers";
	snprintf(c->title, sizeof(c->title),
		 "GET of one %s file by wrk -t2 -c64 for %.0f s; every server with %s workers",
		 cli_format_size(size, sz, sizeof(sz)), c->duration, SERVE_WORKERS);
	if (bench_which("wrk", peer_wrk, sizeof(peer_wrk)) < 0) {
		bench_case_skip(c, "zcio serve", "wrk not installed (Debian package wrk)");
		return bench_run_and_print(c, cfg);
	}
	{
		char *nginx[] = { peer_nginx, "-p", "@DIR@", "-c", "@CONF@", "-e", "stderr", NULL };
		char *lighttpd[] = { peer_lighttpd, "-D", "-f", "@CONF@", NULL };
		char *zs[] = { cfg->zcio, "serve", "--workers", SERVE_WORKERS, "--quiet",
			       "--listen", "127.0.0.1:@PORT@", "@WWW@", NULL };
		char *zpipe[] = { cfg->zcio, "serve", "--workers", SERVE_WORKERS, "--quiet",
				  "--send=pipe", "--listen", "127.0.0.1:@PORT@", "@WWW@", NULL };
		char *zsf[] = { cfg->zcio, "serve", "--workers", SERVE_WORKERS, "--quiet",
				"--send=sendfile", "--listen", "127.0.0.1:@PORT@", "@WWW@", NULL };
		char *zuring[] = { cfg->zcio, "serve", "--workers", SERVE_WORKERS, "--quiet",
				   "--uring", "--listen", "127.0.0.1:@PORT@", "@WWW@", NULL };

		if (bench_which("nginx", peer_nginx, sizeof(peer_nginx)) == 0) {
			t = bench_case_add(c, "nginx", BENCH_PARSE_NONE, false, nginx);
			if (t)
				t->conf = nginx_conf;
		} else {
			bench_case_skip(c, "nginx", "nginx not installed (Debian package nginx-light)");
		}
		if (bench_which("lighttpd", peer_lighttpd, sizeof(peer_lighttpd)) == 0) {
			t = bench_case_add(c, "lighttpd", BENCH_PARSE_NONE, false, lighttpd);
			if (t)
				t->conf = lighttpd_conf;
		} else {
			bench_case_skip(c, "lighttpd", "lighttpd not installed (Debian package lighttpd)");
		}
		bench_case_add(c, "zcio serve", BENCH_PARSE_NONE, true, zs);
		bench_case_add(c, "zcio serve --send=pipe", BENCH_PARSE_NONE, true, zpipe);
		bench_case_add(c, "zcio serve --send=sendfile", BENCH_PARSE_NONE, true, zsf);
		/* --uring is about large bodies: only serve-64m gets the row. */
		if (big && uring)
			bench_case_add(c, "zcio serve --uring", BENCH_PARSE_NONE, true, zuring);
		else if (big)
			bench_case_skip(c, "zcio serve --uring", "zcio serve --help shows no --uring option");
	}
	c->main_peer = "nginx";
	if (rps_target > 0)
		bench_case_target(c, "zcio serve", "nginx", "rps", rps_target);
	if (mbs_target > 0)
		bench_case_target(c, "zcio serve", "nginx", "throughput", mbs_target);
	bench_case_target(c, "zcio serve", "nginx", "p99", 1.0);
	return bench_run_and_print(c, cfg);
}

int bench_serve_1k(struct bench_config *cfg)
{
	return serve_scenario(cfg, "serve-1k", "1k.bin", 1024, false, 1.0, 0);
}

int bench_serve_64k(struct bench_config *cfg)
{
	return serve_scenario(cfg, "serve-64k", "64k.bin", 64 << 10, false, 1.0, 0);
}

int bench_serve_1m(struct bench_config *cfg)
{
	return serve_scenario(cfg, "serve-1m", "1m.bin", 1 << 20, false, 0, 1.1);
}

int bench_serve_64m(struct bench_config *cfg)
{
	return serve_scenario(cfg, "serve-64m", "64m.bin", 64ull << 20, true, 0, 1.1);
}
