/*
 * http.c - an incremental, strict parser for HTTP/1.x request heads.
 *
 * A byte-at-a-time state machine: http_parse() resumes at the byte where
 * the previous call stopped, so a head arriving in pieces is examined once
 * in total.  It records offsets, never pointers, because the connection's
 * buffer may be reallocated while a head is still arriving.
 *
 * The fields a static file server needs (Host, Content-Length,
 * Transfer-Encoding, Connection, Range and the conditionals) are
 * interpreted as each line ends; the others are checked for syntax and
 * counted.  Every rejection happens at the first byte that makes the head
 * invalid, so a client cannot make the server buffer a head it will refuse.
 */
#include "http.h"

#include <string.h>

enum {
	S_START,        /* before the request line (empty lines allowed) */
	S_START_CR,     /* CR of an empty line before the request line */
	S_METHOD,
	S_TARGET_FIRST, /* just after the single SP following the method */
	S_TARGET,
	S_VERSION,
	S_LINE_CR,      /* CR ending the request line */
	S_FIELD_START,  /* start of a field line, or the empty line */
	S_NAME,
	S_OWS,          /* after the colon */
	S_VALUE,
	S_FIELD_CR,     /* CR ending a field line */
	S_END_CR,       /* CR of the empty line ending the head */
	S_DONE,
};

/* Character classes. */
#define C_TCHAR  1u  /* token characters (RFC 9110 section 5.6.2) */
#define C_VCHAR  2u  /* visible ASCII */
#define C_FIELD  4u  /* allowed in a field value: VCHAR, obs-text, SP, HTAB */
#define C_HOST   8u  /* allowed in a Host value */

static uint8_t cls[256];

static void classes_init(void)
{
	static const char tchar_extra[] = "!#$%&'*+-.^_`|~";
	static const char host_extra[] = "-._~!$&'()*+,;=:[]%";

	if (cls['A'])
		return;
	for (int c = 0x21; c <= 0x7e; c++)
		cls[c] |= C_VCHAR | C_FIELD;
	for (int c = 0x80; c <= 0xff; c++)
		cls[c] |= C_FIELD;
	cls[' '] |= C_FIELD;
	cls['\t'] |= C_FIELD;
	for (int c = '0'; c <= '9'; c++)
		cls[c] |= C_TCHAR | C_HOST;
	for (int c = 'a'; c <= 'z'; c++)
		cls[c] |= C_TCHAR | C_HOST;
	for (int c = 'A'; c <= 'Z'; c++)
		cls[c] |= C_TCHAR | C_HOST;
	for (const char *s = tchar_extra; *s; s++)
		cls[(unsigned char)*s] |= C_TCHAR;
	for (const char *s = host_extra; *s; s++)
		cls[(unsigned char)*s] |= C_HOST;
}

void http_parser_init(struct http_parser *p, const struct http_limits *lim)
{
	classes_init();
	memset(p, 0, sizeof(*p));
	p->lim = *lim;
	p->state = S_START;
}

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Case-insensitive comparison of buf[off, len) with a lower-case literal. */
static bool span_is(const char *buf, uint32_t off, uint32_t len, const char *lit)
{
	size_t n = strlen(lit);

	if (len != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (lower((unsigned char)buf[off + i]) != lit[i])
			return false;
	}
	return true;
}

static int method_of(const char *m, uint32_t len)
{
	static const char *const others[] = {
		"POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
	};

	/* Methods are case-sensitive (RFC 9110 section 9.1). */
	if (len == 3 && memcmp(m, "GET", 3) == 0)
		return HTTP_GET;
	if (len == 4 && memcmp(m, "HEAD", 4) == 0)
		return HTTP_HEAD;
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		if (strlen(others[i]) == len && memcmp(m, others[i], len) == 0)
			return HTTP_OTHER;
	}
	return HTTP_UNKNOWN;
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/*
 * "HTTP/1.1" and "HTTP/1.0" are what we speak; "HTTP/1.x" is answered as
 * 1.1 (RFC 9110 section 6.2); another major version is 505; anything else
 * is not a version at all: 400.
 */
