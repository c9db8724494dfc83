/*
 * slotctl: the operator's command line. Reads the same configuration file
 * as slotd for the Redis connection and namespace, and speaks to Redis
 * directly (synchronously): it works whether slotd runs or not.
 *
 * Whatever Redis or the command line holds (ids, keys, values, tasks) is
 * any bytes: it reaches the output only through bytes.h, as JSON with its
 * exact bytes or as escaped text. With --json, stdout is one JSON document
 * or nothing; a document that cannot be built or written is a failure
 * (exit 1), never a shorter document.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "bytes.h"
#include "conf.h"
#include "deadletter.h"
#include "dial.h"
#include "keys.h"
#include "keyslot.h"
#include "placement.h"
#include "route.h"
#include "scripts.h"
#include "slotmap.h"

/* Exit codes (documented in slotctl(1)). */
#define EXIT_OK          0
#define EXIT_FAIL        1      /* Redis refused a command, or a check failed */
#define EXIT_NOTFOUND    2      /* no such worker / nothing to do */
#define EXIT_USAGE       64
#define EXIT_UNAVAILABLE 69     /* Redis unreachable */
#define EXIT_CONFIG      78

struct ctl {
    struct conf   conf;
    struct keys   keys;
    struct dial   dial;     /* how c was made, and where it went (strings: conf's) */
    redisContext *c;        /* owned */
    int           json;     /* --json */
    char        **shown;    /* owned, each owned: text forms made by show() */
    size_t        nshown;
    size_t        capshown;
};

static void usage(FILE *out)
{
    fprintf(out,
        "usage: slotctl [-c FILE] [--json] [--shard I] COMMAND [ARGS]\n"
        "  status                    the whole picture: intake, workers, epoch, dead letters\n"
        "  workers                   registered workers: live, slots, queue, in flight, heartbeat\n"
        "  slots [--map]             each worker's slot ranges; --map draws the slot space\n"
        "  keyslot KEY               KEY's slot and the worker that owns it\n"
        "  push [--key K] [TASK|-]   push TASK (or standard input) onto the intake (of its shard);\n"
        "                            --key sets the routing key field of a JSON object task\n"
        "  dead list [N]             the N newest dead letters (default 10)\n"
        "  dead requeue [N]          put the N oldest (default all) back on the intake, original bytes\n"
        "  dead purge                delete every dead letter\n"
        "  drain [--undo] WORKER     move WORKER's slots away (it stays registered); --undo gives it slots again\n"
        "  leader                    which slotd holds the lease: holder, leader epoch, time left,\n"
        "                            tasks moved under each epoch\n"
        "  step-down                 make the active slotd stand by (a standby takes over)\n"
        "  cluster [NAME...] [--suggest N [--prefix P]]\n"
        "                            Redis Cluster: the slot and master of the namespace (and of\n"
        "                            each NAME, each shard), its intake and workers; the masters\n"
        "                            and how many of them each holds; N names from P (default the\n"
        "                            namespace) that land on the emptiest masters\n"
        "With shards: N, --shard I names the shard the command is about (keyslot: the key's\n"
        "own; push: its task's; cluster: all). FILE defaults to /etc/slotd/slotd.yaml.\n"
        "A KEY, TASK or WORKER starting with '-' goes\n"
        "after \"--\": slotctl keyslot -- -foo. Exit: 0 ok, 1 failed, 2 not found, 64 usage,\n"
        "69 Redis unreachable, 78 bad config. See slotctl(1).\n");
}

/* Out of memory while building the output: say so and stop, rather than
 * print a document with a piece missing. */
static void fail_oom(void)
{
    fprintf(stderr, "slotctl: out of memory while building the output\n");
    exit(EXIT_FAIL);
}

/* The text form (bytes.h) of len bytes, at most max bytes of it (0: all),
 * kept until slotctl exits. */
static const char *show(struct ctl *x, const void *p, size_t len, size_t max)
{
    if (x->nshown == x->capshown) {
        size_t cap = x->capshown ? 2 * x->capshown : 16;
        char **s = realloc(x->shown, cap * sizeof *s);
        if (s == NULL)
            fail_oom();
        x->shown = s;
        x->capshown = cap;
    }
    char *t = bytes_text(p, len, max);
    if (t == NULL)
        fail_oom();
    x->shown[x->nshown++] = t;
    return t;
}

/* The text form of o's field name (its exact bytes, by the reading rule of
 * bytes.h), or "-" when there is none. */
static const char *show_field(struct ctl *x, const json_t *o, const char *name, size_t max)
{
    size_t len;
    char *b = bytes_json_get(o, name, &len);
    if (b == NULL)
        return "-";
    const char *t = show(x, b, len, max);
    free(b);
    return t;
}

/* Building JSON: each of these stops slotctl when jansson cannot. */
static json_t *jnew(json_t *v)
{
    if (v == NULL)
        fail_oom();
    return v;
}

static void jset(json_t *o, const char *name, json_t *v)
{
    if (json_object_set_new(o, name, jnew(v)) != 0)
        fail_oom();
}

/* Any bytes, in the form of bytes.h: "name", and "name_base64" if needed. */
static void jset_bytes(json_t *o, const char *name, const void *p, size_t len)
{
    if (bytes_json_set(o, name, p, len) != 0)
        fail_oom();
}

static void jappend(json_t *a, json_t *v)
{
    if (json_array_append_new(a, jnew(v)) != 0)
        fail_oom();
}

static redisReply *cmd(struct ctl *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(x->c, fmt, ap);
    va_end(ap);
    if (r == NULL) {
        char why[200];
        fprintf(stderr, "slotctl: Redis connection lost: %s\n",
                dial_lost(x->c, x->conf.redis.reply_timeout_ms, why, sizeof why));
        exit(EXIT_UNAVAILABLE);
    }
    if (r->type == REDIS_REPLY_ERROR) {
        /* The master of a moment ago is a replica now (a failover): Redis
         * is unavailable for this run, the next one finds the new master. */
        int gone = dial_wrong_server(r);
        fprintf(stderr, "slotctl: Redis refused '%s': %s%s\n", fmt, r->str,
                gone ? " (not the master any more: try again)" : "");
        freeReplyObject(r);
        exit(gone ? EXIT_UNAVAILABLE : EXIT_FAIL);
    }
    return r;
}

