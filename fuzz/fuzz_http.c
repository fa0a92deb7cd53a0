/*
 * fuzz_http.c - libFuzzer target for the HTTP code of `zcio serve`
 * (tools/zcio/http*.c).  The first input byte picks what is fuzzed:
 *
 *   0  the request parser: the rest is a request, parsed whole and again
 *      in pieces (cut where the input says); both must agree exactly, and
 *      every span of an accepted head must lie inside it
 *   1  the Range parser: 8 bytes of representation size, then the value;
 *      an accepted range must lie inside the representation
 *   2  the path normaliser: the result must be clean (no "..", ".", empty
 *      segment, backslash, control byte, bad UTF-8) and normalise to
 *      itself again once its '%' are re-encoded
 *   3  dates and entity tags: a parsed date formats and parses back to
 *      itself; tag matching never reads out of bounds
 *
 * Any failed property aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define CHECK(x)                                                                  \
	do {                                                                      \
		if (!(x)) {                                                       \
			fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, \
				__LINE__, #x);                                    \
			abort();                                                  \
		}                                                                 \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void span_in(struct http_span s, int head)
{
	CHECK((uint64_t)s.off + s.len <= (uint64_t)head);
}

static void fuzz_parser(const uint8_t *d, size_t n)
{
	static const struct http_limits limits[4] = {
		{ 8192, 16384, 100 }, { 64, 256, 4 }, { 16, 64, 2 }, { 4096, 4096, 1000 },
	};
	struct http_parser whole, parts;
	const char *buf;
	size_t at = 0;
	int r1, r2 = 0;
	uint8_t sel;

	if (n < 2)
		return;
	sel = d[0];
	d++;
	n--;
	buf = (const char *)d;
	http_parser_init(&whole, &limits[sel & 3]);
	r1 = http_parse(&whole, buf, n);

	/* The same bytes arriving in pieces: sizes from the selector's
	 * upper bits and the bytes themselves, one byte at a time often. */
	http_parser_init(&parts, &limits[sel & 3]);
	while (r2 == 0 && at < n) {
		size_t step = (sel >> 2) == 0 ? 1 : (size_t)(d[at] % (sel >> 2)) + 1;

		at = at + step > n ? n : at + step;
		r2 = http_parse(&parts, buf, at);
	}
	CHECK(r1 == r2);
	if (r1 > 0) {
		const struct http_request *r = &whole.req;

		CHECK(memcmp(&whole.req, &parts.req, sizeof(whole.req)) == 0);
		CHECK((size_t)r1 <= n);
		CHECK(r->version == 10 || r->version == 11);
		CHECK(r->version == 10 || (r->flags & HTTP_HAS_HOST));
		CHECK(r->method >= HTTP_GET && r->method <= HTTP_UNKNOWN);
		CHECK(r->line.len <= limits[sel & 3].max_line);
		CHECK((unsigned)r1 <= limits[sel & 3].max_head);
		CHECK(r->nheaders <= limits[sel & 3].max_headers);
		span_in(r->line, r1);
		span_in(r->method_s, r1);
		span_in(r->target, r1);
		span_in(r->path, r1);
		span_in(r->query, r1);
		span_in(r->host, r1);
		span_in(r->range, r1);
		span_in(r->if_none_match, r1);
		span_in(r->if_modified_since, r1);
		span_in(r->if_range, r1);
		CHECK(r->target.off >= r->line.off &&
		      r->target.off + r->target.len <= r->line.off + r->line.len);
		CHECK(r->target.len > 0);
		for (uint32_t i = 0; i < r->target.len; i++)
			CHECK(buf[r->target.off + i] > 0x20 && buf[r->target.off + i] < 0x7f);
		/* A head never ends without its empty line. */
		CHECK(buf[r1 - 1] == '\n');
	} else if (r1 < 0) {
		CHECK(r1 == -400 || r1 == -414 || r1 == -431 || r1 == -505);
	}
}

static void fuzz_range(const uint8_t *d, size_t n)
{
	uint64_t size = 0, first = 0, last = 0;
	int r;

	if (n < 8)
		return;
	memcpy(&size, d, 8);
	/* Small sizes matter most: sometimes keep only the low bits. */
	if (size & 1)
		size = (size >> 1) % 4096;
	r = http_range_parse((const char *)d + 8, n - 8, size, &first, &last);
	CHECK(r == HTTP_RANGE_NONE || r == HTTP_RANGE_OK || r == HTTP_RANGE_UNSAT);
	if (r == HTTP_RANGE_OK)
		CHECK(first <= last && last < size);
	if (size == 0)
		CHECK(r != HTTP_RANGE_OK);
}

static bool utf8_ok(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t k;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + k >= n)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

static void fuzz_path(const uint8_t *d, size_t n)
{
	char out[512], again[512], enc[2048];
	bool dir = false, dir2 = false;
	int r, r2;
	size_t e = 0;

	r = http_path_normalise((const char *)d, n, out, sizeof(out), &dir);
	CHECK(r == -400 || r == -414 || r >= 0);
	if (r < 0)
		return;
	CHECK((size_t)r == strlen(out) && (size_t)r < sizeof(out));
	CHECK(out[0] != '/' && (r == 0 || out[r - 1] != '/'));
	CHECK(!strstr(out, "//") && !strchr(out, '\\'));
	CHECK(utf8_ok((const unsigned char *)out, (size_t)r));
	for (int i = 0; i < r; i++)
		CHECK((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
	for (const char *s = out; *s;) {
		size_t len = strcspn(s, "/");

		CHECK(len > 0);
		CHECK(!(len == 1 && s[0] == '.'));
		CHECK(!(len == 2 && s[0] == '.' && s[1] == '.'));
		s += len;
		if (*s)
			s++;
	}
	/* Normalising the result again (its '%' encoded, so it decodes to
	 * itself) changes nothing. */
	enc[e++] = '/';
	for (int i = 0; i < r; i++) {
		if (out[i] == '%') {
			memcpy(enc + e, "%25", 3);
			e += 3;
		} else {
			enc[e++] = out[i];
		}
	}
	r2 = http_path_normalise(enc, e, again, sizeof(again), &dir2);
	CHECK(r2 == r && strcmp(out, again) == 0);
}

static void fuzz_fields(const uint8_t *d, size_t n)
{
	const char *s = (const char *)d;
	char fmt[HTTP_DATE_LEN + 1];
	static const char etag[] = "\"a-b-c\"";
	int64_t t, t2;

	if (http_date_parse(s, n, &t) == 0 && t >= 0 && t <= 253402300799LL) {
		CHECK(http_date_format(t, fmt) == HTTP_DATE_LEN);
		CHECK(strlen(fmt) == HTTP_DATE_LEN);
		CHECK(http_date_parse(fmt, HTTP_DATE_LEN, &t2) == 0 && t2 == t);
	}
	(void)http_etag_list_match(s, n, etag, sizeof(etag) - 1);
	(void)http_etag_strong_equal(s, n, etag, sizeof(etag) - 1);
	CHECK(http_etag_list_match(etag, sizeof(etag) - 1, etag, sizeof(etag) - 1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	if (size < 1 || size > 65536)
		return 0;
	/* An exact-size heap copy, so reading past the end is caught. */
	copy = malloc(size - 1 ? size - 1 : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	switch (data[0] % 4) {
	case 0: fuzz_parser(copy, size - 1); break;
	case 1: fuzz_range(copy, size - 1); break;
	case 2: fuzz_path(copy, size - 1); break;
	default: fuzz_fields(copy, size - 1); break;
	}
	free(copy);
	return 0;
}
