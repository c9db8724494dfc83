/*
 * harness: throwaway redis-servers, child processes, temp dirs and waiting
 * for integration tests. The only Redis it talks to is one it started.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1           /* nftw, NSIG */
#endif

#include "harness.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REDIS_UP_MS     10000   /* start and load; generous for loaded CI */
#define REDIS_STOP_MS   10000   /* SIGTERM to exit, then SIGKILL */
#define REDIS_ATTEMPTS  5       /* ports tried before giving up */

uint64_t harness_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int harness_run(const char *cmd, char *out, size_t cap)
{
    FILE *f = popen(cmd, "r");
    size_t n = 0;
    if (f == NULL) {
        out[0] = '\0';
        return -1;
    }
    while (n + 1 < cap) {
        size_t m = fread(out + n, 1, cap - 1 - n, f);
        if (m == 0)
            break;
        n += m;
    }
    out[n] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *harness_build_dir(void)
{
    const char *b = getenv("BUILD");
    return b && *b ? b : "build";
}

const char *harness_bin(char *buf, size_t cap, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", harness_build_dir(), name);
    ck_assert_msg(n >= 0 && (size_t)n < cap, "path of %s is too long", name);
    return buf;
}

/* Binds 127.0.0.1:port (0: the kernel picks one nobody is bound to) and
 * closes again; the port bound, or -1. Never listened on, so closing leaves
 * no TIME_WAIT behind. */
static int probe_port(int port)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), bound = -1;
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        bound = ntohs(a.sin_port);
    close(fd);
    return bound;
}

static int port_is_free(int port)
{
    return probe_port(port) == port;
}

int harness_free_port(void)
{
    return probe_port(0);
}

int harness_write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    int ok = fputs(content, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

int harness_file_count(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int n = 0;
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, text) != NULL;
    fclose(f);
    return n;
}

int harness_file_wait(const char *path, const char *text, int timeout_ms)
{
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    do {
        if (harness_file_count(path, text) > 0)
            return 0;
        usleep(20000);
    } while (harness_now_ms() < end);
    return -1;
}

int harness_tmpdir(char *buf, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    int n = snprintf(buf, cap, "%s/slotd-test.XXXXXX", tmp);
    /* A cut template would lose its XXXXXX; mkdtemp would reject it, but
     * say why. */
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "harness: temp dir path under %s is too long\n", tmp);
        return -1;
    }
    if (mkdtemp(buf) == NULL) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", buf, strerror(errno));
        return -1;
    }
    return 0;
}

static int remove_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT)
        fprintf(stderr, "harness: remove %s: %s\n", path, strerror(errno));
    return 0;                   /* go on: remove as much as we can */
}

void harness_tmpdir_remove(const char *path)
{
    if (path == NULL || path[0] == '\0' || strcmp(path, "/") == 0)
        return;
    if (getenv("SLOTD_KEEP_TEST_DIRS") != NULL) {
        fprintf(stderr, "harness: keeping %s\n", path);
        return;
    }
    /* Depth first, so each dir is empty when its turn comes; FTW_PHYS, so a
     * symlink is removed, never followed out of the tree. */
    nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

pid_t harness_spawn(char *const argv[], const char *log_path)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;             /* the parent, or -1 */

    /* The child: only async-signal-safe calls until exec, as the test may
     * have threads. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)    /* the parent died before prctl */
        _exit(127);
    /* exec keeps ignored signals ignored and the mask as it is; a child
     * that ignores SIGTERM would not stop when told. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &dfl, NULL);   /* fails harmlessly for SIGKILL, SIGSTOP */

    int fd = open(log_path ? log_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) {
        dup2(null, 0);
        if (null > 2)
            close(null);
    }
    execvp(argv[0], argv);
    _exit(127);
}

int harness_wait_exit(pid_t pid, int timeout_ms, int *status)
{
    uint64_t end = harness_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    if (pid <= 0)
        return -1;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        if (harness_now_ms() >= end)
            return -1;
        usleep(1000);
    }
}

