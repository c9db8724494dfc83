/*
 * dial: a synchronous connection to the Redis master, directly or found
 * through Sentinel or Redis Cluster seeds (see dial.h). The talking is here;
 * what the replies mean is sentinel.c's and cluster.c's.
 */
#include "dial.h"

#include "cluster.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static struct timeval tv_of(int ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    return tv;
}

static void pause_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int dial_is_timeout(int err, const char *errstr)
{
#ifdef REDIS_ERR_TIMEOUT
    if (err == REDIS_ERR_TIMEOUT)
        return 1;
#endif
    if (err != REDIS_ERR_IO || errstr == NULL)
        return 0;
    /* EWOULDBLOCK is EAGAIN on Linux, not everywhere. */
    return strcmp(errstr, strerror(EAGAIN)) == 0 || strcmp(errstr, strerror(EWOULDBLOCK)) == 0 ||
           strcmp(errstr, strerror(ETIMEDOUT)) == 0;
}

void dial_append(char *buf, size_t cap, const char *fmt, ...)
{
    if (cap < 4)
        return;
    size_t used = strnlen(buf, cap - 1);
    buf[used] = '\0';
    if (used + 1 >= cap)
        return;                 /* already full (and cut) */
    if (used > 0) {
        snprintf(buf + used, cap - used, "; ");
        used = strlen(buf);
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + used, cap - used, fmt, ap);
    va_end(ap);
    if (n < 0)
        buf[used] = '\0';
    else if ((size_t)n >= cap - used)
        memcpy(buf + cap - 4, "...", 4);
}

