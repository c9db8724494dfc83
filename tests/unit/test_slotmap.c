/* Unit tests for slotmap: balance, stickiness, minimal movement, weights, the
 * ranges format and its parser, and a property test over random membership
 * and weight changes checked against an independent count of the minimum. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "slotmap.h"

#define S SLOTMAP_SLOTS

/* Check records every passing ck_assert (a write to its log), which in the
 * loops over 16384 slots costs seconds; this one speaks only on failure. */
#define REQUIRE(cond, ...) \
    do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

static void assign_ids(struct slotmap *m, const char *const *ids, const uint32_t *w, size_t n)
{
    struct slotmap_member live[64];
    ck_assert_uint_le(n, 64);
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

/* Equal weights: everyone owns floor or ceil of S/n. */
static void assert_balanced(const struct slotmap *m)
{
    uint32_t lo = S / m->nworkers, hi = lo + (S % m->nworkers != 0);
    for (uint32_t i = 0; i < m->nworkers; i++)
        REQUIRE(m->workers[i].nslots == lo || m->workers[i].nslots == hi,
                      "%s owns %u, want %u or %u", m->workers[i].id, m->workers[i].nslots, lo, hi);
}

/* Any weights: each owns the floor of its exact share or one more, and no
 * worker got the extra while one with a larger remainder went without. */
static void assert_largest_remainder(const struct slotmap *m)
{
    uint64_t total = 0, min_with = UINT64_MAX, max_without = 0;
    int any_with = 0, any_without = 0;
    for (uint32_t i = 0; i < m->nworkers; i++)
        total += m->workers[i].weight;
    for (uint32_t i = 0; i < m->nworkers; i++) {
        uint64_t q = (uint64_t)S * m->workers[i].weight;
        uint64_t fl = q / total, rem = q % total;
        uint32_t got = m->workers[i].nslots;
        REQUIRE(got == fl || got == fl + 1, "%s (weight %u of %llu) owns %u, floor %llu",
                      m->workers[i].id, m->workers[i].weight, (unsigned long long)total, got,
                      (unsigned long long)fl);
        if (got == fl + 1) {
            any_with = 1;
            if (rem < min_with)
                min_with = rem;
        } else {
            any_without = 1;
            if (rem > max_without)
                max_without = rem;
        }
    }
    if (any_with && any_without)
        ck_assert_msg(min_with >= max_without, "an extra slot went to remainder %llu over %llu",
                      (unsigned long long)min_with, (unsigned long long)max_without);
}

/* Slots whose owner (by id) differs between a and b; if only_to / only_from
 * are set, every moved slot must go to / come from that id. */
static unsigned moved(const struct slotmap *a, const struct slotmap *b, const char *only_to,
                      const char *only_from)
{
    unsigned n = 0;
    for (unsigned s = 0; s < S; s++) {
        const char *x = a->owner[s] == SLOTMAP_NOBODY ? "" : a->workers[a->owner[s]].id;
        const char *y = b->owner[s] == SLOTMAP_NOBODY ? "" : b->workers[b->owner[s]].id;
        if (strcmp(x, y) == 0)
            continue;
        if (only_to)
            REQUIRE(strcmp(y, only_to) == 0, "slot %u went to %s", s, y);
        if (only_from)
            REQUIRE(strcmp(x, only_from) == 0, "slot %u came from %s", s, x);
        n++;
    }
    return n;
}

static struct slotmap_member *numbered(size_t n, const char *fmt)
{
    static char names[S + 1][24];
    static struct slotmap_member live[S + 1];
    ck_assert_uint_le(n, S + 1);
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], fmt, i);
        live[i].id = names[i];
        live[i].weight = 1;
    }
    return live;
}

