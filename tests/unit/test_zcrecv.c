/*
 * test_zcrecv.c - zcio_zcrecv: TCP_ZEROCOPY_RECEIVE into a mapped window,
 * recv() for what cannot be mapped, one call for both.
 *
 * A sender thread writes a deterministic stream; the test receives it with
 * zcio_zcrecv_next() and checks every byte of every view, and checks which
 * way (mapped or copied) the bytes came.  Over loopback, pages sent with
 * MSG_ZEROCOPY are copied on delivery into fresh whole pages, which the
 * kernel can map; pages sent with write() sit in compound page fragments,
 * which it cannot, so those arrive by copy.
 */
#include <sys/wait.h>

#include "testutil.h"

#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY 0x4000000
#endif
#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY 60
#endif

struct tx {
	int fd;
	const uint8_t *data;
	size_t len, msg;
	bool zerocopy;
	unsigned delay_us;
	pthread_t th;
};

/* Send everything, with MSG_ZEROCOPY when asked (the buffer never changes,
 * so completions need not be awaited), then close. */
static void *tx_main(void *arg)
{
	struct tx *t = arg;
	size_t off = 0;
	int one = 1;

	tu_block_test_signals();
	if (t->zerocopy)
		setsockopt(t->fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one));
	while (off < t->len) {
		size_t n = t->len - off < t->msg ? t->len - off : t->msg;
		ssize_t s = send(t->fd, t->data + off, n, MSG_NOSIGNAL | (t->zerocopy ? MSG_ZEROCOPY : 0));

		if (s < 0 && errno == ENOBUFS)
			s = send(t->fd, t->data + off, n, MSG_NOSIGNAL);
		if (s <= 0)
			break;
		off += (size_t)s;
		if (t->delay_us)
			tu_sleep_us(t->delay_us);
	}
	close(t->fd);
	return NULL;
}

/* Receive len bytes with zr (views of at most max), compare with expect. */
static void receive_all(struct zcio_zcrecv *zr, int fd, const uint8_t *expect, size_t len,
			size_t max, struct zcio_stats *st)
{
	size_t got = 0;

	for (;;) {
		const void *p;
		int64_t n = zcio_zcrecv_next(zr, &p, max, st);

		if (n == -EAGAIN) {
			assert_int_equal(st->wait, ZCIO_WAIT_IN);
			assert_true(tu_wait_fd(fd, POLLIN, 10000) == 1);
			continue;
		}
		assert_true(n >= 0);
		if (n == 0)
			break;
		assert_true(max == 0 || (size_t)n <= max);
		assert_true(got + (size_t)n <= len);
		if (memcmp(p, expect + got, (size_t)n) != 0) {
			size_t i = 0;

			while (((const uint8_t *)p)[i] == expect[got + i])
				i++;
			fail_msg("byte %zu differs", got + i);
		}
		got += (size_t)n;
	}
	assert_int_equal(got, len);
	assert_int_equal(st->bytes, len);
	assert_int_equal(st->path_bytes[ZCIO_PATH_ZEROCOPY_RECV] + st->path_bytes[ZCIO_PATH_COPY], len);
}

static void stream(bool zerocopy_sender, bool nonblock, const struct zcio_opts *o, size_t max,
		   struct zcio_stats *st)
{
	size_t len = 32 * TU_MIB;
	uint8_t *data = tu_data(len, 55);
	struct tx t = { .data = data, .len = len, .msg = 1 * TU_MIB, .zerocopy = zerocopy_sender };
	struct zcio_zcrecv *zr;
	int rd;

	tu_tcp_pair(&rd, &t.fd);
	if (nonblock)
		tu_set_nonblock(rd, true);
	assert_int_equal(zcio_zcrecv_new(rd, o, &zr), 0);
	assert_int_equal(pthread_create(&t.th, NULL, tx_main, &t), 0);
	receive_all(zr, rd, data, len, max, st);
	pthread_join(t.th, NULL);
	zcio_zcrecv_free(zr);
	close(rd);
	tu_print_stats(st);
	free(data);
}

static bool have_zerocopy_receive(void)
{
	struct zcio_features f;

	return zcio_probe(&f) == 0 && (f.have & ZCIO_HAVE_ZEROCOPY_RECV);
}

/* A MSG_ZEROCOPY sender over loopback: the receiver maps most of it. */
static void zerocopy_sender_pages_are_mapped(void **state)
{
	struct zcio_stats st = { 0 };

	(void)state;
	if (!have_zerocopy_receive()) {
		printf("# SKIP: no TCP_ZEROCOPY_RECEIVE\n");
		skip();
	}
	stream(true, false, NULL, 0, &st);
	assert_true(st.path_bytes[ZCIO_PATH_ZEROCOPY_RECV] > st.bytes / 2);
}

static void nonblocking_socket_eagain_then_maps(void **state)
{
	struct zcio_stats st = { 0 };

	(void)state;
	if (!have_zerocopy_receive()) {
		printf("# SKIP: no TCP_ZEROCOPY_RECEIVE\n");
		skip();
	}
	stream(true, true, NULL, 0, &st);
	assert_true(st.path_bytes[ZCIO_PATH_ZEROCOPY_RECV] > 0);
}

