/* Unit tests for placement: the masters of a cluster map and their slot
 * counts, which master a namespace lands on (Redis's own CLUSTER KEYSLOT
 * answers are the oracle for the slots), the candidate names, and
 * suggestions that go to the emptiest masters. */
#include <check.h>
#include <string.h>

#include "check_main.h"
#include "placement.h"

/* Three masters as redis-cli --cluster create spreads 16384 slots. */
static void three(struct cluster_map *m, struct cluster_range *r)
{
    const unsigned bounds[4][2] = { { 0, 5460 }, { 5461, 10922 }, { 10923, 16383 } };
    for (int i = 0; i < 3; i++) {
        r[i].start = bounds[i][0];
        r[i].end = bounds[i][1];
        snprintf(r[i].master.host, sizeof r[i].master.host, "10.0.0.%d", i + 1);
        r[i].master.port = 7000;
    }
    m->r = r;
    m->n = 3;
}

START_TEST(masters_and_their_slots)
{
    struct cluster_map m;
    struct cluster_range r[4];
    struct placement p;
    three(&m, r);
    r[3] = r[0];                /* 10.0.0.1 serves two ranges */
    r[0].end = 100;
    r[3].start = 101;
    struct cluster_range sorted[4] = { r[0], r[3], r[1], r[2] };
    m.r = sorted;
    m.n = 4;
    ck_assert_int_eq(placement_init(&p, &m), 0);
    ck_assert_uint_eq(p.n, 3);
    ck_assert_str_eq(p.m[0].addr.host, "10.0.0.1");
    ck_assert_uint_eq(p.m[0].slots, 5461);
    ck_assert_uint_eq(p.m[1].slots, 5462);
    ck_assert_uint_eq(p.m[2].slots, 5461);
    ck_assert_int_eq(placement_master_of(&p, &m, 101), 0);
    ck_assert_int_eq(placement_hold(&p, &m, 16383), 2);
    ck_assert_uint_eq(p.m[2].held, 1);
    placement_free(&p);
    placement_free(&p);
    placement_free(NULL);
}
END_TEST

START_TEST(slots_and_names)
{
    char buf[KEYS_NS_MAX + 1];
    /* CLUSTER KEYSLOT "{slotd}" = 14929, "{orders}" = 105, "{orders#0}"
     * = 6249 (CRC16-XMODEM mod 16384). */
    ck_assert_int_eq(placement_slot("slotd", 1), 14929);
    ck_assert_int_eq(placement_slot("orders", 1), 105);
    ck_assert_int_eq(placement_slot("orders", 4), 6249);
    ck_assert_int_eq(placement_name(buf, sizeof buf, "orders", 0), 0);
    ck_assert_str_eq(buf, "orders-a");
    ck_assert_int_eq(placement_name(buf, sizeof buf, "orders", 25), 0);
    ck_assert_str_eq(buf, "orders-z");
    ck_assert_int_eq(placement_name(buf, sizeof buf, "orders", 26), 0);
    ck_assert_str_eq(buf, "orders-aa");
    ck_assert_int_eq(placement_name(buf, sizeof buf, "orders", 26 + 26 * 26), 0);
    ck_assert_str_eq(buf, "orders-aaa");
    char longp[KEYS_NS_MAX + 1];
    memset(longp, 'x', KEYS_NS_MAX - 1);
    longp[KEYS_NS_MAX - 1] = '\0';
    ck_assert_int_eq(placement_name(buf, sizeof buf, longp, 0), -1);
}
END_TEST

START_TEST(suggestions_go_to_the_emptiest)
{
    struct cluster_map m;
    struct cluster_range r[3];
    struct placement p;
    char names[5][KEYS_NS_MAX + 1];
    const char *taken[1] = { "orders-a" };
    three(&m, r);
    ck_assert_int_eq(placement_init(&p, &m), 0);
    p.m[0].held = 2;
    p.m[1].held = 0;
    p.m[2].held = 1;
    ck_assert_int_eq(placement_suggest(&p, &m, "orders", 1, 5, names, taken, 1), 5);
    /* held 2 0 1: the fewest, ties to the first in order. */
    const int want[5] = { 1, 1, 2, 0, 1 };
    for (int i = 0; i < 5; i++) {
        ck_assert_str_ne(names[i], "orders-a");
        ck_assert_int_eq(strncmp(names[i], "orders-", 7), 0);
        ck_assert_int_eq(placement_master_of(&p, &m, (unsigned)placement_slot(names[i], 1)),
                         want[i]);
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(names[i], names[j]);
    }
    ck_assert_uint_eq(p.m[0].held, 3);
    ck_assert_uint_eq(p.m[1].held, 3);
    ck_assert_uint_eq(p.m[2].held, 2);
    placement_free(&p);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("placement");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, masters_and_their_slots);
    tcase_add_test(tc, slots_and_names);
    tcase_add_test(tc, suggestions_go_to_the_emptiest);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
