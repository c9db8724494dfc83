/*
 * forward: the wrong shard's tasks to the right one (see forward.h, and
 * scripts.h for the offsets that make each task arrive once).
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
/* How long a forwarded batch may wait for a replica of shard j's node to
 * have it, before it is sent again. */
#define FORWARD_WAIT_MS   1000

enum forward_state {
    F_IDLE,
    F_PEEK,     /* forward_peek on shard i */
    F_PUSH,     /* forward_in on shard j's node (and WAIT there, with replicas) */
    F_WAIT,     /* its WAIT */
    F_TRIM,     /* forward_out on shard i */
};

struct forward {
    struct slotd      *sd;          /* (ref) */
    enum forward_state state;
    uintptr_t          gen;         /* replies of an older generation are stale */
    int                to;          /* the shard being forwarded to, while not IDLE; the
                                       last one served, while IDLE */
    unsigned char      pending[KEYS_SHARDS_MAX];    /* shard j may have tasks waiting */
    char               list[KEYS_NAME_MAX];         /* {ns#i}:forward:<to> */
    char               done_key[KEYS_NAME_MAX];     /* {ns#i}:forward:<to>:done */
    struct keys        target;      /* shard `to`'s keys: its intake, {ns#to}:forwarded */
    char               offset[24];  /* the batch's offset, as Redis holds it */
    /* The batch in hand, oldest first (owned). */
    char             **task;
    size_t            *len;
    uint32_t           n;
    struct event      *retry;       /* owned: after a refusal, or to look again */
    struct backoff     backoff;
    struct episode     trouble;     /* refusals, said once per episode */
    uint64_t           forwarded;
    int                remote;      /* Redis Cluster: the intakes may be on other nodes */
    struct conn       *node[KEYS_SHARDS_MAX];   /* owned, with remote, made when first
                                                   needed: to the node of shard j's slot
                                                   when that is not slotd's master */
    struct conn       *in;          /* (ref) where forward_in of the batch in hand went */
};

static void run(struct forward *f);
static void on_node_up(struct conn *c, void *arg);
static void on_node_down(struct conn *c, void *arg);
static void on_node_wrong(struct conn *c, void *arg);

