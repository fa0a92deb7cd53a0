/*
 * sys.c - raw syscalls turned into -errno, EINTR retried, availability cached.
 */
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <time.h>
#include <unistd.h>

#include "zcio.h"

/* Retry a call returning -1/errno while it fails with EINTR. */
#define RETRY(expr)                                                     \
	({                                                              \
		__typeof__(expr) r_;                                    \
		do {                                                    \
			r_ = (expr);                                    \
		} while (r_ == -1 && errno == EINTR);                   \
		r_ == -1 ? -(__typeof__(expr))errno : r_;               \
	})

/* Bit per enum zcio__syscall: set once the syscall is known unusable, and
 * in `forbidden` too when a filter refuses it (so later calls still report
 * seccomp, not a missing syscall). */
static atomic_uint unavailable;
static atomic_uint forbidden;

bool zcio__sc_unavailable(enum zcio__syscall sc)
{
	return atomic_load_explicit(&unavailable, memory_order_relaxed) & (1u << sc);
}

int zcio__sc_unavailable_why(enum zcio__syscall sc)
{
	if (!zcio__sc_unavailable(sc))
		return 0;
	if (atomic_load_explicit(&forbidden, memory_order_relaxed) & (1u << sc))
		return ZCIO_WHY_FORBIDDEN;
	return ZCIO_WHY_NOSYS;
}

void zcio__sc_reset(void)
{
	atomic_store(&unavailable, 0);
	atomic_store(&forbidden, 0);
}

static void mark_unavailable(enum zcio__syscall sc)
{
	atomic_fetch_or(&unavailable, 1u << sc);
}

/*
 * Call sc with invalid fds.  A kernel that has the syscall and a sandbox that
 * allows it answer EBADF before looking at anything else; a seccomp filter
 * answers with its own errno (usually EPERM or ENOSYS) whatever the
 * arguments.  This is how Rust's std tells the two EPERMs apart.
 */
int zcio__sc_probe(enum zcio__syscall sc)
{
	struct iovec iov = { .iov_base = NULL, .iov_len = 0 };
	long r = -1;

	switch (sc) {
	case ZCIO__SC_SPLICE:
		r = splice(-1, NULL, -1, NULL, 1, 0);
		break;
	case ZCIO__SC_TEE:
		r = tee(-1, -1, 1, 0);
		break;
	case ZCIO__SC_VMSPLICE:
		r = vmsplice(-1, &iov, 1, 0);
		break;
	case ZCIO__SC_SENDFILE:
		r = sendfile(-1, -1, NULL, 1);
		break;
	case ZCIO__SC_COPY_FILE_RANGE:
		r = copy_file_range(-1, NULL, -1, NULL, 1, 0);
		break;
	case ZCIO__SC_COUNT:
		return -EINVAL;
	}
	return r == -1 ? -errno : 0;
}

int zcio__sc_classify(enum zcio__syscall sc, int err)
{
	int probe;

	switch (err) {
	case ENOSYS:
		/* The kernel was built without it, or it predates it: the
		 * answer cannot change while this process lives. */
		mark_unavailable(sc);
		return ZCIO_WHY_NOSYS;
	case EPERM:
		probe = zcio__sc_probe(sc);
		if (probe == -EBADF) {
			/* The syscall works; these fds are the problem (an
			 * immutable or append-only file, CIFS refusing
			 * copy_file_range).  Only this pair falls back. */
			return ZCIO_WHY_REFUSED;
		}
		/* Refused whatever the arguments: a seccomp filter (Docker's
		 * default profile once did this to copy_file_range).  Filters
		 * cannot be removed, so caching is safe. */
		atomic_fetch_or(&forbidden, 1u << sc);
		mark_unavailable(sc);
		return ZCIO_WHY_FORBIDDEN;
	default:
		return 0;
	}
}

ssize_t zcio__read(int fd, void *buf, size_t n)
{
	return RETRY(read(fd, buf, n));
}

ssize_t zcio__pread(int fd, void *buf, size_t n, uint64_t off)
{
	return RETRY(pread(fd, buf, n, (off_t)off));
}

ssize_t zcio__write(int fd, const void *buf, size_t n)
{
	return RETRY(write(fd, buf, n));
}

ssize_t zcio__writev(int fd, const struct iovec *iov, int iovcnt)
{
	return RETRY(writev(fd, iov, iovcnt));
}

ssize_t zcio__send(int fd, const void *buf, size_t n, int flags)
{
	return RETRY(send(fd, buf, n, flags | MSG_NOSIGNAL));
}

ssize_t zcio__sendmsg(int fd, const struct msghdr *msg, int flags)
{
	return RETRY(sendmsg(fd, msg, flags | MSG_NOSIGNAL));
}

ssize_t zcio__recv(int fd, void *buf, size_t n, int flags)
{
	return RETRY(recv(fd, buf, n, flags));
}