int harness_kill(pid_t pid, int sig)
{
    return pid > 0 ? kill(pid, sig) : -1;
}

int harness_wait_until(int (*pred)(void *), void *arg, int timeout_ms)
{
    uint64_t end = harness_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    do {
        if (pred(arg))
            return 0;
        usleep(2000);
    } while (harness_now_ms() < end);
    return -1;
}

/* A sync connection to r with these timeouts, authenticated; or NULL. */
static redisContext *connect_within(const struct harness_redis *r, struct timeval connect_tv,
                                    struct timeval command_tv)
{
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, connect_tv);
    if (c == NULL || c->err || redisSetTimeout(c, command_tv) != REDIS_OK) {
        if (c)
            redisFree(c);
        return NULL;
    }
    if (r->password[0] != '\0') {
        redisReply *rep = redisCommand(c, "AUTH %s", r->password);
        int ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
        if (rep)
            freeReplyObject(rep);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

redisContext *harness_redis_connect(const struct harness_redis *r)
{
    return connect_within(r, (struct timeval){ 2, 0 }, (struct timeval){ 20, 0 });
}

redisReply *harness_cmd(redisContext *c, const char *fmt, ...)
{
    ck_assert_msg(c != NULL, "redis command '%s' without a connection", fmt);
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    ck_assert_msg(r != NULL, "redis command '%s' failed: %s", fmt, c->errstr);
    return r;
}

long long harness_llen(redisContext *c, const char *key)
{
    redisReply *r = harness_cmd(c, "LLEN %s", key);
    ck_assert_msg(r->type == REDIS_REPLY_INTEGER, "LLEN %s: reply type %d (%s)", key, r->type,
                  r->type == REDIS_REPLY_ERROR ? r->str : "not an error");
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/* Up and done loading? While Redis loads an AOF or RDB it answers PING
 * with -LOADING, so PONG means both. */
static int redis_ready(const struct harness_redis *r)
{
    redisContext *c = harness_redis_connect(r);
    if (c == NULL)
        return 0;
    redisReply *rep = redisCommand(c, "PING");
    int ok = rep != NULL && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0;
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return ok;
}

/* The end of one of Redis's logs on stderr, so a failed start says why:
 * redis.log, or redis.stdout for what comes before the log file is open
 * (a bad config line, say). */
static void print_log_tail(const struct harness_redis *r, const char *name)
{
    char path[300], buf[2048];
    snprintf(path, sizeof path, "%s/%s", r->dir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size > (long)sizeof buf - 1)
            fseek(f, size - (long)sizeof buf + 1, SEEK_SET);
        else
            rewind(f);
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    if (n > 0)
        fprintf(stderr, "--- %s (end) ---\n%s--- end of %s ---\n", path, buf, path);
}

/* Runs redis-server on r->dir/redis.conf and waits until it is ready.
 * 0, or -1 with the process gone (it exited, e.g. its port was taken, or
 * it was not ready in time and was killed). */
static int spawn_redis(struct harness_redis *r)
{
    char conf[300], out[300];
    snprintf(conf, sizeof conf, "%s/redis.conf", r->dir);
    snprintf(out, sizeof out, "%s/redis.stdout", r->dir);
    char *argv[] = { "redis-server", conf, r->sentinel ? "--sentinel" : NULL, NULL };
    r->frozen = 0;
    r->pid = harness_spawn(argv, out);
    if (r->pid < 0) {
        fprintf(stderr, "harness: fork for redis-server: %s\n", strerror(errno));
        r->pid = 0;
        return -1;
    }
    uint64_t end = harness_now_ms() + REDIS_UP_MS;
    while (harness_now_ms() < end) {
        int st;
        if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
            fprintf(stderr, "harness: redis-server on port %d (%s) exited at start, status 0x%x\n",
                    r->port, r->dir, st);
            r->pid = 0;
            return -1;
        }
        if (redis_ready(r))
            return 0;
        usleep(5000);
    }
    fprintf(stderr, "harness: redis-server on port %d (%s) not ready after %d ms\n", r->port,
            r->dir, REDIS_UP_MS);
    harness_redis_kill(r, SIGKILL);
    return -1;
}

/* The config, written in full or not at all (no silently cut lines). */
static int write_conf(const struct harness_redis *r, const char *extra_conf)
{
    char path[300];
    snprintf(path, sizeof path, "%s/redis.conf", r->dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    int ok = fprintf(f,
                     "bind 127.0.0.1\n"
                     "port %d\n"
                     "dir %s\n"
                     "daemonize no\n"
                     "save \"\"\n"
                     "appendonly no\n"
                     "logfile %s/redis.log\n"
                     "protected-mode yes\n"
                     "%s\n",
                     r->port, r->dir, r->dir, extra_conf ? extra_conf : "") > 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Did Redis refuse its config? It says so on stdout, before the log file
 * is open. */
static int config_rejected(const struct harness_redis *r)
{
    char path[300], buf[4096];
    snprintf(path, sizeof path, "%s/redis.stdout", r->dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, "CONFIG FILE ERROR") != NULL;
}

/* A port for Redis, fit for cluster mode too: there Redis also listens on
 * port + 10000 (the cluster bus) and refuses ports above 55535, while the
 * kernel's picks run up to 60999. So both must be free, the bus port too. */
static int free_redis_port(void)
{
    for (int i = 0; i < 100; i++) {
        int port = harness_free_port();
        if (port <= 0)
            return -1;
        if (port <= 65535 - 10000 && port_is_free(port + 10000))
            return port;
    }
    return -1;
}

/* The password of a "requirepass PASSWORD" line of extra_conf, or "". */
static void find_password(struct harness_redis *r, const char *extra_conf)
{
    const char *line = extra_conf;
    while (line != NULL && *line != '\0') {
        if (strncmp(line, "requirepass ", 12) == 0) {
            size_t n = strcspn(line + 12, "\r\n");
            if (n >= sizeof r->password)
                n = sizeof r->password - 1;
            memcpy(r->password, line + 12, n);
            r->password[n] = '\0';
        }
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
}

static int start_server(struct harness_redis *r, const char *extra_conf, int sentinel)
{
    memset(r, 0, sizeof *r);
    r->sentinel = sentinel;
    find_password(r, extra_conf);
    /* Room for "/redis.conf" and friends after the dir. */
    if (harness_tmpdir(r->dir, sizeof r->dir - 32) != 0) {
        r->dir[0] = '\0';
        return -1;
    }
    for (int attempt = 0; attempt < REDIS_ATTEMPTS; attempt++) {
        r->port = free_redis_port();
        if (r->port <= 0)
            break;
        if (write_conf(r, extra_conf) != 0) {
            fprintf(stderr, "harness: writing %s/redis.conf: %s\n", r->dir, strerror(errno));
            break;
        }
        /* Another process may have taken the port since we looked; then
         * Redis exits and we try another. A bad config fails on any port. */
        if (spawn_redis(r) == 0)
            return 0;
        if (config_rejected(r))
            break;
    }
    print_log_tail(r, "redis.stdout");
    print_log_tail(r, "redis.log");
    harness_redis_stop(r);
    return -1;
}

int harness_redis_start(struct harness_redis *r, const char *extra_conf)
{
    return start_server(r, extra_conf, 0);
}

int harness_sentinel_start(struct harness_redis *r, const char *extra_conf)
{
    return start_server(r, extra_conf, 1);
}

void harness_redis_freeze(struct harness_redis *r)
{
    int st;
    if (r->pid <= 0 || r->frozen)
        return;
    kill(r->pid, SIGSTOP);
    /* Stopped for sure once waitpid says so: a test that freezes Redis and
     * then talks to it must not race the signal. */
    while (waitpid(r->pid, &st, WUNTRACED) < 0 && errno == EINTR)
        ;
    r->frozen = 1;
}

void harness_redis_thaw(struct harness_redis *r)
{
    if (r->pid <= 0 || !r->frozen)
        return;
    kill(r->pid, SIGCONT);
    r->frozen = 0;
}

int harness_redis_up(const struct harness_redis *r)
{
    return r->pid > 0 && !r->frozen;
}

void harness_redis_kill(struct harness_redis *r, int sig)
{
    int st;
    if (r->pid <= 0)
        return;
    kill(r->pid, sig);
    if (r->frozen) {
        kill(r->pid, SIGCONT);  /* a stopped process gets its SIGTERM only now */
        r->frozen = 0;
    }
    if (harness_wait_exit(r->pid, REDIS_STOP_MS, &st) != 0) {
        kill(r->pid, SIGKILL);
        harness_wait_exit(r->pid, REDIS_STOP_MS, &st);
    }
    r->pid = 0;
}

int harness_redis_resume(struct harness_redis *r)
{
    if (r->pid > 0 || r->dir[0] == '\0')
        return -1;              /* still running, or already removed */
    if (spawn_redis(r) != 0) {
        print_log_tail(r, "redis.stdout");
        print_log_tail(r, "redis.log");
        return -1;
    }
    return 0;
}

int harness_redis_restart(struct harness_redis *r)
{
    harness_redis_kill(r, SIGTERM);
    return harness_redis_resume(r);
}

void harness_redis_stop(struct harness_redis *r)
{
    harness_redis_kill(r, SIGTERM);
    harness_tmpdir_remove(r->dir);
    r->dir[0] = '\0';
}

/* ---- Sentinel topologies ---------------------------------------------- */

#define HA_READY_MS 20000

/* A sync connection with short timeouts (a sentinel or a node may be
 * stopped or gone: the helpers below must not hang on one), or NULL. */
static redisContext *ha_connect(const struct harness_redis *r)
{
    if (!harness_redis_up(r))
        return NULL;
    return connect_within(r, (struct timeval){ 0, 500000 }, (struct timeval){ 1, 0 });
}

/* INFO replication of r into buf ("" when it does not answer). */
static void ha_info(const struct harness_redis *r, char *buf, size_t cap)
{
    redisContext *c = ha_connect(r);
    buf[0] = '\0';
    if (c == NULL)
        return;
    redisReply *rep = redisCommand(c, "INFO replication");
    if (rep != NULL && rep->type == REDIS_REPLY_STRING)
        snprintf(buf, cap, "%s", rep->str);
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
}

/* The number after "field:" in an INFO text, or -1. */
static long long info_number(const char *info, const char *field)
{
    char key[64];
    snprintf(key, sizeof key, "\n%s:", field);
    const char *p = strstr(info, key);
    return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

const char *harness_ha_sentinel_list(const struct harness_ha *h, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < HARNESS_HA_SENTINELS && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s127.0.0.1:%d", i ? "," : "",
                                 h->sentinel[i].port);
    return buf;
}

struct harness_redis *harness_ha_node(struct harness_ha *h, int port)
{
    for (int i = 0; i < h->nnodes; i++)
        if (h->node[i].port == port)
            return &h->node[i];
    return NULL;
}

/* What sentinel i says the master's port is, or -1. */
static int ha_named_port(const struct harness_ha *h, int i)
{
    redisContext *c = ha_connect(&h->sentinel[i]);
    int port = -1;
    if (c == NULL)
        return -1;
    redisReply *rep = redisCommand(c, "SENTINEL get-master-addr-by-name %s", h->name);
    if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[1]->type == REDIS_REPLY_STRING)
        port = atoi(rep->element[1]->str);
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return port;
}

int harness_ha_master_port(const struct harness_ha *h)
{
    int named[HARNESS_HA_SENTINELS], up = 0;
    for (int i = 0; i < HARNESS_HA_SENTINELS; i++) {
        named[i] = -1;
        if (harness_redis_up(&h->sentinel[i])) {
            up++;
            named[i] = ha_named_port(h, i);
        }
    }
    for (int i = 0; i < HARNESS_HA_SENTINELS; i++) {
        int votes = 0;
        for (int j = 0; j < HARNESS_HA_SENTINELS; j++)
            votes += named[i] > 0 && named[j] == named[i];
        if (votes * 2 > up)
            return named[i];
    }
    return -1;
}

/* ROLE's first word on r is "master". */
static int ha_is_master(const struct harness_redis *r)
{
    redisContext *c = ha_connect(r);
    int yes = 0;
    if (c == NULL)
        return 0;
    redisReply *rep = redisCommand(c, "ROLE");
    yes = rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
          rep->element[0]->type == REDIS_REPLY_STRING && strcmp(rep->element[0]->str, "master") == 0;
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return yes;
}

int harness_ha_wait_failover(struct harness_ha *h, int old_port, int timeout_ms)
{
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    do {
        int port = harness_ha_master_port(h);
        struct harness_redis *m = port > 0 && port != old_port ? harness_ha_node(h, port) : NULL;
        if (m != NULL && ha_is_master(m))
            return port;
        usleep(20000);
    } while (harness_now_ms() < end);
    return -1;
}

/* Every node up but the master's is its replica, online, at its offset. */
static int ha_synced(struct harness_ha *h, int master_port)
{
    char info[8192], want[64];
    struct harness_redis *m = harness_ha_node(h, master_port);
    if (m == NULL)
        return 0;
    ha_info(m, info, sizeof info);
    long long offset = info_number(info, "master_repl_offset");
    if (strstr(info, "role:master") == NULL || offset < 0)
        return 0;
    for (int i = 0; i < h->nnodes; i++) {
        const struct harness_redis *n = &h->node[i];
        if (n == m || !harness_redis_up(n))
            continue;
        /* slaveK:ip=127.0.0.1,port=P,state=online,offset=O,lag=L */
        snprintf(want, sizeof want, ",port=%d,state=online,offset=%lld,", n->port, offset);
        if (strstr(info, want) == NULL)
            return 0;
    }
    return 1;
}

int harness_ha_wait_synced(struct harness_ha *h, int timeout_ms)
{
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    do {
        int port = harness_ha_master_port(h);
        if (port > 0 && ha_synced(h, port))
            return 0;
        usleep(20000);
    } while (harness_now_ms() < end);
    return -1;
}

/* The integer of a field of SENTINEL MASTER's flat field-value array. */
static long long field_number(const redisReply *rep, const char *field)
{
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements; i += 2)
        if (rep->element[i]->type == REDIS_REPLY_STRING && strcmp(rep->element[i]->str, field) == 0 &&
            rep->element[i + 1]->type == REDIS_REPLY_STRING)
            return strtoll(rep->element[i + 1]->str, NULL, 10);
    return -1;
}

/* Sentinel i knows the sentinels and the replicas that are up. */
static int ha_sentinel_knows(const struct harness_ha *h, int i, int sentinels_up, int replicas_up)
{
    redisContext *c = ha_connect(&h->sentinel[i]);
    if (c == NULL)
        return 0;
    redisReply *rep = redisCommand(c, "SENTINEL MASTER %s", h->name);
    int ok = rep != NULL && field_number(rep, "num-other-sentinels") >= sentinels_up - 1 &&
             field_number(rep, "num-slaves") >= replicas_up;
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return ok;
}

int harness_ha_wait_ready(struct harness_ha *h, int timeout_ms)
{
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    do {
        int port = harness_ha_master_port(h), sentinels_up = 0, replicas_up = 0, known = 1;
        for (int i = 0; i < HARNESS_HA_SENTINELS; i++)
            sentinels_up += harness_redis_up(&h->sentinel[i]);
        for (int i = 0; i < h->nnodes; i++)
            replicas_up += harness_redis_up(&h->node[i]) && h->node[i].port != port;
        for (int i = 0; known && i < HARNESS_HA_SENTINELS; i++)
            if (harness_redis_up(&h->sentinel[i]))
                known = ha_sentinel_knows(h, i, sentinels_up, replicas_up);
        if (port > 0 && known && ha_synced(h, port))
            return 0;
        usleep(50000);
    } while (harness_now_ms() < end);
    return -1;
}

int harness_ha_start(struct harness_ha *h, const char *name, int replicas, const char *node_conf,
                     const char *sentinel_conf)
{
    char conf[4096], scratch_pass[128] = "", sentinel_pass[128] = "";
    struct harness_redis probe;
    memset(h, 0, sizeof *h);
    snprintf(h->name, sizeof h->name, "%s", name);
    if (replicas < 0 || 1 + replicas > HARNESS_HA_NODES_MAX) {
        fprintf(stderr, "harness: %d replicas: at most %d\n", replicas, HARNESS_HA_NODES_MAX - 1);
        return -1;
    }
    /* The passwords the configs ask for, as harness_redis_start finds them. */
    memset(&probe, 0, sizeof probe);
    find_password(&probe, node_conf);
    snprintf(scratch_pass, sizeof scratch_pass, "%s", probe.password);
    memset(&probe, 0, sizeof probe);
    find_password(&probe, sentinel_conf);
    snprintf(sentinel_pass, sizeof sentinel_pass, "%s", probe.password);

    for (int i = 0; i <= replicas; i++) {
        char replicaof[64] = "", auth[200] = "";
        if (i > 0)
            snprintf(replicaof, sizeof replicaof, "replicaof 127.0.0.1 %d\n", h->node[0].port);
        if (scratch_pass[0])
            snprintf(auth, sizeof auth, "masterauth %s\n", scratch_pass);
        snprintf(conf, sizeof conf, "repl-diskless-sync-delay 0\n%s%s%s\n", replicaof, auth,
                 node_conf ? node_conf : "");
        if (harness_redis_start(&h->node[i], conf) != 0) {
            fprintf(stderr, "harness: node %d of the Sentinel topology did not start\n", i);
            goto fail;
        }
        h->nnodes = i + 1;
    }
    /* The replicas first, in sync: a sentinel learns the replicas from the
     * master's INFO, which it reads at once and then only every 10 s. */
    uint64_t end = harness_now_ms() + HA_READY_MS;
    while (!ha_synced(h, h->node[0].port)) {
        if (harness_now_ms() >= end) {
            fprintf(stderr, "harness: the replicas of port %d did not sync\n", h->node[0].port);
            goto fail;
        }
        usleep(20000);
    }
    for (int i = 0; i < HARNESS_HA_SENTINELS; i++) {
        char auth[300] = "", peers[200] = "";
        if (scratch_pass[0])
            snprintf(auth, sizeof auth, "sentinel auth-pass %s %s\n", h->name, scratch_pass);
        if (sentinel_pass[0])
            snprintf(peers, sizeof peers, "sentinel sentinel-pass %s\n", sentinel_pass);
        snprintf(conf, sizeof conf,
                 "sentinel monitor %s 127.0.0.1 %d 2\n"
                 "sentinel down-after-milliseconds %s 1000\n"
                 "sentinel failover-timeout %s 3000\n"
                 "%s%s%s\n",
                 h->name, h->node[0].port, h->name, h->name, auth, peers,
                 sentinel_conf ? sentinel_conf : "");
        if (harness_sentinel_start(&h->sentinel[i], conf) != 0) {
            fprintf(stderr, "harness: sentinel %d did not start\n", i);
            goto fail;
        }
    }
    if (harness_ha_wait_ready(h, HA_READY_MS) != 0) {
        fprintf(stderr, "harness: the sentinels of '%s' did not get ready in %d ms\n", h->name,
                HA_READY_MS);
        goto fail;
    }
    return 0;
fail:
    harness_ha_stop(h);
    return -1;
}

void harness_ha_stop(struct harness_ha *h)
{
    for (int i = 0; i < HARNESS_HA_SENTINELS; i++)
        harness_redis_stop(&h->sentinel[i]);
    for (int i = 0; i < h->nnodes; i++)
        harness_redis_stop(&h->node[i]);
}
