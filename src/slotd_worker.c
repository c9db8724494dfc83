/*
 * slotd_worker: libslotd. The worker side of docs/protocol.md over hiredis's
 * synchronous API. Every batch operation is one round trip (a pipeline, or a
 * MULTI/EXEC where it must be atomic).
 */
#include "slotd_worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "deadletter.h"
#include "dial.h"
#include "keys.h"
#include "slotmap.h"

#define ERR_MAX 512     /* room for what each of a few sentinels said */

struct slotd_worker {
    struct slotd_worker_options o;      /* copy; its strings point into the owned ones below */
    char          *host, *unix_path, *username, *password, *ns, *id;   /* owned */
    char          *sentinels, *sentinel_master, *sentinel_username, *sentinel_password; /* owned */
    char          *cluster_seeds;       /* owned */
    struct keys    keys;
    char           queue[KEYS_NAME_MAX], inflight[KEYS_NAME_MAX], hb[KEYS_NAME_MAX];
    char           beat[256];           /* the heartbeat's JSON value */
    struct dial    dial;                /* the worker thread's way to Redis (strings: o's) */
    redisContext  *c;                   /* owned: the worker's connection */
    int            held;                /* tasks taken and not acknowledged */
    int            take_lost;           /* a take's reply was lost: see conn() */
    char           server[DIAL_ADDR_MAX + DIAL_VIA_MAX + 16];
                                        /* where c is, and how it was found */
    char           err[ERR_MAX];        /* the last error of the worker's thread */
    /* The heartbeat thread. */
    pthread_t      hb_thread;
    int            hb_running;
    struct dial    hb_dial;             /* the thread's own (a copy of dial when it starts) */
    pthread_mutex_t hb_lock;
    pthread_cond_t hb_cond;
    int            hb_stop;             /* under hb_lock */
    unsigned long  hb_failures;         /* under hb_lock: heartbeats failed in a row */
    char           hb_err[ERR_MAX];     /* under hb_lock: the last one's reason */
    char           hb_master[DIAL_ADDR_MAX];    /* under hb_lock: where the sentinels last
                                                   said the master is (follow_sentinels) */
    unsigned long  hb_master_gen;       /* under hb_lock: bumped when that changes */
    unsigned long  master_gen;          /* the worker thread's: the last one it followed */
};

static void say(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Errors go to a buffer of the calling thread's (ERR_MAX bytes): the
 * worker's, or the heartbeat thread's own. */
static void say(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, ERR_MAX, fmt, ap);
    va_end(ap);
}

/* Why c's last command got no reply, for "Redis connection lost: ...". */
static const char *lost_reason(const struct slotd_worker *w, const redisContext *c, char *buf,
                               size_t cap)
{
    return dial_lost(c, w->o.reply_timeout_ms, buf, cap);
}

#define set_err(w, ...) say((w)->err, __VA_ARGS__)

/*
 * Every script of libslotd begins with these checks: a key of the wrong type
 * (a missing key passes) stops it before it writes anything, since Redis
 * does not undo a script that fails half way. Each script then reads, and
 * writes last.
 */
/* Moving tasks between lists does not grow Redis's memory, and a heartbeat
 * must be written even when Redis refuses new data (maxmemory with
 * noeviction), or every worker would be declared dead: those scripts may
 * run over maxmemory (Redis 7 script flags). */
#define ALLOW_OOM "#!lua flags=allow-oom\n"

#define CHECK_TYPES \
    "local function wrong(k, want)\n" \
    "  local t = redis.call('TYPE', k).ok\n" \
    "  if t ~= 'none' and t ~= want then return k .. ' holds a ' .. t .. ', not a ' .. want end\n" \
    "end\n"

/*
 * Takes up to ARGV[1] tasks off the queue's tail onto the in-flight list's
 * head, atomically: the same as that many LMOVE queue inflight RIGHT LEFT in
 * one MULTI, for one command instead of one per task. Returns the tasks
 * oldest first, and HLEN of the attempts hash (0: every attempt is 1). The
 * pushes go in pieces, as Lua's unpack has a bounded stack.
 */
static const char take_script[] =
    ALLOW_OOM CHECK_TYPES
    "local bad = wrong(KEYS[1], 'list') or wrong(KEYS[2], 'list') or wrong(KEYS[3], 'hash')\n"
    "if bad then return redis.error_reply('WRONGTYPE ' .. bad) end\n"
    "local t = redis.call('LRANGE', KEYS[1], -tonumber(ARGV[1]), -1)\n"
    "local h = redis.call('HLEN', KEYS[3])\n"
    "local n = #t\n"
    "local r = {}\n"
    "for i = n, 1, -1 do r[#r + 1] = t[i] end\n"
    "if n > 0 then\n"
    "  for i = 1, n, 1000 do\n"
    "    redis.call('LPUSH', KEYS[2], unpack(r, i, math.min(i + 999, n)))\n"
    "  end\n"
    "  redis.call('LTRIM', KEYS[1], 0, -n - 1)\n"
    "end\n"
    "return {r, h}\n";

