/*
 * bench_proc.c - the processes of one timed run: spawn them with their
 * stdin/stdout/stderr, wait for all with wait4() to collect each one's CPU
 * time, and measure the wall-clock time of the whole run.  Also the forked
 * helpers (a reading sink, a sendfile source) and the loopback connection.
 *
 * Each run's processes share one new process group, so a timeout or ^C can
 * kill all of them, grandchildren (strace's tracee) included.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define READER_BUF (128u * 1024) /* what coreutils cat reads at a time */

volatile int bench_stop;
static volatile sig_atomic_t alarm_fired;

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double bench_loadavg(void)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double v = -1;

	if (f) {
		if (fscanf(f, "%lf", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static void on_alarm(int sig)
{
	(void)sig;
	alarm_fired = 1;
}

struct bench_shared *bench_shared_get(enum bench_role role)
{
	static struct bench_shared *mem;

	if (!mem) {
		mem = mmap(NULL, sizeof(*mem) * BENCH_ROLES, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED) {
			mem = NULL;
			return NULL;
		}
	}
	return &mem[role];
}

/* In the child: the fds become 0, 1, 2 and nothing else stays open, so no
 * stray copy of a pipe's write end keeps a reader from seeing EOF. */
static void __attribute__((noreturn)) child_start(struct bench_proc *p, pid_t pgid)
{
	sigset_t none;
	int tmp[3];

	setpgid(0, pgid);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	for (int i = 0; i < 3; i++) {
		int fd = p->fd[i];

		/* A FIFO's open blocks until its writer opens it too: done
		 * here, in the child, so the harness never waits on it. */
		if (i == 0 && fd < 0 && p->in_path)
			fd = open(p->in_path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		tmp[i] = fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (tmp[i] < 0)
			_exit(126);
	}
	for (int i = 0; i < 3; i++)
		if (dup2(tmp[i], i) < 0)
			_exit(126);
	close_range(3, UINT_MAX, 0);
	if (p->cwd && chdir(p->cwd) < 0)
		_exit(126);
	if (p->fn)
		_exit(p->fn(p->arg, p->shared) ? 1 : 0);
	execvp(p->argv[0], p->argv);
	fprintf(stderr, "exec %s: %s\n", p->argv[0], strerror(errno));
	_exit(127);
}

static void kill_all(struct bench_proc *p, unsigned n, pid_t pgid)
{
	if (pgid > 0)
		kill(-pgid, SIGKILL);
	for (unsigned i = 0; i < n; i++)
		if (p[i].pid > 0 && !p[i].reaped)
			kill(p[i].pid, SIGKILL);
}

int bench_procs_run(struct bench_proc *p, unsigned n, int *close_fds, unsigned nclose,
		    unsigned timeout_s, double *seconds)
{
	struct sigaction sa = { .sa_handler = on_alarm }, old;
	unsigned left = 0;
	pid_t pgid = 0;
	double t0;
	int r = 0;

	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: the alarm must interrupt wait4(). */
	sigaction(SIGALRM, &sa, &old);
	alarm_fired = 0;

	t0 = bench_now();
	for (unsigned i = 0; i < n; i++) {
		pid_t pid;

		p[i].pid = 0;
		p[i].reaped = false;
		p[i].status = 0;
		memset(&p[i].ru, 0, sizeof(p[i].ru));
		pid = fork();
		if (pid < 0) {
			r = -errno;
			kill_all(p, i, pgid);
			break;
		}
		if (pid == 0)
			child_start(&p[i], pgid);
		/* Also set here, so the group exists before the next fork. */
		setpgid(pid, pgid ? pgid : pid);
		if (!pgid)
			pgid = pid;
		p[i].pid = pid;
		left++;
	}
	/* Our copies of the pipe and socket ends would keep readers from
	 * ever seeing EOF. */
	for (unsigned i = 0; i < nclose; i++) {
		if (close_fds[i] >= 0)
			close(close_fds[i]);
		close_fds[i] = -1;
	}
	if (!r)
		alarm(timeout_s);
	while (left) {
		struct rusage ru;
		int status;
		/* Only this run's group: servers the caller started stay
		 * unreaped until it stops them, with their CPU time. */
		pid_t pid = wait4(-pgid, &status, 0, &ru);

		if (pid < 0) {
			if (errno == EINTR) {
				if (alarm_fired || bench_stop) {
					if (!r)
						r = bench_stop ? -EINTR : -ETIMEDOUT;
					kill_all(p, n, pgid);
				}
				continue;
			}
			if (!r)
				r = -errno;
			break;
		}
		for (unsigned i = 0; i < n; i++) {
			if (p[i].pid == pid && !p[i].reaped) {
				p[i].reaped = true;
				p[i].status = status;
				p[i].ru = ru;
				left--;
			}
		}
	}
	*seconds = bench_now() - t0;
	alarm(0);
	sigaction(SIGALRM, &old, NULL);
	return r;
}

double bench_proc_cpu(const struct bench_proc *p)
{
	return (double)p->ru.ru_utime.tv_sec + (double)p->ru.ru_utime.tv_usec * 1e-6 +
	       (double)p->ru.ru_stime.tv_sec + (double)p->ru.ru_stime.tv_usec * 1e-6;
}

bool bench_proc_ok(const struct bench_proc *p)
{
	return p->reaped && WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0;
}

const char *bench_proc_status(const struct bench_proc *p, char *buf, size_t len)
{
	if (!p->reaped)
		snprintf(buf, len, "not reaped");
	else if (WIFEXITED(p->status))
		snprintf(buf, len, "exit %d", WEXITSTATUS(p->status));
	else if (WIFSIGNALED(p->status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(p->status),
			 strsignal(WTERMSIG(p->status)));
	else
		snprintf(buf, len, "status 0x%x", (unsigned)p->status);
	return buf;
}

int bench_reader(void *arg, struct bench_shared *sh)
{
	const struct bench_reader_arg *a = arg;
	struct bench_hash h;
	uint64_t total = 0;
	char *buf = malloc(READER_BUF);

	if (!buf) {
		sh->err = ENOMEM;
		return 1;
	}
	bench_hash_init(&h);
	for (;;) {
		ssize_t n = read(0, buf, READER_BUF);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			sh->err = errno;
			return 1;
		}
		if (n == 0)
			break;
		if (a && a->pattern && !bench_pattern_matches(total, (unsigned char *)buf, (size_t)n)) {
			/* Reported as a wrong count: the caller compares it. */
			sh->err = EBADMSG;
			sh->bytes = total;
			return 1;
		}
		if (a && a->hash)
			bench_hash_update(&h, buf, (size_t)n);
		total += (uint64_t)n;
	}
	sh->bytes = total;
	sh->hash = bench_hash_final(&h);
	return 0;
}

int bench_sender(void *arg, struct bench_shared *sh)
{
	const char *path = arg;
	uint64_t total = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		sh->err = errno;
		return 1;
	}
	/* sendfile: the cheapest way to feed a socket, the same for every
	 * tool on the other end. */
	for (;;) {
		ssize_t n = sendfile(1, fd, NULL, 1u << 30);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			sh->err = errno;
			return 1;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
	}
	sh->bytes = total;
	return 0;
}

int bench_tcp_pair(int *client, int *server)
{
	static int listener = -1;
	static struct sockaddr_in addr;
	socklen_t alen = sizeof(addr);
	int c, s;

	if (listener < 0) {
		listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (listener < 0)
			return -errno;
		addr.sin_family = AF_INET;
		addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		addr.sin_port = 0;
		if (bind(listener, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
		    getsockname(listener, (struct sockaddr *)&addr, &alen) < 0 ||
		    listen(listener, 4) < 0) {
			int e = -errno;

			close(listener);
			listener = -1;
			return e;
		}
	}
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0)
		return -errno;
	/* Loopback: connect completes against the backlog before accept. */
	if (connect(c, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int e = -errno;

		close(c);
		return e;
	}
	s = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0) {
		int e = -errno;

		close(c);
		return e;
	}
	*client = c;
	*server = s;
	return 0;
}

double bench_median(const double *v, unsigned n)
{
	double *s;
	double m;

	if (!n)
		return 0.0 / 0.0;
	s = malloc(n * sizeof(*s));
	if (!s)
		return 0.0 / 0.0;
	memcpy(s, v, n * sizeof(*s));
	for (unsigned i = 1; i < n; i++) {
		double x = s[i];
		unsigned j = i;

		for (; j > 0 && s[j - 1] > x; j--)
			s[j] = s[j - 1];
		s[j] = x;
	}
	m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	free(s);
	return m;
}

int bench_which(const char *prog, char *out, size_t len)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (strchr(prog, '/')) {
		if (access(prog, X_OK) < 0)
			return -errno;
		snprintf(out, len, "%s", prog);
		return 0;
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *end = strchr(path, ':');
		size_t dl = end ? (size_t)(end - path) : strlen(path);
		struct stat sb;

		/* An empty PATH element means the current directory. */
		if (dl)
			snprintf(buf, sizeof(buf), "%.*s/%s", (int)dl, path, prog);
		else
			snprintf(buf, sizeof(buf), "./%s", prog);
		if (stat(buf, &sb) == 0 && S_ISREG(sb.st_mode) && access(buf, X_OK) == 0) {
			snprintf(out, len, "%s", buf);
			return 0;
		}
		path += dl;
		if (*path == ':')
			path++;
	}
	return -ENOENT;
}
