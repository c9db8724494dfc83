/*
 * log: one line per event, to stderr. Under systemd (JOURNAL_STREAM set) each
 * line starts with its syslog priority ("<4>") and carries no timestamp, since
 * the journal adds its own; elsewhere each line starts with a UTC timestamp.
 */
#ifndef SLOTD_LOG_H
#define SLOTD_LOG_H

#define LOG_LEVELS(X)              \
    X(LL_ERROR, "error", 3)        \
    X(LL_WARN,  "warn",  4)        \
    X(LL_INFO,  "info",  6)        \
    X(LL_DEBUG, "debug", 7)

enum log_level {
#define LOG_ENUM(e, name, prio) e,
    LOG_LEVELS(LOG_ENUM)
#undef LOG_ENUM
    LL_COUNT
};

/* "error", "warn", … for a level; NULL when out of range. */
const char *log_level_name(int level);
/* The level named name, or -1. */
int log_level_parse(const char *name);

/* Reads JOURNAL_STREAM once; ident is borrowed and must outlive the logger. */
void log_init(const char *ident, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_enabled(LL_DEBUG)) log_msg(LL_DEBUG, __VA_ARGS__); } while (0)

#endif
