/*
 * bench_report.c - what `zcio bench` shows: a comparison table per case on
 * stdout, the targets met or missed, and the JSON file (schema in
 * bench/README.md; each tool, target and threshold point sits on a line of
 * its own, which bench/plot relies on).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "zcio.h"

#define MIB (1024.0 * 1024.0)

/* "splice 100%" or "splice:1025 read:3": what moved the bytes. */
static const char *paths_text(const struct bench_tool *t, char *buf, size_t len)
{
	size_t at = 0;
	uint64_t total = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < t->npaths; i++)
		total += t->paths[i].n;
	for (unsigned i = 0; i < t->npaths && at < len; i++) {
		const struct bench_count *p = &t->paths[i];
		int n;

		if (!p->n)
			continue;
		if (!strcmp(t->zc_unit ? t->zc_unit : "", "bytes"))
			n = snprintf(buf + at, len - at, "%s%s %.0f%%", at ? " " : "", p->name,
				     100.0 * (double)p->n / (double)(total ? total : 1));
		else
			n = snprintf(buf + at, len - at, "%s%s:%" PRIu64, at ? " " : "", p->name, p->n);
		if (n < 0)
			break;
		at += (size_t)n;
	}
	return buf;
}

static const char *zc_text(const struct bench_tool *t, char *buf, size_t len)
{
	char paths[200];

	if (t->zc_happened < 0)
		return "unknown";
	snprintf(buf, len, "%s (%s)", t->zc_happened ? "yes" : "no",
		 paths_text(t, paths, sizeof(paths)));
	return buf;
}

static void target_line(FILE *f, const struct bench_target *g)
{
	const char *cmp = bench_target_at_least(g) ? ">=" : "<=";

	if (bench_target_absolute(g))
		fprintf(f, "  target: %s %s %s %g: ", g->tool, g->metric, cmp, g->want);
	else
		fprintf(f, "  target: %s %s %s %.2fx %s: ", g->tool, g->metric, cmp, g->want, g->peer);
	if (g->met < 0)
		fprintf(f, "not measured\n");
	else if (bench_target_absolute(g))
		fprintf(f, "%.1f %s\n", g->got, g->met ? "MET" : "MISSED");
	else
		fprintf(f, "%.2fx %s\n", g->got, g->met ? "MET" : "MISSED");
}

static bool row_skipped(FILE *f, const struct bench_tool *t)
{
	if (t->skip) {
		fprintf(f, "  %-26s skipped: %s\n", t->name, t->skip);
		return true;
	}
	if (!t->nruns) {
		fprintf(f, "  %-26s FAILED: %s\n", t->name, t->error ? t->error : "no run");
		return true;
	}
	return false;
}

/* Service cases: the server's own CPU beside everyone's, and per kind the
 * numbers that matter (req/s and latency; memory and pipes). */
