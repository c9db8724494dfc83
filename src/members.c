/*
 * members: membership checks and ownership changes (see members.h for the
 * transaction). States:
 *
 *   DOWN --main up--> LOADING --table read--> IDLE --tick--> READING
 *                                              ^               |  SMEMBERS, MGET heartbeats
 *                                              |   no change   |
 *                                              +---------------+
 *                                              |               | change
 *                                              |               v
 *                                              +--EXEC ok-- CHANGING (WATCH, LRANGE, MULTI..EXEC)
 *                                              |  (nil EXEC: a watched key moved, check again)
 *                                              |               |
 *                                              +---------------+ only fences looked at, all
 *                                                                still held: nothing written
 *
 * While a fence exists every check goes through CHANGING: it reads the
 * fenced worker's lists, and releases the fence in the transaction once
 * they hold none of its slots' tasks (members.h).
 *
 * What changes is the planner's to decide (planner.h): this file reads what
 * it needs, writes what it decided, and logs it.
 */
#include "members.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <jansson.h>

#include "apply.h"
#include "clock.h"
#include "ctx.h"
#include "deadletter.h"
#include "dispatch.h"
#include "episode.h"
#include "lease.h"
#include "log.h"
#include "planner.h"
#include "route.h"
#include "scripts.h"

#define RPUSH_CHUNK 1000

#define MEMBER_STATES(X)            \
    X(M_DOWN,     "down")           \
    X(M_LOADING,  "loading")        \
    X(M_IDLE,     "idle")           \
    X(M_READING,  "reading")        \
    X(M_CHANGING, "changing")

enum mstate {
#define MS_ENUM(e, name) e,
    MEMBER_STATES(MS_ENUM)
#undef MS_ENUM
};

static const char *const mstate_names[] = {
#define MS_NAME(e, name) name,
    MEMBER_STATES(MS_NAME)
#undef MS_NAME
};

/* Why a worker leaves the table, by enum planner_departure. */
static const char *const departure_text[] = {
    "died (heartbeat expired)", "left (deregistered)", "was registered without a heartbeat",
};

/* A registered worker as the check reads it. */
struct candidate {
    char               id[SLOTMAP_ID_MAX + 1];
    uint32_t           weight;
    enum planner_heard heard;
    int                draining;    /* in {ns}:draining: live, but gets no slots */
};

/* What a departed worker (plan.dep, same index) handed back, for the log. */
struct handback {
    uint32_t queued, inflight;      /* tasks handed back */
    uint32_t fenced;                /* tasks that waited behind its fence */
};

/* A reply the change waits for; replies come in the order sent. */
enum mread_kind {
    R_DEP_FENCED,       /* LLEN of a departed worker's fenced list */
    R_DEP_QUEUE,        /* LRANGE of its queue */
    R_DEP_INFLIGHT,     /* LRANGE of its in-flight list */
    R_LOSER_LLEN,       /* LLEN of a survivor's queue that loses slots */
    R_FENCE_SCAN,       /* the scan script on a fenced worker's lists */
    R_FENCE_LLEN,       /* LLEN of a fence's list */
};
struct mread {
    enum mread_kind  kind;
    uint32_t         who;               /* dep, loser or fence index */
};

/* How many tasks of a fenced worker's in-flight list and queue (from the
 * tail) a check reads: its held tasks sit there, at most worker.prefetch
 * of them (10000 at most). */
#define FENCE_SCAN 10000

struct members {
    struct slotd     *sd;           /* (ref) */
    unsigned          lo, hi;       /* the slots this table assigns: all, or the shard's */
    struct table      table;        /* the committed table */
    enum mstate       state;
    uintptr_t         gen;          /* replies of an older generation are stale */
    struct event     *timer;        /* owned: persistent, every check_interval_ms */
    uint64_t          last_tick_ms;
    int               stalled;      /* the last tick came late: declare no death */
    uint64_t          quiet_until;  /* declare no death before this (monotonic ms): Redis
                                       was away or slow, so heartbeats could not be written */
    uint64_t          check_sent;   /* when the check in progress sent its first read */
    uint64_t          down_at;      /* when the main connection was last lost; 0: never */
    int               spare;        /* this check declares no death (stalled or quiet) */
    int               again;        /* a tick came while busy: check once more */
    int               loaded;       /* the first check after (re)connecting is done */
    int               no_workers_said;
    int               load_failed;  /* the table could not be read: read it again next tick */
    int               draining_failed;  /* {ns}:draining could not be read this check */
    int               troubled;     /* this check met trouble(): the episode goes on */
    char             *invalid_ids;  /* owned: the invalid ids last logged */
    struct episode    trouble;      /* checks that could not read or write, for the log */
    char              said[KEYS_NAME_MAX];  /* what the trouble last said was about */
    struct apply      apply;        /* owned: the change being built */

    /* The check in progress (owned arrays). */
    struct candidate *cand;         /* sorted by id */
    struct planner_worker *heard;   /* the same, as the planner takes them */
    uint32_t          ncand, cand_cap;
    struct plan       plan;         /* owned: what the check decided */
    struct handback  *back;         /* owned: per plan.dep */
    int               read_failed;  /* a read the change needs failed: do not write */
    struct mread     *reads;        /* owned: replies due before the transaction */
    uint32_t          nreads, read_at, reads_cap;
    uint8_t          *fence_blocked;    /* owned, per fence: its worker still holds a task of its slots */
    long long        *fence_len;        /* owned, per fence: LLEN of its list, -1 unknown */
    long long        *loser_len;    /* owned, per plan.loser: its queue length */
    char            **hand;         /* owned copies of the departed workers' tasks, RPUSH order */
    size_t           *hand_len;
    uint8_t          *hand_kind;    /* HAND_* */
    uint8_t          *hand_poison;  /* 1: dead-letter instead of requeue */
    uint32_t         *hand_recov;   /* recoveries so far (in-flight on dead workers) */
    size_t            nhand, hand_cap;
    char            (*declared_dead)[SLOTMAP_ID_MAX + 1];  /* owned: ids declared dead */
    char            (*draining)[SLOTMAP_ID_MAX + 1];  /* owned: {ns}:draining as last read */
    uint32_t          ndraining;
    uint32_t          ndeclared, declared_cap;
};

/* Where a task handed back came from. */
enum { HAND_QUEUED, HAND_INFLIGHT_DEAD, HAND_INFLIGHT_LEFT };

static void on_tick(evutil_socket_t fd, short what, void *arg);
static void on_load(redisAsyncContext *ac, void *reply, void *privdata);
static void on_smembers(redisAsyncContext *ac, void *reply, void *privdata);
static void on_draining(redisAsyncContext *ac, void *reply, void *privdata);
static void on_heartbeats(redisAsyncContext *ac, void *reply, void *privdata);
static void on_read(redisAsyncContext *ac, void *reply, void *privdata);
static void on_attempts(redisAsyncContext *ac, void *reply, void *privdata);
static void on_change(redisAsyncContext *ac, void *reply, void *privdata);
static void start_check(struct members *m);

static struct members *of(const redisAsyncContext *ac)
{
    return ((struct slotd *)conn_of(ac)->arg)->members;
}

static void set_state(struct members *m, enum mstate to)
{
    if (m->state != to)
        log_debug("membership: %s -> %s", mstate_names[m->state], mstate_names[to]);
    m->state = to;
}

static void arm_timer(struct members *m)
{
    int ms = m->sd->conf.workers.check_interval_ms;
    struct timeval tv = { ms / 1000, (long)(ms % 1000) * 1000 };
    evtimer_del(m->timer);
    evtimer_add(m->timer, &tv);
}

static void table_free(struct table *t)
{
    slotmap_free(&t->map);
    slotmap_free(&t->fences);
    free(t->queue);
    free(t->queue_len);
    t->queue = NULL;
    t->queue_len = NULL;
}

/* Takes ownership of map's and fences' contents into t (leaving them empty)
 * and rebuilds the destination keys. -1 on ENOMEM, t unchanged. */
static int table_adopt(struct members *m, struct slotmap *map, struct slotmap *fences)
{
    struct table *t = &m->table;
    uint32_t n = map->nworkers + fences->nworkers;
    char (*q)[KEYS_NAME_MAX] = calloc(n ? n : 1, sizeof *q);
    size_t *ql = calloc(n ? n : 1, sizeof *ql);

    if (q == NULL || ql == NULL) {
        free(q);
        free(ql);
        return -1;
    }
    for (uint32_t i = 0; i < map->nworkers; i++)
        keys_queue(&m->sd->keys, map->workers[i].id, q[i], KEYS_NAME_MAX);
    for (uint32_t i = 0; i < fences->nworkers; i++)
        keys_fenced(&m->sd->keys, fences->workers[i].id, q[map->nworkers + i], KEYS_NAME_MAX);
    for (uint32_t i = 0; i < n; i++)
        ql[i] = strlen(q[i]);
    free(t->queue);
    free(t->queue_len);
    slotmap_free(&t->map);
    slotmap_free(&t->fences);
    t->map = *map;
    t->fences = *fences;
    slotmap_init(map);
    slotmap_init(fences);
    t->queue = q;
    t->queue_len = ql;
    t->ndest = n;
    t->version++;
    return 0;
}

