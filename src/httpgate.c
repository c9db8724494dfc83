/*
 * httpgate: the door in front of evhttp (see httpgate.h). libevent 2.1's
 * evhttp keeps no count of its connections, gives up only on a connection
 * that is silent for its whole timeout (a byte now and then keeps a
 * slowloris alive), and leaves accept() errors to its listener, which
 * without an error callback logs each one and retries at once: out of
 * descriptors, that is a busy loop writing a line per turn.
 *
 * A connection's way through the gate. libevent 2.1 has no "new
 * connection" callback (evhttp_set_newreqcb came in 2.2); the hooks it has
 * are the bufferevent callback, called as evhttp builds a connection, and
 * the close callback of a connection:
 *
 *   listener accepts --> on_new_bev: a bufferevent for evhttp, counted;
 *                          |   queued on g->fresh; g->adopt made active
 *                          v
 *   on_adopt, later in the same loop turn: finds the evhttp_connection
 *       behind each fresh bufferevent; one over the cap is closed at once;
 *       the others get on_close and a deadline timer
 *                          |
 *                          v
 *   on_close: evhttp frees the connection (reply sent, timeout, error, or
 *       on_deadline's evhttp_connection_free): the count goes down
 *
 * One turn of the listener accepts what the cap leaves room for and at most
 * SURPLUS_PER_TURN more; then on_new_bev turns the listener off for
 * BREATH_MS. So the HTTP server never holds more than the cap plus that
 * many descriptors, and a storm of connections costs slotd at most
 * SURPLUS_PER_TURN refusals per BREATH_MS, however fast it comes: the rest
 * wait in the kernel's backlog, or are dropped there, and routing goes on.
 */
#include "httpgate.h"

#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "backoff.h"
#include "clock.h"
#include "episode.h"
#include "log.h"

#define LISTEN_BACKLOG    511   /* connections the kernel holds for accept() */
#define SURPLUS_PER_TURN  16    /* over-cap connections accepted (and closed) per turn */
#define BREATH_MS         20    /* listener off after a turn that reached SURPLUS_PER_TURN */
#define FD_RESERVE        32    /* descriptors kept for Redis, slotd and a turn's surplus */
#define PAUSE_MIN_MS      50    /* first pause after accept() failed; it doubles */
#define PAUSE_MAX_MS      1000
#define CALM_MS           10000 /* a trouble is over after this long without a recurrence */

struct gate_conn {
    struct httpgate          *g;         /* (ref) */
    struct bufferevent       *bev;       /* (ref) evhttp's; we hold a reference until adopted */
    struct evhttp_connection *evcon;     /* (ref) evhttp owns it; NULL until adopted */
    struct event             *deadline;  /* owned; NULL until adopted */
    int                       surplus;   /* accepted over the cap: closed once adopted */
    int                       cut;       /* closed by its deadline */
    struct gate_conn         *next;      /* in g->fresh until adopted */
};

/*
 * A trouble the log speaks of (episode.h): said when it starts, then at
 * most once a minute. It is over once a connection went through and it has
 * not recurred for CALM_MS: ending it at the first connection that goes
 * through would say it twice for every connection of a flood that keeps
 * refilling the cap.
 */
struct trouble {
    struct episode ep;
    uint64_t       last_ms;     /* when it last happened */
    int            relieved;    /* a connection went through since */
};

struct httpgate {
    struct event_base     *base;        /* (ref) */
    struct evhttp         *evh;         /* (ref) the server behind the gate */
    struct evconnlistener *lev;         /* (ref) evhttp frees it; the socket stays ours */
    evutil_socket_t        fd;          /* owned: the listening socket */
    char                   addr[256];   /* as configured, for logs */
    int                    cap;         /* connections admitted at once */
    int                    deadline_ms;
    int                    open;        /* admitted and not closed */
    struct gate_conn      *fresh;       /* owned: accepted this turn, not adopted yet (FIFO) */
    struct gate_conn     **fresh_tail;
    int                    turn_surplus; /* over-cap connections accepted this turn */
    int                    turn_over;   /* listener off until on_breath */
    int                    paused;      /* listener off until on_resume: accept() failed */
    struct event          *adopt;       /* owned: runs after the listener's turn */
    struct event          *resume;      /* owned: ends a pause */
    struct event          *breath;      /* owned: ends a turn_over */
    struct event          *anchor;      /* owned: how on_accept_error finds the gate */
    struct event          *calm;        /* owned: ends troubles that are over */
    struct backoff         pause;       /* pause lengths, growing while accept() fails */
    struct trouble         failing;     /* accept() failing */
    struct trouble         full;        /* connections closed because the cap was reached */
    struct trouble         slow;        /* connections closed by their deadline */
};

