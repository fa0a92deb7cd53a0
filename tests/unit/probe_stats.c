/*
 * probe_stats.c - zcio_probe(), zcio_version(), the names of paths and
 * reasons, and zcio_stats_format().
 *
 * zcio_probe() must describe this machine: the splice family, sendfile and
 * copy_file_range present (Linux 6.x), the page size, /proc limits as /proc
 * says, whether the pipe limits bind this process (they do not bind
 * CAP_SYS_RESOURCE or CAP_SYS_ADMIN), and the kernel release as uname()
 * says.  Every enum value has a distinct name, unknown values read "?".
 * zcio_stats_format() names every path that moved bytes and every reason a
 * route was left, after real copies that take those paths and fallbacks,
 * and behaves like snprintf() with short buffers.
 */
#include <ctype.h>
#include <inttypes.h>
#include <sys/utsname.h>

#include "testutil.h"

static uint64_t proc_u64(const char *path)
{
	FILE *f = fopen(path, "r");
	uint64_t v = 0;

	if (f) {
		if (fscanf(f, "%" SCNu64, &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

/* CapEff from /proc/self/status. */
static uint64_t effective_caps(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	uint64_t caps = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %" SCNx64, &caps) == 1)
			break;
	fclose(f);
	return caps;
}

static void probe_describes_this_kernel(void **state)
{
	struct zcio_features f, g;
	struct utsname u;
	uint64_t caps = effective_caps();
	bool privileged = caps & ((1ull << 21) | (1ull << 24)); /* SYS_ADMIN, SYS_RESOURCE */

	(void)state;
	memset(&f, 0xa5, sizeof(f));
	assert_int_equal(zcio_probe(&f), 0);
	assert_true(f.have & ZCIO_HAVE_SPLICE);
	assert_true(f.have & ZCIO_HAVE_TEE);
	assert_true(f.have & ZCIO_HAVE_VMSPLICE);
	assert_true(f.have & ZCIO_HAVE_SENDFILE);
	assert_true(f.have & ZCIO_HAVE_COPY_FILE_RANGE);
	assert_true(f.have & ZCIO_HAVE_PIPE_RESIZE);
	assert_int_equal(f.page_size, (uint32_t)sysconf(_SC_PAGESIZE));
#if defined(__x86_64__) || defined(__i386__)
	assert_int_equal(f.page_size, 4096);
#endif
	assert_int_equal(uname(&u), 0);
	assert_true(strlen(f.kernel) > 0);
	assert_true(memchr(f.kernel, '\0', sizeof(f.kernel)) != NULL);
	assert_string_equal(f.kernel, u.release);
	assert_int_equal(f.pipe_max_size, proc_u64("/proc/sys/fs/pipe-max-size"));
	assert_int_equal(f.pipe_user_pages_soft, proc_u64("/proc/sys/fs/pipe-user-pages-soft"));
	assert_int_equal(f.pipe_user_pages_hard, proc_u64("/proc/sys/fs/pipe-user-pages-hard"));
	assert_int_equal(f.pipe_limits_apply, privileged ? 0 : 1);
	if (f.have & ZCIO_HAVE_IO_URING) {
		assert_int_equal(f.uring_error, 0);
		assert_true(f.uring_ops & ZCIO_URING_READ);
	} else {
		assert_true(f.uring_error < 0);
		assert_int_equal(f.uring_ops, 0);
	}
	printf("# kernel %s, have 0x%x, io_uring %s (ops 0x%x, error %d)\n", f.kernel, f.have,
	       f.have & ZCIO_HAVE_IO_URING ? "yes" : "no", f.uring_ops, f.uring_error);
	/* Stable: a second probe says the same. */
	assert_int_equal(zcio_probe(&g), 0);
	assert_int_equal(g.have, f.have);
	assert_string_equal(g.kernel, f.kernel);
}

static void probe_rejects_null(void **state)
{
	(void)state;
	assert_int_equal(zcio_probe(NULL), -EINVAL);
	assert_int_equal(zcio_pool_stats(NULL), -EINVAL);
}

static void version_string_matches_header(void **state)
{
	char want[32];

	(void)state;
	snprintf(want, sizeof(want), "%d.%d.%d", ZCIO_VERSION_MAJOR, ZCIO_VERSION_MINOR,
		 ZCIO_VERSION_PATCH);
	assert_non_null(zcio_version());
	assert_string_equal(zcio_version(), ZCIO_VERSION_STRING);
	assert_string_equal(zcio_version(), want);
}

static void check_names(const char *(*name)(int), int count, bool lowercase)
{
	int i, j;

	for (i = 0; i < count; i++) {
		const char *n = name(i);
		const char *p;

		assert_non_null(n);
		assert_true(strlen(n) > 0);
		assert_string_not_equal(n, "?");
		for (p = n; lowercase && *p; p++)
			assert_false(isupper((unsigned char)*p));
		for (j = 0; j < i; j++)
			assert_string_not_equal(n, name(j));
	}
	assert_string_equal(name(-1), "?");
	assert_string_equal(name(count), "?");
	assert_string_equal(name(1000), "?");
	assert_string_equal(name(INT32_MIN), "?");
}

static void every_path_has_a_distinct_name(void **state)
{
	(void)state;
	check_names(zcio_path_name, ZCIO_PATH_COUNT, true);
	assert_true(ZCIO_PATH_COUNT <= ZCIO_PATH_SLOTS);
	assert_string_equal(zcio_path_name(ZCIO_PATH_COPY), "copy");
	assert_string_equal(zcio_path_name(ZCIO_PATH_COPY_FILE_RANGE), "copy_file_range");
	assert_string_equal(zcio_path_name(ZCIO_PATH_SENDFILE), "sendfile");
	assert_string_equal(zcio_path_name(ZCIO_PATH_SPLICE), "splice");
	assert_string_equal(zcio_path_name(ZCIO_PATH_SPLICE_PIPE), "splice-pipe");
	assert_string_equal(zcio_path_name(ZCIO_PATH_TEE), "tee");
}

static void every_reason_has_a_distinct_name(void **state)
{
	(void)state;
	/* Phrases; they may name a constant ("destination is O_APPEND"). */
	check_names(zcio_reason_name, ZCIO_WHY_COUNT, false);
}

/* ---- zcio_stats_format ------------------------------------------------------ */

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line))) {
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return true;
		p++;
	}
	return false;
}

