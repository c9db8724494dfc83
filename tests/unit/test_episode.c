/* Unit tests for episode: first, quiet, again with a count, end. */
#include <check.h>
#include <stdint.h>

#include "episode.h"
#include "check_main.h"

START_TEST(said_once_then_once_per_interval_with_a_count)
{
    struct episode e = { 0 };
    uint64_t rep = 0;
    ck_assert_int_eq(episode_hit(&e, 1000, 60000, &rep), EPISODE_FIRST);
    for (uint64_t t = 1001; t < 61000; t += 7)
        ck_assert_int_eq(episode_hit(&e, t, 60000, &rep), EPISODE_QUIET);
    /* 1001, 1008, ... < 61000: 8572 quiet hits, and this one. */
    ck_assert_int_eq(episode_hit(&e, 61000, 60000, &rep), EPISODE_AGAIN);
    ck_assert_uint_eq(rep, 8572 + 1);
    ck_assert_int_eq(episode_hit(&e, 61001, 60000, &rep), EPISODE_QUIET);
    ck_assert_int_eq(episode_hit(&e, 121000, 60000, &rep), EPISODE_AGAIN);
    ck_assert_uint_eq(rep, 2);
}
END_TEST

START_TEST(end_says_how_long_and_how_often_then_starts_over)
{
    struct episode e = { 0 };
    uint64_t lasted = 0, total = 0;
    ck_assert_int_eq(episode_end(&e, 5, &lasted, &total), 0);
    episode_hit(&e, 100, 0, NULL);
    episode_hit(&e, 200, 0, NULL);
    episode_hit(&e, 300, 0, NULL);
    ck_assert_int_eq(episode_end(&e, 1100, &lasted, &total), 1);
    ck_assert_uint_eq(lasted, 1000);
    ck_assert_uint_eq(total, 3);
    ck_assert_int_eq(episode_end(&e, 1200, &lasted, &total), 0);
    ck_assert_int_eq(episode_hit(&e, 1300, 0, NULL), EPISODE_FIRST);
}
END_TEST

START_TEST(zero_interval_is_a_minute_and_a_clock_going_back_is_quiet)
{
    struct episode e = { 0 };
    uint64_t rep = 0;
    ck_assert_int_eq(episode_hit(&e, 10000, 0, &rep), EPISODE_FIRST);
    ck_assert_int_eq(episode_hit(&e, 10000 + EPISODE_INTERVAL_MS - 1, 0, &rep), EPISODE_QUIET);
    ck_assert_int_eq(episode_hit(&e, 5, 0, &rep), EPISODE_QUIET);
    ck_assert_int_eq(episode_hit(&e, 10000 + EPISODE_INTERVAL_MS, 0, &rep), EPISODE_AGAIN);
    ck_assert_uint_eq(rep, 3);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("episode");
    TCase *tc = tcase_create("episode");
    tcase_add_test(tc, said_once_then_once_per_interval_with_a_count);
    tcase_add_test(tc, end_says_how_long_and_how_often_then_starts_over);
    tcase_add_test(tc, zero_interval_is_a_minute_and_a_clock_going_back_is_quiet);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
