/* Unit tests for slotmap: balance, stickiness, minimal movement, weights,
 * the ranges format, and a property test over random join/leave sequences. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "slotmap.h"

static void assign_ids(struct slotmap *m, const char *const *ids, const uint32_t *w, size_t n)
{
    struct slotmap_member live[64];
    for (size_t i = 0; i < n; i++) {
        live[i].id = ids[i];
        live[i].weight = w ? w[i] : 1;
    }
    ck_assert_int_eq(slotmap_assign(m, live, n), 0);
}

static void assert_ok(const struct slotmap *m)
{
    char err[256];
    ck_assert_msg(slotmap_check(m, err, sizeof err) == 0, "%s", err);
}

static void assert_balanced(const struct slotmap *m)
{
    uint32_t lo = SLOTMAP_SLOTS / m->nworkers, hi = lo + (SLOTMAP_SLOTS % m->nworkers != 0);
    for (uint32_t i = 0; i < m->nworkers; i++)
        ck_assert_msg(m->workers[i].nslots == lo || m->workers[i].nslots == hi,
                      "%s owns %u, want %u or %u", m->workers[i].id, m->workers[i].nslots, lo, hi);
}

START_TEST(empty_table)
{
    struct slotmap m;
    slotmap_init(&m);
    ck_assert_int_eq(slotmap_assign(&m, NULL, 0), 0);
    assert_ok(&m);
    ck_assert_uint_eq(slotmap_owner(&m, 0), SLOTMAP_NOBODY);
    slotmap_free(&m);
    slotmap_free(NULL);
}
END_TEST

START_TEST(balanced_for_any_count)
{
    static char names[1000][24];
    static struct slotmap_member live[1000];
    size_t counts[] = { 1, 2, 3, 7, 10, 50, 333, 1000 };
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        struct slotmap m;
        slotmap_init(&m);
        for (size_t i = 0; i < counts[c]; i++) {
            snprintf(names[i], sizeof names[i], "w%zu", i);
            live[i].id = names[i];
            live[i].weight = 1;
        }
        ck_assert_int_eq(slotmap_assign(&m, live, counts[c]), 0);
        assert_ok(&m);
        assert_balanced(&m);
        slotmap_free(&m);
    }
}
END_TEST

START_TEST(three_workers_get_contiguous_thirds)
{
    const char *ids[] = { "a", "b", "c" };
    struct slotmap m;
    char buf[64];
    slotmap_init(&m);
    assign_ids(&m, ids, NULL, 3);
    slotmap_format_ranges(&m, 0, buf, sizeof buf);
    ck_assert_str_eq(buf, "0-5461");
    slotmap_format_ranges(&m, 1, buf, sizeof buf);
    ck_assert_str_eq(buf, "5462-10922");
    slotmap_format_ranges(&m, 2, buf, sizeof buf);
    ck_assert_str_eq(buf, "10923-16383");
    slotmap_free(&m);
}
END_TEST

/* Slots whose owner id differs between a and b. */
static unsigned moved(const struct slotmap *a, const struct slotmap *b, const char *only_to,
                      const char *only_from)
{
    unsigned n = 0;
    for (unsigned s = 0; s < SLOTMAP_SLOTS; s++) {
        const char *x = a->owner[s] == SLOTMAP_NOBODY ? "" : a->workers[a->owner[s]].id;
        const char *y = b->owner[s] == SLOTMAP_NOBODY ? "" : b->workers[b->owner[s]].id;
        if (strcmp(x, y) == 0)
            continue;
        if (only_to)
            ck_assert_msg(strcmp(y, only_to) == 0, "slot %u went to %s", s, y);
        if (only_from)
            ck_assert_msg(strcmp(x, only_from) == 0, "slot %u came from %s", s, x);
        n++;
    }
    return n;
}

START_TEST(join_moves_only_to_the_newcomer)
{
    const char *before[] = { "a", "b", "c" }, *after[] = { "a", "b", "c", "d" };
    struct slotmap m, old;
    slotmap_init(&m);
    slotmap_init(&old);
    assign_ids(&m, before, NULL, 3);
    ck_assert_int_eq(slotmap_copy(&old, &m), 0);
    assign_ids(&m, after, NULL, 4);
    assert_ok(&m);
    assert_balanced(&m);
    ck_assert_uint_eq(moved(&old, &m, "d", NULL), 4096);
    slotmap_free(&m);
    slotmap_free(&old);
}
END_TEST

