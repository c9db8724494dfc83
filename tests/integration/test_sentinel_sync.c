/*
 * Integration: the synchronous side following Redis Sentinel (dial.c):
 * libslotd, slotd-worker and slotctl against real topologies (harness_ha: a
 * master, replicas, 3 sentinels). A worker keeps taking and acknowledging
 * through a kill -9 of the master and a 3 s SIGSTOP of it; sentinels down,
 * all of them down and back, one that names a replica; every reply has a
 * timeout but a take's wait; a master turned replica is left at once.
 *
 * No slotd: the tests fill the worker's queue themselves, and the worker's
 * task is its sequence number. Each test is its own tcase (CK_RUN_CASE=<name>
 * runs one).
 */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "check_main.h"
#include "dial.h"
#include "harness.h"
#include "slotd_worker.h"
#include "syncworker.h"

#define NAME     "slotd"
#define QUEUE    "{t}:queue:w1"
#define INFLIGHT "{t}:inflight:w1"

/* What the worker is given: a reply later than this is a lost one. */
#define REPLY_MS   1000
#define CONNECT_MS 300

static char dir[256];           /* the test's files: worker logs, configs */

static void make_dir(void)
{
    ck_assert_int_eq(harness_tmpdir(dir, sizeof dir), 0);
}

static const char *path_of(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
    return buf;
}

/* ---- a worker on libslotd, in a child process (syncworker.h) -------------- */

/*
 * decoy: the port of a replica of the topology, given as the worker's plain
 * port: were the sentinels ignored, it would go there (and be refused), and
 * never to a Redis the test did not start (the default port, 6379).
 */
static pid_t worker_start(const char *sentinels, int decoy, int work_us)
{
    struct slotd_worker_options o = {
        .port = decoy, .ns = "t", .id = "w1", .prefetch = 8, .sentinels = sentinels,
        .sentinel_master = NAME,
        .connect_timeout_ms = CONNECT_MS, .reply_timeout_ms = REPLY_MS,
    };
    pid_t pid = syncworker_start(dir, &o, work_us);
    ck_assert_int_ge(pid, 0);
    return pid;
}

/* ---- the tasks: pushed, and how often and when each ran ------------------ */

/* LPUSH the seqs [from, to) onto the worker's queue on the node at port,
 * then WAIT until `replicas` replicas have them (so a failover keeps them). */
static void push(int port, int from, int to, int replicas)
{
    struct harness_redis r;
    memset(&r, 0, sizeof r);
    r.port = port;
    redisContext *c = harness_redis_connect(&r);
    ck_assert_ptr_nonnull(c);
    for (int i = from; i < to; i++)
        redisAppendCommand(c, "LPUSH " QUEUE " %d", i);
    for (int i = from; i < to; i++) {
        redisReply *rep = NULL;
        ck_assert_int_eq(redisGetReply(c, (void **)&rep), REDIS_OK);
        ck_assert_int_eq(rep->type, REDIS_REPLY_INTEGER);
        freeReplyObject(rep);
    }
    if (replicas > 0) {
        redisReply *rep = harness_cmd(c, "WAIT %d 5000", replicas);
        ck_assert_int_eq(rep->type, REDIS_REPLY_INTEGER);
        ck_assert_msg(rep->integer >= replicas, "only %lld replicas have the tasks", rep->integer);
        freeReplyObject(rep);
    }
    redisFree(c);
}

static int wait_all_ran(int n, int timeout_ms)
{
    return syncworker_wait_all_ran(dir, n, timeout_ms);
}

static int wait_lines(int lines, int timeout_ms)
{
    return syncworker_wait_lines(dir, lines, timeout_ms);
}

/* How many clients of the server on port have a name that starts with
 * prefix (CLIENT LIST), or -1 when it does not answer. */
