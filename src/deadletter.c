/*
 * deadletter: formats and parses dead-letter entries with jansson. Not on the
 * hot path (only tasks that cannot be routed come here).
 */
#include "deadletter.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base64.h"
#include "bytes.h"

/*
 * The task goes as "task" when it is valid UTF-8 and escaping does not
 * grow it past what base64 would (a task of control characters would grow
 * six times: a large one could pass Redis's proto-max-bulk-len), else as
 * "task_base64": an entry is never more than about 4/3 of its task. A
 * reason or detail that is not UTF-8 (a worker's stderr) is kept by the
 * rule of bytes.h ("detail" and "detail_base64").
 */
static char *format(const char *reason, const char *detail, const char *task, size_t task_len,
                    int64_t at_ms, int base64, size_t *len)
{
    json_t *obj = json_object(), *t = NULL;
    char *text = NULL, *enc = NULL;

    if (obj == NULL)
        return NULL;
    if (bytes_json_set(obj, "reason", reason, strlen(reason)) != 0 ||
        bytes_json_set(obj, "detail", detail ? detail : "", detail ? strlen(detail) : 0) != 0 ||
        json_object_set_new(obj, "at_ms", json_integer(at_ms)) != 0)
        goto out;
    /* json_stringn refuses invalid UTF-8: such bytes travel as base64. */
    if (!base64)
        t = json_stringn(task, task_len);
    if (t != NULL) {
        if (json_object_set_new(obj, "task", t) != 0)
            goto out;
    } else {
        enc = base64_encode(task, task_len);
        if (enc == NULL || json_object_set_new(obj, "task_base64", json_string(enc)) != 0)
            goto out;
    }
    text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text != NULL)
        *len = strlen(text);
out:
    free(enc);
    json_decref(obj);
    return text;
}

char *deadletter_format(const char *reason, const char *detail,
                        const char *task, size_t task_len, int64_t at_ms,
                        size_t *len)
{
    char *text = format(reason, detail, task, task_len, at_ms, 0, len);
    if (text != NULL && *len > task_len / 3 * 4 + 4 + 1024) {
        free(text);
        text = format(reason, detail, task, task_len, at_ms, 1, len);
    }
    return text;
}

char *deadletter_parse(const char *entry, size_t len, size_t *task_len,
                       char **reason)
{
    json_error_t err;
    json_t *obj = json_loadb(entry, len, JSON_ALLOW_NUL, &err);
    char *out = NULL;

    if (reason)
        *reason = NULL;
    /* The reading rule of bytes.h: "task_base64" if present, else "task". */
    if (obj == NULL || !json_is_object(obj) || (out = bytes_json_get(obj, "task", task_len)) == NULL)
        goto out;
    if (reason) {
        json_t *r = json_object_get(obj, "reason");
        *reason = strdup(json_is_string(r) ? json_string_value(r) : "");
        if (*reason == NULL) {
            free(out);
            out = NULL;
        }
    }
out:
    json_decref(obj);
    return out;
}
