/*
 * dispatch: the intake pipeline. One peek runs ahead of the transaction in
 * flight, so Redis reads the next batch while slotd routes the previous one:
 *
 *   main connection:  [LRANGE b2 past b1] [MULTI..b1..EXEC] [LRANGE b3 past b2] [MULTI..b2..EXEC] ...
 *
 * Offsets: a peek skips exactly the batch whose transaction is sent after it
 * (the one in hand), since every command on the connection runs in order.
 * Only one transaction is in flight at a time: if Redis refused one (OOM,
 * BUSY), a second one already queued behind it would trim elements it never
 * peeked. A refusal drops the batch in hand and the peek ahead (their offsets
 * assumed the trim) and peeks again from the tail.
 *
 * When the intake is empty, the wait connection blocks in
 * BLMOVE intake intake RIGHT RIGHT, which returns on the first push and
 * leaves the list as it was; then peeking resumes. No polling.
 */
#include "dispatch.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "backoff.h"
#include "clock.h"
#include "ctx.h"
#include "deadletter.h"
#include "episode.h"
#include "forward.h"
#include "log.h"
#include "lease.h"
#include "members.h"
#include "route.h"
#include "scripts.h"

#define WAIT_BLOCK_SECONDS "5"      /* the blocking wait re-arms this often */
#define WAIT_BLOCK_MS      5000     /* the same, for the connection's watchdog */
#define REFUSED_RETRY_MS   200      /* first retry after a refusal, doubling ... */
#define REFUSED_RETRY_MAX  2000     /* ... up to this */
#define DEAD_BUCKET        SLOTMAP_NOBODY

static void on_peek(redisAsyncContext *ac, void *reply, void *privdata);
static void on_exec(redisAsyncContext *ac, void *reply, void *privdata);
static void on_queued(redisAsyncContext *ac, void *reply, void *privdata);
static void on_wait(redisAsyncContext *ac, void *reply, void *privdata);
static void on_retry(evutil_socket_t fd, short what, void *arg);
static void pump(struct dispatch *d);
static int route_ready(struct dispatch *d);

/* One peeked batch, copied out of the reply (a reply dies with its callback). */
struct batch {
    char     *buf;          /* owned: the tasks' bytes, back to back */
    size_t    used, cap;
    size_t   *off;          /* owned: task i starts at buf + off[i] ... */
    size_t   *len;          /* owned: ... and has len[i] bytes; i = 0 is the oldest */
    uint32_t  n, cap_tasks;
    int       full;         /* the peek returned as many as it asked for */
};

struct dispatch {
    struct slotd *sd;           /* (ref) */
    unsigned      holds;        /* enum dispatch_hold bits */
    uintptr_t     gen;          /* replies of an older generation are stale */
    uintptr_t     txn_gen;      /* transactions sent before txn_out was last reset:
                                   their replies are not counted */
    int           peek_out;     /* a peek is in flight */
    int           txn_out;      /* transactions in flight (up to dispatch.inflight) */
    uint32_t      txn_n[2];     /* their batch sizes, oldest first */
    int           wait_out;     /* BLMOVE in flight on the wait connection */
    int           intake_empty; /* the last peek found nothing past the batch in hand */
    int           have_ready;   /* ready holds a batch whose transaction is not sent */
    uint32_t      peek_want;    /* how many the peek in flight asked for */
    struct batch  ready;
    /* Scratch for building a transaction, sized to the batch (owned). */
    uint16_t     *dest;         /* owner index per task, DEAD_BUCKET if dead */
    uint8_t      *why;          /* enum taskkey_result per task */
    size_t       *errat;        /* invalid JSON offset per task */
    uint32_t     *order;        /* task indices grouped by owner */
    uint32_t     *count;        /* per owner, then per owner's start */
    uint32_t      count_cap;
    const char  **argv;
    size_t       *argvlen;
    size_t        arg_cap;
    char         *scratch;      /* owned: decoded keys, max_task_bytes */
    int           routed;       /* dest/order/count hold the batch in hand's routing */
    uint64_t      routed_version; /* ... made with this version of the table */
    uint32_t      routed_nown, routed_ndead, routed_nfwd;
    uint32_t      txn_fwd[2];   /* tasks of other shards in the transactions in flight */
    uint32_t      txn_routed[2];    /* ... and tasks to workers: counted routed when sent,
                                       uncounted if not moved */
    char        (*fwd_key)[KEYS_NAME_MAX];  /* owned: {ns#i}:forward:<j> per shard j
                                               (NULL when not sharded) */
    size_t        scratch_cap;
    /* The commit script's arguments (owned, grown to the destinations). */
    const char  **cargv;
    size_t       *cargvlen;
    size_t        carg_cap;
    char        (*cnum)[24];    /* its numbers, as text */
    uint64_t      tail;         /* {ns}:tail's version after every transaction sent: the
                                   next expects it (scripts.h) */
    int           tail_empty;   /* {ns}:tail did not exist when last read */
    uint64_t      tail_known;   /* its version as the last reply (or the load) said */
    uint64_t      txn_ver[2];   /* the version each transaction in flight sets */
    int           resync;       /* a batch was not moved: none is sent until those
                                   behind it have answered (they fail too), and the
                                   next goes on from tail_known */
    struct event *retry;        /* owned: after a refused transaction */
    struct backoff retry_backoff;
    uint32_t      rnd;          /* jitter state */
#ifdef SLOTD_TESTING
    int           test_paused;  /* the test hook paused once already */
#endif
    struct episode refused;     /* batches not moved, for the log */
    char          problem[400]; /* why, while held with HOLD_REFUSED */
    char          said[160];    /* what the problem the log last said was about (a key) */
    char          queued_err[200];  /* the first command refused while queued in the
                                       transaction in flight (why EXEC aborts it) */
};

