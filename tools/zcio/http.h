/*
 * http.h - HTTP/1.x request parsing for `zcio serve`: the request head
 * (http.c), the request target's path (http_path.c), and the field values
 * a static file server interprets (http_field.c: byte ranges, dates,
 * entity tags).
 *
 * Everything here works on bytes the caller holds; nothing allocates,
 * nothing does I/O, so each part can be fuzzed on its own (fuzz/).
 *
 * The parser is strict (RFC 9112): what it accepts is unambiguous, so a
 * proxy in front of zcio cannot read a different message boundary out of
 * the same bytes.  Bare CR, obsolete line folding, whitespace between a
 * field name and its colon, control characters, and duplicate or
 * malformed Content-Length are errors; a lone LF ends a line (RFC 9112
 * section 2.2 allows it, and no boundary depends on it).
 */
#ifndef ZCIO_HTTP_H
#define ZCIO_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the request head (http.c) ------------------------------------------ */

enum http_method {
	HTTP_GET,
	HTTP_HEAD,
	HTTP_OTHER,       /* a method of RFC 9110 we do not allow: 405 */
	HTTP_UNKNOWN,     /* any other token: 501 */
};

enum http_form {
	HTTP_FORM_ORIGIN,     /* /path?query */
	HTTP_FORM_ABSOLUTE,   /* http://host/path?query */
	HTTP_FORM_AUTHORITY,  /* host:port (CONNECT only) */
	HTTP_FORM_ASTERISK,   /* * (OPTIONS only) */
};

/* A piece of the buffer given to http_parse(): offsets, so the buffer may
 * move (realloc) between calls.  len 0: absent or empty. */
struct http_span {
	uint32_t off, len;
};

/* Request flags (http_request.flags). */
#define HTTP_HAS_HOST        (1u << 0)
#define HTTP_HAS_LENGTH      (1u << 1)  /* Content-Length present */
#define HTTP_HAS_TE          (1u << 2)  /* Transfer-Encoding present */
#define HTTP_CONN_CLOSE      (1u << 3)  /* Connection: close */
#define HTTP_CONN_KEEP_ALIVE (1u << 4)  /* Connection: keep-alive */
#define HTTP_MANY_RANGE      (1u << 5)  /* Range given twice: ignore it */
#define HTTP_MANY_INM        (1u << 6)  /* If-None-Match on several lines */
#define HTTP_MANY_IMS        (1u << 7)  /* If-Modified-Since given twice */
#define HTTP_MANY_IF_RANGE   (1u << 8)  /* If-Range given twice */
#define HTTP_EXPECT_CONTINUE (1u << 9)  /* Expect: 100-continue */

struct http_request {
	int method;                /* enum http_method */
	int form;                  /* enum http_form */
	int version;               /* 10 or 11 (HTTP/1.2 and up count as 11) */
	uint32_t flags;            /* HTTP_* above */
	unsigned nheaders;
	struct http_span line;     /* the request line, without its end */
	struct http_span method_s; /* the method token */
	struct http_span target;   /* the request target as sent */
	struct http_span path;     /* its path part, still percent-encoded */
	struct http_span query;    /* after '?', without it */
	struct http_span host;     /* Host field value */
	struct http_span range, if_none_match, if_modified_since, if_range;
	uint64_t content_length;   /* with HTTP_HAS_LENGTH */
};

struct http_limits {
	uint32_t max_line;         /* request line: longer is 414 */
	uint32_t max_head;         /* whole head: longer is 431 */
	uint32_t max_headers;      /* header lines: more is 431 */
};

struct http_parser {
	struct http_request req;
	struct http_limits lim;
	uint32_t pos;              /* bytes examined so far */
	uint32_t mark;             /* start of the token being read */
	uint32_t name_off, name_len;
	uint32_t value_off, value_end;
	uint32_t blank_lines;      /* empty lines before the request line */
	uint8_t state;
};

