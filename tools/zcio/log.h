/*
 * log.h - levelled log lines on stderr for the long-running commands
 * (relay, serve, broadcast): "zcio: relay: warn: connect to ...: refused".
 *
 * -q keeps errors only, -v adds debug lines (one per connection).  Lines
 * are written with one write() each, so threads do not interleave them.
 */
#ifndef ZCIO_LOG_H
#define ZCIO_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* The highest level printed; LOG_INFO by default. */
extern int log_level;

void log_msg(int level, const char *cmd, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_enabled(level) ((level) <= log_level)

#endif
