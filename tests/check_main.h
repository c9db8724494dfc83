/*
 * check_main: the main() every unit test file ends with: run one suite,
 * print Check's summary, exit non-zero on any failure; and the one way the
 * suites make a case per test.
 */
#ifndef SLOTD_TEST_CHECK_MAIN_H
#define SLOTD_TEST_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

/* A test case of its own per test, so that CK_RUN_CASE=<name> runs one
 * alone: its name, its test, and its timeout in seconds. */
struct check_case {
    const char  *name;
    const TTest *test;
    int          timeout;
};

static inline void check_cases(Suite *s, const struct check_case *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        TCase *tc = tcase_create(c[i].name);
        tcase_set_timeout(tc, c[i].timeout);
        tcase_add_test(tc, c[i].test);
        suite_add_tcase(s, tc);
    }
}

/* check_cases over an array. */
#define CHECK_CASES(s, cases) check_cases((s), (cases), sizeof (cases) / sizeof (cases)[0])

#define CHECK_MAIN(make_suite)                          \
    int main(void)                                      \
    {                                                   \
        SRunner *sr = srunner_create(make_suite());     \
        srunner_run_all(sr, CK_NORMAL);                 \
        int failed = srunner_ntests_failed(sr);         \
        srunner_free(sr);                               \
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;    \
    }

#endif