struct members *members_create(struct slotd *sd)
{
    struct members *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->sd = sd;
    keys_shard_slots(sd->keys.shard, sd->keys.nshards, &m->lo, &m->hi);
    slotmap_init(&m->table.map);
    slotmap_init(&m->table.fences);
    plan_init(&m->plan);
    apply_init(&m->apply);
    m->state = M_DOWN;
    m->timer = evtimer_new(sd->base, on_tick, m);
    if (m->timer == NULL || table_adopt(m, &m->plan.next, &m->plan.fences) != 0) {
        members_destroy(m);
        return NULL;
    }
    return m;
}

static void hand_clear(struct members *m)
{
    for (size_t i = 0; i < m->nhand; i++)
        free(m->hand[i]);
    m->nhand = 0;
}

void members_destroy(struct members *m)
{
    if (m == NULL)
        return;
    if (m->timer)
        event_free(m->timer);
    table_free(&m->table);
    plan_free(&m->plan);
    free(m->back);
    free(m->reads);
    free(m->fence_blocked);
    free(m->fence_len);
    hand_clear(m);
    free(m->hand);
    free(m->hand_len);
    free(m->hand_kind);
    free(m->hand_poison);
    free(m->hand_recov);
    free(m->loser_len);
    free(m->declared_dead);
    free(m->draining);
    free(m->cand);
    free(m->heard);
    free(m->invalid_ids);
    apply_free(&m->apply);
    free(m);
}

const struct table *members_table(const struct members *m) { return &m->table; }
int members_busy(const struct members *m) { return m->state == M_CHANGING; }

void members_reconfigure(struct members *m)
{
    if (m->state != M_DOWN)
        arm_timer(m);
}

/* ---- trouble: what stops a check, said once per episode ------------- */

/* A check could not read or write what it needed: nothing was changed. */
static void trouble(struct members *m, const char *about, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void trouble(struct members *m, const char *about, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    uint64_t repeats = 0;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    m->troubled = 1;
    enum episode_say say = episode_hit(&m->trouble, clock_mono_ms(), 0, &repeats);
    if (say == EPISODE_QUIET && strcmp(about, m->said) != 0)
        say = EPISODE_FIRST;        /* another problem: news */
    if (say == EPISODE_FIRST)
        log_error("membership: %s; no ownership change until it is fixed (slotd looks again"
                  " at every check)", what);
    else if (say == EPISODE_AGAIN)
        log_error("membership: still %s (%" PRIu64 " checks in the last minute)", what, repeats);
    if (say != EPISODE_QUIET)
        snprintf(m->said, sizeof m->said, "%s", about);
}

/* A check went through: a trouble episode, if any, is over. */
static void untroubled(struct members *m)
{
    uint64_t lasted = 0, total = 0;
    if (episode_end(&m->trouble, clock_mono_ms(), &lasted, &total))
        log_info("membership: checks work again after %.1f s (%" PRIu64 " failed)",
                 (double)lasted / 1000.0, total);
    m->said[0] = '\0';
}

/* What a refused read says, with the fix for a key of the wrong type. */
static const char *refusal(const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_ERROR)
        return "unexpected reply";
    if (strncmp(r->str, "WRONGTYPE", 9) == 0)
        return "it holds the wrong type of value (look at it with TYPE, then RENAME or DEL it)";
    return r->str;
}

/* What a refused read is about, for telling one trouble from another: the
 * key for a key of the wrong type, else Redis's error code (BUSY, OOM...),
 * which is the same whatever the command. */
static const char *about_of(const char *key, const redisReply *r, char *buf, size_t cap)
{
    if (r == NULL || r->type != REDIS_REPLY_ERROR || strncmp(r->str, "WRONGTYPE", 9) == 0)
        return key;
    snprintf(buf, cap, "%.*s", (int)strcspn(r->str, " "), r->str);
    return buf;
}

/* ---- loading the saved table ---------------------------------------- */

/* The table, the fences, the epoch and the tail's version, read at one
 * instant (a MULTI), so that they agree with each other. */
static void send_load(struct members *m)
{
    struct slotd *sd = m->sd;
    const char *unwatch[] = { "UNWATCH" };
    const char *multi[] = { "MULTI" };
    const char *slots[] = { "HGETALL", sd->keys.slots };
    const char *fences[] = { "HGETALL", sd->keys.fences };
    const char *epoch[] = { "GET", sd->keys.epoch };
    const char *tail[] = { "GET", sd->keys.tail };
    const char *exec[] = { "EXEC" };
    m->load_failed = 0;
    if (conn_command(&sd->main, NULL, NULL, 1, unwatch, NULL) != 0 ||
        conn_command(&sd->main, NULL, NULL, 1, multi, NULL) != 0 ||
        conn_command(&sd->main, NULL, NULL, 2, slots, NULL) != 0 ||
        conn_command(&sd->main, NULL, NULL, 2, fences, NULL) != 0 ||
        conn_command(&sd->main, NULL, NULL, 2, epoch, NULL) != 0 ||
        conn_command(&sd->main, NULL, NULL, 2, tail, NULL) != 0 ||
        conn_command(&sd->main, on_load, (void *)m->gen, 1, exec, NULL) != 0)
        conn_reset(&sd->main, "cannot load the slot table");
}

/* Heartbeats could not be written for a while (Redis away, frozen or
 * switched): every worker gets a full TTL to write again before any is
 * declared dead, like Sentinel's TILT mode. */
static void quiet(struct members *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void quiet(struct members *m, const char *fmt, ...)
{
    uint64_t ttl = (uint64_t)m->sd->conf.workers.heartbeat_ttl_ms;
    uint64_t now = clock_mono_ms(), until = now + ttl;
    if (until > m->quiet_until) {
        if (now >= m->quiet_until) {
            char why[200];
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(why, sizeof why, fmt, ap);
            va_end(ap);
            log_warn("%s: no worker is declared dead for the next %" PRIu64 " ms (a heartbeat"
                     " TTL), so that every live worker can write its heartbeat again", why, ttl);
        }
        m->quiet_until = until;
    }
}

void members_on_main_up(struct members *m)
{
    m->gen++;
    if (m->down_at > 0)
        quiet(m, "Redis was unreachable for %" PRIu64 " ms", clock_mono_ms() - m->down_at);
    m->down_at = 0;
    m->loaded = 0;
    hand_clear(m);
    set_state(m, M_LOADING);
    arm_timer(m);
    send_load(m);
}

void members_reload(struct members *m)
{
    if (m->state == M_DOWN)
        return;
    /* Whatever this slotd was doing was computed from what it read before:
     * drop it (replies of the older generation are ignored). */
    dispatch_hold(m->sd->dispatch, HOLD_LOADING);
    dispatch_release(m->sd->dispatch, HOLD_MEMBERSHIP);
    members_on_main_up(m);
}

void members_stop(struct members *m)
{
    m->gen++;
    evtimer_del(m->timer);
    hand_clear(m);
    set_state(m, M_DOWN);
    m->sd->events.idle(m->sd);
}

void members_on_main_down(struct members *m)
{
    m->down_at = clock_mono_ms();
    members_stop(m);
}

/* A hash of worker id -> ranges ({ns}:slots or {ns}:fences) into map. A
 * fence whose slots cannot be read is kept without slots, so its list is
 * still handed on at the next check: only the order of that handoff is lost
 * (logged). */
static void load_map(const redisReply *r, const char *key, struct slotmap *map, int fences)
{
    char err[256];

    slotmap_free(map);
    slotmap_init(map);
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (!slotmap_valid_id(k->str, k->len)) {
            log_warn("%s: ignoring the entry of invalid worker id '%.*s'",
                     key, (int)(k->len > 80 ? 80 : k->len), k->str);
            continue;
        }
        if (slotmap_claim(map, k->str, v->str, v->len, err, sizeof err) == 0)
            continue;
        log_warn("%s: ignoring the slots of worker %s: %s; %s", key, k->str, err,
                 fences ? "their handoff is not fenced any more" : "they will be reassigned");
        if (fences && slotmap_claim(map, k->str, "", 0, err, sizeof err) != 0)
            log_error("%s: cannot keep worker %s's fence: %s", key, k->str, err);
    }
}

/* An integer kept as a string (a missing key is 0): 0, or -1. */
static int read_count(const redisReply *r, uint64_t *v)
{
    char *end = NULL;
    if (r->type == REDIS_REPLY_NIL) {
        *v = 0;
        return 0;
    }
    if (r->type != REDIS_REPLY_STRING || r->len == 0)
        return -1;
    *v = strtoull(r->str, &end, 10);
    return *end == '\0' ? 0 : -1;
}

