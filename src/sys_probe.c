/*
 * sys_probe.c - zcio_probe(): what this kernel offers.  Part of the sys
 * layer: the only other file that talks to the kernel directly, and only to
 * ask questions that move no data.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/io_uring.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "export.h"
#include "sys.h"
#include "zcio.h"

#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY 60
#endif

ZCIO_EXPORT const char *zcio_version(void)
{
	return ZCIO_VERSION_STRING;
}

static bool syscall_present(enum zcio__syscall sc)
{
	return zcio__sc_probe(sc) == -EBADF;
}

/* SO_ZEROCOPY exists since 4.14; setting it is the kernel's own test. */
static bool msg_zerocopy_present(void)
{
	int one = 1;
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (s == -1)
		return false;
	ok = setsockopt(s, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)) == 0;
	close(s);
	return ok;
}

/*
 * TCP_ZEROCOPY_RECEIVE on an unconnected socket fails, but with EINVAL or
 * ENOTCONN (the option exists and looked at its arguments); a kernel
 * without it says ENOPROTOOPT, one without an MMU EOPNOTSUPP.
 */
static bool zerocopy_receive_present(void)
{
	struct tcp_zerocopy_receive zc;
	socklen_t len = sizeof(zc);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (s == -1)
		return false;
	memset(&zc, 0, sizeof(zc));
	ok = getsockopt(s, IPPROTO_TCP, TCP_ZEROCOPY_RECEIVE, &zc, &len) == 0 ||
	     (errno != ENOPROTOOPT && errno != EOPNOTSUPP);
	close(s);
	return ok;
}

static const struct { int op; uint32_t bit; } uring_ops[] = {
	{ IORING_OP_SPLICE, ZCIO_URING_SPLICE },
	{ IORING_OP_TEE, ZCIO_URING_TEE },
	{ IORING_OP_SEND, ZCIO_URING_SEND },
	{ IORING_OP_RECV, ZCIO_URING_RECV },
	{ IORING_OP_SEND_ZC, ZCIO_URING_SEND_ZC },
	{ IORING_OP_SENDMSG_ZC, ZCIO_URING_SENDMSG_ZC },
	{ IORING_OP_READ, ZCIO_URING_READ },
	{ IORING_OP_WRITE, ZCIO_URING_WRITE },
	{ IORING_OP_POLL_ADD, ZCIO_URING_POLL_ADD },
};

/*
 * Create a tiny ring and ask which opcodes it supports.  io_uring_setup
 * fails with ENOSYS on kernels without it and EPERM when the
 * kernel.io_uring_disabled sysctl forbids it; both are reported, not errors.
 */
static void probe_uring(struct zcio_features *f)
{
	struct io_uring_params p;
	struct io_uring_probe *probe;
	size_t size = sizeof(*probe) + 256 * sizeof(struct io_uring_probe_op);
	size_t i;
	int fd;

	memset(&p, 0, sizeof(p));
	fd = (int)syscall(__NR_io_uring_setup, 2, &p);
	if (fd < 0) {
		f->uring_error = -errno;
		return;
	}
	f->have |= ZCIO_HAVE_IO_URING;
	probe = calloc(1, size);
	if (probe && syscall(__NR_io_uring_register, fd, IORING_REGISTER_PROBE, probe, 256) == 0) {
		for (i = 0; i < sizeof(uring_ops) / sizeof(uring_ops[0]); i++) {
			int op = uring_ops[i].op;

			if (op <= probe->last_op && (probe->ops[op].flags & IO_URING_OP_SUPPORTED))
				f->uring_ops |= uring_ops[i].bit;
		}
	}
	free(probe);
	close(fd);
}

/* pipe-user-pages-* do not bind CAP_SYS_RESOURCE or CAP_SYS_ADMIN holders. */
static int pipe_limits_apply(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) != 0)
		return 1;
	return !(data[0].effective & ((1u << CAP_SYS_RESOURCE) | (1u << CAP_SYS_ADMIN)));
}

static bool pipe_resize_present(void)
{
	int fds[2];
	bool ok;

	if (pipe2(fds, O_CLOEXEC) != 0)
		return false;
	ok = fcntl(fds[0], F_GETPIPE_SZ) > 0;
	close(fds[0]);
	close(fds[1]);
	return ok;
}

ZCIO_EXPORT int zcio_probe(struct zcio_features *f)
{
	static const struct { enum zcio__syscall sc; uint32_t bit; } calls[] = {
		{ ZCIO__SC_SPLICE, ZCIO_HAVE_SPLICE },
		{ ZCIO__SC_TEE, ZCIO_HAVE_TEE },
		{ ZCIO__SC_VMSPLICE, ZCIO_HAVE_VMSPLICE },
		{ ZCIO__SC_SENDFILE, ZCIO_HAVE_SENDFILE },
		{ ZCIO__SC_COPY_FILE_RANGE, ZCIO_HAVE_COPY_FILE_RANGE },
	};
	struct utsname u;
	size_t i;

	if (!f)
		return -EINVAL;
	memset(f, 0, sizeof(*f));
	for (i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		if (syscall_present(calls[i].sc))
			f->have |= calls[i].bit;
	}
	if (msg_zerocopy_present())
		f->have |= ZCIO_HAVE_MSG_ZEROCOPY;
	if (zerocopy_receive_present())
		f->have |= ZCIO_HAVE_ZEROCOPY_RECV;
	if (pipe_resize_present())
		f->have |= ZCIO_HAVE_PIPE_RESIZE;
	probe_uring(f);
	f->page_size = (uint32_t)sysconf(_SC_PAGESIZE);
	f->pipe_max_size = zcio__read_proc_u64("/proc/sys/fs/pipe-max-size");
	f->pipe_user_pages_soft = zcio__read_proc_u64("/proc/sys/fs/pipe-user-pages-soft");
	f->pipe_user_pages_hard = zcio__read_proc_u64("/proc/sys/fs/pipe-user-pages-hard");
	f->pipe_limits_apply = pipe_limits_apply();
	if (uname(&u) == 0) {
		/* Releases are far shorter than 64 bytes; cut if not. */
		size_t n = strnlen(u.release, sizeof(f->kernel) - 1);

		memcpy(f->kernel, u.release, n);
		f->kernel[n] = '\0';
	}
	return 0;
}
