/*
 * metrics: renders the view in the Prometheus text exposition format. Pure:
 * the same view always gives the same text. Every metric here is listed in
 * docs/operations.md (make check compares the two).
 */
#include "view.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "ctx.h"
#include "gauges.h"
#include "slotmap.h"
#include "taskkey.h"

static void head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
    head(f, name, "counter", help);
    fprintf(f, "%s %llu\n", name, (unsigned long long)v);
}

static void gauge(FILE *f, const char *name, const char *help, double v)
{
    head(f, name, "gauge", help);
    fprintf(f, "%s %.17g\n", name, v);
}

double heartbeat_age_s(const struct view *v, int64_t pttl_ms)
{
    int64_t age = (int64_t)v->heartbeat_ttl_ms - pttl_ms;
    return age > 0 ? (double)age / 1000.0 : 0;
}

/* Label values here are worker ids ([A-Za-z0-9._-]), reason names and the
 * intake key ({ns}:intake, ns of [A-Za-z0-9._:-]): nothing to escape. */
char *metrics_render(const struct view *v, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    const struct stats *s = v->stats;
    const struct gauges *g = v->gauges;
    int aligned = g != NULL && g->epoch == v->epoch && g->nw == v->map->nworkers;

    if (f == NULL)
        return NULL;
    head(f, "slotd_build_info", "gauge", "Build information.");
    fprintf(f, "slotd_build_info{version=\"%s\"} 1\n", v->version);
    head(f, "slotd_tasks_routed_total", "counter", "Tasks pushed onto a worker queue.");
    fprintf(f, "slotd_tasks_routed_total{intake=\"%s\"} %llu\n", v->intake_key,
            (unsigned long long)s->routed);
    head(f, "slotd_tasks_dead_lettered_total", "counter", "Tasks put on the dead letter list, by reason.");
    for (int r = 1; r < TASKKEY_RESULT_COUNT; r++)
        fprintf(f, "slotd_tasks_dead_lettered_total{reason=\"%s\"} %llu\n",
                taskkey_result_name((enum taskkey_result)r), (unsigned long long)s->dead[r]);
    fprintf(f, "slotd_tasks_dead_lettered_total{reason=\"poison\"} %llu\n",
            (unsigned long long)s->poison);
    counter(f, "slotd_transactions_total", "Dispatch transactions committed.", s->txns);
    counter(f, "slotd_transaction_failures_total", "Dispatch transactions Redis refused.",
            s->txn_failures);
    head(f, "slotd_batch_tasks", "histogram", "Tasks per dispatch transaction.");
    static const unsigned bounds[] = STATS_BATCH_BOUNDS;
    uint64_t cum = 0;
    for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++) {
        cum += s->batch_hist[b];
        fprintf(f, "slotd_batch_tasks_bucket{le=\"%u\"} %llu\n", bounds[b], (unsigned long long)cum);
    }
    cum += s->batch_hist[STATS_BATCH_BUCKETS - 1];
    fprintf(f, "slotd_batch_tasks_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    fprintf(f, "slotd_batch_tasks_sum %llu\nslotd_batch_tasks_count %llu\n",
            (unsigned long long)s->batch_tasks, (unsigned long long)cum);
    counter(f, "slotd_tasks_requeued_total", "Tasks handed back from departed workers.", s->requeued);
    counter(f, "slotd_tasks_handed_off_total",
            "Queued tasks re-routed because their slot moved to a newcomer.", s->handoffs);
    counter(f, "slotd_handoff_fences_total",
            "Handoffs fenced: a worker lost slots while it could hold tasks of them.",
            s->fences_set);
    counter(f, "slotd_handoff_fences_released_total",
            "Fences released: the worker had finished the tasks it held of those slots.",
            s->fences_released);
    head(f, "slotd_fenced_slots", "gauge",
         "Slots whose tasks wait for the worker that handed them off, per that worker.");
    for (uint32_t i = 0; v->fences != NULL && i < v->fences->nworkers; i++)
        fprintf(f, "slotd_fenced_slots{worker=\"%s\"} %u\n", v->fences->workers[i].id,
                v->fences->workers[i].nslots);
    counter(f, "slotd_worker_joins_total", "Workers that joined.", s->joins);
    counter(f, "slotd_worker_leaves_total", "Workers that left gracefully.", s->leaves);
    counter(f, "slotd_worker_deaths_total", "Workers declared dead (heartbeat expired).", s->deaths);
    counter(f, "slotd_worker_returns_total", "Workers heard from again after declared dead.",
            s->zombies);
    counter(f, "slotd_poison_tasks_total", "Tasks dead-lettered after workers.max_recoveries deaths.",
            s->poison);
    counter(f, "slotd_stalls_total", "Checks that declared no death because slotd itself stalled.",
            s->stalls);
    head(f, "slotd_slots_owned", "gauge", "Slots owned, per worker.");
    for (uint32_t i = 0; i < v->map->nworkers; i++)
        fprintf(f, "slotd_slots_owned{worker=\"%s\"} %u\n", v->map->workers[i].id,
                v->map->workers[i].nslots);
    head(f, "slotd_queue_length", "gauge", "Tasks queued, per worker.");
    for (uint32_t i = 0; aligned && i < g->nw; i++)
        if (g->w[i].queue >= 0)
            fprintf(f, "slotd_queue_length{worker=\"%s\"} %lld\n", v->map->workers[i].id,
                    (long long)g->w[i].queue);
    head(f, "slotd_inflight_length", "gauge", "Tasks in flight, per worker.");
    for (uint32_t i = 0; aligned && i < g->nw; i++)
        if (g->w[i].inflight >= 0)
            fprintf(f, "slotd_inflight_length{worker=\"%s\"} %lld\n", v->map->workers[i].id,
                    (long long)g->w[i].inflight);
    head(f, "slotd_heartbeat_age_seconds", "gauge",
         "Time since a worker's last heartbeat (workers.heartbeat_ttl_ms less its TTL left).");
    for (uint32_t i = 0; aligned && i < g->nw; i++)
        if (g->w[i].hb_pttl_ms >= 0)
            fprintf(f, "slotd_heartbeat_age_seconds{worker=\"%s\"} %.3f\n", v->map->workers[i].id,
                    heartbeat_age_s(v, g->w[i].hb_pttl_ms));
    gauge(f, "slotd_intake_length", "Tasks waiting in the intake.",
          g != NULL && g->intake >= 0 ? (double)g->intake : 0);
    gauge(f, "slotd_workers_live", "Live workers in the slot table.", v->map->nworkers);
    counter(f, "slotd_tasks_to_forward_total",
            "Tasks of another shard that reached this shard's intake, moved to be forwarded.",
            s->to_forward);
    counter(f, "slotd_tasks_forwarded_total",
            "Tasks forwarded to the shard they belong to.", v->forwarded);
    head(f, "slotd_info", "gauge",
         "1, with what this slotd serves as labels: the namespace, the shard, and the Redis "
         "master it is on and how it was found.");
    fprintf(f, "slotd_info{namespace=\"%s\",shard=\"%d\",shards=\"%d\",master=\"%s\","
            "found_via=\"%s\"} 1\n", v->ns, v->shard, v->nshards, v->master_addr,
            v->master->via);
    gauge(f, "slotd_redis_up", "1 while the connection to Redis is up.", v->redis_up);
    counter(f, "slotd_redis_reconnects_total", "Reconnections to Redis.", v->reconnects);
    counter(f, "slotd_redis_timeouts_total",
            "Connections dropped by the watchdog: a connect, a handshake or a reply too late.",
            v->timeouts);
    head(f, "slotd_redis_master_changes_total", "counter",
         "Times the Redis master moved (with Sentinel or a Redis Cluster), by how it was "
         "learnt.");
    for (int r = 0; r < MASTER_REASON_COUNT; r++)
        fprintf(f, "slotd_redis_master_changes_total{reason=\"%s\"} %" PRIu64 "\n",
                master_reason_name((enum master_reason)r), v->master->changes[r]);
    head(f, "slotd_redis_cluster_replies_total", "counter",
         "Redis Cluster's redirections and refusals: moved (followed), ask and tryagain (the "
         "namespace's slot migrating: held and retried), clusterdown (held, nodes asked again).");
    for (int k = CLUSTER_MOVED; k < CLUSTER_REPLY_COUNT; k++)
        fprintf(f, "slotd_redis_cluster_replies_total{reply=\"%s\"} %" PRIu64 "\n",
                cluster_reply_name((enum cluster_reply)k), v->cluster[k]);
    counter(f, "slotd_redis_master_discoveries_total",
            "Times the master was looked for through the sentinels (or cluster nodes) and found.",
            v->master->discoveries);
    gauge(f, "slotd_redis_master_discovery_seconds",
          "How long the last look for the master took, from its start (at start, or when a "
          "server said it is not the master, or a sentinel was lost) to a sentinel's answer.",
          (double)v->master->discovery_ms / 1000.0);
    gauge(f, "slotd_epoch", "The slot table's epoch.", (double)v->epoch);
    gauge(f, "slotd_leader", "1 while this slotd holds the lease and routes, 0 while it stands by.",
          v->lease.role == LEASE_ACTIVE);
    gauge(f, "slotd_leader_epoch", "The leader epoch: this slotd's while active, else the last seen.",
          (double)v->lease.epoch);
    counter(f, "slotd_leader_changes_total", "Times this slotd took the lease or stood by.",
            v->lease.changes);
    counter(f, "slotd_fenced_writes_total",
            "Writes of this slotd refused because another took the lease (the fence).",
            v->lease.fenced);
    gauge(f, "slotd_loop_lag_seconds", "How late the last membership check ran.",
          (double)s->loop_lag_ms / 1000.0);
    gauge(f, "slotd_routing_rate", "Tasks routed per second over the last minute.",
          g ? gauges_rate(g, 60) : 0);
    gauge(f, "slotd_uptime_seconds", "Seconds since slotd started.", v->uptime_s);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
