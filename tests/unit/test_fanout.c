/*
 * test_fanout.c - zcio_fanout: one source, many destinations, by tee().
 *
 * A producer thread writes a known stream into the source; the fan-out is
 * pumped in the test's thread, waiting in poll() on exactly the fds
 * zcio_fanout_pollfds() names (a wrong or empty wait set hangs, and the
 * poll timeout turns that into a failure); a consumer thread per
 * destination checks every byte and the checksum.  The test thread keeps
 * SIGPIPE's default action, so a SIGPIPE that escapes the library kills the
 * program.
 */
#include "testutil.h"
#include "tu_seccomp.h"

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <termios.h>

#include "pipe.h"

#define STREAM (6u * TU_MIB + 12345u)
/* A wait longer than this is a hang. */
#define WAIT_MS 10000

/* poll() the fds, retrying EINTR.  Returns how many are ready (0 on
 * timeout). */
static int wait_any(struct pollfd *p, int n, int timeout_ms)
{
	int r;

	do {
		r = poll(p, (nfds_t)n, timeout_ms);
	} while (r < 0 && errno == EINTR);
	assert_true(r >= 0);
	return r;
}

/* How long to wait after a pump: the fan-out's deadline, if it has one. */
static int wait_ms(const struct zcio_fanout *f, int otherwise)
{
	int t = zcio_fanout_timeout(f);

	return t >= 0 && t < otherwise ? t : otherwise;
}

/* ---- destinations of every kind ------------------------------------------ */

enum dkind { D_PIPE, D_TCP, D_FILE, D_UNIX, D_FIFO, D_APPEND, D_DGRAM, D_KINDS };

static const char *const dkind_name[] = { "pipe", "tcp", "file", "unix", "fifo", "append",
					  "dgram" };

struct dst {
	enum dkind kind;
	int wr;                  /* the fan-out's end */
	int rd;                  /* the consumer's end; for files a read fd */
	uint64_t file_base;      /* bytes the file held before (append) */
	uint8_t *prefix;         /* those bytes */
	struct tu_consumer c;
	bool consuming;
	int id;
};

static void dst_open(struct dst *d, enum dkind kind, const uint8_t *expect, size_t len)
{
	struct tu_channel ch;

	memset(d, 0, sizeof(*d));
	d->kind = kind;
	d->id = -1;
	switch (kind) {
	case D_FILE:
		d->wr = tu_file(NULL, 0);
		d->rd = d->wr;
		return;
	case D_APPEND:
		/* Something there already: appending must keep it. */
		d->file_base = 4097;
		d->prefix = tu_data(d->file_base, 99);
		d->wr = tu_file_flags(d->prefix, d->file_base, O_RDWR | O_APPEND);
		d->rd = d->wr;
		return;
	case D_PIPE:
		tu_channel_open(&ch, TU_PIPE);
		break;
	case D_FIFO:
		tu_channel_open(&ch, TU_FIFO);
		break;
	case D_TCP:
		tu_channel_open(&ch, TU_TCP);
		break;
	case D_UNIX:
		tu_channel_open(&ch, TU_UNIX);
		break;
	case D_DGRAM:
		tu_channel_open(&ch, TU_DGRAM);
		break;
	default:
		fail();
	}
	d->wr = ch.wr;
	d->rd = ch.rd;
	/* Sockets the fan-out writes to are ours: nonblocking, as a server
	 * would have them.  Pipes stay blocking: the fan-out must not care. */
	if (kind == D_TCP || kind == D_UNIX || kind == D_DGRAM)
		tu_set_nonblock(d->wr, true);
	d->c = (struct tu_consumer){ .fd = d->rd, .expect = expect, .expect_len = len,
				     .dgram = kind == D_DGRAM, .close_at_end = true };
	tu_consumer_start(&d->c);
	d->consuming = true;
}

/* The fan-out is done with d: end its stream so the consumer sees EOF. */
static void dst_finish(struct dst *d)
{
	if (d->kind == D_DGRAM)
		(void)send(d->wr, "", 0, MSG_NOSIGNAL);
	if (d->kind != D_FILE && d->kind != D_APPEND)
		tu_close(&d->wr);
}

/* Assert d received exactly expect[0 .. len). */
static void dst_check(struct dst *d, const uint8_t *expect, size_t len)
{
	if (d->consuming) {
		d->c.expect = expect;
		d->c.expect_len = len;
		tu_consumer_check(&d->c);
		return;
	}
	if (d->kind == D_APPEND) {
		uint8_t *all = malloc(d->file_base + len);

		memcpy(all, d->prefix, d->file_base);
		memcpy(all + d->file_base, expect, len);
		tu_assert_file(d->rd, 0, all, d->file_base + len);
		free(all);
		free(d->prefix);
	} else {
		tu_assert_file(d->rd, 0, expect, len);
	}
	tu_close(&d->wr);
}

/* ---- pumping ------------------------------------------------------------------ */

struct removal {
	struct zcio_fanout_dest info[32];
	unsigned int n;
};

/* Pump until the fan-out returns something other than -EAGAIN, waiting
 * in poll() on what it names.  Removed destinations are collected. */
static int64_t pump_until_done(struct zcio_fanout *f, struct zcio_stats *st, struct removal *rm)
{
	struct pollfd p[40];

	for (;;) {
		int64_t r = zcio_fanout_pump(f, 1u << 20, st);
		struct zcio_fanout_dest info;
		int n;

		while (zcio_fanout_removed(f, &info) == 1) {
			assert_non_null(rm);
			assert_true(rm->n < 32);
			rm->info[rm->n++] = info;
		}
		if (r > 0)
			continue;
		if (r != -EAGAIN)
			return r;
		n = zcio_fanout_pollfds(f, p, 40);
		/* -EAGAIN always names something to wait for. */
		assert_true(n > 0 && n <= 40);
		if (wait_any(p, n, wait_ms(f, WAIT_MS)) == 0 && zcio_fanout_timeout(f) < 0) {
			printf("# pump waited %d ms on %d fds without an event\n", WAIT_MS, n);
			return -ETIMEDOUT;
		}
	}
}