/*
 * Removes the ARGV[1] acknowledged tasks (ARGV[2..], any order) from the
 * in-flight list (KEYS[1]), and then the attempt counts of those that had
 * one (their fingerprints, after the tasks) from KEYS[2]. Usually the tasks
 * are the list's oldest, at the tail: then one LTRIM does it, once the tail
 * is checked to hold exactly those bytes (as a multiset: tasks with equal
 * bytes are interchangeable). Otherwise each goes by LREM from the tail, as
 * a lone acknowledgement would. Returns how many were found.
 */
static const char ack_script[] =
    CHECK_TYPES
    "local bad = wrong(KEYS[1], 'list') or wrong(KEYS[2], 'hash')\n"
    "if bad then return redis.error_reply('WRONGTYPE ' .. bad) end\n"
    "local k = tonumber(ARGV[1])\n"
    "local tail = redis.call('LRANGE', KEYS[1], -k, -1)\n"
    "local found = -1\n"
    "if #tail == k then\n"
    "  local left = {}\n"
    "  for i = 2, k + 1 do left[ARGV[i]] = (left[ARGV[i]] or 0) + 1 end\n"
    "  found = k\n"
    "  for i = 1, k do\n"
    "    local c = left[tail[i]]\n"
    "    if c == nil or c == 0 then found = -1 break end\n"
    "    left[tail[i]] = c - 1\n"
    "  end\n"
    "  if found == k then redis.call('LTRIM', KEYS[1], 0, -k - 1) end\n"
    "end\n"
    "if found < 0 then\n"
    "  found = 0\n"
    "  for i = 2, k + 1 do found = found + redis.call('LREM', KEYS[1], -1, ARGV[i]) end\n"
    "end\n"
    "for i = k + 2, #ARGV do redis.call('HDEL', KEYS[2], ARGV[i]) end\n"
    "return found\n";

/* A task given up on: its dead letter (ARGV[1]) onto KEYS[1], the task
 * (ARGV[2]) off the in-flight list KEYS[2], its attempt count (ARGV[3])
 * off KEYS[3]. */
static const char dead_script[] =
    CHECK_TYPES
    "local bad = wrong(KEYS[1], 'list') or wrong(KEYS[2], 'list') or wrong(KEYS[3], 'hash')\n"
    "if bad then return redis.error_reply('WRONGTYPE ' .. bad) end\n"
    "redis.call('LPUSH', KEYS[1], ARGV[1])\n"
    "redis.call('LREM', KEYS[2], 1, ARGV[2])\n"
    "redis.call('HDEL', KEYS[3], ARGV[3])\n"
    "return 1\n";

/*
 * Puts tasks of the in-flight list (KEYS[1]) back at the queue's (KEYS[2])
 * tail, so they are taken first again: all but the ARGV[2] oldest (those
 * at its tail, still held), the newest first, so the oldest of them ends
 * nearest the queue's tail. Only if the list still holds ARGV[1] tasks (-1:
 * any number): else it answers an error and moves nothing. Each fingerprint
 * after (ARGV[3..]) gets one more attempt in KEYS[3] (pcall: a field that
 * is not a number loses a count, not the move). Answers how many moved.
 */
static const char recover_script[] =
    ALLOW_OOM CHECK_TYPES
    "local bad = wrong(KEYS[1], 'list') or wrong(KEYS[2], 'list') or wrong(KEYS[3], 'hash')\n"
    "if bad then return redis.error_reply('WRONGTYPE ' .. bad) end\n"
    "local n = redis.call('LLEN', KEYS[1])\n"
    "if ARGV[1] ~= '-1' and n ~= tonumber(ARGV[1]) then\n"
    "  return redis.error_reply('CHANGED ' .. KEYS[1] .. ' changed while it was read')\n"
    "end\n"
    "local m = n - tonumber(ARGV[2])\n"
    "for i = 1, m do redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT') end\n"
    "for i = 3, #ARGV do redis.pcall('HINCRBY', KEYS[3], ARGV[i], 1) end\n"
    "return m\n";

/* A heartbeat (ARGV[1], PX ARGV[2]) on KEYS[1], and the id (ARGV[3]) in
 * the set of workers KEYS[2]. The heartbeat is written even when the set
 * has the wrong type (it is only the worker's liveness, and slotd declares
 * no death while it cannot read the set); the error says so. */
static const char beat_script[] =
    ALLOW_OOM CHECK_TYPES
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "local bad = wrong(KEYS[2], 'set')\n"
    "if bad then return redis.error_reply('WRONGTYPE ' .. bad) end\n"
    "redis.call('SADD', KEYS[2], ARGV[3])\n"
    "return 1\n";

