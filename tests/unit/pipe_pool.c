/*
 * pipe_pool.c - the pool of pipes zcio uses as kernel buffers (src/pipe.h,
 * src/thread.h).
 *
 * Pipes are created close-on-exec and nonblocking; a clean pipe given back
 * is reused by the same thread, a dirty one (bytes != 0) is closed; pools
 * are per thread and emptied at thread exit; a cap on live pipes, a file
 * descriptor limit or pipe-user-pages-soft exhaustion all degrade a
 * socket->file copy to read/write (reason "no pipe") without losing a
 * byte; after fork() the child holds none of the parent's pipes, and both
 * processes copy at once without mixing bytes; and 10,000 copies leak no
 * file descriptor.
 *
 * Pipes are told apart by inode (fstat), not by fd number: a closed pipe's
 * numbers are handed out again to the next one.
 */
#include <grp.h>
#include <inttypes.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "pipe.h"
#include "testutil.h"
#include "thread.h"

static ino_t inode_of(int fd)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return 0;
	return st.st_ino;
}

static struct zcio_pool_stats pool(void)
{
	struct zcio_pool_stats ps;

	assert_int_equal(zcio_pool_stats(&ps), 0);
	return ps;
}

/*
 * Copy `size` bytes from a unix stream socket to a file: a route that needs
 * a pool pipe (splice in and out of it).  Returns the result of zcio_copy()
 * after checking that the file holds exactly the bytes sent.
 */
static int64_t socket_to_file(size_t size, uint64_t seed, const struct zcio_opts *opts,
			      struct zcio_stats *st, int out)
{
	uint8_t *data = tu_data(size, seed);
	uint8_t *back = malloc(size ? size : 1);
	int sp[2];
	int64_t r;
	bool same;

	if (!back || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0)
		abort();
	if (tu_write_all(sp[1], data, size) != 0)
		abort();
	shutdown(sp[1], SHUT_WR);
	if (ftruncate(out, 0) != 0 || lseek(out, 0, SEEK_SET) != 0)
		abort();
	r = zcio_copy(sp[0], out, ZCIO_TO_EOF, opts, st);
	same = pread(out, back, size, 0) == (ssize_t)size && memcmp(back, data, size) == 0 &&
	       lseek(out, 0, SEEK_END) == (off_t)size;
	close(sp[0]);
	close(sp[1]);
	free(data);
	free(back);
	return same ? r : -EBADMSG;
}

/* The same with a producer thread writing the bytes while they are copied,
 * so that a copy lasts long enough to overlap with another process's. */
static int64_t socket_to_file_streamed(size_t size, uint64_t seed, const struct zcio_opts *opts,
				       struct zcio_stats *st, int out)
{
	uint8_t *data = tu_data(size, seed);
	uint8_t *back = malloc(size);
	struct tu_producer prod;
	int sp[2];
	int64_t r;
	bool same;

	if (!back || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0)
		abort();
	if (ftruncate(out, 0) != 0 || lseek(out, 0, SEEK_SET) != 0)
		abort();
	prod = (struct tu_producer){ .fd = sp[1], .data = data, .len = size, .chunk = 32 * TU_KIB };
	if (pthread_create(&prod.th, NULL, tu_producer_main, &prod) != 0)
		abort();
	r = zcio_copy(sp[0], out, ZCIO_TO_EOF, opts, st);
	close(sp[0]);
	pthread_join(prod.th, NULL);
	same = pread(out, back, size, 0) == (ssize_t)size && memcmp(back, data, size) == 0 &&
	       lseek(out, 0, SEEK_END) == (off_t)size;
	free(data);
	free(back);
	return same ? r : -EBADMSG;
}

/* ---- single-thread rules --------------------------------------------------- */

