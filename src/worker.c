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
 *
 * A namespace in shards (shards: N > 1) is N namespaces, each with its own
 * slotd: the worker registers with the same id in each, through a libslotd
 * handle (a link) per shard, takes from all of them into the one pending
 * list, and settles each task through the link that took it. Each slot
 * belongs to one shard, so the per-slot order above is per-key order in
 * every shard. A shard whose Redis fails backs off on its own; the others
 * go on.
 *
 *   link 0 (shard 0) --take--+
 *   link 1 (shard 1) --take--+--> pending --> running --ack/dead letter--> link i
 *   ...  round robin         |
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
#include "slotmap.h"

#define STDERR_TAIL 1024
#define EXIT_CONFIG 78

/* DONE: ran, to acknowledge; FAILED: to dead-letter; SETTLED: either done, to drop. */
enum job_state { JOB_PENDING, JOB_RUNNING, JOB_WAITING, JOB_DONE, JOB_FAILED, JOB_SETTLED };

struct job {
    struct slotd_task task;         /* data owned until acked or dead-lettered */
    int               link;         /* index in runner.links of the handle that took it */
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
    const char    *addr;            /* (ref) the link's: Redis (and shard) for the lines */
    const char    *unit;            /* (ref) one occurrence: "failed attempt" */
    char           then[160];       /* what the worker does meanwhile */
    char           said[64];        /* the failure last said in this episode */
    int            changed;         /* a second kind of failure was said in this episode */
};

/* One shard's handle (the namespace's own when not sharded) and what the
 * worker knows of it. */
struct link {
    struct slotd_worker *w;         /* owned; NULL until opened */
    int                  shard;     /* 0 when not sharded */
    int                  registered;    /* slotd_worker_register done */
    int                  beating;   /* its heartbeat thread runs */
    char                 addr[340]; /* Redis, and the shard if sharded, for the lines */
    char                 server[800];   /* where its connection went, as last said */
    struct trouble       redis;     /* its own connection */
    struct trouble       hb;        /* its heartbeat thread's */
    unsigned long        hb_seen;   /* heartbeat failures in a row already counted */
    struct backoff       down;      /* between failed calls to this shard */
    uint64_t             retry_at;  /* monotonic ms: no call to this shard before */
    uint64_t             quiet_until;   /* monotonic ms: its queue was found empty; with
                                       several shards, not looked at again before */
};

struct runner {
    struct conf          conf;
    struct link         *links;     /* owned: one per shard (one when not sharded) */
    int                  nlinks;
    int                  next_take; /* the link the next round of takes starts at */
    int                  next_wait; /* the link the next blocking take waits on */
    char               **cmd;       /* (ref) argv after "--" */
    int                  jobs_max;  /* -j */
    struct job          *jobs;      /* owned: held tasks, oldest first */
    int                  njobs;
    int                  running;
    struct route_rules   rules;
    char                *scratch;   /* owned: key decoding */
    const char          *id;
    char                 addr[300]; /* Redis, for the lines: host:port, or the master's name */
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
        log_msg(level, "worker %s (redis %s): %s%.*s; %s%s%s", r->id, t->addr, doing,
                (int)refusal_len(err), err, advice, advice[0] ? "; " : "", t->then);
        snprintf(t->said, sizeof t->said, "%s", kind);
    } else if (say == EPISODE_AGAIN) {
        log_msg(level, "worker %s (redis %s): still %s%.*s (for %" PRIu64 " s, %" PRIu64 " %ss); %s",
                r->id, t->addr, doing, (int)refusal_len(err), err,
                (now - t->ep.started_ms) / 1000, t->ep.total, t->unit, t->then);
    } else {
        log_debug("worker %s (redis %s): still %s%s", r->id, t->addr, doing, err);
    }
}

