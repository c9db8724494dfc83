/*
 * Integration: fenced handoffs. When a worker that stays loses slots (a
 * join) while it holds tasks of them, the slots' newer tasks wait in
 * {t}:fenced:<it> until it holds none; then they reach the new owner ahead
 * of anything newer. Workers are played here with plain Redis commands, so
 * every step is deterministic: taking (LMOVE), acknowledging (LREM), dying
 * (the heartbeat deleted), restarting (the in-flight list moved back).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "env.h"
#include "harness.h"
#include "keyslot.h"
#include "slotmap.h"

#define LONG_TTL 600000
#define KEYS 50
#define FAST "workers:\n  check_interval_ms: 100\n  heartbeat_ttl_ms: 1000\n"

static void push_seq(struct env *e, int from, int to)
{
    char intake[64];
    env_key(intake, sizeof intake, "intake");
    for (int i = from; i < to; i++)
        freeReplyObject(harness_cmd(e->c, "LPUSH %s {\"key\":\"k%d\",\"seq\":%d}", intake,
                                    i % KEYS, i));
}

static char out[16384];      /* slotctl's output */

static int key_of(const char *task)
{
    int k = -1;
    sscanf(task, "{\"key\":\"k%d\"", &k);
    return k;
}

static int seq_of(const char *task)
{
    const char *p = strstr(task, "\"seq\":");
    return p ? atoi(p + 6) : -1;
}

/* Which keys slotd's table gives to worker id. */
static void keys_owned_by(struct env *e, const char *id, char owned[KEYS])
{
    struct slotmap m;
    char k[16];
    env_load_table(e, &m);
    int idx = slotmap_find(&m, id);
    for (int i = 0; i < KEYS; i++) {
        int n = snprintf(k, sizeof k, "k%d", i);
        owned[i] = idx >= 0 && slotmap_owner(&m, keyslot(k, (size_t)n)) == (unsigned)idx;
    }
    slotmap_free(&m);
}

/*
 * Worker a alone gets tasks 0..299 (keys k0..k49), takes the 25 oldest into
 * its in-flight list; b joins; tasks 300..399 are pushed. Returns with the
 * fence in place and the intake drained; moved[k] says which keys went to b.
 */
static void join_while_holding(struct env *e, char moved[KEYS])
{
    char qa[64], fa[64];
    const char *only_a[] = { "a" }, *ab[] = { "a", "b" };
    env_start(e, NULL, FAST);
    env_worker_beat(e, "a", LONG_TTL, 0);
    env_slotd_start(e);
    ck_assert_int_eq(env_wait_owners(e, only_a, 1, 5000), 0);
    push_seq(e, 0, 300);
    ck_assert_int_eq(env_wait_llen(e, "intake", 0, 5000), 0);
    ck_assert_int_eq(env_wait_llen(e, "queue:a", 300, 5000), 0);
    env_key(qa, sizeof qa, "queue:a");
    env_key(fa, sizeof fa, "inflight:a");
    for (int i = 0; i < 25; i++)
        freeReplyObject(harness_cmd(e->c, "LMOVE %s %s RIGHT LEFT", qa, fa));
    env_worker_beat(e, "b", LONG_TTL, 0);
    ck_assert_int_eq(env_wait_owners(e, ab, 2, 5000), 0);
    ck_assert_int_eq(env_wait_log(e, "worker a handed off", 2000), 0);
    push_seq(e, 300, 400);
    ck_assert_int_eq(env_wait_llen(e, "intake", 0, 5000), 0);
    keys_owned_by(e, "b", moved);
    int n = 0;
    for (int k = 0; k < 25; k++)
        n += moved[k];
    ck_assert_msg(n > 0, "no key held in flight by a moved to b");
}

/* Every task of list {t}:name, oldest first: keys' seqs must rise. Counts
 * each seq into seen. Returns how many tasks. */
