/*
 * Unit tests for resp: known encodings, and the same bytes as hiredis's own
 * redisFormatCommandArgv for random commands, appended one after another.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "check_main.h"
#include "testrng.h"
#include "resp.h"

START_TEST(known_encodings)
{
    struct resp_buf b = { NULL, 0, 0 };
    const char *ping[] = { "PING" };
    ck_assert_int_eq(resp_append_command(&b, 1, ping, NULL), 0);
    ck_assert_uint_eq(b.len, 14);
    ck_assert_int_eq(memcmp(b.p, "*1\r\n$4\r\nPING\r\n", 14), 0);
    ck_assert_int_eq(b.p[b.len], '\0');        /* hiredis reads one byte past */

    b.len = 0;
    const char *set[] = { "SET", "k\r\n", "" };
    const size_t setlen[] = { 3, 3, 0 };
    ck_assert_int_eq(resp_append_command(&b, 3, set, setlen), 0);
    const char want[] = "*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$0\r\n\r\n";
    ck_assert_uint_eq(b.len, sizeof want - 1);
    ck_assert_int_eq(memcmp(b.p, want, b.len), 0);

    b.len = 0;
    const char bin[] = { 'a', '\0', 'b' };
    const char *args[] = { "LPUSH", bin };
    const size_t lens[] = { 5, 3 };
    ck_assert_int_eq(resp_append_command(&b, 2, args, lens), 0);
    ck_assert_int_eq(memcmp(b.p, "*2\r\n$5\r\nLPUSH\r\n$3\r\na\0b\r\n", b.len), 0);
    ck_assert_uint_eq(b.len, 24);

    b.len = 0;
    ck_assert_int_eq(resp_append_command(&b, 0, NULL, NULL), 0);
    ck_assert_int_eq(memcmp(b.p, "*0\r\n", 4), 0);
    ck_assert_int_eq(resp_append_command(&b, -1, NULL, NULL), -1);
    ck_assert_uint_eq(b.len, 4);
    resp_buf_free(&b);
    ck_assert_ptr_null(b.p);
    resp_buf_free(&b);
}
END_TEST

static uint64_t rng;
static uint32_t rnd(uint32_t n) { return testrng_below(&rng, n); }

START_TEST(same_bytes_as_hiredis)
{
    static const size_t sizes[] = { 0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 10000, 70000 };
    static char pool[70000];
    struct resp_buf b = { NULL, 0, 0 };
    size_t total = 0;
    char *all = NULL;
    rng = 0x2545f4914f6cdd1dull + (uint64_t)_i;
    for (size_t i = 0; i < sizeof pool; i++)
        pool[i] = (char)rnd(256);
    for (int round = 0; round < 400; round++) {
        int argc = (int)rnd(round % 10 == 0 ? 1500 : 12);
        const char **argv = calloc((size_t)argc + 1, sizeof *argv);
        size_t *lens = calloc((size_t)argc + 1, sizeof *lens);
        ck_assert_ptr_nonnull(argv);
        ck_assert_ptr_nonnull(lens);
        for (int k = 0; k < argc; k++) {
            lens[k] = rnd(4) ? rnd(300) : sizes[rnd(sizeof sizes / sizeof sizes[0])];
            argv[k] = pool + rnd((uint32_t)(sizeof pool - lens[k] + 1));
        }
        char *want = NULL;
        int n = redisFormatCommandArgv(&want, argc, argv, lens);
        ck_assert_int_ge(n, 0);
        size_t before = b.len;
        ck_assert_int_eq(resp_append_command(&b, argc, argv, lens), 0);
        ck_assert_uint_eq(b.len - before, (size_t)n);
        ck_assert_msg(memcmp(b.p + before, want, (size_t)n) == 0, "round %d differs", round);
        all = realloc(all, total + (size_t)n);
        ck_assert_ptr_nonnull(all);
        memcpy(all + total, want, (size_t)n);
        total += (size_t)n;
        free(want);
        free(argv);
        free(lens);
        if (rnd(8) == 0) {
            /* Reused from empty, as conn does per command. */
            ck_assert_int_eq(memcmp(b.p, all, total), 0);
            b.len = 0;
            total = 0;
        }
    }
    ck_assert_uint_eq(b.len, total);
    ck_assert_int_eq(memcmp(b.p, all, total), 0);
    free(all);
    resp_buf_free(&b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("resp");
    TCase *tc = tcase_create("resp");
    tcase_add_test(tc, known_encodings);
    tcase_add_loop_test(tc, same_bytes_as_hiredis, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
