/*
 * dial: one synchronous connection to the Redis master, the same for
 * libslotd (the worker's connection and its heartbeat thread's) and for
 * slotctl. With Sentinel it finds the master first, as the Sentinel client
 * spec says:
 *
 *   each sentinel in turn, until one names the master:
 *       connect (connect_timeout_ms), [AUTH], SENTINEL get-master-addr-by-name
 *       (its reply within connect_timeout_ms too: a sentinel is quick or down)
 *   the one that named it goes to the front of the list
 *   connect to that address (connect_timeout_ms)
 *   AUTH, ROLE, SELECT, CLIENT SETNAME in one round trip (reply_timeout_ms)
 *   ROLE is not "master" (a failover under way): close, pause, ask again;
 *   DIAL_ROUNDS times in all, then fail
 *
 * With Redis Cluster (cluster_seeds), the master of one slot, d->slot (the
 * caller's namespace's or shard's: every key of it carries one hash tag):
 *
 *   each seed in turn, until one's map names a master for the slot:
 *       connect (connect_timeout_ms), [AUTH], CLUSTER SLOTS (reply within
 *       connect_timeout_ms), cluster_map_parse
 *   the one that answered goes to the front of the list
 *   connect to the master of the slot, then as with Sentinel (ROLE "master"
 *   or ask the seeds again, DIAL_ROUNDS times)
 *
 * A reply that redirects (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) fails the
 * command unapplied, as READONLY does: dial_check_reply marks the
 * connection failed and the next dial_connect asks the seeds again.
 *
 * Without Sentinel or Cluster: connect to host:port (or the unix socket),
 * then AUTH, SELECT, CLIENT SETNAME; no ROLE (it would need +role in every
 * ACL).
 *
 * Every connection made keeps reply_timeout_ms as its read and write
 * timeout: a reply later than that fails the command, and the context with
 * it (hiredis marks it failed). A blocking command sets its own wait plus
 * the reply timeout around itself (dial_set_timeout).
 *
 * Only hiredis's blocking API that 0.14 and 1.x share. Not thread-safe:
 * one struct dial per thread (copying one is fine).
 */
#ifndef SLOTD_DIAL_H
#define SLOTD_DIAL_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "sentinel.h"

#define DIAL_CONNECT_TIMEOUT_MS 1000    /* when the options say 0 */
#define DIAL_REPLY_TIMEOUT_MS   3000
#define DIAL_ROUNDS             3       /* discoveries that found a non-master, then fail */
#define DIAL_PAUSE_MS           200     /* between them: a failover settles */
#define DIAL_ADDR_MAX           (SENTINEL_HOST_MAX + 16)
#define DIAL_VIA_MAX            (DIAL_ADDR_MAX + 64 + 256)

struct dial_options {           /* strings borrowed: they must outlive the dial */
    const char *host;           /* without Sentinel and unix_path; NULL: "127.0.0.1" */
    int         port;           /* 0: 6379 */
    const char *unix_path;      /* NULL or "": TCP */
    int         db;             /* SELECT when not 0 */
    const char *username;       /* NULL or "": the default user */
    const char *password;       /* NULL: no AUTH */
    const char *sentinels;      /* "host:port,..."; NULL or "": no Sentinel */
    const char *sentinel_master;    /* the name the sentinels know the master by */
    const char *sentinel_username;  /* NULL or "": the sentinels' default user */
    const char *sentinel_password;  /* NULL: no AUTH to the sentinels */
    int         connect_timeout_ms; /* <= 0: DIAL_CONNECT_TIMEOUT_MS */
    int         reply_timeout_ms;   /* <= 0: DIAL_REPLY_TIMEOUT_MS */
    const char *cluster_seeds;      /* "host:port,..." of Redis Cluster nodes, at most 16;
                                       NULL or "": no Cluster; excludes sentinels */
};

/*
 * The connection's fields of any struct that names them as dial_options
 * does (libslotd's worker and producer options, a configuration's redis
 * section), as designated initializers: struct dial_options d = {
 * DIAL_OPTIONS_OF(opts) }. One list, so a field added reaches every
 * connection made.
 */
#define DIAL_OPTIONS_OF(o)                                                              \
    .host = (o).host, .port = (o).port, .unix_path = (o).unix_path, .db = (o).db,         \
    .username = (o).username, .password = (o).password, .sentinels = (o).sentinels,       \
    .sentinel_master = (o).sentinel_master, .sentinel_username = (o).sentinel_username,   \
    .sentinel_password = (o).sentinel_password,                                         \
    .connect_timeout_ms = (o).connect_timeout_ms, .reply_timeout_ms = (o).reply_timeout_ms, \
    .cluster_seeds = (o).cluster_seeds

/* Why the last dial_connect failed. */
enum dial_failure {
    DIAL_UNREACHABLE,           /* no connection: the server, or every sentinel (seed), or
                                   no master (of the slot) */
    DIAL_AUTH_REFUSED,          /* Redis refused AUTH */
    DIAL_REFUSED,               /* Redis refused ROLE, SELECT or CLIENT SETNAME */
};

