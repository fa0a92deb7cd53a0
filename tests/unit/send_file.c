/*
 * send_file.c - zcio_send_file(): a header and a slice of a file as one
 * stream, to a TCP socket, a pipe or a file.
 *
 *  - Small totals (below the copy threshold) leave in one writev()/sendmsg()
 *    after one pread(): path copy only, two syscalls.
 *  - Large bodies: ZCIO_F_VIA_PIPE writes the header into a pooled pipe and
 *    splices the file behind it (splice-pipe); ZCIO_F_VIA_SENDFILE sends
 *    the header, then sendfile()s the body.  The header is always counted
 *    as copied.  To a pipe the body is spliced, to a file copy_file_range'd.
 *  - off/len pick the slice; ZCIO_TO_EOF means to the end; the file's own
 *    offset is neither used nor moved.
 *  - A file truncated while it is being sent (another thread, while a slow
 *    reader drains a socket with small buffers) gives -ENODATA: no padding,
 *    no hang, and last_bytes is exactly what the reader received.
 */
#include <stdatomic.h>

#include "testutil.h"

#define FILE_SIZE (8u * TU_MIB)

static uint8_t *file_data;
static int file_fd = -1;

static int group_setup(void **state)
{
	(void)state;
	file_data = tu_data(FILE_SIZE, 1234);
	file_fd = tu_file(file_data, FILE_SIZE);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	tu_close(&file_fd);
	free(file_data);
	return 0;
}

enum dst { TO_TCP, TO_PIPE, TO_FILE };
static const char *const dst_names[] = { "tcp", "pipe", "file" };

struct sf_case {
	enum dst d;
	size_t hdrlen;
	uint64_t off;
	uint64_t len;        /* ZCIO_TO_EOF allowed */
	uint32_t flags;
	uint32_t threshold;
	int body_path;       /* the path that carries the body */
	int max_syscalls;    /* 0: not checked */
	const char *what;
};

static const struct sf_case cases[] = {
	{ TO_TCP, 120, 0, 1000, 0, 0, ZCIO_PATH_COPY, 2, "small_total_one_sendmsg" },
	{ TO_PIPE, 120, 0, 1000, 0, 0, ZCIO_PATH_COPY, 2, "small_total_one_writev" },
	{ TO_FILE, 120, 0, 1000, 0, 0, ZCIO_PATH_COPY, 2, "small_total_one_writev" },
	{ TO_TCP, 0, 4096, 5000, 0, 0, ZCIO_PATH_COPY, 2, "small_no_header" },
	{ TO_TCP, 200, 0, 2 * TU_MIB, ZCIO_F_VIA_PIPE, 0, ZCIO_PATH_SPLICE_PIPE, 0,
	  "large_header_in_pipe_body_spliced_behind" },
	{ TO_TCP, 200, 0, 2 * TU_MIB, ZCIO_F_VIA_SENDFILE, 0, ZCIO_PATH_SENDFILE, 0,
	  "large_header_sent_then_sendfile" },
	{ TO_TCP, 200, 0, 2 * TU_MIB, 0, 0, ZCIO_PATH_SPLICE_PIPE, 0,
	  "large_default_header_in_pipe" },
	{ TO_TCP, 0, 0, 2 * TU_MIB, 0, 0, ZCIO_PATH_SPLICE_PIPE, 0, "large_no_header_spliced" },
	{ TO_TCP, 0, 0, 2 * TU_MIB, ZCIO_F_VIA_SENDFILE, 0, ZCIO_PATH_SENDFILE, 0,
	  "large_no_header_via_sendfile" },
	{ TO_PIPE, 200, 0, 2 * TU_MIB, 0, 0, ZCIO_PATH_SPLICE, 0, "large_body_spliced" },
	{ TO_FILE, 200, 0, 2 * TU_MIB, 0, 0, ZCIO_PATH_COPY_FILE_RANGE, 0,
	  "large_body_copy_file_range" },
	/* Slices: odd offsets and lengths, to EOF, each path. */
	{ TO_TCP, 77, 12345, 777777, ZCIO_F_VIA_PIPE, 0, ZCIO_PATH_SPLICE_PIPE, 0,
	  "slice_off_len" },
	{ TO_TCP, 77, 12345, 777777, ZCIO_F_VIA_SENDFILE, 0, ZCIO_PATH_SENDFILE, 0,
	  "slice_off_len" },
	{ TO_PIPE, 77, 12345, 777777, 0, 0, ZCIO_PATH_SPLICE, 0, "slice_off_len" },
	{ TO_FILE, 77, 12345, 777777, 0, 0, ZCIO_PATH_COPY_FILE_RANGE, 0, "slice_off_len" },
	{ TO_TCP, 77, 12345, 777777, ZCIO_F_COPY, 0, ZCIO_PATH_COPY, 0, "slice_off_len" },
	{ TO_TCP, 33, FILE_SIZE - 300001, ZCIO_TO_EOF, ZCIO_F_VIA_PIPE, 0,
	  ZCIO_PATH_SPLICE_PIPE, 0, "to_eof" },
	{ TO_TCP, 33, FILE_SIZE - 300001, ZCIO_TO_EOF, ZCIO_F_VIA_SENDFILE, 0,
	  ZCIO_PATH_SENDFILE, 0, "to_eof" },
	{ TO_PIPE, 33, FILE_SIZE - 300001, ZCIO_TO_EOF, 0, 0, ZCIO_PATH_SPLICE, 0, "to_eof" },
	{ TO_FILE, 33, FILE_SIZE - 300001, ZCIO_TO_EOF, 0, 0, ZCIO_PATH_COPY_FILE_RANGE, 0,
	  "to_eof" },
	/* Small, but forced onto the zero-copy routes (threshold 1). */
	{ TO_TCP, 10, 1, 100, ZCIO_F_VIA_PIPE, 1, ZCIO_PATH_SPLICE_PIPE, 0, "tiny_threshold1" },
	{ TO_TCP, 10, 1, 100, ZCIO_F_VIA_SENDFILE, 1, ZCIO_PATH_SENDFILE, 0, "tiny_threshold1" },
};

