/*
 * slotctl: the operator's command line. Reads the same configuration file
 * as slotd for the Redis connection and namespace, and speaks to Redis
 * directly (synchronously): it works whether slotd runs or not.
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

#include "conf.h"
#include "deadletter.h"
#include "keys.h"
#include "keyslot.h"
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
    redisContext *c;        /* owned */
    int           json;     /* --json */
};

static void usage(FILE *out)
{
    fprintf(out,
        "usage: slotctl [-c FILE] [--json] COMMAND [ARGS]\n"
        "  status                    the whole picture: intake, workers, epoch, dead letters\n"
        "  workers                   registered workers: live, slots, queue, in flight, heartbeat\n"
        "  slots [--map]             each worker's slot ranges; --map draws the slot space\n"
        "  keyslot KEY               KEY's slot and the worker that owns it\n"
        "  push [--key K] [TASK|-]   push TASK (or standard input) onto the intake;\n"
        "                            --key sets the routing key field of a JSON object task\n"
        "  dead list [N]             the N newest dead letters (default 10)\n"
        "  dead requeue [N]          put the N oldest (default all) back on the intake, original bytes\n"
        "  dead purge                delete every dead letter\n"
        "  drain [--undo] WORKER     move WORKER's slots away (it stays registered); --undo gives it slots again\n"
        "FILE defaults to /etc/slotd/slotd.yaml. Exit: 0 ok, 1 failed, 2 not found, 64 usage,\n"
        "69 Redis unreachable, 78 bad config. See slotctl(1).\n");
}

static redisReply *cmd(struct ctl *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(x->c, fmt, ap);
    va_end(ap);
    if (r == NULL) {
        fprintf(stderr, "slotctl: Redis connection lost: %s\n", x->c->errstr);
        exit(EXIT_UNAVAILABLE);
    }
    if (r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "slotctl: Redis refused '%s': %s\n", fmt, r->str);
        freeReplyObject(r);
        exit(EXIT_FAIL);
    }
    return r;
}

static int connect_redis(struct ctl *x)
{
    const struct conf *cf = &x->conf;
    struct timeval tv = { 3, 0 };
    x->c = cf->redis.unix_path[0] ? redisConnectUnixWithTimeout(cf->redis.unix_path, tv)
                                  : redisConnectWithTimeout(cf->redis.host, cf->redis.port, tv);
    if (x->c == NULL || x->c->err) {
        fprintf(stderr, "slotctl: cannot reach Redis at %s%s%d: %s\n",
                cf->redis.unix_path[0] ? cf->redis.unix_path : cf->redis.host,
                cf->redis.unix_path[0] ? "" : ":", cf->redis.unix_path[0] ? 0 : cf->redis.port,
                x->c ? x->c->errstr : "out of memory");
        return -1;
    }
    if (cf->redis.password) {
        redisReply *r = cf->redis.username[0]
                            ? redisCommand(x->c, "AUTH %s %s", cf->redis.username, cf->redis.password)
                            : redisCommand(x->c, "AUTH %s", cf->redis.password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "slotctl: Redis refused AUTH: %s\n", r ? r->str : x->c->errstr);
            return -1;
        }
        freeReplyObject(r);
    }
    if (cf->redis.db)
        freeReplyObject(cmd(x, "SELECT %d", cf->redis.db));
    return 0;
}

static long long llen(struct ctl *x, const char *key)
{
    redisReply *r = cmd(x, "LLEN %s", key);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/* The slot table saved in {ns}:slots. */
static void load_table(struct ctl *x, struct slotmap *m)
{
    char err[256];
    slotmap_init(m);
    redisReply *r = cmd(x, "HGETALL %s", x->keys.slots);
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (slotmap_claim(m, r->element[i]->str, r->element[i + 1]->str, r->element[i + 1]->len,
                          err, sizeof err) != 0)
            fprintf(stderr, "slotctl: slot table entry of %s: %s\n", r->element[i]->str, err);
    freeReplyObject(r);
}

static void print_json(json_t *doc)
{
    char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s)
        puts(s);
    free(s);
    json_decref(doc);
}