static struct bufferevent *on_new_bev(struct event_base *base, void *arg);
static void on_unclaimed(struct bufferevent *bev, short what, void *arg);
static void on_adopt(evutil_socket_t fd, short what, void *arg);
static void on_close(struct evhttp_connection *evcon, void *arg);
static void on_deadline(evutil_socket_t fd, short what, void *arg);
static void on_accept_error(struct evconnlistener *lev, void *arg);
static void on_resume(evutil_socket_t fd, short what, void *arg);
static void on_breath(evutil_socket_t fd, short what, void *arg);
static void on_anchor(evutil_socket_t fd, short what, void *arg);
static void on_calm(evutil_socket_t fd, short what, void *arg);

/* ---- the listening socket ------------------------------------------------ */

/* What to do about a bind() or listen() error, or "". */
static const char *bind_hint(int err)
{
    switch (err) {
    case EADDRINUSE: return "; another process holds this port: stop it or change http.listen";
    case EACCES: return "; ports below 1024 need a privilege slotd does not have";
    case EADDRNOTAVAIL: return "; this host has no such address";
    default: return "";
    }
}

/*
 * A non-blocking listening socket on listen ("host:port", "[v6]:port"), or
 * -1 after logging why, naming the address.
 */
static evutil_socket_t listen_on(const char *addr)
{
    char host[256], port[16];
    const char *colon = strrchr(addr, ':');
    struct addrinfo hints, *res = NULL;
    evutil_socket_t fd = -1;
    int err = 0;

    if (colon == NULL || (size_t)(colon - addr) >= sizeof host ||
        strlen(colon + 1) >= sizeof port) {
        log_error("http: cannot listen on '%s' (http.listen): not host:port", addr);
        return -1;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {     /* [::1] -> ::1 */
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    snprintf(port, sizeof port, "%s", colon + 1);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        log_error("http: cannot listen on %s (http.listen): cannot resolve '%s': %s", addr, host,
                  rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    /* The first address that works; the first error if none does. */
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        int one = 1;
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = err ? err : errno;
            continue;
        }
        /* SO_REUSEADDR: a restart need not wait for the old connections'
         * TIME_WAIT; it does not let two listeners share the port. */
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
            bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
            err = err ? err : errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        log_error("http: cannot listen on %s (http.listen): %s%s", addr, strerror(err),
                  bind_hint(err));
    return fd;
}

/* The cap, lowered so that the HTTP server cannot take the descriptors
 * Redis and slotd itself need. */
static int fit_cap(int want, const char *addr)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        (rlim_t)want + FD_RESERVE <= rl.rlim_cur)
        return want;
    int fit = rl.rlim_cur > FD_RESERVE ? (int)(rl.rlim_cur - FD_RESERVE) : 1;
    log_warn("http: %s admits %d connections at once, not http.max_connections %d: slotd may "
             "open %llu files (LimitNOFILE=, ulimit -n) and keeps %d for Redis and itself",
             addr, fit, want, (unsigned long long)rl.rlim_cur, FD_RESERVE);
    return fit;
}

/* ---- troubles ------------------------------------------------------------ */

/* One occurrence: what to say (episode_hit), and the calm timer armed. */
static enum episode_say trouble_hit(struct httpgate *g, struct trouble *t, uint64_t *repeats)
{
    uint64_t now = clock_mono_ms();
    struct timeval tv = { CALM_MS / 1000, (CALM_MS % 1000) * 1000 };
    t->last_ms = now;
    t->relieved = 0;
    if (!evtimer_pending(g->calm, NULL))
        evtimer_add(g->calm, &tv);
    return episode_hit(&t->ep, now, 0, repeats);
}

static void trouble_relieved(struct trouble *t)
{
    t->relieved = t->ep.active;
}

/* 1 if t is over now; then *lasted is from its start to its last
 * occurrence, and *times how often it happened. */
static int trouble_over(struct trouble *t, uint64_t now, uint64_t *lasted, uint64_t *times)
{
    if (!t->ep.active || !t->relieved || now - t->last_ms < CALM_MS)
        return 0;
    episode_end(&t->ep, now, lasted, times);
    *lasted -= now - t->last_ms;
    return 1;
}