static int grow(void **p, size_t *cap, size_t want, size_t elem)
{
    if (want <= *cap)
        return 0;
    void *q = realloc(*p, want * elem);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = want;
    return 0;
}

static int reserve(struct dispatch *d)
{
    const struct conf *cf = &d->sd->conf;
    size_t tasks = (size_t)cf->dispatch.batch;
    size_t c;

    c = d->arg_cap;
    if (grow((void **)&d->argv, &c, tasks + 3, sizeof *d->argv) != 0)
        return -1;
    c = d->arg_cap;
    if (grow((void **)&d->argvlen, &c, tasks + 3, sizeof *d->argvlen) != 0)
        return -1;
    c = d->arg_cap;
    if (grow((void **)&d->dest, &c, tasks + 3, sizeof *d->dest) != 0)
        return -1;
    c = d->arg_cap;
    if (grow((void **)&d->why, &c, tasks + 3, sizeof *d->why) != 0)
        return -1;
    c = d->arg_cap;
    if (grow((void **)&d->errat, &c, tasks + 3, sizeof *d->errat) != 0)
        return -1;
    c = d->arg_cap;
    if (grow((void **)&d->order, &c, tasks + 3, sizeof *d->order) != 0)
        return -1;
    d->arg_cap = c;
    size_t sc = d->scratch_cap;
    if (grow((void **)&d->scratch, &sc, (size_t)cf->dispatch.max_task_bytes, 1) != 0)
        return -1;
    d->scratch_cap = sc;
    return 0;
}

struct dispatch *dispatch_create(struct slotd *sd)
{
    struct dispatch *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->sd = sd;
    d->holds = HOLD_LOADING;
    d->rnd = 2463534242u;
    backoff_init(&d->retry_backoff, REFUSED_RETRY_MS, REFUSED_RETRY_MAX);
    d->retry = evtimer_new(sd->base, on_retry, d);
    if (sd->keys.nshards > 1) {
        d->fwd_key = calloc((size_t)sd->keys.nshards, sizeof *d->fwd_key);
        for (int j = 0; d->fwd_key != NULL && j < sd->keys.nshards; j++)
            keys_forward(&sd->keys, j, d->fwd_key[j], sizeof d->fwd_key[j]);
    }
    if (d->retry == NULL || reserve(d) != 0 || (sd->keys.nshards > 1 && d->fwd_key == NULL)) {
        dispatch_destroy(d);
        return NULL;
    }
    return d;
}

void dispatch_destroy(struct dispatch *d)
{
    if (d == NULL)
        return;
    if (d->retry)
        event_free(d->retry);
    free(d->ready.buf);
    free(d->ready.off);
    free(d->ready.len);
    free(d->dest);
    free(d->why);
    free(d->errat);
    free(d->order);
    free(d->count);
    free(d->argv);
    free(d->argvlen);
    free(d->scratch);
    free(d->cargv);
    free(d->cargvlen);
    free(d->cnum);
    free(d->fwd_key);
    free(d);
}

static const char *hold_text(unsigned bit)
{
#define HOLD_TEXT(e, b, text) if (bit == (b)) return text;
    DISPATCH_HOLDS(HOLD_TEXT)
#undef HOLD_TEXT
    return "?";
}

/* Forget the batch in hand and every reply still due: used whenever the
 * intake's tail may no longer be what they assumed. */
static void drop_in_hand(struct dispatch *d)
{
    d->gen++;
    d->peek_out = 0;
    d->have_ready = 0;
    d->routed = 0;
    d->ready.n = 0;
    d->ready.used = 0;
    d->intake_empty = 0;
}

void dispatch_on_main_up(struct dispatch *d)
{
    drop_in_hand(d);
    d->txn_out = 0;
    d->txn_gen++;
    d->resync = 0;
    /* Membership starts over from loading: a change cut off by the lost
     * connection (its EXEC run or not) does not hold dispatch any more. */
    d->holds &= ~(unsigned)HOLD_MEMBERSHIP;
    d->holds |= HOLD_LOADING;
}

