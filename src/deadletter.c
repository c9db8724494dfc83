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

char *deadletter_format(const char *reason, const char *detail,
                        const char *task, size_t task_len, int64_t at_ms,
                        size_t *len)
{
    json_t *obj = json_object(), *t;
    char *text = NULL, *enc = NULL;

    if (obj == NULL)
        return NULL;
    if (json_object_set_new(obj, "reason", json_string(reason)) != 0 ||
        json_object_set_new(obj, "detail", json_string(detail ? detail : "")) != 0 ||
        json_object_set_new(obj, "at_ms", json_integer(at_ms)) != 0)
        goto out;
    /* json_stringn refuses invalid UTF-8: such bytes travel as base64. */
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
