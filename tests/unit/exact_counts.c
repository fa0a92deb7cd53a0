/*
 * exact_counts.c - zcio_copy() honours lengths and offsets exactly, on every
 * path, with 64-bit counts.
 *
 *  - A length shorter than the source: exactly that many bytes arrive, a
 *    file source's offset ends at exactly that byte, and the rest of the
 *    source (file, pipe or socket) is still there, unread.
 *  - A length past a file's end: the copy stops at EOF and says so.
 *  - ZCIO_F_OFFSET: the source is read at opts.in_offset and its fd offset
 *    is not moved; it is refused (-ESPIPE) for a pipe.
 *  - A sparse file of 5 GiB and a bit, with data written at its start,
 *    across the 4 GiB line and at its end: sendfile to /dev/null and splice
 *    to a pipe (read and checked by a thread) count every byte in 64 bits.
 */
#include "testutil.h"

#define SRC_SIZE (1u * TU_MIB)

enum src_kind { SK_FILE, SK_PIPE, SK_TCP, SK_UNIX };
enum dst_kind { DK_PIPE, DK_TCP, DK_FILE, DK_NULL };

static const char *const sk_names[] = { "file", "pipe", "tcp", "unix" };
static const char *const dk_names[] = { "pipe", "tcp", "file", "devnull" };

struct len_case {
	enum src_kind s;
	enum dst_kind d;
	uint64_t len;
	uint32_t threshold; /* 0: default */
	int path;           /* the path that must carry every byte */
};

/* Take a source and destination, move c->len bytes out of SRC_SIZE, and
 * check the bytes, the path, the source offset and what is left behind. */
static void run_len_case(void **state)
{
	const struct len_case *c = *state;
	struct zcio_opts opts = { .copy_threshold = c->threshold };
	struct zcio_stats st = { 0 };
	struct tu_channel sch = { .rd = -1, .wr = -1 }, dch = { .rd = -1, .wr = -1 };
	struct tu_producer prod = { 0 };
	struct tu_consumer cons = { 0 };
	uint8_t *data = tu_data(SRC_SIZE, c->len + c->s * 7 + c->d);
	uint8_t *rest = malloc(SRC_SIZE);
	int in = -1, out = -1;
	int64_t r, in_off = -1;
	ssize_t rest_n = -1;

	assert_non_null(rest);
	if (c->s == SK_FILE) {
		in = tu_file(data, SRC_SIZE);
	} else {
		tu_channel_open(&sch, c->s == SK_PIPE ? TU_PIPE : c->s == SK_TCP ? TU_TCP : TU_UNIX);
		in = sch.rd;
		prod = (struct tu_producer){ .fd = sch.wr, .data = data, .len = SRC_SIZE,
					     .chunk = 64 * TU_KIB };
		sch.wr = -1;
	}
	if (c->d == DK_FILE) {
		out = tu_file(NULL, 0);
	} else if (c->d == DK_NULL) {
		out = open("/dev/null", O_WRONLY | O_CLOEXEC);
	} else {
		tu_channel_open(&dch, c->d == DK_PIPE ? TU_PIPE : TU_TCP);
		out = dch.wr;
		cons = (struct tu_consumer){ .fd = dch.rd, .expect = data, .expect_len = c->len };
		tu_consumer_start(&cons);
	}
	if (c->s != SK_FILE)
		tu_producer_start(&prod);

	r = zcio_copy(in, out, c->len, &opts, &st);

	/* What is left in the source must be the rest of the stream. */
	if (c->s == SK_FILE) {
		in_off = tu_offset(in);
		rest_n = tu_read_full(in, rest, SRC_SIZE);
	} else {
		rest_n = tu_read_full(in, rest, SRC_SIZE);
		tu_producer_join(&prod);
	}
	if (c->d != DK_FILE && c->d != DK_NULL) {
		tu_channel_end(&dch);
		pthread_join(cons.th, NULL);
		tu_close(&dch.rd);
	}

	if (r != (int64_t)c->len)
		tu_print_stats(&st);
	assert_int_equal(r, (int64_t)c->len);
	assert_int_equal(st.last_bytes, c->len);
	assert_int_equal(st.path_bytes[c->path], c->len);
	if (c->s == SK_FILE)
		assert_int_equal(in_off, (int64_t)c->len);
	else
		assert_int_equal(prod.err, 0);
	assert_int_equal(rest_n, (ssize_t)(SRC_SIZE - c->len));
	assert_memory_equal(rest, data + c->len, SRC_SIZE - c->len);
	if (c->d == DK_FILE) {
		tu_assert_file(out, 0, data, c->len);
		assert_int_equal(tu_offset(out), (int64_t)c->len);
	} else if (c->d != DK_NULL) {
		assert_int_equal(cons.err, 0);
		assert_int_equal(cons.got, c->len);
		assert_int_equal(cons.hash, tu_hash(TU_HASH_INIT, data, c->len));
		assert_int_equal(cons.bad_at, SIZE_MAX);
	}
	tu_close(&in);
	tu_close(&out);
	tu_channel_close(&sch);
	tu_channel_close(&dch);
	free(data);
	free(rest);
}