const char *dial_format_addr(char *buf, size_t cap, const char *host, int port)
{
    snprintf(buf, cap, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    return buf;
}

const char *dial_lost(const redisContext *c, int timeout_ms, char *buf, size_t cap)
{
    if (dial_is_timeout(c->err, c->errstr))
        snprintf(buf, cap, "no reply within %d ms", timeout_ms);
    else
        snprintf(buf, cap, "%s", c->err ? c->errstr : "connection lost");
    return buf;
}

int dial_set_timeout(redisContext *c, int ms)
{
    return redisSetTimeout(c, tv_of(ms)) == REDIS_OK ? 0 : -1;
}

/* A Cluster redirection: an error reply whose command was not run. */
static int redirects(const redisReply *r)
{
    struct cluster_redirect to;
    return cluster_parse_error(r->str, r->len, "", &to) != CLUSTER_OTHER;
}

int dial_wrong_server(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR && r->str != NULL &&
           (sentinel_wrong_server(r->str, r->len) || redirects(r));
}

int dial_check_reply(redisContext *c, const redisReply *r)
{
    if (!dial_wrong_server(r))
        return 0;
    c->err = REDIS_ERR_OTHER;
    snprintf(c->errstr, sizeof c->errstr, "%s: %.*s",
             redirects(r) ? "the cluster redirects" : "not the master any more",
             (int)(r->len > 80 ? 80 : r->len), r->str);
    return 1;
}

int dial_uses_sentinel(const struct dial *d)
{
    return d->sentinels.n > 0;
}

int dial_uses_cluster(const struct dial *d)
{
    return d->seeds.n > 0;
}

int dial_init(struct dial *d, const struct dial_options *o, char *err, size_t errlen)
{
    char why[200];
    memset(d, 0, sizeof *d);
    d->o = *o;
    if (d->o.host == NULL || d->o.host[0] == '\0')
        d->o.host = "127.0.0.1";
    if (d->o.port <= 0)
        d->o.port = 6379;
    if (d->o.unix_path != NULL && d->o.unix_path[0] == '\0')
        d->o.unix_path = NULL;
    if (d->o.username != NULL && d->o.username[0] == '\0')
        d->o.username = NULL;
    if (d->o.sentinel_username != NULL && d->o.sentinel_username[0] == '\0')
        d->o.sentinel_username = NULL;
    if (d->o.connect_timeout_ms <= 0)
        d->o.connect_timeout_ms = DIAL_CONNECT_TIMEOUT_MS;
    if (d->o.reply_timeout_ms <= 0)
        d->o.reply_timeout_ms = DIAL_REPLY_TIMEOUT_MS;
    if (sentinel_parse_list(&d->sentinels, o->sentinels ? o->sentinels : "", why, sizeof why) != 0) {
        snprintf(err, errlen, "sentinels: %s", why);
        return -1;
    }
    if (sentinel_parse_list(&d->seeds, o->cluster_seeds ? o->cluster_seeds : "", why,
                            sizeof why) != 0) {
        snprintf(err, errlen, "cluster seeds: %s", why);
        return -1;
    }
    if (d->seeds.n > 0 && d->sentinels.n > 0) {
        snprintf(err, errlen, "cluster seeds and sentinels exclude each other");
        return -1;
    }
    if (d->sentinels.n > 0 && (o->sentinel_master == NULL || o->sentinel_master[0] == '\0')) {
        snprintf(err, errlen, "sentinels without the master's name: the sentinels know the"
                 " master by a name (sentinel monitor <name> ...)");
        return -1;
    }
    return 0;
}

/*
 * A connection within connect_ms whose commands time out after reply_ms,
 * or NULL with the reason in why.
 */
static redisContext *connect_to(const char *host, int port, const char *path, int connect_ms,
                                int reply_ms, char *why, size_t cap)
{
    redisContext *c = path ? redisConnectUnixWithTimeout(path, tv_of(connect_ms))
                           : redisConnectWithTimeout(host, port, tv_of(connect_ms));
    if (c == NULL) {
        snprintf(why, cap, "out of memory");
        return NULL;
    }
    if (c->err) {
        if (dial_is_timeout(c->err, c->errstr))
            snprintf(why, cap, "not connected within %d ms", connect_ms);
        else
            snprintf(why, cap, "%s", c->errstr);
        redisFree(c);
        return NULL;
    }
    if (dial_set_timeout(c, reply_ms) != 0) {
        snprintf(why, cap, "cannot set the reply timeout: %s", c->errstr);
        redisFree(c);
        return NULL;
    }
    return c;
}

/*
 * AUTH, ROLE (check_role), SELECT and CLIENT SETNAME, as many as apply, in
 * one round trip: a refused AUTH is said, never the NOAUTH replies behind
 * it. 0; or -1 with the reason in err and d->failed, and *role filled when
 * the only trouble is that the server is not a master.
 */
static int handshake(struct dial *d, redisContext *c, const char *at, const char *name,
                     int check_role, char *err, size_t errlen, char *role, size_t rolecap)
{
    const char *what[4];
    int n = 0, unsent = 0;
    if (d->o.password != NULL) {
        if (d->o.username != NULL)
            unsent |= redisAppendCommand(c, "AUTH %s %s", d->o.username, d->o.password);
        else
            unsent |= redisAppendCommand(c, "AUTH %s", d->o.password);
        what[n++] = "AUTH";
    }
    if (check_role) {
        unsent |= redisAppendCommand(c, "ROLE");
        what[n++] = "ROLE";
    }
    if (d->o.db != 0) {
        unsent |= redisAppendCommand(c, "SELECT %d", d->o.db);
        what[n++] = "SELECT";
    }
    if (name != NULL) {
        unsent |= redisAppendCommand(c, "CLIENT SETNAME %s", name);
        what[n++] = "CLIENT SETNAME";
    }
    if (unsent != REDIS_OK) {   /* REDIS_ERR is -1: any failure shows */
        d->failed = DIAL_UNREACHABLE;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        char lost[200];
        if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
            d->failed = DIAL_UNREACHABLE;
            /* Not a refusal (no advice about passwords follows): Redis, or a
             * TLS sidecar that could not verify Redis, closed the connection. */
            snprintf(err, errlen, "Redis connection lost: %s (%s, before it answered %s)",
                     dial_lost(c, d->o.connect_timeout_ms, lost, sizeof lost), at, what[i]);
            return -1;
        }
        int ok = r->type != REDIS_REPLY_ERROR;
        if (!ok) {
            d->failed = strcmp(what[i], "AUTH") == 0 ? DIAL_AUTH_REFUSED : DIAL_REFUSED;
            snprintf(err, errlen, "Redis refused %s: %s", what[i], r->str);
        } else if (strcmp(what[i], "ROLE") == 0) {
            const redisReply *first = r->type == REDIS_REPLY_ARRAY && r->elements > 0
                                          ? r->element[0] : NULL;
            if (first == NULL || (first->type != REDIS_REPLY_STRING &&
                                  first->type != REDIS_REPLY_STATUS)) {
                d->failed = DIAL_REFUSED;
                snprintf(err, errlen, "Redis at %s answered ROLE with something else than a"
                         " role", at);
                ok = 0;
            } else if (!sentinel_is_master_role(first->str, first->len)) {
                d->failed = DIAL_UNREACHABLE;
                snprintf(role, rolecap, "%.*s", (int)(first->len > 20 ? 20 : first->len),
                         first->str);
                snprintf(err, errlen, "Redis at %s is a %s, not a master", at, role);
                ok = 0;
            }
        }
        freeReplyObject(r);
        if (!ok)
            return -1;
    }
    return 0;
}