/* ---- the source ------------------------------------------------------------- */

enum skind { S_PIPE, S_FILE, S_TCP };

struct src {
	enum skind kind;
	int fd;          /* the fan-out's source */
	struct tu_producer p;
	bool producing;
};

static void src_open(struct src *s, enum skind kind, const uint8_t *data, size_t len, size_t chunk,
		     unsigned int delay_us)
{
	struct tu_channel ch;

	memset(s, 0, sizeof(*s));
	s->kind = kind;
	if (kind == S_FILE) {
		s->fd = tu_file(data, len);
		return;
	}
	tu_channel_open(&ch, kind == S_PIPE ? TU_PIPE : TU_TCP);
	s->fd = ch.rd;
	if (kind == S_TCP)
		tu_set_nonblock(s->fd, true);
	s->p = (struct tu_producer){ .fd = ch.wr, .data = data, .len = len, .chunk = chunk,
				     .delay_us = delay_us };
	tu_producer_start(&s->p);
	s->producing = true;
}

static void src_close(struct src *s)
{
	if (s->producing) {
		tu_producer_join(&s->p);
		assert_int_equal(s->p.err, 0);
	}
	tu_close(&s->fd);
}

/* ---- tests ------------------------------------------------------------------- */

/* n destinations of mixed kinds, every one byte-exact. */
static void run_mixed(enum skind sk, unsigned int n, const struct zcio_opts *o, int expect_path)
{
	uint8_t *data = tu_data(STREAM, 1000 + n);
	struct dst d[16];
	struct src s;
	struct zcio_fanout *f;
	struct zcio_stats st = { 0 };
	uint64_t sum = 0;
	unsigned int i;

	assert_true(n <= 16);
	src_open(&s, sk, data, STREAM, 200000, 0);
	assert_int_equal(zcio_fanout_new(s.fd, o, &f), 0);
	for (i = 0; i < n; i++) {
		dst_open(&d[i], (enum dkind)((i + n) % D_KINDS), data, STREAM);
		d[i].id = zcio_fanout_add(f, d[i].wr, 0);
		assert_true(d[i].id >= 0);
	}
	assert_int_equal(zcio_fanout_count(f), n);
	assert_int_equal(pump_until_done(f, &st, NULL), 0);
	assert_int_equal(zcio_fanout_position(f), STREAM);
	for (i = 0; i < n; i++) {
		struct zcio_fanout_dest info;

		assert_int_equal(zcio_fanout_dest(f, d[i].id, &info), 0);
		assert_int_equal(info.state, ZCIO_FANOUT_DONE);
		assert_int_equal(info.stats.bytes, STREAM);
		assert_int_equal(info.held, 0);
		assert_int_equal(info.joined_at, 0);
		sum += info.stats.bytes;
		dst_finish(&d[i]);
	}
	for (i = 0; i < n; i++) {
		if (d[i].consuming && (d[i].c.err || d[i].c.bad_at != SIZE_MAX))
			printf("# destination %u (%s) failed\n", i, dkind_name[d[i].kind]);
		dst_check(&d[i], data, STREAM);
	}
	assert_int_equal(st.bytes, sum);
	assert_int_equal(st.pending, 0);
	if (expect_path >= 0 && st.path_bytes[expect_path] == 0) {
		tu_print_stats(&st);
		fail_msg("no bytes went by %s", zcio_path_name(expect_path));
	}
	zcio_fanout_free(f);
	src_close(&s);
	free(data);
}

