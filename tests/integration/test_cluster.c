/*
 * Integration: slotd on a real Redis Cluster (3 masters, 3 replicas,
 * cluster-node-timeout 1000, made by redis-cli --cluster create): namespaces
 * on three masters and a namespace of three shards, routed as the slot
 * table says, exactly once, each key in order, tasks pushed to the wrong
 * shard forwarded across nodes; kill -9 of one master under load (only its
 * namespace pauses, and resumes on the promoted replica); a namespace's slot
 * migrated to another master, drained and while it has tasks.
 *
 * The workers here are heartbeats only: their queues fill up and are read
 * at the end, so what is checked is slotd's routing. The producers are child
 * processes that push with WAIT 1 (so that a failover loses no push they
 * were told of) and follow the slot's master as a cluster client would.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness_cluster.h"
#include "harness.h"
#include "keys.h"
#include "keyslot.h"
#include "slotmap.h"
#include "syncworker.h"
#include "check_main.h"

#define NKEYS 16

/* One namespace (or shard) on the cluster, and its slotd. */
struct ns {
    char     name[32];
    int      shard, nshards;
    struct keys keys;
    unsigned slot;          /* of its hash tag */
    char     conf[600], log[600];
    pid_t    slotd;
    pid_t    producer;
};

struct world {
    struct harness_cluster c;
    char dir[256];
};

static void world_start(struct world *w)
{
    ck_assert_int_eq(harness_cluster_start(&w->c, 3, 1), 0);
    /* The others keep working while one master is failed over. */
    for (int i = 0; i < w->c.nnodes; i++) {
        redisContext *x = harness_redis_connect(&w->c.node[i]);
        ck_assert_ptr_nonnull(x);
        freeReplyObject(harness_cmd(x, "CONFIG SET cluster-require-full-coverage no"));
        redisFree(x);
    }
    ck_assert_int_eq(harness_tmpdir(w->dir, sizeof w->dir), 0);
}

static void world_stop(struct world *w)
{
    harness_cluster_stop(&w->c);
    harness_tmpdir_remove(w->dir);
}

static void ns_init(struct ns *n, const char *name, int shard, int nshards)
{
    memset(n, 0, sizeof *n);
    snprintf(n->name, sizeof n->name, "%s", name);
    n->shard = shard;
    n->nshards = nshards;
    ck_assert_int_eq(keys_init_shard(&n->keys, name, shard, nshards), 0);
    n->slot = keys_slot(&n->keys);
}

/* A connection to whoever serves n's slot now (retried through a failover
 * or a migration, up to 10 s). */
static redisContext *ns_connect(struct world *w, const struct ns *n)
{
    for (int i = 0; i < 200; i++) {
        redisContext *x = harness_cluster_connect(&w->c, n->slot);
        if (x != NULL) {
            redisReply *r = redisCommand(x, "ROLE");
            int master = r != NULL && r->type == REDIS_REPLY_ARRAY &&
                         strcmp(r->element[0]->str, "master") == 0;
            if (r)
                freeReplyObject(r);
            if (master)
                return x;
            redisFree(x);
        }
        usleep(50000);
    }
    ck_abort_msg("no master for slot %u", n->slot);
    return NULL;
}

static void ns_write_conf(struct world *w, struct ns *n, const char *extra)
{
    char seeds[512], text[2048];
    /* One file per shard: a slotd starting must not read one being written. */
    snprintf(n->conf, sizeof n->conf, "%s/%s-%d.yaml", w->dir, n->name, n->shard);
    snprintf(text, sizeof text,
             "namespace: %s\nshards: %d\nredis:\n  cluster_seeds: \"%s\"\n"
             "workers:\n  check_interval_ms: 100\n  heartbeat_ttl_ms: 60000\n"
             "dispatch:\n  batch: 100\nleader:\n  lease_ms: 1000\n  renew_ms: 200\n"
             "http:\n  listen: \"\"\n%s",
             n->name, n->nshards, harness_cluster_seeds(&w->c, seeds, sizeof seeds),
             extra ? extra : "");
    ck_assert_int_eq(harness_write_file(n->conf, text), 0);
}

/* Registers worker `id` in n (a heartbeat for ten minutes). */
static void ns_beat(struct world *w, struct ns *n, const char *id)
{
    char hb[KEYS_NAME_MAX];
    redisContext *x = ns_connect(w, n);
    freeReplyObject(harness_cmd(x, "SET %s {} PX 600000", keys_hb(&n->keys, id, hb, sizeof hb)));
    freeReplyObject(harness_cmd(x, "SADD %s %s", n->keys.workers, id));
    redisFree(x);
}

static void slotd_start(struct world *w, struct ns *n)
{
    char bin[512], shard[16];
    snprintf(bin, sizeof bin, "%s/slotd", harness_build_dir());
    snprintf(shard, sizeof shard, "%d", n->shard);
    snprintf(n->log, sizeof n->log, "%s/slotd-%s-%d.log", w->dir, n->name, n->shard);
    char *argv[] = { bin, "-c", n->conf, "-s", shard, NULL };
    n->slotd = harness_spawn(argv, n->log);
    ck_assert_int_gt(n->slotd, 0);
}