/*
 * Sends the question (after AUTH when auth) on c, a connection to the
 * sentinel at `at`, and reads the answers: 1 with *m filled, or 0 with what
 * went wrong appended to why.
 */
static int ask_on(struct dial *d, redisContext *c, const char *at, int auth,
                  struct sentinel_addr *m, char *why, size_t cap)
{
    const int ms = d->o.connect_timeout_ms;
    const char *ask = "SENTINEL get-master-addr-by-name";
    char reason[300];
    int n = 0, found = 0, unsent = 0;
    if (auth) {
        if (d->o.sentinel_username != NULL)
            unsent |= redisAppendCommand(c, "AUTH %s %s", d->o.sentinel_username,
                                         d->o.sentinel_password);
        else
            unsent |= redisAppendCommand(c, "AUTH %s", d->o.sentinel_password);
        n++;
    }
    unsent |= redisAppendCommand(c, "SENTINEL get-master-addr-by-name %s", d->o.sentinel_master);
    n++;
    if (unsent != REDIS_OK) {
        dial_append(why, cap, "sentinel %s: out of memory", at);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        int last = i == n - 1;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
            dial_append(why, cap, "sentinel %s: %s", at, dial_lost(c, ms, reason, sizeof reason));
            return 0;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            dial_append(why, cap, "sentinel %s refused %s: %s", at, last ? ask : "AUTH", r->str);
            freeReplyObject(r);
            return 0;
        }
        if (last && r->type == REDIS_REPLY_NIL) {
            dial_append(why, cap, "sentinel %s: master '%s' unknown", at, d->o.sentinel_master);
        } else if (last) {
            const char *elem[2] = { NULL, NULL };
            size_t len[2] = { 0, 0 };
            int parsed = -1;
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                r->element[0]->type == REDIS_REPLY_STRING &&
                r->element[1]->type == REDIS_REPLY_STRING) {
                for (int k = 0; k < 2; k++) {
                    elem[k] = r->element[k]->str;
                    len[k] = r->element[k]->len;
                }
                parsed = sentinel_parse_master(elem, len, 2, m);
            }
            if (parsed == 1)
                found = 1;
            else
                dial_append(why, cap, "sentinel %s: unexpected reply to %s", at, ask);
        }
        freeReplyObject(r);
    }
    return found;
}

/*
 * Asks one sentinel where the master is (connect and replies within
 * connect_timeout_ms): 1 with *m filled, or 0 with what went wrong appended
 * to why. With keep, the connection is handed over there when it answered,
 * else closed.
 */
static int ask_sentinel(struct dial *d, const struct sentinel_addr *s, struct sentinel_addr *m,
                        char *why, size_t cap, redisContext **keep)
{
    const int ms = d->o.connect_timeout_ms;
    char at[DIAL_ADDR_MAX], reason[300];
    dial_format_addr(at, sizeof at, s->host, s->port);
    redisContext *c = connect_to(s->host, s->port, NULL, ms, ms, reason, sizeof reason);
    if (c == NULL) {
        dial_append(why, cap, "sentinel %s: %s", at, reason);
        return 0;
    }
    int found = ask_on(d, c, at, d->o.sentinel_password != NULL, m, why, cap);
    if (found && keep != NULL)
        *keep = c;
    else
        redisFree(c);
    return found;
}

int dial_locate(struct dial *d, struct dial_watch *wt, char *addr, size_t cap, char *err,
                size_t errlen)
{
    struct sentinel_addr m;
    char why[1024] = "";
    if (wt->c != NULL) {
        if (ask_on(d, wt->c, wt->at, 0, &m, why, sizeof why)) {
            dial_format_addr(addr, cap, m.host, m.port);
            return 1;
        }
        dial_watch_close(wt);   /* the next look asks the next sentinel */
        wt->next++;
    } else if (d->sentinels.n > 0) {
        int i = wt->next % d->sentinels.n;
        if (ask_sentinel(d, &d->sentinels.at[i], &m, why, sizeof why, &wt->c)) {
            dial_format_addr(wt->at, sizeof wt->at, d->sentinels.at[i].host,
                             d->sentinels.at[i].port);
            sentinel_answered(&d->sentinels, i);
            wt->next = 0;
            dial_format_addr(addr, cap, m.host, m.port);
            return 1;
        }
        wt->next = i + 1;
    }
    snprintf(err, errlen, "no sentinel said where master '%s' is: %s", d->o.sentinel_master,
             why[0] ? why : "no sentinels");
    return 0;
}

