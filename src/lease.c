/*
 * lease: the active/standby state machine of lease.h over the main
 * connection. Its commands are small scripts (scripts.h); one is in flight
 * at a time. The role changes are told to slotd.c (sd->events.role), which
 * starts or stops routing: calls go down, events go up.
 */
#include "lease.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "clock.h"
#include "ctx.h"
#include "log.h"
#include "scripts.h"

static const char *const role_names[] = {
#define LEASE_NAME(e, name) name,
    LEASE_ROLES(LEASE_NAME)
#undef LEASE_NAME
};

struct lease {
    struct slotd   *sd;             /* (ref) */
    enum lease_role role;
    uintptr_t       gen;            /* replies of an older generation are stale */
    int             out;            /* a lease command is in flight */
    struct event   *timer;          /* owned: persistent, every leader.renew_ms */
    char            who[160];       /* "<node> <pid>": what the lease names */
    char            nonce[24];      /* this process's, in every epoch it takes */
    char            token[64];      /* our epoch "<n> <nonce>"; "" when we have none */
    char            last_token[64]; /* the last epoch we held, for the log */
    uint64_t        renewed_at;     /* monotonic ms of the last renewal (or the take) */
    uint64_t        hold_off_until; /* after standing down: take nothing before this */
    char            seen_epoch[64]; /* the epoch as last read */
    char            holder[240];    /* the lease as last read: "<epoch> <node> <pid>" */
    int64_t         ttl_ms;         /* its PTTL as last read */
    uint64_t        changes;
    uint64_t        fenced;
    char            said[300];      /* the lease trouble last said */
    void          (*release_done)(struct slotd *sd);    /* (ref) set while releasing */
};

static void on_tick(evutil_socket_t fd, short what, void *arg);
static void on_acquire(redisAsyncContext *ac, void *reply, void *privdata);
static void on_renew(redisAsyncContext *ac, void *reply, void *privdata);
static void on_release(redisAsyncContext *ac, void *reply, void *privdata);

const char *lease_role_name(enum lease_role r) { return role_names[r]; }
enum lease_role lease_role(const struct lease *l) { return l->role; }
const char *lease_token(const struct lease *l) { return l->token; }

static struct lease *of(const redisAsyncContext *ac)
{
    return ((struct slotd *)conn_of(ac)->arg)->lease;
}

/* The epoch's number: "7 3fa9..." is 7. */
static uint64_t epoch_number(const char *e)
{
    return strtoull(e, NULL, 10);
}

static void arm(struct lease *l)
{
    int ms = l->sd->conf.leader.renew_ms;
    struct timeval tv = { ms / 1000, (long)(ms % 1000) * 1000 };
    evtimer_del(l->timer);
    event_add(l->timer, &tv);
}

struct lease *lease_create(struct slotd *sd)
{
    struct lease *l = calloc(1, sizeof *l);
    char host[128] = "unknown";
    unsigned char r[8];
    if (l == NULL)
        return NULL;
    l->sd = sd;
    l->role = LEASE_DOWN;
    l->ttl_ms = -1;
    l->timer = event_new(sd->base, -1, EV_PERSIST, on_tick, l);
    if (l->timer == NULL) {
        free(l);
        return NULL;
    }
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    snprintf(l->who, sizeof l->who, "%s %ld",
             sd->conf.leader.node[0] ? sd->conf.leader.node : host, (long)getpid());
    /* A nonce of this process's in each epoch it takes: if Redis loses its
     * data and the epoch count starts again, no two slotds hold one epoch. */
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0 || read(fd, r, sizeof r) != (ssize_t)sizeof r) {
        uint64_t x = clock_mono_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
        memcpy(r, &x, sizeof r);
    }
    if (fd >= 0)
        close(fd);
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(l->nonce + 2 * i, 3, "%02x", r[i]);
    return l;
}

void lease_destroy(struct lease *l)
{
    if (l == NULL)
        return;
    if (l->timer)
        event_free(l->timer);
    free(l);
}

void lease_reconfigure(struct lease *l)
{
    if (l->role != LEASE_DOWN)
        arm(l);
}

/* The one place the role changes: logs it, counts it, tells slotd.c. */
static void set_role(struct lease *l, enum lease_role to, const char *why)
{
    if (l->role == to)
        return;
    enum lease_role from = l->role;
    l->role = to;
    if ((from == LEASE_ACTIVE) != (to == LEASE_ACTIVE))
        l->changes++;
    if (to == LEASE_ACTIVE)
        log_info("active: %s, epoch %" PRIu64 "; routing", why, epoch_number(l->token));
    else if (to == LEASE_STANDBY)
        log_info("standing by: %s", why);
    else
        log_debug("lease: %s -> %s: %s", role_names[from], role_names[to], why);
    l->sd->events.role(l->sd, to);
}