struct dial {
    struct dial_options o;      /* copy, defaults filled in; strings borrowed */
    struct sentinels    sentinels;  /* in the order to ask: the last that answered first */
    struct sentinels    seeds;      /* Cluster: the same, for the seed nodes */
    unsigned            slot;       /* Cluster: the slot whose master to dial (keys_slot);
                                       set by the caller after dial_init, 0 until then */
    char  addr[DIAL_ADDR_MAX];  /* the server of the last connection made ("" before one):
                                   "127.0.0.1:6380", "[::1]:6380", or the socket's path */
    char  via[DIAL_VIA_MAX];    /* how it was found: "sentinel 10.0.0.1:26379 (name
                                       slotd)", "cluster 127.0.0.1:7000 (slot 866)" (the
                                       seed that named it), "redis.host" or "redis.unix" */
    enum dial_failure failed;   /* the last failure's kind */
};

/*
 * Copies the options and parses the sentinel list. 0, or -1 with the reason
 * in err (a bad list, or sentinels without sentinel_master).
 */
int dial_init(struct dial *d, const struct dial_options *o, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* 1 when the dial finds the master through sentinels. */
int dial_uses_sentinel(const struct dial *d);

/* 1 when the dial finds the master of d->slot through Cluster seeds. */
int dial_uses_cluster(const struct dial *d);

/*
 * A new connection to the master, named `name` (CLIENT SETNAME; NULL: not
 * named), with the reply timeout set; the caller frees it with redisFree.
 * NULL with d->failed and the reason in err, saying exactly what failed:
 *   "cannot reach Redis at 127.0.0.1:6379: Connection refused"
 *   "Redis refused AUTH: WRONGPASS ..."
 *   "no sentinel named master 'x': sentinel 10.0.0.1:26379: Connection refused;
 *    sentinel 10.0.0.2:26379: master 'x' unknown; ..."
 *   "127.0.0.1:6380, named master 'x' by sentinel 10.0.0.1:26379, is a slave (asked 3 times)"
 *   "no master serves slot 866 (CLUSTERDOWN?): seed 127.0.0.1:7000: ..."
 */
redisContext *dial_connect(struct dial *d, const char *name, char *err, size_t errlen);

/* A connection to a sentinel kept between looks (dial_locate). */
struct dial_watch {
    redisContext *c;            /* owned; NULL: none yet (start zeroed) */
    char          at[DIAL_ADDR_MAX];    /* the sentinel it is to */
    int           next;         /* without c: the one to ask next (an index, wrapped) */
};

/*
 * Where the sentinels say the master is now, for a connection made earlier
 * to check it is still on the master (a master that froze, woke and is not
 * yet demoted takes itself for the master: ROLE cannot tell, the sentinels
 * can). One question per call, so a call takes at most one connect and one
 * reply of connect_timeout_ms each: on wt's connection, or when there is
 * none, of the next sentinel, whose connection wt then keeps; a failed one
 * is closed and the next call asks the next sentinel. 1 with the address
 * (as d->addr writes it) in addr; 0 with the reason in err.
 */
int dial_locate(struct dial *d, struct dial_watch *wt, char *addr, size_t cap, char *err,
                size_t errlen);

/* Closes wt's connection, if any. */
void dial_watch_close(struct dial_watch *wt);

/* Sets c's read and write timeout; 0, or -1. */
int dial_set_timeout(redisContext *c, int ms);

/*
 * Why c failed: "no reply within <timeout_ms> ms" when a read timed out,
 * else hiredis's own words. Into buf; returns buf.
 */
const char *dial_lost(const redisContext *c, int timeout_ms, char *buf, size_t cap);

/* A reply that says this server is not (or no longer) the writable master
 * (sentinel_wrong_server), or a Cluster redirection (MOVED, ASK, TRYAGAIN,
 * CLUSTERDOWN: cluster_parse_error): drop the connection, dial again. */
int dial_wrong_server(const redisReply *r);

/*
 * After a reply r on c: when r says c's server is not the master any more,
 * marks c failed (c->err, as hiredis does for a broken connection; errstr
 * "not the master any more: READONLY ..."), so that whoever holds c drops
 * it and dials again, through the sentinels, rather than talk on to a
 * replica. A Cluster redirection is marked the same way (errstr "the
 * cluster redirects: MOVED 866 ..."): the command was not run, and the next
 * dial asks the seeds who serves the slot now. 1 when it did, else 0.
 */
int dial_check_reply(redisContext *c, const redisReply *r);

/* ---- pure helpers, exposed for the unit test -------------------------- */

/* Did a connection fail by a timeout? hiredis's error code and text: 0.14
 * says it with errno's words (EAGAIN for a read, ETIMEDOUT for a connect),
 * 1.x may have its own code. */
int dial_is_timeout(int err, const char *errstr);

/* Appends "; " (unless buf is empty) and the formatted text to buf, cut
 * with "..." when it does not fit. */
void dial_append(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "host:port", or "[host]:port" for an IPv6 address; returns buf. */
const char *dial_format_addr(char *buf, size_t cap, const char *host, int port);

#endif
