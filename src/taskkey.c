/*
 * taskkey: one validating pass over a task's JSON that also picks out the
 * routing key. No recursion and no allocation: the open containers are a
 * bit each (struct nest), so any stack will do, however deep the task.
 * Every value, scalars included, counts one level, as in jansson, so both
 * agree on what is too deep.
 */
#include "taskkey.h"

#include <stdint.h>
#include <string.h>

#include "utf8.h"

static const char *const result_names[] = {
#define TASKKEY_NAME(e, name, text) name,
    TASKKEY_RESULTS(TASKKEY_NAME)
#undef TASKKEY_NAME
};

static const char *const result_texts[] = {
#define TASKKEY_TEXT(e, name, text) text,
    TASKKEY_RESULTS(TASKKEY_TEXT)
#undef TASKKEY_TEXT
};

const char *taskkey_result_name(enum taskkey_result r)
{
    return (unsigned)r < TASKKEY_RESULT_COUNT ? result_names[r] : "unknown";
}

const char *taskkey_result_text(enum taskkey_result r)
{
    return (unsigned)r < TASKKEY_RESULT_COUNT ? result_texts[r] : "unknown";
}

struct scan {
    const unsigned char *p;     /* next byte */
    const unsigned char *end;
};

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

static int hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

/* Reads one \uXXXX escape (or a surrogate pair) at p (just after the
 * backslash and 'u'); returns the code point, or -1. *p advances. */
static long unicode_escape(const unsigned char **p, const unsigned char *end)
{
    unsigned hi, lo;
    if (end - *p < 4 || hex4(*p, &hi) != 0)
        return -1;
    *p += 4;
    if (hi >= 0xDC00 && hi <= 0xDFFF)
        return -1;                      /* a lone low surrogate */
    if (hi < 0xD800 || hi > 0xDBFF)
        return (long)hi;
    if (end - *p < 6 || (*p)[0] != '\\' || (*p)[1] != 'u' || hex4(*p + 2, &lo) != 0 ||
        lo < 0xDC00 || lo > 0xDFFF)
        return -1;                      /* a high surrogate without its low half */
    *p += 6;
    return 0x10000 + (((long)hi - 0xD800) << 10) + ((long)lo - 0xDC00);
}

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Non-zero when none of the 8 bytes in x ends a plain run: each is at least
 * 0x20, below 0x80, and neither '"' nor a backslash. (The classic "has a
 * zero byte" test: (v - ONES) & ~v & HIGHS is non-zero iff some byte of v
 * is zero; for bytes below 0x80 it is exact.) */
static inline int plain8(uint64_t x)
{
    uint64_t quote = x ^ (ONES * '"'), slash = x ^ (ONES * '\\');
    uint64_t bad = (x & HIGHS)                              /* >= 0x80 */
                 | ((x - ONES * 0x20) & ~x & HIGHS)         /* < 0x20 */
                 | ((quote - ONES) & ~quote & HIGHS)        /* '"' */
                 | ((slash - ONES) & ~slash & HIGHS);       /* '\\' */
    return bad == 0;
}

/* Validates the string at s->p (on its opening quote). On success *from and
 * *to bound its raw content and *escaped says whether it has escapes.
 * Always inlined (two call sites): strings are most of a task's bytes, and
 * a 99-byte task takes 59 ns instead of 68. */
static inline __attribute__((always_inline)) int scan_string(struct scan *s, const unsigned char **from,
                       const unsigned char **to, int *escaped)
{
    const unsigned char *p = s->p + 1, *end = s->end;
    *escaped = 0;
    *from = p;
    for (;;) {
        /* The common case: printable ASCII, eight bytes at a time. */
        while (end - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8);
            if (plain8(x) == 0)
                break;
            p += 8;
        }
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p >= end)
            goto bad;
        if (*p == '"')
            break;
        if (*p == '\\') {
            *escaped = 1;
            if (++p >= end)
                goto bad;
            switch (*p) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                p++;
                break;
            case 'u':
                p++;
                if (unicode_escape(&p, end) < 0)
                    goto bad;
                break;
            default:
                goto bad;
            }
        } else if (*p < 0x20) {
            goto bad;
        } else {
            size_t n = utf8_seq(p, end);
            if (n == 0)
                goto bad;
            p += n;
        }
    }
    *to = p;
    s->p = p + 1;
    return 0;
