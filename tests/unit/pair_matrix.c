/*
 * pair_matrix.c - zcio_copy() between every pair of endpoint kinds.
 *
 * Sources: regular file, pipe, FIFO, TCP socket (loopback), unix stream
 * socket, unix datagram socket, /dev/zero (with a length), a /proc file
 * (st_size 0, yet it has bytes) and an empty file.  Destinations: regular
 * file, pipe, FIFO, TCP, unix stream, unix datagram, /dev/null and an
 * O_APPEND file.  Each pair runs at several sizes:
 *
 *   1000B_len    1000 bytes, the length given: known to be below the default
 *                copy threshold, so copied (reason "small") wherever a
 *                zero-copy route exists;
 *   1000B_zc     1000 bytes to EOF with copy_threshold 1: the zero-copy route;
 *   100KiB       above ZCIO_DEFAULT_THRESHOLD, default options (NULL);
 *   3MiB         a few MiB, default options.
 *
 * Every case checks the bytes (each byte compared, and a checksum) and which
 * path moved them (zcio_stats.path_bytes and the fallback records), against
 * the expectation written out in expected_path() below: the route table of
 * DESIGN.md and src/route.c, restated here independently.
 */
#include "testutil.h"

enum src {
	S_FILE,
	S_PIPE,
	S_FIFO,
	S_TCP,
	S_UNIX,
	S_DGRAM,
	S_ZERO,
	S_PROC,
	S_EMPTY,
	S_COUNT
};

enum dst {
	D_FILE,
	D_PIPE,
	D_FIFO,
	D_TCP,
	D_UNIX,
	D_DGRAM,
	D_NULL,
	D_APPEND,
	D_COUNT
};

static const char *const src_names[S_COUNT] = {
	"file", "pipe", "fifo", "tcp", "unix", "dgram", "devzero", "proc", "emptyfile",
};
static const char *const dst_names[D_COUNT] = {
	"file", "pipe", "fifo", "tcp", "unix", "dgram", "devnull", "appendfile",
};

enum mode {
	M_SMALL_LEN,
	M_SMALL_ZC,
	M_MID,
	M_BIG,
	M_COUNT
};

static const struct {
	const char *name;
	size_t size;
	bool len_exact;   /* pass the length (else ZCIO_TO_EOF) */
	uint32_t threshold;
	bool null_opts;   /* pass opts == NULL: the library's defaults */
} modes[M_COUNT] = {
	[M_SMALL_LEN] = { "1000B_len", 1000, true, 0, false },
	[M_SMALL_ZC] = { "1000B_zc", 1000, false, 1, false },
	[M_MID] = { "100KiB", 100 * TU_KIB + 7, false, 0, true },
	[M_BIG] = { "3MiB", 3 * TU_MIB + 1234, false, 0, true },
};

/* A /proc file whose bytes do not change while the program runs. */
#define PROC_FILE "/proc/self/limits"
#define APPEND_PREFIX "existing bytes of the O_APPEND file\n"

struct pair_case {
	enum src s;
	enum dst d;
	enum mode m;
	int seed;
};

/* The zero-copy path the route table gives the pair, or -1 when only
 * copying can carry it. */
static int natural_path(enum src s, enum dst d)
{
	if (s == S_DGRAM || s == S_ZERO || d == D_DGRAM)
		return -1;
	switch (s) {
	case S_FILE:
	case S_PROC:
	case S_EMPTY:
		if (d == D_FILE || d == D_APPEND)
			return ZCIO_PATH_COPY_FILE_RANGE;
		if (d == D_PIPE || d == D_FIFO)
			return ZCIO_PATH_SPLICE;
		if (d == D_TCP || d == D_UNIX)
			return ZCIO_PATH_SPLICE_PIPE; /* then sendfile */
		return ZCIO_PATH_SENDFILE; /* /dev/null */
	case S_PIPE:
	case S_FIFO:
		return ZCIO_PATH_SPLICE;
	case S_TCP:
	case S_UNIX:
		if (d == D_PIPE || d == D_FIFO)
			return ZCIO_PATH_SPLICE;
		return ZCIO_PATH_SPLICE_PIPE;
	default:
		return -1;
	}
}

/*
 * The path that must carry the bytes, and the reason recorded for not taking
 * the zero-copy route (ZCIO_WHY_NONE: no fallback record at all).
 */
