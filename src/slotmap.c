/*
 * slotmap: the slot table and its balanced, sticky assignment. Pure.
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

/* Order for handing out the +1 remainders: larger fractional share first,
 * then the worker that already owns more (so it need not give a slot up),
 * then the lower index. */
struct share {
    uint32_t idx;
    uint64_t rem;
    uint32_t nslots;
};

static int cmp_share(const void *a, const void *b)
{
    const struct share *x = a, *y = b;
    if (x->rem != y->rem)
        return x->rem > y->rem ? -1 : 1;
    if (x->nslots != y->nslots)
        return x->nslots > y->nslots ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

int slotmap_assign(struct slotmap *m, const struct slotmap_member *live, size_t n)
{
    struct slotmap_worker *nw = NULL;
    uint32_t *remap = NULL, *target = NULL;
    struct share *sh = NULL;
    uint32_t count = 0;
    int rc = -1;

    if (n > SLOTMAP_SLOTS)
        return -1;
    nw = calloc(n ? n : 1, sizeof *nw);
    remap = malloc((m->nworkers ? m->nworkers : 1) * sizeof *remap);
    target = calloc(n ? n : 1, sizeof *target);
    sh = calloc(n ? n : 1, sizeof *sh);
    if (nw == NULL || remap == NULL || target == NULL || sh == NULL)
        goto out;

    /* Survivors first, in their old order; then newcomers in live's order. */
    for (uint32_t i = 0; i < m->nworkers; i++) {
        remap[i] = SLOTMAP_NOBODY;
        for (size_t j = 0; j < n; j++) {
            if (strcmp(m->workers[i].id, live[j].id) == 0) {
                nw[count] = m->workers[i];
                nw[count].weight = clamp_weight(live[j].weight);
                nw[count].nslots = 0;
                remap[i] = count++;
                break;
            }
        }
    }
    for (size_t j = 0; j < n; j++) {
        int known = 0;
        for (uint32_t i = 0; i < count && !known; i++)
            known = strcmp(nw[i].id, live[j].id) == 0;
        if (known)
            continue;
        snprintf(nw[count].id, sizeof nw[count].id, "%s", live[j].id);
        nw[count].weight = clamp_weight(live[j].weight);
        nw[count].nslots = 0;
        count++;
    }

    /* Departed workers' slots become unowned. */
    for (unsigned s = 0; s < SLOTMAP_SLOTS; s++) {
        unsigned o = m->owner[s];
        o = o == SLOTMAP_NOBODY || o >= m->nworkers ? SLOTMAP_NOBODY : remap[o];
        m->owner[s] = (uint16_t)o;
        if (o != SLOTMAP_NOBODY)
            nw[o].nslots++;
    }

    if (count > 0) {
        /* Targets by weight, largest remainder. */
        uint64_t total = 0, given = 0;
        for (uint32_t i = 0; i < count; i++)
            total += nw[i].weight;
        for (uint32_t i = 0; i < count; i++) {
            uint64_t q = (uint64_t)SLOTMAP_SLOTS * nw[i].weight;
            target[i] = (uint32_t)(q / total);
            given += target[i];
            sh[i].idx = i;
            sh[i].rem = q % total;
            sh[i].nslots = nw[i].nslots;
        }
        qsort(sh, count, sizeof *sh, cmp_share);
        for (uint64_t k = 0; k < SLOTMAP_SLOTS - given; k++)
            target[sh[k].idx]++;

        /* Over target: give up the highest-numbered slots. */
        for (unsigned s = SLOTMAP_SLOTS; s-- > 0;) {
            unsigned o = m->owner[s];
            if (o != SLOTMAP_NOBODY && nw[o].nslots > target[o]) {
                nw[o].nslots--;
                m->owner[s] = SLOTMAP_NOBODY;
            }
        }
        /* Under target: take unowned slots, lowest first, in runs. */
        uint32_t w = 0;
        for (unsigned s = 0; s < SLOTMAP_SLOTS; s++) {
            if (m->owner[s] != SLOTMAP_NOBODY)
                continue;
            while (w < count && nw[w].nslots >= target[w])
                w++;
            if (w == count)
                break;      /* cannot happen: targets sum to 16384 */
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
    free(nw);
    free(remap);
    free(target);
    free(sh);
    return rc;
}

size_t slotmap_format_ranges(const struct slotmap *m, uint32_t idx, char *buf, size_t cap)
{
    size_t need = 0;
    char piece[16];
    if (cap > 0)
        buf[0] = '\0';
    for (unsigned s = 0; s < SLOTMAP_SLOTS; s++) {
        if (m->owner[s] != idx)
            continue;
        unsigned e = s;
        while (e + 1 < SLOTMAP_SLOTS && m->owner[e + 1] == idx)
            e++;
        int n = e == s ? snprintf(piece, sizeof piece, "%s%u", need ? "," : "", s)
                       : snprintf(piece, sizeof piece, "%s%u-%u", need ? "," : "", s, e);
        if (need + (size_t)n < cap)
            memcpy(buf + need, piece, (size_t)n + 1);
        need += (size_t)n;
        s = e;
    }
    return need;
}

/* Parses a slot number at *p (digits only, at most 16383). */
static int parse_slot(const char **p, const char *end, unsigned *out)
{
    unsigned v = 0;
    int digits = 0;
    while (*p < end && **p >= '0' && **p <= '9') {
        v = v * 10 + (unsigned)(**p - '0');
        if (++digits > 5 || v >= SLOTMAP_SLOTS)
            return -1;
        (*p)++;
    }
    if (digits == 0)
        return -1;
    *out = v;
    return 0;
}

int slotmap_claim(struct slotmap *m, const char *id, const char *ranges,
                  size_t len, char *err, size_t errlen)
{
    const char *p = ranges, *end = ranges + len;
    int idx = slotmap_find(m, id);
    unsigned claimed = 0;
    uint8_t *mine = calloc(SLOTMAP_SLOTS, 1);

    if (mine == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!slotmap_valid_id(id, strlen(id))) {
        snprintf(err, errlen, "invalid worker id");
        goto fail;
    }
    while (p < end) {
        unsigned a, b;
        if (parse_slot(&p, end, &a) != 0) {
            snprintf(err, errlen, "bad slot at offset %zu", (size_t)(p - ranges));
            goto fail;
        }
        b = a;
        if (p < end && *p == '-') {
            p++;
            if (parse_slot(&p, end, &b) != 0 || b < a) {
                snprintf(err, errlen, "bad range at offset %zu", (size_t)(p - ranges));
                goto fail;
            }
        }
        for (unsigned s = a; s <= b; s++) {
            unsigned o = m->owner[s];
            if (o != SLOTMAP_NOBODY && (idx < 0 || o != (unsigned)idx)) {
                snprintf(err, errlen, "slot %u is already owned by %s", s, m->workers[o].id);
                goto fail;
            }
            if (!mine[s])
                claimed++;
            mine[s] = 1;
        }
        if (p < end) {
            if (*p != ',' || p + 1 == end) {
                snprintf(err, errlen, "expected ',' between ranges at offset %zu", (size_t)(p - ranges));
                goto fail;
            }
            p++;
        }
    }
    if (idx < 0) {
        if (m->nworkers == m->cap) {
            uint32_t nc = m->cap ? m->cap * 2 : 8;
            struct slotmap_worker *w = realloc(m->workers, nc * sizeof *w);
            if (w == NULL) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            m->workers = w;
            m->cap = nc;
        }
        idx = (int)m->nworkers++;
        memset(&m->workers[idx], 0, sizeof m->workers[idx]);
        snprintf(m->workers[idx].id, sizeof m->workers[idx].id, "%s", id);
        m->workers[idx].weight = 1;
    }
    for (unsigned s = 0; s < SLOTMAP_SLOTS; s++)
        if (mine[s] && m->owner[s] == SLOTMAP_NOBODY) {
            m->owner[s] = (uint16_t)idx;
            m->workers[idx].nslots++;
        }
    (void)claimed;
    free(mine);
    return 0;
fail:
    free(mine);
    return -1;
}

int slotmap_check(const struct slotmap *m, char *err, size_t errlen)
{
    uint32_t *count = calloc(m->nworkers ? m->nworkers : 1, sizeof *count);
    int rc = -1;
    if (count == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
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
    return rc;
}