START_TEST(empty_table)
{
    struct slotmap m;
    char buf[8] = "x";
    slotmap_init(&m);
    assert_ok(&m);
    ck_assert_int_eq(slotmap_assign(&m, NULL, 0), 0);
    assert_ok(&m);
    ck_assert_uint_eq(slotmap_owner(&m, 0), SLOTMAP_NOBODY);
    ck_assert_uint_eq(slotmap_format_ranges(&m, 0, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(slotmap_find(&m, "a"), -1);
    slotmap_free(&m);
    slotmap_free(NULL);
}
END_TEST

START_TEST(balanced_for_1_to_50_workers)
{
    for (size_t n = 1; n <= 50; n++) {
        struct slotmap m;
        slotmap_init(&m);
        ck_assert_int_eq(slotmap_assign(&m, numbered(n, "w%zu"), n), 0);
        assert_ok(&m);
        ck_assert_uint_eq(m.nworkers, n);
        assert_balanced(&m);
        /* From an empty table each worker gets one run, in worker order. */
        for (unsigned s = 1; s < S; s++)
            REQUIRE(m.owner[s - 1] <= m.owner[s], "slot %u out of order", s);
        slotmap_free(&m);
    }
}
END_TEST

START_TEST(balanced_for_many_workers)
{
    size_t counts[] = { 333, 1000, 4095, 16383, 16384 };
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        struct slotmap m;
        slotmap_init(&m);
        ck_assert_int_eq(slotmap_assign(&m, numbered(counts[c], "w%zu"), counts[c]), 0);
        assert_ok(&m);
        assert_balanced(&m);
        slotmap_free(&m);
    }
    /* One slot each: worker i owns slot i. */
    struct slotmap m;
    slotmap_init(&m);
    ck_assert_int_eq(slotmap_assign(&m, numbered(S, "w%zu"), S), 0);
    for (unsigned s = 0; s < S; s++)
        REQUIRE(m.owner[s] == s, "slot %u owned by %u", s, m.owner[s]);
    slotmap_free(&m);
}
END_TEST

START_TEST(more_workers_than_slots_is_refused)
{
    struct slotmap m, before;
    slotmap_init(&m);
    slotmap_init(&before);
    struct slotmap_member *live = numbered(S + 1, "w%zu");
    ck_assert_int_eq(slotmap_assign(&m, live, 3), 0);
    ck_assert_int_eq(slotmap_copy(&before, &m), 0);
    ck_assert_int_eq(slotmap_assign(&m, live, S + 1), -1);
    ck_assert_uint_eq(m.nworkers, 3);
    ck_assert_int_eq(memcmp(m.owner, before.owner, sizeof m.owner), 0);
    /* Duplicates do not count against the limit. */
    live[S].id = live[0].id;
    ck_assert_int_eq(slotmap_assign(&m, live, S + 1), 0);
    ck_assert_uint_eq(m.nworkers, S);
    assert_ok(&m);
    slotmap_free(&m);
    slotmap_free(&before);
}
END_TEST

START_TEST(invalid_live_id_is_refused)
{
    const char *ids[] = { "a", "b" };
    struct slotmap m, before;
    char long_id[70];
    slotmap_init(&m);
    slotmap_init(&before);
    assign_ids(&m, ids, NULL, 2);
    ck_assert_int_eq(slotmap_copy(&before, &m), 0);
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    const char *bad[] = { "", "a b", "c{d}", long_id, NULL };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct slotmap_member live[] = { { "a", 1 }, { bad[i], 1 } };
        ck_assert_int_eq(slotmap_assign(&m, live, 2), -1);
        ck_assert_uint_eq(m.nworkers, 2);
        ck_assert_int_eq(memcmp(m.owner, before.owner, sizeof m.owner), 0);
    }
    slotmap_free(&m);
    slotmap_free(&before);
}
END_TEST

START_TEST(three_workers_get_contiguous_thirds)
{
    const char *ids[] = { "a", "b", "c" };
    struct slotmap m;
    char buf[64];
    slotmap_init(&m);
    assign_ids(&m, ids, NULL, 3);
    /* 16384 = 3 * 5461 + 1: the extra goes to the lowest index. */
    ck_assert_uint_eq(slotmap_format_ranges(&m, 0, buf, sizeof buf), 6);
    ck_assert_str_eq(buf, "0-5461");
    slotmap_format_ranges(&m, 1, buf, sizeof buf);
    ck_assert_str_eq(buf, "5462-10922");
    slotmap_format_ranges(&m, 2, buf, sizeof buf);
    ck_assert_str_eq(buf, "10923-16383");
    slotmap_free(&m);
}
END_TEST

START_TEST(join_moves_only_to_the_newcomer)
{
    const char *before[] = { "a", "b", "c" }, *after[] = { "a", "b", "c", "d" };
    struct slotmap m, old;
    char buf[64];
    slotmap_init(&m);
    slotmap_init(&old);
    assign_ids(&m, before, NULL, 3);
    ck_assert_int_eq(slotmap_copy(&old, &m), 0);
    assign_ids(&m, after, NULL, 4);
    assert_ok(&m);
    assert_balanced(&m);
    ck_assert_uint_eq(moved(&old, &m, "d", NULL), 4096);
    /* Known answer: each gives up the top of its range (a 1366, b and c
     * 1365), and d takes those, lowest first. */
    slotmap_format_ranges(&m, 0, buf, sizeof buf);
    ck_assert_str_eq(buf, "0-4095");
    slotmap_format_ranges(&m, 1, buf, sizeof buf);
    ck_assert_str_eq(buf, "5462-9557");
    slotmap_format_ranges(&m, 2, buf, sizeof buf);
    ck_assert_str_eq(buf, "10923-15018");
    slotmap_format_ranges(&m, 3, buf, sizeof buf);
    ck_assert_str_eq(buf, "4096-5461,9558-10922,15019-16383");
    slotmap_free(&m);
    slotmap_free(&old);
}
END_TEST

START_TEST(death_moves_only_the_departed_slots)
{
    const char *before[] = { "a", "b", "c", "d" }, *after[] = { "a", "c", "d" };
    struct slotmap m, old;
    char buf[64];
    slotmap_init(&m);
    slotmap_init(&old);
    assign_ids(&m, before, NULL, 4);
    ck_assert_int_eq(slotmap_copy(&old, &m), 0);
    assign_ids(&m, after, NULL, 3);
    assert_ok(&m);
    assert_balanced(&m);
    ck_assert_uint_eq(moved(&old, &m, NULL, "b"), 4096);
    ck_assert_int_eq(slotmap_find(&m, "b"), -1);
    ck_assert_int_eq(slotmap_find(&m, "c"), 1);     /* indices shift down */
    /* b's 4096-8191 go, lowest first, to a (1366), c and d (1365 each). */
    slotmap_format_ranges(&m, 0, buf, sizeof buf);
    ck_assert_str_eq(buf, "0-5461");
    slotmap_format_ranges(&m, 1, buf, sizeof buf);
    ck_assert_str_eq(buf, "5462-6826,8192-12287");
    slotmap_format_ranges(&m, 2, buf, sizeof buf);
    ck_assert_str_eq(buf, "6827-8191,12288-16383");
    slotmap_free(&m);
    slotmap_free(&old);
}
END_TEST