/*
 * Real copies, accumulated in one struct zcio_stats: splice, copy_file_range,
 * sendfile, splice-pipe and copy, with fallbacks for small, O_APPEND,
 * forced, stable and (with tmpfs) cross-filesystem.
 */
static void format_names_every_path_used_and_every_fallback_reason(void **state)
{
	struct zcio_stats st = { 0 };
	struct zcio_opts zc = tu_opts_zc();
	uint8_t *data = tu_data(100000, 8);
	struct tu_channel pipe_ch, sock;
	char text[4096], line[128];
	int in = tu_file(data, 100000), out, i;
	int64_t r;
	uint64_t sum = 0;
	bool seen_reason[ZCIO_WHY_COUNT] = { false };

	(void)state;
	tu_channel_open(&pipe_ch, TU_PIPE);
	(void)fcntl(pipe_ch.wr, F_SETPIPE_SZ, (int)TU_MIB);
	tu_channel_open(&sock, TU_UNIX);

	/* splice: file -> pipe */
	assert_int_equal(zcio_copy(in, pipe_ch.wr, 100000, &(struct zcio_opts){ .copy_threshold = 1,
				   .flags = ZCIO_F_OFFSET }, &st), 100000);
	while (tu_readable(pipe_ch.rd) > 0)
		if (read(pipe_ch.rd, text, sizeof(text)) <= 0)
			break;
	/* copy_file_range: file -> file */
	out = tu_file(NULL, 0);
	assert_int_equal(lseek(in, 0, SEEK_SET), 0);
	assert_int_equal(zcio_copy(in, out, ZCIO_TO_EOF, &zc, &st), 100000);
	/* sendfile (asked for): file -> socket; splice-pipe: socket -> file */
	assert_int_equal(lseek(in, 0, SEEK_SET), 0);
	assert_int_equal(zcio_copy(in, sock.wr, 100000,
				   &(struct zcio_opts){ .copy_threshold = 1,
							.flags = ZCIO_F_VIA_SENDFILE }, &st), 100000);
	shutdown(sock.wr, SHUT_WR);
	assert_int_equal(zcio_copy(sock.rd, out, ZCIO_TO_EOF, &zc, &st), 100000);
	close(out);
	/* copy, because small (to /dev/null: file -> file would take
	 * copy_file_range whatever the size) */
	assert_int_equal(lseek(in, 0, SEEK_SET), 0);
	{
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		assert_true(null >= 0);
		assert_int_equal(zcio_copy(in, null, 1000, NULL, &st), 1000);
		close(null);
	}
	out = tu_file(NULL, 0);
	/* copy, because forced */
	assert_int_equal(zcio_copy(in, out, 50000, &(struct zcio_opts){ .flags = ZCIO_F_COPY }, &st),
			 50000);
	/* copy, because stable */
	assert_int_equal(zcio_copy(in, out, 20000, &(struct zcio_opts){ .flags = ZCIO_F_STABLE }, &st),
			 20000);
	close(out);
	/* copy, because O_APPEND */
	out = tu_file_flags(NULL, 0, O_RDWR | O_APPEND);
	assert_int_equal(lseek(in, 0, SEEK_SET), 0);
	assert_int_equal(zcio_copy(in, out, ZCIO_TO_EOF, NULL, &st), 100000);
	close(out);
	/* sendfile, because another filesystem (tmpfs) refuses copy_file_range */
	{
		char path[128];
		int shm;

		snprintf(path, sizeof(path), "/dev/shm/zcio-unit-fmt-%d", (int)getpid());
		shm = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (shm >= 0) {
			unlink(path);
			assert_int_equal(pwrite(shm, data, 100000, 0), 100000);
			out = tu_file(NULL, 0);
			r = zcio_copy(shm, out, ZCIO_TO_EOF, &zc, &st);
			assert_int_equal(r, 100000);
			close(out);
			close(shm);
		}
	}

	assert_true(st.nfallbacks <= ZCIO_STATS_FALLBACKS);
	r = zcio_stats_format(&st, text, sizeof(text));
	assert_true(r > 0 && (size_t)r < sizeof(text));
	assert_int_equal(strlen(text), (size_t)r);
	tu_print_stats(&st);

	snprintf(line, sizeof(line), "total: %" PRIu64 " bytes", st.bytes);
	assert_true(has_line(text, line));
	for (i = 0; i < ZCIO_PATH_SLOTS; i++) {
		sum += st.path_bytes[i];
		if (!st.path_bytes[i])
			continue;
		snprintf(line, sizeof(line), "%s: %" PRIu64 " bytes", zcio_path_name(i),
			 st.path_bytes[i]);
		assert_true(has_line(text, line));
	}
	assert_int_equal(sum, st.bytes);
	/* The paths these copies must have used. */
	assert_true(st.path_bytes[ZCIO_PATH_SPLICE] == 100000);
	assert_true(st.path_bytes[ZCIO_PATH_COPY_FILE_RANGE] == 100000);
	assert_true(st.path_bytes[ZCIO_PATH_SENDFILE] >= 100000);
	assert_true(st.path_bytes[ZCIO_PATH_SPLICE_PIPE] == 100000);
	assert_true(st.path_bytes[ZCIO_PATH_COPY] == 171000);
	for (i = 0; i < (int)st.nfallbacks; i++) {
		const struct zcio_fallback *fb = &st.fallback[i];

		snprintf(line, sizeof(line), "fallback: %s -> %s: %s", zcio_path_name(fb->from),
			 zcio_path_name(fb->to), zcio_reason_name(fb->reason));
		assert_non_null(strstr(text, line));
		seen_reason[fb->reason] = true;
	}
	assert_true(seen_reason[ZCIO_WHY_SMALL]);
	assert_true(seen_reason[ZCIO_WHY_FORCED]);
	assert_true(seen_reason[ZCIO_WHY_STABLE]);
	assert_true(seen_reason[ZCIO_WHY_APPEND]);
	tu_channel_close(&pipe_ch);
	tu_channel_close(&sock);
	close(in);
	free(data);
}

