/*
 * eintr.c - signals that interrupt a blocking copy do not end it.
 *
 * A handler is installed WITHOUT SA_RESTART, so every blocking syscall the
 * copying thread is in when a signal arrives returns EINTR (or a partial
 * count).  While zcio_copy() runs, the copying thread is hit every few
 * hundred microseconds, either by pthread_kill(SIGUSR1) from another thread
 * or by an interval timer (SIGALRM; the helper threads block it, so the
 * copying thread takes it).  The sources trickle their bytes and the
 * destinations drain slowly, so the copy spends its time blocked in read,
 * splice, sendfile or poll.  It must deliver every byte, by the expected
 * path, and return the full count.
 */
#include <stdatomic.h>
#include <sys/time.h>

#include "testutil.h"

#define SIZE (1u * TU_MIB + 4321)

static volatile sig_atomic_t hits;

static void on_signal(int sig)
{
	(void)sig;
	hits++;
}

static void install(int sig)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = 0; /* no SA_RESTART: syscalls fail with EINTR */
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(sig, &sa, NULL), 0);
}

struct signaller {
	pthread_t target;
	atomic_bool stop;
	pthread_t th;
};

static void *signaller_main(void *arg)
{
	struct signaller *s = arg;

	tu_block_test_signals();
	while (!atomic_load(&s->stop)) {
		pthread_kill(s->target, SIGUSR1);
		tu_sleep_us(300);
	}
	return NULL;
}

enum how { BY_PTHREAD_KILL, BY_ITIMER };
enum src { SRC_PIPE, SRC_PIPE_NB, SRC_UNIX, SRC_FILE };
enum dst { DST_FILE, DST_PIPE, DST_TCP };

struct eintr_case {
	const char *name;
	enum src s;
	enum dst d;
	uint32_t flags;
	int path;
	enum how how;
};

static const struct eintr_case cases[] = {
	{ "pipe_to_file_splice_blocked_on_empty_source", SRC_PIPE, DST_FILE, 0,
	  ZCIO_PATH_SPLICE, BY_PTHREAD_KILL },
	{ "pipe_to_file_copy_blocked_in_read", SRC_PIPE, DST_FILE, ZCIO_F_COPY,
	  ZCIO_PATH_COPY, BY_PTHREAD_KILL },
	{ "pipe_to_pipe_splice_blocked_both_ways", SRC_PIPE, DST_PIPE, 0,
	  ZCIO_PATH_SPLICE, BY_PTHREAD_KILL },
	{ "pipe_to_pipe_copy_blocked_both_ways", SRC_PIPE, DST_PIPE, ZCIO_F_COPY,
	  ZCIO_PATH_COPY, BY_PTHREAD_KILL },
	{ "nonblocking_pipe_to_file_splice_blocked_in_poll", SRC_PIPE_NB, DST_FILE, 0,
	  ZCIO_PATH_SPLICE, BY_PTHREAD_KILL },
	{ "unix_to_file_splice_pipe_blocked_on_socket", SRC_UNIX, DST_FILE, 0,
	  ZCIO_PATH_SPLICE_PIPE, BY_PTHREAD_KILL },
	{ "file_to_pipe_splice_blocked_on_full_pipe", SRC_FILE, DST_PIPE, 0,
	  ZCIO_PATH_SPLICE, BY_PTHREAD_KILL },
	{ "file_to_tcp_splice_pipe_blocked_on_full_socket", SRC_FILE, DST_TCP, 0,
	  ZCIO_PATH_SPLICE_PIPE, BY_PTHREAD_KILL },
	{ "file_to_tcp_sendfile_blocked_on_full_socket", SRC_FILE, DST_TCP,
	  ZCIO_F_VIA_SENDFILE, ZCIO_PATH_SENDFILE, BY_PTHREAD_KILL },
	{ "file_to_tcp_copy_blocked_on_full_socket", SRC_FILE, DST_TCP, ZCIO_F_COPY,
	  ZCIO_PATH_COPY, BY_PTHREAD_KILL },
	{ "itimer_pipe_to_file_splice", SRC_PIPE, DST_FILE, 0,
	  ZCIO_PATH_SPLICE, BY_ITIMER },
	{ "itimer_unix_to_file_splice_pipe", SRC_UNIX, DST_FILE, 0,
	  ZCIO_PATH_SPLICE_PIPE, BY_ITIMER },
	{ "itimer_file_to_pipe_splice", SRC_FILE, DST_PIPE, 0,
	  ZCIO_PATH_SPLICE, BY_ITIMER },
};

