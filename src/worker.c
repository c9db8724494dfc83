/*
 * slotd-worker: a ready worker. Runs COMMAND once per task, the task on its
 * standard input, with up to -j at once but never two of one slot at once,
 * and each slot's tasks in their order. Exit 0 acknowledges; a non-zero exit
 * is retried with backoff up to worker.max_attempts, then dead-lettered.
 *
 *   take (libslotd) --> pending (FIFO) --slot free, < -j running--> running
 *        ^                                                          | exit 0: ack
 *        |                                                          | exit != 0: retry (slot stays busy)
 *        +-------------- held < worker.prefetch <-------------------+ or dead letter
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "clock.h"
#include "conf.h"
#include "dial.h"
#include "episode.h"
#include "keyslot.h"
#include "log.h"
#include "refusal.h"
#include "route.h"
#include "slotd_worker.h"

#define STDERR_TAIL 1024
#define EXIT_CONFIG 78

/* DONE: ran, to acknowledge; FAILED: to dead-letter; SETTLED: either done, to drop. */
enum job_state { JOB_PENDING, JOB_RUNNING, JOB_WAITING, JOB_DONE, JOB_FAILED, JOB_SETTLED };

struct job {
    struct slotd_task task;         /* data owned until acked or dead-lettered */
    unsigned          slot;
    enum job_state    state;
    unsigned          runs;         /* how many times started here */
    pid_t             pid;
    int               err_fd;       /* read end of the child's stderr, -1 */
    char              tail[STDERR_TAIL];  /* last bytes of its stderr */
    size_t            tail_len;
    int               status;       /* last wait status */
    uint64_t          retry_at;     /* JOB_WAITING: when to run again */
    struct backoff    backoff;
};

/*
 * A failure that repeats while the worker retries (Redis unreachable, a
 * password or a command refused), said as episode.h says: when it starts,
 * with what to do; then at most once a minute with how long and how often;
 * once when it ends. A refusal other than the last one said is news; so,
 * once per episode, is any other failure than the one said: an episode
 * that starts with a lost connection says why connecting again fails too
 * (Redis down, or no sentinel that can name the master).
 */
struct trouble {
    struct episode ep;
    const char    *unit;            /* (ref) one occurrence: "failed attempt" */
    char           then[160];       /* what the worker does meanwhile */
    char           said[64];        /* the failure last said in this episode */
    int            changed;         /* a second kind of failure was said in this episode */
};

struct runner {
    struct conf          conf;
    struct slotd_worker *w;         /* owned */
    char               **cmd;       /* (ref) argv after "--" */
    int                  jobs_max;  /* -j */
    struct job          *jobs;      /* owned: held tasks, oldest first */
    int                  njobs;
    int                  running;
    struct route_rules   rules;
    char                *scratch;   /* owned: key decoding */
    const char          *id;
    char                 addr[300]; /* Redis, for the lines: host:port, or the master's name */
    char                 server[800];   /* where libslotd's connection went, as last said */
    struct trouble       redis;     /* the worker's own connection */
    struct trouble       hb;        /* the heartbeat thread's */
    unsigned long        hb_seen;   /* heartbeat failures in a row already counted */
};

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: slotd-worker -c FILE --id ID [-j N] -- COMMAND [ARGS...]\n"
                 "Runs COMMAND once per task (task on stdin; SLOTD_KEY, SLOTD_SLOT,\n"
                 "SLOTD_ATTEMPT, SLOTD_WORKER_ID in the environment). See docs/workers.md.\n");
}

/*
 * One occurrence of t; err is libslotd's error, doing what the worker was
 * at ("" when err says it). libslotd says "refused" before the ':' exactly
 * when Redis answered with an error; the failure's kind, to tell news, is
 * err up to the first word after that ':' ("take refused: NOPERM").
 */