/* Every path and every reason, set by hand: each is named. */
static void format_names_every_path_and_reason_value(void **state)
{
	struct zcio_stats st = { 0 };
	char text[8192], line[160];
	int i, r;

	(void)state;
	for (i = 0; i < ZCIO_PATH_COUNT; i++) {
		st.path_bytes[i] = 1000u + (uint64_t)i;
		st.bytes += st.path_bytes[i];
	}
	/* Reasons 1..COUNT-1, eight at a time (the array holds eight). */
	for (i = 1; i < ZCIO_WHY_COUNT; i += ZCIO_STATS_FALLBACKS) {
		int k;

		st.nfallbacks = 0;
		for (k = 0; k < ZCIO_STATS_FALLBACKS && i + k < ZCIO_WHY_COUNT; k++) {
			st.fallback[k] = (struct zcio_fallback){
				.from = ZCIO_PATH_SPLICE, .to = ZCIO_PATH_COPY,
				.reason = (uint16_t)(i + k), .err = k == 0 ? EINVAL : 0, .at = 7,
			};
			st.nfallbacks++;
		}
		r = zcio_stats_format(&st, text, sizeof(text));
		assert_true(r > 0 && (size_t)r < sizeof(text));
		for (k = 0; k < (int)st.nfallbacks; k++) {
			snprintf(line, sizeof(line), "fallback: splice -> copy: %s",
				 zcio_reason_name(i + k));
			assert_non_null(strstr(text, line));
		}
	}
	for (i = 0; i < ZCIO_PATH_COUNT; i++) {
		snprintf(line, sizeof(line), "%s: %" PRIu64 " bytes", zcio_path_name(i),
			 st.path_bytes[i]);
		assert_true(has_line(text, line));
	}
	/* The errno is described, and the position given. */
	assert_non_null(strstr(text, strerror(EINVAL)));
	assert_non_null(strstr(text, "at byte 7"));
}

