/*
 * Integration: the synchronous side on a Redis Cluster (dial.c with
 * cluster_seeds): libslotd's worker and producer and slotctl against a real
 * 6-node cluster (tests/harness_cluster.h: 3 masters, a replica each). The worker
 * finds the master of its namespace's slot through seeds (a dead one and a
 * node that does not serve the slot first), follows MOVED after the slot
 * is migrated to another master (through ASK and TRYAGAIN meanwhile), and
 * a failover after a kill -9 of that master; the producer pushes each
 * shard's tasks to the master of the shard's slot; slotctl cluster says
 * which node serves each namespace and suggests names for the emptiest.
 *
 * No slotd: the tests fill the worker's queue themselves, and the worker's
 * task is its sequence number. One cluster per tcase (CK_RUN_CASE=<name>
 * runs one).
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "harness_cluster.h"    /* the throwaway cluster */
#include "check_main.h"
#include "cluster.h"            /* CLUSTER_SLOTS (src/cluster.h) */
#include "keys.h"
#include "slotd_producer.h"
#include "slotd_worker.h"
#include "syncworker.h"

#define NS       "t"
#define QUEUE    "{t}:queue:w1"
#define INFLIGHT "{t}:inflight:w1"

#define REPLY_MS   1000
#define CONNECT_MS 300

static char dir[256];           /* the test's files: worker logs, configs */

static const char *path_of(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
    return buf;
}

static unsigned slot_of_ns(const char *ns)
{
    struct keys k;
    ck_assert_int_eq(keys_init(&k, ns), 0);
    return keys_slot(&k);
}

/*
 * The seed list the clients get: a port nobody listens on first, then a
 * node that does not serve slot, then every node.
 */
static const char *seeds_for(struct harness_cluster *c, unsigned slot, char *buf, size_t cap)
{
    char all[512];
    int m = harness_cluster_master_of(c, slot), other = 0;
    ck_assert_int_gt(m, 0);
    for (int i = 0; i < c->nnodes && other == 0; i++)
        if (c->node[i].port != m)
            other = c->node[i].port;
    snprintf(buf, cap, "127.0.0.1:%d,127.0.0.1:%d,%s", harness_free_port(), other,
             harness_cluster_seeds(c, all, sizeof all));
    return buf;
}

static void start_cluster(struct harness_cluster *c)
{
    ck_assert_int_eq(harness_tmpdir(dir, sizeof dir), 0);
    ck_assert_int_eq(harness_cluster_start(c, 3, 1), 0);
}

static void stop_cluster(struct harness_cluster *c)
{
    harness_cluster_stop(c);
    harness_tmpdir_remove(dir);
}

static redisContext *node_conn(struct harness_cluster *c, int port)
{
    struct harness_redis *n = harness_cluster_node(c, port);
    ck_assert_ptr_nonnull(n);
    redisContext *x = harness_redis_connect(n);
    ck_assert_ptr_nonnull(x);
    return x;
}