static void slotd_stop(struct ns *n)
{
    int st = 0;
    if (n->slotd <= 0)
        return;
    harness_kill(n->slotd, SIGTERM);
    if (harness_wait_exit(n->slotd, 8000, &st) != 0) {
        harness_kill(n->slotd, SIGKILL);
        harness_wait_exit(n->slotd, 5000, &st);
    }
    n->slotd = 0;
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "slotd of %s exited 0x%x", n->name, st);
}

static int log_count(const struct ns *n, const char *text)
{
    return harness_file_count(n->log, text);
}

static void wait_log(const struct ns *n, const char *text, int timeout_ms)
{
    ck_assert_msg(harness_file_wait(n->log, text, timeout_ms) == 0, "%s never logged '%s'",
                  n->log, text);
}

static void no_sanitizer_report(const struct ns *n)
{
    ck_assert_msg(log_count(n, "runtime error") == 0 && log_count(n, "Sanitizer") == 0,
                  "%s has a sanitizer report", n->log);
}

/* ---- producers ---------------------------------------------------------- */

/* The key of index k of namespace name. */
static int key_name(char *buf, size_t cap, const char *name, int k)
{
    return snprintf(buf, cap, "%s-k%d", name, k);
}

/*
 * A producer child: pushes tasks seq = 0.. of every key onto the intake of
 * `into` (the shard it pushes to, right or wrong), ten of each of half the
 * keys per LPUSH, each LPUSH followed by WAIT 1, a round of all keys every
 * 20 ms, until `total` per key or SIGTERM. A push refused
 * (MOVED, TRYAGAIN, CLUSTERDOWN, a replica) is sent again to whoever serves
 * the slot then; one whose connection was lost may have been made or not:
 * it is not sent again, and its tasks are written to <dir>/maybe-<name> as
 * "key seq" lines. The last seq pushed for every key goes to
 * <dir>/done-<name>.
 */
static volatile sig_atomic_t producer_stop;
static void on_producer_term(int sig)
{
    (void)sig;
    producer_stop = 1;
}

static void producer_main(struct world *w, struct ns *into, const char *name, int total)
{
    char path[600];
    snprintf(path, sizeof path, "%s/maybe-%s-%d", w->dir, name, into->shard);
    FILE *maybe = fopen(path, "w");
    signal(SIGTERM, on_producer_term);
    redisContext *x = NULL;
    int seq = 0;
    char task[NKEYS / 2 * 10][96];
    const char *argv[2 + NKEYS * 10];
    while (seq < total && !producer_stop) {
        /* Ten tasks of each key in turn: key k's tasks seq .. seq+9 (a
         * round is pushed whole, whenever SIGTERM comes). */
        for (int k = 0; k < NKEYS; k += NKEYS / 2) {
            int n = 0;
            argv[n++] = "LPUSH";
            argv[n++] = into->keys.intake;
            for (int kk = k; kk < k + NKEYS / 2; kk++)
                for (int s = seq; s < seq + 10; s++) {
                    char key[64];
                    key_name(key, sizeof key, name, kk);
                    char *t = task[(kk - k) * 10 + (s - seq)];
                    snprintf(t, 96, "{\"key\":\"%s\",\"seq\":%d}", key, s);
                    argv[n++] = t;
                }
            for (;;) {
                if (x == NULL) {
                    x = harness_cluster_connect(&w->c, into->slot);
                    if (x == NULL) {
                        usleep(20000);
                        continue;
                    }
                }
                redisAppendCommandArgv(x, n, argv, NULL);
                redisAppendCommand(x, "WAIT 1 2000");
                redisReply *r1 = NULL, *r2 = NULL;
                int ok1 = redisGetReply(x, (void **)&r1) == REDIS_OK;
                int ok2 = ok1 && redisGetReply(x, (void **)&r2) == REDIS_OK;
                int refused = ok1 && r1->type == REDIS_REPLY_ERROR;
                /* Made, but not known to be on a replica: a failover may
                 * lose it. */
                int unsure = ok2 && !refused &&
                             (r2->type != REDIS_REPLY_INTEGER || r2->integer < 1);
                if (r1)
                    freeReplyObject(r1);
                if (r2)
                    freeReplyObject(r2);
                if (unsure) {
                    for (int i = 2; i < n; i++)
                        fprintf(maybe, "%s\n", argv[i]);
                    fflush(maybe);
                }
                if (ok1 && ok2 && !refused)
                    break;
                redisFree(x);
                x = NULL;
                if (!ok1 || (!refused && !ok2)) {
                    /* Made or not: not sent again. */
                    for (int i = 2; i < n; i++)
                        fprintf(maybe, "%s\n", argv[i]);
                    fflush(maybe);
                    break;
                }
                usleep(20000);      /* refused: sent again */
            }
        }
        seq += 10;
        usleep(20000);      /* about 8,000 tasks a second */
    }
    fclose(maybe);
    snprintf(path, sizeof path, "%s/done-%s-%d", w->dir, name, into->shard);
    FILE *done = fopen(path, "w");
    fprintf(done, "%d\n", seq);
    fclose(done);
    if (x)
        redisFree(x);
    _exit(0);
}

