/*
 * conn: one asynchronous Redis connection (hiredis on libevent) that never
 * gives up: it connects, authenticates, selects the database and checks that
 * the server is a master (ROLE), reports when it is up or down, and
 * reconnects with capped exponential backoff.
 *
 *   DOWN --connect--> CONNECTING --ok--> HANDSHAKE --AUTH/SELECT/ROLE ok--> UP
 *     ^                   |                  |                               |
 *     +--- backoff timer -+---- failure -----+--------- lost / error --------+
 *
 * hiredis 0.14 has no timeouts of its own, so a watchdog timer gives every
 * state one: a connection not made and its handshake not answered in
 * redis.connect_timeout_ms, or a command not answered in
 * redis.reply_timeout_ms (plus a blocking command's own wait), is dropped,
 * and a quiet UP connection is pinged every third of that, so a frozen
 * Redis is noticed in that time, not TCP's minutes. Each command's callback is kept in a ring in the order sent (the
 * order hiredis answers in), which is how the watchdog knows what is due.
 *
 * An error reply that says the server is not the master (READONLY, UNBLOCKED,
 * MASTERDOWN) drops the connection; one that says it cannot write for now
 * (LOADING, NOREPLICAS) is left to the command's owner to hold and retry.
 * Both call on_wrong, as does a ROLE that is not "master": with Sentinel the
 * master is then looked up again. On a Redis Cluster (redis.cluster_seeds),
 * MOVED (the slot is served elsewhere now) drops the connection too and calls
 * on_wrong with the new address in c->moved; CLUSTERDOWN calls on_wrong
 * (look again) and, like ASK and TRYAGAIN (a migration of the slot under
 * way), leaves the command's owner to hold and retry. Each is counted.
 *
 * Being unable to use Redis (unreachable, or refusing the handshake) is one
 * episode per connection (episode.h): said when it starts, with what to do,
 * then at most once a minute with a count, and once when the connection is
 * up again ("connected after 12.3 s, 57 failed attempts").
 */
#ifndef SLOTD_CONN_H
#define SLOTD_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "backoff.h"
#include "episode.h"
#include "cluster.h"
#include "replyarena.h"
#include "resp.h"

struct event;
struct event_base;
struct redisAsyncContext;
struct conf;

#define CONN_STATES(X)                  \
    X(CONN_DOWN,       "down")          \
    X(CONN_CONNECTING, "connecting")    \
    X(CONN_HANDSHAKE,  "handshake")     \
    X(CONN_UP,         "up")            \
    X(CONN_CLOSED,     "closed")

enum conn_state {
#define CONN_ENUM(e, name) e,
    CONN_STATES(CONN_ENUM)
#undef CONN_ENUM
};

struct conn;
typedef void conn_event_fn(struct conn *c, void *arg);
/* A reply callback, hiredis's own type: reply is NULL when the connection
 * was lost first; it lives only during the call; conn_of(ac) finds the conn. */
typedef void conn_reply_fn(struct redisAsyncContext *ac, void *reply, void *privdata);

/* A command sent and not yet answered. */
struct conn_pending {
    conn_reply_fn *fn;          /* NULL: nobody waits for the reply (PING, MULTI) */
    void          *privdata;
    uint32_t       wait_ms;     /* a blocking command's own wait, on top of the timeout */
};

/* Which server a conn talks to, and so which credentials and checks. */
enum conn_kind {
    CONN_KIND_REDIS,            /* redis.*: SELECT redis.db, ROLE must say master */
    CONN_KIND_SENTINEL,         /* a sentinel: redis.sentinel_username/_password */
    CONN_KIND_NODE,             /* a Redis Cluster node asked where the slots are:
                                   redis.* credentials, any role */
};