static void on_calm(evutil_socket_t fd, short what, void *arg)
{
    struct httpgate *g = arg;
    uint64_t now = clock_mono_ms(), lasted, times;
    struct timeval tv = { 1, 0 };
    (void)fd;
    (void)what;
    if (trouble_over(&g->failing, now, &lasted, &times))
        log_info("http: accepting connections on %s again (accept() failed %llu times in %llu "
                 "ms)", g->addr, (unsigned long long)times, (unsigned long long)lasted);
    if (trouble_over(&g->full, now, &lasted, &times))
        log_info("http: %s admits connections again (%llu closed at once in %llu ms)", g->addr,
                 (unsigned long long)times, (unsigned long long)lasted);
    if (trouble_over(&g->slow, now, &lasted, &times))
        log_info("http: requests on %s complete in time again (%llu connections cut off in %llu "
                 "ms)", g->addr, (unsigned long long)times, (unsigned long long)lasted);
    /* Again in a second while one goes on: a cheap check, and the end is
     * said at most a second late. */
    if (g->failing.ep.active || g->full.ep.active || g->slow.ep.active)
        evtimer_add(g->calm, &tv);
}

/* ---- admitting connections ----------------------------------------------- */

/* Turns the listener on unless a turn or a pause keeps it off. */
static void listen_again(struct httpgate *g)
{
    if (!g->turn_over && !g->paused)
        evconnlistener_enable(g->lev);
}

/*
 * evhttp's bufferevent callback: a connection was just accepted and evhttp
 * is about to build its evhttp_connection around the bufferevent returned.
 */
static struct bufferevent *on_new_bev(struct event_base *base, void *arg)
{
    struct httpgate *g = arg;

    /* accept() works again. */
    trouble_relieved(&g->failing);
    backoff_reset(&g->pause);

    struct gate_conn *c = calloc(1, sizeof *c);
    /* CLOSE_ON_FREE: evhttp then leaves the socket to the bufferevent, which
     * closes it only after its events are deleted, even while we hold our
     * reference (a socket closed under a registered event would leave its
     * number registered for the next connection to get it). */
    struct bufferevent *bev = c ? bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE) : NULL;
    if (bev == NULL) {
        /* Out of memory: evhttp makes its own bufferevent (or fails too),
         * and this connection goes uncounted, bounded by http.timeout_ms. */
        free(c);
        return NULL;
    }
    /* evhttp replaces these callbacks with its own, whose argument is the
     * evhttp_connection: on_adopt reads it back. on_unclaimed marks a
     * bufferevent evhttp never took. Our reference keeps the bufferevent
     * valid until on_adopt, whatever evhttp does with it meanwhile. */
    bufferevent_setcb(bev, NULL, NULL, on_unclaimed, c);
    bufferevent_incref(bev);
    c->g = g;
    c->bev = bev;
    if (g->open < g->cap) {
        g->open++;
        trouble_relieved(&g->full);
    } else {
        uint64_t repeats = 0;
        c->surplus = 1;
        switch (trouble_hit(g, &g->full, &repeats)) {
        case EPISODE_FIRST:
            log_warn("http: %s has %d connections open, as many as it admits: closing new "
                     "ones at once until some end", g->addr, g->cap);
            break;
        case EPISODE_AGAIN:
            log_warn("http: %s still has %d connections open: %llu more closed at once",
                     g->addr, g->cap, (unsigned long long)repeats);
            break;
        case EPISODE_QUIET:
            break;
        }
        if (++g->turn_surplus >= SURPLUS_PER_TURN) {
            g->turn_over = 1;
            evconnlistener_disable(g->lev);
        }
    }
    *g->fresh_tail = c;
    g->fresh_tail = &c->next;
    event_active(g->adopt, EV_TIMEOUT, 1);
    return bev;
}

static void on_unclaimed(struct bufferevent *bev, short what, void *arg)
{
    /* Never runs: the bufferevent has no socket until evhttp takes it. */
    (void)bev;
    (void)what;
    (void)arg;
}

/* A connection leaves the gate's count. */
static void forget(struct gate_conn *c)
{
    if (!c->surplus)
        c->g->open--;
    if (c->deadline)
        event_free(c->deadline);
    free(c);
}

/*
 * A fresh connection's outcome: closed if over the cap, else watched (on
 * close and at the deadline). Drops our reference to its bufferevent.
 */
