/*
 * oracle: the differential check of taskkey against jansson (json_loadb with
 * JSON_DECODE_ANY | JSON_ALLOW_NUL). Where jansson 2.14 and RFC 8259 part
 * ways, the oracle handles it explicitly, and nothing else is excused:
 *
 *  - integers beyond json_int_t ("too big integer"): valid JSON. The text is
 *    loaded again with JSON_DECODE_INT_AS_REAL and compared as reals.
 *  - reals beyond a double ("real number overflow", still a numeric overflow
 *    on the second load) and NUL in member names ("NUL byte in object key
 *    not supported"): valid JSON that jansson cannot hold. Skipped; jansson
 *    stops there, so it has no answer for the rest of the text.
 *  - a raw NUL byte right after a number or a literal ("[1\0]",
 *    "{"a":true\0}"): jansson accepts it, because its stream_unget() loses an
 *    unread NUL. A raw NUL outside strings is never JSON, so taskkey must
 *    reject the text; the text without its NULs, which is what jansson read,
 *    is then compared as usual.
 *  - duplicate members: jansson keeps the last. The top-level members named
 *    ORACLE_FIELD are counted here (count_fields), a count cross-checked
 *    against json_object_get and JSON_REJECT_DUPLICATES.
 */
#include "oracle.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOAD_FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL)
#define FIELD_LEN  (sizeof ORACLE_FIELD - 1)

/* One taskkey_find call, on exact-size copies of its buffers. */
struct run {
    char               *text;       /* owned: the input, exactly n bytes */
    size_t              n;
    char               *scratch;    /* owned: exactly n bytes (1 when n is 0) */
    enum taskkey_result r;
    const char         *key;        /* (ref) into text or scratch */
    size_t              keylen;
    size_t              err_at;
};

static void run_taskkey(struct run *run, const char *t, size_t n)
{
    run->text = malloc(n ? n : 1);
    run->scratch = malloc(n ? n : 1);
    if (run->text == NULL || run->scratch == NULL)
        abort();
    memcpy(run->text, t, n);
    run->n = n;
    run->r = taskkey_find(run->text, n, ORACLE_FIELD, FIELD_LEN, run->scratch,
                          &run->key, &run->keylen, &run->err_at);
}

static void run_free(struct run *run)
{
    free(run->text);
    free(run->scratch);
}

__attribute__((format(printf, 3, 4)))
static enum oracle_verdict disagree(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return ORACLE_DISAGREE;
}

static int within(const char *p, size_t len, const char *buf, size_t n)
{
    return p >= buf && p <= buf + n && len <= (size_t)(buf + n - p);
}

/*
 * How many members of the top-level object in t are named field once their
 * escapes are decoded. t is a text jansson accepted, so only its structure
 * matters: at depth 1, a string right after '{' or ',' is a member name.
 * Names are decoded by jansson, not by taskkey.
 */
static int count_fields(const char *t, size_t n, const char *field, size_t flen)
{
    int depth = 0, count = 0;
    char prev = 0;                  /* the last byte seen outside strings and white space */
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (c == '"') {
            size_t j = i + 1;
            while (t[j] != '"')
                j += t[j] == '\\' ? 2 : 1;
            if (depth == 1 && (prev == '{' || prev == ',')) {
                json_t *name = json_loadb(t + i, j + 1 - i, LOAD_FLAGS, NULL);
                if (json_string_length(name) == flen &&
                    memcmp(json_string_value(name), field, flen) == 0)
                    count++;
                json_decref(name);
            }
            i = j;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        }
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            prev = c;
    }
    return count;
}

/* A non-OK result: it must be want, with no key. */
static enum oracle_verdict want(const struct run *run, enum taskkey_result w, const char *because,
                                char *why, size_t whylen)
{
    if (run->r != w)
        return disagree(why, whylen, "%s, so %s, but taskkey says %s", because,
                        taskkey_result_name(w), taskkey_result_name(run->r));
    if (run->key != NULL || run->keylen != 0)
        return disagree(why, whylen, "taskkey says %s but leaves a key", taskkey_result_name(w));
    return ORACLE_AGREE;
}

/* The number key: its bytes as written, of the same value as jansson's. */
static enum oracle_verdict same_number(const struct run *run, const json_t *v,
                                       char *why, size_t whylen)
{
    enum oracle_verdict verdict = ORACLE_AGREE;
    char *num, *end;
    if (!within(run->key, run->keylen, run->text, run->n))
        return disagree(why, whylen, "the number key is not a slice of the task");
    if ((num = strndup(run->key, run->keylen)) == NULL)
        abort();
    errno = 0;
    if (json_is_integer(v)) {
        long long x = strtoll(num, &end, 10);
        if (errno != 0 || *end != '\0' || end == num || x != json_integer_value(v))
            verdict = disagree(why, whylen, "number key '%s', jansson's integer %lld", num,
                               (long long)json_integer_value(v));
    } else {
        double x = strtod(num, &end), y = json_real_value(v);
        if (*end != '\0' || end == num || x != y || signbit(x) != signbit(y))
            verdict = disagree(why, whylen, "number key '%s', jansson's real %.17g", num, y);
    }
    free(num);
    return verdict;
}

