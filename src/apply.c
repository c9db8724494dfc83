/*
 * apply: the arguments of one guarded write (see apply.h). Words are copied
 * into one buffer and kept as offsets, so the buffer may grow under them.
 */
#include "apply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scripts.h"

void apply_init(struct apply *a)
{
    memset(a, 0, sizeof *a);
}

void apply_reset(struct apply *a)
{
    a->used = 0;
    a->nkeys = a->nchecks = a->ncmds = a->ncommands = 0;
}

void apply_free(struct apply *a)
{
    free(a->buf);
    free(a->keys);
    free(a->checks);
    free(a->cmds);
    free(a->argv);
    free(a->argvlen);
    apply_init(a);
}

static int grow(void **p, size_t *cap, size_t want, size_t elem)
{
    if (want <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < want)
        nc *= 2;
    void *q = realloc(*p, nc * elem);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = nc;
    return 0;
}

/* Copies a word into buf and appends it to a list. */
static int add_word(struct apply *a, struct apply_word **list, size_t *n, size_t *cap,
                    const char *p, size_t len)
{
    if (grow((void **)&a->buf, &a->cap, a->used + len + 1, 1) != 0 ||
        grow((void **)list, cap, *n + 1, sizeof **list) != 0)
        return -1;
    if (len > 0)
        memcpy(a->buf + a->used, p, len);
    a->buf[a->used + len] = '\0';
    (*list)[*n].off = a->used;
    (*list)[*n].len = len;
    (*n)++;
    a->used += len + 1;
    return 0;
}

int apply_check(struct apply *a, const char *key, const char *type)
{
    size_t klen = strlen(key);
    int known = 0;
    for (size_t i = 0; i < a->nkeys && !known; i++)
        known = a->keys[i].len == klen && memcmp(a->buf + a->keys[i].off, key, klen) == 0;
    if (!known && add_word(a, &a->keys, &a->nkeys, &a->keys_cap, key, klen) != 0)
        return -1;
    if (add_word(a, &a->checks, &a->nchecks, &a->checks_cap, key, klen) != 0 ||
        add_word(a, &a->checks, &a->nchecks, &a->checks_cap, type, strlen(type)) != 0)
        return -1;
    return 0;
}

int apply_cmd(struct apply *a, int argc, const char *const *argv, const size_t *argvlen)
{
    char count[16];
    snprintf(count, sizeof count, "%d", argc);
    if (add_word(a, &a->cmds, &a->ncmds, &a->cmds_cap, count, strlen(count)) != 0)
        return -1;
    for (int i = 0; i < argc; i++)
        if (add_word(a, &a->cmds, &a->ncmds, &a->cmds_cap, argv[i],
                     argvlen ? argvlen[i] : strlen(argv[i])) != 0)
            return -1;
    a->ncommands++;
    return 0;
}

size_t apply_count(const struct apply *a) { return a->ncommands; }

int apply_build(struct apply *a, const char *tail_key, const char *expected, const char *next,
                int *argc, const char ***argv, const size_t **argvlen)
{
    /* EVAL script numkeys tail "" keys... expected next nchecks checks... cmds... */
    size_t n = 5 + a->nkeys + 3 + a->nchecks + a->ncmds, k = 0;
    size_t c = a->argv_cap;
    if (grow((void **)&a->argv, &c, n, sizeof *a->argv) != 0)
        return -1;
    c = a->argv_cap;
    if (grow((void **)&a->argvlen, &c, n, sizeof *a->argvlen) != 0)
        return -1;
    a->argv_cap = c;
    snprintf(a->num[0], sizeof a->num[0], "%zu", 2 + a->nkeys);
    a->argv[k++] = "EVAL";
    a->argv[k++] = scripts_apply;
    a->argv[k++] = a->num[0];
    a->argv[k++] = tail_key;
    a->argv[k++] = tail_key;        /* KEYS[2] is unused: the tail, again */
    for (size_t i = 0; i < a->nkeys; i++)
        a->argv[k++] = a->buf + a->keys[i].off;
    a->argv[k++] = expected;
    a->argv[k++] = next;
    snprintf(a->num[1], sizeof a->num[1], "%zu", a->nchecks / 2);
    a->argv[k++] = a->num[1];
    for (size_t i = 0; i < a->nchecks; i++)
        a->argv[k++] = a->buf + a->checks[i].off;
    for (size_t i = 0; i < a->ncmds; i++)
        a->argv[k++] = a->buf + a->cmds[i].off;
    /* Lengths: the words may hold any bytes (tasks), so they are counted. */
    for (size_t i = 0; i < k; i++)
        a->argvlen[i] = strlen(a->argv[i]);
    for (size_t i = 0; i < a->ncmds; i++)
        a->argvlen[k - a->ncmds + i] = a->cmds[i].len;
    *argc = (int)k;
    *argv = a->argv;
    *argvlen = a->argvlen;
    return 0;
}