/* The connection, as slotd-worker makes its own (dial.h): the master
 * through the sentinels if any. An exit code: EXIT_OK, or EXIT_UNAVAILABLE
 * (no Redis, or it refused the password), or EXIT_FAIL (it refused another
 * command of the handshake), said on stderr. */
static int connect_redis(struct ctl *x)
{
    const struct conf *cf = &x->conf;
    char err[1024];
    struct dial_options o = { DIAL_OPTIONS_OF(cf->redis) };
    if (dial_init(&x->dial, &o, err, sizeof err) != 0) {
        fprintf(stderr, "slotctl: %s\n", err);
        return EXIT_CONFIG;
    }
    x->dial.slot = keys_slot(&x->keys);     /* Cluster: the namespace's master */
    x->c = dial_connect(&x->dial, "slotctl", err, sizeof err);
    if (x->c == NULL) {
        fprintf(stderr, "slotctl: %s\n", err);
        return x->dial.failed == DIAL_REFUSED ? EXIT_FAIL : EXIT_UNAVAILABLE;
    }
    return EXIT_OK;
}

/* With Cluster: the connection moves to the master of slot (a shard's, or
 * another namespace's), or slotctl exits as connect_redis says. */
static void use_slot(struct ctl *x, unsigned slot)
{
    char err[1024];
    if (!dial_uses_cluster(&x->dial) || (x->c != NULL && x->dial.slot == slot))
        return;
    if (x->c)
        redisFree(x->c);
    x->dial.slot = slot;
    x->c = dial_connect(&x->dial, "slotctl", err, sizeof err);
    if (x->c == NULL) {
        fprintf(stderr, "slotctl: %s\n", err);
        exit(x->dial.failed == DIAL_REFUSED ? EXIT_FAIL : EXIT_UNAVAILABLE);
    }
}

static long long llen(struct ctl *x, const char *key)
{
    redisReply *r = cmd(x, "LLEN %s", key);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/* The slot table saved in {ns}:slots. An id is checked with its length
 * first: "a\0x" is not worker a. */
static void load_table(struct ctl *x, struct slotmap *m)
{
    char err[256];
    slotmap_init(m);
    redisReply *r = cmd(x, "HGETALL %s", x->keys.slots);
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (!slotmap_valid_id(k->str, k->len))
            snprintf(err, sizeof err, "invalid worker id");
        else if (slotmap_claim(m, k->str, v->str, v->len, err, sizeof err) == 0)
            continue;
        fprintf(stderr, "slotctl: slot table entry of %s: %s\n", show(x, k->str, k->len, 0),
                show(x, err, strlen(err), 0));
    }
    freeReplyObject(r);
}

/* Prints doc and drops it. Whether it reached stdout is main's to check
 * (stdout is flushed there). */
static void print_json(json_t *doc)
{
    char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (s == NULL)
        fail_oom();
    puts(s);
    free(s);
}

/* 1 if one of the string replies in set has exactly the n bytes at p. */
static int set_has(const redisReply *set, const char *p, size_t n)
{
    for (size_t i = 0; i < set->elements; i++) {
        const redisReply *e = set->element[i];
        if (e->type == REDIS_REPLY_STRING && e->len == n && memcmp(e->str, p, n) == 0)
            return 1;
    }
    return 0;
}

/* A worker id as Redis gives it: any bytes. */
struct wid {
    const char *p;          /* (ref) into a reply or the table */
    size_t      n;
};

/* One row per worker registered or owning slots. An id in {ns}:workers
 * that is not a valid worker id (slotd ignores it) gets a row saying so,
 * without the per-worker keys: its bytes cannot name them. */
static json_t *workers_json(struct ctl *x, const struct slotmap *m)
{
    json_t *arr = jnew(json_array());
    redisReply *set = cmd(x, "SMEMBERS %s", x->keys.workers);
    redisReply *drain = cmd(x, "SMEMBERS %s", x->keys.draining);
    char name[KEYS_NAME_MAX];
    char *ranges = malloc(SLOTMAP_RANGES_MAX);
    /* Ids: the set's, then table owners not in it (departing). */
    size_t n = set->elements + m->nworkers;
    struct wid *ids = calloc(n ? n : 1, sizeof *ids);
    size_t k = 0;
    if (ranges == NULL || ids == NULL)
        fail_oom();
    for (size_t i = 0; i < set->elements; i++)
        if (set->element[i]->type == REDIS_REPLY_STRING)
            ids[k++] = (struct wid){ set->element[i]->str, set->element[i]->len };
    for (uint32_t i = 0; i < m->nworkers; i++)
        if (!set_has(set, m->workers[i].id, strlen(m->workers[i].id)))
            ids[k++] = (struct wid){ m->workers[i].id, strlen(m->workers[i].id) };
    for (size_t i = 0; i < k; i++) {
        json_t *o = jnew(json_object());
        int valid = slotmap_valid_id(ids[i].p, ids[i].n);
        jset_bytes(o, "id", ids[i].p, ids[i].n);
        jset(o, "valid_id", json_boolean(valid));
        if (!valid) {
            jset(o, "live", json_false());
            jset(o, "draining", json_boolean(set_has(drain, ids[i].p, ids[i].n)));
            jset(o, "slots_owned", json_integer(0));
            jset(o, "slots", json_string(""));
            jappend(arr, o);
            continue;
        }
        /* A valid id has no NUL: it is a C string, and names its keys. */
        const char *id = ids[i].p;
        int idx = slotmap_find(m, id);
        redisReply *hb = cmd(x, "GET %s", keys_hb(&x->keys, id, name, sizeof name));
        redisReply *ttl = cmd(x, "PTTL %s", name);
        jset(o, "live", json_boolean(hb->type == REDIS_REPLY_STRING));
        jset(o, "draining", json_boolean(set_has(drain, ids[i].p, ids[i].n)));
        jset(o, "slots_owned", json_integer(idx >= 0 ? m->workers[idx].nslots : 0));
        if (idx >= 0)
            slotmap_format_ranges(m, (uint32_t)idx, ranges, SLOTMAP_RANGES_MAX);
        jset(o, "slots", json_string(idx >= 0 ? ranges : ""));
        jset(o, "queue", json_integer(llen(x, keys_queue(&x->keys, id, name, sizeof name))));
        jset(o, "inflight", json_integer(llen(x, keys_inflight(&x->keys, id, name, sizeof name))));
        if (ttl->type == REDIS_REPLY_INTEGER && ttl->integer >= 0)
            jset(o, "heartbeat_ttl_left_ms", json_integer(ttl->integer));
        if (hb->type == REDIS_REPLY_STRING) {
            /* The worker's JSON object; anything else as its bytes. */
            json_error_t err;
            json_t *beat = json_loadb(hb->str, hb->len, 0, &err);
            if (json_is_object(beat)) {
                jset(o, "heartbeat", beat);
            } else {
                json_decref(beat);
                jset_bytes(o, "heartbeat_raw", hb->str, hb->len);
            }
        }
        jappend(arr, o);
        freeReplyObject(hb);
        freeReplyObject(ttl);
    }
    free(ids);
    free(ranges);
    freeReplyObject(set);
    freeReplyObject(drain);
    return arr;
}

