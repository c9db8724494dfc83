/*
 * keys: Redis key names. Kept in one place so docs/protocol.md has one
 * counterpart in the code.
 */
#include "keys.h"

#include "keyslot.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int keys_init_shard(struct keys *k, const char *ns, int shard, int nshards)
{
    if (strlen(ns) > KEYS_NS_MAX || nshards < 1 || nshards > KEYS_SHARDS_MAX || shard < 0 ||
        shard >= nshards)
        return -1;
    memset(k, 0, sizeof *k);
    strcpy(k->ns, ns);
    k->shard = shard;
    k->nshards = nshards;
    if (nshards == 1)
        snprintf(k->tag, sizeof k->tag, "%s", ns);
    else
        snprintf(k->tag, sizeof k->tag, "%s#%d", ns, shard);
    const char *t = k->tag;
    snprintf(k->intake, sizeof k->intake, "{%s}:intake", t);
    snprintf(k->workers, sizeof k->workers, "{%s}:workers", t);
    snprintf(k->slots, sizeof k->slots, "{%s}:slots", t);
    snprintf(k->epoch, sizeof k->epoch, "{%s}:epoch", t);
    snprintf(k->dead, sizeof k->dead, "{%s}:dead", t);
    snprintf(k->attempts, sizeof k->attempts, "{%s}:attempts", t);
    snprintf(k->draining, sizeof k->draining, "{%s}:draining", t);
    snprintf(k->fences, sizeof k->fences, "{%s}:fences", t);
    snprintf(k->tail, sizeof k->tail, "{%s}:tail", t);
    snprintf(k->leader, sizeof k->leader, "{%s}:leader", t);
    snprintf(k->leader_epoch, sizeof k->leader_epoch, "{%s}:leader:epoch", t);
    snprintf(k->leader_moves, sizeof k->leader_moves, "{%s}:leader:moves", t);
    snprintf(k->forwarded, sizeof k->forwarded, "{%s}:forwarded", t);
    return 0;
}

int keys_init(struct keys *k, const char *ns)
{
    return keys_init_shard(k, ns, 0, 1);
}

int keys_shard_of(unsigned slot, int nshards)
{
    return (int)((slot & 16383u) * (unsigned)nshards / 16384u);
}

void keys_shard_slots(int shard, int nshards, unsigned *lo, unsigned *hi)
{
    unsigned n = nshards < 1 ? 1u : (unsigned)nshards, i = (unsigned)shard;
    *lo = (i * 16384u + n - 1) / n;
    *hi = ((i + 1) * 16384u + n - 1) / n - 1;
}

unsigned keys_slot(const struct keys *k)
{
    return keyslot(k->tag, strlen(k->tag));
}

static char *worker_key(const struct keys *k, const char *kind, const char *id,
                        char *buf, size_t cap)
{
    snprintf(buf, cap, "{%s}:%s:%s", k->tag, kind, id);
    return buf;
}

char *keys_queue(const struct keys *k, const char *id, char *buf, size_t cap)
{
    return worker_key(k, "queue", id, buf, cap);
}

char *keys_inflight(const struct keys *k, const char *id, char *buf, size_t cap)
{
    return worker_key(k, "inflight", id, buf, cap);
}

char *keys_hb(const struct keys *k, const char *id, char *buf, size_t cap)
{
    return worker_key(k, "hb", id, buf, cap);
}

char *keys_fenced(const struct keys *k, const char *id, char *buf, size_t cap)
{
    return worker_key(k, "fenced", id, buf, cap);
}

char *keys_forward(const struct keys *k, int to, char *buf, size_t cap)
{
    snprintf(buf, cap, "{%s}:forward:%d", k->tag, to);
    return buf;
}

char *keys_forward_done(const struct keys *k, int to, char *buf, size_t cap)
{
    snprintf(buf, cap, "{%s}:forward:%d:done", k->tag, to);
    return buf;
}

char *keys_fingerprint(const void *task, size_t len, char buf[KEYS_FP_LEN + 1])
{
    const unsigned char *p = task;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    snprintf(buf, KEYS_FP_LEN + 1, "%016" PRIx64, h);
    return buf;
}
