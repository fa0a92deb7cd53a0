/*
 * mime.h - Content-Type by file name extension, for `zcio serve`.
 *
 * The table comes from /etc/mime.types when the system has it, else from a
 * built-in list of the types web pages need.  It is loaded once, before the
 * workers start, and only read afterwards: no locking.
 */
#ifndef ZCIO_MIME_H
#define ZCIO_MIME_H

/* Load the table from path (NULL: /etc/mime.types); if it cannot be read,
 * use the built-in list.  Returns the number of extensions known. */
int mime_load(const char *path);

/* The type for a file name ("a/b/page.HTML" -> "text/html"; extensions
 * compare case-insensitively), or "application/octet-stream". */
const char *mime_type(const char *name);

#endif
