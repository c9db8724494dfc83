/*
 * Integration: the HTTP server under abuse (httpgate and evhttp's limits).
 * Thousands of connections while a drain runs, with slotd out of
 * descriptors for a while; a slowloris; a 20 MB request line and header; a
 * port already taken.
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <unistd.h>

#include "check_main.h"
#include "env.h"
#include "harness.h"

#define LONG_TTL 600000
#define KEYS 1000
#define CAP 64                  /* http.max_connections' default */

static const char *four[] = { "w1", "w2", "w3", "w4" };

/* ---- slotd's side -------------------------------------------------------- */

/* Starts slotd with at most nofile open files (soft and hard), as
 * env_slotd_start does otherwise. */
static void start_slotd_nofile(struct env *e, int nofile)
{
    char bin[512], script[128];
    snprintf(bin, sizeof bin, "%s/slotd", harness_build_dir());
    snprintf(script, sizeof script, "ulimit -n %d && exec \"$0\" -c \"$1\"", nofile);
    char *argv[] = { "sh", "-c", script, bin, e->conf, NULL };
    FILE *f = fopen(e->log, "a");
    if (f) {
        fputs("---- start ----\n", f);
        fclose(f);
    }
    e->slotd = harness_spawn(argv, e->log);
    ck_assert_int_gt(e->slotd, 0);
}

static int open_fds(pid_t pid)
{
    char path[64];
    int n = 0;
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    ck_assert_ptr_nonnull(d);
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        n += de->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Peak resident memory, KiB. */
static long vm_hwm_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kib = atol(line + 6);
    fclose(f);
    return kib;
}

/* Sets slotd's soft limit of open files, as an operator's prlimit would. */
static void set_soft_nofile(pid_t pid, rlim_t soft)
{
    struct rlimit cur, next;
    ck_assert_int_eq(prlimit(pid, RLIMIT_NOFILE, NULL, &cur), 0);
    next.rlim_cur = soft;
    next.rlim_max = cur.rlim_max;
    ck_assert_msg(prlimit(pid, RLIMIT_NOFILE, &next, NULL) == 0, "prlimit: %s", strerror(errno));
}

/* Lines of this run's log holding any of the words (case-insensitive). */
static int log_lines(struct env *e, const char *const *words, size_t n, char *first, size_t cap)
{
    FILE *f = fopen(e->log, "r");
    char line[4096];
    int count = 0;
    ck_assert_ptr_nonnull(f);
    first[0] = '\0';
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "---- start ----", 15) == 0) {
            count = 0;
            first[0] = '\0';
            continue;
        }
        for (size_t i = 0; i < n; i++)
            if (strcasestr(line, words[i])) {
                if (count++ == 0)
                    snprintf(first, cap, "%.*s", (int)(cap - 1), line);
                break;
            }
    }
    fclose(f);
    return count;
}

static int log_count(struct env *e, const char *text)
{
    char first[512];
    return log_lines(e, &text, 1, first, sizeof first);
}

/* ---- the client's side --------------------------------------------------- */


/* GET path with curl (10 s at most): the status code, 0 if none. */
static int get(int port, const char *path, char *out, size_t cap)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "curl -s --max-time 10 -w '\\n%%{http_code}' http://127.0.0.1:%d%s",
             port, path);
    harness_run(cmd, out, cap);
    char *nl = strrchr(out, '\n');
    if (nl == NULL)
        return 0;
    *nl = '\0';
    return atoi(nl + 1);
}

static void raise_own_nofile(void)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    ck_assert_msg(rl.rlim_cur >= 4000, "the test needs 4000 open files; the hard limit is %llu",
                  (unsigned long long)rl.rlim_max);
}

/* n non-blocking connections to port, in fds. */
static void connect_many(int port, int *fds, int n)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ck_assert_int_ge(fds[i], 0);
        int rc = connect(fds[i], (struct sockaddr *)&a, sizeof a);
        ck_assert_msg(rc == 0 || errno == EINPROGRESS, "connect: %s", strerror(errno));
    }
}