static void test_one_to_sixteen_mixed_destinations(void **state)
{
	static const unsigned int counts[] = { 1, 2, 3, 5, 8, 16 };

	(void)state;
	for (unsigned int i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		run_mixed(S_PIPE, counts[i], NULL, counts[i] > 1 ? ZCIO_PATH_TEE : ZCIO_PATH_SPLICE_PIPE);
}

static void test_file_and_socket_sources(void **state)
{
	(void)state;
	run_mixed(S_FILE, 7, NULL, ZCIO_PATH_TEE);
	run_mixed(S_TCP, 7, NULL, ZCIO_PATH_TEE);
}

static void test_copy_baseline_is_exact(void **state)
{
	struct zcio_opts o = { .flags = ZCIO_F_COPY };

	(void)state;
	run_mixed(S_PIPE, 7, &o, ZCIO_PATH_COPY);
	run_mixed(S_FILE, 3, &o, ZCIO_PATH_COPY);
}

/* A small pipe size: many rounds, partial tees, the last consumer moving
 * around. */
static void test_small_pipes_many_rounds(void **state)
{
	struct zcio_opts o = { .pipe_size = 16384 };

	(void)state;
	run_mixed(S_PIPE, 6, &o, ZCIO_PATH_TEE);
}

/* ---- a destination that goes away ----------------------------------------- */

struct quitter {
	int fd;
	bool sock;
	const uint8_t *expect;
	size_t limit;
	size_t got;
	bool bad;
	pthread_t th;
};

static void *quitter_main(void *arg)
{
	struct quitter *q = arg;
	uint8_t buf[65536];

	tu_block_test_signals();
	while (q->got < q->limit) {
		size_t want = q->limit - q->got < sizeof(buf) ? q->limit - q->got : sizeof(buf);
		ssize_t r = read(q->fd, buf, want);

		if (r <= 0)
			break;
		if (memcmp(buf, q->expect + q->got, (size_t)r) != 0)
			q->bad = true;
		q->got += (size_t)r;
	}
	if (q->sock) {
		/* Unread bytes make close() send a reset: ECONNRESET or EPIPE
		 * for the writer, both mean "reader gone". */
		shutdown(q->fd, SHUT_RDWR);
	}
	close(q->fd);
	return NULL;
}

static void run_quitter(enum dkind qk)
{
	uint8_t *data = tu_data(STREAM, 77);
	struct dst d[3];
	struct quitter q = { .expect = data, .limit = 1 * TU_MIB + 333 };
	struct tu_channel ch;
	struct src s;
	struct zcio_fanout *f;
	struct zcio_stats st = { 0 };
	struct removal rm = { .n = 0 };
	int qid;

	src_open(&s, S_PIPE, data, STREAM, 100000, 0);
	assert_int_equal(zcio_fanout_new(s.fd, NULL, &f), 0);
	dst_open(&d[0], D_PIPE, data, STREAM);
	dst_open(&d[1], D_TCP, data, STREAM);
	dst_open(&d[2], D_FILE, data, STREAM);
	tu_channel_open(&ch, qk == D_PIPE ? TU_PIPE : TU_UNIX);
	if (qk != D_PIPE)
		tu_set_nonblock(ch.wr, true);
	q.fd = ch.rd;
	q.sock = qk != D_PIPE;
	assert_int_equal(pthread_create(&q.th, NULL, quitter_main, &q), 0);
	qid = zcio_fanout_add(f, ch.wr, 0);
	for (int i = 0; i < 3; i++)
		d[i].id = zcio_fanout_add(f, d[i].wr, 0);
	assert_int_equal(pump_until_done(f, &st, &rm), 0);
	pthread_join(q.th, NULL);
	assert_false(q.bad);
	assert_int_equal(q.got, q.limit);
	/* Reported once, as closed by its reader, with what it delivered. */
	assert_int_equal(rm.n, 1);
	assert_int_equal(rm.info[0].id, qid);
	assert_int_equal(rm.info[0].state, ZCIO_FANOUT_CLOSED);
	assert_true(rm.info[0].err == -EPIPE || rm.info[0].err == -ECONNRESET);
	assert_true(rm.info[0].stats.bytes >= q.got);
	assert_int_equal(zcio_fanout_count(f), 3);
	assert_int_equal(zcio_fanout_remove(f, qid, NULL), -ENOENT);
	for (int i = 0; i < 3; i++)
		dst_finish(&d[i]);
	for (int i = 0; i < 3; i++)
		dst_check(&d[i], data, STREAM);
	zcio_fanout_free(f);
	tu_close(&ch.wr);
	src_close(&s);
	free(data);
}

static void test_closing_destination_leaves_others_whole(void **state)
{
	(void)state;
	run_quitter(D_PIPE);
	run_quitter(D_UNIX);
}

/* ---- slow destinations ------------------------------------------------------ */

static double thread_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Pump for about ms milliseconds (waiting in poll as told). */
static void pump_for(struct zcio_fanout *f, struct zcio_stats *st, struct removal *rm, int ms)
{
	int64_t end = tu_now_us() + (int64_t)ms * 1000;

	while (tu_now_us() < end) {
		struct pollfd p[40];
		struct zcio_fanout_dest info;
		int64_t r = zcio_fanout_pump(f, 1u << 20, st);
		int n, left = (int)((end - tu_now_us()) / 1000);

		while (zcio_fanout_removed(f, &info) == 1) {
			assert_non_null(rm);
			rm->info[rm->n++] = info;
		}
		if (r > 0)
			continue;
		assert_int_equal(r, -EAGAIN);
		n = zcio_fanout_pollfds(f, p, 40);
		assert_true(n > 0);
		wait_any(p, n, wait_ms(f, left > 0 ? left : 0));
	}
}

/* Block: everyone waits for a stalled destination, and the pump sleeps. */
static void test_block_waits_for_stalled_without_spinning(void **state)
{
	uint8_t *data = tu_data(STREAM, 5);
	struct dst fast;
	struct tu_channel stalled;
	struct tu_consumer sc;
	struct src s;
	struct zcio_fanout *f;
	struct zcio_stats st = { 0 };
	struct zcio_fanout_dest info;
	double cpu;
	int sid;

	(void)state;
	src_open(&s, S_PIPE, data, STREAM, 65536, 0);
	assert_int_equal(zcio_fanout_new(s.fd, NULL, &f), 0);
	dst_open(&fast, D_TCP, data, STREAM);
	fast.id = zcio_fanout_add(f, fast.wr, 0);
	tu_channel_open(&stalled, TU_PIPE); /* nobody reads it yet */
	sid = zcio_fanout_add(f, stalled.wr, 0);
	cpu = thread_cpu();
	pump_for(f, &st, NULL, 600);
	cpu = thread_cpu() - cpu;
	/* 0.6 s of waiting: a spinning pump would burn all of it. */
	printf("# blocked for 0.6 s: %.3f s of CPU, position %llu\n", cpu,
	       (unsigned long long)zcio_fanout_position(f));
	assert_true(cpu < 0.05);
	/* Held back: at most the stalled pipe's capacity plus the intake. */
	assert_true(zcio_fanout_position(f) <= 64 * TU_KIB + ZCIO__PIPE_DEFAULT_SIZE);
	assert_true(fast.c.got <= zcio_fanout_position(f));
	assert_int_equal(zcio_fanout_dest(f, sid, &info), 0);
	assert_int_equal(info.state, ZCIO_FANOUT_ACTIVE);
	assert_int_equal(info.wait, ZCIO_WAIT_OUT);
	/* Now it reads: everyone gets everything. */
	sc = (struct tu_consumer){ .fd = stalled.rd, .expect = data, .expect_len = STREAM,
				   .close_at_end = true };
	tu_consumer_start(&sc);
	assert_int_equal(pump_until_done(f, &st, NULL), 0);
	tu_close(&stalled.wr);
	dst_finish(&fast);
	tu_consumer_check(&sc);
	dst_check(&fast, data, STREAM);
	zcio_fanout_free(f);
	src_close(&s);
	free(data);
}

/* Drop: a stalled destination goes within a pipe's worth of lag, and the
 * others finish as if it had never been there. */
static void run_drop(enum dkind sk)
{
	uint8_t *data = tu_data(2 * STREAM, 6);
	struct dst fast[2];
	struct tu_channel stalled;
	struct src s;
	struct zcio_fanout *f;
	struct zcio_stats st = { 0 };
	struct removal rm = { .n = 0 };
	uint8_t *back;
	ssize_t got;
	/* A second of grace, so that a reader the scheduler forgets for a
	 * while on a loaded machine is not taken for a stalled one. */
	struct zcio_opts o = { .timeout_ms = 1000 };
	int64_t t0;
	int sid;

	/* A live source, slower than the readers that keep up (even under
	 * a sanitizer): 64 KiB every 2 ms, at most 32 MB/s. */
	src_open(&s, S_PIPE, data, 2 * STREAM, 65536, 2000);
	assert_int_equal(zcio_fanout_new(s.fd, &o, &f), 0);
	tu_channel_open(&stalled, sk == D_PIPE ? TU_PIPE : TU_UNIX);
	if (sk != D_PIPE)
		tu_set_nonblock(stalled.wr, true);
	sid = zcio_fanout_add(f, stalled.wr, ZCIO_FANOUT_DROP);
	for (int i = 0; i < 2; i++) {
		dst_open(&fast[i], i ? D_FILE : D_PIPE, data, 2 * STREAM);
		fast[i].id = zcio_fanout_add(f, fast[i].wr, ZCIO_FANOUT_DROP);
	}
	t0 = tu_now_us();
	assert_int_equal(pump_until_done(f, &st, &rm), 0);
	printf("# %s: dropped after %llu bytes, %llu behind; the others took %.2f s\n",
	       dkind_name[sk], (unsigned long long)rm.info[0].stats.bytes,
	       (unsigned long long)rm.info[0].lag, (double)(tu_now_us() - t0) / 1e6);
	for (unsigned int i = 1; i < rm.n; i++)
		printf("# also removed: id %d, state %d, err %d, after %llu bytes, lag %llu\n",
		       rm.info[i].id, rm.info[i].state, rm.info[i].err,
		       (unsigned long long)rm.info[i].stats.bytes, (unsigned long long)rm.info[i].lag);
	assert_int_equal(rm.n, 1);
	assert_int_equal(rm.info[0].id, sid);
	assert_int_equal(rm.info[0].state, ZCIO_FANOUT_DROPPED);
	/* At the source's pace (about 0.4 s at 32 MB/s, plus the second of
	 * grace), not held back for good. */
	assert_true(tu_now_us() - t0 < 6000000);
	/* Removed once it held the intake back: never more than the intake's
	 * capacity behind what the fan-out had taken. */
	assert_true(rm.info[0].lag > 0);
	assert_true(rm.info[0].lag <= ZCIO__PIPE_DEFAULT_SIZE);
	/* What it had received is an exact prefix of the stream. */
	back = malloc(2 * STREAM);
	tu_close(&stalled.wr);
	got = tu_read_full(stalled.rd, back, 2 * STREAM);
	assert_true(got > 0);
	assert_true((uint64_t)got <= rm.info[0].stats.bytes);
	assert_memory_equal(back, data, (size_t)got);
	free(back);
	tu_close(&stalled.rd);
	for (int i = 0; i < 2; i++)
		dst_finish(&fast[i]);
	for (int i = 0; i < 2; i++)
		dst_check(&fast[i], data, 2 * STREAM);
	zcio_fanout_free(f);
	src_close(&s);
	free(data);
}

static void test_drop_removes_stalled_within_a_pipe(void **state)
{
	(void)state;
	run_drop(D_PIPE);
	run_drop(D_UNIX);
}

/* A drop destination gets opts.timeout_ms to catch up: one that pauses
 * for less stays, one that never reads goes, not sooner. */
static void test_drop_waits_for_the_delay(void **state)
{
	const size_t len = 3 * STREAM;
	uint8_t *data = tu_data(len, 16);
	struct zcio_opts o = { .timeout_ms = 1000 };
	struct dst late, file;
	struct tu_channel stalled;
	struct src s;
	struct zcio_fanout *f;
	struct zcio_stats st = { 0 };
	struct removal rm = { .n = 0 };
	int64_t t0, took;
	int sid;

	(void)state;
	src_open(&s, S_FILE, data, len, 0, 0); /* never waits: holds back at once */
	assert_int_equal(zcio_fanout_new(s.fd, &o, &f), 0);
	tu_channel_open(&stalled, TU_PIPE);
	sid = zcio_fanout_add(f, stalled.wr, ZCIO_FANOUT_DROP);
	dst_open(&file, D_FILE, data, len);
	file.id = zcio_fanout_add(f, file.wr, ZCIO_FANOUT_DROP);
	dst_open(&late, D_PIPE, data, len);
	late.c.delay_us = 150000; /* asleep for 150 ms after its first read */
	late.c.chunk = 4096;
	late.id = zcio_fanout_add(f, late.wr, ZCIO_FANOUT_DROP);
	t0 = tu_now_us();
	pump_for(f, &st, &rm, 600);
	/* Both have held the others back for a while, neither for 1 s. */
	assert_int_equal(rm.n, 0);
	__atomic_store_n(&late.c.delay_us, 0, __ATOMIC_RELAXED);
	assert_int_equal(pump_until_done(f, &st, &rm), 0);
	assert_int_equal(rm.n, 1);
	assert_int_equal(rm.info[0].id, sid);
	took = tu_now_us() - t0;
	printf("# the stalled one went within %.2f s; the others finished\n", (double)took / 1e6);
	assert_true(took >= 1000000);
	dst_finish(&late);
	dst_check(&late, data, len);
	dst_check(&file, data, len);
	zcio_fanout_free(f);
	tu_channel_close(&stalled);
	src_close(&s);
	free(data);
}

/* ---- joining and leaving while running ------------------------------------ */

/* Pump until the fan-out has taken `pos` bytes. */
static void pump_to_position(struct zcio_fanout *f, struct zcio_stats *st, uint64_t pos)
{
	while (zcio_fanout_position(f) < pos) {
		struct pollfd p[40];
		int64_t r = zcio_fanout_pump(f, pos - zcio_fanout_position(f), st);
		int n;

		if (r > 0)
			continue;
		assert_int_equal(r, -EAGAIN);
		n = zcio_fanout_pollfds(f, p, 40);
		assert_true(n > 0);
		assert_true(wait_any(p, n, wait_ms(f, WAIT_MS)) > 0 || zcio_fanout_timeout(f) >= 0);
	}
}

static void run_late_joiner(const struct zcio_opts *o, bool slow_first)
{
	const size_t a = 3 * TU_MIB + 4321, len = STREAM;
	uint8_t *data = tu_data(len, 8);
	struct dst first, late[2];
	struct tu_channel src;
	struct zcio_fanout *f;
	struct zcio_stats st = { 0 };
	struct tu_producer p2;

	tu_channel_open(&src, TU_PIPE);
	assert_int_equal(zcio_fanout_new(src.rd, o, &f), 0);
	dst_open(&first, D_UNIX, data, len);
	if (slow_first)
		first.c.delay_us = 2000; /* the late ones join ahead of it */
	first.id = zcio_fanout_add(f, first.wr, 0);
	/* The first a bytes, all taken before the others join. */
	{
		struct tu_producer p1 = { .fd = src.wr, .data = data, .len = a, .keep_open = true };

		tu_producer_start(&p1);
		pump_to_position(f, &st, a);
		tu_producer_join(&p1);
	}
	assert_int_equal(zcio_fanout_position(f), a);
	dst_open(&late[0], D_PIPE, data + a, len - a);
	dst_open(&late[1], D_FILE, data + a, len - a);
	for (int i = 0; i < 2; i++) {
		struct zcio_fanout_dest info;

		late[i].id = zcio_fanout_add(f, late[i].wr, 0);
		assert_int_equal(zcio_fanout_dest(f, late[i].id, &info), 0);
		assert_int_equal(info.joined_at, a);
	}
	p2 = (struct tu_producer){ .fd = src.wr, .data = data + a, .len = len - a, .chunk = 70000 };
	tu_producer_start(&p2);
	assert_int_equal(pump_until_done(f, &st, NULL), 0);
	tu_producer_join(&p2);
	dst_finish(&first);
	for (int i = 0; i < 2; i++)
		dst_finish(&late[i]);
	dst_check(&first, data, len);
	/* Exactly the bytes after the join point. */
	for (int i = 0; i < 2; i++)
		dst_check(&late[i], data + a, len - a);
	zcio_fanout_free(f);
	tu_close(&src.rd);
	free(data);
}

static void test_late_joiners_get_exactly_the_rest(void **state)
{
	struct zcio_opts copy = { .flags = ZCIO_F_COPY };

	(void)state;
	run_late_joiner(NULL, false);
	run_late_joiner(NULL, true);
	run_late_joiner(&copy, true);
}

/* Remove one mid-stream: it received a prefix, the others everything. */
static void test_remove_while_running(void **state)
{
	uint8_t *data = tu_data(STREAM, 9);
	struct dst d[3];
	struct src s;
	struct zcio_fanout *f;
	struct zcio_stats st = { 0 };
	struct zcio_fanout_dest info;

	(void)state;
	src_open(&s, S_PIPE, data, STREAM, 65536, 0);
	assert_int_equal(zcio_fanout_new(s.fd, NULL, &f), 0);
	for (int i = 0; i < 3; i++) {
		dst_open(&d[i], i == 1 ? D_TCP : D_PIPE, data, STREAM);
		d[i].id = zcio_fanout_add(f, d[i].wr, 0);
	}
	pump_to_position(f, &st, 2 * TU_MIB);
	assert_int_equal(zcio_fanout_remove(f, d[1].id, &info), 0);
	assert_int_equal(info.state, ZCIO_FANOUT_REMOVED);
	assert_int_equal(zcio_fanout_remove(f, d[1].id, NULL), -ENOENT);
	assert_int_equal(zcio_fanout_dest(f, d[1].id, &info), -ENOENT);
	assert_int_equal(zcio_fanout_count(f), 2);
	assert_int_equal(pump_until_done(f, &st, NULL), 0);
	dst_finish(&d[1]);
	pthread_join(d[1].c.th, NULL);
	d[1].consuming = false;
	assert_int_equal(d[1].c.bad_at, SIZE_MAX);
	assert_int_equal(d[1].c.got, info.stats.bytes);
	assert_true(info.stats.bytes + info.held <= 2 * TU_MIB + ZCIO__PIPE_DEFAULT_SIZE);
	for (int i = 0; i < 3; i += 2) {
		dst_finish(&d[i]);
		dst_check(&d[i], data, STREAM);
	}
	zcio_fanout_free(f);
	src_close(&s);
	free(data);
}

/* With nobody listening the stream is read and thrown away; whoever joins
 * later starts where the fan-out is. */
static void test_no_destination_discards(void **state)
{
	const size_t a = 2 * TU_MIB + 5;
	uint8_t *data = tu_data(STREAM, 10);
	struct tu_channel src;
	struct zcio_fanout *f;
	struct zcio_stats st = { 0 };
	struct tu_producer p = { .data = data, .len = a, .keep_open = true };
	struct tu_producer p2;
	struct dst d;

	(void)state;
	tu_channel_open(&src, TU_PIPE);
	p.fd = src.wr;
	assert_int_equal(zcio_fanout_new(src.rd, NULL, &f), 0);
	tu_producer_start(&p);
	pump_to_position(f, &st, a);
	tu_producer_join(&p);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(zcio_fanout_pump(f, 0, &st), -EAGAIN);
	assert_int_equal(st.wait, ZCIO_WAIT_IN);
	assert_int_equal(st.pending, 0);
	dst_open(&d, D_FIFO, data + a, STREAM - a);
	d.id = zcio_fanout_add(f, d.wr, 0);
	p2 = (struct tu_producer){ .fd = src.wr, .data = data + a, .len = STREAM - a };
	tu_producer_start(&p2);
	assert_int_equal(pump_until_done(f, &st, NULL), 0);
	tu_producer_join(&p2);
	dst_finish(&d);
	dst_check(&d, data + a, STREAM - a);
	zcio_fanout_free(f);
	tu_close(&src.rd);
	free(data);
}

/* ---- waiting ------------------------------------------------------------------ */

/* Edge-triggered epoll on every fd, pumping only on events: a wait set
 * that names an fd which did not return EAGAIN would stall. */
static void test_edge_triggered_epoll_never_stalls(void **state)
{
	uint8_t *data = tu_data(STREAM, 11);
	struct dst d[4];
	struct src s;
	struct zcio_fanout *f;
	struct zcio_stats st = { 0 };
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET };
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int64_t r;

	(void)state;
	src_open(&s, S_TCP, data, STREAM, 1460 * 3, 0);
	assert_int_equal(zcio_fanout_new(s.fd, NULL, &f), 0);
	ev.data.fd = s.fd;
	assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, s.fd, &ev), 0);
	for (int i = 0; i < 4; i++) {
		dst_open(&d[i], i % 2 ? D_TCP : D_PIPE, data, STREAM);
		d[i].c.delay_us = 300 * (unsigned)i; /* different speeds */
		d[i].id = zcio_fanout_add(f, d[i].wr, 0);
		ev.data.fd = d[i].wr;
		assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, d[i].wr, &ev), 0);
	}
	while ((r = zcio_fanout_pump(f, 0, &st)) == -EAGAIN) {
		struct epoll_event evs[8];
		int n = epoll_wait(ep, evs, 8, wait_ms(f, WAIT_MS));

		if (n == 0 && zcio_fanout_timeout(f) < 0)
			fail_msg("stalled: no edge in %d ms at position %llu", WAIT_MS,
				 (unsigned long long)zcio_fanout_position(f));
	}
	assert_int_equal(r, 0);
	for (int i = 0; i < 4; i++)
		dst_finish(&d[i]);
	for (int i = 0; i < 4; i++)
		dst_check(&d[i], data, STREAM);
	close(ep);
	zcio_fanout_free(f);
	src_close(&s);
	free(data);
}