struct conn {
    const char               *name;        /* (ref) "main", "wait": for logs */
    enum conn_kind            kind;
    struct event_base        *base;        /* (ref) */
    const struct conf        *conf;        /* (ref) address and credentials */
    struct redisAsyncContext *ac;          /* owned by hiredis while connected; NULL otherwise */
    enum conn_state           state;
    struct backoff            backoff;
    struct event             *retry;       /* owned: the reconnect timer */
    conn_event_fn            *on_up;       /* called once per successful handshake */
    conn_event_fn            *on_down;     /* called once per loss of an UP connection */
    conn_event_fn            *on_wrong;    /* NULL, or called when the server says it is not
                                              the master (ROLE, READONLY...) */
    conn_event_fn            *on_fail;     /* NULL, or called when an attempt to connect
                                              fails (before the retry is scheduled) */
    void                     *arg;         /* (ref) passed to on_up/on_down/on_wrong */
    char                      host[256];   /* where to connect: set by conn_set_addr, or */
    int                       port;        /*   redis.host/port/unix when never set */
    int                       addr_set;
    char                      addr[300];   /* "host:port" or the socket path, for logs */
    struct event             *watch;       /* owned: the watchdog timer */
    uint32_t                  tick_ms;     /* its period */
    uint64_t                  phase_ms;    /* when CONNECTING, HANDSHAKE or the last
                                              progress while UP began (monotonic) */
    uint64_t                  replies;     /* replies received (the watchdog's progress) */
    uint64_t                  replies_seen; /* replies at the watchdog's last look */
    struct conn_pending      *pend;        /* owned: ring of commands due, oldest at pend_head */
    size_t                    pend_head, pend_n, pend_cap;
    int                       subscribed;  /* in SUBSCRIBE mode: nothing to ping or time */
    char                      drop_why[200]; /* why conn_reset dropped it, for the log */
    int                       moving;      /* conn_set_addr dropped it: not a failure, not
                                              said; set while on_down runs */
    uint64_t                  timeouts;    /* connections dropped by the watchdog */
    int                       replicas;    /* the replicas ROLE listed at the last connect */
    uint64_t                  cluster[CLUSTER_REPLY_COUNT]; /* Redis Cluster's error replies
                                              received, by kind (CLUSTER_OTHER unused) */
    struct cluster_redirect   moved;       /* the last MOVED's, while on_wrong runs for it
                                              (kind CLUSTER_OTHER otherwise) */
    int                       handshake_left; /* replies still due in HANDSHAKE */
    int                       handshake_failed; /* a reply was refused: the rest are its consequences */
    int                       attempt_failed; /* this attempt's failure is counted (once) */
    struct episode            down;        /* cannot use Redis: said as episode.h says */
    char                      down_said[48]; /* the failure last said in it: "unreachable", "AUTH WRONGPASS" */
    uint64_t                  failed;      /* failed attempts in it */
    uint64_t                  reconnects;  /* successful connects after the first */
    uint64_t                  ups;
    uint32_t                  rnd;         /* jitter state */
    struct replyarena         arena;       /* owned: where this connection's replies are built */
    struct resp_buf           out;         /* owned: the command being encoded */
};

const char *conn_state_name(enum conn_state s);

/* The conn an async context belongs to (for reply callbacks). */
struct conn *conn_of(const struct redisAsyncContext *ac);

/* Sets up c (no I/O yet). name and conf are borrowed. -1 on ENOMEM. */
int conn_init(struct conn *c, const char *name, struct event_base *base,
              const struct conf *conf, conn_event_fn *on_up,
              conn_event_fn *on_down, void *arg)
    __attribute__((warn_unused_result));

/* Starts connecting (a redis conn following Sentinel waits for its first
 * conn_set_addr). */
void conn_start(struct conn *c);

/* Makes c a connection to a sentinel (before conn_start). */
void conn_set_kind(struct conn *c, enum conn_kind kind);

/* Where to connect from now on. A connection to another address is dropped
 * at once and made again to this one; 1 when the address changed. */
int conn_set_addr(struct conn *c, const char *host, int port);

/* Where the next attempt connects, keeping the current connection (or the
 * backoff before the next attempt). */
void conn_retarget(struct conn *c, const char *host, int port);

/* Sends a command. Returns 0 when queued (fn will be called exactly once,
 * with NULL if the connection is lost), -1 when the connection is not UP
 * (fn is then not called). fn may be NULL. */
int conn_command(struct conn *c, conn_reply_fn *fn, void *privdata,
                 int argc, const char **argv, const size_t *argvlen)
    __attribute__((warn_unused_result));

/* As conn_command, for a blocking command that may wait wait_ms before
 * Redis answers: the watchdog allows that on top of redis.reply_timeout_ms. */
int conn_command_blocking(struct conn *c, uint32_t wait_ms, conn_reply_fn *fn, void *privdata,
                          int argc, const char **argv, const size_t *argvlen)
    __attribute__((warn_unused_result));

/* Sends a SUBSCRIBE: fn is called with each message (and with NULL when the
 * connection is lost); the connection takes no other command after it. */
int conn_subscribe(struct conn *c, conn_reply_fn *fn, void *privdata,
                   int argc, const char **argv)
    __attribute__((warn_unused_result));

/* Closes the connection after the replies already due (graceful) and stops
 * reconnecting. */
void conn_close(struct conn *c);

/* Drops the connection now and reconnects after backoff (for a protocol
 * error that leaves the connection's state unknown). */
void conn_reset(struct conn *c, const char *why);

/* Frees what conn_init allocated; the connection must be closed or down. */
void conn_free(struct conn *c);

#endif
