/*
 * endpoint.h - what an fd is, as far as moving bytes is concerned.
 *
 * The kind decides the route (route.c); the flags decide how to wait and
 * whether splice-family calls can work at all (O_APPEND).  Classification
 * costs one fstat(); flags and the socket type are read only when asked,
 * because the copy path of a small file never needs them.
 */
#ifndef ZCIO_ENDPOINT_H
#define ZCIO_ENDPOINT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum zcio__kind {
	ZCIO__REG,     /* regular file */
	ZCIO__PIPE,    /* pipe or FIFO */
	ZCIO__STREAM,  /* stream socket: TCP, unix SOCK_STREAM */
	ZCIO__DGRAM,   /* datagram or seqpacket socket: message boundaries */
	ZCIO__TTY,     /* terminal: line discipline, no splice */
	ZCIO__CHR,     /* other character device: /dev/null, /dev/zero */
	ZCIO__BLK,     /* block device */
	ZCIO__DIR,     /* directory: an error */
	ZCIO__OTHER,   /* eventfd, epoll, signalfd...: plain read/write */
};

struct zcio__endpoint {
	int fd;
	enum zcio__kind kind;
	uint64_t size;      /* st_size for regular files, else 0 */
	dev_t dev;
	ino_t ino;
	int flags;          /* F_GETFL, valid when flags_known */
	bool flags_known;
	bool flags_failed;  /* F_GETFL failed: assume blocking, no O_APPEND */
};

/* Classify fd (one fstat; one getsockopt for sockets).  Returns 0 or
 * -errno (-EBADF for a closed fd). */
int zcio__endpoint_init(struct zcio__endpoint *e, int fd);

/* O_APPEND / O_NONBLOCK, reading F_GETFL on first use.  When F_GETFL fails
 * both are assumed false: the syscalls' own errors still catch O_APPEND
 * (EINVAL/EBADF) and EAGAIN still leads to poll(). */
bool zcio__endpoint_append(struct zcio__endpoint *e);
bool zcio__endpoint_nonblock(struct zcio__endpoint *e);

/* Human name of a kind, for messages and tests. */
const char *zcio__kind_name(enum zcio__kind k);

/* Can this kind take a SIGPIPE when written to (pipe, socket, device)? */
bool zcio__kind_can_sigpipe(enum zcio__kind k);

#endif
