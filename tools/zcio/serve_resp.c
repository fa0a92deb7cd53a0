/*
 * serve_resp.c - from a parsed request to a queued response, for `zcio
 * serve`: framing checks, the path under the served directory, directory
 * handling, conditional requests, byte ranges, and the choice of how the
 * body travels.
 *
 * Bodies up to small_max leave with the header in one writev(): from the
 * cached content of the file, or read with one pread().  Larger ones go
 * through a zcio link started at the range's offset, header first.  HEAD
 * gets the header a GET would get.
 *
 * Errors that leave the byte stream in doubt (malformed heads, framing we
 * do not accept, bodies too large) close the connection after the answer;
 * the others (403, 404, 405, 416, ...) keep it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serve.h"

/* A normalised path, plus "/index.html". */
#define PATH_CAP 4096

struct req {
	struct serve_conn *c;
	const char *base;               /* the head's bytes */
	const struct http_request *r;
	const char *line;               /* the request line, for the log */
	size_t line_len;
	bool head;                      /* HEAD: no body */
	bool keep;                      /* keep the connection */
};

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 416: return "Range Not Satisfiable";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 505: return "HTTP Version Not Supported";
	default: return "Internal Server Error";
	}
}

/* ---- header building: the caller reserves enough room first -------------- */

struct hb {
	char *p;
	size_t len;
};

