/*
 * bench_svc.c - servers under test for the service scenarios (relay,
 * serve, tee, broadcast): the stream pattern they all move, starting a
 * server and knowing when it is ready, what its whole process tree costs
 * (CPU, memory, fds, pipes held), and stopping it so that wait4() hands
 * over the CPU time of every process it ever ran.
 *
 * CPU accounting: a server's CPU time for a run is the wait4() rusage of
 * the server process once stopped (which includes every child it reaped:
 * nginx's and lighttpd's workers, socat's per-connection processes), less
 * the CPU its tree had used once it was ready, read from /proc/PID/stat
 * (utime + stime + cutime + cstime of the server and of its descendants
 * alive then).  Start-up is left out; shutdown, a few milliseconds, is in.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"

/* Not a multiple of the page size, so that where the pattern wraps moves
 * around within pages and a stream shifted by a page cannot pass. */
#define PATTERN_LEN ((8u << 20) + 4093u)

struct bench_pattern bench_pattern = { .fd = -1 };

int bench_pattern_make(struct bench_config *cfg)
{
	struct bench_pattern *p = &bench_pattern;
	void *map;
	int r;

	if (p->map)
		return 0;
	snprintf(p->path, sizeof(p->path), "%s/pattern", cfg->dir);
	r = bench_file_create(p->path, PATTERN_LEN, 77, true);
	if (r < 0)
		return r;
	p->fd = open(p->path, O_RDONLY | O_CLOEXEC);
	if (p->fd < 0)
		return -errno;
	map = mmap(NULL, PATTERN_LEN, PROT_READ, MAP_SHARED | MAP_POPULATE, p->fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	p->map = map;
	p->len = PATTERN_LEN;
	return 0;
}

bool bench_pattern_matches(uint64_t pos, const unsigned char *buf, size_t n)
{
	const struct bench_pattern *p = &bench_pattern;
	uint64_t at = pos % p->len;

	while (n) {
		size_t k = p->len - at < n ? (size_t)(p->len - at) : n;

		if (memcmp(p->map + at, buf, k))
			return false;
		buf += k;
		n -= k;
		at = 0;
	}
	return true;
}

bool bench_pattern_file_ok(const char *path, uint64_t len)
{
	unsigned char *buf = malloc(1u << 20);
	uint64_t pos = 0;
	bool ok = true;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || !buf) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return false;
	}
	for (;;) {
		ssize_t n = read(fd, buf, 1u << 20);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ok = ok && n == 0;
			break;
		}
		if (!bench_pattern_matches(pos, buf, (size_t)n)) {
			ok = false;
			break;
		}
		pos += (uint64_t)n;
	}
	close(fd);
	free(buf);
	return ok && pos == len;
}

/*
 * The source of a stream: splice() the page-cached pattern into a pipe, or
 * sendfile() it into a socket, so the source copies nothing and costs as
 * little as a source can.  (It runs forked, after the child closed every
 * fd but 0-2: the pattern is opened again.)
 */
int bench_pattern_source(void *arg, struct bench_shared *sh)
{
	uint64_t want = *(const uint64_t *)arg, done = 0;
	struct stat sb;
	int fd = open(bench_pattern.path, O_RDONLY | O_CLOEXEC);
	bool is_pipe = fstat(1, &sb) == 0 && S_ISFIFO(sb.st_mode);
	loff_t off = 0;

	if (fd < 0) {
		sh->err = errno;
		return 1;
	}
	while (done < want) {
		size_t n = want - done;
		ssize_t k;

		if ((uint64_t)off >= bench_pattern.len)
			off = 0;
		if (n > bench_pattern.len - (uint64_t)off)
			n = (size_t)(bench_pattern.len - (uint64_t)off);
		if (is_pipe) {
			k = splice(fd, &off, 1, NULL, n, SPLICE_F_MORE);
		} else {
			off_t o = off;

			k = sendfile(1, fd, &o, n);
			if (k < 0 && (errno == EINVAL || errno == ENOSYS)) {
				/* Not a socket nor a pipe: plain writes. */
				k = write(1, bench_pattern.map + off, n);
			}
			if (k > 0)
				off += k;
			else if (k == 0)
				k = -1, errno = EIO;
		}
		if (k < 0) {
			if (errno == EINTR)
				continue;
			sh->err = errno;
			sh->bytes = done;
			return 1;
		}
		if (k == 0) {
			sh->err = EIO;
			return 1;
		}
		done += (uint64_t)k;
	}
	sh->bytes = done;
	close(fd);
	return 0;
}

