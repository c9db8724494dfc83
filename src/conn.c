/*
 * conn: a Redis connection that reconnects by itself. Ownership: hiredis owns
 * the redisAsyncContext and frees it after the disconnect (or failed
 * connect) callback, so those callbacks clear c->ac and nothing else keeps it.
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

/* The encoding buffer is kept between commands up to this size. */
#define CONN_OUT_KEEP (1u << 20)

static void on_connect(const redisAsyncContext *ac, int status);
static void on_disconnect(const redisAsyncContext *ac, int status);
static void on_retry(evutil_socket_t fd, short what, void *arg);
static void on_handshake(redisAsyncContext *ac, void *reply, void *privdata);

/* The handshake's commands; each reply's privdata is its index here. */
enum { HS_AUTH, HS_SELECT, HS_SETNAME };
static const char *const handshake_names[] = { "AUTH", "SELECT", "CLIENT SETNAME" };

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
    if (c->retry == NULL)
        return -1;
    return 0;
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

static void describe_addr(struct conn *c)
{
    const struct conf *cf = c->conf;
    if (cf->redis.unix_path[0] != '\0')
        snprintf(c->addr, sizeof c->addr, "unix:%s", cf->redis.unix_path);
    else
        snprintf(c->addr, sizeof c->addr, "%s:%d", cf->redis.host, cf->redis.port);
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

static void connect_now(struct conn *c)
{
    const struct conf *cf = c->conf;
    redisAsyncContext *ac;

    c->attempt_failed = 0;
    describe_addr(c);
    if (cf->redis.unix_path[0] != '\0')
        ac = redisAsyncConnectUnix(cf->redis.unix_path);
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
    set_state(c, CONN_CONNECTING);
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
    set_state(c, CONN_HANDSHAKE);
    c->handshake_left = 0;
    c->handshake_failed = 0;

    char dbtext[16], name[64];
    int rc = 0;
    if (cf->redis.password != NULL) {
        if (cf->redis.username[0] != '\0') {
            const char *argv[] = { "AUTH", cf->redis.username, cf->redis.password };
            rc |= send_handshake(c, HS_AUTH, 3, argv);
        } else {
            const char *argv[] = { "AUTH", cf->redis.password };
            rc |= send_handshake(c, HS_AUTH, 2, argv);
        }
    }
    if (cf->redis.db != 0) {
        snprintf(dbtext, sizeof dbtext, "%d", cf->redis.db);
        const char *argv[] = { "SELECT", dbtext };
        rc |= send_handshake(c, HS_SELECT, 2, argv);
    }
    snprintf(name, sizeof name, "slotd-%s", c->name);
    const char *argv[] = { "CLIENT", "SETNAME", name };
    rc |= send_handshake(c, HS_SETNAME, 3, argv);
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
    if (was_up) {
        char what[300];
        snprintf(what, sizeof what, "connection lost: %s",
                 status == REDIS_OK ? "closed" : (ac->errstr[0] ? ac->errstr : "error"));
        say_down(c, LL_WARN, "lost", what, "");
    } else {
        unreachable(c, ac->errstr[0] ? ac->errstr : "connection closed during handshake");
    }
    schedule_retry(c);
    if (was_up && c->on_down)
        c->on_down(c, c->arg);
}

int conn_command(struct conn *c, conn_reply_fn *fn, void *privdata,
                 int argc, const char **argv, const size_t *argvlen)
{
    if (c->state != CONN_UP || c->ac == NULL)
        return -1;
    /* Encoded here into one reused buffer (hiredis would build an sds with
     * a printf per argument), then handed over: hiredis copies it out. */
    c->out.len = 0;
    if (resp_append_command(&c->out, argc, argv, argvlen) != 0)
        return -1;
    int rc = redisAsyncFormattedCommand(c->ac, fn, privdata, c->out.p, c->out.len);
    if (c->out.cap > CONN_OUT_KEEP)
        resp_buf_free(&c->out);         /* one huge command: do not keep its size */
    return rc == REDIS_OK ? 0 : -1;
}

void conn_close(struct conn *c)
{
    evtimer_del(c->retry);
    set_state(c, CONN_CLOSED);
    if (c->ac != NULL)
        redisAsyncDisconnect(c->ac);
}

void conn_reset(struct conn *c, const char *why)
{
    if (c->ac == NULL)
        return;
    log_warn("redis %s (%s): dropping the connection: %s", c->addr, c->name, why);
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
    /* After the context: freeing its reader may free a reply in the arena. */
    replyarena_free(&c->arena);
    resp_buf_free(&c->out);
}
