/*
 * conn: a Redis connection that reconnects by itself. Ownership: hiredis owns
 * the redisAsyncContext and frees it after the disconnect (or failed
 * connect) callback, so those callbacks clear c->ac and nothing else keeps it.
 * The one exception is a connect the watchdog gives up on: hiredis calls no
 * callback when a context that never connected is freed, so that path clears
 * c->ac itself.
 */
#include "conn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "clock.h"
#include "conf.h"
#include "log.h"
#include "refusal.h"
#include "sentinel.h"

/* The encoding buffer is kept between commands up to this size. */
#define CONN_OUT_KEEP (1u << 20)

static void on_connect(const redisAsyncContext *ac, int status);
static void on_disconnect(const redisAsyncContext *ac, int status);
static void on_retry(evutil_socket_t fd, short what, void *arg);
static void on_handshake(redisAsyncContext *ac, void *reply, void *privdata);
static void on_watch(evutil_socket_t fd, short what, void *arg);

/* The handshake's commands; each reply's privdata is its index here. */
enum { HS_AUTH, HS_SELECT, HS_SETNAME, HS_ROLE };
static const char *const handshake_names[] = { "AUTH", "SELECT", "CLIENT SETNAME", "ROLE" };

static const char *const state_names[] = {
#define CONN_NAME(e, name) name,
    CONN_STATES(CONN_NAME)
#undef CONN_NAME
};

const char *conn_state_name(enum conn_state s) { return state_names[s]; }

struct conn *conn_of(const redisAsyncContext *ac) { return ac->data; }

static void set_state(struct conn *c, enum conn_state to)
{
    if (c->state != to)
        log_debug("redis %s (%s): %s -> %s", c->addr, c->name,
                  state_names[c->state], state_names[to]);
    c->state = to;
}

int conn_init(struct conn *c, const char *name, struct event_base *base,
              const struct conf *conf, conn_event_fn *on_up,
              conn_event_fn *on_down, void *arg)
{
    memset(c, 0, sizeof *c);
    c->name = name;
    c->base = base;
    c->conf = conf;
    c->on_up = on_up;
    c->on_down = on_down;
    c->arg = arg;
    c->state = CONN_DOWN;
    replyarena_init(&c->arena);
    c->rnd = (uint32_t)getpid() * 2654435761u ^ (uint32_t)time(NULL);
    if (c->rnd == 0)
        c->rnd = 1;
    c->retry = evtimer_new(base, on_retry, c);
    c->watch = event_new(base, -1, EV_PERSIST, on_watch, c);
    if (c->retry == NULL || c->watch == NULL)
        return -1;
    return 0;
}

void conn_set_kind(struct conn *c, enum conn_kind kind)
{
    c->kind = kind;
}

/* A redis conn finds its address through Sentinel, or the cluster's nodes,
 * when they are set. */
static int follows(const struct conn *c)
{
    return c->kind == CONN_KIND_REDIS &&
           (c->conf->redis.sentinels[0] != '\0' || c->conf->redis.cluster_seeds[0] != '\0');
}

static uint32_t next_rnd(struct conn *c)
{
    uint32_t x = c->rnd;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return c->rnd = x;
}

static void schedule_retry(struct conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    backoff_init(&c->backoff, (uint32_t)c->conf->redis.reconnect_min_ms,
                 (uint32_t)c->conf->redis.reconnect_max_ms);
    uint32_t ms = backoff_next(&c->backoff, next_rnd(c));
    struct timeval tv = { ms / 1000, (long)(ms % 1000) * 1000 };
    set_state(c, CONN_DOWN);
    evtimer_add(c->retry, &tv);
}

static int use_unix(const struct conn *c)
{
    return !c->addr_set && c->kind == CONN_KIND_REDIS && c->conf->redis.unix_path[0] != '\0';
}

static void describe_addr(struct conn *c)
{
    const struct conf *cf = c->conf;
    if (use_unix(c))
        snprintf(c->addr, sizeof c->addr, "unix:%s", cf->redis.unix_path);
    else if (c->addr_set)
        snprintf(c->addr, sizeof c->addr, strchr(c->host, ':') ? "[%s]:%d" : "%s:%d", c->host,
                 c->port);
    else
        snprintf(c->addr, sizeof c->addr, "%s:%d", cf->redis.host, cf->redis.port);
}

