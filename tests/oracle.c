/*
 * oracle: the differential check of taskkey against jansson. jansson keeps
 * only the last of duplicate members, so duplicates are left to the known
 * answers; its own limits (integers beyond 64 bits, reals that overflow, NUL
 * in member names, a raw NUL taken for the end of input) are skipped, since
 * RFC 8259 allows the first three and forbids the last either way.
 */
#include "oracle.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taskkey.h"

static char scratch[1 << 20];

int oracle_check(const char *t, size_t n, char *why, size_t whylen)
{
    json_error_t err;
    const char *k;
    size_t kl, at;
    int rc = 1;

    if (n > sizeof scratch)
        return 0;
    enum taskkey_result r = taskkey_find(t, n, "key", 3, scratch, &k, &kl, &at);
    json_t *j = json_loadb(t, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (j == NULL) {
        if (strstr(err.text, "too big") || strstr(err.text, "real number overflow") ||
            strstr(err.text, "NUL byte in object key"))
            return 0;
        if (r == TASKKEY_INVALID_JSON || (n == 0 && r == TASKKEY_EMPTY))
            return 1;
        snprintf(why, whylen, "jansson rejects (%s) but taskkey says %s", err.text,
                 taskkey_result_name(r));
        return -1;
    }
    if (r == TASKKEY_INVALID_JSON) {
        if (memchr(t, '\0', n) != NULL)
            rc = 0;
        else {
            snprintf(why, whylen, "jansson accepts but taskkey rejects at byte %zu", at);
            rc = -1;
        }
    } else if (!json_is_object(j)) {
        if (r != TASKKEY_NOT_OBJECT) {
            snprintf(why, whylen, "not an object, but taskkey says %s", taskkey_result_name(r));
            rc = -1;
        }
    } else {
        json_t *v = json_object_get(j, "key");
        if (v == NULL) {
            if (r != TASKKEY_NO_KEY) {
                snprintf(why, whylen, "no key, but taskkey says %s", taskkey_result_name(r));
                rc = -1;
            }
        } else if (r != TASKKEY_DUPLICATE_KEY) {
            if (json_is_string(v)) {
                if (r != TASKKEY_OK || kl != json_string_length(v) ||
                    memcmp(k, json_string_value(v), kl) != 0) {
                    snprintf(why, whylen, "string key differs (taskkey: %s)", taskkey_result_name(r));
                    rc = -1;
                }
            } else if (json_is_number(v)) {
                char num[64];
                snprintf(num, sizeof num, "%.*s", (int)(kl < 63 ? kl : 63), k ? k : "");
                if (r != TASKKEY_OK || strtod(num, NULL) != json_number_value(v)) {
                    snprintf(why, whylen, "number key differs (taskkey: %s '%s')", taskkey_result_name(r), num);
                    rc = -1;
                }
            } else if (r != TASKKEY_BAD_KEY_TYPE) {
                snprintf(why, whylen, "key of a bad type, but taskkey says %s", taskkey_result_name(r));
                rc = -1;
            }
        }
    }
    json_decref(j);
    return rc;
}