START_TEST(death_moves_only_the_departed_slots)
{
    const char *before[] = { "a", "b", "c", "d" }, *after[] = { "a", "c", "d" };
    struct slotmap m, old;
    slotmap_init(&m);
    slotmap_init(&old);
    assign_ids(&m, before, NULL, 4);
    ck_assert_int_eq(slotmap_copy(&old, &m), 0);
    assign_ids(&m, after, NULL, 3);
    assert_ok(&m);
    assert_balanced(&m);
    ck_assert_uint_eq(moved(&old, &m, NULL, "b"), 4096);
    ck_assert_int_eq(slotmap_find(&m, "b"), -1);
    slotmap_free(&m);
    slotmap_free(&old);
}
END_TEST

START_TEST(weights_are_proportional)
{
    const char *ids[] = { "a", "b", "c" };
    uint32_t w[] = { 1, 2, 1 };
    struct slotmap m;
    slotmap_init(&m);
    assign_ids(&m, ids, w, 3);
    assert_ok(&m);
    ck_assert_uint_eq(m.workers[0].nslots, 4096);
    ck_assert_uint_eq(m.workers[1].nslots, 8192);
    ck_assert_uint_eq(m.workers[2].nslots, 4096);
    /* 0 counts as 1; above the maximum is clamped. */
    uint32_t w2[] = { 0, 5000, 1 };
    assign_ids(&m, ids, w2, 3);
    assert_ok(&m);
    ck_assert_uint_eq(m.workers[1].weight, SLOTMAP_WEIGHT_MAX);
    ck_assert_uint_eq(m.workers[0].nslots + m.workers[1].nslots + m.workers[2].nslots, 16384);
    ck_assert_uint_ge(m.workers[1].nslots, 16300);
    slotmap_free(&m);
}
END_TEST

START_TEST(duplicate_live_ids_count_once)
{
    const char *ids[] = { "a", "a", "b" };
    struct slotmap m;
    slotmap_init(&m);
    assign_ids(&m, ids, NULL, 3);
    ck_assert_uint_eq(m.nworkers, 2);
    assert_ok(&m);
    assert_balanced(&m);
    slotmap_free(&m);
}
END_TEST

START_TEST(ranges_round_trip_through_claim)
{
    const char *ids[] = { "a", "b", "c", "d", "e" };
    struct slotmap m, back;
    char err[128];
    static char buf[SLOTMAP_RANGES_MAX];
    slotmap_init(&m);
    slotmap_init(&back);
    assign_ids(&m, ids, NULL, 5);
    const char *fewer[] = { "a", "c", "e" };
    assign_ids(&m, fewer, NULL, 3);     /* fragments the ranges */
    for (uint32_t i = 0; i < m.nworkers; i++) {
        size_t n = slotmap_format_ranges(&m, i, buf, sizeof buf);
        ck_assert_uint_eq(n, strlen(buf));
        ck_assert_msg(slotmap_claim(&back, m.workers[i].id, buf, n, err, sizeof err) == 0, "%s", err);
    }
    assert_ok(&back);
    ck_assert_int_eq(memcmp(back.owner, m.owner, sizeof m.owner), 0);
    /* A too-small buffer still reports the length needed. */
    size_t need = slotmap_format_ranges(&m, 0, buf, sizeof buf);
    char small[4];
    ck_assert_uint_eq(slotmap_format_ranges(&m, 0, small, sizeof small), need);
    slotmap_free(&m);
    slotmap_free(&back);
}
END_TEST

