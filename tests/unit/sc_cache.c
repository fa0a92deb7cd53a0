/*
 * sc_cache.c - which syscall failures are remembered process-wide
 * (src/sys.h: zcio__sc_classify, zcio__sc_unavailable, zcio__sc_probe).
 *
 *  - ENOSYS: the kernel lacks the syscall; cached for the whole process,
 *    every thread, and the routes skip it from then on.
 *  - EPERM: ambiguous.  A probe with invalid fds tells: EBADF means the
 *    syscall works and these fds were refused (REFUSED, not cached); EPERM
 *    or ENOSYS from the probe means a seccomp filter (FORBIDDEN, cached).
 *  - EINVAL, EXDEV and the like concern one pair of fds: never cached.
 *  - A first call that moves 0 bytes (procfs and friends) is not EOF, and
 *    not cached either.
 *
 * The kernel here has every syscall, so a missing or forbidden one is made
 * with a seccomp filter in a child process (the filter cannot be removed,
 * which is exactly why caching is safe).  zcio__sc_reset() runs between
 * tests in this process.
 */
#include <stddef.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "sys.h"
#include "testutil.h"
#include "tu_seccomp.h"

static const enum zcio__syscall all_sc[] = {
	ZCIO__SC_SPLICE, ZCIO__SC_TEE, ZCIO__SC_VMSPLICE, ZCIO__SC_SENDFILE,
	ZCIO__SC_COPY_FILE_RANGE,
};
#define NSC (sizeof(all_sc) / sizeof(all_sc[0]))

static int reset(void **state)
{
	(void)state;
	zcio__sc_reset();
	return 0;
}

/* Copy n bytes file -> pipe (threshold 1); checks the bytes read back. */
static int64_t file_to_pipe(size_t n, struct zcio_stats *st)
{
	struct zcio_opts opts = tu_opts_zc();
	uint8_t *data = tu_data(n, n), *back = malloc(n);
	struct tu_channel ch;
	int in = tu_file(data, n);
	int64_t r;

	assert_non_null(back);
	tu_channel_open(&ch, TU_PIPE);
	r = zcio_copy(in, ch.wr, n, &opts, st);
	if (r == (int64_t)n && (tu_read_full(ch.rd, back, n) != (ssize_t)n || memcmp(back, data, n)))
		r = -EBADMSG;
	tu_channel_close(&ch);
	close(in);
	free(data);
	free(back);
	return r;
}

static void probe_finds_every_syscall_on_this_kernel(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NSC; i++) {
		assert_int_equal(zcio__sc_probe(all_sc[i]), -EBADF);
		assert_false(zcio__sc_unavailable(all_sc[i]));
	}
	assert_int_equal(zcio__sc_probe(ZCIO__SC_COUNT), -EINVAL);
}

static void *splice_unavailable_here(void *arg)
{
	*(bool *)arg = zcio__sc_unavailable(ZCIO__SC_SPLICE);
	return NULL;
}

static void enosys_marks_unavailable_process_wide_until_reset(void **state)
{
	struct zcio_stats st = { 0 };
	pthread_t th;
	bool seen_by_other_thread = false;
	size_t i;

	(void)state;
	assert_int_equal(zcio__sc_classify(ZCIO__SC_SPLICE, ENOSYS), ZCIO_WHY_NOSYS);
	assert_true(zcio__sc_unavailable(ZCIO__SC_SPLICE));
	for (i = 0; i < NSC; i++)
		if (all_sc[i] != ZCIO__SC_SPLICE)
			assert_false(zcio__sc_unavailable(all_sc[i]));

	/* Another thread sees it too. */
	assert_int_equal(pthread_create(&th, NULL, splice_unavailable_here, &seen_by_other_thread), 0);
	pthread_join(th, NULL);
	assert_true(seen_by_other_thread);

	/* The route skips splice: file -> pipe is copied, reason NOSYS. */
	assert_int_equal(file_to_pipe(50000, &st), 50000);
	assert_int_equal(st.path_bytes[ZCIO_PATH_COPY], 50000);
	assert_int_equal(st.nfallbacks, 1);
	assert_int_equal(st.fallback[0].from, ZCIO_PATH_SPLICE);
	assert_int_equal(st.fallback[0].to, ZCIO_PATH_COPY);
	assert_int_equal(st.fallback[0].reason, ZCIO_WHY_NOSYS);

	zcio__sc_reset();
	assert_false(zcio__sc_unavailable(ZCIO__SC_SPLICE));
	memset(&st, 0, sizeof(st));
	assert_int_equal(file_to_pipe(50000, &st), 50000);
	assert_int_equal(st.path_bytes[ZCIO_PATH_SPLICE], 50000);
	assert_int_equal(st.nfallbacks, 0);
}

