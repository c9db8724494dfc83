/*
 * slotmap: the slot table, its balanced and sticky assignment, and the
 * "0-5460,16000-16383" text form slotd saves it in. Pure: no I/O, no clock.
 */
#include "slotmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void slotmap_init(struct slotmap *m)
{
    m->workers = NULL;
    m->nworkers = 0;
    m->cap = 0;
    for (unsigned s = 0; s < SLOTMAP_SLOTS; s++)
        m->owner[s] = SLOTMAP_NOBODY;
}

void slotmap_free(struct slotmap *m)
{
    if (m == NULL)
        return;
    free(m->workers);
    slotmap_init(m);
}

int slotmap_copy(struct slotmap *dst, const struct slotmap *src)
{
    struct slotmap_worker *w = NULL;
    if (src->nworkers > 0) {
        w = malloc(src->nworkers * sizeof *w);
        if (w == NULL)
            return -1;
        memcpy(w, src->workers, src->nworkers * sizeof *w);
    }
    free(dst->workers);
    dst->workers = w;
    dst->nworkers = dst->cap = src->nworkers;
    memcpy(dst->owner, src->owner, sizeof dst->owner);
    return 0;
}

int slotmap_find(const struct slotmap *m, const char *id)
{
    for (uint32_t i = 0; i < m->nworkers; i++)
        if (strcmp(m->workers[i].id, id) == 0)
            return (int)i;
    return -1;
}