static void on_load(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct members *m = of(ac);
    struct slotd *sd = m->sd;
    redisReply *r = reply;
    const char *keys[] = { sd->keys.slots, sd->keys.fences, sd->keys.epoch, sd->keys.tail };
    char ab[32];
    uint64_t epoch = 0, tail = 0;

    if (r == NULL || (uintptr_t)privdata != m->gen || m->state != M_LOADING)
        return;
    m->load_failed = 1;         /* until it is read whole: read again next tick */
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        trouble(m, about_of(sd->keys.slots, r, ab, sizeof ab), "cannot read the slot table: %s",
                refusal(r));
        return;
    }
    for (int i = 0; i < 4; i++)
        if (r->element[i]->type == REDIS_REPLY_ERROR) {
            trouble(m, about_of(keys[i], r->element[i], ab, sizeof ab), "cannot read %s: %s",
                    keys[i], refusal(r->element[i]));
            return;
        }
    int ours = 0;
    const redisReply *t = r->element[3];
    if (read_count(r->element[2], &epoch) != 0 ||
        (t->type != REDIS_REPLY_NIL &&
         (t->type != REDIS_REPLY_STRING ||
          scripts_tail_parse(t->str, t->len, lease_token(sd->lease), &tail, &ours) != 0))) {
        int which = read_count(r->element[2], &epoch) != 0 ? 2 : 3;
        trouble(m, keys[which], "cannot read %s: it holds something slotd did not write (DEL"
                " it: slotd starts it again)", keys[which]);
        return;
    }
    /* The plan's tables are free between checks: the table read goes there. */
    plan_free(&m->plan);
    load_map(r->element[0], sd->keys.slots, &m->plan.next, 0);
    load_map(r->element[1], sd->keys.fences, &m->plan.fences, 1);
    if (table_adopt(m, &m->plan.next, &m->plan.fences) != 0) {
        conn_reset(&sd->main, "out of memory loading the slot table");
        return;
    }
    m->load_failed = 0;
    m->table.epoch = epoch;
    dispatch_set_tail(sd->dispatch, tail, t->type == REDIS_REPLY_NIL);
    log_info("slot table loaded: %" PRIu32 " workers, %" PRIu32 " handoffs fenced, epoch %" PRIu64,
             m->table.map.nworkers, m->table.fences.nworkers, m->table.epoch);
    set_state(m, M_IDLE);
    m->last_tick_ms = clock_mono_ms();
    m->stalled = 0;
    arm_timer(m);
    start_check(m);
}

/* ---- the periodic check --------------------------------------------- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct members *m = arg;
    uint64_t now = clock_mono_ms();
    uint64_t interval = (uint64_t)m->sd->conf.workers.check_interval_ms;
    uint64_t late = now - m->last_tick_ms > interval ? now - m->last_tick_ms - interval : 0;

    (void)fd;
    (void)what;
    m->last_tick_ms = now;
    m->sd->stats.loop_lag_ms = late;
    arm_timer(m);
    if (late > (uint64_t)m->sd->conf.workers.heartbeat_ttl_ms) {
        /* The loop itself stalled (or the machine slept): heartbeats may have
         * expired through no fault of the workers. */
        m->stalled = 1;
        m->sd->stats.stalls++;
        log_warn("event loop stalled for %" PRIu64 " ms: declaring no worker dead this turn", late);
    }
    if (m->state == M_IDLE)
        start_check(m);
    else if (m->state == M_READING || m->state == M_CHANGING)
        m->again = 1;
    else if (m->state == M_LOADING && m->load_failed)
        send_load(m);
}

static void finish_check(struct members *m)
{
    set_state(m, M_IDLE);
    m->stalled = 0;
    if (!m->troubled)
        untroubled(m);
    if (!m->loaded) {
        m->loaded = 1;
        dispatch_release(m->sd->dispatch, HOLD_LOADING);
        m->sd->events.routing(m->sd);
    }
    m->sd->events.idle(m->sd);
    if (m->again && !m->sd->stopping) {
        m->again = 0;
        start_check(m);
    }
}

static void start_check(struct members *m)
{
    struct slotd *sd = m->sd;
    if (sd->stopping)
        return;
    const char *drain[] = { "SMEMBERS", sd->keys.draining };
    const char *argv[] = { "SMEMBERS", sd->keys.workers };
    m->troubled = 0;
    m->draining_failed = 0;
    m->check_sent = clock_mono_ms();
    if (conn_command(&sd->main, on_draining, (void *)m->gen, 2, drain, NULL) == 0 &&
        conn_command(&sd->main, on_smembers, (void *)m->gen, 2, argv, NULL) == 0)
        set_state(m, M_READING);
}

/* {ns}:draining, read just before {ns}:workers. */
static void on_draining(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct members *m = of(ac);
    redisReply *r = reply;

    if (r == NULL || (uintptr_t)privdata != m->gen)
        return;
    /* A check's first read answered late: Redis was frozen or paused, and
     * the workers' heartbeats waited as long. */
    uint64_t rtt = clock_mono_ms() - m->check_sent;
    if (rtt > (uint64_t)m->sd->conf.workers.heartbeat_ttl_ms / 3)
        quiet(m, "Redis did not answer for %" PRIu64 " ms", rtt);
    /* Busy with a script, or loading its data: it refuses the workers'
     * heartbeats as it refuses this. */
    if (r->type == REDIS_REPLY_ERROR &&
        (strncmp(r->str, "BUSY", 4) == 0 || strncmp(r->str, "LOADING", 7) == 0))
        quiet(m, "Redis refused work: %.60s", r->str);
    m->ndraining = 0;
    if (r->type != REDIS_REPLY_ARRAY) {
        /* Without it a drained worker would get slots back: no change. */
        char ab[32];
        trouble(m, about_of(m->sd->keys.draining, r, ab, sizeof ab), "cannot read %s: %s",
                m->sd->keys.draining, refusal(r));
        m->draining_failed = 1;
        return;
    }
    if (r->elements == 0)
        return;
    char (*d)[SLOTMAP_ID_MAX + 1] = realloc(m->draining, r->elements * sizeof *d);
    if (d == NULL)
        return;
    m->draining = d;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING &&
            slotmap_valid_id(r->element[i]->str, r->element[i]->len))
            snprintf(d[m->ndraining++], SLOTMAP_ID_MAX + 1, "%s", r->element[i]->str);
}

static int is_draining(const struct members *m, const char *id)
{
    for (uint32_t i = 0; i < m->ndraining; i++)
        if (strcmp(m->draining[i], id) == 0)
            return 1;
    return 0;
}

static int cmp_cand(const void *a, const void *b)
{
    return strcmp(((const struct candidate *)a)->id, ((const struct candidate *)b)->id);
}

static void note_invalid(struct members *m, const char *list)
{
    if (m->invalid_ids != NULL && strcmp(m->invalid_ids, list) == 0)
        return;
    free(m->invalid_ids);
    m->invalid_ids = strdup(list);
    if (list[0] != '\0')
        log_warn("%s holds invalid worker ids, ignored: %s (ids are 1-64 of [A-Za-z0-9._-])",
                 m->sd->keys.workers, list);
}

static void on_smembers(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct members *m = of(ac);
    struct slotd *sd = m->sd;
    redisReply *r = reply;
    char invalid[512] = "";

    if (r == NULL || (uintptr_t)privdata != m->gen)
        return;
    if (m->draining_failed) {       /* said already: the same cause, most likely */
        finish_check(m);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        char ab[32];
        trouble(m, about_of(sd->keys.workers, r, ab, sizeof ab), "cannot read %s: %s",
                sd->keys.workers, refusal(r));
        finish_check(m);
        return;
    }
    if (r->elements > m->cand_cap) {
        struct candidate *c = realloc(m->cand, r->elements * sizeof *c);
        if (c != NULL)
            m->cand = c;
        struct planner_worker *h = c ? realloc(m->heard, r->elements * sizeof *h) : NULL;
        if (h == NULL) {
            log_error("membership: out of memory for %zu workers", r->elements);
            finish_check(m);
            return;
        }
        m->heard = h;
        m->cand_cap = (uint32_t)r->elements;
    }
    m->ncand = 0;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        if (!slotmap_valid_id(e->str, e->len)) {
            size_t used = strlen(invalid);
            if (used + 70 < sizeof invalid)
                snprintf(invalid + used, sizeof invalid - used, "%s'%.*s'",
                         used ? ", " : "", (int)(e->len > 64 ? 64 : e->len), e->str);
            continue;
        }
        struct candidate *c = &m->cand[m->ncand++];
        memcpy(c->id, e->str, e->len);
        c->id[e->len] = '\0';
        c->weight = 1;
        c->heard = PLANNER_SILENT;
        c->draining = is_draining(m, c->id);
    }
    note_invalid(m, invalid);
    /* Sorted, so newcomers join in a deterministic order. */
    if (m->ncand > 1)
        qsort(m->cand, m->ncand, sizeof *m->cand, cmp_cand);
    if (m->ncand > SLOTMAP_SLOTS) {
        log_warn("%s has %" PRIu32 " workers; only the first %u get slots",
                 sd->keys.workers, m->ncand, SLOTMAP_SLOTS);
        m->ncand = SLOTMAP_SLOTS;
    }
    if (m->ncand == 0) {
        on_heartbeats(ac, NULL, (void *)m->gen);
        return;
    }
    /* MGET hb:<id> ... in one command. */
    const char **argv = malloc(((size_t)m->ncand + 1) * sizeof *argv);
    char (*names)[KEYS_NAME_MAX] = malloc((size_t)m->ncand * sizeof *names);
    int rc = -1;
    if (argv != NULL && names != NULL) {
        argv[0] = "MGET";
        for (uint32_t i = 0; i < m->ncand; i++)
            argv[i + 1] = keys_hb(&sd->keys, m->cand[i].id, names[i], KEYS_NAME_MAX);
        rc = conn_command(&sd->main, on_heartbeats, (void *)m->gen, (int)m->ncand + 1, argv, NULL);
    }
    free(argv);
    free(names);
    if (rc != 0)
        finish_check(m);
}