static void eperm_with_working_syscall_is_refused_not_cached(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NSC; i++) {
		/* The probe gets EBADF: the syscall works; these fds were
		 * the problem (immutable file, CIFS). */
		assert_int_equal(zcio__sc_classify(all_sc[i], EPERM), ZCIO_WHY_REFUSED);
		assert_false(zcio__sc_unavailable(all_sc[i]));
	}
}

static void per_fd_errnos_are_never_cached(void **state)
{
	static const int errs[] = { EINVAL, EXDEV, EBADF, EOPNOTSUPP, EIO, EAGAIN, EPIPE };
	size_t i, j;

	(void)state;
	for (i = 0; i < NSC; i++) {
		for (j = 0; j < sizeof(errs) / sizeof(errs[0]); j++) {
			assert_int_equal(zcio__sc_classify(all_sc[i], errs[j]), 0);
			assert_false(zcio__sc_unavailable(all_sc[i]));
		}
	}
}

/* A real EXDEV: copy_file_range from tmpfs to the test directory's
 * filesystem.  The pair falls back to sendfile (reason cross-fs), and the
 * next same-filesystem copy still uses copy_file_range. */
static void exdev_from_another_filesystem_falls_back_and_is_not_cached(void **state)
{
	struct zcio_opts opts = tu_opts_zc();
	struct zcio_stats st = { 0 };
	struct stat a, b;
	char path[128];
	uint8_t *data = tu_data(200000, 77);
	int in, out = tu_file(NULL, 0);

	(void)state;
	snprintf(path, sizeof(path), "/dev/shm/zcio-unit-xdev-%d", (int)getpid());
	in = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (in < 0) {
		printf("# SKIP: no /dev/shm\n");
		close(out);
		free(data);
		skip();
	}
	unlink(path);
	assert_int_equal(fstat(in, &a), 0);
	assert_int_equal(fstat(out, &b), 0);
	if (a.st_dev == b.st_dev) {
		printf("# SKIP: /dev/shm and the test directory are one filesystem\n");
		close(in);
		close(out);
		free(data);
		skip();
	}
	assert_int_equal(pwrite(in, data, 200000, 0), 200000);
	assert_int_equal(zcio_copy(in, out, ZCIO_TO_EOF, &opts, &st), 200000);
	tu_assert_file(out, 0, data, 200000);
	assert_int_equal(st.path_bytes[ZCIO_PATH_SENDFILE], 200000);
	assert_int_equal(st.nfallbacks, 1);
	assert_int_equal(st.fallback[0].from, ZCIO_PATH_COPY_FILE_RANGE);
	assert_int_equal(st.fallback[0].to, ZCIO_PATH_SENDFILE);
	assert_int_equal(st.fallback[0].reason, ZCIO_WHY_CROSS_FS);
	assert_int_equal(st.fallback[0].err, EXDEV);
	assert_false(zcio__sc_unavailable(ZCIO__SC_COPY_FILE_RANGE));
	close(in);

	/* Same filesystem: copy_file_range again. */
	in = tu_file(data, 200000);
	assert_int_equal(ftruncate(out, 0), 0);
	assert_int_equal(lseek(out, 0, SEEK_SET), 0);
	memset(&st, 0, sizeof(st));
	assert_int_equal(zcio_copy(in, out, ZCIO_TO_EOF, &opts, &st), 200000);
	tu_assert_file(out, 0, data, 200000);
	assert_int_equal(st.path_bytes[ZCIO_PATH_COPY_FILE_RANGE], 200000);
	assert_int_equal(st.nfallbacks, 0);
	close(in);
	close(out);
	free(data);
}

