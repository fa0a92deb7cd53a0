/*
 * fallback.h - errnos that mean "unsupported here, fall back".
 *
 * Each function takes a positive errno from its syscall and returns the
 * enum zcio_reason to record when the path must be left, or 0 when the
 * errno is a real error for the caller.
 */
#ifndef ZCIO_FALLBACK_H
#define ZCIO_FALLBACK_H

int zcio__cfr_unsupported(int err);
int zcio__sendfile_unsupported(int err);
int zcio__splice_unsupported(int err);

#endif