static void trouble_hit(struct runner *r, struct trouble *t, const char *doing, const char *err)
{
    uint64_t now = clock_mono_ms();
    size_t head = strcspn(err, ":");
    int refusal = memmem(err, head, "refused", 7) != NULL;
    size_t tail = head + (err[head] ? 2 : 0);
    char kind[sizeof t->said], advice[300];
    enum log_level level = refusal ? LL_ERROR : LL_WARN;

    if (tail > strlen(err))
        tail = strlen(err);
    snprintf(kind, sizeof kind, "%.*s", (int)(tail + strcspn(err + tail, " ")), err);
    enum episode_say say = episode_hit(&t->ep, now, 0, NULL);
    int other = say != EPISODE_FIRST && strcmp(kind, t->said) != 0;
    if (say == EPISODE_FIRST || (other && (refusal || !t->changed))) {
        t->changed |= other;
        refusal_advice(advice, sizeof advice, err, NULL, r->conf.redis.username);
        log_msg(level, "worker %s (redis %s): %s%.*s; %s%s%s", r->id, r->addr, doing,
                (int)refusal_len(err), err, advice, advice[0] ? "; " : "", t->then);
        snprintf(t->said, sizeof t->said, "%s", kind);
    } else if (say == EPISODE_AGAIN) {
        log_msg(level, "worker %s (redis %s): still %s%.*s (for %" PRIu64 " s, %" PRIu64 " %ss); %s",
                r->id, r->addr, doing, (int)refusal_len(err), err,
                (now - t->ep.started_ms) / 1000, t->ep.total, t->unit, t->then);
    } else {
        log_debug("worker %s (redis %s): still %s%s", r->id, r->addr, doing, err);
    }
}

/* t is over (nothing said if it was not going on): how says what works. */
static void trouble_over(struct runner *r, struct trouble *t, const char *how)
{
    uint64_t lasted_ms, total;
    if (episode_end(&t->ep, clock_mono_ms(), &lasted_ms, &total))
        log_info("worker %s (redis %s): %s after %.1f s, %" PRIu64 " %s%s", r->id, r->addr, how,
                 (double)lasted_ms / 1000.0, total, t->unit, total == 1 ? "" : "s");
    t->said[0] = '\0';
    t->changed = 0;
}

/* Says what the heartbeat thread met since the last look: libslotd counts
 * its failures in a row, and prints nothing itself. */
static void watch_heartbeat(struct runner *r)
{
    char err[256];
    unsigned long n = slotd_worker_heartbeat_failures(r->w, err, sizeof err);
    if (n == 0 || n < r->hb_seen) {
        /* One succeeded since the last look. */
        trouble_over(r, &r->hb, "heartbeat works again");
        r->hb_seen = 0;
    }
    for (; r->hb_seen < n; r->hb_seen++)
        trouble_hit(r, &r->hb, "heartbeat failed: ", err);
}

/* Says where the worker's connection went when that changed: with
 * Sentinel, a failover followed. */
static void watch_server(struct runner *r)
{
    const char *now = slotd_worker_server(r->w);
    if (now[0] == '\0' || strcmp(now, r->server) == 0)
        return;
    if (r->server[0] != '\0')
        log_info("worker %s: on Redis %s now (was %s)", r->id, now, r->server);
    snprintf(r->server, sizeof r->server, "%s", now);
}

static int slot_busy(const struct runner *r, unsigned slot)
{
    for (int i = 0; i < r->njobs; i++)
        if (r->jobs[i].slot == slot &&
            (r->jobs[i].state == JOB_RUNNING || r->jobs[i].state == JOB_WAITING))
            return 1;
    return 0;
}

static void set_key_env(struct runner *r, const struct job *j)
{
    const char *key;
    size_t keylen, at;
    char buf[32];
    unsetenv("SLOTD_KEY");
    if (r->rules.key_field_len > 0 &&
        taskkey_find(j->task.data, j->task.len, r->rules.key_field, r->rules.key_field_len,
                     r->scratch, &key, &keylen, &at) == TASKKEY_OK &&
        memchr(key, '\0', keylen) == NULL) {
        char *k = strndup(key, keylen);
        if (k) {
            setenv("SLOTD_KEY", k, 1);
            free(k);
        }
    }
    snprintf(buf, sizeof buf, "%u", j->slot);
    setenv("SLOTD_SLOT", buf, 1);
    snprintf(buf, sizeof buf, "%u", j->task.attempt + j->runs);
    setenv("SLOTD_ATTEMPT", buf, 1);
}

static int start_job(struct runner *r, struct job *j)
{
    int errp[2];
    int in = memfd_create("slotd-task", 0);
    if (in < 0 || pipe2(errp, O_CLOEXEC) != 0) {
        log_error("worker %s: cannot start a task: %s", r->id, strerror(errno));
        if (in >= 0)
            close(in);
        return -1;
    }
    size_t off = 0;
    while (off < j->task.len) {
        ssize_t n = write(in, j->task.data + off, j->task.len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    lseek(in, 0, SEEK_SET);
    set_key_env(r, j);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in, 0);
        dup2(errp[1], 2);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        execvp(r->cmd[0], r->cmd);
        fprintf(stderr, "slotd-worker: cannot run %s: %s\n", r->cmd[0], strerror(errno));
        _exit(127);
    }
    close(in);
    close(errp[1]);
    if (pid < 0) {
        close(errp[0]);
        log_error("worker %s: fork failed: %s", r->id, strerror(errno));
        return -1;
    }
    j->pid = pid;
    j->err_fd = errp[0];
    j->tail_len = 0;
    j->runs++;
    j->state = JOB_RUNNING;
    r->running++;
    return 0;
}