void dial_watch_close(struct dial_watch *wt)
{
    if (wt->c != NULL)
        redisFree(wt->c);
    wt->c = NULL;
    wt->at[0] = '\0';
}

/* After the handshake (answered within connect_timeout_ms: a connection is
 * made when it is usable), the commands' own timeout. */
static int replies_timed(struct dial *d, redisContext *c, char *err, size_t errlen)
{
    if (dial_set_timeout(c, d->o.reply_timeout_ms) == 0)
        return 0;
    snprintf(err, errlen, "cannot set the reply timeout: %s", c->errstr);
    return -1;
}

static redisContext *dial_direct(struct dial *d, const char *name, char *err, size_t errlen)
{
    char at[DIAL_ADDR_MAX], why[300];
    if (d->o.unix_path != NULL)
        snprintf(at, sizeof at, "%s", d->o.unix_path);
    else
        dial_format_addr(at, sizeof at, d->o.host, d->o.port);
    redisContext *c = connect_to(d->o.host, d->o.port, d->o.unix_path, d->o.connect_timeout_ms,
                                 d->o.connect_timeout_ms, why, sizeof why);
    if (c == NULL) {
        d->failed = DIAL_UNREACHABLE;
        snprintf(err, errlen, "cannot reach Redis at %s: %s", at, why);
        return NULL;
    }
    if (handshake(d, c, at, name, 0, err, errlen, why, sizeof why) != 0 ||
        replies_timed(d, c, err, errlen) != 0) {
        redisFree(c);
        return NULL;
    }
    snprintf(d->addr, sizeof d->addr, "%s", at);
    snprintf(d->via, sizeof d->via, "%s", d->o.unix_path ? "redis.unix" : "redis.host");
    return c;
}

/*
 * Asks the seed node s (connect and replies within connect_timeout_ms, AUTH
 * with Redis's credentials) who serves the slots, and looks up d->slot:
 * 1 with its master in *m; 0 with what went wrong appended to why, and
 * *unserved set when the seed answered but names nobody for the slot.
 */
static int ask_seed(struct dial *d, const struct sentinel_addr *s, struct sentinel_addr *m,
                    int *unserved, char *why, size_t cap)
{
    const int ms = d->o.connect_timeout_ms;
    char at[DIAL_ADDR_MAX], reason[300];
    int n = 0, found = 0, unsent = 0;
    dial_format_addr(at, sizeof at, s->host, s->port);
    redisContext *c = connect_to(s->host, s->port, NULL, ms, ms, reason, sizeof reason);
    if (c == NULL) {
        dial_append(why, cap, "seed %s: %s", at, reason);
        return 0;
    }
    if (d->o.password != NULL) {
        if (d->o.username != NULL)
            unsent |= redisAppendCommand(c, "AUTH %s %s", d->o.username, d->o.password);
        else
            unsent |= redisAppendCommand(c, "AUTH %s", d->o.password);
        n++;
    }
    unsent |= redisAppendCommand(c, "CLUSTER SLOTS");
    n++;
    if (unsent != REDIS_OK) {
        dial_append(why, cap, "seed %s: out of memory", at);
        redisFree(c);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        int last = i == n - 1;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
            dial_append(why, cap, "seed %s: %s", at, dial_lost(c, ms, reason, sizeof reason));
            break;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            dial_append(why, cap, "seed %s refused %s: %s", at, last ? "CLUSTER SLOTS" : "AUTH",
                        r->str);
            freeReplyObject(r);
            break;
        }
        if (last) {
            struct cluster_map map = { NULL, 0 };
            const struct sentinel_addr *a;
            if (cluster_map_parse(&map, r, s->host, reason, sizeof reason) != 0) {
                dial_append(why, cap, "seed %s: CLUSTER SLOTS: %s", at, reason);
            } else if ((a = cluster_map_master(&map, d->slot)) == NULL) {
                dial_append(why, cap, "seed %s: nobody serves slot %u", at, d->slot);
                *unserved = 1;
            } else {
                *m = *a;
                found = 1;
            }
            cluster_map_free(&map);
        }
        freeReplyObject(r);
    }
    redisFree(c);
    return found;
}

