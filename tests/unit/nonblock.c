/*
 * nonblock.c - zcio_copy() with nonblocking fds: it waits, never spins, and
 * leaves the fds' flags alone.
 *
 * The source trickles (a writer puts a small chunk in every few
 * milliseconds) and/or the destination is drained slowly, so the copy sees
 * EAGAIN over and over.  It must complete byte-exact, wait in poll() on the
 * fd that blocked (stats.waits > 0) instead of retrying (the copying
 * thread's CPU time, RUSAGE_THREAD, stays under 10% of the wall time), and
 * every fd keeps the F_GETFL flags it had.  opts.timeout_ms turns a wait
 * that sees nothing into -ETIMEDOUT, with the bytes delivered before it
 * counted.
 */
#include <sys/resource.h>

#include "testutil.h"

#define SIZE (384u * TU_KIB + 99)

enum end { E_PIPE, E_PIPE_NB, E_UNIX, E_UNIX_NB, E_TCP_NB, E_FILE };

static const char *const end_names[] = { "pipe", "nonblocking_pipe", "unix", "nonblocking_unix",
					  "nonblocking_tcp", "file" };

struct nb_case {
	enum end s, d;
	uint32_t flags;
	int path;
};

static const struct nb_case cases[] = {
	{ E_PIPE_NB, E_PIPE_NB, 0, ZCIO_PATH_SPLICE },
	{ E_PIPE_NB, E_PIPE_NB, ZCIO_F_COPY, ZCIO_PATH_COPY },
	{ E_UNIX_NB, E_UNIX_NB, 0, ZCIO_PATH_SPLICE_PIPE },
	{ E_UNIX_NB, E_UNIX_NB, ZCIO_F_COPY, ZCIO_PATH_COPY },
	{ E_TCP_NB, E_PIPE_NB, 0, ZCIO_PATH_SPLICE },
	{ E_TCP_NB, E_FILE, 0, ZCIO_PATH_SPLICE_PIPE },
	{ E_PIPE_NB, E_FILE, 0, ZCIO_PATH_SPLICE },
	{ E_PIPE_NB, E_PIPE, 0, ZCIO_PATH_SPLICE },
	/* Blocking sources next to a nonblocking pipe: splice() makes the
	 * whole call nonblocking, so EAGAIN can mean "source empty". */
	{ E_PIPE, E_PIPE_NB, 0, ZCIO_PATH_SPLICE },
	{ E_UNIX, E_PIPE_NB, 0, ZCIO_PATH_SPLICE },
	{ E_FILE, E_PIPE_NB, 0, ZCIO_PATH_SPLICE },
	/* File to stream socket: the default route goes through a pooled
	 * pipe; ZCIO_F_VIA_SENDFILE asks for sendfile() itself. */
	{ E_FILE, E_UNIX_NB, 0, ZCIO_PATH_SPLICE_PIPE },
	{ E_FILE, E_TCP_NB, 0, ZCIO_PATH_SPLICE_PIPE },
	{ E_FILE, E_UNIX_NB, ZCIO_F_VIA_SENDFILE, ZCIO_PATH_SENDFILE },
	{ E_FILE, E_TCP_NB, ZCIO_F_VIA_SENDFILE, ZCIO_PATH_SENDFILE },
	{ E_FILE, E_TCP_NB, ZCIO_F_COPY, ZCIO_PATH_COPY },
};