static int clients_named(int port, const char *prefix)
{
    struct harness_redis r;
    char want[128];
    memset(&r, 0, sizeof r);
    r.port = port;
    redisContext *c = harness_redis_connect(&r);
    if (c == NULL)
        return -1;
    redisReply *rep = redisCommand(c, "CLIENT LIST");
    int n = -1;
    if (rep != NULL && rep->type == REDIS_REPLY_STRING) {
        snprintf(want, sizeof want, " name=%s", prefix);
        n = 0;
        for (const char *p = strstr(rep->str, want); p; p = strstr(p + 1, want))
            n++;
    }
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return n;
}

/*
 * Waits until the master of the moment (which may not be the first one
 * promoted: with down-after-milliseconds 1000 on a busy machine, Sentinel
 * sometimes fails over again from the replica it just promoted) has both
 * of the worker's connections. Its port, or -1.
 */
static int wait_worker_on_master(struct harness_ha *ha, int timeout_ms)
{
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    do {
        int m = harness_ha_master_port(ha);
        if (m > 0 && clients_named(m, "slotd-worker:w1 ") == 1 &&
            clients_named(m, "slotd-worker:w1:hb ") == 1)
            return m;
        usleep(20000);
    } while (harness_now_ms() < end);
    return -1;
}

static int file_has(const char *name, const char *text)
{
    return syncworker_file_has(dir, name, text);
}

/* ---- a worker through failovers ------------------------------------------ */

START_TEST(a_worker_follows_a_killed_master)
{
    struct harness_ha ha;
    char list[256];
    enum { BEFORE = 3000, AFTER = 3500 };
    make_dir();
    ck_assert_int_eq(harness_ha_start(&ha, NAME, 2, NULL, NULL), 0);
    int m = harness_ha_master_port(&ha);
    ck_assert_int_gt(m, 0);
    pid_t w = worker_start(harness_ha_sentinel_list(&ha, list, sizeof list),
                           ha.node[m == ha.node[1].port ? 2 : 1].port, 1000);
    push(m, 0, BEFORE, 2);
    ck_assert_int_eq(wait_lines(200, 10000), 0);

    uint64_t killed = harness_now_ms();
    harness_redis_kill(harness_ha_node(&ha, m), SIGKILL);
    int m2 = harness_ha_wait_failover(&ha, m, 15000);
    ck_assert_int_gt(m2, 0);
    uint64_t switched = harness_now_ms();
    char at[64];
    snprintf(at, sizeof at, "127.0.0.1:%d, found by sentinel", m2);
    /* The worker is on the new master on its own, with its heartbeat. */
    uint64_t end = switched + 10000;
    while (syncworker_server_change(dir, at, killed) == 0 && harness_now_ms() < end)
        usleep(20000);
    uint64_t moved = syncworker_server_change(dir, at, killed);
    ck_assert_msg(moved > 0, "the worker did not reach the new master %d", m2);
    push(harness_ha_master_port(&ha), BEFORE, AFTER, 1);
    ck_assert_msg(wait_all_ran(AFTER, 30000) == 0, "tasks pushed (and replicated) were lost");
    static struct syncworker_runs r;
    syncworker_read_runs(dir, &r, AFTER, moved);
    int twice = 0;
    for (int i = 0; i < AFTER; i++)
        twice += r.count[i] > 1;
    int now = wait_worker_on_master(&ha, 5000);
    ck_assert_msg(now > 0, "the worker is not on the master of the moment");
    if (now != m2)
        fprintf(stderr, "kill -9: Sentinel failed over once more, to %d; the worker followed\n",
                now);
    fprintf(stderr, "kill -9 of the master: the sentinels named %d after %llu ms; the worker was "
            "on it after %llu ms and ran a task after %llu ms; %d tasks, none lost, %d ran twice\n",
            m2, (unsigned long long)(switched - killed), (unsigned long long)(moved - killed),
            (unsigned long long)(r.first_after - killed), AFTER, twice);
    ck_assert_uint_lt(r.first_after - killed, 10000);
    syncworker_stop(w);
    harness_ha_stop(&ha);
    harness_tmpdir_remove(dir);
}
END_TEST