static int version_of(const char *v, uint32_t len, int *version)
{
	uint32_t i = 5, major_digits = 0;
	unsigned major = 0;

	if (len < 6 || memcmp(v, "HTTP/", 5) != 0)
		return -400;
	for (; i < len && is_digit(v[i]); i++, major_digits++)
		major = major < 1000 ? major * 10 + (unsigned)(v[i] - '0') : major;
	if (major_digits == 0)
		return -400;
	if (major != 1 || major_digits != 1) {
		/* Tolerate "HTTP/2" and "HTTP/2.0" alike: not ours. */
		if (i == len)
			return -505;
		if (v[i] != '.' || i + 1 == len)
			return -400;
		for (i++; i < len; i++) {
			if (!is_digit(v[i]))
				return -400;
		}
		return -505;
	}
	if (len != 8 || v[6] != '.' || !is_digit(v[7]))
		return -400;
	*version = v[7] == '0' ? 10 : 11;
	return 0;
}

/* Split the target into its form, path and query; -400 if unusable. */
static int target_parts(struct http_request *r, const char *buf)
{
	const char *t = buf + r->target.off;
	uint32_t len = r->target.len, i, path_start;

	if (memchr(t, '#', len))
		return -400; /* a fragment is never sent (RFC 9112 section 3.2) */
	if (t[0] == '/') {
		r->form = HTTP_FORM_ORIGIN;
		path_start = 0;
	} else if (len == 1 && t[0] == '*') {
		r->form = HTTP_FORM_ASTERISK;
		return r->method_s.len == 7 && memcmp(buf + r->method_s.off, "OPTIONS", 7) == 0
			       ? 0 : -400;
	} else {
		uint32_t s = 0;

		while (s < len && t[s] != ':' && t[s] != '/')
			s++;
		if (s + 3 <= len && memcmp(t + s, "://", 3) == 0) {
			if (!span_is(buf, r->target.off, s, "http") &&
			    !span_is(buf, r->target.off, s, "https"))
				return -400;
			r->form = HTTP_FORM_ABSOLUTE;
			i = s + 3;
			while (i < len && t[i] != '/' && t[i] != '?')
				i++;
			if (i == s + 3)
				return -400; /* no authority */
			path_start = i;
		} else {
			r->form = HTTP_FORM_AUTHORITY;
			return r->method_s.len == 7 &&
				       memcmp(buf + r->method_s.off, "CONNECT", 7) == 0 ? 0 : -400;
		}
	}
	i = path_start;
	while (i < len && t[i] != '?')
		i++;
	r->path = (struct http_span){ r->target.off + path_start, i - path_start };
	if (i < len)
		r->query = (struct http_span){ r->target.off + i + 1, len - i - 1 };
	return 0;
}