/* The ring of commands due. */
static int pend_push(struct conn *c, conn_reply_fn *fn, void *privdata, uint32_t wait_ms)
{
    if (c->pend_n == c->pend_cap) {
        size_t cap = c->pend_cap ? c->pend_cap * 2 : 64;
        struct conn_pending *p = malloc(cap * sizeof *p);
        if (p == NULL)
            return -1;
        for (size_t i = 0; i < c->pend_n; i++)
            p[i] = c->pend[(c->pend_head + i) % c->pend_cap];
        free(c->pend);
        c->pend = p;
        c->pend_cap = cap;
        c->pend_head = 0;
    }
    if (c->pend_n == 0)
        c->phase_ms = clock_mono_ms();  /* the wait for a reply starts now */
    c->pend[(c->pend_head + c->pend_n) % c->pend_cap] =
        (struct conn_pending){ fn, privdata, wait_ms };
    c->pend_n++;
    return 0;
}

static struct conn_pending pend_pop(struct conn *c)
{
    struct conn_pending p = c->pend[c->pend_head];
    c->pend_head = (c->pend_head + 1) % c->pend_cap;
    c->pend_n--;
    return p;
}

/* The newest command was not sent after all. */
static void pend_unpush(struct conn *c)
{
    c->pend_n--;
}

/*
 * Says that Redis cannot be used, by the rule of episode.h: the first
 * failure of an episode in full, with what to do, then at most once a minute
 * with how long it lasts and how many attempts failed. A refusal other than
 * the last one said (the password is fixed, and now the ACL lacks a command)
 * is news, said in full too. kind names the failure for that comparison;
 * "unreachable" is never news after a loss or a refusal: the retries go on
 * the same.
 */
static void say_down(struct conn *c, enum log_level level, const char *kind,
                     const char *what, const char *advice)
{
    uint64_t now = clock_mono_ms();
    enum episode_say say = episode_hit(&c->down, now, 0, NULL);
    int news = level == LL_ERROR && strcmp(kind, c->down_said) != 0;

    if (say == EPISODE_FIRST || news) {
        log_msg(level, "redis %s (%s) %s; %s%sretrying with backoff", c->addr, c->name, what,
                advice, advice[0] != '\0' ? "; " : "");
        snprintf(c->down_said, sizeof c->down_said, "%s", kind);
    } else if (say == EPISODE_AGAIN) {
        log_msg(level, "redis %s (%s) still %s (for %" PRIu64 " s, %" PRIu64
                " failed attempt%s); retrying with backoff", c->addr, c->name, what,
                (now - c->down.started_ms) / 1000, c->failed, c->failed == 1 ? "" : "s");
    } else {
        log_debug("redis %s (%s) still %s", c->addr, c->name, what);
    }
}

/* This attempt failed: counted and said once, whichever callback sees it
 * first (a refused handshake is then also a closed connection). */
static void attempt_failed(struct conn *c, enum log_level level, const char *kind,
                           const char *what, const char *advice)
{
    if (c->attempt_failed)
        return;
    c->attempt_failed = 1;
    c->failed++;
    say_down(c, level, kind, what, advice);
    if (c->on_fail)
        c->on_fail(c, c->arg);
}

static void unreachable(struct conn *c, const char *why)
{
    char what[300];
    snprintf(what, sizeof what, "unreachable: %s", why);
    attempt_failed(c, LL_WARN, "unreachable", what, "");
}

/* Redis answered handshake command cmd with the error err. */
static void refused(struct conn *c, const char *cmd, const char *err)
{
    char kind[sizeof c->down_said], what[600], advice[300];
    snprintf(kind, sizeof kind, "%s %.*s", cmd, (int)strcspn(err, " "), err);
    snprintf(what, sizeof what, "refused %s: %.*s", cmd, (int)refusal_len(err), err);
    refusal_advice(advice, sizeof advice, err, cmd, c->conf->redis.username);
    attempt_failed(c, LL_ERROR, kind, what, advice);
}