/* A real EINVAL: splice refuses /proc/config.gz (st_size > 0, so the route
 * tries it).  Copied, reason refused; a regular file right after splices. */
static void einval_from_a_procfs_file_falls_back_and_is_not_cached(void **state)
{
	struct zcio_opts opts = tu_opts_zc();
	struct zcio_stats st = { 0 };
	struct tu_channel ch;
	struct tu_consumer cons;
	uint8_t *want = malloc(4 * TU_MIB);
	ssize_t n;
	int64_t r;
	int in = open("/proc/config.gz", O_RDONLY | O_CLOEXEC);

	(void)state;
	assert_non_null(want);
	if (in < 0) {
		printf("# SKIP: no /proc/config.gz (CONFIG_IKCONFIG_PROC)\n");
		free(want);
		skip();
	}
	n = tu_read_full(in, want, 4 * TU_MIB);
	assert_true(n > 0);
	assert_int_equal(lseek(in, 0, SEEK_SET), 0);
	tu_channel_open(&ch, TU_PIPE);
	cons = (struct tu_consumer){ .fd = ch.rd, .expect = want, .expect_len = (size_t)n };
	tu_consumer_start(&cons);
	r = zcio_copy(in, ch.wr, ZCIO_TO_EOF, &opts, &st);
	tu_channel_end(&ch);
	tu_consumer_check(&cons);
	assert_int_equal(r, n);
	if (st.nfallbacks == 0) {
		/* This kernel splices it: nothing to learn here. */
		tu_channel_close(&ch);
		close(in);
		free(want);
		printf("# SKIP: this kernel splices /proc/config.gz\n");
		skip();
	}
	assert_int_equal(st.path_bytes[ZCIO_PATH_COPY], (uint64_t)n);
	assert_int_equal(st.fallback[0].from, ZCIO_PATH_SPLICE);
	assert_int_equal(st.fallback[0].reason, ZCIO_WHY_REFUSED);
	assert_int_equal(st.fallback[0].err, EINVAL);
	assert_int_equal(st.fallback[0].at, 0);
	assert_false(zcio__sc_unavailable(ZCIO__SC_SPLICE));
	memset(&st, 0, sizeof(st));
	assert_int_equal(file_to_pipe(50000, &st), 50000);
	assert_int_equal(st.path_bytes[ZCIO_PATH_SPLICE], 50000);
	tu_channel_close(&ch);
	close(in);
	free(want);
}

/* ---- seccomp children ------------------------------------------------------- */

#define CHILD_CHECK(cond)                                                       \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "child: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			_exit(1);                                               \
		}                                                               \
	} while (0)

static void need_seccomp(void)
{
#ifndef TEST_AUDIT_ARCH
	printf("# SKIP: no seccomp test filter for this architecture\n");
	skip();
#endif
}

