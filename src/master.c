/*
 * master: finding and following the Redis master (see master.h). The
 * decisions about replies are sentinel.c's; this is the talking.
 */
#include "master.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "backoff.h"
#include "clock.h"
#include "ctx.h"
#include "keys.h"
#include "log.h"
#include "refusal.h"

/* While following, the sentinel is asked again this often: a switch whose
 * message was missed is seen within it. */
#define MASTER_POLL_MS 1000
/* After a MOVED, a map that names another master is taken as older than it
 * for this long (gossip takes about that to reach every node). */
#define MASTER_MOVED_TRUST_MS 2000

static const char *const reason_names[] = {
#define MASTER_NAME(e, name) name,
    MASTER_REASONS(MASTER_NAME)
#undef MASTER_NAME
};

const char *master_reason_name(enum master_reason r) { return reason_names[r]; }

static void ask(struct master *m, enum master_reason why);
static void on_ask_up(struct conn *c, void *arg);
static void on_ask_down(struct conn *c, void *arg);
static void on_ask_fail(struct conn *c, void *arg);
static void on_sub_up(struct conn *c, void *arg);
static void on_sub_down(struct conn *c, void *arg);
static void on_poll(evutil_socket_t fd, short what, void *arg);
static void on_again(evutil_socket_t fd, short what, void *arg);
static void on_slots(redisAsyncContext *ac, void *reply, void *privdata);

static int following(const struct master *m)
{
    return m->list.n > 0;
}

static void format_addr(const struct sentinel_addr *a, char *buf, size_t cap)
{
    snprintf(buf, cap, strchr(a->host, ':') ? "[%s]:%d" : "%s:%d", a->host, a->port);
}

void master_addr(const struct master *m, char *buf, size_t cap)
{
    if (m->known)
        format_addr(&m->addr, buf, cap);
    else if (cap > 0)
        buf[0] = '\0';
}

int master_init(struct master *m, struct slotd *sd)
{
    char why[200];
    memset(m, 0, sizeof *m);
    m->sd = sd;
    m->cluster = sd->conf.redis.cluster_seeds[0] != '\0';
    m->slot = keys_slot(&sd->keys);
    if (sentinel_parse_list(&m->list, m->cluster ? sd->conf.redis.cluster_seeds
                                                 : sd->conf.redis.sentinels, why, sizeof why) != 0)
        return -1;
    if (!following(m)) {
        const struct conf *cf = &sd->conf;
        if (cf->redis.unix_path[0] != '\0')
            snprintf(m->via, sizeof m->via, "config (unix:%s)", cf->redis.unix_path);
        else
            snprintf(m->via, sizeof m->via, "config");
        snprintf(m->addr.host, sizeof m->addr.host, "%s", cf->redis.host);
        m->addr.port = cf->redis.port;
        m->known = 1;
        return 0;
    }
    if (conn_init(&m->ask, m->cluster ? "cluster" : "sentinel", sd->base, &sd->conf, on_ask_up,
                  on_ask_down, m) != 0 ||
        conn_init(&m->sub, "sentinel-sub", sd->base, &sd->conf, on_sub_up, on_sub_down, m) != 0)
        return -1;
    /* With a cluster, sub is never given an address: no subscription. */
    conn_set_kind(&m->ask, m->cluster ? CONN_KIND_NODE : CONN_KIND_SENTINEL);
    conn_set_kind(&m->sub, CONN_KIND_SENTINEL);
    m->ask.on_fail = on_ask_fail;
    m->poll = event_new(sd->base, -1, EV_PERSIST, on_poll, m);
    m->again = evtimer_new(sd->base, on_again, m);
    return m->poll == NULL || m->again == NULL ? -1 : 0;
}

void master_start(struct master *m)
{
    if (!following(m))
        return;
    struct timeval tv = { MASTER_POLL_MS / 1000, (MASTER_POLL_MS % 1000) * 1000 };
    evtimer_add(m->poll, &tv);
    m->asked_ms = clock_mono_ms();
    m->why = MASTER_LOST;
    conn_set_addr(&m->ask, m->list.at[0].host, m->list.at[0].port);
}

static const struct sentinel_addr *asked(const struct master *m)
{
    return &m->list.at[m->at];
}

/*
 * The sentinel asked gave no usable answer (unreachable, refused, does not
 * know the master, names a server that is not one): the next one is asked.
 * After a whole round without an answer, that is said (once per episode)
 * and the round starts again after the connection's backoff.
 */