/* The wait set names the source when it ran dry, and only the
 * destination when the intake is full because of it. */
static void test_pollfds_name_what_blocked(void **state)
{
	struct tu_channel src, out;
	struct zcio_fanout *f;
	struct zcio_stats st = { 0 };
	struct pollfd p[4];
	uint8_t *buf = tu_data(4 * TU_MIB, 12);
	int file;

	(void)state;
	tu_channel_open(&src, TU_UNIX);
	tu_channel_open(&out, TU_PIPE);
	tu_set_nonblock(src.rd, true);
	assert_int_equal(zcio_fanout_new(src.rd, NULL, &f), 0);
	assert_int_equal(zcio_fanout_pollfds(f, p, 4), 0); /* no pump yet */
	assert_true(zcio_fanout_add(f, out.wr, 0) >= 0);
	assert_int_equal(zcio_fanout_pump(f, 0, &st), -EAGAIN);
	assert_int_equal(zcio_fanout_pollfds(f, p, 4), 1);
	assert_int_equal(p[0].fd, src.rd);
	assert_int_equal(p[0].events, POLLIN);
	assert_int_equal(p[0].revents, 0);
	assert_int_equal(st.wait, ZCIO_WAIT_IN);
	assert_int_equal(zcio_fanout_pollfds(f, NULL, 1), -EINVAL);
	zcio_fanout_free(f);

	/* A file source never runs dry: 4 MiB, nobody reading the pipe. */
	file = tu_file(buf, 4 * TU_MIB);
	assert_int_equal(zcio_fanout_new(file, NULL, &f), 0);
	assert_true(zcio_fanout_add(f, out.wr, 0) >= 0);
	assert_int_equal(zcio_fanout_pump(f, 0, &st), -EAGAIN);
	assert_int_equal(st.wait, ZCIO_WAIT_OUT);
	assert_true(st.pending > 0);
	assert_int_equal(zcio_fanout_pollfds(f, NULL, 0), 1);
	assert_int_equal(zcio_fanout_pollfds(f, p, 4), 1);
	assert_int_equal(p[0].fd, out.wr);
	assert_int_equal(p[0].events, POLLOUT);
	/* Pumping again without a wait changes nothing and costs no spin. */
	assert_int_equal(zcio_fanout_pump(f, 0, &st), -EAGAIN);
	assert_int_equal(st.last_bytes, 0);
	assert_int_equal(zcio_fanout_pollfds(f, p, 4), 1);
	zcio_fanout_free(f);
	close(file);
	tu_channel_close(&src);
	tu_channel_close(&out);
	free(buf);
}