/* Leaving: every task held (not started) back to the queue's tail, the id
 * (ARGV[1]) out of the workers (KEYS[3]), the heartbeat (KEYS[4]) gone. */
static const char leave_script[] =
    ALLOW_OOM CHECK_TYPES
    "local bad = wrong(KEYS[1], 'list') or wrong(KEYS[2], 'list') or wrong(KEYS[3], 'set')\n"
    "if bad then return redis.error_reply('WRONGTYPE ' .. bad) end\n"
    "while redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT') do end\n"
    "redis.call('SREM', KEYS[3], ARGV[1])\n"
    "redis.call('DEL', KEYS[4])\n"
    "return 1\n";

const char *slotd_worker_error(const struct slotd_worker *w) { return w->err; }
int slotd_worker_held(const struct slotd_worker *w) { return w->held; }
const char *slotd_worker_server(const struct slotd_worker *w) { return w->server; }

/* A new connection to the master (found through the sentinels, if any),
 * authenticated, on the right database, every reply within the reply
 * timeout, and named "slotd-worker:<id>" plus role (CLIENT LIST tells whose
 * it is); or NULL with the reason in err. Each thread dials with its own d. */
static redisContext *dial(const struct slotd_worker *w, struct dial *d, char *err,
                          const char *role)
{
    char name[128];
    /* A shard's connections say which: "slotd-worker:w1#3:hb". */
    char shard[16] = "";
    if (w->keys.nshards > 1)
        snprintf(shard, sizeof shard, "#%d", w->keys.shard);
    snprintf(name, sizeof name, "slotd-worker:%s%s%s", w->o.id, shard, role);
    return dial_connect(d, name, err, ERR_MAX);
}

static int move_back(struct slotd_worker *w, redisContext *c, long long keep,
                     char (*fps)[KEYS_FP_LEN + 1], size_t nfps, const char *expect);

/*
 * Every call of the API ends here: a connection that failed in it (lost,
 * timed out, or marked by dial_check_reply because the server is not the
 * master any more) is closed at once, not at the next call, which may come
 * much later: a stale master must not keep a connection of ours. rc passes
 * through.
 */
static int settled(struct slotd_worker *w, int rc)
{
    if (w->c != NULL && w->c->err) {
        redisFree(w->c);
        w->c = NULL;
    }
    return rc;
}

/* The heartbeat thread heard from the sentinels that the master moved
 * away from where the worker's connection is. */
static int master_moved(struct slotd_worker *w)
{
    int moved = 0;
    if (!w->hb_running)
        return 0;
    pthread_mutex_lock(&w->hb_lock);
    if (w->hb_master_gen != w->master_gen) {
        w->master_gen = w->hb_master_gen;
        moved = w->c != NULL && strcmp(w->hb_master, w->dial.addr) != 0;
    }
    pthread_mutex_unlock(&w->hb_lock);
    return moved;
}

/*
 * The worker's connection, made again if it was lost (or the heartbeat
 * thread heard from the sentinels that the master moved). A take whose
 * reply was lost may have moved tasks into the in-flight list that the
 * handle does not know it holds: they are the list's newest (a take pushes
 * at its head, and nothing is taken until this is done), so all but the
 * `held` oldest go back to the queue's tail, to be taken again in order.
 */
static redisContext *conn(struct slotd_worker *w)
{
    if (w->c != NULL && w->c->err == 0 && !master_moved(w))
        return w->c;
    if (w->c)
        redisFree(w->c);
    w->c = dial(w, &w->dial, w->err, "");
    if (w->c != NULL) {
        if (dial_uses_sentinel(&w->dial) || dial_uses_cluster(&w->dial))
            snprintf(w->server, sizeof w->server, "%s, found by %s", w->dial.addr, w->dial.via);
        else
            snprintf(w->server, sizeof w->server, "%s", w->dial.addr);
    }
    if (w->c != NULL && w->take_lost) {
        if (move_back(w, w->c, w->held, NULL, 0, "-1") != 0) {
            redisFree(w->c);
            w->c = NULL;
            return NULL;
        }
        w->take_lost = 0;
    }
    return w->c;
}

static char *dup_or(const char *s, const char *dflt)
{
    return strdup(s && *s ? s : dflt);
}

/* A copy of s, or NULL for NULL; *oom is set when the copy failed. */
static char *dup_null(const char *s, int *oom)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *oom = 1;
    return d;
}

/* Frees the handle's owned strings and the handle. */
static void free_handle(struct slotd_worker *w)
{
    free(w->host);
    free(w->unix_path);
    free(w->username);
    free(w->password);
    free(w->ns);
    free(w->id);
    free(w->sentinels);
    free(w->sentinel_master);
    free(w->sentinel_username);
    free(w->sentinel_password);
    free(w->cluster_seeds);
    free(w);
}

