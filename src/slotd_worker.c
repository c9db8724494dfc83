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
#include "keys.h"
#include "slotmap.h"

struct slotd_worker {
    struct slotd_worker_options o;      /* copy; its strings point into the owned ones below */
    char          *host, *unix_path, *username, *password, *ns, *id;   /* owned */
    struct keys    keys;
    char           queue[KEYS_NAME_MAX], inflight[KEYS_NAME_MAX], hb[KEYS_NAME_MAX];
    char           beat[256];           /* the heartbeat's JSON value */
    redisContext  *c;                   /* owned: the worker's connection */
    int            held;                /* tasks taken and not acknowledged */
    char           err[256];            /* the last error of the worker's thread */
    /* The heartbeat thread. */
    pthread_t      hb_thread;
    int            hb_running;
    pthread_mutex_t hb_lock;
    pthread_cond_t hb_cond;
    int            hb_stop;             /* under hb_lock */
    unsigned long  hb_failures;         /* under hb_lock: heartbeats failed in a row */
    char           hb_err[256];         /* under hb_lock: the last one's reason */
};

static void say(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Errors go to a buffer of the calling thread's: the worker's, or the
 * heartbeat thread's own. */
static void say(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, 256, fmt, ap);
    va_end(ap);
}

#define set_err(w, ...) say((w)->err, __VA_ARGS__)

const char *slotd_worker_error(const struct slotd_worker *w) { return w->err; }
int slotd_worker_held(const struct slotd_worker *w) { return w->held; }

/* A new connection, authenticated and on the right database, or NULL with
 * the reason in err. Reads only the options, so both threads may dial. */
static redisContext *dial(const struct slotd_worker *w, char *err)
{
    struct timeval tv = { 5, 0 };
    redisContext *c = w->o.unix_path && w->o.unix_path[0]
                          ? redisConnectUnixWithTimeout(w->o.unix_path, tv)
                          : redisConnectWithTimeout(w->o.host, w->o.port, tv);
    redisReply *r = NULL;
    if (c == NULL || c->err) {
        say(err, "cannot connect to Redis: %s", c ? c->errstr : "out of memory");
        goto fail;
    }
    if (w->o.password) {
        r = w->o.username && w->o.username[0]
                ? redisCommand(c, "AUTH %s %s", w->o.username, w->o.password)
                : redisCommand(c, "AUTH %s", w->o.password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            say(err, "Redis refused AUTH: %s", r ? r->str : c->errstr);
            goto fail;
        }
        freeReplyObject(r);
        r = NULL;
    }
    if (w->o.db != 0) {
        r = redisCommand(c, "SELECT %d", w->o.db);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            say(err, "Redis refused SELECT: %s", r ? r->str : c->errstr);
            goto fail;
        }
        freeReplyObject(r);
    }
    return c;
fail:
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    return NULL;
}

/* The worker's connection, reconnecting once if it was lost. */
static redisContext *conn(struct slotd_worker *w)
{
    if (w->c != NULL && w->c->err == 0)
        return w->c;
    if (w->c)
        redisFree(w->c);
    w->c = dial(w, w->err);
    return w->c;
}

static char *dup_or(const char *s, const char *dflt)
{
    return strdup(s && *s ? s : dflt);
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
    free(w);
}