/* One row per worker registered or owning slots. */
static json_t *workers_json(struct ctl *x, const struct slotmap *m)
{
    json_t *arr = json_array();
    redisReply *set = cmd(x, "SMEMBERS %s", x->keys.workers);
    redisReply *drain = cmd(x, "SMEMBERS %s", x->keys.draining);
    char name[KEYS_NAME_MAX];
    char *ranges = malloc(SLOTMAP_RANGES_MAX);
    /* Ids: the set's, then table owners not in it (departing). */
    size_t n = set->elements + m->nworkers;
    const char **ids = calloc(n ? n : 1, sizeof *ids);
    size_t k = 0;
    for (size_t i = 0; i < set->elements; i++)
        ids[k++] = set->element[i]->str;
    for (uint32_t i = 0; i < m->nworkers; i++) {
        int seen = 0;
        for (size_t j = 0; j < set->elements; j++)
            seen |= strcmp(set->element[j]->str, m->workers[i].id) == 0;
        if (!seen)
            ids[k++] = m->workers[i].id;
    }
    for (size_t i = 0; i < k; i++) {
        const char *id = ids[i];
        int idx = slotmap_find(m, id);
        redisReply *hb = cmd(x, "GET %s", keys_hb(&x->keys, id, name, sizeof name));
        redisReply *ttl = cmd(x, "PTTL %s", name);
        int draining = 0;
        for (size_t j = 0; j < drain->elements; j++)
            draining |= strcmp(drain->element[j]->str, id) == 0;
        json_t *o = json_pack("{s:s, s:b, s:b, s:i, s:s, s:I, s:I}", "id", id,
                              "live", hb->type == REDIS_REPLY_STRING, "draining", draining,
                              "slots_owned", idx >= 0 ? (int)m->workers[idx].nslots : 0,
                              "slots", "", "queue", llen(x, keys_queue(&x->keys, id, name, sizeof name)),
                              "inflight", llen(x, keys_inflight(&x->keys, id, name, sizeof name)));
        if (idx >= 0 && ranges) {
            slotmap_format_ranges(m, (uint32_t)idx, ranges, SLOTMAP_RANGES_MAX);
            json_object_set_new(o, "slots", json_string(ranges));
        }
        if (ttl->integer >= 0)
            json_object_set_new(o, "heartbeat_ttl_left_ms", json_integer(ttl->integer));
        if (hb->type == REDIS_REPLY_STRING) {
            json_error_t err;
            json_t *beat = json_loadb(hb->str, hb->len, 0, &err);
            if (beat)
                json_object_set_new(o, "heartbeat", beat);
        }
        json_array_append_new(arr, o);
        freeReplyObject(hb);
        freeReplyObject(ttl);
    }
    free(ids);
    free(ranges);
    freeReplyObject(set);
    freeReplyObject(drain);
    return arr;
}

/* The fenced handoffs: [{"worker", "slots", "waiting"}]. */
static json_t *fences_json(struct ctl *x)
{
    json_t *arr = json_array();
    char key[KEYS_NAME_MAX];
    redisReply *r = cmd(x, "HGETALL %s", x->keys.fences);
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const char *id = r->element[i]->str;
        long long waiting = llen(x, keys_fenced(&x->keys, id, key, sizeof key));
        json_array_append_new(arr, json_pack("{s:s, s:s, s:I}", "worker", id, "slots",
                                             r->element[i + 1]->str, "waiting", (json_int_t)waiting));
    }
    freeReplyObject(r);
    return arr;
}

