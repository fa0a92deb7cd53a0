/*
 * by_reference.c - zero-copy passes page references; ZCIO_F_STABLE copies.
 *
 * splice() from a regular file into a pipe does not copy the file's bytes:
 * the pipe holds references to the file's page-cache pages, and the bytes
 * are read when the pipe's reader consumes them.  A write to the file made
 * after zcio_copy() returned but before the reader read therefore shows up
 * at the reader.  This is the kernel's splice behaviour (sendfile(2) asks
 * its callers not to modify the file until the reader has consumed it), and
 * zcio documents it rather than hiding it: callers who need a snapshot pass
 * ZCIO_F_STABLE, which copies bytes out of regular files at the time of the
 * call.  Both behaviours are asserted here, so a change in either (a kernel
 * that starts copying, or a library that forgets the flag) is noticed.
 */
#include <sys/syscall.h>

#include "testutil.h"

#define N (32u * TU_KIB)

struct ref_fixture {
	uint8_t *old_bytes, *new_bytes, *seen;
	int file;
	struct tu_channel ch;
};

static int setup(void **state)
{
	struct ref_fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->old_bytes = tu_data(N, 1);
	f->new_bytes = tu_data(N, 2);
	f->seen = malloc(N);
	f->file = tu_file(f->old_bytes, N);
	tu_channel_open(&f->ch, TU_PIPE);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct ref_fixture *f = *state;

	tu_channel_close(&f->ch);
	close(f->file);
	free(f->old_bytes);
	free(f->new_bytes);
	free(f->seen);
	free(f);
	return 0;
}

/* Copy the file into the pipe, overwrite the file, then read the pipe. */
static int64_t copy_overwrite_read(struct ref_fixture *f, const struct zcio_opts *opts,
				   struct zcio_stats *st)
{
	int64_t r = zcio_copy(f->file, f->ch.wr, ZCIO_TO_EOF, opts, st);

	/* The copy returned; nobody has read the pipe yet. */
	assert_int_equal(tu_readable(f->ch.rd), N);
	assert_int_equal(pwrite(f->file, f->new_bytes, N, 0), N);
	assert_int_equal(tu_read_full(f->ch.rd, f->seen, N), N);
	return r;
}

static void zero_copy_file_to_pipe_reader_sees_bytes_written_after_the_call(void **state)
{
	struct ref_fixture *f = *state;
	struct zcio_opts opts = tu_opts_zc();
	struct zcio_stats st = { 0 };

	assert_int_equal(copy_overwrite_read(f, &opts, &st), N);
	assert_int_equal(st.path_bytes[ZCIO_PATH_SPLICE], N);
	/* By reference: the NEW bytes, written after zcio_copy() returned. */
	assert_int_equal(tu_hash(TU_HASH_INIT, f->seen, N), tu_hash(TU_HASH_INIT, f->new_bytes, N));
	assert_memory_equal(f->seen, f->new_bytes, N);
}

static void stable_file_to_pipe_reader_sees_bytes_as_they_were_at_the_call(void **state)
{
	struct ref_fixture *f = *state;
	struct zcio_opts opts = { .copy_threshold = 1, .flags = ZCIO_F_STABLE };
	struct zcio_stats st = { 0 };

	assert_int_equal(copy_overwrite_read(f, &opts, &st), N);
	assert_int_equal(st.path_bytes[ZCIO_PATH_COPY], N);
	assert_int_equal(st.nfallbacks, 1);
	assert_int_equal(st.fallback[0].from, ZCIO_PATH_SPLICE);
	assert_int_equal(st.fallback[0].reason, ZCIO_WHY_STABLE);
	/* Copied: the OLD bytes, a snapshot taken by the call. */
	assert_int_equal(tu_hash(TU_HASH_INIT, f->seen, N), tu_hash(TU_HASH_INIT, f->old_bytes, N));
	assert_memory_equal(f->seen, f->old_bytes, N);
}

/* zcio_send_file() follows the same rule. */
static void stable_send_file_to_pipe_sends_a_snapshot(void **state)
{
	struct ref_fixture *f = *state;
	struct zcio_opts opts = { .copy_threshold = 1, .flags = ZCIO_F_STABLE };
	struct zcio_stats st = { 0 };
	char hdr[5];

	assert_int_equal(zcio_send_file(f->ch.wr, "HEAD:", 5, f->file, 0, N, &opts, &st), N + 5);
	assert_int_equal(st.path_bytes[ZCIO_PATH_COPY], N + 5);
	assert_int_equal(pwrite(f->file, f->new_bytes, N, 0), N);
	assert_int_equal(tu_read_full(f->ch.rd, hdr, 5), 5);
	assert_memory_equal(hdr, "HEAD:", 5);
	assert_int_equal(tu_read_full(f->ch.rd, f->seen, N), N);
	assert_memory_equal(f->seen, f->old_bytes, N);
}

static void zero_copy_send_file_to_pipe_passes_references(void **state)
{
	struct ref_fixture *f = *state;
	struct zcio_opts opts = tu_opts_zc();
	struct zcio_stats st = { 0 };
	char hdr[5];

	assert_int_equal(zcio_send_file(f->ch.wr, "HEAD:", 5, f->file, 0, N, &opts, &st), N + 5);
	assert_int_equal(st.path_bytes[ZCIO_PATH_SPLICE], N);
	assert_int_equal(pwrite(f->file, f->new_bytes, N, 0), N);
	assert_int_equal(tu_read_full(f->ch.rd, hdr, 5), 5);
	assert_memory_equal(hdr, "HEAD:", 5);
	assert_int_equal(tu_read_full(f->ch.rd, f->seen, N), N);
	assert_memory_equal(f->seen, f->new_bytes, N);
}

/* STABLE is about regular-file sources: a pipe source still splices (its
 * bytes are already the pipe's own). */
static void stable_does_not_stop_splice_from_a_pipe_source(void **state)
{
	struct ref_fixture *f = *state;
	struct zcio_opts opts = { .copy_threshold = 1, .flags = ZCIO_F_STABLE };
	struct zcio_stats st = { 0 };
	struct tu_channel src;

	tu_channel_open(&src, TU_PIPE);
	assert_int_equal(write(src.wr, f->old_bytes, N), N);
	tu_close(&src.wr);
	assert_int_equal(zcio_copy(src.rd, f->ch.wr, ZCIO_TO_EOF, &opts, &st), N);
	assert_int_equal(st.path_bytes[ZCIO_PATH_SPLICE], N);
	assert_int_equal(st.nfallbacks, 0);
	assert_int_equal(tu_read_full(f->ch.rd, f->seen, N), N);
	assert_memory_equal(f->seen, f->old_bytes, N);
	tu_channel_close(&src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			zero_copy_file_to_pipe_reader_sees_bytes_written_after_the_call, setup, teardown),
		cmocka_unit_test_setup_teardown(
			stable_file_to_pipe_reader_sees_bytes_as_they_were_at_the_call, setup, teardown),
		cmocka_unit_test_setup_teardown(zero_copy_send_file_to_pipe_passes_references, setup,
						teardown),
		cmocka_unit_test_setup_teardown(stable_send_file_to_pipe_sends_a_snapshot, setup,
						teardown),
		cmocka_unit_test_setup_teardown(stable_does_not_stop_splice_from_a_pipe_source, setup,
						teardown),
	};

	tu_init(120);
	return cmocka_run_group_tests_name("by_reference", tests, NULL, NULL);
}
