/* Unit tests for refusal: advice for Redis's error replies, by code and command. */
#include <check.h>
#include <string.h>

#include "refusal.h"
#include "check_main.h"

START_TEST(wrong_password_and_auth_errors_point_at_the_credentials)
{
    char buf[256];
    ck_assert_uint_gt(refusal_advice(buf, sizeof buf, "WRONGPASS invalid username-password pair "
                                     "or user is disabled.", "AUTH", NULL), 0);
    ck_assert_str_eq(buf, "check redis.username and redis.password_file");
    /* Quoted by libslotd, command unknown: the code is found all the same. */
    refusal_advice(buf, sizeof buf, "Redis refused AUTH: WRONGPASS invalid", NULL, "slotd");
    ck_assert_str_eq(buf, "check redis.username and redis.password_file");
    /* A password sent to a Redis that has none. */
    refusal_advice(buf, sizeof buf, "ERR AUTH <password> called without any password "
                   "configured for the default user.", "AUTH", NULL);
    ck_assert_str_eq(buf, "check redis.username and redis.password_file");
    refusal_advice(buf, sizeof buf, "NOAUTH Authentication required.", "CLIENT SETNAME", NULL);
    ck_assert_str_eq(buf, "Redis requires a password: set redis.password_file "
                          "(and redis.username for an ACL user)");
}
END_TEST

/* dial.c's words for a sentinel that refuses: its own credentials, not
 * the master's. */
START_TEST(a_sentinel_refusing_points_at_the_sentinel_credentials)
{
    char buf[256];
    refusal_advice(buf, sizeof buf, "no sentinel named master 'slotd': sentinel 10.0.0.1:26379: "
                   "Connection refused; sentinel 10.0.0.2:26379 refused AUTH: WRONGPASS invalid "
                   "username-password pair or user is disabled.", NULL, "slotd");
    ck_assert_str_eq(buf, "check redis.sentinel_username and redis.sentinel_password_file");
    refusal_advice(buf, sizeof buf, "no sentinel named master 'slotd': sentinel 10.0.0.1:26379 "
                   "refused SENTINEL get-master-addr-by-name: NOAUTH Authentication required.",
                   NULL, NULL);
    ck_assert_str_eq(buf, "the sentinels require a password: set redis.sentinel_password_file "
                          "(and redis.sentinel_username for an ACL user)");
    /* The master found through them refusing is the master's business. */
    refusal_advice(buf, sizeof buf, "Redis refused AUTH: WRONGPASS invalid", NULL, NULL);
    ck_assert_str_eq(buf, "check redis.username and redis.password_file");
}
END_TEST

START_TEST(noperm_names_the_acl_rule_when_the_command_is_known)
{
    char buf[256];
    refusal_advice(buf, sizeof buf, "NOPERM this user has no permissions to run the "
                   "'client|setname' command", "CLIENT SETNAME", "slotd");
    ck_assert_str_eq(buf, "user slotd needs +client|setname (ACL SETUSER slotd +client|setname; "
                          "docs/operations.md lists every command needed)");
    refusal_advice(buf, sizeof buf, "take refused: NOPERM this user has no permissions to run "
                   "the 'eval' command", NULL, "");
    ck_assert_str_eq(buf, "user default lacks a command it needs: docs/operations.md "
                          "(Redis ACL) lists them all");
}
END_TEST

START_TEST(other_errors_get_advice_only_where_it_is_known)
{
    char buf[256];
    refusal_advice(buf, sizeof buf, "ERR DB index is out of range", "SELECT", NULL);
    ck_assert_str_eq(buf, "check redis.db");
    ck_assert_uint_eq(refusal_advice(buf, sizeof buf, "LOADING Redis is loading", "CLIENT SETNAME",
                                     NULL), 0);
    ck_assert_str_eq(buf, "");
    /* A code inside another word is not the code. */
    ck_assert_uint_eq(refusal_advice(buf, sizeof buf, "ERR XNOPERMX", NULL, NULL), 0);
    /* Cut to the buffer, terminated. */
    ck_assert_uint_eq(refusal_advice(buf, 6, "WRONGPASS x", NULL, NULL), 5);
    ck_assert_str_eq(buf, "check");
}
END_TEST

START_TEST(length_without_the_closing_period)
{
    ck_assert_uint_eq(refusal_len("NOAUTH Authentication required."), strlen("NOAUTH Authentication required"));
    ck_assert_uint_eq(refusal_len("ERR x \r\n"), 5);
    ck_assert_uint_eq(refusal_len(""), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("refusal");
    TCase *tc = tcase_create("refusal");
    tcase_add_test(tc, wrong_password_and_auth_errors_point_at_the_credentials);
    tcase_add_test(tc, a_sentinel_refusing_points_at_the_sentinel_credentials);
    tcase_add_test(tc, noperm_names_the_acl_rule_when_the_command_is_known);
    tcase_add_test(tc, other_errors_get_advice_only_where_it_is_known);
    tcase_add_test(tc, length_without_the_closing_period);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