/* Content-Length: 1*DIGIT, once.  A list ("5, 5") is refused too. */
static int content_length(struct http_request *r, const char *v, uint32_t len)
{
	uint64_t n = 0;

	if (r->flags & HTTP_HAS_LENGTH)
		return -400;
	if (len == 0 || len > 18)
		return -400;
	for (uint32_t i = 0; i < len; i++) {
		if (!is_digit(v[i]))
			return -400;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	r->content_length = n;
	r->flags |= HTTP_HAS_LENGTH;
	return 0;
}

/* Connection: a comma-separated list of tokens. */
static int connection(struct http_request *r, const char *buf, uint32_t off, uint32_t len)
{
	uint32_t i = 0;

	while (i < len) {
		uint32_t s, e;

		while (i < len && (buf[off + i] == ' ' || buf[off + i] == '\t' || buf[off + i] == ','))
			i++;
		s = i;
		while (i < len && buf[off + i] != ',')
			i++;
		e = i;
		while (e > s && (buf[off + e - 1] == ' ' || buf[off + e - 1] == '\t'))
			e--;
		if (e == s)
			continue;
		for (uint32_t k = s; k < e; k++) {
			if (!(cls[(unsigned char)buf[off + k]] & C_TCHAR))
				return -400;
		}
		if (span_is(buf, off + s, e - s, "close"))
			r->flags |= HTTP_CONN_CLOSE;
		else if (span_is(buf, off + s, e - s, "keep-alive"))
			r->flags |= HTTP_CONN_KEEP_ALIVE;
	}
	return 0;
}

/* Remember a field's value once; a second copy sets `many`. */
static void once(struct http_request *r, struct http_span *s, uint32_t off, uint32_t len,
		 uint32_t many, bool *seen)
{
	if (*seen)
		r->flags |= many;
	*s = (struct http_span){ off, len };
	*seen = true;
}

/* A field line ended: interpret the fields we serve by. */
static int field(struct http_parser *p, const char *buf)
{
	struct http_request *r = &p->req;
	uint32_t n = p->name_off, nl = p->name_len;
	uint32_t v = p->value_off, vl = p->value_end - p->value_off;
	bool seen;

	if (++r->nheaders > p->lim.max_headers)
		return -431;
	switch (lower((unsigned char)buf[n])) {
	case 'c':
		if (span_is(buf, n, nl, "content-length"))
			return content_length(r, buf + v, vl);
		if (span_is(buf, n, nl, "connection"))
			return connection(r, buf, v, vl);
		break;
	case 'e':
		if (span_is(buf, n, nl, "expect") && span_is(buf, v, vl, "100-continue"))
			r->flags |= HTTP_EXPECT_CONTINUE;
		break;
	case 'h':
		if (span_is(buf, n, nl, "host")) {
			if (r->flags & HTTP_HAS_HOST)
				return -400;
			for (uint32_t i = 0; i < vl; i++) {
				if (!(cls[(unsigned char)buf[v + i]] & C_HOST))
					return -400;
			}
			r->flags |= HTTP_HAS_HOST;
			r->host = (struct http_span){ v, vl };
		}
		break;
	case 't':
		if (span_is(buf, n, nl, "transfer-encoding"))
			r->flags |= HTTP_HAS_TE;
		break;
	case 'r':
		if (span_is(buf, n, nl, "range")) {
			seen = r->range.off != 0;
			once(r, &r->range, v, vl, HTTP_MANY_RANGE, &seen);
		}
		break;
	case 'i':
		if (span_is(buf, n, nl, "if-none-match")) {
			seen = r->if_none_match.off != 0;
			once(r, &r->if_none_match, v, vl, HTTP_MANY_INM, &seen);
		} else if (span_is(buf, n, nl, "if-modified-since")) {
			seen = r->if_modified_since.off != 0;
			once(r, &r->if_modified_since, v, vl, HTTP_MANY_IMS, &seen);
		} else if (span_is(buf, n, nl, "if-range")) {
			seen = r->if_range.off != 0;
			once(r, &r->if_range, v, vl, HTTP_MANY_IF_RANGE, &seen);
		}
		break;
	}
	return 0;
}

/* The request line ended at p->pos (its terminator not included). */
static int request_line(struct http_parser *p, const char *buf)
{
	struct http_request *r = &p->req;
	int e;

	e = version_of(buf + p->mark, p->pos - p->mark, &r->version);
	if (e < 0)
		return e;
	r->line.len = p->pos - r->line.off;
	r->method = method_of(buf + r->method_s.off, r->method_s.len);
	return target_parts(r, buf);
}

/* The head ended: the checks that need all of it. */
static int head_done(struct http_parser *p)
{
	struct http_request *r = &p->req;

	/* RFC 9112 section 3.2: a 1.1 request without Host is a 400. */
	if (r->version == 11 && !(r->flags & HTTP_HAS_HOST))
		return -400;
	p->state = S_DONE;
	return (int)(p->pos + 1);
}

int http_parse(struct http_parser *p, const char *buf, size_t len)
{
	struct http_request *r = &p->req;
	int e;

	if (p->state == S_DONE)
		return -400;
	if (len > p->lim.max_head + 1u)
		len = p->lim.max_head + 1u; /* what lies beyond is never looked at */
	for (; p->pos < len; p->pos++) {
		unsigned char c = (unsigned char)buf[p->pos];

		if (p->pos >= p->lim.max_head)
			return -431;
		/* The request line may be max_line bytes long, its
		 * terminator not counted. */
		if (p->state >= S_METHOD && p->state <= S_VERSION &&
		    p->pos - r->line.off >= p->lim.max_line && c != '\r' && c != '\n')
			return -414;
		switch (p->state) {
		case S_START:
			if (c == '\r' || c == '\n') {
				/* RFC 9112 section 2.2: ignore at least one empty
				 * line before the request line; a few, not a flood. */
				if (++p->blank_lines > 4)
					return -400;
				if (c == '\r')
					p->state = S_START_CR;
				break;
			}
			if (!(cls[c] & C_TCHAR))
				return -400;
			r->line.off = p->pos;
			r->method_s.off = p->pos;
			p->state = S_METHOD;
			break;
		case S_START_CR:
			if (c != '\n')
				return -400;
			p->state = S_START;
			break;
		case S_METHOD:
			if (c == ' ') {
				r->method_s.len = p->pos - r->method_s.off;
				p->state = S_TARGET_FIRST;
				break;
			}
			if (!(cls[c] & C_TCHAR))
				return -400;
			break;
		case S_TARGET_FIRST:
			/* Exactly one SP between the parts. */
			if (!(cls[c] & C_VCHAR))
				return -400;
			r->target.off = p->pos;
			p->state = S_TARGET;
			break;
		case S_TARGET:
			if (c == ' ') {
				r->target.len = p->pos - r->target.off;
				p->mark = p->pos + 1;
				p->state = S_VERSION;
				break;
			}
			if (!(cls[c] & C_VCHAR))
				return -400;
			break;
		case S_VERSION:
			if (c == '\r' || c == '\n') {
				e = request_line(p, buf);
				if (e < 0)
					return e;
				p->state = c == '\r' ? S_LINE_CR : S_FIELD_START;
				break;
			}
			if (!(cls[c] & C_VCHAR))
				return -400;
			break;
		case S_LINE_CR:
			if (c != '\n')
				return -400;
			p->state = S_FIELD_START;
			break;
		case S_FIELD_START:
			if (c == '\r') {
				p->state = S_END_CR;
				break;
			}
			if (c == '\n')
				return head_done(p);
			/* A line starting with whitespace is obsolete line
			 * folding, or junk: never guessed at. */
			if (!(cls[c] & C_TCHAR))
				return -400;
			p->name_off = p->pos;
			p->state = S_NAME;
			break;
		case S_NAME:
			if (c == ':') {
				p->name_len = p->pos - p->name_off;
				p->value_off = p->value_end = p->pos + 1;
				p->state = S_OWS;
				break;
			}
			/* Whitespace before the colon is a 400 (RFC 9112
			 * section 5.1): a classic smuggling vector. */
			if (!(cls[c] & C_TCHAR))
				return -400;
			break;
		case S_OWS:
			if (c == ' ' || c == '\t') {
				p->value_off = p->value_end = p->pos + 1;
				break;
			}
			p->state = S_VALUE;
			/* fall through */
		case S_VALUE:
			if (c == '\r' || c == '\n') {
				e = field(p, buf);
				if (e < 0)
					return e;
				p->state = c == '\r' ? S_FIELD_CR : S_FIELD_START;
				break;
			}
			if (!(cls[c] & C_FIELD))
				return -400;
			if (c != ' ' && c != '\t')
				p->value_end = p->pos + 1;
			break;
		case S_FIELD_CR:
			if (c != '\n')
				return -400;
			p->state = S_FIELD_START;
			break;
		case S_END_CR:
			if (c != '\n')
				return -400;
			return head_done(p);
		default:
			return -400;
		}
	}
	return 0;
}