/* The watchdog ticks often enough to keep each timeout to about an eighth. */
static void arm_watch(struct conn *c)
{
    int shortest = c->conf->redis.connect_timeout_ms < c->conf->redis.reply_timeout_ms
                   ? c->conf->redis.connect_timeout_ms : c->conf->redis.reply_timeout_ms;
    uint32_t tick = (uint32_t)shortest / 8;
    tick = tick < 5 ? 5 : tick > 500 ? 500 : tick;
    if (tick != c->tick_ms || !evtimer_pending(c->watch, NULL)) {
        struct timeval tv = { tick / 1000, (long)(tick % 1000) * 1000 };
        c->tick_ms = tick;
        evtimer_add(c->watch, &tv);
    }
}

static void connect_now(struct conn *c)
{
    const struct conf *cf = c->conf;
    redisAsyncContext *ac;

    if (follows(c) && !c->addr_set)
        return;         /* conn_set_addr starts it */
    c->attempt_failed = 0;
    c->drop_why[0] = '\0';
    describe_addr(c);
    if (use_unix(c))
        ac = redisAsyncConnectUnix(cf->redis.unix_path);
    else if (c->addr_set)
        ac = redisAsyncConnect(c->host, c->port);
    else
        ac = redisAsyncConnect(cf->redis.host, cf->redis.port);
    if (ac == NULL) {
        unreachable(c, "out of memory");
        schedule_retry(c);
        return;
    }
    if (ac->err) {
        unreachable(c, ac->errstr);
        redisAsyncFree(ac);
        schedule_retry(c);
        return;
    }
    ac->data = c;
    /* Replies are built in c->arena: no malloc per element of a batch. */
    replyarena_attach(&c->arena, ac->c.reader);
    if (redisLibeventAttach(ac, c->base) != REDIS_OK) {
        unreachable(c, "cannot attach to the event loop");
        redisAsyncFree(ac);
        schedule_retry(c);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    c->phase_ms = clock_mono_ms();
    set_state(c, CONN_CONNECTING);
    arm_watch(c);
}

void conn_start(struct conn *c)
{
    if (c->state == CONN_DOWN && c->ac == NULL)
        connect_now(c);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_start(arg);
}

void conn_retarget(struct conn *c, const char *host, int port)
{
    snprintf(c->host, sizeof c->host, "%s", host);
    c->port = port;
    c->addr_set = 1;
}

int conn_set_addr(struct conn *c, const char *host, int port)
{
    if (c->addr_set && c->port == port && strcmp(c->host, host) == 0)
        return 0;
    conn_retarget(c, host, port);
    if (c->state == CONN_CLOSED)
        return 1;
    if (c->ac != NULL && c->state != CONN_CONNECTING) {
        /* Dropped, and connected again at once to the new address, without
         * a word: the move is not a failure (the owner says why). */
        c->moving = 1;
        conn_reset(c, "moved");
    } else if (c->ac != NULL) {
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        redisAsyncFree(ac);         /* never connected: no callback */
        set_state(c, CONN_DOWN);
        connect_now(c);
    } else {
        /* Down (or waiting for its first address): try the new one now. */
        evtimer_del(c->retry);
        set_state(c, CONN_DOWN);
        connect_now(c);
    }
    return 1;
}

/*
 * The watchdog. CONNECTING, or CONNECTING and HANDSHAKE together, longer
 * than connect_timeout_ms, or UP with the oldest command due unanswered (no
 * reply at all) for reply_timeout_ms plus its own blocking wait: the
 * connection is dropped. UP with nothing due for a third of the timeout: a
 * PING, so that a frozen server is found out while nothing is asked of it.
 */
static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    uint64_t now = clock_mono_ms();
    uint32_t reply_ms = (uint32_t)c->conf->redis.reply_timeout_ms;
    char why[120];

    (void)fd;
    (void)what;
    if (c->state == CONN_CONNECTING &&
        now - c->phase_ms >= (uint64_t)c->conf->redis.connect_timeout_ms) {
        /* hiredis calls no callback for a context that never connected. */
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        c->timeouts++;
        snprintf(why, sizeof why, "connect timed out after %d ms",
                 c->conf->redis.connect_timeout_ms);
        unreachable(c, why);
        redisAsyncFree(ac);
        schedule_retry(c);
    } else if (c->state == CONN_HANDSHAKE &&
               now - c->phase_ms >= (uint64_t)c->conf->redis.connect_timeout_ms) {
        /* A connection is made when it is usable: the handshake's quick
         * commands count in the connect timeout. */
        c->timeouts++;
        snprintf(why, sizeof why, "no answer to the handshake in %d ms",
                 c->conf->redis.connect_timeout_ms);
        conn_reset(c, why);
    } else if (c->state == CONN_UP && !c->subscribed) {
        if (c->replies != c->replies_seen) {
            c->replies_seen = c->replies;
            c->phase_ms = now;      /* progress: the oldest due was just sent or answered */
        }
        if (c->pend_n > 0 && now - c->phase_ms >= reply_ms + c->pend[c->pend_head].wait_ms) {
            c->timeouts++;
            snprintf(why, sizeof why, "no reply in %" PRIu64 " ms", now - c->phase_ms);
            conn_reset(c, why);
        } else if (c->pend_n == 0 && now - c->phase_ms >= reply_ms / 3) {
            const char *ping[] = { "PING" };
            if (conn_command(c, NULL, NULL, 1, ping, NULL) != 0)
                conn_reset(c, "cannot send a PING");
        }
    }
    if (c->state == CONN_DOWN || c->state == CONN_CLOSED)
        evtimer_del(c->watch);
    else
        arm_watch(c);       /* redis.*_timeout_ms may have been reloaded */
}

