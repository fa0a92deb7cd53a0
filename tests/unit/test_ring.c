/*
 * test_ring.c - zcio_ring: user memory handed to a pipe, a file or a socket,
 * and reused only when the ring says it may be.
 *
 * The writer fills every span it gets with the stream's bytes for the
 * positions it is about to commit (a deterministic pattern: the byte at
 * position p is expect[p]), and writes into ring memory only inside spans
 * the ring gave it.  A slow reader checks every byte it receives.  If the
 * ring handed out space the kernel still referenced, the writer's new
 * bytes would show up in place of old ones, and the reader names the first
 * wrong offset.  A control test shows that the check does catch reuse
 * that ignores the rules.
 */
#include <sys/mman.h>
#include <sys/wait.h>

#include "testutil.h"

/* Writes total bytes of expect through ring r, spans of at most max_span
 * bytes (0: whatever is free), pumping and polling like an event loop. */
static void write_stream(struct zcio_ring *r, int out, const uint8_t *expect, size_t total,
			 size_t max_span, struct zcio_stats *st)
{
	size_t w = 0;
	unsigned seed = 7;

	while (w < total) {
		void *span;
		size_t half = zcio_ring_size(r) / 2;
		size_t min = 1 + (size_t)(rand_r(&seed) % (half < 65536 ? half : 65536));
		int64_t n;

		if (min > total - w)
			min = total - w;
		n = zcio_ring_reserve(r, min, &span);
		if (n == -EAGAIN) {
			int64_t p = zcio_ring_pump(r, 0, st);

			if (p == -EAGAIN) {
				assert_int_equal(tu_wait_fd(out, st->wait == ZCIO_WAIT_COMPLETION ? 0 : POLLOUT,
							    10000), 1);
			} else {
				assert_true(p >= 0);
			}
			continue;
		}
		assert_true(n >= (int64_t)min);
		if (max_span && (size_t)n > max_span)
			n = (int64_t)(max_span > min ? max_span : min);
		if ((size_t)n > total - w)
			n = (int64_t)(total - w);
		memcpy(span, expect + w, (size_t)n);
		assert_int_equal(zcio_ring_commit(r, (size_t)n), 0);
		w += (size_t)n;
		/* Pump now and then, as a logger would. */
		if (rand_r(&seed) % 4 == 0) {
			int64_t p = zcio_ring_pump(r, 0, st);

			assert_true(p >= 0 || p == -EAGAIN);
		}
	}
	assert_int_equal(zcio_ring_flush(r, 20000, st), 0);
	assert_int_equal(zcio_ring_pending(r), 0);
}

/* A pipe of `cap` bytes, write end nonblocking. */
static void small_pipe(int fds[2], int cap)
{
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	assert_true(fcntl(fds[1], F_SETPIPE_SZ, cap) >= cap);
	tu_set_nonblock(fds[1], true);
}

static void pipe_stream(int cap, const struct zcio_opts *o, size_t total, unsigned delay_us,
			int want_path)
{
	uint8_t *expect = tu_data(total, 11);
	struct tu_consumer c = { .expect = expect, .expect_len = total, .chunk = 16 * TU_KIB,
				 .delay_us = delay_us };
	struct zcio_stats st = { 0 };
	struct zcio_ring *r;
	int fds[2];

	small_pipe(fds, cap);
	c.fd = fds[0];
	assert_int_equal(zcio_ring_new(fds[1], 0, o, &r), 0);
	/* The discipline: at least twice the pipe. */
	assert_true(zcio_ring_size(r) >= 2 * (size_t)fcntl(fds[1], F_GETPIPE_SZ));
	tu_consumer_start(&c);
	write_stream(r, fds[1], expect, total, 0, &st);
	zcio_ring_free(r);
	close(fds[1]);
	tu_consumer_check(&c);
	close(fds[0]);
	tu_print_stats(&st);
	assert_int_equal(st.bytes, total);
	assert_int_equal(st.path_bytes[want_path], total);
	free(expect);
}

static void pipe_vmsplice_small_pipe_slow_reader(void **state)
{
	struct zcio_opts o = { .flags = ZCIO_F_VMSPLICE, .copy_threshold = 1 };

	(void)state;
	/* 64 KiB pipe, 128 KiB ring: the ring wraps 128 times. */
	pipe_stream(64 * 1024, &o, 16 * TU_MIB, 100, ZCIO_PATH_VMSPLICE);
}

