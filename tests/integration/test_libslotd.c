/*
 * Integration: libslotd's batched take and ack against a real Redis (no
 * slotd needed: the tests fill the worker's queue themselves). A take moves
 * exactly what LMOVE queue inflight RIGHT LEFT would, n times; an ack
 * removes exactly the acknowledged tasks, in any order, with equal bytes
 * counted, and never a task the worker took later (the zombie case: slotd
 * moved its in-flight list away meanwhile).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "harness.h"
#include "slotd_worker.h"

#define QUEUE "{lib}:queue:w1"
#define INFLIGHT "{lib}:inflight:w1"

static struct harness_redis redis;
static redisContext *c;

static void setup(void)
{
    ck_assert_int_eq(harness_redis_start(&redis, NULL), 0);
    c = harness_redis_connect(&redis);
    ck_assert_ptr_nonnull(c);
}

static void teardown(void)
{
    if (c)
        redisFree(c);
    c = NULL;
    harness_redis_stop(&redis);
}

static struct slotd_worker *open_worker(int prefetch)
{
    char err[256];
    struct slotd_worker_options o;
    memset(&o, 0, sizeof o);
    o.port = redis.port;
    o.ns = "lib";
    o.id = "w1";
    o.prefetch = prefetch;
    struct slotd_worker *w = slotd_worker_open(&o, err, sizeof err);
    ck_assert_msg(w != NULL, "%s", err);
    return w;
}

/* Producers' order: task i is "t<i>", pushed at the head. */
static void fill_queue(int from, int to)
{
    for (int i = from; i < to; i++)
        freeReplyObject(harness_cmd(c, "LPUSH " QUEUE " t%d", i));
}

/* The list, head to tail, as "a,b,c". */
static void list(const char *key, char *out, size_t cap)
{
    redisReply *r = harness_cmd(c, "LRANGE %s 0 -1", key);
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->elements && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? "," : "", r->element[i]->str);
    freeReplyObject(r);
}

START_TEST(take_moves_what_lmove_would_in_order)
{
    enum { N = 2600 };          /* more than one piece of the scripted LPUSH */
    static struct slotd_task t[N];
    static char got[N * 8], want[N * 8];
    struct slotd_worker *w = open_worker(N);
    fill_queue(0, N + 5);
    /* A second list moved by LMOVE, the reference. */
    for (int i = 0; i < N + 5; i++)
        freeReplyObject(harness_cmd(c, "LPUSH {lib}:ref:queue t%d", i));
    for (int i = 0; i < N; i++)
        freeReplyObject(harness_cmd(c, "LMOVE {lib}:ref:queue {lib}:ref:inflight RIGHT LEFT"));

    ck_assert_int_eq(slotd_worker_take(w, t, N, 0), N);
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        ck_assert_msg(t[i].len == strlen(name) && memcmp(t[i].data, name, t[i].len) == 0,
                      "task %d is not the %d-th oldest", i, i);
        ck_assert_uint_eq(t[i].attempt, 1);
    }
    list(INFLIGHT, got, sizeof got);
    list("{lib}:ref:inflight", want, sizeof want);
    ck_assert_str_eq(got, want);
    list(QUEUE, got, sizeof got);
    list("{lib}:ref:queue", want, sizeof want);
    ck_assert_str_eq(got, want);
    /* Never more than the prefetch held. */
    struct slotd_task more[4];
    ck_assert_int_eq(slotd_worker_take(w, more, 4, 0), 0);
    ck_assert_int_eq(slotd_worker_ack(w, t, N), 0);
    ck_assert_int_eq(harness_llen(c, INFLIGHT), 0);
    ck_assert_int_eq(slotd_worker_take(w, more, 4, 0), 4);
    ck_assert_int_eq(slotd_worker_ack(w, more, 4), 0);
    ck_assert_int_eq(harness_llen(c, QUEUE), 1);
    slotd_worker_close(w);
}
END_TEST

START_TEST(acks_in_any_order_remove_exactly_those)
{
    struct slotd_task t[10];
    char got[256];
    struct slotd_worker *w = open_worker(10);
    fill_queue(0, 10);
    ck_assert_int_eq(slotd_worker_take(w, t, 10, 0), 10);
    /* Not the oldest: removed one by one. */
    struct slotd_task mid[3] = { t[4], t[7], t[5] };
    ck_assert_int_eq(slotd_worker_ack(w, mid, 3), 0);
    list(INFLIGHT, got, sizeof got);
    ck_assert_str_eq(got, "t9,t8,t6,t3,t2,t1,t0");
    /* The oldest, shuffled: the tail, trimmed. */
    struct slotd_task old[3] = { t[2], t[0], t[1] };
    ck_assert_int_eq(slotd_worker_ack(w, old, 3), 0);
    list(INFLIGHT, got, sizeof got);
    ck_assert_str_eq(got, "t9,t8,t6,t3");
    struct slotd_task rest[4] = { t[9], t[3], t[8], t[6] };
    ck_assert_int_eq(slotd_worker_ack(w, rest, 4), 0);
    ck_assert_int_eq(harness_llen(c, INFLIGHT), 0);
    slotd_worker_close(w);
}
END_TEST