static void format_is_like_snprintf(void **state)
{
	struct zcio_stats st = { .bytes = 123456789, .path_bytes = { [ZCIO_PATH_SPLICE] = 123456789 } };
	char full[512], small[16];
	int want, r;

	(void)state;
	want = zcio_stats_format(&st, full, sizeof(full));
	assert_true(want > 0);
	assert_int_equal(strlen(full), (size_t)want);
	/* Too small: truncated, NUL-terminated, the full length returned. */
	memset(small, 'x', sizeof(small));
	r = zcio_stats_format(&st, small, sizeof(small));
	assert_int_equal(r, want);
	assert_int_equal(small[sizeof(small) - 1], '\0');
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_memory_equal(small, full, sizeof(small) - 1);
	/* No buffer at all: just the length. */
	assert_int_equal(zcio_stats_format(&st, NULL, 0), want);
	/* A zero-length buffer is not written to. */
	small[0] = 'x';
	assert_int_equal(zcio_stats_format(&st, small, 0), want);
	assert_int_equal(small[0], 'x');
	assert_int_equal(zcio_stats_format(NULL, full, sizeof(full)), -EINVAL);
	assert_int_equal(zcio_stats_format(&st, NULL, 10), -EINVAL);
}

static void format_shows_repeated_fallbacks_once_and_counts_the_rest(void **state)
{
	struct zcio_stats st = { 0 };
	char text[2048];
	const char *p;
	int i, lines = 0;

	(void)state;
	for (i = 0; i < ZCIO_STATS_FALLBACKS; i++)
		st.fallback[i] = (struct zcio_fallback){ .from = ZCIO_PATH_SPLICE,
							 .to = ZCIO_PATH_COPY,
							 .reason = ZCIO_WHY_SMALL };
	st.nfallbacks = 20;
	assert_true(zcio_stats_format(&st, text, sizeof(text)) > 0);
	for (p = text; (p = strstr(p, "fallback: ")); p++)
		lines++;
	assert_int_equal(lines, 1);
	assert_non_null(strstr(text, "fallbacks: 20 in all"));
}

/* Counters add up over calls; last_bytes is the latest call's; NULL stats
 * and NULL options are accepted. */
static void stats_accumulate_over_calls_and_last_bytes_is_per_call(void **state)
{
	struct zcio_stats st = { 0 };
	uint8_t *data = tu_data(300000, 9);
	int in = tu_file(data, 300000), out = tu_file(NULL, 0);

	(void)state;
	assert_int_equal(zcio_copy(in, out, 100000, NULL, &st), 100000);
	assert_int_equal(zcio_copy(in, out, 150000, NULL, &st), 150000);
	assert_int_equal(st.bytes, 250000);
	assert_int_equal(st.last_bytes, 150000);
	assert_true(st.syscalls >= 2);
	assert_int_equal(zcio_copy(in, out, ZCIO_TO_EOF, NULL, NULL), 50000);
	assert_int_equal(zcio_copy(in, out, ZCIO_TO_EOF, NULL, &st), 0);
	assert_int_equal(st.last_bytes, 0);
	assert_int_equal(st.bytes, 250000);
	tu_assert_file(out, 0, data, 300000);
	close(in);
	close(out);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(probe_describes_this_kernel),
		cmocka_unit_test(probe_rejects_null),
		cmocka_unit_test(version_string_matches_header),
		cmocka_unit_test(every_path_has_a_distinct_name),
		cmocka_unit_test(every_reason_has_a_distinct_name),
		cmocka_unit_test(format_names_every_path_used_and_every_fallback_reason),
		cmocka_unit_test(format_names_every_path_and_reason_value),
		cmocka_unit_test(format_is_like_snprintf),
		cmocka_unit_test(format_shows_repeated_fallbacks_once_and_counts_the_rest),
		cmocka_unit_test(stats_accumulate_over_calls_and_last_bytes_is_per_call),
	};

	tu_init(120);
	return cmocka_run_group_tests_name("probe_stats", tests, NULL, NULL);
}