static void service_table(FILE *f, const struct bench_case *c, const struct bench_tool *main_peer)
{
	char vs[40];

	snprintf(vs, sizeof(vs), "vs %s", c->main_peer ? c->main_peer : "-");
	fprintf(f, "\n%s: %s\n", c->id, c->title);
	fprintf(f, "  %s\n", c->plumbing ? c->plumbing : "");
	fprintf(f, "  %u timed runs per tool, interleaved; cpu = user+sys per GiB, of the tool's "
		"processes (tool) and of all (all)\n", c->runs);
	if (c->kind == BENCH_KIND_IDLE)
		fprintf(f, "  %-26s %9s %9s %9s %6s %6s %7s  %s\n", "tool", "RSS0 MiB", "RSS MiB",
			"PSS MiB", "pipes", "fds", "setup s", "checked");
	else if (c->kind == BENCH_KIND_RR)
		fprintf(f, "  %-26s %9s %9s %8s %8s %9s %9s %8s  %-7s %s\n", "tool", "req/s", "MiB/s",
			"p50 ms", "p99 ms", "tool cpu", "all cpu", vs, "checked", "zero-copy");
	else
		fprintf(f, "  %-26s %8s %9s %9s %9s %8s  %-7s %s\n", "tool", "median s", "MiB/s",
			"tool cpu", "all cpu", vs, "checked", "zero-copy");
	for (unsigned i = 0; i < c->ntools; i++) {
		const struct bench_tool *t = &c->tools[i];
		const char *ok = t->checksum_ok == 1 ? "ok" : t->checksum_ok == 0 ? "WRONG" : "-";
		char zc[240], ratio[32] = "-";

		if (row_skipped(f, t))
			continue;
		if (main_peer && c->kind == BENCH_KIND_RR)
			snprintf(ratio, sizeof(ratio), "%.2fx", t->rps / main_peer->rps);
		else if (main_peer)
			snprintf(ratio, sizeof(ratio), "%.2fx", t->bps / main_peer->bps);
		if (c->kind == BENCH_KIND_IDLE)
			fprintf(f, "  %-26s %9.1f %9.1f %9.1f %6.0f %6.0f %7.2f  %s\n", t->name,
				t->rss_start / MIB, t->rss / MIB, t->pss / MIB, t->pipes, t->fds,
				t->med_seconds, ok);
		else if (c->kind == BENCH_KIND_RR)
			fprintf(f, "  %-26s %9.0f %9.1f %8.2f %8.2f %9.3f %9.3f %8s  %-7s %s\n", t->name,
				t->rps, t->bps / MIB, t->p50_us / 1000, t->p99_us / 1000,
				t->cpu_role_per_gib[BENCH_TOOL], t->cpu_per_gib, ratio, ok,
				zc_text(t, zc, sizeof(zc)));
		else
			fprintf(f, "  %-26s %8.3f %9.1f %9.3f %9.3f %8s  %-7s %s\n", t->name,
				t->med_seconds, t->bps / MIB, t->cpu_role_per_gib[BENCH_TOOL],
				t->cpu_per_gib, ratio, ok, zc_text(t, zc, sizeof(zc)));
		if (t->error)
			fprintf(f, "  %-26s FAILED after %u runs: %s\n", "", t->nruns, t->error);
	}
	for (unsigned i = 0; i < c->ntargets; i++)
		target_line(f, &c->targets[i]);
}

void bench_report_table(FILE *f, const struct bench_case *c)
{
	const struct bench_tool *main_peer = c->main_peer ? bench_case_tool(c, c->main_peer) : NULL;
	char vs[40];

	if (!main_peer || main_peer->skip || main_peer->error || !main_peer->nruns)
		main_peer = NULL;
	if (c->runner) {
		service_table(f, c, main_peer);
		return;
	}
	snprintf(vs, sizeof(vs), "vs %s", c->main_peer ? c->main_peer : "-");
	fprintf(f, "\n%s: %s\n", c->id, c->title);
	fprintf(f, "  %u timed runs per tool, interleaved; cpu = user+sys of every process in the run\n",
		c->runs);
	fprintf(f, "  %-20s %8s %9s %9s %8s  %-8s %s\n", "tool", "median s", "MiB/s", "cpu s/GiB",
		vs, "checksum", "zero-copy");
	for (unsigned i = 0; i < c->ntools; i++) {
		const struct bench_tool *t = &c->tools[i];
		char zc[240], ratio[32];

		if (t->skip) {
			fprintf(f, "  %-20s skipped: %s\n", t->name, t->skip);
			continue;
		}
		if (!t->nruns) {
			fprintf(f, "  %-20s FAILED: %s\n", t->name, t->error ? t->error : "no run");
			continue;
		}
		if (main_peer)
			snprintf(ratio, sizeof(ratio), "%.2fx", t->bps / main_peer->bps);
		else
			snprintf(ratio, sizeof(ratio), "-");
		fprintf(f, "  %-20s %8.3f %9.1f %9.3f %8s  %-8s %s\n", t->name, t->med_seconds,
			t->bps / MIB, t->cpu_per_gib, ratio,
			t->checksum_ok == 1 ? "ok" : t->checksum_ok == 0 ? "WRONG" : "-",
			zc_text(t, zc, sizeof(zc)));
		if (t->error)
			fprintf(f, "  %-20s FAILED after %u runs: %s\n", "", t->nruns, t->error);
	}
	/* zcio's own rows against every peer, not just the main one. */
	for (unsigned i = 0; i < c->ntools; i++) {
		const struct bench_tool *t = &c->tools[i];
		bool any = false;

		if (!t->zcio || strstr(t->name, "--copy") || t->skip || !t->nruns)
			continue;
		for (unsigned k = 0; k < c->ntools; k++) {
			const struct bench_tool *p = &c->tools[k];

			if (p == t || p->skip || !p->nruns)
				continue;
			fprintf(f, "%s %s %.2fx", any ? "," : "  vs each:", p->name, t->bps / p->bps);
			any = true;
		}
		if (any)
			fprintf(f, " (throughput of %s / each)\n", t->name);
	}
	for (unsigned i = 0; i < c->ntargets; i++)
		target_line(f, &c->targets[i]);
}

