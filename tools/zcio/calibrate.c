/*
 * calibrate.c - `zcio calibrate`: measure, on this machine, the transfer
 * size from which each zero-copy mechanism beats copying, and write the
 * thresholds file the library reads (see zcio_threshold(3)).  With
 * --report it also measures send throughput and CPU per message size and
 * method, and receive CPU with and without TCP_ZEROCOPY_RECEIVE, as tables
 * and (--json) one JSON object for the benchmark harness.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "calibrate.h"
#include "cli.h"

enum {
	OPT_NETNS, OPT_QUICK, OPT_REPORT, OPT_JSON, OPT_OUTPUT, OPT_NO_WRITE, OPT_SHOW,
	OPT_ROUTES, OPT_TIME, OPT_REPEAT, OPT_VERBOSE,
};

static const struct cli_option calibrate_options[] = {
	[OPT_NETNS] = { NULL, "--netns", "A:B", "make TCP connections from network namespace A to B (scripts/netns-testbed up makes zcio-a:zcio-b) instead of over loopback" },
	[OPT_QUICK] = { "-q", "--quick", NULL, "fewer sizes and shorter runs (a rough answer in seconds)" },
	[OPT_REPORT] = { "-r", "--report", NULL, "also measure send-sizes and recv and print their tables" },
	[OPT_JSON] = { NULL, "--json", "FILE", "write every measurement as one JSON object to FILE (- for standard output)" },
	[OPT_OUTPUT] = { "-o", "--output", "FILE", "write the thresholds to FILE (- for standard output) instead of the library's file" },
	[OPT_NO_WRITE] = { "-n", "--no-write", NULL, "measure and print, but write no thresholds file" },
	[OPT_SHOW] = { NULL, "--show", NULL, "print the thresholds in effect and where they come from; measure nothing" },
	[OPT_ROUTES] = { NULL, "--routes", "LIST", "measure only these keys (comma-separated, e.g. memory_pipe,memory_socket)" },
	[OPT_TIME] = { NULL, "--time", "SECONDS", "length of one timed run of the crossovers (default 0.04, --quick 0.015); a row of send-sizes, udp-egress or recv lasts 8 times as long" },
	[OPT_REPEAT] = { NULL, "--repeat", "N", "run every row of send-sizes and udp-egress N times, interleaved, and keep the medians (default 3, --quick 1, at most 9)" },
	[OPT_VERBOSE] = { "-v", "--verbose", NULL, "print each measurement as it is made, on standard error" },
	{ NULL, NULL, NULL, NULL },
};

static const char *fmt_size(uint64_t n, char *buf, size_t len)
{
	if (n == ZCIO_THRESHOLD_NEVER)
		snprintf(buf, len, "never");
	else if (n >= (1u << 20) && n % (1u << 20) == 0)
		snprintf(buf, len, "%" PRIu64 "M", n >> 20);
	else if (n >= 1024 && n % 1024 == 0)
		snprintf(buf, len, "%" PRIu64 "k", n >> 10);
	else
		snprintf(buf, len, "%" PRIu64, n);
	return buf;
}

/* The library's thresholds file: $ZCIO_THRESHOLDS, else
 * ~/.config/zcio/thresholds.  false when there is none to write. */
static bool default_path(char *buf, size_t len)
{
	const char *env = getenv("ZCIO_THRESHOLDS"), *home = getenv("HOME");
	int n;

	if (env)
		n = snprintf(buf, len, "%s", env);
	else if (home && home[0])
		n = snprintf(buf, len, "%s/.config/zcio/thresholds", home);
	else
		return false;
	return n > 0 && (size_t)n < len && buf[0];
}

static int mkdirs_for(const char *path)
{
	char dir[4096];
	char *p;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	p = strrchr(dir, '/');
	if (!p || p == dir)
		return 0;
	*p = '\0';
	for (p = dir + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(dir, 0755) != 0 && errno != EEXIST)
				return -errno;
			*p = '/';
		}
	}
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static const struct cal_route *route_by_key(const char *key)
{
	int i;

	for (i = 0; i < cal_nroutes; i++) {
		if (strcmp(cal_routes[i].key, key) == 0)
			return &cal_routes[i];
	}
	return NULL;
}

