/*
 * bench_calib.c - the send-sizes and recv scenarios: `zcio calibrate
 * --report` measures them (message sizes per send method, touched and
 * untouched buffers; read() against TCP_ZEROCOPY_RECEIVE), and the
 * benchmark folds its JSON into its own table and JSON ("calibrate").
 *
 * One calibrate run serves both scenarios.  It measures no crossover
 * (--routes=, selects none), writes no thresholds file (-n), repeats each
 * row min(--runs, 9) times (its medians), and runs across the network
 * namespaces of --netns A:B when given (scripts/netns-testbed up).
 *
 * calibrate writes one row per line; the rows are read back line by line,
 * field by field (the keys are listed in `zcio calibrate --help`).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"

#define CAL_MAX_ROWS 256

enum cal_table { CAL_SEND, CAL_UDP, CAL_RECV, CAL_TABLES };

static const char *const table_name[CAL_TABLES] = { "send_sizes", "udp_egress", "recv" };

struct cal_row {
	enum cal_table table;
	char method[48];
	double size;           /* NaN for recv */
	int touched;           /* -1 for recv */
	bool ok;
	double mib_s, cpu, proc_cpu, mapped;
	double zc_sends, completions, copied;
	double vs_write, vs_best;  /* paired ratios (auto rows: vs_best) */
	char best[24];
	char note[160];
};

static struct cal_row rows[CAL_MAX_ROWS];
static unsigned nrows;
static bool cal_ran;
static char cal_error[400];
static char cal_command[600];
static char cal_network[32];

/* The value of "key": in one line of JSON: a string into out, or a number. */
static bool field_str(const char *line, const char *key, char *out, size_t len)
{
	char pat[64];
	const char *p;
	size_t k = 0;

	snprintf(pat, sizeof(pat), "\"%s\": \"", key);
	p = strstr(line, pat);
	if (!p)
		return false;
	for (p += strlen(pat); *p && *p != '"' && k + 1 < len; p++) {
		if (*p == '\\' && p[1])
			p++;
		out[k++] = *p;
	}
	out[k] = '\0';
	return true;
}

static double field_num(const char *line, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(line, pat);
	if (!p)
		return NAN;
	p += strlen(pat);
	if (!strncmp(p, "true", 4))
		return 1;
	if (!strncmp(p, "false", 5))
		return 0;
	if (!strncmp(p, "null", 4))
		return NAN;
	return strtod(p, NULL);
}

static void parse_json(const char *path)
{
	char *text = bench_slurp(path, 4u << 20);
	int table = -1;

	if (!text)
		return;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		struct cal_row *r;

		field_str(line, "network", cal_network, sizeof(cal_network));
		for (int k = 0; k < CAL_TABLES; k++) {
			char head[40];

			snprintf(head, sizeof(head), "\"%s\": [", table_name[k]);
			if (strstr(line, head))
				table = k;
		}
		if (strstr(line, "\"crossovers\": ["))
			table = -1;
		if (table < 0 || !strstr(line, "{\"method\": ") || nrows >= CAL_MAX_ROWS)
			continue;
		r = &rows[nrows++];
		memset(r, 0, sizeof(*r));
		r->table = (enum cal_table)table;
		field_str(line, "method", r->method, sizeof(r->method));
		field_str(line, "note", r->note, sizeof(r->note));
		r->ok = field_num(line, "ok") == 1;
		r->mib_s = field_num(line, "mib_s");
		r->proc_cpu = field_num(line, "process_cpu_s_per_gib");
		if (table == CAL_RECV) {
			r->size = NAN;
			r->touched = -1;
			r->cpu = field_num(line, "receiver_cpu_s_per_gib");
			r->mapped = field_num(line, "mapped_percent");
			r->zc_sends = r->completions = r->copied = NAN;
		} else {
			r->size = field_num(line, "size");
			r->touched = field_num(line, "touched") == 1;
			r->cpu = field_num(line, "sender_cpu_s_per_gib");
			r->mapped = NAN;
			r->zc_sends = field_num(line, "zc_sends");
			r->completions = field_num(line, "completions");
			r->copied = field_num(line, "copied");
			r->vs_write = field_num(line, "vs_write");
			r->vs_best = field_num(line, "vs_best");
			field_str(line, "best", r->best, sizeof(r->best));
		}
	}
	free(text);
}

