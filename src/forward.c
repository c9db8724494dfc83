/*
 * forward: the wrong shard's tasks to the right one (see forward.h).
 */
#include "forward.h"

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "backoff.h"
#include "clock.h"
#include "ctx.h"
#include "episode.h"
#include "lease.h"
#include "log.h"
#include "master.h"
#include "refusal.h"
#include "scripts.h"

/* Tasks per batch: forward_in hands them to Lua's unpack, whose stack is
 * bounded; wrong-shard tasks are few anyway. */
#define FORWARD_BATCH     500
#define FORWARD_RETRY_MIN 200
#define FORWARD_RETRY_MAX 5000

enum forward_state { F_IDLE, F_PEEK, F_PUSH, F_TRIM };

struct forward {
    struct slotd      *sd;          /* (ref) */
    enum forward_state state;
    uintptr_t          gen;         /* replies of an older generation are stale */
    int                to;          /* the shard being forwarded to, while not IDLE */
    unsigned char      pending[KEYS_SHARDS_MAX];    /* shard j may have tasks waiting */
    char               list[KEYS_NAME_MAX];         /* {ns#i}:forward:<to> */
    char               batch_key[KEYS_NAME_MAX];    /* {ns#i}:forward:<to>:batch */
    char               target[KEYS_NAME_MAX];       /* {ns#to}:intake */
    char               target_seen[KEYS_NAME_MAX];  /* {ns#to}:forwarded */
    char               batch[24];   /* the batch number, as Redis holds it */
    int                have_batch;  /* batch[] read for this round */
    /* The batch in hand, oldest first (owned). */
    char             **task;
    size_t            *len;
    uint32_t           n;
    struct event      *retry;       /* owned: after a refusal */
    struct backoff     backoff;
    struct episode     trouble;     /* refusals, said once per episode */
    uint64_t           forwarded;
    int                remote;      /* Redis Cluster: the intakes may be on other nodes */
    struct conn        node;        /* owned, with remote: to the node of shard `to`'s slot
                                       when that is not slotd's master */
    struct conn       *in;          /* (ref) where forward_in of the batch in hand went */
};

static void run(struct forward *f);
static void on_node_up(struct conn *c, void *arg);
static void on_node_down(struct conn *c, void *arg);
static void on_node_wrong(struct conn *c, void *arg);
static void later(struct forward *f);

static struct forward *of(redisAsyncContext *ac)
{
    struct conn *c = conn_of(ac);
    return c->on_up == on_node_up ? ((struct forward *)c->arg) : ((struct slotd *)c->arg)->forward;
}

static void free_batch(struct forward *f)
{
    for (uint32_t i = 0; i < f->n; i++)
        free(f->task[i]);
    f->n = 0;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct forward *f = arg;
    (void)fd;
    (void)what;
    forward_kick(f);
}

/* Shard `to` could not be served: say so (once per episode), and try every
 * shard again after a backoff. Nothing was lost: the tasks wait in the list. */