static void run_child(void (*fn)(void))
{
	int status = 0;
	pid_t pid;

	zcio_pool_flush();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fn();
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		printf("# SKIP: seccomp filters unavailable here\n");
		skip();
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void file_to_file(size_t n, const uint8_t *data, struct zcio_stats *st, int64_t *r)
{
	struct zcio_opts opts = tu_opts_zc();
	uint8_t *back = malloc(n);
	int in = tu_file(data, n), out = tu_file(NULL, 0);

	*r = zcio_copy(in, out, n, &opts, st);
	if (*r == (int64_t)n && (pread(out, back, n, 0) != (ssize_t)n || memcmp(back, data, n)))
		*r = -EBADMSG;
	close(in);
	close(out);
	free(back);
}

static void child_cfr_eperm(void)
{
	struct zcio_stats st1 = { 0 }, st2 = { 0 };
	uint8_t *data = tu_data(300000, 5);
	int64_t r;

	if (tu_deny(SYS_copy_file_range, EPERM) != 0)
		_exit(77);
	CHILD_CHECK(zcio__sc_probe(ZCIO__SC_COPY_FILE_RANGE) == -EPERM);
	file_to_file(300000, data, &st1, &r);
	CHILD_CHECK(r == 300000);
	CHILD_CHECK(st1.path_bytes[ZCIO_PATH_SENDFILE] == 300000);
	CHILD_CHECK(st1.nfallbacks == 1);
	CHILD_CHECK(st1.fallback[0].from == ZCIO_PATH_COPY_FILE_RANGE);
	CHILD_CHECK(st1.fallback[0].to == ZCIO_PATH_SENDFILE);
	CHILD_CHECK(st1.fallback[0].reason == ZCIO_WHY_FORBIDDEN);
	CHILD_CHECK(st1.fallback[0].err == EPERM);
	CHILD_CHECK(zcio__sc_unavailable(ZCIO__SC_COPY_FILE_RANGE));
	CHILD_CHECK(!zcio__sc_unavailable(ZCIO__SC_SENDFILE));
	/* Cached: the next copy does not try copy_file_range again, and
	 * still says why. */
	file_to_file(300000, data, &st2, &r);
	CHILD_CHECK(r == 300000);
	CHILD_CHECK(st2.path_bytes[ZCIO_PATH_SENDFILE] == 300000);
	CHILD_CHECK(st2.syscalls < st1.syscalls);
	CHILD_CHECK(st2.nfallbacks == 1);
	CHILD_CHECK(st2.fallback[0].reason == ZCIO_WHY_FORBIDDEN);
	free(data);
}

static void seccomp_eperm_copy_file_range_is_forbidden_and_cached(void **state)
{
	(void)state;
	need_seccomp();
	run_child(child_cfr_eperm);
}

static void child_splice_enosys(void)
{
	struct zcio_stats st = { 0 };
	struct zcio_opts opts = tu_opts_zc();
	uint8_t *data = tu_data(100000, 6), *back = malloc(100000);
	int sp[2], out = tu_file(NULL, 0);

	if (tu_deny(SYS_splice, ENOSYS) != 0)
		_exit(77);
	CHILD_CHECK(file_to_pipe(60000, &st) == 60000);
	CHILD_CHECK(st.path_bytes[ZCIO_PATH_COPY] == 60000);
	CHILD_CHECK(st.nfallbacks == 1 && st.fallback[0].reason == ZCIO_WHY_NOSYS);
	CHILD_CHECK(st.fallback[0].from == ZCIO_PATH_SPLICE);
	CHILD_CHECK(zcio__sc_unavailable(ZCIO__SC_SPLICE));
	/* socket -> file needs splice too: copied, same reason. */
	CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
	CHILD_CHECK(tu_write_all(sp[1], data, 100000) == 0);
	shutdown(sp[1], SHUT_WR);
	memset(&st, 0, sizeof(st));
	CHILD_CHECK(zcio_copy(sp[0], out, ZCIO_TO_EOF, &opts, &st) == 100000);
	CHILD_CHECK(st.path_bytes[ZCIO_PATH_COPY] == 100000);
	CHILD_CHECK(st.nfallbacks == 1 && st.fallback[0].reason == ZCIO_WHY_NOSYS);
	CHILD_CHECK(st.fallback[0].from == ZCIO_PATH_SPLICE_PIPE);
	CHILD_CHECK(pread(out, back, 100000, 0) == 100000 && memcmp(back, data, 100000) == 0);
	/* sendfile is untouched: file -> socket still uses it. */
	{
		int in = tu_file(data, 100000), sp2[2];

		CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp2) == 0);
		memset(&st, 0, sizeof(st));
		CHILD_CHECK(zcio_copy(in, sp2[1], 100000, &opts, &st) == 100000);
		CHILD_CHECK(st.path_bytes[ZCIO_PATH_SENDFILE] == 100000);
		CHILD_CHECK(tu_read_full(sp2[0], back, 100000) == 100000);
		CHILD_CHECK(memcmp(back, data, 100000) == 0);
	}
	free(data);
	free(back);
}