void bench_report_targets(FILE *f)
{
	unsigned met = 0, missed = 0, unknown = 0;

	fprintf(f, "\nTargets:\n");
	for (unsigned k = 0; k < bench_ncases; k++) {
		const struct bench_case *c = bench_cases[k];

		for (unsigned i = 0; i < c->ntargets; i++) {
			const struct bench_target *g = &c->targets[i];

			fprintf(f, "  %-7s %-16s %s %s %s ", g->met < 0 ? "UNKNOWN" :
				g->met ? "MET" : "MISSED", c->id, g->tool, g->metric,
				bench_target_at_least(g) ? ">=" : "<=");
			if (bench_target_absolute(g))
				fprintf(f, "%g", g->want);
			else
				fprintf(f, "%s %.2fx", g->peer, g->want);
			if (g->met >= 0)
				fprintf(f, bench_target_absolute(g) ? " (measured %.1f)" :
					" (measured %.2fx)", g->got);
			fputc('\n', f);
			if (g->met < 0)
				unknown++;
			else if (g->met)
				met++;
			else
				missed++;
		}
	}
	bench_threshold_summary(f, false);
	bench_calib_summary(f);
	fprintf(f, "  %u met, %u missed, %u not measured\n", met, missed, unknown);
}

/* ---- JSON ---- */

void bench_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

void bench_json_number(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		fputs("null", f);
	else if (v == floor(v) && fabs(v) < 1e15)
		fprintf(f, "%.0f", v);
	else
		fprintf(f, "%.6g", v);
}

static void cpu_model(char *out, size_t len)
{
	FILE *cpuinfo = fopen("/proc/cpuinfo", "r");
	char line[512];

	snprintf(out, len, "unknown");
	if (!cpuinfo)
		return;
	while (fgets(line, sizeof(line), cpuinfo)) {
		char *colon = strchr(line, ':');

		if (!strncmp(line, "model name", 10) && colon) {
			colon++;
			colon += strspn(colon, " \t");
			colon[strcspn(colon, "\n")] = '\0';
			snprintf(out, len, "%s", colon);
			break;
		}
	}
	fclose(cpuinfo);
}

static uint64_t mem_total(void)
{
	FILE *mi = fopen("/proc/meminfo", "r");
	unsigned long long kb = 0;
	char line[256];

	if (!mi)
		return 0;
	while (fgets(line, sizeof(line), mi))
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			break;
	fclose(mi);
	return (uint64_t)kb * 1024;
}

static const char *fs_name(const char *dir)
{
	struct statfs sf;

	if (statfs(dir, &sf) < 0)
		return "unknown";
	switch ((unsigned long)sf.f_type) {
	case 0xEF53: return "ext4";
	case 0x58465342: return "xfs";
	case 0x9123683E: return "btrfs";
	case 0x01021994: return "tmpfs";
	case 0x794c7630: return "overlayfs";
	case 0x2FC12FC1: return "zfs";
	case 0x6969: return "nfs";
	case 0x65735546: return "fuse";
	default: return "other";
	}
}