/* ---- fallbacks -------------------------------------------------------------- */

/* No pipe for the destinations (pool cap): the stream is copied, whole. */
static void test_no_pipe_copies(void **state)
{
	uint8_t *data = tu_data(STREAM, 13);
	struct dst d[3];
	struct src s;
	struct zcio_fanout *f;
	struct zcio_stats st = { 0 };
	struct zcio_pool_stats ps;

	(void)state;
	zcio_pool_flush();
	zcio_pool_stats(&ps);
	/* One pipe more than the others hold: the intake's. */
	zcio_pool_set_max(ps.live + 1);
	src_open(&s, S_PIPE, data, STREAM, 65536, 0);
	assert_int_equal(zcio_fanout_new(s.fd, NULL, &f), 0);
	for (int i = 0; i < 3; i++) {
		dst_open(&d[i], i == 0 ? D_PIPE : i == 1 ? D_FILE : D_TCP, data, STREAM);
		d[i].id = zcio_fanout_add(f, d[i].wr, 0);
	}
	assert_int_equal(pump_until_done(f, &st, NULL), 0);
	zcio_pool_set_max(0);
	for (int i = 0; i < 3; i++)
		dst_finish(&d[i]);
	for (int i = 0; i < 3; i++)
		dst_check(&d[i], data, STREAM);
	assert_true(tu_has_reason(&st, ZCIO_WHY_NO_PIPE));
	assert_true(st.path_bytes[ZCIO_PATH_COPY] > 0);
	zcio_fanout_free(f);
	src_close(&s);
	free(data);
}