static void next_sentinel(struct master *m, const char *why)
{
    char at[300];
    format_addr(asked(m), at, sizeof at);
    log_debug("%s %s: %s; asking the next one", m->cluster ? "cluster node" : "sentinel", at,
              why);
    m->at = (m->at + 1) % m->list.n;
    if (++m->tried >= m->list.n) {
        uint64_t repeats = 0;
        switch (episode_hit(&m->none, clock_mono_ms(), 0, &repeats)) {
        case EPISODE_FIRST:
            if (m->cluster)
                log_error("no node of %d in redis.cluster_seeds names the master of slot %u "
                          "(the last: %s: %s); routing waits; asking again with backoff",
                          m->list.n, m->slot, at, why);
            else
                log_error("no sentinel of %d names master '%s' (the last: %s: %s); routing "
                          "waits; asking again with backoff", m->list.n,
                          m->sd->conf.redis.sentinel_master, at, why);
            break;
        case EPISODE_AGAIN:
            if (m->cluster)
                log_error("still no node names the master of slot %u (%" PRIu64 " rounds; the "
                          "last: %s: %s)", m->slot, repeats, at, why);
            else
                log_error("still no sentinel names master '%s' (%" PRIu64 " rounds; the last: "
                          "%s: %s)", m->sd->conf.redis.sentinel_master, repeats, at, why);
            break;
        case EPISODE_QUIET:
            break;
        }
        m->tried = 0;
    }
}

/* A sentinel that answered gave no usable answer: the next one is asked
 * now, or after a backoff when a whole round went by without one. */
static void move_on(struct master *m, const char *why)
{
    next_sentinel(m, why);
    if (m->tried == 0) {
        backoff_init(&m->round, (uint32_t)m->sd->conf.redis.reconnect_min_ms,
                     (uint32_t)m->sd->conf.redis.reconnect_max_ms);
        uint32_t ms = backoff_next(&m->round, (uint32_t)clock_mono_ms() * 2654435761u);
        struct timeval tv = { ms / 1000, (long)(ms % 1000) * 1000 };
        evtimer_add(m->again, &tv);
    } else {
        conn_set_addr(&m->ask, asked(m)->host, asked(m)->port);
    }
}

static void on_again(evutil_socket_t fd, short what, void *arg)
{
    struct master *m = arg;
    (void)fd;
    (void)what;
    if (!conn_set_addr(&m->ask, asked(m)->host, asked(m)->port))
        ask(m, m->why);     /* one sentinel: the same is asked again */
}

/* The master is at a (told by the sentinel asked, for reason why). */
static void found(struct master *m, const struct sentinel_addr *a, enum master_reason why)
{
    char from[300], to[300], via[300];
    uint64_t now = clock_mono_ms();

    format_addr(asked(m), via, sizeof via);
    format_addr(a, to, sizeof to);
    if (m->asked_ms != 0) {
        m->discovery_ms = now - m->asked_ms;
        m->discoveries++;
        m->asked_ms = 0;
    }
    if (m->known && sentinel_addr_same(&m->addr, a))
        return;
    const char *kind = m->cluster ? "cluster node" : "sentinel";
    char what[300];
    if (m->cluster)
        snprintf(what, sizeof what, "slot %u (%s)", m->slot, m->sd->keys.tag);
    else
        snprintf(what, sizeof what, "'%s'", m->sd->conf.redis.sentinel_master);
    if (!m->known) {
        log_info("redis master %s is %s (found via %s %s in %" PRIu64 " ms)", what, to, kind,
                 via, m->discovery_ms);
    } else {
        format_addr(&m->addr, from, sizeof from);
        m->changes[why]++;
        if (why == MASTER_MOVED)
            log_warn("redis master %s moved: %s -> %s (a MOVED reply); routing resumes once "
                     "connected", what, from, to);
        else
            log_warn("redis master %s moved: %s -> %s (%s, via %s %s); routing resumes once "
                     "connected", what, from, to,
                     why == MASTER_SWITCH ? "+switch-master" : reason_names[why], kind, via);
    }
    m->addr = *a;
    m->known = 1;
    m->wrong_same = 0;
    if (why == MASTER_MOVED)
        snprintf(m->via, sizeof m->via, "cluster MOVED");
    else
        snprintf(m->via, sizeof m->via, "%s %s", m->cluster ? "cluster" : "sentinel", via);
    conn_set_addr(&m->sd->main, a->host, a->port);
    conn_set_addr(&m->sd->wait, a->host, a->port);
}

