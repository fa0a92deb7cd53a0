/*
 * serve_list.c - directory listings for `zcio serve --list`.
 *
 * Names come from the file system and may hold anything but '/' and NUL,
 * so each is HTML-escaped where it is shown and percent-encoded (all but
 * unreserved characters) where it is linked, behind "./" so that a name
 * like "javascript:x" is never read as a URL scheme.  Dotfiles are left
 * out unless --dotfiles serves them.  Entries are sorted by name (bytes),
 * directories marked with a trailing slash.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve.h"

struct list_buf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void put(struct list_buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *np;

		while (cap < b->len + n + 1)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np) {
			b->failed = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void puts_(struct list_buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void html(struct list_buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': puts_(b, "&amp;"); break;
		case '<': puts_(b, "&lt;"); break;
		case '>': puts_(b, "&gt;"); break;
		case '"': puts_(b, "&quot;"); break;
		case '\'': puts_(b, "&#39;"); break;
		default: put(b, s, 1); break;
		}
	}
}

static void url(struct list_buf *b, const char *s)
{
	static const char hexd[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			put(b, s, 1);
		} else {
			char e[3] = { '%', hexd[c >> 4], hexd[c & 15] };

			put(b, e, 3);
		}
	}
}

struct list_entry {
	char *name;
	bool dir;
};

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct list_entry *)a)->name, ((const struct list_entry *)b)->name);
}

int list_render(int dirfd, const char *url_path, bool dotfiles, char **out, size_t *len)
{
	struct list_buf b = { 0 };
	struct list_entry *ents = NULL;
	size_t n = 0, cap = 0;
	struct dirent *d;
	DIR *dir;
	int fd, r = 0;

	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		r = -errno;
		close(fd);
		return r;
	}
	while ((d = readdir(dir))) {
		bool is_dir;

		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (d->d_name[0] == '.' && !dotfiles)
			continue;
		/* A symlink is listed as what it is, not what it points to
		 * (which may be outside the directory). */
		is_dir = d->d_type == DT_DIR;
		if (d->d_type == DT_UNKNOWN) {
			struct stat st;

			is_dir = fstatat(dirfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
				 S_ISDIR(st.st_mode);
		}
		if (n == cap) {
			struct list_entry *ne = realloc(ents, (cap ? cap * 2 : 64) * sizeof(*ents));

			if (!ne) {
				r = -ENOMEM;
				break;
			}
			ents = ne;
			cap = cap ? cap * 2 : 64;
		}
		ents[n].name = strdup(d->d_name);
		if (!ents[n].name) {
			r = -ENOMEM;
			break;
		}
		ents[n++].dir = is_dir;
	}
	closedir(dir);
	if (r == 0) {
		qsort(ents, n, sizeof(*ents), by_name);
		puts_(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ");
		html(&b, url_path);
		puts_(&b, "</title></head>\n<body><h1>Index of ");
		html(&b, url_path);
		puts_(&b, "</h1>\n<ul>\n");
		if (strcmp(url_path, "/") != 0)
			puts_(&b, "<li><a href=\"../\">../</a></li>\n");
		for (size_t i = 0; i < n; i++) {
			puts_(&b, "<li><a href=\"./");
			url(&b, ents[i].name);
			puts_(&b, ents[i].dir ? "/\">" : "\">");
			html(&b, ents[i].name);
			puts_(&b, ents[i].dir ? "/</a></li>\n" : "</a></li>\n");
		}
		puts_(&b, "</ul>\n</body></html>\n");
		if (b.failed)
			r = -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		free(ents[i].name);
	free(ents);
	if (r < 0) {
		free(b.p);
		return r;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}
