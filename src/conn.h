/*
 * conn: one asynchronous Redis connection (hiredis on libevent) that never
 * gives up: it connects, authenticates and selects the database, reports
 * when it is up or down, and reconnects with capped exponential backoff.
 *
 *   DOWN --connect--> CONNECTING --ok--> HANDSHAKE --AUTH/SELECT ok--> UP
 *     ^                   |                  |                          |
 *     +--- backoff timer -+---- failure -----+------- lost / error -----+
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

struct conn {
    const char               *name;        /* (ref) "main", "wait": for logs */
    struct event_base        *base;        /* (ref) */
    const struct conf        *conf;        /* (ref) address and credentials */
    struct redisAsyncContext *ac;          /* owned by hiredis while connected; NULL otherwise */
    enum conn_state           state;
    struct backoff            backoff;
    struct event             *retry;       /* owned: the reconnect timer */
    conn_event_fn            *on_up;       /* called once per successful handshake */
    conn_event_fn            *on_down;     /* called once per loss of an UP connection */
    void                     *arg;         /* (ref) passed to on_up/on_down */
    char                      addr[300];   /* "host:port" or the socket path, for logs */
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

/* Starts connecting. */
void conn_start(struct conn *c);

/* Sends a command. Returns 0 when queued (fn will be called exactly once,
 * with NULL if the connection is lost), -1 when the connection is not UP
 * (fn is then not called). fn may be NULL. */
int conn_command(struct conn *c, conn_reply_fn *fn, void *privdata,
                 int argc, const char **argv, const size_t *argvlen)
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
