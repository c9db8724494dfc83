/* Unit tests for route: the routing rules of docs/protocol.md, in order. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "keyslot.h"
#include "route.h"
#include "check_main.h"

static char scratch[4096];

static enum taskkey_result run(const char *field, int missing, size_t max,
                               const char *task, size_t len, unsigned *slot)
{
    struct route_rules r = { field, strlen(field), missing, max };
    size_t at;
    *slot = 99999;
    return route_task(&r, task, len, scratch, slot, &at);
}

#define T(s) s, sizeof(s) - 1

START_TEST(key_field_routes_by_key)
{
    unsigned slot;
    ck_assert_int_eq(run("key", CONF_MISSING_DEAD_LETTER, 1000, T("{\"key\":\"foo\",\"x\":1}"), &slot), TASKKEY_OK);
    ck_assert_uint_eq(slot, 12182);     /* CLUSTER KEYSLOT foo */
    ck_assert_int_eq(run("key", CONF_MISSING_DEAD_LETTER, 1000, T("{\"key\":\"{user1000}.following\"}"), &slot), TASKKEY_OK);
    ck_assert_uint_eq(slot, 3443);
    ck_assert_int_eq(run("key", CONF_MISSING_DEAD_LETTER, 1000, T("{\"key\":42}"), &slot), TASKKEY_OK);
    ck_assert_uint_eq(slot, keyslot("42", 2));
    ck_assert_int_eq(run("user", CONF_MISSING_DEAD_LETTER, 1000, T("{\"key\":1,\"user\":\"bar\"}"), &slot), TASKKEY_OK);
    ck_assert_uint_eq(slot, 5061);      /* CLUSTER KEYSLOT bar */
}
END_TEST

START_TEST(size_rules_come_first)
{
    unsigned slot;
    ck_assert_int_eq(run("key", CONF_MISSING_PAYLOAD, 1000, "", 0, &slot), TASKKEY_EMPTY);
    ck_assert_int_eq(run("", CONF_MISSING_PAYLOAD, 1000, "", 0, &slot), TASKKEY_EMPTY);
    ck_assert_int_eq(run("key", CONF_MISSING_PAYLOAD, 10, T("{\"key\":\"foo\"}"), &slot), TASKKEY_TOO_LARGE);
    ck_assert_int_eq(run("", CONF_MISSING_PAYLOAD, 3, T("abcd"), &slot), TASKKEY_TOO_LARGE);
    ck_assert_int_eq(run("", CONF_MISSING_PAYLOAD, 4, T("abcd"), &slot), TASKKEY_OK);
}
END_TEST

START_TEST(empty_key_field_hashes_whole_task)
{
    unsigned slot;
    ck_assert_int_eq(run("", CONF_MISSING_DEAD_LETTER, 1000, T("\xff not json"), &slot), TASKKEY_OK);
    ck_assert_uint_eq(slot, keyslot("\xff not json", 10));
}
END_TEST

START_TEST(missing_key_dead_letter)
{
    unsigned slot;
    ck_assert_int_eq(run("key", CONF_MISSING_DEAD_LETTER, 1000, T("[1,2]"), &slot), TASKKEY_NOT_OBJECT);
    ck_assert_int_eq(run("key", CONF_MISSING_DEAD_LETTER, 1000, T("{\"id\":1}"), &slot), TASKKEY_NO_KEY);
    ck_assert_int_eq(run("key", CONF_MISSING_DEAD_LETTER, 1000, T("{\"key\":\"a\",\"key\":\"b\"}"), &slot), TASKKEY_DUPLICATE_KEY);
    ck_assert_int_eq(run("key", CONF_MISSING_DEAD_LETTER, 1000, T("{\"key\":null}"), &slot), TASKKEY_BAD_KEY_TYPE);
    ck_assert_int_eq(run("key", CONF_MISSING_DEAD_LETTER, 1000, T("{\"key\":"), &slot), TASKKEY_INVALID_JSON);
}
END_TEST

START_TEST(missing_key_payload)
{
    unsigned slot;
    const char *cases[] = { "[1,2]", "{\"id\":1}", "{\"key\":\"a\",\"key\":\"b\"}", "{\"key\":{}}" };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq(run("key", CONF_MISSING_PAYLOAD, 1000, cases[i], strlen(cases[i]), &slot), TASKKEY_OK);
        ck_assert_uint_eq(slot, keyslot(cases[i], strlen(cases[i])));
    }
    /* Invalid JSON is never routed by payload. */
    ck_assert_int_eq(run("key", CONF_MISSING_PAYLOAD, 1000, T("{\"key\""), &slot), TASKKEY_INVALID_JSON);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, key_field_routes_by_key);
    tcase_add_test(tc, size_rules_come_first);
    tcase_add_test(tc, empty_key_field_hashes_whole_task);
    tcase_add_test(tc, missing_key_dead_letter);
    tcase_add_test(tc, missing_key_payload);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