static int64_t thread_cpu_us(void)
{
	struct rusage ru;

	assert_int_equal(getrusage(RUSAGE_THREAD, &ru), 0);
	return (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec +
	       (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
}

static void open_end(enum end e, struct tu_channel *ch, const uint8_t *data, size_t n)
{
	ch->rd = ch->wr = -1;
	switch (e) {
	case E_FILE:
		ch->rd = tu_file(data, n);
		ch->wr = tu_file(NULL, 0);
		break;
	case E_PIPE:
	case E_PIPE_NB:
		tu_channel_open(ch, TU_PIPE);
		break;
	case E_UNIX:
	case E_UNIX_NB:
		tu_channel_open(ch, TU_UNIX);
		break;
	case E_TCP_NB:
		tu_channel_open(ch, TU_TCP);
		break;
	}
}

static void run_nb(void **state)
{
	const struct nb_case *c = *state;
	struct zcio_opts opts = { .flags = c->flags };
	struct zcio_stats st = { 0 };
	struct tu_channel sch, dch;
	struct tu_producer prod = { 0 };
	struct tu_consumer cons = { 0 };
	uint8_t *data = tu_data(SIZE, (uint64_t)c->s * 11 + c->d + c->flags);
	int in, out, in_fl, out_fl, in_fl2, out_fl2;
	int64_t r, t0, t1, cpu0, cpu1;

	open_end(c->s, &sch, data, SIZE);
	open_end(c->d, &dch, NULL, 0);
	in = sch.rd;
	out = dch.wr;
	if (c->s != E_FILE && c->s != E_PIPE && c->s != E_UNIX)
		tu_set_nonblock(in, true);
	if (c->d != E_FILE && c->d != E_PIPE && c->d != E_UNIX)
		tu_set_nonblock(out, true);
	if (c->d == E_TCP_NB || c->d == E_UNIX_NB) {
		/* Small socket buffers, so the destination fills up. */
		int small = 16 * 1024;

		setsockopt(dch.rd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
		setsockopt(dch.wr, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	}
	in_fl = fcntl(in, F_GETFL);
	out_fl = fcntl(out, F_GETFL);

	if (c->s != E_FILE) {
		/* Trickle: 8 KiB every 4 ms, about 200 ms in all. */
		prod = (struct tu_producer){ .fd = sch.wr, .data = data, .len = SIZE,
					     .chunk = 8 * TU_KIB, .delay_us = 4000 };
		sch.wr = -1;
		tu_producer_start(&prod);
	}
	if (c->d != E_FILE) {
		/* Slow when the source is fast; keeping up otherwise. */
		cons = (struct tu_consumer){ .fd = dch.rd, .expect = data, .expect_len = SIZE,
					     .chunk = 8 * TU_KIB,
					     .delay_us = c->s == E_FILE ? 4000 : 500 };
		tu_consumer_start(&cons);
	}

	t0 = tu_now_us();
	cpu0 = thread_cpu_us();
	r = zcio_copy(in, out, ZCIO_TO_EOF, &opts, &st);
	cpu1 = thread_cpu_us();
	t1 = tu_now_us();
	in_fl2 = fcntl(in, F_GETFL);
	out_fl2 = fcntl(out, F_GETFL);

	if (c->s != E_FILE) {
		tu_close(&sch.rd);
		tu_producer_join(&prod);
	}
	if (c->d != E_FILE) {
		tu_channel_end(&dch);
		pthread_join(cons.th, NULL);
	}

	printf("# %lld us CPU in %lld us, %llu waits, %llu syscalls\n",
	       (long long)(cpu1 - cpu0), (long long)(t1 - t0),
	       (unsigned long long)st.waits, (unsigned long long)st.syscalls);
	if (r != (int64_t)SIZE)
		tu_print_stats(&st);
	assert_int_equal(r, (int64_t)SIZE);
	assert_int_equal(st.path_bytes[c->path], SIZE);
	assert_true(st.waits > 0);
	/* No spinning: the wait is in poll(), not in a retry loop. */
	assert_true((cpu1 - cpu0) * 10 < (t1 - t0));
	assert_int_equal(in_fl2, in_fl);
	assert_int_equal(out_fl2, out_fl);
	if (c->s == E_FILE)
		assert_int_equal(tu_offset(in), (int64_t)SIZE);
	else
		assert_int_equal(prod.err, 0);
	if (c->d == E_FILE) {
		tu_assert_file(out, 0, data, SIZE);
	} else {
		assert_int_equal(cons.err, 0);
		assert_int_equal(cons.got, SIZE);
		assert_int_equal(cons.hash, tu_hash(TU_HASH_INIT, data, SIZE));
		assert_int_equal(cons.bad_at, SIZE_MAX);
	}
	tu_channel_close(&sch);
	tu_channel_close(&dch);
	free(data);
}

/* A nonblocking source that goes quiet: -ETIMEDOUT after about timeout_ms,
 * with the bytes that did come delivered and counted. */
static void quiet_source_times_out_after_delivering_what_came(void **state)
{
	static const uint32_t flags[] = { 0, ZCIO_F_COPY };
	static const int paths[] = { ZCIO_PATH_SPLICE, ZCIO_PATH_COPY };
	uint8_t *data = tu_data(1000, 3);
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		struct zcio_opts opts = { .flags = flags[i], .timeout_ms = 100 };
		struct zcio_stats st = { 0 };
		struct tu_channel ch;
		int out = tu_file(NULL, 0);
		int64_t r, t0, t;

		tu_channel_open(&ch, TU_PIPE);
		tu_set_nonblock(ch.rd, true);
		assert_int_equal(write(ch.wr, data, 1000), 1000);
		t0 = tu_now_us();
		r = zcio_copy(ch.rd, out, ZCIO_TO_EOF, &opts, &st);
		t = tu_now_us() - t0;
		assert_int_equal(r, -ETIMEDOUT);
		assert_true(t >= 90000 && t < 2000000);
		assert_int_equal(st.last_bytes, 1000);
		assert_int_equal(st.path_bytes[paths[i]], 1000);
		assert_true(st.waits > 0);
		tu_assert_file(out, 0, data, 1000);
		assert_true(fcntl(ch.rd, F_GETFL) & O_NONBLOCK);
		tu_channel_close(&ch);
		close(out);
	}
	free(data);
}

/* A nonblocking destination nobody reads: -ETIMEDOUT, and last_bytes is
 * what the pipe holds; a file source's offset is just past those bytes. */
static void stuck_destination_times_out_with_exact_count(void **state)
{
	static const uint32_t flags[] = { 0, ZCIO_F_COPY };
	static const int paths[] = { ZCIO_PATH_SPLICE, ZCIO_PATH_COPY };
	uint8_t *data = tu_data(TU_MIB, 4);
	uint8_t *back = malloc(TU_MIB);
	size_t i;

	(void)state;
	assert_non_null(back);
	for (i = 0; i < 2; i++) {
		struct zcio_opts opts = { .flags = flags[i], .timeout_ms = 100 };
		struct zcio_stats st = { 0 };
		struct tu_channel ch;
		int in = tu_file(data, TU_MIB);
		int64_t r;
		int held;

		tu_channel_open(&ch, TU_PIPE);
		tu_set_nonblock(ch.wr, true);
		r = zcio_copy(in, ch.wr, ZCIO_TO_EOF, &opts, &st);
		held = tu_readable(ch.rd);
		assert_int_equal(r, -ETIMEDOUT);
		assert_true(held > 0);
		assert_int_equal(st.last_bytes, (uint64_t)held);
		assert_int_equal(st.path_bytes[paths[i]], (uint64_t)held);
		assert_int_equal(tu_offset(in), held);
		assert_int_equal(tu_read_full(ch.rd, back, (size_t)held), held);
		assert_memory_equal(back, data, (size_t)held);
		assert_true(fcntl(ch.wr, F_GETFL) & O_NONBLOCK);
		tu_channel_close(&ch);
		close(in);
	}
	free(data);
	free(back);
}

int main(void)
{
	static struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0]) + 2];
	size_t i;

	tu_init(300);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char name[128];

		snprintf(name, sizeof(name), "%s_to_%s_%s_waits_without_spinning_flags_kept",
			 end_names[cases[i].s], end_names[cases[i].d],
			 zcio_path_name(cases[i].path));
		tests[i] = (struct CMUnitTest){ .name = strdup(name), .test_func = run_nb,
						.initial_state = (void *)&cases[i] };
	}
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(quiet_source_times_out_after_delivering_what_came);
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(stuck_destination_times_out_with_exact_count);
	return _cmocka_run_group_tests("nonblock", tests, i, NULL, NULL);
}