/*
 * How many of fds the server has closed (end of file or reset). Each one
 * still open is sent a "G" once connected (poked[i] notes it): a
 * connection whose handshake the client finished but the server's kernel
 * dropped (its accept queue full, with SYN cookies) looks open to an idle
 * client forever, and data makes that kernel reset it. An admitted
 * connection just waits for the rest of its request line.
 */
static int closed_by_server(const int *fds, unsigned char *poked, int n)
{
    int closed = 0;
    char b;
    for (int i = 0; i < n; i++) {
        ssize_t r = recv(fds[i], &b, 1, MSG_DONTWAIT | MSG_PEEK);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            closed++;
        else if (!poked[i] && send(fds[i], "G", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1)
            poked[i] = 1;
    }
    return closed;
}

static void close_all(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

/* ---- tasks --------------------------------------------------------------- */

/* Pushes tasks [from, to): {"key":"k<i % KEYS>","seq":i}, 1000 per LPUSH. */
static void push_tasks(struct env *e, int from, int to)
{
    enum { CHUNK = 1000 };
    static char bufs[CHUNK][64];
    const char *argv[CHUNK + 2];
    size_t lens[CHUNK + 2];
    char intake[64];
    int pending = 0;
    env_key(intake, sizeof intake, "intake");
    argv[0] = "LPUSH";
    lens[0] = 5;
    argv[1] = intake;
    lens[1] = strlen(intake);
    for (int i = from; i < to; i += CHUNK) {
        int n = 0;
        for (int j = i; j < to && n < CHUNK; j++, n++) {
            lens[n + 2] = (size_t)snprintf(bufs[n], sizeof bufs[n], "{\"key\":\"k%d\",\"seq\":%d}",
                                           j % KEYS, j);
            argv[n + 2] = bufs[n];
        }
        ck_assert_int_eq(redisAppendCommandArgv(e->c, n + 2, argv, lens), REDIS_OK);
        pending++;
    }
    for (; pending > 0; pending--) {
        redisReply *r;
        ck_assert_int_eq(redisGetReply(e->c, (void **)&r), REDIS_OK);
        ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
        freeReplyObject(r);
    }
}

/* A producer process pushing tasks [from, to) in chunks, pausing between
 * them, so that routing goes on for a while. */
static pid_t start_producer(struct env *e, int from, int to)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid > 0)
        return pid;
    redisFree(e->c);            /* the parent's; the child gets its own */
    e->c = harness_redis_connect(&e->redis);
    if (e->c == NULL)
        _exit(2);
    for (int i = from; i < to; i += 1000) {
        push_tasks(e, i, i + 1000 < to ? i + 1000 : to);
        usleep(25000);
    }
    _exit(0);
}

/* User plus system CPU time a process has used, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long ut = 0, st = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                            &ut, &st), 2);
    return (long)(ut + st);
}

/* Every task [0, n) in exactly one worker queue, none left or dead. */
static void check_exactly_once(struct env *e, int n)
{
    unsigned char *seen = calloc((size_t)n, 1);
    long total = 0;
    ck_assert_ptr_nonnull(seen);
    ck_assert_int_eq(env_llen(e, "intake"), 0);
    ck_assert_int_eq(env_llen(e, "dead"), 0);
    for (int w = 0; w < 4; w++) {
        char name[64], key[128];
        snprintf(name, sizeof name, "queue:%s", four[w]);
        redisReply *q = harness_cmd(e->c, "LRANGE %s 0 -1", env_key(key, sizeof key, name));
        for (size_t j = 0; j < q->elements; j++) {
            int k, seq;
            ck_assert_int_eq(sscanf(q->element[j]->str, "{\"key\":\"k%d\",\"seq\":%d", &k, &seq),
                             2);
            ck_assert_int_lt(seq, n);
            ck_assert_msg(!seen[seq], "task %d routed twice", seq);
            seen[seq] = 1;
            total++;
        }
        freeReplyObject(q);
    }
    for (int i = 0; i < n; i++)
        ck_assert_msg(seen[i], "task %d lost", i);
    ck_assert_int_eq(total, n);
    free(seen);
}