/* The general copy threshold (zcio_copy(), zcio_send_file()): the largest
 * crossover of the routes zcio_copy() takes, so that above it zero-copy
 * wins on every one of them.  Routes where copying always won do not
 * count (their byte counts stay with the kernel's own page sharing);
 * they are named in the file.  false when no route gave a number. */
static bool copy_threshold(uint64_t *out)
{
	static const char *const keys[] = { "file_pipe", "file_socket", "socket_socket" };
	bool any = false;
	size_t i;

	*out = 0;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct cal_route *rt = route_by_key(keys[i]);

		if (!rt || !rt->measured || rt->threshold == ZCIO_THRESHOLD_NEVER)
			continue;
		if (rt->threshold > *out)
			*out = rt->threshold;
		any = true;
	}
	return any;
}

/* Values of an existing file, for keys this run did not measure. */
static void read_existing(const char *path, char values[][32])
{
	FILE *f = fopen(path, "re");
	char line[512];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char key[64], val[32];
		int i;

		if (line[0] == '#' || sscanf(line, "%63s %31s", key, val) != 2)
			continue;
		for (i = 0; i < ZCIO_THR_COUNT; i++) {
			if (strcmp(key, zcio_threshold_name(i)) == 0)
				snprintf(values[i], 32, "%s", val);
		}
	}
	fclose(f);
}

static void write_thresholds(FILE *f, const struct cal_config *cfg, char values[][32],
			     const bool *measured)
{
	struct utsname u;
	char when[64], sz[32];
	time_t now = time(NULL);
	int i;

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
	uname(&u);
	fprintf(f, "# zcio thresholds: transfers of at least this many bytes use zero-copy.\n"
		   "# Written by `zcio calibrate` on %s, Linux %s, %ld CPUs,\n"
		   "# TCP %s.  Format: \"key value\" per line; value in bytes (k, M, G\n"
		   "# suffixes) or \"never\"; see zcio_threshold(3).\n",
		when, u.release, sysconf(_SC_NPROCESSORS_ONLN),
		cfg->net.netns ? "across a veth between network namespaces" : "over loopback");
	for (i = 0; i < cal_nroutes; i++) {
		const struct cal_route *rt = &cal_routes[i];

		if (rt->measured && rt->unusable)
			fprintf(f, "# %s: not written: %s\n", rt->key, rt->why);
		else if (rt->measured && rt->threshold == ZCIO_THRESHOLD_NEVER)
			fprintf(f, "# %s: %s never beat %s up to %s\n", rt->key, rt->zc_name,
				rt->copy_name, fmt_size(rt->points[rt->npoints - 1].size, sz, sizeof(sz)));
		else if (!rt->measured && rt->why[0])
			fprintf(f, "# %s: not measured: %s\n", rt->key, rt->why);
	}
	for (i = 0; i < ZCIO_THR_COUNT; i++) {
		if (values[i][0])
			fprintf(f, "%-20s %s%s\n", zcio_threshold_name(i), values[i],
				measured[i] ? "" : "   # from an earlier run");
	}
}

static int save(const struct cal_config *cfg, const char *output)
{
	char values[ZCIO_THR_COUNT][32] = { { 0 } };
	bool measured[ZCIO_THR_COUNT] = { false };
	char path[4096], tmp[4200];
	uint64_t copy;
	FILE *f;
	int i, k, r;

	if (output && strcmp(output, "-") != 0)
		snprintf(path, sizeof(path), "%s", output);
	else if (!output && !default_path(path, sizeof(path))) {
		cli_error("calibrate", "no thresholds file: ZCIO_THRESHOLDS is empty and no --output");
		return CLI_ERROR;
	}
	if (!output || strcmp(output, "-") != 0)
		read_existing(path, values);
	for (i = 0; i < cal_nroutes; i++) {
		const struct cal_route *rt = &cal_routes[i];

		if (!rt->measured || rt->unusable)
			continue;
		for (k = 0; k < ZCIO_THR_COUNT; k++) {
			if (strcmp(rt->key, zcio_threshold_name(k)) == 0) {
				fmt_size(rt->threshold, values[k], sizeof(values[k]));
				measured[k] = true;
			}
		}
	}
	if (copy_threshold(&copy)) {
		fmt_size(copy, values[ZCIO_THR_COPY], sizeof(values[ZCIO_THR_COPY]));
		measured[ZCIO_THR_COPY] = true;
	}
	if (output && strcmp(output, "-") == 0) {
		write_thresholds(stdout, cfg, values, measured);
		return CLI_OK;
	}
	r = mkdirs_for(path);
	snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid());
	f = r == 0 ? fopen(tmp, "we") : NULL;
	if (!f) {
		cli_error("calibrate", "%s: %s", r ? path : tmp, strerror(r ? -r : errno));
		return CLI_ERROR;
	}
	write_thresholds(f, cfg, values, measured);
	if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0) {
		cli_error("calibrate", "%s: %s", tmp, strerror(errno));
		fclose(f);
		unlink(tmp);
		return CLI_ERROR;
	}
	fclose(f);
	/* Readers see the old file or the new one, never half of one. */
	if (rename(tmp, path) != 0) {
		cli_error("calibrate", "%s: %s", path, strerror(errno));
		unlink(tmp);
		return CLI_ERROR;
	}
	fprintf(stderr, "zcio: calibrate: wrote %s\n", path);
	return CLI_OK;
}