/* The sentinel (or node) asked named a, the master: unless it names again
 * a server that said it is not the master, slotd goes there. */
static void answered(struct master *m, const struct sentinel_addr *a, enum master_reason why)
{
    /* One that names, again, the server that said it is not the master (or,
     * on a cluster, the master slotd cannot reach) may be behind the
     * others: the next one is asked. */
    int unreachable = m->cluster && why == MASTER_LOST && m->sd->main.state != CONN_UP;
    if ((why == MASTER_WRONG || unreachable) && m->known &&
        sentinel_addr_same(&m->addr, a) && ++m->wrong_same >= 2) {
        m->wrong_same = 0;
        move_on(m, unreachable ? "names a master that cannot be reached"
                               : "names a server that says it is not the master");
        return;
    }
    /* A map that disagrees with a MOVED followed a moment ago was made
     * before it (a question already out, a node not caught up yet). */
    if (m->cluster && clock_mono_ms() < m->moved_until &&
        !sentinel_addr_same(&m->moved_to, a)) {
        log_debug("cluster node %s: a map older than the last MOVED; not followed",
                  asked(m)->host);
        return;
    }
    uint64_t lasted;
    if (episode_end(&m->none, clock_mono_ms(), &lasted, NULL))
        log_info("%s answer again after %.1f s", m->cluster ? "cluster nodes" : "sentinels",
                 (double)lasted / 1000.0);
    m->tried = 0;
    backoff_reset(&m->round);
    sentinel_answered(&m->list, m->at);
    m->at = 0;
    /* The subscription follows the sentinel that answers. */
    if (!m->cluster)
        conn_set_addr(&m->sub, asked(m)->host, asked(m)->port);
    found(m, a, why);
}

static void on_answer(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct master *m = conn_of(ac)->arg;
    redisReply *r = reply;
    enum master_reason why = m->why;
    struct sentinel_addr a;
    char what[300];
    int rc = -1;

    (void)privdata;
    if (r == NULL)
        return;     /* lost: on_ask_down moves on */
    m->asking = 0;
    if (r->type == REDIS_REPLY_NIL) {
        rc = 0;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
               r->element[0]->type == REDIS_REPLY_STRING &&
               r->element[1]->type == REDIS_REPLY_STRING) {
        const char *elem[2] = { r->element[0]->str, r->element[1]->str };
        size_t len[2] = { r->element[0]->len, r->element[1]->len };
        rc = sentinel_parse_master(elem, len, 2, &a);
    }
    if (rc != 1) {
        if (r->type == REDIS_REPLY_ERROR)
            snprintf(what, sizeof what, "refused: %.*s", (int)refusal_len(r->str), r->str);
        else if (rc == 0)
            snprintf(what, sizeof what, "does not know master '%s'",
                     m->sd->conf.redis.sentinel_master);
        else
            snprintf(what, sizeof what, "answered something that is not an address");
        move_on(m, what);
        return;
    }
    answered(m, &a, why);
}

/* The node asked named the master (a) of our slot: the same checks as a
 * sentinel's answer. */
static void on_slots(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct master *m = conn_of(ac)->arg;
    redisReply *r = reply;
    struct cluster_map map;
    char what[300];

    (void)privdata;
    if (r == NULL)
        return;     /* lost: on_ask_down moves on */
    m->asking = 0;
    if (cluster_map_parse(&map, r, asked(m)->host, what, sizeof what) != 0) {
        move_on(m, what);
        return;
    }
    cluster_map_free(&m->map);
    m->map = map;
    const struct sentinel_addr *a = cluster_map_master(&m->map, m->slot);
    if (a == NULL) {
        snprintf(what, sizeof what, "no master serves slot %u", m->slot);
        move_on(m, what);
        return;
    }
    answered(m, a, m->why);
}

static void ask(struct master *m, enum master_reason why)
{
    if (m->asking)
        return;
    if (m->asked_ms == 0 && why != MASTER_POLL)
        m->asked_ms = clock_mono_ms();
    m->why = why;
    if (m->ask.state != CONN_UP)
        return;     /* on_ask_up asks */
    const char *argv[] = { "SENTINEL", "get-master-addr-by-name",
                           m->sd->conf.redis.sentinel_master };
    const char *slots[] = { "CLUSTER", "SLOTS" };
    if (m->cluster ? conn_command(&m->ask, on_slots, NULL, 2, slots, NULL) == 0
                   : conn_command(&m->ask, on_answer, NULL, 3, argv, NULL) == 0)
        m->asking = 1;
}