/* The fenced handoffs: [{"worker", "slots", "waiting"}]; no "waiting" for
 * an entry whose worker id is not valid (slotd ignores it). */
static json_t *fences_json(struct ctl *x)
{
    json_t *arr = jnew(json_array());
    char key[KEYS_NAME_MAX];
    redisReply *r = cmd(x, "HGETALL %s", x->keys.fences);
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const redisReply *id = r->element[i], *slots = r->element[i + 1];
        json_t *o = jnew(json_object());
        jset_bytes(o, "worker", id->str, id->len);
        jset_bytes(o, "slots", slots->str, slots->len);
        if (slotmap_valid_id(id->str, id->len))
            jset(o, "waiting", json_integer(llen(x, keys_fenced(&x->keys, id->str, key, sizeof key))));
        jappend(arr, o);
    }
    freeReplyObject(r);
    return arr;
}

static int do_status(struct ctl *x)
{
    struct slotmap m;
    load_table(x, &m);
    redisReply *ep = cmd(x, "GET %s", x->keys.epoch);
    json_t *doc = jnew(json_object()), *redis = jnew(json_object());
    jset_bytes(doc, "namespace", x->keys.ns, strlen(x->keys.ns));
    /* Where slotctl found Redis: with Sentinel, the master of the moment. */
    jset_bytes(redis, "address", x->dial.addr, strlen(x->dial.addr));
    jset_bytes(redis, "found_via", x->dial.via, strlen(x->dial.via));
    jset(doc, "redis", redis);
    jset(doc, "intake_length", json_integer(llen(x, x->keys.intake)));
    jset(doc, "dead_letters", json_integer(llen(x, x->keys.dead)));
    if (ep->type == REDIS_REPLY_STRING)
        jset_bytes(doc, "epoch", ep->str, ep->len);
    else
        jset_bytes(doc, "epoch", "0", 1);
    jset(doc, "live_workers_with_slots", json_integer(m.nworkers));
    jset(doc, "workers", workers_json(x, &m));
    jset(doc, "fences", fences_json(x));
    freeReplyObject(ep);
    if (x->json) {
        print_json(doc);
    } else {
        if (dial_uses_sentinel(&x->dial) || dial_uses_cluster(&x->dial))
            printf("redis     master %s, found by %s\n", show_field(x, redis, "address", 0),
                   show_field(x, redis, "found_via", 0));
        printf("namespace %s, epoch %s\n", x->keys.ns, show_field(x, doc, "epoch", 0));
        printf("intake    %lld tasks waiting\n", (long long)json_integer_value(json_object_get(doc, "intake_length")));
        printf("dead      %lld dead letters\n", (long long)json_integer_value(json_object_get(doc, "dead_letters")));
        printf("workers   %u own slots\n", m.nworkers);
        if (m.nworkers == 0)
            printf("          no live worker: the intake is not routed\n");
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(doc, "fences"), i, f) {
            json_t *waiting = json_object_get(f, "waiting");
            if (waiting)
                printf("fenced    %s handed off %s; %lld tasks wait until it finishes the ones it holds\n",
                       show_field(x, f, "worker", 0), show_field(x, f, "slots", 0),
                       (long long)json_integer_value(waiting));
            else
                printf("fenced    %s handed off %s; not a valid worker id: slotd ignores it\n",
                       show_field(x, f, "worker", 0), show_field(x, f, "slots", 0));
        }
        json_decref(doc);
    }
    slotmap_free(&m);
    return EXIT_OK;
}

static int do_workers(struct ctl *x)
{
    struct slotmap m;
    load_table(x, &m);
    json_t *arr = workers_json(x, &m);
    if (x->json) {
        print_json(arr);
    } else {
        size_t i;
        json_t *w;
        printf("%-20s %-5s %6s %8s %9s %9s  %s\n", "WORKER", "LIVE", "SLOTS", "QUEUE", "INFLIGHT",
               "HB LEFT", "RANGES");
        json_array_foreach(arr, i, w) {
            json_t *ttl = json_object_get(w, "heartbeat_ttl_left_ms");
            char hb[32] = "-", queue[32] = "-", inflight[32] = "-";
            if (ttl)
                snprintf(hb, sizeof hb, "%lldms", (long long)json_integer_value(ttl));
            if (json_object_get(w, "queue"))
                snprintf(queue, sizeof queue, "%lld", (long long)json_integer_value(json_object_get(w, "queue")));
            if (json_object_get(w, "inflight"))
                snprintf(inflight, sizeof inflight, "%lld",
                         (long long)json_integer_value(json_object_get(w, "inflight")));
            printf("%-20s %-5s %6lld %8s %9s %9s  %s%s%s\n", show_field(x, w, "id", 0),
                   json_is_true(json_object_get(w, "live")) ? "yes" : "no",
                   (long long)json_integer_value(json_object_get(w, "slots_owned")), queue, inflight, hb,
                   json_string_value(json_object_get(w, "slots")),
                   json_is_true(json_object_get(w, "draining")) ? " (draining)" : "",
                   json_is_true(json_object_get(w, "valid_id")) ? "" : "(not a valid worker id: slotd ignores it)");
        }
        json_decref(arr);
    }
    slotmap_free(&m);
    return EXIT_OK;
}