static void refused(struct forward *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refused(struct forward *f, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    uint64_t repeats = 0;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    switch (episode_hit(&f->trouble, clock_mono_ms(), 0, &repeats)) {
    case EPISODE_FIRST:
        log_error("forwarding to shard %d held: %s; the tasks wait in %s; retrying", f->to, what,
                  f->list);
        break;
    case EPISODE_AGAIN:
        log_error("forwarding still held: %s (%" PRIu64 " refusals in the last minute)", what,
                  repeats);
        break;
    case EPISODE_QUIET:
        break;
    }
    free_batch(f);
    f->state = F_IDLE;
    f->gen++;
    uint32_t ms = backoff_next(&f->backoff, (uint32_t)clock_mono_ms() * 2654435761u);
    struct timeval tv = { ms / 1000, (long)(ms % 1000) * 1000 };
    evtimer_add(f->retry, &tv);
}

struct forward *forward_create(struct slotd *sd)
{
    struct forward *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->sd = sd;
    f->task = calloc(FORWARD_BATCH, sizeof *f->task);
    f->len = calloc(FORWARD_BATCH, sizeof *f->len);
    f->retry = evtimer_new(sd->base, on_retry, f);
    backoff_init(&f->backoff, FORWARD_RETRY_MIN, FORWARD_RETRY_MAX);
    f->remote = sd->conf.redis.cluster_seeds[0] != '\0' && sd->keys.nshards > 1;
    if (f->task == NULL || f->len == NULL || f->retry == NULL ||
        (f->remote && conn_init(&f->node, "forward", sd->base, &sd->conf, on_node_up,
                                on_node_down, f) != 0)) {
        forward_destroy(f);
        return NULL;
    }
    if (f->remote) {
        f->node.on_wrong = on_node_wrong;
        conn_start(&f->node);       /* connects once given the node's address */
    }
    return f;
}

void forward_destroy(struct forward *f)
{
    if (f == NULL)
        return;
    free_batch(f);
    free(f->task);
    free(f->len);
    if (f->retry)
        event_free(f->retry);
    if (f->remote)
        conn_free(&f->node);
    free(f);
}

uint64_t forward_count(const struct forward *f) { return f->forwarded; }

void forward_add_cluster_replies(const struct forward *f, uint64_t *acc)
{
    for (int k = 0; f->remote && k < CLUSTER_REPLY_COUNT; k++)
        acc[k] += f->node.cluster[k];
}

void forward_stop(struct forward *f)
{
    free_batch(f);
    f->state = F_IDLE;
    f->gen++;
    evtimer_del(f->retry);
}

void forward_kick(struct forward *f)
{
    const struct keys *k = &f->sd->keys;
    if (k->nshards < 2)
        return;
    for (int j = 0; j < k->nshards; j++)
        f->pending[j] = j != k->shard;
    run(f);
}

/* The connection to shard `to`'s node: slotd's own (one server holds
 * every shard unless they are in a Redis Cluster), or node, pointed at the
 * master of that shard's slot. NULL when that is not known or not connected
 * yet: the batch waits (node's connect kicks, or the retry). */
static struct conn *where(struct forward *f)
{
    struct slotd *sd = f->sd;
    if (!f->remote)
        return &sd->main;
    struct keys target;
    const struct sentinel_addr *a = NULL;
    if (keys_init_shard(&target, sd->keys.ns, f->to, sd->keys.nshards) == 0)
        a = master_of_slot(&sd->master, keys_slot(&target));
    if (a == NULL) {
        refused(f, "no node known to serve slot %u of shard %d yet",
                keys_slot(&target), f->to);
        return NULL;
    }
    if (sd->master.known && strcmp(a->host, sd->master.addr.host) == 0 &&
        a->port == sd->master.addr.port)
        return &sd->main;
    conn_set_addr(&f->node, a->host, a->port);
    if (f->node.state == CONN_UP)
        return &f->node;
    later(f);       /* on_node_up, or the retry, kicks */
    return NULL;
}

static void on_list(redisAsyncContext *ac, void *reply, void *privdata);
static void on_batch(redisAsyncContext *ac, void *reply, void *privdata);
static void on_in(redisAsyncContext *ac, void *reply, void *privdata);
static void on_out(redisAsyncContext *ac, void *reply, void *privdata);

/* Starts on the next shard with tasks maybe waiting, if idle and active. */
static void run(struct forward *f)
{
    struct slotd *sd = f->sd;
    const struct keys *k = &sd->keys;
    if (f->state != F_IDLE || evtimer_pending(f->retry, NULL) ||
        lease_role(sd->lease) != LEASE_ACTIVE || sd->main.state != CONN_UP)
        return;
    int j = 0;
    while (j < k->nshards && !f->pending[j])
        j++;
    if (j == k->nshards)
        return;
    f->pending[j] = 0;
    f->to = j;
    keys_forward(k, j, f->list, sizeof f->list);
    keys_forward_batch(k, j, f->batch_key, sizeof f->batch_key);
    struct keys target;
    if (keys_init_shard(&target, k->ns, j, k->nshards) != 0)
        return;
    snprintf(f->target, sizeof f->target, "%s", target.intake);
    snprintf(f->target_seen, sizeof f->target_seen, "%s", target.forwarded);
    char want[24];
    snprintf(want, sizeof want, "-%d", FORWARD_BATCH);
    const char *lrange[] = { "LRANGE", f->list, want, "-1" };
    const char *get[] = { "GET", f->batch_key };
    f->state = F_PEEK;
    f->have_batch = 0;
    if (conn_command(&sd->main, on_list, (void *)f->gen, 4, lrange, NULL) != 0 ||
        conn_command(&sd->main, on_batch, (void *)f->gen, 2, get, NULL) != 0)
        forward_stop(f);        /* the connection is going: main up kicks again */
}

/* The list's tail: LRANGE gives it newest first; kept oldest first. */
static void on_list(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct forward *f = of(ac);
    redisReply *r = reply;
    if (r == NULL || (uintptr_t)privdata != f->gen)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        refused(f, "%s: %.*s", f->list, (int)refusal_len(r->str), r->str);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY)
        return;
    free_batch(f);
    for (size_t i = 0; i < r->elements && i < FORWARD_BATCH; i++) {
        const redisReply *e = r->element[r->elements - 1 - i];
        if (e->type != REDIS_REPLY_STRING || (f->task[i] = malloc(e->len ? e->len : 1)) == NULL) {
            refused(f, "%s: an element that is not a string, or out of memory", f->list);
            return;
        }
        memcpy(f->task[i], e->str, e->len);
        f->len[i] = e->len;
        f->n++;
    }
}

