/*
 * http_path.c - from a request target's path to a file name under the
 * served directory.
 *
 * Decoding comes first and every check runs on the decoded bytes, so an
 * encoded form ("%2e%2e", "%2f", "%00", "%5c") can never slip past a check
 * made on the raw form.  Decoding happens exactly once: "%252e" becomes the
 * three characters "%2e", a file name like any other, never "." (decoding
 * twice is what made double-encoding attacks work on other servers).
 *
 * ".." segments are refused rather than resolved: nothing a file server
 * serves needs them, and a refusal cannot be turned into an escape by a
 * subtle resolution rule.  The result has no empty or "." segment and no
 * leading or trailing slash, so it can be handed to openat() relative to
 * the served directory as it is.
 */
#include "http.h"

#include <string.h>

static int hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* UTF-8 well-formedness (RFC 3629), one byte at a time: the byte ranges a
 * continuation may take rule out overlong forms and surrogates. */
struct utf8 {
	unsigned need;         /* continuation bytes still expected */
	unsigned char lo, hi;  /* range of the next one */
};

static bool utf8_next(struct utf8 *u, unsigned char b)
{
	if (u->need) {
		if (b < u->lo || b > u->hi)
			return false;
		u->need--;
		u->lo = 0x80;
		u->hi = 0xbf;
		return true;
	}
	if (b < 0x80)
		return true;
	u->lo = 0x80;
	u->hi = 0xbf;
	if (b >= 0xc2 && b <= 0xdf) {
		u->need = 1;
	} else if (b >= 0xe0 && b <= 0xef) {
		u->need = 2;
		if (b == 0xe0)
			u->lo = 0xa0;  /* overlong */
		else if (b == 0xed)
			u->hi = 0x9f;  /* surrogates */
	} else if (b >= 0xf0 && b <= 0xf4) {
		u->need = 3;
		if (b == 0xf0)
			u->lo = 0x90;  /* overlong */
		else if (b == 0xf4)
			u->hi = 0x8f;  /* above U+10FFFF */
	} else {
		return false;          /* 0x80-0xc1, 0xf5-0xff */
	}
	return true;
}

/* A segment out[seg, *o) ended: drop it if empty or ".", refuse "..",
 * else keep it with a '/' behind. */
static int segment_end(char *out, size_t cap, size_t seg, size_t *o)
{
	size_t n = *o - seg;

	if (n == 0)
		return 0;
	if (n == 1 && out[seg] == '.') {
		*o = seg;
		return 0;
	}
	if (n == 2 && out[seg] == '.' && out[seg + 1] == '.')
		return -400;
	if (*o + 1 >= cap)
		return -414;
	out[(*o)++] = '/';
	return 0;
}

int http_path_normalise(const char *raw, size_t len, char *out, size_t cap, bool *dir)
{
	struct utf8 u = { 0 };
	size_t o = 0, seg = 0;
	unsigned char last = '/';
	int e;

	if (cap == 0)
		return -414;
	for (size_t i = 0; i < len; i++) {
		unsigned char b = (unsigned char)raw[i];

		if (b == '%') {
			int h1, h2;

			if (len - i < 3)
				return -400;
			h1 = hex((unsigned char)raw[i + 1]);
			h2 = hex((unsigned char)raw[i + 2]);
			if (h1 < 0 || h2 < 0)
				return -400;
			b = (unsigned char)(h1 << 4 | h2);
			i += 2;
		}
		last = b;
		if (b == '/') {
			if (u.need)
				return -400;
			e = segment_end(out, cap, seg, &o);
			if (e < 0)
				return e;
			seg = o;
			continue;
		}
		/* NUL ends a C string early; a backslash is a separator
		 * to other systems' eyes; other controls have no place in
		 * a file name a web page links to. */
		if (b < 0x20 || b == 0x7f || b == '\\')
			return -400;
		if (!utf8_next(&u, b))
			return -400;
		if (o + 1 >= cap)
			return -414;
		out[o++] = (char)b;
	}
	if (u.need)
		return -400;
	e = segment_end(out, cap, seg, &o);
	if (e < 0)
		return e;
	if (o > 0 && out[o - 1] == '/')
		o--;
	out[o] = '\0';
	*dir = last == '/';
	return (int)o;
}

bool http_path_has_dotfile(const char *path)
{
	const char *p = path;

	while (*p) {
		if (*p == '.')
			return true;
		p = strchr(p, '/');
		if (!p)
			break;
		p++;
	}
	return false;
}
