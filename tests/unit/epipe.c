/*
 * epipe.c - a destination whose reader goes away mid-stream.
 *
 * zcio_copy() must return -EPIPE, not let SIGPIPE kill the process (the
 * disposition here is the default, which terminates), and say exactly how
 * many bytes reached the destination: the reader receives that many, a
 * regular-file source's offset ends there (nothing lost), and bytes taken
 * from an unseekable source and not delivered are counted in stats.stranded.
 * Afterwards no SIGPIPE is pending and the caller's signal mask is what it
 * was; a caller that had SIGPIPE blocked keeps the pending signal, as it
 * would without zcio.
 *
 * Knowing what "the reader received" needs care, because bytes accepted by a
 * pipe or socket and not yet read are lost when the reader closes:
 *
 *  - pipe: the reader reads some bytes, then waits until the pipe is full
 *    (no POLLOUT on the write end, and nothing changes), so the writer
 *    cannot add a byte; it copies what the pipe holds with tee() (which
 *    consumes nothing, so no room opens up) and then closes.
 *  - unix stream socket: the reader reads some bytes, shuts down reading
 *    (from then on the writer gets EPIPE), reads what was queued, closes.
 */
#include "testutil.h"

#define STREAM_SIZE (4u * TU_MIB)
#define FIRST_READ 300001u

enum src { SRC_FILE, SRC_PIPE, SRC_UNIX };
enum dst { DST_PIPE, DST_UNIX };

struct closer {
	int rd, wr;
	bool sock;
	const uint8_t *expect;
	size_t got;      /* bytes the reader received, all of them checked */
	size_t bad_at;
	int err;
	pthread_t th;
};

static int check_bytes(struct closer *c, const uint8_t *b, size_t n)
{
	if (c->got + n > STREAM_SIZE || memcmp(b, c->expect + c->got, n) != 0) {
		if (c->bad_at == SIZE_MAX)
			c->bad_at = c->got;
		return -1;
	}
	c->got += n;
	return 0;
}

/* Wait until the pipe is full and quiet: the writer is blocked.  Gives up
 * after about 5 s (a writer that never blocks fails the test's counts). */
static void wait_pipe_full(int rd, int wr)
{
	int last = -1, quiet = 0, rounds = 0;

	while (quiet < 3 && rounds++ < 500) {
		struct pollfd p = { .fd = wr, .events = POLLOUT };
		int n = tu_readable(rd);

		if (poll(&p, 1, 0) == 0 && n == last)
			quiet++;
		else
			quiet = 0;
		last = n;
		tu_sleep_us(10000);
	}
}

static void *closer_main(void *arg)
{
	struct closer *c = arg;
	uint8_t *buf = malloc(TU_MIB);

	tu_block_test_signals();
	c->bad_at = SIZE_MAX;
	while (c->got < FIRST_READ) {
		size_t want = FIRST_READ - c->got < 4096 ? FIRST_READ - c->got : 4096;
		ssize_t r;

		/* A copy that gave up early must not leave this thread
		 * waiting forever. */
		if (tu_wait_fd(c->rd, POLLIN, 5000) == 0) {
			c->err = -ETIMEDOUT;
			goto out;
		}
		r = read(c->rd, buf, want);

		if (r <= 0 || check_bytes(c, buf, (size_t)r)) {
			c->err = r < 0 ? -errno : -EIO;
			goto out;
		}
	}
	if (c->sock) {
		ssize_t r;

		shutdown(c->rd, SHUT_RD);
		while ((r = read(c->rd, buf, TU_MIB)) > 0)
			if (check_bytes(c, buf, (size_t)r))
				break;
	} else {
		int aux[2];
		int n;
		ssize_t t;

		wait_pipe_full(c->rd, c->wr);
		n = tu_readable(c->rd);
		if (pipe2(aux, O_CLOEXEC) != 0) {
			c->err = -errno;
			goto out;
		}
		(void)fcntl(aux[1], F_SETPIPE_SZ, (int)TU_MIB);
		t = tee(c->rd, aux[1], (size_t)n, SPLICE_F_NONBLOCK);
		if (t != n) {
			c->err = t < 0 ? -errno : -EIO;
		} else if (tu_read_full(aux[0], buf, (size_t)n) != n) {
			c->err = -EIO;
		} else {
			check_bytes(c, buf, (size_t)n);
		}
		close(aux[0]);
		close(aux[1]);
	}
out:
	close(c->rd);
	c->rd = -1;
	free(buf);
	return NULL;
}

struct epipe_case {
	const char *name;
	enum src s;
	enum dst d;
	uint32_t flags;
	uint32_t threshold;
	int path;            /* the path that moved the bytes */
	bool caller_blocks;  /* SIGPIPE blocked by the caller beforehand */
};

static bool same_mask(const sigset_t *a, const sigset_t *b)
{
	int s;

	for (s = 1; s < SIGRTMAX; s++)
		if (sigismember(a, s) != sigismember(b, s))
			return false;
	return true;
}