static int calib_run(struct bench_config *cfg)
{
	char json[4200], outpath[4200], repeat[16], netns[300], line[300], time[32];
	char *argv[18];
	struct bench_proc p = { .role = BENCH_TOOL, .fd = { -1, -1, -1 } };
	unsigned k = 0;
	double secs;
	int out, r;

	if (cal_ran)
		return cal_error[0] ? -EIO : 0;
	cal_ran = true;
	snprintf(json, sizeof(json), "%s/calibrate.json", cfg->dir);
	snprintf(outpath, sizeof(outpath), "%s/calibrate.out", cfg->dir);
	snprintf(repeat, sizeof(repeat), "%u", cfg->runs < 9 ? cfg->runs : 9);
	argv[k++] = cfg->zcio;
	argv[k++] = "calibrate";
	argv[k++] = "--report";
	argv[k++] = "--no-write";
	argv[k++] = "--routes=,";
	argv[k++] = "--repeat";
	argv[k++] = repeat;
	argv[k++] = "--json";
	argv[k++] = json;
	if (cfg->netns) {
		snprintf(netns, sizeof(netns), "--netns=%s", cfg->netns);
		argv[k++] = netns;
	}
	time[0] = '\0';
	if (cfg->row_seconds > 0) {
		/* calibrate's --time is one crossover run; a row lasts 8 of them. */
		snprintf(time, sizeof(time), "--time=%g", cfg->row_seconds / 8);
		argv[k++] = time;
	}
	argv[k] = NULL;
	snprintf(cal_command, sizeof(cal_command), "zcio calibrate --report --no-write --routes=, "
		 "--repeat %s --json $DIR/calibrate.json%s%s%s%s", repeat, cfg->netns ? " " : "",
		 cfg->netns ? netns : "", time[0] ? " " : "", time);
	fprintf(stderr, "== send-sizes, recv: %s\n", cal_command);
	out = open(outpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		return -errno;
	p.argv = argv;
	p.fd[1] = p.fd[2] = out;
	r = bench_procs_run(&p, 1, &out, 1, 1800, &secs);
	if (r < 0 || !bench_proc_ok(&p)) {
		char why[100];
		char *text = bench_slurp(outpath, 64 * 1024), *last = NULL;

		/* Its last line says why. */
		for (char *s = text ? strtok(text, "\n") : NULL; s; s = strtok(NULL, "\n"))
			last = s;
		snprintf(cal_error, sizeof(cal_error), "zcio calibrate %s: %s",
			 r < 0 ? strerror(-r) : bench_proc_status(&p, why, sizeof(why)),
			 last ? last : "");
		free(text);
		cli_error("bench", "%s", cal_error);
		return -EIO;
	}
	parse_json(json);
	if (!nrows) {
		bench_first_line(json, line, sizeof(line));
		snprintf(cal_error, sizeof(cal_error), "zcio calibrate wrote no row (%s)", line);
		return -EIO;
	}
	fprintf(stderr, "   calibrate took %.1f s, %u rows\n", secs, nrows);
	return 0;
}

static void fmt_size(double v, char *buf, unsigned len)
{
	uint64_t n = (uint64_t)v;

	if (n >= (1u << 20) && !(n % (1u << 20)))
		snprintf(buf, len, "%" PRIu64 "M", n >> 20);
	else if (n >= 1024 && !(n % 1024))
		snprintf(buf, len, "%" PRIu64 "K", n >> 10);
	else
		snprintf(buf, len, "%" PRIu64, n);
}

static const struct cal_row *auto_row(double size, int touched)
{
	for (unsigned j = 0; j < nrows; j++)
		if (rows[j].table == CAL_SEND && rows[j].size == size &&
		    rows[j].touched == touched && !strcmp(rows[j].method, "auto"))
			return &rows[j];
	return NULL;
}

/* zcio's automatic choice against the best safe fixed method and against
 * write(), as calibrate paired them (runs of one repetition). */
static void print_auto_ratios(FILE *f, const double *sizes, unsigned ns)
{
	for (int touched = 0; touched < 2; touched++) {
		for (int which = 0; which < 2; which++) {
			fprintf(f, "  %-26s", which ? (touched ? "auto/write (touched)" : "auto/write")
						    : (touched ? "auto/best (touched)" : "auto/best"));
			for (unsigned k = 0; k < ns; k++) {
				const struct cal_row *a = auto_row(sizes[k], touched);
				double v = !a ? NAN : which ? a->vs_write : a->vs_best;

				if (isnan(v))
					fprintf(f, " %8s", "-");
				else
					fprintf(f, " %8.3f", v);
			}
			fputc('\n', f);
		}
	}
}

/* A matrix per table: one line per method and touched, one column per size. */
static void print_sizes(FILE *f, enum cal_table table)
{
	double sizes[32];
	unsigned ns = 0;

	for (unsigned i = 0; i < nrows; i++) {
		bool seen = false;

		if (rows[i].table != table)
			continue;
		for (unsigned k = 0; k < ns; k++)
			seen = seen || sizes[k] == rows[i].size;
		if (!seen && ns < 32)
			sizes[ns++] = rows[i].size;
	}
	if (!ns)
		return;
	fprintf(f, "\n%s (zcio calibrate --report, %s): MiB/s, then sender CPU s/GiB\n",
		table == CAL_SEND ? "send-sizes" : "udp-egress", cal_network[0] ? cal_network : "?");
	for (int what = 0; what < 2; what++) {
		fprintf(f, "  %-26s", what ? "cpu s/GiB" : "MiB/s");
		for (unsigned k = 0; k < ns; k++) {
			char b[24];

			fmt_size(sizes[k], b, sizeof(b));
			fprintf(f, " %8s", b);
		}
		fputc('\n', f);
		for (unsigned i = 0; i < nrows; i++) {
			char name[64];
			bool first = true;

			if (rows[i].table != table)
				continue;
			/* The first row of each method/touched pair starts a line. */
			for (unsigned j = 0; j < i; j++)
				if (rows[j].table == table && !strcmp(rows[j].method, rows[i].method) &&
				    rows[j].touched == rows[i].touched)
					first = false;
			if (!first)
				continue;
			snprintf(name, sizeof(name), "%s%s", rows[i].method,
				 rows[i].touched ? " (touched)" : "");
			fprintf(f, "  %-26s", name);
			for (unsigned k = 0; k < ns; k++) {
				const struct cal_row *r = NULL;

				for (unsigned j = 0; j < nrows; j++)
					if (rows[j].table == table && rows[j].size == sizes[k] &&
					    rows[j].touched == rows[i].touched &&
					    !strcmp(rows[j].method, rows[i].method))
						r = &rows[j];
				if (!r || !r->ok)
					fprintf(f, " %8s", "-");
				else
					fprintf(f, " %8.*f", what ? 3 : 0, what ? r->cpu : r->mib_s);
			}
			fputc('\n', f);
		}
	}
	if (table == CAL_SEND)
		print_auto_ratios(f, sizes, ns);
}

static void print_recv(FILE *f)
{
	fprintf(f, "\nrecv (zcio calibrate --report, %s)\n", cal_network[0] ? cal_network : "?");
	fprintf(f, "  %-26s %9s %13s %9s  %s\n", "method", "MiB/s", "recv cpu s/GiB", "mapped %",
		"note");
	for (unsigned i = 0; i < nrows; i++) {
		const struct cal_row *r = &rows[i];

		if (r->table != CAL_RECV)
			continue;
		if (!r->ok)
			fprintf(f, "  %-26s %9s %13s %9s  %s\n", r->method, "-", "-", "-", r->note);
		else
			fprintf(f, "  %-26s %9.0f %13.3f %9.1f  %s\n", r->method, r->mib_s, r->cpu,
				r->mapped, r->note);
	}
}

int bench_calib_send_sizes(struct bench_config *cfg)
{
	int r = calib_run(cfg);

	if (r < 0)
		return r;
	print_sizes(stdout, CAL_SEND);
	print_sizes(stdout, CAL_UDP);
	fflush(stdout);
	return 0;
}

int bench_calib_recv(struct bench_config *cfg)
{
	int r = calib_run(cfg);

	if (r < 0)
		return r;
	print_recv(stdout);
	fflush(stdout);
	return 0;
}

void bench_calib_summary(FILE *f)
{
	if (cal_ran && cal_error[0])
		fprintf(f, "  send-sizes/recv: %s\n", cal_error);
}

void bench_calib_json(FILE *f)
{
	if (!cal_ran) {
		fputs("null", f);
		return;
	}
	fputs("{\"command\": ", f);
	bench_json_string(f, cal_command);
	fputs(", \"error\": ", f);
	if (cal_error[0])
		bench_json_string(f, cal_error);
	else
		fputs("null", f);
	fputs(", \"network\": ", f);
	bench_json_string(f, cal_network);
	fputs(",\n \"rows\": [\n", f);
	for (unsigned i = 0; i < nrows; i++) {
		const struct cal_row *r = &rows[i];

		fputs("  {\"table\": ", f);
		bench_json_string(f, table_name[r->table]);
		fputs(", \"method\": ", f);
		bench_json_string(f, r->method);
		fputs(", \"size\": ", f);
		bench_json_number(f, r->size);
		fprintf(f, ", \"touched\": %s, \"ok\": %s, \"mib_s\": ",
			r->touched < 0 ? "null" : r->touched ? "true" : "false", r->ok ? "true" : "false");
		bench_json_number(f, r->mib_s);
		fputs(", \"cpu_s_per_gib\": ", f);
		bench_json_number(f, r->cpu);
		fputs(", \"process_cpu_s_per_gib\": ", f);
		bench_json_number(f, r->proc_cpu);
		fputs(", \"mapped_percent\": ", f);
		bench_json_number(f, r->mapped);
		fputs(", \"zc_sends\": ", f);
		bench_json_number(f, r->zc_sends);
		fputs(", \"completions\": ", f);
		bench_json_number(f, r->completions);
		fputs(", \"copied\": ", f);
		bench_json_number(f, r->copied);
		fputs(", \"note\": ", f);
		bench_json_string(f, r->note);
		if (r->table == CAL_SEND) {
			fputs(", \"vs_write\": ", f);
			bench_json_number(f, r->vs_write);
			fputs(", \"vs_best\": ", f);
			bench_json_number(f, r->vs_best);
			fputs(", \"best\": ", f);
			if (r->best[0])
				bench_json_string(f, r->best);
			else
				fputs("null", f);
		}
		fprintf(f, "}%s\n", i + 1 < nrows ? "," : "");
	}
	fputs(" ]}", f);
}