static const struct len_case len_cases[] = {
	/* Below the default threshold: copied; the offset still exact. */
	{ SK_FILE, DK_PIPE, 12345, 0, ZCIO_PATH_COPY },
	{ SK_FILE, DK_TCP, 12345, 0, ZCIO_PATH_COPY },
	/* File -> file ignores the threshold: copy_file_range is never dearer. */
	{ SK_FILE, DK_FILE, 12345, 0, ZCIO_PATH_COPY_FILE_RANGE },
	/* Forced zero-copy: each path stops at exactly len. */
	{ SK_FILE, DK_PIPE, 12345, 1, ZCIO_PATH_SPLICE },
	{ SK_FILE, DK_TCP, 12345, 1, ZCIO_PATH_SPLICE_PIPE },
	{ SK_FILE, DK_FILE, 12345, 1, ZCIO_PATH_COPY_FILE_RANGE },
	{ SK_FILE, DK_NULL, 12345, 1, ZCIO_PATH_SENDFILE },
	{ SK_PIPE, DK_FILE, 12345, 1, ZCIO_PATH_SPLICE },
	{ SK_PIPE, DK_PIPE, 12345, 1, ZCIO_PATH_SPLICE },
	{ SK_PIPE, DK_TCP, 12345, 1, ZCIO_PATH_SPLICE },
	{ SK_TCP, DK_FILE, 12345, 1, ZCIO_PATH_SPLICE_PIPE },
	{ SK_TCP, DK_PIPE, 12345, 1, ZCIO_PATH_SPLICE },
	{ SK_UNIX, DK_TCP, 12345, 1, ZCIO_PATH_SPLICE_PIPE },
	{ SK_UNIX, DK_NULL, 12345, 1, ZCIO_PATH_SPLICE_PIPE },
	/* Longer than any pipe: many rounds, still exact (default options). */
	{ SK_FILE, DK_PIPE, 700001, 0, ZCIO_PATH_SPLICE },
	{ SK_FILE, DK_TCP, 700001, 0, ZCIO_PATH_SPLICE_PIPE },
	{ SK_FILE, DK_FILE, 700001, 0, ZCIO_PATH_COPY_FILE_RANGE },
	{ SK_PIPE, DK_TCP, 700001, 0, ZCIO_PATH_SPLICE },
	{ SK_TCP, DK_FILE, 700001, 0, ZCIO_PATH_SPLICE_PIPE },
	{ SK_UNIX, DK_TCP, 700001, 0, ZCIO_PATH_SPLICE_PIPE },
	{ SK_TCP, DK_PIPE, 700001, 0, ZCIO_PATH_SPLICE },
};

/* A length past the end of a file: everything there is, then EOF. */
static void length_past_eof_stops_at_eof(void **state)
{
	static const uint32_t thresholds[] = { 0, 1 };
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		struct zcio_opts opts = { .copy_threshold = thresholds[i] };
		struct zcio_stats st = { 0 };
		uint8_t *data = tu_data(100000, 5);
		int in = tu_file(data, 100000), out = tu_file(NULL, 0);

		assert_int_equal(zcio_copy(in, out, 250000, &opts, &st), 100000);
		assert_int_equal(st.last_bytes, 100000);
		tu_assert_file(out, 0, data, 100000);
		assert_int_equal(tu_offset(in), 100000);
		/* At EOF already: 0, nothing written. */
		assert_int_equal(zcio_copy(in, out, 10, &opts, &st), 0);
		assert_int_equal(st.last_bytes, 0);
		close(in);
		close(out);
		free(data);
	}
}

/*
 * A small file copied whole to a file takes one copy_file_range(): the
 * size it had when the call began says it has delivered everything.  From
 * a later offset the usual call returning 0 ends it, with the exact count.
 */
