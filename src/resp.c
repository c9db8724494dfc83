/*
 * resp: RESP encoding of a command. The length is counted first, so the
 * buffer grows at most once per command and the bytes are written in one
 * pass.
 */
#include "resp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Decimal digits of v. */
static size_t digits(size_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* Writes prefix, v in decimal and "\r\n" at p; returns the end. */
static char *put_header(char *p, char prefix, size_t v)
{
    size_t n = digits(v);
    *p++ = prefix;
    for (size_t i = n; i-- > 0; v /= 10)
        p[i] = (char)('0' + v % 10);
    p += n;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

static int reserve(struct resp_buf *b, size_t more)
{
    if (more <= b->cap - b->len)
        return 0;
    if (more > SIZE_MAX / 2 - b->len)
        return -1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < more)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int resp_append_command(struct resp_buf *b, int argc, const char *const *argv,
                        const size_t *argvlen)
{
    if (argc < 0)
        return -1;
    size_t need = 1 + digits((size_t)argc) + 2;
    for (int i = 0; i < argc; i++) {
        size_t n = argvlen ? argvlen[i] : strlen(argv[i]);
        size_t one = 1 + digits(n) + 2 + 2;
        if (n > SIZE_MAX / 2 - need - one)
            return -1;
        need += one + n;
    }
    /* One more byte for a NUL after the command, not counted in len:
     * hiredis's parser of a formatted command (nextArgument) reads one byte
     * past a lone argument, as its own formatters always leave one there. */
    if (reserve(b, need + 1) != 0)
        return -1;
    char *p = put_header(b->p + b->len, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        size_t n = argvlen ? argvlen[i] : strlen(argv[i]);
        p = put_header(p, '$', n);
        if (n > 0)
            memcpy(p, argv[i], n);
        p += n;
        *p++ = '\r';
        *p++ = '\n';
    }
    *p = '\0';
    b->len += need;
    return 0;
}

void resp_buf_free(struct resp_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}
