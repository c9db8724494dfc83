/*
 * Integration: Redis refusing slotd and slotd-worker (a wrong password, an
 * ACL user without a command they need) while they retry with backoff. Each
 * refusal is said once when it starts, not once per attempt, with what to
 * do; the NOAUTH replies behind a refused AUTH are never said; and its end
 * is said once, with how many attempts failed.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "env.h"
#include "harness.h"

#define RIGHT "right-pass"
#define WRONG "wrong-pass"
#define USER_PASSWORD "s3cret"

#define LONG_TTL 600000

/* Long enough for dozens of attempts at reconnect_min/max_ms 20/200. */
#define RETRYING_MS 3000

/* slotd's and the workers' config: redis.username if user is not NULL, the
 * password in a file; quick retries. */
static void write_conf(struct env *e, const char *user, const char *password)
{
    char path[600], text[1024];
    snprintf(path, sizeof path, "%s/password", e->redis.dir);
    ck_assert_int_eq(harness_write_file(path, password), 0);
    snprintf(text, sizeof text,
             "redis:\n  host: 127.0.0.1\n  port: %d\n  reconnect_min_ms: 20\n"
             "  reconnect_max_ms: 200\n%s%s%s  password_file: password\n"
             "namespace: " ENV_NS "\nhttp:\n  listen: \"\"\n",
             e->redis.port, user ? "  username: " : "", user ? user : "", user ? "\n" : "");
    ck_assert_int_eq(harness_write_file(e->conf, text), 0);
}

/* User slotd with password USER_PASSWORD and every documented command
 * but `except`. */
static void acl_user_without(struct env *e, const char *except)
{
    char list[] = ENV_ACL_COMMANDS;
    redisReply *r = harness_cmd(e->c, "ACL SETUSER slotd on >" USER_PASSWORD " resetkeys ~{"
                                ENV_NS "}:* resetchannels -@all");
    ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    for (char *tok = strtok(list, " "); tok != NULL; tok = strtok(NULL, " ")) {
        if (strcmp(tok, except) == 0)
            continue;
        r = harness_cmd(e->c, "ACL SETUSER slotd %s", tok);
        ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
        freeReplyObject(r);
    }
}

static void redis_ok(struct env *e, const char *fmt, const char *arg)
{
    redisReply *r = harness_cmd(e->c, fmt, arg);
    ck_assert_msg(r->type == REDIS_REPLY_STATUS, "%s %s: %s", fmt, arg,
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
}

/*
 * How many lines of the file at path hold every one of the texts (up to
 * three; NULL ends them); the last one found into line if not NULL.
 */
static int count_lines(const char *path, const char *a, const char *b, const char *c,
                       char *line, size_t cap)
{
    char buf[4096];
    int n = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    while (fgets(buf, sizeof buf, f))
        if (strstr(buf, a) && (b == NULL || strstr(buf, b)) && (c == NULL || strstr(buf, c))) {
            n++;
            if (line)
                snprintf(line, cap, "%s", buf);
        }
    fclose(f);
    return n;
}

/* Lines logged as warnings or errors. */
static int complaints(const char *path)
{
    return count_lines(path, " warn: ", NULL, NULL, NULL, 0) +
           count_lines(path, " error: ", NULL, NULL, NULL, 0);
}

static int wait_line(const char *path, const char *a, const char *b, int timeout_ms)
{
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    do {
        if (count_lines(path, a, b, NULL, NULL, 0) > 0)
            return 0;
        usleep(5000);
    } while (harness_now_ms() < end);
    return -1;
}

/* Redis's count of refused AUTHs: the ACL log's auth entries (each counts
 * the like refusals that followed it). */
static long long auth_refusals(struct env *e)
{
    redisReply *r = harness_cmd(e->c, "ACL LOG");
    long long n = 0;
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *entry = r->element[i];
        long long count = 0;
        int auth = 0;
        for (size_t j = 0; j + 1 < entry->elements; j += 2) {
            const redisReply *k = entry->element[j], *v = entry->element[j + 1];
            if (strcmp(k->str, "count") == 0 && v->type == REDIS_REPLY_INTEGER)
                count = v->integer;
            if (strcmp(k->str, "reason") == 0 && v->type == REDIS_REPLY_STRING)
                auth = strcmp(v->str, "auth") == 0;
        }
        if (auth)
            n += count;
    }
    freeReplyObject(r);
    return n;
}

/* Waits until Redis has n clients (the test's own included). */
static int wait_clients(struct env *e, long long n, int timeout_ms)
{
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    do {
        redisReply *r = harness_cmd(e->c, "INFO clients");
        const char *at = r->type == REDIS_REPLY_STRING ? strstr(r->str, "connected_clients:") : NULL;
        long long have = at ? atoll(at + strlen("connected_clients:")) : -1;
        freeReplyObject(r);
        if (have == n)
            return 0;
        usleep(5000);
    } while (harness_now_ms() < end);
    return -1;
}

/* The M of the last "connected after N s, M failed attempts" line holding
 * `who` in the file at path. */