static void hb_put(struct hb *b, const char *s, size_t n)
{
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

#define hb_lit(b, s) hb_put((b), (s), sizeof(s) - 1)

static void hb_str(struct hb *b, const char *s)
{
	hb_put(b, s, strlen(s));
}

static void hb_u64(struct hb *b, uint64_t v)
{
	char t[24];
	int i = (int)sizeof(t);

	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	hb_put(b, t + i, sizeof(t) - (size_t)i);
}

/* Room for everything but caller-sized fields. */
#define HEAD_ROOM 512

/* Status line, Server, Date. */
static void hb_start(struct hb *b, struct serve_conn *c, int status)
{
	const char *why = reason(status);

	hb_lit(b, "HTTP/1.1 ");
	hb_u64(b, (uint64_t)status);
	hb_lit(b, " ");
	hb_str(b, why);
	hb_lit(b, "\r\nServer: zcio/" ZCIO_VERSION_STRING "\r\nDate: ");
	hb_put(b, worker_date(c->w), HTTP_DATE_LEN);
	hb_lit(b, "\r\n");
}

/* Connection, and the empty line. */
static void hb_end(struct hb *b, const struct req *q)
{
	if (!q->keep)
		hb_lit(b, "Connection: close\r\n");
	else if (q->r && q->r->version == 10)
		hb_lit(b, "Connection: keep-alive\r\n");
	hb_lit(b, "\r\n");
}

static void close_after(struct req *q)
{
	q->keep = false;
	q->c->close_after = true;
}

/* ---- error and short responses ------------------------------------------ */

/* A response whose body is a short HTML page (or nothing for HEAD).
 * extra: further header lines, each ending in CRLF, or NULL. */
static void simple(struct req *q, int status, const char *extra, size_t extra_len, bool has_body)
{
	struct serve_conn *c = q->c;
	char body[256];
	int blen = 0;
	struct hb b;

	if (has_body)
		blen = snprintf(body, sizeof(body),
				"<!DOCTYPE html>\n<html><head><title>%d %s</title></head>"
				"<body><h1>%d %s</h1></body></html>\n",
				status, reason(status), status, reason(status));
	b.p = conn_hdr_reserve(c, HEAD_ROOM + extra_len + (size_t)blen);
	if (!b.p) {
		close_after(q);
		return;
	}
	b.len = 0;
	hb_start(&b, c, status);
	if (extra)
		hb_put(&b, extra, extra_len);
	if (has_body) {
		hb_lit(&b, "Content-Type: text/html\r\nContent-Length: ");
		hb_u64(&b, (uint64_t)blen);
		hb_lit(&b, "\r\n");
	}
	hb_end(&b, q);
	if (has_body && !q->head)
		hb_put(&b, body, (size_t)blen);
	conn_out_hdr(c, b.len);
	conn_log(c, status, q->line, q->line_len, has_body && !q->head ? (uint64_t)blen : 0);
}

static void error(struct req *q, int status)
{
	simple(q, status, NULL, 0, true);
}

/* The first line of what was received, for the log of a malformed head. */
static size_t first_line(const char *base, size_t avail)
{
	const char *nl = memchr(base, '\n', avail);
	size_t n = nl ? (size_t)(nl - base) : avail;

	if (n && base[n - 1] == '\r')
		n--;
	return n;
}

void resp_error(struct serve_conn *c, int status, const char *base, size_t avail)
{
	struct req q = { .c = c, .base = base, .line = base, .line_len = first_line(base, avail) };

	close_after(&q);
	error(&q, status);
}

/* ---- files ---------------------------------------------------------------- */

static int status_of_errno(int err)
{
	switch (err) {
	case -ENOENT:
	case -ENOTDIR:
	case -ENAMETOOLONG:
		return 404;
	case -EACCES:
	case -EPERM:
	case -ELOOP:   /* a symlink where none may be */
	case -EXDEV:   /* a symlink leading out of the directory */
	case -ENODEV:  /* a FIFO, socket or device */
		return 403;
	default:
		return 500;
	}
}

static const char *span(const struct req *q, struct http_span s)
{
	return q->base + s.off;
}

/* If-Range: an entity tag must be ours exactly; a date must be the file's
 * Last-Modified exactly. */
static bool if_range_holds(const struct req *q, const struct serve_file *f)
{
	const struct http_request *r = q->r;
	const char *v = span(q, r->if_range);
	int64_t t;

	if (r->flags & HTTP_MANY_IF_RANGE)
		return false;
	if (r->if_range.len >= 2 && (v[0] == '"' || (v[0] == 'W' && v[1] == '/')))
		return http_etag_strong_equal(v, r->if_range.len, f->etag, f->etag_len);
	return http_date_parse(v, r->if_range.len, &t) == 0 && t == f->mtime;
}

/* RFC 9110 section 13.2.2: If-None-Match first; If-Modified-Since only
 * without it. */
static bool not_modified(const struct req *q, const struct serve_file *f)
{
	const struct http_request *r = q->r;
	int64_t t;

	if (r->if_none_match.off) {
		return !(r->flags & HTTP_MANY_INM) &&
		       http_etag_list_match(span(q, r->if_none_match), r->if_none_match.len, f->etag,
					    f->etag_len);
	}
	if (r->if_modified_since.off && !(r->flags & HTTP_MANY_IMS))
		return http_date_parse(span(q, r->if_modified_since), r->if_modified_since.len,
				       &t) == 0 && f->mtime <= t;
	return false;
}

static void serve_file(struct req *q, struct serve_file *f)
{
	struct serve_conn *c = q->c;
	const struct http_request *r = q->r;
	uint64_t first = 0, len = f->size, last;
	int status = 200;
	char *owned = NULL;
	struct hb b;

	if (not_modified(q, f)) {
		b.p = conn_hdr_reserve(c, HEAD_ROOM + f->fields_len);
		if (!b.p) {
			close_after(q);
			return;
		}
		b.len = 0;
		hb_start(&b, c, 304);
		hb_put(&b, f->fields + f->validators_off, f->fields_len - f->validators_off);
		hb_end(&b, q);
		conn_out_hdr(c, b.len);
		conn_log(c, 304, q->line, q->line_len, 0);
		return;
	}
	/* Range applies to GET only (RFC 9110 section 14.2). */
	if (r->method == HTTP_GET && r->range.off && !(r->flags & HTTP_MANY_RANGE) &&
	    (!r->if_range.off || if_range_holds(q, f))) {
		switch (http_range_parse(span(q, r->range), r->range.len, f->size, &first, &last)) {
		case HTTP_RANGE_OK:
			status = 206;
			len = last - first + 1;
			break;
		case HTTP_RANGE_UNSAT: {
			char cr[64];
			int n = snprintf(cr, sizeof(cr), "Content-Range: bytes */%" PRIu64 "\r\n", f->size);

			simple(q, 416, cr, (size_t)n, true);
			return;
		}
		default:
			first = 0;
			break;
		}
	}
	/* A small body not cached (a range of a large file, a file that
	 * kept changing while it was loaded) is read now, before the
	 * header promises its length. */
	if (!q->head && len && len <= serve_cfg.small_max && !f->data) {
		ssize_t n;

		owned = malloc(len);
		if (!owned) {
			error(q, 500);
			return;
		}
		n = pread(f->fd, owned, len, (off_t)first);
		if (n != (ssize_t)len) {
			/* Shorter than its stat said: truncated meanwhile. */
			free(owned);
			files_suspect(f);
			close_after(q);
			error(q, 500);
			return;
		}
	}
	b.p = conn_hdr_reserve(c, HEAD_ROOM + f->fields_len);
	if (!b.p) {
		free(owned);
		close_after(q);
		return;
	}
	b.len = 0;
	hb_start(&b, c, status);
	hb_lit(&b, "Content-Length: ");
	hb_u64(&b, len);
	hb_lit(&b, "\r\n");
	if (status == 206) {
		hb_lit(&b, "Content-Range: bytes ");
		hb_u64(&b, first);
		hb_lit(&b, "-");
		hb_u64(&b, first + len - 1);
		hb_lit(&b, "/");
		hb_u64(&b, f->size);
		hb_lit(&b, "\r\n");
	}
	hb_put(&b, f->fields, f->fields_len);
	hb_end(&b, q);
	if (q->head || len == 0) {
		conn_out_hdr(c, b.len);
		conn_log(c, status, q->line, q->line_len, 0);
		return;
	}
	if (len <= serve_cfg.small_max) {
		conn_out_hdr(c, b.len);
		if (owned)
			conn_out_ref(c, owned, len, NULL, owned);
		else
			conn_out_ref(c, f->data + first, len, f, NULL);
		conn_log(c, status, q->line, q->line_len, len);
		return;
	}
	if (conn_start_link(c, b.p, b.len, f, first, len, status, q->line, q->line_len) < 0) {
		close_after(q);
		error(q, 500);
	}
}

static void serve_listing(struct req *q, struct serve_file *dir, const char *path)
{
	struct serve_conn *c = q->c;
	char title[PATH_CAP + 2];
	char *body = NULL;
	size_t len = 0;
	struct hb b;
	int r;

	snprintf(title, sizeof(title), "/%s%s", path, *path ? "/" : "");
	r = list_render(dir->fd, title, serve_cfg.dotfiles, &body, &len);
	if (r < 0) {
		error(q, status_of_errno(r));
		return;
	}
	b.p = conn_hdr_reserve(c, HEAD_ROOM);
	if (!b.p) {
		free(body);
		close_after(q);
		return;
	}
	b.len = 0;
	hb_start(&b, c, 200);
	hb_lit(&b, "Content-Type: text/html; charset=utf-8\r\nContent-Length: ");
	hb_u64(&b, len);
	hb_lit(&b, "\r\n");
	hb_end(&b, q);
	conn_out_hdr(c, b.len);
	if (q->head || !len)
		free(body);
	else
		conn_out_ref(c, body, len, NULL, body);
	conn_log(c, 200, q->line, q->line_len, q->head ? 0 : len);
}

/*
 * /dir -> /dir/ (the query kept): relative links in the page then work.
 * The location is made from the normalised path, re-encoded, never from
 * the raw one: "//host" must not become a redirect to another site.
 */
static void redirect_slash(struct req *q, const char *path)
{
	static const char hexd[] = "0123456789ABCDEF";
	const struct http_request *r = q->r;
	size_t n = 3 * strlen(path) + r->query.len + 32;
	char *loc = malloc(n);
	struct hb b = { loc, 0 };

	if (!loc) {
		error(q, 500);
		return;
	}
	hb_lit(&b, "Location: /");
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~/", *p)) {
			b.p[b.len++] = (char)*p;
		} else {
			b.p[b.len++] = '%';
			b.p[b.len++] = hexd[*p >> 4];
			b.p[b.len++] = hexd[*p & 15];
		}
	}
	hb_lit(&b, "/");
	if (r->query.off) {
		hb_lit(&b, "?");
		hb_put(&b, span(q, r->query), r->query.len);
	}
	hb_lit(&b, "\r\n");
	simple(q, 301, loc, b.len, true);
	free(loc);
}

