/* Unit tests for route: the routing rules of docs/protocol.md, in order. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "keys.h"
#include "keyslot.h"
#include "route.h"
#include "check_main.h"

static char scratch[4096];

static enum taskkey_result run(const char *field, int missing, size_t max,
                               const char *task, size_t len, unsigned *slot)
{
    struct route_rules r = { field, strlen(field), missing, max };
    size_t at;
    *slot = 99999;
    return route_task(&r, task, len, scratch, slot, &at);
}

#define T(s) s, sizeof(s) - 1

START_TEST(key_field_routes_by_key)
{
    unsigned slot;
    ck_assert_int_eq(run("key", CONF_MISSING_DEAD_LETTER, 1000, T("{\"key\":\"foo\",\"x\":1}"), &slot), TASKKEY_OK);
    ck_assert_uint_eq(slot, 12182);     /* CLUSTER KEYSLOT foo */
    ck_assert_int_eq(run("key", CONF_MISSING_DEAD_LETTER, 1000, T("{\"key\":\"{user1000}.following\"}"), &slot), TASKKEY_OK);
    ck_assert_uint_eq(slot, 3443);
    ck_assert_int_eq(run("key", CONF_MISSING_DEAD_LETTER, 1000, T("{\"key\":42}"), &slot), TASKKEY_OK);
    ck_assert_uint_eq(slot, keyslot("42", 2));
    ck_assert_int_eq(run("user", CONF_MISSING_DEAD_LETTER, 1000, T("{\"key\":1,\"user\":\"bar\"}"), &slot), TASKKEY_OK);
    ck_assert_uint_eq(slot, 5061);      /* CLUSTER KEYSLOT bar */
}
END_TEST

START_TEST(size_rules_come_first)
{
    unsigned slot;
    ck_assert_int_eq(run("key", CONF_MISSING_PAYLOAD, 1000, "", 0, &slot), TASKKEY_EMPTY);
    ck_assert_int_eq(run("", CONF_MISSING_PAYLOAD, 1000, "", 0, &slot), TASKKEY_EMPTY);
    ck_assert_int_eq(run("key", CONF_MISSING_PAYLOAD, 10, T("{\"key\":\"foo\"}"), &slot), TASKKEY_TOO_LARGE);
    ck_assert_int_eq(run("", CONF_MISSING_PAYLOAD, 3, T("abcd"), &slot), TASKKEY_TOO_LARGE);
    ck_assert_int_eq(run("", CONF_MISSING_PAYLOAD, 4, T("abcd"), &slot), TASKKEY_OK);
}
END_TEST

START_TEST(empty_key_field_hashes_whole_task)
{
    unsigned slot;
    ck_assert_int_eq(run("", CONF_MISSING_DEAD_LETTER, 1000, T("\xff not json"), &slot), TASKKEY_OK);
    ck_assert_uint_eq(slot, keyslot("\xff not json", 10));
}
END_TEST

START_TEST(missing_key_dead_letter)
{
    unsigned slot;
    ck_assert_int_eq(run("key", CONF_MISSING_DEAD_LETTER, 1000, T("[1,2]"), &slot), TASKKEY_NOT_OBJECT);
    ck_assert_int_eq(run("key", CONF_MISSING_DEAD_LETTER, 1000, T("{\"id\":1}"), &slot), TASKKEY_NO_KEY);
    ck_assert_int_eq(run("key", CONF_MISSING_DEAD_LETTER, 1000, T("{\"key\":\"a\",\"key\":\"b\"}"), &slot), TASKKEY_DUPLICATE_KEY);
    ck_assert_int_eq(run("key", CONF_MISSING_DEAD_LETTER, 1000, T("{\"key\":null}"), &slot), TASKKEY_BAD_KEY_TYPE);
    ck_assert_int_eq(run("key", CONF_MISSING_DEAD_LETTER, 1000, T("{\"key\":"), &slot), TASKKEY_INVALID_JSON);
}
END_TEST

START_TEST(missing_key_payload)
{
    unsigned slot;
    const char *cases[] = { "[1,2]", "{\"id\":1}", "{\"key\":\"a\",\"key\":\"b\"}", "{\"key\":{}}" };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq(run("key", CONF_MISSING_PAYLOAD, 1000, cases[i], strlen(cases[i]), &slot), TASKKEY_OK);
        ck_assert_uint_eq(slot, keyslot(cases[i], strlen(cases[i])));
    }
    /* Invalid JSON is never routed by payload. */
    ck_assert_int_eq(run("key", CONF_MISSING_PAYLOAD, 1000, T("{\"key\""), &slot), TASKKEY_INVALID_JSON);
}
END_TEST