static long long check_order(struct env *e, const char *name, int *seen, int *last)
{
    char key[64];
    redisReply *r = harness_cmd(e->c, "LRANGE %s 0 -1", env_key(key, sizeof key, name));
    for (size_t i = r->elements; i-- > 0;) {
        const char *t = r->element[i]->str;
        int k = key_of(t), s = seq_of(t);
        ck_assert_msg(k >= 0 && s >= 0, "%s: bad task %s", name, t);
        ck_assert_msg(s > last[k], "%s: key k%d: seq %d after %d", name, k, s, last[k]);
        last[k] = s;
        seen[s]++;
    }
    long long n = (long long)r->elements;
    freeReplyObject(r);
    return n;
}

START_TEST(a_join_waits_for_the_old_owner_then_hands_over_in_order)
{
    struct env e;
    char moved[KEYS], key[64];
    int seen[400] = { 0 }, last[KEYS];
    join_while_holding(&e, moved);

    /* While a holds tasks of the moved slots, b gets none of them. */
    usleep(400 * 1000);
    ck_assert_int_eq(env_llen(&e, "queue:b"), 0);
    long long held = env_llen(&e, "fenced:a");
    ck_assert_int_gt(held, 0);
    redisReply *ep1 = harness_cmd(e.c, "GET %s", env_key(key, sizeof key, "epoch"));
    redisReply *f = harness_cmd(e.c, "HGET %s a", env_key(key, sizeof key, "fences"));
    ck_assert_int_eq(f->type, REDIS_REPLY_STRING);
    freeReplyObject(f);
    /* Operators see it. */
    ck_assert_int_eq(env_slotctl(&e, NULL, "status", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "fenced    a handed off ") != NULL, "%s", out);
    ck_assert_int_eq(env_slotctl(&e, NULL, "--json status", out, sizeof out), 0);
    ck_assert_msg(strstr(out, "\"fences\": [") != NULL && strstr(out, "\"worker\": \"a\"") != NULL,
                  "%s", out);

    /* a finishes what it holds: the fence goes, the tasks go on, in order. */
    freeReplyObject(harness_cmd(e.c, "DEL %s", env_key(key, sizeof key, "inflight:a")));
    ck_assert_int_eq(env_wait_llen(&e, "fenced:a", 0, 2000), 0);
    ck_assert_int_eq(env_wait_log(&e, "worker a has finished the tasks it held", 2000), 0);
    ck_assert_int_eq(env_wait_llen(&e, "intake", 0, 2000), 0);
    f = harness_cmd(e.c, "HLEN %s", env_key(key, sizeof key, "fences"));
    ck_assert_int_eq(f->integer, 0);
    freeReplyObject(f);
    /* A released fence is not a change of ownership. */
    redisReply *ep2 = harness_cmd(e.c, "GET %s", env_key(key, sizeof key, "epoch"));
    ck_assert_str_eq(ep1->str, ep2->str);
    freeReplyObject(ep1);
    freeReplyObject(ep2);

    for (int k = 0; k < KEYS; k++)
        last[k] = k < 25 ? k : -1;      /* seqs 0..24 ran on a */
    long long n = check_order(&e, "queue:a", seen, last) + check_order(&e, "queue:b", seen, last);
    ck_assert_int_eq(n, 375);
    for (int s = 25; s < 400; s++)
        ck_assert_msg(seen[s] == 1, "seq %d seen %d times", s, seen[s]);
    env_stop(&e);
}
END_TEST

START_TEST(a_death_while_fenced_hands_everything_over_in_order)
{
    struct env e;
    char moved[KEYS], key[64];
    int seen[400] = { 0 }, last[KEYS];
    const char *only_b[] = { "b" };
    join_while_holding(&e, moved);
    ck_assert_int_gt(env_llen(&e, "fenced:a"), 0);

    /* a dies holding its 25: they go first, then its queue, then what
     * waited behind the fence, then anything newer. */
    freeReplyObject(harness_cmd(e.c, "DEL %s", env_key(key, sizeof key, "hb:a")));
    ck_assert_int_eq(env_wait_owners(&e, only_b, 1, 3000), 0);
    ck_assert_int_eq(env_wait_llen(&e, "intake", 0, 2000), 0);
    ck_assert_int_eq(env_llen(&e, "fenced:a"), 0);
    for (int k = 0; k < KEYS; k++)
        last[k] = -1;
    ck_assert_int_eq(check_order(&e, "queue:b", seen, last), 400);
    for (int s = 0; s < 400; s++)
        ck_assert_msg(seen[s] == 1, "seq %d seen %d times", s, seen[s]);
    env_stop(&e);
}
END_TEST