static void run_sf(void **state)
{
	const struct sf_case *c = *state;
	struct zcio_opts opts = { .flags = c->flags, .copy_threshold = c->threshold };
	struct zcio_stats st = { 0 };
	struct tu_channel ch = { .rd = -1, .wr = -1 };
	struct tu_consumer cons = { 0 };
	uint64_t body = c->len == ZCIO_TO_EOF ? FILE_SIZE - c->off : c->len;
	size_t total = c->hdrlen + body;
	uint8_t *hdr = tu_data(c->hdrlen, 99);
	uint8_t *want = malloc(total);
	int out = -1, i;
	int64_t r;
	uint64_t other = 0;

	assert_non_null(want);
	memcpy(want, hdr, c->hdrlen);
	memcpy(want + c->hdrlen, file_data + c->off, body);
	assert_int_equal(lseek(file_fd, 99, SEEK_SET), 99);
	if (c->d == TO_FILE) {
		out = tu_file(NULL, 0);
	} else {
		tu_channel_open(&ch, c->d == TO_TCP ? TU_TCP : TU_PIPE);
		out = ch.wr;
		cons = (struct tu_consumer){ .fd = ch.rd, .expect = want, .expect_len = total };
		tu_consumer_start(&cons);
	}

	r = zcio_send_file(out, c->hdrlen ? hdr : NULL, c->hdrlen, file_fd, c->off, c->len,
			   &opts, &st);

	if (c->d != TO_FILE) {
		tu_channel_end(&ch);
		pthread_join(cons.th, NULL);
	}
	if (r != (int64_t)total)
		tu_print_stats(&st);
	assert_int_equal(r, (int64_t)total);
	assert_int_equal(st.last_bytes, total);
	if (c->d == TO_FILE) {
		tu_assert_file(out, 0, want, total);
		close(out);
	} else {
		assert_int_equal(cons.err, 0);
		assert_int_equal(cons.got, total);
		assert_int_equal(cons.hash, tu_hash(TU_HASH_INIT, want, total));
		assert_int_equal(cons.bad_at, SIZE_MAX);
	}
	/* The header is copied; the body goes by the expected path. */
	if (c->body_path == ZCIO_PATH_COPY) {
		assert_int_equal(st.path_bytes[ZCIO_PATH_COPY], total);
	} else {
		assert_int_equal(st.path_bytes[ZCIO_PATH_COPY], c->hdrlen);
		assert_int_equal(st.path_bytes[c->body_path], body);
	}
	for (i = 0; i < ZCIO_PATH_SLOTS; i++)
		if (i != c->body_path && i != ZCIO_PATH_COPY)
			other += st.path_bytes[i];
	assert_int_equal(other, 0);
	if (c->max_syscalls) {
		if (st.syscalls > (uint64_t)c->max_syscalls)
			printf("# %llu syscalls\n", (unsigned long long)st.syscalls);
		assert_true(st.syscalls <= (uint64_t)c->max_syscalls);
	}
	/* The file's own offset was neither used nor moved. */
	assert_int_equal(tu_offset(file_fd), 99);
	tu_channel_close(&ch);
	free(hdr);
	free(want);
}

