/* Unit tests for deadletter: entries carry the reason and the exact bytes. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "deadletter.h"
#include "check_main.h"

static void round_trip(const char *task, size_t len, const char *want_field)
{
    size_t elen = 0, back_len = 0;
    char *reason = NULL;
    char *e = deadletter_format("no_key", "the task has no key field", task, len, 1234, &elen);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(strlen(e), elen);
    ck_assert_msg(strstr(e, want_field) != NULL, "entry %s lacks %s", e, want_field);
    ck_assert_msg(strstr(e, "\"reason\":\"no_key\"") != NULL, "entry %s", e);
    ck_assert_msg(strstr(e, "\"at_ms\":1234") != NULL, "entry %s", e);
    char *back = deadletter_parse(e, elen, &back_len, &reason);
    ck_assert_ptr_nonnull(back);
    ck_assert_uint_eq(back_len, len);
    ck_assert_int_eq(memcmp(back, task, len), 0);
    ck_assert_str_eq(reason, "no_key");
    free(back);
    free(reason);
    free(e);
}

START_TEST(utf8_task_travels_as_text)
{
    const char t[] = "{\"id\":7,\"name\":\"caf\xc3\xa9\"}";
    round_trip(t, sizeof t - 1, "\"task\":");
}
END_TEST

START_TEST(nul_bytes_survive)
{
    const char t[] = "a\0b\0";
    round_trip(t, 4, "\"task\":\"a\\u0000b\\u0000\"");
}
END_TEST

START_TEST(binary_task_travels_as_base64)
{
    const char t[] = "\xff\xfe\x00\x01\x80 binary";
    round_trip(t, sizeof t - 1, "\"task_base64\":");
    /* Every length mod 3, for the padding. */
    round_trip("\xff", 1, "\"task_base64\":\"/w==\"");
    round_trip("\xff\xff", 2, "\"task_base64\":\"//8=\"");
    round_trip("\xff\xff\xff", 3, "\"task_base64\":\"////\"");
}
END_TEST

START_TEST(empty_task)
{
    round_trip("", 0, "\"task\":\"\"");
}
END_TEST

START_TEST(parse_rejects_non_entries)
{
    size_t n;
    ck_assert_ptr_null(deadletter_parse("not json", 8, &n, NULL));
    ck_assert_ptr_null(deadletter_parse("{\"reason\":\"x\"}", 14, &n, NULL));
    ck_assert_ptr_null(deadletter_parse("{\"task_base64\":\"@@@@\"}", 22, &n, NULL));
    ck_assert_ptr_null(deadletter_parse("{\"task_base64\":\"abc\"}", 21, &n, NULL));
}
END_TEST

START_TEST(parse_follows_the_reading_rule)
{
    /* "task_base64", when there, has the exact bytes (bytes.h). */
    size_t n = 0;
    const char e[] = "{\"reason\":\"x\",\"task\":\"\xef\xbf\xbd\",\"task_base64\":\"/w==\"}";
    char *t = deadletter_parse(e, sizeof e - 1, &n, NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq((unsigned char)t[0], 0xff);
    free(t);
}
END_TEST

START_TEST(an_entry_is_never_much_larger_than_base64_of_its_task)
{
    /* Control characters escape to six bytes each: such a task travels as
     * base64 instead, so an entry stays within about 4/3 of its task. */
    enum { N = 100000 };
    char *task = malloc(N);
    size_t len = 0, n = 0;
    ck_assert_ptr_nonnull(task);
    memset(task, 0x01, N);
    char *e = deadletter_format("invalid_json", "detail", task, N, 1, &len);
    ck_assert_ptr_nonnull(e);
    ck_assert_msg(len <= N / 3 * 4 + 4 + 1024, "entry of %zu bytes for a task of %d", len, N);
    ck_assert_ptr_nonnull(strstr(e, "\"task_base64\""));
    char *back = deadletter_parse(e, len, &n, NULL);
    ck_assert_ptr_nonnull(back);
    ck_assert_uint_eq(n, N);
    ck_assert_int_eq(memcmp(back, task, N), 0);
    free(back);
    free(e);
    free(task);
}
END_TEST

START_TEST(a_detail_that_is_not_utf8_is_kept)
{
    /* A worker's stderr may be any bytes: the entry is made all the same. */
    size_t len = 0;
    char *e = deadletter_format("failed", "exit 1; stderr: \xff\xfe", "{}", 2, 1, &len);
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_nonnull(strstr(e, "\"detail_base64\""));
    free(e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("deadletter");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, utf8_task_travels_as_text);
    tcase_add_test(tc, nul_bytes_survive);
    tcase_add_test(tc, binary_task_travels_as_base64);
    tcase_add_test(tc, empty_task);
    tcase_add_test(tc, parse_rejects_non_entries);
    tcase_add_test(tc, parse_follows_the_reading_rule);
    tcase_add_test(tc, an_entry_is_never_much_larger_than_base64_of_its_task);
    tcase_add_test(tc, a_detail_that_is_not_utf8_is_kept);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
