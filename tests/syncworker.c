/*
 * syncworker: a libslotd worker in a child process and what it ran (see
 * syncworker.h).
 */
#include "syncworker.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "harness.h"

static volatile sig_atomic_t child_stop;

static void on_term(int sig)
{
    (void)sig;
    child_stop = 1;
}

static const char *path_of(char *buf, size_t cap, const char *dir, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
    return buf;
}

static void say_line(FILE *log, char *last, size_t cap, const char *what, const char *text)
{
    if (strcmp(text, last) == 0)
        return;
    snprintf(last, cap, "%s", text);
    fprintf(log, "%llu %s: %s\n", (unsigned long long)harness_now_ms(), what, text);
    fflush(log);
}

static void worker_main(const char *dir, const struct slotd_worker_options *o, int work_us)
{
    char path[512], err[512], last[600] = "", server[600] = "";
    FILE *log = fopen(path_of(path, sizeof path, dir, "worker.log"), "a");
    int done = open(path_of(path, sizeof path, dir, "done.log"), O_WRONLY | O_APPEND | O_CREAT,
                    0644);
    if (log == NULL || done < 0)
        _exit(2);
    struct slotd_worker *w = NULL;
    while (!child_stop && (w = slotd_worker_open(o, err, sizeof err)) == NULL) {
        say_line(log, last, sizeof last, "open", err);
        usleep(20000);
    }
    while (!child_stop && w && slotd_worker_register(w) != 0) {
        say_line(log, last, sizeof last, "register", slotd_worker_error(w));
        usleep(20000);
    }
    if (w == NULL || slotd_worker_start_heartbeat(w) != 0)
        _exit(2);
    struct slotd_task t[8];
    int n = 0;
    while (!child_stop) {
        if (strcmp(server, slotd_worker_server(w)) != 0) {
            snprintf(server, sizeof server, "%s", slotd_worker_server(w));
            fprintf(log, "%llu server %s\n", (unsigned long long)harness_now_ms(), server);
            fflush(log);
        }
        if (n > 0) {
            if (slotd_worker_ack(w, t, n) != 0) {
                say_line(log, last, sizeof last, "ack", slotd_worker_error(w));
                usleep(20000);
                continue;
            }
            n = 0;
        }
        int got = slotd_worker_take(w, t, 8, 200);
        if (got < 0) {
            say_line(log, last, sizeof last, "take", slotd_worker_error(w));
            usleep(20000);
            continue;
        }
        for (int i = 0; i < got; i++) {
            char line[64];
            if (work_us > 0)
                usleep((useconds_t)work_us);
            int len = snprintf(line, sizeof line, "%.*s %llu\n", (int)t[i].len, t[i].data,
                               (unsigned long long)harness_now_ms());
            if (write(done, line, (size_t)len) != len)
                _exit(2);
        }
        n = got;
    }
    while (n > 0 && slotd_worker_ack(w, t, n) != 0)
        usleep(20000);
    slotd_worker_leave(w);
    slotd_worker_close(w);
    fclose(log);
    close(done);
    _exit(0);
}

pid_t syncworker_start(const char *dir, const struct slotd_worker_options *o, int work_us)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_term;
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        worker_main(dir, o, work_us);
    }
    return pid;
}

void syncworker_stop(pid_t pid)
{
    int st;
    kill(pid, SIGTERM);
    if (harness_wait_exit(pid, 10000, &st) != 0) {
        kill(pid, SIGKILL);
        harness_wait_exit(pid, 5000, &st);
    }
}

void syncworker_read_runs(const char *dir, struct syncworker_runs *r, int n, uint64_t since)
{
    char path[512], line[128];
    memset(r, 0, sizeof *r);
    r->n = n;
    FILE *f = fopen(path_of(path, sizeof path, dir, "done.log"), "r");
    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f)) {
        int seq;
        unsigned long long t;
        if (sscanf(line, "%d %llu", &seq, &t) != 2 || seq < 0 || seq >= n)
            continue;
        r->count[seq]++;
        r->lines++;
        if (since > 0 && t >= since && (r->first_after == 0 || t < r->first_after))
            r->first_after = t;
    }
    fclose(f);
}

int syncworker_wait_all_ran(const char *dir, int n, int timeout_ms)
{
    static struct syncworker_runs r;
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    do {
        int missing = 0;
        syncworker_read_runs(dir, &r, n, 0);
        for (int i = 0; i < n; i++)
            missing += r.count[i] == 0;
        if (missing == 0)
            return 0;
        usleep(50000);
    } while (harness_now_ms() < end);
    return -1;
}

int syncworker_wait_lines(const char *dir, int lines, int timeout_ms)
{
    static struct syncworker_runs r;
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    do {
        syncworker_read_runs(dir, &r, SYNCWORKER_SEQS_MAX, 0);
        if (r.lines >= lines)
            return 0;
        usleep(20000);
    } while (harness_now_ms() < end);
    return -1;
}

uint64_t syncworker_server_change(const char *dir, const char *text, uint64_t since)
{
    char path[512], line[1024];
    uint64_t at = 0;
    FILE *f = fopen(path_of(path, sizeof path, dir, "worker.log"), "r");
    while (f != NULL && at == 0 && fgets(line, sizeof line, f)) {
        unsigned long long t;
        if (sscanf(line, "%llu", &t) == 1 && t >= since && strstr(line, " server ") &&
            strstr(line, text))
            at = t;
    }
    if (f)
        fclose(f);
    return at;
}

int syncworker_file_has(const char *dir, const char *name, const char *text)
{
    char path[512], line[4096];
    int found = 0;
    FILE *f = fopen(path_of(path, sizeof path, dir, name), "r");
    while (f != NULL && !found && fgets(line, sizeof line, f))
        found = strstr(line, text) != NULL;
    if (f)
        fclose(f);
    return found;
}