static int show(void)
{
	char src[4096], sz[32];
	int i;

	zcio_threshold_source(src, sizeof(src));
	printf("source: %s\n", src[0] ? src : "built-in (no thresholds file read)");
	for (i = 0; i < ZCIO_THR_COUNT; i++)
		printf("%-20s %s\n", zcio_threshold_name(i), fmt_size(zcio_threshold(i), sz, sizeof(sz)));
	return CLI_OK;
}

/* ---- tables ------------------------------------------------------------ */

static void print_crossovers(const struct cal_config *cfg)
{
	char sz[32];
	int i, k;

	printf("crossovers (%s): median time of zero-copy / copying per transfer, touched buffers\n",
	       cfg->net.netns ? "TCP across the veth" : "TCP over loopback");
	printf("%-18s %-24s", "route", "zero-copy vs copy");
	for (k = 0; k < cfg->nsizes; k++)
		printf(" %7s", fmt_size(cfg->sizes[k], sz, sizeof(sz)));
	printf("  %-9s %s\n", "threshold", "key");
	for (i = 0; i < cal_nroutes; i++) {
		const struct cal_route *rt = &cal_routes[i];
		char what[64];

		snprintf(what, sizeof(what), "%s", rt->zc_name);
		printf("%-18s %-24s", rt->label, what);
		for (k = 0; k < cfg->nsizes; k++) {
			if (k < rt->npoints && rt->points[k].ok)
				printf(" %7.2f", rt->points[k].ratio);
			else
				printf(" %7s", "-");
		}
		if (rt->measured && rt->unusable)
			printf("  %-9s %s (not written: %s)\n", fmt_size(rt->threshold, sz, sizeof(sz)),
			       rt->key, rt->why);
		else if (rt->measured)
			printf("  %-9s %s\n", fmt_size(rt->threshold, sz, sizeof(sz)), rt->key);
		else
			printf("  %-9s %s (not measured: %s)\n", "-", rt->key, rt->why);
	}
	printf("(below 1.00: zero-copy faster; threshold: the smallest size from which it stays faster)\n");
}

static const struct cal_send_row *find_row(const struct cal_send_row *rows, int n,
					   const char *method, uint64_t size, bool touched)
{
	int i;

	for (i = 0; i < n; i++) {
		if (rows[i].size == size && rows[i].touched == touched &&
		    strcmp(rows[i].method, method) == 0)
			return &rows[i];
	}
	return NULL;
}