static void settle(struct httpgate *g, struct gate_conn *c)
{
    struct bufferevent *bev = c->bev;
    bufferevent_data_cb rd, wr;
    bufferevent_event_cb ev;
    void *cbarg;

    c->bev = NULL;
    bufferevent_getcb(bev, &rd, &wr, &ev, &cbarg);
    if (ev == on_unclaimed) {
        /* evhttp failed before taking it (out of memory): it is ours alone. */
        bufferevent_free(bev);
        forget(c);
    } else if (ev == NULL || evhttp_connection_get_bufferevent(cbarg) != bev) {
        /* evhttp took it and has freed it already (bufferevent_free clears
         * the callbacks). */
        forget(c);
    } else if (c->surplus) {
        /* Over the cap: the peer sees the connection closed at once. */
        evhttp_connection_free(cbarg);
        forget(c);
    } else {
        struct timeval tv = { g->deadline_ms / 1000, (g->deadline_ms % 1000) * 1000 };
        c->evcon = cbarg;
        c->deadline = evtimer_new(g->base, on_deadline, c);
        if (c->deadline == NULL || evtimer_add(c->deadline, &tv) != 0) {
            evhttp_connection_free(c->evcon);
            forget(c);
        } else {
            evhttp_connection_set_closecb(c->evcon, on_close, c);
        }
    }
    bufferevent_decref(bev);
}

static void on_adopt(evutil_socket_t fd, short what, void *arg)
{
    struct httpgate *g = arg;
    (void)fd;
    (void)what;
    while (g->fresh != NULL) {
        struct gate_conn *c = g->fresh;
        g->fresh = c->next;
        settle(g, c);
    }
    g->fresh_tail = &g->fresh;
    g->turn_surplus = 0;
    if (g->turn_over) {
        struct timeval tv = { 0, BREATH_MS * 1000 };
        if (evtimer_add(g->breath, &tv) != 0)
            on_breath(-1, 0, g);
    }
}

static void on_breath(evutil_socket_t fd, short what, void *arg)
{
    struct httpgate *g = arg;
    (void)fd;
    (void)what;
    g->turn_over = 0;
    listen_again(g);
}

/* evhttp frees the connection: reply sent, timeout, error, or a deadline. */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
    struct gate_conn *c = arg;
    (void)evcon;
    if (!c->cut)
        trouble_relieved(&c->g->slow);
    forget(c);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct gate_conn *c = arg;
    struct httpgate *g = c->g;
    char *peer = NULL;
    ev_uint16_t port = 0;
    uint64_t repeats = 0;
    (void)fd;
    (void)what;
    evhttp_connection_get_peer(c->evcon, &peer, &port);
    switch (trouble_hit(g, &g->slow, &repeats)) {
    case EPISODE_FIRST:
        log_warn("http: closing a connection to %s from %s:%u that was still open after %d ms "
                 "(http.request_deadline_ms); a client too slow to send its request or "
                 "take its reply", g->addr, peer ? peer : "?", (unsigned)port, g->deadline_ms);
        break;
    case EPISODE_AGAIN:
        log_warn("http: still closing connections to %s open for %d ms: %llu more, the last "
                 "from %s", g->addr, g->deadline_ms, (unsigned long long)repeats,
                 peer ? peer : "?");
        break;
    case EPISODE_QUIET:
        break;
    }
    c->cut = 1;
    /* Calls on_close, which frees c and this (non-persistent) timer: libevent
     * no longer touches a timer once its callback runs. */
    evhttp_connection_free(c->evcon);
}

/* ---- accept() failing ---------------------------------------------------- */

/*
 * The listener calls its error callback with the argument evhttp gave it,
 * the struct evhttp, not the gate. The gate is found instead as the
 * argument of its anchor, an event that is always added and never runs:
 * EV_WRITE on the listening socket, which a listening socket never signals.
 */
struct finding {
    const struct evconnlistener *lev;
    struct httpgate             *g;
};

static int find_gate(const struct event_base *base, const struct event *ev, void *arg)
{
    struct finding *f = arg;
    (void)base;
    if (event_get_callback(ev) != on_anchor)
        return 0;
    struct httpgate *g = event_get_callback_arg(ev);
    if (g->lev != f->lev)
        return 0;
    f->g = g;
    return 1;
}

