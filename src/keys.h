/*
 * keys: the names of every Redis key slotd and its workers use. All share the
 * hash tag {<namespace>}, so they live in one Redis Cluster slot and one
 * MULTI/EXEC may touch any of them.
 *
 * A namespace split into shards (shards: N, N > 1) is N namespaces of their
 * own, one per shard, with the tags {<namespace>#0} ... {<namespace>#N-1}
 * ('#' cannot appear in a namespace, so no name collides): each shard has
 * its intake, queues and slot table, and may live on another node of a
 * Redis Cluster. A task belongs to the shard of its key's slot:
 * keys_shard_of(slot, N), fixed ranges of slots, so a key always lands in
 * one shard.
 */
#ifndef SLOTD_KEYS_H
#define SLOTD_KEYS_H

#include <stddef.h>

#define KEYS_NS_MAX     64
#define KEYS_SHARDS_MAX 256
#define KEYS_TAG_MAX    (KEYS_NS_MAX + 4)     /* "<namespace>#<shard>" */
#define KEYS_NAME_MAX   (KEYS_TAG_MAX + 96)

struct keys {
    char ns[KEYS_NS_MAX + 1];       /* the namespace, without braces */
    char tag[KEYS_TAG_MAX + 1];     /* the hash tag of every key: ns, or "ns#<shard>" */
    int  shard;                     /* 0 when not sharded */
    int  nshards;                   /* 1 when not sharded */
    char intake[KEYS_NAME_MAX];     /* {ns}:intake   LIST, producers LPUSH */
    char workers[KEYS_NAME_MAX];    /* {ns}:workers  SET of worker ids */
    char slots[KEYS_NAME_MAX];      /* {ns}:slots    HASH id -> ranges */
    char epoch[KEYS_NAME_MAX];      /* {ns}:epoch    integer */
    char dead[KEYS_NAME_MAX];       /* {ns}:dead     LIST of dead letters */
    char attempts[KEYS_NAME_MAX];   /* {ns}:attempts HASH fingerprint -> recoveries */
    char draining[KEYS_NAME_MAX];   /* {ns}:draining SET of workers to give no slots */
    char fences[KEYS_NAME_MAX];     /* {ns}:fences   HASH id -> slots handed off, not yet released */
    char tail[KEYS_NAME_MAX];       /* {ns}:tail     integer: the intake tail's version, bumped
                                       by every write that takes from or adds to the tail */
    char leader[KEYS_NAME_MAX];     /* {ns}:leader   the lease: "<epoch> <node> <pid>", PX */
    char leader_epoch[KEYS_NAME_MAX];   /* {ns}:leader:epoch  "<n> <nonce>": the fencing token */
    char leader_moves[KEYS_NAME_MAX];   /* {ns}:leader:moves  HASH n -> tasks moved under it */
    char forwarded[KEYS_NAME_MAX];  /* {ns}:forwarded HASH source shard -> the end offset of
                                       the tasks taken in from it (scripts.h) */
};

/* A task's fingerprint, its field in {ns}:attempts: FNV-1a 64 of its bytes
 * as 16 lowercase hex digits (KEYS_FP_LEN, plus a NUL in buf). */
#define KEYS_FP_LEN 16
char *keys_fingerprint(const void *task, size_t len, char buf[KEYS_FP_LEN + 1]);

/* Fills k for namespace ns; -1 if ns is too long. */
int keys_init(struct keys *k, const char *ns) __attribute__((warn_unused_result));

/* Fills k for shard `shard` of namespace ns split into nshards (1: the
 * namespace itself, as keys_init); -1 if ns is too long or the shard out of
 * range. */
int keys_init_shard(struct keys *k, const char *ns, int shard, int nshards)
    __attribute__((warn_unused_result));

/* The shard of a task whose key is in Redis Cluster slot `slot` (0-16383),
 * for a namespace split into nshards: slot * nshards / 16384, so shard i
 * holds the slots [ceil(i * 16384 / n), ceil((i + 1) * 16384 / n)). */
int keys_shard_of(unsigned slot, int nshards);

/* The slots of shard `shard` of nshards (1: all of them), *lo to *hi
 * inclusive: exactly those keys_shard_of puts there. */
void keys_shard_slots(int shard, int nshards, unsigned *lo, unsigned *hi);

/* The Redis Cluster slot every key of k lives in (its tag's). */
unsigned keys_slot(const struct keys *k);

/* Per-worker keys, written into buf (KEYS_NAME_MAX is always enough for a
 * valid worker id); return buf. */
char *keys_queue(const struct keys *k, const char *id, char *buf, size_t cap);
char *keys_inflight(const struct keys *k, const char *id, char *buf, size_t cap);
char *keys_hb(const struct keys *k, const char *id, char *buf, size_t cap);
/* {ns}:fenced:<id>: tasks of the slots <id> handed off, held until it has
 * finished the ones it already took. */
char *keys_fenced(const struct keys *k, const char *id, char *buf, size_t cap);

/* {ns#i}:forward:<j>: tasks that reached shard i but belong to shard j,
 * waiting to be forwarded; {ns#i}:forward:<j>:done: how many of them were
 * forwarded before its oldest (scripts.h). */
char *keys_forward(const struct keys *k, int to, char *buf, size_t cap);
char *keys_forward_done(const struct keys *k, int to, char *buf, size_t cap);

#endif