static void print_send_sizes(const struct cal_config *cfg, const struct cal_send_row *rows, int n)
{
	uint64_t sizes[CAL_MAX_SIZES];
	int nsizes = 0, i, m, t;
	char sz[32];

	for (i = 0; i < n; i++) {
		if (nsizes == 0 || sizes[nsizes - 1] != rows[i].size) {
			if (nsizes < CAL_MAX_SIZES)
				sizes[nsizes++] = rows[i].size;
		}
	}
	for (t = 0; t < 2; t++) {
		printf("\nsend-sizes, %s (%s): MiB/s, sender CPU s/GiB\n",
		       t ? "touched: every buffer written before it is sent"
			 : "untouched: the same bytes resent",
		       cfg->net.netns ? "across the veth" : "over loopback");
		printf("%-6s", "size");
		for (m = 0; m < CAL_SEND_METHODS; m++)
			printf(" %18s", cal_send_methods[m]);
		printf("  auto/best (best)         auto/write\n");
		for (i = 0; i < nsizes; i++) {
			const struct cal_send_row *a = find_row(rows, n, "auto", sizes[i], t);

			printf("%-6s", fmt_size(sizes[i], sz, sizeof(sz)));
			for (m = 0; m < CAL_SEND_METHODS; m++) {
				const struct cal_send_row *r = find_row(rows, n, cal_send_methods[m], sizes[i], t);

				if (!r || !r->ok)
					printf(" %18s", "-");
				else
					printf(" %9.0f %8.3f", r->mib_s, r->sender_cpu);
			}
			if (a && a->best && !isnan(a->vs_best) && !isnan(a->vs_write))
				printf("  %8.3f  (%-12s)  %9.3f\n", a->vs_best, a->best, a->vs_write);
			else
				printf("\n");
		}
	}
	printf("\nauto/best and auto/write: medians over the %d repetitions of the ratio of\n"
	       "runs made one after the other (best: the safe fixed method with the\n"
	       "highest median; vmsplice is not safe: its buffer may change in flight).\n",
	       cfg->repeat);
	printf("\nzero-copy accounting (touched; completions: zero-copy sends completed, copied: of those, copied by the kernel)\n");
	for (i = 0; i < nsizes; i++) {
		/* msg_zerocopy and after it: the methods with completions. */
		for (m = SM_MSG_ZEROCOPY; m < CAL_SEND_METHODS; m++) {
			const struct cal_send_row *r = find_row(rows, n, cal_send_methods[m], sizes[i], true);

			if (r && r->ok)
				printf("  %-13s %6s: zc sends %8" PRIu64 " (%" PRIu64 " fixed), completions %8" PRIu64
				       ", copied %8" PRIu64 ", enobufs %" PRIu64 "%s%s\n",
				       r->method, fmt_size(sizes[i], sz, sizeof(sz)), r->zc_sends,
				       r->fixed_sends, r->completions, r->copied, r->enobufs,
				       r->note[0] ? "; " : "", r->note);
		}
	}
	for (m = 0; m < CAL_SEND_METHODS; m++) {
		const struct cal_send_row *r = find_row(rows, n, cal_send_methods[m], 64, false);

		if (r && !r->ok && r->note[0])
			printf("  %s: %s\n", cal_send_methods[m], r->note);
	}
}

static void print_udp(const struct cal_config *cfg, const struct cal_send_row *rows, int n)
{
	char sz[32];
	int i;

	printf("\nudp-egress (%s)\n", cfg->net.netns ?
	       "to the testbed's sink: datagrams cross the veth and are dropped past it" :
	       "over loopback, to a port nobody listens on");
	printf("%-6s %-9s %-13s %9s %12s %14s %12s %8s\n", "size", "buffers", "method", "MiB/s",
	       "sender s/GiB", "process s/GiB", "completions", "copied");
	for (i = 0; i < n; i++) {
		const struct cal_send_row *r = &rows[i];

		if (!r->ok) {
			printf("%-6s %-9s %-13s failed: %s\n", fmt_size(r->size, sz, sizeof(sz)),
			       r->touched ? "touched" : "untouched", r->method, r->note);
			continue;
		}
		printf("%-6s %-9s %-13s %9.0f %12.3f %14.3f %12" PRIu64 " %8" PRIu64 "\n",
		       fmt_size(r->size, sz, sizeof(sz)), r->touched ? "touched" : "untouched",
		       r->method, r->mib_s, r->sender_cpu, r->proc_cpu, r->completions, r->copied);
	}
}

static void print_recv(const struct cal_config *cfg, const struct cal_recv_row *rows, int n)
{
	int i;

	printf("\nrecv (%s; the sender uses MSG_ZEROCOPY; the receiver reads every byte)\n",
	       cfg->net.netns ? "across the veth" : "over loopback");
	printf("%-18s %9s %14s %14s %8s\n", "receiver", "MiB/s", "recv s/GiB", "process s/GiB",
	       "mapped");
	for (i = 0; i < n; i++) {
		if (rows[i].ok)
			printf("%-18s %9.0f %14.3f %14.3f %7.0f%%\n", rows[i].method, rows[i].mib_s,
			       rows[i].receiver_cpu, rows[i].proc_cpu, rows[i].mapped_pct);
		else
			printf("%-18s failed: %s\n", rows[i].method, rows[i].note);
	}
}