static int do_slots(struct ctl *x, int map_wanted)
{
    struct slotmap m;
    char *ranges = malloc(SLOTMAP_RANGES_MAX);
    if (ranges == NULL)
        fail_oom();
    load_table(x, &m);
    if (x->json) {
        /* Keyed by worker id: the table holds valid ids only (ASCII). */
        json_t *o = jnew(json_object());
        for (uint32_t i = 0; i < m.nworkers; i++) {
            slotmap_format_ranges(&m, i, ranges, SLOTMAP_RANGES_MAX);
            jset(o, m.workers[i].id, json_string(ranges));
        }
        print_json(o);
    } else {
        for (uint32_t i = 0; i < m.nworkers; i++) {
            slotmap_format_ranges(&m, i, ranges, SLOTMAP_RANGES_MAX);
            printf("%c %-20s %5u  %s\n", map_wanted ? (i < 26 ? 'A' + (int)i : (i < 52 ? 'a' + (int)i - 26 : '#')) : ' ',
                   m.workers[i].id, m.workers[i].nslots, ranges);
        }
        if (map_wanted) {
            /* 64 columns x 64 rows, each character 4 consecutive slots. */
            printf("\n      slot map: one character = 4 slots, 256 slots a row, '.' unowned, '*' mixed\n");
            for (unsigned row = 0; row < 64; row++) {
                printf("%5u ", row * 256);
                for (unsigned col = 0; col < 64; col++) {
                    unsigned s = row * 256 + col * 4, o = m.owner[s];
                    int mixed = 0;
                    for (unsigned k = 1; k < 4; k++)
                        mixed |= m.owner[s + k] != o;
                    putchar(mixed ? '*' : o == SLOTMAP_NOBODY ? '.' : o < 26 ? 'A' + (int)o : o < 52 ? 'a' + (int)o - 26 : '#');
                }
                putchar('\n');
            }
        }
        if (m.nworkers == 0)
            printf("no worker owns slots\n");
    }
    free(ranges);
    slotmap_free(&m);
    return EXIT_OK;
}

static int do_keyslot(struct ctl *x, const char *key)
{
    struct slotmap m;
    size_t len = strlen(key);
    load_table(x, &m);
    unsigned slot = keyslot(key, len);
    unsigned o = slotmap_owner(&m, slot);
    const char *owner = o == SLOTMAP_NOBODY ? NULL : m.workers[o].id;
    if (x->json) {
        json_t *doc = jnew(json_object());
        jset_bytes(doc, "key", key, len);
        jset(doc, "slot", json_integer(slot));
        jset(doc, "worker", owner ? json_string(owner) : json_null());
        print_json(doc);
    } else {
        printf("%s: slot %u, %s%s\n", show(x, key, len, 0), slot, owner ? "worker " : "",
               owner ? owner : "no owner");
    }
    slotmap_free(&m);
    return EXIT_OK;
}

/* The task's bytes from standard input, one trailing newline dropped;
 * NULL (said why) when it cannot be read. */
static char *read_stdin(size_t *len)
{
    char *data = NULL;
    char buf[65536];
    size_t n;
    FILE *in = open_memstream(&data, len);
    if (in == NULL)
        fail_oom();
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0)
        if (fwrite(buf, 1, n, in) != n)
            break;
    int bad_in = ferror(stdin), bad_out = ferror(in);
    if (fclose(in) != 0 || bad_out)
        fail_oom();
    if (bad_in) {
        fprintf(stderr, "slotctl: cannot read the task from standard input: %s\n", strerror(errno));
        free(data);
        return NULL;
    }
    /* One trailing newline from a shell pipe is not part of the task. */
    if (*len > 0 && data[*len - 1] == '\n')
        (*len)--;
    return data;
}

static int do_push(struct ctl *x, const char *key, const char *task)
{
    char *data = NULL;
    size_t len = 0;
    if (task == NULL || strcmp(task, "-") == 0) {
        if ((data = read_stdin(&len)) == NULL)
            return EXIT_FAIL;
    } else if ((data = strdup(task)) == NULL) {
        fail_oom();
    } else {
        len = strlen(task);
    }
    if (key != NULL) {
        const char *field = x->conf.routing.key_field;
        json_error_t err;
        /* JSON_ALLOW_NUL: the scanner routes tasks with \u0000 in them. */
        json_t *o = len ? json_loadb(data, len, JSON_ALLOW_NUL, &err) : json_object();
        json_t *k = json_string(key);
        if (field[0] == '\0' || o == NULL || !json_is_object(o) || k == NULL) {
            if (k == NULL)
                fprintf(stderr, "slotctl: --key %s is not UTF-8 text: a JSON task cannot carry it\n",
                        show(x, key, strlen(key), 0));
            else
                fprintf(stderr, "slotctl: --key needs routing.key_field set and a JSON object task%s%s\n",
                        o == NULL ? ": " : "", o == NULL ? err.text : "");
            json_decref(o);
            json_decref(k);
            free(data);
            return EXIT_USAGE;
        }
        jset(o, field, k);
        free(data);
        data = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (data == NULL)
            fail_oom();
        len = strlen(data);
    }
    /* The shard's intake, by the producers' rule (docs/shards.md). */
    struct route_rules rules;
    struct keys k;
    unsigned slot = 0;
    enum taskkey_result res;
    char *scratch = malloc(len ? len : 1);
    if (scratch == NULL)
        fail_oom();
    route_rules_of(&rules, &x->conf);
    int shard = route_shard(&rules, x->conf.shards, data, len, scratch, &slot, &res);
    free(scratch);
    if (keys_init_shard(&k, x->conf.ns, shard, x->conf.shards) != 0) {
        free(data);
        return EXIT_CONFIG;
    }
    use_slot(x, keys_slot(&k));
    redisReply *r = cmd(x, "LPUSH %s %b", k.intake, data, len);
    if (x->json) {
        json_t *doc = jnew(json_object());
        jset(doc, "pushed_bytes", json_integer((json_int_t)len));
        jset_bytes(doc, "intake", k.intake, strlen(k.intake));
        jset(doc, "intake_length", json_integer(r->integer));
        jset(doc, "shard", json_integer(shard));
        jset(doc, "shards", json_integer(x->conf.shards));
        jset(doc, "slot", res == TASKKEY_OK ? json_integer(slot) : json_null());
        jset(doc, "unroutable", res == TASKKEY_OK ? json_null() : json_string(taskkey_result_name(res)));
        print_json(doc);
    } else if (x->conf.shards == 1) {
        printf("pushed %zu bytes onto %s (%lld waiting)\n", len, k.intake, r->integer);
    } else if (res == TASKKEY_OK) {
        printf("pushed %zu bytes onto %s: shard %d of %d, slot %u (%lld waiting)\n", len, k.intake,
               shard, x->conf.shards, slot, r->integer);
    } else {
        printf("pushed %zu bytes onto %s: shard %d of %d, as %s: its slotd dead-letters it "
               "(%lld waiting)\n", len, k.intake, shard, x->conf.shards, taskkey_result_text(res),
               r->integer);
    }
    freeReplyObject(r);
    free(data);
    return EXIT_OK;
}