/* Starts a producer of `name`'s keys pushing onto into's intake. */
static pid_t producer_start(struct world *w, struct ns *into, const char *name, int total)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        producer_main(w, into, name, total);
    return pid;
}

/* Waits for a producer's end (SIGTERM first with stop); the tasks it pushed
 * per key. */
static int producer_wait(struct world *w, const struct ns *into, const char *name, pid_t pid,
                         int stop)
{
    int st = 0;
    if (stop)
        kill(pid, SIGTERM);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "producer exited 0x%x", st);
    char path[600];
    snprintf(path, sizeof path, "%s/done-%s-%d", w->dir, name, into->shard);
    FILE *f = fopen(path, "r");
    int seq = -1;
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%d", &seq), 1);
    fclose(f);
    return seq;
}

/* ---- checking the queues ------------------------------------------------ */

/* Tasks each key had pushed, and those that may or may not have been. */
struct expect {
    int total;                      /* seq 0 .. total-1 pushed for every key */
    unsigned char maybe[NKEYS][4096];   /* seq may be missing */
};

static void read_maybe(struct world *w, const char *name, int shard, struct expect *ex)
{
    char path[600], line[200], key[64];
    snprintf(path, sizeof path, "%s/maybe-%s-%d", w->dir, name, shard);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f)) {
        int k = -1, s = -1;
        if (sscanf(line, "{\"key\":\"%63[^\"]\",\"seq\":%d}", key, &s) == 2 &&
            sscanf(strrchr(key, 'k') + 1, "%d", &k) == 1 && k >= 0 && k < NKEYS && s >= 0 &&
            s < 4096)
            ex->maybe[k][s] = 1;
    }
    fclose(f);
}

/*
 * Every task of `name`'s keys in the queues of the workers of the shards
 * in ns[0..n): each key's tasks all in one queue, the queue of the worker
 * that owns the key's slot in its shard's table (the routing a single
 * Redis gives), each once, in order; every one pushed there (none lost).
 */
static void check_routed(struct world *w, struct ns *ns, int n, const char *name,
                         const struct expect *ex, const char *const *ids, int nids)
{
    int next[NKEYS] = { 0 };
    int where[NKEYS];
    for (int k = 0; k < NKEYS; k++)
        where[k] = -1;
    for (int i = 0; i < n; i++) {
        redisContext *x = ns_connect(w, &ns[i]);
        struct slotmap map;
        char err[256];
        slotmap_init(&map);
        redisReply *t = harness_cmd(x, "HGETALL %s", ns[i].keys.slots);
        for (size_t j = 0; j + 1 < t->elements; j += 2)
            ck_assert_msg(slotmap_claim(&map, t->element[j]->str, t->element[j + 1]->str,
                                        t->element[j + 1]->len, err, sizeof err) == 0, "%s", err);
        freeReplyObject(t);
        for (int q = 0; q < nids; q++) {
            char queue[KEYS_NAME_MAX];
            keys_queue(&ns[i].keys, ids[q], queue, sizeof queue);
            redisReply *r = harness_cmd(x, "LRANGE %s 0 -1", queue);
            for (size_t j = r->elements; j-- > 0;) {
                char key[64];
                int k = -1, s = -1;
                const char *task = r->element[j]->str;
                ck_assert_msg(sscanf(task, "{\"key\":\"%63[^\"]\",\"seq\":%d}", key, &s) == 2,
                              "%s", task);
                if (strncmp(key, name, strlen(name)) != 0 || key[strlen(name)] != '-')
                    continue;       /* another namespace's keys pushed here: not this check's */
                ck_assert_int_eq(sscanf(strrchr(key, 'k') + 1, "%d", &k), 1);
                ck_assert(k >= 0 && k < NKEYS);
                unsigned slot = keyslot(key, strlen(key));
                int shard = keys_shard_of(slot, ns[i].nshards);
                ck_assert_msg(shard == ns[i].shard, "%s (shard %d) routed in shard %d", key,
                              shard, ns[i].shard);
                int owner = slotmap_owner(&map, slot);
                ck_assert_msg(owner != SLOTMAP_NOBODY &&
                              strcmp(map.workers[owner].id, ids[q]) == 0,
                              "%s (slot %u) in %s, not its owner's queue", key, slot, queue);
                ck_assert_msg(where[k] == -1 || where[k] == i * nids + q, "%s in two queues", key);
                where[k] = i * nids + q;
                while (next[k] < s && ex->maybe[k][next[k]])
                    next[k]++;      /* a push that was not made */
                ck_assert_msg(s == next[k], "%s: seq %d where %d was due (%s)", key, s, next[k],
                              s < next[k] ? "twice or out of order" : "lost");
                next[k]++;
            }
            freeReplyObject(r);
        }
        slotmap_free(&map);
        redisFree(x);
    }
    for (int k = 0; k < NKEYS; k++) {
        while (next[k] < ex->total && ex->maybe[k][next[k]])
            next[k]++;
        ck_assert_msg(next[k] == ex->total, "%s-k%d: %d of %d tasks", name, k, next[k],
                      ex->total);
    }
}