static int do_status(struct ctl *x)
{
    struct slotmap m;
    load_table(x, &m);
    redisReply *ep = cmd(x, "GET %s", x->keys.epoch);
    json_t *doc = json_pack("{s:s, s:I, s:I, s:s, s:i, s:o, s:o}", "namespace", x->keys.ns,
                            "intake_length", llen(x, x->keys.intake), "dead_letters", llen(x, x->keys.dead),
                            "epoch", ep->type == REDIS_REPLY_STRING ? ep->str : "0",
                            "live_workers_with_slots", (int)m.nworkers, "workers", workers_json(x, &m),
                            "fences", fences_json(x));
    freeReplyObject(ep);
    if (x->json) {
        print_json(doc);
    } else {
        printf("namespace %s, epoch %s\n", x->keys.ns, json_string_value(json_object_get(doc, "epoch")));
        printf("intake    %lld tasks waiting\n", (long long)json_integer_value(json_object_get(doc, "intake_length")));
        printf("dead      %lld dead letters\n", (long long)json_integer_value(json_object_get(doc, "dead_letters")));
        printf("workers   %u own slots\n", m.nworkers);
        if (m.nworkers == 0)
            printf("          no live worker: the intake is not routed\n");
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(doc, "fences"), i, f)
            printf("fenced    %s handed off %s; %lld tasks wait until it finishes the ones it holds\n",
                   json_string_value(json_object_get(f, "worker")),
                   json_string_value(json_object_get(f, "slots")),
                   (long long)json_integer_value(json_object_get(f, "waiting")));
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
            char hb[32] = "-";
            if (ttl)
                snprintf(hb, sizeof hb, "%lldms", (long long)json_integer_value(ttl));
            printf("%-20s %-5s %6lld %8lld %9lld %9s  %s%s\n", json_string_value(json_object_get(w, "id")),
                   json_is_true(json_object_get(w, "live")) ? "yes" : "no",
                   (long long)json_integer_value(json_object_get(w, "slots_owned")),
                   (long long)json_integer_value(json_object_get(w, "queue")),
                   (long long)json_integer_value(json_object_get(w, "inflight")), hb,
                   json_string_value(json_object_get(w, "slots")),
                   json_is_true(json_object_get(w, "draining")) ? " (draining)" : "");
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
    load_table(x, &m);
    if (x->json) {
        json_t *o = json_object();
        for (uint32_t i = 0; i < m.nworkers; i++) {
            slotmap_format_ranges(&m, i, ranges, SLOTMAP_RANGES_MAX);
            json_object_set_new(o, m.workers[i].id, json_string(ranges));
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
    load_table(x, &m);
    unsigned slot = keyslot(key, strlen(key));
    unsigned o = slotmap_owner(&m, slot);
    const char *owner = o == SLOTMAP_NOBODY ? NULL : m.workers[o].id;
    if (x->json)
        print_json(json_pack("{s:s, s:i, s:s?}", "key", key, "slot", (int)slot, "worker", owner));
    else
        printf("%s: slot %u, %s%s\n", key, slot, owner ? "worker " : "", owner ? owner : "no owner");
    slotmap_free(&m);
    return EXIT_OK;
}

static int do_push(struct ctl *x, const char *key, const char *task)
{
    char *data = NULL;
    size_t len = 0;
    if (task == NULL || strcmp(task, "-") == 0) {
        FILE *in = open_memstream(&data, &len);
        char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, stdin)) > 0)
            fwrite(buf, 1, n, in);
        fclose(in);
        /* One trailing newline from a shell pipe is not part of the task. */
        if (len > 0 && data[len - 1] == '\n')
            len--;
    } else {
        data = strdup(task);
        len = strlen(task);
    }
    if (key != NULL) {
        const char *field = x->conf.routing.key_field;
        json_error_t err;
        json_t *o = len ? json_loadb(data, len, 0, &err) : json_object();
        if (field[0] == '\0' || o == NULL || !json_is_object(o)) {
            fprintf(stderr, "slotctl: --key needs routing.key_field set and a JSON object task%s%s\n",
                    o == NULL ? ": " : "", o == NULL ? err.text : "");
            json_decref(o);
            free(data);
            return EXIT_USAGE;
        }
        json_object_set_new(o, field, json_string(key));
        free(data);
        data = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        len = strlen(data);
        json_decref(o);
    }
    redisReply *r = cmd(x, "LPUSH %s %b", x->keys.intake, data, len);
    if (!x->json)
        printf("pushed %zu bytes onto %s (%lld waiting)\n", len, x->keys.intake, r->integer);
    freeReplyObject(r);
    free(data);
    return EXIT_OK;
}