static int send_handshake(struct conn *c, int cmd, int argc, const char **argv)
{
    if (redisAsyncCommandArgv(c->ac, on_handshake, (void *)(uintptr_t)cmd, argc, argv,
                              NULL) != REDIS_OK)
        return -1;
    c->handshake_left++;
    return 0;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct conn *c = ac->data;
    const struct conf *cf = c->conf;

    if (status != REDIS_OK) {
        /* hiredis frees ac after this callback. */
        c->ac = NULL;
        unreachable(c, ac->errstr[0] ? ac->errstr : "connect failed");
        schedule_retry(c);
        return;
    }
    redisEnableKeepAlive(&c->ac->c);
    set_state(c, CONN_HANDSHAKE);   /* phase_ms still counts from the connect */
    c->handshake_left = 0;
    c->handshake_failed = 0;

    int redis = c->kind == CONN_KIND_REDIS, sentinel = c->kind == CONN_KIND_SENTINEL;
    const char *user = sentinel ? cf->redis.sentinel_username : cf->redis.username;
    const char *password = sentinel ? cf->redis.sentinel_password : cf->redis.password;
    char dbtext[16], name[64];
    int rc = 0;
    if (password != NULL) {
        if (user[0] != '\0') {
            const char *argv[] = { "AUTH", user, password };
            rc |= send_handshake(c, HS_AUTH, 3, argv);
        } else {
            const char *argv[] = { "AUTH", password };
            rc |= send_handshake(c, HS_AUTH, 2, argv);
        }
    }
    if (redis && cf->redis.db != 0) {
        snprintf(dbtext, sizeof dbtext, "%d", cf->redis.db);
        const char *argv[] = { "SELECT", dbtext };
        rc |= send_handshake(c, HS_SELECT, 2, argv);
    }
    snprintf(name, sizeof name, "slotd-%s", c->name);
    const char *argv[] = { "CLIENT", "SETNAME", name };
    rc |= send_handshake(c, HS_SETNAME, 3, argv);
    if (redis) {
        /* A replica (a demoted master, a wrong address) is found out here,
         * before anything is written to it. */
        const char *role[] = { "ROLE" };
        rc |= send_handshake(c, HS_ROLE, 1, role);
    }
    if (rc != 0)
        conn_reset(c, "cannot send the handshake");
}