START_TEST(a_worker_leaves_a_frozen_master_for_good)
{
    struct harness_ha ha;
    char list[256];
    enum { BEFORE = 3000, AFTER = 3300, FROZEN_MS = 3000 };
    make_dir();
    ck_assert_int_eq(harness_ha_start(&ha, NAME, 2, NULL, NULL), 0);
    int m = harness_ha_master_port(&ha);
    pid_t w = worker_start(harness_ha_sentinel_list(&ha, list, sizeof list),
                           ha.node[m == ha.node[1].port ? 2 : 1].port, 1000);
    push(m, 0, BEFORE, 2);
    ck_assert_int_eq(wait_lines(200, 10000), 0);
    ck_assert_int_eq(clients_named(m, "slotd-worker:w1"), 2);

    struct harness_redis *old = harness_ha_node(&ha, m);
    uint64_t stopped = harness_now_ms();
    harness_redis_freeze(old);
    int m2 = harness_ha_wait_failover(&ha, m, FROZEN_MS + 5000);
    ck_assert_int_gt(m2, 0);
    uint64_t switched = harness_now_ms();
    /* Frozen 3 s, and past the failover by more than a reply timeout: any
     * connection begun on the old master before the sentinels switched has
     * timed out by then. (One that wakes sooner is left when the
     * heartbeat thread hears of the switch: a_worker_moves_when_...) */
    uint64_t thaw_at = stopped + FROZEN_MS;
    if (thaw_at < switched + REPLY_MS + 200)
        thaw_at = switched + REPLY_MS + 200;
    while (harness_now_ms() < thaw_at)
        usleep(10000);
    harness_redis_thaw(old);
    uint64_t thawed = harness_now_ms();
    usleep(1000 * 1000);
    /* The old master, awake, still takes itself for the master (Sentinel
     * demotes it some seconds later): none of the worker's connections is
     * left there to write what the failover would then lose. */
    int left = clients_named(m, "slotd-worker:");
    char at[64];
    snprintf(at, sizeof at, "127.0.0.1:%d, found by sentinel", m2);
    uint64_t moved = syncworker_server_change(dir, at, stopped);
    fprintf(stderr, "SIGSTOP of the master for %llu ms: the sentinels named %d after %llu ms; the "
            "worker was on it after %llu ms; 1 s after SIGCONT the old master had %d connections "
            "named slotd-worker:\n", (unsigned long long)(thawed - stopped), m2,
            (unsigned long long)(switched - stopped),
            moved ? (unsigned long long)(moved - stopped) : 0ULL, left);
    ck_assert_int_eq(left, 0);
    ck_assert_msg(moved > 0 && moved < thawed, "the worker was not on the new master before the old"
                  " one woke");
    int now = wait_worker_on_master(&ha, 5000);
    ck_assert_msg(now > 0, "the worker is not on the master of the moment");
    if (now != m2)
        fprintf(stderr, "SIGSTOP: Sentinel failed over once more, to %d; the worker followed\n",
                now);
    /* The command in flight's reply timeout, or a new connection's
     * handshake, which counts in the connect timeout. */
    ck_assert_msg(file_has("worker.log", "no reply within"), "the timeout is not said");
    push(now, BEFORE, AFTER, 1);
    ck_assert_msg(wait_all_ran(AFTER, 30000) == 0, "tasks pushed (and replicated) were lost");
    syncworker_stop(w);
    harness_ha_stop(&ha);
    harness_tmpdir_remove(dir);
}
END_TEST

/* ---- sentinels down --------------------------------------------------------- */

/* A config for slotd-worker and slotctl through the sentinels of ha; its
 * redis.port is a replica's (a decoy, as for worker_start). */
static void write_conf(const struct harness_ha *ha, const char *name)
{
    char path[512], list[256], text[1024];
    snprintf(text, sizeof text,
             "redis:\n"
             "  host: 127.0.0.1\n"
             "  port: %d\n"
             "  sentinels: \"%s\"\n"
             "  sentinel_master: " NAME "\n"
             "  connect_timeout_ms: %d\n"
             "  reply_timeout_ms: %d\n"
             "  reconnect_min_ms: 20\n"
             "  reconnect_max_ms: 200\n"
             "namespace: t\n"
             "http:\n  listen: \"\"\n",
             ha->node[1].port, harness_ha_sentinel_list(ha, list, sizeof list), CONNECT_MS,
             REPLY_MS);
    ck_assert_int_eq(harness_write_file(path_of(path, sizeof path, name), text), 0);
}

