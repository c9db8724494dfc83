/*
 * Unit tests for replyarena: hiredis's own reader, once with its default
 * reply functions and once with the arena, must give the same trees for the
 * same bytes (known replies, random ones, fed whole or byte by byte); and in
 * a steady state the arena allocates nothing per reply.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include "check_main.h"
#include "testrng.h"
#include "replyarena.h"

/* Growable text for RESP built by the tests. */
struct text {
    char  *p;
    size_t len, cap;
};

static void put(struct text *t, const void *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1)
            cap *= 2;
        t->p = realloc(t->p, cap);
        ck_assert_ptr_nonnull(t->p);
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

#define PUTS(t, lit) put((t), (lit), sizeof(lit) - 1)

static void putf(struct text *t, const char *fmt, long long v)
{
    char buf[64];
    int n = snprintf(buf, sizeof buf, fmt, v);
    put(t, buf, (size_t)n);
}

static void bulk(struct text *t, const char *s, size_t n)
{
    putf(t, "$%lld\r\n", (long long)n);
    put(t, s, n);
    PUTS(t, "\r\n");
}

/* Same shape and bytes, recursively. */
static void same(const redisReply *want, const redisReply *got, const char *where)
{
    ck_assert_msg(got != NULL, "%s: no reply", where);
    ck_assert_msg(want->type == got->type, "%s: type %d, want %d", where, got->type, want->type);
    switch (want->type) {
    case REDIS_REPLY_INTEGER:
        ck_assert_msg(want->integer == got->integer, "%s: integer", where);
        break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        ck_assert_msg(want->len == got->len, "%s: len %zu, want %zu", where,
                      (size_t)got->len, (size_t)want->len);
        ck_assert_msg(memcmp(want->str, got->str, want->len) == 0, "%s: bytes", where);
        ck_assert_msg(got->str[got->len] == '\0', "%s: not NUL-terminated", where);
        break;
    case REDIS_REPLY_ARRAY:
        ck_assert_msg(want->elements == got->elements, "%s: %zu elements, want %zu", where,
                      (size_t)got->elements, (size_t)want->elements);
        for (size_t i = 0; i < want->elements; i++)
            same(want->element[i], got->element[i], where);
        break;
    default:
        break;
    }
}

/*
 * Parses text with both readers, compares, and frees. step 0 feeds it whole;
 * otherwise step bytes at a time, asking for replies after each feed. Returns
 * the number of replies.
 */
static int parse_both(struct replyarena *a, const char *text, size_t len, size_t step,
                      const char *where)
{
    redisReader *ref = redisReaderCreate();
    redisReader *got = redisReaderCreate();
    int n = 0;
    ck_assert_ptr_nonnull(ref);
    ck_assert_ptr_nonnull(got);
    replyarena_attach(a, got);
    ck_assert_int_eq(redisReaderFeed(ref, text, len), REDIS_OK);
    size_t fed = 0;
    for (;;) {
        if (fed < len) {
            size_t k = step == 0 || len - fed < step ? len - fed : step;
            ck_assert_int_eq(redisReaderFeed(got, text + fed, k), REDIS_OK);
            fed += k;
        }
        void *g = NULL;
        ck_assert_int_eq(redisReaderGetReply(got, &g), REDIS_OK);
        if (g == NULL) {
            if (fed < len)
                continue;
            break;
        }
        void *r = NULL;
        ck_assert_int_eq(redisReaderGetReply(ref, &r), REDIS_OK);
        ck_assert_msg(r != NULL, "%s: the arena reader made up a reply", where);
        same(r, g, where);
        freeReplyObject(r);
        got->fn->freeObject(g);
        n++;
    }
    void *r = NULL;
    ck_assert_int_eq(redisReaderGetReply(ref, &r), REDIS_OK);
    ck_assert_msg(r == NULL, "%s: the arena reader missed a reply", where);
    redisReaderFree(ref);
    redisReaderFree(got);
    return n;
}

START_TEST(known_replies)
{
    struct replyarena a;
    struct text t = { NULL, 0, 0 };
    replyarena_init(&a);
    PUTS(&t, "+OK\r\n-ERR wrong type\r\n:0\r\n:-9223372036854775808\r\n");
    bulk(&t, "", 0);
    PUTS(&t, "$-1\r\n*0\r\n*-1\r\n");
    bulk(&t, "a\0b\r\nc", 6);
    /* A nested array, as EXEC answers: statuses, integers, nil. */
    PUTS(&t, "*4\r\n+QUEUED\r\n:3\r\n*2\r\n$-1\r\n*1\r\n:7\r\n$3\r\nend\r\n");
    for (size_t step = 0; step < 4; step++)
        ck_assert_int_eq(parse_both(&a, t.p, t.len, step, "known"), 10);
    replyarena_free(&a);
    free(t.p);
}
END_TEST

