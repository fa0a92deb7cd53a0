/*
 * main.c - the zcio command: dispatch to a subcommand, and the texts that
 * come from the command tables: `zcio --help`, `zcio help CMD`, `--version`,
 * and the man page zcio(1) (the hidden `zcio --man`, which
 * scripts/gen-man turns into man/zcio.1).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

const struct cli_command *const cli_commands[] = {
	&cli_cat, &cli_cp, &cli_probe, &cli_relay, &cli_serve, &cli_tee, &cli_broadcast, &cli_calibrate, &cli_bench, NULL,
};

static const char summary[] =
	"move bytes between file descriptors the fastest correct way";

static const char description[] =
	"zcio moves bytes between files, pipes, sockets and devices with the\n"
	"fastest mechanism that is correct for the two ends: splice() through\n"
	"pipes, sendfile(), copy_file_range(), and read() with write() where\n"
	"copying wins (small transfers, terminals, O_APPEND files, procfs).\n"
	"When a mechanism turns out unsupported part-way, the next one continues\n"
	"at exactly the byte where it stopped: no byte is lost or duplicated.\n"
	"Every command can say, with --stats, which path moved how many bytes\n"
	"and why it fell back.";

static const char exit_status[] =
	"0 on success, 1 when something failed at run time (a file could not be\n"
	"read or written; the other operands are still processed), 2 on a usage\n"
	"error (unknown option, missing operand).  zcio cat dies of SIGPIPE, like\n"
	"cat(1), when the reader of its output goes away.";

static const char environment[] =
	"ZCIO_COPY_THRESHOLD: transfers known to be smaller than this many bytes\n"
	"are copied with read() and write() instead of spliced (default 16384).";

/* A summary (written like the man page's NAME line: lower case, no period)
 * as a sentence.  Returns a static buffer. */
static const char *sentence(const char *s)
{
	static char buf[256];
	size_t n;

	snprintf(buf, sizeof(buf), "%s", s);
	buf[0] = (char)toupper((unsigned char)buf[0]);
	n = strlen(buf);
	if (n && buf[n - 1] != '.' && n + 1 < sizeof(buf)) {
		buf[n] = '.';
		buf[n + 1] = '\0';
	}
	return buf;
}

static const struct cli_command *find_command(const char *name)
{
	const struct cli_command *const *c;

	for (c = cli_commands; *c; c++) {
		if (strcmp((*c)->name, name) == 0)
			return *c;
	}
	return NULL;
}

/* stdout must really have been written: `zcio --help > /dev/full` fails. */
static int flushed(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_error(NULL, "write error: %s", strerror(errno));
		return CLI_ERROR;
	}
	return CLI_OK;
}

static void print_help(void)
{
	const struct cli_command *const *c;

	printf("Usage: %s COMMAND [OPTION]... [OPERAND]...\n", cli_progname);
	printf("       %s --help | --version\n", cli_progname);
	printf("%s\n\n%s\n\nCommands:\n", sentence(summary), description);
	for (c = cli_commands; *c; c++)
		printf("  %-10s %s\n", (*c)->name, (*c)->summary);
	printf("\nOptions:\n"
	       "  -h, --help     show this help and exit\n"
	       "      --version  show the version and exit\n"
	       "\nRun '%s help COMMAND' or '%s COMMAND --help' for a command's options.\n",
	       cli_progname, cli_progname);
}

/* ---- the man page -------------------------------------------------------- */

/* Text for roff: backslashes and minus signs escaped, and a line that
 * would start with a control character defused. */
static void roff_puts(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (i == 0 && (s[0] == '.' || s[0] == '\''))
			fputs("\\&", stdout);
		if (s[i] == '\\')
			fputs("\\e", stdout);
		else if (s[i] == '-')
			fputs("\\-", stdout);
		else
			putchar(s[i]);
	}
}

static void roff_line(const char *s)
{
	roff_puts(s, strlen(s));
	putchar('\n');
}

/*
 * Table text to roff: paragraphs are separated by blank lines; a paragraph
 * whose first line is indented is shown as written (a table, a list),
 * anything else is filled.
 */
static void roff_paragraphs(const char *text)
{
	const char *p = text;

	while (*p) {
		const char *end = strstr(p, "\n\n");
		const char *stop = end ? end : p + strlen(p);
		bool verbatim = p[0] == ' ';

		fputs(verbatim ? ".PP\n.RS 4\n.nf\n" : ".PP\n", stdout);
		while (p < stop) {
			const char *nl = memchr(p, '\n', (size_t)(stop - p));
			const char *eol = nl ? nl : stop;
			const char *s = p;

			if (verbatim && eol - s >= 2 && s[0] == ' ' && s[1] == ' ')
				s += 2;
			while (!verbatim && s < eol && *s == ' ')
				s++;
			roff_puts(s, (size_t)(eol - s));
			putchar('\n');
			p = nl ? nl + 1 : stop;
		}
		if (verbatim)
			fputs(".fi\n.RE\n", stdout);
		while (*p == '\n')
			p++;
	}
}