/* Keeps the last STDERR_TAIL bytes a child wrote to its stderr. */
static void drain_stderr(struct job *j)
{
    char buf[4096];
    ssize_t n;
    while ((n = read(j->err_fd, buf, sizeof buf)) > 0) {
        size_t m = (size_t)n;
        if (m >= STDERR_TAIL) {
            memcpy(j->tail, buf + m - STDERR_TAIL, STDERR_TAIL);
            j->tail_len = STDERR_TAIL;
        } else {
            if (j->tail_len + m > STDERR_TAIL) {
                size_t drop = j->tail_len + m - STDERR_TAIL;
                memmove(j->tail, j->tail + drop, j->tail_len - drop);
                j->tail_len -= drop;
            }
            memcpy(j->tail + j->tail_len, buf, m);
            j->tail_len += m;
        }
        fwrite(buf, 1, m, stderr);  /* the command's stderr still reaches ours */
    }
}

static void reap(struct runner *r)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < r->njobs; i++) {
            struct job *j = &r->jobs[i];
            if (j->state != JOB_RUNNING || j->pid != pid)
                continue;
            fcntl(j->err_fd, F_SETFL, O_NONBLOCK);
            drain_stderr(j);
            close(j->err_fd);
            j->err_fd = -1;
            j->status = status;
            r->running--;
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                j->state = JOB_DONE;
            } else if ((int)j->runs < r->conf.worker.max_attempts) {
                uint32_t delay = backoff_next(&j->backoff, (uint32_t)rand());
                j->state = JOB_WAITING;
                j->retry_at = clock_mono_ms() + delay;
                log_info("worker %s: task of slot %u failed (%s %d), retry %u of %d in %u ms",
                         r->id, j->slot, WIFEXITED(status) ? "exit" : "signal",
                         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), j->runs,
                         r->conf.worker.max_attempts - 1, delay);
            } else {
                j->state = JOB_FAILED;
            }
            break;
        }
    }
}

/* Acks finished jobs and dead-letters failed ones, then drops them. What
 * Redis would not take (a refusal, a lost connection) stays, to be settled
 * again on the next turn: acknowledged or dead-lettered once, never lost. */
static int settle(struct runner *r)
{
    struct slotd_task done[256];
    int which[256];
    int ndone = 0, rc = 0;
    for (int i = 0; i < r->njobs; i++) {
        struct job *j = &r->jobs[i];
        if (j->state == JOB_DONE && ndone < 256) {
            which[ndone] = i;
            done[ndone++] = j->task;
        } else if (j->state == JOB_FAILED) {
            char detail[STDERR_TAIL + 128];
            int st = j->status;
            snprintf(detail, sizeof detail, "%s %d after %u attempts; stderr: %.*s",
                     WIFEXITED(st) ? "exit status" : "killed by signal",
                     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), j->runs,
                     (int)j->tail_len, j->tail);
            if (slotd_worker_dead_letter(r->w, &j->task, "failed", detail) != 0) {
                log_error("worker %s: cannot dead-letter a task of slot %u yet: %s", r->id,
                          j->slot, slotd_worker_error(r->w));
                rc = -1;
                continue;
            }
            log_warn("worker %s: task of slot %u dead-lettered: %s", r->id, j->slot, detail);
            j->state = JOB_SETTLED;
            j->task.data = NULL;
            j->task.len = 0;
        }
    }
    if (ndone > 0) {
        if (slotd_worker_ack(r->w, done, ndone) == 0) {
            for (int i = 0; i < ndone; i++) {
                r->jobs[which[i]].state = JOB_SETTLED;
                r->jobs[which[i]].task.data = NULL;
            }
        } else {
            log_error("worker %s: ack failed, kept to try again: %s", r->id,
                      slotd_worker_error(r->w));
            rc = -1;
        }
    }
    /* Compact: keep the order of what is left. */
    int k = 0;
    for (int i = 0; i < r->njobs; i++) {
        struct job *j = &r->jobs[i];
        if (j->state == JOB_SETTLED)
            continue;
        r->jobs[k++] = *j;
    }
    r->njobs = k;
    return rc;
}

/* Starts what may start: retries that are due, then pending jobs in order,
 * skipping every job whose slot is busy (so a slot's tasks keep order). */