bad:
    s->p = p;
    return -1;
}

static size_t put_utf8(unsigned char *o, long cp)
{
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes one unit of already validated string content at *p (a raw byte,
 * or one escape) into out; returns how many bytes it wrote (1-4). */
static size_t decode_one(const unsigned char **p, const unsigned char *end, unsigned char *out)
{
    const unsigned char *q = *p;
    if (*q != '\\') {
        out[0] = *q;
        *p = q + 1;
        return 1;
    }
    q += 2;
    *p = q;
    switch (q[-1]) {
    case 'b': out[0] = '\b'; return 1;
    case 'f': out[0] = '\f'; return 1;
    case 'n': out[0] = '\n'; return 1;
    case 'r': out[0] = '\r'; return 1;
    case 't': out[0] = '\t'; return 1;
    case 'u': return put_utf8(out, unicode_escape(p, end));
    default: out[0] = q[-1]; return 1;     /* " \ / */
    }
}

/* Decodes validated string content into out (never longer than the raw
 * content); returns its length. */
static size_t decode_string(const unsigned char *p, const unsigned char *end, unsigned char *out)
{
    size_t n = 0;
    while (p < end)
        n += decode_one(&p, end, out + n);
    return n;
}

/* Whether validated string content decodes to field exactly. */
static int string_equals(const unsigned char *p, const unsigned char *end, int escaped,
                         const char *field, size_t flen)
{
    unsigned char buf[4];
    size_t at = 0;
    if (!escaped)
        return (size_t)(end - p) == flen && memcmp(p, field, flen) == 0;
    while (p < end) {
        size_t n = decode_one(&p, end, buf);
        if (at + n > flen || memcmp(field + at, buf, n) != 0)
            return 0;
        at += n;
    }
    return at == flen;
}

static int scan_number(struct scan *s)
{
    const unsigned char *p = s->p, *end = s->end;
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        goto bad;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    } else {
        goto bad;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9')
            goto bad;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9')
            goto bad;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    s->p = p;
    return 0;
bad:
    s->p = p;
    return -1;
}

static int scan_literal(struct scan *s, const char *word, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) {
        /* Point at the first byte that differs. */
        while (s->p < s->end && n > 0 && *s->p == (unsigned char)*word) {
            s->p++;
            word++;
            n--;
        }
        return -1;
    }
    s->p += n;
    return 0;
}

/*
 * The containers open around the scan position, one bit each (set for an
 * object): the nesting limit costs TASKKEY_MAX_DEPTH bits, not a stack
 * frame per level.
 */
struct nest {
    unsigned depth;                                     /* containers open */
    uint64_t object[(TASKKEY_MAX_DEPTH + 63) / 64];     /* bit i: the (i+1)th is an object */
};

/* Opens a container; returns whether it is an object. */
static int nest_push(struct nest *n, int object)
{
    uint64_t bit = 1ull << (n->depth % 64);
    if (object)
        n->object[n->depth / 64] |= bit;
    else
        n->object[n->depth / 64] &= ~bit;
    n->depth++;
    return object;
}

/* Closes the innermost container; returns whether the one around it, if
 * any, is an object. */
static int nest_pop(struct nest *n)
{
    unsigned d = --n->depth;
    return d > 0 && (n->object[(d - 1) / 64] >> ((d - 1) % 64) & 1);
}

/*
 * The scan is a loop over three places in the grammar:
 *
 *   AT_VALUE --scalar, or {} / []------------> AT_AFTER
 *   AT_VALUE --'{'---------------------------> AT_NAME
 *   AT_VALUE --'['---------------------------> AT_VALUE
 *   AT_NAME  --"name" ':'--------------------> AT_VALUE
 *   AT_AFTER --',' in an object / an array---> AT_NAME / AT_VALUE
 *   AT_AFTER --'}' or ']'--------------------> AT_AFTER (one level out)
 *   AT_AFTER --end of the top-level value----> done: only white space may follow
 *
 * A value's level is one more than the containers open around it, scalars
 * included, as in jansson. The key field is looked for only among the
 * names of the top-level object (depth 1).
 */