/* Waits until the intakes (and forward lists) of ns[0..n) are empty. */
static void wait_drained(struct world *w, struct ns *ns, int n, int timeout_ms)
{
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    for (int i = 0; i < n; i++) {
        for (;;) {
            redisContext *x = ns_connect(w, &ns[i]);
            long long left = harness_llen(x, ns[i].keys.intake);
            for (int j = 0; j < ns[i].nshards; j++) {
                char fwd[KEYS_NAME_MAX];
                if (j != ns[i].shard && ns[i].nshards > 1)
                    left += harness_llen(x, keys_forward(&ns[i].keys, j, fwd, sizeof fwd));
            }
            redisFree(x);
            if (left == 0)
                break;
            ck_assert_msg(harness_now_ms() < end, "%s shard %d: %lld tasks not routed",
                          ns[i].name, ns[i].shard, left);
            usleep(50000);
        }
    }
}

/* Names ns-<i> whose slots are served by three different masters. */
static void three_on_three_masters(struct world *w, struct ns ns[3])
{
    int port[3] = { 0 }, found = 0;
    for (int i = 0; found < 3 && i < 1000; i++) {
        char name[32];
        snprintf(name, sizeof name, "ns%d", i);
        struct ns n;
        ns_init(&n, name, 0, 1);
        int p = harness_cluster_master_of(&w->c, n.slot);
        if (p <= 0 || p == port[0] || p == port[1] || p == port[2])
            continue;
        port[found] = p;
        ns[found++] = n;
    }
    ck_assert_int_eq(found, 3);
}

static const char *const two_ids[] = { "w1", "w2" };

START_TEST(namespaces_on_three_masters_and_one_in_three_shards)
{
    struct world w;
    world_start(&w);
    struct ns ns[3], sh[3];
    three_on_three_masters(&w, ns);
    for (int i = 0; i < 3; i++)
        ns_init(&sh[i], "orders", i, 3);
    struct ns *all[6] = { &ns[0], &ns[1], &ns[2], &sh[0], &sh[1], &sh[2] };
    for (int i = 0; i < 6; i++) {
        ns_write_conf(&w, all[i], NULL);
        ns_beat(&w, all[i], "w1");
        ns_beat(&w, all[i], "w2");
        slotd_start(&w, all[i]);
    }
    for (int i = 0; i < 6; i++)
        wait_log(all[i], "joined", 15000);
    /* Each namespace's own keys; all of "orders"'s keys pushed onto shard
     * 0's intake, whatever their shard (forwarded across nodes). */
    pid_t pid[4];
    for (int i = 0; i < 3; i++)
        pid[i] = producer_start(&w, &ns[i], ns[i].name, 100);
    pid[3] = producer_start(&w, &sh[0], "orders", 100);
    struct expect *ex = calloc(4, sizeof *ex);
    for (int i = 0; i < 3; i++) {
        ex[i].total = producer_wait(&w, &ns[i], ns[i].name, pid[i], 0);
        read_maybe(&w, ns[i].name, 0, &ex[i]);
    }
    ex[3].total = producer_wait(&w, &sh[0], "orders", pid[3], 0);
    read_maybe(&w, "orders", 0, &ex[3]);
    wait_drained(&w, ns, 3, 20000);
    wait_drained(&w, sh, 3, 20000);
    for (int i = 0; i < 3; i++)
        check_routed(&w, &ns[i], 1, ns[i].name, &ex[i], two_ids, 2);
    check_routed(&w, sh, 3, "orders", &ex[3], two_ids, 2);
    /* Each slotd says which node it found its slot on. */
    for (int i = 0; i < 6; i++) {
        char want[160];
        snprintf(want, sizeof want, "slot %u (%s) is 127.0.0.1:", all[i]->slot, all[i]->keys.tag);
        ck_assert_msg(log_count(all[i], want) == 1, "%s: no '%s'", all[i]->log, want);
        slotd_stop(all[i]);
        no_sanitizer_report(all[i]);
    }
    free(ex);
    world_stop(&w);
}
END_TEST

/* The longest time, in ms, between two growths of the queues of n while
 * `until`: sampled every few ms. */
struct watch {
    struct ns *n;
    long long  last;
    uint64_t   last_ms, worst_ms;
    redisContext *x;
};

static void watch_sample(struct world *w, struct watch *v, uint64_t now)
{
    if (v->x == NULL)
        v->x = ns_connect(w, v->n);
    char q1[KEYS_NAME_MAX], q2[KEYS_NAME_MAX];
    redisAppendCommand(v->x, "LLEN %s", keys_queue(&v->n->keys, "w1", q1, sizeof q1));
    redisAppendCommand(v->x, "LLEN %s", keys_queue(&v->n->keys, "w2", q2, sizeof q2));
    redisReply *a = NULL, *b = NULL;
    if (redisGetReply(v->x, (void **)&a) != REDIS_OK || redisGetReply(v->x, (void **)&b) != REDIS_OK) {
        redisFree(v->x);
        v->x = NULL;
        return;
    }
    long long len = (a->type == REDIS_REPLY_INTEGER ? a->integer : 0) +
                    (b->type == REDIS_REPLY_INTEGER ? b->integer : 0);
    freeReplyObject(a);
    freeReplyObject(b);
    if (len != v->last) {
        if (v->last_ms && now - v->last_ms > v->worst_ms)
            v->worst_ms = now - v->last_ms;
        v->last = len;
        v->last_ms = now;
    }
}