/*
 * Where the master is: the sentinels', or with Cluster the seeds', answer
 * (each asked in turn; the one that answered goes to the front). 0 with *m,
 * and who named it in named ("master 'slotd' by sentinel 10.0.0.1:26379",
 * "master of slot 866 by seed 10.0.0.1:7000") and in via (d->via's words);
 * or -1 with the reason in err.
 */
static int find_master(struct dial *d, struct sentinel_addr *m, char *named, char *via,
                       char *err, size_t errlen)
{
    char why[1024] = "", by[DIAL_ADDR_MAX];
    int from = -1, unserved = 0;
    int cluster = d->seeds.n > 0;
    struct sentinels *list = cluster ? &d->seeds : &d->sentinels;
    for (int i = 0; i < list->n && from < 0; i++)
        if (cluster ? ask_seed(d, &list->at[i], m, &unserved, why, sizeof why)
                    : ask_sentinel(d, &list->at[i], m, why, sizeof why, NULL))
            from = i;
    if (from < 0 && !cluster)
        snprintf(err, errlen, "no sentinel named master '%s': %s", d->o.sentinel_master, why);
    else if (from < 0 && unserved)  /* as a discovery that failed: the caller tries again */
        snprintf(err, errlen, "no master serves slot %u (CLUSTERDOWN?): %s", d->slot, why);
    else if (from < 0)
        snprintf(err, errlen, "no cluster seed answered for slot %u: %s", d->slot, why);
    if (from < 0)
        return -1;
    sentinel_answered(list, from);
    dial_format_addr(by, sizeof by, list->at[0].host, list->at[0].port);
    if (cluster) {
        snprintf(named, DIAL_VIA_MAX, "master of slot %u by seed %s", d->slot, by);
        snprintf(via, DIAL_VIA_MAX, "cluster %s (slot %u)", by, d->slot);
    } else {
        snprintf(named, DIAL_VIA_MAX, "master '%s' by sentinel %s", d->o.sentinel_master, by);
        snprintf(via, DIAL_VIA_MAX, "sentinel %s (name %s)", by, d->o.sentinel_master);
    }
    return 0;
}

redisContext *dial_connect(struct dial *d, const char *name, char *err, size_t errlen)
{
    char why[1024], at[DIAL_ADDR_MAX] = "", role[32] = "";
    char named[DIAL_VIA_MAX] = "", via[DIAL_VIA_MAX];

    d->failed = DIAL_UNREACHABLE;
    if (d->sentinels.n == 0 && d->seeds.n == 0)
        return dial_direct(d, name, err, errlen);
    for (int round = 0; round < DIAL_ROUNDS; round++) {
        struct sentinel_addr m;
        if (round > 0)
            pause_ms(DIAL_PAUSE_MS);
        if (find_master(d, &m, named, via, err, errlen) != 0) {
            d->failed = DIAL_UNREACHABLE;
            return NULL;
        }
        dial_format_addr(at, sizeof at, m.host, m.port);
        redisContext *c = connect_to(m.host, m.port, NULL, d->o.connect_timeout_ms,
                                     d->o.connect_timeout_ms, why, sizeof why);
        if (c == NULL) {
            d->failed = DIAL_UNREACHABLE;
            snprintf(err, errlen, "cannot reach Redis at %s (%s): %s", at, named, why);
            return NULL;
        }
        role[0] = '\0';
        if (handshake(d, c, at, name, 1, err, errlen, role, sizeof role) == 0 &&
            replies_timed(d, c, err, errlen) == 0) {
            snprintf(d->addr, sizeof d->addr, "%s", at);
            snprintf(d->via, sizeof d->via, "%s", via);
            return c;
        }
        redisFree(c);
        if (role[0] == '\0')
            return NULL;        /* refused, or lost: err says which */
        /* Named but not a master: the sentinels (or the seed) have not caught
         * up with a failover yet (or were told wrong). Ask again, a little
         * later. */
    }
    d->failed = DIAL_UNREACHABLE;
    snprintf(err, errlen, "%s, named %s, is a %s, not a master (asked %d times)", at, named, role,
             DIAL_ROUNDS);
    return NULL;
}