/* ---- ports ---- */

/*
 * Ports for servers come from below the ephemeral range (from
 * ip_local_port_range): a port picked there could be taken by any
 * client's connect() (relay-idle alone makes 10,000) before the server
 * binds it.  The port is bound once to check that it is free.
 */
int bench_free_port(void)
{
	static unsigned seed;
	int lo = 32768;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");

	if (f) {
		if (fscanf(f, "%d", &lo) != 1)
			lo = 32768;
		fclose(f);
	}
	if (lo > 12000)
		lo -= 1; /* ports [10000, lo) */
	else
		lo = 0;
	if (!seed)
		seed = (unsigned)getpid() * 2654435761u;
	for (int tries = 0; lo && tries < 200; tries++) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, port;

		if (fd < 0)
			return -errno;
		seed = seed * 1103515245u + 12345u;
		port = 10000 + (int)((seed >> 8) % (unsigned)(lo - 10000));
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sa.sin_port = htons((uint16_t)port);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && !bench_port_listening(port)) {
			close(fd);
			return port;
		}
		close(fd);
	}
	{
		/* No room below the range: let the kernel pick one. */
		struct sockaddr_in sa = { .sin_family = AF_INET };
		socklen_t len = sizeof(sa);
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

		if (fd < 0)
			return -errno;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
			port = -errno;
			close(fd);
			return port;
		}
		port = ntohs(sa.sin_port);
		close(fd);
		return port;
	}
}

/* /proc/net/tcp: "sl local rem st ...", local "0100007F:1F90", 0A = LISTEN. */
bool bench_port_listening(int port)
{
	FILE *f = fopen("/proc/net/tcp", "r");
	char line[512];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned addr, p, st;

		if (sscanf(line, " %*u: %8X:%4X %*8X:%*4X %2X", &addr, &p, &st) == 3 &&
		    (int)p == port && st == 0x0A)
			found = true;
	}
	fclose(f);
	return found;
}

char *bench_expand(const char *tmpl, int port, int target, const char *conf,
		   const struct bench_config *cfg)
{
	char ps[16], ts[16], www[4200];
	size_t cap = strlen(tmpl) + 1, len = 0;
	char *out;

	snprintf(ps, sizeof(ps), "%d", port);
	snprintf(ts, sizeof(ts), "%d", target);
	snprintf(www, sizeof(www), "%s/www", cfg->dir);
	for (const char *s = tmpl; *s; s++)
		if (*s == '@')
			cap += 4200;
	out = malloc(cap);
	if (!out)
		return NULL;
	for (const char *s = tmpl; *s;) {
		static const char *const keys[] = { "@PORT@", "@TARGET@", "@CONF@", "@DIR@", "@WWW@" };
		const char *vals[] = { ps, ts, conf ? conf : "", cfg->dir, www };
		size_t k;

		for (k = 0; k < 5; k++)
			if (!strncmp(s, keys[k], strlen(keys[k])))
				break;
		if (k < 5) {
			len += (size_t)snprintf(out + len, cap - len, "%s", vals[k]);
			s += strlen(keys[k]);
		} else {
			out[len++] = *s++;
		}
	}
	out[len] = '\0';
	return out;
}

/* ---- process trees ---- */

struct pinfo {
	pid_t pid, ppid;
	unsigned long long ticks;  /* utime + stime + cutime + cstime */
};

/* Every process on the machine, from /proc/PID/stat. */
static struct pinfo *procs_scan(size_t *n)
{
	DIR *d = opendir("/proc");
	struct pinfo *v = NULL;
	size_t cap = 0;
	struct dirent *e;

	*n = 0;
	if (!d)
		return NULL;
	while ((e = readdir(d))) {
		char path[300], buf[1024], *p;
		unsigned long long ut, st, cut, cst;
		int ppid, fd;
		ssize_t k;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		k = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (k <= 0)
			continue;
		buf[k] = '\0';
		/* The command name may hold spaces and parentheses. */
		p = strrchr(buf, ')');
		if (!p || sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu",
				 &ppid, &ut, &st, &cut, &cst) != 5)
			continue;
		if (*n == cap) {
			struct pinfo *nv = realloc(v, (cap = cap ? cap * 2 : 512) * sizeof(*v));

			if (!nv)
				break;
			v = nv;
		}
		v[*n].pid = atoi(e->d_name);
		v[*n].ppid = ppid;
		v[*n].ticks = ut + st + cut + cst;
		(*n)++;
	}
	closedir(d);
	return v;
}

