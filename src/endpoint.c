/*
 * endpoint.c - classify fds by what the kernel can do with them.
 */
#include "endpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "sys.h"

int zcio__endpoint_init(struct zcio__endpoint *e, int fd)
{
	struct stat st;
	int r;

	*e = (struct zcio__endpoint){ .fd = fd };
	r = zcio__fstat(fd, &st);
	if (r < 0)
		return r;
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	switch (st.st_mode & S_IFMT) {
	case S_IFREG:
		e->kind = ZCIO__REG;
		e->size = (uint64_t)st.st_size;
		break;
	case S_IFIFO:
		e->kind = ZCIO__PIPE;
		break;
	case S_IFSOCK:
		r = zcio__socket_type(fd);
		/* SOCK_SEQPACKET keeps message boundaries like SOCK_DGRAM;
		 * splice would merge them, so both are copied. */
		e->kind = r == SOCK_STREAM ? ZCIO__STREAM : ZCIO__DGRAM;
		break;
	case S_IFCHR:
		/* isatty() is one ioctl; terminals must be copied because the
		 * tty layer offers no splice_read and a line discipline. */
		e->kind = isatty(fd) ? ZCIO__TTY : ZCIO__CHR;
		break;
	case S_IFBLK:
		e->kind = ZCIO__BLK;
		/* st_size is 0 for devices; the size is what BLKGETSIZE64 says
		 * (left 0, unknown, if the ioctl fails). */
		(void)zcio__blkdev_size(fd, &e->size);
		break;
	case S_IFDIR:
		e->kind = ZCIO__DIR;
		break;
	default:
		/* Anonymous inodes (eventfd, timerfd, epoll) report no type. */
		e->kind = ZCIO__OTHER;
		break;
	}
	return 0;
}

static void load_flags(struct zcio__endpoint *e)
{
	int fl;

	if (e->flags_known)
		return;
	fl = zcio__getfl(e->fd);
	e->flags_known = true;
	if (fl < 0) {
		e->flags = 0;
		e->flags_failed = true;
	} else {
		e->flags = fl;
	}
}

bool zcio__endpoint_append(struct zcio__endpoint *e)
{
	load_flags(e);
	return e->flags & O_APPEND;
}

bool zcio__endpoint_nonblock(struct zcio__endpoint *e)
{
	load_flags(e);
	return e->flags & O_NONBLOCK;
}

const char *zcio__kind_name(enum zcio__kind k)
{
	static const char *const names[] = {
		[ZCIO__REG] = "file", [ZCIO__PIPE] = "pipe",
		[ZCIO__STREAM] = "stream socket", [ZCIO__DGRAM] = "datagram socket",
		[ZCIO__TTY] = "tty", [ZCIO__CHR] = "character device",
		[ZCIO__BLK] = "block device", [ZCIO__DIR] = "directory",
		[ZCIO__OTHER] = "other",
	};

	return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}

bool zcio__kind_can_sigpipe(enum zcio__kind k)
{
	return k != ZCIO__REG && k != ZCIO__BLK && k != ZCIO__DIR;
}