static void on_anchor(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    int err = EVUTIL_SOCKET_ERROR();
    struct finding f = { lev, NULL };
    (void)arg;

    /* Off at once: accept() would fail again on the next turn, and the one
     * after, as fast as the loop turns. */
    evconnlistener_disable(lev);
    event_base_foreach_event(evconnlistener_get_base(lev), find_gate, &f);
    if (f.g == NULL) {
        log_error("http: accept() failed: %s; no longer accepting connections", strerror(err));
        return;
    }
    struct httpgate *g = f.g;
    uint64_t repeats = 0;
    uint32_t ms = backoff_next(&g->pause, 0);
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    char limit[96] = "";
    struct rlimit rl;

    if (err == EMFILE && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        snprintf(limit, sizeof limit, " (slotd may open %llu files: LimitNOFILE=, ulimit -n)",
                 (unsigned long long)rl.rlim_cur);
    g->paused = 1;
    switch (trouble_hit(g, &g->failing, &repeats)) {
    case EPISODE_FIRST:
        log_warn("http: cannot accept connections on %s: %s%s; trying again after %u ms, then "
                 "less and less often (every %d ms at most) until it works", g->addr,
                 strerror(err), limit, (unsigned)ms, PAUSE_MAX_MS);
        break;
    case EPISODE_AGAIN:
        log_warn("http: still cannot accept connections on %s: %s%s (%llu more failures)",
                 g->addr, strerror(err), limit, (unsigned long long)repeats);
        break;
    case EPISODE_QUIET:
        break;
    }
    if (evtimer_add(g->resume, &tv) != 0)
        log_error("http: cannot arm a timer; no longer accepting connections on %s", g->addr);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct httpgate *g = arg;
    (void)fd;
    (void)what;
    g->paused = 0;
    listen_again(g);
}

/* ---- open and close ------------------------------------------------------ */

struct httpgate *httpgate_open(struct event_base *base, struct evhttp *evh, const char *listen,
                               const struct httpgate_limits *lim)
{
    struct httpgate *g = calloc(1, sizeof *g);
    if (g == NULL) {
        log_error("http: out of memory");
        return NULL;
    }
    g->base = base;
    g->evh = evh;
    g->fd = -1;
    g->fresh_tail = &g->fresh;
    g->deadline_ms = lim->deadline_ms;
    snprintf(g->addr, sizeof g->addr, "%s", listen);
    backoff_init(&g->pause, PAUSE_MIN_MS, PAUSE_MAX_MS);
    g->fd = listen_on(listen);
    if (g->fd < 0)
        goto fail;
    g->cap = fit_cap(lim->max_connections, g->addr);
    g->adopt = event_new(base, -1, 0, on_adopt, g);
    g->resume = evtimer_new(base, on_resume, g);
    g->breath = evtimer_new(base, on_breath, g);
    g->anchor = event_new(base, g->fd, EV_WRITE | EV_PERSIST, on_anchor, g);
    g->calm = evtimer_new(base, on_calm, g);
    /* Backlog 0: the socket listens already. Not LEV_OPT_CLOSE_ON_FREE:
     * evhttp frees the listener, and the socket must outlive the anchor. */
    g->lev = evconnlistener_new(base, NULL, NULL, LEV_OPT_DISABLED | LEV_OPT_CLOSE_ON_EXEC, 0,
                                g->fd);
    if (g->adopt == NULL || g->resume == NULL || g->breath == NULL || g->anchor == NULL ||
        g->calm == NULL || g->lev == NULL ||
        event_add(g->anchor, NULL) != 0 || evhttp_bind_listener(evh, g->lev) == NULL) {
        if (g->lev != NULL)
            evconnlistener_free(g->lev);    /* not evhttp's yet: binding is the last step */
        log_error("http: out of memory");
        goto fail;
    }
    evconnlistener_set_error_cb(g->lev, on_accept_error);
    evhttp_set_bevcb(evh, on_new_bev, g);
    evconnlistener_enable(g->lev);
    return g;
fail:
    httpgate_close(g);
    return NULL;
}

void httpgate_close(struct httpgate *g)
{
    if (g == NULL)
        return;
    /* Connections accepted on the loop's last turn, if any, that on_adopt
     * did not see: evhttp_free has freed them; settle drops our references. */
    while (g->fresh != NULL) {
        struct gate_conn *c = g->fresh;
        g->fresh = c->next;
        settle(g, c);
    }
    if (g->adopt)
        event_free(g->adopt);
    if (g->resume)
        event_free(g->resume);
    if (g->breath)
        event_free(g->breath);
    if (g->anchor)
        event_free(g->anchor);
    if (g->calm)
        event_free(g->calm);
    if (g->fd >= 0)
        close(g->fd);
    free(g);
}