static void seccomp_enosys_splice_is_nosys_and_cached(void **state)
{
	(void)state;
	need_seccomp();
	run_child(child_splice_enosys);
}

/* copy_file_range missing AND sendfile forbidden: file -> file goes down
 * the whole route to read/write, each step recorded. */
static void child_cfr_enosys_sendfile_eperm(void)
{
	struct zcio_stats st = { 0 };
	uint8_t *data = tu_data(250000, 7);
	int64_t r;

	if (tu_deny(SYS_copy_file_range, ENOSYS) != 0 || tu_deny(SYS_sendfile, EPERM) != 0)
		_exit(77);
	file_to_file(250000, data, &st, &r);
	CHILD_CHECK(r == 250000);
	CHILD_CHECK(st.path_bytes[ZCIO_PATH_COPY] == 250000);
	CHILD_CHECK(st.nfallbacks == 2);
	CHILD_CHECK(st.fallback[0].from == ZCIO_PATH_COPY_FILE_RANGE);
	CHILD_CHECK(st.fallback[0].to == ZCIO_PATH_SENDFILE);
	CHILD_CHECK(st.fallback[0].reason == ZCIO_WHY_NOSYS);
	CHILD_CHECK(st.fallback[1].from == ZCIO_PATH_SENDFILE);
	CHILD_CHECK(st.fallback[1].to == ZCIO_PATH_COPY);
	CHILD_CHECK(st.fallback[1].reason == ZCIO_WHY_FORBIDDEN);
	CHILD_CHECK(zcio__sc_unavailable(ZCIO__SC_COPY_FILE_RANGE));
	CHILD_CHECK(zcio__sc_unavailable(ZCIO__SC_SENDFILE));
	free(data);
}

static void seccomp_whole_file_route_falls_through_to_copy(void **state)
{
	(void)state;
	need_seccomp();
	run_child(child_cfr_enosys_sendfile_eperm);
}

/*
 * procfs, sysfs, overlayfs and old CIFS answer copy_file_range, sendfile or
 * splice with 0 on files that have bytes.  A filter returning 0 (errno 0)
 * makes the same answer here: the first 0 must not be taken as EOF, the
 * route goes on from byte 0 with the next path, and nothing is cached.
 */
