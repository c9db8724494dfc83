/*
 * Fault suite: every key of the namespace replaced by a value of another
 * type, then restored, one after the other, while producers push and
 * workers run tasks with per-key sequence numbers. Each fault must be said
 * in a log (slotd's, or the worker's for the worker's own keys) while it
 * lasts, routing must resume on its own once it is gone, and at the end
 * no task is lost, none ran twice (no worker dies here), and each key's
 * tasks ran in order.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "env.h"
#include "harness.h"
#include "load.h"
#include "check_main.h"

#define TTL 1500

/* key -> key.saved (if it exists), and key becomes a value of type `as`
 * ("string", "int" for a string that is not a number, "list", "hash",
 * "set"): atomically, so no push lands in between. */
static void break_key(struct env *e, const char *name, const char *as)
{
    char key[128], saved[160];
    env_key(key, sizeof key, name);
    snprintf(saved, sizeof saved, "%s.saved", key);
    redisReply *r = harness_cmd(e->c,
        "EVAL %s 2 %s %s %s",
        "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('RENAME', KEYS[1], KEYS[2]) end\n"
        "if ARGV[1] == 'string' then redis.call('SET', KEYS[1], 'not yours')\n"
        "elseif ARGV[1] == 'int' then redis.call('SET', KEYS[1], 'not a number')\n"
        "elseif ARGV[1] == 'list' then redis.call('RPUSH', KEYS[1], 'not yours')\n"
        "elseif ARGV[1] == 'hash' then redis.call('HSET', KEYS[1], 'not', 'yours')\n"
        "else redis.call('SADD', KEYS[1], 'not yours') end\n"
        "return 1", key, saved, as);
    ck_assert_msg(r->type == REDIS_REPLY_INTEGER, "breaking %s: %s", key,
                  r->type == REDIS_REPLY_ERROR ? r->str : "?");
    freeReplyObject(r);
}

/* The wrong value goes, the original comes back, atomically. */
static void mend_key(struct env *e, const char *name)
{
    char key[128], saved[160];
    env_key(key, sizeof key, name);
    snprintf(saved, sizeof saved, "%s.saved", key);
    redisReply *r = harness_cmd(e->c, "EVAL %s 2 %s %s",
        "redis.call('DEL', KEYS[1])\n"
        "if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('RENAME', KEYS[2], KEYS[1]) end\n"
        "return 1", key, saved);
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
}


static void worker_says(struct env *e, const char *id, const char *text)
{
    char path[600];
    snprintf(path, sizeof path, "%s/worker-%s.log", e->redis.dir, id);
    uint64_t end = harness_now_ms() + 5000;
    while (!load_file_has(path, text) && harness_now_ms() < end)
        usleep(10000);
    ck_assert_msg(load_file_has(path, text), "worker %s's log does not say: %s", id, text);
}

/* Up to 8 s: an idle slotd waits in BLMOVE on the intake, which Redis 7.0
 * does not wake when the key changes type; its 5 s timeout does. */
static void slotd_says(struct env *e, const char *a, const char *b)
{
    ck_assert_msg(env_wait_log2(e, a, b, 8000) == 0, "slotd's log has no line with '%s' and '%s'",
                  a, b ? b : "");
}

