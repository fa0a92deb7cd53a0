/*
 * probe.c - `zcio probe`: which ways of moving bytes this kernel offers, as
 * aligned "name: value" lines or one JSON object with stable keys.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

enum { OPT_JSON };

static const struct cli_option probe_options[] = {
	[OPT_JSON] = { NULL, "--json", NULL, "print one JSON object, with the keys listed above, instead of lines" },
	{ NULL, NULL, NULL, NULL },
};

/* Each ZCIO_HAVE_* bit: its line label and its JSON key. */
static const struct { uint32_t bit; const char *label, *key; } haves[] = {
	{ ZCIO_HAVE_SPLICE, "splice", "splice" },
	{ ZCIO_HAVE_TEE, "tee", "tee" },
	{ ZCIO_HAVE_VMSPLICE, "vmsplice", "vmsplice" },
	{ ZCIO_HAVE_SENDFILE, "sendfile", "sendfile" },
	{ ZCIO_HAVE_COPY_FILE_RANGE, "copy_file_range", "copy_file_range" },
	{ ZCIO_HAVE_MSG_ZEROCOPY, "MSG_ZEROCOPY", "msg_zerocopy" },
	{ ZCIO_HAVE_ZEROCOPY_RECV, "TCP_ZEROCOPY_RECEIVE", "tcp_zerocopy_receive" },
	{ ZCIO_HAVE_PIPE_RESIZE, "pipe resize (F_SETPIPE_SZ)", "pipe_resize" },
};