void dispatch_on_main_down(struct dispatch *d)
{
    /* A transaction in flight either ran whole or not at all; the next peek
     * from the tail sees which. */
    drop_in_hand(d);
    d->txn_out = 0;
    d->txn_gen++;
    d->resync = 0;
    d->wait_out = 0;
    d->sd->events.idle(d->sd);
}

void dispatch_on_wait_down(struct dispatch *d)
{
    d->wait_out = 0;
    d->intake_empty = 0;
    pump(d);
}

void dispatch_hold(struct dispatch *d, enum dispatch_hold why)
{
    if (!(d->holds & why))
        log_debug("dispatch held: %s", hold_text(why));
    d->holds |= why;
    drop_in_hand(d);
}

void dispatch_release(struct dispatch *d, enum dispatch_hold why)
{
    if (d->holds & why)
        log_debug("dispatch released: %s", hold_text(why));
    d->holds &= ~(unsigned)why;
    pump(d);
}

unsigned dispatch_holds(const struct dispatch *d) { return d->holds; }

const char *dispatch_hold_reason(const struct dispatch *d)
{
    for (unsigned bit = 1; bit <= HOLD_STANDBY; bit <<= 1)
        if (d->holds & bit)
            return bit == HOLD_REFUSED && d->problem[0] ? d->problem : hold_text(bit);
    return NULL;
}

void dispatch_set_tail(struct dispatch *d, uint64_t tail, int empty)
{
    d->tail = d->tail_known = tail;
    d->tail_empty = empty;
}

uint64_t dispatch_tail(const struct dispatch *d) { return d->tail; }

void dispatch_tail_values(const struct dispatch *d, char *expected, char *next, size_t cap)
{
    const char *token = lease_token(d->sd->lease);
    if (d->tail_empty)
        expected[0] = '\0';
    else
        scripts_tail_format(expected, cap, token, d->tail);
    scripts_tail_format(next, cap, token, d->tail + 1);
}

/*
 * Redis would not move a batch (or let slotd peek): say so, once per
 * episode (episode.h), hold, and try again after a backoff. Nothing was
 * moved, so nothing is lost: the intake still holds the batch.
 */
static void refused(struct dispatch *d, const char *about, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void refused(struct dispatch *d, const char *about, const char *fmt, ...)
{
    va_list ap;
    uint64_t repeats = 0;
    va_start(ap, fmt);
    vsnprintf(d->problem, sizeof d->problem, fmt, ap);
    va_end(ap);
    d->sd->stats.txn_failures++;
    uint64_t now = clock_mono_ms();
    enum episode_say say = episode_hit(&d->refused, now, 0, &repeats);
    if (say == EPISODE_QUIET && strcmp(about, d->said) != 0)
        say = EPISODE_FIRST;        /* another problem: news */
    if (say == EPISODE_FIRST)
        log_error("dispatch held: %s; slotd retries on its own", d->problem);
    else if (say == EPISODE_AGAIN)
        log_error("dispatch still held: %s (%" PRIu64 " refusals in the last minute)",
                  d->problem, repeats);
    if (say != EPISODE_QUIET)
        snprintf(d->said, sizeof d->said, "%s", about);
    dispatch_hold(d, HOLD_REFUSED);
    uint32_t ms = backoff_next(&d->retry_backoff, d->rnd = d->rnd * 1664525u + 1013904223u);
    struct timeval tv = { ms / 1000, (long)(ms % 1000) * 1000 };
    evtimer_add(d->retry, &tv);
}

/* A batch moved: a refusal episode, if any, is over. */
static void resumed(struct dispatch *d)
{
    uint64_t lasted = 0, total = 0;
    backoff_reset(&d->retry_backoff);
    if (episode_end(&d->refused, clock_mono_ms(), &lasted, &total))
        log_info("dispatch resumed after %.1f s (%" PRIu64 " attempts refused)",
                 (double)lasted / 1000.0, total);
    d->problem[0] = '\0';
    d->said[0] = '\0';
}
int dispatch_busy(const struct dispatch *d) { return d->txn_out > 0; }

void dispatch_reconfigure(struct dispatch *d)
{
    drop_in_hand(d);    /* routed under the old rules: peek it again */
    if (reserve(d) != 0)
        log_error("dispatch: out of memory resizing for the new configuration");
}

static void send_peek(struct dispatch *d, uint32_t offset)
{
    char from[32], to[32];
    uint32_t want = (uint32_t)d->sd->conf.dispatch.batch;
    snprintf(from, sizeof from, "-%" PRIu32, offset + want);
    snprintf(to, sizeof to, "-%" PRIu32, offset + 1);
    const char *argv[] = { "LRANGE", d->sd->keys.intake, from, to };
    if (conn_command(&d->sd->main, on_peek, (void *)d->gen, 4, argv, NULL) == 0) {
        d->peek_out = 1;
        d->peek_want = want;
    }
}

static int batch_add(struct batch *b, const char *p, size_t n)
{
    if (b->n == b->cap_tasks) {
        uint32_t nc = b->cap_tasks ? b->cap_tasks * 2 : 1024;
        size_t *o = realloc(b->off, nc * sizeof *o);
        if (o == NULL)
            return -1;
        b->off = o;
        size_t *l = realloc(b->len, nc * sizeof *l);
        if (l == NULL)
            return -1;
        b->len = l;
        b->cap_tasks = nc;
    }
    if (b->used + n > b->cap) {
        size_t nc = b->cap ? b->cap : 65536;
        while (nc < b->used + n)
            nc *= 2;
        char *q = realloc(b->buf, nc);
        if (q == NULL)
            return -1;
        b->buf = q;
        b->cap = nc;
    }
    if (n > 0)
        memcpy(b->buf + b->used, p, n);
    b->off[b->n] = b->used;
    b->len[b->n] = n;
    b->used += n;
    b->n++;
    return 0;
}

static void on_peek(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct dispatch *d = ((struct slotd *)conn_of(ac)->arg)->dispatch;
    redisReply *r = reply;

    if ((uintptr_t)privdata != d->gen || r == NULL)
        return;         /* stale, or lost: on_main_down reset everything */
    d->peek_out = 0;
    if (r->type != REDIS_REPLY_ARRAY) {
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) == 0)
            refused(d, d->sd->keys.intake, "%s is not a list, so slotd cannot take tasks from it"
                    " (look at it with TYPE, then RENAME or DEL it)", d->sd->keys.intake);
        else
            refused(d, "read", "Redis refused to read %s: %s", d->sd->keys.intake,
                    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        return;
    }
    if (r->elements == 0) {
        d->intake_empty = 1;
        pump(d);
        return;
    }
    struct batch *b = &d->ready;
    b->n = 0;
    b->used = 0;
    /* LRANGE lists head to tail: the last element is the oldest. */
    for (size_t i = r->elements; i-- > 0;) {
        redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING || batch_add(b, e->str, e->len) != 0) {
            log_error("dispatch: cannot take the batch (%s)",
                      e->type != REDIS_REPLY_STRING ? "not a string" : "out of memory");
            b->n = 0;
            conn_reset(&d->sd->main, "dispatch could not take a batch");
            return;
        }
    }
    b->full = r->elements >= d->peek_want;
    d->have_ready = 1;
    d->intake_empty = 0;
    d->routed = 0;
    /* Route now, while Redis executes the transaction in flight. */
    if (d->txn_out > 0 && members_table(d->sd->members)->map.nworkers > 0 && route_ready(d) != 0)
        d->routed = 0;
    pump(d);
}

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Routes the batch in hand and sends its transaction. 0, or -1 if the
 * connection failed mid-way (Redis discards a MULTI without EXEC). */