int slotmap_valid_id(const char *id, size_t len)
{
    if (len == 0 || len > SLOTMAP_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static uint32_t clamp_weight(uint32_t w)
{
    if (w == 0)
        return 1;
    return w > SLOTMAP_WEIGHT_MAX ? SLOTMAP_WEIGHT_MAX : w;
}

/* An id and where it came from, so that ids can be matched by sorting
 * rather than by comparing every pair (16384 workers would be 10^8 strcmps). */
struct named {
    const char *id;     /* (ref) into live[] or m->workers[] */
    uint32_t    pos;    /* index in that array */
};

static int cmp_named(const void *a, const void *b)
{
    const struct named *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c != 0)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Order for handing out the +1 remainders: larger fractional share first;
 * among equal shares the worker that owns more beyond its floor now, so that
 * a worker keeps a slot it has rather than giving it up while another takes
 * one (this is what makes a join or a death move nothing but the newcomers'
 * or the departed's slots); then the lower index, for determinism. With
 * equal weights the floors are equal, so this is "owns more". Beyond the
 * floor and not raw count: with unequal weights a light worker holding a
 * slot over its floor must win over a heavy one that is short anyway. */
struct share {
    uint32_t idx;       /* worker index in the new table */
    uint64_t rem;       /* SLOTS * weight mod total weight */
    int64_t  surplus;   /* slots it keeps before rebalancing, less its floor */
};

static int cmp_share(const void *a, const void *b)
{
    const struct share *x = a, *y = b;
    if (x->rem != y->rem)
        return x->rem > y->rem ? -1 : 1;
    if (x->surplus != y->surplus)
        return x->surplus > y->surplus ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Each worker's target: its share of the `slots` slots by weight, rounded
 * by largest remainder so that the targets sum to exactly that. */
static void compute_targets(const struct slotmap_worker *w, uint32_t count, uint32_t slots,
                            struct share *sh, uint32_t *target)
{
    uint64_t total = 0, given = 0;
    for (uint32_t i = 0; i < count; i++)
        total += w[i].weight;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t q = (uint64_t)slots * w[i].weight;
        target[i] = (uint32_t)(q / total);
        given += target[i];
        sh[i].idx = i;
        sh[i].rem = q % total;
        sh[i].surplus = (int64_t)w[i].nslots - (int64_t)target[i];
    }
    qsort(sh, count, sizeof *sh, cmp_share);
    /* Fewer extras than workers: the floors fall short by less than one
     * slot per worker. */
    for (uint64_t k = 0; k < slots - given; k++)
        target[sh[k].idx]++;
}

int slotmap_assign(struct slotmap *m, const struct slotmap_member *live, size_t n)
{
    return slotmap_assign_range(m, live, n, 0, SLOTMAP_SLOTS - 1);
}

int slotmap_assign_range(struct slotmap *m, const struct slotmap_member *live, size_t n,
                         unsigned lo, unsigned hi)
{
    struct named *byid = NULL, *oldid = NULL;
    uint32_t *match = NULL;     /* live index -> old index, or UINT32_MAX */
    uint32_t *remap = NULL;     /* old index -> new index, or SLOTMAP_NOBODY */
    uint8_t *first = NULL;      /* live[j] is the first of its id */
    struct slotmap_worker *nw = NULL;
    struct share *sh = NULL;
    uint32_t *target = NULL;
    uint32_t count = 0, distinct = 0;
    int rc = -1;

    /* More live entries than 2^32 cannot be distinct workers we can hold;
     * refuse before any size arithmetic can wrap. */
    if (n > UINT32_MAX / 2 || lo > hi || hi >= SLOTMAP_SLOTS)
        return -1;
    for (size_t j = 0; j < n; j++)
        if (live[j].id == NULL ||
            !slotmap_valid_id(live[j].id, strnlen(live[j].id, SLOTMAP_ID_MAX + 1)))
            return -1;

    size_t nl = n ? n : 1, no = m->nworkers ? m->nworkers : 1;
    byid = malloc(nl * sizeof *byid);
    oldid = malloc(no * sizeof *oldid);
    match = malloc(nl * sizeof *match);
    remap = malloc(no * sizeof *remap);
    first = calloc(nl, 1);
    if (byid == NULL || oldid == NULL || match == NULL || remap == NULL || first == NULL)
        goto out;

    /* Sort both id lists and walk them together: which live entries are
     * duplicates (the first one counts) and which are survivors. */
    for (size_t j = 0; j < n; j++) {
        byid[j].id = live[j].id;
        byid[j].pos = (uint32_t)j;
        match[j] = UINT32_MAX;
    }
    for (uint32_t i = 0; i < m->nworkers; i++) {
        oldid[i].id = m->workers[i].id;
        oldid[i].pos = i;
        remap[i] = SLOTMAP_NOBODY;
    }
    qsort(byid, n, sizeof *byid, cmp_named);
    qsort(oldid, m->nworkers, sizeof *oldid, cmp_named);
    uint32_t o = 0;
    for (size_t k = 0; k < n; k++) {
        if (k > 0 && strcmp(byid[k].id, byid[k - 1].id) == 0)
            continue;
        first[byid[k].pos] = 1;
        distinct++;
        while (o < m->nworkers && strcmp(oldid[o].id, byid[k].id) < 0)
            o++;
        if (o < m->nworkers && strcmp(oldid[o].id, byid[k].id) == 0)
            match[byid[k].pos] = oldid[o++].pos;
    }
    /* Every worker must fit a uint16_t owner below SLOTMAP_NOBODY; more
     * workers than slots would leave some idle anyway. */
    if (distinct > SLOTMAP_SLOTS)
        goto out;

    size_t nd = distinct ? distinct : 1;
    nw = calloc(nd, sizeof *nw);
    sh = calloc(nd, sizeof *sh);
    target = calloc(nd, sizeof *target);
    if (nw == NULL || sh == NULL || target == NULL)
        goto out;

    /* Survivors first, in their old order; then newcomers in live's order. */
    for (size_t j = 0; j < n; j++)
        if (first[j] && match[j] != UINT32_MAX)
            remap[match[j]] = 1;
    for (uint32_t i = 0; i < m->nworkers; i++) {
        if (remap[i] == SLOTMAP_NOBODY)
            continue;
        nw[count] = m->workers[i];
        remap[i] = count++;
    }
    for (size_t j = 0; j < n; j++) {
        if (!first[j])
            continue;
        if (match[j] != UINT32_MAX) {
            nw[remap[match[j]]].weight = clamp_weight(live[j].weight);
            continue;
        }
        memcpy(nw[count].id, live[j].id, strlen(live[j].id) + 1);
        nw[count].weight = clamp_weight(live[j].weight);
        count++;
    }

    /* Nothing can fail from here on: the table changes only now. */

    /* Departed workers' slots, and every slot out of the range, become
     * unowned; survivors recount theirs. */
    for (uint32_t i = 0; i < count; i++)
        nw[i].nslots = 0;
    for (unsigned s = 0; s < SLOTMAP_SLOTS; s++) {
        unsigned w = m->owner[s];
        w = w >= m->nworkers || s < lo || s > hi ? SLOTMAP_NOBODY : remap[w];
        m->owner[s] = (uint16_t)w;
        if (w != SLOTMAP_NOBODY)
            nw[w].nslots++;
    }

    if (count > 0) {
        compute_targets(nw, count, hi - lo + 1, sh, target);

        /* Over target: give up the excess, highest-numbered slots first. */
        for (unsigned s = hi + 1; s-- > lo;) {
            unsigned w = m->owner[s];
            if (w != SLOTMAP_NOBODY && nw[w].nslots > target[w]) {
                nw[w].nslots--;
                m->owner[s] = SLOTMAP_NOBODY;
            }
        }
        /* Under target: take unowned slots, lowest first, each worker in
         * turn until it has its target, so what it takes comes in runs.
         * Every unowned slot finds a taker because the targets sum to
         * the range's size. */
        uint32_t w = 0;
        for (unsigned s = lo; s <= hi; s++) {
            if (m->owner[s] != SLOTMAP_NOBODY)
                continue;
            while (w < count && nw[w].nslots >= target[w])
                w++;
            if (w == count)
                break;
            m->owner[s] = (uint16_t)w;
            nw[w].nslots++;
        }
    }
    free(m->workers);
    m->workers = nw;
    m->nworkers = m->cap = count;
    nw = NULL;
    rc = 0;
out:
    free(byid);
    free(oldid);
    free(match);
    free(remap);
    free(first);
    free(nw);
    free(sh);
    free(target);
    return rc;
}

size_t slotmap_format_ranges(const struct slotmap *m, uint32_t idx, char *buf, size_t cap)
{
    size_t need = 0;
    char piece[16];     /* ",16383-16383" and its NUL */

    if (cap > 0)
        buf[0] = '\0';
    if (idx >= m->nworkers)
        return 0;
    for (unsigned s = 0; s < SLOTMAP_SLOTS; s++) {
        if (m->owner[s] != idx)
            continue;
        unsigned e = s;
        while (e + 1 < SLOTMAP_SLOTS && m->owner[e + 1] == idx)
            e++;
        int n = e == s ? snprintf(piece, sizeof piece, "%s%u", need ? "," : "", s)
                       : snprintf(piece, sizeof piece, "%s%u-%u", need ? "," : "", s, e);
        /* Whole pieces only: once one does not fit, none after it can,
         * since need only grows, so the buffer holds a valid prefix. */
        if (need + (size_t)n < cap)
            memcpy(buf + need, piece, (size_t)n + 1);
        need += (size_t)n;
        s = e;
    }
    return need;
}

/* A slot number at *p: "0", or 1-5 digits without a leading zero, at most
 * 16383. One spelling per number, so a saved table reads back only as
 * slotmap_format_ranges wrote it. */
static int parse_slot(const char **p, const char *end, unsigned *out)
{
    const char *q = *p;
    unsigned v = 0;

    if (q == end || *q < '0' || *q > '9')
        return -1;
    if (*q == '0') {
        q++;
        if (q < end && *q >= '0' && *q <= '9')
            return -1;
    } else {
        /* v < SLOTMAP_SLOTS before each step, so v * 10 + 9 cannot wrap. */
        while (q < end && *q >= '0' && *q <= '9') {
            v = v * 10 + (unsigned)(*q - '0');
            if (v >= SLOTMAP_SLOTS)
                return -1;
            q++;
        }
    }
    *p = q;
    *out = v;
    return 0;
}


/* Whether id may claim slots in m: a valid id, and room for it if new. */
static int claim_allowed(const struct slotmap *m, const char *id, int idx, char *err,
                         size_t errlen)
{
    if (!slotmap_valid_id(id, strnlen(id, SLOTMAP_ID_MAX + 1))) {
        snprintf(err, errlen, "invalid worker id");
        return 0;
    }
    if (idx < 0 && m->nworkers >= SLOTMAP_SLOTS) {
        snprintf(err, errlen, "too many workers (at most %u)", SLOTMAP_SLOTS);
        return 0;
    }
    return 1;
}

/* 0 if slot s is free or idx's already; else -1, naming its owner in err. */
static int claim_free(const struct slotmap *m, int idx, unsigned s, char *err, size_t errlen)
{
    unsigned o = m->owner[s];
    if (o != SLOTMAP_NOBODY && (idx < 0 || o != (unsigned)idx)) {
        snprintf(err, errlen, "slot %u is already owned by %s", s,
                 o < m->nworkers ? m->workers[o].id : "?");
        return -1;
    }
    return 0;
}

/* The claim, once checked: adds id if new, gives it every slot of mine. */
static int claim_commit(struct slotmap *m, const char *id, int idx,
                        const uint8_t mine[SLOTMAP_BITS_LEN], char *err, size_t errlen)
{
    if (idx < 0) {
        if (m->nworkers == m->cap) {
            uint32_t nc = m->cap ? m->cap * 2 : 8;
            struct slotmap_worker *w = realloc(m->workers, nc * sizeof *w);
            if (w == NULL) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            m->workers = w;
            m->cap = nc;
        }
        idx = (int)m->nworkers++;
        memset(&m->workers[idx], 0, sizeof m->workers[idx]);
        memcpy(m->workers[idx].id, id, strlen(id) + 1);
        m->workers[idx].weight = 1;
    }
    for (unsigned s = 0; s < SLOTMAP_SLOTS; s++)
        if (slotmap_bit(mine, s) && m->owner[s] == SLOTMAP_NOBODY) {
            m->owner[s] = (uint16_t)idx;
            m->workers[idx].nslots++;
        }
    return 0;
}

int slotmap_claim_bits(struct slotmap *m, const char *id, const uint8_t bits[SLOTMAP_BITS_LEN],
                       char *err, size_t errlen)
{
    int idx = slotmap_find(m, id);
    if (!claim_allowed(m, id, idx, err, errlen))
        return -1;
    for (unsigned s = 0; s < SLOTMAP_SLOTS; s++)
        if (slotmap_bit(bits, s) && claim_free(m, idx, s, err, errlen) != 0)
            return -1;
    return claim_commit(m, id, idx, bits, err, errlen);
}

int slotmap_claim(struct slotmap *m, const char *id, const char *ranges,
                  size_t len, char *err, size_t errlen)
{
    const char *p = ranges, *end = len ? ranges + len : ranges;
    int idx = slotmap_find(m, id);
    uint8_t mine[SLOTMAP_BITS_LEN] = { 0 };     /* the slots ranges names */

    if (!claim_allowed(m, id, idx, err, errlen))
        return -1;

    /* First pass: syntax and ownership, touching nothing, so that a failure
     * leaves the table as it was. */
    while (p < end) {
        unsigned a, b;
        if (parse_slot(&p, end, &a) != 0) {
            snprintf(err, errlen, "bad slot at offset %zu of '%.*s'", (size_t)(p - ranges),
                     len > 40 ? 40 : (int)len, ranges);
            return -1;
        }
        b = a;
        if (p < end && *p == '-') {
            p++;
            if (parse_slot(&p, end, &b) != 0 || b < a) {
                snprintf(err, errlen, "bad range at offset %zu of '%.*s'", (size_t)(p - ranges),
                         len > 40 ? 40 : (int)len, ranges);
                return -1;
            }
        }
        for (unsigned s = a; s <= b; s++) {
            if (claim_free(m, idx, s, err, errlen) != 0)
                return -1;
            slotmap_bit_set(mine, s);
        }
        if (p < end) {
            /* A comma must be followed by another range: no trailing ','. */
            if (*p != ',' || p + 1 == end) {
                snprintf(err, errlen, "expected ',' and a range at offset %zu of '%.*s'",
                         (size_t)(p - ranges), len > 40 ? 40 : (int)len, ranges);
                return -1;
            }
            p++;
        }
    }

    return claim_commit(m, id, idx, mine, err, errlen);
}

int slotmap_check(const struct slotmap *m, char *err, size_t errlen)
{
    uint32_t *count = NULL;
    struct named *ids = NULL;
    int rc = -1;

    if (m->nworkers > SLOTMAP_SLOTS || m->nworkers > m->cap ||
        (m->nworkers > 0 && m->workers == NULL)) {
        snprintf(err, errlen, "%u workers, %u allocated", m->nworkers, m->cap);
        return -1;
    }
    count = calloc(m->nworkers ? m->nworkers : 1, sizeof *count);
    ids = malloc((m->nworkers ? m->nworkers : 1) * sizeof *ids);
    if (count == NULL || ids == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < m->nworkers; i++) {
        const struct slotmap_worker *w = &m->workers[i];
        if (!slotmap_valid_id(w->id, strnlen(w->id, sizeof w->id))) {
            snprintf(err, errlen, "worker %u has an invalid id", i);
            goto out;
        }
        if (w->weight < 1 || w->weight > SLOTMAP_WEIGHT_MAX) {
            snprintf(err, errlen, "worker %s has weight %u", w->id, w->weight);
            goto out;
        }
        ids[i].id = w->id;
        ids[i].pos = i;
    }
    qsort(ids, m->nworkers, sizeof *ids, cmp_named);
    for (uint32_t i = 1; i < m->nworkers; i++)
        if (strcmp(ids[i].id, ids[i - 1].id) == 0) {
            snprintf(err, errlen, "worker %s appears twice", ids[i].id);
            goto out;
        }
    for (unsigned s = 0; s < SLOTMAP_SLOTS; s++) {
        unsigned o = m->owner[s];
        if (o == SLOTMAP_NOBODY) {
            if (m->nworkers > 0) {
                snprintf(err, errlen, "slot %u has no owner", s);
                goto out;
            }
            continue;
        }
        if (o >= m->nworkers) {
            snprintf(err, errlen, "slot %u owned by index %u of %u", s, o, m->nworkers);
            goto out;
        }
        count[o]++;
    }
    for (uint32_t i = 0; i < m->nworkers; i++)
        if (count[i] != m->workers[i].nslots) {
            snprintf(err, errlen, "worker %s owns %u slots, counted %u", m->workers[i].id,
                     count[i], m->workers[i].nslots);
            goto out;
        }
    rc = 0;
out:
    free(count);
    free(ids);
    return rc;
}
