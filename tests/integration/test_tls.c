/*
 * Integration: Redis over TLS through the stunnel sidecar of
 * docs/operations.md (TLS). In a temp dir: a CA and certificates made with
 * openssl by examples/tls-certs.sh; a redis-server that speaks TLS only
 * (port 0, tls-port, tls-auth-clients yes); stunnel4 run on
 * conf/slotd-stunnel.conf itself, with only its ports, paths and host name
 * replaced. slotd and slotd-worker route every task through it, once each;
 * a sidecar given the wrong CA, or another host name to check, gets nowhere,
 * and the logs say so where the docs say to look.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "env.h"
#include "harness.h"
#include "load.h"

#define EXAMPLE_CONF "conf/slotd-stunnel.conf"
#define NTASKS 1000             /* half through the sidecar, half by redis-cli --tls */
#define NKEYS 50

/* A TLS-only Redis and the good sidecar in front of it. e.redis is the
 * Redis as slotd sees it: its port is the sidecar's, its pid the
 * redis-server's (stopped by env_stop), its dir the temp dir of it all. */
struct tls {
    struct env e;
    int   tls_port;             /* Redis's tls-port */
    pid_t sidecar;              /* stunnel4 with the CA that signed Redis's certificate */
};

/* Is 127.0.0.1:port bound by some process? (Binding it fails.) */
static int port_taken(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), taken;
    ck_assert_int_ge(fd, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    taken = bind(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno == EADDRINUSE;
    close(fd);
    return taken;
}

/* Waits until pid has bound port and logged ready_text (without connecting
 * to it, which a sidecar would log as a connection of its own): 0, or -1
 * when pid exited first or 10 s passed. */
static int wait_listening(pid_t pid, int port, const char *log, const char *ready_text)
{
    uint64_t end = harness_now_ms() + 10000;
    while (harness_now_ms() < end) {
        if (harness_wait_exit(pid, 0, NULL) == 0)
            return -1;
        if (load_file_has(log, ready_text) && port_taken(port))
            return 0;
        usleep(5000);
    }
    return -1;
}

static void sh(const char *cmd)
{
    int st = system(cmd);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "'%s' failed (0x%x)", cmd, st);
}

/* The CA, Redis's and stunnel's certificates in dir, and another CA (the
 * wrong one) in dir/other. */
static void make_certs(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "sh examples/tls-certs.sh %s 127.0.0.1 localhost && mkdir %s/other && "
             "sh examples/tls-certs.sh %s/other", dir, dir, dir);
    sh(cmd);
}

/* redis-server on a free tls-port of 127.0.0.1, with no plain port. */
static void redis_start(struct tls *t)
{
    const char *dir = t->e.redis.dir;
    char conf[600], text[2048], out[600], log[600];
    snprintf(conf, sizeof conf, "%s/redis.conf", dir);
    snprintf(out, sizeof out, "%s/redis.stdout", dir);
    snprintf(log, sizeof log, "%s/redis.log", dir);
    for (int attempt = 0; attempt < 5; attempt++) {
        t->tls_port = harness_free_port();
        ck_assert_int_gt(t->tls_port, 0);
        snprintf(text, sizeof text,
                 "bind 127.0.0.1\nport 0\ntls-port %d\n"
                 "tls-cert-file %s/redis.crt\ntls-key-file %s/redis.key\ntls-ca-cert-file %s/ca.crt\n"
                 "tls-auth-clients yes\n"
                 "dir %s\ndaemonize no\nsave \"\"\nappendonly no\nlogfile %s\n",
                 t->tls_port, dir, dir, dir, dir, log);
        ck_assert_int_eq(harness_write_file(conf, text), 0);
        char *argv[] = { "redis-server", conf, NULL };
        pid_t pid = harness_spawn(argv, out);
        ck_assert_int_gt(pid, 0);
        if (wait_listening(pid, t->tls_port, log, "Ready to accept connections") == 0) {
            t->e.redis.pid = pid;
            return;
        }
        harness_kill(pid, SIGKILL);
        harness_wait_exit(pid, 5000, NULL);
        unlink(log);            /* the next attempt's readiness is its own */
    }
    ck_abort_msg("redis-server with tls-port did not start (%s)", dir);
}

/* Replaces the value of "key = value" in line, if line sets key. */
static int set_value(char *line, size_t cap, const char *key, const char *value)
{
    size_t n = strlen(key);
    const char *p = line + strspn(line, " \t");
    if (strncmp(p, key, n) != 0 || (p[n] != ' ' && p[n] != '='))
        return 0;
    int len = snprintf(line, cap, "%s = %s\n", key, value);
    ck_assert_msg(len > 0 && (size_t)len < cap, "%s = %s: too long", key, value);
    return 1;
}

