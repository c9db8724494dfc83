/*
 * slotmap: the slot table. Every one of the 16384 slots has exactly one owner
 * among the live workers (or none while there is no live worker). Pure: no
 * I/O, no clock; slotd persists it in Redis as {ns}:slots.
 *
 * Assignment is balanced and sticky: each worker's target is its share of
 * 16384 by weight (with equal weights ⌊16384/n⌋ or ⌈16384/n⌉); a worker over
 * target releases only its excess, a worker under target takes only what it
 * lacks, so a join moves only the slots the newcomers take and a death moves
 * only the departed worker's slots.
 */
#ifndef SLOTD_SLOTMAP_H
#define SLOTD_SLOTMAP_H

#include <stddef.h>
#include <stdint.h>

#define SLOTMAP_SLOTS   16384u
#define SLOTMAP_ID_MAX  64          /* worker ids are 1-64 of [A-Za-z0-9._-] */
#define SLOTMAP_NOBODY  0xFFFFu     /* owner of a slot nobody owns */
#define SLOTMAP_WEIGHT_MAX 1000u

struct slotmap_worker {
    char     id[SLOTMAP_ID_MAX + 1];    /* NUL-terminated worker id */
    uint32_t weight;                    /* 1..SLOTMAP_WEIGHT_MAX */
    uint32_t nslots;                    /* how many slots it owns */
};

struct slotmap {
    uint16_t owner[SLOTMAP_SLOTS];      /* worker index, or SLOTMAP_NOBODY */
    struct slotmap_worker *workers;     /* owned; nworkers used, cap allocated */
    uint32_t nworkers;
    uint32_t cap;
};

/* A live worker as membership sees it. */
struct slotmap_member {
    const char *id;                     /* (ref) valid id */
    uint32_t    weight;                 /* 0 is taken as 1; clamped to max */
};

/* An empty table: no workers, every slot SLOTMAP_NOBODY. */
void slotmap_init(struct slotmap *m);
/* Frees the workers array; accepts a zeroed or NULL map. */
void slotmap_free(struct slotmap *m);
/* dst becomes a deep copy of src (dst must be initialised). 0, or -1 on ENOMEM. */
int slotmap_copy(struct slotmap *dst, const struct slotmap *src)
    __attribute__((warn_unused_result));

/* Index of worker id, or -1. */
int slotmap_find(const struct slotmap *m, const char *id);

static inline unsigned slotmap_owner(const struct slotmap *m, unsigned slot)
{
    return m->owner[slot];
}

/* 1 if id is a valid worker id: 1-64 bytes of [A-Za-z0-9._-]. */
int slotmap_valid_id(const char *id, size_t len);

/*
 * Makes the table belong to exactly these live members: workers not among them
 * are removed (their slots released), newcomers are appended, weights updated,
 * then slots move as little as possible to reach the balanced targets.
 * Surviving workers keep their relative order (indices may shift down when a
 * worker is removed). Duplicate ids in live count once (the first one's
 * weight). n == 0 empties it. At most SLOTMAP_SLOTS distinct workers, so that
 * every worker can own a slot and every index fits owner[].
 *
 * Targets: SLOTMAP_SLOTS * weight / total weight, rounded by largest
 * remainder; among equal remainders the +1 goes to the worker that owns the
 * most beyond its floor now (then the lower index), which is what keeps a
 * join or a death from moving anyone else's slots. A worker over target gives up its
 * highest-numbered slots; the freed and unowned slots go, lowest first, to
 * the workers under target in worker order.
 *
 * Returns 0; or -1, table unchanged, on ENOMEM, on an id that is NULL or not
 * slotmap_valid_id, or on more than SLOTMAP_SLOTS distinct ids.
 */
int slotmap_assign(struct slotmap *m, const struct slotmap_member *live, size_t n)
    __attribute__((warn_unused_result));

/*
 * The same over the slots lo..hi only (a shard's: keys.h): the targets are
 * shares of those, and every slot outside them is released to nobody. The
 * same stickiness holds within the range.
 */
int slotmap_assign_range(struct slotmap *m, const struct slotmap_member *live, size_t n,
                         unsigned lo, unsigned hi) __attribute__((warn_unused_result));

/*
 * Writes worker idx's slots as ascending ranges, "0-5460,16000-16383" (a lone
 * slot as "7"), NUL-terminated. Returns the length it needed (snprintf-like);
 * 16384 slots never need more than SLOTMAP_RANGES_MAX bytes. When cap is too
 * small the buffer holds the ranges that fit whole. An idx that is not a
 * worker writes "" and returns 0.
 */
#define SLOTMAP_RANGES_MAX (16384u * 12u)
size_t slotmap_format_ranges(const struct slotmap *m, uint32_t idx,
                             char *buf, size_t cap);

/*
 * Adds worker id (weight 1 if new) and gives it the slots in ranges (the
 * format above; "" = none). Fails with a message in err, leaving the table
 * unchanged, on bad syntax, a slot out of range, or a slot that another
 * worker already owns. Used to load the table saved in Redis.
 *
 * Syntax, nothing else accepted (no spaces, signs, empty pieces, trailing
 * comma): ranges := "" | piece ("," piece)*; piece := slot | slot "-" slot
 * with the first <= the second; slot := "0" | [1-9][0-9]* at most 16383.
 * Pieces may overlap or come in any order. Also fails on an invalid id, or on
 * a new worker when there are SLOTMAP_SLOTS already. The slots are not
 * checked against any target: slotmap_assign rebalances afterwards.
 */
int slotmap_claim(struct slotmap *m, const char *id, const char *ranges,
                  size_t len, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* A set of slots as a bitmap: slot s is bit s % 8 of byte s / 8. */
#define SLOTMAP_BITS_LEN (SLOTMAP_SLOTS / 8)
static inline void slotmap_bit_set(uint8_t *bits, unsigned s)
{
    bits[s >> 3] |= (uint8_t)(1u << (s & 7));
}
static inline unsigned slotmap_bit(const uint8_t *bits, unsigned s)
{
    return (bits[s >> 3] >> (s & 7)) & 1u;
}

/* slotmap_claim with the slots as a bitmap (none: the worker is added with
 * no slot). The same checks, the same all-or-nothing. */
int slotmap_claim_bits(struct slotmap *m, const char *id, const uint8_t bits[SLOTMAP_BITS_LEN],
                       char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* 0 if the invariants hold (counts match owners, every slot owned iff any
 * worker, ids valid and unique, weights 1..SLOTMAP_WEIGHT_MAX); otherwise -1
 * with the first broken one in err. For tests. */
int slotmap_check(const struct slotmap *m, char *err, size_t errlen);

#endif