static uint32_t heartbeat_weight(const char *s, size_t len)
{
    json_error_t err;
    json_t *o = json_loadb(s, len, 0, &err);
    uint32_t w = 1;
    if (o != NULL) {
        json_t *v = json_object_get(o, "weight");
        if (json_is_integer(v) && json_integer_value(v) >= 1)
            w = json_integer_value(v) > SLOTMAP_WEIGHT_MAX ? SLOTMAP_WEIGHT_MAX
                                                           : (uint32_t)json_integer_value(v);
        json_decref(o);
    }
    return w;
}

static struct candidate *find_cand(struct members *m, const char *id)
{
    struct candidate key;
    snprintf(key.id, sizeof key.id, "%s", id);
    if (m->ncand == 0)
        return NULL;
    return bsearch(&key, m->cand, m->ncand, sizeof *m->cand, cmp_cand);
}

static void send_change(struct members *m);
static void send_reads(struct members *m);

static void decide(struct members *m);
static void on_hb_types(redisAsyncContext *ac, void *reply, void *privdata);

/* The table's worker i, registered, when its heartbeat is missing and this
 * check may declare deaths; else NULL. */
static struct candidate *missing(struct members *m, uint32_t i)
{
    struct candidate *c = find_cand(m, m->table.map.workers[i].id);
    return c != NULL && c->heard != PLANNER_LIVE && !m->spare ? c : NULL;
}

static void on_heartbeats(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct members *m = of(ac);
    struct slotd *sd = m->sd;
    redisReply *r = reply;
    const struct slotmap *map = &m->table.map;

    if ((uintptr_t)privdata != m->gen || (r == NULL && m->ncand > 0))
        return;
    if (r != NULL && (r->type != REDIS_REPLY_ARRAY || r->elements != m->ncand)) {
        char ab[32];
        trouble(m, about_of("heartbeats", r, ab, sizeof ab), "cannot read the heartbeats: %s",
                refusal(r));
        finish_check(m);
        return;
    }
    for (uint32_t i = 0; i < m->ncand; i++) {
        redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_STRING) {
            m->cand[i].heard = PLANNER_LIVE;
            m->cand[i].weight = heartbeat_weight(e->str, e->len);
        }
    }
    m->spare = m->stalled || clock_mono_ms() < m->quiet_until;
    /* MGET says nil for a heartbeat key of another type as for a missing
     * one: before a registered worker of the table is declared dead, look
     * at what its key holds. */
    /* The set was read one round trip before the heartbeats: a worker that
     * left in between (its heartbeat and its membership go together) is a
     * leave, not a death. */
    const char **argv = malloc(((size_t)map->nworkers * 2 + 4) * sizeof *argv);
    char (*names)[KEYS_NAME_MAX] = malloc(((size_t)map->nworkers + 1) * sizeof *names);
    int n = 0, rc = -1;
    if (argv == NULL || names == NULL)
        goto out;
    for (uint32_t i = 0; i < map->nworkers; i++) {
        struct candidate *c = missing(m, i);
        if (c != NULL)
            argv[4 + n] = keys_hb(&sd->keys, c->id, names[n], KEYS_NAME_MAX), n++;
    }
    if (n == 0) {
        rc = 0;
        decide(m);
        goto out;
    }
    for (uint32_t i = 0, k = 0; i < map->nworkers; i++) {
        struct candidate *c = missing(m, i);
        if (c != NULL)
            argv[4 + n + k++] = c->id;
    }
    char count[16];
    snprintf(count, sizeof count, "%d", n + 1);
    argv[0] = "EVAL";
    argv[1] = scripts_missing;
    argv[2] = count;
    argv[3] = sd->keys.workers;
    rc = conn_command(&sd->main, on_hb_types, (void *)m->gen, 4 + 2 * n, argv, NULL);
out:
    free(argv);
    free(names);
    if (rc != 0) {
        log_error("membership: out of memory, or Redis gone, reading the heartbeats");
        finish_check(m);
    }
}

/* What the missing heartbeats are: a worker that left, an expired key, or a
 * key of another type, which is not a heartbeat that expired. */
static void on_hb_types(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct members *m = of(ac);
    const struct slotmap *map = &m->table.map;
    redisReply *r = reply;
    size_t k = 0;

    if (r == NULL || (uintptr_t)privdata != m->gen)
        return;
    if (r->type != REDIS_REPLY_ARRAY) {
        char ab[32];
        trouble(m, about_of("heartbeats", r, ab, sizeof ab), "cannot look at the heartbeats: %s",
                refusal(r));
        finish_check(m);
        return;
    }
    for (uint32_t i = 0; i < map->nworkers; i++) {
        struct candidate *c = missing(m, i);
        if (c == NULL)
            continue;
        const redisReply *t = k < r->elements ? r->element[k] : NULL;
        k++;
        if (t != NULL && t->type == REDIS_REPLY_STATUS && strcmp(t->str, "none") == 0)
            continue;       /* expired: dead */
        if (t != NULL && t->type == REDIS_REPLY_STRING && strcmp(t->str, "left") == 0) {
            c->heard = PLANNER_DEREGISTERED;
            continue;
        }
        char hb[KEYS_NAME_MAX];
        keys_hb(&m->sd->keys, c->id, hb, sizeof hb);
        trouble(m, hb, "%s holds a %s, not a heartbeat: worker %s is not declared dead while the"
                " key exists (DEL it if the worker is gone; a live worker overwrites it)", hb,
                t != NULL && (t->type == REDIS_REPLY_STATUS || t->type == REDIS_REPLY_STRING)
                    ? t->str : "?", c->id);
        c->heard = PLANNER_LIVE;
        c->weight = map->workers[i].weight;
    }
    decide(m);
}

/* What the planner is given: the table, and the workers as this check heard
 * them. */
static void plan_input(struct members *m, struct planner_input *in)
{
    for (uint32_t i = 0; i < m->ncand; i++) {
        m->heard[i].id = m->cand[i].id;
        m->heard[i].weight = m->cand[i].weight;
        m->heard[i].heard = m->cand[i].heard;
        m->heard[i].draining = m->cand[i].draining;
    }
    in->map = &m->table.map;
    in->fences = &m->table.fences;
    in->workers = m->heard;
    in->nworkers = m->ncand;
    in->lo = m->lo;
    in->hi = m->hi;
    in->spare = m->spare;
}

/* What the check found, compared with the table: a change, or none. */
static void decide(struct members *m)
{
    struct slotd *sd = m->sd;
    struct planner_input in;

    plan_input(m, &in);
    if (planner_plan(&in, &m->plan) != 0)
        goto fail;
    if (!m->plan.look) {
        if (m->table.map.nworkers == 0 && !m->no_workers_said) {
            log_warn("no live worker in %s: the intake is left alone until one registers",
                     sd->keys.workers);
            m->no_workers_said = 1;
            dispatch_hold(sd->dispatch, HOLD_NO_WORKERS);
        }
        finish_check(m);
        return;
    }
    free(m->back);
    free(m->loser_len);
    m->back = calloc(m->plan.ndep ? m->plan.ndep : 1, sizeof *m->back);
    m->loser_len = calloc(m->plan.nloser ? m->plan.nloser : 1, sizeof *m->loser_len);
    if (m->back == NULL || m->loser_len == NULL)
        goto fail;

    /* A change: hold dispatch, so that the WATCH below is not undone by a
     * dispatch EXEC and the intake's tail stays ours until ours commits. */
    set_state(m, M_CHANGING);
    dispatch_hold(sd->dispatch, HOLD_MEMBERSHIP);
    hand_clear(m);
    send_reads(m);
    return;
fail:
    log_error("membership: cannot compute the slot table for %u workers "
              "(out of memory, or more workers than slots)", m->ncand);
    dispatch_release(sd->dispatch, HOLD_MEMBERSHIP);
    finish_check(m);
}

static int read_add(struct members *m, enum mread_kind kind, uint32_t who)
{
    if (m->nreads == m->reads_cap) {
        uint32_t nc = m->reads_cap ? m->reads_cap * 2 : 64;
        struct mread *r = realloc(m->reads, nc * sizeof *r);
        if (r == NULL)
            return -1;
        m->reads = r;
        m->reads_cap = nc;
    }
    m->reads[m->nreads].kind = kind;
    m->reads[m->nreads].who = who;
    m->nreads++;
    return 0;
}