/* "\fB\-p\fR, \fB\-\-progress\fR[=\fIWHEN\fR]" */
static void roff_option(const struct cli_option *o)
{
	const char *arg = o->arg;
	bool optional = arg && arg[0] == '[';

	fputs(".TP\n", stdout);
	if (o->shortopt) {
		fputs("\\fB", stdout);
		roff_puts(o->shortopt, strlen(o->shortopt));
		fputs("\\fR", stdout);
		if (arg && !optional && !o->longopt) {
			fputs(" \\fI", stdout);
			roff_puts(arg, strlen(arg));
			fputs("\\fR", stdout);
		}
	}
	if (o->longopt) {
		fputs(o->shortopt ? ", \\fB" : "\\fB", stdout);
		roff_puts(o->longopt, strlen(o->longopt));
		fputs("\\fR", stdout);
		if (optional) {
			/* "[=WHEN]": brackets and = plain, the name italic. */
			size_t i = 1 + (arg[1] == '=');

			fputs(i == 2 ? "[=\\fI" : "[\\fI", stdout);
			roff_puts(arg + i, strlen(arg + i) - (arg[strlen(arg) - 1] == ']'));
			fputs("\\fR]", stdout);
		} else if (arg) {
			fputs("=\\fI", stdout);
			roff_puts(arg, strlen(arg));
			fputs("\\fR", stdout);
		}
	}
	putchar('\n');
	roff_line(o->help);
}

static void roff_command(const struct cli_command *c)
{
	static const struct cli_option help = { "-h", "--help", NULL, "show this help and exit" };
	const struct cli_option *o;

	printf(".SS \"%s %s\"\n", cli_progname, c->name);
	roff_line(sentence(c->summary));
	printf(".PP\n\\fB%s %s\\fR ", cli_progname, c->name);
	roff_line(c->synopsis);
	if (c->description && c->description[0])
		roff_paragraphs(c->description);
	fputs(".PP\nOptions:\n.RS 4\n", stdout);
	for (o = c->options; o && (o->shortopt || o->longopt); o++)
		roff_option(o);
	roff_option(&help);
	fputs(".RE\n", stdout);
	if (c->examples && c->examples[0]) {
		const char *p = c->examples;

		fputs(".PP\nExamples:\n.PP\n.RS 4\n.nf\n", stdout);
		while (*p) {
			size_t n = strcspn(p, "\n");

			roff_puts(p, n);
			putchar('\n');
			p += n;
			if (*p)
				p++;
		}
		fputs(".fi\n.RE\n", stdout);
	}
}

/* No date: the page must come out byte-identical from the same tables. */
static void print_man(void)
{
	const struct cli_command *const *c;

	printf(".\\\" Generated by `zcio --man` (scripts/gen-man) from the command tables.\n"
	       ".\\\" Do not edit: change tools/zcio/*.c and regenerate.\n");
	printf(".TH ZCIO 1 \"\" \"zcio %s\" \"User Commands\"\n", zcio_version());
	printf(".SH NAME\nzcio \\- ");
	roff_line(summary);
	printf(".SH SYNOPSIS\n.nf\n");
	for (c = cli_commands; *c; c++) {
		printf("\\fB%s %s\\fR ", cli_progname, (*c)->name);
		roff_line((*c)->synopsis);
	}
	printf("\\fB%s \\-\\-help\\fR\n\\fB%s \\-\\-version\\fR\n.fi\n", cli_progname, cli_progname);
	printf(".SH DESCRIPTION\n");
	roff_paragraphs(description);
	printf(".SH COMMANDS\n");
	for (c = cli_commands; *c; c++)
		roff_command(*c);
	printf(".SH OPTIONS\n"
	       ".TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\nshow the list of commands and exit\n"
	       ".TP\n\\fB\\-\\-version\\fR\nshow the version and exit\n");
	printf(".SH EXIT STATUS\n");
	roff_paragraphs(exit_status);
	printf(".SH ENVIRONMENT\n");
	roff_paragraphs(environment);
	printf(".SH SEE ALSO\n"
	       ".BR cat (1),\n.BR cp (1),\n.BR splice (2),\n.BR tee (2),\n"
	       ".BR vmsplice (2),\n.BR sendfile (2),\n.BR copy_file_range (2),\n"
	       ".BR io_uring (7)\n");
}

int main(int argc, char **argv)
{
	const struct cli_command *cmd;
	const char *arg;

	if (argc < 2) {
		cli_error(NULL, "missing command");
		cli_usage(NULL, true);
		return CLI_USAGE;
	}
	arg = argv[1];
	if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
		print_help();
		return flushed();
	}
	if (strcmp(arg, "--version") == 0) {
		printf("%s %s\n", cli_progname, zcio_version());
		return flushed();
	}
	if (strcmp(arg, "--man") == 0) {
		print_man();
		return flushed();
	}
	if (strcmp(arg, "help") == 0) {
		if (argc < 3) {
			print_help();
			return flushed();
		}
		cmd = find_command(argv[2]);
		if (!cmd) {
			cli_error(NULL, "unknown command '%s'", argv[2]);
			cli_usage(NULL, true);
			return CLI_USAGE;
		}
		cli_usage(cmd, false);
		return flushed();
	}
	cmd = find_command(arg);
	if (cmd)
		return cmd->run(argc - 1, argv + 1);
	if (arg[0] == '-')
		cli_error(NULL, "unrecognized option '%s'", arg);
	else
		cli_error(NULL, "unknown command '%s'", arg);
	cli_usage(NULL, true);
	return CLI_USAGE;
}
