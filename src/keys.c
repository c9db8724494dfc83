/*
 * keys: Redis key names. Kept in one place so docs/protocol.md has one
 * counterpart in the code.
 */
#include "keys.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int keys_init(struct keys *k, const char *ns)
{
    if (strlen(ns) > KEYS_NS_MAX)
        return -1;
    memset(k, 0, sizeof *k);
    strcpy(k->ns, ns);
    snprintf(k->intake, sizeof k->intake, "{%s}:intake", ns);
    snprintf(k->workers, sizeof k->workers, "{%s}:workers", ns);
    snprintf(k->slots, sizeof k->slots, "{%s}:slots", ns);
    snprintf(k->epoch, sizeof k->epoch, "{%s}:epoch", ns);
    snprintf(k->dead, sizeof k->dead, "{%s}:dead", ns);
    snprintf(k->attempts, sizeof k->attempts, "{%s}:attempts", ns);
    snprintf(k->draining, sizeof k->draining, "{%s}:draining", ns);
    snprintf(k->fences, sizeof k->fences, "{%s}:fences", ns);
    snprintf(k->tail, sizeof k->tail, "{%s}:tail", ns);
    snprintf(k->leader, sizeof k->leader, "{%s}:leader", ns);
    snprintf(k->leader_epoch, sizeof k->leader_epoch, "{%s}:leader:epoch", ns);
    snprintf(k->leader_moves, sizeof k->leader_moves, "{%s}:leader:moves", ns);
    return 0;
}

static char *worker_key(const struct keys *k, const char *kind, const char *id,
                        char *buf, size_t cap)
{
    snprintf(buf, cap, "{%s}:%s:%s", k->ns, kind, id);
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
