/*
 * bench: `make bench`. Measures slotd against baselines run side by side in
 * the same run, on a private redis-server (no persistence, loopback), and
 * verifies every run's result (every task in its owner's queue, none lost,
 * none duplicated): a fast wrong answer is a failure.
 *
 *   bench [-n TASKS]       default 1,000,000 (BENCH_TASKS overrides; CI runs a small one)
 *   bench -t [-n TASKS]    only the drains through the TLS sidecar and straight
 *   bench -c PAIRS [-n N]  only the drains with and without the commit checks,
 *                          PAIRS pairs (up to 32) in ABBA order
 *   bench -l [-n N]        only the client libraries end to end (libslotd at
 *                          prefetch 16, then 4 Python and 4 Node.js workers)
 *   BENCH_BATCH=N          dispatch.batch (default: slotd's, 2000)
 *
 * With stunnel4 and openssl installed it also drains through the TLS
 * sidecar of docs/operations.md (TLS), next to drains straight to Redis;
 * without them it says so and skips that.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "benchutil.h"
#include "harness.h"
#include "keyslot.h"
#include "slotd_worker.h"
#include "slotmap.h"
#include "taskkey.h"

#define NS "b"
#define KEYS 10000
#define WORKERS 8

static struct harness_redis redis;
static char dir[300], conf_path[400], log_path[400];
static long ntasks = 1000000;
static int batch = 2000;            /* dispatch.batch (the default): BENCH_BATCH=N */
static int slotd_port;          /* where slotd connects: Redis, or the TLS sidecar */

static redisContext *rc(void)
{
    redisContext *c = harness_redis_connect(&redis);
    if (c == NULL) {
        fprintf(stderr, "bench: cannot connect to redis\n");
        exit(1);
    }
    return c;
}

static long long llen(redisContext *c, const char *key)
{
    redisReply *r = redisCommand(c, "LLEN %s", key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    return n;
}

/* Task i: ~100 bytes of JSON; 10,000 keys, one in eight as a hash tag. */
static int make_task(char *buf, size_t cap, long i)
{
    long k = i % KEYS;
    if (i % 8 == 7)
        return snprintf(buf, cap, "{\"id\":%ld,\"key\":\"{user:%ld}.x\",\"payload\":\"%.*s\"}", i, k,
                        (int)(60 - (i % 10)), "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghij");
    return snprintf(buf, cap, "{\"id\":%ld,\"key\":\"user:%ld\",\"payload\":\"%.*s\"}", i, k,
                    (int)(64 - (i % 10)), "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmn");
}

/* Pushes tasks [from, to) onto key with LPUSH of 1000 values per command. */
static void fill(redisContext *c, const char *key, long from, long to)
{
    enum { CHUNK = 1000 };
    static char bufs[CHUNK][160];
    const char *argv[CHUNK + 2];
    size_t argvlen[CHUNK + 2];
    long pending = 0;
    argv[0] = "LPUSH";
    argvlen[0] = 5;
    argv[1] = key;
    argvlen[1] = strlen(key);
    for (long i = from; i < to; i += CHUNK) {
        int n = 0;
        for (long j = i; j < to && n < CHUNK; j++, n++) {
            argvlen[n + 2] = (size_t)make_task(bufs[n], sizeof bufs[n], j);
            argv[n + 2] = bufs[n];
        }
        redisAppendCommandArgv(c, n + 2, argv, argvlen);
        if (++pending == 32) {
            for (; pending > 0; pending--) {
                redisReply *r;
                if (redisGetReply(c, (void **)&r) != REDIS_OK)
                    exit(1);
                freeReplyObject(r);
            }
        }
    }
    for (; pending > 0; pending--) {
        redisReply *r;
        if (redisGetReply(c, (void **)&r) != REDIS_OK)
            exit(1);
        freeReplyObject(r);
    }
}

static void register_workers(redisContext *c, int n, const char *prefix)
{
    for (int i = 0; i < n; i++) {
        bench_must(c, "SET {" NS "}:hb:%s%d {\"host\":\"bench\",\"pid\":1} PX 600000", prefix, i);
        bench_must(c, "SADD {" NS "}:workers %s%d", prefix, i);
    }
}

static pid_t start_slotd_bin(const char *name)
{
    char bin[400];
    snprintf(bin, sizeof bin, "%s/%s", harness_build_dir(), name);
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "bench: %s is missing: run make bench, which builds it\n", bin);
        exit(1);
    }
    char *argv[] = { bin, "-c", conf_path, NULL };
    return harness_spawn(argv, log_path);
}

static pid_t start_slotd(void) { return start_slotd_bin("slotd"); }

static void stop(pid_t pid)
{
    int st;
    kill(pid, SIGTERM);
    if (harness_wait_exit(pid, 5000, &st) != 0) {
        kill(pid, SIGKILL);
        harness_wait_exit(pid, 5000, &st);
    }
}

static int wait_owners(redisContext *c, int n)
{
    for (int i = 0; i < 500; i++) {
        redisReply *r = redisCommand(c, "HLEN {" NS "}:slots");
        long long h = r ? r->integer : 0;
        if (r)
            freeReplyObject(r);
        if (h == n)
            return 0;
        usleep(10000);
    }
    return -1;
}

/* Every task [0, n) exactly once, each in the queue of its slot's owner,
 * each queue in intake order. Returns 0 or -1 (and says why). */
static int verify(redisContext *c, long n, const char *prefix, int nworkers)
{
    struct slotmap m;
    char err[256], scratch[256];
    unsigned char *seen = calloc((size_t)n, 1);
    long total = 0, bad = 0;
    slotmap_init(&m);
    redisReply *t = redisCommand(c, "HGETALL {" NS "}:slots");
    for (size_t i = 0; t && i + 1 < t->elements; i += 2)
        if (slotmap_claim(&m, t->element[i]->str, t->element[i + 1]->str, t->element[i + 1]->len,
                          err, sizeof err) != 0)
            bad++;
    if (t)
        freeReplyObject(t);
    for (int w = 0; w < nworkers; w++) {
        char q[64], id[32];
        snprintf(id, sizeof id, "%s%d", prefix, w);
        snprintf(q, sizeof q, "{" NS "}:queue:%s", id);
        long long len = llen(c, q);
        long last = -1;
        for (long long at = len - 1; at >= 0; at -= 10000) {
            long long from = at - 9999 < 0 ? 0 : at - 9999;
            redisReply *r = redisCommand(c, "LRANGE %s %lld %lld", q, from, at);
            for (size_t j = r->elements; j-- > 0;) {
                const char *key;
                size_t kl, off;
                long id_no = atol(r->element[j]->str + 6);
                if (taskkey_find(r->element[j]->str, r->element[j]->len, "key", 3, scratch, &key, &kl,
                                 &off) != TASKKEY_OK || id_no < 0 || id_no >= n || seen[id_no]) {
                    bad++;
                    continue;
                }
                seen[id_no] = 1;
                unsigned o = slotmap_owner(&m, keyslot(key, kl));
                if (o == SLOTMAP_NOBODY || strcmp(m.workers[o].id, id) != 0)
                    bad++;
                /* Tasks of one key share a queue; ids rise in intake order. */
                if (id_no <= last)
                    bad++;
                last = id_no;
                total++;
            }
            freeReplyObject(r);
        }
    }
    for (long i = 0; i < n; i++)
        if (!seen[i])
            bad++;
    free(seen);
    slotmap_free(&m);
    if (bad || total != n) {
        printf("  VERIFY FAILED: %ld tasks found of %ld, %ld problems\n", total, n, bad);
        return -1;
    }
    printf("  verified: %ld tasks, each once, in its owner's queue, in order\n", n);
    return 0;
}

