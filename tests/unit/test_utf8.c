/* Unit tests for utf8: the boundaries of RFC 3629's table. */
#include <check.h>
#include <string.h>

#include "check_main.h"
#include "utf8.h"

static size_t seq(const char *s, size_t n)
{
    return utf8_seq((const unsigned char *)s, (const unsigned char *)s + n);
}

START_TEST(valid_sequences)
{
    ck_assert_uint_eq(seq("\xc2\x80", 2), 2);            /* U+0080 */
    ck_assert_uint_eq(seq("\xdf\xbf", 2), 2);            /* U+07FF */
    ck_assert_uint_eq(seq("\xe0\xa0\x80", 3), 3);        /* U+0800 */
    ck_assert_uint_eq(seq("\xed\x9f\xbf", 3), 3);        /* U+D7FF */
    ck_assert_uint_eq(seq("\xee\x80\x80", 3), 3);        /* U+E000 */
    ck_assert_uint_eq(seq("\xef\xbf\xbd", 3), 3);        /* U+FFFD */
    ck_assert_uint_eq(seq("\xf0\x90\x80\x80", 4), 4);    /* U+10000 */
    ck_assert_uint_eq(seq("\xf4\x8f\xbf\xbf", 4), 4);    /* U+10FFFF */
    ck_assert_uint_eq(seq("\xc3\xa9xyz", 5), 2);         /* only the first */
}
END_TEST

START_TEST(invalid_sequences)
{
    ck_assert_uint_eq(seq("A", 1), 0);                   /* ASCII: the caller's */
    ck_assert_uint_eq(seq("\x80", 1), 0);                /* a lone continuation */
    ck_assert_uint_eq(seq("\xc0\x80", 2), 0);            /* overlong NUL */
    ck_assert_uint_eq(seq("\xc1\xbf", 2), 0);            /* overlong */
    ck_assert_uint_eq(seq("\xe0\x9f\xbf", 3), 0);        /* overlong */
    ck_assert_uint_eq(seq("\xed\xa0\x80", 3), 0);        /* U+D800, a surrogate */
    ck_assert_uint_eq(seq("\xf0\x8f\xbf\xbf", 4), 0);    /* overlong */
    ck_assert_uint_eq(seq("\xf4\x90\x80\x80", 4), 0);    /* above U+10FFFF */
    ck_assert_uint_eq(seq("\xf5\x80\x80\x80", 4), 0);
    ck_assert_uint_eq(seq("\xff", 1), 0);
    ck_assert_uint_eq(seq("\xc3", 1), 0);                /* cut by the end */
    ck_assert_uint_eq(seq("\xe2\x82", 2), 0);
    ck_assert_uint_eq(seq("\xe2\x28\xa1", 3), 0);        /* a bad second byte */
    ck_assert_uint_eq(seq("\xf0\x90\x28\x80", 4), 0);    /* a bad third byte */
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("utf8");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, valid_sequences);
    tcase_add_test(tc, invalid_sequences);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