static void on_handshake(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct conn *c = conn_of(ac);
    redisReply *r = reply;
    uint64_t lasted_ms;

    if (r == NULL || c->handshake_failed)
        return;     /* lost (on_disconnect says so), or behind a refusal */
    if (r->type == REDIS_REPLY_ERROR) {
        /* Only the first refusal is news: the commands pipelined behind a
         * refused AUTH are refused NOAUTH because of it. Dropped at once
         * (hiredis frees the context after this callback), so their
         * replies come as NULL. */
        refused(c, handshake_names[(uintptr_t)privdata], r->str);
        c->handshake_failed = 1;
        redisAsyncFree(ac);
        return;
    }
    if ((uintptr_t)privdata == HS_ROLE &&
        (r->type != REDIS_REPLY_ARRAY || r->elements == 0 ||
         r->element[0]->type != REDIS_REPLY_STRING ||
         !sentinel_is_master_role(r->element[0]->str, r->element[0]->len))) {
        char what[200];
        const char *role = r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                           r->element[0]->type == REDIS_REPLY_STRING ? r->element[0]->str : "?";
        snprintf(what, sizeof what, "is not a master (ROLE says %.40s)", role);
        attempt_failed(c, LL_WARN, "not master", what,
                       follows(c) ? "asking the sentinels for the master again"
                                  : "point redis.host/redis.port at the master, or use "
                                    "redis.sentinels");
        c->handshake_failed = 1;
        redisAsyncFree(ac);
        if (c->on_wrong)
            c->on_wrong(c, c->arg);
        return;
    }
    /* ROLE on a master: ["master", offset, [[ip, port, offset], ...]]. */
    if ((uintptr_t)privdata == HS_ROLE)
        c->replicas = r->elements >= 3 && r->element[2]->type == REDIS_REPLY_ARRAY
                          ? (int)r->element[2]->elements : 0;
    if (--c->handshake_left > 0)
        return;
    if (c->ups > 0)
        c->reconnects++;
    c->ups++;
    if (episode_end(&c->down, clock_mono_ms(), &lasted_ms, NULL))
        log_info("redis %s (%s) connected after %.1f s, %" PRIu64 " failed attempt%s", c->addr,
                 c->name, (double)lasted_ms / 1000.0, c->failed, c->failed == 1 ? "" : "s");
    else if (c->ups == 1)
        log_info("redis %s (%s) connected", c->addr, c->name);
    c->failed = 0;
    c->down_said[0] = '\0';
    backoff_reset(&c->backoff);
    c->replies_seen = c->replies;
    c->phase_ms = clock_mono_ms();
    c->subscribed = 0;
    set_state(c, CONN_UP);
    if (c->on_up)
        c->on_up(c, c->arg);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct conn *c = ac->data;
    int was_up = c->state == CONN_UP;

    c->ac = NULL;
    if (c->state == CONN_CLOSED)
        return;
    if (c->moving) {
        log_debug("redis %s (%s): moving to %s:%d", c->addr, c->name, c->host, c->port);
        c->pend_head = c->pend_n = 0;
        evtimer_del(c->retry);
        set_state(c, CONN_DOWN);
        connect_now(c);
        if (was_up && c->on_down)
            c->on_down(c, c->arg);
        c->moving = 0;
        return;
    }
    if (was_up) {
        char what[300];
        if (c->drop_why[0] != '\0')
            snprintf(what, sizeof what, "connection dropped: %s", c->drop_why);
        else
            snprintf(what, sizeof what, "connection lost: %s",
                     status == REDIS_OK ? "closed" : (ac->errstr[0] ? ac->errstr : "error"));
        say_down(c, LL_WARN, "lost", what, "");
    } else {
        unreachable(c, c->drop_why[0] != '\0' ? c->drop_why
                       : ac->errstr[0] ? ac->errstr : "connection closed during handshake");
    }
    /* hiredis answered every command due with NULL before this. */
    c->pend_head = c->pend_n = 0;
    schedule_retry(c);
    if (was_up && c->on_down)
        c->on_down(c, c->arg);
}

/* A Redis Cluster's error reply, counted: MOVED drops the connection and
 * tells the owner where to go; CLUSTERDOWN has it look again; ASK and
 * TRYAGAIN (the slot is migrating) are the command's owner's to retry. */
static void cluster_reply(struct conn *c, const redisReply *r)
{
    struct cluster_redirect d;
    enum cluster_reply kind = cluster_parse_error(r->str, r->len, c->host, &d);
    if (kind == CLUSTER_OTHER)
        return;
    c->cluster[kind]++;
    if (kind == CLUSTER_MOVED) {
        char why[200];
        snprintf(why, sizeof why, "the slot moved: %.*s", (int)refusal_len(r->str), r->str);
        conn_reset(c, why);
    }
    if ((kind == CLUSTER_MOVED || kind == CLUSTER_DOWN) && c->on_wrong) {
        c->moved = d;
        c->on_wrong(c, c->arg);
        c->moved.kind = CLUSTER_OTHER;
    }
}