/* Where floor(S/n) < ceil(S/(n+1)), only the tie-break keeps a join
 * minimal: the extras must go to the survivors that already hold one more.
 * A death first leaves those out of index order, so lowest-index-first
 * would not do. Deaths at the front, in the middle and at the end, each
 * followed by a join. */
START_TEST(join_and_death_are_minimal_for_many_workers)
{
    size_t sizes[] = { 127, 128, 129, 1000, 5000, 8191, 8192, 16383 };
    static char extra[8][24];
    for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
        size_t n = sizes[c];
        struct slotmap m, old;
        struct slotmap_member *live = numbered(n, "w%zu");
        slotmap_init(&m);
        slotmap_init(&old);
        ck_assert_int_eq(slotmap_assign(&m, live, n), 0);
        for (int round = 0; round < 3; round++) {
            /* A death: drop live[gone], keeping live in table order. */
            size_t gone = round == 0 ? 0 : round == 1 ? n / 2 : n - 1;
            char dead[24];
            snprintf(dead, sizeof dead, "%s", live[gone].id);
            uint32_t had = m.workers[slotmap_find(&m, dead)].nslots;
            memmove(&live[gone], &live[gone + 1], (n - 1 - gone) * sizeof *live);
            ck_assert_int_eq(slotmap_copy(&old, &m), 0);
            ck_assert_int_eq(slotmap_assign(&m, live, n - 1), 0);
            assert_ok(&m);
            assert_balanced(&m);
            ck_assert_uint_eq(moved(&old, &m, NULL, dead), had);

            /* A join. */
            snprintf(extra[round], sizeof extra[round], "new%d", round);
            live[n - 1].id = extra[round];
            live[n - 1].weight = 1;
            ck_assert_int_eq(slotmap_copy(&old, &m), 0);
            ck_assert_int_eq(slotmap_assign(&m, live, n), 0);
            assert_ok(&m);
            assert_balanced(&m);
            ck_assert_uint_eq(moved(&old, &m, extra[round], NULL),
                              m.workers[slotmap_find(&m, extra[round])].nslots);
        }
        slotmap_free(&m);
        slotmap_free(&old);
    }
}
END_TEST

/* A shard's table: only its range is spread, balanced, and joins and
 * deaths stay minimal there; slots outside it, even owned before, are
 * released. */
START_TEST(a_range_is_spread_alone)
{
    const unsigned lo = 5462, hi = 10922;      /* shard 1 of 3 */
    struct slotmap m, old;
    slotmap_init(&m);
    slotmap_init(&old);
    /* A table of the whole space first, as a namespace had before shards. */
    ck_assert_int_eq(slotmap_assign(&m, numbered(2, "w%zu"), 2), 0);
    ck_assert_int_eq(slotmap_assign_range(&m, numbered(2, "w%zu"), 2, lo, hi), 0);
    for (unsigned s = 0; s < S; s++)
        REQUIRE((m.owner[s] != SLOTMAP_NOBODY) == (s >= lo && s <= hi), "slot %u: owner %u", s,
                m.owner[s]);
    uint32_t size = hi - lo + 1;
    for (uint32_t i = 0; i < 2; i++)
        REQUIRE(m.workers[i].nslots == size / 2 || m.workers[i].nslots == size / 2 + 1,
                "%s owns %u", m.workers[i].id, m.workers[i].nslots);
    /* Both own part of the range: the shard's tasks reach both. */
    ck_assert_uint_gt(m.workers[0].nslots, 0);
    ck_assert_uint_gt(m.workers[1].nslots, 0);
    /* A join takes only what the newcomer gets, a death only the dead's. */
    ck_assert_int_eq(slotmap_copy(&old, &m), 0);
    ck_assert_int_eq(slotmap_assign_range(&m, numbered(3, "w%zu"), 3, lo, hi), 0);
    ck_assert_uint_eq(moved(&old, &m, "w2", NULL), m.workers[slotmap_find(&m, "w2")].nslots);
    uint32_t had = m.workers[slotmap_find(&m, "w0")].nslots;
    ck_assert_int_eq(slotmap_copy(&old, &m), 0);
    struct slotmap_member *live = numbered(3, "w%zu");
    ck_assert_int_eq(slotmap_assign_range(&m, live + 1, 2, lo, hi), 0);
    ck_assert_uint_eq(moved(&old, &m, NULL, "w0"), had);
    for (unsigned s = 0; s < S; s++)
        REQUIRE((m.owner[s] != SLOTMAP_NOBODY) == (s >= lo && s <= hi), "slot %u", s);
    /* A range outside the slots is refused. */
    ck_assert_int_eq(slotmap_assign_range(&m, live, 1, 10, 9), -1);
    ck_assert_int_eq(slotmap_assign_range(&m, live, 1, 0, S), -1);
    slotmap_free(&m);
    slotmap_free(&old);
}
END_TEST