static void run_eintr(void **state)
{
	const struct eintr_case *c = *state;
	struct zcio_opts opts = { .flags = c->flags };
	struct zcio_stats st = { 0 };
	struct tu_channel sch = { .rd = -1, .wr = -1 }, dch = { .rd = -1, .wr = -1 };
	struct tu_producer prod = { 0 };
	struct tu_consumer cons = { 0 };
	struct signaller sig = { .target = pthread_self() };
	struct itimerval on = { { 0, 500 }, { 0, 500 } }, off = { { 0, 0 }, { 0, 0 } };
	uint8_t *data = tu_data(SIZE, (uint64_t)c->s * 5 + c->d + c->flags + c->how);
	int in, out;
	int64_t r;
	int got_hits;

	install(SIGUSR1);
	install(SIGALRM);
	if (c->s == SRC_FILE) {
		in = tu_file(data, SIZE);
	} else {
		tu_channel_open(&sch, c->s == SRC_UNIX ? TU_UNIX : TU_PIPE);
		in = sch.rd;
		if (c->s == SRC_PIPE_NB)
			tu_set_nonblock(in, true);
		/* Trickle: 16 KiB every 2 ms. */
		prod = (struct tu_producer){ .fd = sch.wr, .data = data, .len = SIZE,
					     .chunk = 16 * TU_KIB, .delay_us = 2000 };
		sch.wr = -1;
	}
	if (c->d == DST_FILE) {
		out = tu_file(NULL, 0);
	} else {
		tu_channel_open(&dch, c->d == DST_PIPE ? TU_PIPE : TU_TCP);
		out = dch.wr;
		if (c->d == DST_TCP) {
			int small = 16 * 1024;

			setsockopt(dch.rd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
			setsockopt(dch.wr, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
		}
		/* Drain slowly when the source is fast (a file). */
		cons = (struct tu_consumer){ .fd = dch.rd, .expect = data, .expect_len = SIZE,
					     .chunk = 16 * TU_KIB,
					     .delay_us = c->s == SRC_FILE ? 2000 : 0 };
		tu_consumer_start(&cons);
	}
	if (c->s != SRC_FILE)
		tu_producer_start(&prod);

	hits = 0;
	if (c->how == BY_PTHREAD_KILL)
		assert_int_equal(pthread_create(&sig.th, NULL, signaller_main, &sig), 0);
	else
		assert_int_equal(setitimer(ITIMER_REAL, &on, NULL), 0);

	r = zcio_copy(in, out, ZCIO_TO_EOF, &opts, &st);

	if (c->how == BY_PTHREAD_KILL) {
		atomic_store(&sig.stop, true);
		pthread_join(sig.th, NULL);
	} else {
		setitimer(ITIMER_REAL, &off, NULL);
	}
	got_hits = hits;
	if (c->s != SRC_FILE) {
		tu_close(&sch.rd);
		tu_producer_join(&prod);
	}
	if (c->d != DST_FILE) {
		tu_channel_end(&dch);
		pthread_join(cons.th, NULL);
	}

	if (r != (int64_t)SIZE)
		tu_print_stats(&st);
	printf("# %d signals during the copy\n", got_hits);
	assert_int_equal(r, (int64_t)SIZE);
	assert_int_equal(st.last_bytes, SIZE);
	assert_int_equal(st.path_bytes[c->path], SIZE);
	/* The copy took ~130 ms at least: it was interrupted many times. */
	assert_true(got_hits >= 20);
	if (c->s == SRC_FILE)
		assert_int_equal(tu_offset(in), (int64_t)SIZE);
	else
		assert_int_equal(prod.err, 0);
	if (c->d == DST_FILE) {
		tu_assert_file(out, 0, data, SIZE);
	} else {
		assert_int_equal(cons.err, 0);
		assert_int_equal(cons.got, SIZE);
		assert_int_equal(cons.hash, tu_hash(TU_HASH_INIT, data, SIZE));
		assert_int_equal(cons.bad_at, SIZE_MAX);
	}
	if (c->s == SRC_FILE)
		close(in);
	if (c->d == DST_FILE)
		close(out);
	tu_channel_close(&sch);
	tu_channel_close(&dch);
	free(data);
}

int main(void)
{
	static struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0])];
	size_t i;

	tu_init(300);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		tests[i] = (struct CMUnitTest){ .name = cases[i].name, .test_func = run_eintr,
						.initial_state = (void *)&cases[i] };
	return _cmocka_run_group_tests("eintr", tests, i, NULL, NULL);
}
