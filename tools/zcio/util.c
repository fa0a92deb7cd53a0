/*
 * util.c - helpers every zcio command shares: messages, usage text from the
 * command tables, option parsing, byte counts, and --stats output.
 *
 * None of this is on a data path: stdio is fine here.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"

const char *cli_progname = "zcio";

/* Width of the terminal for help text: fixed, so output is reproducible. */
#define HELP_WIDTH 79
/* Options whose label is longer than this put their help on the next line. */
#define HELP_LABEL_MAX 26

/* ---- messages ------------------------------------------------------------ */

static void verror(const char *cmd, const char *fmt, va_list ap)
{
	char buf[1024];
	int n, m;

	/* One write per message, so that messages from concurrent
	 * processes sharing a terminal do not interleave mid-line. */
	if (cmd)
		n = snprintf(buf, sizeof(buf), "%s: %s: ", cli_progname, cmd);
	else
		n = snprintf(buf, sizeof(buf), "%s: ", cli_progname);
	if (n < 0)
		n = 0;
	m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	if (m > 0)
		n += m;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	fflush(stderr);
	(void)!write(STDERR_FILENO, buf, (size_t)n);
}

void cli_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(cmd, fmt, ap);
	va_end(ap);
}

int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(cmd ? cmd->name : NULL, fmt, ap);
	va_end(ap);
	cli_usage(cmd, true);
	return CLI_USAGE;
}

/* ---- usage --------------------------------------------------------------- */

/* "-p, --progress[=WHEN]", "    --copy", "-n N", "--size=N" */
static void option_label(const struct cli_option *o, char *buf, size_t len)
{
	const char *arg = o->arg;
	bool optional = arg && arg[0] == '[';

	if (o->shortopt && o->longopt)
		snprintf(buf, len, "%s, %s%s%s", o->shortopt, o->longopt,
			 arg && !optional ? "=" : "", arg ? arg : "");
	else if (o->longopt)
		snprintf(buf, len, "    %s%s%s", o->longopt, arg && !optional ? "=" : "",
			 arg ? arg : "");
	else
		snprintf(buf, len, "%s%s%s", o->shortopt ? o->shortopt : "",
			 arg && !optional ? " " : "", arg && !optional ? arg : "");
}

/* Print text filled to HELP_WIDTH, every line after the first indented. */
static void print_wrapped(FILE *f, const char *text, int col, int indent)
{
	const char *p = text;

	while (*p) {
		const char *w = p;
		int wl;

		while (*w == ' ')
			w++;
		wl = (int)strcspn(w, " ");
		if (col > indent && col + 1 + wl > HELP_WIDTH) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else if (col > indent) {
			fputc(' ', f);
			col++;
		}
		fprintf(f, "%.*s", wl, w);
		col += wl;
		p = w + wl;
	}
	fputc('\n', f);
}

static const struct cli_option help_option = {
	"-h", "--help", NULL, "show this help and exit",
};

static void print_option(FILE *f, const struct cli_option *o, int width)
{
	char label[128];
	int n;

	option_label(o, label, sizeof(label));
	n = fprintf(f, "  %s", label);
	if (n > width + 2) {
		fprintf(f, "\n%*s", width + 4, "");
		n = width + 4;
	} else {
		fprintf(f, "%*s", width + 4 - n, "");
		n = width + 4;
	}
	print_wrapped(f, o->help, n, width + 4);
}

