/*
 * The connection watchdog (redis.connect_timeout_ms, redis.reply_timeout_ms):
 * a connect that hangs is given up in its time, said once, and retried; a
 * frozen Redis (SIGSTOP) is noticed within the reply timeout whether slotd
 * was busy or idle, and slotd resumes once it wakes; the blocking wait on an
 * empty intake, which Redis answers only after its own 5 s, is not taken for
 * a frozen server.
 */
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "env.h"
#include "harness.h"
#include "check_main.h"

#define REPLY_MS 400

/* slotd's config, with redis.* lines of its own (env writes redis.port). */
static void write_conf(struct env *e, int port, const char *redis, const char *rest)
{
    char text[1024];
    snprintf(text, sizeof text,
             "redis:\n  host: 127.0.0.1\n  port: %d\n  reconnect_min_ms: 50\n"
             "  reconnect_max_ms: 200\n%snamespace: " ENV_NS "\nhttp:\n  listen: \"\"\n%s",
             port, redis, rest);
    ck_assert_int_eq(harness_write_file(e->conf, text), 0);
}

/* A listener whose accept queue is full: further connects hang (the
 * kernel drops their SYNs). Returns its fd (and the filler's in *filler). */
static int hanging_listener(int *port, int *filler)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 0), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    /* Backlog 0 holds one connection; two fillers make sure it is full. */
    for (int i = 0; i < 2; i++) {
        filler[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(filler[i], (struct sockaddr *)&a, sizeof a);
    }
    usleep(100 * 1000);
    return fd;
}

START_TEST(a_connect_that_hangs_is_given_up_and_retried)
{
    struct env e;
    int port, filler[2];
    int fd = hanging_listener(&port, filler);
    env_start(&e, NULL, NULL);
    write_conf(&e, port, "  connect_timeout_ms: 300\n", "");
    env_slotd_start(&e);
    uint64_t t0 = harness_now_ms();
    ck_assert_int_eq(env_wait_log(&e, "connect timed out after 300 ms", 3000), 0);
    uint64_t said = harness_now_ms() - t0;
    ck_assert_msg(said < 1500, "the connect timeout was said after %llu ms",
                  (unsigned long long)said);
    /* Retried with the backoff, said once (the episode's rule), still alive. */
    sleep(3);
    ck_assert_int_eq(env_log_count(&e, "(main) unreachable: connect timed out"), 1);
    ck_assert_int_eq(env_log_count(&e, "(wait) unreachable: connect timed out"), 1);
    ck_assert_int_eq(kill(e.slotd, 0), 0);
    close(filler[0]);
    close(filler[1]);
    close(fd);
    env_stop(&e);
}
END_TEST

/* Pushes one task and waits until it is on w1's queue (n in all). */
static void route_one(struct env *e, int n)
{
    char key[64];
    freeReplyObject(harness_cmd(e->c, "LPUSH %s {\"key\":\"k%d\"}", env_key(key, sizeof key, "intake"), n));
    ck_assert_int_eq(env_wait_llen(e, "queue:w1", n, 5000), 0);
}

START_TEST(a_frozen_redis_is_noticed_and_an_idle_wait_is_not_one)
{
    struct env e;
    env_start(&e, NULL, NULL);
    write_conf(&e, e.redis.port, "  reply_timeout_ms: 400\n  connect_timeout_ms: 300\n",
               "workers:\n  heartbeat_ttl_ms: 30000\n");
    env_worker_beat(&e, "w1", 60000, 0);
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_log(&e, "slot table loaded", 5000), 0);
    route_one(&e, 1);

    /* Idle for longer than the blocking wait's 5 s and the reply timeout:
     * the pinged main connection and the waiting one stay up. */
    sleep(7);
    ck_assert_int_eq(env_log_count(&e, "dropped"), 0);
    ck_assert_int_eq(env_log_count(&e, "connection lost"), 0);
    route_one(&e, 2);

    /* Frozen while idle: the main connection's PING goes unanswered. */
    ck_assert_int_eq(kill(e.redis.pid, SIGSTOP), 0);
    uint64_t t0 = harness_now_ms();
    ck_assert_int_eq(env_wait_log2(&e, "(main) connection dropped", "no reply in", 3000), 0);
    uint64_t noticed = harness_now_ms() - t0;
    /* A ping every third of the timeout, the timeout, a tick of the watchdog. */
    ck_assert_msg(noticed <= REPLY_MS + REPLY_MS / 3 + 300, "noticed after %llu ms",
                  (unsigned long long)noticed);
    fprintf(stderr, "frozen Redis noticed after %llu ms (reply_timeout_ms %d)\n",
            (unsigned long long)noticed, REPLY_MS);
    /* Reconnects: the handshake is not answered either, and that is said
     * as part of the same episode, not once per attempt. */
    sleep(2);
    ck_assert_int_le(env_log_count(&e, "(main) still"), 1);
    ck_assert_int_eq(kill(e.redis.pid, SIGCONT), 0);
    ck_assert_int_eq(env_wait_log2(&e, "(main) connected after", "failed attempt", 5000), 0);
    route_one(&e, 3);
    env_stop(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("watchdog");
    TCase *tc = tcase_create("watchdog");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_connect_that_hangs_is_given_up_and_retried);
    tcase_add_test(tc, a_frozen_redis_is_noticed_and_an_idle_wait_is_not_one);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