/* Routes the batch in hand: each task's owner (or the dead bucket), grouped
 * by owner in intake order. Done as soon as the batch is peeked, while Redis
 * still executes the previous transaction; any change of the table drops the
 * batch first (dispatch_hold), and the table version recorded here is checked again
 * before sending. 0, or -1 on ENOMEM. */
static int route_ready(struct dispatch *d)
{
    struct slotd *sd = d->sd;
    const struct table *t = members_table(sd->members);
    struct batch *b = &d->ready;
    struct route_rules rules;
    /* Destinations: the owners' queues, then the fenced lists (members.h),
     * then, in a namespace of shards, one list per shard for the tasks of
     * other shards (forward.h). */
    const struct keys *k = &sd->keys;
    uint32_t nfwdlists = k->nshards > 1 ? (uint32_t)k->nshards : 0;
    uint32_t nown = t->ndest + nfwdlists, ndead = 0, nfwd = 0;
    size_t cc = d->count_cap;

    route_rules_of(&rules, &sd->conf);
    if (grow((void **)&d->count, &cc, (size_t)nown + 2, sizeof *d->count) != 0 ||
        reserve(d) != 0 || b->n + 3 > d->arg_cap)
        return -1;
    d->count_cap = (uint32_t)cc;
    memset(d->count, 0, ((size_t)nown + 2) * sizeof *d->count);

    /* Route; count per owner (the dead bucket is index nown). */
    for (uint32_t i = 0; i < b->n; i++) {
        unsigned slot = 0;
        size_t at = 0;
        enum taskkey_result why = route_task(&rules, b->buf + b->off[i], b->len[i],
                                             d->scratch, &slot, &at);
        unsigned owner = why == TASKKEY_OK ? table_dest(t, slot) : SLOTMAP_NOBODY;
        if (why == TASKKEY_OK && nfwdlists > 0) {
            int shard = keys_shard_of(slot, k->nshards);
            if (shard != k->shard) {
                owner = t->ndest + (unsigned)shard;
                nfwd++;
            }
        }
        d->why[i] = (uint8_t)why;
        d->errat[i] = at;
        if (owner == SLOTMAP_NOBODY) {
            d->dest[i] = DEAD_BUCKET;
            d->count[nown]++;
            ndead++;
        } else {
            d->dest[i] = (uint16_t)owner;
            d->count[owner]++;
        }
    }
    /* Stable counting sort: each owner's tasks keep intake order. */
    uint32_t pos = 0;
    for (uint32_t o = 0; o <= nown; o++) {
        uint32_t c = d->count[o];
        d->count[o] = pos;
        pos += c;
    }
    d->count[nown + 1] = pos;
    for (uint32_t i = 0; i < b->n; i++) {
        uint32_t o = d->dest[i] == DEAD_BUCKET ? nown : d->dest[i];
        d->order[d->count[o]++] = i;
    }
    /* Now count[o] is the end of owner o's run; its start is count[o-1]. */
    d->routed = 1;
    d->routed_version = t->version;
    d->routed_nown = nown;
    d->routed_ndead = ndead;
    d->routed_nfwd = nfwd;
    return 0;
}