static void reset(redisContext *c)
{
    bench_must(c, "FLUSHALL");
}

/* ---- the runs ---------------------------------------------------------- */

/* slotd's configuration, with dispatch.inflight = inflight, and HTTP on
 * 127.0.0.1:http_port (0: off). */
static void write_conf(int inflight, int http_port)
{
    char conf[512], listen[32] = "\"\"";
    if (http_port > 0)
        snprintf(listen, sizeof listen, "127.0.0.1:%d", http_port);
    snprintf(conf, sizeof conf,
             "redis:\n  port: %d\nnamespace: " NS "\nhttp:\n  listen: %s\nlog:\n  level: warn\n"
             "dispatch:\n  batch: %d\n  inflight: %d\nworkers:\n  check_interval_ms: 100\n"
             "  heartbeat_ttl_ms: 1000\n", slotd_port, listen, batch, inflight);
    harness_write_file(conf_path, conf);
}

/* ---- an HTTP flood, from threads of the bench ------------------------------ */

#define FLOOD_CONNS 3000

/* Clients abusing slotd's HTTP port while it drains: FLOOD_CONNS
 * connections kept coming (each one slotd closes is opened again), and a
 * slowloris sending a header byte every 200 ms (reconnecting when cut). */
struct flood {
    int           port;
    volatile int  stop;
    long          closed;       /* flood connections slotd closed */
    long          cut;          /* slowloris connections slotd closed (refused or cut off) */
};

