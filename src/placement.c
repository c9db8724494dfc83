/*
 * placement: which master of a Redis Cluster each namespace lands on, and
 * names that land on the emptiest (see placement.h).
 */
#include "placement.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CANDIDATES_MAX (26 + 26 * 26 + 26 * 26 * 26)   /* -a .. -zzz */

static int find(const struct placement *p, const struct sentinel_addr *a)
{
    for (size_t i = 0; i < p->n; i++)
        if (sentinel_addr_same(&p->m[i].addr, a))
            return (int)i;
    return -1;
}

int placement_init(struct placement *p, const struct cluster_map *map)
{
    p->m = NULL;
    p->n = 0;
    if (map->n == 0)
        return 0;
    if ((p->m = calloc(map->n, sizeof *p->m)) == NULL)
        return -1;
    for (size_t r = 0; r < map->n; r++) {
        int i = find(p, &map->r[r].master);
        if (i < 0) {
            i = (int)p->n++;
            p->m[i].addr = map->r[r].master;
        }
        p->m[i].slots += map->r[r].end - map->r[r].start + 1;
    }
    return 0;
}

int placement_master_of(const struct placement *p, const struct cluster_map *map, unsigned slot)
{
    const struct sentinel_addr *a = cluster_map_master(map, slot);
    return a != NULL ? find(p, a) : -1;
}

int placement_hold(struct placement *p, const struct cluster_map *map, unsigned slot)
{
    int i = placement_master_of(p, map, slot);
    if (i >= 0)
        p->m[i].held++;
    return i;
}

int placement_slot(const char *ns, int nshards)
{
    struct keys k;
    if (keys_init_shard(&k, ns, 0, nshards < 1 ? 1 : nshards) != 0)
        return -1;
    return (int)keys_slot(&k);
}

int placement_name(char *buf, size_t cap, const char *prefix, unsigned i)
{
    char letters[8];
    int n = 0;
    /* Bijective base 26: a..z, aa..zz, aaa.. */
    for (unsigned v = i + 1; v > 0 && n < (int)sizeof letters - 1; v = (v - 1) / 26)
        letters[n++] = (char)('a' + (v - 1) % 26);
    for (int l = 0, r = n - 1; l < r; l++, r--) {
        char t = letters[l];
        letters[l] = letters[r];
        letters[r] = t;
    }
    letters[n] = '\0';
    int len = snprintf(buf, cap, "%s-%s", prefix, letters);
    return len < 0 || (size_t)len >= cap || len > KEYS_NS_MAX ? -1 : 0;
}

static int is_taken(const char *name, const char *const *taken, size_t ntaken,
                    char (*names)[KEYS_NS_MAX + 1], int found)
{
    for (size_t i = 0; i < ntaken; i++)
        if (strcmp(name, taken[i]) == 0)
            return 1;
    for (int i = 0; i < found; i++)
        if (strcmp(name, names[i]) == 0)
            return 1;
    return 0;
}

int placement_suggest(struct placement *p, const struct cluster_map *map, const char *prefix,
                      int nshards, int count, char (*names)[KEYS_NS_MAX + 1],
                      const char *const *taken, size_t ntaken)
{
    int found = 0;
    while (found < count && p->n > 0) {
        size_t emptiest = 0;
        for (size_t i = 1; i < p->n; i++)
            if (p->m[i].held < p->m[emptiest].held)
                emptiest = i;
        int got = 0;
        for (unsigned c = 0; c < CANDIDATES_MAX && !got; c++) {
            char name[KEYS_NS_MAX + 1];
            int slot;
            if (placement_name(name, sizeof name, prefix, c) != 0)
                return found;   /* the prefix leaves no room */
            if (is_taken(name, taken, ntaken, names, found) ||
                (slot = placement_slot(name, nshards)) < 0 ||
                placement_master_of(p, map, (unsigned)slot) != (int)emptiest)
                continue;
            memcpy(names[found++], name, sizeof name);
            p->m[emptiest].held++;
            got = 1;
        }
        if (!got)
            return found;       /* no candidate lands there */
    }
    return found;
}

void placement_free(struct placement *p)
{
    if (p == NULL)
        return;
    free(p->m);
    p->m = NULL;
    p->n = 0;
}