START_TEST(weights_are_proportional)
{
    const char *ids[] = { "a", "b", "c" };
    uint32_t w[] = { 1, 2, 1 };
    struct slotmap m;
    char buf[64];
    slotmap_init(&m);
    assign_ids(&m, ids, w, 3);
    assert_ok(&m);
    ck_assert_uint_eq(m.workers[0].nslots, 4096);
    ck_assert_uint_eq(m.workers[1].nslots, 8192);
    ck_assert_uint_eq(m.workers[2].nslots, 4096);
    slotmap_format_ranges(&m, 1, buf, sizeof buf);
    ck_assert_str_eq(buf, "4096-12287");

    /* 0 counts as 1; above the maximum is clamped:
     * 16384 * 1000 / 1002 = 16351.3, 16384 / 1002 = 16.35 each. */
    uint32_t w2[] = { 0, 5000, 1 };
    assign_ids(&m, ids, w2, 3);
    assert_ok(&m);
    assert_largest_remainder(&m);
    ck_assert_uint_eq(m.workers[0].weight, 1);
    ck_assert_uint_eq(m.workers[1].weight, SLOTMAP_WEIGHT_MAX);
    ck_assert_uint_eq(m.workers[0].nslots, 17);
    ck_assert_uint_eq(m.workers[1].nslots, 16351);
    ck_assert_uint_eq(m.workers[2].nslots, 16);
    slotmap_free(&m);
}
END_TEST

START_TEST(weight_change_moves_only_the_difference)
{
    const char *ids[] = { "a", "b", "c", "d" };
    uint32_t w1[] = { 1, 1, 1, 1 }, w2[] = { 1, 3, 1, 1 };
    struct slotmap m, old;
    slotmap_init(&m);
    slotmap_init(&old);
    assign_ids(&m, ids, w1, 4);
    ck_assert_int_eq(slotmap_copy(&old, &m), 0);
    assign_ids(&m, ids, w2, 4);
    assert_ok(&m);
    assert_largest_remainder(&m);
    /* b goes from 4096 to 16384 * 3/6 = 8192, each other from 4096 to 2731
     * or 2730: exactly b's gain moves, and only to b. */
    ck_assert_uint_eq(m.workers[1].nslots, 8192);
    ck_assert_uint_eq(moved(&old, &m, "b", NULL), 8192 - 4096);
    slotmap_free(&m);
    slotmap_free(&old);
}
END_TEST

START_TEST(duplicate_live_ids_count_once)
{
    const char *ids[] = { "a", "a", "b" };
    uint32_t w[] = { 3, 1, 1 };
    struct slotmap m;
    slotmap_init(&m);
    assign_ids(&m, ids, w, 3);
    ck_assert_uint_eq(m.nworkers, 2);
    assert_ok(&m);
    ck_assert_uint_eq(m.workers[0].weight, 3);      /* the first one's */
    ck_assert_uint_eq(m.workers[0].nslots, 12288);
    slotmap_free(&m);
}
END_TEST

START_TEST(assign_balances_a_loaded_table)
{
    struct slotmap m;
    char err[128], buf[64];
    slotmap_init(&m);
    /* As loaded from Redis: a owns everything but 100-199, b nothing. */
    ck_assert_int_eq(slotmap_claim(&m, "a", "0-99,200-16383", 14, err, sizeof err), 0);
    ck_assert_int_eq(slotmap_claim(&m, "b", "", 0, err, sizeof err), 0);
    ck_assert_int_ne(slotmap_check(&m, err, sizeof err), 0);     /* 100-199 unowned */
    const char *ids[] = { "a", "b" };
    assign_ids(&m, ids, NULL, 2);
    assert_ok(&m);
    /* a keeps its lowest 8192; b takes 100-199 first, then a's top. */
    slotmap_format_ranges(&m, 0, buf, sizeof buf);
    ck_assert_str_eq(buf, "0-99,200-8291");
    slotmap_format_ranges(&m, 1, buf, sizeof buf);
    ck_assert_str_eq(buf, "100-199,8292-16383");
    slotmap_free(&m);
}
END_TEST

START_TEST(everyone_leaves)
{
    const char *ids[] = { "a", "b" };
    struct slotmap m;
    slotmap_init(&m);
    assign_ids(&m, ids, NULL, 2);
    ck_assert_int_eq(slotmap_assign(&m, NULL, 0), 0);
    assert_ok(&m);
    ck_assert_uint_eq(m.nworkers, 0);
    for (unsigned s = 0; s < S; s++)
        REQUIRE(m.owner[s] == SLOTMAP_NOBODY, "slot %u still owned", s);
    slotmap_free(&m);
}
END_TEST