START_TEST(kill_9_of_a_master_pauses_only_its_namespace)
{
    struct world w;
    world_start(&w);
    struct ns ns[3];
    three_on_three_masters(&w, ns);
    for (int i = 0; i < 3; i++) {
        ns_write_conf(&w, &ns[i], NULL);
        ns_beat(&w, &ns[i], "w1");
        ns_beat(&w, &ns[i], "w2");
        slotd_start(&w, &ns[i]);
    }
    for (int i = 0; i < 3; i++)
        wait_log(&ns[i], "joined", 15000);
    pid_t pid[3];
    for (int i = 0; i < 3; i++)
        pid[i] = producer_start(&w, &ns[i], ns[i].name, 4000);
    struct watch v[3] = { { &ns[0], 0, 0, 0, NULL }, { &ns[1], 0, 0, 0, NULL },
                          { &ns[2], 0, 0, 0, NULL } };
    /* A second of steady routing, then ns[0]'s master killed. */
    uint64_t t0 = harness_now_ms();
    while (harness_now_ms() < t0 + 1000)
        for (int i = 1; i < 3; i++)
            watch_sample(&w, &v[i], harness_now_ms());
    int old = harness_cluster_master_of(&w.c, ns[0].slot);
    struct harness_redis *victim = harness_cluster_node(&w.c, old);
    ck_assert_ptr_nonnull(victim);
    redisContext *x0 = ns_connect(&w, &ns[0]);
    char q1[KEYS_NAME_MAX], q2[KEYS_NAME_MAX];
    keys_queue(&ns[0].keys, "w1", q1, sizeof q1);
    keys_queue(&ns[0].keys, "w2", q2, sizeof q2);
    long long before = harness_llen(x0, q1) + harness_llen(x0, q2);
    redisFree(x0);
    uint64_t killed = harness_now_ms();
    harness_redis_kill(victim, SIGKILL);
    /* The others never stop; ns[0] resumes on the promoted replica. */
    uint64_t resumed = 0, promoted = 0;
    while (harness_now_ms() < killed + 8000 && resumed == 0) {
        uint64_t now = harness_now_ms();
        for (int i = 1; i < 3; i++)
            watch_sample(&w, &v[i], now);
        int p = harness_cluster_master_of(&w.c, ns[0].slot);
        if (p > 0 && p != old) {
            if (promoted == 0)
                promoted = now;
            struct harness_redis *nm = harness_cluster_node(&w.c, p);
            redisContext *x = nm ? harness_redis_connect(nm) : NULL;
            if (x != NULL) {
                long long len = harness_llen(x, q1) + harness_llen(x, q2);
                redisFree(x);
                if (len > before)
                    resumed = harness_now_ms();
            }
        }
        usleep(5000);
    }
    ck_assert_msg(resumed != 0, "%s never resumed on the promoted replica", ns[0].name);
    fprintf(stderr, "cluster: %s routed again %llu ms after kill -9 of its master (%llu ms after "
            "the replica's promotion was seen); the others' longest gaps %llu and %llu ms\n",
            ns[0].name, (unsigned long long)(resumed - killed),
            (unsigned long long)(resumed - promoted), (unsigned long long)v[1].worst_ms,
            (unsigned long long)v[2].worst_ms);
    ck_assert_msg(resumed - killed <= 3500, "%s resumed after %llu ms", ns[0].name,
                  (unsigned long long)(resumed - killed));
    struct expect *ex = calloc(3, sizeof *ex);
    for (int i = 0; i < 3; i++) {
        ex[i].total = producer_wait(&w, &ns[i], ns[i].name, pid[i], 1);
        read_maybe(&w, ns[i].name, 0, &ex[i]);
        if (v[i].x)
            redisFree(v[i].x);
    }
    wait_drained(&w, ns, 3, 20000);
    for (int i = 0; i < 3; i++)
        check_routed(&w, &ns[i], 1, ns[i].name, &ex[i], two_ids, 2);
    ck_assert_msg(log_count(&ns[0], "moved: 127.0.0.1:") >= 1, "%s did not follow", ns[0].log);
    for (int i = 0; i < 3; i++) {
        slotd_stop(&ns[i]);
        no_sanitizer_report(&ns[i]);
    }
    for (int i = 1; i < 3; i++) {
        ck_assert_int_eq(log_count(&ns[i], "moved:"), 0);
        ck_assert_msg(v[i].worst_ms <= 200, "%s stopped for %llu ms", ns[i].name,
                      (unsigned long long)v[i].worst_ms);
    }
    free(ex);
    world_stop(&w);
}
END_TEST