static int connect_nb(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *flood_run(void *arg)
{
    struct flood *f = arg;
    static struct pollfd p[FLOOD_CONNS];
    for (int i = 0; i < FLOOD_CONNS; i++)
        p[i].fd = -1;
    while (!f->stop) {
        for (int i = 0; i < FLOOD_CONNS; i++)
            if (p[i].fd < 0 && (p[i].fd = connect_nb(f->port)) >= 0)
                p[i].events = POLLIN;
        if (poll(p, FLOOD_CONNS, 50) <= 0)
            continue;
        for (int i = 0; i < FLOOD_CONNS; i++) {
            char b[64];
            if (p[i].fd >= 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
                recv(p[i].fd, b, sizeof b, MSG_DONTWAIT) <= 0) {
                close(p[i].fd);
                p[i].fd = -1;
                f->closed++;
            }
        }
    }
    for (int i = 0; i < FLOOD_CONNS; i++)
        if (p[i].fd >= 0)
            close(p[i].fd);
    return NULL;
}

static void *slowloris_run(void *arg)
{
    struct flood *f = arg;
    const char *line = "GET /metrics HTTP/1.1\r\n", *hdr = "X-Slow: abcdefghijklmnopqrstuvwxyz";
    int fd = -1;
    size_t i = 0;
    while (!f->stop) {
        if (fd < 0) {
            fd = connect_nb(f->port);
            usleep(20000);
            if (fd >= 0 && send(fd, line, strlen(line), MSG_NOSIGNAL) < 0) {
                close(fd);
                fd = -1;
            }
            continue;
        }
        usleep(200000);
        char b;
        if (recv(fd, &b, 1, MSG_DONTWAIT) == 0 ||
            send(fd, hdr + i++ % strlen(hdr), 1, MSG_NOSIGNAL) < 0) {
            close(fd);
            fd = -1;
            f->cut++;
        }
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* Tasks per second; slotd's peak RSS; and the CPU seconds slotd and
 * redis-server spent, with the wall time, to show who waits for whom. With
 * f, an HTTP flood runs from slotd's start to the end of the drain. bin is
 * the slotd binary to run (the one under test, or a build for the bench). */
/* Redis's own time per call of cmd (INFO commandstats, in microseconds) since
 * the last CONFIG RESETSTAT; 0 if it did not run. */
static double usec_per_call(redisContext *c, const char *cmd)
{
    char want[64];
    double v = 0;
    redisReply *r = redisCommand(c, "INFO commandstats");
    snprintf(want, sizeof want, "cmdstat_%s:", cmd);
    const char *p = r && r->type == REDIS_REPLY_STRING ? r->str : NULL;
    if (p && (p = strstr(p, want)) != NULL && (p = strstr(p, "usec_per_call=")) != NULL)
        v = atof(p + 14);
    if (r)
        freeReplyObject(r);
    return v;
}

static double last_exec_us;     /* EXEC's usec_per_call in the last drain */

static double run_drain_of(redisContext *c, long *rss, const char *bin, double *redis_cpu_out,
                           struct flood *f)
{
    pthread_t ft, st;
    reset(c);
    register_workers(c, WORKERS, "w");
    fill(c, "{" NS "}:intake", 0, ntasks);
    bench_must(c, "CONFIG RESETSTAT");
    /* Timed from slotd's start: its connect and first check count too. */
    double t0 = bench_now_s();
    double redis0 = bench_cpu_s(redis.pid);
    pid_t p = start_slotd_bin(bin);
    if (f) {
        f->stop = 0;
        pthread_create(&ft, NULL, flood_run, f);
        pthread_create(&st, NULL, slowloris_run, f);
    }
    long long left;
    while ((left = llen(c, "{" NS "}:intake")) > 0)
        usleep(2000);
    double dt = bench_now_s() - t0;
    if (f) {
        f->stop = 1;
        pthread_join(ft, NULL);
        pthread_join(st, NULL);
    }
    double slotd_cpu = bench_cpu_s(p), redis_cpu = bench_cpu_s(redis.pid) - redis0;
    last_exec_us = usec_per_call(c, "exec");
    *rss = bench_peak_rss_kib(p);
    stop(p);
    if (verify(c, ntasks, "w", WORKERS) != 0)
        exit(1);
    printf("  wall %.3f s; CPU: slotd %.2f s, redis-server %.2f s (its polling of the\n"
           "  intake's length included)\n", dt, slotd_cpu, redis_cpu);
    if (redis_cpu_out)
        *redis_cpu_out = redis_cpu;
    return (double)ntasks / dt;
}

static double run_drain(redisContext *c, long *rss, struct flood *f)
{
    return run_drain_of(c, rss, "slotd", NULL, f);
}

/* ---- the TLS sidecar ------------------------------------------------------- */

/* Certificates made by examples/tls-certs.sh, Redis's TLS port, and
 * stunnel4 in front of it, configured as conf/slotd-stunnel.conf is. */
struct tls_side {
    char  dir[300];             /* temp dir: certificates, stunnel's config and log */
    int   redis_port;           /* Redis's tls-port */
    int   accept_port;          /* stunnel's, on 127.0.0.1 */
    pid_t pid;                  /* stunnel4 */
};

/* Makes the certificates and appends Redis's TLS lines to redis_conf: 0, or
 * -1 having said why the TLS drains are skipped. */
static int tls_prepare(struct tls_side *t, char *redis_conf, size_t cap)
{
    char cmd[800];
    memset(t, 0, sizeof *t);
    if (system("command -v stunnel4 >/dev/null && command -v openssl >/dev/null") != 0) {
        printf("(stunnel4 or openssl is not installed: the drain through the TLS sidecar is skipped;\n"
               " apt-get install stunnel4 openssl to measure it)\n\n");
        return -1;
    }
    t->redis_port = harness_free_port();
    if (harness_tmpdir(t->dir, sizeof t->dir - 64) != 0 || t->redis_port <= 0)
        return -1;
    snprintf(cmd, sizeof cmd, "sh examples/tls-certs.sh %s 127.0.0.1 localhost", t->dir);
    if (system(cmd) != 0) {
        printf("(examples/tls-certs.sh failed: the drain through the TLS sidecar is skipped)\n\n");
        harness_tmpdir_remove(t->dir);
        t->dir[0] = '\0';
        return -1;
    }
    size_t n = strlen(redis_conf);
    snprintf(redis_conf + n, cap - n,
             "tls-port %d\ntls-cert-file %s/redis.crt\ntls-key-file %s/redis.key\n"
             "tls-ca-cert-file %s/ca.crt\ntls-auth-clients yes\n",
             t->redis_port, t->dir, t->dir, t->dir);
    return 0;
}

/* Starts stunnel4 and waits until a PING goes through it: 0, or -1. */
static int tls_start(struct tls_side *t)
{
    char conf[400], log[400], text[2048];
    t->accept_port = harness_free_port();
    snprintf(conf, sizeof conf, "%s/stunnel.conf", t->dir);
    snprintf(log, sizeof log, "%s/stunnel.log", t->dir);
    snprintf(text, sizeof text,
             "foreground = yes\nsyslog = no\npid =\n[redis]\nclient = yes\n"
             "accept = 127.0.0.1:%d\nconnect = 127.0.0.1:%d\nverifyChain = yes\n"
             "CAfile = %s/ca.crt\ncheckHost = localhost\ncert = %s/client.crt\nkey = %s/client.key\n",
             t->accept_port, t->redis_port, t->dir, t->dir, t->dir);
    if (harness_write_file(conf, text) != 0)
        return -1;
    char *argv[] = { "stunnel4", conf, NULL };
    t->pid = harness_spawn(argv, log);
    for (int i = 0; t->pid > 0 && i < 500; i++) {
        struct timeval tv = { 1, 0 };
        redisContext *p = redisConnectWithTimeout("127.0.0.1", t->accept_port, tv);
        redisReply *r = p && !p->err ? redisCommand(p, "PING") : NULL;
        int up = r && r->type == REDIS_REPLY_STATUS;
        if (r)
            freeReplyObject(r);
        if (p)
            redisFree(p);
        if (up)
            return 0;
        usleep(10000);
    }
    printf("  stunnel4 did not start: see %s\n", log);
    return -1;
}

static void tls_stop(struct tls_side *t)
{
    if (t->pid > 0)
        stop(t->pid);
    t->pid = 0;
    harness_tmpdir_remove(t->dir);
}

static int cmp_double(const void *a, const void *b);

/*
 * What the sidecar costs: drains of n tasks by slotd connected to Redis,
 * and through stunnel4 to the same Redis's tls-port, alternating, pairs
 * times; the medians of the rates and of Redis's and stunnel's CPU per
 * million tasks.
 */
static void run_tls_cost(redisContext *c, struct tls_side *t, long n, int pairs, double *direct,
                         double *tls, double *redis_direct, double *redis_tls, double *stunnel)
{
    double a[8], b[8], ra[8], rb[8], sb[8];
    long rss, saved = ntasks;
    ntasks = n;                 /* what run_drain_of fills and verifies */
    for (int i = 0; i < pairs; i++) {
        printf("  straight to Redis:\n");
        slotd_port = redis.port;
        write_conf(1, 0);
        a[i] = run_drain_of(c, &rss, "slotd", &ra[i], NULL);
        printf("  through stunnel4 to Redis's tls-port:\n");
        slotd_port = t->accept_port;
        write_conf(1, 0);
        double s0 = bench_cpu_s(t->pid);
        b[i] = run_drain_of(c, &rss, "slotd", &rb[i], NULL);
        sb[i] = bench_cpu_s(t->pid) - s0;
        printf("  stunnel4 CPU %.2f s\n", sb[i]);
    }
    slotd_port = redis.port;
    write_conf(1, 0);
    ntasks = saved;
    qsort(a, (size_t)pairs, sizeof a[0], cmp_double);
    qsort(b, (size_t)pairs, sizeof b[0], cmp_double);
    qsort(ra, (size_t)pairs, sizeof ra[0], cmp_double);
    qsort(rb, (size_t)pairs, sizeof rb[0], cmp_double);
    qsort(sb, (size_t)pairs, sizeof sb[0], cmp_double);
    *direct = a[pairs / 2];
    *tls = b[pairs / 2];
    *redis_direct = ra[pairs / 2] * 1e6 / (double)n;
    *redis_tls = rb[pairs / 2] * 1e6 / (double)n;
    *stunnel = sb[pairs / 2] * 1e6 / (double)n;
}

/* The TLS drains: a fifth of the tasks, at most 200,000; 3 pairs. Stops the
 * sidecar and removes its files. The ratio of the rates, or 0. */
static double tls_section(redisContext *c, struct tls_side *t)
{
    double direct = 0, rate = 0, redis_direct = 0, redis_tls = 0, stunnel = 0;
    long n = ntasks / 5 < 200000 ? ntasks / 5 : 200000;
    if (tls_start(t) == 0) {
        printf("drain, %ld tasks, straight to Redis and through the TLS sidecar (stunnel4, TLS to\n"
               "Redis's tls-port on the same host), alternating, 3 pairs:\n", n);
        run_tls_cost(c, t, n, 3, &direct, &rate, &redis_direct, &redis_tls, &stunnel);
        printf("  median %.0f tasks/s straight, %.0f through the sidecar (%.2fx);\n"
               "  per million tasks: Redis CPU %.3f s straight, %.3f s with TLS; stunnel4 %.3f s\n",
               direct, rate, rate / direct, redis_direct, redis_tls, stunnel);
    }
    tls_stop(t);
    return rate > 0 ? rate / direct : 0;
}

/*
 * What the commit script's checks cost: drains by slotd and by a build
 * without them (the bare LTRIM), alternating, pairs times; the medians.
 */
/* The pairs run in the order ABBA ABBA..., so that neither variant always
 * goes first. exec_us: the median Redis time of one dispatch transaction
 * (EXEC, with what it runs), with and without. */
#define CHECK_PAIRS_MAX 32

static void run_check_cost(redisContext *c, int pairs, double *checked, double *bare,
                           double *redis_checked, double *redis_bare, double exec_us[2],
                           double ratio[2])
{
    double a[CHECK_PAIRS_MAX], b[CHECK_PAIRS_MAX], ra[CHECK_PAIRS_MAX], rb[CHECK_PAIRS_MAX];
    double ea[CHECK_PAIRS_MAX], eb[CHECK_PAIRS_MAX], sum = 0, sum2 = 0;
    long rss;
    for (int i = 0; i < pairs; i++) {
        for (int k = 0; k < 2; k++) {
            if ((k == 0) == (i % 2 == 0)) {
                printf("  with the checks (slotd):\n");
                a[i] = run_drain_of(c, &rss, "slotd", &ra[i], NULL);
                ea[i] = last_exec_us;
            } else {
                printf("  without (slotd-unchecked, built for the bench only):\n");
                b[i] = run_drain_of(c, &rss, "slotd-unchecked", &rb[i], NULL);
                eb[i] = last_exec_us;
            }
        }
        double q = a[i] / b[i];     /* this pair's rate with / without */
        sum += q;
        sum2 += q * q;
    }
    /* The mean of the pairs' ratios and its standard error. */
    ratio[0] = sum / pairs;
    ratio[1] = pairs > 1 ? sqrt((sum2 - sum * sum / pairs) / (pairs - 1) / pairs) : 0;
    qsort(a, (size_t)pairs, sizeof a[0], cmp_double);
    qsort(b, (size_t)pairs, sizeof b[0], cmp_double);
    qsort(ra, (size_t)pairs, sizeof ra[0], cmp_double);
    qsort(rb, (size_t)pairs, sizeof rb[0], cmp_double);
    qsort(ea, (size_t)pairs, sizeof ea[0], cmp_double);
    qsort(eb, (size_t)pairs, sizeof eb[0], cmp_double);
    *checked = a[pairs / 2];
    *bare = b[pairs / 2];
    *redis_checked = ra[pairs / 2];
    *redis_bare = rb[pairs / 2];
    exec_us[0] = ea[pairs / 2];
    exec_us[1] = eb[pairs / 2];
}

/* The per-task baseline: RPOP then LPUSH to the owner, one per round trip. */
static double run_baseline(redisContext *c, long n)
{
    struct slotmap m;
    struct slotmap_member live[WORKERS];
    char ids[WORKERS][8], queues[WORKERS][64], scratch[256];
    reset(c);
    slotmap_init(&m);
    for (int i = 0; i < WORKERS; i++) {
        snprintf(ids[i], sizeof ids[i], "w%d", i);
        snprintf(queues[i], sizeof queues[i], "{" NS "}:queue:w%d", i);
        live[i].id = ids[i];
        live[i].weight = 1;
    }
    if (slotmap_assign(&m, live, WORKERS) != 0)
        exit(1);
    fill(c, "{" NS "}:intake", 0, n);
    double t0 = bench_now_s();
    for (;;) {
        redisReply *r = redisCommand(c, "RPOP {" NS "}:intake");
        if (r == NULL || r->type != REDIS_REPLY_STRING) {
            if (r)
                freeReplyObject(r);
            break;
        }
        const char *key;
        size_t kl, off;
        if (taskkey_find(r->str, r->len, "key", 3, scratch, &key, &kl, &off) == TASKKEY_OK) {
            unsigned o = slotmap_owner(&m, keyslot(key, kl));
            freeReplyObject(redisCommand(c, "LPUSH %s %b", queues[o], r->str, r->len));
        }
        freeReplyObject(r);
    }
    double dt = bench_now_s() - t0;
    slotmap_free(&m);
    return (double)n / dt;
}

/* redis-benchmark -t lpush -d 100 -P 64: how fast tasks can even arrive. */
static double run_redis_benchmark(long n)
{
    char cmd[256], line[512];
    double rps = 0;
    snprintf(cmd, sizeof cmd, "redis-benchmark -h 127.0.0.1 -p %d -t lpush -d 100 -P 64 -n %ld -q 2>/dev/null",
             redis.port, n);
    FILE *f = popen(cmd, "r");
    /* Progress lines end in \r: the last "LPUSH:" of the output is the result. */
    while (f && fgets(line, sizeof line, f)) {
        for (char *p = strstr(line, "LPUSH:"); p; p = strstr(p + 1, "LPUSH:"))
            if (atof(p + 6) > 0)
                rps = atof(p + 6);
    }
    if (f)
        pclose(f);
    return rps;
}

struct producer {
    long from, to;
    double done_at;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    redisContext *c = rc();
    fill(c, "{" NS "}:intake", p->from, p->to);
    p->done_at = bench_now_s();
    redisFree(c);
    return NULL;
}

static double run_sustained(redisContext *c, long n, long long *peak, double *drain_after)
{
    enum { PRODUCERS = 3 };
    pthread_t th[PRODUCERS];
    struct producer pr[PRODUCERS];
    reset(c);
    register_workers(c, WORKERS, "w");
    pid_t p = start_slotd();
    if (wait_owners(c, WORKERS) != 0)
        exit(1);
    usleep(200000);
    double t0 = bench_now_s();
    for (int i = 0; i < PRODUCERS; i++) {
        pr[i].from = n * i / PRODUCERS;
        pr[i].to = n * (i + 1) / PRODUCERS;
        pthread_create(&th[i], NULL, produce, &pr[i]);
    }
    *peak = 0;
    int joined = 0;
    double last_push = 0;
    for (;;) {
        long long l = llen(c, "{" NS "}:intake");
        if (l > *peak)
            *peak = l;
        if (!joined) {
            int all = 1;
            for (int i = 0; i < PRODUCERS; i++)
                all &= pr[i].done_at > 0;
            if (all) {
                for (int i = 0; i < PRODUCERS; i++) {
                    pthread_join(th[i], NULL);
                    if (pr[i].done_at > last_push)
                        last_push = pr[i].done_at;
                }
                joined = 1;
            }
        }
        if (joined && l == 0)
            break;
        usleep(2000);
    }
    double end = bench_now_s();
    *drain_after = end - last_push;
    stop(p);
    /* Three producers interleave: per-queue order holds per producer only. */
    return (double)n / (end - t0);
}

struct noop {
    int idx;
    long taken;
    volatile int *stop;
    int prefetch;
};

static void *noop_worker(void *arg)
{
    struct noop *nw = arg;
    char id[16], err[256];
    snprintf(id, sizeof id, "e%d", nw->idx);
    struct slotd_worker_options o = { .host = "127.0.0.1", .port = redis.port, .ns = NS, .id = id,
                                      .heartbeat_ttl_ms = 60000, .prefetch = nw->prefetch };
    struct slotd_worker *w = slotd_worker_open(&o, err, sizeof err);
    if (w == NULL || slotd_worker_register(w) != 0) {
        fprintf(stderr, "bench: worker %s: %s\n", id, err);
        exit(1);
    }
    static __thread struct slotd_task tasks[512];
    while (!*nw->stop) {
        int n = slotd_worker_take(w, tasks, 512, 100);
        if (n < 0)
            break;
        nw->taken += n;
        if (n > 0)
            slotd_worker_ack(w, tasks, n);
    }
    slotd_worker_leave(w);
    slotd_worker_close(w);
    return NULL;
}

static double run_end_to_end(redisContext *c, long n, int prefetch)
{
    enum { N = 4 };
    pthread_t th[N];
    struct noop nw[N];
    volatile int stopping = 0;
    reset(c);
    pid_t p = start_slotd();
    for (int i = 0; i < N; i++) {
        nw[i] = (struct noop){ i, 0, &stopping, prefetch };
        pthread_create(&th[i], NULL, noop_worker, &nw[i]);
    }
    if (wait_owners(c, N) != 0)
        exit(1);
    double t0 = bench_now_s();
    double redis0 = bench_cpu_s(redis.pid), slotd0 = bench_cpu_s(p), self0 = bench_cpu_s(getpid());
    fill(c, "{" NS "}:intake", 0, n);
    long taken;
    do {
        usleep(2000);
        taken = 0;
        for (int i = 0; i < N; i++)
            taken += nw[i].taken;
    } while (taken < n);
    double dt = bench_now_s() - t0;
    printf("  wall %.3f s; CPU: redis-server %.2f s, slotd %.2f s, the producer and the\n"
           "  workers (threads of this bench) %.2f s\n", dt, bench_cpu_s(redis.pid) - redis0,
           bench_cpu_s(p) - slotd0, bench_cpu_s(getpid()) - self0);
    stopping = 1;
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    long held = 0;
    for (int i = 0; i < N; i++) {
        char k[64];
        snprintf(k, sizeof k, "{" NS "}:inflight:e%d", i);
        held += llen(c, k);
    }
    if (taken != n || held != 0) {
        printf("  VERIFY FAILED: %ld acked of %ld, %ld left in flight\n", taken, n, held);
        exit(1);
    }
    printf("  verified: %ld tasks taken and acknowledged once each\n", n);
    stop(p);
    return (double)n / dt;
}

/* ---- end to end through worker processes: the client libraries ---------- */

/* Tasks not yet acknowledged: the intake, and the queue and in-flight list of
 * each worker <prefix><i>. */
static long long outstanding(redisContext *c, const char *prefix, int nworkers)
{
    long long n = llen(c, "{" NS "}:intake");
    for (int i = 0; i < nworkers; i++) {
        char k[96];
        snprintf(k, sizeof k, "{" NS "}:queue:%s%d", prefix, i);
        n += llen(c, k);
        snprintf(k, sizeof k, "{" NS "}:inflight:%s%d", prefix, i);
        n += llen(c, k);
    }
    return n;
}

/* The ids each worker wrote to its file (one a line: "<id>", or "<worker>\t<task>"
 * as examples/worker.py logs), in the order they ran: every task [0, n) once,
 * and each key's ids rising on the worker that ran them. 0 or -1. */
static int verify_runs(long n, char files[][400], int nfiles)
{
    unsigned char *seen = calloc((size_t)n, 1);
    long *last = malloc(KEYS * sizeof *last);
    long total = 0, bad = 0;
    char line[512];
    for (int f = 0; f < nfiles; f++) {
        for (long k = 0; k < KEYS; k++)
            last[k] = -1;
        FILE *in = fopen(files[f], "r");
        if (in == NULL) {
            printf("  VERIFY FAILED: %s is missing (did the worker stop cleanly?)\n", files[f]);
            bad++;
            continue;
        }
        while (fgets(line, sizeof line, in)) {
            const char *p = strchr(line, '\t') ? strstr(line, "\"id\":") : line;
            long id = p == NULL ? -1 : atol(p == line ? p : p + 5);
            if (id < 0 || id >= n || seen[id]) {
                bad++;
                continue;
            }
            seen[id] = 1;
            total++;
            if (id <= last[id % KEYS])
                bad++;          /* a key's tasks out of order */
            last[id % KEYS] = id;
        }
        fclose(in);
    }
    for (long i = 0; i < n; i++)
        if (!seen[i])
            bad++;
    free(seen);
    free(last);
    if (bad || total != n) {
        printf("  VERIFY FAILED: %ld tasks ran of %ld, %ld problems\n", total, n, bad);
        return -1;
    }
    printf("  verified: %ld tasks, each ran once, each key's in order\n", n);
    return 0;
}

/* n tasks through slotd and 4 worker processes, each started as argv with
 * "%ID%", "%PORT%" and "%OUT%" filled in; from the first push to the last
 * acknowledgement. 0 when the run could not be made (said why). */
static double run_spawned(redisContext *c, long n, const char *prefix, const char *const *tmpl)
{
    enum { N = 4, MAXARGS = 24 };
    pid_t pids[N];
    char files[N][400], logs[N][400], args[N][MAXARGS][400], port[16];
    char *argv[N][MAXARGS + 1];
    snprintf(port, sizeof port, "%d", redis.port);
    reset(c);
    pid_t p = start_slotd();
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof id, "%s%d", prefix, i);
        snprintf(files[i], sizeof files[i], "%s/ran-%s.txt", dir, id);
        snprintf(logs[i], sizeof logs[i], "%s/worker-%s.log", dir, id);
        unlink(files[i]);
        int a = 0;
        for (; tmpl[a] != NULL && a < MAXARGS; a++) {
            const char *t = tmpl[a];
            snprintf(args[i][a], sizeof args[i][a], "%s",
                     strcmp(t, "%ID%") == 0 ? id : strcmp(t, "%PORT%") == 0 ? port
                     : strcmp(t, "%OUT%") == 0 ? files[i] : t);
            argv[i][a] = args[i][a];
        }
        argv[i][a] = NULL;
        pids[i] = harness_spawn(argv[i], logs[i]);
    }
    double rate = 0;
    if (wait_owners(c, N) != 0) {
        printf("  the workers did not register: see %s\n", logs[0]);
        goto out;
    }
    double t0 = bench_now_s();
    double redis0 = bench_cpu_s(redis.pid), slotd0 = bench_cpu_s(p), w0 = 0;
    for (int i = 0; i < N; i++)
        w0 += bench_cpu_s(pids[i]);
    fill(c, "{" NS "}:intake", 0, n);
    while (outstanding(c, prefix, N) > 0)
        usleep(2000);
    double dt = bench_now_s() - t0, w1 = 0;
    for (int i = 0; i < N; i++)
        w1 += bench_cpu_s(pids[i]);
    printf("  wall %.3f s; CPU: redis-server %.2f s, slotd %.2f s, the 4 workers %.2f s\n", dt,
           bench_cpu_s(redis.pid) - redis0, bench_cpu_s(p) - slotd0, w1 - w0);
    rate = (double)n / dt;
out:
    for (int i = 0; i < N; i++)
        stop(pids[i]);
    stop(p);
    if (rate > 0 && verify_runs(n, files, N) != 0)
        exit(1);
    return rate;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void run_latency(redisContext *c, double *p50, double *p99, double *rtt50)
{
    enum { N = 1000 };
    static double lat[N], rtt[N];
    char task[160];
    reset(c);
    register_workers(c, 1, "l");
    pid_t p = start_slotd();
    if (wait_owners(c, 1) != 0)
        exit(1);
    usleep(300000);
    for (int i = 0; i < N; i++) {
        int len = make_task(task, sizeof task, i);
        double t0 = bench_now_s();
        freeReplyObject(redisCommand(c, "PING"));
        rtt[i] = bench_now_s() - t0;
        t0 = bench_now_s();
        freeReplyObject(redisCommand(c, "LPUSH {" NS "}:intake %b", task, (size_t)len));
        /* Block until it lands in the queue, then take it off again. */
        redisReply *r = redisCommand(c, "BLMOVE {" NS "}:queue:l0 {" NS "}:scratch RIGHT LEFT 5");
        lat[i] = bench_now_s() - t0;
        if (r == NULL || r->type != REDIS_REPLY_STRING) {
            fprintf(stderr, "bench: a task never arrived\n");
            exit(1);
        }
        freeReplyObject(r);
        usleep(1000);       /* idle between pushes: slotd goes back to its blocking wait */
    }
    stop(p);
    qsort(lat, N, sizeof lat[0], cmp_double);
    qsort(rtt, N, sizeof rtt[0], cmp_double);
    *p50 = lat[N / 2] * 1e3;
    *p99 = lat[N * 99 / 100] * 1e3;
    *rtt50 = rtt[N / 2] * 1e3;
}

static double run_failover(redisContext *c, int check_ms)
{
    reset(c);
    register_workers(c, 2, "f");
    bench_must(c, "SET {" NS "}:hb:f1 x PX 600000");
    pid_t p = start_slotd();
    if (wait_owners(c, 2) != 0)
        exit(1);
    fill(c, "{" NS "}:intake", 0, 20000);
    while (llen(c, "{" NS "}:intake") > 0)
        usleep(1000);
    long long had = llen(c, "{" NS "}:queue:f0");
    /* f0's heartbeat expires in 300 ms; time from expiry to its tasks in f1's queue. */
    bench_must(c, "SET {" NS "}:hb:f0 x PX 300");
    double expired = 0;
    while (expired == 0) {
        redisReply *r = redisCommand(c, "EXISTS {" NS "}:hb:f0");
        if (r->integer == 0)
            expired = bench_now_s();
        freeReplyObject(r);
    }
    while (llen(c, "{" NS "}:queue:f1") < 20000)
        usleep(200);
    double dt = bench_now_s() - expired;
    stop(p);
    (void)check_ms;
    (void)had;
    return dt * 1e3;
}

/*
 * What WAIT costs a producer (docs/operations.md, "Redis high
 * availability"): pushes one per round trip, then each followed by WAIT 1
 * (acknowledged once a replica has it), then batches of 100 pipelined with
 * one WAIT per batch; a replica started for this, on the same machine.
 */
static void run_wait_cost(redisContext *c, long n, double rate[4])
{
    struct harness_redis replica;
    char conf[128];
    snprintf(conf, sizeof conf, "save \"\"\nappendonly no\nreplicaof 127.0.0.1 %d\n", redis.port);
    if (harness_redis_start(&replica, conf) != 0) {
        fprintf(stderr, "bench: the replica did not start\n");
        exit(1);
    }
    for (int i = 0; i < 500; i++) {         /* until the replica is in sync */
        redisReply *r = redisCommand(c, "WAIT 1 10");
        long long acked = r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
        if (r)
            freeReplyObject(r);
        if (acked == 1)
            break;
        usleep(10 * 1000);
    }
    char task[128];
    make_task(task, sizeof task, 1);
    for (int mode = 0; mode < 4; mode++) {
        bench_must(c, "DEL bench:wait");
        double t0 = bench_now_s();
        for (long i = 0; i < n;) {
            int pushes = mode >= 2 ? 100 : 1;
            for (int k = 0; k < pushes; k++)
                redisAppendCommand(c, "LPUSH bench:wait %s", task);
            if (mode == 1 || mode == 3)
                redisAppendCommand(c, "WAIT 1 1000");
            int replies = pushes + (mode == 1 || mode == 3);
            for (int k = 0; k < replies; k++) {
                redisReply *r;
                if (redisGetReply(c, (void **)&r) != REDIS_OK || r->type == REDIS_REPLY_ERROR ||
                    (r->type == REDIS_REPLY_INTEGER && k == pushes && r->integer != 1)) {
                    fprintf(stderr, "bench: a push or its WAIT failed\n");
                    exit(1);
                }
                freeReplyObject(r);
            }
            i += pushes;
        }
        rate[mode] = (double)n / (bench_now_s() - t0);
    }
    bench_must(c, "DEL bench:wait");
    harness_redis_stop(&replica);
}

/* The client libraries, each as 4 worker processes at their defaults
 * (prefetch 16, one handler at a time), beside libslotd at prefetch 16;
 * returns how many tasks each ran (the Node.js rate is 0 without its
 * node_modules). */
static long run_clients(redisContext *c, double *e2e16, double *e2e_py, double *e2e_js)
{
    long nl = ntasks / 10 < 100000 ? ntasks / 10 : 100000;
    printf("end to end (%ld tasks, 4 no-op libslotd workers, threads, prefetch 16):\n", nl);
    *e2e16 = run_end_to_end(c, nl, 16);
    printf("  %.0f tasks/s\n", *e2e16);
    static const char *const py[] = { "/usr/bin/python3", "tests/bench/noop_worker.py", "--port", "%PORT%",
                                      "--namespace", NS, "--id", "%ID%", "--out", "%OUT%", NULL };
    printf("end to end (%ld tasks, 4 no-op Python client workers, processes, defaults):\n", nl);
    *e2e_py = run_spawned(c, nl, "py", py);
    printf("  %.0f tasks/s\n", *e2e_py);
    static const char *const js[] = { "node", "tests/bench/noop_worker.js", "--port", "%PORT%",
                                      "--namespace", NS, "--id", "%ID%", "--out", "%OUT%", NULL };
    *e2e_js = 0;
    if (access("clients/node/node_modules/ioredis", F_OK) != 0) {
        printf("end to end, Node client: skipped (no clients/node/node_modules: sh tests/node-deps.sh)\n");
    } else {
        printf("end to end (%ld tasks, 4 no-op Node client workers, processes, defaults):\n", nl);
        *e2e_js = run_spawned(c, nl, "js", js);
        printf("  %.0f tasks/s\n", *e2e_js);
    }
    return nl;
}

int main(int argc, char **argv)
{
    int opt, tls_only = 0, check_only = 0, check_pairs = 7, clients_only = 0;
    if (getenv("BENCH_TASKS"))
        ntasks = atol(getenv("BENCH_TASKS"));
    if (getenv("BENCH_BATCH") && atoi(getenv("BENCH_BATCH")) > 0)
        batch = atoi(getenv("BENCH_BATCH"));
    while ((opt = getopt(argc, argv, "n:tc:l")) != -1) {
        if (opt == 'n')
            ntasks = atol(optarg);
        else if (opt == 't')
            tls_only = 1;
        else if (opt == 'l')
            clients_only = 1;
        else if (opt == 'c') {          /* only the checks' cost, over this many pairs */
            check_only = 1;
            check_pairs = atoi(optarg);
            if (check_pairs < 1 || check_pairs > CHECK_PAIRS_MAX)
                check_pairs = CHECK_PAIRS_MAX;
        }
    }
    if (ntasks < 1000)
        ntasks = 1000;
    /* Redis's TLS port too, for the drains through the sidecar, when they
     * can run: plain clients do not notice it. */
    char redis_conf[1024] = "save \"\"\nappendonly no\n";
    struct tls_side tls;
    int tls_ok = tls_prepare(&tls, redis_conf, sizeof redis_conf) == 0;
    if (harness_redis_start(&redis, redis_conf) != 0) {
        fprintf(stderr, "bench: redis-server did not start\n");
        return 1;
    }
    slotd_port = redis.port;
    snprintf(dir, sizeof dir, "%s", redis.dir);
    snprintf(conf_path, sizeof conf_path, "%s/slotd.yaml", dir);
    snprintf(log_path, sizeof log_path, "%s/slotd.log", dir);
    write_conf(1, 0);
    redisContext *c = rc();
    {
        /* The flood's connections. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }

    struct utsname u;
    uname(&u);
    char cpu[256] = "?", line[512];
    FILE *ci = fopen("/proc/cpuinfo", "r");
    while (ci && fgets(line, sizeof line, ci))
        if (strncmp(line, "model name", 10) == 0) {
            snprintf(cpu, sizeof cpu, "%s", strchr(line, ':') + 2);
            cpu[strcspn(cpu, "\n")] = '\0';
            break;
        }
    if (ci)
        fclose(ci);
    redisReply *info = redisCommand(c, "INFO server");
    char *ver = info ? strstr(info->str, "redis_version:") : NULL;
    printf("slotd bench: %ld tasks of ~100 bytes, %d keys (1 in 8 hash-tagged), %d workers, "
           "dispatch.batch %d\n", ntasks, KEYS, WORKERS, batch);
    printf("machine: %s, %ld cores, %s %s; redis %.*s\n\n", cpu, sysconf(_SC_NPROCESSORS_ONLN),
           u.sysname, u.release, ver ? (int)strcspn(ver + 14, "\r\n") : 1, ver ? ver + 14 : "?");
    if (info)
        freeReplyObject(info);
    if (tls_only) {
        int ran = tls_ok && tls_section(c, &tls) > 0;
        redisFree(c);
        harness_redis_stop(&redis);
        return ran ? 0 : 1;
    }
    if (clients_only) {
        double e16, epy, ejs;
        run_clients(c, &e16, &epy, &ejs);
        printf("\nlibslotd, prefetch 16 %.0f/s; Python client %.0f/s; Node client %.0f/s\n", e16, epy, ejs);
        redisFree(c);
        harness_redis_stop(&redis);
        return 0;
    }

    long rss = 0, rss2 = 0;
    double drain = 0, drain2 = 0;
    if (!check_only) {
    printf("drain (intake pre-filled, %d workers registered), dispatch.inflight 1 (the default):\n", WORKERS);
    drain = run_drain(c, &rss, NULL);
    printf("  %.0f tasks/s; slotd peak RSS %.1f MiB\n", drain, rss / 1024.0);
    printf("drain, dispatch.inflight 2:\n");
    write_conf(2, 0);
    drain2 = run_drain(c, &rss2, NULL);
    write_conf(1, 0);
    printf("  %.0f tasks/s; slotd peak RSS %.1f MiB\n", drain2, rss2 / 1024.0);
    }

    double chk, bare, rchk, rbare, exec_us[2], ratio[2];
    printf("drain, the commit checks on and off, alternating (ABBA), %d pairs:\n", check_pairs);
    run_check_cost(c, check_pairs, &chk, &bare, &rchk, &rbare, exec_us, ratio);
    printf("  pairs' rate with / without: mean %.3f, standard error %.3f\n", ratio[0], ratio[1]);
    printf("  median %.0f tasks/s with, %.0f without: the checks cost %.1f%% of the drain;\n"
           "  Redis CPU per million tasks %.3f s with, %.3f s without;\n"
           "  Redis time per dispatch transaction (EXEC) %.1f us with, %.1f us without: the checks "
           "%.1f us, %.1f%%\n", chk, bare,
           100.0 * (1.0 - chk / bare), rchk * 1e6 / (double)ntasks, rbare * 1e6 / (double)ntasks,
           exec_us[0], exec_us[1], exec_us[0] - exec_us[1],
           100.0 * (exec_us[0] - exec_us[1]) / exec_us[1]);
    if (check_only) {
        redisFree(c);
        harness_redis_stop(&redis);
        return 0;
    }
    /* Side by side: HTTP on and idle, then under a flood. The flood's
     * threads share the machine's cores with slotd and redis-server. */
    struct flood fl = { harness_free_port(), 0, 0, 0 };
    long rss3, rss4;
    write_conf(1, fl.port);
    printf("drain, HTTP on (http.listen), no client:\n");
    double drain_http = run_drain(c, &rss3, NULL);
    printf("  %.0f tasks/s; slotd peak RSS %.1f MiB\n", drain_http, rss3 / 1024.0);
    printf("drain under an HTTP flood (%d connections kept coming, 64 admitted, and a slowloris):\n",
           FLOOD_CONNS);
    double drain_flood = run_drain(c, &rss4, &fl);
    write_conf(1, 0);
    printf("  %.0f tasks/s (%.2fx of HTTP idle); slotd peak RSS %.1f MiB; %ld flood connections "
           "closed by slotd, the slowloris's %ld times\n", drain_flood, drain_flood / drain_http,
           rss4 / 1024.0, fl.closed, fl.cut);

    double tls_ratio = tls_ok ? tls_section(c, &tls) : 0;

    long nb = ntasks / 10 < 20000 ? ntasks / 10 : 20000;
    printf("baseline: per-task dispatcher (RPOP, LPUSH to the owner, one per round trip), %ld tasks:\n", nb);
    double base = run_baseline(c, nb);
    printf("  %.0f tasks/s\n", base);

    printf("baseline: redis-benchmark -t lpush -d 100 -P 64 (how fast tasks can arrive):\n");
    double arrive = run_redis_benchmark(ntasks);
    printf("  %.0f pushes/s\n", arrive);

    long long peak;
    double drain_after;
    printf("sustained (3 producers pushing pipelined LPUSH while slotd routes):\n");
    double sus = run_sustained(c, ntasks, &peak, &drain_after);
    printf("  %.0f tasks/s routed; backlog peak %lld; back to 0 %.3f s after producers stopped\n",
           sus, peak, drain_after);

    long ne = ntasks / 2;
    printf("end to end (%ld tasks through slotd and 4 no-op libslotd workers, threads, prefetch 512):\n", ne);
    double e2e = run_end_to_end(c, ne, 512);
    printf("  %.0f tasks/s from the first push to the last ack\n", e2e);

    double e2e16, e2e_py, e2e_js;
    long nl = run_clients(c, &e2e16, &e2e_py, &e2e_js), nx = nl / 5;
    static const char *const ex[] = { "/usr/bin/python3", "examples/worker.py", "--port", "%PORT%",
                                      "--namespace", NS, "--id", "%ID%", "--ttl-ms", "3000",
                                      "--log", "%OUT%", NULL };
    printf("end to end (%ld tasks, 4 examples/worker.py, one task per round trip):\n", nx);
    double e2e_ex = run_spawned(c, nx, "ex", ex);
    printf("  %.0f tasks/s\n", e2e_ex);

    double p50, p99, rtt;
    printf("latency (idle system, 1000 single pushes, push to queue):\n");
    run_latency(c, &p50, &p99, &rtt);
    printf("  p50 %.3f ms, p99 %.3f ms; one loopback round trip (PING) p50 %.3f ms\n", p50, p99, rtt);

    printf("failover (20,000 queued tasks; heartbeat expiry to all in the new owner's queue):\n");
    double fo = run_failover(c, 100);
    printf("  %.1f ms (check interval 100 ms)\n", fo);

    double wr[4];
    long nw = ntasks / 50 < 20000 ? ntasks / 50 : 20000;
    printf("a producer's WAIT (%ld pushes to a master with one replica, same machine):\n", nw);
    run_wait_cost(c, nw, wr);
    printf("  one per round trip: %.0f pushes/s without WAIT, %.0f/s with WAIT 1 after each "
           "(%.2fx);\n  100 pipelined: %.0f pushes/s without, %.0f/s with one WAIT 1 per 100 (%.2fx)\n",
           wr[0], wr[1], wr[1] / wr[0], wr[2], wr[3], wr[3] / wr[2]);

    printf("\nsummary                                  measured       target      ratio\n");
    printf("drain                                %10.0f/s  >= 3000000/s  %.2fx of target\n", drain, drain / 3e6);
    printf("drain, inflight 2                    %10.0f/s  >= 3000000/s  %.2fx of target\n", drain2, drain2 / 3e6);
    printf("drain with checks / without                   %7.3fx  >= 0.95x\n", chk / bare);
    printf("a transaction's Redis time, without / with    %7.3fx  >= 0.95x\n",
           exec_us[1] / exec_us[0]);
    printf("drain under an HTTP flood / HTTP idle          %7.2fx\n", drain_flood / drain_http);
    if (tls_ratio > 0)
        printf("drain through the TLS sidecar / straight       %7.2fx\n", tls_ratio);
    printf("drain / per-task baseline                     %7.0fx  >= 400x\n", drain / base);
    printf("drain / redis-benchmark lpush -P 64           %7.2fx\n", drain / arrive);
    printf("sustained                            %10.0f/s  >= 850000/s   %.2fx of target\n", sus, sus / 850e3);
    printf("end to end, 4 no-op workers          %10.0f/s  >= 250000/s   %.2fx of target\n", e2e, e2e / 250e3);
    printf("  libslotd, prefetch 16              %10.0f/s\n", e2e16);
    printf("  Python client, 4 processes         %10.0f/s  >= 60000/s    %.2fx of target\n", e2e_py, e2e_py / 60e3);
    printf("  Node client, 4 processes           %10.0f/s  >= 60000/s    %.2fx of target\n", e2e_js, e2e_js / 60e3);
    printf("  examples/worker.py, 4 processes    %10.0f/s\n", e2e_ex);
    printf("idle latency p99 above one round trip %9.3f ms  <= 1 ms\n", p99 - rtt);
    printf("failover after expiry                %10.1f ms  <= 200 ms\n", fo);
    printf("pushes with WAIT 1 / without, one by one      %7.2fx\n", wr[1] / wr[0]);
    printf("pushes with WAIT 1 / without, 100 pipelined   %7.2fx\n", wr[3] / wr[2]);
    printf("slotd peak RSS, drain                %10.1f MiB <= 8 MiB\n", rss / 1024.0);

    redisFree(c);
    harness_redis_stop(&redis);
    return 0;
}