static void send_script(struct lease *l, redisCallbackFn *fn, const char *script, int nkeys,
                 int argc, const char **argv)
{
    const char *all[12];
    char nk[8];
    snprintf(nk, sizeof nk, "%d", nkeys);
    all[0] = "EVAL";
    all[1] = script;
    all[2] = nk;
    for (int i = 0; i < argc && i < 9; i++)
        all[3 + i] = argv[i];
    if (conn_command(&l->sd->main, fn, (void *)l->gen, 3 + argc, all, NULL) == 0)
        l->out = 1;
}

static void send_acquire(struct lease *l)
{
    char ms[16];
    snprintf(ms, sizeof ms, "%d", l->sd->conf.leader.lease_ms);
    const char *argv[] = { l->sd->keys.leader, l->sd->keys.leader_epoch,
                           l->sd->keys.leader_moves, l->sd->keys.tail, l->who, ms, l->nonce };
    send_script(l, on_acquire, scripts_acquire, 4, 7, argv);
}

static void send_renew(struct lease *l)
{
    char ms[16];
    snprintf(ms, sizeof ms, "%d", l->sd->conf.leader.lease_ms);
    const char *argv[] = { l->sd->keys.leader, l->sd->keys.leader_epoch, l->token, l->who, ms };
    send_script(l, on_renew, scripts_renew, 2, 5, argv);
}

void lease_on_main_up(struct lease *l)
{
    l->gen++;
    l->out = 0;
    arm(l);
    /* An epoch of ours survives a reconnection if nobody took the lease
     * meanwhile: try to keep it first. */
    if (l->token[0] != '\0') {
        set_role(l, LEASE_STANDBY, "Redis is back: renewing the lease this slotd held");
        send_renew(l);
    } else {
        set_role(l, LEASE_STANDBY, "waiting for the lease");
        send_acquire(l);
    }
}

void lease_on_main_down(struct lease *l)
{
    l->gen++;
    l->out = 0;
    evtimer_del(l->timer);
    set_role(l, LEASE_DOWN, "Redis unreachable");
    if (l->release_done) {
        void (*done)(struct slotd *) = l->release_done;
        l->release_done = NULL;
        done(l->sd);
    }
}

/* Stands by, and lets a standby take the lease first. */
static void stand_down(struct lease *l, const char *why)
{
    if (l->token[0] != '\0')
        snprintf(l->last_token, sizeof l->last_token, "%s", l->token);
    l->token[0] = '\0';
    l->hold_off_until = clock_mono_ms() + (uint64_t)l->sd->conf.leader.lease_ms;
    set_role(l, LEASE_STANDBY, why);
}

void lease_fenced(struct lease *l, const char *now, const char *what)
{
    /* Said even when this slotd stood down already (its lease lapsed
     * while it was stopped): a write of its was refused. */
    l->fenced++;
    log_warn("fenced: epoch %" PRIu64 " -> %" PRIu64 ", %s; standing by",
             epoch_number(l->token[0] ? l->token : l->last_token), epoch_number(now), what);
    snprintf(l->seen_epoch, sizeof l->seen_epoch, "%s", now);
    if (l->role == LEASE_ACTIVE)
        stand_down(l, "another slotd took the lease");
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct lease *l = arg;
    uint64_t now = clock_mono_ms();
    (void)fd;
    (void)what;
    if (l->role == LEASE_DOWN || l->out || l->release_done)
        return;
    if (l->role == LEASE_ACTIVE) {
        /* Hygiene only (the fence is what keeps writes safe): a lease not
         * renewed for its whole length is likely someone else's by now. */
        uint64_t lease = (uint64_t)l->sd->conf.leader.lease_ms;
        if (now - l->renewed_at >= lease) {
            char why[160];
            snprintf(why, sizeof why, "the lease was not renewed for %" PRIu64 " ms",
                     now - l->renewed_at);
            log_warn("%s: it may have lapsed; standing by", why);
            stand_down(l, why);
            return;
        }
        send_renew(l);
    } else if (now >= l->hold_off_until) {
        send_acquire(l);
    }
}

/* What the last read said of the lease. */
static void note_holder(struct lease *l, const redisReply *lease, const redisReply *ttl,
                        const redisReply *epoch)
{
    if (lease && lease->type == REDIS_REPLY_STRING)
        snprintf(l->holder, sizeof l->holder, "%s", lease->str);
    l->ttl_ms = ttl && ttl->type == REDIS_REPLY_INTEGER ? ttl->integer : -1;
    if (epoch && epoch->type == REDIS_REPLY_STRING)
        snprintf(l->seen_epoch, sizeof l->seen_epoch, "%s", epoch->str);
}

/* The lease scripts' refusals: said once per change of text. */
static void lease_trouble(struct lease *l, const redisReply *r)
{
    static const char *const what = "the lease cannot be read or written";
    char text[300];
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[1]->type == REDIS_REPLY_STRING &&
        (r->element[2]->type == REDIS_REPLY_STATUS || r->element[2]->type == REDIS_REPLY_STRING))
        snprintf(text, sizeof text, "%s holds a %s, not a string (look at it with TYPE, then"
                 " DEL it)", r->element[1]->str, r->element[2]->str);
    else
        snprintf(text, sizeof text, "%s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    if (strcmp(text, l->said) != 0)
        log_error("%s: %s; slotd stands by and tries again every leader.renew_ms", what, text);
    snprintf(l->said, sizeof l->said, "%s", text);
}