/* Start clean even after a failed test: no SIGPIPE pending. */
static void discard_sigpipe(const sigset_t *pipe_set)
{
	const struct timespec zero = { 0, 0 };

	pthread_sigmask(SIG_BLOCK, pipe_set, NULL);
	while (sigtimedwait(pipe_set, NULL, &zero) == SIGPIPE)
		;
}

static void run_epipe(void **state)
{
	const struct epipe_case *c = *state;
	struct zcio_opts opts = { .flags = c->flags, .copy_threshold = c->threshold };
	struct zcio_stats st = { 0 };
	struct tu_channel sch = { .rd = -1, .wr = -1 }, dch;
	struct tu_producer prod = { 0 };
	struct closer cl = { 0 };
	uint8_t *data = tu_data(STREAM_SIZE, (uint64_t)c->s * 3 + c->d + c->flags);
	uint8_t *rest = malloc(STREAM_SIZE);
	sigset_t before, after, pending, pipe_set;
	ssize_t rest_n = 0;
	int64_t r, in_off = -1;
	bool raised;
	int in, consumed = 0;

	assert_non_null(rest);
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	discard_sigpipe(&pipe_set);
	assert_int_equal(pthread_sigmask(c->caller_blocks ? SIG_BLOCK : SIG_UNBLOCK, &pipe_set, NULL), 0);
	assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &before), 0);
	assert_int_equal(sigpending(&pending), 0);
	assert_false(sigismember(&pending, SIGPIPE));

	if (c->s == SRC_FILE) {
		in = tu_file(data, STREAM_SIZE);
		if (c->flags & ZCIO_F_OFFSET) {
			opts.in_offset = 0;
			assert_int_equal(lseek(in, 555, SEEK_SET), 555);
		}
	} else {
		tu_channel_open(&sch, c->s == SRC_PIPE ? TU_PIPE : TU_UNIX);
		in = sch.rd;
		prod = (struct tu_producer){ .fd = sch.wr, .data = data, .len = STREAM_SIZE,
					     .chunk = 64 * TU_KIB };
		sch.wr = -1;
		tu_producer_start(&prod);
	}
	tu_channel_open(&dch, c->d == DST_PIPE ? TU_PIPE : TU_UNIX);
	cl = (struct closer){ .rd = dch.rd, .wr = dch.wr, .sock = c->d == DST_UNIX, .expect = data };
	dch.rd = -1;
	assert_int_equal(pthread_create(&cl.th, NULL, closer_main, &cl), 0);

	r = zcio_copy(in, dch.wr, ZCIO_TO_EOF, &opts, &st);

	/* Look at the signal state first, and consume a pending SIGPIPE
	 * before any assertion can fail: a failing assertion restores the
	 * mask, and a SIGPIPE left pending would then end the program. */
	assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &after), 0);
	assert_int_equal(sigpending(&pending), 0);
	raised = sigismember(&pending, SIGPIPE);
	if (raised && sigismember(&after, SIGPIPE)) {
		const struct timespec zero = { 0, 0 };

		consumed = sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_join(cl.th, NULL);
	if (c->s == SRC_FILE) {
		in_off = tu_offset(in);
	} else {
		rest_n = tu_read_full(in, rest, STREAM_SIZE);
		tu_producer_join(&prod);
	}

	if (r != -EPIPE || st.last_bytes != cl.got)
		tu_print_stats(&st);
	assert_int_equal(r, -EPIPE);
	assert_int_equal(cl.err, 0);
	assert_int_equal(cl.bad_at, SIZE_MAX);
	assert_true(cl.got >= FIRST_READ && cl.got < STREAM_SIZE);
	/* Exactly what the reader received, and by the expected path. */
	assert_int_equal(st.last_bytes, cl.got);
	assert_int_equal(st.path_bytes[c->path], cl.got);
	if (c->s == SRC_FILE) {
		/* Rewound: the first byte not delivered is next. */
		assert_int_equal(st.stranded, 0);
		assert_int_equal(in_off, (c->flags & ZCIO_F_OFFSET) ? 555 : (int64_t)cl.got);
	} else {
		/* Every byte is somewhere: delivered, stranded, or still in
		 * the source. */
		assert_int_equal(prod.err, 0);
		assert_true(rest_n >= 0);
		assert_int_equal(st.last_bytes + st.stranded + (uint64_t)rest_n, STREAM_SIZE);
		assert_memory_equal(rest, data + STREAM_SIZE - (size_t)rest_n, (size_t)rest_n);
	}

	/* The signal mask is the caller's; SIGPIPE pending only if it was
	 * the caller's to take (blocked before the call). */
	assert_true(same_mask(&before, &after));
	if (c->caller_blocks) {
		/* Whether the kernel raised one depends on the path (send()
		 * with MSG_NOSIGNAL raises none); when it did, zcio must have
		 * left it pending. */
		if (raised)
			assert_int_equal(consumed, SIGPIPE);
		assert_int_equal(pthread_sigmask(SIG_UNBLOCK, &pipe_set, NULL), 0);
		if (c->path != ZCIO_PATH_COPY || c->d == DST_PIPE)
			assert_true(raised);
	} else {
		assert_false(raised);
	}

	tu_close(&in);
	tu_channel_close(&sch);
	tu_channel_close(&dch);
	free(data);
	free(rest);
}

