/*
 * znb.c - run a command with O_NONBLOCK set on its stdin and/or stdout.
 *
 *   znb [-i] [-o] [-c FILE] -- CMD [ARG...]
 *
 *   -i       set O_NONBLOCK on fd 0 before running CMD
 *   -o       set O_NONBLOCK on fd 1 before running CMD
 *   -c FILE  write CMD's CPU time (user + system, in milliseconds, from
 *            wait4) to FILE
 *
 * O_NONBLOCK lives on the open file description, which CMD shares with
 * znb, so after CMD exits znb can tell whether CMD left the flags as it
 * found them (a library must not flip flags on fds it does not own).
 * Shells and pipes never hand out nonblocking fds themselves, hence this.
 *
 * Exit status: CMD's (128 + signal if killed); 3 when CMD cleared a flag
 * znb set (reported on stderr as "znb: fd N: O_NONBLOCK was cleared").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		fprintf(stderr, "znb: fd %d: %s\n", fd, strerror(errno));
		exit(125);
	}
}

static bool still_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0 && (fl & O_NONBLOCK))
		return true;
	fprintf(stderr, "znb: fd %d: O_NONBLOCK was cleared\n", fd);
	return false;
}

int main(int argc, char **argv)
{
	bool nb_in = false, nb_out = false, kept = true;
	const char *cpu_file = NULL;
	struct rusage ru;
	int i, status;
	pid_t child;

	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "-i"))
			nb_in = true;
		else if (!strcmp(argv[i], "-o"))
			nb_out = true;
		else if (!strcmp(argv[i], "-c") && i + 1 < argc)
			cpu_file = argv[++i];
		else
			break;
	}
	if (i + 1 >= argc || strcmp(argv[i], "--")) {
		fputs("usage: znb [-i] [-o] [-c FILE] -- CMD [ARG...]\n", stderr);
		return 2;
	}
	i++;
	if (nb_in)
		set_nonblock(0);
	if (nb_out)
		set_nonblock(1);

	child = fork();
	if (child < 0) {
		perror("znb: fork");
		return 125;
	}
	if (child == 0) {
		execvp(argv[i], argv + i);
		fprintf(stderr, "znb: %s: %s\n", argv[i], strerror(errno));
		_exit(127);
	}
	while (wait4(child, &status, 0, &ru) < 0) {
		if (errno != EINTR) {
			perror("znb: wait4");
			return 125;
		}
	}
	if (cpu_file) {
		FILE *f = fopen(cpu_file, "w");
		long ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000L +
			  (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000L;

		if (!f || fprintf(f, "%ld\n", ms) < 0 || fclose(f) != 0) {
			perror("znb: cpu file");
			return 125;
		}
	}
	if (nb_in)
		kept &= still_nonblock(0);
	if (nb_out)
		kept &= still_nonblock(1);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	if (WEXITSTATUS(status))
		return WEXITSTATUS(status);
	return kept ? 0 : 3;
}
