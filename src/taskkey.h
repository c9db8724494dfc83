/*
 * taskkey: finds a task's routing key. A task is routable when it is one
 * valid JSON text (RFC 8259, UTF-8) whose top level is an object holding the
 * key field exactly once, with a string value (its decoded bytes are the key)
 * or a number (its bytes as written are the key). One validating pass over
 * the bytes, no allocation: this runs for every task on the hot path.
 * jansson is the reference it is tested against.
 */
#ifndef SLOTD_TASKKEY_H
#define SLOTD_TASKKEY_H

#include <stddef.h>

/* Outcomes, and the dead-letter reasons they become. */
#define TASKKEY_RESULTS(X)                                              \
    X(TASKKEY_OK,            "ok",            "routable")               \
    X(TASKKEY_EMPTY,         "empty",         "the task is empty")      \
    X(TASKKEY_TOO_LARGE,     "too_large",     "the task is larger than dispatch.max_task_bytes") \
    X(TASKKEY_INVALID_JSON,  "invalid_json",  "the task is not valid JSON in UTF-8") \
    X(TASKKEY_NOT_OBJECT,    "not_object",    "the task is not a JSON object") \
    X(TASKKEY_NO_KEY,        "no_key",        "the task has no key field") \
    X(TASKKEY_DUPLICATE_KEY, "duplicate_key", "the task has the key field more than once") \
    X(TASKKEY_BAD_KEY_TYPE,  "bad_key_type",  "the key field is not a string or a number")

enum taskkey_result {
#define TASKKEY_ENUM(e, name, text) e,
    TASKKEY_RESULTS(TASKKEY_ENUM)
#undef TASKKEY_ENUM
    TASKKEY_RESULT_COUNT
};

/* Short reason name ("no_key") and a sentence, for logs and dead letters. */
const char *taskkey_result_name(enum taskkey_result r);
const char *taskkey_result_text(enum taskkey_result r);

/*
 * Finds the value of top-level field `field` (field_len bytes, may contain any
 * byte) in task. Field names in the task are compared after decoding their
 * escapes. The whole task is validated, also past the key. On TASKKEY_OK,
 * *key and *keylen give the key: a slice of task, or of scratch when the
 * string had escapes (decoded to UTF-8; \u0000 gives a NUL byte). scratch
 * must hold at least len bytes. On any other result *key is NULL and
 * *keylen 0.
 * On TASKKEY_INVALID_JSON, *err_offset (if not NULL) is the byte offset where
 * the text stops being valid. Never returns EMPTY or TOO_LARGE (size is the
 * caller's rule) but for len == 0, which is TASKKEY_EMPTY.
 * Nesting deeper than TASKKEY_MAX_DEPTH is INVALID_JSON; every value counts
 * one level, scalars too, as in jansson: the top-level object is level 1.
 *
 * When several results apply, the first of these wins:
 *   INVALID_JSON  anywhere in the text, even after the key
 *   NOT_OBJECT
 *   DUPLICATE_KEY only the key field, only at the top level
 *   BAD_KEY_TYPE or NO_KEY (never both)
 */
#define TASKKEY_MAX_DEPTH 2048
enum taskkey_result taskkey_find(const char *task, size_t len,
                                 const char *field, size_t field_len,
                                 char *scratch,
                                 const char **key, size_t *keylen,
                                 size_t *err_offset);

#endif