static long long failed_attempts(const char *path, const char *who, const char *end_text)
{
    char line[4096];
    double secs = -1;
    long long m = -1;
    ck_assert_int_ge(count_lines(path, who, end_text, NULL, line, sizeof line), 1);
    const char *at = strstr(line, end_text);
    ck_assert_msg(sscanf(at + strlen(end_text), " %lf s, %lld failed attempt", &secs, &m) == 2,
                  "no count in: %s", line);
    ck_assert_msg(secs >= 0, "%s", line);
    return m;
}

/* SIGTERM: a clean exit, with no sanitizer report in its log. */
static void stop_worker(pid_t w, const char *log)
{
    int status;
    kill(w, SIGTERM);
    ck_assert_int_eq(harness_wait_exit(w, 10000, &status), 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
    ck_assert_int_eq(count_lines(log, "Sanitizer", NULL, NULL, NULL, 0), 0);
    ck_assert_int_eq(count_lines(log, "runtime error", NULL, NULL, NULL, 0), 0);
}

START_TEST(slotd_says_a_wrong_password_once_per_connection_then_that_it_connected)
{
    struct env e;
    char line[4096];
    env_start(&e, "requirepass " RIGHT "\n", NULL);
    write_conf(&e, NULL, WRONG);
    env_worker_beat(&e, "w1", LONG_TTL, 0);     /* no "no live worker" warning */
    env_slotd_start(&e);
    usleep(RETRYING_MS * 1000);
    ck_assert_int_eq(kill(e.slotd, 0), 0);
    long long refused = auth_refusals(&e);
    ck_assert_msg(refused >= 24, "only %lld attempts: the test proves nothing", refused);

    const char *conns[] = { "(main)", "(wait)" };
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(count_lines(e.log, conns[i], "refused AUTH: WRONGPASS", NULL, line,
                                  sizeof line) == 1,
                      "%s: %d lines about the refused AUTH after %lld refusals", conns[i],
                      count_lines(e.log, conns[i], "WRONGPASS", NULL, NULL, 0), refused);
        ck_assert_msg(strstr(line, "check redis.username and redis.password_file; "
                                   "retrying with backoff") != NULL, "%s", line);
    }
    ck_assert_int_eq(count_lines(e.log, "NOAUTH", NULL, NULL, NULL, 0), 0);
    ck_assert_msg(complaints(e.log) == 2, "%d warnings and errors", complaints(e.log));

    /* Passwords are not reloadable: Redis is made to accept this one. */
    redis_ok(&e, "CONFIG SET requirepass %s", WRONG);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(wait_line(e.log, conns[i], "connected after", 3000), 0);
    ck_assert_int_eq(env_wait_log(&e, "slot table loaded", 3000), 0);
    usleep(300 * 1000);
    /* Every refusal Redis counted was a failed attempt, said in the end. */
    refused = auth_refusals(&e);
    ck_assert_int_eq(failed_attempts(e.log, "(main)", "connected after") +
                     failed_attempts(e.log, "(wait)", "connected after"), refused);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(count_lines(e.log, conns[i], "connected", NULL, NULL, 0), 1);
    ck_assert_int_eq(complaints(e.log), 2);
    env_stop(&e);
}
END_TEST

START_TEST(slotd_names_the_handshake_command_an_acl_user_lacks)
{
    struct env e;
    char line[4096];
    env_start(&e, NULL, NULL);
    acl_user_without(&e, "+client|setname");
    write_conf(&e, "slotd", USER_PASSWORD);
    env_worker_beat(&e, "w1", LONG_TTL, 0);
    env_slotd_start(&e);
    usleep(RETRYING_MS * 1000);
    ck_assert_int_eq(kill(e.slotd, 0), 0);
    const char *conns[] = { "(main)", "(wait)" };
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(count_lines(e.log, conns[i], "refused CLIENT SETNAME: NOPERM", NULL, line,
                                  sizeof line) == 1,
                      "%s: %d lines about the refused CLIENT SETNAME", conns[i],
                      count_lines(e.log, conns[i], "NOPERM", NULL, NULL, 0));
        ck_assert_msg(strstr(line, "user slotd needs +client|setname") != NULL, "%s", line);
    }
    ck_assert_int_eq(count_lines(e.log, "NOAUTH", NULL, NULL, NULL, 0), 0);
    ck_assert_msg(complaints(e.log) == 2, "%d warnings and errors", complaints(e.log));

    redis_ok(&e, "ACL SETUSER slotd %s", "+client|setname");
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(wait_line(e.log, conns[i], "connected after", 3000), 0);
    ck_assert_int_eq(env_wait_log(&e, "slot table loaded", 3000), 0);
    ck_assert_int_ge(failed_attempts(e.log, "(main)", "connected after"), 10);
    ck_assert_int_eq(complaints(e.log), 2);
    env_stop(&e);
}
END_TEST