static void pool_pipes_are_cloexec_nonblocking_and_sized(void **state)
{
	struct zcio__pipe p = ZCIO__PIPE_NONE;
	uint64_t max = 0;
	FILE *f = fopen("/proc/sys/fs/pipe-max-size", "r");

	(void)state;
	if (f) {
		if (fscanf(f, "%" SCNu64, &max) != 1)
			max = 0;
		fclose(f);
	}
	zcio_pool_flush();
	assert_int_equal(zcio__pipe_get(&p, 0), 0);
	assert_true(p.rd >= 0 && p.wr >= 0);
	assert_true(fcntl(p.rd, F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(p.wr, F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(p.rd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(p.wr, F_GETFL) & O_NONBLOCK);
	assert_int_equal(p.bytes, 0);
	assert_int_equal(p.cap, (uint32_t)fcntl(p.wr, F_GETPIPE_SZ));
	/* The default: 1 MiB, or pipe-max-size when that is smaller. */
	assert_int_equal(p.cap, max && max < TU_MIB ? max : TU_MIB);
	assert_int_equal(p.gen, zcio__fork_generation());
	zcio__pipe_put(&p);
	assert_int_equal(p.rd, -1);
	zcio_pool_flush();
}

static void clean_pipe_given_back_is_reused_by_the_same_thread(void **state)
{
	struct zcio__pipe p = ZCIO__PIPE_NONE, q = ZCIO__PIPE_NONE;
	struct zcio_pool_stats a, b, c;
	int rd, wr;
	ino_t ino;

	(void)state;
	zcio_pool_flush();
	a = pool();
	assert_int_equal(a.idle, 0);
	assert_int_equal(zcio__pipe_get(&p, 0), 0);
	rd = p.rd;
	wr = p.wr;
	ino = inode_of(p.rd);
	b = pool();
	assert_int_equal(b.live, a.live + 1);
	assert_int_equal(b.created, a.created + 1);
	zcio__pipe_put(&p);
	c = pool();
	assert_int_equal(c.idle, 1);
	assert_int_equal(c.live, b.live);
	assert_true(tu_fd_open(rd) && tu_fd_open(wr));

	assert_int_equal(zcio__pipe_get(&q, 0), 0);
	assert_int_equal(q.rd, rd);
	assert_int_equal(q.wr, wr);
	assert_int_equal(inode_of(q.rd), ino);
	assert_int_equal(pool().reused, c.reused + 1);
	assert_int_equal(pool().idle, 0);
	zcio__pipe_put(&q);
	zcio_pool_flush();
	assert_false(tu_fd_open(rd));
	assert_int_equal(pool().live, a.live);
}

static void dirty_pipe_given_back_is_closed_not_reused(void **state)
{
	struct zcio__pipe p = ZCIO__PIPE_NONE, q = ZCIO__PIPE_NONE;
	struct zcio_pool_stats a, b;
	int rd, wr;
	ino_t ino;

	(void)state;
	zcio_pool_flush();
	assert_int_equal(zcio__pipe_get(&p, 0), 0);
	a = pool();
	rd = p.rd;
	wr = p.wr;
	ino = inode_of(p.rd);
	assert_int_equal(write(p.wr, "x", 1), 1);
	p.bytes = 1;
	zcio__pipe_put(&p);
	b = pool();
	/* Closed: both fds gone, one live pipe less, nothing pooled. */
	assert_false(tu_fd_open(rd));
	assert_false(tu_fd_open(wr));
	assert_int_equal(b.live, a.live - 1);
	assert_int_equal(b.idle, 0);

	/* The next pipe is a new, empty one (maybe with the same numbers). */
	assert_int_equal(zcio__pipe_get(&q, 0), 0);
	assert_true(inode_of(q.rd) != ino);
	assert_int_equal(tu_readable(q.rd), 0);
	assert_int_equal(pool().created, b.created + 1);
	assert_int_equal(pool().reused, b.reused);
	zcio__pipe_put(&q);
	zcio_pool_flush();
}

static void killed_pipe_is_closed_whatever_it_holds(void **state)
{
	struct zcio__pipe p = ZCIO__PIPE_NONE;
	struct zcio_pool_stats a;
	int rd;

	(void)state;
	zcio_pool_flush();
	assert_int_equal(zcio__pipe_get(&p, 0), 0);
	a = pool();
	rd = p.rd;
	zcio__pipe_kill(&p);
	assert_int_equal(p.rd, -1);
	assert_false(tu_fd_open(rd));
	assert_int_equal(pool().live, a.live - 1);
	zcio__pipe_kill(&p); /* not held: nothing happens */
	zcio__pipe_put(&p);
	assert_int_equal(pool().live, a.live - 1);
}

/* ---- threads ---------------------------------------------------------------- */

struct pool_thread {
	int npipes;
	ino_t ino[4];
	int fds[8];
	uint32_t idle;
	pthread_barrier_t *got, *go;
	pthread_t th;
};

/* Takes npipes pipes, gives them back (idle in this thread's pool), waits
 * at the barriers, exits. */
static void *pool_thread_main(void *arg)
{
	struct pool_thread *t = arg;
	struct zcio__pipe p[4];
	struct zcio_pool_stats ps;
	int i;

	tu_block_test_signals();
	for (i = 0; i < t->npipes; i++) {
		p[i] = ZCIO__PIPE_NONE;
		if (zcio__pipe_get(&p[i], 0) != 0)
			abort();
		t->ino[i] = inode_of(p[i].rd);
		t->fds[2 * i] = p[i].rd;
		t->fds[2 * i + 1] = p[i].wr;
	}
	for (i = 0; i < t->npipes; i++)
		zcio__pipe_put(&p[i]);
	zcio_pool_stats(&ps);
	t->idle = ps.idle;
	pthread_barrier_wait(t->got);
	pthread_barrier_wait(t->go);
	return NULL;
}

static void pool_is_per_thread_and_emptied_at_thread_exit(void **state)
{
	pthread_barrier_t got, go;
	struct pool_thread t = { .npipes = 3, .got = &got, .go = &go };
	struct zcio__pipe mine = ZCIO__PIPE_NONE;
	struct zcio_pool_stats before, during;
	int i, j;

	(void)state;
	zcio_pool_flush();
	before = pool();
	pthread_barrier_init(&got, NULL, 2);
	pthread_barrier_init(&go, NULL, 2);
	assert_int_equal(pthread_create(&t.th, NULL, pool_thread_main, &t), 0);
	pthread_barrier_wait(&got);

	/* The other thread holds 3 idle pipes; this thread's pool is empty,
	 * and it gets a pipe of its own, none of the other thread's. */
	during = pool();
	assert_int_equal(t.idle, 3);
	assert_int_equal(during.idle, 0);
	assert_int_equal(during.live, before.live + 3);
	assert_int_equal(zcio__pipe_get(&mine, 0), 0);
	for (i = 0; i < 3; i++)
		assert_true(inode_of(mine.rd) != t.ino[i]);
	assert_int_equal(pool().live, before.live + 4);
	assert_int_equal(pool().created, during.created + 1);

	/* The other thread exits: its idle pipes are closed. */
	pthread_barrier_wait(&go);
	pthread_join(t.th, NULL);
	assert_int_equal(pool().live, before.live + 1);
	for (j = 0; j < 6; j++) {
		/* Its fd numbers are closed or, if reused since, belong to
		 * something else: no longer one of its pipes. */
		ino_t ino = inode_of(t.fds[j]);

		for (i = 0; i < 3; i++)
			assert_true(ino != t.ino[i]);
	}
	zcio__pipe_put(&mine);
	zcio_pool_flush();
	assert_int_equal(pool().live, before.live);
	pthread_barrier_destroy(&got);
	pthread_barrier_destroy(&go);
}

/* ---- degrading to copying ------------------------------------------------------ */

static void pool_cap_reached_socket_to_file_copies_with_reason_no_pipe(void **state)
{
	struct zcio_opts opts = tu_opts_zc();
	struct zcio_stats st = { 0 };
	struct zcio__pipe p = ZCIO__PIPE_NONE, none = ZCIO__PIPE_NONE;
	struct zcio_pool_stats ps;
	int out = tu_file(NULL, 0);

	(void)state;
	zcio_pool_flush();
	ps = pool();
	/* No room for one more pipe. */
	assert_int_equal(zcio_pool_set_max(ps.live), 0);
	assert_int_equal(pool().max_live, ps.live ? ps.live : 256);
	if (ps.live == 0) {
		/* 0 means "the default": cap at one pipe, held here. */
		assert_int_equal(zcio_pool_set_max(1), 0);
		assert_int_equal(zcio__pipe_get(&p, 0), 0);
	}
	assert_int_equal(zcio__pipe_get(&none, 0), -ENOBUFS);

	assert_int_equal(socket_to_file(150000, 21, &opts, &st, out), 150000);
	assert_int_equal(st.path_bytes[ZCIO_PATH_COPY], 150000);
	assert_int_equal(st.path_bytes[ZCIO_PATH_SPLICE_PIPE], 0);
	assert_int_equal(st.nfallbacks, 1);
	assert_int_equal(st.fallback[0].from, ZCIO_PATH_SPLICE_PIPE);
	assert_int_equal(st.fallback[0].to, ZCIO_PATH_COPY);
	assert_int_equal(st.fallback[0].reason, ZCIO_WHY_NO_PIPE);
	assert_int_equal(st.fallback[0].at, 0);

	/* Back to the default cap: the pipe route again. */
	zcio__pipe_put(&p);
	assert_int_equal(zcio_pool_set_max(0), 0);
	assert_int_equal(pool().max_live, 256);
	memset(&st, 0, sizeof(st));
	assert_int_equal(socket_to_file(150000, 22, &opts, &st, out), 150000);
	assert_int_equal(st.path_bytes[ZCIO_PATH_SPLICE_PIPE], 150000);
	assert_int_equal(st.nfallbacks, 0);
	zcio_pool_flush();
	close(out);
}

/* Child-process checks: exit with the failing line. */
#define CHILD_CHECK(cond)                                                       \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "child: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			_exit(__LINE__ & 0x7f ? __LINE__ & 0x7f : 1);           \
		}                                                               \
	} while (0)

static void wait_child_ok(pid_t pid)
{
	int status = 0;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		printf("# child status 0x%x\n", status);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void fd_limit_reached_socket_to_file_copies_with_reason_no_pipe(void **state)
{
	int out = tu_file(NULL, 0);
	pid_t pid;

	(void)state;
	zcio_pool_flush();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct zcio_opts opts = tu_opts_zc();
		struct zcio_stats st = { 0 };
		struct rlimit rl;
		int sp[2], fd, lim;
		uint8_t *data = tu_data(100000, 23), *back = malloc(100000);

		CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
		CHILD_CHECK(tu_write_all(sp[1], data, 100000) == 0);
		shutdown(sp[1], SHUT_WR);
		/* Fill the table up to one free slot: pipe2() needs two. */
		lim = 0;
		for (fd = 0; fd < 4096; fd++)
			if (tu_fd_open(fd))
				lim = fd + 1;
		rl = (struct rlimit){ .rlim_cur = (rlim_t)lim + 1, .rlim_max = (rlim_t)lim + 1 };
		CHILD_CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0);
		while (open("/dev/null", O_RDONLY) >= 0)
			;
		CHILD_CHECK(errno == EMFILE);
		{
			int fds[2];

			CHILD_CHECK(pipe2(fds, O_CLOEXEC) == -1 && errno == EMFILE);
		}
		CHILD_CHECK(zcio_copy(sp[0], out, ZCIO_TO_EOF, &opts, &st) == 100000);
		CHILD_CHECK(st.path_bytes[ZCIO_PATH_COPY] == 100000);
		CHILD_CHECK(st.nfallbacks == 1 && st.fallback[0].reason == ZCIO_WHY_NO_PIPE);
		CHILD_CHECK(st.fallback[0].err == EMFILE);
		CHILD_CHECK(pread(out, back, 100000, 0) == 100000);
		CHILD_CHECK(memcmp(back, data, 100000) == 0);
		_exit(0);
	}
	wait_child_ok(pid);
	close(out);
}