/* Room for the commit script's arguments with ndest destinations. */
static int reserve_commit(struct dispatch *d, uint32_t ndest)
{
    size_t want = 9 + 2 * (size_t)ndest, c = d->carg_cap;   /* 6 + keys, 3 + counts */
    if (grow((void **)&d->cargv, &c, want, sizeof *d->cargv) != 0)
        return -1;
    c = d->carg_cap;
    if (grow((void **)&d->cargvlen, &c, want, sizeof *d->cargvlen) != 0)
        return -1;
    c = d->carg_cap;
    if (grow((void **)&d->cnum, &c, want, sizeof *d->cnum) != 0)
        return -1;
    d->carg_cap = c;
    return 0;
}

/*
 * Sends the batch in hand as one transaction:
 *
 *   MULTI
 *   LPUSH <destination> <its tasks, in intake order>     (each destination)
 *   EVAL <scripts_commit> 2+k intake tail <destinations> <n> <tail> <counts>
 *   EXEC
 *
 * The script commits (trims the batch off the intake, bumps the tail
 * version) only if every destination took its push and the tail is the one
 * peeked; otherwise it pops the pushes back off: the batch moves whole or
 * not at all. 0, or -1 if the connection failed mid-way (Redis discards a
 * MULTI without EXEC).
 */