static void serve_path(struct req *q, const char *path, bool want_dir)
{
	struct serve_files *fc = &q->c->w->files;
	int64_t now = loop_now_ms();
	struct serve_file *f = NULL;
	int r;

	if (want_dir) {
		char index[PATH_CAP + 16];

		snprintf(index, sizeof(index), "%s%sindex.html", path, *path ? "/" : "");
		r = files_get(fc, index, now, &f);
		if (r == 0 && !f->is_dir) {
			serve_file(q, f);
			files_put(fc, f);
			return;
		}
		if (r == 0)
			files_put(fc, f);
		else if (r != -ENOENT) {
			error(q, status_of_errno(r));
			return;
		}
		r = files_get(fc, path, now, &f);
		if (r < 0) {
			error(q, status_of_errno(r));
			return;
		}
		if (!f->is_dir)
			error(q, 404); /* a file asked for as a directory */
		else if (serve_cfg.list)
			serve_listing(q, f, path);
		else
			error(q, 403);
		files_put(fc, f);
		return;
	}
	r = files_get(fc, path, now, &f);
	if (r < 0) {
		error(q, status_of_errno(r));
		return;
	}
	if (f->is_dir)
		redirect_slash(q, path);
	else
		serve_file(q, f);
	files_put(fc, f);
}