/*
 * pipe-user-pages-soft: a user without CAP_SYS_RESOURCE/CAP_SYS_ADMIN who
 * holds that many pipe pages gets new pipes of two pages that cannot grow.
 * A child becomes "nobody", takes 1 MiB pipes until a new one comes out
 * clamped, and then copies socket -> file: byte-exact, by copying, reason
 * "no pipe", and the pool counts the clamped pipe.
 */
static void pipe_user_pages_soft_exhausted_copies_with_reason_no_pipe(void **state)
{
	struct zcio_features f;
	int out;
	pid_t pid;

	(void)state;
	assert_int_equal(zcio_probe(&f), 0);
	if (getuid() != 0) {
		printf("# SKIP: needs root to become another user\n");
		skip();
	}
	if (!f.pipe_user_pages_soft) {
		printf("# SKIP: pipe-user-pages-soft is 0 (unlimited)\n");
		skip();
	}
	out = tu_file(NULL, 0);
	assert_int_equal(fchmod(out, 0666), 0);
	zcio_pool_flush();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct zcio_opts opts = tu_opts_zc();
		struct zcio_stats st = { 0 };
		struct zcio_pool_stats ps;
		struct zcio_features cf;
		uint8_t *data = tu_data(150000, 24), *back = malloc(150000);
		int sp[2], i, clamped_at = -1;

		CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
		CHILD_CHECK(setgroups(0, NULL) == 0);
		CHILD_CHECK(setresgid(65534, 65534, 65534) == 0);
		CHILD_CHECK(setresuid(65534, 65534, 65534) == 0);
		CHILD_CHECK(zcio_probe(&cf) == 0 && cf.pipe_limits_apply == 1);
		for (i = 0; i < 4096 && clamped_at < 0; i++) {
			int fds[2];

			CHILD_CHECK(pipe2(fds, O_CLOEXEC) == 0);
			/* Past the limit a new pipe is born small; before it,
			 * grow it (this fails near the limit: no matter). */
			if (fcntl(fds[1], F_GETPIPE_SZ) < 65536)
				clamped_at = i;
			else
				(void)fcntl(fds[1], F_SETPIPE_SZ, (int)TU_MIB);
		}
		fprintf(stderr, "child: new pipes clamped after %d pipes\n", clamped_at);
		CHILD_CHECK(clamped_at >= 0);
		/* The data goes in only now: a full socket buffer is not
		 * what this tests. */
		CHILD_CHECK(tu_write_all(sp[1], data, 150000) == 0);
		shutdown(sp[1], SHUT_WR);
		CHILD_CHECK(zcio_copy(sp[0], out, ZCIO_TO_EOF, &opts, &st) == 150000);
		CHILD_CHECK(st.path_bytes[ZCIO_PATH_COPY] == 150000);
		CHILD_CHECK(st.path_bytes[ZCIO_PATH_SPLICE_PIPE] == 0);
		CHILD_CHECK(st.nfallbacks == 1);
		CHILD_CHECK(st.fallback[0].from == ZCIO_PATH_SPLICE_PIPE);
		CHILD_CHECK(st.fallback[0].reason == ZCIO_WHY_NO_PIPE);
		CHILD_CHECK(zcio_pool_stats(&ps) == 0 && ps.clamped > 0);
		CHILD_CHECK(pread(out, back, 150000, 0) == 150000);
		CHILD_CHECK(memcmp(back, data, 150000) == 0);
		CHILD_CHECK(lseek(out, 0, SEEK_END) == 150000);
		_exit(0);
	}
	wait_child_ok(pid);
	close(out);
}