/* The command a tool ran, as a shell line, the scratch dir shown as $DIR. */
static void json_command(FILE *f, const struct bench_case *c, const struct bench_tool *t,
			 const struct bench_config *cfg)
{
	char buf[2048];
	size_t at = 0, dl = strlen(cfg->dir);
	unsigned n = 0;

	buf[0] = '\0';
	while (t->argv[n])
		n++;
	if (t->direct) {
		bench_json_string(f, t->argv[0]);
		return;
	}
#define PUT(...) do { \
		int k_ = snprintf(buf + at, sizeof(buf) - at, __VA_ARGS__); \
		if (k_ > 0) at += (size_t)k_; \
		if (at >= sizeof(buf)) at = sizeof(buf) - 1; \
	} while (0)
	if (c->cwd)
		PUT("cd %s%s && ", "$DIR", c->cwd + dl);
	if (c->topo == BENCH_TOPO_FROM_SOCK)
		PUT("sendfile($DIR/src) > tcp; ");
	for (unsigned i = 0; i < n; i++) {
		const char *a = t->argv[i];

		if (n > 10 && i == 4) {
			PUT(" ... (%u operands)", n - 4);
			break;
		}
		if (i == 0 && strrchr(a, '/'))
			a = strrchr(a, '/') + 1; /* programs by name */
		if (!strncmp(a, cfg->dir, dl))
			PUT("%s$DIR%s", i ? " " : "", a + dl);
		else if (!strncmp(a, "if=", 3) && !strncmp(a + 3, cfg->dir, dl))
			PUT("%sif=$DIR%s", i ? " " : "", a + 3 + dl);
		else
			PUT("%s%s", i ? " " : "", a);
	}
	if (t->stdin_path)
		PUT(" < $DIR%s", t->stdin_path + dl);
	if (c->runner) {
		/* The server's command line: the plumbing is the case's. */
	} else switch (c->topo) {
	case BENCH_TOPO_PIPE:
		PUT(c->sink == BENCH_SINK_PV ? " | pv -q > /dev/null" : " | reader");
		break;
	case BENCH_TOPO_DEVNULL: PUT(" > /dev/null"); break;
	case BENCH_TOPO_FILE: PUT(" > $DIR/out"); break;
	case BENCH_TOPO_TO_SOCK: PUT(" > tcp; reader < tcp"); break;
	case BENCH_TOPO_FROM_SOCK: PUT(" < tcp > $DIR/out"); break;
	case BENCH_TOPO_OWN_FILE: break;
	}
#undef PUT
	bench_json_string(f, buf);
}

static void json_counts(FILE *f, const struct bench_count *list, unsigned n)
{
	fputc('{', f);
	for (unsigned i = 0; i < n; i++) {
		if (i)
			fputs(", ", f);
		bench_json_string(f, list[i].name);
		fprintf(f, ": %" PRIu64, list[i].n);
	}
	fputc('}', f);
}