static void on_acquire(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct lease *l = of(ac);
    redisReply *r = reply;
    if (r == NULL || (uintptr_t)privdata != l->gen)
        return;
    l->out = 0;
    if (l->release_done || l->role == LEASE_ACTIVE)
        return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[0]->type != REDIS_REPLY_STRING) {
        lease_trouble(l, r);
        return;
    }
    const char *how = r->element[0]->str;
    l->said[0] = '\0';
    if (strcmp(how, "won") == 0 && r->element[1]->type == REDIS_REPLY_STRING) {
        snprintf(l->token, sizeof l->token, "%s", r->element[1]->str);
        snprintf(l->seen_epoch, sizeof l->seen_epoch, "%s", l->token);
        snprintf(l->holder, sizeof l->holder, "%s %s", l->token, l->who);
        l->ttl_ms = l->sd->conf.leader.lease_ms;
        l->renewed_at = clock_mono_ms();
        set_role(l, LEASE_ACTIVE, "took the lease");
        return;
    }
    if (strcmp(how, "held") == 0 && r->elements == 4) {
        char before[sizeof l->holder];
        snprintf(before, sizeof before, "%s", l->holder);
        note_holder(l, r->element[1], r->element[2], r->element[3]);
        /* The holder as it is named, without its epoch: "<node> <pid>". */
        const char *name = strchr(l->holder, ' ');
        name = name ? strchr(name + 1, ' ') : NULL;
        if (strcmp(before, l->holder) != 0) {
            log_info("standing by: the lease is held by %s, epoch %" PRIu64 ", for %" PRId64
                     " ms more", name ? name + 1 : l->holder, epoch_number(l->seen_epoch),
                     l->ttl_ms);
            l->sd->events.held(l->sd);
        }
        return;
    }
    lease_trouble(l, r);
}

static void on_renew(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct lease *l = of(ac);
    redisReply *r = reply;
    if (r == NULL || (uintptr_t)privdata != l->gen)
        return;
    l->out = 0;
    if (l->release_done || l->token[0] == '\0')
        return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_STRING) {
        lease_trouble(l, r);
        return;
    }
    if (strcmp(r->element[0]->str, "renewed") == 0) {
        l->renewed_at = clock_mono_ms();
        l->ttl_ms = l->sd->conf.leader.lease_ms;
        if (l->role != LEASE_ACTIVE)
            set_role(l, LEASE_ACTIVE, "kept the lease it held");
        return;
    }
    if (strcmp(r->element[0]->str, "lost") == 0 && r->elements == 4) {
        char why[300];
        note_holder(l, r->element[2], r->element[3], r->element[1]);
        snprintf(why, sizeof why, "the lease was taken: epoch %" PRIu64 " -> %" PRIu64,
                 epoch_number(l->token), epoch_number(l->seen_epoch));
        if (l->role == LEASE_ACTIVE)
            log_warn("%s; standing by", why);
        stand_down(l, why);
        return;
    }
    lease_trouble(l, r);
}

void lease_release(struct lease *l, void (*done)(struct slotd *sd))
{
    if (l->role != LEASE_ACTIVE || l->token[0] == '\0') {
        done(l->sd);
        return;
    }
    const char *all[] = { "EVAL", scripts_release, "2", l->sd->keys.leader,
                          l->sd->keys.leader_epoch, l->token };
    l->release_done = done;
    l->gen++;
    if (conn_command(&l->sd->main, on_release, (void *)l->gen, 6, all, NULL) != 0) {
        l->release_done = NULL;
        done(l->sd);
    }
}

static void on_release(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct lease *l = of(ac);
    redisReply *r = reply;
    if ((uintptr_t)privdata != l->gen || l->release_done == NULL)
        return;
    if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
        log_info("released the lease (epoch %" PRIu64 "): a standby takes it within"
                 " leader.renew_ms", epoch_number(l->token));
    void (*done)(struct slotd *) = l->release_done;
    l->release_done = NULL;
    l->token[0] = '\0';
    done(l->sd);
}

void lease_fill_view(const struct lease *l, struct lease_view *v)
{
    v->role = l->role;
    v->epoch = epoch_number(l->role == LEASE_ACTIVE ? l->token : l->seen_epoch);
    v->holder = l->holder;
    v->ttl_ms = l->ttl_ms;
    if (l->role == LEASE_ACTIVE) {
        uint64_t since = clock_mono_ms() - l->renewed_at;
        uint64_t lease = (uint64_t)l->sd->conf.leader.lease_ms;
        v->ttl_ms = since < lease ? (int64_t)(lease - since) : 0;
    }
    v->changes = l->changes;
    v->fenced = l->fenced;
}