/* Mark pid's tree in v (in[i] = true); returns the number of processes. */
static unsigned tree_mark(const struct pinfo *v, size_t n, pid_t pid, bool *in)
{
	unsigned count = 0;
	bool grew = true;

	for (size_t i = 0; i < n; i++) {
		in[i] = v[i].pid == pid;
		count += in[i];
	}
	/* Parents first is not guaranteed: repeat until nothing is added. */
	while (grew) {
		grew = false;
		for (size_t i = 0; i < n; i++) {
			if (in[i])
				continue;
			for (size_t j = 0; j < n; j++) {
				if (in[j] && v[j].pid == v[i].ppid) {
					in[i] = grew = true;
					count++;
					break;
				}
			}
		}
	}
	return count;
}

double bench_tree_cpu(pid_t pid, unsigned *nchildren)
{
	size_t n;
	struct pinfo *v = procs_scan(&n);
	bool *in = v ? calloc(n, sizeof(*in)) : NULL;
	unsigned long long ticks = 0;
	unsigned count = 0;

	if (in) {
		count = tree_mark(v, n, pid, in);
		for (size_t i = 0; i < n; i++)
			if (in[i])
				ticks += v[i].ticks;
	}
	free(in);
	free(v);
	if (nchildren)
		*nchildren = count ? count - 1 : 0;
	return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

static double status_kb(pid_t pid, const char *file, const char *key)
{
	char path[64], line[256];
	size_t kl = strlen(key);
	double v = NAN;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	f = fopen(path, "r");
	if (!f)
		return NAN;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			v = strtod(line + kl + 1, NULL) * 1024.0;
			break;
		}
	}
	fclose(f);
	return v;
}

int bench_tree_mem(pid_t pid, struct bench_mem *m)
{
	size_t n;
	struct pinfo *v = procs_scan(&n);
	bool *in = v ? calloc(n, sizeof(*in)) : NULL;

	memset(m, 0, sizeof(*m));
	if (!in) {
		free(v);
		return -ENOMEM;
	}
	m->procs = tree_mark(v, n, pid, in);
	for (size_t i = 0; i < n; i++) {
		char path[64], link[64];
		struct dirent *e;
		double x;
		DIR *d;

		if (!in[i])
			continue;
		x = status_kb(v[i].pid, "status", "VmRSS");
		m->rss += isnan(x) ? 0 : x;
		x = status_kb(v[i].pid, "smaps_rollup", "Pss");
		m->pss += isnan(x) ? 0 : x;
		snprintf(path, sizeof(path), "/proc/%d/fd", (int)v[i].pid);
		d = opendir(path);
		if (!d)
			continue;
		while ((e = readdir(d))) {
			char lp[400];
			ssize_t k;

			if (e->d_name[0] == '.')
				continue;
			m->fds++;
			snprintf(lp, sizeof(lp), "%s/%s", path, e->d_name);
			k = readlink(lp, link, sizeof(link) - 1);
			if (k <= 0)
				continue;
			link[k] = '\0';
			if (!strncmp(link, "pipe:", 5))
				m->pipes++;
			else if (!strncmp(link, "socket:", 7))
				m->sockets++;
		}
		closedir(d);
	}
	free(in);
	free(v);
	return 0;
}

/* ---- a server's life ---- */

static void sleep_s(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9) };

	nanosleep(&ts, NULL);
}

/* Reap the server if it exited; true when it did. */
static bool svc_reap(struct bench_svc *s, int flags, struct rusage *ru)
{
	int st;
	pid_t r;

	if (s->reaped)
		return true;
	do
		r = wait4(s->pid, &st, flags, ru);
	while (r < 0 && errno == EINTR);
	if (r == s->pid) {
		s->reaped = true;
		s->status = st;
		return true;
	}
	return false;
}

