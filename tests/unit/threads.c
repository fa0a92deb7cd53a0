/*
 * threads.c - many threads copying at once over different routes.
 *
 * Eight threads each run hundreds of zcio_copy() calls, rotating through
 * file -> pipe (splice), unix socket -> unix socket and TCP -> TCP (splice
 * through each thread's pooled pipe), and file -> file (copy_file_range),
 * with sizes that change every call, zero-copy forced (threshold 1) or the
 * defaults.  Every copy is checked byte for byte and by path; when the
 * threads have exited, their pooled pipes are closed.  Run under
 * AddressSanitizer too, this also looks for races that corrupt memory.
 */
#include "testutil.h"

#define NTHREADS 8
#define ITERATIONS 1000
#define MAX_SIZE (60u * TU_KIB)

struct worker {
	int id;
	int failures;
	char what[160];
	uint64_t bytes;
	uint64_t by_path[ZCIO_PATH_SLOTS];
	pthread_barrier_t *start;
	pthread_t th;
};

#define FAIL(w, ...)                                                    \
	do {                                                            \
		if (!(w)->failures++)                                   \
			snprintf((w)->what, sizeof((w)->what), __VA_ARGS__); \
	} while (0)

static void account(struct worker *w, const struct zcio_stats *st)
{
	int i;

	w->bytes += st->last_bytes;
	for (i = 0; i < ZCIO_PATH_SLOTS; i++)
		w->by_path[i] += st->path_bytes[i];
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint8_t *data = malloc(MAX_SIZE), *back = malloc(MAX_SIZE);
	struct tu_channel pipe_ch, tcp_src, tcp_dst;
	int file = -1, out = -1, i;
	int fds[2];

	tu_block_test_signals();
	if (!data || !back || pipe2(fds, O_CLOEXEC) != 0)
		abort();
	pipe_ch = (struct tu_channel){ .kind = TU_PIPE, .rd = fds[0], .wr = fds[1] };
	/* A pipe that holds a whole copy: no reader thread needed. */
	if (fcntl(pipe_ch.wr, F_SETPIPE_SZ, (int)(128 * TU_KIB)) < (int)MAX_SIZE)
		abort();
	tu_tcp_pair(&tcp_src.rd, &tcp_src.wr);
	tu_tcp_pair(&tcp_dst.rd, &tcp_dst.wr);
	pthread_barrier_wait(w->start);

	for (i = 0; i < ITERATIONS && w->failures == 0; i++) {
		struct zcio_opts zc = tu_opts_zc();
		const struct zcio_opts *opts = (i / 4) % 2 ? NULL : &zc;
		struct zcio_stats st = { 0 };
		size_t n = 1 + ((size_t)w->id * 7919 + (size_t)i * 104729) % MAX_SIZE;
		bool zero_copy = opts || n >= ZCIO_DEFAULT_THRESHOLD;
		int want_path = ZCIO_PATH_COPY;
		int64_t r = -1;
		ssize_t got = -1;

		tu_fill(data, n, (uint64_t)w->id << 32 | (uint64_t)i);
		switch (i % 4) {
		case 0: /* file -> pipe */
			file = tu_file(data, n);
			r = zcio_copy(file, pipe_ch.wr, ZCIO_TO_EOF, opts, &st);
			got = tu_read_full(pipe_ch.rd, back, n);
			want_path = zero_copy ? ZCIO_PATH_SPLICE : ZCIO_PATH_COPY;
			break;
		case 1: { /* unix -> unix, to EOF */
			int s[2], d[2];

			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) ||
			    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, d))
				abort();
			if (tu_write_all(s[1], data, n))
				abort();
			shutdown(s[1], SHUT_WR);
			r = zcio_copy(s[0], d[1], ZCIO_TO_EOF, opts, &st);
			close(d[1]);
			got = tu_read_full(d[0], back, MAX_SIZE);
			close(s[0]);
			close(s[1]);
			close(d[0]);
			/* Size unknown up front: zero-copy whatever it is. */
			want_path = ZCIO_PATH_SPLICE_PIPE;
			break;
		}
		case 2: /* tcp -> tcp, exactly n of a stream that goes on */
			if (tu_write_all(tcp_src.wr, data, n))
				abort();
			r = zcio_copy(tcp_src.rd, tcp_dst.wr, n, opts, &st);
			got = tu_read_full(tcp_dst.rd, back, n);
			want_path = zero_copy ? ZCIO_PATH_SPLICE_PIPE : ZCIO_PATH_COPY;
			break;
		default: /* file -> file */
			file = tu_file(data, n);
			out = tu_file(NULL, 0);
			r = zcio_copy(file, out, ZCIO_TO_EOF, opts, &st);
			got = pread(out, back, n + 1, 0);
			/* copy_file_range whatever the size; ZCIO_F_COPY
			 * alone forces read/write here. */
			want_path = (opts && (opts->flags & ZCIO_F_COPY)) ? ZCIO_PATH_COPY :
				    n ? ZCIO_PATH_COPY_FILE_RANGE : ZCIO_PATH_COPY;
			break;
		}
		if (file >= 0)
			close(file);
		if (out >= 0)
			close(out);
		file = out = -1;
		account(w, &st);
		if (r != (int64_t)n || got != (ssize_t)n)
			FAIL(w, "thread %d copy %d (route %d): returned %lld, received %zd of %zu",
			     w->id, i, i % 4, (long long)r, got, n);
		else if (memcmp(back, data, n) != 0)
			FAIL(w, "thread %d copy %d (route %d): bytes differ", w->id, i, i % 4);
		else if (st.path_bytes[want_path] != n)
			FAIL(w, "thread %d copy %d (route %d): %s moved %llu of %zu bytes", w->id,
			     i, i % 4, zcio_path_name(want_path),
			     (unsigned long long)st.path_bytes[want_path], n);
	}
	tu_channel_close(&pipe_ch);
	tu_channel_close(&tcp_src);
	tu_channel_close(&tcp_dst);
	free(data);
	free(back);
	return NULL;
}