static int http_env(struct env *e, const char *more)
{
    char extra[512];
    int port = harness_free_port();
    ck_assert_int_gt(port, 0);
    snprintf(extra, sizeof extra, "http:\n  listen: 127.0.0.1:%d\n%s", port, more ? more : "");
    env_start(e, NULL, extra);
    return port;
}

/* ---- the tests ----------------------------------------------------------- */

/*
 * 3000 connections at once to a slotd allowed 256 open files, while a
 * producer pushes 200,000 tasks for it to route: the 64 connections it
 * admits stay open, every other one is closed (16 every 20 ms), and slotd
 * never holds more descriptors than the cap allows. Then slotd runs out of
 * descriptors (its limit lowered under it, as if something else had taken
 * them) while 300 more connect and 20,000 more tasks arrive: it pauses
 * accepting, says so once, does not spin, routes on, and says once that it
 * accepts again when the limit is back. Every task is routed exactly once,
 * the log stays small, and /healthz answers once the flood is gone.
 */
START_TEST(flood_is_refused_and_routing_goes_on)
{
    enum { FLOOD = 3000, MORE = 300, TASKS = 200000, TASKS2 = 20000 };
    static int a[FLOOD], b[MORE];
    static unsigned char poked[FLOOD];
    static char body[1 << 16];
    struct env e;
    int status;
    /* Long timeouts: the admitted connections stay open, so that every
     * other one must have been refused. */
    int port = http_env(&e, "  timeout_ms: 120000\n  request_deadline_ms: 120000\n");
    for (int i = 0; i < 4; i++)
        env_worker_beat(&e, four[i], LONG_TTL, 0);
    raise_own_nofile();
    start_slotd_nofile(&e, 256);
    ck_assert_int_eq(env_wait_owners(&e, four, 4, 10000), 0);
    int base_fds = open_fds(e.slotd);

    pid_t producer = start_producer(&e, 0, TASKS);
    uint64_t t0 = harness_now_ms();
    connect_many(port, a, FLOOD);
    int most = 0, closed = 0;
    uint64_t end = harness_now_ms() + 60000;
    while (harness_now_ms() < end) {
        int n = open_fds(e.slotd);
        most = n > most ? n : most;
        closed = closed_by_server(a, poked, FLOOD);
        if (closed == FLOOD - CAP)
            break;
        usleep(10000);
    }
    /* A producer is reaped once: here if it is done already, else below. */
    int reaped = harness_wait_exit(producer, 0, &status) == 0;
    fprintf(stderr, "flood: %d of %d connections closed by slotd within %llu ms, the producer "
            "%s; slotd held %d descriptors at most (%d before)\n", closed, FLOOD,
            (unsigned long long)(harness_now_ms() - t0), reaped ? "done" : "still pushing", most,
            base_fds);
    ck_assert_msg(closed == FLOOD - CAP, "%d of %d connections closed by slotd, not %d", closed,
                  FLOOD, FLOOD - CAP);
    ck_assert_msg(most <= base_fds + CAP + 16, "slotd held %d descriptors", most);
    if (!reaped)
        ck_assert_int_eq(harness_wait_exit(producer, 60000, &status), 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "producer status 0x%x", status);
    ck_assert_msg(env_wait_llen(&e, "intake", 0, 60000) == 0, "the intake did not drain");

    /* Out of descriptors: accept() fails with EMFILE. */
    set_soft_nofile(e.slotd, 8);
    connect_many(port, b, MORE);
    /* What slotd says is checked at the end, after how much it said. */
    int said_start = env_wait_log(&e, "cannot accept connections", 5000) == 0;
    producer = start_producer(&e, TASKS, TASKS + TASKS2);
    ck_assert_int_eq(harness_wait_exit(producer, 60000, &status), 0);
    ck_assert_msg(env_wait_llen(&e, "intake", 0, 60000) == 0,
                  "routing stopped while out of descriptors");
    /* Connections wait to be accepted, and slotd waits too: a second of a
     * busy loop would cost about a second of CPU. */
    long cpu0 = cpu_ticks(e.slotd);
    usleep(1000 * 1000);
    long spent = cpu_ticks(e.slotd) - cpu0;
    long spent_ms = spent * 1000 / sysconf(_SC_CLK_TCK);
    fprintf(stderr, "out of descriptors: %ld ms of CPU in a second\n", spent_ms);
    set_soft_nofile(e.slotd, 256);
    /* Over once a connection went through and 10 s passed without a failure. */
    int said_end = env_wait_log(&e, "accepting connections on", 25000) == 0;
    check_exactly_once(&e, TASKS + TASKS2);

    close_all(a, FLOOD);
    close_all(b, MORE);
    ck_assert_int_eq(get(port, "/healthz", body, sizeof body), 200);
    env_wait_log(&e, "admits connections again", 25000);

    char first[512];
    const char *words[] = { "accept", "descriptor", "open files", "libevent" };
    int said = log_lines(&e, words, 4, first, sizeof first);
    fprintf(stderr, "flood: %d log lines about accepting\n", said);
    ck_assert_msg(said < 20, "%d log lines about accepting, the first: %s", said, first);
    ck_assert_msg(spent_ms < 300, "slotd spins: %ld ms of CPU in 1 s", spent_ms);
    ck_assert_msg(said_start, "no word of accept() failing");
    ck_assert_msg(said_end, "no word of accept() working again");
    ck_assert_int_eq(log_count(&e, "cannot accept connections"), 1);
    ck_assert_int_eq(log_count(&e, "accepting connections on"), 1);
    ck_assert_int_eq(log_count(&e, "closing new ones at once"), 1);   /* one episode: a, then b */
    ck_assert_int_eq(log_count(&e, "admits connections again"), 1);
    ck_assert_int_eq(kill(e.slotd, 0), 0);
    env_stop(&e);
}
END_TEST