/* A libslotd worker of n in a child process (syncworker.h), its files in
 * <w->dir>/<name>-<id>/. */
static pid_t real_worker(struct world *w, struct ns *n, const char *id, char *wdir, size_t cap)
{
    static char seeds[512];
    snprintf(wdir, cap, "%.255s/%.31s-%.15s", w->dir, n->name, id);
    ck_assert_int_eq(mkdir(wdir, 0700), 0);
    struct slotd_worker_options o = {
        .ns = n->name, .id = id, .prefetch = 50, .heartbeat_ttl_ms = 3000,
        .cluster_seeds = harness_cluster_seeds(&w->c, seeds, sizeof seeds),
        .connect_timeout_ms = 500, .reply_timeout_ms = 1000,
    };
    pid_t pid = syncworker_start(wdir, &o, 0);
    ck_assert_int_gt(pid, 0);
    return pid;
}

/* What one worker's done.log says: every run's key index, seq and time. */
struct run_log {
    int       n;
    int       key[200000];
    int       seq[200000];
    uint64_t  ms[200000];
};

static void read_done(const char *wdir, struct run_log *l)
{
    char path[700], line[256], key[64];
    snprintf(path, sizeof path, "%.600s/done.log", wdir);
    FILE *f = fopen(path, "r");
    l->n = 0;
    if (f == NULL)
        return;
    while (l->n < 200000 && fgets(line, sizeof line, f)) {
        int s;
        unsigned long long t;
        if (sscanf(line, "{\"key\":\"%63[^\"]\",\"seq\":%d} %llu", key, &s, &t) != 3)
            continue;
        l->key[l->n] = atoi(strrchr(key, 'k') + 1);
        l->seq[l->n] = s;
        l->ms[l->n] = t;
        l->n++;
    }
    fclose(f);
}

/* The longest time between two completions in [from, to]. */
static uint64_t longest_gap(const struct run_log *l, uint64_t from, uint64_t to)
{
    uint64_t last = from, worst = 0;
    for (int i = 0; i < l->n; i++) {
        if (l->ms[i] < from || l->ms[i] > to)
            continue;
        if (l->ms[i] - last > worst)
            worst = l->ms[i] - last;
        last = l->ms[i];
    }
    return to - last > worst ? to - last : worst;
}

/* Every task pushed ran (those that may not have been pushed aside), each
 * key's first runs in order; re-runs counted. */
static int check_ran(const struct run_log *l, const char *name, const struct expect *ex)
{
    static unsigned char ran[NKEYS][4096];
    int again = 0, last[NKEYS];
    memset(ran, 0, sizeof ran);
    for (int k = 0; k < NKEYS; k++)
        last[k] = -1;
    for (int i = 0; i < l->n; i++) {
        int k = l->key[i], s = l->seq[i];
        ck_assert(k >= 0 && k < NKEYS && s >= 0 && s < 4096);
        if (ran[k][s]) {
            again++;
            continue;
        }
        ran[k][s] = 1;
        ck_assert_msg(s > last[k], "%s-k%d: seq %d first ran after %d", name, k, s, last[k]);
        last[k] = s;
    }
    for (int k = 0; k < NKEYS; k++)
        for (int s = 0; s < ex->total; s++)
            ck_assert_msg(ran[k][s] || ex->maybe[k][s], "%s-k%d: seq %d never ran", name, k, s);
    return again;
}