static void small_file_to_file_ends_at_its_size(void **state)
{
	struct zcio_stats st = { 0 };
	uint8_t *data = tu_data(5000, 12);
	int in = tu_file(data, 5000), out = tu_file(NULL, 0);

	(void)state;
	assert_int_equal(zcio_copy(in, out, ZCIO_TO_EOF, NULL, &st), 5000);
	assert_int_equal(st.path_bytes[ZCIO_PATH_COPY_FILE_RANGE], 5000);
	assert_int_equal(st.syscalls, 1);
	tu_assert_file(out, 0, data, 5000);
	assert_int_equal(tu_offset(in), 5000);
	close(out);
	out = tu_file(NULL, 0);
	assert_int_equal(lseek(in, 1000, SEEK_SET), 1000);
	memset(&st, 0, sizeof(st));
	assert_int_equal(zcio_copy(in, out, ZCIO_TO_EOF, NULL, &st), 4000);
	assert_int_equal(st.path_bytes[ZCIO_PATH_COPY_FILE_RANGE], 4000);
	assert_int_equal(st.syscalls, 2);
	tu_assert_file(out, 0, data + 1000, 4000);
	close(in);
	close(out);
	free(data);
}

/* len 0 moves nothing and touches nothing. */
static void length_zero_moves_nothing(void **state)
{
	struct zcio_stats st = { .last_bytes = 99 };
	uint8_t *data = tu_data(1000, 6);
	int in = tu_file(data, 1000), out = tu_file(NULL, 0);

	(void)state;
	assert_int_equal(zcio_copy(in, out, 0, NULL, &st), 0);
	assert_int_equal(st.last_bytes, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(tu_offset(in), 0);
	tu_assert_file(out, 0, "", 0);
	close(in);
	close(out);
	free(data);
}

/* ZCIO_F_OFFSET: read at in_offset; the fd's own offset stays put. */
static void positional_source_leaves_fd_offset_alone(void **state)
{
	static const uint32_t thresholds[] = { 0, 1 };
	static const int to_file_path[] = { ZCIO_PATH_COPY_FILE_RANGE, ZCIO_PATH_COPY_FILE_RANGE };
	uint8_t *data = tu_data(SRC_SIZE, 7);
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		struct zcio_opts opts = { .copy_threshold = thresholds[i],
					  .flags = ZCIO_F_OFFSET, .in_offset = 1000 };
		struct zcio_stats st = { 0 };
		struct tu_channel ch;
		struct tu_consumer cons;
		int in = tu_file(data, SRC_SIZE), out = tu_file(NULL, 0);
		int64_t r;

		assert_int_equal(lseek(in, 77, SEEK_SET), 77);
		/* To a file, 12345 bytes from 1000. */
		assert_int_equal(zcio_copy(in, out, 12345, &opts, &st), 12345);
		assert_int_equal(st.path_bytes[to_file_path[i]], 12345);
		tu_assert_file(out, 0, data + 1000, 12345);
		assert_int_equal(tu_offset(in), 77);

		/* To a pipe, from 1000 to the end. */
		tu_channel_open(&ch, TU_PIPE);
		cons = (struct tu_consumer){ .fd = ch.rd, .expect = data + 1000,
					     .expect_len = SRC_SIZE - 1000 };
		tu_consumer_start(&cons);
		memset(&st, 0, sizeof(st));
		r = zcio_copy(in, ch.wr, ZCIO_TO_EOF, &opts, &st);
		tu_channel_end(&ch);
		tu_consumer_check(&cons);
		assert_int_equal(r, SRC_SIZE - 1000);
		/* The size known up front is the file's: not small. */
		assert_int_equal(st.path_bytes[ZCIO_PATH_SPLICE], SRC_SIZE - 1000);
		assert_int_equal(tu_offset(in), 77);
		tu_channel_close(&ch);
		close(in);
		close(out);
	}
	free(data);
}

static void positional_source_must_be_a_file(void **state)
{
	struct zcio_opts opts = { .flags = ZCIO_F_OFFSET, .in_offset = 0 };
	struct tu_channel ch;
	int out = tu_file(NULL, 0);

	(void)state;
	tu_channel_open(&ch, TU_PIPE);
	assert_int_equal(write(ch.wr, "abc", 3), 3);
	assert_int_equal(zcio_copy(ch.rd, out, 3, &opts, NULL), -ESPIPE);
	/* Nothing was taken from the pipe. */
	assert_int_equal(tu_readable(ch.rd), 3);
	tu_channel_close(&ch);
	close(out);
}