static void child_zero_first(void)
{
	struct zcio_opts opts = tu_opts_zc();
	struct zcio_stats st = { 0 };
	uint8_t *data = tu_data(200000, 8), *back = malloc(200000);
	int in = tu_file(data, 200000), out = tu_file(NULL, 0), sp[2];

	if (tu_deny(SYS_copy_file_range, 0) != 0 || tu_deny(SYS_sendfile, 0) != 0)
		_exit(77);
	/* file -> file: copy_file_range says 0, sendfile says 0, copy. */
	CHILD_CHECK(zcio_copy(in, out, ZCIO_TO_EOF, &opts, &st) == 200000);
	CHILD_CHECK(st.path_bytes[ZCIO_PATH_COPY] == 200000);
	CHILD_CHECK(st.nfallbacks == 2);
	CHILD_CHECK(st.fallback[0].from == ZCIO_PATH_COPY_FILE_RANGE);
	CHILD_CHECK(st.fallback[0].reason == ZCIO_WHY_ZERO_FIRST && st.fallback[0].at == 0);
	CHILD_CHECK(st.fallback[1].from == ZCIO_PATH_SENDFILE);
	CHILD_CHECK(st.fallback[1].reason == ZCIO_WHY_ZERO_FIRST && st.fallback[1].at == 0);
	CHILD_CHECK(pread(out, back, 200000, 0) == 200000 && memcmp(back, data, 200000) == 0);
	CHILD_CHECK(lseek(in, 0, SEEK_CUR) == 200000);
	CHILD_CHECK(!zcio__sc_unavailable(ZCIO__SC_COPY_FILE_RANGE));
	CHILD_CHECK(!zcio__sc_unavailable(ZCIO__SC_SENDFILE));
	/* file -> socket by sendfile(): it says 0, copy. */
	CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
	CHILD_CHECK(lseek(in, 0, SEEK_SET) == 0);
	memset(&st, 0, sizeof(st));
	opts.flags |= ZCIO_F_VIA_SENDFILE;
	CHILD_CHECK(zcio_copy(in, sp[1], 150000, &opts, &st) == 150000);
	CHILD_CHECK(st.path_bytes[ZCIO_PATH_COPY] == 150000);
	CHILD_CHECK(st.nfallbacks == 1 && st.fallback[0].reason == ZCIO_WHY_ZERO_FIRST);
	CHILD_CHECK(tu_read_full(sp[0], back, 150000) == 150000 && memcmp(back, data, 150000) == 0);
	free(data);
	free(back);
}

static void child_zero_first_splice(void)
{
	struct zcio_stats st = { 0 };

	if (tu_deny(SYS_splice, 0) != 0)
		_exit(77);
	/* file -> pipe: splice says 0, copy (file_to_pipe checks the bytes). */
	CHILD_CHECK(file_to_pipe(60000, &st) == 60000);
	CHILD_CHECK(st.path_bytes[ZCIO_PATH_COPY] == 60000);
	CHILD_CHECK(st.nfallbacks == 1 && st.fallback[0].reason == ZCIO_WHY_ZERO_FIRST);
	CHILD_CHECK(st.fallback[0].from == ZCIO_PATH_SPLICE);
	CHILD_CHECK(!zcio__sc_unavailable(ZCIO__SC_SPLICE));
}

static void first_call_returning_zero_is_not_eof_file_routes(void **state)
{
	(void)state;
	need_seccomp();
	run_child(child_zero_first);
}

static void first_call_returning_zero_is_not_eof_splice(void **state)
{
	(void)state;
	need_seccomp();
	run_child(child_zero_first_splice);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(probe_finds_every_syscall_on_this_kernel, reset),
		cmocka_unit_test_setup(enosys_marks_unavailable_process_wide_until_reset, reset),
		cmocka_unit_test_setup(eperm_with_working_syscall_is_refused_not_cached, reset),
		cmocka_unit_test_setup(per_fd_errnos_are_never_cached, reset),
		cmocka_unit_test_setup(exdev_from_another_filesystem_falls_back_and_is_not_cached, reset),
		cmocka_unit_test_setup(einval_from_a_procfs_file_falls_back_and_is_not_cached, reset),
		cmocka_unit_test_setup(seccomp_eperm_copy_file_range_is_forbidden_and_cached, reset),
		cmocka_unit_test_setup(seccomp_enosys_splice_is_nosys_and_cached, reset),
		cmocka_unit_test_setup(seccomp_whole_file_route_falls_through_to_copy, reset),
		cmocka_unit_test_setup(first_call_returning_zero_is_not_eof_file_routes, reset),
		cmocka_unit_test_setup(first_call_returning_zero_is_not_eof_splice, reset),
	};

	tu_init(300);
	return cmocka_run_group_tests_name("sc_cache", tests, NULL, NULL);
}
