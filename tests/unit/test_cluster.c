/* Unit tests for cluster: CLUSTER SLOTS replies into a map, the master of
 * a slot, and what MOVED, ASK, TRYAGAIN and CLUSTERDOWN replies say. The
 * replies are built as hiredis would hand them over. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "check_main.h"

/* ---- building replies ---------------------------------------------- */

static redisReply *mk(int type)
{
    redisReply *r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    r->type = type;
    return r;
}

static redisReply *integer(long long v)
{
    redisReply *r = mk(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}

static redisReply *string(const char *s)
{
    redisReply *r = mk(REDIS_REPLY_STRING);
    r->len = strlen(s);
    r->str = malloc(r->len + 1);
    memcpy(r->str, s, r->len + 1);
    return r;
}

static redisReply *array(size_t n, redisReply **e)
{
    redisReply *r = mk(REDIS_REPLY_ARRAY);
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof *r->element);
    for (size_t i = 0; i < n; i++)
        r->element[i] = e[i];
    return r;
}

/* [host, port, id]; host NULL makes a nil. */
static redisReply *node(const char *host, long long port)
{
    redisReply *e[3] = { host ? string(host) : mk(REDIS_REPLY_NIL), integer(port),
                         string("07c37dfeb235213a872192d90877d0cd55635b91") };
    return array(3, e);
}

/* [start, end, master, replica]. */
static redisReply *range(long long start, long long end, redisReply *master)
{
    redisReply *e[4] = { integer(start), integer(end), master, node("127.0.0.1", 1) };
    return array(4, e);
}

/* ---- CLUSTER SLOTS ---------------------------------------------------- */

START_TEST(slots_known_answers)
{
    /* As redis-cli --cluster create spreads three masters, unsorted. */
    redisReply *e[3] = { range(10923, 16383, node("10.0.0.3", 7002)),
                         range(0, 5460, node("10.0.0.1", 7000)),
                         range(5461, 10922, node("", 7001)) };
    redisReply *r = array(3, e);
    struct cluster_map m;
    char why[200];
    ck_assert_int_eq(cluster_map_parse(&m, r, "seed.example", why, sizeof why), 0);
    ck_assert_uint_eq(m.n, 3);
    const struct { unsigned slot; const char *host; int port; } want[] = {
        { 0, "10.0.0.1", 7000 }, { 5460, "10.0.0.1", 7000 }, { 5461, "seed.example", 7001 },
        { 866, "10.0.0.1", 7000 }, { 10922, "seed.example", 7001 }, { 10923, "10.0.0.3", 7002 },
        { 16383, "10.0.0.3", 7002 },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const struct sentinel_addr *a = cluster_map_master(&m, want[i].slot);
        ck_assert_msg(a != NULL, "slot %u", want[i].slot);
        ck_assert_str_eq(a->host, want[i].host);
        ck_assert_int_eq(a->port, want[i].port);
    }
    cluster_map_free(&m);
    ck_assert_uint_eq(m.n, 0);
    freeReplyObject(r);
}
END_TEST

START_TEST(slots_with_holes_and_unknown_hosts)
{
    /* 100-199 unserved; 300-399's master has no known hostname ("?"); a nil
     * host is the node asked. */
    redisReply *e[3] = { range(0, 99, node(NULL, 7000)), range(200, 299, node("b", 7001)),
                         range(300, 399, node("?", 7002)) };
    redisReply *r = array(3, e);
    struct cluster_map m;
    char why[200];
    ck_assert_int_eq(cluster_map_parse(&m, r, "127.0.0.1", why, sizeof why), 0);
    ck_assert_uint_eq(m.n, 2);
    ck_assert_str_eq(cluster_map_master(&m, 50)->host, "127.0.0.1");
    ck_assert_ptr_null(cluster_map_master(&m, 150));
    ck_assert_str_eq(cluster_map_master(&m, 299)->host, "b");
    ck_assert_ptr_null(cluster_map_master(&m, 300));
    ck_assert_ptr_null(cluster_map_master(&m, 16383));
    cluster_map_free(&m);
    freeReplyObject(r);
    /* No slot assigned yet: an empty map. */
    r = array(0, NULL);
    ck_assert_int_eq(cluster_map_parse(&m, r, "h", why, sizeof why), 0);
    ck_assert_uint_eq(m.n, 0);
    ck_assert_ptr_null(cluster_map_master(&m, 0));
    freeReplyObject(r);
}
END_TEST