/* ---- over 4 GiB ------------------------------------------------------------ */

#define BIG_SIZE ((5ull << 30) + 12345)

struct region {
	uint64_t off;
	size_t len;
	uint64_t seed;
};

/* Bytes written into the sparse file; everything else is a hole (zeros). */
static const struct region regions[] = {
	{ 0, 4096, 11 },
	{ (4ull << 30) - 2048, 4096, 12 },   /* across the 4 GiB line */
	{ BIG_SIZE - 3000, 3000, 13 },        /* the last bytes */
};

static int big_fd = -1;

/* The sparse file, made once (tmpfs when there is one: holes cost nothing). */
static int big_setup(void **state)
{
	char path[PATH_MAX];
	struct stat st;
	size_t i;

	(void)state;
	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
		snprintf(path, sizeof(path), "/dev/shm/zcio-unit-big-%d", (int)getpid());
	else
		tu_path(path, sizeof(path), "big");
	big_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (big_fd < 0)
		return -1;
	unlink(path);
	if (ftruncate(big_fd, (off_t)BIG_SIZE) != 0)
		return -1;
	for (i = 0; i < sizeof(regions) / sizeof(regions[0]); i++) {
		uint8_t *b = tu_data(regions[i].len, regions[i].seed);

		if (pwrite(big_fd, b, regions[i].len, (off_t)regions[i].off) != (ssize_t)regions[i].len)
			return -1;
		free(b);
	}
	return 0;
}

static int big_teardown(void **state)
{
	(void)state;
	tu_close(&big_fd);
	return 0;
}

/* Expected bytes of the sparse file in [off, off + n). */
static void big_expected(uint8_t *buf, uint64_t off, size_t n)
{
	size_t i;

	memset(buf, 0, n);
	for (i = 0; i < sizeof(regions) / sizeof(regions[0]); i++) {
		const struct region *g = &regions[i];
		uint8_t *b;
		uint64_t lo, hi;

		if (g->off >= off + n || g->off + g->len <= off)
			continue;
		b = tu_data(g->len, g->seed);
		lo = g->off > off ? g->off : off;
		hi = g->off + g->len < off + n ? g->off + g->len : off + n;
		memcpy(buf + (lo - off), b + (lo - g->off), hi - lo);
		free(b);
	}
}

static void over_4gib_sendfile_to_devnull_counts_in_64_bits(void **state)
{
	struct zcio_stats st = { 0 };
	int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
	int64_t r;

	(void)state;
	assert_true(out >= 0);
	assert_int_equal(lseek(big_fd, 0, SEEK_SET), 0);
	r = zcio_copy(big_fd, out, ZCIO_TO_EOF, NULL, &st);
	if (r != (int64_t)BIG_SIZE)
		tu_print_stats(&st);
	assert_int_equal(r, (int64_t)BIG_SIZE);
	assert_int_equal(st.last_bytes, BIG_SIZE);
	assert_int_equal(st.path_bytes[ZCIO_PATH_SENDFILE], BIG_SIZE);
	assert_int_equal((uint64_t)tu_offset(big_fd), BIG_SIZE);
	close(out);
}

/* Reads a pipe to EOF and compares every byte with the sparse file's. */
struct big_reader {
	int fd;
	uint64_t start;
	uint64_t got;
	uint64_t bad_at;
	pthread_t th;
};

static void *big_reader_main(void *arg)
{
	struct big_reader *b = arg;
	size_t size = TU_MIB;
	uint8_t *buf = malloc(size), *want = malloc(size);

	tu_block_test_signals();
	b->bad_at = UINT64_MAX;
	for (;;) {
		ssize_t r = read(b->fd, buf, size);

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (b->bad_at == UINT64_MAX) {
			big_expected(want, b->start + b->got, (size_t)r);
			if (b->start + b->got + (uint64_t)r > BIG_SIZE || memcmp(buf, want, (size_t)r))
				b->bad_at = b->got;
		}
		b->got += (uint64_t)r;
	}
	free(buf);
	free(want);
	return NULL;
}