enum scan_at { AT_VALUE, AT_NAME, AT_AFTER };

enum taskkey_result taskkey_find(const char *task, size_t len,
                                 const char *field, size_t field_len,
                                 char *scratch,
                                 const char **key, size_t *keylen,
                                 size_t *err_offset)
{
    struct scan s = { (const unsigned char *)task, (const unsigned char *)task + len };
    struct nest nest;
    enum scan_at at = AT_VALUE;
    const unsigned char *a, *b;
    int esc, top_object, in_object = 0, match = 0, first, seen = 0, bad_type = 0;

    nest.depth = 0;
    *key = NULL;
    *keylen = 0;
    if (err_offset)
        *err_offset = 0;
    if (len == 0)
        return TASKKEY_EMPTY;
    skip_ws(&s);
    top_object = s.p < s.end && *s.p == '{';
    for (;;) {
        switch (at) {
        case AT_NAME:
            if (s.p >= s.end || *s.p != '"' || scan_string(&s, &a, &b, &esc) != 0)
                goto invalid;
            match = nest.depth == 1 && string_equals(a, b, esc, field, field_len);
            skip_ws(&s);
            if (s.p >= s.end || *s.p != ':')
                goto invalid;
            s.p++;
            skip_ws(&s);
            at = AT_VALUE;
            break;

        case AT_VALUE:
            if (nest.depth >= TASKKEY_MAX_DEPTH || s.p >= s.end)
                goto invalid;
            /* The first key field's value: a string or a number is the key. */
            first = match && ++seen == 1;
            match = 0;
            at = AT_AFTER;
            switch (*s.p) {
            case '"':
                if (scan_string(&s, &a, &b, &esc) != 0)
                    goto invalid;
                if (first && esc) {
                    *keylen = decode_string(a, b, (unsigned char *)scratch);
                    *key = scratch;
                } else if (first) {
                    *key = (const char *)a;
                    *keylen = (size_t)(b - a);
                }
                break;
            case '{':
            case '[':
                bad_type |= first;
                in_object = nest_push(&nest, *s.p == '{');
                s.p++;
                skip_ws(&s);
                if (s.p < s.end && *s.p == (in_object ? '}' : ']')) {
                    s.p++;
                    in_object = nest_pop(&nest);
                } else {
                    at = in_object ? AT_NAME : AT_VALUE;
                }
                break;
            case 't':
                bad_type |= first;
                if (scan_literal(&s, "true", 4) != 0)
                    goto invalid;
                break;
            case 'f':
                bad_type |= first;
                if (scan_literal(&s, "false", 5) != 0)
                    goto invalid;
                break;
            case 'n':
                bad_type |= first;
                if (scan_literal(&s, "null", 4) != 0)
                    goto invalid;
                break;
            default: {
                const unsigned char *v = s.p;
                if (scan_number(&s) != 0)
                    goto invalid;
                if (first) {
                    *key = (const char *)v;
                    *keylen = (size_t)(s.p - v);
                }
                break;
            }
            }
            break;

        case AT_AFTER:
            skip_ws(&s);
            if (nest.depth == 0)
                goto done;
            if (s.p >= s.end)
                goto invalid;
            if (*s.p == ',') {
                s.p++;
                skip_ws(&s);
                at = in_object ? AT_NAME : AT_VALUE;
            } else if (*s.p == (in_object ? '}' : ']')) {
                s.p++;
                in_object = nest_pop(&nest);
            } else {
                goto invalid;
            }
            break;
        }
    }
done:
    if (s.p != s.end)
        goto invalid;
    /* The whole text is valid; the precedence of the rest is the header's. */
    if (!top_object)
        return TASKKEY_NOT_OBJECT;
    if (seen == 1 && !bad_type)
        return TASKKEY_OK;
    *key = NULL;
    *keylen = 0;
    if (seen > 1)
        return TASKKEY_DUPLICATE_KEY;
    return seen == 0 ? TASKKEY_NO_KEY : TASKKEY_BAD_KEY_TYPE;
invalid:
    *key = NULL;
    *keylen = 0;
    if (err_offset)
        *err_offset = (size_t)(s.p - (const unsigned char *)task);
    return TASKKEY_INVALID_JSON;
}
