/*
 * http_field.c - the field values a static file server acts on: byte
 * ranges, HTTP-dates and entity tags.
 *
 * Each function gets the value as the parser left it (surrounding
 * whitespace already trimmed) and answers conservatively: a value it
 * cannot read exactly is treated as absent, which for every field here
 * means "send the whole, current representation" - never a wrong byte.
 */
#include "http.h"

#include <string.h>

/* ---- ranges -------------------------------------------------------------- */

static bool digit(int c)
{
	return c >= '0' && c <= '9';
}

/* 1*DIGIT at v[*i]; saturates at UINT64_MAX (a huge number is still a
 * number: "bytes=99999999999999999999-" is unsatisfiable, not malformed). */
static bool number(const char *v, size_t len, size_t *i, uint64_t *out)
{
	uint64_t n = 0;
	size_t start = *i;

	for (; *i < len && digit(v[*i]); (*i)++) {
		unsigned d = (unsigned)(v[*i] - '0');

		n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
	}
	*out = n;
	return *i > start;
}

static bool ows(int c)
{
	return c == ' ' || c == '\t';
}

int http_range_parse(const char *v, size_t len, uint64_t size, uint64_t *first, uint64_t *last)
{
	static const char unit[] = "bytes=";
	uint64_t a = 0, b = UINT64_MAX;
	bool suffix = false, have = false;
	size_t i;

	if (len < sizeof(unit) - 1)
		return HTTP_RANGE_NONE;
	for (i = 0; i < sizeof(unit) - 1; i++) {
		if ((v[i] | (unit[i] == '=' ? 0 : 0x20)) != unit[i])
			return HTTP_RANGE_NONE;
	}
	/* range-set = 1#range-spec: empty list elements are allowed. */
	while (i < len) {
		while (i < len && (ows(v[i]) || v[i] == ','))
			i++;
		if (i == len)
			break;
		if (have)
			return HTTP_RANGE_NONE; /* several ranges: send it all */
		have = true;
		if (v[i] == '-') {
			i++;
			suffix = true;
			if (!number(v, len, &i, &b))
				return HTTP_RANGE_NONE;
		} else {
			if (!number(v, len, &i, &a) || i == len || v[i] != '-')
				return HTTP_RANGE_NONE;
			i++;
			if (i < len && digit(v[i])) {
				number(v, len, &i, &b);
				if (b < a)
					return HTTP_RANGE_NONE; /* invalid, so ignored */
			}
		}
		while (i < len && ows(v[i]))
			i++;
		if (i < len && v[i] != ',')
			return HTTP_RANGE_NONE;
	}
	if (!have)
		return HTTP_RANGE_NONE;
	if (suffix) {
		/* The last b bytes; "-0" selects nothing. */
		if (b == 0 || size == 0)
			return HTTP_RANGE_UNSAT;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return HTTP_RANGE_OK;
	}
	if (a >= size)
		return HTTP_RANGE_UNSAT;
	*first = a;
	*last = b >= size ? size - 1 : b;
	return HTTP_RANGE_OK;
}

/* ---- dates --------------------------------------------------------------- */

static const char wdays[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	int64_t era;
	unsigned doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int month_of(const char *s)
{
	for (int i = 0; i < 12; i++) {
		if (memcmp(s, months[i], 3) == 0)
			return i + 1;
	}
	return 0;
}

/* n digits at s, or -1. */
static int digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!digit(s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* "hh:mm:ss" at s. */
static int clock_of(const char *s, int *secs)
{
	int h = digits(s, 2), m = digits(s + 3, 2), sec = digits(s + 6, 2);

	if (h < 0 || m < 0 || sec < 0 || s[2] != ':' || s[5] != ':' || h > 23 || m > 59 ||
	    sec > 60)
		return -1;
	*secs = h * 3600 + m * 60 + sec;
	return 0;
}

static int to_time(int64_t y, int m, int d, int secs, int64_t *t)
{
	static const unsigned char mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1] || (m == 2 && d == 29 && !leap))
		return -1;
	*t = days_from_civil(y, (unsigned)m, (unsigned)d) * 86400 + secs;
	return 0;
}

static bool is_wday3(const char *s)
{
	for (int i = 0; i < 7; i++) {
		if (memcmp(s, wdays[i], 3) == 0)
			return true;
	}
	return false;
}