static void header_pointer_null_with_length_is_einval(void **state)
{
	struct tu_channel ch;

	(void)state;
	tu_channel_open(&ch, TU_PIPE);
	assert_int_equal(zcio_send_file(ch.wr, NULL, 10, file_fd, 0, 100, NULL, NULL), -EINVAL);
	assert_int_equal(tu_readable(ch.rd), 0);
	tu_channel_close(&ch);
}

static void source_must_be_a_regular_file(void **state)
{
	struct tu_channel src, dst;

	(void)state;
	tu_channel_open(&src, TU_PIPE);
	tu_channel_open(&dst, TU_PIPE);
	assert_int_equal(write(src.wr, "abc", 3), 3);
	assert_int_equal(zcio_send_file(dst.wr, "h", 1, src.rd, 0, 3, NULL, NULL), -EINVAL);
	assert_int_equal(tu_readable(dst.rd), 0);
	assert_int_equal(tu_readable(src.rd), 3);
	tu_channel_close(&src);
	tu_channel_close(&dst);
}

/* Asked for more than the file holds at call time: what there is, then
 * -ENODATA; never padding. */
static void length_past_end_of_file_sends_what_exists_then_enodata(void **state)
{
	static const uint32_t flags[] = { 0, ZCIO_F_VIA_PIPE, ZCIO_F_VIA_SENDFILE, ZCIO_F_COPY };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		struct zcio_opts opts = { .flags = flags[i] };
		struct zcio_stats st = { 0 };
		struct tu_channel ch;
		struct tu_consumer cons;
		uint64_t off = FILE_SIZE - 100000;
		uint8_t *want = malloc(100000 + 4);
		int64_t r;

		memcpy(want, "HDR:", 4);
		memcpy(want + 4, file_data + off, 100000);
		tu_channel_open(&ch, TU_TCP);
		cons = (struct tu_consumer){ .fd = ch.rd, .expect = want, .expect_len = 100004 };
		tu_consumer_start(&cons);
		r = zcio_send_file(ch.wr, "HDR:", 4, file_fd, off, 500000, &opts, &st);
		tu_channel_end(&ch);
		tu_consumer_check(&cons);
		assert_int_equal(r, -ENODATA);
		assert_int_equal(st.last_bytes, 100004);
		tu_channel_close(&ch);
		free(want);
	}
}