/* Views cut to max bytes still add up to the stream, mapped or not. */
static void small_views_of_mapped_pages(void **state)
{
	struct zcio_stats st = { 0 };

	(void)state;
	stream(true, false, NULL, 10000, &st);
}

/* write() sender: nothing mappable; everything arrives by copy, and
 * the zcrecv stops asking after a while. */
static void write_sender_arrives_by_copy(void **state)
{
	struct zcio_stats st = { 0 };

	(void)state;
	stream(false, false, NULL, 0, &st);
	assert_true(st.path_bytes[ZCIO_PATH_COPY] > 0);
}

static void forced_copy_never_maps(void **state)
{
	struct zcio_opts o = { .flags = ZCIO_F_COPY };
	struct zcio_stats st = { 0 };

	(void)state;
	stream(true, false, &o, 0, &st);
	assert_int_equal(st.path_bytes[ZCIO_PATH_ZEROCOPY_RECV], 0);
}

static void unix_socket_copies(void **state)
{
	size_t len = 4 * TU_MIB;
	uint8_t *data = tu_data(len, 56);
	struct tx t = { .data = data, .len = len, .msg = 256 * 1024 };
	struct zcio_stats st = { 0 };
	struct zcio_zcrecv *zr;
	int s[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	t.fd = s[1];
	assert_int_equal(zcio_zcrecv_new(s[0], NULL, &zr), 0);
	assert_int_equal(pthread_create(&t.th, NULL, tx_main, &t), 0);
	receive_all(zr, s[0], data, len, 0, &st);
	pthread_join(t.th, NULL);
	assert_int_equal(st.path_bytes[ZCIO_PATH_COPY], len);
	zcio_zcrecv_free(zr);
	close(s[0]);
	free(data);
}

static void reset_by_peer_is_an_error(void **state)
{
	struct zcio_zcrecv *zr;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	const void *p;
	int rd, wr;
	int64_t n;

	(void)state;
	tu_tcp_pair(&rd, &wr);
	assert_int_equal(zcio_zcrecv_new(rd, NULL, &zr), 0);
	assert_int_equal(setsockopt(wr, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(wr); /* RST */
	assert_int_equal(tu_wait_fd(rd, POLLIN, 5000), 1);
	n = zcio_zcrecv_next(zr, &p, 0, NULL);
	assert_int_equal(n, -ECONNRESET);
	zcio_zcrecv_free(zr);
	close(rd);
}

static void bad_arguments(void **state)
{
	struct zcio_zcrecv *zr;
	const void *p;
	int fd = tu_file(NULL, 0), rd, wr;

	(void)state;
	assert_int_equal(zcio_zcrecv_new(fd, NULL, &zr), -ENOTSOCK);
	assert_int_equal(zcio_zcrecv_new(-1, NULL, &zr), -EBADF);
	tu_tcp_pair(&rd, &wr);
	assert_int_equal(zcio_zcrecv_new(rd, NULL, NULL), -EINVAL);
	assert_int_equal(zcio_zcrecv_new(rd, NULL, &zr), 0);
	assert_int_equal(zcio_zcrecv_next(zr, NULL, 0, NULL), -EINVAL);
	assert_int_equal(zcio_zcrecv_next(NULL, &p, 0, NULL), -EINVAL);
	close(wr);
	assert_int_equal(zcio_zcrecv_next(zr, &p, 0, NULL), 0); /* end of stream */
	zcio_zcrecv_free(zr);
	zcio_zcrecv_free(NULL);
	close(rd);
	close(fd);
}

static void no_fd_leak_over_1000_zcrecvs(void **state)
{
	int rd, wr, before, i;

	(void)state;
	tu_tcp_pair(&rd, &wr);
	before = tu_count_fds();
	for (i = 0; i < 1000; i++) {
		struct zcio_zcrecv *zr;
		const void *p;

		assert_int_equal(zcio_zcrecv_new(rd, NULL, &zr), 0);
		assert_int_equal(write(wr, "abc", 3), 3);
		assert_int_equal(zcio_zcrecv_next(zr, &p, 0, NULL), 3);
		assert_memory_equal(p, "abc", 3);
		zcio_zcrecv_free(zr);
	}
	assert_int_equal(tu_count_fds(), before);
	close(rd);
	close(wr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(zerocopy_sender_pages_are_mapped),
		cmocka_unit_test(nonblocking_socket_eagain_then_maps),
		cmocka_unit_test(small_views_of_mapped_pages),
		cmocka_unit_test(write_sender_arrives_by_copy),
		cmocka_unit_test(forced_copy_never_maps),
		cmocka_unit_test(unix_socket_copies),
		cmocka_unit_test(reset_by_peer_is_an_error),
		cmocka_unit_test(bad_arguments),
		cmocka_unit_test(no_fd_leak_over_1000_zcrecvs),
	};

	tu_init(300);
	return cmocka_run_group_tests_name("zcrecv", tests, NULL, NULL);
}
