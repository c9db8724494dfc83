/*
 * harness: throwaway redis-servers and child processes for integration tests.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
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

int harness_free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

int harness_write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    int ok = fputs(content, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

pid_t harness_spawn(char *const argv[], const char *log_path)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int fd = open(log_path ? log_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) {
        dup2(null, 0);
        close(null);
    }
    execvp(argv[0], argv);
    _exit(127);
}

int harness_wait_exit(pid_t pid, int timeout_ms, int *status)
{
    uint64_t end = harness_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
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
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    do {
        if (pred(arg))
            return 0;
        usleep(2000);
    } while (harness_now_ms() < end);
    return -1;
}

redisContext *harness_redis_connect(const struct harness_redis *r)
{
    struct timeval tv = { 2, 0 };
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (c == NULL || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, (struct timeval){ 20, 0 });
    return c;
}

redisReply *harness_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    ck_assert_msg(r != NULL, "redis command '%s' failed: %s", fmt, c->errstr);
    return r;
}

/* Is it up and done loading? */
static int redis_ready(const struct harness_redis *r)
{
    redisContext *c = harness_redis_connect(r);
    int ok = 0;
    if (c == NULL)
        return 0;
    redisReply *rep = redisCommand(c, "PING");
    ok = rep != NULL && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0;
    if (rep)
        freeReplyObject(rep);
    redisFree(c);
    return ok;
}

static int spawn_redis(struct harness_redis *r)
{
    char conf[300], log[300];
    snprintf(conf, sizeof conf, "%s/redis.conf", r->dir);
    snprintf(log, sizeof log, "%s/redis.stdout", r->dir);
    char *argv[] = { "redis-server", conf, NULL };
    r->pid = harness_spawn(argv, log);
    if (r->pid < 0) {
        r->pid = 0;
        return -1;
    }
    uint64_t end = harness_now_ms() + 10000;
    while (harness_now_ms() < end) {
        int st;
        if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
            r->pid = 0;
            return -1;      /* it exited: port taken? */
        }
        if (redis_ready(r))
            return 0;
        usleep(5000);
    }
    harness_redis_kill(r, SIGKILL);
    return -1;
}

int harness_redis_start(struct harness_redis *r, const char *extra_conf)
{
    const char *tmp = getenv("TMPDIR");
    memset(r, 0, sizeof *r);
    snprintf(r->dir, sizeof r->dir, "%s/slotd-test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(r->dir) == NULL)
        return -1;
    for (int attempt = 0; attempt < 5; attempt++) {
        char conf[300], text[2048];
        r->port = harness_free_port();
        if (r->port <= 0)
            continue;
        snprintf(conf, sizeof conf, "%s/redis.conf", r->dir);
        snprintf(text, sizeof text,
                 "bind 127.0.0.1\nport %d\ndir %s\ndaemonize no\nsave \"\"\nappendonly no\n"
                 "logfile %s/redis.log\nprotected-mode yes\n%s\n",
                 r->port, r->dir, r->dir, extra_conf ? extra_conf : "");
        if (harness_write_file(conf, text) != 0)
            break;
        if (spawn_redis(r) == 0)
            return 0;
    }
    harness_redis_stop(r);
    return -1;
}

void harness_redis_kill(struct harness_redis *r, int sig)
{
    int st;
    if (r->pid <= 0)
        return;
    kill(r->pid, sig);
    if (harness_wait_exit(r->pid, 10000, &st) != 0) {
        kill(r->pid, SIGKILL);
        harness_wait_exit(r->pid, 5000, &st);
    }
    r->pid = 0;
}

int harness_redis_resume(struct harness_redis *r)
{
    return spawn_redis(r);
}

int harness_redis_restart(struct harness_redis *r)
{
    harness_redis_kill(r, SIGTERM);
    return harness_redis_resume(r);
}

static void remove_tree(const char *dir)
{
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", dir, (char *)NULL);
        _exit(127);
    }
    if (pid > 0) {
        int st;
        waitpid(pid, &st, 0);
    }
}

void harness_redis_stop(struct harness_redis *r)
{
    harness_redis_kill(r, SIGTERM);
    if (r->dir[0] != '\0' && getenv("SLOTD_KEEP_TEST_DIRS") == NULL)
        remove_tree(r->dir);
    r->dir[0] = '\0';
}
