/* Unit tests for metrics and status: the renderers are pure functions of a
 * view; known views give known text. */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "ctx.h"
#include "gauges.h"
#include "slotmap.h"
#include "view.h"

static struct stats stats;
static struct slotmap map;
static struct gauges g;
static struct worker_gauge wg[2];
static struct master master;

static struct view make_view(void)
{
    struct slotmap_member live[] = { { "w1", 1 }, { "w2", 3 } };
    memset(&stats, 0, sizeof stats);
    slotmap_init(&map);
    ck_assert_int_eq(slotmap_assign(&map, live, 2), 0);
    stats.routed = 1234;
    stats.to_forward = 19;
    stats.dead[TASKKEY_NO_KEY] = 5;
    stats.poison = 2;
    stats.txns = 3;
    stats.batch_tasks = 1234;
    stats.batch_hist[0] = 1;    /* a batch of 1 */
    stats.batch_hist[4] = 2;    /* two of up to 1000 */
    stats.deaths = 1;
    memset(&g, 0, sizeof g);
    wg[0] = (struct worker_gauge){ 10, 2, 2500 };
    wg[1] = (struct worker_gauge){ 0, 0, 3000 };
    g.w = wg;
    g.nw = 2;
    g.epoch = 7;
    g.intake = 42;
    g.rate[0] = 100;
    g.rate[1] = 300;
    g.rate_pos = 2;
    g.rate_filled = 2;
    memset(&master, 0, sizeof master);
    snprintf(master.via, sizeof master.via, "sentinel 10.0.0.9:26379");
    master.changes[MASTER_SWITCH] = 2;
    master.changes[MASTER_WRONG] = 1;
    master.discovery_ms = 1250;
    master.discoveries = 3;
    struct view v = {
        .master = &master, .master_addr = "10.0.0.5:6379", .timeouts = 6,
        .version = "9.9.9", .ns = "jobs", .tag = "jobs#2", .shard = 2, .nshards = 3,
        .intake_key = "{jobs#2}:intake", .stats = &stats,
        .map = &map, .gauges = &g, .epoch = 7, .redis_up = 1, .reconnects = 4,
        .health = NULL, .uptime_s = 10, .heartbeat_ttl_ms = 3000, .forwarded = 17,
    };
    return v;
}

static void has(const char *text, const char *line)
{
    ck_assert_msg(strstr(text, line) != NULL, "missing: %s", line);
}

START_TEST(prometheus_text_known_answers)
{
    struct view v = make_view();
    size_t len;
    char *t = metrics_render(&v, &len);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(strlen(t), len);
    has(t, "slotd_build_info{version=\"9.9.9\"} 1\n");
    has(t, "# TYPE slotd_tasks_routed_total counter\n");
    has(t, "slotd_tasks_routed_total{intake=\"{jobs#2}:intake\"} 1234\n");
    has(t, "slotd_tasks_dead_lettered_total{reason=\"no_key\"} 5\n");
    has(t, "slotd_tasks_dead_lettered_total{reason=\"poison\"} 2\n");
    has(t, "slotd_batch_tasks_bucket{le=\"1\"} 1\n");
    has(t, "slotd_batch_tasks_bucket{le=\"500\"} 1\n");
    has(t, "slotd_batch_tasks_bucket{le=\"1000\"} 3\n");
    has(t, "slotd_batch_tasks_bucket{le=\"+Inf\"} 3\n");
    has(t, "slotd_batch_tasks_sum 1234\nslotd_batch_tasks_count 3\n");
    has(t, "slotd_slots_owned{worker=\"w1\"} 4096\n");
    has(t, "slotd_slots_owned{worker=\"w2\"} 12288\n");
    has(t, "slotd_queue_length{worker=\"w1\"} 10\n");
    has(t, "slotd_inflight_length{worker=\"w1\"} 2\n");
    has(t, "slotd_heartbeat_age_seconds{worker=\"w1\"} 0.500\n");
    has(t, "slotd_intake_length 42\n");
    has(t, "slotd_worker_deaths_total 1\n");
    has(t, "slotd_redis_reconnects_total 4\n");
    has(t, "slotd_redis_timeouts_total 6\n");
    has(t, "slotd_redis_master_changes_total{reason=\"switch\"} 2\n");
    has(t, "slotd_redis_master_changes_total{reason=\"wrong\"} 1\n");
    has(t, "slotd_redis_master_changes_total{reason=\"poll\"} 0\n");
    has(t, "slotd_redis_master_discoveries_total 3\n");
    has(t, "slotd_redis_master_discovery_seconds 1.25\n");
    has(t, "slotd_info{namespace=\"jobs\",shard=\"2\",shards=\"3\",master=\"10.0.0.5:6379\","
           "found_via=\"sentinel 10.0.0.9:26379\"} 1\n");
    has(t, "slotd_epoch 7\n");
    has(t, "slotd_tasks_to_forward_total 19\n");
    has(t, "slotd_tasks_forwarded_total 17\n");
    has(t, "slotd_routing_rate 200\n");
    free(t);
    slotmap_free(&map);
}
END_TEST