/*
 * Starts stunnel4 on the example configuration with the ports, the files
 * and the host name to check replaced: accept on a free port of 127.0.0.1,
 * connect to this Redis, CAfile ca, checkHost host; its log (standard
 * error: foreground = yes) in dir/name.log. The rest (verifyChain) is the
 * example's. Returns its pid; *accept_port is its port.
 */
static pid_t sidecar_start(struct tls *t, const char *name, const char *ca, const char *host,
                           int *accept_port)
{
    const char *dir = t->e.redis.dir;
    enum { PID, ACCEPT, CONNECT, CAFILE, CERT, KEY, CHECKHOST, NKEY };
    static const char *const keys[NKEY] = { "pid", "accept", "connect", "CAfile", "cert", "key",
                                            "checkHost" };
    char values[NKEY][600], conf[600], log[600], line[1024];
    for (int attempt = 0; attempt < 5; attempt++) {
        int seen[NKEY] = { 0 };
        *accept_port = harness_free_port();
        ck_assert_int_gt(*accept_port, 0);
        snprintf(values[PID], sizeof values[PID], "%s/%s.pid", dir, name);
        snprintf(values[ACCEPT], sizeof values[ACCEPT], "127.0.0.1:%d", *accept_port);
        snprintf(values[CONNECT], sizeof values[CONNECT], "127.0.0.1:%d", t->tls_port);
        snprintf(values[CAFILE], sizeof values[CAFILE], "%s", ca);
        snprintf(values[CERT], sizeof values[CERT], "%s/client.crt", dir);
        snprintf(values[KEY], sizeof values[KEY], "%s/client.key", dir);
        snprintf(values[CHECKHOST], sizeof values[CHECKHOST], "%s", host);
        snprintf(conf, sizeof conf, "%s/%s.conf", dir, name);
        snprintf(log, sizeof log, "%s/%s.log", dir, name);
        FILE *in = fopen(EXAMPLE_CONF, "r"), *out = fopen(conf, "w");
        ck_assert_ptr_nonnull(in);
        ck_assert_ptr_nonnull(out);
        while (fgets(line, sizeof line, in)) {
            for (int k = 0; k < NKEY; k++)
                seen[k] += set_value(line, sizeof line, keys[k], values[k]);
            fputs(line, out);
        }
        fclose(in);
        ck_assert_int_eq(fclose(out), 0);
        /* checkHost may be missing: then the test of another host name
         * fails for what it is, stunnel accepting any name. */
        for (int k = 0; k < NKEY; k++)
            ck_assert_msg(seen[k] == 1 || (k == CHECKHOST && seen[k] == 0),
                          EXAMPLE_CONF " sets %s %d times, not once", keys[k], seen[k]);
        unlink(log);
        char *argv[] = { "stunnel4", conf, NULL };
        pid_t pid = harness_spawn(argv, log);
        ck_assert_int_gt(pid, 0);
        if (wait_listening(pid, *accept_port, log, "Configuration successful") == 0)
            return pid;
        /* Its port taken meanwhile, or the configuration refused: which, the
         * log says; the latter fails on any port. */
        harness_kill(pid, SIGKILL);
        harness_wait_exit(pid, 5000, NULL);
        ck_assert_msg(!load_file_has(log, "Configuration failed"), "stunnel4 refused %s: see %s", conf, log);
    }
    ck_abort_msg("stunnel4 did not start (%s)", dir);
    return -1;
}

static void sidecar_stop(pid_t pid)
{
    harness_kill(pid, SIGTERM);
    if (harness_wait_exit(pid, 5000, NULL) != 0) {
        harness_kill(pid, SIGKILL);
        harness_wait_exit(pid, 5000, NULL);
    }
}

/* slotd's (and slotd-worker's) configuration: Redis at 127.0.0.1:port. */
static void write_slotd_conf(struct tls *t, int port)
{
    char text[1024];
    snprintf(text, sizeof text,
             "redis:\n  host: 127.0.0.1\n  port: %d\n  reconnect_min_ms: 20\n  reconnect_max_ms: 200\n"
             "namespace: " ENV_NS "\nhttp:\n  listen: \"\"\n"
             "workers:\n  check_interval_ms: 100\n  heartbeat_ttl_ms: 1000\n", port);
    ck_assert_int_eq(harness_write_file(t->e.conf, text), 0);
}

/* The certificates, Redis, the good sidecar, slotd's configuration pointing
 * at it, and the test's own connection, through it too. */