/* ---- fork ---------------------------------------------------------------------- */

static bool listed_in_proc_self_fd(int fd)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return stat(path, &st) == 0 || lstat(path, &st) == 0;
}

static void fork_child_holds_none_of_the_parents_pipes(void **state)
{
	struct zcio__pipe idle = ZCIO__PIPE_NONE, held = ZCIO__PIPE_NONE;
	int idle_rd, idle_wr;
	ino_t idle_ino, held_ino;
	pid_t pid;

	(void)state;
	zcio_pool_flush();
	/* One idle pipe in the pool, one held by an operation in flight. */
	assert_int_equal(zcio__pipe_get(&idle, 0), 0);
	assert_int_equal(zcio__pipe_get(&held, 0), 0);
	idle_rd = idle.rd;
	idle_wr = idle.wr;
	idle_ino = inode_of(idle.rd);
	held_ino = inode_of(held.rd);
	zcio__pipe_put(&idle);
	assert_int_equal(pool().idle, 1);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct zcio__pipe q = ZCIO__PIPE_NONE;
		struct zcio_pool_stats ps;
		int held_rd = held.rd, held_wr = held.wr;

		/* The inherited idle pipe was closed in the child. */
		CHILD_CHECK(!listed_in_proc_self_fd(idle_rd));
		CHILD_CHECK(!listed_in_proc_self_fd(idle_wr));
		CHILD_CHECK(zcio_pool_stats(&ps) == 0 && ps.idle == 0);
		/* A pipe the child asks for is new. */
		CHILD_CHECK(zcio__pipe_get(&q, 0) == 0);
		CHILD_CHECK(inode_of(q.rd) != idle_ino && inode_of(q.rd) != held_ino);
		CHILD_CHECK(inode_of(q.wr) == inode_of(q.rd));
		zcio__pipe_put(&q);
		CHILD_CHECK(zcio_pool_stats(&ps) == 0 && ps.idle == 1);
		/* The pipe held across fork() is closed when given back,
		 * not pooled: the parent may still be using it. */
		CHILD_CHECK(held.gen != zcio__fork_generation());
		zcio__pipe_put(&held);
		CHILD_CHECK(!listed_in_proc_self_fd(held_rd));
		CHILD_CHECK(!listed_in_proc_self_fd(held_wr));
		CHILD_CHECK(zcio_pool_stats(&ps) == 0 && ps.idle == 1);
		_exit(0);
	}
	wait_child_ok(pid);
	/* The parent still has both, unchanged. */
	assert_int_equal(pool().idle, 1);
	assert_int_equal(inode_of(idle_rd), idle_ino);
	assert_int_equal(inode_of(held.rd), held_ino);
	zcio__pipe_put(&held);
	assert_int_equal(pool().idle, 2);
	zcio_pool_flush();
}

