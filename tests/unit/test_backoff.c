/* Unit tests for backoff: doubling, cap, jitter bounds, reset. */
#include <check.h>
#include <stdint.h>

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

START_TEST(jitter_known_answers)
{
    /* Delay 100: up to 25 off, rnd modulo 26. */
    uint32_t rnd[] = { 0, 1, 25, 26, 27, UINT32_MAX };
    uint32_t want[] = { 100, 99, 75, 100, 99, 100 - UINT32_MAX % 26 };
    for (size_t i = 0; i < sizeof rnd / sizeof rnd[0]; i++) {
        struct backoff b = { 0, 0, 0 };
        backoff_init(&b, 100, 100);
        ck_assert_uint_eq(backoff_next(&b, rnd[i]), want[i]);
    }
    /* Below 4 ms a quarter rounds to nothing: no jitter. */
    struct backoff b = { 0, 0, 0 };
    backoff_init(&b, 3, 3);
    ck_assert_uint_eq(backoff_next(&b, 12345), 3);
}
END_TEST

START_TEST(bounds_are_sanitised)
{
    struct backoff b = { 0, 0, 0 };
    backoff_init(&b, 0, 0);                 /* min 0 is 1; max below min is min */
    ck_assert_uint_eq(b.min_ms, 1);
    ck_assert_uint_eq(b.max_ms, 1);
    ck_assert_uint_eq(backoff_next(&b, 0), 1);
    backoff_init(&b, 500, 100);
    ck_assert_uint_eq(b.max_ms, 500);
    ck_assert_uint_eq(backoff_next(&b, 0), 500);
}
END_TEST

START_TEST(extremes_do_not_overflow)
{
    /* min_ms * 2 already exceeds 32 bits. */
    struct backoff b = { 0, 0, 0 };
    backoff_init(&b, UINT32_MAX, UINT32_MAX);
    for (int i = 0; i < 40; i++)
        ck_assert_uint_eq(backoff_next(&b, 0), UINT32_MAX);
    ck_assert_uint_eq(backoff_next(&b, UINT32_MAX), UINT32_MAX - UINT32_MAX % (UINT32_MAX / 4 + 1));
    /* Shifts of 31, 32 and far more; a counter that must not wrap to 0. */
    backoff_init(&b, 1, UINT32_MAX);
    b.attempt = 31;
    ck_assert_uint_eq(backoff_next(&b, 0), 1u << 31);
    ck_assert_uint_eq(backoff_next(&b, 0), UINT32_MAX);
    b.attempt = 1000;
    ck_assert_uint_eq(backoff_next(&b, 0), UINT32_MAX);
    b.attempt = UINT32_MAX;
    ck_assert_uint_eq(backoff_next(&b, 0), UINT32_MAX);
    ck_assert_uint_eq(b.attempt, UINT32_MAX);
    /* A struct never given bounds does not divide or shift out of range. */
    struct backoff z = { 0, 0, 40 };
    ck_assert_uint_eq(backoff_next(&z, 7), 0);
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
    tcase_add_test(tc, jitter_known_answers);
    tcase_add_test(tc, bounds_are_sanitised);
    tcase_add_test(tc, extremes_do_not_overflow);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