/* ---- route_shard: the producers' rule (docs/shards.md) ---------------- */

static int shard(const char *field, int missing, int n, const char *task, size_t len,
                 unsigned *slot, enum taskkey_result *res)
{
    struct route_rules r = { field, strlen(field), missing, 1000 };
    *slot = 99999;
    return route_shard(&r, n, task, len, scratch, slot, res);
}

/* Keys at the edges of the shards' slot ranges, their slots as a
 * cluster-enabled redis-server's CLUSTER KEYSLOT answers. */
static const struct { const char *key; unsigned slot; int n2, n3, n4, n8; } edges[] = {
    { "k596",   0,     0, 0, 0, 0 },
    { "k41946", 2047,  0, 0, 0, 0 },
    { "k2423",  2048,  0, 0, 0, 1 },
    { "k13995", 4095,  0, 0, 0, 1 },
    { "k25019", 4096,  0, 0, 1, 2 },
    { "k13535", 5461,  0, 0, 1, 2 },    /* 5461 * 3 / 16384 = 0.99994 */
    { "k12922", 5462,  0, 1, 1, 2 },    /* the first of shard 1 of 3 */
    { "k8036",  8191,  0, 1, 1, 3 },
    { "k3962",  8192,  1, 1, 2, 4 },
    { "k12284", 10922, 1, 1, 2, 5 },    /* 10922 * 3 / 16384 = 1.99988 */
    { "k69207", 10923, 1, 2, 2, 5 },    /* the first of shard 2 of 3 */
    { "k1464",  12287, 1, 2, 2, 5 },
    { "k17956", 12288, 1, 2, 3, 6 },
    { "k3392",  14335, 1, 2, 3, 6 },
    { "k45985", 14336, 1, 2, 3, 7 },
    { "k10322", 16383, 1, 2, 3, 7 },
};

START_TEST(shard_edges)
{
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        char task[64];
        int len = snprintf(task, sizeof task, "{\"key\":\"%s\",\"n\":1}", edges[i].key);
        int want[4] = { edges[i].n2, edges[i].n3, edges[i].n4, edges[i].n8 }, ns[4] = { 2, 3, 4, 8 };
        unsigned slot;
        enum taskkey_result res;
        for (int j = 0; j < 4; j++) {
            ck_assert_int_eq(keys_shard_of(edges[i].slot, ns[j]), want[j]);
            ck_assert_int_eq(shard("key", CONF_MISSING_DEAD_LETTER, ns[j], task, (size_t)len, &slot, &res), want[j]);
            ck_assert_int_eq(res, TASKKEY_OK);
            ck_assert_uint_eq(slot, edges[i].slot);
        }
        /* Not split: always shard 0. */
        ck_assert_int_eq(shard("key", CONF_MISSING_DEAD_LETTER, 1, task, (size_t)len, &slot, &res), 0);
        ck_assert_uint_eq(slot, edges[i].slot);
    }
}
END_TEST

/* Hash tags, and the known answers of docs/shards.md (N = 4). */
static const struct { const char *task; int n; unsigned slot; int shard; } tagged[] = {
    /* Only what is between the first { and the first } after it counts. */
    { "{\"key\":\"{user1000}.following\"}", 4, 3443, 0 },
    { "{\"key\":\"{user1000}.followers\"}", 4, 3443, 0 },
    { "{\"key\":\"a{b}c\"}", 8, 3300, 1 },             /* CLUSTER KEYSLOT b */
    /* {} is no tag: the whole key is hashed. */
    { "{\"key\":\"{}x\"}", 3, 10595, 1 },
    { "{\"key\":\"x{}{y}\"}", 4, 14166, 3 },
    { "{\"key\":\"foo\"}", 4, 12182, 2 },
    { "{\"key\":\"bar\"}", 4, 5061, 1 },
    { "{\"key\":\"user:42\"}", 4, 15880, 3 },
    { "{\"key\":\"user:7\"}", 4, 2780, 0 },
    { "{\"key\":\"order:1001\"}", 4, 241, 0 },
};