struct slotd_worker *slotd_worker_open(const struct slotd_worker_options *opts,
                                       char *err, size_t errlen)
{
    struct slotd_worker *w = calloc(1, sizeof *w);
    char host[256];
    int oom = 0;

    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->o = *opts;
    w->host = dup_or(opts->host, "127.0.0.1");
    w->unix_path = dup_or(opts->unix_path, "");
    w->username = dup_or(opts->username, "");
    w->password = opts->password ? strdup(opts->password) : NULL;
    w->ns = dup_or(opts->ns, "slotd");
    w->id = dup_or(opts->id, "");
    w->sentinels = dup_or(opts->sentinels, "");
    w->sentinel_master = dup_or(opts->sentinel_master, "");
    w->sentinel_username = dup_or(opts->sentinel_username, "");
    w->sentinel_password = dup_null(opts->sentinel_password, &oom);
    w->cluster_seeds = dup_or(opts->cluster_seeds, "");
    if (!w->host || !w->unix_path || !w->username || !w->ns || !w->id || !w->sentinels ||
        !w->cluster_seeds ||
        !w->sentinel_master || !w->sentinel_username || oom || (opts->password && !w->password)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    w->o.host = w->host;
    w->o.unix_path = w->unix_path;
    w->o.username = w->username;
    w->o.password = w->password;
    w->o.ns = w->ns;
    w->o.id = w->id;
    w->o.sentinels = w->sentinels;
    w->o.sentinel_master = w->sentinel_master;
    w->o.sentinel_username = w->sentinel_username;
    w->o.sentinel_password = w->sentinel_password;
    w->o.cluster_seeds = w->cluster_seeds;
    if (w->o.port == 0) w->o.port = 6379;
    if (w->o.heartbeat_ttl_ms <= 0) w->o.heartbeat_ttl_ms = 3000;
    if (w->o.weight <= 0) w->o.weight = 1;
    if (w->o.prefetch <= 0) w->o.prefetch = 16;
    if (w->o.connect_timeout_ms <= 0) w->o.connect_timeout_ms = DIAL_CONNECT_TIMEOUT_MS;
    if (w->o.reply_timeout_ms <= 0) w->o.reply_timeout_ms = DIAL_REPLY_TIMEOUT_MS;
    if (!slotmap_valid_id(w->id, strlen(w->id))) {
        snprintf(err, errlen, "invalid worker id '%s': 1-64 of [A-Za-z0-9._-]", w->id);
        goto fail;
    }
    struct dial_options d = { DIAL_OPTIONS_OF(w->o) };
    if (dial_init(&w->dial, &d, err, errlen) != 0)
        goto fail;
    if (w->o.shards <= 0)
        w->o.shards = 1;
    if (w->o.shards > KEYS_SHARDS_MAX || w->o.shard < 0 || w->o.shard >= w->o.shards) {
        snprintf(err, errlen, "invalid shard %d of %d: shards is 1-%d, a shard 0 to shards - 1",
                 w->o.shard, w->o.shards, KEYS_SHARDS_MAX);
        goto fail;
    }
    if (keys_init_shard(&w->keys, w->ns, w->o.shard, w->o.shards) != 0) {
        snprintf(err, errlen, "namespace too long");
        goto fail;
    }
    w->dial.slot = keys_slot(&w->keys);     /* Cluster: every key of ours is in it */
    keys_queue(&w->keys, w->id, w->queue, sizeof w->queue);
    keys_inflight(&w->keys, w->id, w->inflight, sizeof w->inflight);
    keys_hb(&w->keys, w->id, w->hb, sizeof w->hb);
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    snprintf(w->beat, sizeof w->beat, "{\"host\":\"%.100s\",\"pid\":%ld,\"weight\":%d}",
             host, (long)getpid(), w->o.weight);
    pthread_mutex_init(&w->hb_lock, NULL);
    pthread_cond_init(&w->hb_cond, NULL);
    w->c = conn(w);
    if (w->c == NULL) {
        snprintf(err, errlen, "%s", w->err);
        pthread_mutex_destroy(&w->hb_lock);
        pthread_cond_destroy(&w->hb_cond);
        goto fail;
    }
    return w;
fail:
    free_handle(w);
    return NULL;
}

/* Runs a script (KEYS then ARGV, all given) and checks its answer is of
 * type `want`: the reply (the caller frees it), or NULL with the reason in
 * err, prefixed by what. *lost is set when the connection failed (the
 * script may or may not have run). */
static redisReply *run_script(const struct slotd_worker *w, redisContext *c, char *err,
                              const char *what, int *lost,
                              const char *script, int nkeys, int argc, const char **argv,
                              const size_t *argvlen, int want)
{
    const char *fixed[3] = { "EVAL", script, NULL };
    char nk[16];
    snprintf(nk, sizeof nk, "%d", nkeys);
    fixed[2] = nk;
    const char **all = malloc(((size_t)argc + 3) * sizeof *all);
    size_t *lens = malloc(((size_t)argc + 3) * sizeof *lens);
    redisReply *r = NULL;
    *lost = 0;
    if (all == NULL || lens == NULL) {
        say(err, "%s: out of memory", what);
        goto out;
    }
    for (int i = 0; i < 3; i++) {
        all[i] = fixed[i];
        lens[i] = strlen(fixed[i]);
    }
    for (int i = 0; i < argc; i++) {
        all[3 + i] = argv[i];
        lens[3 + i] = argvlen ? argvlen[i] : strlen(argv[i]);
    }
    r = redisCommandArgv(c, argc + 3, all, lens);
    if (r == NULL) {
        char why[200];
        say(err, "%s: Redis connection lost: %s", what, lost_reason(w, c, why, sizeof why));
        *lost = 1;
    } else if (r->type != want) {
        say(err, "%s refused: %s", what, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        dial_check_reply(c, r);     /* not the master: the next call dials again */
        freeReplyObject(r);
        r = NULL;
    }
out:
    free(all);
    free(lens);
    return r;
}

static int beat_on(const struct slotd_worker *w, redisContext *c, char *err)
{
    char ttl[24];
    int lost;
    snprintf(ttl, sizeof ttl, "%d", w->o.heartbeat_ttl_ms);
    const char *argv[] = { w->hb, w->keys.workers, w->beat, ttl, w->id };
    redisReply *r = run_script(w, c, err, "heartbeat", &lost, beat_script, 2, 5, argv, NULL,
                               REDIS_REPLY_INTEGER);
    if (r == NULL)
        return -1;
    freeReplyObject(r);
    return 0;
}

static int heartbeat_once(struct slotd_worker *w)
{
    redisContext *c = conn(w);
    return c ? beat_on(w, c, w->err) : -1;
}

/*
 * Puts what the in-flight list holds beyond the `keep` oldest back at the
 * queue's tail (recover_script). With fps, each task's attempt goes up, and
 * only if the list still holds exactly nfps tasks. 0, or -1.
 */
static int move_back(struct slotd_worker *w, redisContext *c, long long keep,
                     char (*fps)[KEYS_FP_LEN + 1], size_t nfps, const char *expect)
{
    const char **argv = malloc((5 + nfps) * sizeof *argv);
    char keeptext[24];
    int lost;
    if (argv == NULL)
        return set_err(w, "out of memory"), -1;
    snprintf(keeptext, sizeof keeptext, "%lld", keep);
    argv[0] = w->inflight;
    argv[1] = w->queue;
    argv[2] = w->keys.attempts;
    argv[3] = expect;
    argv[4] = keeptext;
    for (size_t i = 0; i < nfps; i++)
        argv[5 + i] = fps[i];
    redisReply *r = run_script(w, c, w->err, "recovering the in-flight list", &lost, recover_script,
                               3, (int)(5 + nfps), argv, NULL, REDIS_REPLY_INTEGER);
    free(argv);
    if (r == NULL)
        return -1;
    freeReplyObject(r);
    return 0;
}

static int register_once(struct slotd_worker *w)
{
    redisContext *c = conn(w);
    if (c == NULL)
        return -1;
    /* Left by a previous run with this id: back to the front, in order.
     * A task that was running then runs again: its attempt goes up. */
    redisReply *r = redisCommand(c, "LRANGE %s 0 -1", w->inflight);
    char why[200];
    if (r == NULL)
        return set_err(w, "Redis connection lost: %s", lost_reason(w, c, why, sizeof why)), -1;
    if (r->type != REDIS_REPLY_ARRAY) {
        set_err(w, "cannot read %s: %s", w->inflight, r->type == REDIS_REPLY_ERROR ? r->str : "?");
        dial_check_reply(c, r);
        freeReplyObject(r);
        return -1;
    }
    int rc = 0;
    if (r->elements > 0) {
        char (*fps)[KEYS_FP_LEN + 1] = malloc(r->elements * sizeof *fps);
        char expect[24];
        snprintf(expect, sizeof expect, "%zu", r->elements);
        for (size_t i = 0; fps != NULL && i < r->elements; i++)
            keys_fingerprint(r->element[i]->str, r->element[i]->len, fps[i]);
        rc = fps == NULL ? (set_err(w, "out of memory"), -1)
                         : move_back(w, c, 0, fps, r->elements, expect);
        free(fps);
    }
    freeReplyObject(r);
    if (rc != 0)
        return -1;
    w->held = 0;
    w->take_lost = 0;
    return beat_on(w, c, w->err);
}

/* The time ms from now on CLOCK_REALTIME, for pthread_cond_timedwait. */
static struct timespec realtime_in(int ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    long ns = (long)(ms % 1000) * 1000000L + t.tv_nsec;
    t.tv_sec += ms / 1000 + ns / 1000000000L;
    t.tv_nsec = ns % 1000000000L;
    return t;
}

/*
 * With Sentinel, after each beat: where do the sentinels say the master is?
 * When that changed, the heartbeat's connection (if elsewhere) goes now, and
 * the worker's thread is told (hb_master, hb_master_gen): its next call
 * dials again. ROLE cannot tell a master that froze and woke before the
 * sentinels switched from the master of the moment; the sentinels can.
 * 1 when the heartbeat's connection went, so it beats again at once.
 */
static int follow_sentinels(struct slotd_worker *w, struct dial_watch *watch, char *located,
                            redisContext **c)
{
    char now[DIAL_ADDR_MAX], err[ERR_MAX];
    if (!dial_uses_sentinel(&w->hb_dial) ||
        dial_locate(&w->hb_dial, watch, now, sizeof now, err, sizeof err) != 1 ||
        strcmp(now, located) == 0)
        return 0;       /* not known (the beats say whether Redis answers), or no news */
    snprintf(located, DIAL_ADDR_MAX, "%s", now);
    pthread_mutex_lock(&w->hb_lock);
    snprintf(w->hb_master, sizeof w->hb_master, "%s", now);
    w->hb_master_gen++;
    pthread_mutex_unlock(&w->hb_lock);
    if (*c != NULL && strcmp(now, w->hb_dial.addr) != 0) {
        redisFree(*c);
        *c = NULL;
        return 1;
    }
    return 0;
}

static void *heartbeat_main(void *arg)
{
    struct slotd_worker *w = arg;
    redisContext *c = NULL;
    struct dial_watch watch;
    char err[ERR_MAX], located[DIAL_ADDR_MAX] = "";
    memset(&watch, 0, sizeof watch);
    pthread_mutex_lock(&w->hb_lock);
    while (!w->hb_stop) {
        pthread_mutex_unlock(&w->hb_lock);
        /* The next beat is due a third of the TTL after this one starts,
         * however long looking for the master takes. */
        struct timespec until = realtime_in(w->o.heartbeat_ttl_ms / 3);
        if (c == NULL)
            c = dial(w, &w->hb_dial, err, ":hb");
        int ok = c != NULL && beat_on(w, c, err) == 0;
        if (c != NULL && c->err) {
            /* Lost, late, or not the master: closed now (see settled()). */
            redisFree(c);
            c = NULL;
        }
        int again = ok && follow_sentinels(w, &watch, located, &c);
        pthread_mutex_lock(&w->hb_lock);
        /* For the worker's thread to report: the library says nothing. */
        if (ok) {
            w->hb_failures = 0;
        } else {
            w->hb_failures++;
            snprintf(w->hb_err, sizeof w->hb_err, "%s", err);
        }
        if (!w->hb_stop && !again)
            pthread_cond_timedwait(&w->hb_cond, &w->hb_lock, &until);
    }
    pthread_mutex_unlock(&w->hb_lock);
    if (c)
        redisFree(c);
    dial_watch_close(&watch);
    return NULL;
}

unsigned long slotd_worker_heartbeat_failures(struct slotd_worker *w, char *err, size_t errlen)
{
    pthread_mutex_lock(&w->hb_lock);
    unsigned long n = w->hb_failures;
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", n > 0 ? w->hb_err : "");
    pthread_mutex_unlock(&w->hb_lock);
    return n;
}

int slotd_worker_start_heartbeat(struct slotd_worker *w)
{
    if (w->hb_running)
        return 0;
    w->hb_stop = 0;
    w->hb_failures = 0;
    w->hb_dial = w->dial;       /* the sentinel that answered last first, for it too */
    if (pthread_create(&w->hb_thread, NULL, heartbeat_main, w) != 0) {
        set_err(w, "cannot start the heartbeat thread");
        return -1;
    }
    w->hb_running = 1;
    return 0;
}

static void stop_heartbeat(struct slotd_worker *w)
{
    if (!w->hb_running)
        return;
    pthread_mutex_lock(&w->hb_lock);
    w->hb_stop = 1;
    pthread_cond_signal(&w->hb_cond);
    pthread_mutex_unlock(&w->hb_lock);
    pthread_join(w->hb_thread, NULL);
    w->hb_running = 0;
}

/* Fills in the attempt numbers of tasks[0..n) from {ns}:attempts. */
static int load_attempts(struct slotd_worker *w, redisContext *c, struct slotd_task *t, int n)
{
    char (*fps)[KEYS_FP_LEN + 1] = malloc((size_t)n * sizeof *fps);
    const char **argv = malloc(((size_t)n + 2) * sizeof *argv);
    int rc = -1;
    if (fps == NULL || argv == NULL) {
        set_err(w, "out of memory");
        goto out;
    }
    argv[0] = "HMGET";
    argv[1] = w->keys.attempts;
    for (int i = 0; i < n; i++)
        argv[i + 2] = keys_fingerprint(t[i].data, t[i].len, fps[i]);
    redisReply *r = redisCommandArgv(c, n + 2, argv, NULL);
    if (r == NULL) {
        char why[200];
        set_err(w, "Redis connection lost: %s", lost_reason(w, c, why, sizeof why));
        goto out;
    }
    dial_check_reply(c, r);
    for (int i = 0; r->type == REDIS_REPLY_ARRAY && i < n && (size_t)i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            t[i].attempt = 1 + (unsigned)strtoul(r->element[i]->str, NULL, 10);
    freeReplyObject(r);
    rc = 0;
out:
    free(fps);
    free(argv);
    return rc;
}

static int keep_task(struct slotd_worker *w, struct slotd_task *t, const redisReply *e)
{
    t->data = malloc(e->len ? e->len : 1);
    if (t->data == NULL) {
        set_err(w, "out of memory");
        return -1;
    }
    memcpy(t->data, e->str, e->len);
    t->len = e->len;
    t->attempt = 1;
    return 0;
}

static int take_once(struct slotd_worker *w, struct slotd_task *tasks, int max, int timeout_ms)
{
    redisContext *c = conn(w);
    int want = w->o.prefetch - w->held, n = 0;
    long long known = 0;

    if (c == NULL)
        return -1;
    if (want > max)
        want = max;
    if (want <= 0)
        return 0;
    char why[200];
    redisReply *reply = redisCommand(c, "EVAL %s 3 %s %s %s %d", take_script, w->queue,
                                 w->inflight, w->keys.attempts, want);
    if (reply == NULL) {
        /* It may have moved tasks: conn() gives them back on reconnecting. */
        set_err(w, "Redis connection lost: %s", lost_reason(w, c, why, sizeof why));
        w->take_lost = 1;
        return -1;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_ARRAY || reply->element[0]->elements > (size_t)want) {
        set_err(w, "take refused: %s", reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        dial_check_reply(c, reply);     /* a replica refused it: nothing moved */
        freeReplyObject(reply);
        return -1;
    }
    redisReply *got = reply->element[0];
    for (size_t i = 0; i < got->elements; i++) {
        redisReply *e = got->element[i];
        if (e->type != REDIS_REPLY_STRING)
            break;
        if (keep_task(w, &tasks[n], e) != 0)
            break;      /* it stays in flight; leave or a restart returns it */
        n++;
    }
    if (reply->element[1]->type == REDIS_REPLY_INTEGER)
        known = reply->element[1]->integer;
    freeReplyObject(reply);

    if (n == 0 && timeout_ms > 0) {
        /* Nothing queued: block for the first task. Its reply may take the
         * wait, and then as long as any other reply may. */
        int patience = timeout_ms + w->o.reply_timeout_ms;
        char secs[32];
        snprintf(secs, sizeof secs, "%d.%03d", timeout_ms / 1000, timeout_ms % 1000);
        if (dial_set_timeout(c, patience) != 0)
            return set_err(w, "cannot set a timeout: %s", c->errstr), -1;
        redisReply *r = redisCommand(c, "BLMOVE %s %s RIGHT LEFT %s", w->queue, w->inflight, secs);
        if (r == NULL) {
            set_err(w, "Redis connection lost: %s", dial_lost(c, patience, why, sizeof why));
            w->take_lost = 1;
            return -1;
        }
        /* Back to the reply timeout. Should that fail, hiredis marks c
         * failed, and the next call dials again. */
        (void)dial_set_timeout(c, w->o.reply_timeout_ms);
        if (r->type == REDIS_REPLY_ERROR) {
            /* Refused (out of memory), or unblocked by a master turned
             * replica (UNBLOCKED): nothing moved. */
            set_err(w, "take refused: %s", r->str);
            dial_check_reply(c, r);
            freeReplyObject(r);
            return -1;
        }
        if (r->type == REDIS_REPLY_STRING && keep_task(w, &tasks[0], r) == 0)
            n = 1;
        freeReplyObject(r);
        known = 1;      /* unknown: look */
    }
    w->held += n;
    if (n > 0 && known > 0 && load_attempts(w, c, tasks, n) != 0)
        return n;       /* taken all the same; attempts shown as 1 */
    return n;
}

/* The handle no longer holds these tasks: Redis took them off its lists. */
static void forget(struct slotd_worker *w, struct slotd_task *tasks, int n)
{
    for (int i = 0; i < n; i++) {
        free(tasks[i].data);
        tasks[i].data = NULL;
    }
    w->held = w->held > n ? w->held - n : 0;
}

/*
 * Runs a script that changes the worker's lists; when the connection drops
 * before the answer, reconnects and runs it once more (each such script is
 * safe to run twice: an ack or a dead letter of a task already gone finds
 * nothing to remove). The reply, or NULL.
 */
static redisReply *run_twice(struct slotd_worker *w, const char *what, const char *script,
                             int nkeys, int argc, const char **argv, const size_t *argvlen,
                             int want)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int lost = 0;
        redisContext *c = conn(w);
        if (c == NULL)
            return NULL;
        redisReply *r = run_script(w, c, w->err, what, &lost, script, nkeys, argc, argv,
                                   argvlen, want);
        if (r != NULL || !lost)
            return r;
    }
    return NULL;
}

static int ack_once(struct slotd_worker *w, struct slotd_task *tasks, int n)
{
    int rc = -1;
    if (n <= 0)
        return 0;
    /* KEYS inflight attempts; ARGV n, the tasks, the fingerprints to clear. */
    const char **argv = malloc((2 * (size_t)n + 3) * sizeof *argv);
    size_t *lens = malloc((2 * (size_t)n + 3) * sizeof *lens);
    char (*fps)[KEYS_FP_LEN + 1] = malloc((size_t)n * sizeof *fps);
    char count[16];
    if (argv == NULL || lens == NULL || fps == NULL) {
        set_err(w, "out of memory");
        goto out;
    }
    snprintf(count, sizeof count, "%d", n);
    argv[0] = w->inflight;
    argv[1] = w->keys.attempts;
    argv[2] = count;
    int k = 3;
    for (int i = 0; i < n; i++, k++) {
        argv[k] = tasks[i].data;
        lens[k] = tasks[i].len;
    }
    for (int i = 0; i < n; i++)
        if (tasks[i].attempt > 1) {
            argv[k] = keys_fingerprint(tasks[i].data, tasks[i].len, fps[i]);
            lens[k++] = KEYS_FP_LEN;
        }
    for (int i = 0; i < 3; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = run_twice(w, "ack", ack_script, 2, k, argv, lens, REDIS_REPLY_INTEGER);
    if (r != NULL) {
        freeReplyObject(r);
        forget(w, tasks, n);
        rc = 0;
    }
out:
    free(argv);
    free(lens);
    free(fps);
    return rc;
}

static int dead_letter_once(struct slotd_worker *w, struct slotd_task *t, const char *reason,
                            const char *detail)
{
    struct timeval tv;
    size_t elen;
    char fp[KEYS_FP_LEN + 1];

    gettimeofday(&tv, NULL);
    char *entry = deadletter_format(reason, detail, t->data, t->len,
                                    (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, &elen);
    if (entry == NULL)
        return set_err(w, "out of memory"), -1;
    const char *argv[] = { w->keys.dead, w->inflight, w->keys.attempts, entry, t->data,
                           keys_fingerprint(t->data, t->len, fp) };
    size_t lens[] = { strlen(argv[0]), strlen(argv[1]), strlen(argv[2]), elen, t->len, KEYS_FP_LEN };
    redisReply *r = run_twice(w, "dead letter", dead_script, 3, 6, argv, lens,
                              REDIS_REPLY_INTEGER);
    free(entry);
    if (r == NULL)
        return -1;      /* still held: nothing moved */
    freeReplyObject(r);
    forget(w, t, 1);
    return 0;
}

static int leave_once(struct slotd_worker *w)
{
    stop_heartbeat(w);
    /* Held tasks (not started) back to the front of the queue, and
     * deregistration, in one script. */
    const char *argv[] = { w->inflight, w->queue, w->keys.workers, w->hb, w->id };
    redisReply *r = run_twice(w, "leave", leave_script, 4, 5, argv, NULL, REDIS_REPLY_INTEGER);
    if (r == NULL)
        return -1;
    freeReplyObject(r);
    w->held = 0;
    return 0;
}

void slotd_worker_close(struct slotd_worker *w)
{
    if (w == NULL)
        return;
    stop_heartbeat(w);
    if (w->c)
        redisFree(w->c);
    pthread_mutex_destroy(&w->hb_lock);
    pthread_cond_destroy(&w->hb_cond);
    free_handle(w);
}

int slotd_worker_register(struct slotd_worker *w)
{
    return settled(w, register_once(w));
}

int slotd_worker_heartbeat(struct slotd_worker *w)
{
    return settled(w, heartbeat_once(w));
}

int slotd_worker_take(struct slotd_worker *w, struct slotd_task *tasks, int max, int timeout_ms)
{
    return settled(w, take_once(w, tasks, max, timeout_ms));
}

int slotd_worker_ack(struct slotd_worker *w, struct slotd_task *tasks, int n)
{
    return settled(w, ack_once(w, tasks, n));
}

int slotd_worker_leave(struct slotd_worker *w)
{
    return settled(w, leave_once(w));
}

int slotd_worker_dead_letter(struct slotd_worker *w, struct slotd_task *t,
                             const char *reason, const char *detail)
{
    return settled(w, dead_letter_once(w, t, reason, detail));
}
