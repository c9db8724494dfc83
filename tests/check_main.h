/*
 * check_main: the main() every unit test file ends with: run one suite,
 * print Check's summary, exit non-zero on any failure.
 */
#ifndef SLOTD_TEST_CHECK_MAIN_H
#define SLOTD_TEST_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

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
