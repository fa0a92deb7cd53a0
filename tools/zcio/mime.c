/*
 * mime.c - the extension -> Content-Type table.
 *
 * An open-addressing hash of lower-cased extensions; the type strings live
 * in one arena so a lookup is a hash, a probe or two and a string compare.
 * mime.types lines read "type ext1 ext2 ..."; an extension listed twice
 * keeps its first type, and entries with a dot in them ("sarif.json") are
 * skipped because lookups use the last extension only.
 */
#include "mime.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIME_SLOTS 8192u      /* power of two, well above mime.types' ~1,500 */
#define MIME_EXT_MAX 16

struct mime_slot {
	char ext[MIME_EXT_MAX];
	const char *type;
};

static struct mime_slot slots[MIME_SLOTS];
static int nslots;

static const char *const builtin[][2] = {
	{ "html", "text/html" }, { "htm", "text/html" }, { "css", "text/css" },
	{ "js", "text/javascript" }, { "mjs", "text/javascript" },
	{ "json", "application/json" }, { "txt", "text/plain" }, { "xml", "application/xml" },
	{ "svg", "image/svg+xml" }, { "png", "image/png" }, { "jpg", "image/jpeg" },
	{ "jpeg", "image/jpeg" }, { "gif", "image/gif" }, { "webp", "image/webp" },
	{ "avif", "image/avif" }, { "ico", "image/vnd.microsoft.icon" },
	{ "woff", "font/woff" }, { "woff2", "font/woff2" }, { "ttf", "font/ttf" },
	{ "otf", "font/otf" }, { "wasm", "application/wasm" }, { "pdf", "application/pdf" },
	{ "zip", "application/zip" }, { "gz", "application/gzip" },
	{ "tar", "application/x-tar" }, { "mp4", "video/mp4" }, { "webm", "video/webm" },
	{ "mp3", "audio/mpeg" }, { "ogg", "audio/ogg" }, { "wav", "audio/wav" },
	{ "csv", "text/csv" }, { "md", "text/markdown" },
};

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Lower-case copy of an extension; false if it does not fit or has a dot. */
static bool ext_key(const char *s, size_t n, char out[MIME_EXT_MAX])
{
	if (n == 0 || n >= MIME_EXT_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '.' || c == '/')
			return false;
		out[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
	}
	out[n] = '\0';
	return true;
}

/* Returns whether the extension was new (and type is now referenced). */
static bool add(const char *ext, size_t n, const char *type)
{
	char key[MIME_EXT_MAX];
	uint32_t i;

	if (!ext_key(ext, n, key) || nslots >= (int)(MIME_SLOTS / 2))
		return false;
	for (i = hash(key) & (MIME_SLOTS - 1); slots[i].type; i = (i + 1) & (MIME_SLOTS - 1)) {
		if (strcmp(slots[i].ext, key) == 0)
			return false; /* first type wins */
	}
	memcpy(slots[i].ext, key, sizeof(key));
	slots[i].type = type;
	nslots++;
	return true;
}

static int load_file(const char *path)
{
	FILE *f = fopen(path, "re");
	char line[1024];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *type, *ext, *copy;
		bool used = false;

		if (line[0] == '#')
			continue;
		type = strtok_r(line, " \t\r\n", &save);
		if (!type || !strchr(type, '/'))
			continue;
		copy = NULL;
		while ((ext = strtok_r(NULL, " \t\r\n", &save))) {
			/* Types are kept for the life of the process. */
			if (!copy && !(copy = strdup(type)))
				break;
			used |= add(ext, strlen(ext), copy);
		}
		if (!used)
			free(copy);
	}
	fclose(f);
	return 0;
}

int mime_load(const char *path)
{
	memset(slots, 0, sizeof(slots));
	nslots = 0;
	if (load_file(path ? path : "/etc/mime.types") < 0 || nslots == 0) {
		for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
			add(builtin[i][0], strlen(builtin[i][0]), builtin[i][1]);
	}
	return nslots;
}

const char *mime_type(const char *name)
{
	const char *base = strrchr(name, '/');
	const char *dot;
	char key[MIME_EXT_MAX];

	base = base ? base + 1 : name;
	dot = strrchr(base, '.');
	if (dot && dot != base && ext_key(dot + 1, strlen(dot + 1), key)) {
		for (uint32_t i = hash(key) & (MIME_SLOTS - 1); slots[i].type;
		     i = (i + 1) & (MIME_SLOTS - 1)) {
			if (strcmp(slots[i].ext, key) == 0)
				return slots[i].type;
		}
	}
	return "application/octet-stream";
}