static int send_txn(struct dispatch *d)
{
    struct slotd *sd = d->sd;
    const struct table *t = members_table(sd->members);
    struct batch *b = &d->ready;

    /* Every new table (and so every new count of destinations) has a new
     * version: a batch routed with an older one is routed again. */
    if ((!d->routed || d->routed_version != t->version) &&
        route_ready(d) != 0)
        return -1;
    d->routed = 0;
    uint32_t nown = d->routed_nown, ndead = d->routed_ndead, nfwd = d->routed_nfwd;
    if (reserve_commit(d, nown + 1) != 0)
        return -1;
    /* The script's destinations: keys at 6.., their counts after n and the
     * tail's values. */
    uint32_t ndest = 0;
    const char **dkey = d->cargv + 6;
    size_t *dlen = d->cargvlen + 6;
    char (*dnum)[24] = d->cnum + 2;

    const char *multi[] = { "MULTI" };
    if (conn_command(&sd->main, NULL, NULL, 1, multi, NULL) != 0)
        return -1;
    uint32_t start = 0;
    for (uint32_t o = 0; o < nown; o++) {
        uint32_t end = d->count[o], k = 2;
        if (end == start)
            continue;
        const char *key = o < t->ndest ? t->queue[o] : d->fwd_key[o - t->ndest];
        size_t keylen = o < t->ndest ? t->queue_len[o] : strlen(key);
        d->argv[0] = "LPUSH";
        d->argvlen[0] = 5;
        d->argv[1] = key;
        d->argvlen[1] = keylen;
        for (uint32_t j = start; j < end; j++, k++) {
            uint32_t i = d->order[j];
            d->argv[k] = b->buf + b->off[i];
            d->argvlen[k] = b->len[i];
        }
        if (conn_command(&sd->main, on_queued, NULL, (int)k, d->argv, d->argvlen) != 0)
            return -1;
        dkey[ndest] = key;
        dlen[ndest] = keylen;
        snprintf(dnum[ndest], sizeof dnum[ndest], "%" PRIu32, end - start);
        ndest++;
        start = end;
    }
    if (ndead > 0) {
        /* Dead letters are rare: formatted one by one, freed once queued. */
        char **entries = calloc(ndead, sizeof *entries);
        uint32_t k = 2, ne = 0;
        int rc = -1;
        int64_t now = wall_ms();
        if (entries == NULL)
            return -1;
        d->argv[0] = "LPUSH";
        d->argvlen[0] = 5;
        d->argv[1] = sd->keys.dead;
        d->argvlen[1] = strlen(sd->keys.dead);
        for (uint32_t j = start; j < d->count[nown]; j++) {
            uint32_t i = d->order[j];
            enum taskkey_result why = d->why[i];
            char detail[160];
            size_t elen = 0;
            if (why == TASKKEY_INVALID_JSON)
                snprintf(detail, sizeof detail, "%s (at byte %zu)",
                         taskkey_result_text(why), d->errat[i]);
            else if (why == TASKKEY_OK)
                snprintf(detail, sizeof detail, "no owner for its slot");
            else
                snprintf(detail, sizeof detail, "%s", taskkey_result_text(why));
            entries[ne] = deadletter_format(taskkey_result_name(why), detail,
                                            b->buf + b->off[i], b->len[i], now, &elen);
            if (entries[ne] == NULL)
                goto dead_out;
            d->argv[k] = entries[ne];
            d->argvlen[k] = elen;
            ne++;
            k++;
            sd->stats.dead[why]++;
            log_info("dead letter: %s (%s), %zu bytes", taskkey_result_name(why),
                     detail, b->len[i]);
        }
        rc = conn_command(&sd->main, on_queued, NULL, (int)k, d->argv, d->argvlen);
dead_out:
        for (uint32_t j = 0; j < ne; j++)
            free(entries[j]);
        free(entries);
        if (rc != 0)
            return -1;
        dkey[ndest] = sd->keys.dead;
        dlen[ndest] = strlen(sd->keys.dead);
        snprintf(dnum[ndest], sizeof dnum[ndest], "%" PRIu32, ndead);
        ndest++;
    }
#ifdef SLOTD_TESTING
    /* Built only into the tests' slotd-testhooks: once, the transaction's
     * pushes reach Redis and then slotd stops for as long as
     * SLOTD_TEST_PAUSE_BEFORE_EXEC_MS says, before its commit and EXEC, as
     * a process stopped at the worst moment would (tests/integration/
     * test_lease.c). */
    {
        const char *ms = getenv("SLOTD_TEST_PAUSE_BEFORE_EXEC_MS");
        if (ms != NULL && atoi(ms) > 0 && !d->test_paused) {
            d->test_paused = 1;
            log_warn("test hook: pausing %s ms before the commit of a batch of %" PRIu32
                     " tasks", ms, b->n);
            for (int i = 0; i < 3 && sd->main.ac != NULL; i++)
                redisAsyncHandleWrite(sd->main.ac);     /* the pushes reach Redis */
            struct timespec pause = { atoi(ms) / 1000, (long)(atoi(ms) % 1000) * 1000000L };
            nanosleep(&pause, NULL);
        }
    }
#endif
    /* EVAL script numkeys intake tail moves dest... n expected next count... */
    const char **a = d->cargv;
    size_t *al = d->cargvlen;
    snprintf(d->cnum[0], sizeof d->cnum[0], "%" PRIu32, 3 + ndest);
    a[0] = "EVAL";
    a[1] = scripts_commit;
    a[2] = d->cnum[0];
    a[3] = sd->keys.intake;
    a[4] = sd->keys.tail;
    a[5] = sd->keys.leader_moves;
    for (uint32_t i = 0; i < 6; i++)
        al[i] = strlen(a[i]);
    /* The keys are in place (6 .. 6+ndest); then n, the tail's value expected
     * (with this slotd's epoch: the fence) and the next, the counts. */
    size_t at = 6 + ndest;
    char expected[SCRIPTS_TAIL_MAX], next[SCRIPTS_TAIL_MAX];
    dispatch_tail_values(d, expected, next, sizeof expected);
    snprintf(d->cnum[1], sizeof d->cnum[1], "%" PRIu32, b->n);
    a[at] = d->cnum[1];
    al[at++] = strlen(d->cnum[1]);
    a[at] = expected;
    al[at] = strlen(a[at]);
    at++;
    a[at] = next;
    al[at] = strlen(a[at]);
    at++;
    for (uint32_t i = 0; i < ndest; i++, at++) {
        a[at] = dnum[i];
        al[at] = strlen(dnum[i]);
    }
#ifdef SLOTD_BENCH_UNCHECKED
    /* Built only for make bench, to measure what the checks cost: the bare
     * trim, which a key of the wrong type can make a partial move. */
    char stop[32];
    snprintf(stop, sizeof stop, "-%" PRIu32, b->n + 1);
    const char *trim[] = { "LTRIM", sd->keys.intake, "0", stop };
    (void)at;
    if (conn_command(&sd->main, on_queued, NULL, 4, trim, NULL) != 0)
        return -1;
    d->tail--;          /* the bare trim sets no version */
#else
    if (conn_command(&sd->main, on_queued, NULL, (int)at, a, al) != 0)
        return -1;
#endif
    const char *exec[] = { "EXEC" };
    if (conn_command(&sd->main, on_exec, (void *)d->txn_gen, 1, exec, NULL) != 0)
        return -1;
    d->tail++;
    d->tail_empty = 0;
    d->txn_ver[d->txn_out] = d->tail;
    d->txn_fwd[d->txn_out] = nfwd;
    d->txn_routed[d->txn_out] = b->n - ndead - nfwd;
    d->txn_n[d->txn_out++] = b->n;
    sd->stats.routed += b->n - ndead - nfwd;
    return 0;
}