/* An offset at or past the end with ZCIO_TO_EOF: just the header. */
static void offset_at_end_sends_only_the_header(void **state)
{
	struct zcio_stats st = { 0 };
	struct tu_channel ch;
	char buf[16];

	(void)state;
	tu_channel_open(&ch, TU_PIPE);
	assert_int_equal(zcio_send_file(ch.wr, "only", 4, file_fd, FILE_SIZE, ZCIO_TO_EOF, NULL, &st), 4);
	assert_int_equal(st.last_bytes, 4);
	tu_close(&ch.wr);
	assert_int_equal(tu_read_full(ch.rd, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "only", 4);
	tu_channel_close(&ch);
}

/* ---- truncation while sending ---------------------------------------------- */

#define TRUNC_AT (4u * TU_MIB)      /* page aligned, far past what is in flight */
#define SLOW_UNTIL (256u * TU_KIB)  /* truncate once the reader has this; the
				       reader stays slow until then, so the
				       sender is still far from TRUNC_AT */

struct slow_reader {
	int fd;
	const uint8_t *expect;
	size_t expect_len;
	atomic_size_t got;
	atomic_bool truncated;   /* slow until the file has been truncated */
	size_t bad_at;
	pthread_t th;
};

static void *slow_reader_main(void *arg)
{
	struct slow_reader *s = arg;
	uint8_t buf[4096];

	tu_block_test_signals();
	s->bad_at = SIZE_MAX;
	for (;;) {
		size_t got = atomic_load(&s->got);
		ssize_t r = read(s->fd, buf, sizeof(buf));

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (s->bad_at == SIZE_MAX &&
		    (got + (size_t)r > s->expect_len || memcmp(buf, s->expect + got, (size_t)r)))
			s->bad_at = got;
		atomic_store(&s->got, got + (size_t)r);
		if (!atomic_load(&s->truncated))
			tu_sleep_us(1000);
	}
	return NULL;
}

struct truncator {
	struct slow_reader *reader;
	int fd;
	int err;
	pthread_t th;
};

static void *truncator_main(void *arg)
{
	struct truncator *t = arg;

	tu_block_test_signals();
	while (atomic_load(&t->reader->got) < SLOW_UNTIL)
		tu_sleep_us(1000);
	if (ftruncate(t->fd, TRUNC_AT) != 0)
		t->err = -errno;
	atomic_store(&t->reader->truncated, true);
	return NULL;
}

static void truncated_while_sending(uint32_t flags, int body_path)
{
	struct zcio_opts opts = { .flags = flags, .pipe_size = 64 * 1024 };
	struct zcio_stats st = { 0 };
	struct tu_channel ch;
	struct slow_reader rd = { 0 };
	struct truncator tr = { 0 };
	uint64_t off = 8192, len = FILE_SIZE - off;
	size_t expect_len = 20 + TRUNC_AT - off;
	uint8_t *want = malloc(20 + len);
	int small = 16 * 1024, fd;
	int64_t r, t0, t;

	/* A copy of the file, to truncate. */
	fd = tu_file(file_data, FILE_SIZE);
	memcpy(want, "HTTP/1.1 200 OK\r\n\r\n!", 20);
	memcpy(want + 20, file_data + off, len);
	tu_channel_open(&ch, TU_TCP);
	setsockopt(ch.rd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	setsockopt(ch.wr, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	rd.fd = ch.rd;
	rd.expect = want;
	rd.expect_len = expect_len;
	tr.reader = &rd;
	tr.fd = fd;
	assert_int_equal(pthread_create(&rd.th, NULL, slow_reader_main, &rd), 0);
	assert_int_equal(pthread_create(&tr.th, NULL, truncator_main, &tr), 0);

	t0 = tu_now_us();
	r = zcio_send_file(ch.wr, want, 20, fd, off, len, &opts, &st);
	t = tu_now_us() - t0;
	pthread_join(tr.th, NULL);
	tu_close(&ch.wr);
	pthread_join(rd.th, NULL);

	if (r != -ENODATA)
		tu_print_stats(&st);
	assert_int_equal(tr.err, 0);
	assert_int_equal(r, -ENODATA);
	/* Exactly what the reader got: the header and the file up to where it
	 * now ends; no padding up to len. */
	assert_int_equal(atomic_load(&rd.got), expect_len);
	assert_int_equal(st.last_bytes, expect_len);
	assert_int_equal(rd.bad_at, SIZE_MAX);
	assert_int_equal(st.path_bytes[body_path], body_path == ZCIO_PATH_COPY ?
						 expect_len : expect_len - 20);
	assert_true(t < 20 * 1000000);
	tu_channel_close(&ch);
	close(fd);
	free(want);
}

static void truncated_while_sending_via_sendfile_enodata_exact_count(void **state)
{
	(void)state;
	truncated_while_sending(ZCIO_F_VIA_SENDFILE, ZCIO_PATH_SENDFILE);
}

static void truncated_while_sending_via_pipe_enodata_exact_count(void **state)
{
	(void)state;
	truncated_while_sending(ZCIO_F_VIA_PIPE, ZCIO_PATH_SPLICE_PIPE);
}

static void truncated_while_sending_by_copy_enodata_exact_count(void **state)
{
	(void)state;
	truncated_while_sending(ZCIO_F_COPY, ZCIO_PATH_COPY);
}

int main(void)
{
	static struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0]) + 8];
	size_t i, n = 0;

	tu_init(300);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct sf_case *c = &cases[i];
		char name[160];

		snprintf(name, sizeof(name), "%s_to_%s_%s_body_via_%s", c->what, dst_names[c->d],
			 c->flags & ZCIO_F_VIA_PIPE ? "via_pipe" :
			 c->flags & ZCIO_F_VIA_SENDFILE ? "via_sendfile" :
			 c->flags & ZCIO_F_COPY ? "forced_copy" : "default",
			 zcio_path_name(c->body_path));
		tests[n++] = (struct CMUnitTest){ .name = strdup(name), .test_func = run_sf,
						  .initial_state = (void *)c };
	}
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(header_pointer_null_with_length_is_einval);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(source_must_be_a_regular_file);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(length_past_end_of_file_sends_what_exists_then_enodata);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(offset_at_end_sends_only_the_header);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(truncated_while_sending_via_sendfile_enodata_exact_count);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(truncated_while_sending_via_pipe_enodata_exact_count);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(truncated_while_sending_by_copy_enodata_exact_count);
	return _cmocka_run_group_tests("send_file", tests, n, group_setup, group_teardown);
}