static void pipe_vmsplice_default_pipe(void **state)
{
	struct zcio_opts o = { .flags = ZCIO_F_VMSPLICE, .copy_threshold = 1 };

	(void)state;
	pipe_stream(1024 * 1024, &o, 32 * TU_MIB, 20, ZCIO_PATH_VMSPLICE);
}

static void pipe_stable_copies(void **state)
{
	struct zcio_opts o = { .flags = ZCIO_F_VMSPLICE | ZCIO_F_STABLE, .copy_threshold = 1 };

	(void)state;
	pipe_stream(64 * 1024, &o, 4 * TU_MIB, 50, ZCIO_PATH_COPY);
}

/* Without ZCIO_F_VMSPLICE a pipe gets copies: its reader might splice the
 * pages on (pv does), beyond the ring's sight. */
static void pipe_without_vmsplice_flag_copies(void **state)
{
	struct zcio_opts o = { .copy_threshold = 1 };

	(void)state;
	pipe_stream(64 * 1024, &o, 4 * TU_MIB, 0, ZCIO_PATH_COPY);
}

static void pipe_forced_copy(void **state)
{
	struct zcio_opts o = { .flags = ZCIO_F_VMSPLICE | ZCIO_F_COPY };

	(void)state;
	pipe_stream(64 * 1024, &o, 4 * TU_MIB, 0, ZCIO_PATH_COPY);
}

/*
 * The numbers of the discipline, with a reader that does not read: after
 * a pump that handed everything over, half the ring is free (without a
 * syscall); once the pipe is full, the writer is stopped, not allowed to
 * overwrite what the pipe holds.
 */
static void pipe_discipline_half_free_and_full_ring_stops_writer(void **state)
{
	struct zcio_opts o = { .flags = ZCIO_F_VMSPLICE, .copy_threshold = 1 };
	struct zcio_stats st = { 0 };
	struct zcio_ring *r;
	size_t cap = 64 * 1024, total = 0;
	uint8_t *expect = tu_data(4 * cap, 5);
	uint8_t *got = malloc(4 * cap);
	void *span;
	int fds[2];
	int64_t n;

	(void)state;
	small_pipe(fds, (int)cap);
	assert_int_equal(zcio_ring_new(fds[1], 0, &o, &r), 0);
	assert_int_equal(zcio_ring_size(r), 2 * cap);
	/* Fill the whole free space: the ring is empty, all of it is free. */
	n = zcio_ring_reserve(r, cap, &span);
	assert_int_equal(n, 2 * cap);
	memcpy(span, expect, cap);
	assert_int_equal(zcio_ring_commit(r, cap), 0);
	total += cap;
	assert_int_equal(zcio_ring_pump(r, 0, &st), 0);
	assert_int_equal(tu_readable(fds[0]), cap); /* the pipe is full */
	/* Half the ring is free although the pipe holds the other half. */
	n = zcio_ring_reserve(r, cap, &span);
	assert_int_equal(n, cap);
	memcpy(span, expect + total, cap);
	assert_int_equal(zcio_ring_commit(r, cap), 0);
	total += cap;
	/* Nothing is free now, and the full pipe stops the pump. */
	assert_int_equal(zcio_ring_reserve(r, 1, &span), -EAGAIN);
	assert_int_equal(zcio_ring_pump(r, 0, &st), -EAGAIN);
	assert_int_equal(st.wait, ZCIO_WAIT_OUT);
	assert_int_equal(zcio_ring_reserve(r, 1, &span), -EAGAIN);
	/* The reader takes everything; the second half goes in. */
	assert_int_equal(tu_read_full(fds[0], got, cap), (ssize_t)cap);
	assert_int_equal(zcio_ring_pump(r, 0, &st), 0);
	assert_int_equal(tu_read_full(fds[0], got + cap, cap), (ssize_t)cap);
	assert_memory_equal(got, expect, total);
	assert_int_equal(st.path_bytes[ZCIO_PATH_VMSPLICE], total);
	zcio_ring_free(r);
	close(fds[0]);
	close(fds[1]);
	free(expect);
	free(got);
}