START_TEST(slotd_worker_says_a_wrong_password_once_then_once_more_when_it_changes)
{
    struct env e;
    char log[600], line[4096];
    env_start(&e, "requirepass " RIGHT "\n", NULL);
    write_conf(&e, NULL, WRONG);
    snprintf(log, sizeof log, "%s/worker-w1.log", e.redis.dir);
    pid_t w = env_worker_start(&e, "w1", 1, "cat >/dev/null");
    usleep(RETRYING_MS * 1000);
    ck_assert_int_eq(kill(w, 0), 0);
    long long refused = auth_refusals(&e);
    ck_assert_msg(refused >= 12, "only %lld attempts: the test proves nothing", refused);
    ck_assert_msg(count_lines(log, "refused AUTH: WRONGPASS", NULL, NULL, line, sizeof line) == 1,
                  "%d lines about the refused AUTH after %lld refusals",
                  count_lines(log, "WRONGPASS", NULL, NULL, NULL, 0), refused);
    ck_assert_msg(strstr(line, "check redis.username and redis.password_file") != NULL, "%s", line);
    ck_assert_int_eq(count_lines(log, "NOAUTH", NULL, NULL, NULL, 0), 0);
    ck_assert_msg(complaints(log) == 1, "%d warnings and errors", complaints(log));

    redis_ok(&e, "CONFIG SET requirepass %s", WRONG);
    ck_assert_int_eq(wait_line(log, "worker w1 registered", NULL, 3000), 0);
    ck_assert_int_eq(count_lines(log, "connected after", NULL, NULL, NULL, 0), 1);
    ck_assert_int_eq(failed_attempts(log, "w1", "connected after"), auth_refusals(&e));

    /* The password changes under the running worker and its connections
     * are dropped: the worker's and the heartbeat thread's each say it
     * once, then once that they work again. Both are connected first. */
    ck_assert_int_eq(wait_clients(&e, 3, 3000), 0);
    redis_ok(&e, "CONFIG SET requirepass %s", RIGHT);
    redisReply *killed = harness_cmd(e.c, "CLIENT KILL TYPE normal");
    ck_assert_int_eq(killed->type, REDIS_REPLY_INTEGER);
    ck_assert_int_ge(killed->integer, 2);
    freeReplyObject(killed);
    usleep(RETRYING_MS * 1000);
    ck_assert_int_eq(kill(w, 0), 0);
    ck_assert_int_eq(count_lines(log, "heartbeat", "refused AUTH: WRONGPASS", NULL, NULL, 0), 1);
    ck_assert_int_eq(count_lines(log, "refused AUTH: WRONGPASS", NULL, NULL, NULL, 0), 3);
    ck_assert_int_eq(count_lines(log, "NOAUTH", NULL, NULL, NULL, 0), 0);
    int said = complaints(log);
    ck_assert_msg(said <= 5, "%d warnings and errors", said);
    redis_ok(&e, "CONFIG SET requirepass %s", WRONG);
    ck_assert_int_eq(wait_line(log, "heartbeat works again after", NULL, 3000), 0);
    ck_assert_int_eq(wait_line(log, "working again after", NULL, 3000), 0);
    usleep(300 * 1000);
    ck_assert_int_eq(complaints(log), said);
    stop_worker(w, log);
    env_stop(&e);
}
END_TEST

START_TEST(slotd_worker_says_a_command_refused_for_permission_once)
{
    struct env e;
    char log[600], line[4096];
    env_start(&e, NULL, NULL);
    acl_user_without(&e, "+eval");
    write_conf(&e, "slotd", USER_PASSWORD);
    snprintf(log, sizeof log, "%s/worker-w1.log", e.redis.dir);
    pid_t w = env_worker_start(&e, "w1", 1, "cat >/dev/null");
    /* Every write of libslotd is a script: registering is refused. */
    ck_assert_int_eq(wait_line(log, "NOPERM", NULL, 3000), 0);
    usleep(RETRYING_MS * 1000);
    ck_assert_msg(count_lines(log, "NOPERM", NULL, NULL, line, sizeof line) == 1,
                  "%d lines about NOPERM", count_lines(log, "NOPERM", NULL, NULL, NULL, 0));
    ck_assert_msg(strstr(line, "'eval'") && strstr(line, "docs/operations.md"), "%s", line);
    ck_assert_msg(complaints(log) == 1, "%d warnings and errors", complaints(log));
    redis_ok(&e, "ACL SETUSER slotd %s", "+eval");
    ck_assert_int_eq(wait_line(log, "working again after", NULL, 3000), 0);
    ck_assert_int_ge(failed_attempts(log, "w1", "working again after"), 10);
    ck_assert_int_eq(wait_line(log, "worker w1 registered", NULL, 3000), 0);
    stop_worker(w, log);
    env_stop(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("auth");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, slotd_says_a_wrong_password_once_per_connection_then_that_it_connected);
    tcase_add_test(tc, slotd_names_the_handshake_command_an_acl_user_lacks);
    tcase_add_test(tc, slotd_worker_says_a_wrong_password_once_then_once_more_when_it_changes);
    tcase_add_test(tc, slotd_worker_says_a_command_refused_for_permission_once);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