/* The io_uring opcodes of zcio_features.uring_ops. */
static const struct { uint32_t bit; const char *label, *key; } uring_ops[] = {
	{ ZCIO_URING_SPLICE, "io_uring SPLICE", "splice" },
	{ ZCIO_URING_TEE, "io_uring TEE", "tee" },
	{ ZCIO_URING_SEND, "io_uring SEND", "send" },
	{ ZCIO_URING_RECV, "io_uring RECV", "recv" },
	{ ZCIO_URING_SEND_ZC, "io_uring SEND_ZC", "send_zc" },
	{ ZCIO_URING_SENDMSG_ZC, "io_uring SENDMSG_ZC", "sendmsg_zc" },
	{ ZCIO_URING_READ, "io_uring READ", "read" },
	{ ZCIO_URING_WRITE, "io_uring WRITE", "write" },
	{ ZCIO_URING_POLL_ADD, "io_uring POLL_ADD", "poll_add" },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define LABEL_WIDTH 28

static void line(const char *label, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(const char *label, const char *fmt, ...)
{
	va_list ap;

	printf("%s:%*s", label, (int)(LABEL_WIDTH - strlen(label)), "");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* A /proc limit: 0 means unreadable, or (pipe-user-pages-*) unlimited. */
static void limit_line(const char *label, uint64_t v, const char *zero)
{
	if (v)
		line(label, "%" PRIu64, v);
	else
		line(label, "%s", zero);
}

static void print_lines(const struct zcio_features *f)
{
	size_t i;

	for (i = 0; i < N(haves); i++)
		line(haves[i].label, "%s", f->have & haves[i].bit ? "yes" : "no");
	if (f->have & ZCIO_HAVE_IO_URING)
		line("io_uring", "yes");
	else
		line("io_uring", "no (io_uring_setup: %s)", strerror(-f->uring_error));
	for (i = 0; i < N(uring_ops); i++)
		line(uring_ops[i].label, "%s", f->uring_ops & uring_ops[i].bit ? "yes" : "no");
	limit_line("pipe-max-size", f->pipe_max_size, "unknown");
	limit_line("pipe-user-pages-soft", f->pipe_user_pages_soft, "unlimited");
	limit_line("pipe-user-pages-hard", f->pipe_user_pages_hard, "unlimited");
	line("pipe limits apply", "%s", f->pipe_limits_apply ? "yes" : "no (privileged)");
	line("kernel", "%s", f->kernel);
	line("page size", "%" PRIu32, f->page_size);
	line("zcio version", "%s", zcio_version());
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void json_count(const char *key, uint64_t v)
{
	printf(",\n  \"%s\": ", key);
	if (v)
		printf("%" PRIu64, v);
	else
		printf("null");
}

static void print_json(const struct zcio_features *f)
{
	size_t i;

	printf("{\n  \"version\": ");
	json_string(zcio_version());
	printf(",\n  \"kernel\": ");
	json_string(f->kernel);
	printf(",\n  \"page_size\": %" PRIu32, f->page_size);
	for (i = 0; i < N(haves); i++)
		printf(",\n  \"%s\": %s", haves[i].key, f->have & haves[i].bit ? "true" : "false");
	printf(",\n  \"io_uring\": %s", f->have & ZCIO_HAVE_IO_URING ? "true" : "false");
	printf(",\n  \"io_uring_errno\": %d", -f->uring_error);
	printf(",\n  \"io_uring_error\": ");
	if (f->uring_error)
		json_string(strerror(-f->uring_error));
	else
		printf("null");
	printf(",\n  \"io_uring_ops\": {");
	for (i = 0; i < N(uring_ops); i++)
		printf("%s\"%s\": %s", i ? ", " : "", uring_ops[i].key,
		       f->uring_ops & uring_ops[i].bit ? "true" : "false");
	printf("}");
	json_count("pipe_max_size", f->pipe_max_size);
	json_count("pipe_user_pages_soft", f->pipe_user_pages_soft);
	json_count("pipe_user_pages_hard", f->pipe_user_pages_hard);
	printf(",\n  \"pipe_limits_apply\": %s\n}\n", f->pipe_limits_apply ? "true" : "false");
}

static int probe_run(int argc, char **argv)
{
	struct zcio_features f;
	struct cli_args args;
	bool json = false;
	int opt, r;

	cli_args_init(&args, &cli_probe, argc, argv);
	while ((opt = cli_args_next(&args)) >= 0) {
		if (opt == OPT_JSON)
			json = true;
	}
	if (args.noperands)
		return cli_usage_error(&cli_probe, "extra operand '%s'", args.operands[0]);
	r = zcio_probe(&f);
	if (r < 0) {
		cli_error("probe", "%s", strerror(-r));
		return CLI_ERROR;
	}
	if (json)
		print_json(&f);
	else
		print_lines(&f);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		cli_error("probe", "write error: %s", strerror(errno));
		return CLI_ERROR;
	}
	return CLI_OK;
}

const struct cli_command cli_probe = {
	.name = "probe",
	.synopsis = "[--json]",
	.summary = "show which ways of moving bytes this kernel offers",
	.description =
		"Asks the running kernel, without moving any data, which mechanisms\n"
		"zcio can use: the splice family, sendfile, copy_file_range,\n"
		"MSG_ZEROCOPY, io_uring and each io_uring opcode zcio uses,\n"
		"TCP_ZEROCOPY_RECEIVE and pipe resizing; and the pipe limits that\n"
		"decide how many large pipes this process may have.  A mechanism\n"
		"listed as missing is one zcio falls back from, never one it fails on.\n"
		"\n"
		"With --json the same facts form one object with these keys:\n"
		"\n"
		"  version                  zcio library version (string)\n"
		"  kernel                   kernel release, as uname -r (string)\n"
		"  page_size                bytes (number)\n"
		"  splice, tee, vmsplice, sendfile, copy_file_range,\n"
		"  msg_zerocopy, tcp_zerocopy_receive, pipe_resize  (true/false)\n"
		"  io_uring                 io_uring_setup works (true/false)\n"
		"  io_uring_errno           its errno when it does not, else 0\n"
		"  io_uring_error           that error's text, or null\n"
		"  io_uring_ops             object: splice, tee, send, recv, send_zc,\n"
		"                           sendmsg_zc, read, write, poll_add (true/false)\n"
		"  pipe_max_size            /proc/sys/fs/pipe-max-size, null if unreadable\n"
		"  pipe_user_pages_soft     /proc/sys/fs/pipe-user-pages-soft, null\n"
		"  pipe_user_pages_hard     and -hard; null if unlimited or unreadable\n"
		"  pipe_limits_apply        true unless CAP_SYS_RESOURCE/CAP_SYS_ADMIN\n"
		"\n"
		"Keys are only ever added, never renamed or removed.",
	.options = probe_options,
	.examples =
		"zcio probe\n"
		"zcio probe --json | jq .io_uring_ops",
	.run = probe_run,
};
