/*
 * cluster: CLUSTER SLOTS into a map of slot ranges, and what Redis
 * Cluster's error replies ask of a client (see cluster.h).
 */
#include "cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reply_names[] = {
#define CLUSTER_NAME(e, name) name,
    CLUSTER_REPLIES(CLUSTER_NAME)
#undef CLUSTER_NAME
};

const char *cluster_reply_name(enum cluster_reply k)
{
    return (size_t)k < sizeof reply_names / sizeof reply_names[0] ? reply_names[k] : "?";
}

void cluster_map_free(struct cluster_map *m)
{
    if (m == NULL)
        return;
    free(m->r);
    m->r = NULL;
    m->n = 0;
}

/* An integer element in [0, CLUSTER_SLOTS): its value, or -1. */
static long slot_of(const redisReply *e)
{
    if (e == NULL || e->type != REDIS_REPLY_INTEGER || e->integer < 0 ||
        e->integer >= CLUSTER_SLOTS)
        return -1;
    return (long)e->integer;
}

/*
 * A node's [host, port, ...] into *a (a NULL or empty host: asked_host).
 * 1; 0 when its host is "?" (unknown: nobody to go to); -1 when it does not
 * parse.
 */
static int node_of(const redisReply *n, const char *asked_host, struct sentinel_addr *a)
{
    if (n == NULL || n->type != REDIS_REPLY_ARRAY || n->elements < 2)
        return -1;
    const redisReply *host = n->element[0], *port = n->element[1];
    if (port->type != REDIS_REPLY_INTEGER || port->integer < 1 || port->integer > 65535)
        return -1;
    if (host->type == REDIS_REPLY_STRING && host->len == 1 && host->str[0] == '?')
        return 0;
    const char *h = asked_host;
    size_t hlen = strlen(asked_host);
    if (host->type == REDIS_REPLY_STRING && host->len > 0) {
        h = host->str;
        hlen = host->len;
    } else if (host->type != REDIS_REPLY_STRING && host->type != REDIS_REPLY_NIL) {
        return -1;
    }
    if (hlen == 0 || hlen >= sizeof a->host)
        return -1;
    memcpy(a->host, h, hlen);
    a->host[hlen] = '\0';
    a->port = (int)port->integer;
    return 1;
}

static int by_start(const void *a, const void *b)
{
    const struct cluster_range *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

int cluster_map_parse(struct cluster_map *m, const redisReply *r, const char *asked_host,
                      char *why, size_t whylen)
{
    m->r = NULL;
    m->n = 0;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        snprintf(why, whylen, "CLUSTER SLOTS answered %s, not an array of slot ranges",
                 r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : "something else");
        return -1;
    }
    if (r->elements == 0)
        return 0;               /* a cluster with no slot assigned yet */
    m->r = calloc(r->elements, sizeof *m->r);
    if (m->r == NULL) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        struct cluster_range *to = &m->r[m->n];
        long start = -1, end = -1;
        int got = -1;
        if (e->type == REDIS_REPLY_ARRAY && e->elements >= 3) {
            start = slot_of(e->element[0]);
            end = slot_of(e->element[1]);
            got = node_of(e->element[2], asked_host, &to->master);
        }
        if (start < 0 || end < start || got < 0) {
            snprintf(why, whylen, "CLUSTER SLOTS: range %zu is not [start, end, [host, port, ...],"
                     " ...]", i);
            cluster_map_free(m);
            return -1;
        }
        if (got == 0)
            continue;           /* its master's address is not known: as if unserved */
        to->start = (unsigned)start;
        to->end = (unsigned)end;
        m->n++;
    }
    qsort(m->r, m->n, sizeof *m->r, by_start);
    for (size_t i = 1; i < m->n; i++)
        if (m->r[i].start <= m->r[i - 1].end) {
            snprintf(why, whylen, "CLUSTER SLOTS: the ranges %u-%u and %u-%u overlap",
                     m->r[i - 1].start, m->r[i - 1].end, m->r[i].start, m->r[i].end);
            cluster_map_free(m);
            return -1;
        }
    return 0;
}

const struct sentinel_addr *cluster_map_master(const struct cluster_map *m, unsigned slot)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {           /* the first range that ends at or after slot */
        size_t mid = lo + (hi - lo) / 2;
        if (m->r[mid].end < slot)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->n && m->r[lo].start <= slot ? &m->r[lo].master : NULL;
}

/* The word err starts with is code (then a space, or the end). */
static int starts(const char *err, size_t len, const char *code)
{
    size_t n = strlen(code);
    return len >= n && memcmp(err, code, n) == 0 && (len == n || err[n] == ' ');
}

/* "<slot> <addr>" after MOVED or ASK into out; the address's host may be
 * empty (asked_host). out->to.port stays 0 when it does not parse. */
static void parse_redirect(const char *p, size_t len, const char *asked_host,
                           struct cluster_redirect *out)
{
    const char *end = p + len, *sp = memchr(p, ' ', len);
    long slot = 0;
    if (sp == NULL || sp == p || sp - p > 5)
        return;
    for (const char *q = p; q < sp; q++) {
        if (*q < '0' || *q > '9')
            return;
        slot = slot * 10 + (*q - '0');
    }
    if (slot >= CLUSTER_SLOTS)
        return;
    struct sentinel_addr a;
    if (sentinel_parse_addr(sp + 1, (size_t)(end - sp - 1), 1, &a) != 0)
        return;
    if (a.host[0] == '\0') {
        if (strlen(asked_host) >= sizeof a.host)
            return;
        snprintf(a.host, sizeof a.host, "%s", asked_host);
    }
    out->slot = (int)slot;
    out->to = a;
}

enum cluster_reply cluster_parse_error(const char *err, size_t len, const char *asked_host,
                                       struct cluster_redirect *out)
{
    memset(out, 0, sizeof *out);
    out->slot = -1;
    if (err == NULL)
        out->kind = CLUSTER_OTHER;
    else if (starts(err, len, "MOVED") || starts(err, len, "ASK")) {
        size_t word = err[0] == 'M' ? 6 : 4;
        out->kind = err[0] == 'M' ? CLUSTER_MOVED : CLUSTER_ASK;
        if (len > word)
            parse_redirect(err + word, len - word, asked_host, out);
    } else if (starts(err, len, "TRYAGAIN"))
        out->kind = CLUSTER_TRYAGAIN;
    else if (starts(err, len, "CLUSTERDOWN"))
        out->kind = CLUSTER_DOWN;
    else
        out->kind = CLUSTER_OTHER;
    return out->kind;
}