/* A command of the transaction queued, or refused at once (out of memory,
 * a read-only replica...): the first refusal says why EXEC aborts. */
static void on_queued(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct dispatch *d = ((struct slotd *)conn_of(ac)->arg)->dispatch;
    const redisReply *r = reply;
    (void)privdata;
    if (r != NULL && r->type == REDIS_REPLY_ERROR && d->queued_err[0] == '\0')
        snprintf(d->queued_err, sizeof d->queued_err, "%s", r->str);
}

/* Once every transaction sent has answered after one that was not moved,
 * the next goes on from the version Redis last gave. */
static void resynced(struct dispatch *d)
{
    if (d->resync && d->txn_out == 0) {
        d->resync = 0;
        d->tail = d->tail_known;
    }
}

/* The commit script's answer when it did not commit: {why, key, detail}. */
static void not_moved(struct dispatch *d, const redisReply *s, uint32_t n, int behind_failed)
{
    struct slotd *sd = d->sd;
    const char *why = "?", *key = "?";
    char detail[64] = "?";
    if (s->elements >= 3 && s->element[0]->type == REDIS_REPLY_STRING &&
        s->element[1]->type == REDIS_REPLY_STRING) {
        why = s->element[0]->str;
        key = s->element[1]->str;
        if (s->element[2]->type == REDIS_REPLY_STRING)
            snprintf(detail, sizeof detail, "%.60s", s->element[2]->str);
        else if (s->element[2]->type == REDIS_REPLY_INTEGER)
            snprintf(detail, sizeof detail, "%lld", s->element[2]->integer);
    }
    if (strcmp(why, "moved") == 0) {
        /* The tail's value is not the one expected: another slotd took the
         * lease (its epoch is in the value: the fence), or wrote first. */
        uint64_t v = 0;
        int ours = 0;
        const char *value = s->element[2]->type == REDIS_REPLY_STRING ? s->element[2]->str : "";
        if (scripts_tail_parse(value, strlen(value), lease_token(sd->lease), &v, &ours) != 0) {
            refused(d, key, "%s holds '%s', not an epoch and a version, so no batch can move"
                    " (DEL it: slotd starts it again); nothing was moved", key, detail);
            return;
        }
        if (!ours && value[0] != '\0') {
            char what[96];
            snprintf(what, sizeof what, "batch of %" PRIu32 " not moved", n);
            sd->stats.fenced++;
            lease_fenced(sd->lease, value, what);
            return;
        }
        d->tail_known = v;
        if (behind_failed)
            return;         /* the one before it was not moved: expected */
        /* Someone wrote the tail (an operator reset it?): look at the table
         * again before routing by it. */
        log_warn("the intake's tail changed under slotd (%s is now '%s'); the batch of %" PRIu32
                 " tasks was not moved; reading the slot table again", key, detail, n);
        members_reload(sd->members);
        return;
    }
    if (strcmp(why, "short") == 0) {
        refused(d, "short", "%s lost tasks between slotd's read and its move (only slotd may"
                " remove tasks from its tail: is something else trimming or deleting it?);"
                " nothing was moved", key);
        return;
    }
    if (strcmp(key, sd->keys.intake) == 0)
        refused(d, key, "%s is not a list, so slotd cannot take tasks from it (look at it with"
                " TYPE, then RENAME or DEL it)", key);
    else if (strcmp(key, sd->keys.tail) == 0)
        refused(d, key, "%s holds a %s, not a version number, so no batch can move (look at it"
                " with TYPE, then DEL it: slotd starts it again); nothing was moved", key, detail);
    else if (strcmp(key, sd->keys.leader_moves) == 0)
        refused(d, key, "%s holds a %s, which the lease cannot use, so no batch can move (look"
                " at it with TYPE, then DEL it); nothing was moved", key, detail);
    else
        refused(d, key, "%s holds a %s, not a list, so tasks cannot be pushed to it (look at it"
                " with TYPE, then RENAME or DEL it); nothing was moved (the tasks wait in the"
                " intake)", key, detail);
}