static void tls_start(struct tls *t)
{
    int port;
    memset(t, 0, sizeof *t);
    ck_assert_int_eq(harness_tmpdir(t->e.redis.dir, sizeof t->e.redis.dir - 64), 0);
    snprintf(t->e.conf, sizeof t->e.conf, "%s/slotd.yaml", t->e.redis.dir);
    snprintf(t->e.log, sizeof t->e.log, "%s/slotd.log", t->e.redis.dir);
    make_certs(t->e.redis.dir);
    redis_start(t);
    char ca[600];
    snprintf(ca, sizeof ca, "%s/ca.crt", t->e.redis.dir);
    t->sidecar = sidecar_start(t, "stunnel", ca, "localhost", &port);
    t->e.redis.port = port;
    write_slotd_conf(t, port);
    t->e.c = harness_redis_connect(&t->e.redis);
    ck_assert_msg(t->e.c != NULL, "no connection through the sidecar");
    /* Through stunnel to a Redis with no plain port. */
    redisReply *r = harness_cmd(t->e.c, "CONFIG GET port");
    ck_assert_msg(r->type == REDIS_REPLY_ARRAY && r->elements == 2 && strcmp(r->element[1]->str, "0") == 0,
                  "Redis has a plain port");
    freeReplyObject(r);
}

/* Stops slotd (its exit checked), Redis, the sidecar; removes the dir. */
static void tls_stop(struct tls *t)
{
    env_stop(&t->e);
    sidecar_stop(t->sidecar);
}

/* How many lines of path there are. */
static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, ch;
    if (f == NULL)
        return 0;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

START_TEST(slotd_and_a_worker_route_through_the_sidecar)
{
    struct tls t;
    const char *dir;
    char done[600], script[800], cmds[600], cmd[2400], key[64];
    tls_start(&t);
    dir = t.e.redis.dir;
    env_slotd_start(&t.e);
    snprintf(done, sizeof done, "%s/done.log", dir);
    /* One write per task, so two jobs' lines never mix. */
    snprintf(script, sizeof script, "printf '%%s\\n' \"$(cat)\" >> %s", done);
    pid_t w = env_worker_start(&t.e, "w1", 2, script);
    const char *ids[] = { "w1" };
    ck_assert_int_eq(env_wait_owners(&t.e, ids, 1, 10000), 0);
    ck_assert_int_eq(env_wait_log(&t.e, "ready: routing", 5000), 0);
    char want[128];
    snprintf(want, sizeof want, "redis 127.0.0.1:%d (main) connected", t.e.redis.port);
    ck_assert_int_eq(env_wait_log(&t.e, want, 10), 0);

    /* The first half through the sidecar (hiredis, as any client of plain
     * Redis), the second by redis-cli --tls, as the docs show producers. */
    env_key(key, sizeof key, "intake");
    for (int i = 0; i < NTASKS / 2; i++)
        freeReplyObject(harness_cmd(t.e.c, "LPUSH %s {\"key\":\"k%d\",\"seq\":%d}", key, i % NKEYS, i));
    snprintf(cmds, sizeof cmds, "%s/producer.txt", dir);
    FILE *f = fopen(cmds, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = NTASKS / 2; i < NTASKS; i++)
        fprintf(f, "LPUSH %s '{\"key\":\"k%d\",\"seq\":%d}'\n", key, i % NKEYS, i);
    ck_assert_int_eq(fclose(f), 0);
    snprintf(cmd, sizeof cmd, "redis-cli --tls --cacert %s/ca.crt --cert %s/client.crt --key %s/client.key "
             "-h 127.0.0.1 -p %d < %s > %s/producer.out 2>&1", dir, dir, dir, t.tls_port, cmds, dir);
    sh(cmd);
    snprintf(cmd, sizeof cmd, "%s/producer.out", dir);
    ck_assert_msg(!load_file_has(cmd, "ERR") && !load_file_has(cmd, "Could not"), "redis-cli --tls: see %s", cmd);

    uint64_t end = harness_now_ms() + 30000;
    while (count_lines(done) < NTASKS && harness_now_ms() < end)
        usleep(10000);
    ck_assert_int_eq(env_wait_llen(&t.e, "inflight:w1", 0, 5000), 0);
    ck_assert_int_eq(env_llen(&t.e, "intake"), 0);
    ck_assert_int_eq(env_llen(&t.e, "queue:w1"), 0);
    ck_assert_int_eq(env_llen(&t.e, "dead"), 0);

    /* Each task exactly once, each key's in the order pushed. */
    static int runs[NTASKS];
    int last[NKEYS], lines = 0;
    memset(runs, 0, sizeof runs);
    for (int k = 0; k < NKEYS; k++)
        last[k] = -1;
    f = fopen(done, "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    while (fgets(line, sizeof line, f)) {
        int k, seq;
        ck_assert_msg(sscanf(line, "{\"key\":\"k%d\",\"seq\":%d}", &k, &seq) == 2 && k >= 0 && k < NKEYS &&
                      seq >= 0 && seq < NTASKS && seq % NKEYS == k, "unexpected task %s", line);
        runs[seq]++;
        ck_assert_msg(seq > last[k], "key k%d: task %d after %d", k, seq, last[k]);
        last[k] = seq;
        lines++;
    }
    fclose(f);
    for (int i = 0; i < NTASKS; i++)
        ck_assert_msg(runs[i] == 1, "task %d ran %d times", i, runs[i]);
    ck_assert_int_eq(lines, NTASKS);

    /* stunnel checked Redis's certificate. */
    char log[600];
    snprintf(log, sizeof log, "%s/stunnel.log", dir);
    ck_assert_msg(load_file_has(log, "Certificate accepted at depth=0"), "see %s", log);
    harness_kill(w, SIGTERM);
    ck_assert_int_eq(harness_wait_exit(w, 10000, NULL), 0);
    tls_stop(&t);
}
END_TEST