/* Runs slotctl -c <dir>/slotd.yaml args: stdout and stderr into out; its
 * exit status. */
static int slotctl(const char *args, char *out, size_t cap)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/slotctl -c %s/slotd.yaml %s 2>&1", harness_build_dir(), dir, args);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(sentinels_down_or_frozen_are_passed_over)
{
    struct harness_ha ha;
    struct dial d;
    struct dial_options o;
    char list[256], err[1024], want[256], out[8192];
    make_dir();
    ck_assert_int_eq(harness_ha_start(&ha, NAME, 1, NULL, NULL), 0);
    int m = harness_ha_master_port(&ha);
    harness_redis_kill(&ha.sentinel[0], SIGKILL);
    harness_redis_freeze(&ha.sentinel[1]);

    memset(&o, 0, sizeof o);
    o.port = ha.node[1].port;       /* a decoy: a replica */
    o.sentinels = harness_ha_sentinel_list(&ha, list, sizeof list);
    o.sentinel_master = NAME;
    o.connect_timeout_ms = CONNECT_MS;
    o.reply_timeout_ms = REPLY_MS;
    ck_assert_int_eq(dial_init(&d, &o, err, sizeof err), 0);
    /* The first refuses at once, the second accepts and never answers: it
     * costs its timeout, then the third names the master. */
    uint64_t t0 = harness_now_ms();
    redisContext *c = dial_connect(&d, "slotd-test", err, sizeof err);
    uint64_t first = harness_now_ms() - t0;
    ck_assert_msg(c != NULL, "%s", err);
    redisFree(c);
    snprintf(want, sizeof want, "127.0.0.1:%d", m);
    ck_assert_str_eq(d.addr, want);
    snprintf(want, sizeof want, "sentinel 127.0.0.1:%d (name " NAME ")", ha.sentinel[2].port);
    ck_assert_str_eq(d.via, want);
    ck_assert_int_eq(d.sentinels.at[0].port, ha.sentinel[2].port);
    /* Then it is asked first. */
    t0 = harness_now_ms();
    c = dial_connect(&d, "slotd-test", err, sizeof err);
    uint64_t second = harness_now_ms() - t0;
    ck_assert_msg(c != NULL, "%s", err);
    redisFree(c);
    fprintf(stderr, "one sentinel down, one frozen: the first dial took %llu ms, the next %llu ms\n",
            (unsigned long long)first, (unsigned long long)second);
    ck_assert_uint_ge(first, CONNECT_MS);
    ck_assert_uint_lt(first, CONNECT_MS + 700);
    ck_assert_uint_lt(second, 150);

    /* slotctl status says where it found Redis. */
    write_conf(&ha, "slotd.yaml");
    ck_assert_int_eq(slotctl("status", out, sizeof out), 0);
    snprintf(want, sizeof want, "redis     master 127.0.0.1:%d, found by sentinel 127.0.0.1:%d "
             "(name " NAME ")\n", m, ha.sentinel[2].port);
    ck_assert_msg(strstr(out, want) != NULL, "%s", out);
    ck_assert_int_eq(slotctl("--json status", out, sizeof out), 0);
    json_error_t jerr;
    json_t *doc = json_loads(out, 0, &jerr);
    ck_assert_msg(doc != NULL, "%s: %s", jerr.text, out);
    json_t *redis = json_object_get(doc, "redis");
    snprintf(want, sizeof want, "127.0.0.1:%d", m);
    ck_assert_str_eq(json_string_value(json_object_get(redis, "address")), want);
    snprintf(want, sizeof want, "sentinel 127.0.0.1:%d (name " NAME ")", ha.sentinel[2].port);
    ck_assert_str_eq(json_string_value(json_object_get(redis, "found_via")), want);
    json_decref(doc);
    harness_ha_stop(&ha);
    harness_tmpdir_remove(dir);
}
END_TEST