/*
 * Every reply comes here first, in the order the commands were sent: the
 * oldest command due is answered. Its callback gets the reply, then an error
 * that says the server is not the master has its consequences.
 */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct conn *c = ac->data;
    redisReply *r = reply;

    (void)privdata;
    struct conn_pending p = pend_pop(c);
    c->replies++;
    if (p.fn != NULL)
        p.fn(ac, reply, p.privdata);
    if (r == NULL || r->type != REDIS_REPLY_ERROR)
        return;
    enum sentinel_server says = sentinel_wrong_server(r->str, r->len);
    if (says == SENTINEL_NOT_MASTER) {
        char why[200];
        snprintf(why, sizeof why, "the server is not the master: %.*s",
                 (int)refusal_len(r->str), r->str);
        conn_reset(c, why);
    }
    if (says != SENTINEL_RIGHT && c->on_wrong)
        c->on_wrong(c, c->arg);
    if (c->conf->redis.cluster_seeds[0] != '\0' && c->kind == CONN_KIND_REDIS)
        cluster_reply(c, r);
}

int conn_command_blocking(struct conn *c, uint32_t wait_ms, conn_reply_fn *fn, void *privdata,
                          int argc, const char **argv, const size_t *argvlen)
{
    if (c->state != CONN_UP || c->ac == NULL || c->subscribed)
        return -1;
    /* Encoded here into one reused buffer (hiredis would build an sds with
     * a printf per argument), then handed over: hiredis copies it out. */
    c->out.len = 0;
    if (resp_append_command(&c->out, argc, argv, argvlen) != 0 ||
        pend_push(c, fn, privdata, wait_ms) != 0)
        return -1;
    int rc = redisAsyncFormattedCommand(c->ac, on_reply, NULL, c->out.p, c->out.len);
    if (rc != REDIS_OK)
        pend_unpush(c);
    if (c->out.cap > CONN_OUT_KEEP)
        resp_buf_free(&c->out);         /* one huge command: do not keep its size */
    return rc == REDIS_OK ? 0 : -1;
}

int conn_command(struct conn *c, conn_reply_fn *fn, void *privdata,
                 int argc, const char **argv, const size_t *argvlen)
{
    return conn_command_blocking(c, 0, fn, privdata, argc, argv, argvlen);
}

int conn_subscribe(struct conn *c, conn_reply_fn *fn, void *privdata,
                   int argc, const char **argv)
{
    if (c->state != CONN_UP || c->ac == NULL || c->pend_n != 0)
        return -1;
    if (redisAsyncCommandArgv(c->ac, fn, privdata, argc, argv, NULL) != REDIS_OK)
        return -1;
    c->subscribed = 1;
    return 0;
}

void conn_close(struct conn *c)
{
    evtimer_del(c->retry);
    evtimer_del(c->watch);
    set_state(c, CONN_CLOSED);
    if (c->ac != NULL)
        redisAsyncDisconnect(c->ac);
}

void conn_reset(struct conn *c, const char *why)
{
    if (c->ac == NULL)
        return;
    if (c->state == CONN_CONNECTING) {
        /* Not connected: hiredis would call no callback, so done here. */
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        unreachable(c, why);
        redisAsyncFree(ac);
        schedule_retry(c);
        return;
    }
    /* Said by the disconnect callback, as part of the episode. */
    if (c->drop_why[0] == '\0')
        snprintf(c->drop_why, sizeof c->drop_why, "%s", why);
    /* Deferred by hiredis when called from inside one of its callbacks; the
     * disconnect callback then schedules the reconnect. */
    redisAsyncFree(c->ac);
}

void conn_free(struct conn *c)
{
    if (c == NULL)
        return;
    if (c->ac != NULL) {
        c->state = CONN_CLOSED;
        redisAsyncFree(c->ac);
        c->ac = NULL;
    }
    if (c->retry != NULL)
        event_free(c->retry);
    c->retry = NULL;
    if (c->watch != NULL)
        event_free(c->watch);
    c->watch = NULL;
    free(c->pend);
    c->pend = NULL;
    /* After the context: freeing its reader may free a reply in the arena. */
    replyarena_free(&c->arena);
    resp_buf_free(&c->out);
}