static long long int_of(redisContext *x, const char *fmt, const char *arg)
{
    redisReply *r = harness_cmd(x, fmt, arg);
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* ---- a worker on libslotd, in a child process (syncworker.h) -------------- */

static pid_t worker_start(const char *seeds, int work_us)
{
    struct slotd_worker_options o = {
        .port = harness_free_port(), .ns = NS, .id = "w1", .prefetch = 8,
        .cluster_seeds = seeds, .connect_timeout_ms = CONNECT_MS, .reply_timeout_ms = REPLY_MS,
    };
    pid_t pid = syncworker_start(dir, &o, work_us);
    ck_assert_int_ge(pid, 0);
    return pid;
}

/* LPUSH the seqs [from, to) onto the worker's queue on the node at port,
 * then WAIT until `replicas` replicas have them. */
static void push(struct harness_cluster *c, int port, int from, int to, int replicas)
{
    redisContext *x = node_conn(c, port);
    for (int i = from; i < to; i++)
        redisAppendCommand(x, "LPUSH " QUEUE " %d", i);
    for (int i = from; i < to; i++) {
        redisReply *rep = NULL;
        ck_assert_int_eq(redisGetReply(x, (void **)&rep), REDIS_OK);
        ck_assert_msg(rep->type == REDIS_REPLY_INTEGER, "LPUSH: %s", rep->str);
        freeReplyObject(rep);
    }
    if (replicas > 0) {
        redisReply *rep = harness_cmd(x, "WAIT %d 5000", replicas);
        ck_assert_int_eq(rep->type, REDIS_REPLY_INTEGER);
        ck_assert_msg(rep->integer >= replicas, "only %lld replicas have the tasks", rep->integer);
        freeReplyObject(rep);
    }
    redisFree(x);
}

static int log_has(const char *text)
{
    return syncworker_file_has(dir, "worker.log", text);
}

static int wait_log(const char *text, int timeout_ms)
{
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    while (!log_has(text)) {
        if (harness_now_ms() >= end)
            return -1;
        usleep(20000);
    }
    return 0;
}

/* How many of the seqs [0, n) ran more than once. */
static int ran_twice(int n)
{
    static struct syncworker_runs r;
    int twice = 0;
    syncworker_read_runs(dir, &r, n, 0);
    for (int i = 0; i < n; i++)
        twice += r.count[i] > 1;
    return twice;
}

/* Waits until the worker's lists on the node at port are empty. */
static int wait_drained(struct harness_cluster *c, int port, int timeout_ms)
{
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    redisContext *x = node_conn(c, port);
    int ok = 0;
    do {
        ok = int_of(x, "LLEN %s", QUEUE) == 0 && int_of(x, "LLEN %s", INFLIGHT) == 0;
        if (!ok)
            usleep(50000);
    } while (!ok && harness_now_ms() < end);
    redisFree(x);
    return ok ? 0 : -1;
}

/* ---- moving a slot by hand, as redis-cli --cluster reshard does ---------- */

static void node_id(struct harness_cluster *c, int port, char *id, size_t cap)
{
    redisContext *x = node_conn(c, port);
    redisReply *r = harness_cmd(x, "CLUSTER MYID");
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    snprintf(id, cap, "%s", r->str);
    freeReplyObject(r);
    redisFree(x);
}

/* Moves slot from the master on src to the master on dst: IMPORTING,
 * MIGRATING, the keys in batches (pause_us between them: clients meet ASK
 * and TRYAGAIN meanwhile), then SETSLOT NODE on every master. */
static void move_slot(struct harness_cluster *c, unsigned slot, int src, int dst, int pause_us)
{
    char sid[64], did[64], s[16];
    node_id(c, src, sid, sizeof sid);
    node_id(c, dst, did, sizeof did);
    snprintf(s, sizeof s, "%u", slot);
    redisContext *xs = node_conn(c, src), *xd = node_conn(c, dst);
    redisReply *r = redisCommand(xd, "CLUSTER SETSLOT %s IMPORTING %s", s, sid);
    ck_assert_msg(r && r->type == REDIS_REPLY_STATUS, "IMPORTING: %s", r ? r->str : "lost");
    freeReplyObject(r);
    r = redisCommand(xs, "CLUSTER SETSLOT %s MIGRATING %s", s, did);
    ck_assert_msg(r && r->type == REDIS_REPLY_STATUS, "MIGRATING: %s", r ? r->str : "lost");
    freeReplyObject(r);
    for (;;) {
        r = harness_cmd(xs, "CLUSTER GETKEYSINSLOT %s 2", s);
        ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
        if (r->elements == 0) {
            freeReplyObject(r);
            break;
        }
        for (size_t i = 0; i < r->elements; i++) {
            redisReply *m = redisCommand(xs, "MIGRATE 127.0.0.1 %d %s 0 5000 REPLACE", dst,
                                         r->element[i]->str);
            ck_assert_msg(m && m->type == REDIS_REPLY_STATUS, "MIGRATE: %s", m ? m->str : "lost");
            freeReplyObject(m);
        }
        freeReplyObject(r);
        usleep((useconds_t)pause_us);
    }
    /* The new owner first, then the old (which stops redirecting with
     * ASK), then the others: as redis-cli does. */
    int order[HARNESS_CLUSTER_NODES_MAX], n = 0;
    order[n++] = dst;
    order[n++] = src;
    for (int i = 0; i < c->nnodes; i++)
        if (c->node[i].port != src && c->node[i].port != dst)
            order[n++] = c->node[i].port;
    for (int i = 0; i < n; i++) {
        redisContext *x = node_conn(c, order[i]);
        r = redisCommand(x, "CLUSTER SETSLOT %s NODE %s", s, did);
        /* A replica refuses it (it follows its master): fine. */
        freeReplyObject(r);
        redisFree(x);
    }
    redisFree(xs);
    redisFree(xd);
    ck_assert_int_eq(harness_cluster_wait_ok(c, 10000), 0);
    ck_assert_int_eq(harness_cluster_master_of(c, slot), dst);
}

/* Another master than the one on port. */
static int other_master(struct harness_cluster *c, unsigned slot)
{
    int m = harness_cluster_master_of(c, slot);
    for (unsigned s = 0; s < CLUSTER_SLOTS; s += 1000) {
        int o = harness_cluster_master_of(c, s);
        if (o > 0 && o != m)
            return o;
    }
    ck_abort_msg("one master only");
    return -1;
}

/* ---- the tests ----------------------------------------------------------- */

START_TEST(worker_and_producer_find_the_slots_master_through_seeds)
{
    struct harness_cluster c;
    char seeds[1024], err[512], want[128];
    start_cluster(&c);
    unsigned slot = slot_of_ns(NS);
    int m = harness_cluster_master_of(&c, slot);
    seeds_for(&c, slot, seeds, sizeof seeds);

    struct slotd_worker_options o = {
        .port = harness_free_port(), .ns = NS, .id = "w1", .cluster_seeds = seeds,
        .connect_timeout_ms = CONNECT_MS, .reply_timeout_ms = REPLY_MS,
    };
    struct slotd_worker *w = slotd_worker_open(&o, err, sizeof err);
    ck_assert_msg(w != NULL, "open: %s", err);
    snprintf(want, sizeof want, "127.0.0.1:%d, found by cluster 127.0.0.1:", m);
    ck_assert_msg(strstr(slotd_worker_server(w), want) != NULL, "server: %s",
                  slotd_worker_server(w));
    snprintf(want, sizeof want, "(slot %u)", slot);
    ck_assert_msg(strstr(slotd_worker_server(w), want) != NULL, "server: %s",
                  slotd_worker_server(w));
    ck_assert_int_eq(slotd_worker_register(w), 0);
    redisContext *x = node_conn(&c, m);
    ck_assert_int_eq(int_of(x, "SISMEMBER %s w1", "{t}:workers"), 1);

    push(&c, m, 0, 5, 0);
    struct slotd_task t[8];
    int n = slotd_worker_take(w, t, 8, 0);
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(int_of(x, "LLEN %s", INFLIGHT), 5);
    ck_assert_int_eq(slotd_worker_ack(w, t, n), 0);
    ck_assert_int_eq(int_of(x, "LLEN %s", INFLIGHT), 0);
    ck_assert_int_eq(slotd_worker_leave(w), 0);
    slotd_worker_close(w);

    redisFree(x);

    /* The producer: each shard's intake on the master of its slot. */
    struct slotd_producer_options po = {
        .port = harness_free_port(), .ns = "orders", .shards = 4, .cluster_seeds = seeds,
        .connect_timeout_ms = CONNECT_MS, .reply_timeout_ms = REPLY_MS,
    };
    struct slotd_producer *p = slotd_producer_open(&po, err, sizeof err);
    ck_assert_msg(p != NULL, "producer: %s", err);
    int per[4] = { 0, 0, 0, 0 };
    const char *tasks[64];
    size_t lens[64];
    char text[64][32];
    for (int i = 0; i < 64; i++) {
        snprintf(text[i], sizeof text[i], "{\"key\":\"k%d\"}", i);
        tasks[i] = text[i];
        lens[i] = strlen(text[i]);
        per[slotd_producer_shard_of(p, text[i], lens[i])]++;
    }
    ck_assert_int_eq(slotd_producer_push_many(p, tasks, lens, 64), 64);
    ck_assert_int_ge(slotd_producer_push(p, text[0], lens[0]), 0);
    per[slotd_producer_shard_of(p, text[0], lens[0])]++;
    int masters_used[4], distinct = 0;
    for (int sh = 0; sh < 4; sh++) {
        struct keys k;
        ck_assert_int_eq(keys_init_shard(&k, "orders", sh, 4), 0);
        int port = harness_cluster_master_of(&c, keys_slot(&k));
        ck_assert_int_gt(port, 0);
        int seen = 0;
        for (int j = 0; j < distinct; j++)
            seen |= masters_used[j] == port;
        if (!seen)
            masters_used[distinct++] = port;
        redisContext *y = node_conn(&c, port);
        ck_assert_int_eq(int_of(y, "LLEN %s", k.intake), per[sh]);
        redisFree(y);
    }
    ck_assert_msg(distinct > 1, "the shards of 'orders' all live on one master: no test");
    slotd_producer_close(p);

    /* A slot nobody serves (the cluster is down then): said, and no
     * connection. */
    char s[16];
    snprintf(s, sizeof s, "%u", slot);
    for (int i = 0; i < c.nnodes; i++) {
        redisContext *y = harness_redis_connect(&c.node[i]);
        freeReplyObject(redisCommand(y, "CLUSTER DELSLOTS %s", s));
        redisFree(y);
    }
    ck_assert_ptr_null(slotd_worker_open(&o, err, sizeof err));
    snprintf(want, sizeof want, "no master serves slot %u (CLUSTERDOWN?)", slot);
    ck_assert_msg(strstr(err, want) != NULL, "err: %s", err);

    stop_cluster(&c);
}
END_TEST

START_TEST(a_worker_follows_its_slot_moved_to_another_master)
{
    struct harness_cluster c;
    char seeds[1024], want[128];
    enum { BEFORE = 1500, AFTER = 2000 };
    start_cluster(&c);
    unsigned slot = slot_of_ns(NS);
    int src = harness_cluster_master_of(&c, slot), dst = other_master(&c, slot);
    pid_t w = worker_start(seeds_for(&c, slot, seeds, sizeof seeds), 1000);
    push(&c, src, 0, BEFORE, 0);
    ck_assert_int_eq(syncworker_wait_lines(dir, 200, 10000), 0);

    move_slot(&c, slot, src, dst, 100000);
    snprintf(want, sizeof want, "server 127.0.0.1:%d, found by cluster", dst);
    ck_assert_msg(wait_log(want, 10000) == 0, "the worker did not follow the slot to %d", dst);
    push(&c, dst, BEFORE, AFTER, 0);
    ck_assert_msg(syncworker_wait_all_ran(dir, AFTER, 30000) == 0, "tasks were lost in the move");
    ck_assert_int_eq(wait_drained(&c, dst, 5000), 0);
    int twice = ran_twice(AFTER);
    fprintf(stderr, "slot %u moved %d -> %d under the worker: %d tasks, none lost, %d ran "
            "twice; redirections met: moved %d, ask %d, tryagain %d\n", slot, src, dst, AFTER,
            twice, log_has("MOVED"), log_has("ASK"), log_has("TRYAGAIN"));
    ck_assert_msg(log_has("MOVED") || log_has("ASK") || log_has("TRYAGAIN"),
                  "the worker never met the move");
    syncworker_stop(w);

    /* An idle worker's connection is to the old master when the slot
     * moves back: its next call meets MOVED, fails unapplied, and the one
     * after is served by the new master. */
    char err[512];
    struct slotd_worker_options o = {
        .port = harness_free_port(), .ns = NS, .id = "w2", .cluster_seeds = seeds,
        .connect_timeout_ms = CONNECT_MS, .reply_timeout_ms = REPLY_MS,
    };
    struct slotd_worker *w2 = slotd_worker_open(&o, err, sizeof err);
    ck_assert_msg(w2 != NULL, "open: %s", err);
    ck_assert_int_eq(slotd_worker_register(w2), 0);
    move_slot(&c, slot, dst, src, 0);
    push(&c, src, AFTER, AFTER + 3, 0);
    redisContext *x = node_conn(&c, src);
    freeReplyObject(harness_cmd(x, "RENAME " QUEUE " {t}:queue:w2"));
    redisFree(x);
    struct slotd_task t[8];
    ck_assert_int_eq(slotd_worker_take(w2, t, 8, 0), -1);
    ck_assert_msg(strstr(slotd_worker_error(w2), "MOVED") != NULL, "error: %s",
                  slotd_worker_error(w2));
    ck_assert_int_eq(slotd_worker_take(w2, t, 8, 0), 3);
    snprintf(want, sizeof want, "127.0.0.1:%d, found by cluster", src);
    ck_assert_msg(strstr(slotd_worker_server(w2), want) != NULL, "server: %s",
                  slotd_worker_server(w2));
    ck_assert_int_eq(slotd_worker_ack(w2, t, 3), 0);
    slotd_worker_close(w2);
    stop_cluster(&c);
}
END_TEST

START_TEST(worker_and_producer_follow_a_failover)
{
    struct harness_cluster c;
    char seeds[1024], want[128], err[512];
    enum { BEFORE = 1500, AFTER = 2000 };
    start_cluster(&c);
    unsigned slot = slot_of_ns(NS);
    int m = harness_cluster_master_of(&c, slot);
    seeds_for(&c, slot, seeds, sizeof seeds);
    pid_t w = worker_start(seeds, 1000);
    struct slotd_producer_options po = {
        .port = harness_free_port(), .ns = NS, .cluster_seeds = seeds,
        .connect_timeout_ms = CONNECT_MS, .reply_timeout_ms = REPLY_MS,
    };
    struct slotd_producer *p = slotd_producer_open(&po, err, sizeof err);
    ck_assert_msg(p != NULL, "producer: %s", err);
    ck_assert_int_eq(slotd_producer_push(p, "before", 6), 0);
    push(&c, m, 0, BEFORE, 1);
    ck_assert_int_eq(syncworker_wait_lines(dir, 200, 10000), 0);

    uint64_t killed = harness_now_ms();
    harness_redis_kill(harness_cluster_node(&c, m), SIGKILL);
    int m2 = harness_cluster_wait_failover(&c, slot, m, 20000);
    ck_assert_int_gt(m2, 0);
    uint64_t switched = harness_now_ms();
    snprintf(want, sizeof want, "server 127.0.0.1:%d, found by cluster", m2);
    ck_assert_msg(wait_log(want, 10000) == 0, "the worker did not reach the new master %d", m2);
    push(&c, m2, BEFORE, AFTER, 0);
    ck_assert_msg(syncworker_wait_all_ran(dir, AFTER, 30000) == 0, "tasks pushed (and replicated) were lost");

    /* The producer: its first push after may fail (the old master's
     * connection is gone); a later one reaches the new master. */
    int pushed = -1;
    for (int i = 0; i < 50 && pushed < 0; i++)
        if ((pushed = slotd_producer_push(p, "after", 5)) < 0)
            usleep(100000);
    ck_assert_msg(pushed == 0, "the producer did not reach the new master: %s",
                  slotd_producer_error(p));
    redisContext *x = node_conn(&c, m2);
    ck_assert_int_ge(int_of(x, "LLEN %s", "{t}:intake"), 2);
    redisFree(x);
    fprintf(stderr, "kill -9 of the master of slot %u: %d promoted after %llu ms; %d tasks, "
            "none lost\n", slot, m2, (unsigned long long)(switched - killed), AFTER);
    slotd_producer_close(p);
    syncworker_stop(w);
    stop_cluster(&c);
}
END_TEST

/* ---- slotctl ------------------------------------------------------------- */

/* A config for slotctl on the cluster; its redis.port a dead one. */
static void write_conf(const char *seeds)
{
    char path[512], text[2048];
    snprintf(text, sizeof text,
             "redis:\n"
             "  host: 127.0.0.1\n"
             "  port: %d\n"
             "  cluster_seeds: \"%s\"\n"
             "  connect_timeout_ms: %d\n"
             "  reply_timeout_ms: %d\n"
             "namespace: " NS "\n"
             "http:\n  listen: \"\"\n",
             harness_free_port(), seeds, CONNECT_MS, REPLY_MS);
    ck_assert_int_eq(harness_write_file(path_of(path, sizeof path, "slotd.yaml"), text), 0);
}

/* Runs slotctl -c <dir>/slotd.yaml args: stdout (and stderr, with err) into
 * out; its exit status. */
static int slotctl(const char *args, char *out, size_t cap, int err)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/slotctl -c %s/slotd.yaml %s%s", harness_build_dir(), dir, args,
             err ? " 2>&1" : "");
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int port_of(const char *addr)
{
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    return colon ? atoi(colon + 1) : -1;
}