START_TEST(format_ranges)
{
    struct slotmap m;
    char err[128], buf[64];
    static char big[SLOTMAP_RANGES_MAX];
    slotmap_init(&m);
    ck_assert_int_eq(slotmap_claim(&m, "a", "7,9-10,16383", 12, err, sizeof err), 0);
    ck_assert_uint_eq(slotmap_format_ranges(&m, 0, buf, sizeof buf), 12);
    ck_assert_str_eq(buf, "7,9-10,16383");
    /* Too small: the whole pieces that fit, and the length needed. */
    ck_assert_uint_eq(slotmap_format_ranges(&m, 0, buf, 7), 12);
    ck_assert_str_eq(buf, "7,9-10");
    ck_assert_uint_eq(slotmap_format_ranges(&m, 0, buf, 6), 12);
    ck_assert_str_eq(buf, "7");
    ck_assert_uint_eq(slotmap_format_ranges(&m, 0, buf, 1), 12);
    ck_assert_str_eq(buf, "");
    ck_assert_uint_eq(slotmap_format_ranges(&m, 0, NULL, 0), 12);
    /* Not a worker. */
    ck_assert_uint_eq(slotmap_format_ranges(&m, 1, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "");
    ck_assert_uint_eq(slotmap_format_ranges(&m, SLOTMAP_NOBODY, buf, sizeof buf), 0);
    slotmap_free(&m);

    /* The worst case, every other slot, fits SLOTMAP_RANGES_MAX. */
    slotmap_init(&m);
    ck_assert_int_eq(slotmap_claim(&m, "a", "", 0, err, sizeof err), 0);
    for (unsigned s = 0; s < S; s += 2) {
        m.owner[s] = 0;
        m.workers[0].nslots++;
    }
    size_t n = slotmap_format_ranges(&m, 0, big, sizeof big);
    ck_assert_uint_lt(n, sizeof big);
    ck_assert_uint_eq(n, strlen(big));
    ck_assert_int_eq(strncmp(big, "0,2,4,", 6), 0);
    ck_assert_str_eq(big + n - 6, ",16382");
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
    /* Churn, so that the ranges fragment. */
    const char *fewer[] = { "a", "c", "e" }, *more[] = { "a", "c", "e", "f", "g" };
    const char *last[] = { "c", "f", "g" };
    assign_ids(&m, ids, NULL, 5);
    assign_ids(&m, fewer, NULL, 3);
    assign_ids(&m, more, NULL, 5);
    assign_ids(&m, last, NULL, 3);
    int fragmented = 0;
    for (uint32_t i = 0; i < m.nworkers; i++) {
        size_t n = slotmap_format_ranges(&m, i, buf, sizeof buf);
        ck_assert_uint_eq(n, strlen(buf));
        fragmented += strchr(buf, ',') != NULL;
        ck_assert_msg(slotmap_claim(&back, m.workers[i].id, buf, n, err, sizeof err) == 0, "%s", err);
    }
    ck_assert_int_eq(fragmented, 3);
    assert_ok(&back);
    ck_assert_int_eq(memcmp(back.owner, m.owner, sizeof m.owner), 0);
    slotmap_free(&m);
    slotmap_free(&back);
}
END_TEST

START_TEST(claim_rejects_bad_input_and_changes_nothing)
{
    const char *bad[] = { "1,", ",1", ",", "-", "1,,2", "5-3", "16384", "0-16384", "+1", "-1",
                          " 1", "1 ", "1, 2", "1 -2", "1-", "1--2", "1-2-3", "1,-2", "a", "1a",
                          "0x10", "999999", "00000001", "01", "00", "0-01",
                          "99999999999999999999", "4294967297", "18446744073709551617",
                          "1;2", "1\t" };
    struct slotmap m, before;
    char err[128];
    slotmap_init(&m);
    slotmap_init(&before);
    ck_assert_int_eq(slotmap_claim(&m, "a", "0-99", 4, err, sizeof err), 0);
    ck_assert_int_eq(slotmap_copy(&before, &m), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(slotmap_claim(&m, "b", bad[i], strlen(bad[i]), err, sizeof err) != 0,
                      "accepted '%s'", bad[i]);
        ck_assert_int_eq(slotmap_find(&m, "b"), -1);
        /* Also for a worker that exists: its slots stay as they were. */
        ck_assert_msg(slotmap_claim(&m, "a", bad[i], strlen(bad[i]), err, sizeof err) != 0,
                      "accepted '%s'", bad[i]);
        ck_assert_uint_eq(m.nworkers, 1);
        ck_assert_int_eq(memcmp(m.owner, before.owner, sizeof m.owner), 0);
    }
    /* The length is honoured: a NUL inside is a bad byte, bytes past len unread. */
    ck_assert_int_ne(slotmap_claim(&m, "b", "1\0", 2, err, sizeof err), 0);
    ck_assert_int_eq(slotmap_claim(&m, "b", "200,", 3, err, sizeof err), 0);
    ck_assert_uint_eq(m.workers[1].nslots, 1);

    /* Another worker's slot, even the last one of a range that starts free. */
    ck_assert_int_ne(slotmap_claim(&m, "c", "300-400,50", 10, err, sizeof err), 0);
    ck_assert_msg(strstr(err, "already owned by a") != NULL, "%s", err);
    ck_assert_int_ne(slotmap_claim(&m, "c", "150-200", 7, err, sizeof err), 0);
    ck_assert_msg(strstr(err, "already owned by b") != NULL, "%s", err);
    ck_assert_int_eq(slotmap_find(&m, "c"), -1);
    ck_assert_uint_eq(m.owner[300], SLOTMAP_NOBODY);

    ck_assert_int_ne(slotmap_claim(&m, "bad id!", "300", 3, err, sizeof err), 0);
    ck_assert_int_ne(slotmap_claim(&m, "", "300", 3, err, sizeof err), 0);
    ck_assert_uint_eq(m.nworkers, 2);
    slotmap_free(&m);
    slotmap_free(&before);
}
END_TEST

START_TEST(claim_accepts)
{
    struct slotmap m;
    char err[128];
    slotmap_init(&m);
    ck_assert_int_eq(slotmap_claim(&m, "a", "", 0, err, sizeof err), 0);
    ck_assert_uint_eq(m.workers[0].nslots, 0);
    ck_assert_uint_eq(m.workers[0].weight, 1);
    ck_assert_int_eq(slotmap_claim(&m, "a", NULL, 0, err, sizeof err), 0);
    ck_assert_int_eq(slotmap_claim(&m, "a", "0", 1, err, sizeof err), 0);
    ck_assert_int_eq(slotmap_claim(&m, "a", "7-7", 3, err, sizeof err), 0);
    /* Again, overlapping and out of order: its own slots are no conflict. */
    ck_assert_int_eq(slotmap_claim(&m, "a", "10-20,0,15-30,7", 15, err, sizeof err), 0);
    ck_assert_uint_eq(m.workers[0].nslots, 23);     /* 0, 7, 10-30 */
    ck_assert_int_eq(slotmap_claim(&m, "b", "16383,31-16382", 14, err, sizeof err), 0);
    ck_assert_uint_eq(m.workers[1].nslots, S - 31);
    ck_assert_int_eq(slotmap_claim(&m, "c", "1-6,8,9", 7, err, sizeof err), 0);
    assert_ok(&m);
    slotmap_free(&m);
}
END_TEST

START_TEST(valid_ids)
{
    ck_assert(slotmap_valid_id("w-1.a_B", 7));
    ck_assert(slotmap_valid_id("0", 1));
    ck_assert(!slotmap_valid_id("", 0));
    ck_assert(!slotmap_valid_id("a b", 3));
    ck_assert(!slotmap_valid_id("a{b}", 4));
    ck_assert(!slotmap_valid_id("a:b", 3));
    ck_assert(!slotmap_valid_id("a\0b", 3));
    ck_assert(!slotmap_valid_id("\xc3\xa9", 2));
    ck_assert(slotmap_valid_id("ab", 1));          /* len, not the NUL, decides */
    char long_id[66];
    memset(long_id, 'x', sizeof long_id);
    ck_assert(slotmap_valid_id(long_id, 64));
    ck_assert(!slotmap_valid_id(long_id, 65));
}
END_TEST

START_TEST(copy_is_deep)
{
    const char *ids[] = { "a", "b" };
    struct slotmap m, c;
    slotmap_init(&m);
    slotmap_init(&c);
    assign_ids(&m, ids, NULL, 2);
    ck_assert_int_eq(slotmap_copy(&c, &m), 0);
    ck_assert_ptr_ne(c.workers, m.workers);
    slotmap_free(&m);
    assert_ok(&c);
    ck_assert_str_eq(c.workers[1].id, "b");
    ck_assert_int_eq(slotmap_copy(&c, &m), 0);      /* copying an empty one */
    ck_assert_uint_eq(c.nworkers, 0);
    assert_ok(&c);
    slotmap_free(&c);
}
END_TEST

START_TEST(check_catches_broken_tables)
{
    const char *ids[] = { "a", "b" };
    struct slotmap m;
    char err[128];
    slotmap_init(&m);
    assign_ids(&m, ids, NULL, 2);
    m.workers[0].nslots--;
    ck_assert_int_ne(slotmap_check(&m, err, sizeof err), 0);
    m.workers[0].nslots++;
    m.owner[5] = 2;
    ck_assert_int_ne(slotmap_check(&m, err, sizeof err), 0);
    m.owner[5] = 0;
    memcpy(m.workers[1].id, "a", 2);
    ck_assert_int_ne(slotmap_check(&m, err, sizeof err), 0);
    ck_assert_msg(strstr(err, "twice") != NULL, "%s", err);
    memcpy(m.workers[1].id, "b", 2);
    m.workers[1].weight = 0;
    ck_assert_int_ne(slotmap_check(&m, err, sizeof err), 0);
    m.workers[1].weight = 1;
    assert_ok(&m);
    slotmap_free(&m);
}
END_TEST

/* ---- the property test ---- */

static uint32_t xorshift32(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

#define POOL 40

/*
 * The fewest slots any valid assignment could move from old to m's workers
 * and weights, counted without the code under test. A worker i that keeps
 * o_i slots and gets target t_i takes max(0, t_i - o_i); t_i is the floor f_i
 * of its share or f_i + 1, the +1s going by largest remainder. Those with a
 * remainder above the cut get one; among those at the cut, k get one, and it
 * costs nothing for each of them that already holds more than f_i.
 */
static unsigned minimal_moves(const struct slotmap *old, const struct slotmap *m)
{
    uint64_t total = 0, fsum = 0, fl[POOL], rem[POOL], kept[POOL];
    uint32_t n = m->nworkers;
    unsigned cost = 0;

    ck_assert_uint_le(n, POOL);

    for (uint32_t i = 0; i < n; i++)
        total += m->workers[i].weight;
    for (uint32_t i = 0; i < n; i++) {
        int j = slotmap_find(old, m->workers[i].id);
        kept[i] = j < 0 ? 0 : old->workers[j].nslots;
        fl[i] = (uint64_t)S * m->workers[i].weight / total;
        rem[i] = (uint64_t)S * m->workers[i].weight % total;
        fsum += fl[i];
        if (fl[i] > kept[i])
            cost += (unsigned)(fl[i] - kept[i]);
    }
    uint64_t extras = S - fsum;
    if (extras == 0)
        return cost;
    /* The cut: the extras-th largest remainder. */
    uint64_t cut = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t above = 0;
        for (uint32_t j = 0; j < n; j++)
            above += rem[j] >= rem[i];
        if (above >= extras && rem[i] > cut)
            cut = rem[i];
    }
    uint64_t given = 0, at_cut_holding = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (rem[i] > cut) {
            given++;
            cost += kept[i] <= fl[i];
        } else if (rem[i] == cut && kept[i] > fl[i]) {
            at_cut_holding++;
        }
    }
    uint64_t k = extras - given;
    if (k > at_cut_holding)
        cost += (unsigned)(k - at_cut_holding);
    return cost;
}