static void over_4gib_splice_to_pipe_counts_and_checks_every_byte(void **state)
{
	struct zcio_stats st = { 0 };
	struct tu_channel ch;
	struct big_reader br = { .start = 0 };
	int64_t r;

	(void)state;
	tu_channel_open(&ch, TU_PIPE);
	/* A 1 MiB pipe: fewer rounds, same checks. */
	(void)fcntl(ch.wr, F_SETPIPE_SZ, (int)TU_MIB);
	br.fd = ch.rd;
	assert_int_equal(pthread_create(&br.th, NULL, big_reader_main, &br), 0);
	assert_int_equal(lseek(big_fd, 0, SEEK_SET), 0);
	r = zcio_copy(big_fd, ch.wr, ZCIO_TO_EOF, NULL, &st);
	tu_channel_end(&ch);
	pthread_join(br.th, NULL);
	assert_int_equal(r, (int64_t)BIG_SIZE);
	assert_int_equal(st.last_bytes, BIG_SIZE);
	assert_int_equal(st.path_bytes[ZCIO_PATH_SPLICE], BIG_SIZE);
	assert_int_equal(br.got, BIG_SIZE);
	assert_int_equal(br.bad_at, UINT64_MAX);
	assert_int_equal((uint64_t)tu_offset(big_fd), BIG_SIZE);
	tu_channel_close(&ch);
}

/* Offsets past 4 GiB: a positional read across the line, and a plain one
 * starting past it, both exact. */
static void over_4gib_offsets_are_exact(void **state)
{
	static const uint32_t thresholds[] = { 0, 1 };
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		struct zcio_opts opts = { .copy_threshold = thresholds[i], .flags = ZCIO_F_OFFSET,
					  .in_offset = (4ull << 30) - 3000 };
		uint8_t want[6000];
		int out = tu_file(NULL, 0);
		uint64_t start = BIG_SIZE - 5000;

		assert_int_equal(lseek(big_fd, 123, SEEK_SET), 123);
		assert_int_equal(zcio_copy(big_fd, out, 6000, &opts, NULL), 6000);
		big_expected(want, (4ull << 30) - 3000, 6000);
		tu_assert_file(out, 0, want, 6000);
		assert_int_equal(tu_offset(big_fd), 123);

		/* From the fd's own offset, past 4 GiB, to EOF. */
		assert_int_equal(ftruncate(out, 0), 0);
		assert_int_equal(lseek(out, 0, SEEK_SET), 0);
		opts.flags = 0;
		assert_int_equal((uint64_t)lseek(big_fd, (off_t)start, SEEK_SET), start);
		assert_int_equal(zcio_copy(big_fd, out, ZCIO_TO_EOF, &opts, NULL), 5000);
		big_expected(want, start, 5000);
		tu_assert_file(out, 0, want, 5000);
		assert_int_equal((uint64_t)tu_offset(big_fd), BIG_SIZE);
		close(out);
	}
}

int main(void)
{
	static struct CMUnitTest tests[sizeof(len_cases) / sizeof(len_cases[0])];
	const struct CMUnitTest fixed[] = {
		cmocka_unit_test(length_past_eof_stops_at_eof),
		cmocka_unit_test(length_zero_moves_nothing),
		cmocka_unit_test(small_file_to_file_ends_at_its_size),
		cmocka_unit_test(positional_source_leaves_fd_offset_alone),
		cmocka_unit_test(positional_source_must_be_a_file),
	};
	const struct CMUnitTest big[] = {
		cmocka_unit_test(over_4gib_sendfile_to_devnull_counts_in_64_bits),
		cmocka_unit_test(over_4gib_splice_to_pipe_counts_and_checks_every_byte),
		cmocka_unit_test(over_4gib_offsets_are_exact),
	};
	size_t i;
	int fails = 0;

	tu_init(300);
	for (i = 0; i < sizeof(len_cases) / sizeof(len_cases[0]); i++) {
		const struct len_case *c = &len_cases[i];
		char name[128];

		snprintf(name, sizeof(name), "%s_to_%s_len_%llu_%s_via_%s_exact_and_rest_left",
			 sk_names[c->s], dk_names[c->d], (unsigned long long)c->len,
			 c->threshold == 1 ? "threshold1" : "defaults", zcio_path_name(c->path));
		tests[i] = (struct CMUnitTest){ .name = strdup(name), .test_func = run_len_case,
						.initial_state = (void *)c };
	}
	fails += _cmocka_run_group_tests("exact_lengths", tests, i, NULL, NULL);
	fails += cmocka_run_group_tests_name("exact_offsets", fixed, NULL, NULL);
	fails += cmocka_run_group_tests_name("over_4gib", big, big_setup, big_teardown);
	return fails ? 1 : 0;
}
