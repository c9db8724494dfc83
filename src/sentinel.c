/*
 * sentinel: lists, replies and messages of Redis Sentinel (see sentinel.h).
 */
#include "sentinel.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A port of len decimal digits: 1-65535, or -1. */
static int parse_port(const char *p, size_t len)
{
    int v = 0;
    if (len == 0 || len > 5)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v >= 1 && v <= 65535 ? v : -1;
}

int sentinel_addr_same(const struct sentinel_addr *a, const struct sentinel_addr *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

int sentinel_parse_addr(const char *p, size_t len, int empty_host_ok, struct sentinel_addr *a)
{
    const char *end = p + len, *host, *port;
    size_t hlen;
    if (len > 0 && p[0] == '[') {
        const char *close = memchr(p, ']', len);
        if (close == NULL || close + 1 >= end || close[1] != ':')
            return -1;
        host = p + 1;
        hlen = (size_t)(close - host);
        port = close + 2;
    } else {
        const char *colon = NULL;
        for (const char *q = p; q < end; q++)
            if (*q == ':')
                colon = q;
        if (colon == NULL)
            return -1;
        host = p;
        hlen = (size_t)(colon - p);
        port = colon + 1;
    }
    int v = parse_port(port, (size_t)(end - port));
    if ((hlen == 0 && !empty_host_ok) || hlen >= SENTINEL_HOST_MAX || v < 0)
        return -1;
    memcpy(a->host, host, hlen);
    a->host[hlen] = '\0';
    a->port = v;
    return 0;
}

int sentinel_parse_list(struct sentinels *s, const char *text, char *why, size_t whylen)
{
    const char *p = text;
    memset(s, 0, sizeof *s);
    while (*p == ' ')
        p++;
    if (*p == '\0')
        return 0;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (s->n == SENTINEL_MAX) {
            snprintf(why, whylen, "more than %d sentinels", SENTINEL_MAX);
            return -1;
        }
        if (sentinel_parse_addr(p, len, 0, &s->at[s->n]) != 0) {
            snprintf(why, whylen, "'%.*s' is not host:port (a port 1-65535; [v6]:port)",
                     (int)(len > 80 ? 80 : len), p);
            return -1;
        }
        s->n++;
        if (end == NULL)
            break;
        p = end + 1;
        while (*p == ' ')
            p++;
    }
    return 0;
}

void sentinel_answered(struct sentinels *s, int i)
{
    if (i <= 0 || i >= s->n)
        return;
    struct sentinel_addr a = s->at[i];
    memmove(&s->at[1], &s->at[0], (size_t)i * sizeof s->at[0]);
    s->at[0] = a;
}

int sentinel_parse_master(const char *const *elem, const size_t *len, size_t n,
                          struct sentinel_addr *a)
{
    if (elem == NULL)
        return 0;
    if (n != 2 || elem[0] == NULL || elem[1] == NULL || len[0] == 0 ||
        len[0] >= SENTINEL_HOST_MAX)
        return -1;
    int v = parse_port(elem[1], len[1]);
    if (v < 0)
        return -1;
    memcpy(a->host, elem[0], len[0]);
    a->host[len[0]] = '\0';
    a->port = v;
    return 1;
}

int sentinel_is_master_role(const char *first, size_t len)
{
    return first != NULL && len == 6 && memcmp(first, "master", 6) == 0;
}

int sentinel_parse_switch(const char *msg, size_t len, const char *name,
                          struct sentinel_addr *to)
{
    /* <name> <old ip> <old port> <new ip> <new port> */
    const char *w[5];
    size_t wl[5], nw = 0, i = 0;
    while (i < len && nw < 5) {
        while (i < len && msg[i] == ' ')
            i++;
        if (i == len)
            break;
        w[nw] = msg + i;
        while (i < len && msg[i] != ' ')
            i++;
        wl[nw] = (size_t)(msg + i - w[nw]);
        nw++;
    }
    while (i < len && msg[i] == ' ')
        i++;
    if (nw != 5 || i != len)
        return -1;
    if (wl[0] != strlen(name) || memcmp(w[0], name, wl[0]) != 0)
        return 0;
    const char *e[2] = { w[3], w[4] };
    size_t el[2] = { wl[3], wl[4] };
    return sentinel_parse_master(e, el, 2, to) == 1 ? 1 : -1;
}

enum sentinel_server sentinel_wrong_server(const char *err, size_t len)
{
    static const struct {
        const char          *code;
        enum sentinel_server says;
    } codes[] = {
        { "READONLY",   SENTINEL_NOT_MASTER },
        { "UNBLOCKED",  SENTINEL_NOT_MASTER },
        { "MASTERDOWN", SENTINEL_NOT_MASTER },
        { "LOADING",    SENTINEL_NOT_NOW },
        { "NOREPLICAS", SENTINEL_NOT_NOW },
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        size_t n = strlen(codes[i].code);
        if (len >= n && memcmp(err, codes[i].code, n) == 0 && (len == n || err[n] == ' '))
            return codes[i].says;
    }
    return SENTINEL_RIGHT;
}
