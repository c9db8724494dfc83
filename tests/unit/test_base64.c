/* Unit tests for base64: the RFC 4648 test vectors, every byte value, and
 * what the decoder refuses. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "check_main.h"

static void known(const char *bytes, const char *text)
{
    size_t n = 0;
    char *e = base64_encode(bytes, strlen(bytes));
    ck_assert_str_eq(e, text);
    ck_assert_uint_eq(strlen(e), BASE64_LEN(strlen(bytes)));
    char *d = base64_decode(text, strlen(text), &n);
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(n, strlen(bytes));
    ck_assert_int_eq(memcmp(d, bytes, n), 0);
    ck_assert_int_eq(d[n], '\0');
    free(e);
    free(d);
}

START_TEST(rfc4648_vectors)
{
    known("", "");
    known("f", "Zg==");
    known("fo", "Zm8=");
    known("foo", "Zm9v");
    known("foob", "Zm9vYg==");
    known("fooba", "Zm9vYmE=");
    known("foobar", "Zm9vYmFy");
}
END_TEST

START_TEST(every_byte_round_trips)
{
    unsigned char all[256];
    size_t n = 0;
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    char *e = base64_encode(all, sizeof all);
    ck_assert_str_eq(e + BASE64_LEN(255), "/w==");      /* the last byte, 0xff */
    char *d = base64_decode(e, strlen(e), &n);
    ck_assert_uint_eq(n, sizeof all);
    ck_assert_int_eq(memcmp(d, all, n), 0);
    free(e);
    free(d);
}
END_TEST

START_TEST(decode_refuses_what_is_not_base64)
{
    size_t n;
    const char *bad[] = { "Zg=", "Zg", "Zm9v!A==", "Z===", "Zg=a", "Zg==Zg==", "Zm 9", "@@@@" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(base64_decode(bad[i], strlen(bad[i]), &n) == NULL, "accepted '%s'", bad[i]);
    ck_assert_ptr_null(base64_decode("Zg\0=", 4, &n));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("base64");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, rfc4648_vectors);
    tcase_add_test(tc, every_byte_round_trips);
    tcase_add_test(tc, decode_refuses_what_is_not_base64);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