/* Start parsing a new request with these limits (each must be > 0). */
void http_parser_init(struct http_parser *p, const struct http_limits *lim);

/*
 * Parse the request head in buf[0 .. len - 1]: every byte received for
 * this request so far, starting at its first byte.  Call again with the
 * same buffer (perhaps moved) and a larger len as bytes arrive; the bytes
 * already examined are not read again, so a head that trickles in one byte
 * at a time costs the same as one that arrives whole.  Returns:
 *
 *   0      incomplete: call again with more bytes
 *   > 0    the head is complete and this many bytes long (the request's
 *          body or the next request follows); p->req describes it
 *   < 0    -status: the request is malformed (-400), its line too long
 *          (-414), its head too large or with too many fields (-431), or
 *          of another major version (-505).  Parsing cannot go on: the
 *          caller answers with that status and closes.
 *
 * After a result other than 0, call http_parser_init() before the next
 * request.  Spans in p->req refer to buf.
 */
int http_parse(struct http_parser *p, const char *buf, size_t len);

/* ---- the request target's path (http_path.c) ---------------------------- */

/*
 * Turn the path of a request target (still percent-encoded, as in
 * http_request.path) into a relative file name under the served directory:
 * percent-decoded, then split at '/', empty and "." segments dropped.
 * "/a//./b/" becomes "a/b"; "/" becomes "".  *dir set when the path ended
 * with '/' (the client asked for a directory).
 *
 * Refused, with -400: a ".." segment (whether sent as "..", "%2e%2e" or
 * ".%2E"), a NUL byte, a backslash, any other control character, a '%'
 * not followed by two hex digits, and bytes that are not well-formed UTF-8
 * (overlong forms such as %c0%ae included).  -414: the result does not fit
 * in out (cap bytes, with its terminating NUL).  Returns the length of the
 * NUL-terminated result in out.
 */
int http_path_normalise(const char *raw, size_t len, char *out, size_t cap, bool *dir);

/* True when some segment of a normalised path starts with '.'. */
bool http_path_has_dotfile(const char *path);

/* ---- field values (http_field.c) ----------------------------------------- */

enum http_range_result {
	HTTP_RANGE_NONE,   /* absent, malformed or several ranges: send it all */
	HTTP_RANGE_OK,     /* bytes first..last (inclusive), within the file */
	HTTP_RANGE_UNSAT,  /* 416: no byte of the range is in the file */
};

/*
 * Interpret a Range field value (RFC 9110 section 14.2) for a
 * representation of size bytes: "bytes=a-b", "bytes=a-", "bytes=-n".  One
 * range only; a list of several is answered whole (the RFC lets a server
 * ignore Range), as is anything malformed.  last is clipped to size - 1.
 */
int http_range_parse(const char *v, size_t len, uint64_t size, uint64_t *first, uint64_t *last);

/*
 * Parse an HTTP-date (IMF-fixdate, RFC 850 or asctime form) to seconds
 * since the epoch.  Returns 0, or -1 when it is none of them (a field
 * with an invalid date is ignored).
 */
int http_date_parse(const char *s, size_t len, int64_t *t);

/* Format t as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), 29 bytes
 * plus a NUL into out.  Returns 29. */
#define HTTP_DATE_LEN 29
int http_date_format(int64_t t, char out[HTTP_DATE_LEN + 1]);

/*
 * Does an If-None-Match value ("*" or a list of entity tags) match etag
 * (quoted, strong, as we send it)?  Weak comparison (RFC 9110 section
 * 8.8.3.2): W/"x" matches "x".  A malformed list matches nothing.
 */
bool http_etag_list_match(const char *v, size_t len, const char *etag, size_t etag_len);

/* Is v exactly the strong entity tag etag (If-Range's strong comparison)? */
bool http_etag_strong_equal(const char *v, size_t len, const char *etag, size_t etag_len);

#endif