ssize_t zcio__splice(int in, loff_t *off_in, int out, loff_t *off_out,
		     size_t n, unsigned int flags)
{
	return RETRY(splice(in, off_in, out, off_out, n, flags));
}

ssize_t zcio__tee(int in, int out, size_t n, unsigned int flags)
{
	return RETRY(tee(in, out, n, flags));
}

ssize_t zcio__vmsplice(int fd, const struct iovec *iov, unsigned long nr,
		       unsigned int flags)
{
	return RETRY(vmsplice(fd, iov, nr, flags));
}

ssize_t zcio__sendfile(int out, int in, off_t *off, size_t n)
{
	return RETRY(sendfile(out, in, off, n));
}

ssize_t zcio__copy_file_range(int in, loff_t *off_in, int out, loff_t *off_out,
			      size_t n, unsigned int flags)
{
	return RETRY(copy_file_range(in, off_in, out, off_out, n, flags));
}

int zcio__fstat(int fd, struct stat *st)
{
	return RETRY(fstat(fd, st));
}

int zcio__getfl(int fd)
{
	return RETRY(fcntl(fd, F_GETFL));
}

int zcio__pipe2(int fds[2], int flags)
{
	return RETRY(pipe2(fds, flags));
}

int zcio__pipe_set_size(int fd, unsigned int size)
{
	return RETRY(fcntl(fd, F_SETPIPE_SZ, (int)size));
}

int zcio__pipe_get_size(int fd)
{
	return RETRY(fcntl(fd, F_GETPIPE_SZ));
}

int zcio__pipe_bytes(int fd)
{
	int n = 0;
	int r = RETRY(ioctl(fd, FIONREAD, &n));

	return r < 0 ? r : n;
}

int64_t zcio__lseek(int fd, int64_t off, int whence)
{
	return RETRY((int64_t)lseek(fd, (off_t)off, whence));
}

int zcio__socket_type(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);
	int r = RETRY(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len));

	return r < 0 ? r : type;
}

int zcio__blkdev_size(int fd, uint64_t *size)
{
	return RETRY(ioctl(fd, BLKGETSIZE64, size));
}

int zcio__close(int fd)
{
	/* Linux releases the fd even when close() reports EINTR, so it must
	 * not be retried: the number may already belong to another thread. */
	return close(fd) == -1 && errno != EINTR ? -errno : 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int zcio__wait(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;

	for (;;) {
		int left = -1;
		int r;

		if (timeout_ms > 0) {
			int64_t d = deadline - now_ms();

			left = d > 0 ? (int)d : 0;
		}
		r = poll(&p, 1, left);
		if (r > 0) {
			/* POLLNVAL: not an open fd, which the caller's next
			 * syscall reports as EBADF. */
			return 0;
		}
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

int zcio__which_blocked(int in, int out)
{
	struct pollfd p[2] = {
		{ .fd = in, .events = POLLIN },
		{ .fd = out, .events = POLLOUT },
	};
	int r;

	do {
		r = poll(p, 2, 0);
	} while (r == -1 && errno == EINTR);
	if (r < 0)
		return 0;
	/* The destination first: a full destination is the common stall, and
	 * a source that is both empty and at EOF would show POLLHUP. */
	if (!(p[1].revents & (POLLOUT | POLLERR | POLLHUP | POLLNVAL)))
		return 2;
	if (!(p[0].revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL)))
		return 1;
	return 0;
}

int zcio__poll(struct pollfd *fds, unsigned int n, int timeout_ms)
{
	return RETRY(poll(fds, (nfds_t)n, timeout_ms));
}

int zcio__open(const char *path, int flags)
{
	return RETRY(open(path, flags | O_CLOEXEC));
}

uint64_t zcio__read_proc_u64(const char *path)
{
	char buf[32];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1)
		return 0;
	n = zcio__read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtoull(buf, NULL, 10);
}

ssize_t zcio__recvmsg(int fd, struct msghdr *msg, int flags)
{
	return RETRY(recvmsg(fd, msg, flags));
}

int zcio__setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	return RETRY(setsockopt(fd, level, name, val, len));
}

int zcio__getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	return RETRY(getsockopt(fd, level, name, val, len));
}

int zcio__mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off, void **out)
{
	void *p = mmap(addr, len, prot, flags, fd, (off_t)off);

	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

int zcio__munmap(void *addr, size_t len)
{
	return munmap(addr, len) == -1 ? -errno : 0;
}

int zcio__madvise(void *addr, size_t len, int advice)
{
	return RETRY(madvise(addr, len, advice));
}

int zcio__memfd(const char *name, unsigned int flags)
{
	return RETRY(memfd_create(name, flags | MFD_CLOEXEC));
}

int zcio__ftruncate(int fd, uint64_t len)
{
	return RETRY(ftruncate(fd, (off_t)len));
}