/* ---- JSON -------------------------------------------------------------- */

static void json_num(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.6g", v);
	else
		fprintf(f, "null");
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void json_send_rows(FILE *f, const struct cal_send_row *rows, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		const struct cal_send_row *r = &rows[i];

		fprintf(f, "%s\n    {\"method\": ", i ? "," : "");
		json_str(f, r->method);
		fprintf(f, ", \"size\": %" PRIu64 ", \"touched\": %s, \"ok\": %s, \"mib_s\": ", r->size,
			r->touched ? "true" : "false", r->ok ? "true" : "false");
		json_num(f, r->ok ? r->mib_s : NAN);
		fprintf(f, ", \"sender_cpu_s_per_gib\": ");
		json_num(f, r->ok ? r->sender_cpu : NAN);
		fprintf(f, ", \"process_cpu_s_per_gib\": ");
		json_num(f, r->ok ? r->proc_cpu : NAN);
		fprintf(f, ", \"zc_sends\": %" PRIu64 ", \"fixed_sends\": %" PRIu64
			   ", \"completions\": %" PRIu64 ", \"copied\": %" PRIu64
			   ", \"enobufs\": %" PRIu64 ", \"note\": ",
			r->zc_sends, r->fixed_sends, r->completions, r->copied, r->enobufs);
		json_str(f, r->note);
		fprintf(f, ", \"vs_write\": ");
		json_num(f, r->vs_write);
		fprintf(f, ", \"vs_best\": ");
		json_num(f, r->vs_best);
		fprintf(f, ", \"best\": ");
		if (r->best)
			json_str(f, r->best);
		else
			fprintf(f, "null");
		fprintf(f, ", \"runs_mib_s\": [");
		for (int k = 0; k < r->nruns; k++) {
			fprintf(f, "%s", k ? ", " : "");
			json_num(f, r->run_mib[k]);
		}
		fprintf(f, "]}");
	}
}