START_TEST(claim_rejects_bad_input_and_changes_nothing)
{
    const char *bad[] = { "1,", ",1", "1,,2", "5-3", "16384", "0-16384", "+1", " 1", "1 ",
                          "1-", "-1", "a", "999999", "1-2-3", "00000001" };
    struct slotmap m;
    char err[128];
    slotmap_init(&m);
    ck_assert_int_eq(slotmap_claim(&m, "a", "0-99", 4, err, sizeof err), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(slotmap_claim(&m, "b", bad[i], strlen(bad[i]), err, sizeof err) != 0,
                      "accepted '%s'", bad[i]);
        ck_assert_int_eq(slotmap_find(&m, "b"), -1);
    }
    ck_assert_int_ne(slotmap_claim(&m, "b", "99-200", 6, err, sizeof err), 0);
    ck_assert_msg(strstr(err, "already owned by a") != NULL, "%s", err);
    ck_assert_int_ne(slotmap_claim(&m, "bad id!", "300", 3, err, sizeof err), 0);
    ck_assert_int_eq(slotmap_claim(&m, "b", "", 0, err, sizeof err), 0);
    ck_assert_uint_eq(m.workers[1].nslots, 0);
    ck_assert_uint_eq(m.workers[0].nslots, 100);
    slotmap_free(&m);
}
END_TEST

START_TEST(valid_ids)
{
    ck_assert(slotmap_valid_id("w-1.a_B", 7));
    ck_assert(!slotmap_valid_id("", 0));
    ck_assert(!slotmap_valid_id("a b", 3));
    ck_assert(!slotmap_valid_id("a{b}", 4));
    char long_id[66];
    memset(long_id, 'x', sizeof long_id);
    ck_assert(slotmap_valid_id(long_id, 64));
    ck_assert(!slotmap_valid_id(long_id, 65));
}
END_TEST

static uint32_t rnd(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* Random joins, deaths and leaves: after each step the invariants hold, the
 * table is balanced, and exactly the minimal set of slots moved. */
START_TEST(property_random_membership_changes)
{
    static char names[40][16];
    int present[40] = { 0 };
    struct slotmap m, old;
    struct slotmap_member live[40];
    uint32_t x = 0x9E3779B9u;
    slotmap_init(&m);
    slotmap_init(&old);
    for (int i = 0; i < 40; i++)
        snprintf(names[i], sizeof names[i], "n%d", i);
    for (int step = 0; step < 3000; step++) {
        int who = (int)(rnd(&x) % 40);
        int changes = 1 + (int)(rnd(&x) % 3 == 0);     /* sometimes two at once */
        int joined = -1, left = -1;
        for (int c = 0; c < changes; c++) {
            who = (int)(rnd(&x) % 40);
            present[who] = !present[who];
            if (c == 0 && present[who]) joined = who;
            if (c == 0 && !present[who]) left = who;
        }
        size_t n = 0;
        for (int i = 0; i < 40; i++)
            if (present[i]) {
                live[n].id = names[i];
                live[n].weight = 1;
                n++;
            }
        ck_assert_int_eq(slotmap_copy(&old, &m), 0);
        ck_assert_int_eq(slotmap_assign(&m, live, n), 0);
        assert_ok(&m);
        ck_assert_uint_eq(m.nworkers, n);
        if (n == 0)
            continue;
        assert_balanced(&m);
        if (changes == 1 && joined >= 0 && old.nworkers > 0) {
            /* Only the newcomer takes, and exactly its share. */
            ck_assert_uint_eq(moved(&old, &m, names[joined], NULL),
                              m.workers[slotmap_find(&m, names[joined])].nslots);
        } else if (changes == 1 && left >= 0) {
            int idx = slotmap_find(&old, names[left]);
            if (idx >= 0)
                ck_assert_uint_eq(moved(&old, &m, NULL, names[left]), old.workers[idx].nslots);
        }
    }
    slotmap_free(&m);
    slotmap_free(&old);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("slotmap");
    TCase *tc = tcase_create("slotmap");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, empty_table);
    tcase_add_test(tc, balanced_for_any_count);
    tcase_add_test(tc, three_workers_get_contiguous_thirds);
    tcase_add_test(tc, join_moves_only_to_the_newcomer);
    tcase_add_test(tc, death_moves_only_the_departed_slots);
    tcase_add_test(tc, weights_are_proportional);
    tcase_add_test(tc, duplicate_live_ids_count_once);
    tcase_add_test(tc, ranges_round_trip_through_claim);
    tcase_add_test(tc, claim_rejects_bad_input_and_changes_nothing);
    tcase_add_test(tc, valid_ids);
    tcase_add_test(tc, property_random_membership_changes);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
