/*
 * probe.c - print what zcio_probe() finds in the running kernel: which
 * zero-copy mechanisms exist, which io_uring operations, and the pipe
 * limits that decide how large zcio's pipes can be.
 *
 *   probe
 *
 * Build: cc probe.c $(pkg-config --cflags --libs zcio) -o probe
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <zcio.h>

static const struct { uint32_t bit; const char *name; } haves[] = {
	{ ZCIO_HAVE_SPLICE, "splice" },
	{ ZCIO_HAVE_TEE, "tee" },
	{ ZCIO_HAVE_VMSPLICE, "vmsplice" },
	{ ZCIO_HAVE_SENDFILE, "sendfile" },
	{ ZCIO_HAVE_COPY_FILE_RANGE, "copy_file_range" },
	{ ZCIO_HAVE_MSG_ZEROCOPY, "msg_zerocopy" },
	{ ZCIO_HAVE_IO_URING, "io_uring" },
	{ ZCIO_HAVE_ZEROCOPY_RECV, "zerocopy_receive" },
	{ ZCIO_HAVE_PIPE_RESIZE, "pipe_resize" },
};

static const struct { uint32_t bit; const char *name; } uring_ops[] = {
	{ ZCIO_URING_SPLICE, "splice" },
	{ ZCIO_URING_TEE, "tee" },
	{ ZCIO_URING_SEND, "send" },
	{ ZCIO_URING_RECV, "recv" },
	{ ZCIO_URING_SEND_ZC, "send_zc" },
	{ ZCIO_URING_SENDMSG_ZC, "sendmsg_zc" },
	{ ZCIO_URING_READ, "read" },
	{ ZCIO_URING_WRITE, "write" },
	{ ZCIO_URING_POLL_ADD, "poll_add" },
};

/* 0 in the pipe limits means "could not read it" or "no limit". */
static void print_limit(const char *name, uint64_t v, const char *unit)
{
	if (v)
		printf("%-20s %" PRIu64 " %s\n", name, v, unit);
	else
		printf("%-20s none or unknown\n", name);
}

int main(void)
{
	struct zcio_features f;
	size_t i;
	int r = zcio_probe(&f);

	if (r < 0) {
		fprintf(stderr, "probe: %s\n", strerror(-r));
		return 1;
	}
	/* A program built against one header and run with another library
	 * shows it here. */
	printf("%-20s %s (header %s)\n", "zcio", zcio_version(), ZCIO_VERSION_STRING);
	printf("%-20s %s\n", "kernel", f.kernel);
	for (i = 0; i < sizeof(haves) / sizeof(haves[0]); i++)
		printf("%-20s %s\n", haves[i].name, (f.have & haves[i].bit) ? "yes" : "no");
	if (f.have & ZCIO_HAVE_IO_URING) {
		printf("%-20s", "io_uring ops");
		for (i = 0; i < sizeof(uring_ops) / sizeof(uring_ops[0]); i++) {
			if (f.uring_ops & uring_ops[i].bit)
				printf(" %s", uring_ops[i].name);
		}
		printf("\n");
	} else {
		printf("%-20s %s\n", "io_uring error", strerror(-f.uring_error));
	}
	printf("%-20s %" PRIu32 " bytes\n", "page size", f.page_size);
	print_limit("pipe-max-size", f.pipe_max_size, "bytes");
	print_limit("pipe-user-pages-soft", f.pipe_user_pages_soft, "pages");
	print_limit("pipe-user-pages-hard", f.pipe_user_pages_hard, "pages");
	printf("%-20s %s\n", "pipe limits apply", f.pipe_limits_apply ? "yes" : "no");
	return 0;
}