/* Sends one read and notes the reply it waits for. */
static int send_read(struct members *m, enum mread_kind kind, uint32_t who,
                     int argc, const char **argv)
{
    if (read_add(m, kind, who) != 0)
        return -1;
    return conn_command(&m->sd->main, on_read, (void *)m->gen, argc, argv, NULL);
}

/*
 * Reads what the transaction must move: each departed worker's lists (under
 * WATCH) and its fenced list's length; the queue length of each survivor
 * that loses slots; and, for each fence whose worker stays, the tail of that
 * worker's in-flight list and queue (does it still hold a task of the fenced
 * slots?) and the length of the fenced list. The lengths are for the logs:
 * the transaction moves whole lists.
 */
static void send_reads(struct members *m)
{
    struct slotd *sd = m->sd;
    const struct slotmap *fences = &m->table.fences;
    const struct plan *p = &m->plan;
    size_t n = 1 + 3 * (size_t)p->ndep;
    const char **argv = malloc(n * sizeof *argv);
    char (*names)[KEYS_NAME_MAX] = malloc((n + 1) * sizeof *names);
    char name[KEYS_NAME_MAX], scan[16];
    uint32_t nf = fences->nworkers;
    int rc = -1;

    m->nreads = 0;
    m->read_at = 0;
    m->read_failed = 0;
    free(m->fence_blocked);
    free(m->fence_len);
    m->fence_blocked = calloc(nf ? nf : 1, 1);
    m->fence_len = calloc(nf ? nf : 1, sizeof *m->fence_len);
    if (argv == NULL || names == NULL || m->fence_blocked == NULL || m->fence_len == NULL)
        goto out;
    if (p->ndep > 0) {
        argv[0] = "WATCH";
        for (uint32_t i = 0; i < p->ndep; i++) {
            argv[1 + 3 * i] = keys_queue(&sd->keys, p->dep[i].id, names[3 * i], KEYS_NAME_MAX);
            argv[2 + 3 * i] = keys_inflight(&sd->keys, p->dep[i].id, names[3 * i + 1], KEYS_NAME_MAX);
            argv[3 + 3 * i] = keys_hb(&sd->keys, p->dep[i].id, names[3 * i + 2], KEYS_NAME_MAX);
        }
        if (conn_command(&sd->main, NULL, NULL, (int)n, argv, NULL) != 0)
            goto out;
    }
    /* Queued, then in flight: RPUSH order puts the oldest in-flight task
     * nearest the tail, so it is routed first. */
    for (uint32_t i = 0; i < p->ndep; i++) {
        const char *f[] = { "LLEN", keys_fenced(&sd->keys, p->dep[i].id, name, sizeof name) };
        const char *q[] = { "LRANGE", names[3 * i], "0", "-1" };
        const char *fl[] = { "LRANGE", names[3 * i + 1], "0", "-1" };
        if ((p->dep[i].fence >= 0 && send_read(m, R_DEP_FENCED, i, 2, f) != 0) ||
            send_read(m, R_DEP_QUEUE, i, 4, q) != 0 ||
            send_read(m, R_DEP_INFLIGHT, i, 4, fl) != 0)
            goto out;
    }
    for (uint32_t i = 0; i < p->nloser; i++) {
        const char *l[] = { "LLEN", keys_queue(&sd->keys, m->table.map.workers[p->loser[i]].id,
                                              name, sizeof name) };
        if (send_read(m, R_LOSER_LLEN, i, 2, l) != 0)
            goto out;
    }
    snprintf(scan, sizeof scan, "%d", FENCE_SCAN);
    for (uint32_t f = 0; f < nf; f++) {
        const char *id = fences->workers[f].id;
        m->fence_len[f] = -1;
        if (plan_departing(p, id))
            continue;
        const char *sc[] = { "EVAL", scripts_scan, "2",
                             keys_inflight(&sd->keys, id, names[0], KEYS_NAME_MAX),
                             keys_queue(&sd->keys, id, names[1], KEYS_NAME_MAX), scan };
        if (send_read(m, R_FENCE_SCAN, f, 6, sc) != 0)
            goto out;
        const char *ll[] = { "LLEN", keys_fenced(&sd->keys, id, name, sizeof name) };
        if (send_read(m, R_FENCE_LLEN, f, 2, ll) != 0)
            goto out;
    }
    rc = 0;
    if (m->nreads == 0)
        send_change(m);
out:
    free(argv);
    free(names);
    if (rc != 0)
        conn_reset(&sd->main, "cannot send the ownership change");
}

static int hand_add(struct members *m, const char *p, size_t n, int kind)
{
    if (m->nhand == m->hand_cap) {
        size_t nc = m->hand_cap ? m->hand_cap * 2 : 256;
        char **h = realloc(m->hand, nc * sizeof *h);
        if (h == NULL)
            return -1;
        m->hand = h;
        size_t *hl = realloc(m->hand_len, nc * sizeof *hl);
        if (hl == NULL)
            return -1;
        m->hand_len = hl;
        uint8_t *hk = realloc(m->hand_kind, nc);
        if (hk == NULL)
            return -1;
        m->hand_kind = hk;
        uint8_t *hp = realloc(m->hand_poison, nc);
        if (hp == NULL)
            return -1;
        m->hand_poison = hp;
        uint32_t *hr = realloc(m->hand_recov, nc * sizeof *hr);
        if (hr == NULL)
            return -1;
        m->hand_recov = hr;
        m->hand_cap = nc;
    }
    char *copy = malloc(n ? n : 1);
    if (copy == NULL)
        return -1;
    if (n > 0)
        memcpy(copy, p, n);
    m->hand[m->nhand] = copy;
    m->hand_len[m->nhand] = n;
    m->hand_kind[m->nhand] = (uint8_t)kind;
    m->hand_poison[m->nhand] = 0;
    m->hand_recov[m->nhand] = 0;
    m->nhand++;
    return 0;
}

/* One read done; when all are, look up recoveries or build the transaction. */
static void read_done(struct members *m)
{
    struct slotd *sd = m->sd;
    size_t ndead = 0;
    if (m->read_failed) {
        /* Write nothing rather than move lists half read; try next check. */
        const char *unwatch[] = { "UNWATCH" };
        log_warn("membership: a read failed; the change waits for the next check");
        hand_clear(m);
        if (conn_command(&sd->main, NULL, NULL, 1, unwatch, NULL) != 0) {
            conn_reset(&sd->main, "cannot cancel the ownership change");
            return;
        }
        dispatch_release(sd->dispatch, HOLD_MEMBERSHIP);
        finish_check(m);
        return;
    }
    for (size_t i = 0; i < m->nhand; i++)
        ndead += m->hand_kind[i] == HAND_INFLIGHT_DEAD;
    if (ndead == 0) {
        send_change(m);
        return;
    }
    /* How many dying workers each of these has already been in flight on. */
    const char **argv = malloc((ndead + 2) * sizeof *argv);
    char (*fps)[KEYS_FP_LEN + 1] = malloc(ndead * sizeof *fps);
    int rc = -1;
    if (argv != NULL && fps != NULL) {
        size_t k = 2;
        argv[0] = "HMGET";
        argv[1] = sd->keys.attempts;
        for (size_t i = 0; i < m->nhand; i++)
            if (m->hand_kind[i] == HAND_INFLIGHT_DEAD) {
                argv[k] = keys_fingerprint(m->hand[i], m->hand_len[i], fps[k - 2]);
                k++;
            }
        rc = conn_command(&sd->main, on_attempts, (void *)m->gen, (int)k, argv, NULL);
    }
    free(argv);
    free(fps);
    if (rc != 0)
        conn_reset(&sd->main, "cannot read the attempt counts");
}

/* A departed worker's list, into the hand. */
/* A departed worker's queue or in-flight list, into the hand. */
static int take_list(struct members *m, const struct mread *rd, const redisReply *r)
{
    const struct planner_departed *d = &m->plan.dep[rd->who];
    struct handback *b = &m->back[rd->who];
    int inflight = rd->kind == R_DEP_INFLIGHT;
    int kind = !inflight ? HAND_QUEUED
             : d->why == PLANNER_DIED ? HAND_INFLIGHT_DEAD : HAND_INFLIGHT_LEFT;
    if (r->type != REDIS_REPLY_ARRAY) {
        /* The transaction would delete a list it could not read. */
        log_error("redis %s: reading worker %s's %s list failed: %s", m->sd->main.addr, d->id,
                  inflight ? "in-flight" : "queue",
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        m->read_failed = 1;
        return 0;
    }
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_STRING && hand_add(m, e->str, e->len, kind) != 0)
            return -1;
    }
    *(inflight ? &b->inflight : &b->queued) = (uint32_t)r->elements;
    return 0;
}

/* Does a fenced worker still hold a task of its fence's slots? Unreadable
 * counts as yes: the fence stays. */
