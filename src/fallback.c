/*
 * fallback.c - which errnos mean "this path cannot do this pair: fall back".
 *
 * Every errno listed here comes with the kernel or filesystem behaviour
 * behind it.  The syscall has moved no data when it fails, so falling back
 * loses nothing; an errno not listed is a real error and is returned.
 * ENOSYS and EPERM go through zcio__sc_classify(), which caches a missing or
 * forbidden syscall process-wide.
 */
#include "fallback.h"

#include <errno.h>

#include "sys.h"
#include "zcio.h"

int zcio__cfr_unsupported(int err)
{
	int why = zcio__sc_classify(ZCIO__SC_COPY_FILE_RANGE, err);

	if (why)
		return why; /* ENOSYS, EPERM */
	switch (err) {
	case EXDEV:
		/* Different filesystems: allowed 5.3-5.18, refused again
		 * since 5.19 unless the filesystem supports it. */
		return ZCIO_WHY_CROSS_FS;
	case EINVAL:     /* not regular files, overlapping ranges in one
			    file, or a filesystem without support */
	case EOPNOTSUPP: /* filesystem without copy support (EOPNOTSUPP ==
			    ENOTSUP on Linux) */
	case EBADF:      /* an O_APPEND destination */
	case EIO:        /* CIFS/SMB servers without server-side copy */
	case EACCES:     /* CephFS before 4.20 */
	case EOVERFLOW:  /* offset + length past the filesystem maximum */
	case ETXTBSY:    /* a swap file as either end */
		return ZCIO_WHY_REFUSED;
	default:
		return 0;
	}
}

int zcio__sendfile_unsupported(int err)
{
	int why = zcio__sc_classify(ZCIO__SC_SENDFILE, err);

	if (why)
		return why; /* ENOSYS, EPERM */
	switch (err) {
	case EINVAL:     /* source cannot be mapped/spliced (procfs files,
			    some FUSE), O_APPEND destination, or a
			    destination without splice_write */
	case EOPNOTSUPP: /* filesystem without splice_read */
	case EOVERFLOW:  /* offset past what the source supports */
	case ESPIPE:     /* an unseekable source passed as a file */
		return ZCIO_WHY_REFUSED;
	default:
		return 0;
	}
}

int zcio__splice_unsupported(int err)
{
	int why = zcio__sc_classify(ZCIO__SC_SPLICE, err);

	if (why)
		return why; /* ENOSYS, EPERM */
	switch (err) {
	case EINVAL:     /* an end without splice_read/splice_write (many
			    procfs/sysfs files since 5.10, some character
			    devices), an O_APPEND destination, unix sockets
			    on old kernels */
	case EOPNOTSUPP: /* a socket family without splice support */
	case ESPIPE:     /* an offset given for an unseekable end */
		return ZCIO_WHY_REFUSED;
	default:
		return 0;
	}
}