static void schedule(struct runner *r)
{
    uint64_t now = clock_mono_ms();
    for (int i = 0; i < r->njobs && r->running < r->jobs_max; i++) {
        struct job *j = &r->jobs[i];
        if (j->state == JOB_WAITING && j->retry_at <= now)
            start_job(r, j);
    }
    for (int i = 0; i < r->njobs && r->running < r->jobs_max; i++) {
        struct job *j = &r->jobs[i];
        if (j->state == JOB_PENDING && !slot_busy(r, j->slot))
            start_job(r, j);
    }
}

static int take(struct runner *r, int timeout_ms)
{
    struct slotd_task got[256];
    int room = r->conf.worker.prefetch - r->njobs;
    if (room <= 0)
        return 0;
    if (room > 256)
        room = 256;
    int n = slotd_worker_take(r->w, got, room, timeout_ms);
    if (n < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        struct job *j = &r->jobs[r->njobs++];
        size_t at;
        memset(j, 0, sizeof *j);
        j->task = got[i];
        j->err_fd = -1;
        j->state = JOB_PENDING;
        backoff_init(&j->backoff, (uint32_t)r->conf.worker.retry_min_ms,
                     (uint32_t)r->conf.worker.retry_max_ms);
        if (route_task(&r->rules, j->task.data, j->task.len, r->scratch, &j->slot, &at) != TASKKEY_OK)
            j->slot = keyslot(j->task.data, j->task.len);
    }
    return n;
}

/* Waits for children's stderr or a short while. */
static void idle_wait(struct runner *r, int ms)
{
    struct pollfd fds[256];
    int n = 0;
    for (int i = 0; i < r->njobs && n < 256; i++)
        if (r->jobs[i].state == JOB_RUNNING && r->jobs[i].err_fd >= 0) {
            fds[n].fd = r->jobs[i].err_fd;
            fds[n].events = POLLIN;
            n++;
        }
    poll(fds, (nfds_t)n, ms);
    for (int i = 0; i < r->njobs; i++)
        if (r->jobs[i].state == JOB_RUNNING && r->jobs[i].err_fd >= 0) {
            fcntl(r->jobs[i].err_fd, F_SETFL, O_NONBLOCK);
            drain_stderr(&r->jobs[i]);
        }
}

