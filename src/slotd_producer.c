/*
 * slotd_producer: libslotd's producer side. The shard comes from route.h's
 * route_shard (the one rule slotd, slotctl and this library share); the
 * connection from dial.h, as the worker's.
 */
#include "slotd_producer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "conf.h"
#include "dial.h"
#include "keys.h"
#include "route.h"

#define ERR_MAX          512
#define PUSH_CHUNK       1000   /* tasks per LPUSH */
#define LOCATE_EVERY_MS  1000   /* with Sentinel: at most one look per this */

struct slotd_producer {
    struct slotd_producer_options o;    /* copy; its strings point into strs */
    char          *strs[12];            /* owned: the copies of o's strings */
    struct route_rules rules;           /* key_field: o's */
    char         (*intakes)[KEYS_NAME_MAX];   /* owned: each shard's intake */
    struct dial    dial;                /* strings: o's */
    struct dial_watch watch;            /* owned: the sentinel asked where the master is */
    uint64_t       located_at;          /* clock_mono_ms of the last look; 0: none */
    /* The connections, each NULL until made or after a failure: one, or
     * with Cluster one per shard, to the master of the shard's slot (shards
     * may live on different nodes). */
    redisContext **c;                   /* owned, each owned; nconn of them */
    unsigned      *slot;                /* owned: with Cluster, each shard's slot */
    int            nconn;
    char          *scratch;             /* owned: route_shard's, cap bytes */
    size_t         cap;
    char           err[ERR_MAX];
};

const char *slotd_producer_error(const struct slotd_producer *p) { return p->err; }

/* Copies s (or dflt when s is NULL or "", or NULL when dflt is) into the
 * handle's next owned string; -1 when out of memory. */
static int own(struct slotd_producer *p, int *i, const char **s, const char *dflt)
{
    const char *v = *s && **s ? *s : dflt;
    if (v == NULL) {
        *s = NULL;
        return 0;
    }
    if ((p->strs[*i] = strdup(v)) == NULL)
        return -1;
    *s = p->strs[(*i)++];
    return 0;
}

void slotd_producer_close(struct slotd_producer *p)
{
    if (p == NULL)
        return;
    for (int i = 0; p->c != NULL && i < p->nconn; i++)
        if (p->c[i])
            redisFree(p->c[i]);
    free(p->c);
    free(p->slot);
    dial_watch_close(&p->watch);
    for (size_t i = 0; i < sizeof p->strs / sizeof p->strs[0]; i++)
        free(p->strs[i]);
    free(p->intakes);
    free(p->scratch);
    free(p);
}

/* Which connection shard s's pushes take. */
static int conn_of(const struct slotd_producer *p, int s)
{
    return p->nconn > 1 ? s : 0;
}

/*
 * Connection i, made again if the last call lost it. With Sentinel, at
 * most once a second, a sentinel says where the master is: a connection to
 * another server (an old master that froze and woke, and takes itself for
 * the master still) is dropped before it takes a push. With Cluster, the
 * seeds say who serves the shard's slot now.
 */
static redisContext *conn(struct slotd_producer *p, int i)
{
    if (p->c[i] != NULL && dial_uses_sentinel(&p->dial)) {
        uint64_t now = clock_mono_ms();
        char at[DIAL_ADDR_MAX], why[ERR_MAX];
        if (p->located_at == 0 || now - p->located_at >= LOCATE_EVERY_MS) {
            p->located_at = now;
            if (dial_locate(&p->dial, &p->watch, at, sizeof at, why, sizeof why) == 1 &&
                strcmp(at, p->dial.addr) != 0) {
                redisFree(p->c[i]);
                p->c[i] = NULL;
            }
        }
    }
    if (p->c[i] == NULL) {
        p->dial.slot = p->slot[i];
        p->c[i] = dial_connect(&p->dial, "slotd-producer", p->err, sizeof p->err);
    }
    return p->c[i];
}

/* After a call: a connection that failed in it goes now (slotd_worker.c's
 * settled()). rc passes through. */
static int settled(struct slotd_producer *p, int rc)
{
    for (int i = 0; i < p->nconn; i++)
        if (p->c[i] != NULL && p->c[i]->err) {
            redisFree(p->c[i]);
            p->c[i] = NULL;
        }
    return rc;
}