/* Parent and child copy socket -> file through their pools at the same
 * time, each its own bytes (fed by a thread, so the copies overlap): neither
 * sees the other's. */
static void fork_parent_and_child_copy_concurrently_without_mixing_bytes(void **state)
{
	struct zcio_opts opts = tu_opts_zc();
	struct zcio_stats st = { 0 };
	int out = tu_file(NULL, 0);
	pid_t pid;
	int i;

	(void)state;
	/* Warm the pool so both processes start from an inherited pipe. */
	assert_int_equal(socket_to_file(70000, 30, &opts, &st, out), 70000);
	assert_true(pool().idle >= 1);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int cout = tu_file(NULL, 0);

		for (i = 0; i < 10; i++) {
			struct zcio_stats cst = { 0 };
			size_t n = TU_MIB + (size_t)i * 97;

			CHILD_CHECK(socket_to_file_streamed(n, 1000 + (uint64_t)i, &opts, &cst, cout) ==
				    (int64_t)n);
			CHILD_CHECK(cst.path_bytes[ZCIO_PATH_SPLICE_PIPE] == n);
		}
		_exit(0);
	}
	for (i = 0; i < 10; i++) {
		size_t n = TU_MIB + (size_t)i * 89;

		memset(&st, 0, sizeof(st));
		assert_int_equal(socket_to_file_streamed(n, 5000 + (uint64_t)i, &opts, &st, out),
				 (int64_t)n);
		assert_int_equal(st.path_bytes[ZCIO_PATH_SPLICE_PIPE], n);
	}
	wait_child_ok(pid);
	zcio_pool_flush();
	close(out);
}