START_TEST(equal_bytes_count_once_each)
{
    struct slotd_task t[5];
    char got[256];
    struct slotd_worker *w = open_worker(5);
    freeReplyObject(harness_cmd(c, "LPUSH " QUEUE " a dup dup b dup"));
    ck_assert_int_eq(slotd_worker_take(w, t, 5, 0), 5);
    /* t: a dup dup b dup (oldest first); ack two of the three dups. */
    struct slotd_task two[2] = { t[1], t[4] };
    ck_assert_int_eq(slotd_worker_ack(w, two, 2), 0);
    list(INFLIGHT, got, sizeof got);
    /* Which dup stays does not matter: they are the same bytes. */
    ck_assert_int_eq(harness_llen(c, INFLIGHT), 3);
    ck_assert_ptr_nonnull(strstr(got, "dup"));
    ck_assert_ptr_nonnull(strstr(got, "a"));
    ck_assert_ptr_nonnull(strstr(got, "b"));
    /* Acknowledging {dup, dup} when the tail is {x, a}: one by one, and the
     * second finds nothing. */
    ck_assert_int_eq(slotd_worker_ack(w, (struct slotd_task[]){ t[0], t[2], t[3] }, 3), 0);
    ck_assert_int_eq(harness_llen(c, INFLIGHT), 0);
    freeReplyObject(harness_cmd(c, "RPUSH " INFLIGHT " dup x a"));
    struct slotd_task dd[2] = { { strdup("dup"), 3, 1 }, { strdup("dup"), 3, 1 } };
    ck_assert_int_eq(slotd_worker_ack(w, dd, 2), 0);
    list(INFLIGHT, got, sizeof got);
    ck_assert_str_eq(got, "x,a");
    slotd_worker_close(w);
}
END_TEST

/* slotd declared the worker dead and moved its in-flight list away; the
 * worker, back, took new tasks; its late acks must not remove those. */
START_TEST(late_acks_of_a_zombie_remove_nothing_newer)
{
    struct slotd_task old[3], fresh[3];
    char got[256];
    struct slotd_worker *w = open_worker(6);
    fill_queue(0, 3);
    ck_assert_int_eq(slotd_worker_take(w, old, 3, 0), 3);
    freeReplyObject(harness_cmd(c, "DEL " INFLIGHT));
    fill_queue(3, 6);
    ck_assert_int_eq(slotd_worker_take(w, fresh, 3, 0), 3);
    ck_assert_int_eq(slotd_worker_ack(w, old, 3), 0);
    list(INFLIGHT, got, sizeof got);
    ck_assert_str_eq(got, "t5,t4,t3");
    ck_assert_int_eq(slotd_worker_ack(w, fresh, 3), 0);
    ck_assert_int_eq(harness_llen(c, INFLIGHT), 0);
    slotd_worker_close(w);
}
END_TEST

/* A key of the wrong type fails the take before any task leaves the queue
 * (a script is not undone when it fails half way). */
START_TEST(a_failed_take_moves_nothing)
{
    struct slotd_task t[5];
    struct slotd_worker *w = open_worker(5);
    fill_queue(0, 5);
    freeReplyObject(harness_cmd(c, "SET {lib}:attempts not-a-hash"));
    ck_assert_int_eq(slotd_worker_take(w, t, 5, 0), -1);
    ck_assert_int_eq(harness_llen(c, QUEUE), 5);
    ck_assert_int_eq(harness_llen(c, INFLIGHT), 0);
    freeReplyObject(harness_cmd(c, "DEL {lib}:attempts"));
    freeReplyObject(harness_cmd(c, "SET " INFLIGHT " not-a-list"));
    ck_assert_int_eq(slotd_worker_take(w, t, 5, 0), -1);
    ck_assert_int_eq(harness_llen(c, QUEUE), 5);
    freeReplyObject(harness_cmd(c, "DEL " INFLIGHT));
    ck_assert_int_eq(slotd_worker_take(w, t, 5, 0), 5);
    ck_assert_int_eq(slotd_worker_ack(w, t, 5), 0);
    ck_assert_int_eq(harness_llen(c, QUEUE), 0);
    slotd_worker_close(w);
}
END_TEST

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    static char buf[1 << 17];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *copy = strdup(buf);
    ck_assert_ptr_nonnull(copy);
    return copy;
}

/* Each line of the script named in src is in the docs. */
static void documented(const char *src, const char *docs, const char *name)
{
    char line[256];
    const char *p = strstr(src, name);
    int lines = 0;
    ck_assert_msg(p != NULL, "no %s in the source", name);
    const char *end = strstr(p, ";\n");
    ck_assert_ptr_nonnull(end);
    while ((p = strstr(p, "\"")) != NULL && p < end) {
        const char *q = strstr(p + 1, "\\n\"");
        ck_assert_ptr_nonnull(q);
        snprintf(line, sizeof line, "%.*s", (int)(q - p - 1), p + 1);
        ck_assert_msg(strstr(docs, line) != NULL, "docs/protocol.md lacks this line of %s: %s",
                      name, line);
        lines++;
        p = q + 3;
    }
    ck_assert_int_gt(lines, 0);
}

