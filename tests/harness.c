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

redisContext *harness_redis_connect(const struct harness_redis *r)
{
    struct timeval connect_tv = { 2, 0 }, command_tv = { 20, 0 };
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, connect_tv);
    if (c == NULL || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    if (redisSetTimeout(c, command_tv) != REDIS_OK) {
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
    char *argv[] = { "redis-server", conf, NULL };
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

int harness_redis_start(struct harness_redis *r, const char *extra_conf)
{
    memset(r, 0, sizeof *r);
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

void harness_redis_kill(struct harness_redis *r, int sig)
{
    int st;
    if (r->pid <= 0)
        return;
    kill(r->pid, sig);
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
