/*
 * send_file.c - zcio_send_file(): a header and a file's bytes as one stream.
 */
#include <errno.h>

#include "export.h"
#include "move.h"
#include "route.h"
#include "stats.h"
#include "transfer.h"
#include "zcio.h"

ZCIO_EXPORT int64_t zcio_send_file(int out, const void *hdr, size_t hdrlen,
				   int fd, uint64_t off, uint64_t len,
				   const struct zcio_opts *opts, struct zcio_stats *stats)
{
	static const struct zcio_opts defaults;
	struct zcio_stats local = { 0 };
	struct zcio_stats *st = stats ? stats : &local;
	const struct zcio_opts *o = opts ? opts : &defaults;
	struct zcio__move m;
	uint64_t body;
	int r;

	zcio__stats_begin(st);
	if (!hdr && hdrlen)
		return -EINVAL;
	r = zcio__transfer_setup(&m, fd, out, o, st);
	if (r < 0)
		return r;
	if (m.in.kind != ZCIO__REG && m.in.kind != ZCIO__BLK)
		return -EINVAL;
	if (len == ZCIO_TO_EOF)
		body = m.in.size > off ? m.in.size - off : 0;
	else
		body = len;
	m.want = body;
	m.positional = true;
	m.in_off = off;
	m.in_end = m.in.size; /* regular files and block devices */
	m.hdr = hdr;
	m.hdr_len = hdrlen;

	r = zcio__transfer_run(&m, hdrlen + body, zcio__threshold(o->copy_threshold));
	if (r < 0)
		return r;
	if (m.done < body) {
		/* The file is shorter than promised (truncated while we
		 * sent it): the receiver was told `body` bytes, so the
		 * caller must end the stream rather than pad it. */
		return -ENODATA;
	}
	return (int64_t)(m.hdr_done + m.done);
}
