/*
 * deadletter: the entries of {ns}:dead. Each is a JSON object naming why the
 * task could not be routed and carrying its bytes exactly:
 *   {"reason":"no_key","detail":"…","at_ms":1700000000000,"task":"…"}
 * "task" when the bytes are valid UTF-8 (NULs included, as \u0000), else
 * "task_base64" instead (not beside it, so that a reader that knows only
 * "task" never takes lossy text for the task). Parsing follows the reading
 * rule of bytes.h. Pure: the caller passes the time.
 */
#ifndef SLOTD_DEADLETTER_H
#define SLOTD_DEADLETTER_H

#include <stddef.h>
#include <stdint.h>

/* A malloc'd NUL-terminated entry (its length in *len), or NULL on ENOMEM.
 * The caller frees it. */
char *deadletter_format(const char *reason, const char *detail,
                        const char *task, size_t task_len, int64_t at_ms,
                        size_t *len) __attribute__((warn_unused_result));

/* Recovers the original bytes of an entry: a malloc'd buffer (length in
 * *task_len), or NULL when entry is not a dead letter. If reason is not NULL
 * it receives a malloc'd copy of the reason. */
char *deadletter_parse(const char *entry, size_t len, size_t *task_len,
                       char **reason) __attribute__((warn_unused_result));

#endif