/* t is over (nothing said if it was not going on): how says what works. */
static void trouble_over(struct runner *r, struct trouble *t, const char *how)
{
    uint64_t lasted_ms, total;
    if (episode_end(&t->ep, clock_mono_ms(), &lasted_ms, &total))
        log_info("worker %s (redis %s): %s after %.1f s, %" PRIu64 " %s%s", r->id, t->addr, how,
                 (double)lasted_ms / 1000.0, total, t->unit, total == 1 ? "" : "s");
    t->said[0] = '\0';
    t->changed = 0;
}

/* Says what the heartbeat thread met since the last look: libslotd counts
 * its failures in a row, and prints nothing itself. */
static void watch_heartbeat(struct runner *r, struct link *l)
{
    char err[256];
    if (!l->beating)
        return;
    unsigned long n = slotd_worker_heartbeat_failures(l->w, err, sizeof err);
    if (n == 0 || n < l->hb_seen) {
        /* One succeeded since the last look. */
        trouble_over(r, &l->hb, "heartbeat works again");
        l->hb_seen = 0;
    }
    for (; l->hb_seen < n; l->hb_seen++)
        trouble_hit(r, &l->hb, "heartbeat failed: ", err);
}

/* Says where the worker's connection went when that changed: with
 * Sentinel, a failover followed. */
static void watch_server(struct runner *r, struct link *l)
{
    if (l->w == NULL)
        return;
    const char *now = slotd_worker_server(l->w);
    if (now[0] == '\0' || strcmp(now, l->server) == 0)
        return;
    if (l->server[0] != '\0')
        log_info("worker %s: on Redis %s now (was %s)%s", r->id, now, l->server,
                 r->nlinks > 1 ? l->addr + strlen(r->addr) : "");
    snprintf(l->server, sizeof l->server, "%s", now);
}

/* A call to l failed: said (as the episode says it), and no other call to
 * that shard before its backoff. */
static void link_down(struct runner *r, struct link *l, const char *doing, const char *err)
{
    trouble_hit(r, &l->redis, doing, err);
    l->retry_at = clock_mono_ms() + backoff_next(&l->down, (uint32_t)rand());
}

/* A call to l went through. */
static void link_up(struct runner *r, struct link *l, const char *how)
{
    trouble_over(r, &l->redis, how);
    backoff_reset(&l->down);
    l->retry_at = 0;
}

/* Due for a call: not backing off. */
static int link_due(const struct link *l, uint64_t now)
{
    return l->retry_at <= now;
}

/* Worth taking from: registered, heartbeating, not backing off. */
static int link_usable(const struct link *l, uint64_t now)
{
    return l->beating && link_due(l, now);
}

/*
 * Brings l as far as it can go this turn: opened, registered (the tasks a
 * previous run of this id left in that shard's in-flight list go back to the
 * front of its queue), heartbeating. Redis may be down at start, or one
 * shard's only: each link keeps trying with its own backoff, and the other
 * shards work meanwhile.
 */