void master_wrong(struct master *m, const struct conn *c)
{
    if (!following(m))
        return;
    /* MOVED names where our slot is now: go there at once (its ROLE is
     * checked on connect), and ask the nodes too for the whole map. */
    if (m->cluster && c != NULL && c->moved.kind == CLUSTER_MOVED && c->moved.to.port != 0 &&
        c->moved.slot == (int)m->slot) {
        found(m, &c->moved.to, MASTER_MOVED);
        m->moved_to = c->moved.to;
        m->moved_until = clock_mono_ms() + MASTER_MOVED_TRUST_MS;
        ask(m, MASTER_MOVED);
        return;
    }
    ask(m, MASTER_WRONG);
}

void master_unreachable(struct master *m)
{
    if (m->cluster)
        ask(m, MASTER_LOST);
}

void master_refresh(struct master *m)
{
    if (m->cluster)
        ask(m, MASTER_POLL);
}

const struct sentinel_addr *master_of_slot(const struct master *m, unsigned slot)
{
    return m->cluster ? cluster_map_master(&m->map, slot) : NULL;
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    struct master *m = arg;
    (void)fd;
    (void)what;
    if (!evtimer_pending(m->again, NULL))
        ask(m, MASTER_POLL);
}

static void on_ask_up(struct conn *c, void *arg)
{
    struct master *m = arg;
    (void)c;
    m->asking = 0;
    ask(m, m->asked_ms != 0 ? m->why : MASTER_POLL);
}

/* The sentinel asked was lost while connected: the next one is asked (and
 * the discovery timed from now), unless we dropped it ourselves. */
static void on_ask_down(struct conn *c, void *arg)
{
    struct master *m = arg;
    m->asking = 0;
    if (c->moving)
        return;     /* moved on by us */
    if (m->asked_ms == 0)
        m->asked_ms = clock_mono_ms();
    m->why = MASTER_LOST;
    next_sentinel(m, "connection lost");
    conn_retarget(&m->ask, asked(m)->host, asked(m)->port);
}

/* A connect or handshake failed: the retry (after the connection's
 * backoff) goes to the next sentinel. */
static void on_ask_fail(struct conn *c, void *arg)
{
    struct master *m = arg;
    (void)c;
    if (m->asked_ms == 0)
        m->asked_ms = clock_mono_ms();
    next_sentinel(m, c->down_said[0] ? c->down_said : "unreachable");
    conn_retarget(&m->ask, asked(m)->host, asked(m)->port);
}

static void on_message(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct master *m = conn_of(ac)->arg;
    redisReply *r = reply;
    struct sentinel_addr a;

    (void)privdata;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "message") != 0 ||
        r->element[2]->type != REDIS_REPLY_STRING)
        return;     /* the subscription's confirmation, or lost (on_sub_down) */
    int rc = sentinel_parse_switch(r->element[2]->str, r->element[2]->len,
                                   m->sd->conf.redis.sentinel_master, &a);
    if (rc < 0)
        log_warn("sentinel %s: a +switch-master message that does not parse: %.200s",
                 m->sub.addr, r->element[2]->str);
    if (rc == 1)
        found(m, &a, MASTER_SWITCH);
}

static void on_sub_up(struct conn *c, void *arg)
{
    struct master *m = arg;
    const char *argv[] = { "SUBSCRIBE", "+switch-master" };
    if (conn_subscribe(c, on_message, NULL, 2, argv) != 0)
        conn_reset(c, "cannot subscribe to +switch-master");
    /* A switch may have happened while it was not subscribed. */
    ask(m, MASTER_LOST);
}

/* The subscription dropped: a switch could be missed, so ask now. */
static void on_sub_down(struct conn *c, void *arg)
{
    if (!c->moving)
        ask(arg, MASTER_LOST);
}

void master_main_up(struct master *m)
{
    m->wrong_same = 0;
}

void master_close(struct master *m)
{
    if (!following(m))
        return;
    evtimer_del(m->poll);
    evtimer_del(m->again);
    conn_close(&m->ask);
    conn_close(&m->sub);
}

void master_free(struct master *m)
{
    if (m->poll == NULL && !following(m))
        return;
    if (m->poll != NULL)
        event_free(m->poll);
    if (m->again != NULL)
        event_free(m->again);
    m->poll = m->again = NULL;
    conn_free(&m->ask);
    conn_free(&m->sub);
    cluster_map_free(&m->map);
}