/* Every moved slot left a worker that departed or shrank, for one that grew. */
static void assert_moves_go_downhill(const struct slotmap *old, const struct slotmap *m)
{
    int to_new[POOL * 2], to_old[POOL * 2];
    for (uint32_t i = 0; i < old->nworkers; i++)
        to_new[i] = slotmap_find(m, old->workers[i].id);
    for (uint32_t i = 0; i < m->nworkers; i++)
        to_old[i] = slotmap_find(old, m->workers[i].id);
    for (unsigned s = 0; s < S; s++) {
        unsigned a = old->owner[s], b = m->owner[s];
        if (a != SLOTMAP_NOBODY && to_new[a] == (int)b)
            continue;
        uint32_t had = to_old[b] < 0 ? 0 : old->workers[to_old[b]].nslots;
        REQUIRE(m->workers[b].nslots > had, "slot %u went to %s, which did not grow", s,
                      m->workers[b].id);
        if (a != SLOTMAP_NOBODY && to_new[a] >= 0)
            REQUIRE(m->workers[to_new[a]].nslots < old->workers[a].nslots,
                          "slot %u left %s, which did not shrink", s, old->workers[a].id);
    }
}

static unsigned count_moved(const struct slotmap *old, const struct slotmap *m)
{
    int to_new[POOL * 2];
    unsigned n = 0;
    for (uint32_t i = 0; i < old->nworkers; i++)
        to_new[i] = slotmap_find(m, old->workers[i].id);
    for (unsigned s = 0; s < S; s++) {
        unsigned a = old->owner[s];
        n += a == SLOTMAP_NOBODY || to_new[a] != (int)m->owner[s];
    }
    return n;
}