/* ---- leaks ---------------------------------------------------------------------- */

static void no_fd_leak_over_10000_copies(void **state)
{
	struct zcio_opts zc = tu_opts_zc();
	struct zcio_pool_stats before, after;
	uint8_t *data = tu_data(3000, 40), *back = malloc(3000);
	int fds_before, fds_after, i;
	int file = tu_file(data, 3000), out = tu_file(NULL, 0);
	struct tu_channel ch;

	(void)state;
	assert_non_null(back);
	tu_channel_open(&ch, TU_PIPE);
	zcio_pool_flush();
	before = pool();
	fds_before = tu_count_fds();
	for (i = 0; i < 10000; i++) {
		struct zcio_stats st = { 0 };
		int64_t r;

		switch (i % 4) {
		case 0: /* socket -> file through a pool pipe */
			r = socket_to_file(3000, (uint64_t)i, &zc, &st, out);
			break;
		case 1: /* file -> pipe, splice */
			r = zcio_copy(file, ch.wr, 3000, &(struct zcio_opts){ .copy_threshold = 1,
				      .flags = ZCIO_F_OFFSET }, &st);
			if (r == 3000 && (tu_read_full(ch.rd, back, 3000) != 3000 ||
					  memcmp(back, data, 3000)))
				r = -EBADMSG;
			break;
		case 2: /* file -> file, copy_file_range */
			assert_int_equal(ftruncate(out, 0), 0);
			assert_int_equal(lseek(out, 0, SEEK_SET), 0);
			r = zcio_copy(file, out, 3000, &(struct zcio_opts){ .copy_threshold = 1,
				      .flags = ZCIO_F_OFFSET }, &st);
			break;
		default: /* socket -> file, copied */
			r = socket_to_file(3000, (uint64_t)i, NULL, &st, out);
			break;
		}
		if (r != 3000)
			printf("# copy %d (kind %d) returned %lld\n", i, i % 4, (long long)r);
		assert_int_equal(r, 3000);
	}
	after = pool();
	/* One pooled pipe served all 2,500 socket copies, and is idle. */
	assert_int_equal(after.created - before.created, 1);
	assert_true(after.reused - before.reused >= 2499);
	assert_int_equal(after.idle, 1);
	assert_int_equal(tu_count_fds(), fds_before + 2);
	zcio_pool_flush();
	fds_after = tu_count_fds();
	assert_int_equal(fds_after, fds_before);
	assert_int_equal(pool().live, before.live);
	tu_channel_close(&ch);
	close(file);
	close(out);
	free(data);
	free(back);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pool_pipes_are_cloexec_nonblocking_and_sized),
		cmocka_unit_test(clean_pipe_given_back_is_reused_by_the_same_thread),
		cmocka_unit_test(dirty_pipe_given_back_is_closed_not_reused),
		cmocka_unit_test(killed_pipe_is_closed_whatever_it_holds),
		cmocka_unit_test(pool_is_per_thread_and_emptied_at_thread_exit),
		cmocka_unit_test(pool_cap_reached_socket_to_file_copies_with_reason_no_pipe),
		cmocka_unit_test(fd_limit_reached_socket_to_file_copies_with_reason_no_pipe),
		cmocka_unit_test(pipe_user_pages_soft_exhausted_copies_with_reason_no_pipe),
		cmocka_unit_test(fork_child_holds_none_of_the_parents_pipes),
		cmocka_unit_test(fork_parent_and_child_copy_concurrently_without_mixing_bytes),
		cmocka_unit_test(no_fd_leak_over_10000_copies),
	};

	tu_init(300);
	return cmocka_run_group_tests_name("pipe_pool", tests, NULL, NULL);
}
