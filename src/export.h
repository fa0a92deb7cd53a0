/*
 * export.h - marks the functions that form the public ABI.
 *
 * The library is built with -fvisibility=hidden; only functions marked
 * ZCIO_EXPORT (and listed in libzcio.map) are visible to programs.
 */
#ifndef ZCIO_EXPORT_H
#define ZCIO_EXPORT_H

#define ZCIO_EXPORT __attribute__((visibility("default")))

#endif