/* One entry of {ns}:dead as slotctl shows it. A dead letter (by the rule
 * deadletter_parse follows): its members, with "reason", "detail" and
 * "task" in the form of bytes.h, so "task" is always there and
 * "task_base64" when the task is not plain text. Anything else:
 * {"entry": its bytes}. */
static json_t *dead_json(const redisReply *e)
{
    json_error_t err;
    size_t n = 0;
    json_t *o = jnew(json_object());
    json_t *stored = e->type == REDIS_REPLY_STRING ? json_loadb(e->str, e->len, JSON_ALLOW_NUL, &err) : NULL;
    char *task = json_is_object(stored) ? bytes_json_get(stored, "task", &n) : NULL;
    if (task == NULL) {
        jset_bytes(o, "entry", e->str, e->len);
    } else {
        const char *k;
        json_t *v;
        json_object_foreach(stored, k, v) {
            if (strcmp(k, "task") == 0 || strcmp(k, "task_base64") == 0)
                continue;
            if ((strcmp(k, "reason") == 0 || strcmp(k, "detail") == 0) && json_is_string(v))
                jset_bytes(o, k, json_string_value(v), json_string_length(v));
            else
                jset(o, k, json_incref(v));
        }
        jset_bytes(o, "task", task, n);
    }
    free(task);
    json_decref(stored);
    return o;
}

static int do_dead_list(struct ctl *x, long n)
{
    redisReply *r = cmd(x, "LRANGE %s 0 %ld", x->keys.dead, n - 1);
    json_t *arr = jnew(json_array());
    for (size_t i = 0; i < r->elements; i++)
        jappend(arr, dead_json(r->element[i]));
    if (x->json) {
        print_json(arr);
    } else {
        size_t i;
        json_t *e;
        if (r->elements == 0)
            printf("no dead letters\n");
        json_array_foreach(arr, i, e) {
            if (json_object_get(e, "entry"))
                printf("(not a dead letter)\n  %s\n", show_field(x, e, "entry", 120));
            else
                printf("%-14s %s\n  %s\n", show_field(x, e, "reason", 0), show_field(x, e, "detail", 0),
                       show_field(x, e, "task", 120));
        }
        json_decref(arr);
    }
    freeReplyObject(r);
    return EXIT_OK;
}

/* Oldest first, each in a transaction guarded by WATCH: the original bytes
 * go back on the intake as the dead letter leaves the list. */
static int do_dead_requeue(struct ctl *x, long n)
{
    long done = 0;
    while (n < 0 || done < n) {
        freeReplyObject(cmd(x, "WATCH %s", x->keys.dead));
        redisReply *last = cmd(x, "LINDEX %s -1", x->keys.dead);
        if (last->type != REDIS_REPLY_STRING) {
            freeReplyObject(last);
            freeReplyObject(cmd(x, "UNWATCH"));
            break;
        }
        size_t len;
        char *task = deadletter_parse(last->str, last->len, &len, NULL);
        if (task == NULL) {
            fprintf(stderr, "slotctl: the oldest entry of %s is not a dead letter; stopping, "
                    "requeued %ld before it (see slotctl dead list)\n", x->keys.dead, done);
            freeReplyObject(last);
            freeReplyObject(cmd(x, "UNWATCH"));
            return EXIT_FAIL;
        }
        /* One script, so that the entry leaves only if its task lands (a key
         * of the wrong type changes nothing), in a MULTI under the WATCH. */
        freeReplyObject(cmd(x, "MULTI"));
        freeReplyObject(cmd(x, "EVAL %s 2 %s %s %b", scripts_requeue, x->keys.intake,
                            x->keys.dead, task, len));
        redisReply *ex = cmd(x, "EXEC");
        const redisReply *res = ex->type == REDIS_REPLY_ARRAY && ex->elements == 1
                                    ? ex->element[0] : NULL;
        int stop = 0;
        if (res != NULL && res->type == REDIS_REPLY_INTEGER) {
            done++;
        } else if (res != NULL) {
            char *why = res->type == REDIS_REPLY_ARRAY && res->elements == 3
                            ? bytes_text(res->element[1]->str, res->element[1]->len, 200) : NULL;
            fprintf(stderr, "slotctl: %s holds a %s, not a list: nothing moved; requeued %ld"
                    " before it\n", why ? why : "a key",
                    res->type == REDIS_REPLY_ARRAY && res->elements == 3 ? res->element[2]->str
                                                                          : "?", done);
            free(why);
            stop = 1;
        } else if (ex->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "slotctl: Redis refused the requeue: %s\n", ex->str);
            stop = 1;
        }   /* nil: the list changed meanwhile; look again */
        freeReplyObject(ex);
        freeReplyObject(last);
        free(task);
        if (stop)
            return EXIT_FAIL;
    }
    if (x->json) {
        json_t *doc = jnew(json_object());
        jset(doc, "requeued", json_integer(done));
        jset_bytes(doc, "intake", x->keys.intake, strlen(x->keys.intake));
        print_json(doc);
    } else {
        printf("requeued %ld dead letters onto %s\n", done, x->keys.intake);
    }
    return done == 0 ? EXIT_NOTFOUND : EXIT_OK;
}

static int do_dead_purge(struct ctl *x)
{
    long long n = llen(x, x->keys.dead);
    freeReplyObject(cmd(x, "DEL %s", x->keys.dead));
    if (x->json) {
        json_t *doc = jnew(json_object());
        jset(doc, "purged", json_integer(n));
        print_json(doc);
        return EXIT_OK;
    }
    printf("purged %lld dead letters\n", n);
    return EXIT_OK;
}