static int write_json(const char *path, const struct cal_config *cfg,
		      const struct cal_send_row *srows, int ns, const struct cal_recv_row *rrows,
		      int nr, const struct cal_send_row *urows, int nu)
{
	FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "we");
	struct utsname u;
	int i, k;

	if (!f) {
		cli_error("calibrate", "%s: %s", path, strerror(errno));
		return CLI_ERROR;
	}
	uname(&u);
	fprintf(f, "{\n  \"tool\": \"zcio calibrate\",\n  \"version\": ");
	json_str(f, zcio_version());
	fprintf(f, ",\n  \"kernel\": ");
	json_str(f, u.release);
	fprintf(f, ",\n  \"cpus\": %ld,\n  \"network\": ", sysconf(_SC_NPROCESSORS_ONLN));
	json_str(f, cfg->net.netns ? "veth" : "loopback");
	if (cfg->net.netns) {
		fprintf(f, ",\n  \"netns\": [");
		json_str(f, cfg->net.ns_a);
		fprintf(f, ", ");
		json_str(f, cfg->net.ns_b);
		fprintf(f, "]");
	}
	fprintf(f, ",\n  \"quick\": %s,\n  \"pairs\": %d,\n  \"repeat\": %d,\n  \"run_seconds\": ",
		cfg->quick ? "true" : "false", cfg->pairs, cfg->repeat);
	json_num(f, cfg->run_seconds);
	fprintf(f, ",\n  \"send_seconds\": ");
	json_num(f, cfg->send_seconds);
	fprintf(f, ",\n  \"crossovers\": [");
	for (i = 0; i < cal_nroutes; i++) {
		const struct cal_route *rt = &cal_routes[i];

		fprintf(f, "%s\n    {\"key\": ", i ? "," : "");
		json_str(f, rt->key);
		fprintf(f, ", \"route\": ");
		json_str(f, rt->label);
		fprintf(f, ", \"zero_copy\": ");
		json_str(f, rt->zc_name);
		fprintf(f, ", \"copy\": ");
		json_str(f, rt->copy_name);
		fprintf(f, ", \"measured\": %s, \"threshold\": ", rt->measured ? "true" : "false");
		if (rt->measured && rt->threshold != ZCIO_THRESHOLD_NEVER)
			fprintf(f, "%" PRIu64, rt->threshold);
		else
			fprintf(f, "null");
		fprintf(f, ", \"written\": %s, \"why\": ",
			rt->measured && !rt->unusable ? "true" : "false");
		json_str(f, rt->measured && !rt->unusable ? "" : rt->why);
		fprintf(f, ", \"points\": [");
		for (k = 0; k < rt->npoints; k++) {
			const struct cal_point *p = &rt->points[k];

			fprintf(f, "%s\n      {\"size\": %" PRIu64 ", \"ok\": %s, \"ratio\": ",
				k ? "," : "", p->size, p->ok ? "true" : "false");
			json_num(f, p->ok ? p->ratio : NAN);
			fprintf(f, ", \"zc_ns\": ");
			json_num(f, p->ok ? p->zc_ns : NAN);
			fprintf(f, ", \"copy_ns\": ");
			json_num(f, p->ok ? p->copy_ns : NAN);
			fprintf(f, ", \"zc_cpu_s_per_gib\": ");
			json_num(f, p->ok ? p->zc_cpu : NAN);
			fprintf(f, ", \"copy_cpu_s_per_gib\": ");
			json_num(f, p->ok ? p->copy_cpu : NAN);
			fprintf(f, "}");
		}
		fprintf(f, "]}");
	}
	fprintf(f, "\n  ],\n  \"send_sizes\": [");
	json_send_rows(f, srows, ns);
	fprintf(f, "\n  ],\n  \"udp_egress\": [");
	json_send_rows(f, urows, nu);
	fprintf(f, "\n  ],\n  \"recv\": [");
	for (i = 0; i < nr; i++) {
		const struct cal_recv_row *r = &rrows[i];

		fprintf(f, "%s\n    {\"method\": ", i ? "," : "");
		json_str(f, r->method);
		fprintf(f, ", \"ok\": %s, \"mib_s\": ", r->ok ? "true" : "false");
		json_num(f, r->ok ? r->mib_s : NAN);
		fprintf(f, ", \"receiver_cpu_s_per_gib\": ");
		json_num(f, r->ok ? r->receiver_cpu : NAN);
		fprintf(f, ", \"process_cpu_s_per_gib\": ");
		json_num(f, r->ok ? r->proc_cpu : NAN);
		fprintf(f, ", \"mapped_percent\": ");
		json_num(f, r->ok ? r->mapped_pct : NAN);
		fprintf(f, ", \"note\": ");
		json_str(f, r->note);
		fprintf(f, "}");
	}
	fprintf(f, "\n  ]\n}\n");
	if (f != stdout) {
		if (fclose(f) != 0) {
			cli_error("calibrate", "%s: %s", path, strerror(errno));
			return CLI_ERROR;
		}
	} else if (fflush(f) != 0) {
		return CLI_ERROR;
	}
	return CLI_OK;
}

/* ---- the command ------------------------------------------------------- */

/* Keep only the routes named in list (comma-separated keys); NULL: all. */
static int select_routes(const char *list)
{
	char buf[512], *tok, *save = NULL;
	int i;

	for (i = 0; i < cal_nroutes; i++)
		cal_routes[i].skip = list != NULL;
	if (!list)
		return 0;
	if (snprintf(buf, sizeof(buf), "%s", list) >= (int)sizeof(buf))
		return -EINVAL;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct cal_route *rt = (struct cal_route *)route_by_key(tok);

		if (!rt)
			return -ENOENT;
		rt->skip = false;
	}
	return 0;
}