START_TEST(all_sentinels_down_then_back)
{
    struct harness_ha ha;
    char bin[512], conf[512], log[512], done[512], script[1200], out[8192], want[512];
    make_dir();
    ck_assert_int_eq(harness_ha_start(&ha, NAME, 1, NULL, NULL), 0);
    int m = harness_ha_master_port(&ha);
    write_conf(&ha, "slotd.yaml");
    path_of(done, sizeof done, "done.log");
    snprintf(script, sizeof script, "s=$(cat); echo \"$s 0\" >> %s", done);
    harness_bin(bin, sizeof bin, "slotd-worker");
    path_of(conf, sizeof conf, "slotd.yaml");
    char *argv[] = { bin, "-c", conf, "--id", "w1", "--", "sh", "-c", script, NULL };
    pid_t w = harness_spawn(argv, path_of(log, sizeof log, "worker.log"));
    ck_assert_int_gt(w, 0);
    push(m, 0, 50, 0);
    ck_assert_int_eq(wait_lines(50, 10000), 0);

    /* Without sentinels, the connections made go on. */
    for (int i = 0; i < HARNESS_HA_SENTINELS; i++)
        harness_redis_kill(&ha.sentinel[i], SIGKILL);
    push(m, 50, 100, 0);
    ck_assert_int_eq(wait_lines(100, 10000), 0);
    /* A new one cannot be made, and each sentinel's failure is said. */
    snprintf(want, sizeof want, "no sentinel named master '" NAME "': sentinel 127.0.0.1:%d: "
             "Connection refused; sentinel 127.0.0.1:%d: Connection refused; sentinel "
             "127.0.0.1:%d: Connection refused", ha.sentinel[0].port, ha.sentinel[1].port,
             ha.sentinel[2].port);
    ck_assert_int_eq(slotctl("status", out, sizeof out), 69);
    ck_assert_msg(strstr(out, want) != NULL, "%s", out);
    struct harness_redis *master = harness_ha_node(&ha, m);
    redisContext *c = harness_redis_connect(master);
    ck_assert_ptr_nonnull(c);
    freeReplyObject(harness_cmd(c, "CLIENT KILL TYPE normal"));
    redisFree(c);
    push(m, 100, 150, 0);
    uint64_t end = harness_now_ms() + 5000;
    while (!file_has("worker.log", want) && harness_now_ms() < end)
        usleep(20000);
    ck_assert_msg(file_has("worker.log", want), "the worker did not say why it cannot connect");
    usleep(500 * 1000);
    ck_assert_int_eq(kill(w, 0), 0);
    ck_assert_int_ne(wait_lines(101, 0), 0);

    for (int i = 0; i < HARNESS_HA_SENTINELS; i++)
        ck_assert_int_eq(harness_redis_resume(&ha.sentinel[i]), 0);
    ck_assert_msg(wait_lines(150, 10000) == 0, "the worker did not work again");
    ck_assert_msg(file_has("worker.log", "working again after"), "no end of the trouble said");
    ck_assert_int_eq(slotctl("status", out, sizeof out), 0);
    int st;
    kill(w, SIGTERM);
    ck_assert_int_eq(harness_wait_exit(w, 10000, &st), 0);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x", st);
    ck_assert_msg(!file_has("worker.log", "Sanitizer") && !file_has("worker.log", "runtime error"),
                  "a sanitizer report in the worker's log");
    harness_ha_stop(&ha);
    harness_tmpdir_remove(dir);
}
END_TEST

/* A sentinel of its own, monitoring a replica under the name "liar": it
 * names a server that is not a master, and ROLE tells. */