/* Destinations that cannot be spliced to: a terminal and an O_APPEND file
 * take the copy route from their own pipe; the others still splice. */
static void test_copy_route_destinations(void **state)
{
	uint8_t *data = tu_data(STREAM, 14);
	struct dst d[2];
	struct src s;
	struct zcio_fanout *f;
	struct zcio_stats st = { 0 };
	struct zcio_fanout_dest info;
	struct tu_consumer tc;
	int master, slave;
	char *name;

	(void)state;
	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0 || grantpt(master) || unlockpt(master) || !(name = ptsname(master))) {
		printf("# SKIP: no pseudo-terminal\n");
		skip();
	}
	slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	assert_true(slave >= 0);
	{
		/* Raw: bytes pass unchanged. */
		struct termios t;

		assert_int_equal(tcgetattr(slave, &t), 0);
		cfmakeraw(&t);
		assert_int_equal(tcsetattr(slave, TCSANOW, &t), 0);
	}
	src_open(&s, S_PIPE, data, STREAM, 65536, 0);
	assert_int_equal(zcio_fanout_new(s.fd, NULL, &f), 0);
	dst_open(&d[0], D_APPEND, data, STREAM);
	dst_open(&d[1], D_PIPE, data, STREAM);
	d[0].id = zcio_fanout_add(f, d[0].wr, 0);
	d[1].id = zcio_fanout_add(f, d[1].wr, 0);
	tc = (struct tu_consumer){ .fd = master, .expect = data, .expect_len = STREAM };
	tu_consumer_start(&tc);
	assert_true(zcio_fanout_add(f, slave, 0) >= 0);
	assert_int_equal(pump_until_done(f, &st, NULL), 0);
	assert_int_equal(zcio_fanout_dest(f, d[0].id, &info), 0);
	assert_int_equal(info.stats.path_bytes[ZCIO_PATH_COPY], STREAM);
	assert_int_equal(zcio_fanout_dest(f, d[1].id, &info), 0);
	assert_int_equal(info.stats.path_bytes[ZCIO_PATH_COPY], 0);
	dst_finish(&d[1]);
	dst_check(&d[0], data, STREAM);
	dst_check(&d[1], data, STREAM);
	/* The terminal: wait until the reader has everything, then hang up. */
	for (int i = 0; i < 1000 && __atomic_load_n(&tc.got, __ATOMIC_RELAXED) < STREAM; i++)
		tu_sleep_us(10000);
	close(slave);
	/* The master reads EIO, not EOF, once the slave is gone. */
	pthread_join(tc.th, NULL);
	assert_true(tc.err == 0 || tc.err == -EIO);
	assert_int_equal(tc.got, STREAM);
	assert_int_equal(tc.bad_at, SIZE_MAX);
	assert_int_equal(tc.hash, tu_hash(TU_HASH_INIT, data, STREAM));
	close(master);
	zcio_fanout_free(f);
	src_close(&s);
	free(data);
}