/* A worker restarted within its TTL moves its in-flight list back to its
 * queue's tail: the fence looks there too. */
START_TEST(a_restart_that_requeues_held_tasks_keeps_the_fence)
{
    struct env e;
    char moved[KEYS], key[64], qa[64], fa[64];
    join_while_holding(&e, moved);
    env_key(qa, sizeof qa, "queue:a");
    env_key(fa, sizeof fa, "inflight:a");
    for (int i = 0; i < 25; i++)
        freeReplyObject(harness_cmd(e.c, "LMOVE %s %s LEFT RIGHT", fa, qa));
    usleep(400 * 1000);
    ck_assert_int_gt(env_llen(&e, "fenced:a"), 0);
    ck_assert_int_eq(env_llen(&e, "queue:b"), 0);
    /* a works through its queue: then the fence goes. */
    freeReplyObject(harness_cmd(e.c, "DEL %s", qa));
    ck_assert_int_eq(env_wait_llen(&e, "fenced:a", 0, 2000), 0);
    ck_assert_int_eq(env_wait_log(&e, "worker a has finished the tasks it held", 2000), 0);
    ck_assert_int_eq(env_wait_llen(&e, "intake", 0, 2000), 0);
    ck_assert_int_gt(env_llen(&e, "queue:b"), 0);
    (void)key;
    env_stop(&e);
}
END_TEST

START_TEST(fences_survive_a_restart_of_slotd)
{
    struct env e;
    char moved[KEYS], key[64];
    join_while_holding(&e, moved);
    long long held = env_llen(&e, "fenced:a");
    ck_assert_int_gt(held, 0);
    ck_assert_int_eq(WEXITSTATUS(env_slotd_stop(&e, SIGTERM)), 0);
    env_slotd_start(&e);
    ck_assert_int_eq(env_wait_log(&e, "1 handoffs fenced", 3000), 0);
    push_seq(&e, 400, 450);
    ck_assert_int_eq(env_wait_llen(&e, "intake", 0, 3000), 0);
    ck_assert_int_eq(env_llen(&e, "queue:b"), 0);
    ck_assert_int_gt(env_llen(&e, "fenced:a"), held);
    freeReplyObject(harness_cmd(e.c, "DEL %s", env_key(key, sizeof key, "inflight:a")));
    ck_assert_int_eq(env_wait_llen(&e, "fenced:a", 0, 2000), 0);
    ck_assert_int_eq(env_wait_llen(&e, "intake", 0, 2000), 0);
    ck_assert_int_gt(env_llen(&e, "queue:b"), 0);
    env_stop(&e);
}
END_TEST

/* Workers a and b share tasks 0..199; b takes five, then is drained: it is
 * out of the table and fenced for the slots it had. */
static void drain_b_holding_five(struct env *e)
{
    char q[64], f[64], key[64];
    const char *ab[] = { "a", "b" }, *only_a[] = { "a" };
    env_start(e, NULL, FAST);
    env_worker_beat(e, "a", LONG_TTL, 0);
    env_worker_beat(e, "b", LONG_TTL, 0);
    env_slotd_start(e);
    ck_assert_int_eq(env_wait_owners(e, ab, 2, 5000), 0);
    push_seq(e, 0, 200);
    ck_assert_int_eq(env_wait_llen(e, "intake", 0, 5000), 0);
    env_key(q, sizeof q, "queue:b");
    env_key(f, sizeof f, "inflight:b");
    for (int i = 0; i < 5; i++)
        freeReplyObject(harness_cmd(e->c, "LMOVE %s %s RIGHT LEFT", q, f));
    freeReplyObject(harness_cmd(e->c, "SADD %s b", env_key(key, sizeof key, "draining")));
    ck_assert_int_eq(env_wait_owners(e, only_a, 1, 5000), 0);
    ck_assert_int_eq(env_wait_log(e, "worker b handed off", 2000), 0);
}

