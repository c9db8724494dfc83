/*
 * Integration: operating slotd. The sd_notify protocol against a socket the
 * test plays systemd with; /healthz, /status and /metrics (checked with
 * promtool, and against the metrics docs/operations.md lists); the
 * dashboard rendered in headless Chromium, with a screenshot.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "env.h"
#include "harness.h"

#define LONG_TTL 600000


/* GET url: the status code, body in out. */
static int get(int port, const char *path, char *out, size_t cap)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "curl -s -w '\\n%%{http_code}' http://127.0.0.1:%d%s", port, path);
    ck_assert_int_eq(harness_run(cmd, out, cap), 0);
    char *nl = strrchr(out, '\n');
    ck_assert_ptr_nonnull(nl);
    *nl = '\0';
    return atoi(nl + 1);
}

static int http_env(struct env *e)
{
    char extra[128];
    int port = harness_free_port();
    snprintf(extra, sizeof extra, "http:\n  listen: 127.0.0.1:%d\n", port);
    env_start(e, NULL, extra);
    return port;
}

/* Waits for the next datagram on fd that starts with prefix. */
static int wait_message(int fd, const char *prefix, int timeout_ms, char *got, size_t cap)
{
    uint64_t end = harness_now_ms() + (uint64_t)timeout_ms;
    while (harness_now_ms() < end) {
        struct timeval tv = { 0, 50000 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ssize_t n = recv(fd, got, cap - 1, 0);
        if (n <= 0)
            continue;
        got[n] = '\0';
        if (strncmp(got, prefix, strlen(prefix)) == 0 || strstr(got, prefix) != NULL)
            return 0;
    }
    return -1;
}

START_TEST(sd_notify_ready_status_watchdog_reloading_stopping)
{
    struct env e;
    struct sockaddr_un a;
    char path[300], msg[1024];
    env_start(&e, NULL, NULL);
    env_worker_beat(&e, "w1", LONG_TTL, 0);
    snprintf(path, sizeof path, "%s/notify.sock", e.redis.dir);
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    ck_assert_int_ge(fd, 0);
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    ck_assert_uint_lt(strlen(path), sizeof a.sun_path);
    memcpy(a.sun_path, path, strlen(path) + 1);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    setenv("NOTIFY_SOCKET", path, 1);
    setenv("WATCHDOG_USEC", "400000", 1);
    setenv("JOURNAL_STREAM", "8:12345", 1);
    env_slotd_start(&e);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("JOURNAL_STREAM");
    ck_assert_msg(wait_message(fd, "READY=1", 5000, msg, sizeof msg) == 0, "no READY=1");
    ck_assert_msg(wait_message(fd, "STATUS=routing: 1 workers", 3000, msg, sizeof msg) == 0, "no STATUS");
    /* WATCHDOG=1 at half of 400 ms: at least three in a second. */
    int pings = 0;
    uint64_t end = harness_now_ms() + 1000;
    while (harness_now_ms() < end)
        if (wait_message(fd, "WATCHDOG=1", 100, msg, sizeof msg) == 0)
            pings++;
    ck_assert_msg(pings >= 3, "%d watchdog pings in 1 s", pings);
    /* Under the journal: a syslog priority first, no timestamp. */
    ck_assert_int_eq(env_wait_log(&e, "<6>info: ready: routing", 10), 0);
    kill(e.slotd, SIGHUP);
    ck_assert_int_eq(wait_message(fd, "RELOADING=1", 2000, msg, sizeof msg), 0);
    ck_assert_int_eq(wait_message(fd, "READY=1", 2000, msg, sizeof msg), 0);
    kill(e.slotd, SIGTERM);
    ck_assert_int_eq(wait_message(fd, "STOPPING=1", 2000, msg, sizeof msg), 0);
    close(fd);
    env_stop(&e);
}
END_TEST

START_TEST(healthz_status_and_metrics)
{
    struct env e;
    static char body[1 << 16], out[1 << 16];
    int port = http_env(&e);
    env_worker_beat(&e, "w1", LONG_TTL, 0);
    env_worker_beat(&e, "w2", LONG_TTL, 0);
    env_slotd_start(&e);
    const char *ids[] = { "w1", "w2" };
    ck_assert_int_eq(env_wait_owners(&e, ids, 2, 5000), 0);
    char intake[64];
    env_key(intake, sizeof intake, "intake");
    for (int i = 0; i < 20; i++)
        freeReplyObject(harness_cmd(e.c, "LPUSH %s {\"key\":\"k%d\"}", intake, i));
    freeReplyObject(harness_cmd(e.c, "LPUSH %s not-json", intake));
    ck_assert_int_eq(env_wait_llen(&e, "intake", 0, 3000), 0);
    usleep(1200 * 1000);        /* one gauges round */

    ck_assert_int_eq(get(port, "/healthz", body, sizeof body), 200);
    ck_assert_msg(strstr(body, "ok: active, routing, 2 workers") != NULL, "%s", body);

    ck_assert_int_eq(get(port, "/status", body, sizeof body), 200);
    ck_assert_msg(strstr(body, "\"id\":\"w1\"") && strstr(body, "\"id\":\"w2\""), "%s", body);
    ck_assert_msg(strstr(body, "\"slots\":\"0-8191\"") != NULL, "%s", body);
    ck_assert_msg(strstr(body, "\"routed\":20") != NULL, "%s", body);
    ck_assert_msg(strstr(body, "\"invalid_json\":1") != NULL, "%s", body);
    ck_assert_msg(strstr(body, "\"queue\":") != NULL, "%s", body);

    ck_assert_int_eq(get(port, "/metrics", body, sizeof body), 200);
    ck_assert_msg(strstr(body, "slotd_tasks_routed_total{intake=\"{t}:intake\"} 20") != NULL, "%s", body);
    ck_assert_msg(strstr(body, "slotd_tasks_dead_lettered_total{reason=\"invalid_json\"} 1") != NULL, "%s", body);
    ck_assert_msg(strstr(body, "slotd_slots_owned{worker=\"w1\"} 8192") != NULL, "%s", body);
    /* promtool, the reference linter of the format. */
    char path[300], cmd[400];
    snprintf(path, sizeof path, "%s/metrics.txt", e.redis.dir);
    ck_assert_int_eq(harness_write_file(path, body), 0);
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
    ck_assert_msg(harness_run(cmd, out, sizeof out) == 0, "promtool: %s", out);
    /* Every metric docs/operations.md lists is served. */
    FILE *f = fopen("docs/operations.md", "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    int listed = 0;
    while (fgets(line, sizeof line, f)) {
        char name[128];
        if (sscanf(line, "| `%127[a-z_]` |", name) == 1 && strncmp(name, "slotd_", 6) == 0) {
            listed++;
            char want[160];
            snprintf(want, sizeof want, "# TYPE %s ", name);
            ck_assert_msg(strstr(body, want) != NULL, "/metrics lacks %s (docs/operations.md)", name);
        }
    }
    fclose(f);
    ck_assert_int_ge(listed, 20);

    ck_assert_int_eq(get(port, "/nope", body, sizeof body), 404);
    /* Log level at run time. */
    kill(e.slotd, SIGUSR1);
    ck_assert_int_eq(env_wait_log(&e, "log level now debug (SIGUSR1)", 2000), 0);
    kill(e.slotd, SIGUSR2);
    ck_assert_int_eq(env_wait_log(&e, "log level now info (SIGUSR2)", 2000), 0);
    /* Redis gone: 503 with the reason. */
    harness_redis_kill(&e.redis, SIGTERM);
    usleep(300 * 1000);
    ck_assert_int_eq(get(port, "/healthz", body, sizeof body), 503);
    ck_assert_msg(strstr(body, "not routing: Redis unreachable") != NULL, "%s", body);
    redisFree(e.c);
    e.c = NULL;
    env_stop(&e);
}
END_TEST

START_TEST(dashboard_renders_in_headless_chromium)
{
    struct env e;
    static char out[1 << 18];
    char cmd[2048], shot[600], profile[400];
    int port = http_env(&e);
    env_worker_beat(&e, "alpha", LONG_TTL, 0);
    env_worker_beat(&e, "beta", LONG_TTL, 0);
    env_slotd_start(&e);
    const char *ids[] = { "alpha", "beta" };
    ck_assert_int_eq(env_wait_owners(&e, ids, 2, 5000), 0);
    usleep(1200 * 1000);
    snprintf(profile, sizeof profile, "%s/chromium", e.redis.dir);
    /* The screenshot stays in the build directory, for people to look at. */
    snprintf(shot, sizeof shot, "%s/dashboard.png", harness_build_dir());
    const char *flags = "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
                        "--disable-background-networking --disable-component-update --disable-sync "
                        "--hide-scrollbars --virtual-time-budget=3000";
    snprintf(cmd, sizeof cmd, "chromium %s --user-data-dir=%s --dump-dom http://127.0.0.1:%d/ 2>/dev/null",
             flags, profile, port);
    ck_assert_int_eq(harness_run(cmd, out, sizeof out), 0);
    /* The page fetched /status and filled the workers table. */
    ck_assert_msg(strstr(out, "<td>alpha</td>") != NULL || strstr(out, "alpha</td>") != NULL,
                  "workers table not rendered: %.2000s", out);
    ck_assert_msg(strstr(out, "beta</td>") != NULL, "beta missing");
    ck_assert_msg(strstr(out, "namespace <b>t</b>") != NULL, "header not rendered: %.600s", strstr(out, "id=\"sub\"") ? strstr(out, "id=\"sub\"") : out);
    char master[128];
    snprintf(master, sizeof master, "<b id=\"master\">127.0.0.1:%d</b> (config)", e.redis.port);
    ck_assert_msg(strstr(out, master) != NULL, "Redis master not shown: %.600s",
                  strstr(out, "id=\"sub\"") ? strstr(out, "id=\"sub\"") : out);
    snprintf(cmd, sizeof cmd, "chromium %s --user-data-dir=%s --window-size=1200,800 --screenshot=%s "
             "http://127.0.0.1:%d/ 2>/dev/null", flags, profile, shot, port);
    ck_assert_int_eq(harness_run(cmd, out, sizeof out), 0);
    struct stat st;
    ck_assert_int_eq(stat(shot, &st), 0);
    ck_assert_msg(st.st_size > 10000, "screenshot of %lld bytes", (long long)st.st_size);
    env_stop(&e);
}
END_TEST

/*
 * slotd, slotd-worker and slotctl under a Redis ACL user allowed only the
 * commands docs/operations.md lists, on the namespace's keys: routing, a
 * join with its fenced handoff (the scripts), acknowledgements, slotctl.
 */
START_TEST(runs_under_an_acl_user_with_the_documented_commands)
{
    struct env e;
    char path[600], text[1024], cmd[1200];
    const char *one[] = { "w1" }, *two[] = { "w1", "w2" };
    env_start(&e, NULL, NULL);
    /* The documented line, as an operator would type it. */
    redisReply *r = harness_cmd(e.c, "ACL SETUSER slotd on >s3cret resetkeys ~{" ENV_NS "}:* "
                                "resetchannels -@all %s", "+auth");
    ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    {
        /* The rest of the commands, one argument each; each one documented. */
        char list[] = ENV_ACL_COMMANDS, doc[65536];
        FILE *f = fopen("docs/operations.md", "r");
        ck_assert_ptr_nonnull(f);
        doc[fread(doc, 1, sizeof doc - 1, f)] = '\0';
        fclose(f);
        const char *block = strstr(doc, "ACL SETUSER slotd on");
        ck_assert_ptr_nonnull(block);
        for (char *tok = strtok(list, " "); tok != NULL; tok = strtok(NULL, " ")) {
            char word[64];
            snprintf(word, sizeof word, " %s ", tok);
            const char *at = strstr(block, word);
            if (at == NULL) {
                snprintf(word, sizeof word, " %s\n", tok);
                at = strstr(block, word);
            }
            ck_assert_msg(at != NULL && at < strstr(block, "```"),
                          "docs/operations.md's ACL line lacks %s", tok);
            r = harness_cmd(e.c, "ACL SETUSER slotd %s", tok);
            ck_assert_msg(r->type == REDIS_REPLY_STATUS, "ACL SETUSER slotd %s: %s", tok,
                          r->type == REDIS_REPLY_ERROR ? r->str : "?");
            freeReplyObject(r);
        }
    }
    snprintf(path, sizeof path, "%s/password", e.redis.dir);
    ck_assert_int_eq(harness_write_file(path, "s3cret\n"), 0);
    snprintf(text, sizeof text,
             "redis:\n  port: %d\n  username: slotd\n  password_file: password\n"
             "namespace: " ENV_NS "\nhttp:\n  listen: \"\"\n"
             "workers:\n  check_interval_ms: 100\n  heartbeat_ttl_ms: 1000\n"
             "worker:\n  prefetch: 8\n", e.redis.port);
    ck_assert_int_eq(harness_write_file(e.conf, text), 0);
    env_slotd_start(&e);
    pid_t w1 = env_worker_start(&e, "w1", 2, "cat >/dev/null; sleep 0.01");
    ck_assert_int_eq(env_wait_owners(&e, one, 1, 5000), 0);
    char intake[64];
    env_key(intake, sizeof intake, "intake");
    for (int i = 0; i < 200; i++)
        freeReplyObject(harness_cmd(e.c, "LPUSH %s {\"key\":\"k%d\",\"seq\":%d}", intake, i % 20, i));
    pid_t w2 = env_worker_start(&e, "w2", 2, "cat >/dev/null; sleep 0.01");
    ck_assert_int_eq(env_wait_owners(&e, two, 2, 5000), 0);
    ck_assert_int_eq(env_wait_log(&e, "handed off", 3000), 0);
    for (int i = 200; i < 300; i++)
        freeReplyObject(harness_cmd(e.c, "LPUSH %s {\"key\":\"k%d\",\"seq\":%d}", intake, i % 20, i));
    ck_assert_int_eq(env_wait_llen(&e, "intake", 0, 10000), 0);
    ck_assert_int_eq(env_wait_llen(&e, "queue:w1", 0, 10000), 0);
    ck_assert_int_eq(env_wait_llen(&e, "queue:w2", 0, 10000), 0);
    ck_assert_int_eq(env_wait_llen(&e, "inflight:w1", 0, 10000), 0);
    ck_assert_int_eq(env_wait_llen(&e, "inflight:w2", 0, 10000), 0);
    ck_assert_int_eq(env_llen(&e, "dead"), 0);
    ck_assert_msg(env_slotctl(&e, NULL, "status", cmd, sizeof cmd) == 0, "%s", cmd);
    /* Nothing refused along the way. */
    ck_assert_int_ne(env_wait_log(&e, "NOPERM", 10), 0);
    kill(w1, SIGTERM);
    kill(w2, SIGTERM);
    ck_assert_int_eq(harness_wait_exit(w1, 10000, NULL), 0);
    ck_assert_int_eq(harness_wait_exit(w2, 10000, NULL), 0);
    env_stop(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, sd_notify_ready_status_watchdog_reloading_stopping);
    tcase_add_test(tc, healthz_status_and_metrics);
    tcase_add_test(tc, dashboard_renders_in_headless_chromium);
    tcase_add_test(tc, runs_under_an_acl_user_with_the_documented_commands);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