static int calibrate_run(int argc, char **argv)
{
	static struct cal_send_row srows[128], urows[32];
	static struct cal_recv_row rrows[4];
	struct cal_config cfg;
	struct cli_args args;
	const char *netns = NULL, *json = NULL, *output = NULL, *routes = NULL;
	bool report = false, no_write = false, want_show = false, verbose = false;
	double run_time = 0;
	int repeat = 0;
	int opt, ns = 0, nr = 0, nu = 0, i, r = CLI_OK;

	memset(&cfg, 0, sizeof(cfg));
	cli_args_init(&args, &cli_calibrate, argc, argv);
	while ((opt = cli_args_next(&args)) >= 0) {
		switch (opt) {
		case OPT_NETNS: netns = args.optarg; break;
		case OPT_QUICK: cfg.quick = true; break;
		case OPT_REPORT: report = true; break;
		case OPT_JSON: json = args.optarg; break;
		case OPT_OUTPUT: output = args.optarg; break;
		case OPT_NO_WRITE: no_write = true; break;
		case OPT_SHOW: want_show = true; break;
		case OPT_ROUTES: routes = args.optarg; break;
		case OPT_TIME:
			run_time = strtod(args.optarg, NULL);
			if (!(run_time > 0 && run_time <= 10))
				return cli_usage_error(&cli_calibrate, "--time wants 0 < SECONDS <= 10");
			break;
		case OPT_REPEAT:
			repeat = atoi(args.optarg);
			if (repeat < 1 || repeat > 9)
				return cli_usage_error(&cli_calibrate, "--repeat wants 1 to 9");
			break;
		case OPT_VERBOSE: verbose = true; break;
		}
	}
	if (args.noperands)
		return cli_usage_error(&cli_calibrate, "extra operand '%s'", args.operands[0]);
	if (want_show)
		return show();
	if (select_routes(routes) < 0)
		return cli_usage_error(&cli_calibrate, "--routes: unknown key in '%s'", routes);
	if (cal_net_init(&cfg.net, netns) < 0) {
		cli_error("calibrate", "%s", cfg.net.error);
		return CLI_ERROR;
	}
	if (cfg.quick) {
		static const uint64_t q[] = { 4096, 65536, 1 << 20 };

		memcpy(cfg.sizes, q, sizeof(q));
		cfg.nsizes = 3;
		cfg.pairs = 3;
		cfg.run_seconds = run_time ? run_time : 0.015;
	} else {
		static const uint64_t full[] = { 1024, 4096, 16384, 65536, 262144, 1 << 20 };

		memcpy(cfg.sizes, full, sizeof(full));
		cfg.nsizes = 6;
		cfg.pairs = 7;
		cfg.run_seconds = run_time ? run_time : 0.04;
	}
	cfg.send_seconds = cfg.run_seconds * 8;
	cfg.repeat = repeat ? repeat : cfg.quick ? 1 : 3;
	/* Peers that die mid-run must not kill us: errors are reported. */
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < cal_nroutes; i++) {
		struct cal_route *rt = &cal_routes[i];

		rt->npoints = 0;
		rt->measured = false;
		rt->why[0] = '\0';
	}
	cal_measure_crossovers(&cfg, verbose);
	print_crossovers(&cfg);
	if (report) {
		ns = cal_send_sizes(&cfg, srows, (int)(sizeof(srows) / sizeof(srows[0])), verbose);
		print_send_sizes(&cfg, srows, ns);
		nu = cal_udp_egress(&cfg, urows, 32, verbose);
		print_udp(&cfg, urows, nu);
		nr = cal_recv(&cfg, rrows, 4, verbose);
		print_recv(&cfg, rrows, nr);
	}
	if (fflush(stdout) != 0) {
		cli_error("calibrate", "write error: %s", strerror(errno));
		return CLI_ERROR;
	}
	if (json)
		r = write_json(json, &cfg, srows, ns, rrows, nr, urows, nu);
	if (r == CLI_OK && !no_write)
		r = save(&cfg, output);
	return r;
}

