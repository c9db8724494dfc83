/*
 * log: the logger's state is the one file-level variable slotd keeps, as in
 * twemproxy's nc_log.c: every module logs, and threading a logger through
 * every call would add noise and nothing else.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct {
    const char     *ident;      /* (ref) program name */
    enum log_level  level;      /* most verbose level printed */
    int             journal;    /* stderr goes to the journal */
} logger = { "slotd", LL_INFO, 0 };

static const char *const level_names[] = {
#define LOG_NAME(e, name, prio) name,
    LOG_LEVELS(LOG_NAME)
#undef LOG_NAME
};

static const int level_prio[] = {
#define LOG_PRIO(e, name, prio) prio,
    LOG_LEVELS(LOG_PRIO)
#undef LOG_PRIO
};

const char *log_level_name(int level)
{
    if (level < 0 || level >= LL_COUNT)
        return NULL;
    return level_names[level];
}

int log_level_parse(const char *name)
{
    for (int i = 0; i < LL_COUNT; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void log_init(const char *ident, enum log_level level)
{
    logger.ident = ident;
    logger.level = level;
    logger.journal = getenv("JOURNAL_STREAM") != NULL;
}

void log_set_level(enum log_level level) { logger.level = level; }
enum log_level log_get_level(void) { return logger.level; }
int log_enabled(enum log_level level) { return level <= logger.level; }

void log_msg(enum log_level level, const char *fmt, ...)
{
    char line[2048];
    size_t n = 0;
    va_list ap;

    if (!log_enabled(level))
        return;
    if (logger.journal) {
        n = (size_t)snprintf(line, sizeof line, "<%d>%s: ", level_prio[level],
                             level_names[level]);
    } else {
        struct timeval tv;
        struct tm tm;
        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
        n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ %s[%ld] %s: ",
                              (long)tv.tv_usec / 1000, logger.ident,
                              (long)getpid(), level_names[level]);
    }
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    /* One write per line, so lines of concurrent processes do not mix. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