static int expected_path(const struct pair_case *c, size_t n, int *why)
{
	int nat = natural_path(c->s, c->d);
	/* The size the library can know up front: the length given, or a
	 * regular file's st_size (0 for /proc and empty files). */
	bool known_small = modes[c->m].len_exact ||
			   c->s == S_PROC || c->s == S_EMPTY || c->s == S_FILE;
	uint32_t threshold = modes[c->m].threshold ? modes[c->m].threshold : ZCIO_DEFAULT_THRESHOLD;
	uint64_t known = c->s == S_PROC ? 0 : n;

	*why = ZCIO_WHY_NONE;
	if (nat < 0)
		return ZCIO_PATH_COPY;
	/* copy_file_range() is never dearer than read() + write(), so
	 * file -> file ignores the threshold, except for a size of 0. */
	if (known_small && known < threshold &&
	    !(nat == ZCIO_PATH_COPY_FILE_RANGE && known > 0)) {
		*why = ZCIO_WHY_SMALL;
		return ZCIO_PATH_COPY;
	}
	if (c->d == D_APPEND) {
		*why = ZCIO_WHY_APPEND;
		return ZCIO_PATH_COPY;
	}
	return nat;
}

static bool is_channel_src(enum src s)
{
	return s == S_PIPE || s == S_FIFO || s == S_TCP || s == S_UNIX || s == S_DGRAM;
}

static bool is_channel_dst(enum dst d)
{
	return d == D_PIPE || d == D_FIFO || d == D_TCP || d == D_UNIX || d == D_DGRAM;
}

static enum tu_chan src_chan(enum src s)
{
	return s == S_PIPE ? TU_PIPE : s == S_FIFO ? TU_FIFO : s == S_TCP ? TU_TCP :
	       s == S_UNIX ? TU_UNIX : TU_DGRAM;
}

static enum tu_chan dst_chan(enum dst d)
{
	return d == D_PIPE ? TU_PIPE : d == D_FIFO ? TU_FIFO : d == D_TCP ? TU_TCP :
	       d == D_UNIX ? TU_UNIX : TU_DGRAM;
}