/* A drained worker that then leaves the way slotd_worker_leave() does
 * (in-flight back to its queue, SREM, DEL hb), out of the table and no
 * longer registered: what it held and its fenced list still go on. */
START_TEST(drained_worker_leaving_with_held_tasks)
{
    struct env e;
    char q[64], f[64], key[64];
    drain_b_holding_five(&e);
    env_key(q, sizeof q, "queue:b");
    env_key(f, sizeof f, "inflight:b");
    /* b stops: slotd_worker_leave(). */
    freeReplyObject(harness_cmd(e.c, "MULTI"));
    for (int i = 0; i < 5; i++)
        freeReplyObject(harness_cmd(e.c, "LMOVE %s %s LEFT RIGHT", f, q));
    freeReplyObject(harness_cmd(e.c, "SREM %s b", env_key(key, sizeof key, "workers")));
    freeReplyObject(harness_cmd(e.c, "DEL %s", env_key(key, sizeof key, "hb:b")));
    freeReplyObject(harness_cmd(e.c, "EXEC"));
    push_seq(&e, 200, 300);
    ck_assert_int_eq(env_wait_llen(&e, "queue:a", 300, 3000), 0);
    ck_assert_msg(env_llen(&e, "fenced:b") == 0, "tasks stranded in fenced:b");
    ck_assert_msg(env_llen(&e, "queue:b") == 0, "tasks stranded in queue:b");
    env_stop(&e);
}
END_TEST

/* The same drained worker crashing (still registered, heartbeat gone) is a
 * stray: cleaned up, its tasks handed on. */
START_TEST(drained_worker_crashing_with_held_tasks)
{
    struct env e;
    char key[64];
    drain_b_holding_five(&e);
    push_seq(&e, 200, 300);
    ck_assert_int_eq(env_wait_llen(&e, "intake", 0, 5000), 0);
    freeReplyObject(harness_cmd(e.c, "DEL %s", env_key(key, sizeof key, "hb:b")));
    ck_assert_int_eq(env_wait_llen(&e, "queue:a", 300, 3000), 0);
    ck_assert_int_eq(env_llen(&e, "fenced:b"), 0);
    env_stop(&e);
}
END_TEST

/* A check that only looks at fences moves no slot, even when the saved table
 * is not the balance slotmap_assign would compute (written by an older
 * slotd, say): ownership moves only with the epoch. */
START_TEST(slots_move_without_epoch)
{
    struct env e;
    char key[64];
    env_start(&e, NULL, FAST);
    env_worker_beat(&e, "a", LONG_TTL, 0);
    env_worker_beat(&e, "b", LONG_TTL, 0);
    freeReplyObject(harness_cmd(e.c, "HSET %s a 0-12000 b 12001-16383", env_key(key, sizeof key, "slots")));
    freeReplyObject(harness_cmd(e.c, "SET %s 7", env_key(key, sizeof key, "epoch")));
    /* A fence left by a worker that is gone and held nothing. */
    freeReplyObject(harness_cmd(e.c, "HSET %s c 0-10", env_key(key, sizeof key, "fences")));
    env_slotd_start(&e);
    sleep(2);
    redisReply *ep = harness_cmd(e.c, "GET %s", env_key(key, sizeof key, "epoch"));
    redisReply *sl = harness_cmd(e.c, "HGET %s a", env_key(key, sizeof key, "slots"));
    int moved = strcmp(sl->str, "0-12000") != 0;
    int bumped = strcmp(ep->str, "7") != 0;
    freeReplyObject(ep);
    freeReplyObject(sl);
    ck_assert_msg(!moved || bumped, "slots moved without the epoch");
    env_stop(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("handoff");
    TCase *tc = tcase_create("handoff");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_join_waits_for_the_old_owner_then_hands_over_in_order);
    tcase_add_test(tc, a_death_while_fenced_hands_everything_over_in_order);
    tcase_add_test(tc, a_restart_that_requeues_held_tasks_keeps_the_fence);
    tcase_add_test(tc, fences_survive_a_restart_of_slotd);
    tcase_add_test(tc, drained_worker_leaving_with_held_tasks);
    tcase_add_test(tc, drained_worker_crashing_with_held_tasks);
    tcase_add_test(tc, slots_move_without_epoch);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