START_TEST(kill_9_of_a_master_workers_elsewhere_never_stop)
{
    struct world w;
    world_start(&w);
    struct ns ns[3];
    three_on_three_masters(&w, ns);
    pid_t worker[3];
    char wdir[3][600];
    for (int i = 0; i < 3; i++) {
        /* One worker per namespace: all of its completions in one log. */
        ns_write_conf(&w, &ns[i], NULL);
        slotd_start(&w, &ns[i]);
        worker[i] = real_worker(&w, &ns[i], "w1", wdir[i], sizeof wdir[i]);
    }
    for (int i = 0; i < 3; i++)
        wait_log(&ns[i], "joined", 15000);
    pid_t pid[3];
    for (int i = 0; i < 3; i++)
        pid[i] = producer_start(&w, &ns[i], ns[i].name, 3000);
    usleep(1500000);
    int old = harness_cluster_master_of(&w.c, ns[0].slot);
    uint64_t killed = harness_now_ms();
    harness_redis_kill(harness_cluster_node(&w.c, old), SIGKILL);
    int promoted_port = harness_cluster_wait_failover(&w.c, ns[0].slot, old, 10000);
    ck_assert_int_gt(promoted_port, 0);
    uint64_t promoted = harness_now_ms();
    usleep(3000000);
    struct expect *ex = calloc(3, sizeof *ex);
    for (int i = 0; i < 3; i++) {
        ex[i].total = producer_wait(&w, &ns[i], ns[i].name, pid[i], 1);
        read_maybe(&w, ns[i].name, 0, &ex[i]);
    }
    struct run_log *l = malloc(sizeof *l);
    for (int i = 0; i < 3; i++) {
        uint64_t end = harness_now_ms() + 20000;
        for (;;) {
            read_done(wdir[i], l);
            int all = 1;
            static unsigned char ran[NKEYS][4096];
            memset(ran, 0, sizeof ran);
            for (int j = 0; j < l->n; j++)
                ran[l->key[j]][l->seq[j]] = 1;
            for (int k = 0; k < NKEYS && all; k++)
                for (int s = 0; s < ex[i].total && all; s++)
                    all = ran[k][s] || ex[i].maybe[k][s];
            if (all || harness_now_ms() > end)
                break;
            usleep(100000);
        }
        int again = check_ran(l, ns[i].name, &ex[i]);
        uint64_t resumed = 0;
        for (int j = 0; j < l->n && i == 0 && resumed == 0; j++)
            if (l->ms[j] > killed + 200)
                resumed = l->ms[j];
        if (i == 0) {
            fprintf(stderr, "cluster: %s's worker completed again %llu ms after kill -9 of its "
                    "master (promotion seen at %llu ms); %d re-runs\n", ns[i].name,
                    (unsigned long long)(resumed - killed),
                    (unsigned long long)(promoted - killed), again);
            ck_assert_msg(resumed != 0 && resumed - killed <= 3500, "resumed after %llu ms",
                          (unsigned long long)(resumed - killed));
        } else {
            uint64_t gap = longest_gap(l, killed - 1000, killed + 4000);
            fprintf(stderr, "cluster: %s's worker (another master): longest gap between "
                    "completions %llu ms around the kill; %d re-runs\n", ns[i].name,
                    (unsigned long long)gap, again);
            ck_assert_msg(gap <= 200, "%s's completions stopped for %llu ms", ns[i].name,
                          (unsigned long long)gap);
            ck_assert_int_eq(again, 0);
        }
    }
    free(l);
    for (int i = 0; i < 3; i++) {
        syncworker_stop(worker[i]);
        slotd_stop(&ns[i]);
        no_sanitizer_report(&ns[i]);
    }
    free(ex);
    world_stop(&w);
}
END_TEST

/* The node id of the node on port. */
static void node_id(struct world *w, int port, char *id, size_t cap)
{
    redisContext *x = harness_redis_connect(harness_cluster_node(&w->c, port));
    ck_assert_ptr_nonnull(x);
    redisReply *r = harness_cmd(x, "CLUSTER MYID");
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    snprintf(id, cap, "%s", r->str);
    freeReplyObject(r);
    redisFree(x);
}

/* Moves slot from the master on `from` to the master on `to`, as redis-cli
 * --cluster reshard does for each slot: IMPORTING/MIGRATING, the keys
 * MIGRATEd a few at a time, then the slot's new node told to every master. */
static void migrate_slot(struct world *w, unsigned slot, int from, int to)
{
    char src[64], dst[64];
    node_id(w, from, src, sizeof src);
    node_id(w, to, dst, sizeof dst);
    redisContext *s = harness_redis_connect(harness_cluster_node(&w->c, from));
    redisContext *d = harness_redis_connect(harness_cluster_node(&w->c, to));
    freeReplyObject(harness_cmd(d, "CLUSTER SETSLOT %u IMPORTING %s", slot, src));
    freeReplyObject(harness_cmd(s, "CLUSTER SETSLOT %u MIGRATING %s", slot, dst));
    for (;;) {
        redisReply *k = harness_cmd(s, "CLUSTER GETKEYSINSLOT %u 10", slot);
        ck_assert_int_eq(k->type, REDIS_REPLY_ARRAY);
        size_t n = k->elements;
        for (size_t i = 0; i < n; i++) {
            redisReply *m = harness_cmd(s, "MIGRATE 127.0.0.1 %d %s 0 5000 REPLACE", to,
                                        k->element[i]->str);
            ck_assert_msg(m->type == REDIS_REPLY_STATUS, "MIGRATE: %s",
                          m->type == REDIS_REPLY_ERROR ? m->str : "?");
            freeReplyObject(m);
        }
        freeReplyObject(k);
        if (n == 0)
            break;
    }
    freeReplyObject(harness_cmd(d, "CLUSTER SETSLOT %u NODE %s", slot, dst));
    freeReplyObject(harness_cmd(s, "CLUSTER SETSLOT %u NODE %s", slot, dst));
    for (int i = 0; i < w->c.nnodes; i++) {
        redisContext *x = harness_redis_connect(&w->c.node[i]);
        redisReply *r = redisCommand(x, "ROLE");
        if (r != NULL && r->type == REDIS_REPLY_ARRAY && strcmp(r->element[0]->str, "master") == 0)
            freeReplyObject(harness_cmd(x, "CLUSTER SETSLOT %u NODE %s", slot, dst));
        if (r)
            freeReplyObject(r);
        redisFree(x);
    }
    redisFree(s);
    redisFree(d);
}

/* Another master than the one on port. */
static int other_master(struct world *w, unsigned slot, int port)
{
    for (unsigned probe = 0; probe < 16384; probe += 997) {
        int p = harness_cluster_master_of(&w->c, probe);
        if (p > 0 && p != port && probe != slot)
            return p;
    }
    ck_abort_msg("no other master");
    return -1;
}

