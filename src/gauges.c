/*
 * gauges: one pipeline of reads a second on the main connection (reads do
 * not disturb dispatch's transactions or membership's WATCH).
 */
#include "gauges.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ctx.h"
#include "members.h"

static void on_tick(evutil_socket_t fd, short what, void *arg);
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);

struct gauges *gauges_create(struct slotd *sd)
{
    struct gauges *g = calloc(1, sizeof *g);
    if (g == NULL)
        return NULL;
    g->sd = sd;
    g->intake = -1;
    g->timer = event_new(sd->base, -1, EV_PERSIST, on_tick, g);
    struct timeval second = { 1, 0 };
    if (g->timer == NULL || event_add(g->timer, &second) != 0) {
        gauges_destroy(g);
        return NULL;
    }
    return g;
}

void gauges_destroy(struct gauges *g)
{
    if (g == NULL)
        return;
    if (g->timer)
        event_free(g->timer);
    free(g->w);
    free(g->pending);
    free(g);
}

void gauges_on_main_down(struct gauges *g)
{
    g->gen++;
    g->reading = 0;
    g->intake = -1;
    for (uint32_t i = 0; i < g->nw; i++)
        g->w[i].queue = g->w[i].inflight = g->w[i].hb_pttl_ms = -1;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct gauges *g = arg;
    struct slotd *sd = g->sd;
    const struct table *t = members_table(sd->members);
    char names[3][KEYS_NAME_MAX];

    (void)fd;
    (void)what;
    g->rate[g->rate_pos] = sd->stats.routed - g->last_routed;
    g->last_routed = sd->stats.routed;
    g->rate_pos = (g->rate_pos + 1) % GAUGES_HISTORY;
    if (g->rate_filled < GAUGES_HISTORY)
        g->rate_filled++;
    if (g->reading || sd->main.state != CONN_UP)
        return;
    uint32_t n = 1 + 3 * t->map.nworkers;
    int64_t *p = realloc(g->pending, n * sizeof *p);
    if (p == NULL)
        return;
    g->pending = p;
    g->pending_n = n;
    g->pending_left = 0;
    g->pending_epoch = t->epoch;
    const char *llen[] = { "LLEN", sd->keys.intake };
    if (conn_command(&sd->main, on_reply, (void *)g->gen, 2, llen, NULL) != 0)
        return;
    g->pending_left++;
    for (uint32_t i = 0; i < t->map.nworkers; i++) {
        const char *id = t->map.workers[i].id;
        const char *q[] = { "LLEN", keys_queue(&sd->keys, id, names[0], KEYS_NAME_MAX) };
        const char *f[] = { "LLEN", keys_inflight(&sd->keys, id, names[1], KEYS_NAME_MAX) };
        const char *h[] = { "PTTL", keys_hb(&sd->keys, id, names[2], KEYS_NAME_MAX) };
        if (conn_command(&sd->main, on_reply, (void *)g->gen, 2, q, NULL) != 0 ||
            conn_command(&sd->main, on_reply, (void *)g->gen, 2, f, NULL) != 0 ||
            conn_command(&sd->main, on_reply, (void *)g->gen, 2, h, NULL) != 0)
            break;
        g->pending_left += 3;
    }
    g->reading = 1;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct gauges *g = ((struct slotd *)conn_of(ac)->arg)->gauges;
    redisReply *r = reply;

    if (r == NULL || (uintptr_t)privdata != g->gen)
        return;
    uint32_t k = g->pending_n - g->pending_left;
    if (k < g->pending_n)
        g->pending[k] = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (--g->pending_left > 0)
        return;
    g->reading = 0;
    g->intake = g->pending[0];
    uint32_t nw = (g->pending_n - 1) / 3;
    struct worker_gauge *w = realloc(g->w, (nw ? nw : 1) * sizeof *w);
    if (w == NULL)
        return;
    g->w = w;
    g->nw = nw;
    g->epoch = g->pending_epoch;
    for (uint32_t i = 0; i < nw; i++) {
        w[i].queue = g->pending[1 + 3 * i];
        w[i].inflight = g->pending[2 + 3 * i];
        w[i].hb_pttl_ms = g->pending[3 + 3 * i];
    }
}