static int do_drain(struct ctl *x, const char *id, int undo)
{
    if (!slotmap_valid_id(id, strlen(id))) {
        fprintf(stderr, "slotctl: '%s' is not a valid worker id\n", show(x, id, strlen(id), 0));
        return EXIT_USAGE;
    }
    redisReply *known = cmd(x, "SISMEMBER %s %s", x->keys.workers, id);
    long long is = known->integer;
    freeReplyObject(known);
    if (!is && !undo) {
        fprintf(stderr, "slotctl: no worker %s is registered\n", id);
        return EXIT_NOTFOUND;
    }
    freeReplyObject(cmd(x, undo ? "SREM %s %s" : "SADD %s %s", x->keys.draining, id));
    if (x->json) {
        json_t *doc = jnew(json_object());
        jset_bytes(doc, "worker", id, strlen(id));
        jset(doc, "draining", json_boolean(!undo));
        print_json(doc);
        return EXIT_OK;
    }
    printf(undo ? "worker %s gets slots again at slotd's next check\n"
                : "worker %s is draining: slotd moves its slots (and queued tasks) at its next check;\n"
                  "it finishes what it holds; stop it when `slotctl workers` shows it empty\n", id);
    return EXIT_OK;
}

/* The lease: who holds it, under which epoch, for how long; and the tasks
 * each recent epoch moved (counted inside each move, so they cannot lie). */
static int do_leader(struct ctl *x)
{
    redisReply *lease = cmd(x, "GET %s", x->keys.leader);
    redisReply *ttl = cmd(x, "PTTL %s", x->keys.leader);
    redisReply *epoch = cmd(x, "GET %s", x->keys.leader_epoch);
    redisReply *moves = cmd(x, "HGETALL %s", x->keys.leader_moves);
    const char *holder = "", *epoch_text = "";
    size_t holder_len = 0;
    if (lease->type == REDIS_REPLY_STRING) {
        /* "<n> <nonce> <node> <pid>": the holder is after the epoch. */
        const char *p = strchr(lease->str, ' ');
        p = p ? strchr(p + 1, ' ') : NULL;
        holder = p ? p + 1 : lease->str;
        holder_len = lease->len - (size_t)(holder - lease->str);
    }
    if (epoch->type == REDIS_REPLY_STRING)
        epoch_text = epoch->str;
    long long left = ttl->type == REDIS_REPLY_INTEGER ? ttl->integer : -2;
    if (x->json) {
        json_t *doc = jnew(json_object()), *per = jnew(json_object());
        if (holder_len)
            jset_bytes(doc, "holder", holder, holder_len);
        else
            jset(doc, "holder", json_null());
        jset(doc, "epoch", json_integer((json_int_t)strtoull(epoch_text, NULL, 10)));
        jset(doc, "lease_left_ms", json_integer(left > 0 ? left : 0));
        for (size_t i = 0; moves->type == REDIS_REPLY_ARRAY && i + 1 < moves->elements; i += 2)
            jset(per, moves->element[i]->str,
                 json_integer((json_int_t)strtoll(moves->element[i + 1]->str, NULL, 10)));
        jset(doc, "moved_per_epoch", per);
        print_json(doc);
    } else {
        if (holder_len)
            printf("leader    %s, leader epoch %llu, lease %lld ms left\n",
                   show(x, holder, holder_len, 0), strtoull(epoch_text, NULL, 10), left);
        else
            printf("leader    nobody holds the lease (leader epoch %llu): a slotd takes it within"
                   " leader.renew_ms\n", strtoull(epoch_text, NULL, 10));
        printf("moved     ");
        for (size_t i = 0; moves->type == REDIS_REPLY_ARRAY && i + 1 < moves->elements; i += 2)
            printf("%sepoch %s: %s tasks", i ? ", " : "", moves->element[i]->str,
                   moves->element[i + 1]->str);
        printf("%s\n", moves->type == REDIS_REPLY_ARRAY && moves->elements ? "" : "nothing yet");
    }
    int rc = holder_len ? EXIT_OK : EXIT_NOTFOUND;
    freeReplyObject(lease);
    freeReplyObject(ttl);
    freeReplyObject(epoch);
    freeReplyObject(moves);
    return rc;
}

/* A new leader epoch with nobody holding the lease: the active slotd's next
 * write and renewal are refused, and it stands by for a lease's length, so
 * that a standby takes over. */
static int do_step_down(struct ctl *x)
{
    redisReply *r = cmd(x, "EVAL %s 3 %s %s %s", scripts_step_down, x->keys.leader,
                        x->keys.leader_epoch, x->keys.tail);
    int ok = r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
             r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "stepped") == 0;
    if (!ok) {
        fprintf(stderr, "slotctl: step-down refused: %s\n",
                r->type == REDIS_REPLY_ERROR ? r->str
                : r->type == REDIS_REPLY_ARRAY && r->elements == 3 ? r->element[1]->str : "?");
        freeReplyObject(r);
        return EXIT_FAIL;
    }
    unsigned long long was = r->element[1]->type == REDIS_REPLY_STRING
                                 ? strtoull(r->element[1]->str, NULL, 10) : 0;
    if (x->json) {
        json_t *doc = jnew(json_object());
        jset(doc, "fenced_epoch", json_integer((json_int_t)was));
        print_json(doc);
    } else {
        printf("leader epoch %llu is fenced: its slotd stands by at its next write or renewal,"
               " and a standby takes the lease within leader.renew_ms\n", was);
    }
    freeReplyObject(r);
    return EXIT_OK;
}

/* One namespace (or shard) of slotctl cluster: where it lives, its load. */
static json_t *placed_json(struct ctl *x, struct placement *pl, const struct cluster_map *map,
                           const char *ns, int shard)
{
    struct keys k;
    char at[DIAL_ADDR_MAX];
    if (keys_init_shard(&k, ns, shard, x->conf.shards) != 0)
        return NULL;
    unsigned slot = keys_slot(&k);
    int i = placement_hold(pl, map, slot);
    json_t *o = jnew(json_object());
    jset_bytes(o, "namespace", ns, strlen(ns));
    jset(o, "shard", x->conf.shards > 1 ? json_integer(shard) : json_null());
    jset_bytes(o, "tag", k.tag, strlen(k.tag));
    jset(o, "slot", json_integer(slot));
    if (i < 0) {
        /* Nobody serves it: no load to read (CLUSTERDOWN). */
        jset(o, "master", json_null());
        jset(o, "intake_length", json_null());
        jset(o, "workers", json_null());
        return o;
    }
    dial_format_addr(at, sizeof at, pl->m[i].addr.host, pl->m[i].addr.port);
    jset(o, "master", json_string(at));
    use_slot(x, slot);
    redisReply *r = cmd(x, "SCARD %s", k.workers);
    jset(o, "intake_length", json_integer(llen(x, k.intake)));
    jset(o, "workers", json_integer(r->integer));
    freeReplyObject(r);
    return o;
}