/* A table as a stale or foreign copy in Redis might hold it: random runs
 * claimed by random workers, some slots unowned, nothing balanced. */
static void load_random_table(struct slotmap *m, char names[][16], uint32_t *x)
{
    char ranges[64], err[128];
    slotmap_free(m);
    slotmap_init(m);
    for (unsigned s = 0; s < S;) {
        unsigned len = 1 + xorshift32(x) % 3000, e = s + len - 1;
        if (e >= S)
            e = S - 1;
        if (xorshift32(x) % 4 != 0) {
            int n = snprintf(ranges, sizeof ranges, "%u-%u", s, e);
            ck_assert_msg(slotmap_claim(m, names[xorshift32(x) % POOL], ranges, (size_t)n, err,
                                        sizeof err) == 0, "%s", err);
        }
        s = e + 1;
    }
}

/* Random joins, deaths, weight changes and reloads: after each step the
 * invariants hold, the targets are the largest-remainder shares, exactly the
 * minimal number of slots moved, each in the right direction, and with equal
 * weights a pure join (death) moves only to the newcomers (from the dead). */
START_TEST(property_random_membership_changes)
{
    static char names[POOL][16];
    int present[POOL] = { 0 };
    uint32_t weight[POOL];
    struct slotmap m, old;
    struct slotmap_member live[POOL];
    uint32_t x = 0x9E3779B9u;
    unsigned steps_with_moves = 0;

    slotmap_init(&m);
    slotmap_init(&old);
    for (int i = 0; i < POOL; i++) {
        snprintf(names[i], sizeof names[i], "n%d", i);
        weight[i] = 1;
    }
    for (int step = 0; step < 4000; step++) {
        /* Phases of 1000 steps: equal weights, then small weights with many
         * ties, then any weight (0 and over the maximum included). */
        int phase = step / 1000;
        int joins = 0, leaves = 0, reweights = 0;
        uint32_t op = xorshift32(&x) % 100;

        if (op < 2) {
            load_random_table(&m, names, &x);
        } else {
            int changes = 1 + (op % 5 == 0) + (op % 11 == 0);
            for (int c = 0; c < changes; c++) {
                int who = (int)(xorshift32(&x) % POOL);
                if (phase > 0 && present[who] && xorshift32(&x) % 3 == 0) {
                    uint32_t r = xorshift32(&x);
                    weight[who] = phase == 1 ? 1 + r % 4 : phase == 2 ? r % 1200 : 1 + r % 7;
                    reweights++;
                } else {
                    present[who] = !present[who];
                    if (present[who])
                        joins++;
                    else
                        leaves++;
                }
            }
        }
        size_t n = 0;
        for (int i = 0; i < POOL; i++)
            if (present[i]) {
                live[n].id = names[i];
                live[n].weight = phase == 0 ? 1 : weight[i];
                n++;
            }
        ck_assert_int_eq(slotmap_copy(&old, &m), 0);
        ck_assert_int_eq(slotmap_assign(&m, live, n), 0);
        assert_ok(&m);
        ck_assert_uint_eq(m.nworkers, n);
        if (n == 0)
            continue;
        assert_largest_remainder(&m);
        unsigned mv = count_moved(&old, &m);
        ck_assert_uint_eq(mv, minimal_moves(&old, &m));
        assert_moves_go_downhill(&old, &m);
        steps_with_moves += mv > 0;

        /* Largest remainder is not monotone with unequal weights (a death
         * can cost a survivor its extra slot), so only equal weights before
         * and after promise this. */
        int equal = 1;
        for (uint32_t i = 0; i < m.nworkers; i++)
            equal &= m.workers[i].weight == m.workers[0].weight;
        for (uint32_t i = 0; i < old.nworkers; i++)
            equal &= old.workers[i].weight == m.workers[0].weight;
        int was_balanced = old.nworkers > 0 && op >= 2;
        if (equal && was_balanced && reweights == 0 && (joins == 0 || leaves == 0)) {
            assert_balanced(&m);
            for (uint32_t i = 0; i < m.nworkers; i++) {
                int j = slotmap_find(&old, m.workers[i].id);
                if (j < 0)
                    continue;
                /* A survivor neither takes (on deaths) nor gives (on joins). */
                if (joins == 0)
                    REQUIRE(m.workers[i].nslots >= old.workers[j].nslots, "%s took slots on a death",
                            m.workers[i].id);
                if (leaves == 0)
                    REQUIRE(m.workers[i].nslots <= old.workers[j].nslots, "%s gave slots on a join",
                            m.workers[i].id);
            }
        }
    }
    ck_assert_uint_gt(steps_with_moves, 2000);     /* the test did test */
    slotmap_free(&m);
    slotmap_free(&old);
}
END_TEST