/* ---- tee() missing or forbidden: a seccomp child ------------------------------ */


#define CHILD_CHECK(cond)                                                               \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "child: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			_exit(1);                                                       \
		}                                                                       \
	} while (0)

/* In a child: file -> fan-out -> three files with tee() failing with err,
 * every byte exact, copied, the reason recorded. */
static void child_tee_denied(int err, int why)
{
	const size_t len = 3 * TU_MIB + 17;
	uint8_t *data = tu_data(len, 15), *back = malloc(len + 1);
	struct zcio_fanout *f;
	struct zcio_stats st = { 0 };
	int in = tu_file(data, len), out[3];
	int64_t r;

	if (tu_deny(SYS_tee, err) < 0)
		_exit(77);
	CHILD_CHECK(zcio_fanout_new(in, NULL, &f) == 0);
	for (int i = 0; i < 3; i++) {
		out[i] = tu_file(NULL, 0);
		CHILD_CHECK(zcio_fanout_add(f, out[i], 0) >= 0);
	}
	while ((r = zcio_fanout_pump(f, 0, &st)) > 0)
		;
	if (r != 0)
		fprintf(stderr, "child: pump: %lld\n", (long long)r);
	CHILD_CHECK(r == 0);
	for (int i = 0; i < 3; i++) {
		CHILD_CHECK(pread(out[i], back, len + 1, 0) == (ssize_t)len);
		CHILD_CHECK(memcmp(back, data, len) == 0);
	}
	CHILD_CHECK(st.bytes == 3 * len);
	CHILD_CHECK(tu_has_reason(&st, why));
	CHILD_CHECK(st.path_bytes[ZCIO_PATH_TEE] == 0);
	zcio_fanout_free(f);
	_exit(0);
}

