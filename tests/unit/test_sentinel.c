/* Unit tests for sentinel: the list, get-master-addr, ROLE, +switch-master,
 * and the replies that mean "not the master". */
#include <check.h>
#include <string.h>

#include "sentinel.h"
#include "check_main.h"

START_TEST(lists_parse_and_refuse)
{
    struct sentinels s;
    char why[200];
    ck_assert_int_eq(sentinel_parse_list(&s, "", why, sizeof why), 0);
    ck_assert_int_eq(s.n, 0);
    ck_assert_int_eq(sentinel_parse_list(&s, "10.0.0.1:26379, host-b:26380,[::1]:5", why,
                                         sizeof why), 0);
    ck_assert_int_eq(s.n, 3);
    ck_assert_str_eq(s.at[0].host, "10.0.0.1");
    ck_assert_int_eq(s.at[0].port, 26379);
    ck_assert_str_eq(s.at[1].host, "host-b");
    ck_assert_int_eq(s.at[1].port, 26380);
    ck_assert_str_eq(s.at[2].host, "::1");
    ck_assert_int_eq(s.at[2].port, 5);
    const char *bad[] = { "host", "host:", ":26379", "h:0", "h:65536", "h:12a", "[::1]26379",
                          "[::1", "a:1,,b:2", "a:1,", "h:123456" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(sentinel_parse_list(&s, bad[i], why, sizeof why) == -1, "%s", bad[i]);
    ck_assert_ptr_nonnull(strstr(why, "not host:port"));
    struct sentinel_addr a = { "10.0.0.1", 7000 }, b = { "10.0.0.1", 7000 },
                         c = { "10.0.0.1", 7001 }, d = { "10.0.0.2", 7000 };
    ck_assert(sentinel_addr_same(&a, &b));
    ck_assert(!sentinel_addr_same(&a, &c));
    ck_assert(!sentinel_addr_same(&a, &d));
}
END_TEST

START_TEST(the_one_that_answers_goes_first)
{
    struct sentinels s;
    char why[200];
    ck_assert_int_eq(sentinel_parse_list(&s, "a:1,b:2,c:3,d:4", why, sizeof why), 0);
    sentinel_answered(&s, 2);
    ck_assert_str_eq(s.at[0].host, "c");
    ck_assert_str_eq(s.at[1].host, "a");
    ck_assert_str_eq(s.at[2].host, "b");
    ck_assert_str_eq(s.at[3].host, "d");
    sentinel_answered(&s, 0);
    sentinel_answered(&s, 9);
    ck_assert_str_eq(s.at[0].host, "c");
}
END_TEST

START_TEST(master_addresses_roles_switches_and_wrong_servers)
{
    struct sentinel_addr a;
    const char *ok[] = { "127.0.0.1", "6380" };
    size_t okl[] = { 9, 4 };
    ck_assert_int_eq(sentinel_parse_master(ok, okl, 2, &a), 1);
    ck_assert_str_eq(a.host, "127.0.0.1");
    ck_assert_int_eq(a.port, 6380);
    ck_assert_int_eq(sentinel_parse_master(NULL, NULL, 0, &a), 0);
    const char *badport[] = { "127.0.0.1", "x" };
    size_t bl[] = { 9, 1 };
    ck_assert_int_eq(sentinel_parse_master(badport, bl, 2, &a), -1);
    ck_assert_int_eq(sentinel_parse_master(ok, okl, 1, &a), -1);

    ck_assert_int_eq(sentinel_is_master_role("master", 6), 1);
    ck_assert_int_eq(sentinel_is_master_role("slave", 5), 0);
    ck_assert_int_eq(sentinel_is_master_role("sentinel", 8), 0);

    const char m[] = "mymaster 127.0.0.1 6379 127.0.0.1 6380";
    ck_assert_int_eq(sentinel_parse_switch(m, strlen(m), "mymaster", &a), 1);
    ck_assert_str_eq(a.host, "127.0.0.1");
    ck_assert_int_eq(a.port, 6380);
    ck_assert_int_eq(sentinel_parse_switch(m, strlen(m), "other", &a), 0);
    ck_assert_int_eq(sentinel_parse_switch(m, strlen(m), "mymaste", &a), 0);
    const char bad[] = "mymaster 127.0.0.1 6379 127.0.0.1";
    ck_assert_int_eq(sentinel_parse_switch(bad, strlen(bad), "mymaster", &a), -1);

    const char *wrong[] = { "READONLY You can't write against a read only replica.",
                            "UNBLOCKED force unblock from blocking operation",
                            "MASTERDOWN Link with MASTER is down", "LOADING Redis is loading",
                            "NOREPLICAS Not enough good replicas to write.", "READONLY" };
    const enum sentinel_server says[] = { SENTINEL_NOT_MASTER, SENTINEL_NOT_MASTER,
                                          SENTINEL_NOT_MASTER, SENTINEL_NOT_NOW,
                                          SENTINEL_NOT_NOW, SENTINEL_NOT_MASTER };
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++)
        ck_assert_msg(sentinel_wrong_server(wrong[i], strlen(wrong[i])) == says[i], "%s", wrong[i]);
    const char *right[] = { "WRONGTYPE Operation", "ERR unknown", "OOM command", "READONLYX" };
    for (size_t i = 0; i < sizeof right / sizeof right[0]; i++)
        ck_assert_msg(!sentinel_wrong_server(right[i], strlen(right[i])), "%s", right[i]);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sentinel");
    TCase *tc = tcase_create("sentinel");
    tcase_add_test(tc, lists_parse_and_refuse);
    tcase_add_test(tc, the_one_that_answers_goes_first);
    tcase_add_test(tc, master_addresses_roles_switches_and_wrong_servers);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
