/* Unit tests for backoff: doubling, cap, jitter bounds, reset. */
#include <check.h>

#include "backoff.h"
#include "check_main.h"

START_TEST(doubles_up_to_the_cap)
{
    struct backoff b = { 0, 0, 0 };
    backoff_init(&b, 100, 5000);
    uint32_t want[] = { 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000 };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_uint_eq(backoff_next(&b, 0), want[i]);
}
END_TEST

START_TEST(jitter_takes_at_most_a_quarter)
{
    struct backoff b = { 0, 0, 0 };
    backoff_init(&b, 1000, 1000);
    for (uint32_t r = 0; r < 5000; r += 7) {
        uint32_t d = backoff_next(&b, r * 2654435761u);
        ck_assert_uint_ge(d, 750);
        ck_assert_uint_le(d, 1000);
    }
}
END_TEST

START_TEST(no_overflow_after_many_failures)
{
    struct backoff b = { 0, 0, 0 };
    backoff_init(&b, 60000, 600000);
    for (int i = 0; i < 100000; i++)
        ck_assert_uint_le(backoff_next(&b, 0), 600000);
    ck_assert_uint_eq(backoff_next(&b, 0), 600000);
}
END_TEST

START_TEST(reset_starts_over_and_init_keeps_count)
{
    struct backoff b = { 0, 0, 0 };
    backoff_init(&b, 10, 1000);
    backoff_next(&b, 0);
    backoff_next(&b, 0);
    backoff_init(&b, 10, 1000);     /* a reload keeps the failures counted */
    ck_assert_uint_eq(backoff_next(&b, 0), 40);
    backoff_reset(&b);
    ck_assert_uint_eq(backoff_next(&b, 0), 10);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("backoff");
    TCase *tc = tcase_create("backoff");
    tcase_add_test(tc, doubles_up_to_the_cap);
    tcase_add_test(tc, jitter_takes_at_most_a_quarter);
    tcase_add_test(tc, no_overflow_after_many_failures);
    tcase_add_test(tc, reset_starts_over_and_init_keeps_count);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
