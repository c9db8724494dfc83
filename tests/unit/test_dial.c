/* Unit tests for dial's pure helpers: how a timeout looks in hiredis's
 * words, the list of what each sentinel said, addresses. (Dialing itself is
 * tested against real servers: tests/integration/test_sentinel_sync.c.) */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "dial.h"
#include "check_main.h"

START_TEST(timeouts_are_told_from_other_failures)
{
    /* hiredis 0.14: a read past SO_RCVTIMEO fails with EAGAIN's words, a
     * connect past its timeout with ETIMEDOUT's. */
    ck_assert_int_eq(dial_is_timeout(REDIS_ERR_IO, strerror(EAGAIN)), 1);
    ck_assert_int_eq(dial_is_timeout(REDIS_ERR_IO, strerror(ETIMEDOUT)), 1);
    ck_assert_int_eq(dial_is_timeout(REDIS_ERR_IO, strerror(ECONNREFUSED)), 0);
    ck_assert_int_eq(dial_is_timeout(REDIS_ERR_IO, strerror(ECONNRESET)), 0);
    ck_assert_int_eq(dial_is_timeout(REDIS_ERR_EOF, "Server closed the connection"), 0);
    /* The same words under another code are not a timeout. */
    ck_assert_int_eq(dial_is_timeout(REDIS_ERR_OTHER, strerror(EAGAIN)), 0);
    ck_assert_int_eq(dial_is_timeout(REDIS_ERR_IO, NULL), 0);
}
END_TEST

START_TEST(what_each_sentinel_said_is_one_list)
{
    char buf[80] = "";
    dial_append(buf, sizeof buf, "sentinel %s: %s", "a:1", "Connection refused");
    ck_assert_str_eq(buf, "sentinel a:1: Connection refused");
    dial_append(buf, sizeof buf, "sentinel b:2: master '%s' unknown", "x");
    ck_assert_str_eq(buf, "sentinel a:1: Connection refused; sentinel b:2: master 'x' unknown");
    /* Too long: cut, and it says so; later entries add nothing. */
    dial_append(buf, sizeof buf, "sentinel c:3: no reply within 1000 ms");
    ck_assert_uint_eq(strlen(buf), sizeof buf - 1);
    ck_assert_str_eq(buf + strlen(buf) - 3, "...");
    char before[80];
    strcpy(before, buf);
    dial_append(buf, sizeof buf, "more");
    ck_assert_str_eq(buf, before);
    /* A buffer too small to say anything stays as it is. */
    char tiny[3] = "";
    dial_append(tiny, sizeof tiny, "x");
    ck_assert_str_eq(tiny, "");
}
END_TEST

START_TEST(addresses_bracket_ipv6)
{
    char buf[64];
    ck_assert_str_eq(dial_format_addr(buf, sizeof buf, "10.0.0.1", 26379), "10.0.0.1:26379");
    ck_assert_str_eq(dial_format_addr(buf, sizeof buf, "::1", 6379), "[::1]:6379");
    ck_assert_str_eq(dial_format_addr(buf, sizeof buf, "redis-a", 6380), "redis-a:6380");
}
END_TEST

START_TEST(options_are_checked_and_defaulted)
{
    struct dial d;
    char err[256];
    struct dial_options o;
    memset(&o, 0, sizeof o);
    ck_assert_int_eq(dial_init(&d, &o, err, sizeof err), 0);
    ck_assert_str_eq(d.o.host, "127.0.0.1");
    ck_assert_int_eq(d.o.port, 6379);
    ck_assert_int_eq(d.o.connect_timeout_ms, DIAL_CONNECT_TIMEOUT_MS);
    ck_assert_int_eq(d.o.reply_timeout_ms, DIAL_REPLY_TIMEOUT_MS);
    ck_assert_int_eq(dial_uses_sentinel(&d), 0);
    o.sentinels = "a:1, b:2";
    ck_assert_int_eq(dial_init(&d, &o, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "master's name"));
    o.sentinel_master = "slotd";
    ck_assert_int_eq(dial_init(&d, &o, err, sizeof err), 0);
    ck_assert_int_eq(dial_uses_sentinel(&d), 1);
    ck_assert_int_eq(d.sentinels.n, 2);
    o.sentinels = "a:1,b";
    ck_assert_int_eq(dial_init(&d, &o, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "'b' is not host:port"));
}
END_TEST

START_TEST(wrong_server_replies)
{
    redisReply r;
    memset(&r, 0, sizeof r);
    r.type = REDIS_REPLY_ERROR;
    r.str = (char[]){ "READONLY You can't write against a read only replica." };
    r.len = strlen(r.str);
    ck_assert_int_eq(dial_wrong_server(&r), 1);
    r.str = (char[]){ "UNBLOCKED force unblock from blocking operation, instance state changed "
                      "(master -> replica?)" };
    r.len = strlen(r.str);
    ck_assert_int_eq(dial_wrong_server(&r), 1);
    r.str = (char[]){ "WRONGTYPE Operation against a key holding the wrong kind of value" };
    r.len = strlen(r.str);
    ck_assert_int_eq(dial_wrong_server(&r), 0);
    r.type = REDIS_REPLY_STATUS;
    r.str = (char[]){ "READONLY" };
    r.len = 8;
    ck_assert_int_eq(dial_wrong_server(&r), 0);
    ck_assert_int_eq(dial_wrong_server(NULL), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("dial");
    TCase *tc = tcase_create("dial");
    tcase_add_test(tc, timeouts_are_told_from_other_failures);
    tcase_add_test(tc, what_each_sentinel_said_is_one_list);
    tcase_add_test(tc, addresses_bracket_ipv6);
    tcase_add_test(tc, options_are_checked_and_defaulted);
    tcase_add_test(tc, wrong_server_replies);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