static void on_exec(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct dispatch *d = ((struct slotd *)conn_of(ac)->arg)->dispatch;
    struct slotd *sd = d->sd;
    redisReply *r = reply;

    /* Lost (the next peek shows whether it ran), or sent before this slotd
     * stood by and became active again (the table is read again since). */
    if (r == NULL || (uintptr_t)privdata != d->txn_gen)
        return;
    uint32_t n = d->txn_n[0], nfwd = d->txn_fwd[0], routed = d->txn_routed[0];
    d->txn_n[0] = d->txn_n[1];
    d->txn_fwd[0] = d->txn_fwd[1];
    d->txn_routed[0] = d->txn_routed[1];
    int behind_failed = d->resync;
    uint64_t ver = d->txn_ver[0];
    char queued_err[sizeof d->queued_err];
    snprintf(queued_err, sizeof queued_err, "%s", d->queued_err);
    d->queued_err[0] = '\0';
    --d->txn_out;
    const redisReply *s = r->type == REDIS_REPLY_ARRAY && r->elements > 0
                              ? r->element[r->elements - 1] : NULL;
#ifdef SLOTD_BENCH_UNCHECKED
    redisReply same = { .type = REDIS_REPLY_INTEGER, .integer = 1 };
    if (s != NULL && s->type == REDIS_REPLY_STATUS)
        s = &same;
#endif
    if (s == NULL || s->type != REDIS_REPLY_INTEGER) {
        /* Not moved: nothing of it ran (refused whole), or the script
         * popped its pushes back off. What was peeked past it assumed a
         * trim that never happened. */
        d->txn_ver[0] = d->txn_ver[1];
        sd->stats.routed -= routed;
        d->resync = 1;
        if (r->type != REDIS_REPLY_ARRAY)
            refused(d, "exec", "Redis refused a dispatch transaction of %" PRIu32 " tasks: %s",
                    n, queued_err[0] ? queued_err
                       : r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        else if (s != NULL && s->type == REDIS_REPLY_ARRAY)
            not_moved(d, s, n, behind_failed);
        else
            /* The script itself failed (a command it calls refused, as by
             * an ACL without it): its pushes may stand untrimmed. */
            refused(d, "script", "Redis refused dispatch's commit script: %s; the %" PRIu32 " tasks of the"
                    " batch may now be both in the intake and in the queues (delivered twice):"
                    " check the Redis user's ACL (docs/operations.md)",
                    s != NULL && s->type == REDIS_REPLY_ERROR ? s->str : "unexpected reply", n);
        drop_in_hand(d);            /* what was peeked past it assumed its trim */
        resynced(d);
        sd->events.idle(sd);
        pump(d);
        return;
    }
    d->tail_known = ver;
    d->txn_ver[0] = d->txn_ver[1];
    resynced(d);
    if (d->refused.active)
        resumed(d);
    sd->stats.txns++;
    sd->stats.batch_tasks += n;
    if (nfwd > 0) {
        sd->stats.to_forward += nfwd;
        forward_kick(sd->forward);
    }
    static const uint32_t bounds[] = STATS_BATCH_BOUNDS;
    uint32_t b = 0;
    while (b < sizeof bounds / sizeof bounds[0] && n > bounds[b])
        b++;
    sd->stats.batch_hist[b]++;
    sd->events.idle(sd);
    pump(d);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dispatch_release(arg, HOLD_REFUSED);
}

static void start_wait(struct dispatch *d)
{
    const char *argv[] = { "BLMOVE", d->sd->keys.intake, d->sd->keys.intake,
                           "RIGHT", "RIGHT", WAIT_BLOCK_SECONDS };
    if (conn_command_blocking(&d->sd->wait, WAIT_BLOCK_MS, on_wait, NULL, 6, argv, NULL) == 0)
        d->wait_out = 1;
    /* Without the wait connection the next peek happens when it comes back
     * (dispatch_on_wait_down clears intake_empty then). */
}

static void on_wait(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct dispatch *d = ((struct slotd *)conn_of(ac)->arg)->dispatch;
    redisReply *r = reply;

    (void)privdata;
    if (r == NULL)
        return;         /* dispatch_on_wait_down follows */
    d->wait_out = 0;
    d->intake_empty = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        /* Out of memory (BLMOVE may write), the intake of another type...:
         * held and retried with a backoff, never at once. */
        refused(d, "wait", "Redis refused the wait for tasks on %s: %s", d->sd->keys.intake,
                r->str);
        return;
    }
    pump(d);
}

/* The one place that decides what to send next. */
static void pump(struct dispatch *d)
{
    struct slotd *sd = d->sd;

    if (d->holds != 0 || sd->main.state != CONN_UP)
        return;
    /* After a batch that was not moved, none is sent until those behind it
     * have answered: their offsets and tail version assumed its commit. */
    int room = d->txn_out < sd->conf.dispatch.inflight && !d->resync;
    if (d->have_ready && room && members_table(sd->members)->map.nworkers == 0) {
        /* Never dead-letter a task for want of a worker: wait for one. */
        dispatch_hold(d, HOLD_NO_WORKERS);
        return;
    }
    if (d->have_ready && room) {
        /* The peek ahead goes first, past the batch whose trim follows it. */
        if (d->ready.full && !d->peek_out)
            send_peek(d, d->ready.n);
        d->have_ready = 0;
        if (send_txn(d) != 0) {
            conn_reset(&sd->main, "cannot send a dispatch transaction");
            return;
        }
    }
    if (!d->have_ready && !d->peek_out && !d->intake_empty)
        send_peek(d, 0);        /* runs after any transaction sent: offset 0 */
    if (d->intake_empty && !d->have_ready && !d->peek_out && !d->txn_out && !d->wait_out)
        start_wait(d);
}