START_TEST(slotctl_and_slotd_worker_on_a_cluster)
{
    struct harness_cluster c;
    char seeds[1024], out[16384], want[128];
    start_cluster(&c);
    unsigned slot = slot_of_ns(NS);
    int m = harness_cluster_master_of(&c, slot);
    write_conf(seeds_for(&c, slot, seeds, sizeof seeds));

    /* status and push go to the namespace's master. */
    ck_assert_int_eq(slotctl("push hello", out, sizeof out, 1), 0);
    ck_assert_int_eq(slotctl("push again", out, sizeof out, 1), 0);
    redisContext *x = node_conn(&c, m);
    ck_assert_int_eq(int_of(x, "LLEN %s", "{t}:intake"), 2);
    freeReplyObject(harness_cmd(x, "SADD {t}:workers w1 w2 w3"));
    redisFree(x);
    ck_assert_int_eq(slotctl("status", out, sizeof out, 1), 0);
    snprintf(want, sizeof want, "master 127.0.0.1:%d, found by cluster", m);
    ck_assert_msg(strstr(out, want) != NULL, "status: %s", out);

    /* cluster: the namespace and two names, where each lives. */
    const char *names[3] = { NS, "orders", "billing" };
    ck_assert_int_eq(slotctl("--json cluster orders billing --suggest 4 --prefix jobs", out,
                             sizeof out, 0), 0);
    json_error_t jerr;
    json_t *doc = json_loads(out, 0, &jerr);
    ck_assert_msg(doc != NULL, "not JSON: %s", out);
    json_t *spaces = json_object_get(doc, "namespaces");
    ck_assert_int_eq(json_array_size(spaces), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *o = json_array_get(spaces, i);
        unsigned s = slot_of_ns(names[i]);
        ck_assert_str_eq(json_string_value(json_object_get(o, "namespace")), names[i]);
        ck_assert_int_eq(json_integer_value(json_object_get(o, "slot")), s);
        ck_assert_int_eq(port_of(json_string_value(json_object_get(o, "master"))),
                         harness_cluster_master_of(&c, s));
    }
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(spaces, 0), "intake_length")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(spaces, 0), "workers")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(spaces, 1), "intake_length")), 0);

    /* The masters, with how many of the three each holds. */
    json_t *masters = json_object_get(doc, "masters");
    ck_assert_int_eq(json_array_size(masters), 3);
    int port[3], held[3], total = 0;
    for (size_t i = 0; i < 3; i++) {
        json_t *o = json_array_get(masters, i);
        port[i] = port_of(json_string_value(json_object_get(o, "address")));
        held[i] = (int)json_integer_value(json_object_get(o, "namespaces"));
        total += held[i];
        int expect = 0;
        for (size_t j = 0; j < 3; j++)
            expect += harness_cluster_master_of(&c, slot_of_ns(names[j])) == port[i];
        ck_assert_int_eq(held[i], expect);
    }
    ck_assert_int_eq(total, 3);

    /* Each suggestion lands on a master that held fewest, then holds it. */
    json_t *sug = json_object_get(doc, "suggested");
    ck_assert_int_eq(json_array_size(sug), 4);
    for (size_t i = 0; i < 4; i++) {
        const char *name = json_string_value(json_object_get(json_array_get(sug, i), "namespace"));
        ck_assert_msg(strncmp(name, "jobs-", 5) == 0, "suggested %s", name);
        int on = harness_cluster_master_of(&c, slot_of_ns(name)), least = held[0], k = -1;
        for (int j = 0; j < 3; j++) {
            least = held[j] < least ? held[j] : least;
            if (port[j] == on)
                k = j;
        }
        ck_assert_int_ge(k, 0);
        ck_assert_msg(held[k] == least, "%s lands on %d, which holds %d, not the fewest (%d)",
                      name, on, held[k], least);
        held[k]++;
    }
    json_decref(doc);

    /* The text form names the node. */
    ck_assert_int_eq(slotctl("cluster", out, sizeof out, 1), 0);
    snprintf(want, sizeof want, "127.0.0.1:%d", m);
    ck_assert_msg(strstr(out, want) != NULL, "cluster: %s", out);

    /* slotd-worker, with the same file, works on the namespace's master. */
    char bin[512], conf[512], log[512], done[512], script[1200];
    path_of(done, sizeof done, "done.log");
    snprintf(script, sizeof script, "s=$(cat); echo \"$s 0\" >> %s", done);
    harness_bin(bin, sizeof bin, "slotd-worker");
    path_of(conf, sizeof conf, "slotd.yaml");
    char *argv[] = { bin, "-c", conf, "--id", "w1", "--", "sh", "-c", script, NULL };
    pid_t w = harness_spawn(argv, path_of(log, sizeof log, "slotd-worker.log"));
    ck_assert_int_gt(w, 0);
    push(&c, m, 0, 20, 0);
    ck_assert_msg(syncworker_wait_lines(dir, 20, 10000) == 0, "slotd-worker ran no task");
    ck_assert_int_eq(wait_drained(&c, m, 5000), 0);
    snprintf(want, sizeof want, "redis 127.0.0.1:%d, found by cluster", m);
    ck_assert_msg(syncworker_file_has(dir, "slotd-worker.log", want), "slotd-worker did not say"
                  " where it is");
    harness_kill(w, SIGTERM);
    int st;
    ck_assert_int_eq(harness_wait_exit(w, 10000, &st), 0);
    ck_assert_msg(!syncworker_file_has(dir, "slotd-worker.log", "Sanitizer") &&
                  !syncworker_file_has(dir, "slotd-worker.log", "runtime error"),
                  "a sanitizer spoke in slotd-worker.log");
    stop_cluster(&c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cluster_sync");
    const struct check_case cases[] = {
        { "through_seeds", worker_and_producer_find_the_slots_master_through_seeds, 30 },
        { "slot_moved", a_worker_follows_its_slot_moved_to_another_master, 60 },
        { "failover", worker_and_producer_follow_a_failover, 60 },
        { "slotctl", slotctl_and_slotd_worker_on_a_cluster, 30 },
    };
    CHECK_CASES(s, cases);
    return s;
}

CHECK_MAIN(suite)