struct slotd_worker *slotd_worker_open(const struct slotd_worker_options *opts,
                                       char *err, size_t errlen)
{
    struct slotd_worker *w = calloc(1, sizeof *w);
    char host[256];

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
    if (!w->host || !w->unix_path || !w->username || !w->ns || !w->id ||
        (opts->password && !w->password)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    w->o.host = w->host;
    w->o.unix_path = w->unix_path;
    w->o.username = w->username;
    w->o.password = w->password;
    w->o.ns = w->ns;
    w->o.id = w->id;
    if (w->o.port == 0) w->o.port = 6379;
    if (w->o.heartbeat_ttl_ms <= 0) w->o.heartbeat_ttl_ms = 3000;
    if (w->o.weight <= 0) w->o.weight = 1;
    if (w->o.prefetch <= 0) w->o.prefetch = 16;
    if (!slotmap_valid_id(w->id, strlen(w->id))) {
        snprintf(err, errlen, "invalid worker id '%s': 1-64 of [A-Za-z0-9._-]", w->id);
        goto fail;
    }
    if (keys_init(&w->keys, w->ns) != 0) {
        snprintf(err, errlen, "namespace too long");
        goto fail;
    }
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
    w->c = dial(w, w->err);
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

/* Sends argc commands already appended and reads their replies into
 * replies[] (the caller frees them). 0, or -1 on a connection error. */
static int read_replies(char *err, redisContext *c, redisReply **replies, int n)
{
    for (int i = 0; i < n; i++) {
        if (redisGetReply(c, (void **)&replies[i]) != REDIS_OK) {
            say(err, "Redis connection lost: %s", c->errstr);
            for (int j = 0; j < i; j++)
                freeReplyObject(replies[j]);
            return -1;
        }
    }
    return 0;
}

static void free_replies(redisReply **replies, int n)
{
    for (int i = 0; i < n; i++)
        if (replies[i])
            freeReplyObject(replies[i]);
}

/* The first error among replies[0..n), which says why a transaction was
 * refused (EXEC's own EXECABORT only repeats that a command was), or NULL. */
static const char *first_error(redisReply **replies, int n)
{
    for (int i = 0; i < n; i++)
        if (replies[i]->type == REDIS_REPLY_ERROR)
            return replies[i]->str;
    return NULL;
}

static int beat_on(const struct slotd_worker *w, redisContext *c, char *err)
{
    char ttl[24];
    redisReply *r[4];
    snprintf(ttl, sizeof ttl, "%d", w->o.heartbeat_ttl_ms);
    redisAppendCommand(c, "MULTI");
    redisAppendCommand(c, "SET %s %s PX %s", w->hb, w->beat, ttl);
    redisAppendCommand(c, "SADD %s %s", w->keys.workers, w->id);
    redisAppendCommand(c, "EXEC");
    if (read_replies(err, c, r, 4) != 0)
        return -1;
    int ok = r[3]->type == REDIS_REPLY_ARRAY;
    if (!ok) {
        const char *why = first_error(r, 4);
        say(err, "heartbeat refused: %s", why ? why : "unexpected reply");
    }
    free_replies(r, 4);
    return ok ? 0 : -1;
}

int slotd_worker_heartbeat(struct slotd_worker *w)
{
    redisContext *c = conn(w);
    return c ? beat_on(w, c, w->err) : -1;
}

/* Moves every task of list `from` to the tail end of `to` (oldest nearest
 * the tail, so taken first), inside the MULTI the caller opened. Returns how
 * many commands it appended. */
static int append_move_back(redisContext *c, const char *from, const char *to, long long n)
{
    for (long long i = 0; i < n; i++)
        redisAppendCommand(c, "LMOVE %s %s LEFT RIGHT", from, to);
    return (int)n;
}

static long long list_len(struct slotd_worker *w, redisContext *c, const char *key)
{
    redisReply *r = redisCommand(c, "LLEN %s", key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r == NULL)
        set_err(w, "Redis connection lost: %s", c->errstr);
    else if (n < 0)
        set_err(w, "LLEN refused: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    if (r)
        freeReplyObject(r);
    return n;
}

int slotd_worker_register(struct slotd_worker *w)
{
    redisContext *c = conn(w);
    if (c == NULL)
        return -1;
    long long n = list_len(w, c, w->inflight);
    if (n < 0)
        return -1;
    if (n > 0) {
        /* Left by a previous run with this id: back to the front, in order.
         * A task that was running then runs again: its attempt goes up. */
        redisReply *r = redisCommand(c, "LRANGE %s 0 -1", w->inflight);
        if (r == NULL)
            return set_err(w, "Redis connection lost: %s", c->errstr), -1;
        redisAppendCommand(c, "MULTI");
        int k = 1 + append_move_back(c, w->inflight, w->queue, n);
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            char fp[KEYS_FP_LEN + 1];
            keys_fingerprint(r->element[i]->str, r->element[i]->len, fp);
            redisAppendCommand(c, "HINCRBY %s %s 1", w->keys.attempts, fp);
            k++;
        }
        freeReplyObject(r);
        redisAppendCommand(c, "EXEC");
        k++;
        redisReply **rs = calloc((size_t)k, sizeof *rs);
        if (rs == NULL || read_replies(w->err, c, rs, k) != 0) {
            free(rs);
            return -1;
        }
        free_replies(rs, k);
        free(rs);
    }
    w->held = 0;
    return beat_on(w, c, w->err);
}

static void *heartbeat_main(void *arg)
{
    struct slotd_worker *w = arg;
    redisContext *c = NULL;
    char err[256];
    pthread_mutex_lock(&w->hb_lock);
    while (!w->hb_stop) {
        pthread_mutex_unlock(&w->hb_lock);
        if (c == NULL || c->err) {
            if (c)
                redisFree(c);
            c = dial(w, err);
        }
        int ok = c != NULL && beat_on(w, c, err) == 0;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        long ns = (long)(w->o.heartbeat_ttl_ms / 3) * 1000000L + until.tv_nsec;
        until.tv_sec += ns / 1000000000L;
        until.tv_nsec = ns % 1000000000L;
        pthread_mutex_lock(&w->hb_lock);
        /* For the worker's thread to report: the library says nothing. */
        if (ok) {
            w->hb_failures = 0;
        } else {
            w->hb_failures++;
            snprintf(w->hb_err, sizeof w->hb_err, "%s", err);
        }
        if (!w->hb_stop)
            pthread_cond_timedwait(&w->hb_cond, &w->hb_lock, &until);
    }
    pthread_mutex_unlock(&w->hb_lock);
    if (c)
        redisFree(c);
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
        set_err(w, "Redis connection lost: %s", c->errstr);
        goto out;
    }
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

/*
 * Takes up to ARGV[1] tasks off the queue's tail onto the in-flight list's
 * head, atomically: the same as that many LMOVE queue inflight RIGHT LEFT in
 * one MULTI, for one command instead of one per task. Returns the tasks
 * oldest first, and HLEN of the attempts hash (0: every attempt is 1). Reads
 * first, pushes, trims last: Redis does not undo a script that fails half
 * way, so a key of the wrong type (or a write refused) fails before anything
 * is taken off the queue. The pushes go in pieces, as Lua's unpack has a
 * bounded stack.
 */
static const char take_script[] =
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

int slotd_worker_take(struct slotd_worker *w, struct slotd_task *tasks, int max, int timeout_ms)
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
    redisReply *reply = redisCommand(c, "EVAL %s 3 %s %s %s %d", take_script, w->queue,
                                 w->inflight, w->keys.attempts, want);
    if (reply == NULL) {
        set_err(w, "Redis connection lost: %s", c->errstr);
        return -1;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_ARRAY || reply->element[0]->elements > (size_t)want) {
        set_err(w, "take refused: %s", reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
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
        /* Nothing queued: block for the first task. */
        struct timeval tv = { timeout_ms / 1000 + 5, 0 };
        char secs[32];
        snprintf(secs, sizeof secs, "%d.%03d", timeout_ms / 1000, timeout_ms % 1000);
        redisSetTimeout(c, tv);
        redisReply *r = redisCommand(c, "BLMOVE %s %s RIGHT LEFT %s", w->queue, w->inflight, secs);
        if (r == NULL) {
            set_err(w, "Redis connection lost: %s", c->errstr);
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

/*
 * Removes the acknowledged tasks (ARGV, any order) from the in-flight list
 * (KEYS[1]). Usually they are its k oldest, at the tail: then one LTRIM does
 * it, once the tail is checked to hold exactly those bytes (as a multiset:
 * tasks with equal bytes are interchangeable). Otherwise each goes by LREM
 * from the tail, as a lone acknowledgement would. Returns how many were found.
 */
static const char ack_script[] =
    "local k = #ARGV\n"
    "local tail = redis.call('LRANGE', KEYS[1], -k, -1)\n"
    "if #tail == k then\n"
    "  local left = {}\n"
    "  for i = 1, k do left[ARGV[i]] = (left[ARGV[i]] or 0) + 1 end\n"
    "  local same = true\n"
    "  for i = 1, k do\n"
    "    local c = left[tail[i]]\n"
    "    if c == nil or c == 0 then same = false break end\n"
    "    left[tail[i]] = c - 1\n"
    "  end\n"
    "  if same then\n"
    "    redis.call('LTRIM', KEYS[1], 0, -k - 1)\n"
    "    return k\n"
    "  end\n"
    "end\n"
    "local found = 0\n"
    "for i = 1, k do found = found + redis.call('LREM', KEYS[1], -1, ARGV[i]) end\n"
    "return found\n";

/* The handle no longer holds these tasks, whatever Redis answered. */
static void forget(struct slotd_worker *w, struct slotd_task *tasks, int n)
{
    for (int i = 0; i < n; i++) {
        free(tasks[i].data);
        tasks[i].data = NULL;
    }
    w->held = w->held > n ? w->held - n : 0;
}

int slotd_worker_ack(struct slotd_worker *w, struct slotd_task *tasks, int n)
{
    redisContext *c = conn(w);
    int k = 1, rc = -1;
    if (n <= 0)
        return 0;
    if (c == NULL)
        return -1;
    const char **argv = malloc(((size_t)n + 4) * sizeof *argv);
    size_t *lens = malloc(((size_t)n + 4) * sizeof *lens);
    if (argv == NULL || lens == NULL) {
        free(argv);
        free(lens);
        return set_err(w, "out of memory"), -1;
    }
    argv[0] = "EVAL";
    argv[1] = ack_script;
    argv[2] = "1";
    argv[3] = w->inflight;
    for (int i = 0; i < 4; i++)
        lens[i] = strlen(argv[i]);
    for (int i = 0; i < n; i++) {
        argv[4 + i] = tasks[i].data;
        lens[4 + i] = tasks[i].len;
    }
    int appended = redisAppendCommandArgv(c, n + 4, argv, lens);
    free(argv);
    free(lens);
    if (appended != REDIS_OK) {
        set_err(w, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (tasks[i].attempt > 1) {
            char fp[KEYS_FP_LEN + 1];
            redisAppendCommand(c, "HDEL %s %s", w->keys.attempts,
                               keys_fingerprint(tasks[i].data, tasks[i].len, fp));
            k++;
        }
    }
    redisReply **rs = calloc((size_t)k, sizeof *rs);
    if (rs != NULL && read_replies(w->err, c, rs, k) == 0) {
        if (rs[0]->type == REDIS_REPLY_INTEGER)
            rc = 0;
        else
            set_err(w, "ack refused: %s", rs[0]->type == REDIS_REPLY_ERROR ? rs[0]->str : "?");
        free_replies(rs, k);
    }
    free(rs);
out:
    forget(w, tasks, n);
    return rc;
}

int slotd_worker_dead_letter(struct slotd_worker *w, struct slotd_task *t,
                             const char *reason, const char *detail)
{
    redisContext *c = conn(w);
    struct timeval tv;
    size_t elen;
    char fp[KEYS_FP_LEN + 1];
    redisReply *rs[5];
    int rc = -1;

    if (c == NULL)
        return -1;
    gettimeofday(&tv, NULL);
    char *entry = deadletter_format(reason, detail, t->data, t->len,
                                    (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, &elen);
    if (entry == NULL)
        return set_err(w, "out of memory"), -1;
    redisAppendCommand(c, "MULTI");
    redisAppendCommand(c, "LPUSH %s %b", w->keys.dead, entry, elen);
    redisAppendCommand(c, "LREM %s 1 %b", w->inflight, t->data, t->len);
    redisAppendCommand(c, "HDEL %s %s", w->keys.attempts, keys_fingerprint(t->data, t->len, fp));
    redisAppendCommand(c, "EXEC");
    if (read_replies(w->err, c, rs, 5) == 0) {
        rc = rs[4]->type == REDIS_REPLY_ARRAY ? 0 : -1;
        free_replies(rs, 5);
    }
    free(entry);
    forget(w, t, 1);
    return rc;
}

int slotd_worker_leave(struct slotd_worker *w)
{
    stop_heartbeat(w);
    redisContext *c = conn(w);
    if (c == NULL)
        return -1;
    long long n = list_len(w, c, w->inflight);
    if (n < 0)
        return -1;
    /* Held tasks (not started) back to the front of the queue, and
     * deregistration, in one transaction. */
    redisAppendCommand(c, "MULTI");
    int k = 1 + append_move_back(c, w->inflight, w->queue, n);
    redisAppendCommand(c, "SREM %s %s", w->keys.workers, w->id);
    redisAppendCommand(c, "DEL %s", w->hb);
    redisAppendCommand(c, "EXEC");
    k += 3;
    redisReply **rs = calloc((size_t)k, sizeof *rs);
    int rc = -1;
    if (rs != NULL && read_replies(w->err, c, rs, k) == 0) {
        rc = rs[k - 1]->type == REDIS_REPLY_ARRAY ? 0 : -1;
        free_replies(rs, k);
    }
    free(rs);
    w->held = 0;
    return rc;
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