static void json_tool(FILE *f, const struct bench_case *c, const struct bench_tool *t,
		      const struct bench_config *cfg)
{
	static const char *const roles[BENCH_ROLES] = { "source", "tool", "sink" };
	const struct bench_tool *main_peer = c->main_peer ? bench_case_tool(c, c->main_peer) : NULL;
	bool ran = t->nruns > 0;

	fputs("{\"case\": ", f);
	bench_json_string(f, c->id);
	fputs(", \"name\": ", f);
	bench_json_string(f, t->name);
	if (t->skip) {
		fputs(", \"skipped\": ", f);
		bench_json_string(f, t->skip);
		fputc('}', f);
		return;
	}
	fputs(", \"skipped\": null, \"command\": ", f);
	json_command(f, c, t, cfg);
	fputs(", \"error\": ", f);
	if (t->error)
		bench_json_string(f, t->error);
	else
		fputs("null", f);
	fputs(", \"median_seconds\": ", f);
	bench_json_number(f, ran ? t->med_seconds : NAN);
	fputs(", \"median_bps\": ", f);
	bench_json_number(f, ran ? round(t->bps) : NAN);
	fputs(", \"cpu_s_per_gib\": ", f);
	bench_json_number(f, ran ? t->cpu_per_gib : NAN);
	fputs(", \"cpu_s_per_gib_by_role\": {", f);
	for (int r = 0; r < BENCH_ROLES; r++) {
		fprintf(f, "%s\"%s\": ", r ? ", " : "", roles[r]);
		bench_json_number(f, ran ? t->cpu_role_per_gib[r] : NAN);
	}
	fputs("}, \"ratio_to_main\": ", f);
	bench_json_number(f, ran && main_peer && main_peer->nruns && !main_peer->skip ?
			  t->bps / main_peer->bps : NAN);
	fputs(", \"ratios\": {", f);
	{
		bool first = true;

		for (unsigned i = 0; i < c->ntools; i++) {
			const struct bench_tool *p = &c->tools[i];

			if (p == t || p->skip || !p->nruns || !ran)
				continue;
			fputs(first ? "" : ", ", f);
			first = false;
			bench_json_string(f, p->name);
			fputs(": ", f);
			bench_json_number(f, t->bps / p->bps);
		}
	}
	fputs("}, \"cpu_ratios\": {", f);
	{
		bool first = true;

		for (unsigned i = 0; i < c->ntools; i++) {
			const struct bench_tool *p = &c->tools[i];

			if (p == t || p->skip || !p->nruns || !ran)
				continue;
			fputs(first ? "" : ", ", f);
			first = false;
			bench_json_string(f, p->name);
			fputs(": ", f);
			bench_json_number(f, t->cpu_per_gib / p->cpu_per_gib);
		}
	}
	fputs("}, \"zero_copy\": {\"happened\": ", f);
	fputs(t->zc_happened < 0 ? "null" : t->zc_happened ? "true" : "false", f);
	fputs(", \"source\": ", f);
	if (t->zc_source)
		bench_json_string(f, t->zc_source);
	else
		fputs("null", f);
	fputs(", \"unit\": ", f);
	if (t->zc_unit)
		bench_json_string(f, t->zc_unit);
	else
		fputs("null", f);
	fputs(", \"paths\": ", f);
	json_counts(f, t->paths, t->npaths);
	fputs(", \"fallbacks\": ", f);
	bench_json_string(f, t->fallbacks);
	fputs("}, \"zcio_syscalls\": ", f);
	if (t->zcio && t->nruns)
		fprintf(f, "%" PRIu64, t->zcio_syscalls);
	else
		fputs("null", f);
	fputs(", \"checksum_ok\": ", f);
	fputs(t->checksum_ok < 0 ? "null" : t->checksum_ok ? "true" : "false", f);
	fputs(", \"syscalls\": ", f);
	json_counts(f, t->syscalls, t->nsyscalls);
	if (c->runner) {
		fputs(", \"tool_cpu_s_per_gib\": ", f);
		bench_json_number(f, ran ? t->cpu_role_per_gib[BENCH_TOOL] : NAN);
		fputs(", \"requests_per_s\": ", f);
		bench_json_number(f, ran ? t->rps : NAN);
		fputs(", \"latency_p50_us\": ", f);
		bench_json_number(f, ran ? t->p50_us : NAN);
		fputs(", \"latency_p99_us\": ", f);
		bench_json_number(f, ran ? t->p99_us : NAN);
		fputs(", \"rss_bytes\": ", f);
		bench_json_number(f, ran ? t->rss : NAN);
		fputs(", \"rss_start_bytes\": ", f);
		bench_json_number(f, ran ? t->rss_start : NAN);
		fputs(", \"pss_bytes\": ", f);
		bench_json_number(f, ran ? t->pss : NAN);
		fputs(", \"pipes_held\": ", f);
		bench_json_number(f, ran ? t->pipes : NAN);
		fputs(", \"fds\": ", f);
		bench_json_number(f, ran ? t->fds : NAN);
		fputs(", \"config\": ", f);
		if (t->conf)
			bench_json_string(f, t->conf);
		else
			fputs("null", f);
	}
	fputs(", \"runs\": [", f);
	for (unsigned i = 0; i < t->nruns; i++) {
		const struct bench_run *r = &t->runs[i];

		fprintf(f, "%s{\"seq\": %u, \"seconds\": ", i ? ", " : "", r->seq);
		bench_json_number(f, r->seconds);
		fprintf(f, ", \"bytes\": %" PRId64 ", \"cpu_s\": ", r->bytes);
		bench_json_number(f, r->cpu_total);
		for (int k = 0; k < BENCH_ROLES; k++) {
			fprintf(f, ", \"cpu_%s_s\": ", roles[k]);
			bench_json_number(f, r->cpu[k]);
		}
		if (c->kind == BENCH_KIND_RR) {
			fprintf(f, ", \"requests\": %" PRIu64 ", \"rps\": ", r->requests);
			bench_json_number(f, r->rps);
			fputs(", \"p50_us\": ", f);
			bench_json_number(f, r->p50_us);
			fputs(", \"p99_us\": ", f);
			bench_json_number(f, r->p99_us);
		} else if (c->kind == BENCH_KIND_IDLE) {
			fputs(", \"rss_bytes\": ", f);
			bench_json_number(f, r->rss);
			fputs(", \"pss_bytes\": ", f);
			bench_json_number(f, r->pss);
			fputs(", \"pipes_held\": ", f);
			bench_json_number(f, r->pipes);
			fputs(", \"fds\": ", f);
			bench_json_number(f, r->fds);
		}
		fputc('}', f);
	}
	fputs("]}", f);
}

static void json_target(FILE *f, const struct bench_case *c, const struct bench_target *g)
{
	fputs("{\"case\": ", f);
	bench_json_string(f, c->id);
	fputs(", \"tool\": ", f);
	bench_json_string(f, g->tool);
	fputs(", \"peer\": ", f);
	if (g->peer)
		bench_json_string(f, g->peer);
	else
		fputs("null", f);
	fputs(", \"metric\": ", f);
	bench_json_string(f, g->metric);
	fprintf(f, ", \"absolute\": %s, \"compare\": \"%s\", \"want\": ",
		bench_target_absolute(g) ? "true" : "false", bench_target_at_least(g) ? ">=" : "<=");
	bench_json_number(f, g->want);
	fputs(", \"measured\": ", f);
	bench_json_number(f, g->got);
	fprintf(f, ", \"met\": %s}", g->met < 0 ? "null" : g->met ? "true" : "false");
}