static int run(struct runner *r)
{
    struct backoff down;
    memset(&down, 0, sizeof down);
    backoff_init(&down, (uint32_t)r->conf.redis.reconnect_min_ms,
                 (uint32_t)r->conf.redis.reconnect_max_ms);
    for (;;) {
        reap(r);
        watch_heartbeat(r);
        watch_server(r);
        if (settle(r) != 0) {
            if (stop_requested && r->running == 0) {
                log_warn("worker %s: stopping with tasks not settled: leaving puts them back,"
                         " and they run again", r->id);
                break;
            }
            usleep(backoff_next(&down, (uint32_t)rand()) * 1000u);
            continue;
        }
        backoff_reset(&down);
        if (stop_requested && r->running == 0) {
            /* Running work is finished; waiting retries are given back. */
            int waiting = 0;
            for (int i = 0; i < r->njobs; i++)
                waiting += r->jobs[i].state == JOB_WAITING;
            if (waiting)
                log_info("worker %s: giving back %d tasks awaiting a retry", r->id, waiting);
            break;
        }
        if (!stop_requested)
            schedule(r);
        int busy = r->running > 0;
        int waiting = 0;
        for (int i = 0; i < r->njobs; i++)
            waiting += r->jobs[i].state == JOB_WAITING;
        if (!stop_requested && r->njobs < r->conf.worker.prefetch) {
            /* Block in Redis only when there is nothing else to watch. */
            int n = take(r, busy || waiting ? 0 : 1000);
            if (n < 0) {
                trouble_hit(r, &r->redis, "", slotd_worker_error(r->w));
                usleep(backoff_next(&down, (uint32_t)rand()) * 1000u);
                continue;
            }
            trouble_over(r, &r->redis, "working again");
            backoff_reset(&down);
            if (n > 0)
                continue;
        }
        if (busy || waiting)
            idle_wait(r, 20);
        else if (stop_requested || r->njobs >= r->conf.worker.prefetch)
            idle_wait(r, 20);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "id", required_argument, NULL, 'i' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct runner r;
    const char *path = NULL;
    char err[1024];
    int opt, rc = 1;

    memset(&r, 0, sizeof r);
    r.jobs_max = 1;
    while ((opt = getopt_long(argc, argv, "+c:j:i:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 'i': r.id = optarg; break;
        case 'j': r.jobs_max = atoi(optarg); break;
        case 'V': printf("slotd-worker %s\n", SLOTD_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 64;
        }
    }
    if (path == NULL || r.id == NULL || optind >= argc || r.jobs_max < 1 || r.jobs_max > 256) {
        usage(stderr);
        return 64;
    }
    r.cmd = argv + optind;
    if (conf_load(&r.conf, path, err, sizeof err) != 0) {
        fprintf(stderr, "slotd-worker: %s\n", err);
        return EXIT_CONFIG;
    }
    log_init("slotd-worker", (enum log_level)r.conf.log.level);
    setenv("SLOTD_WORKER_ID", r.id, 1);
    if (r.conf.redis.sentinels[0] != '\0')
        snprintf(r.addr, sizeof r.addr, "master '%s' via sentinels", r.conf.redis.sentinel_master);
    else if (r.conf.redis.cluster_seeds[0] != '\0')
        snprintf(r.addr, sizeof r.addr, "the master of {%s} via cluster seeds", r.conf.ns);
    else if (r.conf.redis.unix_path[0] != '\0')
        snprintf(r.addr, sizeof r.addr, "unix:%s", r.conf.redis.unix_path);
    else
        snprintf(r.addr, sizeof r.addr, "%s:%d", r.conf.redis.host, r.conf.redis.port);
    r.redis.unit = "failed attempt";
    snprintf(r.redis.then, sizeof r.redis.then, "retrying with backoff");
    r.hb.unit = "failed heartbeat";
    snprintf(r.hb.then, sizeof r.hb.then, "retrying every %d ms; slotd declares this worker dead "
             "once its heartbeat is %d ms old", r.conf.workers.heartbeat_ttl_ms / 3,
             r.conf.workers.heartbeat_ttl_ms);
    r.rules.key_field = r.conf.routing.key_field;
    r.rules.key_field_len = strlen(r.conf.routing.key_field);
    r.rules.on_missing_key = r.conf.routing.on_missing_key;
    r.rules.max_task_bytes = (size_t)r.conf.dispatch.max_task_bytes;
    r.jobs = calloc((size_t)r.conf.worker.prefetch, sizeof *r.jobs);
    r.scratch = malloc((size_t)r.conf.dispatch.max_task_bytes + 1);
    if (r.jobs == NULL || r.scratch == NULL)
        goto out;

    struct slotd_worker_options o = {
        DIAL_OPTIONS_OF(r.conf.redis),
        .ns = r.conf.ns, .id = r.id, .heartbeat_ttl_ms = r.conf.workers.heartbeat_ttl_ms,
        .weight = r.conf.worker.weight, .prefetch = r.conf.worker.prefetch,
    };
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)getpid());

    /* Redis may be down at start: keep trying with backoff. */
    struct backoff b;
    memset(&b, 0, sizeof b);
    backoff_init(&b, (uint32_t)r.conf.redis.reconnect_min_ms, (uint32_t)r.conf.redis.reconnect_max_ms);
    while (!stop_requested && (r.w = slotd_worker_open(&o, err, sizeof err)) == NULL) {
        if (strstr(err, "invalid worker id")) {
            fprintf(stderr, "slotd-worker: %s\n", err);
            rc = 64;
            goto out;
        }
        trouble_hit(&r, &r.redis, "", err);
        usleep(backoff_next(&b, (uint32_t)rand()) * 1000u);
    }
    if (r.w == NULL)
        goto out;
    trouble_over(&r, &r.redis, "connected");
    while (!stop_requested && slotd_worker_register(r.w) != 0) {
        trouble_hit(&r, &r.redis, "cannot register: ", slotd_worker_error(r.w));
        usleep(backoff_next(&b, (uint32_t)rand()) * 1000u);
    }
    trouble_over(&r, &r.redis, "working again");
    if (slotd_worker_start_heartbeat(r.w) != 0)
        goto out;
    snprintf(r.server, sizeof r.server, "%s", slotd_worker_server(r.w));
    log_info("worker %s registered (prefetch %d, -j %d, weight %d; redis %s)", r.id,
             r.conf.worker.prefetch, r.jobs_max, r.conf.worker.weight, r.server);
    run(&r);
    for (int i = 0; i < r.njobs; i++)
        free(r.jobs[i].task.data);
    if (slotd_worker_leave(r.w) != 0)
        log_error("worker %s: leave failed: %s", r.id, slotd_worker_error(r.w));
    else
        log_info("worker %s left", r.id);
    rc = 0;
out:
    slotd_worker_close(r.w);
    free(r.jobs);
    free(r.scratch);
    conf_free(&r.conf);
    return rc;
}
