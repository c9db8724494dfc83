/*
 * Integration: keyslot() equals a real cluster-enabled redis-server's
 * CLUSTER KEYSLOT for edge cases, tagged keys and random binary keys.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "harness.h"
#include "keyslot.h"

static struct harness_redis oracle;
static redisContext *c;

static void setup(void)
{
    ck_assert_int_eq(harness_redis_start(&oracle, "cluster-enabled yes\ncluster-config-file nodes.conf\n"), 0);
    c = harness_redis_connect(&oracle);
    ck_assert_ptr_nonnull(c);
}

static void teardown(void)
{
    redisFree(c);
    harness_redis_stop(&oracle);
}

/* Asks about n keys in one pipeline. */
static void compare(char **keys, size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *argv[] = { "CLUSTER", "KEYSLOT", keys[i] };
        size_t argvlen[] = { 7, 7, lens[i] };
        redisAppendCommandArgv(c, 3, argv, argvlen);
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *r;
        ck_assert_int_eq(redisGetReply(c, (void **)&r), REDIS_OK);
        ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
        ck_assert_msg((long long)keyslot(keys[i], lens[i]) == r->integer,
                      "key %zu ('%.*s'): keyslot %u, Redis %lld", i, (int)lens[i], keys[i],
                      keyslot(keys[i], lens[i]), r->integer);
        freeReplyObject(r);
    }
}

START_TEST(edge_cases)
{
    static const char *const k[] = { "", "{}", "{{a}}", "a{}{b}", "{a}{b}", "{", "}", "}{", "{a",
                                     "a}", "{user1000}.following", "{user1000}.followers", "foo",
                                     "{}{a}", "{{}}", "x{y}z{w}", "{\xff}", "\xff\xfe" };
    char *keys[32];
    size_t lens[32], n = sizeof k / sizeof k[0];
    for (size_t i = 0; i < n; i++) {
        keys[i] = (char *)(uintptr_t)k[i];
        lens[i] = strlen(k[i]);
    }
    /* Keys with NUL bytes. */
    keys[n] = "a\0b";
    lens[n++] = 3;
    keys[n] = "{\0}z";
    lens[n++] = 4;
    keys[n] = "\0";
    lens[n++] = 1;
    compare(keys, lens, n);
}
END_TEST

START_TEST(tagged_and_plain_keys)
{
    enum { N = 10000 };
    static char buf[2 * N][32];
    static char *keys[2 * N];
    static size_t lens[2 * N];
    for (int i = 0; i < N; i++) {
        lens[2 * i] = (size_t)snprintf(buf[2 * i], 32, "user:%d", i);
        lens[2 * i + 1] = (size_t)snprintf(buf[2 * i + 1], 32, "{user:%d}.x", i);
        keys[2 * i] = buf[2 * i];
        keys[2 * i + 1] = buf[2 * i + 1];
    }
    compare(keys, lens, 2 * N);
}
END_TEST

START_TEST(random_binary_keys)
{
    enum { N = 20000 };
    static char buf[N][40];
    static char *keys[N];
    static size_t lens[N];
    uint32_t x = 0xC0FFEEu;
    for (int i = 0; i < N; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        lens[i] = x % 40;
        for (size_t j = 0; j < lens[i]; j++) {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5;
            /* Braces often, so tags of every shape appear. */
            buf[i][j] = (x & 7) == 0 ? '{' : (x & 7) == 1 ? '}' : (char)(x >> 8);
        }
        keys[i] = buf[i];
    }
    compare(keys, lens, N);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("keyslot_oracle");
    TCase *tc = tcase_create("oracle");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, edge_cases);
    tcase_add_test(tc, tagged_and_plain_keys);
    tcase_add_test(tc, random_binary_keys);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