static void eight_threads_copy_concurrently_over_every_route_byte_exact(void **state)
{
	static struct worker w[NTHREADS];
	pthread_barrier_t start;
	struct zcio_pool_stats before, after;
	uint64_t total = 0, spliced = 0, piped = 0, cfr = 0;
	int i, failures = 0;

	(void)state;
	zcio_pool_flush();
	assert_int_equal(zcio_pool_stats(&before), 0);
	pthread_barrier_init(&start, NULL, NTHREADS);
	for (i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ .id = i, .start = &start };
		assert_int_equal(pthread_create(&w[i].th, NULL, worker_main, &w[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++) {
		pthread_join(w[i].th, NULL);
		if (w[i].failures) {
			printf("# %s\n", w[i].what);
			failures++;
		}
		total += w[i].bytes;
		spliced += w[i].by_path[ZCIO_PATH_SPLICE];
		piped += w[i].by_path[ZCIO_PATH_SPLICE_PIPE];
		cfr += w[i].by_path[ZCIO_PATH_COPY_FILE_RANGE];
	}
	pthread_barrier_destroy(&start);
	printf("# %llu bytes: splice %llu, splice-pipe %llu, copy_file_range %llu\n",
	       (unsigned long long)total, (unsigned long long)spliced,
	       (unsigned long long)piped, (unsigned long long)cfr);
	assert_int_equal(failures, 0);
	assert_true(spliced > 0 && piped > 0 && cfr > 0);
	/* Each thread's pool was emptied when it exited. */
	assert_int_equal(zcio_pool_stats(&after), 0);
	assert_int_equal(after.live, before.live);
	/* Pools did their job: far fewer pipes than socket copies. */
	assert_true(after.created - before.created <= 2 * NTHREADS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(eight_threads_copy_concurrently_over_every_route_byte_exact),
	};

	tu_init(300);
	return cmocka_run_group_tests_name("threads", tests, NULL, NULL);
}