START_TEST(shard_hash_tags)
{
    for (size_t i = 0; i < sizeof tagged / sizeof tagged[0]; i++) {
        unsigned slot;
        enum taskkey_result res;
        ck_assert_int_eq(shard("key", CONF_MISSING_DEAD_LETTER, tagged[i].n, tagged[i].task,
                               strlen(tagged[i].task), &slot, &res), tagged[i].shard);
        ck_assert_int_eq(res, TASKKEY_OK);
        ck_assert_uint_eq(slot, tagged[i].slot);
    }
}
END_TEST

START_TEST(shard_unroutable_is_zero)
{
    unsigned slot;
    enum taskkey_result res;
    /* k10322 is in the last shard when routable. */
    ck_assert_int_eq(shard("key", CONF_MISSING_DEAD_LETTER, 8, T("{\"key\":\"k10322\""), &slot, &res), ROUTE_UNROUTABLE_SHARD);
    ck_assert_int_eq(res, TASKKEY_INVALID_JSON);
    ck_assert_uint_eq(slot, 99999);
    ck_assert_int_eq(shard("key", CONF_MISSING_DEAD_LETTER, 8, T("{\"id\":\"k10322\"}"), &slot, &res), 0);
    ck_assert_int_eq(res, TASKKEY_NO_KEY);
    ck_assert_int_eq(shard("key", CONF_MISSING_DEAD_LETTER, 8, T("[\"k10322\"]"), &slot, &res), 0);
    ck_assert_int_eq(res, TASKKEY_NOT_OBJECT);
    ck_assert_int_eq(shard("key", CONF_MISSING_DEAD_LETTER, 8, "", 0, &slot, &res), 0);
    ck_assert_int_eq(res, TASKKEY_EMPTY);
    char big[1001];
    memset(big, 'x', sizeof big);
    ck_assert_int_eq(shard("", CONF_MISSING_DEAD_LETTER, 8, big, sizeof big, &slot, &res), 0);
    ck_assert_int_eq(res, TASKKEY_TOO_LARGE);
    /* on_missing_key payload: no key routes by the whole task, invalid
     * JSON is still unroutable. */
    const char nokey[] = "{\"id\":\"k10322\"}";
    unsigned whole = keyslot(nokey, sizeof nokey - 1);
    ck_assert_int_eq(shard("key", CONF_MISSING_PAYLOAD, 8, T("{\"id\":\"k10322\"}"), &slot, &res), keys_shard_of(whole, 8));
    ck_assert_int_eq(res, TASKKEY_OK);
    ck_assert_uint_eq(slot, whole);
    ck_assert_int_eq(shard("key", CONF_MISSING_PAYLOAD, 8, T("{\"key\":"), &slot, &res), 0);
    ck_assert_int_eq(res, TASKKEY_INVALID_JSON);
    /* key_field "": the whole task is the key, JSON or not. */
    ck_assert_int_eq(shard("", CONF_MISSING_DEAD_LETTER, 4, T("user:42"), &slot, &res), 3);
    ck_assert_uint_eq(slot, 15880);
    /* NULL result and slot are allowed. */
    struct route_rules r = { "key", 3, CONF_MISSING_DEAD_LETTER, 1000 };
    ck_assert_int_eq(route_shard(&r, 4, T("{\"key\":\"foo\"}"), scratch, NULL, NULL), 2);
}
END_TEST

/* keys_shard_slots names exactly the slots keys_shard_of gives a shard. */
START_TEST(shard_slots_match_shard_of)
{
    for (int n = 1; n <= 256; n++) {
        unsigned next = 0;
        for (int i = 0; i < n; i++) {
            unsigned lo, hi;
            keys_shard_slots(i, n, &lo, &hi);
            if (lo != next || hi < lo || keys_shard_of(lo, n) != i || keys_shard_of(hi, n) != i ||
                (lo > 0 && keys_shard_of(lo - 1, n) == i) ||
                (hi < 16383 && keys_shard_of(hi + 1, n) == i))
                ck_abort_msg("%d shards: shard %d has %u-%u", n, i, lo, hi);
            next = hi + 1;
        }
        if (next != 16384)
            ck_abort_msg("%d shards end at %u", n, next);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, key_field_routes_by_key);
    tcase_add_test(tc, size_rules_come_first);
    tcase_add_test(tc, empty_key_field_hashes_whole_task);
    tcase_add_test(tc, missing_key_dead_letter);
    tcase_add_test(tc, missing_key_payload);
    tcase_add_test(tc, shard_edges);
    tcase_add_test(tc, shard_hash_tags);
    tcase_add_test(tc, shard_unroutable_is_zero);
    tcase_add_test(tc, shard_slots_match_shard_of);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