static const struct epipe_case cases[] = {
	{ "file_to_pipe_splice_reader_closes_epipe_exact_count_offset_rewound",
	  SRC_FILE, DST_PIPE, 0, 0, ZCIO_PATH_SPLICE, false },
	{ "file_to_pipe_copy_reader_closes_epipe_exact_count_offset_rewound",
	  SRC_FILE, DST_PIPE, ZCIO_F_COPY, 0, ZCIO_PATH_COPY, false },
	{ "file_to_pipe_positional_reader_closes_epipe_fd_offset_untouched",
	  SRC_FILE, DST_PIPE, ZCIO_F_OFFSET, 0, ZCIO_PATH_SPLICE, false },
	{ "file_to_unix_splice_pipe_reader_shuts_down_epipe_exact_count_offset_rewound",
	  SRC_FILE, DST_UNIX, 0, 0, ZCIO_PATH_SPLICE_PIPE, false },
	{ "file_to_unix_sendfile_reader_shuts_down_epipe_exact_count_offset_rewound",
	  SRC_FILE, DST_UNIX, ZCIO_F_VIA_SENDFILE, 0, ZCIO_PATH_SENDFILE, false },
	{ "file_to_unix_copy_reader_shuts_down_epipe_exact_count_offset_rewound",
	  SRC_FILE, DST_UNIX, ZCIO_F_COPY, 0, ZCIO_PATH_COPY, false },
	{ "pipe_to_pipe_splice_reader_closes_epipe_rest_left_in_source",
	  SRC_PIPE, DST_PIPE, 0, 0, ZCIO_PATH_SPLICE, false },
	{ "pipe_to_pipe_copy_reader_closes_epipe_every_byte_accounted",
	  SRC_PIPE, DST_PIPE, ZCIO_F_COPY, 0, ZCIO_PATH_COPY, false },
	{ "unix_to_unix_splice_pipe_reader_shuts_down_epipe_every_byte_accounted",
	  SRC_UNIX, DST_UNIX, 0, 0, ZCIO_PATH_SPLICE_PIPE, false },
	{ "unix_to_pipe_splice_reader_closes_epipe_rest_left_in_source",
	  SRC_UNIX, DST_PIPE, 0, 0, ZCIO_PATH_SPLICE, false },
	/* The caller blocks SIGPIPE itself: zcio leaves the signal alone. */
	{ "sigpipe_blocked_by_caller_file_to_pipe_splice_signal_left_pending",
	  SRC_FILE, DST_PIPE, 0, 0, ZCIO_PATH_SPLICE, true },
	{ "sigpipe_blocked_by_caller_file_to_pipe_copy_signal_left_pending",
	  SRC_FILE, DST_PIPE, ZCIO_F_COPY, 0, ZCIO_PATH_COPY, true },
	{ "sigpipe_blocked_by_caller_file_to_unix_splice_pipe_signal_left_pending",
	  SRC_FILE, DST_UNIX, 0, 0, ZCIO_PATH_SPLICE_PIPE, true },
	{ "sigpipe_blocked_by_caller_file_to_unix_sendfile_signal_left_pending",
	  SRC_FILE, DST_UNIX, ZCIO_F_VIA_SENDFILE, 0, ZCIO_PATH_SENDFILE, true },
};

/* A destination that was closed before the call: -EPIPE at once, 0 bytes,
 * the source untouched, no signal. */
static void reader_gone_before_the_call_epipe_nothing_taken(void **state)
{
	static const uint32_t flags[] = { 0, ZCIO_F_COPY };
	uint8_t *data = tu_data(100000, 99);
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		struct zcio_opts opts = { .flags = flags[i] };
		struct zcio_stats st = { 0 };
		struct tu_channel ch;
		sigset_t pending;
		int in = tu_file(data, 100000);

		tu_channel_open(&ch, TU_PIPE);
		tu_close(&ch.rd);
		assert_int_equal(zcio_copy(in, ch.wr, ZCIO_TO_EOF, &opts, &st), -EPIPE);
		assert_int_equal(st.last_bytes, 0);
		assert_int_equal(tu_offset(in), 0);
		assert_int_equal(sigpending(&pending), 0);
		assert_false(sigismember(&pending, SIGPIPE));
		tu_channel_close(&ch);
		close(in);
	}
	free(data);
}

int main(void)
{
	static struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0]) + 1];
	size_t i;

	tu_init(300);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		tests[i] = (struct CMUnitTest){ .name = cases[i].name, .test_func = run_epipe,
						.initial_state = (void *)&cases[i] };
	tests[i++] = (struct CMUnitTest)cmocka_unit_test(reader_gone_before_the_call_epipe_nothing_taken);
	return _cmocka_run_group_tests("epipe", tests, i, NULL, NULL);
}