START_TEST(a_sentinel_naming_a_replica_is_not_believed)
{
    struct harness_redis a, b, s;
    char conf[256], list[64], err[1024], want[256];
    ck_assert_int_eq(harness_redis_start(&a, "repl-diskless-sync-delay 0\n"), 0);
    snprintf(conf, sizeof conf, "replicaof 127.0.0.1 %d\n", a.port);
    ck_assert_int_eq(harness_redis_start(&b, conf), 0);
    snprintf(conf, sizeof conf, "sentinel monitor liar 127.0.0.1 %d 2\n", b.port);
    ck_assert_int_eq(harness_sentinel_start(&s, conf), 0);
    snprintf(list, sizeof list, "127.0.0.1:%d", s.port);
    struct slotd_worker_options o = {
        .port = a.port, .ns = "t", .id = "w1", .sentinels = list, .sentinel_master = "liar",
        .connect_timeout_ms = CONNECT_MS, .reply_timeout_ms = REPLY_MS,
    };
    struct slotd_worker *w = slotd_worker_open(&o, err, sizeof err);
    ck_assert_msg(w == NULL, "a worker was opened on a replica");
    snprintf(want, sizeof want, "127.0.0.1:%d, named master 'liar' by sentinel 127.0.0.1:%d, is a "
             "slave, not a master (asked %d times)", b.port, s.port, DIAL_ROUNDS);
    ck_assert_msg(strstr(err, want) != NULL, "%s", err);
    ck_assert_int_eq(clients_named(b.port, "slotd-worker:"), 0);
    /* Once it is a master, the same sentinel is believed. */
    redisContext *c = harness_redis_connect(&b);
    freeReplyObject(harness_cmd(c, "REPLICAOF NO ONE"));
    redisFree(c);
    w = slotd_worker_open(&o, err, sizeof err);
    ck_assert_msg(w != NULL, "%s", err);
    snprintf(want, sizeof want, "127.0.0.1:%d, found by sentinel 127.0.0.1:%d (name liar)", b.port,
             s.port);
    ck_assert_str_eq(slotd_worker_server(w), want);
    slotd_worker_close(w);
    harness_redis_stop(&s);
    harness_redis_stop(&b);
    harness_redis_stop(&a);
}
END_TEST

/*
 * A master that takes itself for one (ROLE says master) but that the
 * sentinels no longer name: it froze and woke before they switched, say.
 * Here a sentinel is simply told to watch another master under the same
 * name. The heartbeat thread hears it and both connections move.
 */