/* A client that sends a header byte every 200 ms, which the per-read
 * timeout never catches, is cut off by the deadline. (Both are 2 s, so
 * that a test machine stalling the client for a second cannot make the
 * timeout cut it first.) */
START_TEST(slowloris_is_cut_off_at_the_deadline)
{
    enum { DEADLINE = 2000, SLACK = 1000 };
    struct env e;
    struct sockaddr_in a;
    int port = http_env(&e, "  timeout_ms: 2000\n  request_deadline_ms: 2000\n");
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_log(&e, "slot table loaded", 5000), 0);

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    uint64_t t0 = harness_now_ms(), cut = 0;
    const char *line = "GET /metrics HTTP/1.1\r\n";
    ck_assert_int_eq(send(fd, line, strlen(line), MSG_NOSIGNAL), (ssize_t)strlen(line));
    const char *header = "X-Slow: abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz";
    for (size_t i = 0; cut == 0 && harness_now_ms() - t0 < DEADLINE + SLACK + 1000; i++) {
        struct pollfd p = { fd, POLLIN, 0 };
        char c;
        if (poll(&p, 1, 200) > 0 && recv(fd, &c, 1, MSG_DONTWAIT) <= 0) {
            cut = harness_now_ms();
            break;
        }
        if (send(fd, header + i % strlen(header), 1, MSG_NOSIGNAL) != 1)
            cut = harness_now_ms();
    }
    close(fd);
    ck_assert_msg(cut != 0, "still open after %d ms", DEADLINE + SLACK + 1000);
    ck_assert_int_eq(env_wait_log(&e, "(http.request_deadline_ms)", 1000), 0);
    fprintf(stderr, "slowloris: cut off after %llu ms\n", (unsigned long long)(cut - t0));
    ck_assert_msg(cut - t0 >= DEADLINE - 200 && cut - t0 <= DEADLINE + SLACK,
                  "cut off after %llu ms, deadline %d ms", (unsigned long long)(cut - t0),
                  DEADLINE);
    env_stop(&e);
}
END_TEST