void resp_request(struct serve_conn *c, const char *base, const struct http_request *r)
{
	struct req q = {
		.c = c, .base = base, .r = r,
		.line = base + r->line.off, .line_len = r->line.len,
		.head = r->method == HTTP_HEAD,
	};
	char path[PATH_CAP];
	bool want_dir = false;
	int n;

	if (r->version == 11)
		q.keep = !(r->flags & HTTP_CONN_CLOSE);
	else
		q.keep = (r->flags & HTTP_CONN_KEEP_ALIVE) && !(r->flags & HTTP_CONN_CLOSE);
	if (!q.keep || atomic_load_explicit(&serve_stopping, memory_order_relaxed))
		close_after(&q);

	/* Framing first: a body we cannot delimit ends the connection.
	 * Transfer-Encoding with Content-Length is the classic smuggling
	 * pair (RFC 9112 section 6.1), and in HTTP/1.0 it is invalid. */
	if (r->flags & HTTP_HAS_TE) {
		close_after(&q);
		error(&q, (r->flags & HTTP_HAS_LENGTH) || r->version == 10 ? 400 : 501);
		return;
	}
	if ((r->flags & HTTP_HAS_LENGTH) && r->content_length) {
		if (r->content_length > serve_cfg.max_body) {
			close_after(&q);
			error(&q, 413);
			return;
		}
		c->discard = r->content_length;
		/* A client waiting for 100 Continue may never send the body
		 * it announced; after our answer the connection could not be
		 * read in step again. */
		if (r->flags & HTTP_EXPECT_CONTINUE)
			close_after(&q);
	}
	if (r->method == HTTP_UNKNOWN) {
		error(&q, 501);
		return;
	}
	if (r->method == HTTP_OTHER) {
		static const char allow[] = "Allow: GET, HEAD\r\n";

		simple(&q, 405, allow, sizeof(allow) - 1, true);
		return;
	}
	n = http_path_normalise(base + r->path.off, r->path.len, path, sizeof(path) - 16, &want_dir);
	if (n < 0) {
		if (n == -400)
			close_after(&q);
		error(&q, -n);
		return;
	}
	if (!serve_cfg.dotfiles && http_path_has_dotfile(path)) {
		error(&q, 404);
		return;
	}
	serve_path(&q, path, want_dir);
}