void cli_usage(const struct cli_command *cmd, bool to_stderr)
{
	const struct cli_option *o;
	FILE *f = stdout;
	char label[128];
	int width = (int)strlen("-h, --help");

	if (to_stderr) {
		/* A misuse gets one line of error (already printed) and a
		 * pointer to the full text. */
		fflush(stderr);
		if (cmd)
			fprintf(stderr, "Try '%s %s --help'.\n", cli_progname, cmd->name);
		else
			fprintf(stderr, "Try '%s --help'.\n", cli_progname);
		return;
	}
	if (!cmd)
		return;
	fprintf(f, "Usage: %s %s %s\n", cli_progname, cmd->name, cmd->synopsis);
	/* Summaries are written like the man page's NAME line (lower case,
	 * no period); under "Usage:" they read as a sentence. */
	fprintf(f, "%c%s%s\n", toupper((unsigned char)cmd->summary[0]), cmd->summary + 1,
		cmd->summary[0] && cmd->summary[strlen(cmd->summary) - 1] != '.' ? "." : "");
	if (cmd->description && cmd->description[0])
		fprintf(f, "\n%s\n", cmd->description);

	for (o = cmd->options; o && (o->shortopt || o->longopt); o++) {
		int n;

		option_label(o, label, sizeof(label));
		n = (int)strlen(label);
		if (n > width && n <= HELP_LABEL_MAX)
			width = n;
	}
	fprintf(f, "\nOptions:\n");
	for (o = cmd->options; o && (o->shortopt || o->longopt); o++)
		print_option(f, o, width);
	print_option(f, &help_option, width);

	if (cmd->examples && cmd->examples[0]) {
		const char *p = cmd->examples;

		fprintf(f, "\nExamples:\n");
		while (*p) {
			size_t n = strcspn(p, "\n");

			fprintf(f, "  %.*s\n", (int)n, p);
			p += n;
			if (*p)
				p++;
		}
	}
}

/* Help goes to stdout; if it could not be written, say so (exit 1). */
static void help_exit(const struct cli_command *cmd)
{
	cli_usage(cmd, false);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_error(cmd->name, "write error: %s", strerror(errno));
		exit(CLI_ERROR);
	}
	exit(CLI_OK);
}

/* ---- option parsing ------------------------------------------------------ */

void cli_args_init(struct cli_args *a, const struct cli_command *cmd, int argc, char **argv)
{
	*a = (struct cli_args){
		.cmd = cmd, .argc = argc, .argv = argv, .next = 1,
		.operands = argv + 1,
	};
}

static bool arg_optional(const struct cli_option *o)
{
	return o->arg && o->arg[0] == '[';
}