static int do_dead_list(struct ctl *x, long n)
{
    redisReply *r = cmd(x, "LRANGE %s 0 %ld", x->keys.dead, n - 1);
    json_t *arr = json_array();
    for (size_t i = 0; i < r->elements; i++) {
        json_error_t err;
        json_t *e = json_loadb(r->element[i]->str, r->element[i]->len, JSON_ALLOW_NUL, &err);
        json_array_append_new(arr, e ? e : json_string("(not a dead letter)"));
    }
    if (x->json) {
        print_json(arr);
    } else {
        size_t i;
        json_t *e;
        if (r->elements == 0)
            printf("no dead letters\n");
        json_array_foreach(arr, i, e) {
            const char *task = json_string_value(json_object_get(e, "task"));
            printf("%-14s %s\n  %s%.*s%s\n", json_string_value(json_object_get(e, "reason")),
                   json_string_value(json_object_get(e, "detail")), task ? "" : "(binary, base64) ",
                   120, task ? task : json_string_value(json_object_get(e, "task_base64")),
                   task && strlen(task) > 120 ? "…" : "");
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
            fprintf(stderr, "slotctl: the oldest entry of %s is not a dead letter; stopping\n", x->keys.dead);
            freeReplyObject(last);
            freeReplyObject(cmd(x, "UNWATCH"));
            return EXIT_FAIL;
        }
        freeReplyObject(cmd(x, "MULTI"));
        freeReplyObject(cmd(x, "RPOP %s", x->keys.dead));
        freeReplyObject(cmd(x, "LPUSH %s %b", x->keys.intake, task, len));
        redisReply *ex = cmd(x, "EXEC");
        if (ex->type == REDIS_REPLY_ARRAY)
            done++;     /* nil: the list changed meanwhile; look again */
        freeReplyObject(ex);
        freeReplyObject(last);
        free(task);
    }
    printf("requeued %ld dead letters onto %s\n", done, x->keys.intake);
    return done == 0 ? EXIT_NOTFOUND : EXIT_OK;
}

static int do_dead_purge(struct ctl *x)
{
    long long n = llen(x, x->keys.dead);
    freeReplyObject(cmd(x, "DEL %s", x->keys.dead));
    printf("purged %lld dead letters\n", n);
    return EXIT_OK;
}

static int do_drain(struct ctl *x, const char *id, int undo)
{
    if (!slotmap_valid_id(id, strlen(id))) {
        fprintf(stderr, "slotctl: '%s' is not a valid worker id\n", id);
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
    printf(undo ? "worker %s gets slots again at slotd's next check\n"
                : "worker %s is draining: slotd moves its slots (and queued tasks) at its next check;\n"
                  "it finishes what it holds; stop it when `slotctl workers` shows it empty\n", id);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "json", no_argument, NULL, 'j' }, { "map", no_argument, NULL, 'm' },
        { "key", required_argument, NULL, 'k' }, { "undo", no_argument, NULL, 'u' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    struct ctl x;
    const char *path = "/etc/slotd/slotd.yaml", *key = NULL;
    char err[1024];
    int opt, map = 0, undo = 0, rc;

    memset(&x, 0, sizeof x);
    while ((opt = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 'j': x.json = 1; break;
        case 'm': map = 1; break;
        case 'k': key = optarg; break;
        case 'u': undo = 1; break;
        case 'V': printf("slotctl %s\n", SLOTD_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *what = argv[optind];
    int nargs = argc - optind - 1;
    char **args = argv + optind + 1;
    if (conf_load(&x.conf, path, err, sizeof err) != 0) {
        fprintf(stderr, "slotctl: %s\n", err);
        return EXIT_CONFIG;
    }
    if (keys_init(&x.keys, x.conf.ns) != 0 || connect_redis(&x) != 0) {
        conf_free(&x.conf);
        if (x.c)
            redisFree(x.c);
        return EXIT_UNAVAILABLE;
    }
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
    else {
        usage(stderr);
        rc = EXIT_USAGE;
    }
    redisFree(x.c);
    conf_free(&x.conf);
    return rc;
}