int http_date_parse(const char *s, size_t len, int64_t *t)
{
	static const char *const long_days[7] = { "Sunday", "Monday", "Tuesday", "Wednesday",
						  "Thursday", "Friday", "Saturday" };
	int secs, d, m, y;

	/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
	if (len == 29 && s[3] == ',') {
		if (!is_wday3(s) || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
		    memcmp(s + 25, " GMT", 4) != 0)
			return -1;
		d = digits(s + 5, 2);
		m = month_of(s + 8);
		y = digits(s + 12, 4);
		if (d < 0 || y < 0 || clock_of(s + 17, &secs) < 0)
			return -1;
		return to_time(y, m, d, secs, t);
	}
	/* asctime: "Sun Nov  6 08:49:37 1994" */
	if (len == 24 && s[3] == ' ') {
		if (!is_wday3(s) || s[7] != ' ' || s[10] != ' ' || s[19] != ' ')
			return -1;
		m = month_of(s + 4);
		d = s[8] == ' ' ? digits(s + 9, 1) : digits(s + 8, 2);
		y = digits(s + 20, 4);
		if (d < 0 || y < 0 || clock_of(s + 11, &secs) < 0)
			return -1;
		return to_time(y, m, d, secs, t);
	}
	/* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
	for (int i = 0; i < 7; i++) {
		size_t n = strlen(long_days[i]);

		if (len != n + 24 || memcmp(s, long_days[i], n) != 0)
			continue;
		s += n;
		if (s[0] != ',' || s[1] != ' ' || s[4] != '-' || s[8] != '-' || s[11] != ' ' ||
		    memcmp(s + 20, " GMT", 4) != 0)
			return -1;
		d = digits(s + 2, 2);
		m = month_of(s + 5);
		y = digits(s + 9, 2);
		if (d < 0 || y < 0 || clock_of(s + 12, &secs) < 0)
			return -1;
		/* Two-digit years: RFC 9110 section 5.6.7 says a year that
		 * looks more than 50 years ahead is in the past century. */
		y += y < 70 ? 2000 : 1900;
		return to_time(y, m, d, secs, t);
	}
	return -1;
}

int http_date_format(int64_t t, char out[HTTP_DATE_LEN + 1])
{
	int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
	int64_t secs = t - days * 86400, y;
	unsigned m, d;
	int wd = (int)((days % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */

	civil_from_days(days, &y, &m, &d);
	if (y < 0)
		y = 0;
	if (y > 9999)
		y = 9999;
	memcpy(out, wdays[wd], 3);
	out[3] = ',';
	out[4] = ' ';
	out[5] = (char)('0' + d / 10);
	out[6] = (char)('0' + d % 10);
	out[7] = ' ';
	memcpy(out + 8, months[m - 1], 3);
	out[11] = ' ';
	out[12] = (char)('0' + y / 1000);
	out[13] = (char)('0' + y / 100 % 10);
	out[14] = (char)('0' + y / 10 % 10);
	out[15] = (char)('0' + y % 10);
	out[16] = ' ';
	out[17] = (char)('0' + secs / 36000);
	out[18] = (char)('0' + secs / 3600 % 10);
	out[19] = ':';
	out[20] = (char)('0' + secs % 3600 / 600);
	out[21] = (char)('0' + secs % 3600 / 60 % 10);
	out[22] = ':';
	out[23] = (char)('0' + secs % 60 / 10);
	out[24] = (char)('0' + secs % 10);
	memcpy(out + 25, " GMT", 5);
	return HTTP_DATE_LEN;
}

/* ---- entity tags --------------------------------------------------------- */

/* The opaque tag ("...", quotes included) of a strong etag we made. */
static bool same_opaque(const char *a, size_t alen, const char *etag, size_t etag_len)
{
	return alen == etag_len && memcmp(a, etag, alen) == 0;
}

bool http_etag_list_match(const char *v, size_t len, const char *etag, size_t etag_len)
{
	size_t i = 0;

	if (len == 1 && v[0] == '*')
		return true;
	while (i < len) {
		size_t start;

		while (i < len && (ows(v[i]) || v[i] == ','))
			i++;
		if (i == len)
			break;
		if (len - i >= 2 && v[i] == 'W' && v[i + 1] == '/')
			i += 2;
		if (i == len || v[i] != '"')
			return false;
		start = i++;
		while (i < len && v[i] != '"')
			i++;
		if (i == len)
			return false;
		i++;
		if (same_opaque(v + start, i - start, etag, etag_len))
			return true;
		while (i < len && ows(v[i]))
			i++;
		if (i < len && v[i] != ',')
			return false;
	}
	return false;
}

bool http_etag_strong_equal(const char *v, size_t len, const char *etag, size_t etag_len)
{
	return len >= 2 && v[0] == '"' && same_opaque(v, len, etag, etag_len);
}