static struct forward *of(redisAsyncContext *ac)
{
    struct conn *c = conn_of(ac);
    return c->on_up == on_node_up ? (struct forward *)c->arg : ((struct slotd *)c->arg)->forward;
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

/* Drops the batch in hand (it stays in the list) and looks again in ms. */
static void again_in(struct forward *f, uint32_t ms)
{
    f->pending[f->to] = 1;
    free_batch(f);
    f->state = F_IDLE;
    f->gen++;
    struct timeval tv = { ms / 1000, (long)(ms % 1000) * 1000 };
    evtimer_add(f->retry, &tv);
}

/* Shard `to` could not be served: say so (once per episode), and try again
 * after a backoff. Nothing was lost: the tasks wait in the list. */
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
    again_in(f, backoff_next(&f->backoff, (uint32_t)clock_mono_ms() * 2654435761u));
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
    f->to = sd->keys.shard;
    if (f->task == NULL || f->len == NULL || f->retry == NULL) {
        forward_destroy(f);
        return NULL;
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
    for (int j = 0; j < KEYS_SHARDS_MAX; j++)
        if (f->node[j] != NULL) {
            conn_free(f->node[j]);
            free(f->node[j]);
        }
    free(f);
}

uint64_t forward_count(const struct forward *f) { return f->forwarded; }

void forward_add_cluster_replies(const struct forward *f, uint64_t *acc)
{
    for (int j = 0; j < KEYS_SHARDS_MAX; j++)
        for (int k = 0; f->node[j] != NULL && k < CLUSTER_REPLY_COUNT; k++)
            acc[k] += f->node[j]->cluster[k];
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

static void on_peek(redisAsyncContext *ac, void *reply, void *privdata);
static void on_in(redisAsyncContext *ac, void *reply, void *privdata);
static void on_wait(redisAsyncContext *ac, void *reply, void *privdata);
static void on_out(redisAsyncContext *ac, void *reply, void *privdata);

/* Starts on the next shard, after the last one served, with tasks maybe
 * waiting, if idle and active: each shard's list gets its turn. */
static void run(struct forward *f)
{
    struct slotd *sd = f->sd;
    const struct keys *k = &sd->keys;
    if (f->state != F_IDLE || evtimer_pending(f->retry, NULL) ||
        lease_role(sd->lease) != LEASE_ACTIVE || sd->main.state != CONN_UP)
        return;
    int j = -1;
    for (int step = 1; step <= k->nshards && j < 0; step++) {
        int c = (f->to + step) % k->nshards;
        if (f->pending[c])
            j = c;
    }
    if (j < 0)
        return;
    f->pending[j] = 0;
    f->to = j;
    keys_forward(k, j, f->list, sizeof f->list);
    keys_forward_done(k, j, f->done_key, sizeof f->done_key);
    if (keys_init_shard(&f->target, k->ns, j, k->nshards) != 0)
        return;
    char want[24];
    snprintf(want, sizeof want, "%d", FORWARD_BATCH);
    const char *argv[] = { "EVAL", scripts_forward_peek, "2", f->list, f->done_key, want };
    f->state = F_PEEK;
    if (conn_command(&sd->main, on_peek, (void *)f->gen, 6, argv, NULL) != 0)
        forward_stop(f);        /* the connection is going: main up kicks again */
}

/* A {"wrongtype", key, type} answer of one of the scripts: said, held. */
static int wrongtype(struct forward *f, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(r->element[0]->str, "wrongtype") != 0 ||
        r->element[1]->type != REDIS_REPLY_STRING || r->element[2]->type != REDIS_REPLY_STRING)
        return 0;
    refused(f, "%s holds a %s (look at it with TYPE, then RENAME or DEL it)", r->element[1]->str,
            r->element[2]->str);
    return 1;
}

/* The connection to shard `to`'s node: slotd's own (one server holds every
 * shard unless they are in a Redis Cluster), or one of its own to the
 * master of that shard's slot, moved when that changes. NULL when that is
 * not known or not connected yet: the batch waits for the retry. */
static struct conn *where(struct forward *f)
{
    struct slotd *sd = f->sd;
    if (!f->remote)
        return &sd->main;
    unsigned slot = keys_slot(&f->target);
    const struct sentinel_addr *a = master_of_slot(&sd->master, slot);
    if (a == NULL) {
        refused(f, "no node known to serve slot %u of shard %d yet", slot, f->to);
        return NULL;
    }
    if (sd->master.known && sentinel_addr_same(a, &sd->master.addr))
        return &sd->main;
    struct conn *c = f->node[f->to];
    if (c == NULL) {
        c = calloc(1, sizeof *c);
        if (c == NULL || conn_init(c, "forward", sd->base, &sd->conf, on_node_up, on_node_down,
                                   f) != 0) {
            free(c);
            refused(f, "out of memory");
            return NULL;
        }
        c->on_wrong = on_node_wrong;
        f->node[f->to] = c;
        conn_start(c);          /* connects once given the node's address */
    }
    conn_set_addr(c, a->host, a->port);
    if (c->state == CONN_UP)
        return c;
    again_in(f, FORWARD_RETRY_MIN);     /* connecting: looked at again then */
    return NULL;
}

/* The list's offset and its tail (newest first, kept oldest first); then
 * forward_in on shard `to`'s node, and a WAIT there when it has replicas:
 * its write must survive a failover of that node before the trim here. */
static void on_peek(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct forward *f = of(ac);
    struct slotd *sd = f->sd;
    redisReply *r = reply;
    if (r == NULL || (uintptr_t)privdata != f->gen || f->state != F_PEEK)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        refused(f, "%s: %.*s", f->list, (int)refusal_len(r->str), r->str);
        return;
    }
    if (wrongtype(f, r))
        return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
        refused(f, "an unexpected answer of forward_peek");
        return;
    }
    snprintf(f->offset, sizeof f->offset, "%s", r->element[0]->str);
    const redisReply *l = r->element[1];
    free_batch(f);
    for (size_t i = 0; i < l->elements && i < FORWARD_BATCH; i++) {
        const redisReply *e = l->element[l->elements - 1 - i];
        if (e->type != REDIS_REPLY_STRING || (f->task[i] = malloc(e->len ? e->len : 1)) == NULL) {
            refused(f, "%s: an element that is not a string, or out of memory", f->list);
            return;
        }
        memcpy(f->task[i], e->str, e->len);
        f->len[i] = e->len;
        f->n++;
    }
    if (f->n == 0) {            /* nothing waits for this shard */
        f->state = F_IDLE;
        run(f);
        return;
    }
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
    const char *head[] = { "EVAL", scripts_forward_in, "2", f->target.intake,
                           f->target.forwarded, from, f->offset };
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
    char ms[16];
    snprintf(ms, sizeof ms, "%d", FORWARD_WAIT_MS);
    const char *wait[] = { "WAIT", "1", ms };
    if (rc == 0 && f->in != &sd->main && f->in->replicas > 0)
        rc = conn_command_blocking(f->in, FORWARD_WAIT_MS, on_wait, (void *)f->gen, 3, wait, NULL);
    if (rc != 0)
        again_in(f, FORWARD_RETRY_MIN);
}