static void on_batch(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct forward *f = of(ac);
    struct slotd *sd = f->sd;
    redisReply *r = reply;
    if (r == NULL || (uintptr_t)privdata != f->gen || f->state != F_PEEK)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        refused(f, "%s: %.*s", f->batch_key, (int)refusal_len(r->str), r->str);
        return;
    }
    snprintf(f->batch, sizeof f->batch, "%s", r->type == REDIS_REPLY_STRING ? r->str : "0");
    if (f->n == 0) {            /* nothing waits for this shard */
        f->state = F_IDLE;
        run(f);
        return;
    }
    /* forward_in on shard `to`: its intake, its record of what came in;
     * on the node that serves them. */
    f->in = where(f);
    if (f->in == NULL)
        return;
    size_t argc = 7 + f->n;
    const char **argv = malloc(argc * sizeof *argv);
    size_t *argvlen = malloc(argc * sizeof *argvlen);
    char from[16];
    snprintf(from, sizeof from, "%d", sd->keys.shard);
    if (argv == NULL || argvlen == NULL) {
        free(argv);
        free(argvlen);
        refused(f, "out of memory");
        return;
    }
    const char *head[] = { "EVAL", scripts_forward_in, "2", f->target, f->target_seen, from,
                           f->batch };
    for (size_t i = 0; i < 7; i++) {
        argv[i] = head[i];
        argvlen[i] = strlen(head[i]);
    }
    for (uint32_t i = 0; i < f->n; i++) {
        argv[7 + i] = f->task[i];
        argvlen[7 + i] = f->len[i];
    }
    f->state = F_PUSH;
    int rc = conn_command(f->in, on_in, (void *)f->gen, (int)argc, argv, argvlen);
    free(argv);
    free(argvlen);
    if (rc != 0)
        forward_stop(f);
}

static void on_in(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct forward *f = of(ac);
    struct slotd *sd = f->sd;
    redisReply *r = reply;
    if (r == NULL || (uintptr_t)privdata != f->gen || f->state != F_PUSH)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        refused(f, "shard %d refused them: %.*s", f->to, (int)refusal_len(r->str), r->str);
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
        r->element[1]->type == REDIS_REPLY_STRING && r->element[2]->type == REDIS_REPLY_STRING) {
        refused(f, "%s holds a %s, not a %s (look at it with TYPE, then RENAME or DEL it)",
                r->element[1]->str, r->element[2]->str,
                strcmp(r->element[1]->str, f->target) == 0 ? "list" : "hash");
        return;
    }