START_TEST(every_key_replaced_by_a_wrong_type_and_restored_under_load)
{
    struct env e;
    struct load l;
    const char *three[] = { "w1", "w2", "w3" }, *four[] = { "w1", "w2", "w3", "w4" };

    env_start(&e, NULL,
              "workers:\n  check_interval_ms: 100\n  heartbeat_ttl_ms: 1500\n"
              "dispatch:\n  batch: 100\n");
    env_slotd_start(&e);
    load_start(&l, &e, 60000, 300, 97, 2, 1500);
    l.ttl_ms = TTL;
    load_workers(&l, three, 3, 16, 100);
    load_progress(&l, "the start");

    /* The intake: producers' pushes are refused and retried; slotd holds. */
    break_key(&e, "intake", "string");
    slotd_says(&e, "dispatch held", "{t}:intake");
    usleep(300000);
    mend_key(&e, "intake");
    load_progress(&l, "the intake");

    /* A worker's queue: the batch is not moved (its pushes popped back). */
    break_key(&e, "queue:w1", "string");
    slotd_says(&e, "dispatch held", "{t}:queue:w1 holds a string");
    worker_says(&e, "w1", "WRONGTYPE {t}:queue:w1 holds a string");
    usleep(300000);
    mend_key(&e, "queue:w1");
    slotd_says(&e, "dispatch resumed", NULL);
    load_progress(&l, "a queue");

    /* A worker's in-flight list: its takes and acks are refused whole. */
    break_key(&e, "inflight:w2", "string");
    worker_says(&e, "w2", "WRONGTYPE {t}:inflight:w2 holds a string");
    usleep(300000);
    mend_key(&e, "inflight:w2");
    load_progress(&l, "an in-flight list");

    /* The dead letter list: a batch with a dead letter is not moved. */
    break_key(&e, "dead", "hash");
    slotd_says(&e, "dispatch held", "{t}:dead holds a hash");
    usleep(300000);
    mend_key(&e, "dead");
    load_progress(&l, "the dead letter list");

    /* The tail's version. */
    break_key(&e, "tail", "list");
    slotd_says(&e, "dispatch held", "{t}:tail holds a list");
    usleep(300000);
    mend_key(&e, "tail");
    load_progress(&l, "the tail's version");

    /* The slot table, while a worker joins: the change is not written. */
    break_key(&e, "slots", "string");
    load_worker(&l, "w4", 16, 100);
    slotd_says(&e, "membership", "{t}:slots holds a string");
    usleep(300000);
    mend_key(&e, "slots");
    ck_assert_int_eq(env_wait_owners(&e, four, 4, 10000), 0);
    load_progress(&l, "the slot table");

    /* The fences, while a worker leaves. */
    break_key(&e, "fences", "list");
    load_worker_stop(&l, "w4", SIGTERM);
    slotd_says(&e, "membership", "{t}:fences holds a list");
    usleep(300000);
    mend_key(&e, "fences");
    ck_assert_int_eq(env_wait_owners(&e, three, 3, 10000), 0);
    load_progress(&l, "the fences");

    /* The epoch, not a number, while a worker joins. */
    break_key(&e, "epoch", "int");
    load_worker(&l, "w4", 16, 100);
    slotd_says(&e, "membership", "{t}:epoch holds a string, not an integer");
    usleep(300000);
    mend_key(&e, "epoch");
    ck_assert_int_eq(env_wait_owners(&e, four, 4, 10000), 0);
    load_progress(&l, "the epoch");

    /* The set of workers: no check can read it; nobody is declared dead. */
    break_key(&e, "workers", "string");
    slotd_says(&e, "membership", "cannot read {t}:workers");
    usleep(300000);
    mend_key(&e, "workers");
    load_progress(&l, "the set of workers");

    /* The set of drained workers. */
    break_key(&e, "draining", "string");
    slotd_says(&e, "membership", "cannot read {t}:draining");
    usleep(300000);
    mend_key(&e, "draining");
    load_progress(&l, "the set of drained workers");

    /* The attempt counts: workers cannot take. */
    break_key(&e, "attempts", "list");
    worker_says(&e, "w3", "WRONGTYPE {t}:attempts holds a list");
    usleep(300000);
    mend_key(&e, "attempts");
    load_progress(&l, "the attempt counts");

    /* The leader epoch, the fencing token: no write can pass the fence, the
     * lease cannot be renewed; routing stops and resumes once it is back. */
    break_key(&e, "leader:epoch", "list");
    slotd_says(&e, "{t}:leader:epoch holds a list", NULL);
    usleep(300000);
    mend_key(&e, "leader:epoch");
    load_progress(&l, "the leader epoch");

    /* The lease itself. */
    break_key(&e, "leader", "hash");
    slotd_says(&e, "the lease cannot be read or written: {t}:leader holds a hash", NULL);
    usleep(300000);
    mend_key(&e, "leader");
    load_progress(&l, "the lease");

    /* A heartbeat: a list where it should be is not an expired heartbeat.
     * The worker overwrites it at its next beat, so it is put back until
     * slotd has seen it. */
    {
        char hb[64];
        env_key(hb, sizeof hb, "hb:w3");
        uint64_t end = harness_now_ms() + 5000;
        while (env_log_count(&e, "{t}:hb:w3 holds a list") == 0 && harness_now_ms() < end) {
            redisReply *r = harness_cmd(e.c, "EVAL %s 1 %s",
                                        "redis.call('DEL', KEYS[1]) redis.call('RPUSH', KEYS[1], 'x') "
                                        "return 1", hb);
            freeReplyObject(r);
            usleep(20000);
        }
        slotd_says(&e, "membership", "{t}:hb:w3 holds a list");
        load_progress(&l, "a heartbeat");
    }

    load_expect_once_in_order(&l, "key faults");
    ck_assert_int_eq(env_wait_llen(&e, "intake", 0, 10000), 0);
    ck_assert_int_eq(env_log_count(&e, "died"), 0);
    load_stop(&l);
    env_stop(&e);
}
END_TEST

/*
 * With dispatch.inflight 2 a transaction is sent behind one that may not
 * be moved: its commit expects the tail version the first would have made,
 * so it is not moved either, and neither trims tasks it never peeked.
 */
START_TEST(a_second_transaction_in_flight_behind_one_not_moved_moves_nothing)
{
    struct env e;
    struct load l;
    const char *three[] = { "w1", "w2", "w3" };
    env_start(&e, NULL,
              "workers:\n  check_interval_ms: 100\n  heartbeat_ttl_ms: 1500\n"
              "dispatch:\n  batch: 50\n  inflight: 2\n");
    env_slotd_start(&e);
    /* A bad task now and then: a batch with one is not moved while the dead
     * letter list is broken, and the batch behind it, with none, would be. */
    load_start(&l, &e, 30000, 300, 97, 2, 3000);
    l.ttl_ms = TTL;
    load_workers(&l, three, 3, 16, 50);
    for (int round = 0; round < 5; round++) {
        load_progress(&l, "the last round");
        break_key(&e, "dead", "string");
        slotd_says(&e, "dispatch held", "{t}:dead holds a string");
        usleep(200000);
        mend_key(&e, "dead");
    }
    load_expect_once_in_order(&l, "inflight 2");
    load_stop(&l);
    env_stop(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("keyfaults");
    const struct check_case tests[] = {
        { "every_key_replaced_by_a_wrong_type_and_restored_under_load",
          every_key_replaced_by_a_wrong_type_and_restored_under_load, 300 },
        { "a_second_transaction_in_flight_behind_one_not_moved_moves_nothing",
          a_second_transaction_in_flight_behind_one_not_moved_moves_nothing, 300 },
    };
    CHECK_CASES(s, tests);
    return s;
}

CHECK_MAIN(suite)