const struct cli_command cli_calibrate = {
	.name = "calibrate",
	.synopsis = "[-q] [-r] [--netns A:B] [--json FILE] [-o FILE|-n] [--routes LIST] [--time S] [--repeat N] | --show",
	.summary = "measure where zero-copy starts to beat copying on this machine",
	.description =
		"For each route, transfers of growing size run with zero-copy and with\n"
		"copying, alternated in short back-to-back pairs; the median of the\n"
		"pairs' time ratios decides.  A route's threshold is the smallest size\n"
		"from which zero-copy stays at least as fast; \"never\" when copying wins\n"
		"at the largest size.  Buffers from memory are written before every\n"
		"transfer, as applications do.  The routes and their keys:\n"
		"\n"
		"  file_pipe            splice() file -> pipe, against read/write\n"
		"  file_socket          sendfile() file -> TCP, against read/write\n"
		"  socket_socket        splice() TCP -> pipe -> TCP, against read/write\n"
		"  memory_pipe          vmsplice() from a zcio ring, against write()\n"
		"  memory_file          vmsplice() + splice() into a file, against write()\n"
		"  memory_socket        send(MSG_ZEROCOPY) waiting for completions,\n"
		"                       against send()\n"
		"  memory_socket_uring  io_uring SEND_ZC waiting for its buffer-release\n"
		"                       notification, against send()\n"
		"\n"
		"The thresholds go to $ZCIO_THRESHOLDS, else ~/.config/zcio/thresholds,\n"
		"which libzcio reads once per process (keys it did not measure keep\n"
		"their value from an earlier run).  The key \"copy\", zcio_copy()'s\n"
		"default copy threshold, is the largest threshold of the first three\n"
		"routes; routes where copying always won do not count.\n"
		"\n"
		"TCP over loopback, or with --netns across a veth pair between two\n"
		"network namespaces (scripts/netns-testbed up).  Either way the receiver\n"
		"is on this host, and Linux copies MSG_ZEROCOPY pages when it queues them\n"
		"to a local socket: completions say \"copied\", and MSG_ZEROCOPY cannot\n"
		"win here.  It can on a real network device.  When every completion was\n"
		"copied, memory_socket is measured and shown but not written.\n"
		"\n"
		"--report adds two measurements.  send-sizes: messages of 64 B to 4 MiB\n"
		"over one connection per method (write; vmsplice + splice, which has no\n"
		"safe reuse rule for sockets; zcio's ring; MSG_ZEROCOPY; zcio's automatic\n"
		"choice; io_uring SEND_ZC; SEND_ZC from registered buffers), untouched (the same bytes resent) and touched (every buffer\n"
		"written first): MiB/s and the sender's CPU seconds per GiB, with the\n"
		"completion counts and how many the kernel copied.  recv: read() against\n"
		"TCP_ZEROCOPY_RECEIVE (zcio_zcrecv), receiver CPU per GiB and the share\n"
		"of bytes mapped.  udp-egress: UDP datagrams of 1 KiB to 64 KB sent to the\n"
		"testbed's sink, an address whose frames cross the veth and are dropped\n"
		"past it: the one case on a single host where MSG_ZEROCOPY is not copied\n"
		"after all (datagrams must fit the MTU, 9000 on the testbed's veth unless\n"
		"it was made with --mtu 65535; over loopback they go to a port nobody\n"
		"listens on, and are copied).\n"
		"Rows are medians of --repeat interleaved runs; the sending thread runs\n"
		"on one CPU and the receiving one on another, the same for every method.\n"
		"auto/best and auto/write pair the runs of one repetition.\n"
		"\n"
		"--json writes all of it as one object, with the keys: tool, version,\n"
		"kernel, cpus, network, netns, quick, pairs, repeat, run_seconds,\n"
		"send_seconds; crossovers (key, route, zero_copy, copy, measured,\n"
		"threshold, written, why, points: size, ok, ratio, zc_ns, copy_ns,\n"
		"zc_cpu_s_per_gib, copy_cpu_s_per_gib); send_sizes (method, size,\n"
		"touched, ok, mib_s, sender_cpu_s_per_gib, process_cpu_s_per_gib,\n"
		"zc_sends, fixed_sends, completions, copied, enobufs, note, vs_write,\n"
		"vs_best, best, runs_mib_s); udp_egress (the same keys); recv (method,\n"
		"ok, mib_s, receiver_cpu_s_per_gib, process_cpu_s_per_gib,\n"
		"mapped_percent, note).\n"
		"\n"
		"Run it on an otherwise idle machine: other load makes zero-copy and\n"
		"copying look alike.",
	.options = calibrate_options,
	.examples =
		"zcio calibrate\n"
		"scripts/netns-testbed up && zcio calibrate --netns zcio-a:zcio-b --report --json cal.json\n"
		"zcio calibrate --quick -o - --routes memory_pipe,memory_file\n"
		"zcio calibrate --show",
	.run = calibrate_run,
};
