/*
 * copy.c - zcio_copy(): a blocking move of N bytes, or to EOF, along the
 * route for its two fds, falling back path by path from the exact byte where
 * the previous path stopped.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "export.h"
#include "move.h"
#include "route.h"
#include "stats.h"
#include "sys.h"
#include "transfer.h"
#include "zcio.h"

/*
 * After an error, put a regular-file source's offset back to the first byte
 * not delivered, so nothing is lost: the caller can retry or resume.
 */
static void rewind_stranded(struct zcio__move *m)
{
	if (m->positional) {
		/* Nothing was consumed: the caller's offset + last_bytes is
		 * the first byte not delivered. */
		m->stranded = 0;
		return;
	}
	if (!m->stranded)
		return;
	if (m->in.kind != ZCIO__REG && m->in.kind != ZCIO__BLK)
		return;
	if (zcio__lseek(m->in.fd, -(int64_t)m->stranded, SEEK_CUR) >= 0)
		m->stranded = 0;
}

/*
 * A regular file copied onto itself to EOF, with the writes landing ahead
 * of the reads (an O_APPEND destination, or the destination's offset past
 * the source's), reads back its own output and never ends: it fills the
 * disk.  Costs nothing unless both ends are the same inode.
 */
static bool endless_self_copy(struct zcio__move *m)
{
	int64_t in_pos, out_pos;

	if (m->in.kind != ZCIO__REG || m->out.kind != ZCIO__REG ||
	    m->in.dev != m->out.dev || m->in.ino != m->out.ino)
		return false;
	if (zcio__endpoint_append(&m->out))
		return true;
	in_pos = m->positional ? (int64_t)m->in_off : zcio__lseek(m->in.fd, 0, SEEK_CUR);
	out_pos = zcio__lseek(m->out.fd, 0, SEEK_CUR);
	return in_pos >= 0 && out_pos >= 0 && in_pos < out_pos;
}

ZCIO_EXPORT int64_t zcio_copy(int in, int out, uint64_t len,
			      const struct zcio_opts *opts, struct zcio_stats *stats)
{
	static const struct zcio_opts defaults;
	struct zcio_stats local = { 0 };
	struct zcio_stats *st = stats ? stats : &local;
	const struct zcio_opts *o = opts ? opts : &defaults;
	struct zcio__move m;
	uint64_t size = UINT64_MAX;
	uint32_t threshold;
	bool restore_offset = false;
	int r;

	zcio__stats_begin(st);
	if (len == 0)
		return 0;
	r = zcio__transfer_setup(&m, in, out, o, st);
	if (r < 0)
		return r;
	m.want = len;
	if (o->flags & ZCIO_F_OFFSET) {
		if (m.in.kind != ZCIO__REG && m.in.kind != ZCIO__BLK)
			return -ESPIPE;
		m.positional = true;
		m.in_off = o->in_offset;
	}
	/* Overlapping ranges of one file that can never reach EOF are
	 * refused before any byte moves (EDGE-CASES #10), with the errno
	 * copy_file_range() gives for overlapping ranges. */
	if (len == ZCIO_TO_EOF && endless_self_copy(&m))
		return -EINVAL;
	/*
	 * How much is coming, for the threshold: the length asked for, or at
	 * most a regular file's size (a size of 0 is procfs or empty: either
	 * way one read() settles it).  Unknown for pipes and sockets.
	 */
	if (len != ZCIO_TO_EOF)
		size = len;
	if (m.in.kind == ZCIO__REG && m.in.size < size)
		size = m.in.size;

	threshold = zcio__threshold(o->copy_threshold);
	/*
	 * A regular file headed for a zero-copy path is read positionally
	 * from its current offset up to the size it has now, so every count
	 * is exact (see to_take() in move.c), and its offset is set once at
	 * the end: just past the last byte delivered, even after an error.
	 * Small files keep plain read(), which moves the offset itself.
	 */
	if (!m.positional && m.in.kind == ZCIO__REG && size >= threshold &&
	    !(o->flags & (ZCIO_F_COPY | ZCIO_F_STABLE))) {
		int64_t pos = zcio__lseek(in, 0, SEEK_CUR);

		if (pos >= 0) {
			m.positional = true;
			m.in_off = (uint64_t)pos;
			restore_offset = true;
		}
	}
	if (m.positional && m.in.kind == ZCIO__REG)
		m.in_end = m.in.size;

	r = zcio__transfer_run(&m, size, threshold);
	if (restore_offset)
		(void)zcio__lseek(in, (int64_t)m.in_off - (int64_t)m.stranded, SEEK_SET);
	if (r < 0) {
		rewind_stranded(&m);
		st->stranded = m.stranded;
		return r;
	}
	return (int64_t)m.done;
}
