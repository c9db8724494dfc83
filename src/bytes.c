/*
 * bytes: the JSON and text forms of arbitrary bytes described in bytes.h.
 * One place decides what is valid (utf8.c) and how exact bytes ride along
 * (base64.c), for slotctl's every field and for dead letters.
 */
#include "bytes.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base64.h"
#include "utf8.h"

static const char replacement[] = "\xef\xbf\xbd";     /* U+FFFD in UTF-8 */

/* "<name>_base64" into buf; -1 when name is too long. */
static int base64_name(char *buf, size_t cap, const char *name)
{
    if (strlen(name) > BYTES_NAME_MAX)
        return -1;
    snprintf(buf, cap, "%s_base64", name);
    return 0;
}

int bytes_json_set(json_t *obj, const char *name, const void *p, size_t len)
{
    const unsigned char *s = p, *end = s + len;
    char b64name[BYTES_NAME_MAX + sizeof "_base64"];
    char *shown = NULL, *exact = NULL;
    size_t n = 0;
    int rc = -1;

    if (!json_is_object(obj) || base64_name(b64name, sizeof b64name, name) != 0)
        return -1;
    /* Each byte grows to at most the 3 bytes of U+FFFD. */
    if (len > (SIZE_MAX - 1) / 3 || (shown = malloc(3 * len + 1)) == NULL)
        return -1;
    int lossy = 0;
    for (const unsigned char *q = s; q < end;) {
        size_t k = *q >= 0x80 ? utf8_seq(q, end) : *q != 0;
        if (k == 0) {
            memcpy(shown + n, replacement, 3);
            n += 3;
            q++;
            lossy = 1;
        } else {
            memcpy(shown + n, q, k);
            n += k;
            q += k;
        }
    }
    if (json_object_set_new(obj, name, json_stringn(shown, n)) != 0)
        goto out;
    if (!lossy) {
        json_object_del(obj, b64name);      /* -1 when there is none: fine */
        rc = 0;
        goto out;
    }
    if ((exact = base64_encode(p, len)) == NULL ||
        json_object_set_new(obj, b64name, json_string(exact)) != 0)
        goto out;
    rc = 0;
out:
    free(shown);
    free(exact);
    return rc;
}

char *bytes_json_get(const json_t *obj, const char *name, size_t *len)
{
    char b64name[BYTES_NAME_MAX + sizeof "_base64"];
    if (base64_name(b64name, sizeof b64name, name) != 0)
        return NULL;
    const json_t *v = json_object_get(obj, b64name);
    if (v != NULL)
        return json_is_string(v) ? base64_decode(json_string_value(v), json_string_length(v), len)
                                 : NULL;
    v = json_object_get(obj, name);
    if (!json_is_string(v))
        return NULL;
    size_t n = json_string_length(v);
    char *out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, json_string_value(v), n);
    out[n] = '\0';
    *len = n;
    return out;
}

/* The code point of the valid n-byte sequence at s. */
static uint32_t code_point(const unsigned char *s, size_t n)
{
    uint32_t cp = s[0] & (0xFFu >> (n + 1));
    for (size_t i = 1; i < n; i++)
        cp = cp << 6 | (s[i] & 0x3Fu);
    return cp;
}

/* Characters a terminal would act on rather than show: C1 controls, and
 * those that reorder text (bidi marks, embeddings, overrides, isolates) or
 * break a line. C0 and DEL are ASCII and taken before. */
static int harmful(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9F) || cp == 0x061C || cp == 0x200E || cp == 0x200F ||
           (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

char *bytes_text(const void *p, size_t len, size_t max)
{
    static const char hex[] = "0123456789abcdef";
    static const char more[] = "…";
    const unsigned char *s = p, *end = s + len;

    /* Each byte grows to at most the 4 bytes of \xHH. */
    if (len > (SIZE_MAX - sizeof more) / 4)
        return NULL;
    size_t cap = 4 * len;
    if (max > 0 && max < cap)
        cap = max;
    char *out = malloc(cap + sizeof more), *o = out;
    if (out == NULL)
        return NULL;
    while (s < end) {
        size_t k = *s >= 0x80 ? utf8_seq(s, end) : 1;
        int escape = k == 0 || (k == 1 && (*s < 0x20 || *s == 0x7F)) ||
                     (k > 1 && harmful(code_point(s, k)));
        size_t bytes = k ? k : 1;
        size_t need = escape ? 4 * bytes : *s == '\\' ? 2 : bytes;
        if ((size_t)(o - out) + need > cap) {
            memcpy(o, more, sizeof more - 1);
            o += sizeof more - 1;
            break;
        }
        if (escape) {
            for (size_t i = 0; i < bytes; i++) {
                *o++ = '\\';
                *o++ = 'x';
                *o++ = hex[s[i] >> 4];
                *o++ = hex[s[i] & 15];
            }
        } else if (*s == '\\') {
            *o++ = '\\';
            *o++ = '\\';
        } else {
            memcpy(o, s, bytes);
            o += bytes;
        }
        s += bytes;
    }
    *o = '\0';
    return out;
}