static void misuse(struct cli_args *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
static void misuse(struct cli_args *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(a->cmd->name, fmt, ap);
	va_end(ap);
	cli_usage(a->cmd, true);
	exit(CLI_USAGE);
}

static int count_options(const struct cli_option *opts)
{
	int n = 0;

	while (opts && (opts[n].shortopt || opts[n].longopt))
		n++;
	return n;
}

/* "--name[=value]": find the option, allowing an unambiguous prefix.  The
 * built-in --help is looked up as if it were the table's last entry. */
static int long_option(struct cli_args *a, const char *arg)
{
	const struct cli_option *opts = a->cmd->options, *o;
	const char *eq = strchr(arg, '=');
	size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
	int n = count_options(opts), found = -1, matches = 0, i;

	for (i = 0; i <= n && len > 2; i++) {
		o = i < n ? &opts[i] : &help_option;
		if (!o->longopt || strncmp(o->longopt, arg, len) != 0)
			continue;
		found = i;
		if (o->longopt[len] == '\0') {
			matches = 1;
			break;
		}
		matches++;
	}
	if (matches == 0)
		misuse(a, "unrecognized option '%s'", arg);
	if (matches > 1)
		misuse(a, "option '%s' is ambiguous", arg);
	o = found < n ? &opts[found] : &help_option;

	a->optarg = NULL;
	if (!o->arg) {
		if (eq)
			misuse(a, "option '%s' doesn't allow an argument", o->longopt);
	} else if (eq) {
		a->optarg = eq + 1;
	} else if (!arg_optional(o)) {
		if (a->next >= a->argc)
			misuse(a, "option '%s' requires an argument", o->longopt);
		a->optarg = a->argv[a->next++];
	}
	if (found == n)
		help_exit(a->cmd);
	return found;
}

/* The next letter of "-abc"; -h is built in like --help. */
static int short_option(struct cli_args *a)
{
	const struct cli_option *opts = a->cmd->options;
	int n = count_options(opts), i;
	char c = *a->cluster++;
	char bad[2] = { c, '\0' };

	for (i = 0; i < n; i++) {
		if (opts[i].shortopt && opts[i].shortopt[1] == c)
			break;
	}
	if (i == n) {
		if (c == 'h')
			help_exit(a->cmd);
		misuse(a, "invalid option -- '%s'", bad);
	}
	a->optarg = NULL;
	if (opts[i].arg && !arg_optional(&opts[i])) {
		if (*a->cluster) {
			a->optarg = a->cluster;
		} else {
			if (a->next >= a->argc)
				misuse(a, "option requires an argument -- '%s'", bad);
			a->optarg = a->argv[a->next++];
		}
		a->cluster = NULL;
	}
	if (a->cluster && !*a->cluster)
		a->cluster = NULL;
	return i;
}

int cli_args_next(struct cli_args *a)
{
	for (;;) {
		char *arg;

		if (a->cluster)
			return short_option(a);
		if (a->next >= a->argc)
			return -1;
		arg = a->argv[a->next++];
		if (a->options_ended || arg[0] != '-' || arg[1] == '\0') {
			/* Operands move to the front; that slot was already
			 * read, so nothing is overwritten before its turn. */
			a->operands[a->noperands++] = arg;
			continue;
		}
		if (arg[1] == '-' && arg[2] == '\0') {
			a->options_ended = true;
			continue;
		}
		if (arg[1] == '-')
			return long_option(a, arg);
		a->cluster = arg + 1;
	}
}

/* ---- sizes --------------------------------------------------------------- */

int cli_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "kmgtpe";
	uint64_t v = 0, mult = 1;
	const char *p = s;
	const char *u;

	if (!s || !out || *p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	if (*p) {
		char c = (char)(*p | 0x20); /* ASCII lower case */

		u = memchr(units, c, sizeof(units) - 1);
		if (!u)
			return -EINVAL;
		mult = (uint64_t)1 << (10 * (u - units + 1));
		p++;
		/* "2M", "2MB" and "2MiB" all mean 2 * 1024 * 1024. */
		if (strcmp(p, "iB") == 0 || strcmp(p, "B") == 0)
			p += strlen(p);
		if (*p)
			return -EINVAL;
	}
	if (v > UINT64_MAX / mult)
		return -EINVAL;
	*out = v * mult;
	return 0;
}

const char *cli_format_size(uint64_t n, char *buf, unsigned len)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)n;
	int u = -1;

	if (!buf || !len)
		return buf;
	if (n < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", n);
		return buf;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	/* Three significant digits: "1.50 GiB", "12.3 MiB", "850 MiB". */
	if (v < 9.995)
		snprintf(buf, len, "%.2f %s", v, units[u]);
	else if (v < 99.95)
		snprintf(buf, len, "%.1f %s", v, units[u]);
	else
		snprintf(buf, len, "%.0f %s", v, units[u]);
	return buf;
}

/* ---- stats --------------------------------------------------------------- */

void cli_print_stats(const char *cmd, const struct zcio_stats *st)
{
	char small[1024];
	char *buf = small;
	const char *p;
	int n;

	n = zcio_stats_format(st, small, sizeof(small));
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(small)) {
		buf = malloc((size_t)n + 1);
		if (!buf)
			return;
		zcio_stats_format(st, buf, (size_t)n + 1);
	}
	for (p = buf; *p;) {
		size_t len = strcspn(p, "\n");

		cli_error(cmd, "stats: %.*s", (int)len, p);
		p += len;
		if (*p)
			p++;
	}
	/* The library's text says where bytes went; how many system calls
	 * and waits it took is what tells a fast run from a slow one. */
	cli_error(cmd, "stats: syscalls: %" PRIu64 ", waits: %" PRIu64, st->syscalls, st->waits);
	if (buf != small)
		free(buf);
}

int cli_parse_seconds(const char *s, int *ms)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= 0) || v > 86400 * 365)
		return -EINVAL;
	*ms = (int)(v * 1000);
	return 0;
}

void cli_raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max > 1048576 ? 1048576 : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}
