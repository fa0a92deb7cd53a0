/*
 * sys.h - the kernel, as zcio sees it.
 *
 * Every raw syscall zcio makes goes through here.  Each wrapper returns
 * >= 0 on success or -errno on failure, retries EINTR (a signal that arrives
 * before any byte moved; after progress the kernel returns the partial count
 * instead), and never leaves errno for the caller to read.
 *
 * It also remembers, process-wide, which data-moving syscalls the kernel (or
 * a seccomp filter) does not offer at all, so they are tried once, not on
 * every call.
 */
#ifndef ZCIO_SYS_H
#define ZCIO_SYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/socket.h>

/* Data-moving syscalls whose availability is cached. */
enum zcio__syscall {
	ZCIO__SC_SPLICE,
	ZCIO__SC_TEE,
	ZCIO__SC_VMSPLICE,
	ZCIO__SC_SENDFILE,
	ZCIO__SC_COPY_FILE_RANGE,
	ZCIO__SC_COUNT
};

/* True once the syscall is known to be missing or forbidden process-wide. */
bool zcio__sc_unavailable(enum zcio__syscall sc);

/* Why it is: ZCIO_WHY_NOSYS or ZCIO_WHY_FORBIDDEN; 0 while it is usable. */
int zcio__sc_unavailable_why(enum zcio__syscall sc);

/*
 * Classify an errno returned by one of the cached syscalls.  Returns:
 *   ZCIO_WHY_NOSYS      ENOSYS: the kernel lacks it; cached process-wide.
 *   ZCIO_WHY_FORBIDDEN  EPERM, and a probe with invalid fds also gets EPERM
 *                       or ENOSYS: a seccomp filter; cached process-wide.
 *   ZCIO_WHY_REFUSED    EPERM that the probe shows is about these fds (an
 *                       immutable file, CIFS): not cached.
 *   0                   any other errno: not an availability question.
 */
int zcio__sc_classify(enum zcio__syscall sc, int err);

/* Call sc with invalid fds: -EBADF means the syscall is there and allowed. */
int zcio__sc_probe(enum zcio__syscall sc);

/* Forget the cache (unit tests only). */
void zcio__sc_reset(void);

ssize_t zcio__read(int fd, void *buf, size_t n);
ssize_t zcio__pread(int fd, void *buf, size_t n, uint64_t off);
ssize_t zcio__write(int fd, const void *buf, size_t n);
ssize_t zcio__writev(int fd, const struct iovec *iov, int iovcnt);
/* send()/sendmsg() with MSG_NOSIGNAL always added. */
ssize_t zcio__send(int fd, const void *buf, size_t n, int flags);
ssize_t zcio__sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t zcio__recv(int fd, void *buf, size_t n, int flags);

ssize_t zcio__splice(int in, loff_t *off_in, int out, loff_t *off_out,
		     size_t n, unsigned int flags);
ssize_t zcio__tee(int in, int out, size_t n, unsigned int flags);
ssize_t zcio__vmsplice(int fd, const struct iovec *iov, unsigned long nr,
		       unsigned int flags);
ssize_t zcio__sendfile(int out, int in, off_t *off, size_t n);
ssize_t zcio__copy_file_range(int in, loff_t *off_in, int out, loff_t *off_out,
			      size_t n, unsigned int flags);

int zcio__fstat(int fd, struct stat *st);
int zcio__getfl(int fd);
int zcio__pipe2(int fds[2], int flags);
int zcio__pipe_set_size(int fd, unsigned int size); /* new size or -errno */
int zcio__pipe_get_size(int fd);                    /* size or -errno */
int zcio__pipe_bytes(int fd);                       /* FIONREAD or -errno */
int64_t zcio__lseek(int fd, int64_t off, int whence);
int zcio__socket_type(int fd);                      /* SO_TYPE or -errno */
int zcio__close(int fd);
/* Size in bytes of a block device.  Returns 0 or -errno. */
int zcio__blkdev_size(int fd, uint64_t *size);

/*
 * Wait until fd is ready for events (POLLIN or POLLOUT), or an error or
 * hang-up is pending on it (the next syscall will report it).  timeout_ms
 * <= 0 waits forever.  Returns 0, -ETIMEDOUT, or -errno.
 */
int zcio__wait(int fd, short events, int timeout_ms);

/*
 * For an EAGAIN where either of two nonblocking fds may have blocked: check
 * both without waiting and return which one is not ready (1: in, 2: out),
 * or 0 when both look ready.
 */
int zcio__which_blocked(int in, int out);

/* poll() on n fds, EINTR retried (with the full timeout again: callers
 * pass 0 or loop on their own deadline).  Returns the number of fds with
 * events, 0 on timeout, or -errno. */
struct pollfd;
int zcio__poll(struct pollfd *fds, unsigned int n, int timeout_ms);

/* open() with O_CLOEXEC added, for existing files (no O_CREAT: no mode is
 * passed).  Returns the fd or -errno. */
int zcio__open(const char *path, int flags);

/* Read a small unsigned integer from a /proc file; 0 when unreadable. */
uint64_t zcio__read_proc_u64(const char *path);

/* ---- memory and socket options (zero-copy from user memory) ---- */

/* recvmsg(), for the error queue (MSG_ERRQUEUE) among others. */
ssize_t zcio__recvmsg(int fd, struct msghdr *msg, int flags);
int zcio__setsockopt(int fd, int level, int name, const void *val, socklen_t len);
/* getsockopt(); *len is updated.  0 or -errno. */
int zcio__getsockopt(int fd, int level, int name, void *val, socklen_t *len);
/* mmap(): 0 and *out set, or -errno. */
int zcio__mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off, void **out);
int zcio__munmap(void *addr, size_t len);
int zcio__madvise(void *addr, size_t len, int advice);
/* memfd_create() with MFD_CLOEXEC added: the fd or -errno. */
int zcio__memfd(const char *name, unsigned int flags);
int zcio__ftruncate(int fd, uint64_t len);

#endif
