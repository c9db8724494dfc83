/*
 * Integration: keyslot() equals a real cluster-enabled redis-server's
 * CLUSTER KEYSLOT for edge cases, tagged keys and random binary keys.
 * Redis is the oracle, so no expected value here is written by hand.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "harness.h"
#include "keyslot.h"

/* One key: any bytes, NUL included. */
struct key {
    const char *p;              /* borrowed */
    size_t      len;
};

/* A literal with its embedded NULs counted. */
#define K(lit) { (lit), sizeof(lit) - 1 }

static struct harness_redis oracle;
static redisContext *c;         /* owned: the connection to the oracle */

static void setup(void)
{
    ck_assert_int_eq(harness_redis_start(&oracle, "cluster-enabled yes\n"
                                                  "cluster-config-file nodes.conf\n"), 0);
    c = harness_redis_connect(&oracle);
    ck_assert_ptr_nonnull(c);
}

static void teardown(void)
{
    if (c)
        redisFree(c);
    c = NULL;
    harness_redis_stop(&oracle);
}

/* The first bytes of a key, printable, for a failure message. */
static const char *show(char *buf, size_t cap, const struct key *k)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < k->len && o + 5 < cap; i++) {
        unsigned char b = (unsigned char)k->p[i];
        if (b >= 0x20 && b < 0x7f && b != '\\') {
            buf[o++] = (char)b;
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[b >> 4];
            buf[o++] = hex[b & 15];
        }
    }
    buf[o] = '\0';
    return buf;
}

/* Asks about n keys in one pipeline (sent as argv, so binary keys arrive
 * intact), then compares each answer with keyslot(). */
static void compare(const struct key *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *argv[] = { "CLUSTER", "KEYSLOT", keys[i].p };
        size_t argvlen[] = { 7, 7, keys[i].len };
        ck_assert_int_eq(redisAppendCommandArgv(c, 3, argv, argvlen), REDIS_OK);
    }
    for (size_t i = 0; i < n; i++) {
        void *reply = NULL;
        ck_assert_msg(redisGetReply(c, &reply) == REDIS_OK, "reply %zu: %s", i, c->errstr);
        redisReply *r = reply;
        ck_assert_msg(r->type == REDIS_REPLY_INTEGER, "key %zu: reply type %d (%s)", i, r->type,
                      r->type == REDIS_REPLY_ERROR ? r->str : "");
        unsigned ours = keyslot(keys[i].p, keys[i].len);
        if ((long long)ours != r->integer) {
            char buf[200];
            ck_abort_msg("key %zu (%zu bytes, \"%s\"): keyslot %u, Redis %lld", i, keys[i].len,
                         show(buf, sizeof buf, &keys[i]), ours, r->integer);
        }
        freeReplyObject(r);
    }
}

START_TEST(edge_cases)
{
    static const struct key fixed[] = {
        K(""), K("{}"), K("{{a}}"), K("a{}{b}"), K("{a}{b}"), K("{"), K("}"), K("}{"),
        K("}{a}"), K("{a"), K("a}"), K("{}{a}"), K("{{}}"), K("{{}"), K("x{y}z{w}"),
        K("{user1000}.following"), K("{user1000}.followers"), K("foo"), K("123456789"),
        /* NUL and 0xFF, inside and outside tags, and as the tag. */
        K("\0"), K("a\0b"), K("{\0}z"), K("\0{a}"), K("{a\0b}c"), K("{\0"), K("\0}"),
        K("\xff"), K("\xff\xfe"), K("{\xff}"), K("\xff{}\xff"), K("{\xff\0}\xff"),
    };
    enum { NFIXED = sizeof fixed / sizeof fixed[0], NLONG = 8 };
    struct key keys[NFIXED + NLONG];
    memcpy(keys, fixed, sizeof fixed);
    size_t n = NFIXED;

    /* Long keys: plain, with a tag at the end, with a tag as long as the
     * key, and with "{}" first (no tag: the whole key counts). */
    enum { BIG = 1 << 20 };
    char *big = malloc(BIG);
    ck_assert_ptr_nonnull(big);
    memset(big, 'x', BIG);
    memcpy(big + BIG - 5, "{tag}", 5);
    keys[n++] = (struct key){ big, 1000 };
    keys[n++] = (struct key){ big, BIG };            /* tag at the very end */
    keys[n++] = (struct key){ big + BIG - 5, 5 };

    char *wide = malloc(BIG);                        /* "{" xxxx "}" */
    ck_assert_ptr_nonnull(wide);
    memset(wide, 'y', BIG);
    wide[0] = '{';
    wide[BIG - 1] = '}';
    keys[n++] = (struct key){ wide, BIG };
    keys[n++] = (struct key){ wide, BIG - 1 };       /* no closing brace */

    char *empty_tag = malloc(70000);
    ck_assert_ptr_nonnull(empty_tag);
    memset(empty_tag, 0xff, 70000);
    memcpy(empty_tag, "{}", 2);
    memcpy(empty_tag + 60000, "{b}", 3);
    keys[n++] = (struct key){ empty_tag, 70000 };
    keys[n++] = (struct key){ empty_tag + 1, 69999 };  /* "}" first, then {b} */
    keys[n++] = (struct key){ empty_tag + 2, 69998 };  /* only {b} */

    compare(keys, n);
    free(empty_tag);
    free(wide);
    free(big);
}
END_TEST

START_TEST(tagged_and_plain_keys)
{
    enum { N = 10000, W = 24 };
    char *arena = malloc((size_t)2 * N * W);
    struct key *keys = malloc((size_t)2 * N * sizeof *keys);
    ck_assert_ptr_nonnull(arena);
    ck_assert_ptr_nonnull(keys);
    for (int i = 0; i < N; i++) {
        char *plain = arena + (size_t)(2 * i) * W, *tagged = plain + W;
        keys[2 * i] = (struct key){ plain, (size_t)snprintf(plain, W, "user:%d", i) };
        keys[2 * i + 1] = (struct key){ tagged, (size_t)snprintf(tagged, W, "{user:%d}.x", i) };
    }
    compare(keys, 2 * N);
    free(keys);
    free(arena);
}
END_TEST

/* xorshift32: a fixed seed gives the same keys on every run. */
static uint32_t next(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

START_TEST(random_binary_keys)
{
    enum { N = 20000, MAXLEN = 512 };
    char *arena = malloc((size_t)N * MAXLEN);
    struct key *keys = malloc(N * sizeof *keys);
    ck_assert_ptr_nonnull(arena);
    ck_assert_ptr_nonnull(keys);
    uint32_t x = 0xC0FFEEu;
    for (size_t i = 0; i < N; i++) {
        char *p = arena + i * MAXLEN;
        /* Mostly short keys, where braces meet often; now and then a long one. */
        size_t len = next(&x) % (i % 50 == 0 ? MAXLEN : 48);
        for (size_t j = 0; j < len; j++) {
            uint32_t v = next(&x);
            /* Braces one byte in four, so tags of every shape appear; the
             * rest is any byte, NUL and 0xFF included. */
            p[j] = (v & 7) == 0 ? '{' : (v & 7) == 1 ? '}' : (char)(unsigned char)(v >> 8);
        }
        keys[i] = (struct key){ p, len };
    }
    compare(keys, N);
    free(keys);
    free(arena);
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