/*
 * Sends head, then filler bytes up to total, then tail, while reading; stops
 * when slotd answers or closes. The status code, or 0 if it closed without
 * one; *sent gets how many bytes went out.
 */
static int send_huge(int port, const char *head, size_t total, const char *tail, size_t *sent)
{
    static char chunk[1 << 16];
    char resp[512];
    size_t rn = 0;
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), code = -1;
    memset(chunk, 'a', sizeof chunk);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(send(fd, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
    *sent = strlen(head);
    uint64_t end = harness_now_ms() + 20000;
    int tail_sent = 0;
    while (code < 0 && harness_now_ms() < end) {
        struct pollfd p = { fd, POLLIN | (tail_sent ? 0 : POLLOUT), 0 };
        if (poll(&p, 1, 100) <= 0)
            continue;
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(fd, resp + rn, sizeof resp - 1 - rn, MSG_DONTWAIT);
            if (r > 0) {
                rn += (size_t)r;
                resp[rn] = '\0';
                if (strstr(resp, "\r\n") || rn == sizeof resp - 1)
                    code = atoi(strchr(resp, ' ') ? strchr(resp, ' ') + 1 : "0");
            } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                code = rn > 0 && strchr(resp, ' ') ? atoi(strchr(resp, ' ') + 1) : 0;
            }
            continue;
        }
        if (p.revents & POLLOUT) {
            size_t left = total - (*sent - strlen(head));
            ssize_t w = left > 0 ? send(fd, chunk, left < sizeof chunk ? left : sizeof chunk,
                                        MSG_NOSIGNAL | MSG_DONTWAIT)
                                 : send(fd, tail, strlen(tail), MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0 && left > 0)
                *sent += (size_t)w;
            else if (w > 0)
                tail_sent = 1;
            else if (errno != EAGAIN && errno != EWOULDBLOCK)
                code = 0;           /* reset: closed */
        }
    }
    close(fd);
    ck_assert_msg(code >= 0, "no answer and not closed after 20 s (%zu bytes sent)", *sent);
    return code;
}

/* A 20 MB request line and a 20 MB header are refused after a few
 * kilobytes, and slotd's memory does not grow with them. */
START_TEST(huge_request_line_and_header_are_refused)
{
    enum { HUGE = 20 << 20 };
    static char body[1 << 16];
    struct env e;
    size_t sent;
    int port = http_env(&e, NULL);
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_log(&e, "slot table loaded", 5000), 0);
    ck_assert_int_eq(get(port, "/healthz", body, sizeof body), 503);
    long hwm0 = vm_hwm_kib(e.slotd);

    int code = send_huge(port, "GET /", HUGE, " HTTP/1.1\r\n\r\n", &sent);
    fprintf(stderr, "20 MB request line: answer %d after %zu bytes sent\n", code, sent);
    ck_assert_msg(code == 0 || code == 400 || code == 413 || code == 414, "answer %d", code);
    code = send_huge(port, "GET /healthz HTTP/1.1\r\nX-Big: ", HUGE, "\r\n\r\n", &sent);
    fprintf(stderr, "20 MB header: answer %d after %zu bytes sent\n", code, sent);
    ck_assert_msg(code == 0 || code == 400 || code == 413 || code == 431, "answer %d", code);

    long hwm1 = vm_hwm_kib(e.slotd);
    fprintf(stderr, "slotd peak RSS: %ld KiB before, %ld KiB after\n", hwm0, hwm1);
    ck_assert_msg(hwm1 - hwm0 < 8 * 1024, "slotd's peak RSS grew from %ld to %ld KiB", hwm0, hwm1);
    ck_assert_int_eq(get(port, "/healthz", body, sizeof body), 503);     /* alive: no worker */
    env_stop(&e);
}
END_TEST