/* An LRANGE of a thousand tasks, again and again: no malloc after the first. */
START_TEST(a_steady_batch_costs_no_malloc)
{
    struct replyarena a;
    struct text t = { NULL, 0, 0 };
    char task[128];
    replyarena_init(&a);
    PUTS(&t, "*1000\r\n");
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(task, sizeof task,
                         "{\"id\":%d,\"key\":\"user:%d\",\"payload\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
                         i, i * 7 % 10000);
        bulk(&t, task, (size_t)n);
    }
    ck_assert_int_eq(parse_both(&a, t.p, t.len, 0, "batch"), 1);
    uint64_t after_first = a.mallocs;
    ck_assert_uint_gt(after_first, 0);
    if (!replyarena_reuses_memory()) {
        /* AddressSanitizer: memory is freed at each rewind, on purpose. */
        replyarena_free(&a);
        free(t.p);
        return;
    }
    for (int round = 0; round < 50; round++)
        ck_assert_int_eq(parse_both(&a, t.p, t.len, 0, "batch"), 1);
    ck_assert_msg(a.mallocs <= after_first + 1, "%llu chunks for 51 batches",
                  (unsigned long long)a.mallocs);
    uint64_t steady = a.mallocs;
    for (int round = 0; round < 50; round++)
        ck_assert_int_eq(parse_both(&a, t.p, t.len, 0, "batch"), 1);
    ck_assert_uint_eq(a.mallocs, steady);
    replyarena_free(&a);
    free(t.p);
}
END_TEST

/* A reply larger than what is kept: right, and its memory given back. */
START_TEST(a_huge_reply_then_small_ones)
{
    struct replyarena a;
    struct text t = { NULL, 0, 0 };
    size_t big = 3u << 20;
    char *s = malloc(big);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < big; i++)
        s[i] = (char)(i * 131 + 7);
    replyarena_init(&a);
    PUTS(&t, "*3\r\n");
    bulk(&t, s, big);
    bulk(&t, s, REPLYARENA_CHUNK_MIN + 1);
    bulk(&t, "x", 1);
    ck_assert_int_eq(parse_both(&a, t.p, t.len, 0, "huge"), 1);
    ck_assert_int_eq(parse_both(&a, t.p, t.len, 65536, "huge in pieces"), 1);
    uint64_t m = a.mallocs;
    t.len = 0;
    PUTS(&t, "+OK\r\n:1\r\n");
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(parse_both(&a, t.p, t.len, 0, "small"), 2);
    if (replyarena_reuses_memory())
        ck_assert_uint_eq(a.mallocs, m);
    replyarena_free(&a);
    free(t.p);
    free(s);
}
END_TEST

/* Random trees of every RESP2 type, up to 4 deep. */
static uint64_t rng;
static uint32_t rnd(uint32_t n) { return testrng_below(&rng, n); }

static void random_reply(struct text *t, int depth)
{
    char s[300];
    switch (rnd(depth < 4 ? 7 : 6)) {
    case 0: PUTS(t, "+OK\r\n"); break;
    case 1: PUTS(t, "-ERR no\r\n"); break;
    case 2: putf(t, ":%lld\r\n", (long long)rnd(UINT32_MAX) - (long long)INT32_MAX); break;
    case 3: PUTS(t, "$-1\r\n"); break;
    case 4: PUTS(t, "*-1\r\n"); break;
    case 5: {
        size_t n = rnd(sizeof s);
        for (size_t i = 0; i < n; i++)
            s[i] = (char)rnd(256);
        bulk(t, s, n);
        break;
    }
    default: {
        uint32_t n = rnd(12);
        putf(t, "*%lld\r\n", n);
        for (uint32_t i = 0; i < n; i++)
            random_reply(t, depth + 1);
        break;
    }
    }
}

START_TEST(random_replies_match_hiredis)
{
    struct replyarena a;
    struct text t = { NULL, 0, 0 };
    rng = 0x9e3779b97f4a7c15ull + (uint64_t)_i;
    replyarena_init(&a);
    for (int round = 0; round < 300; round++) {
        t.len = 0;
        int n = 1 + (int)rnd(5);
        for (int i = 0; i < n; i++)
            random_reply(&t, 0);
        ck_assert_int_eq(parse_both(&a, t.p, t.len, round % 3 ? 0 : 1 + rnd(40), "random"), n);
    }
    replyarena_free(&a);
    free(t.p);
}
END_TEST

/* A reader freed in the middle of a reply (a connection lost) frees it. */
START_TEST(a_reader_freed_mid_reply)
{
    struct replyarena a;
    replyarena_init(&a);
    for (int i = 0; i < 3; i++) {
        redisReader *r = redisReaderCreate();
        ck_assert_ptr_nonnull(r);
        replyarena_attach(&a, r);
        const char *half = "*3\r\n$3\r\nabc\r\n*2\r\n:1\r\n";
        ck_assert_int_eq(redisReaderFeed(r, half, strlen(half)), REDIS_OK);
        void *g = NULL;
        ck_assert_int_eq(redisReaderGetReply(r, &g), REDIS_OK);
        ck_assert_ptr_null(g);
        redisReaderFree(r);
    }
    /* And the arena still serves a whole one. */
    ck_assert_int_eq(parse_both(&a, "*1\r\n$1\r\nz\r\n", 11, 0, "after"), 1);
    replyarena_free(&a);
    replyarena_free(NULL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("replyarena");
    TCase *tc = tcase_create("replyarena");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, known_replies);
    tcase_add_test(tc, a_steady_batch_costs_no_malloc);
    tcase_add_test(tc, a_huge_reply_then_small_ones);
    tcase_add_loop_test(tc, random_replies_match_hiredis, 0, 4);
    tcase_add_test(tc, a_reader_freed_mid_reply);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