/*
 * The control: vmsplice() a buffer into a pipe, write to the buffer before
 * the reader has read, and the reader sees the new bytes.  This is the
 * hazard the ring's rules avoid, and it shows that the checks above would
 * see a violation.
 */
static void control_vmsplice_reuse_without_discipline_is_seen_by_reader(void **state)
{
	size_t n = 64 * 1024;
	uint8_t *buf = aligned_alloc(4096, n), *got = malloc(n);
	struct iovec iov = { .iov_base = buf, .iov_len = n };
	int fds[2];

	(void)state;
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	memset(buf, 'a', n);
	assert_int_equal(vmsplice(fds[1], &iov, 1, 0), (ssize_t)n);
	memset(buf, 'b', n);
	assert_int_equal(tu_read_full(fds[0], got, n), (ssize_t)n);
	assert_int_equal(got[0], 'b');
	assert_int_equal(got[n - 1], 'b');
	close(fds[0]);
	close(fds[1]);
	free(buf);
	free(got);
}

static void file_stream(int flags, uint32_t threshold, int want_path)
{
	size_t total = 24 * TU_MIB;
	uint8_t *expect = tu_data(total, 21);
	struct zcio_opts o = { .flags = 0, .copy_threshold = threshold, .pipe_size = 256 * 1024 };
	struct zcio_stats st = { 0 };
	struct zcio_ring *r;
	int fd = tu_file_flags(NULL, 0, O_RDWR | flags);

	assert_int_equal(zcio_ring_new(fd, 0, &o, &r), 0);
	write_stream(r, fd, expect, total, 0, &st);
	zcio_ring_free(r);
	tu_print_stats(&st);
	tu_assert_file(fd, 0, expect, total);
	assert_int_equal(st.path_bytes[want_path], total);
	close(fd);
	free(expect);
}

static void file_vmsplice_then_splice(void **state)
{
	(void)state;
	file_stream(0, 1, ZCIO_PATH_VMSPLICE);
}

static void file_append_is_written(void **state)
{
	(void)state;
	file_stream(O_APPEND, 1, ZCIO_PATH_COPY);
}

static void file_default_threshold_copies(void **state)
{
	(void)state;
	/* The built-in memory_file threshold is "never": splicing into a file
	 * copies into the page cache anyway. */
	assert_int_equal(zcio_threshold(ZCIO_THR_MEM_FILE), ZCIO_THRESHOLD_NEVER);
	file_stream(0, 0, ZCIO_PATH_COPY);
}

static void dev_null_takes_everything(void **state)
{
	size_t total = 8 * TU_MIB;
	uint8_t *expect = tu_data(total, 3);
	struct zcio_opts o = { .copy_threshold = 1 };
	struct zcio_stats st = { 0 };
	struct zcio_ring *r;
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(zcio_ring_new(fd, 256 * 1024, &o, &r), 0);
	write_stream(r, fd, expect, total, 0, &st);
	assert_int_equal(st.bytes, total);
	zcio_ring_free(r);
	close(fd);
	free(expect);
}

/*
 * TCP over loopback, a slow reader: the ring's sends stay in flight (in the
 * sender's queue, behind a closed receive window) for a long time.  With
 * copy_threshold 1 every batch goes with MSG_ZEROCOPY and space comes back
 * only with completions; the default copies after the first completion
 * says COPIED (loopback always does).
 */