int bench_report_json(const char *path, const struct bench_config *cfg)
{
	struct zcio_features feat = { 0 };
	struct utsname un;
	char model[256], date[64];
	time_t now = time(NULL);
	struct tm tm;
	FILE *f;

	f = fopen(path, "w");
	if (!f)
		return -errno;
	uname(&un);
	cpu_model(model, sizeof(model));
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	zcio_probe(&feat);

	fputs("{\n\"schema\": \"zcio-bench/1\",\n\"machine\": {\"kernel\": ", f);
	bench_json_string(f, un.release);
	fputs(", \"kernel_version\": ", f);
	bench_json_string(f, un.version);
	fputs(", \"arch\": ", f);
	bench_json_string(f, un.machine);
	fputs(", \"cpu_model\": ", f);
	bench_json_string(f, model);
	fprintf(f, ", \"cores\": %ld, \"memory_bytes\": %" PRIu64 ", \"date\": \"%s\", "
		"\"pipe_max_size\": %" PRIu64 ", \"zcio_version\": ",
		sysconf(_SC_NPROCESSORS_ONLN), mem_total(), date, feat.pipe_max_size);
	bench_json_string(f, zcio_version());
	fputs("},\n\"config\": {\"runs\": ", f);
	fprintf(f, "%u, \"size\": %" PRIu64 ", \"small_files\": %u, \"order\": \"interleaved\", "
		"\"scratch_fs\": \"%s\", \"strace\": %s, \"stream_size\": %" PRIu64
		", \"duration_s\": ", cfg->runs, cfg->size, cfg->files, fs_name(cfg->dir),
		cfg->strace ? "true" : "false", cfg->stream_size);
	bench_json_number(f, cfg->duration);
	fputs(", \"loadavg_start\": ", f);
	bench_json_number(f, cfg->load_start < 0 ? NAN : cfg->load_start);
	fputs(", \"loadavg_end\": ", f);
	bench_json_number(f, cfg->load_end < 0 ? NAN : cfg->load_end);
	fputs("},\n", f);
	fputs("\"cases\": [\n", f);
	for (unsigned k = 0; k < bench_ncases; k++) {
		const struct bench_case *c = bench_cases[k];

		fputs("{\"id\": ", f);
		bench_json_string(f, c->id);
		fputs(", \"scenario\": ", f);
		bench_json_string(f, c->scenario);
		fputs(", \"title\": ", f);
		bench_json_string(f, c->title);
		fprintf(f, ", \"bytes\": %" PRIu64 ", \"runs\": %u, \"main_peer\": ", c->bytes, c->runs);
		bench_json_string(f, c->main_peer);
		if (c->runner) {
			static const char *const kinds[] = { "stream", "rr", "idle" };

			fprintf(f, ", \"kind\": \"%s\", \"connections\": %u, \"duration_s\": ",
				kinds[c->kind], c->conns);
			bench_json_number(f, c->duration ? c->duration : NAN);
			fputs(", \"plumbing\": ", f);
			bench_json_string(f, c->plumbing);
		}
		fputs(",\n \"tools\": [\n", f);
		for (unsigned i = 0; i < c->ntools; i++) {
			fputs("  ", f);
			json_tool(f, c, &c->tools[i], cfg);
			fputs(i + 1 < c->ntools ? ",\n" : "\n", f);
		}
		fputs(" ],\n \"targets\": [\n", f);
		for (unsigned i = 0; i < c->ntargets; i++) {
			fputs("  ", f);
			json_target(f, c, &c->targets[i]);
			fputs(i + 1 < c->ntargets ? ",\n" : "\n", f);
		}
		fprintf(f, " ]}%s\n", k + 1 < bench_ncases ? "," : "");
	}
	fputs("],\n\"threshold\": ", f);
	bench_threshold_json(f);
	fputs(",\n\"calibrate\": ", f);
	bench_calib_json(f);
	fputs("\n}\n", f);
	if (fclose(f) != 0)
		return -errno;
	return 0;
}