int bench_svc_start(struct bench_svc *s, char *const *argv, int in_fd, int port,
		    const char *ready_file, double timeout_s)
{
	struct rusage ru;
	double until;
	pid_t pid;

	s->reaped = false;
	s->status = 0;
	s->cpu = s->cpu0 = 0;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int out = open(s->errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int in = in_fd >= 0 ? in_fd : open("/dev/null", O_RDONLY | O_CLOEXEC);
		sigset_t none;

		setpgid(0, 0);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGALRM, SIG_DFL);
		if (out < 0 || in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			_exit(126);
		close_range(3, UINT_MAX, 0);
		execvp(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	s->pid = pid;
	until = bench_now() + timeout_s;
	for (;;) {
		if (svc_reap(s, WNOHANG, &ru))
			return -ECHILD;
		if (port > 0 ? bench_port_listening(port) : access(ready_file, F_OK) == 0)
			break;
		if (bench_now() > until || bench_stop)
			return bench_stop ? -EINTR : -ETIMEDOUT;
		sleep_s(0.005);
	}
	s->cpu0 = bench_tree_cpu(pid, NULL);
	return 0;
}

void bench_svc_settle(struct bench_svc *s, unsigned n, double timeout_s)
{
	double until = bench_now() + timeout_s;
	unsigned now;

	while (!s->reaped && bench_now() < until) {
		bench_tree_cpu(s->pid, &now);
		if (now <= n)
			break;
		sleep_s(0.01);
	}
}

int bench_svc_stop(struct bench_svc *s, int sig, double wait_exit, double timeout_s)
{
	struct rusage ru;
	double until;
	int r = 0;

	memset(&ru, 0, sizeof(ru));
	if (!s->pid)
		return -ESRCH;
	until = bench_now() + wait_exit;
	while (wait_exit > 0 && !svc_reap(s, WNOHANG, &ru) && bench_now() < until)
		sleep_s(0.005);
	if (!s->reaped) {
		kill(-s->pid, sig ? sig : SIGTERM);
		until = bench_now() + timeout_s;
		while (!svc_reap(s, WNOHANG, &ru) && bench_now() < until)
			sleep_s(0.005);
		if (!s->reaped) {
			r = -ETIMEDOUT;
			kill(-s->pid, SIGKILL);
			svc_reap(s, 0, &ru);
		}
	}
	/* What is left of its group (socat's children, strace's tracees). */
	kill(-s->pid, SIGKILL);
	while (waitpid(-s->pid, NULL, WNOHANG) > 0)
		;
	s->cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
		 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6 - s->cpu0;
	if (s->cpu < 0)
		s->cpu = 0;
	s->pid = 0;
	return r;
}

/* ---- small things ---- */

void bench_last_line(const char *path, char *out, size_t len)
{
	char *text = bench_slurp(path, 256 * 1024), *last = NULL;

	out[0] = '\0';
	if (!text)
		return;
	for (char *s = strtok(text, "\n"); s; s = strtok(NULL, "\n"))
		if (s[strspn(s, " \t\r")])
			last = s;
	snprintf(out, len, "%s", last ? last : "");
	free(text);
}

double bench_kv(const char *text, const char *key)
{
	size_t kl = strlen(key);

	for (const char *p = text; p && (p = strstr(p, key)); p += kl) {
		char *end;
		double v;

		if ((p != text && p[-1] != ' ' && p[-1] != '\n') || p[kl] != ' ')
			continue;
		/* "54273 requests in 2.01s": a word, not a value. */
		v = strtod(p + kl + 1, &end);
		if (end != p + kl + 1)
			return v;
	}
	return NAN;
}

bool bench_zcio_has_option(const struct bench_config *cfg, const char *cmd, const char *option)
{
	char path[4200], *text;
	char *argv[] = { (char *)cfg->zcio, (char *)cmd, "--help", NULL };
	struct bench_proc p = { .role = BENCH_TOOL, .argv = argv, .fd = { -1, -1, -1 } };
	bool has = false;
	double secs;
	int fd;

	snprintf(path, sizeof(path), "%s/help.%s", cfg->dir, cmd);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return false;
	p.fd[1] = fd;
	if (bench_procs_run(&p, 1, &fd, 1, 30, &secs) == 0 && bench_proc_ok(&p)) {
		text = bench_slurp(path, 256 * 1024);
		has = text && strstr(text, option);
		free(text);
	}
	unlink(path);
	return has;
}

void bench_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}