static void tcp_stream(uint32_t threshold, size_t ring_size, unsigned delay_us, bool expect_all_zc)
{
	size_t total = 16 * TU_MIB;
	uint8_t *expect = tu_data(total, 31);
	struct tu_consumer c = { .expect = expect, .expect_len = total, .chunk = 32 * TU_KIB,
				 .delay_us = delay_us };
	struct zcio_opts o = { .copy_threshold = threshold };
	struct zcio_stats st = { 0 };
	struct zcio_ring *r;
	int rd, wr, small = 64 * 1024;

	tu_tcp_pair(&rd, &wr);
	/* Small buffers: the window closes early and sends wait long. */
	setsockopt(rd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	setsockopt(wr, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	tu_set_nonblock(wr, true);
	c.fd = rd;
	assert_int_equal(zcio_ring_new(wr, ring_size, &o, &r), 0);
	tu_consumer_start(&c);
	write_stream(r, wr, expect, total, 0, &st);
	zcio_ring_free(r);
	close(wr);
	tu_consumer_check(&c);
	close(rd);
	tu_print_stats(&st);
	assert_int_equal(st.bytes, total);
	assert_true(st.path_bytes[ZCIO_PATH_MSG_ZEROCOPY] > 0);
	if (expect_all_zc) {
		assert_int_equal(st.path_bytes[ZCIO_PATH_MSG_ZEROCOPY], total);
	} else {
		/* Loopback completions are COPIED: the ring stops zero-copy. */
		assert_true(st.path_bytes[ZCIO_PATH_COPY] > 0);
		assert_true(tu_has_reason(&st, ZCIO_WHY_KIND));
	}
	free(expect);
}

static void tcp_zero_copy_always_slow_reader(void **state)
{
	(void)state;
	tcp_stream(1, 256 * 1024, 300, true);
}

static void tcp_zero_copy_until_copied_slow_reader(void **state)
{
	(void)state;
	tcp_stream(4096, 256 * 1024, 200, false);
}

static void tcp_forced_copy(void **state)
{
	size_t total = 4 * TU_MIB;
	uint8_t *expect = tu_data(total, 41);
	struct tu_consumer c = { .expect = expect, .expect_len = total };
	struct zcio_opts o = { .flags = ZCIO_F_COPY };
	struct zcio_stats st = { 0 };
	struct zcio_ring *r;
	int rd, wr;

	(void)state;
	tu_tcp_pair(&rd, &wr);
	c.fd = rd;
	assert_int_equal(zcio_ring_new(wr, 0, &o, &r), 0);
	tu_consumer_start(&c);
	write_stream(r, wr, expect, total, 100 * 1024, &st);
	zcio_ring_free(r);
	close(wr);
	tu_consumer_check(&c);
	close(rd);
	assert_int_equal(st.path_bytes[ZCIO_PATH_COPY], total);
	free(expect);
}

static void reader_gone_is_epipe_not_sigpipe(void **state)
{
	struct zcio_opts o = { .flags = ZCIO_F_VMSPLICE, .copy_threshold = 1 };
	struct zcio_stats st = { 0 };
	struct zcio_ring *r;
	int fds[2];

	(void)state;
	small_pipe(fds, 64 * 1024);
	assert_int_equal(zcio_ring_new(fds[1], 0, &o, &r), 0);
	close(fds[0]);
	assert_int_equal(zcio_ring_write(r, "hello", 5), 5);
	/* SIGPIPE keeps its default action in this test: it would kill us. */
	assert_int_equal(zcio_ring_pump(r, 0, &st), -EPIPE);
	assert_int_equal(zcio_ring_pending(r), 5);
	zcio_ring_free(r);
	close(fds[1]);
}

static void bad_arguments(void **state)
{
	struct zcio_ring *r;
	void *span;
	int fds[2], s[2];

	(void)state;
	small_pipe(fds, 64 * 1024);
	assert_int_equal(zcio_ring_new(fds[1], 0, NULL, NULL), -EINVAL);
	assert_int_equal(zcio_ring_new(-1, 0, NULL, &r), -EBADF);
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, s), 0);
	assert_int_equal(zcio_ring_new(s[0], 0, NULL, &r), -EINVAL);
	assert_null(r);
	close(s[0]);
	close(s[1]);
	assert_int_equal(zcio_ring_new(fds[1], 0, NULL, &r), 0);
	assert_int_equal(zcio_ring_reserve(r, 0, &span), -EINVAL);
	assert_int_equal(zcio_ring_reserve(r, zcio_ring_size(r) / 2 + 1, &span), -EINVAL);
	assert_int_equal(zcio_ring_commit(r, 1), -EINVAL); /* nothing reserved */
	assert_true(zcio_ring_reserve(r, 10, &span) >= 10);
	assert_int_equal(zcio_ring_commit(r, zcio_ring_size(r) + 1), -EINVAL);
	assert_int_equal(zcio_ring_commit(r, 0), 0);
	assert_int_equal(zcio_ring_write(r, NULL, 1), -EINVAL);
	zcio_ring_free(r);
	zcio_ring_free(NULL);
	close(fds[0]);
	close(fds[1]);
}