START_TEST(the_documented_scripts_are_the_ones_run)
{
    char *src = slurp("src/slotd_worker.c");
    char *docs = slurp("docs/protocol.md");
    static const char *const lib[] = { "#define CHECK_TYPES", "take_script[] =", "ack_script[] =",
                                       "dead_script[] =", "recover_script[] =", "beat_script[] =",
                                       "leave_script[] =" };
    for (size_t i = 0; i < sizeof lib / sizeof lib[0]; i++)
        documented(src, docs, lib[i]);
    free(src);
    src = slurp("src/scripts.c");
    static const char *const slotd[] = { "scripts_commit[] =", "scripts_apply[] =" };
    for (size_t i = 0; i < sizeof slotd / sizeof slotd[0]; i++)
        documented(src, docs, slotd[i]);
    free(src);
    free(docs);
}
END_TEST

/* A handle of shard 1 of 2 works in {lib#1} only: its worker set,
 * heartbeat, queue and in-flight list; a shard out of range is refused;
 * shards left 0 is the namespace itself. */
START_TEST(a_shard_handle_uses_its_shards_keys)
{
    char err[256];
    struct slotd_worker_options o;
    struct slotd_task t[4];
    memset(&o, 0, sizeof o);
    o.port = redis.port;
    o.ns = "lib";
    o.id = "w1";
    o.shards = 2;
    o.shard = 2;
    ck_assert_ptr_null(slotd_worker_open(&o, err, sizeof err));
    ck_assert_msg(strstr(err, "invalid shard 2 of 2") != NULL, "%s", err);
    o.shard = -1;
    ck_assert_ptr_null(slotd_worker_open(&o, err, sizeof err));
    o.shard = 1;
    struct slotd_worker *w = slotd_worker_open(&o, err, sizeof err);
    ck_assert_msg(w != NULL, "%s", err);
    ck_assert_int_eq(slotd_worker_register(w), 0);
    redisReply *r = harness_cmd(c, "SMEMBERS {lib#1}:workers");
    ck_assert_int_eq(r->elements, 1);
    ck_assert_str_eq(r->element[0]->str, "w1");
    freeReplyObject(r);
    r = harness_cmd(c, "EXISTS {lib}:workers {lib#0}:workers {lib}:hb:w1 {lib#0}:hb:w1");
    ck_assert_int_eq(r->integer, 0);
    freeReplyObject(r);
    r = harness_cmd(c, "EXISTS {lib#1}:hb:w1");
    ck_assert_int_eq(r->integer, 1);
    freeReplyObject(r);
    freeReplyObject(harness_cmd(c, "LPUSH {lib#1}:queue:w1 a b"));
    freeReplyObject(harness_cmd(c, "LPUSH " QUEUE " x"));
    ck_assert_int_eq(slotd_worker_take(w, t, 4, 0), 2);
    ck_assert_int_eq(harness_llen(c, "{lib#1}:inflight:w1"), 2);
    ck_assert_int_eq(harness_llen(c, QUEUE), 1);
    ck_assert_int_eq(slotd_worker_ack(w, t, 2), 0);
    ck_assert_int_eq(harness_llen(c, "{lib#1}:inflight:w1"), 0);
    ck_assert_int_eq(slotd_worker_leave(w), 0);
    r = harness_cmd(c, "EXISTS {lib#1}:workers {lib#1}:hb:w1");
    ck_assert_int_eq(r->integer, 0);
    freeReplyObject(r);
    slotd_worker_close(w);
    /* shards 1 (or 0): the namespace's own keys. */
    o.shards = 1;
    o.shard = 0;
    w = slotd_worker_open(&o, err, sizeof err);
    ck_assert_msg(w != NULL, "%s", err);
    ck_assert_int_eq(slotd_worker_take(w, t, 4, 0), 1);
    ck_assert_int_eq(harness_llen(c, INFLIGHT), 1);
    free(t[0].data);        /* held, not acknowledged: the caller's */
    slotd_worker_close(w);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("libslotd");
    TCase *tc = tcase_create("libslotd");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, take_moves_what_lmove_would_in_order);
    tcase_add_test(tc, acks_in_any_order_remove_exactly_those);
    tcase_add_test(tc, equal_bytes_count_once_each);
    tcase_add_test(tc, late_acks_of_a_zombie_remove_nothing_newer);
    tcase_add_test(tc, a_failed_take_moves_nothing);
    tcase_add_test(tc, the_documented_scripts_are_the_ones_run);
    tcase_add_test(tc, a_shard_handle_uses_its_shards_keys);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