START_TEST(slots_that_do_not_parse)
{
    struct cluster_map m;
    char why[200];
    redisReply *err = mk(REDIS_REPLY_ERROR);
    err->str = strdup("ERR This instance has cluster support disabled");
    err->len = strlen(err->str);
    ck_assert_int_eq(cluster_map_parse(&m, err, "h", why, sizeof why), -1);
    ck_assert_ptr_nonnull(strstr(why, "cluster support disabled"));
    freeReplyObject(err);
    /* Overlapping ranges, a slot out of range, end before start, a port 0,
     * a range without its master. */
    redisReply *bad[5];
    redisReply *o[2] = { range(0, 100, node("a", 1)), range(100, 200, node("b", 2)) };
    bad[0] = array(2, o);
    redisReply *b1[1] = { range(0, 16384, node("a", 1)) };
    bad[1] = array(1, b1);
    redisReply *b2[1] = { range(10, 5, node("a", 1)) };
    bad[2] = array(1, b2);
    redisReply *b3[1] = { range(0, 5, node("a", 0)) };
    bad[3] = array(1, b3);
    redisReply *short_range[2] = { integer(0), integer(5) };
    redisReply *b4[1] = { array(2, short_range) };
    bad[4] = array(1, b4);
    for (int i = 0; i < 5; i++) {
        ck_assert_msg(cluster_map_parse(&m, bad[i], "h", why, sizeof why) == -1, "case %d", i);
        ck_assert_uint_eq(m.n, 0);
        ck_assert_ptr_null(m.r);
        freeReplyObject(bad[i]);
    }
    ck_assert_ptr_nonnull(strstr(why, "CLUSTER SLOTS"));
}
END_TEST

/* ---- the error replies ------------------------------------------------ */

static enum cluster_reply classify(const char *err, struct cluster_redirect *out)
{
    return cluster_parse_error(err, strlen(err), "asked.example", out);
}

START_TEST(redirections_known_answers)
{
    struct cluster_redirect d;
    ck_assert_int_eq(classify("MOVED 866 10.0.0.2:7001", &d), CLUSTER_MOVED);
    ck_assert_int_eq(d.slot, 866);
    ck_assert_str_eq(d.to.host, "10.0.0.2");
    ck_assert_int_eq(d.to.port, 7001);
    ck_assert_int_eq(classify("ASK 16383 [::1]:7005", &d), CLUSTER_ASK);
    ck_assert_int_eq(d.slot, 16383);
    ck_assert_str_eq(d.to.host, "::1");
    ck_assert_int_eq(d.to.port, 7005);
    /* A node that does not know its own address: the one asked. */
    ck_assert_int_eq(classify("MOVED 0 :7002", &d), CLUSTER_MOVED);
    ck_assert_str_eq(d.to.host, "asked.example");
    ck_assert_int_eq(d.to.port, 7002);
    /* Kind kept, no address, when the rest does not parse. */
    const char *broken[] = { "MOVED", "MOVED 866", "MOVED x 1.2.3.4:5", "MOVED 16384 a:1",
                             "MOVED 1 a:0", "MOVED 1 a", "ASK 123456 a:1" };
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        enum cluster_reply k = classify(broken[i], &d);
        ck_assert_msg(k == CLUSTER_MOVED || k == CLUSTER_ASK, "%s", broken[i]);
        ck_assert_msg(d.to.port == 0, "%s: port %d", broken[i], d.to.port);
    }
    ck_assert_int_eq(classify("TRYAGAIN Multiple keys request during rehashing of slot", &d),
                     CLUSTER_TRYAGAIN);
    ck_assert_int_eq(d.slot, -1);
    ck_assert_int_eq(classify("CLUSTERDOWN The cluster is down", &d), CLUSTER_DOWN);
    ck_assert_int_eq(classify("CLUSTERDOWN Hash slot not served", &d), CLUSTER_DOWN);
    /* Not the cluster's: the word must be whole. */
    const char *other[] = { "ERR unknown command", "MOVEDX 1 a:1", "ASKING", "TRYAGAINS",
                            "WRONGTYPE Operation", "" };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        ck_assert_msg(classify(other[i], &d) == CLUSTER_OTHER, "%s", other[i]);
    ck_assert_int_eq(cluster_parse_error(NULL, 0, "h", &d), CLUSTER_OTHER);
    ck_assert_str_eq(cluster_reply_name(CLUSTER_MOVED), "moved");
    ck_assert_str_eq(cluster_reply_name(CLUSTER_DOWN), "clusterdown");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cluster");
    TCase *tc = tcase_create("slots_known_answers");
    tcase_add_test(tc, slots_known_answers);
    suite_add_tcase(s, tc);
    tc = tcase_create("slots_with_holes_and_unknown_hosts");
    tcase_add_test(tc, slots_with_holes_and_unknown_hosts);
    suite_add_tcase(s, tc);
    tc = tcase_create("slots_that_do_not_parse");
    tcase_add_test(tc, slots_that_do_not_parse);
    suite_add_tcase(s, tc);
    tc = tcase_create("redirections_known_answers");
    tcase_add_test(tc, redirections_known_answers);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