/* Compares taskkey's answer to jansson's document j of the same text. */
static enum oracle_verdict compare_accepted(const struct run *run, const json_t *j, size_t flags,
                                            char *why, size_t whylen)
{
    json_error_t err;
    if (run->r == TASKKEY_INVALID_JSON)
        return disagree(why, whylen, "jansson accepts but taskkey rejects at byte %zu", run->err_at);
    if (!json_is_object(j))
        return want(run, TASKKEY_NOT_OBJECT, "not an object", why, whylen);

    int count = count_fields(run->text, run->n, ORACLE_FIELD, FIELD_LEN);
    const json_t *v = json_object_get(j, ORACLE_FIELD);
    json_t *strict = json_loadb(run->text, run->n, flags | JSON_REJECT_DUPLICATES, &err);
    int strict_ok = strict != NULL;
    int strict_dup = !strict_ok && json_error_code(&err) == json_error_duplicate_key;
    json_decref(strict);
    if ((count == 0) != (v == NULL) || (count > 1 && !strict_dup) || (!strict_ok && !strict_dup))
        return disagree(why, whylen, "oracle: %d key fields counted, but jansson finds %s, %s",
                        count, v ? "one" : "none", strict_dup ? "a duplicate" : "no duplicates");

    if (count > 1)
        return want(run, TASKKEY_DUPLICATE_KEY, "the key field more than once", why, whylen);
    if (count == 0)
        return want(run, TASKKEY_NO_KEY, "no key field", why, whylen);
    if (!json_is_string(v) && !json_is_number(v))
        return want(run, TASKKEY_BAD_KEY_TYPE, "a key of a bad type", why, whylen);
    if (run->r != TASKKEY_OK)
        return disagree(why, whylen, "a key of type %d, but taskkey says %s", json_typeof(v),
                        taskkey_result_name(run->r));
    if (json_is_number(v))
        return same_number(run, v, why, whylen);
    if (!within(run->key, run->keylen, run->text, run->n) &&
        !within(run->key, run->keylen, run->scratch, run->n))
        return disagree(why, whylen, "the string key is neither in the task nor in scratch");
    if (run->keylen != json_string_length(v) || memcmp(run->key, json_string_value(v), run->keylen) != 0)
        return disagree(why, whylen, "string key '%.*s' (%zu bytes), jansson's '%s' (%zu bytes)",
                        (int)run->keylen, run->key, run->keylen, json_string_value(v),
                        json_string_length(v));
    return ORACLE_AGREE;
}

/* jansson accepted text holding raw NULs (after a number or a literal, see
 * above): taskkey must reject it, and agree on the text without them. */
static enum oracle_verdict compare_without_nul(const struct run *run, size_t flags,
                                               char *why, size_t whylen)
{
    enum oracle_verdict verdict;
    struct run bare;
    json_error_t err;
    char *t = malloc(run->n);
    size_t m = 0;

    if (run->r != TASKKEY_INVALID_JSON)
        return disagree(why, whylen, "a raw NUL outside strings, but taskkey says %s",
                        taskkey_result_name(run->r));
    if (t == NULL)
        abort();
    for (size_t i = 0; i < run->n; i++)
        if (run->text[i] != '\0')
            t[m++] = run->text[i];
    run_taskkey(&bare, t, m);
    free(t);
    json_t *j = json_loadb(bare.text, bare.n, flags, &err);
    if (j == NULL)
        verdict = disagree(why, whylen, "oracle: jansson accepts the text with raw NULs "
                           "but not without them (%s)", err.text);
    else
        verdict = compare_accepted(&bare, j, flags, why, whylen);
    json_decref(j);
    run_free(&bare);
    return verdict;
}

static enum oracle_verdict compare(const struct run *run, char *why, size_t whylen)
{
    enum oracle_verdict verdict;
    size_t flags = LOAD_FLAGS;
    json_error_t err;
    json_t *j;

    if (run->n == 0)
        return want(run, TASKKEY_EMPTY, "empty", why, whylen);
    j = json_loadb(run->text, run->n, flags, &err);
    if (j == NULL && json_error_code(&err) == json_error_numeric_overflow) {
        flags |= JSON_DECODE_INT_AS_REAL;
        j = json_loadb(run->text, run->n, flags, &err);
    }
    if (j == NULL) {
        enum json_error_code code = json_error_code(&err);
        if (code == json_error_numeric_overflow || code == json_error_null_byte_in_key)
            return ORACLE_SKIPPED;
        if (run->r != TASKKEY_INVALID_JSON)
            return disagree(why, whylen, "jansson rejects (%s) but taskkey says %s", err.text,
                            taskkey_result_name(run->r));
        if (run->err_at > run->n)
            return disagree(why, whylen, "error offset %zu past the end", run->err_at);
        return want(run, TASKKEY_INVALID_JSON, "invalid", why, whylen);
    }
    if (memchr(run->text, '\0', run->n) != NULL)
        verdict = compare_without_nul(run, flags, why, whylen);
    else
        verdict = compare_accepted(run, j, flags, why, whylen);
    json_decref(j);
    return verdict;
}

enum oracle_verdict oracle_check(const char *t, size_t n, enum taskkey_result *got,
                                 char *why, size_t whylen)
{
    struct run run;
    run_taskkey(&run, t, n);
    if (got)
        *got = run.r;
    enum oracle_verdict verdict = compare(&run, why, whylen);
    run_free(&run);
    return verdict;
}