/* Shard `to` has them: trim them here, if still ours to trim. */
static void trim(struct forward *f)
{
    struct slotd *sd = f->sd;
    char n[16];
    snprintf(n, sizeof n, "%" PRIu32, f->n);
    const char *argv[] = { "EVAL", scripts_forward_out, "3", f->list, f->done_key,
                           sd->keys.tail, f->offset, n, lease_token(sd->lease) };
    f->state = F_TRIM;
    if (conn_command(&sd->main, on_out, (void *)f->gen, 9, argv, NULL) != 0)
        forward_stop(f);
}

static void on_in(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct forward *f = of(ac);
    redisReply *r = reply;
    if (r == NULL || (uintptr_t)privdata != f->gen || f->state != F_PUSH)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        refused(f, "shard %d refused them: %.*s", f->to, (int)refusal_len(r->str), r->str);
        return;
    }
    if (wrongtype(f, r))
        return;
    if (r->type != REDIS_REPLY_INTEGER) {
        refused(f, "an unexpected answer of forward_in");
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
    if (f->in != &f->sd->main && f->in->replicas > 0)
        f->state = F_WAIT;      /* on_wait trims */
    else
        trim(f);
}

/* WAIT 1 on shard `to`'s node: a replica has the batch, or it is sent again
 * (taken in once) after a while. */
static void on_wait(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct forward *f = of(ac);
    redisReply *r = reply;
    if (r == NULL || (uintptr_t)privdata != f->gen || f->state != F_WAIT)
        return;
    if (r->type == REDIS_REPLY_INTEGER && r->integer >= 1) {
        trim(f);
        return;
    }
    refused(f, "no replica of shard %d's node acknowledged them within %d ms", f->to,
            FORWARD_WAIT_MS);
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
        log_debug("forwarded %" PRIu32 " tasks to shard %d (offset %s)", f->n, f->to, f->offset);
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
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING &&
        r->element[2]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "moved") == 0) {
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
        /* The offset moved on under us: another slotd forwarded this
         * batch (before the fence stopped it). Start over. */
        f->pending[f->to] = 1;
        free_batch(f);
        f->state = F_IDLE;
        run(f);
        return;
    }
    if (wrongtype(f, r))
        return;
    if (r->type == REDIS_REPLY_ERROR)
        refused(f, "%.*s", (int)refusal_len(r->str), r->str);
    else
        refused(f, "an unexpected answer of forward_out");
}

static void on_node_up(struct conn *c, void *arg)
{
    (void)c;
    forward_kick(arg);      /* run() waits for a retry that is set */
}

/* A forward_in (or its WAIT) in flight on c was lost: sent again, taken in
 * once. */
static void on_node_down(struct conn *c, void *arg)
{
    struct forward *f = arg;
    if ((f->state == F_PUSH || f->state == F_WAIT) && f->in == c)
        again_in(f, FORWARD_RETRY_MIN);
}

/* The node said the slot is elsewhere (MOVED), or that it is not a master,
 * or that the cluster is down: the nodes are asked for the map again; the
 * batch is sent again after a backoff (its reply was a refusal). */
static void on_node_wrong(struct conn *c, void *arg)
{
    struct forward *f = arg;
    (void)c;
    master_refresh(&f->sd->master);
}