/*
 * slotctl cluster: for the namespace and names (each shard, with shards >
 * 1), the slot of its tag, the master serving it (as the cluster map of
 * the namespace's master says), its intake length and workers; the masters
 * with how many of those each holds; with suggest > 0, that many names from
 * prefix landing on the emptiest masters (placement.h).
 */
static int do_cluster(struct ctl *x, char **names, int nnames, long suggest, const char *prefix)
{
    struct cluster_map map = { NULL, 0 };
    struct placement pl = { NULL, 0 };
    struct sentinel_addr here;
    char why[300], at[DIAL_ADDR_MAX];
    if (!dial_uses_cluster(&x->dial)) {
        fprintf(stderr, "slotctl: cluster needs redis.cluster_seeds in the configuration\n");
        return EXIT_CONFIG;
    }
    if (suggest < 0 || suggest > 1000) {
        fprintf(stderr, "slotctl: --suggest %ld: 0-1000\n", suggest);
        return EXIT_USAGE;
    }
    const char **all = malloc(((size_t)nnames + 1) * sizeof *all);
    if (all == NULL)
        fail_oom();
    size_t nall = 0;
    all[nall++] = x->conf.ns;
    for (int i = 0; i < nnames; i++) {
        struct keys k;
        int dup = 0;
        if (keys_init(&k, names[i]) != 0 || names[i][0] == '\0' || strpbrk(names[i], "{}#")) {
            fprintf(stderr, "slotctl: '%s' is not a namespace\n", show(x, names[i], strlen(names[i]), 0));
            free(all);
            return EXIT_USAGE;
        }
        for (size_t j = 0; j < nall; j++)
            dup |= strcmp(all[j], names[i]) == 0;
        if (!dup)
            all[nall++] = names[i];
    }
    const char *pre = prefix ? prefix : x->conf.ns;
    if (sentinel_parse_addr(x->dial.addr, strlen(x->dial.addr), 0, &here) != 0)
        snprintf(here.host, sizeof here.host, "127.0.0.1");
    redisReply *r = cmd(x, "CLUSTER SLOTS");
    int parsed = cluster_map_parse(&map, r, here.host, why, sizeof why);
    freeReplyObject(r);
    if (parsed != 0) {
        fprintf(stderr, "slotctl: %s (asked %s)\n", why, x->dial.addr);
        free(all);
        return EXIT_FAIL;
    }
    if (placement_init(&pl, &map) != 0)
        fail_oom();
    json_t *doc = jnew(json_object()), *spaces = jnew(json_array());
    jset_bytes(doc, "asked", x->dial.addr, strlen(x->dial.addr));
    for (size_t i = 0; i < nall; i++)
        for (int sh = 0; sh < x->conf.shards; sh++) {
            json_t *o = placed_json(x, &pl, &map, all[i], sh);
            if (o == NULL) {
                fprintf(stderr, "slotctl: '%s' is too long a namespace for %d shards\n",
                        show(x, all[i], strlen(all[i]), 0), x->conf.shards);
                json_decref(doc);
                json_decref(spaces);
                placement_free(&pl);
                cluster_map_free(&map);
                free(all);
                return EXIT_USAGE;
            }
            jappend(spaces, o);
        }
    jset(doc, "namespaces", spaces);
    json_t *masters = jnew(json_array());
    for (size_t i = 0; i < pl.n; i++) {
        json_t *o = jnew(json_object());
        dial_format_addr(at, sizeof at, pl.m[i].addr.host, pl.m[i].addr.port);
        jset(o, "address", json_string(at));
        jset(o, "slots", json_integer(pl.m[i].slots));
        jset(o, "namespaces", json_integer(pl.m[i].held));
        jappend(masters, o);
    }
    jset(doc, "masters", masters);
    if (suggest > 0) {
        char (*got)[KEYS_NS_MAX + 1] = malloc((size_t)suggest * sizeof *got);
        json_t *sug = jnew(json_array());
        if (got == NULL)
            fail_oom();
        int n = placement_suggest(&pl, &map, pre, x->conf.shards, (int)suggest, got, all, nall);
        for (int i = 0; i < n; i++) {
            int slot = placement_slot(got[i], x->conf.shards);
            int m = placement_master_of(&pl, &map, (unsigned)slot);
            json_t *o = jnew(json_object());
            jset_bytes(o, "namespace", got[i], strlen(got[i]));
            jset(o, "slot", json_integer(slot));
            dial_format_addr(at, sizeof at, pl.m[m].addr.host, pl.m[m].addr.port);
            jset(o, "master", json_string(at));
            jappend(sug, o);
        }
        free(got);
        jset(doc, "suggested", sug);
        if (n < suggest)
            fprintf(stderr, "slotctl: only %d names from '%s' land on the emptiest masters\n", n,
                    show(x, pre, strlen(pre), 0));
    }
    if (x->json) {
        print_json(doc);
    } else {
        size_t i;
        json_t *o;
        printf("%-24s %5s %5s  %-22s %8s %7s\n", "namespace", "shard", "slot", "master", "intake",
               "workers");
        json_array_foreach(json_object_get(doc, "namespaces"), i, o) {
            char shard[16] = "-", intake[24] = "-", workers[24] = "-";
            if (json_is_integer(json_object_get(o, "shard")))
                snprintf(shard, sizeof shard, "%lld", (long long)json_integer_value(json_object_get(o, "shard")));
            if (json_is_integer(json_object_get(o, "intake_length"))) {
                snprintf(intake, sizeof intake, "%lld", (long long)json_integer_value(json_object_get(o, "intake_length")));
                snprintf(workers, sizeof workers, "%lld", (long long)json_integer_value(json_object_get(o, "workers")));
            }
            const char *mst = json_string_value(json_object_get(o, "master"));
            printf("%-24s %5s %5lld  %-22s %8s %7s\n", show_field(x, o, "namespace", 0), shard,
                   (long long)json_integer_value(json_object_get(o, "slot")),
                   mst ? mst : "(nobody: CLUSTERDOWN?)", intake, workers);
        }
        printf("\n%-22s %6s %11s\n", "master", "slots", "namespaces");
        json_array_foreach(json_object_get(doc, "masters"), i, o)
            printf("%-22s %6lld %11lld\n", json_string_value(json_object_get(o, "address")),
                   (long long)json_integer_value(json_object_get(o, "slots")),
                   (long long)json_integer_value(json_object_get(o, "namespaces")));
        if (json_object_get(doc, "suggested")) {
            printf("\nsuggested, on the emptiest masters:\n");
            json_array_foreach(json_object_get(doc, "suggested"), i, o)
                printf("%-24s slot %5lld  %s\n", show_field(x, o, "namespace", 0),
                       (long long)json_integer_value(json_object_get(o, "slot")),
                       json_string_value(json_object_get(o, "master")));
        }
        json_decref(doc);
    }
    placement_free(&pl);
    cluster_map_free(&map);
    free(all);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' }, { "map", no_argument, NULL, 'm' },
        { "key", required_argument, NULL, 'k' }, { "undo", no_argument, NULL, 'u' },
        { "suggest", required_argument, NULL, 's' }, { "prefix", required_argument, NULL, 'p' },
        { "shard", required_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    struct ctl x;
    const char *path = "/etc/slotd/slotd.yaml", *key = NULL, *prefix = NULL;
    long suggest = 0, shard = -1;
    char err[1024];
    int opt, map = 0, undo = 0, rc = EXIT_USAGE;
    int nops = 0;

    memset(&x, 0, sizeof x);
    /* The operands, in order. The leading '-' makes getopt_long hand each
     * one back in place (as 1) rather than permute argv, whatever
     * POSIXLY_CORRECT says: options may come anywhere, and "--" ends them,
     * so "keyslot -- -foo" is the key "-foo" in every environment. */
    char **ops = malloc((size_t)argc * sizeof *ops);
    if (ops == NULL)
        fail_oom();
    while ((opt = getopt_long(argc, argv, "-c:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 1: ops[nops++] = optarg; break;
        case 'c': path = optarg; break;
        case 'j': x.json = 1; break;
        case 'm': map = 1; break;
        case 'k': key = optarg; break;
        case 'u': undo = 1; break;
        case 's': suggest = atol(optarg); break;
        case 'p': prefix = optarg; break;
        case 'S': {
            char *end;
            shard = strtol(optarg, &end, 10);
            if (optarg[0] == '\0' || *end != '\0' || shard < 0 || shard >= KEYS_SHARDS_MAX) {
                fprintf(stderr, "slotctl: --shard %s: a shard is a number from 0\n", optarg);
                goto out;
            }
            break;
        }
        case 'V': printf("slotctl %s\n", SLOTD_VERSION); rc = EXIT_OK; goto out;
        case 'h': usage(stdout); rc = EXIT_OK; goto out;
        default: usage(stderr); goto out;
        }
    }
    while (optind < argc)
        ops[nops++] = argv[optind++];
    if (nops == 0) {
        usage(stderr);
        goto out;
    }
    const char *what = ops[0];
    int nargs = nops - 1;
    char **args = ops + 1;
    if (conf_load(&x.conf, path, err, sizeof err) != 0) {
        fprintf(stderr, "slotctl: %s\n", err);
        rc = EXIT_CONFIG;
        goto out;
    }
    /* A namespace of shards: the commands about one shard's keys need
     * --shard, but for keyslot (the key's own shard), push (its task's) and
     * cluster (every shard). */
    if (shard >= x.conf.shards) {
        fprintf(stderr, "slotctl: --shard %ld: namespace %s has %d shard%s (0 to %d)\n", shard,
                x.conf.ns, x.conf.shards, x.conf.shards == 1 ? "" : "s", x.conf.shards - 1);
        goto out_conf;
    }
    if (shard < 0 && x.conf.shards > 1) {
        if (strcmp(what, "keyslot") == 0 && nargs == 1)
            shard = keys_shard_of(keyslot(args[0], strlen(args[0])), x.conf.shards);
        else if (strcmp(what, "push") != 0 && strcmp(what, "cluster") != 0) {
            fprintf(stderr, "slotctl: namespace %s has %d shards: name one with --shard 0 to "
                    "--shard %d\n", x.conf.ns, x.conf.shards, x.conf.shards - 1);
            goto out_conf;
        }
    }
    if (keys_init_shard(&x.keys, x.conf.ns, shard < 0 ? 0 : (int)shard, x.conf.shards) != 0) {
        rc = EXIT_UNAVAILABLE;
        goto out_conf;
    }
    if ((rc = connect_redis(&x)) != EXIT_OK)
        goto out_conf;
    rc = EXIT_USAGE;
    if (strcmp(what, "status") == 0 && nargs == 0)
        rc = do_status(&x);
    else if (strcmp(what, "workers") == 0 && nargs == 0)
        rc = do_workers(&x);
    else if (strcmp(what, "slots") == 0 && nargs == 0)
        rc = do_slots(&x, map);
    else if (strcmp(what, "keyslot") == 0 && nargs == 1)
        rc = do_keyslot(&x, args[0]);
    else if (strcmp(what, "push") == 0 && nargs <= 1)
        rc = do_push(&x, key, nargs ? args[0] : NULL);
    else if (strcmp(what, "dead") == 0 && nargs >= 1 && strcmp(args[0], "list") == 0 && nargs <= 2)
        rc = do_dead_list(&x, nargs == 2 ? atol(args[1]) : 10);
    else if (strcmp(what, "dead") == 0 && nargs >= 1 && strcmp(args[0], "requeue") == 0 && nargs <= 2)
        rc = do_dead_requeue(&x, nargs == 2 ? atol(args[1]) : -1);
    else if (strcmp(what, "dead") == 0 && nargs == 1 && strcmp(args[0], "purge") == 0)
        rc = do_dead_purge(&x);
    else if (strcmp(what, "drain") == 0 && nargs == 1)
        rc = do_drain(&x, args[0], undo);
    else if (strcmp(what, "leader") == 0 && nargs == 0)
        rc = do_leader(&x);
    else if (strcmp(what, "step-down") == 0 && nargs == 0)
        rc = do_step_down(&x);
    else if (strcmp(what, "cluster") == 0)
        rc = do_cluster(&x, args, nargs, suggest, prefix);
    else
        usage(stderr);
out_conf:
    if (x.c)
        redisFree(x.c);
    conf_free(&x.conf);
out:
    /* Output that did not reach stdout (a full disk, a closed pipe) is a
     * failure, whatever the command did. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "slotctl: cannot write the output: %s\n", strerror(errno));
        rc = EXIT_FAIL;
    }
    for (size_t i = 0; i < x.nshown; i++)
        free(x.shown[i]);
    free(x.shown);
    free(ops);
    return rc;
}