START_TEST(a_worker_moves_when_the_sentinels_name_another_master)
{
    struct harness_redis a, b, s;
    char conf[256], list[64], err[512];
    ck_assert_int_eq(harness_redis_start(&a, NULL), 0);
    ck_assert_int_eq(harness_redis_start(&b, NULL), 0);
    snprintf(conf, sizeof conf, "sentinel monitor m1 127.0.0.1 %d 2\n", a.port);
    ck_assert_int_eq(harness_sentinel_start(&s, conf), 0);
    snprintf(list, sizeof list, "127.0.0.1:%d", s.port);
    struct slotd_worker_options o = {
        .port = a.port, .ns = "t", .id = "w1", .heartbeat_ttl_ms = 900, .sentinels = list,
        .sentinel_master = "m1", .connect_timeout_ms = CONNECT_MS, .reply_timeout_ms = REPLY_MS,
    };
    struct slotd_task t[8];
    struct slotd_worker *w = slotd_worker_open(&o, err, sizeof err);
    ck_assert_msg(w != NULL, "%s", err);
    ck_assert_int_eq(slotd_worker_register(w), 0);
    ck_assert_int_eq(slotd_worker_start_heartbeat(w), 0);
    ck_assert_int_eq(slotd_worker_take(w, t, 8, 0), 0);
    usleep(400 * 1000);
    ck_assert_int_eq(clients_named(a.port, "slotd-worker:w1"), 2);

    redisContext *c = harness_redis_connect(&s);
    freeReplyObject(harness_cmd(c, "SENTINEL REMOVE m1"));
    redisReply *r = harness_cmd(c, "SENTINEL MONITOR m1 127.0.0.1 %d 2", b.port);
    ck_assert_msg(r->type == REDIS_REPLY_STATUS, "%s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
    freeReplyObject(r);
    redisFree(c);
    uint64_t told = harness_now_ms();
    /* The heartbeat thread looks at every beat (300 ms apart here). */
    uint64_t end = told + 2000;
    while (clients_named(b.port, "slotd-worker:w1:hb ") != 1 && harness_now_ms() < end)
        usleep(10000);
    uint64_t hb_moved = harness_now_ms() - told;
    ck_assert_int_eq(clients_named(b.port, "slotd-worker:w1:hb "), 1);
    ck_assert_int_eq(slotd_worker_take(w, t, 8, 0), 0);
    fprintf(stderr, "the sentinel named another master: the heartbeat was there after %llu ms, the "
            "worker at its next call\n", (unsigned long long)hb_moved);
    ck_assert_int_eq(clients_named(b.port, "slotd-worker:w1 "), 1);
    ck_assert_int_eq(clients_named(a.port, "slotd-worker:w1"), 0);
    char want[128];
    snprintf(want, sizeof want, "127.0.0.1:%d, found by sentinel 127.0.0.1:%d (name m1)", b.port,
             s.port);
    ck_assert_str_eq(slotd_worker_server(w), want);
    slotd_worker_close(w);
    harness_redis_stop(&s);
    harness_redis_stop(&b);
    harness_redis_stop(&a);
}
END_TEST

/* ---- timeouts and wrong servers, without Sentinel ---------------------------- */

struct later {
    struct harness_redis *r;
    int    after_ms;
    int    thaw;                /* 1: thaw r; 0: make it a replica of port */
    int    port;
};

static void *do_later(void *arg)
{
    struct later *l = arg;
    usleep((useconds_t)l->after_ms * 1000);
    if (l->thaw) {
        harness_redis_thaw(l->r);
    } else {
        redisContext *c = harness_redis_connect(l->r);
        if (c) {
            redisReply *rep = redisCommand(c, "REPLICAOF 127.0.0.1 %d", l->port);
            if (rep)
                freeReplyObject(rep);
            redisFree(c);
        }
    }
    return NULL;
}

static struct slotd_worker *open_plain(int port, int reply_ms)
{
    char err[512];
    struct slotd_worker_options o = {
        .port = port, .ns = "t", .id = "w1", .prefetch = 8, .reply_timeout_ms = reply_ms,
        .connect_timeout_ms = CONNECT_MS,
    };
    struct slotd_worker *w = slotd_worker_open(&o, err, sizeof err);
    ck_assert_msg(w != NULL, "%s", err);
    return w;
}

START_TEST(every_reply_has_a_timeout_but_a_take_waits_its_wait)
{
    struct harness_redis r;
    struct slotd_task t[8];
    ck_assert_int_eq(harness_redis_start(&r, NULL), 0);
    struct slotd_worker *w = open_plain(r.port, 500);
    /* A take that waits 1500 ms for a task is not cut at 500. */
    uint64_t t0 = harness_now_ms();
    ck_assert_int_eq(slotd_worker_take(w, t, 8, 1500), 0);
    uint64_t waited = harness_now_ms() - t0;
    ck_assert_msg(waited >= 1400, "the take returned after %llu ms", (unsigned long long)waited);

    push(r.port, 0, 2, 0);
    ck_assert_int_eq(slotd_worker_take(w, t, 8, 0), 2);
    /* Redis frozen for 3 s: the ack fails within its timeouts (the first
     * reply's, 500 ms, then the new connection's handshake's, the connect
     * timeout), the tasks still held. */
    harness_redis_freeze(&r);
    pthread_t th;
    struct later l = { &r, 3000, 1, 0 };
    ck_assert_int_eq(pthread_create(&th, NULL, do_later, &l), 0);
    t0 = harness_now_ms();
    ck_assert_int_eq(slotd_worker_ack(w, t, 2), -1);
    uint64_t failed = harness_now_ms() - t0;
    const char *why = slotd_worker_error(w);
    fprintf(stderr, "an ack to a frozen Redis failed after %llu ms (reply timeout 500): %s\n",
            (unsigned long long)failed, why);
    ck_assert_msg(strstr(why, "no reply within") != NULL, "%s", why);
    ck_assert_uint_ge(failed, 500);
    ck_assert_uint_lt(failed, 2500);
    ck_assert_int_eq(slotd_worker_held(w), 2);
    pthread_join(th, NULL);
    ck_assert_int_eq(slotd_worker_ack(w, t, 2), 0);
    redisContext *c = harness_redis_connect(&r);
    ck_assert_int_eq(harness_llen(c, INFLIGHT), 0);
    redisFree(c);
    slotd_worker_close(w);
    harness_redis_stop(&r);
}
END_TEST

START_TEST(a_master_turned_replica_is_left_at_once)
{
    struct harness_redis a, b;
    struct slotd_task t[8];
    ck_assert_int_eq(harness_redis_start(&a, NULL), 0);
    ck_assert_int_eq(harness_redis_start(&b, "repl-diskless-sync-delay 0\n"), 0);
    struct slotd_worker *w = open_plain(a.port, REPLY_MS);
    ck_assert_int_eq(slotd_worker_take(w, t, 8, 0), 0);
    ck_assert_int_eq(clients_named(a.port, "slotd-worker:w1"), 1);
    /* The master becomes a replica under the worker: its take is refused
     * (READONLY), and the worker's connection goes at once, not at its
     * next call. */
    redisContext *c = harness_redis_connect(&a);
    freeReplyObject(harness_cmd(c, "REPLICAOF 127.0.0.1 %d", b.port));
    ck_assert_int_eq(slotd_worker_take(w, t, 8, 0), -1);
    ck_assert_msg(strstr(slotd_worker_error(w), "READONLY") != NULL, "%s", slotd_worker_error(w));
    ck_assert_int_eq(clients_named(a.port, "slotd-worker:w1"), 0);
    /* Without Sentinel the next call dials the same server again. */
    freeReplyObject(harness_cmd(c, "REPLICAOF NO ONE"));
    ck_assert_int_eq(slotd_worker_take(w, t, 8, 0), 0);
    ck_assert_int_eq(clients_named(a.port, "slotd-worker:w1"), 1);
    /* Waiting for a task when it becomes a replica: UNBLOCKED (Redis
     * closes that connection itself), and the call says so. */
    pthread_t th;
    struct later l = { &a, 300, 0, b.port };
    ck_assert_int_eq(pthread_create(&th, NULL, do_later, &l), 0);
    uint64_t t0 = harness_now_ms();
    ck_assert_int_eq(slotd_worker_take(w, t, 8, 3000), -1);
    ck_assert_uint_lt(harness_now_ms() - t0, 2000);
    pthread_join(th, NULL);
    ck_assert_msg(strstr(slotd_worker_error(w), "UNBLOCKED") != NULL, "%s", slotd_worker_error(w));
    freeReplyObject(harness_cmd(c, "REPLICAOF NO ONE"));
    ck_assert_int_eq(slotd_worker_take(w, t, 8, 0), 0);
    redisFree(c);
    slotd_worker_close(w);
    harness_redis_stop(&b);
    harness_redis_stop(&a);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sentinel_sync");
    const struct check_case cases[] = {
        { "killed_master", a_worker_follows_a_killed_master, 60 },
        { "frozen_master", a_worker_leaves_a_frozen_master_for_good, 60 },
        { "sentinels_down", sentinels_down_or_frozen_are_passed_over, 40 },
        { "all_sentinels_down", all_sentinels_down_then_back, 40 },
        { "lying_sentinel", a_sentinel_naming_a_replica_is_not_believed, 30 },
        { "sentinels_switch", a_worker_moves_when_the_sentinels_name_another_master, 30 },
        { "reply_timeouts", every_reply_has_a_timeout_but_a_take_waits_its_wait, 30 },
        { "master_turned_replica", a_master_turned_replica_is_left_at_once, 30 },
    };
    CHECK_CASES(s, cases);
    return s;
}

CHECK_MAIN(suite)