/*
 * A sidecar that cannot verify Redis (ca: a CA that did not sign Redis's
 * certificate; host: a name it is not for): slotd and slotd-worker get
 * nowhere, and the logs say so: stunnel's says why (stunnel_says), slotd's
 * that the connection closed right after it was made.
 */
static void expect_refused(const char *ca_name, const char *host, const char *stunnel_says)
{
    struct tls t;
    char ca[600], log[600], wlog[600], want[160];
    int port;
    tls_start(&t);
    const char *dir = t.e.redis.dir;
    snprintf(ca, sizeof ca, "%s/%s", dir, ca_name);
    pid_t bad = sidecar_start(&t, "stunnel-refused", ca, host, &port);
    write_slotd_conf(&t, port);
    /* What slotd would route at once if it could reach Redis. */
    env_worker_beat(&t.e, "w1", 600000, 0);
    char intake[64];
    env_key(intake, sizeof intake, "intake");
    for (int i = 0; i < 10; i++)
        freeReplyObject(harness_cmd(t.e.c, "LPUSH %s {\"key\":\"k%d\"}", intake, i));
    env_slotd_start(&t.e);
    pid_t w = env_worker_start(&t.e, "w2", 1, "cat >/dev/null");

    /* slotd: the sidecar took the connection and closed it (not "Connection
     * refused", which would be no sidecar at all). */
    snprintf(want, sizeof want, "redis 127.0.0.1:%d (main) unreachable: ", port);
    ck_assert_msg(env_wait_log(&t.e, want, 5000) == 0, "slotd's log (%s) lacks '%s'", t.e.log, want);
    ck_assert_int_eq(env_log_count(&t.e, "Connection refused"), 0);
    /* And so for a while: nothing connects, nothing is routed, w2 never
     * registers. */
    usleep(1500 * 1000);
    snprintf(want, sizeof want, "redis 127.0.0.1:%d (main) connected", port);
    ck_assert_msg(env_log_count(&t.e, want) == 0, "slotd connected through a sidecar that should refuse");
    ck_assert_int_eq(env_log_count(&t.e, "ready:"), 0);
    ck_assert_int_eq(env_llen(&t.e, "intake"), 10);
    redisReply *r = harness_cmd(t.e.c, "SISMEMBER {" ENV_NS "}:workers w2");
    ck_assert_int_eq(r->integer, 0);
    freeReplyObject(r);
    /* stunnel's log: why. */
    snprintf(log, sizeof log, "%s/stunnel-refused.log", dir);
    ck_assert_msg(load_file_has(log, stunnel_says), "stunnel's log (%s) lacks '%s'", log, stunnel_says);
    ck_assert_msg(load_file_has(log, "certificate verify failed"), "stunnel's log (%s)", log);
    /* slotd-worker: the same, said as a lost connection, not as Redis
     * refusing its handshake (which it used to say, with advice about
     * passwords). */
    snprintf(wlog, sizeof wlog, "%s/worker-w2.log", dir);
    snprintf(want, sizeof want, "worker w2 (redis 127.0.0.1:%d): Redis connection lost: ", port);
    ck_assert_msg(load_file_has(wlog, want), "slotd-worker's log (%s) lacks '%s'", wlog, want);
    ck_assert_msg(!load_file_has(wlog, "refused"), "slotd-worker's log (%s) says refused", wlog);

    harness_kill(w, SIGTERM);
    ck_assert_int_eq(harness_wait_exit(w, 10000, NULL), 0);
    sidecar_stop(bad);
    tls_stop(&t);
}

START_TEST(a_sidecar_with_the_wrong_ca_is_refused_with_a_clear_error)
{
    expect_refused("other/ca.crt", "localhost", "Rejected by CERT at depth=1");
}
END_TEST

START_TEST(a_sidecar_checking_another_host_name_is_refused)
{
    expect_refused("ca.crt", "redis.example.net", "Rejected by CERT at depth=0");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("tls");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, slotd_and_a_worker_route_through_the_sidecar);
    tcase_add_test(tc, a_sidecar_with_the_wrong_ca_is_refused_with_a_clear_error);
    tcase_add_test(tc, a_sidecar_checking_another_host_name_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