/* Moves the lowest slot of the master on `from` to the master on `to`
 * with redis-cli --cluster reshard, as an operator would. */
static void reshard_one(struct world *w, int from, int to)
{
    char src[64], dst[64], cmd[512], out[8192];
    node_id(w, from, src, sizeof src);
    node_id(w, to, dst, sizeof dst);
    snprintf(cmd, sizeof cmd, "redis-cli --cluster reshard 127.0.0.1:%d --cluster-from %s "
             "--cluster-to %s --cluster-slots 1 --cluster-yes 2>&1", from, src, dst);
    ck_assert_msg(harness_run(cmd, out, sizeof out) == 0, "%s: %s", cmd, out);
}

START_TEST(a_drained_namespace_migrated_is_followed_within_a_second)
{
    struct world w;
    world_start(&w);
    /* A namespace in slot 0, the lowest of its master's: the slot
     * redis-cli --cluster reshard --cluster-slots 1 moves. */
    struct ns n;
    char name[32];
    for (int k = 0;; k++) {
        snprintf(name, sizeof name, "moving%d", k);
        if (keyslot(name, strlen(name)) == 0)
            break;
    }
    ns_init(&n, name, 0, 1);
    ck_assert_uint_eq(n.slot, 0);
    ns_write_conf(&w, &n, NULL);
    ns_beat(&w, &n, "w1");
    ns_beat(&w, &n, "w2");
    slotd_start(&w, &n);
    wait_log(&n, "joined", 15000);
    int from = harness_cluster_master_of(&w.c, n.slot), to = other_master(&w, n.slot, from);
    reshard_one(&w, from, to);
    uint64_t moved = harness_now_ms();
    ck_assert_int_eq(harness_cluster_master_of(&w.c, n.slot), to);
    /* A task pushed on the new node is routed there. */
    redisContext *x = harness_redis_connect(harness_cluster_node(&w.c, to));
    freeReplyObject(harness_cmd(x, "LPUSH %s {\"key\":\"k1\",\"seq\":0}", n.keys.intake));
    char q1[KEYS_NAME_MAX], q2[KEYS_NAME_MAX];
    keys_queue(&n.keys, "w1", q1, sizeof q1);
    keys_queue(&n.keys, "w2", q2, sizeof q2);
    while (harness_llen(x, q1) + harness_llen(x, q2) < 1) {
        ck_assert_msg(harness_now_ms() < moved + 5000, "not routed on the new node");
        usleep(5000);
    }
    uint64_t lasted = harness_now_ms() - moved;
    fprintf(stderr, "cluster: a drained namespace followed its slot in %llu ms\n",
            (unsigned long long)lasted);
    ck_assert_msg(lasted <= 1000, "followed after %llu ms", (unsigned long long)lasted);
    redisFree(x);
    slotd_stop(&n);
    no_sanitizer_report(&n);
    world_stop(&w);
}
END_TEST

START_TEST(a_namespace_migrated_while_it_has_tasks_loses_none)
{
    struct world w;
    world_start(&w);
    struct ns n;
    ns_init(&n, "busy", 0, 1);
    ns_write_conf(&w, &n, NULL);
    ns_beat(&w, &n, "w1");
    ns_beat(&w, &n, "w2");
    slotd_start(&w, &n);
    wait_log(&n, "joined", 15000);
    pid_t pid = producer_start(&w, &n, n.name, 1500);
    usleep(300000);
    int from = harness_cluster_master_of(&w.c, n.slot), to = other_master(&w, n.slot, from);
    migrate_slot(&w, n.slot, from, to);
    struct expect *ex = calloc(1, sizeof *ex);
    ex->total = producer_wait(&w, &n, n.name, pid, 0);
    read_maybe(&w, n.name, 0, ex);
    wait_drained(&w, &n, 1, 20000);
    check_routed(&w, &n, 1, n.name, ex, two_ids, 2);
    ck_assert_int_eq(harness_cluster_master_of(&w.c, n.slot), to);
    slotd_stop(&n);
    no_sanitizer_report(&n);
    free(ex);
    world_stop(&w);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cluster");
    const struct check_case tests[] = {
        { "namespaces_on_three_masters_and_one_in_three_shards",
          namespaces_on_three_masters_and_one_in_three_shards, 180 },
        { "kill_9_of_a_master_pauses_only_its_namespace",
          kill_9_of_a_master_pauses_only_its_namespace, 180 },
        { "kill_9_of_a_master_workers_elsewhere_never_stop",
          kill_9_of_a_master_workers_elsewhere_never_stop, 180 },
        { "a_drained_namespace_migrated_is_followed_within_a_second",
          a_drained_namespace_migrated_is_followed_within_a_second, 180 },
        { "a_namespace_migrated_while_it_has_tasks_loses_none",
          a_namespace_migrated_while_it_has_tasks_loses_none, 180 },
    };
    CHECK_CASES(s, tests);
    return s;
}

CHECK_MAIN(suite)