START_TEST(gauges_of_another_epoch_are_not_shown)
{
    struct view v = make_view();
    size_t len;
    g.epoch = 6;        /* the table changed since the gauges were read */
    char *t = metrics_render(&v, &len);
    ck_assert_ptr_null(strstr(t, "slotd_queue_length{"));
    ck_assert_ptr_nonnull(strstr(t, "slotd_slots_owned{worker=\"w1\"}"));
    free(t);
    slotmap_free(&map);
}
END_TEST

START_TEST(status_json_known_answers)
{
    struct view v = make_view();
    size_t len;
    json_error_t err;
    char *t = status_render(&v, &len);
    ck_assert_ptr_nonnull(t);
    json_t *j = json_loads(t, 0, &err);
    ck_assert_msg(j != NULL, "%s: %s", err.text, t);
    ck_assert_str_eq(json_string_value(json_object_get(j, "namespace")), "jobs");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "shard")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "shards")), 3);
    json_t *totals = json_object_get(j, "totals");
    ck_assert_int_eq(json_integer_value(json_object_get(totals, "to_forward")), 19);
    ck_assert_int_eq(json_integer_value(json_object_get(totals, "forwarded")), 17);
    ck_assert(json_is_null(json_object_get(j, "not_routing")));
    json_t *w = json_array_get(json_object_get(j, "workers"), 1);
    ck_assert_str_eq(json_string_value(json_object_get(w, "id")), "w2");
    ck_assert_str_eq(json_string_value(json_object_get(w, "slots")), "4096-16383");
    ck_assert_int_eq(json_integer_value(json_object_get(w, "weight")), 3);
    json_t *rates = json_object_get(j, "rates");
    ck_assert(json_real_value(json_object_get(rates, "routed_per_s_10s")) == 200.0);
    ck_assert_uint_eq(json_array_size(json_object_get(rates, "routed_per_s_history")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "totals"), "dead_lettered")), 7);
    json_t *redis = json_object_get(j, "redis");
    ck_assert_str_eq(json_string_value(json_object_get(redis, "master")), "10.0.0.5:6379");
    ck_assert_str_eq(json_string_value(json_object_get(redis, "found_via")),
                     "sentinel 10.0.0.9:26379");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(redis, "master_changes"),
                                                        "switch")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(redis, "discovery_ms")), 1250);
    ck_assert_int_eq(json_integer_value(json_object_get(redis, "timeouts")), 6);
    json_decref(j);
    free(t);
    v.health = "no live worker";
    t = status_render(&v, &len);
    ck_assert_ptr_nonnull(strstr(t, "\"not_routing\":\"no live worker\""));
    free(t);
    slotmap_free(&map);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, prometheus_text_known_answers);
    tcase_add_test(tc, gauges_of_another_epoch_are_not_shown);
    tcase_add_test(tc, status_json_known_answers);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
