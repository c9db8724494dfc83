/*
 * status: renders the view as the /status JSON document (with jansson):
 * workers with their slots as ranges, queue and in-flight lengths and
 * heartbeat ages; the intake; rates; the epoch; the recent routing rate.
 */
#include "view.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctx.h"
#include "gauges.h"
#include "slotmap.h"
#include "taskkey.h"

static json_t *workers_json(const struct view *v)
{
    const struct gauges *g = v->gauges;
    int aligned = g != NULL && g->epoch == v->epoch && g->nw == v->map->nworkers;
    json_t *arr = json_array();
    char *ranges = malloc(SLOTMAP_RANGES_MAX);
    if (arr == NULL || ranges == NULL) {
        free(ranges);
        json_decref(arr);
        return NULL;
    }
    for (uint32_t i = 0; i < v->map->nworkers; i++) {
        const struct slotmap_worker *w = &v->map->workers[i];
        slotmap_format_ranges(v->map, i, ranges, SLOTMAP_RANGES_MAX);
        json_t *o = json_pack("{s:s, s:i, s:i, s:s}", "id", w->id, "weight", (json_int_t)w->weight,
                              "slots_owned", (json_int_t)w->nslots, "slots", ranges);
        if (o == NULL)
            continue;
        if (aligned) {
            if (g->w[i].queue >= 0)
                json_object_set_new(o, "queue", json_integer(g->w[i].queue));
            if (g->w[i].inflight >= 0)
                json_object_set_new(o, "inflight", json_integer(g->w[i].inflight));
            if (g->w[i].hb_pttl_ms >= 0)
                json_object_set_new(o, "heartbeat_age_s", json_real(heartbeat_age_s(v, g->w[i].hb_pttl_ms)));
        }
        json_array_append_new(arr, o);
    }
    free(ranges);
    return arr;
}

/* {"worker": "ranges"} of the handoffs fenced: slots whose tasks wait for
 * the worker that handed them off to finish the ones it holds. */
static json_t *fences_json(const struct view *v)
{
    json_t *o = json_object();
    char *ranges = malloc(SLOTMAP_RANGES_MAX);
    for (uint32_t i = 0; o != NULL && ranges != NULL && v->fences != NULL &&
                         i < v->fences->nworkers; i++) {
        slotmap_format_ranges(v->fences, i, ranges, SLOTMAP_RANGES_MAX);
        json_object_set_new(o, v->fences->workers[i].id, json_string(ranges));
    }
    free(ranges);
    return o;
}

char *status_render(const struct view *v, size_t *len)
{
    const struct stats *s = v->stats;
    const struct gauges *g = v->gauges;
    json_t *dead = json_object(), *history = json_array();
    uint64_t dead_total = s->poison;

    for (int r = 1; r < TASKKEY_RESULT_COUNT; r++) {
        json_object_set_new(dead, taskkey_result_name((enum taskkey_result)r), json_integer((json_int_t)s->dead[r]));
        dead_total += s->dead[r];
    }
    json_object_set_new(dead, "poison", json_integer((json_int_t)s->poison));
    /* The routing rate per second, oldest first. */
    for (uint32_t i = g ? g->rate_filled : 0; g && i > 0; i--)
        json_array_append_new(history, json_integer((json_int_t)g->rate[(g->rate_pos + GAUGES_HISTORY - i) % GAUGES_HISTORY]));

    json_t *leader = json_pack("{s:s, s:I, s:s, s:I, s:I, s:I}",
                               "role", lease_role_name(v->lease.role),
                               "epoch", (json_int_t)v->lease.epoch,
                               "holder", v->lease.holder ? v->lease.holder : "",
                               "lease_left_ms", (json_int_t)v->lease.ttl_ms,
                               "changes", (json_int_t)v->lease.changes,
                               "fenced_writes", (json_int_t)v->lease.fenced);
    json_t *changes = json_object();
    for (int r = 0; r < MASTER_REASON_COUNT; r++)
        json_object_set_new(changes, master_reason_name((enum master_reason)r),
                            json_integer((json_int_t)v->master->changes[r]));
    json_t *cluster = json_object();
    for (int k = CLUSTER_MOVED; k < CLUSTER_REPLY_COUNT; k++)
        json_object_set_new(cluster, cluster_reply_name((enum cluster_reply)k),
                            json_integer((json_int_t)v->cluster[k]));
    json_t *redis = json_pack("{s:s, s:s, s:b, s:o, s:I, s:I, s:I, s:i, s:o}",
                              "master", v->master_addr, "found_via", v->master->via,
                              "up", v->redis_up, "master_changes", changes,
                              "discovery_ms", (json_int_t)v->master->discovery_ms,
                              "reconnects", (json_int_t)v->reconnects,
                              "timeouts", (json_int_t)v->timeouts,
                              "slot", (int)v->slot, "cluster_replies", cluster);
    json_t *doc = json_pack(
        "{s:s, s:s, s:i, s:i, s:s, s:o, s:o, s:b, s:s?, s:I, s:f, s:o, s:o, s:I, s:o,"
        " s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I},"
        " s:{s:f, s:f, s:f, s:o}}",
        "version", v->version, "namespace", v->ns, "shard", v->shard, "shards", v->nshards,
        "intake", v->intake_key,
        "leader", leader, "redis", redis, "redis_up", v->redis_up, "not_routing", v->health,
        "epoch", (json_int_t)v->epoch, "uptime_s", v->uptime_s,
        "workers", workers_json(v), "fences", fences_json(v),
        "intake_length", (json_int_t)(g && g->intake >= 0 ? g->intake : 0),
        "dead_lettered", dead,
        "totals", "routed", (json_int_t)s->routed, "transactions", (json_int_t)s->txns,
        "requeued", (json_int_t)s->requeued, "joins", (json_int_t)s->joins,
        "leaves", (json_int_t)s->leaves, "deaths", (json_int_t)s->deaths,
        "dead_lettered", (json_int_t)dead_total,
        "to_forward", (json_int_t)s->to_forward, "forwarded", (json_int_t)v->forwarded,
        "rates", "routed_per_s_10s", g ? gauges_rate(g, 10) : 0.0,
        "routed_per_s_1m", g ? gauges_rate(g, 60) : 0.0,
        "routed_per_s_5m", g ? gauges_rate(g, 300) : 0.0,
        "routed_per_s_history", history);
    if (doc == NULL)
        return NULL;
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (text)
        *len = strlen(text);
    return text;
}
