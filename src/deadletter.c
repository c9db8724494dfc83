/*
 * deadletter: formats and parses dead-letter entries with jansson. Not on the
 * hot path (only tasks that cannot be routed come here).
 */
#include "deadletter.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base64.h"

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
    json_t *obj = json_loadb(entry, len, JSON_ALLOW_NUL, &err), *t;
    char *out = NULL;

    if (reason)
        *reason = NULL;
    if (obj == NULL || !json_is_object(obj))
        goto out;
    if ((t = json_object_get(obj, "task")) != NULL && json_is_string(t)) {
        size_t n = json_string_length(t);
        out = malloc(n + 1);
        if (out == NULL)
            goto out;
        memcpy(out, json_string_value(t), n);
        out[n] = '\0';
        *task_len = n;
    } else if ((t = json_object_get(obj, "task_base64")) != NULL && json_is_string(t)) {
        out = base64_decode(json_string_value(t), json_string_length(t), task_len);
        if (out == NULL)
            goto out;
    } else {
        goto out;
    }
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