/* The bytes of PROC_FILE, read plainly. */
static uint8_t *read_proc(size_t *n)
{
	size_t cap = 64 * TU_KIB;
	uint8_t *b = malloc(cap);
	int fd = open(PROC_FILE, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	assert_non_null(b);
	assert_true(fd >= 0);
	r = tu_read_full(fd, b, cap);
	close(fd);
	assert_true(r > 0 && (size_t)r < cap);
	*n = (size_t)r;
	return b;
}

static void run_pair(void **state)
{
	const struct pair_case *c = *state;
	struct zcio_opts opts = { .copy_threshold = modes[c->m].threshold };
	struct zcio_stats st = { 0 };
	struct tu_channel sch = { .rd = -1, .wr = -1 }, dch = { .rd = -1, .wr = -1 };
	struct tu_producer prod = { 0 };
	struct tu_consumer cons = { 0 };
	size_t n = modes[c->m].size;
	uint64_t len;
	uint8_t *data;
	int in = -1, out = -1, why, path, i;
	size_t prefix = strlen(APPEND_PREFIX);
	int64_t r, in_off = -1;
	uint64_t other = 0;

	/* The bytes the source holds. */
	if (c->s == S_PROC) {
		data = read_proc(&n);
	} else if (c->s == S_EMPTY) {
		n = 0;
		data = tu_data(0, 0);
	} else if (c->s == S_ZERO) {
		data = calloc(1, n);
		assert_non_null(data);
	} else {
		data = tu_data(n, (uint64_t)c->seed);
	}
	len = modes[c->m].len_exact || c->s == S_ZERO ? n : ZCIO_TO_EOF;
	path = expected_path(c, n, &why);

	/* Source. */
	switch (c->s) {
	case S_FILE:
	case S_EMPTY:
		in = tu_file(data, n);
		break;
	case S_ZERO:
		in = open("/dev/zero", O_RDONLY | O_CLOEXEC);
		break;
	case S_PROC:
		in = open(PROC_FILE, O_RDONLY | O_CLOEXEC);
		break;
	default:
		tu_channel_open(&sch, src_chan(c->s));
		in = sch.rd;
		prod = (struct tu_producer){
			.fd = sch.wr, .data = data, .len = n,
			.chunk = c->s == S_DGRAM ? 4096 : 64 * TU_KIB,
			.dgram = c->s == S_DGRAM,
		};
		sch.wr = -1; /* the producer closes it */
		break;
	}
	assert_true(in >= 0);

	/* Destination. */
	switch (c->d) {
	case D_FILE:
		out = tu_file(NULL, 0);
		break;
	case D_APPEND:
		out = tu_file_flags(APPEND_PREFIX, prefix, O_RDWR | O_APPEND);
		break;
	case D_NULL:
		out = open("/dev/null", O_WRONLY | O_CLOEXEC);
		break;
	default:
		tu_channel_open(&dch, dst_chan(c->d));
		out = dch.wr;
		cons = (struct tu_consumer){
			.fd = dch.rd, .expect = data, .expect_len = n,
			.dgram = c->d == D_DGRAM,
		};
		break;
	}
	assert_true(out >= 0);

	/* Run: no assertion until every helper thread is joined. */
	if (is_channel_dst(c->d))
		tu_consumer_start(&cons);
	if (is_channel_src(c->s))
		tu_producer_start(&prod);
	r = zcio_copy(in, out, len, modes[c->m].null_opts ? NULL : &opts, &st);
	if (c->s == S_FILE || c->s == S_EMPTY)
		in_off = tu_offset(in);
	if (is_channel_src(c->s)) {
		tu_close(&sch.rd); /* unblocks a producer if the copy failed */
		tu_producer_join(&prod);
		in = -1;
	}
	if (is_channel_dst(c->d)) {
		tu_channel_end(&dch); /* the consumer sees the end */
		pthread_join(cons.th, NULL);
		tu_close(&dch.rd);
		out = -1;
	}

	if (r != (int64_t)n)
		tu_print_stats(&st);
	assert_int_equal(r, (int64_t)n);
	assert_int_equal(st.last_bytes, n);
	assert_int_equal(st.bytes, n);
	if (is_channel_src(c->s)) {
		assert_int_equal(prod.err, 0);
		assert_int_equal(prod.sent, n);
	}
	if (is_channel_dst(c->d)) {
		assert_int_equal(cons.err, 0);
		assert_int_equal(cons.got, n);
		assert_int_equal(cons.hash, tu_hash(TU_HASH_INIT, data, n));
		assert_int_equal(cons.bad_at, SIZE_MAX);
	}
	if (c->d == D_FILE) {
		tu_assert_file(out, 0, data, n);
		assert_int_equal(tu_offset(out), (int64_t)n);
	}
	if (c->d == D_APPEND) {
		uint8_t *all = malloc(prefix + n);

		assert_non_null(all);
		memcpy(all, APPEND_PREFIX, prefix);
		memcpy(all + prefix, data, n);
		tu_assert_file(out, 0, all, prefix + n);
		free(all);
	}
	/* A file source's offset ends just past the last byte delivered. */
	if (c->s == S_FILE || c->s == S_EMPTY)
		assert_int_equal(in_off, (int64_t)n);

	/* Which path moved the bytes, and why it was that one. */
	if (n > 0 && st.path_bytes[path] != n)
		tu_print_stats(&st);
	assert_int_equal(st.path_bytes[path], n);
	for (i = 0; i < ZCIO_PATH_SLOTS; i++)
		if (i != path)
			other += st.path_bytes[i];
	assert_int_equal(other, 0);
	if (why == ZCIO_WHY_NONE) {
		if (st.nfallbacks)
			tu_print_stats(&st);
		assert_int_equal(st.nfallbacks, 0);
	} else {
		assert_int_equal(st.nfallbacks, 1);
		assert_int_equal(st.fallback[0].from, natural_path(c->s, c->d));
		assert_int_equal(st.fallback[0].to, ZCIO_PATH_COPY);
		assert_int_equal(st.fallback[0].reason, why);
		assert_int_equal(st.fallback[0].at, 0);
	}
	assert_int_equal(st.stranded, 0);

	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	free(data);
}

int main(void)
{
	static struct pair_case cases[S_COUNT * D_COUNT * M_COUNT];
	static struct CMUnitTest tests[S_COUNT * D_COUNT * M_COUNT];
	size_t nt = 0;
	int s, d, m;

	tu_init(300);
	for (s = 0; s < S_COUNT; s++) {
		for (d = 0; d < D_COUNT; d++) {
			for (m = 0; m < M_COUNT; m++) {
				struct pair_case *c = &cases[nt];
				char name[128];
				int why, path;

				/* Sources whose size is their own run twice:
				 * library defaults and threshold 1. */
				if ((s == S_PROC || s == S_EMPTY) && (m == M_SMALL_LEN || m == M_BIG))
					continue;
				*c = (struct pair_case){ .s = s, .d = d, .m = m, .seed = (int)nt + 1 };
				path = expected_path(c, modes[m].size, &why);
				if (s == S_EMPTY || s == S_PROC)
					path = expected_path(c, 0, &why);
				snprintf(name, sizeof(name), "%s_to_%s_%s_via_%s%s%s",
					 src_names[s], dst_names[d],
					 s == S_PROC || s == S_EMPTY ?
						 (m == M_SMALL_ZC ? "threshold1" : "defaults") :
						 modes[m].name,
					 zcio_path_name(path), why ? "_because_" : "",
					 why ? zcio_reason_name(why) : "");
				for (char *p = name; *p; p++)
					if (*p == ' ')
						*p = '_';
				tests[nt] = (struct CMUnitTest){
					.name = strdup(name),
					.test_func = run_pair,
					.initial_state = c,
				};
				nt++;
			}
		}
	}
	return _cmocka_run_group_tests("pair_matrix", tests, nt, NULL, NULL);
}