/* Spans that cross the end of the memory are contiguous (double mapping). */
static void spans_across_the_wrap_are_contiguous(void **state)
{
	struct zcio_opts o = { .flags = ZCIO_F_VMSPLICE, .copy_threshold = 1 };
	struct zcio_ring *r;
	size_t cap = 64 * 1024, total = 0, i;
	uint8_t *expect = tu_data(8 * cap, 9), *got = malloc(8 * cap);
	void *span;
	int fds[2];

	(void)state;
	small_pipe(fds, (int)cap);
	assert_int_equal(zcio_ring_new(fds[1], 0, &o, &r), 0);
	for (i = 0; i < 6; i++) {
		/* 48 KiB at a time: every second span straddles the end. */
		size_t n = 48 * 1024;

		assert_true(zcio_ring_reserve(r, n, &span) >= (int64_t)n);
		memcpy(span, expect + total, n);
		assert_int_equal(zcio_ring_commit(r, n), 0);
		total += n;
		assert_int_equal(zcio_ring_pump(r, 0, NULL), 0);
		assert_int_equal(tu_read_full(fds[0], got + total - n, n), (ssize_t)n);
	}
	assert_memory_equal(got, expect, total);
	zcio_ring_free(r);
	close(fds[0]);
	close(fds[1]);
	free(expect);
	free(got);
}

/* A child of fork() does not inherit the ring (MADV_DONTFORK): it cannot
 * write into pages the parent has in flight. */
static void child_after_fork_has_no_ring(void **state)
{
	struct zcio_ring *r;
	void *span;
	int fds[2], status;
	pid_t pid;

	(void)state;
	small_pipe(fds, 64 * 1024);
	assert_int_equal(zcio_ring_new(fds[1], 0, NULL, &r), 0);
	assert_true(zcio_ring_reserve(r, 16, &span) >= 16);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		*(volatile char *)span = 'x';
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
	zcio_ring_free(r);
	close(fds[0]);
	close(fds[1]);
}

static void no_fd_leak_over_1000_rings(void **state)
{
	int before, i, fds[2], fd = tu_file(NULL, 0);

	(void)state;
	small_pipe(fds, 64 * 1024);
	zcio_pool_flush(); /* pipes pooled by earlier tests */
	before = tu_count_fds();
	for (i = 0; i < 1000; i++) {
		struct zcio_opts o = { .flags = ZCIO_F_VMSPLICE, .copy_threshold = 1 };
		struct zcio_ring *r;

		assert_int_equal(zcio_ring_new(i % 2 ? fds[1] : fd, 128 * 1024, &o, &r), 0);
		assert_int_equal(zcio_ring_write(r, "0123456789", 10), 10);
		assert_int_equal(zcio_ring_pump(r, 0, NULL), 0);
		zcio_ring_free(r);
		if (i % 2) {
			char b[16];

			assert_int_equal(read(fds[0], b, sizeof(b)), 10);
		}
	}
	zcio_pool_flush();
	assert_int_equal(tu_count_fds(), before);
	close(fds[0]);
	close(fds[1]);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pipe_vmsplice_small_pipe_slow_reader),
		cmocka_unit_test(pipe_vmsplice_default_pipe),
		cmocka_unit_test(pipe_stable_copies),
		cmocka_unit_test(pipe_without_vmsplice_flag_copies),
		cmocka_unit_test(pipe_forced_copy),
		cmocka_unit_test(pipe_discipline_half_free_and_full_ring_stops_writer),
		cmocka_unit_test(control_vmsplice_reuse_without_discipline_is_seen_by_reader),
		cmocka_unit_test(file_vmsplice_then_splice),
		cmocka_unit_test(file_append_is_written),
		cmocka_unit_test(file_default_threshold_copies),
		cmocka_unit_test(dev_null_takes_everything),
		cmocka_unit_test(tcp_zero_copy_always_slow_reader),
		cmocka_unit_test(tcp_zero_copy_until_copied_slow_reader),
		cmocka_unit_test(tcp_forced_copy),
		cmocka_unit_test(reader_gone_is_epipe_not_sigpipe),
		cmocka_unit_test(bad_arguments),
		cmocka_unit_test(spans_across_the_wrap_are_contiguous),
		cmocka_unit_test(child_after_fork_has_no_ring),
		cmocka_unit_test(no_fd_leak_over_1000_rings),
	};

	/* Built-in thresholds, whatever this machine's calibration says. */
	setenv("ZCIO_THRESHOLDS", "", 1);
	tu_init(300);
	return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}