/* The bitmap form: the same as the ranges it stands for, the same checks. */
START_TEST(claim_bits_matches_claim)
{
    struct slotmap a, b;
    uint8_t bits[SLOTMAP_BITS_LEN];
    char err[128];
    slotmap_init(&a);
    slotmap_init(&b);
    memset(bits, 0, sizeof bits);
    for (unsigned s = 0; s < SLOTMAP_SLOTS; s++)
        if ((s >= 10 && s <= 20) || s == 16383 || s % 1000 == 7)
            slotmap_bit_set(bits, s);
    ck_assert_int_eq(slotmap_claim_bits(&a, "w", bits, err, sizeof err), 0);
    char ranges[SLOTMAP_RANGES_MAX];
    size_t n = slotmap_format_ranges(&a, 0, ranges, sizeof ranges);
    ck_assert_str_eq(ranges, "7,10-20,1007,2007,3007,4007,5007,6007,7007,8007,9007,10007,"
                             "11007,12007,13007,14007,15007,16007,16383");
    ck_assert_int_eq(slotmap_claim(&b, "w", ranges, n, err, sizeof err), 0);
    ck_assert_int_eq(memcmp(a.owner, b.owner, sizeof a.owner), 0);
    ck_assert_uint_eq(a.workers[0].nslots, b.workers[0].nslots);
    ck_assert_uint_eq(slotmap_bit(bits, 15), 1);
    ck_assert_uint_eq(slotmap_bit(bits, 21), 0);

    /* Another worker's slot: refused, nothing changed. */
    memset(bits, 0, sizeof bits);
    slotmap_bit_set(bits, 100);
    slotmap_bit_set(bits, 15);
    ck_assert_int_ne(slotmap_claim_bits(&a, "v", bits, err, sizeof err), 0);
    ck_assert_msg(strstr(err, "slot 15 is already owned by w") != NULL, "%s", err);
    ck_assert_int_eq(slotmap_find(&a, "v"), -1);
    ck_assert_uint_eq(a.owner[100], SLOTMAP_NOBODY);
    /* Its own slots again, and an empty set: fine. */
    ck_assert_int_eq(slotmap_claim_bits(&a, "w", bits, err, sizeof err), 0);
    ck_assert_uint_eq(a.owner[100], 0);
    memset(bits, 0, sizeof bits);
    ck_assert_int_eq(slotmap_claim_bits(&a, "e", bits, err, sizeof err), 0);
    ck_assert_int_eq(slotmap_find(&a, "e"), 1);
    ck_assert_uint_eq(a.workers[1].nslots, 0);
    ck_assert_int_ne(slotmap_claim_bits(&a, "bad id!", bits, err, sizeof err), 0);
    ck_assert_uint_eq(a.nworkers, 2);
    slotmap_free(&a);
    slotmap_free(&b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("slotmap");
    TCase *tc = tcase_create("slotmap");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, empty_table);
    tcase_add_test(tc, balanced_for_1_to_50_workers);
    tcase_add_test(tc, balanced_for_many_workers);
    tcase_add_test(tc, more_workers_than_slots_is_refused);
    tcase_add_test(tc, invalid_live_id_is_refused);
    tcase_add_test(tc, three_workers_get_contiguous_thirds);
    tcase_add_test(tc, join_moves_only_to_the_newcomer);
    tcase_add_test(tc, death_moves_only_the_departed_slots);
    tcase_add_test(tc, join_and_death_are_minimal_for_many_workers);
    tcase_add_test(tc, a_range_is_spread_alone);
    tcase_add_test(tc, weights_are_proportional);
    tcase_add_test(tc, weight_change_moves_only_the_difference);
    tcase_add_test(tc, duplicate_live_ids_count_once);
    tcase_add_test(tc, assign_balances_a_loaded_table);
    tcase_add_test(tc, everyone_leaves);
    tcase_add_test(tc, format_ranges);
    tcase_add_test(tc, ranges_round_trip_through_claim);
    tcase_add_test(tc, claim_rejects_bad_input_and_changes_nothing);
    tcase_add_test(tc, claim_accepts);
    tcase_add_test(tc, claim_bits_matches_claim);
    tcase_add_test(tc, valid_ids);
    tcase_add_test(tc, copy_is_deep);
    tcase_add_test(tc, check_catches_broken_tables);
    tcase_add_test(tc, property_random_membership_changes);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