#ifdef SLOTD_TESTING
    /* Built only into the tests' slotd-testhooks: slotd killed between the
     * two writes, as kill -9 at the worst moment would (tests/integration/
     * test_shards.c). */
    if (getenv("SLOTD_TEST_KILL_AFTER_FORWARD_IN") != NULL) {
        log_warn("test hook: killed after forwarding %" PRIu32 " tasks to shard %d, before the "
                 "trim", f->n, f->to);
        raise(SIGKILL);
    }
#endif
    /* Shard `to` has them: trim them here, if still ours to trim. */
    char n[16];
    snprintf(n, sizeof n, "%" PRIu32, f->n);
    const char *argv[] = { "EVAL", scripts_forward_out, "3", f->list, f->batch_key,
                           sd->keys.tail, f->batch, n, lease_token(sd->lease) };
    f->state = F_TRIM;
    if (conn_command(&sd->main, on_out, (void *)f->gen, 9, argv, NULL) != 0)
        forward_stop(f);
}

static void on_out(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct forward *f = of(ac);
    struct slotd *sd = f->sd;
    redisReply *r = reply;
    uint64_t lasted;
    if (r == NULL || (uintptr_t)privdata != f->gen || f->state != F_TRIM)
        return;
    if (r->type == REDIS_REPLY_INTEGER) {
        f->forwarded += f->n;
        log_debug("forwarded %" PRIu32 " tasks to shard %d (batch %s)", f->n, f->to, f->batch);
        if (episode_end(&f->trouble, clock_mono_ms(), &lasted, NULL))
            log_info("forwarding works again after %.1f s", (double)lasted / 1000.0);
        backoff_reset(&f->backoff);
        f->pending[f->to] = 1;      /* more may wait behind this batch */
        free_batch(f);
        f->state = F_IDLE;
        run(f);
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[2]->type == REDIS_REPLY_STRING &&
        strcmp(r->element[0]->str, "moved") == 0) {
        if (strcmp(r->element[1]->str, sd->keys.tail) == 0) {
            /* Another slotd took the lease: the fence. */
            char what[96];
            snprintf(what, sizeof what, "%" PRIu32 " tasks forwarded to shard %d not trimmed here",
                     f->n, f->to);
            forward_stop(f);
            sd->stats.fenced++;
            lease_fenced(sd->lease, r->element[2]->str, what);
            return;
        }
        /* The batch number moved on under us: someone else forwarded this
         * batch (another slotd, before the fence stopped it). Start over. */
        f->pending[f->to] = 1;
        free_batch(f);
        f->state = F_IDLE;
        run(f);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR)
        refused(f, "%.*s", (int)refusal_len(r->str), r->str);
    else if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
             r->element[1]->type == REDIS_REPLY_STRING && r->element[2]->type == REDIS_REPLY_STRING)
        refused(f, "%s holds a %s (look at it with TYPE, then DEL it)", r->element[1]->str,
                r->element[2]->str);
    else
        refused(f, "an unexpected answer of forward_out");
}

/* The batch in hand waits: it is read again when the retry fires. */
static void later(struct forward *f)
{
    f->pending[f->to] = 1;
    free_batch(f);
    f->state = F_IDLE;
    f->gen++;
    struct timeval tv = { 0, FORWARD_RETRY_MIN * 1000 };
    evtimer_add(f->retry, &tv);
}

static void on_node_up(struct conn *c, void *arg)
{
    struct forward *f = arg;
    (void)c;
    evtimer_del(f->retry);
    forward_kick(f);
}

/* A forward_in in flight on node was lost: sent again (taken in once). */
static void on_node_down(struct conn *c, void *arg)
{
    struct forward *f = arg;
    if (f->state == F_PUSH && f->in == c)
        later(f);
}

/* The node said the slot is elsewhere (MOVED) or the cluster is down: the
 * nodes are asked again; the batch is retried after a backoff. */
static void on_node_wrong(struct conn *c, void *arg)
{
    struct forward *f = arg;
    master_wrong(&f->sd->master, c);
}