/* A port already taken: slotd says which address and why, and exits 1. */
START_TEST(port_taken_names_the_address_and_exits_non_zero)
{
    struct env e;
    struct sockaddr_in a;
    char want[64];
    int port = harness_free_port();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), status = 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 1), 0);
    snprintf(want, sizeof want, "http:\n  listen: 127.0.0.1:%d\n", port);
    env_start(&e, NULL, want);
    env_slotd_start(&e);
    ck_assert_int_eq(harness_wait_exit(e.slotd, 10000, &status), 0);
    e.slotd = 0;
    close(fd);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status 0x%x", status);
    snprintf(want, sizeof want, "cannot listen on 127.0.0.1:%d", port);
    ck_assert_msg(env_wait_log(&e, want, 10) == 0, "the log does not say '%s'", want);
    ck_assert_msg(env_wait_log(&e, "already in use", 10) == 0, "the log does not say why");
    ck_assert_msg(env_wait_log(&e, "out of memory", 10) != 0, "the log blames memory");
    env_stop(&e);
}
END_TEST

/* Allowed 48 open files, slotd admits fewer connections than
 * http.max_connections (64), says so at start, and never runs out. */
START_TEST(cap_fits_the_open_files_limit)
{
    enum { N = 500 };
    static int fds[N];
    static unsigned char poked[N];
    struct env e;
    int port = http_env(&e, "  timeout_ms: 60000\n  request_deadline_ms: 60000\n");
    raise_own_nofile();
    start_slotd_nofile(&e, 48);
    ck_assert_int_eq(env_wait_log(&e, "slot table loaded", 5000), 0);
    ck_assert_msg(env_wait_log(&e, "admits 16 connections at once, not http.max_connections 64",
                               10) == 0, "no word of the lowered cap");
    connect_many(port, fds, N);
    ck_assert_int_eq(env_wait_log(&e, "closing new ones at once", 5000), 0);
    uint64_t end = harness_now_ms() + 20000;
    while (closed_by_server(fds, poked, N) < N - 16 && harness_now_ms() < end)
        usleep(20000);
    ck_assert_int_eq(closed_by_server(fds, poked, N), N - 16);
    ck_assert_int_eq(log_count(&e, "cannot accept"), 0);
    close_all(fds, N);
    env_stop(&e);
}
END_TEST

/* Clients that keep refilling the cap for 3 s, each admitted one closed by
 * the deadline within 300 ms: slotd says once that it closes connections,
 * not twice for every place that frees up and fills again. */
START_TEST(a_cap_refilled_again_and_again_is_said_once)
{
    enum { ROUND = 10, ROUNDS = 60 };
    static int fds[ROUND * ROUNDS];
    struct env e;
    int port = http_env(&e, "  max_connections: 4\n  timeout_ms: 200\n  request_deadline_ms: 300\n");
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_log(&e, "slot table loaded", 5000), 0);
    for (int r = 0; r < ROUNDS; r++) {
        connect_many(port, fds + r * ROUND, ROUND);
        usleep(50 * 1000);
    }
    close_all(fds, ROUND * ROUNDS);
    char first[512];
    const char *words[] = { "closing", "admits", "complete in time", "cut off" };
    int said = log_lines(&e, words, 4, first, sizeof first);
    fprintf(stderr, "cap refilled for 3 s: %d lines, the first: %s", said, first);
    ck_assert_int_eq(log_count(&e, "closing new ones at once"), 1);
    ck_assert_int_le(said, 3);      /* that, and the first connection cut off by its deadline */
    env_stop(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("http");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, flood_is_refused_and_routing_goes_on);
    tcase_add_test(tc, slowloris_is_cut_off_at_the_deadline);
    tcase_add_test(tc, huge_request_line_and_header_are_refused);
    tcase_add_test(tc, port_taken_names_the_address_and_exits_non_zero);
    tcase_add_test(tc, cap_fits_the_open_files_limit);
    tcase_add_test(tc, a_cap_refilled_again_and_again_is_said_once);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