struct slotd_producer *slotd_producer_open(const struct slotd_producer_options *opts,
                                           char *err, size_t errlen)
{
    struct slotd_producer *p = calloc(1, sizeof *p);
    int i = 0;
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->o = *opts;
    if (own(p, &i, &p->o.host, "127.0.0.1") || own(p, &i, &p->o.unix_path, "") ||
        own(p, &i, &p->o.username, "") || own(p, &i, &p->o.ns, "slotd") ||
        own(p, &i, &p->o.sentinels, "") || own(p, &i, &p->o.sentinel_master, "") ||
        own(p, &i, &p->o.sentinel_username, "") || own(p, &i, &p->o.cluster_seeds, "") ||
        own(p, &i, &p->o.key_field, opts->key_field ? "" : "key")) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* NULL and "" differ for these: no password, or an empty one. */
    if ((opts->password && (p->o.password = p->strs[i++] = strdup(opts->password)) == NULL) ||
        (opts->sentinel_password &&
         (p->o.sentinel_password = p->strs[i++] = strdup(opts->sentinel_password)) == NULL)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (p->o.port == 0) p->o.port = 6379;
    if (p->o.shards == 0) p->o.shards = 1;
    if (p->o.max_task_bytes == 0) p->o.max_task_bytes = 1048576;
    if (p->o.connect_timeout_ms <= 0) p->o.connect_timeout_ms = DIAL_CONNECT_TIMEOUT_MS;
    if (p->o.reply_timeout_ms <= 0) p->o.reply_timeout_ms = DIAL_REPLY_TIMEOUT_MS;
    if (p->o.shards < 1 || p->o.shards > KEYS_SHARDS_MAX) {
        snprintf(err, errlen, "shards %d: 1-%d", p->o.shards, KEYS_SHARDS_MAX);
        goto fail;
    }
    p->nconn = p->o.cluster_seeds[0] != '\0' ? p->o.shards : 1;
    if ((p->intakes = calloc((size_t)p->o.shards, sizeof *p->intakes)) == NULL ||
        (p->c = calloc((size_t)p->nconn, sizeof *p->c)) == NULL ||
        (p->slot = calloc((size_t)p->nconn, sizeof *p->slot)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int s = 0; s < p->o.shards; s++) {
        struct keys k;
        if (keys_init_shard(&k, p->o.ns, s, p->o.shards) != 0) {
            snprintf(err, errlen, "namespace too long");
            goto fail;
        }
        memcpy(p->intakes[s], k.intake, sizeof k.intake);
        if (s < p->nconn)
            p->slot[s] = keys_slot(&k);
    }
    p->rules.key_field = p->o.key_field;
    p->rules.key_field_len = strlen(p->o.key_field);
    p->rules.on_missing_key = p->o.on_missing_key_payload ? CONF_MISSING_PAYLOAD
                                                          : CONF_MISSING_DEAD_LETTER;
    p->rules.max_task_bytes = p->o.max_task_bytes;
    struct dial_options d = { DIAL_OPTIONS_OF(p->o) };
    if (dial_init(&p->dial, &d, err, errlen) != 0)
        goto fail;
    if (conn(p, 0) == NULL) {
        snprintf(err, errlen, "%s", p->err);
        goto fail;
    }
    return p;
fail:
    slotd_producer_close(p);
    return NULL;
}

int slotd_producer_shard_of(struct slotd_producer *p, const char *task, size_t len)
{
    /* Only a task route_task reads as JSON needs the scratch; one larger
     * than max_task_bytes is refused before. */
    size_t need = len < p->rules.max_task_bytes ? len : p->rules.max_task_bytes;
    if (need > p->cap) {
        char *s = realloc(p->scratch, need);
        if (s == NULL)
            return ROUTE_UNROUTABLE_SHARD;      /* slotd, with its memory, routes it */
        p->scratch = s;
        p->cap = need;
    }
    return route_shard(&p->rules, p->o.shards, task, len, p->scratch, NULL, NULL);
}

/* Reads one LPUSH's reply: 0, or -1 with the reason in why (ERR_MAX). */
static int push_reply(struct slotd_producer *p, redisContext *c, const char *intake, char *why)
{
    void *v = NULL;
    if (redisGetReply(c, &v) != REDIS_OK || v == NULL) {
        char lost[256];
        snprintf(why, ERR_MAX, "Redis connection lost: %s (the push may or may not have been "
                 "made)", dial_lost(c, p->o.reply_timeout_ms, lost, sizeof lost));
        return -1;
    }
    redisReply *r = v;
    int rc = 0;
    if (r->type != REDIS_REPLY_INTEGER) {
        dial_check_reply(c, r);
        snprintf(why, ERR_MAX, "LPUSH %s: %s", intake,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

/* Appends one LPUSH of the tasks idx[0..k) onto intake. */
static int append_push(redisContext *c, const char *intake, const char *const *tasks,
                       const size_t *lens, const int *idx, int k, const char **argv,
                       size_t *argvlen)
{
    argv[0] = "LPUSH";
    argvlen[0] = 5;
    argv[1] = intake;
    argvlen[1] = strlen(intake);
    for (int j = 0; j < k; j++) {
        argv[2 + j] = tasks[idx[j]];
        argvlen[2 + j] = lens[idx[j]];
    }
    return redisAppendCommandArgv(c, k + 2, argv, argvlen) == REDIS_OK ? 0 : -1;
}

static int push_many_once(struct slotd_producer *p, const char *const *tasks,
                          const size_t *lens, int n)
{
    int rc = -1, sent = 0;
    int *shard = malloc(((size_t)n + 1) * sizeof *shard);
    int *idx = malloc(((size_t)n + 1) * sizeof *idx);
    int *sent_to = malloc(((size_t)n + 1) * sizeof *sent_to);     /* each LPUSH's shard */
    const char **argv = malloc((PUSH_CHUNK + 2) * sizeof *argv);
    size_t *argvlen = malloc((PUSH_CHUNK + 2) * sizeof *argvlen);
    if (shard == NULL || idx == NULL || sent_to == NULL || argv == NULL || argvlen == NULL) {
        snprintf(p->err, sizeof p->err, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++)
        shard[i] = slotd_producer_shard_of(p, tasks[i], lens[i]);
    /* Every connection needed first: none is left with commands unsent. */
    for (int i = 0; i < n; i++)
        if (conn(p, conn_of(p, shard[i])) == NULL)
            goto out;
    /* Shard by shard, each one's tasks in the order given: LPUSH a b c puts
     * c at the head, so slotd, which takes from the tail, routes a first. */
    for (int s = 0; s < p->o.shards; s++) {
        redisContext *c = p->c[conn_of(p, s)];
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (shard[i] != s)
                continue;
            idx[k++] = i;
            if (k == PUSH_CHUNK) {
                if (append_push(c, p->intakes[s], tasks, lens, idx, k, argv, argvlen) != 0)
                    goto oom;
                sent_to[sent++] = s;
                k = 0;
            }
        }
        if (k > 0) {
            if (append_push(c, p->intakes[s], tasks, lens, idx, k, argv, argvlen) != 0)
                goto oom;
            sent_to[sent++] = s;
        }
    }
    rc = n;
    /* Every reply is read, so each connection stays in step (a failed one
     * is dropped after the call); the first failure is the one said. */
    for (int i = 0; i < sent; i++) {
        char why[ERR_MAX];
        redisContext *c = p->c[conn_of(p, sent_to[i])];
        if (c->err) {
            rc = -1;            /* its failure is said already */
            continue;
        }
        if (push_reply(p, c, p->intakes[sent_to[i]], why) != 0) {
            if (rc != -1)
                snprintf(p->err, sizeof p->err, "%s", why);
            rc = -1;
        }
    }
    goto out;
oom:
    snprintf(p->err, sizeof p->err, "out of memory");
    /* Commands appended and not sent: the connections are out of step. */
    for (int i = 0; i < p->nconn; i++)
        if (p->c[i] != NULL) {
            redisFree(p->c[i]);
            p->c[i] = NULL;
        }
out:
    free(shard);
    free(idx);
    free(sent_to);
    free(argv);
    free(argvlen);
    return rc;
}

int slotd_producer_push_many(struct slotd_producer *p, const char *const *tasks,
                             const size_t *lens, int n)
{
    if (n < 0) {
        snprintf(p->err, sizeof p->err, "a negative number of tasks");
        return -1;
    }
    if (n == 0)
        return 0;
    return settled(p, push_many_once(p, tasks, lens, n));
}

int slotd_producer_push(struct slotd_producer *p, const char *task, size_t len)
{
    int shard = slotd_producer_shard_of(p, task, len);
    if (slotd_producer_push_many(p, &task, &len, 1) != 1)
        return -1;
    return shard;
}