static void run_child(int err, int why)
{
	int status = 0;
	pid_t pid;

#ifndef TEST_AUDIT_ARCH
	printf("# SKIP: no seccomp test filter for this architecture\n");
	skip();
#endif
	zcio_pool_flush();
	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child_tee_denied(err, why);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		printf("# SKIP: seccomp filters unavailable here\n");
		skip();
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_tee_missing_or_forbidden_copies(void **state)
{
	(void)state;
	run_child(ENOSYS, ZCIO_WHY_NOSYS);
	run_child(EPERM, ZCIO_WHY_FORBIDDEN);
}

/* ---- resources -------------------------------------------------------------- */

/* Many fan-outs, destinations added and removed: no fd or pipe left. */
static void test_no_fd_or_pipe_leak(void **state)
{
	struct zcio_pool_stats before, after;
	int fds;

	(void)state;
	zcio_pool_flush();
	zcio_pool_stats(&before);
	fds = tu_count_fds();
	for (int round = 0; round < 200; round++) {
		uint8_t buf[100000];
		struct tu_channel src, out[3];
		struct zcio_fanout *f;
		int id[3];

		tu_channel_open(&src, TU_PIPE);
		assert_int_equal(zcio_fanout_new(src.rd, NULL, &f), 0);
		for (int i = 0; i < 3; i++) {
			tu_channel_open(&out[i], i == 1 ? TU_UNIX : TU_PIPE);
			tu_set_nonblock(out[i].wr, true);
			tu_set_nonblock(out[i].rd, true);
			id[i] = zcio_fanout_add(f, out[i].wr, round % 2 ? ZCIO_FANOUT_DROP : 0);
		}
		tu_fill(buf, sizeof(buf), (uint64_t)round);
		assert_int_equal(write(src.wr, buf, 60000), 60000);
		assert_int_equal(zcio_fanout_pump(f, 0, NULL), -EAGAIN);
		if (round % 3 == 0)
			assert_int_equal(zcio_fanout_remove(f, id[round % 3], NULL), 0);
		if (round % 5 == 0)
			tu_close(&out[2].rd); /* its reader goes: removed */
		assert_int_equal(write(src.wr, buf, 40000), 40000);
		zcio_fanout_pump(f, 0, NULL);
		zcio_fanout_free(f);
		tu_channel_close(&src);
		for (int i = 0; i < 3; i++)
			tu_channel_close(&out[i]);
	}
	zcio_pool_flush();
	zcio_pool_stats(&after);
	assert_int_equal(tu_count_fds(), fds);
	assert_int_equal(after.live, before.live);
}

static void test_bad_arguments(void **state)
{
	struct zcio_fanout *f = NULL;
	struct zcio_fanout_dest info;
	int p[2];

	(void)state;
	assert_int_equal(zcio_fanout_new(0, NULL, NULL), -EINVAL);
	assert_int_equal(zcio_fanout_new(-1, NULL, &f), -EBADF);
	assert_null(f);
	p[0] = open("/", O_RDONLY | O_CLOEXEC);
	assert_int_equal(zcio_fanout_new(p[0], NULL, &f), -EISDIR);
	close(p[0]);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(zcio_fanout_new(p[0], NULL, &f), 0);
	assert_int_equal(zcio_fanout_add(f, p[1], 1u << 7), -EINVAL);
	assert_int_equal(zcio_fanout_add(f, -1, 0), -EBADF);
	assert_int_equal(zcio_fanout_add(NULL, p[1], 0), -EINVAL);
	assert_int_equal(zcio_fanout_remove(f, 42, NULL), -ENOENT);
	assert_int_equal(zcio_fanout_dest(f, 0, &info), -ENOENT);
	assert_int_equal(zcio_fanout_removed(f, &info), 0);
	assert_int_equal(zcio_fanout_pump(NULL, 0, NULL), -EINVAL);
	assert_int_equal(zcio_fanout_position(NULL), 0);
	assert_int_equal(zcio_fanout_count(NULL), 0);
	assert_int_equal(zcio_fanout_source_done(NULL), 0);
	assert_int_equal(zcio_fanout_source_done(f), 0);
	zcio_fanout_free(NULL);
	/* Ids are never reused. */
	assert_int_equal(zcio_fanout_add(f, p[1], 0), 0);
	assert_int_equal(zcio_fanout_remove(f, 0, NULL), 0);
	assert_int_equal(zcio_fanout_add(f, p[1], 0), 1);
	/* The source ends: the destination is done, the pump says 0. */
	close(p[1]);
	assert_int_equal(zcio_fanout_pump(f, 0, NULL), 0);
	assert_int_equal(zcio_fanout_source_done(f), 1);
	assert_int_equal(zcio_fanout_dest(f, 1, &info), 0);
	assert_int_equal(info.state, ZCIO_FANOUT_DONE);
	zcio_fanout_free(f);
	close(p[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_to_sixteen_mixed_destinations),
		cmocka_unit_test(test_file_and_socket_sources),
		cmocka_unit_test(test_copy_baseline_is_exact),
		cmocka_unit_test(test_small_pipes_many_rounds),
		cmocka_unit_test(test_closing_destination_leaves_others_whole),
		cmocka_unit_test(test_block_waits_for_stalled_without_spinning),
		cmocka_unit_test(test_drop_removes_stalled_within_a_pipe),
		cmocka_unit_test(test_drop_waits_for_the_delay),
		cmocka_unit_test(test_late_joiners_get_exactly_the_rest),
		cmocka_unit_test(test_remove_while_running),
		cmocka_unit_test(test_no_destination_discards),
		cmocka_unit_test(test_edge_triggered_epoll_never_stalls),
		cmocka_unit_test(test_pollfds_name_what_blocked),
		cmocka_unit_test(test_no_pipe_copies),
		cmocka_unit_test(test_copy_route_destinations),
		cmocka_unit_test(test_tee_missing_or_forbidden_copies),
		cmocka_unit_test(test_no_fd_or_pipe_leak),
		cmocka_unit_test(test_bad_arguments),
	};

	tu_init(300);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
