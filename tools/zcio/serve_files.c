/*
 * serve_files.c - the open-file cache of `zcio serve`, and the one place
 * that opens a file under the served directory.
 *
 * Per worker, a bounded table maps a normalised path to an open fd, its
 * stat, its ETag and Last-Modified, its Content-Type and, for small files,
 * its whole content: a request for a hot file then costs no syscall before
 * the response is written.  An entry is trusted for cache_valid_ms; after
 * that the path is opened again (with the same confinement) and compared
 * by device, inode, size, mtime and ctime, so a file replaced by rename,
 * rewritten or truncated is noticed within that delay, as with nginx's
 * open_file_cache.  Responses hold a reference: an entry replaced or
 * evicted while a body is still being sent keeps its fd until then.
 *
 * Confinement.  Paths never hold ".." (the normaliser refuses them), and
 * are opened relative to the served directory with openat2(RESOLVE_BENEATH
 * | RESOLVE_NO_MAGICLINKS): a symlink may point anywhere inside the
 * directory, and one leading outside fails with EXDEV.  Without openat2
 * (Linux before 5.6) each component is opened with O_NOFOLLOW, which
 * refuses every symlink, inside or not.  --follow-symlinks lifts both.
 * Files are opened O_NONBLOCK so that a FIFO under the directory cannot
 * hang a worker; anything but a regular file or a directory is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mime.h"
#include "serve.h"

#define OPEN_FLAGS (O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)

/* Set once openat2 is known to be missing (ENOSYS): cached process-wide. */
static atomic_bool no_openat2;

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Without openat2: one component at a time, never following a symlink. */
static int open_walk(int root, const char *path)
{
	char comp[256];
	int dir = root, fd;
	const char *p = path;

	for (;;) {
		size_t n = strcspn(p, "/");

		if (n >= sizeof(comp)) {
			fd = -ENAMETOOLONG;
			break;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		if (p[n] == '\0') {
			fd = openat(dir, comp, OPEN_FLAGS | O_NOFOLLOW);
			fd = fd < 0 ? -errno : fd;
			break;
		}
		fd = openat(dir, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			fd = -errno;
			break;
		}
		if (dir != root)
			close(dir);
		dir = fd;
		p += n + 1;
	}
	if (dir != root)
		close(dir);
	return fd;
}

/* Open path ("" is the directory itself) under the served directory. */
static int open_confined(const char *path)
{
	const char *p = *path ? path : ".";
	int fd;

	if (serve_cfg.follow_symlinks) {
		fd = openat(serve_cfg.root_fd, p, OPEN_FLAGS);
		return fd < 0 ? -errno : fd;
	}
	if (!atomic_load_explicit(&no_openat2, memory_order_relaxed)) {
		struct open_how how = {
			.flags = OPEN_FLAGS,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
		};

		do
			fd = (int)syscall(SYS_openat2, serve_cfg.root_fd, p, &how, sizeof(how));
		while (fd < 0 && errno == EINTR);
		if (fd >= 0)
			return fd;
		if (errno != ENOSYS)
			return -errno;
		atomic_store_explicit(&no_openat2, true, memory_order_relaxed);
	}
	return open_walk(serve_cfg.root_fd, p);
}

static int64_t ns_of(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static bool unchanged(const struct serve_file *f, const struct stat *st)
{
	return f->dev == st->st_dev && f->ino == st->st_ino && f->size == (uint64_t)st->st_size &&
	       f->mtime_ns == ns_of(&st->st_mtim) && f->ctime_ns == ns_of(&st->st_ctim) &&
	       f->is_dir == S_ISDIR(st->st_mode);
}

static void take_stat(struct serve_file *f, const struct stat *st)
{
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	f->size = (uint64_t)st->st_size;
	f->mtime = st->st_mtim.tv_sec;
	f->mtime_ns = ns_of(&st->st_mtim);
	f->ctime_ns = ns_of(&st->st_ctim);
	f->is_dir = S_ISDIR(st->st_mode);
}

/*
 * A small file's content, read so that it matches the stat it is served
 * with: the stat is taken again after reading, and a file that changed
 * meanwhile is read again (twice at most; then it is sent from the fd
 * like a large one, whose truncation rules apply).
 */
static void load_small(struct serve_file *f, struct stat *st)
{
	for (int tries = 0; tries < 3; tries++) {
		size_t want = (size_t)f->size;
		char *buf = malloc(want + 1);
		ssize_t n;

		if (!buf)
			return;
		n = pread(f->fd, buf, want + 1, 0);
		if (n == (ssize_t)want && fstat(f->fd, st) == 0 && unchanged(f, st)) {
			f->data = buf;
			return;
		}
		free(buf);
		if (fstat(f->fd, st) != 0 || !S_ISREG(st->st_mode))
			return;
		take_stat(f, st);
		if (f->size > serve_cfg.small_max)
			return;
	}
}

/* Content-Type, Accept-Ranges, Last-Modified, ETag. */
static int make_fields(struct serve_file *f)
{
	const char *type = mime_type(f->path);
	int n;

	http_date_format(f->mtime, f->last_modified);
	f->etag_len = (uint32_t)snprintf(f->etag, sizeof(f->etag), "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"",
					 (uint64_t)f->ino, f->size, (uint64_t)f->mtime_ns);
	n = snprintf(NULL, 0, "Content-Type: %s\r\nAccept-Ranges: bytes\r\n", type);
	f->validators_off = (uint32_t)n;
	f->fields_len = (uint32_t)n + (uint32_t)strlen("Last-Modified: \r\nETag: \r\n") +
			HTTP_DATE_LEN + f->etag_len;
	f->fields = malloc(f->fields_len + 1);
	if (!f->fields)
		return -ENOMEM;
	snprintf(f->fields, f->fields_len + 1,
		 "Content-Type: %s\r\nAccept-Ranges: bytes\r\nLast-Modified: %s\r\nETag: %s\r\n", type,
		 f->last_modified, f->etag);
	return 0;
}

static void entry_free(struct serve_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	free(f->data);
	free(f->fields);
	free(f->path);
	free(f);
}

/* A new entry for the open fd (taken over, closed on failure). */
static int entry_new(const char *path, uint32_t h, int fd, struct serve_file **out)
{
	struct serve_file *f;
	struct stat st;
	int r;

	if (fstat(fd, &st) != 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
		close(fd);
		return -ENODEV;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		close(fd);
		return -ENOMEM;
	}
	f->fd = fd;
	f->hash = h;
	f->refs = 1;
	take_stat(f, &st);
	f->path = strdup(path);
	if (!f->path) {
		entry_free(f);
		return -ENOMEM;
	}
	if (!f->is_dir) {
		if (f->size <= serve_cfg.small_max)
			load_small(f, &st);
		r = make_fields(f);
		if (r < 0) {
			entry_free(f);
			return r;
		}
	}
	*out = f;
	return 0;
}

int files_init(struct serve_files *fc)
{
	unsigned n = 16;

	memset(fc, 0, sizeof(*fc));
	while (n < serve_cfg.cache_entries * 2u && n < (1u << 24))
		n <<= 1;
	fc->buckets = calloc(n, sizeof(*fc->buckets));
	if (!fc->buckets)
		return -ENOMEM;
	fc->nbuckets = n;
	return 0;
}

static void lru_unlink(struct serve_files *fc, struct serve_file *f)
{
	if (f->lprev)
		f->lprev->lnext = f->lnext;
	else
		fc->lru_head = f->lnext;
	if (f->lnext)
		f->lnext->lprev = f->lprev;
	else
		fc->lru_tail = f->lprev;
	f->lprev = f->lnext = NULL;
}

static void lru_front(struct serve_files *fc, struct serve_file *f)
{
	f->lprev = NULL;
	f->lnext = fc->lru_head;
	if (fc->lru_head)
		fc->lru_head->lprev = f;
	fc->lru_head = f;
	if (!fc->lru_tail)
		fc->lru_tail = f;
}

void files_put(struct serve_files *fc, struct serve_file *f)
{
	(void)fc;
	if (f && --f->refs == 0)
		entry_free(f);
}

/* Take f out of the table; it lives on while responses hold it. */
static void detach(struct serve_files *fc, struct serve_file *f)
{
	struct serve_file **pp = &fc->buckets[f->hash & (fc->nbuckets - 1)];

	while (*pp && *pp != f)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = f->hnext;
	lru_unlink(fc, f);
	f->in_table = false;
	fc->count--;
	files_put(fc, f);
}

static void insert(struct serve_files *fc, struct serve_file *f)
{
	struct serve_file **b;

	if (serve_cfg.cache_entries == 0)
		return;
	while (fc->count >= serve_cfg.cache_entries && fc->lru_tail)
		detach(fc, fc->lru_tail);
	b = &fc->buckets[f->hash & (fc->nbuckets - 1)];
	f->hnext = *b;
	*b = f;
	f->in_table = true;
	f->refs++;
	fc->count++;
	lru_front(fc, f);
}

int files_get(struct serve_files *fc, const char *path, int64_t now_ms, struct serve_file **out)
{
	uint32_t h = hash(path);
	struct serve_file *f;
	struct stat st;
	int fd, r;

	for (f = fc->buckets[h & (fc->nbuckets - 1)]; f; f = f->hnext) {
		if (f->hash == h && strcmp(f->path, path) == 0)
			break;
	}
	fd = -1;
	if (f) {
		if (now_ms - f->checked_ms < serve_cfg.cache_valid_ms) {
			fc->hits++;
			if (fc->lru_head != f) {
				lru_unlink(fc, f);
				lru_front(fc, f);
			}
			f->refs++;
			*out = f;
			return 0;
		}
		/* Stale: is the path still the same file, unchanged? */
		fd = open_confined(path);
		if (fd >= 0 && fstat(fd, &st) == 0 && unchanged(f, &st)) {
			close(fd);
			fc->revalidated++;
			f->checked_ms = now_ms;
			f->refs++;
			*out = f;
			return 0;
		}
		fc->replaced++;
		detach(fc, f);
		if (fd < 0)
			return fd;
	} else {
		fc->misses++;
		fd = open_confined(path);
		if (fd < 0)
			return fd;
	}
	r = entry_new(path, h, fd, &f);
	if (r < 0)
		return r;
	f->checked_ms = now_ms;
	insert(fc, f);
	*out = f;
	return 0;
}

void files_suspect(struct serve_file *f)
{
	f->checked_ms = INT64_MIN / 2;
}

void files_release(struct serve_files *fc)
{
	while (fc->lru_tail)
		detach(fc, fc->lru_tail);
	free(fc->buckets);
	fc->buckets = NULL;
}