static int scan_fence(struct members *m, uint32_t f, const redisReply *reply)
{
    struct route_rules rules;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_ARRAY ||
        reply->element[1]->type != REDIS_REPLY_ARRAY ||
        reply->element[0]->elements >= FENCE_SCAN) {
        /* Unreadable, or more in flight than a scan sees: it stays. */
        m->fence_blocked[f] = 1;
        return 0;
    }
    /* One scratch, as large as the largest task, for route_task. */
    size_t longest = 1;
    for (size_t l = 0; l < 2; l++)
        for (size_t i = 0; i < reply->element[l]->elements; i++)
            if (reply->element[l]->element[i]->len > longest)
                longest = reply->element[l]->element[i]->len;
    char *scratch = malloc(longest);
    if (scratch == NULL)
        return -1;
    route_rules_of(&rules, &m->sd->conf);
    for (size_t l = 0; l < 2 && !m->fence_blocked[f]; l++) {
        const redisReply *list = reply->element[l];
        for (size_t i = 0; i < list->elements && !m->fence_blocked[f]; i++) {
            const redisReply *e = list->element[i];
            unsigned slot;
            size_t at;
            if (e->type == REDIS_REPLY_STRING &&
                route_task(&rules, e->str, e->len, scratch, &slot, &at) == TASKKEY_OK &&
                slotmap_owner(&m->table.fences, slot) == f)
                m->fence_blocked[f] = 1;
        }
    }
    free(scratch);
    return 0;
}

static void on_read(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct members *m = of(ac);
    redisReply *r = reply;

    if (r == NULL || (uintptr_t)privdata != m->gen || m->state != M_CHANGING ||
        m->read_at >= m->nreads)
        return;
    const struct mread *rd = &m->reads[m->read_at++];
    int rc = 0;
    switch (rd->kind) {
    case R_DEP_FENCED:          /* for the log only: the list moves in the transaction */
        m->back[rd->who].fenced = r->type == REDIS_REPLY_INTEGER ? (uint32_t)r->integer : 0;
        break;
    case R_DEP_QUEUE:
    case R_DEP_INFLIGHT:
        rc = take_list(m, rd, r);
        break;
    case R_LOSER_LLEN:
        m->loser_len[rd->who] = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
        if (r->type != REDIS_REPLY_INTEGER)
            m->read_failed = 1;
        break;
    case R_FENCE_SCAN:
        rc = scan_fence(m, rd->who, r);
        break;
    case R_FENCE_LLEN:
        m->fence_len[rd->who] = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
        break;
    }
    if (rc != 0) {
        conn_reset(&m->sd->main, "out of memory reading what an ownership change moves");
        return;
    }
    if (m->read_at == m->nreads)
        read_done(m);
}

static void on_attempts(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct members *m = of(ac);
    redisReply *r = reply;
    uint32_t max = (uint32_t)m->sd->conf.workers.max_recoveries;

    if (r == NULL || (uintptr_t)privdata != m->gen || m->state != M_CHANGING)
        return;
    size_t k = 0;
    for (size_t i = 0; i < m->nhand; i++) {
        if (m->hand_kind[i] != HAND_INFLIGHT_DEAD)
            continue;
        if (r->type == REDIS_REPLY_ARRAY && k < r->elements &&
            r->element[k]->type == REDIS_REPLY_STRING)
            m->hand_recov[i] = (uint32_t)strtoul(r->element[k]->str, NULL, 10);
        /* This death is one more: at max_recoveries the task is poison. */
        m->hand_poison[i] = m->hand_recov[i] + 1 >= max;
        k++;
    }
    send_change(m);
}

/* Appends a command to the change; -1 on ENOMEM. */
static int txn_cmd(struct members *m, int argc, const char **argv, const size_t *argvlen)
{
    return apply_cmd(&m->apply, argc, argv, argvlen);
}

/* Appends to the change: every task of list to the intake's tail, its
 * oldest nearest it (MOVEALL in scripts_apply); both must be lists. */
static int txn_move_all(struct members *m, const char *list)
{
    const char *mv[] = { "MOVEALL", list, m->sd->keys.intake };
    if (apply_check(&m->apply, list, "list") != 0)
        return -1;
    return txn_cmd(m, 3, mv, NULL);
}

/* Replaces hash key with map: DEL, then HSET id ranges for each worker.
 * argv holds 2 + 2 * map->nworkers pointers, ranges cap bytes. */
static int txn_write_map(struct members *m, const char *key, const struct slotmap *map,
                         const char **argv, char *ranges, size_t cap)
{
    const char *del[] = { "DEL", key };
    size_t k = 2, used = 0;
    if (apply_check(&m->apply, key, "hash") != 0 || txn_cmd(m, 2, del, NULL) != 0)
        return -1;
    if (map->nworkers == 0)
        return 0;
    argv[0] = "HSET";
    argv[1] = key;
    for (uint32_t i = 0; i < map->nworkers; i++) {
        size_t n = slotmap_format_ranges(map, i, ranges + used, cap - used);
        argv[k++] = map->workers[i].id;
        argv[k++] = ranges + used;
        used += n + 1;
    }
    return txn_cmd(m, (int)k, argv, NULL);
}

/* The fences to commit (planner_fences): a fence is clear when a scan found
 * none of its slots' tasks with its worker and its list's length was read. */
static int plan_fences(struct members *m)
{
    struct planner_input in;
    uint32_t nf = m->table.fences.nworkers;
    uint8_t *clear = calloc(nf ? nf : 1, 1);
    char err[128] = "out of memory";
    int rc = -1;

    if (clear != NULL) {
        for (uint32_t f = 0; f < nf; f++)
            clear[f] = !m->fence_blocked[f] && m->fence_len[f] >= 0;
        plan_input(m, &in);
        rc = planner_fences(&in, clear, &m->plan, err, sizeof err);
    }
    free(clear);
    if (rc != 0)
        log_error("membership: cannot compute the fences: %s", err);
    return rc;
}

