/*
 * keys: the names of every Redis key slotd and its workers use. All share the
 * hash tag {<namespace>}, so they live in one Redis Cluster slot and one
 * MULTI/EXEC may touch any of them.
 */
#ifndef SLOTD_KEYS_H
#define SLOTD_KEYS_H

#include <stddef.h>

#define KEYS_NS_MAX   64
#define KEYS_NAME_MAX (KEYS_NS_MAX + 96)

struct keys {
    char ns[KEYS_NS_MAX + 1];       /* the namespace, without braces */
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
};

/* A task's fingerprint, its field in {ns}:attempts: FNV-1a 64 of its bytes
 * as 16 lowercase hex digits (KEYS_FP_LEN, plus a NUL in buf). */
#define KEYS_FP_LEN 16
char *keys_fingerprint(const void *task, size_t len, char buf[KEYS_FP_LEN + 1]);

/* Fills k for namespace ns; -1 if ns is too long. */
int keys_init(struct keys *k, const char *ns) __attribute__((warn_unused_result));

/* Per-worker keys, written into buf (KEYS_NAME_MAX is always enough for a
 * valid worker id); return buf. */
char *keys_queue(const struct keys *k, const char *id, char *buf, size_t cap);
char *keys_inflight(const struct keys *k, const char *id, char *buf, size_t cap);
char *keys_hb(const struct keys *k, const char *id, char *buf, size_t cap);
/* {ns}:fenced:<id>: tasks of the slots <id> handed off, held until it has
 * finished the ones it already took. */
char *keys_fenced(const struct keys *k, const char *id, char *buf, size_t cap);

#endif