static void link_ready(struct runner *r, struct link *l, const struct slotd_worker_options *base)
{
    char err[1024];
    if (l->beating || !link_due(l, clock_mono_ms()))
        return;
    if (l->w == NULL) {
        struct slotd_worker_options o = *base;
        o.shard = l->shard;
        o.shards = r->nlinks;
        l->w = slotd_worker_open(&o, err, sizeof err);
        if (l->w == NULL) {
            link_down(r, l, "", err);
            return;
        }
        trouble_over(r, &l->redis, "connected");
    }
    if (!l->registered) {
        if (slotd_worker_register(l->w) != 0) {
            link_down(r, l, "cannot register: ", slotd_worker_error(l->w));
            return;
        }
        l->registered = 1;
    }
    if (slotd_worker_start_heartbeat(l->w) != 0) {
        link_down(r, l, "", slotd_worker_error(l->w));
        return;
    }
    l->beating = 1;
    link_up(r, l, "working again");
    snprintf(l->server, sizeof l->server, "%s", slotd_worker_server(l->w));
    if (r->nlinks > 1)
        log_info("worker %s registered in shard %d of %d (prefetch %d, -j %d, weight %d; "
                 "redis %s)", r->id, l->shard, r->nlinks, r->conf.worker.prefetch, r->jobs_max,
                 r->conf.worker.weight, l->server);
    else
        log_info("worker %s registered (prefetch %d, -j %d, weight %d; redis %s)", r->id,
                 r->conf.worker.prefetch, r->jobs_max, r->conf.worker.weight, l->server);
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

/* Acks the finished jobs of link li and dead-letters its failed ones (each
 * task through the handle that took it). What Redis would not take (a
 * refusal, a lost connection) stays, to be settled again after the link's
 * backoff: acknowledged or dead-lettered once, never lost. 0, or -1. */
static int settle_link(struct runner *r, int li)
{
    struct link *l = &r->links[li];
    struct slotd_task done[256];
    int which[256];
    int ndone = 0, rc = 0;
    for (int i = 0; i < r->njobs; i++) {
        struct job *j = &r->jobs[i];
        if (j->link != li)
            continue;
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
            if (slotd_worker_dead_letter(l->w, &j->task, "failed", detail) != 0) {
                log_error("worker %s: cannot dead-letter a task of slot %u yet: %s", r->id,
                          j->slot, slotd_worker_error(l->w));
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
        if (slotd_worker_ack(l->w, done, ndone) == 0) {
            for (int i = 0; i < ndone; i++) {
                r->jobs[which[i]].state = JOB_SETTLED;
                r->jobs[which[i]].task.data = NULL;
            }
        } else {
            log_error("worker %s: ack failed, kept to try again: %s", r->id,
                      slotd_worker_error(l->w));
            rc = -1;
        }
    }
    if (rc != 0)
        l->retry_at = clock_mono_ms() + backoff_next(&l->down, (uint32_t)rand());
    else if (ndone > 0)
        backoff_reset(&l->down);
    return rc;
}

/* Settles every link's jobs (all of them when `all`, else those not
 * backing off), then drops the settled ones. How many links failed. */
static int settle(struct runner *r, int all)
{
    uint64_t now = clock_mono_ms();
    int failed = 0;
    for (int li = 0; li < r->nlinks; li++)
        if (r->links[li].w != NULL && (all || link_due(&r->links[li], now)))
            failed += settle_link(r, li) != 0;
    /* Compact: keep the order of what is left. */
    int k = 0;
    for (int i = 0; i < r->njobs; i++) {
        struct job *j = &r->jobs[i];
        if (j->state == JOB_SETTLED)
            continue;
        r->jobs[k++] = *j;
    }
    r->njobs = k;
    return failed;
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

/* Takes up to max tasks from link li into the pending jobs (waiting up to
 * timeout_ms for the first): how many, or -1 (said, and the link backs
 * off). */
static int take_from(struct runner *r, int li, int max, int timeout_ms)
{
    struct link *l = &r->links[li];
    struct slotd_task got[256];
    int room = r->conf.worker.prefetch - r->njobs;
    if (room > max)
        room = max;
    if (room <= 0)
        return 0;
    if (room > 256)
        room = 256;
    int n = slotd_worker_take(l->w, got, room, timeout_ms);
    if (n < 0) {
        link_down(r, l, "", slotd_worker_error(l->w));
        return -1;
    }
    link_up(r, l, "working again");
    for (int i = 0; i < n; i++) {
        struct job *j = &r->jobs[r->njobs++];
        size_t at;
        memset(j, 0, sizeof *j);
        j->task = got[i];
        j->link = li;
        j->err_fd = -1;
        j->state = JOB_PENDING;
        backoff_init(&j->backoff, (uint32_t)r->conf.worker.retry_min_ms,
                     (uint32_t)r->conf.worker.retry_max_ms);
        if (route_task(&r->rules, j->task.data, j->task.len, r->scratch, &j->slot, &at) != TASKKEY_OK)
            j->slot = keyslot(j->task.data, j->task.len);
    }
    return n;
}

/*
 * With several shards, how long a blocking take waits on one of them, and
 * how long a shard whose queue was found empty is left alone. While the
 * worker waits on one shard (idle) or runs tasks (busy), a task that
 * arrives in another shard's empty queue waits too: at most this long. A
 * worker thus costs each shard's Redis at most 1000 / wait looks a second,
 * idle or busy: 25 ms per shard, 100 ms to 1000 ms, keeps that at most
 * about 40 commands a second in all (10 per shard with 2 shards, 1 per
 * shard from 40), and the added latency at most a second. (One shard: the
 * take waits up to a second, as it always did, and a busy worker looks at
 * every turn.) A shard whose queue had tasks is looked at again at once.
 */
static int shard_wait_ms(int nlinks)
{
    int ms = 25 * nlinks;
    return ms < 100 ? 100 : ms > 1000 ? 1000 : ms;
}

/*
 * Takes from the shards, fairly: each round starts at the next link, and
 * each link may take its share of the room left (the room over the links
 * still to ask, rounded up), so busy shards split the prefetch and an idle
 * one leaves its share to the others next round. When nothing came and
 * may_block, it waits for a task on one link, the next in turn (one shard:
 * up to a second, as it always did; several: shard_wait_ms). *blocked says
 * whether it waited (or tried to). How many tasks it took.
 */
static int take(struct runner *r, int may_block, int *blocked)
{
    uint64_t now = clock_mono_ms();
    int usable = 0, total = 0;
    *blocked = 0;
    for (int i = 0; i < r->nlinks; i++)
        usable += link_usable(&r->links[i], now);
    if (r->nlinks == 1) {
        if (!usable)
            return 0;
        *blocked = may_block;
        int n = take_from(r, 0, r->conf.worker.prefetch, may_block ? 1000 : 0);
        return n > 0 ? n : 0;
    }
    int quiet_ms = shard_wait_ms(r->nlinks);
    for (int k = 0; k < r->nlinks && usable > 0; k++) {
        int li = (r->next_take + k) % r->nlinks;
        struct link *l = &r->links[li];
        if (!link_usable(l, now))
            continue;
        int room = r->conf.worker.prefetch - r->njobs;
        if (room <= 0)
            break;
        if (l->quiet_until > now) {
            usable--;
            continue;
        }
        int n = take_from(r, li, (room + usable - 1) / usable, 0);
        usable--;
        l->quiet_until = n == 0 ? now + (uint64_t)quiet_ms : 0;
        if (n > 0)
            total += n;
    }
    r->next_take = (r->next_take + 1) % r->nlinks;
    if (total > 0 || !may_block)
        return total;
    now = clock_mono_ms();
    for (int k = 0; k < r->nlinks; k++) {
        int li = (r->next_wait + k) % r->nlinks;
        if (!link_usable(&r->links[li], now))
            continue;
        r->next_wait = (li + 1) % r->nlinks;
        *blocked = 1;
        int n = take_from(r, li, r->conf.worker.prefetch, quiet_ms);
        r->links[li].quiet_until = n == 0 ? clock_mono_ms() + (uint64_t)quiet_ms : 0;
        return n > 0 ? n : 0;
    }
    return 0;
}

/* Milliseconds until the first link backing off may be called again
 * (capped at cap; cap when none is). */
static int until_retry(const struct runner *r, int cap)
{
    uint64_t now = clock_mono_ms();
    int ms = cap;
    for (int i = 0; i < r->nlinks; i++) {
        const struct link *l = &r->links[i];
        if (l->retry_at > now && l->retry_at - now < (uint64_t)ms)
            ms = (int)(l->retry_at - now);
        else if (l->retry_at <= now && !l->beating)
            ms = 0;
    }
    return ms < 1 ? 1 : ms;
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

static int count_state(const struct runner *r, enum job_state st)
{
    int n = 0;
    for (int i = 0; i < r->njobs; i++)
        n += r->jobs[i].state == st;
    return n;
}

static void run(struct runner *r, const struct slotd_worker_options *base)
{
    for (;;) {
        reap(r);
        for (int i = 0; i < r->nlinks; i++) {
            watch_heartbeat(r, &r->links[i]);
            watch_server(r, &r->links[i]);
            if (!stop_requested)
                link_ready(r, &r->links[i], base);
        }
        if (stop_requested && r->running == 0) {
            /* Running work is finished: settle it (every link, backing off
             * or not, once more); waiting retries are given back. */
            if (settle(r, 1) != 0)
                log_warn("worker %s: stopping with tasks not settled: leaving puts them back,"
                         " and they run again", r->id);
            int waiting = count_state(r, JOB_WAITING);
            if (waiting)
                log_info("worker %s: giving back %d tasks awaiting a retry", r->id, waiting);
            return;
        }
        settle(r, 0);
        if (!stop_requested)
            schedule(r);
        int busy = r->running > 0;
        int waiting = count_state(r, JOB_WAITING);
        int blocked = 0;
        if (!stop_requested && r->njobs < r->conf.worker.prefetch) {
            /* Block in Redis only when there is nothing else to watch. */
            if (take(r, !busy && !waiting, &blocked) > 0)
                continue;
        }
        if (busy || waiting || stop_requested || r->njobs >= r->conf.worker.prefetch)
            idle_wait(r, 20);
        else if (!blocked)
            idle_wait(r, until_retry(r, 100));     /* every link backs off, or is not up yet */
    }
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
    if (!slotmap_valid_id(r.id, strlen(r.id))) {
        fprintf(stderr, "slotd-worker: invalid worker id '%s': 1-64 of [A-Za-z0-9._-]\n", r.id);
        return 64;
    }
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
    r.nlinks = r.conf.shards > 1 ? r.conf.shards : 1;
    r.links = calloc((size_t)r.nlinks, sizeof *r.links);
    if (r.links == NULL)
        goto out;
    for (int i = 0; i < r.nlinks; i++) {
        struct link *l = &r.links[i];
        l->shard = i;
        if (r.nlinks > 1)
            snprintf(l->addr, sizeof l->addr, "%s, shard %d", r.addr, i);
        else
            snprintf(l->addr, sizeof l->addr, "%s", r.addr);
        l->redis.addr = l->hb.addr = l->addr;
        l->redis.unit = "failed attempt";
        snprintf(l->redis.then, sizeof l->redis.then, "retrying with backoff");
        l->hb.unit = "failed heartbeat";
        snprintf(l->hb.then, sizeof l->hb.then, "retrying every %d ms; slotd declares this worker "
                 "dead once its heartbeat is %d ms old", r.conf.workers.heartbeat_ttl_ms / 3,
                 r.conf.workers.heartbeat_ttl_ms);
        backoff_init(&l->down, (uint32_t)r.conf.redis.reconnect_min_ms,
                     (uint32_t)r.conf.redis.reconnect_max_ms);
    }
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

    /* Redis may be down at start, or one shard's: each link keeps trying
     * with its own backoff (link_ready) while the others work. */
    run(&r, &o);
    for (int i = 0; i < r.njobs; i++)
        free(r.jobs[i].task.data);
    for (int i = 0; i < r.nlinks; i++) {
        struct link *l = &r.links[i];
        if (!l->registered)
            continue;
        if (slotd_worker_leave(l->w) != 0)
            log_error("worker %s: leave failed%s: %s", r.id,
                      r.nlinks > 1 ? l->addr + strlen(r.addr) : "", slotd_worker_error(l->w));
        else if (r.nlinks > 1)
            log_info("worker %s left shard %d", r.id, l->shard);
        else
            log_info("worker %s left", r.id);
    }
    rc = 0;
out:
    for (int i = 0; r.links != NULL && i < r.nlinks; i++)
        slotd_worker_close(r.links[i].w);
    free(r.links);
    free(r.jobs);
    free(r.scratch);
    conf_free(&r.conf);
    return rc;
}