static void send_change(struct members *m)
{
    struct slotd *sd = m->sd;
    const struct plan *p = &m->plan;
    char *ranges = NULL, **dead = NULL;
    const char **argv = NULL;
    size_t *argvlen = NULL, ndead = 0;
    char (*names)[KEYS_NAME_MAX] = NULL;
    char fp[KEYS_FP_LEN + 1], qname[KEYS_NAME_MAX];
    int rc = -1;

    if (plan_fences(m) != 0) {
        conn_reset(&sd->main, "out of memory computing the fences");
        return;
    }
    if (!p->write) {
        /* Only fences looked at, and each still holds: nothing to write. */
        hand_clear(m);
        dispatch_release(sd->dispatch, HOLD_MEMBERSHIP);
        finish_check(m);
        return;
    }
    size_t nargs = 2 + (m->nhand > RPUSH_CHUNK ? RPUSH_CHUNK : m->nhand);
    if (nargs < 2 + 2 * (size_t)p->next.nworkers)
        nargs = 2 + 2 * (size_t)p->next.nworkers;
    if (nargs < 2 + 2 * (size_t)p->ndep)
        nargs = 2 + 2 * (size_t)p->ndep;
    if (nargs < 2 + 2 * (size_t)p->fences.nworkers)
        nargs = 2 + 2 * (size_t)p->fences.nworkers;
    argv = malloc(nargs * sizeof *argv);
    argvlen = malloc(nargs * sizeof *argvlen);
    names = malloc(2 * (size_t)(p->ndep ? p->ndep : 1) * sizeof *names);
    ranges = malloc(SLOTMAP_RANGES_MAX + (size_t)p->next.nworkers + (size_t)p->fences.nworkers + 16);
    dead = calloc(m->nhand ? m->nhand : 1, sizeof *dead);
    if (argv == NULL || argvlen == NULL || names == NULL || ranges == NULL || dead == NULL)
        goto out;

    /* Checked first, written after: the script writes nothing unless every
     * key it touches has the right type (scripts_apply). */
    apply_reset(&m->apply);
    if (apply_check(&m->apply, sd->keys.intake, "list") != 0 ||
        apply_check(&m->apply, sd->keys.workers, "set") != 0 ||
        apply_check(&m->apply, sd->keys.draining, "set") != 0 ||
        apply_check(&m->apply, sd->keys.dead, "list") != 0 ||
        apply_check(&m->apply, sd->keys.attempts, "hash") != 0 ||
        apply_check(&m->apply, sd->keys.epoch, "int") != 0)
        goto out;
    /* Survivors that lose slots: their whole queue goes back to the intake's
     * tail, oldest nearest it, so the moved slots' tasks reach the new
     * owners ahead of newer ones (and the kept slots' come back, in order).
     * Dispatch is held: nothing is pushed onto the queue meanwhile. */
    for (uint32_t i = 0; i < p->nloser; i++) {
        keys_queue(&sd->keys, m->table.map.workers[p->loser[i]].id, qname, sizeof qname);
        if (txn_move_all(m, qname) != 0)
            goto out;
    }
    /* The departed workers' fenced lists first: newer than their queued and
     * in-flight tasks, so they must end farther from the tail. */
    for (uint32_t i = 0; i < p->ndep; i++)
        if (p->dep[i].fence >= 0 &&
            txn_move_all(m, keys_fenced(&sd->keys, p->dep[i].id, qname, sizeof qname)) != 0)
            goto out;
    /* The departed workers' tasks back to the intake's tail, but poison. */
    for (size_t j = 0; j < m->nhand;) {
        size_t k = 2;
        argv[0] = "RPUSH";
        argvlen[0] = 5;
        argv[1] = sd->keys.intake;
        argvlen[1] = strlen(sd->keys.intake);
        for (; j < m->nhand && k < 2 + RPUSH_CHUNK; j++) {
            if (m->hand_poison[j])
                continue;
            argv[k] = m->hand[j];
            argvlen[k] = m->hand_len[j];
            k++;
        }
        if (k > 2 && txn_cmd(m, (int)k, argv, argvlen) != 0)
            goto out;
    }
    /* Released fences: the held tasks go to the intake's tail, oldest
     * nearest it, so they reach their slots' owners ahead of newer ones. */
    for (uint32_t f = 0; f < m->table.fences.nworkers; f++) {
        if (!p->release[f])
            continue;
        keys_fenced(&sd->keys, m->table.fences.workers[f].id, qname, sizeof qname);
        if (txn_move_all(m, qname) != 0)
            goto out;
    }
    for (size_t j = 0; j < m->nhand; j++) {
        if (m->hand_kind[j] != HAND_INFLIGHT_DEAD)
            continue;
        keys_fingerprint(m->hand[j], m->hand_len[j], fp);
        if (m->hand_poison[j]) {
            char detail[160];
            size_t elen;
            struct timeval tv;
            gettimeofday(&tv, NULL);
            snprintf(detail, sizeof detail, "in flight on %u workers that died (workers.max_recoveries)",
                     m->hand_recov[j] + 1);
            dead[ndead] = deadletter_format("poison", detail, m->hand[j], m->hand_len[j],
                                            (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, &elen);
            if (dead[ndead] == NULL)
                goto out;
            const char *lp[] = { "LPUSH", sd->keys.dead, dead[ndead] };
            size_t lpl[] = { 5, strlen(sd->keys.dead), elen };
            ndead++;
            const char *hd[] = { "HDEL", sd->keys.attempts, fp };
            if (txn_cmd(m, 3, lp, lpl) != 0 || txn_cmd(m, 3, hd, NULL) != 0)
                goto out;
            sd->stats.poison++;
            log_warn("poison task dead-lettered: %s, %zu bytes", detail, m->hand_len[j]);
        } else {
            /* TRY: a field an operator made a non-number loses a count, not
             * the change. */
            const char *hi[] = { "TRY", "HINCRBY", sd->keys.attempts, fp, "1" };
            if (txn_cmd(m, 5, hi, NULL) != 0)
                goto out;
        }
    }
    if (p->ndep > 0) {
        size_t k = 1, s = 2;
        argv[0] = "DEL";
        for (uint32_t i = 0; i < p->ndep; i++) {
            argv[k++] = keys_queue(&sd->keys, p->dep[i].id, names[2 * i], KEYS_NAME_MAX);
            argv[k++] = keys_inflight(&sd->keys, p->dep[i].id, names[2 * i + 1], KEYS_NAME_MAX);
        }
        if (txn_cmd(m, (int)k, argv, NULL) != 0)
            goto out;
        argv[0] = "SREM";
        argv[1] = sd->keys.workers;
        for (uint32_t i = 0; i < p->ndep; i++)
            argv[s++] = p->dep[i].id;
        if (txn_cmd(m, (int)s, argv, NULL) != 0)
            goto out;
        argv[1] = sd->keys.draining;
        if (txn_cmd(m, (int)s, argv, NULL) != 0)
            goto out;
    }
    size_t cap = SLOTMAP_RANGES_MAX + (size_t)p->next.nworkers + (size_t)p->fences.nworkers + 16;
    if (txn_write_map(m, sd->keys.slots, &p->next, argv, ranges, cap) != 0 ||
        txn_write_map(m, sd->keys.fences, &p->fences, argv, ranges, cap) != 0)
        goto out;
    /* The epoch counts changes of ownership; a released fence is not one. */
    const char *incr[] = { "INCR", sd->keys.epoch };
    if (p->moved && txn_cmd(m, 2, incr, NULL) != 0)
        goto out;
    /* One script, in a MULTI so that the WATCH above guards it. */
    int eargc;
    const char **eargv;
    const size_t *eargvlen;
    const char *multi[] = { "MULTI" };
    const char *exec[] = { "EXEC" };
    char expected[SCRIPTS_TAIL_MAX], next[SCRIPTS_TAIL_MAX];
    dispatch_tail_values(sd->dispatch, expected, next, sizeof expected);
    if (apply_build(&m->apply, sd->keys.tail, expected, next, &eargc, &eargv, &eargvlen) != 0 ||
        conn_command(&sd->main, NULL, NULL, 1, multi, NULL) != 0 ||
        conn_command(&sd->main, NULL, NULL, eargc, eargv, eargvlen) != 0 ||
        conn_command(&sd->main, on_change, (void *)m->gen, 1, exec, NULL) != 0)
        goto out;
    rc = 0;
out:
    for (size_t i = 0; i < ndead; i++)
        free(dead[i]);
    free(dead);
    free(argv);
    free(argvlen);
    free(names);
    free(ranges);
    if (rc != 0)
        conn_reset(&sd->main, "cannot send the ownership change");
}

static int declared_index(const struct members *m, const char *id)
{
    for (uint32_t i = 0; i < m->ndeclared; i++)
        if (strcmp(m->declared_dead[i], id) == 0)
            return (int)i;
    return -1;
}

/* Remembers a worker declared dead, so that its return is noticed. */
static void declare_dead(struct members *m, const char *id)
{
    if (declared_index(m, id) >= 0)
        return;
    if (m->ndeclared == m->declared_cap) {
        uint32_t nc = m->declared_cap ? m->declared_cap * 2 : 16;
        if (nc > 4096) {
            m->ndeclared = 0;       /* forget the oldest history rather than grow */
            nc = m->declared_cap;
        } else {
            char (*d)[SLOTMAP_ID_MAX + 1] = realloc(m->declared_dead, nc * sizeof *d);
            if (d == NULL)
                return;
            m->declared_dead = d;
            m->declared_cap = nc;
        }
    }
    snprintf(m->declared_dead[m->ndeclared++], SLOTMAP_ID_MAX + 1, "%s", id);
}

/* The workers on the other side of worker who's moves, each once, in slot
 * order, as "a, b": the new owners of its old slots (outgoing), or the old
 * owners of its new slots. names: the table the other side is in. */
static void move_peers(const struct plan *p, int outgoing, uint32_t who,
                       const struct slotmap *names, char *buf, size_t cap)
{
    uint8_t seen[SLOTMAP_BITS_LEN];     /* worker indices named already */
    memset(seen, 0, sizeof seen);
    buf[0] = '\0';
    for (uint32_t k = 0; k < p->nmoves; k++) {
        const struct planner_move *mv = &p->moves[k];
        uint32_t side = outgoing ? mv->from : mv->to, peer = outgoing ? mv->to : mv->from;
        if (side != who || peer == SLOTMAP_NOBODY || slotmap_bit(seen, peer))
            continue;
        slotmap_bit_set(seen, peer);
        size_t used = strlen(buf);
        if (used + SLOTMAP_ID_MAX + 8 < cap)
            snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", names->workers[peer].id);
    }
}

/* Logs each departure and join with the slots that moved and where; each
 * move and its reason at debug level. */
static void log_moves(struct members *m, const struct slotmap *old, const struct slotmap *nw)
{
    struct slotd *sd = m->sd;
    const struct plan *p = &m->plan;
    for (uint32_t k = 0; k < p->nmoves; k++) {
        const struct planner_move *mv = &p->moves[k];
        log_debug("membership: slots %u-%u go from %s to %s (%s)", mv->lo, mv->hi,
                  mv->from == SLOTMAP_NOBODY ? "nobody" : old->workers[mv->from].id,
                  mv->to == SLOTMAP_NOBODY ? "nobody" : nw->workers[mv->to].id,
                  planner_reason_name(mv->why));
    }
    for (uint32_t i = 0; i < p->ndep; i++) {
        const struct planner_departed *d = &p->dep[i];
        const struct handback *b = &m->back[i];
        int idx = slotmap_find(old, d->id);
        char to[256] = "";
        uint32_t nslots = idx >= 0 ? old->workers[idx].nslots : 0;
        if (idx >= 0)
            move_peers(p, 1, (uint32_t)idx, nw, to, sizeof to);
        if (d->why == PLANNER_DIED) {
            sd->stats.deaths++;
            declare_dead(m, d->id);
        }
        else if (d->why == PLANNER_LEFT) sd->stats.leaves++;
        sd->stats.requeued += b->queued + b->inflight;
        char fenced[96] = "";
        if (d->fence >= 0)
            snprintf(fenced, sizeof fenced, ", then the %" PRIu32 " that waited behind its fence",
                     b->fenced);
        if (idx >= 0)
            log_info("worker %s %s: its %" PRIu32 " slots go to %s; %" PRIu32 " in-flight and %"
                     PRIu32 " queued tasks requeued ahead of the intake%s",
                     d->id, departure_text[d->why], nslots, to[0] ? to : "nobody",
                     b->inflight, b->queued, fenced);
        else
            log_info("worker %s %s, owning no slot: %" PRIu32 " in-flight and %" PRIu32
                     " queued tasks requeued ahead of the intake%s",
                     d->id, departure_text[d->why], b->inflight, b->queued, fenced);
    }
    for (uint32_t i = 0; i < nw->nworkers; i++) {
        if (slotmap_find(old, nw->workers[i].id) >= 0)
            continue;
        char from[256];
        move_peers(p, 0, i, old, from, sizeof from);
        sd->stats.joins++;
        int z = declared_index(m, nw->workers[i].id);
        if (z >= 0) {
            sd->stats.zombies++;
            log_warn("worker %s was declared dead and is heard from again: it rejoins as a"
                     " newcomer (its tasks in flight were already requeued)", nw->workers[i].id);
            memmove(m->declared_dead[z], m->declared_dead[m->ndeclared - 1], SLOTMAP_ID_MAX + 1);
            m->ndeclared--;
        }
        log_info("worker %s joined (weight %" PRIu32 "): takes %" PRIu32 " slots from %s",
                 nw->workers[i].id, nw->workers[i].weight, nw->workers[i].nslots,
                 from[0] ? from : "nobody (unowned)");
    }
}

/* Logs each fence set up, grown or released by the change just committed;
 * returns how many were set up or grown. */
static uint32_t log_fences(struct members *m, const struct slotmap *oldf)
{
    uint32_t set = 0;
    struct slotd *sd = m->sd;
    const struct slotmap *nf = &m->table.fences;
    for (uint32_t f = 0; f < oldf->nworkers; f++) {
        const char *id = oldf->workers[f].id;
        if (slotmap_find(nf, id) >= 0 || plan_departing(&m->plan, id))
            continue;
        sd->stats.fences_released++;
        log_info("worker %s has finished the tasks it held of the %" PRIu32 " slots it handed"
                 " off: their %lld waiting tasks go on to the new owners", id,
                 oldf->workers[f].nslots, m->fence_len[f]);
    }
    for (uint32_t f = 0; f < nf->nworkers; f++) {
        int o = slotmap_find(oldf, nf->workers[f].id);
        uint32_t before = o >= 0 ? oldf->workers[o].nslots : 0;
        if (nf->workers[f].nslots == before)
            continue;
        sd->stats.fences_set++;
        set++;
        char key[KEYS_NAME_MAX];
        log_info("worker %s handed off %" PRIu32 " slots it may still hold tasks of: their"
                 " newer tasks wait in %s until it has finished those", nf->workers[f].id,
                 nf->workers[f].nslots - before,
                 keys_fenced(&sd->keys, nf->workers[f].id, key, sizeof key));
    }
    return set;
}

static void on_change(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct members *m = of(ac);
    struct slotd *sd = m->sd;
    redisReply *r = reply;

    if (r == NULL || (uintptr_t)privdata != m->gen)
        return;
    hand_clear(m);
    if (r->type == REDIS_REPLY_NIL) {
        /* A watched list or heartbeat changed under us: a departed worker
         * moved or came back. Nothing was written; look again. */
        log_info("ownership change raced with a departed worker's activity; checking again");
        dispatch_release(sd->dispatch, HOLD_MEMBERSHIP);
        m->again = 1;
        finish_check(m);
        return;
    }
    const redisReply *a = r->type == REDIS_REPLY_ARRAY && r->elements == 1 ? r->element[0] : NULL;
    if (a == NULL || a->type != REDIS_REPLY_ARRAY || a->elements < 3 ||
        a->element[0]->type != REDIS_REPLY_STRING || a->element[1]->type == REDIS_REPLY_ARRAY) {
        /* Refused whole (EXECABORT: out of memory...), or the script failed
         * in a command it calls (an ACL without it): then some of the change
         * may stand, so the table is read again. */
        if (a != NULL && a->type == REDIS_REPLY_ERROR) {
            trouble(m, "script", "the ownership change script failed: %s (check the Redis user's ACL,"
                    " docs/operations.md); reading the table again", a->str);
            members_reload(m);
            return;
        }
        trouble(m, "change", "Redis refused the ownership change: %s",
                r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        dispatch_release(sd->dispatch, HOLD_MEMBERSHIP);
        finish_check(m);
        return;
    }
    const char *why = a->element[0]->str;
    if (strcmp(why, "ok") != 0) {
        const char *key = a->element[1]->type == REDIS_REPLY_STRING ? a->element[1]->str : "?";
        const char *what = a->element[2]->type == REDIS_REPLY_STRING ? a->element[2]->str : "?";
        uint64_t v;
        int ours = 0;
        if (strcmp(why, "moved") == 0 &&
            scripts_tail_parse(what, strlen(what), lease_token(sd->lease), &v, &ours) == 0 &&
            !ours && what[0] != '\0') {
            /* Another slotd took the lease (its epoch is in the tail's value,
             * the fence): it owns the changes now. */
            sd->stats.fenced++;
            dispatch_release(sd->dispatch, HOLD_MEMBERSHIP);
            finish_check(m);
            lease_fenced(sd->lease, what, "ownership change not written");
            return;
        }
        if (strcmp(why, "moved") == 0) {
            /* The tail moved: a batch before this change was not moved, or
             * someone wrote it. Read everything again. */
            log_warn("ownership change not written: %s is '%s', not the value it was computed"
                     " against; reading the table again", key, what);
            members_reload(m);
            return;
        }
        trouble(m, key, "the ownership change was not written: %s holds a %s, which it cannot use"
                " (look at it with TYPE, then RENAME or DEL it)", key, what);
        dispatch_release(sd->dispatch, HOLD_MEMBERSHIP);
        finish_check(m);
        return;
    }
    {
        uint64_t v;
        int ours;
        if (a->element[1]->type == REDIS_REPLY_STRING &&
            scripts_tail_parse(a->element[1]->str, a->element[1]->len, lease_token(sd->lease), &v,
                               &ours) == 0)
            dispatch_set_tail(sd->dispatch, v, 0);
    }
    const redisReply *out = a->element[2];
    const redisReply *last = out->type == REDIS_REPLY_ARRAY && out->elements
                                 ? out->element[out->elements - 1] : NULL;
    struct slotmap old, oldf;
    slotmap_init(&old);
    slotmap_init(&oldf);
    if (slotmap_copy(&old, &m->table.map) != 0 || slotmap_copy(&oldf, &m->table.fences) != 0 ||
        table_adopt(m, &m->plan.next, &m->plan.fences) != 0) {
        slotmap_free(&old);
        slotmap_free(&oldf);
        conn_reset(&sd->main, "out of memory committing the slot table");
        return;
    }
    if (m->plan.moved && last != NULL && last->type == REDIS_REPLY_INTEGER)
        m->table.epoch = (uint64_t)last->integer;
    log_moves(m, &old, &m->table.map);
    for (uint32_t i = 0; i < m->plan.nloser; i++) {
        if (m->loser_len[i] == 0)
            continue;
        sd->stats.handoffs += (uint64_t)m->loser_len[i];
        log_info("worker %s lost slots: its %lld queued tasks go back through the intake, in"
                 " order, so the moved slots' tasks reach their new owners first",
                 old.workers[m->plan.loser[i]].id, m->loser_len[i]);
    }
    for (uint32_t i = 0; i < m->plan.nloser; i++)
        if (slotmap_find(&m->table.map, old.workers[m->plan.loser[i]].id) < 0)
            log_info("worker %s drained: it owns no slot now; it finishes what it holds and"
                     " can then be stopped", old.workers[m->plan.loser[i]].id);
    /* A new fence is looked at again at once: if its worker held nothing of
     * those slots, their tasks wait a round trip, not a check interval. */
    if (log_fences(m, &oldf) > 0)
        m->again = 1;
    slotmap_free(&old);
    slotmap_free(&oldf);
    if (m->plan.moved)
        log_info("slot table epoch %" PRIu64 ": %" PRIu32 " live workers, %" PRIu32
                 " handoffs fenced", m->table.epoch, m->table.map.nworkers,
                 m->table.fences.nworkers);
    if (m->table.map.nworkers == 0) {
        if (!m->no_workers_said)
            log_warn("no live worker: the intake is left alone until one registers");
        m->no_workers_said = 1;
        dispatch_hold(sd->dispatch, HOLD_NO_WORKERS);
    } else if (m->no_workers_said || (dispatch_holds(sd->dispatch) & HOLD_NO_WORKERS)) {
        log_info("workers are live again: routing resumes");
        m->no_workers_said = 0;
        dispatch_release(sd->dispatch, HOLD_NO_WORKERS);
    }
    dispatch_release(sd->dispatch, HOLD_MEMBERSHIP);
    finish_check(m);
}
