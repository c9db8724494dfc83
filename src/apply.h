/*
 * apply: builds one guarded write for scripts_apply (scripts.h): the type
 * each key must have, then the commands, sent as one EVAL that writes
 * nothing unless every check passes. Pure: it only builds the arguments.
 *
 *   apply_check(a, "{ns}:intake", "list");
 *   apply_cmd(a, 3, (const char *[]){ "SREM", "{ns}:workers", "w1" }, NULL);
 *   apply_build(a, tail_key, expected, next, &argc, &argv, &argvlen);
 *   -> EVAL <scripts_apply> 2+k tail tail keys... expected next c key type ...
 *           3 SREM {ns}:workers w1
 */
#ifndef SLOTD_APPLY_H
#define SLOTD_APPLY_H

#include <stddef.h>
#include <stdint.h>

struct apply_word {
    size_t off, len;            /* into buf */
};

struct apply {
    char              *buf;     /* owned: every word's bytes, back to back */
    size_t             used, cap;
    struct apply_word *keys;    /* owned: the checked keys, each once */
    size_t             nkeys, keys_cap;
    struct apply_word *checks;  /* owned: key, type, key, type, ... */
    size_t             nchecks, checks_cap;
    struct apply_word *cmds;    /* owned: count, words, count, words, ... */
    size_t             ncmds, cmds_cap;
    size_t             ncommands;   /* commands added */
    const char       **argv;    /* owned: built by apply_build, valid until the next change */
    size_t            *argvlen; /* owned */
    size_t             argv_cap;
    char               num[2][24];  /* the numbers apply_build writes */
};

void apply_init(struct apply *a);
/* Forgets the checks and commands, keeping the memory. */
void apply_reset(struct apply *a);
void apply_free(struct apply *a);

/* key (missing passes) must be of type: "list", "hash", "set", "string", or
 * "int" (a string holding an integer). 0, or -1 on ENOMEM. */
int apply_check(struct apply *a, const char *key, const char *type)
    __attribute__((warn_unused_result));

/* A command (or MOVEALL src dst, or TRY before a command); the words are
 * copied. argvlen NULL: C strings. 0, or -1 on ENOMEM. */
int apply_cmd(struct apply *a, int argc, const char *const *argv, const size_t *argvlen)
    __attribute__((warn_unused_result));

/* Commands added since the last reset. */
size_t apply_count(const struct apply *a);

/* The EVAL's arguments, valid until a is changed. 0, or -1 on ENOMEM. */
/* expected and next are the values of {ns}:tail the change expects and sets
 * (scripts.h); they must outlive the use of argv. */
int apply_build(struct apply *a, const char *tail_key, const char *expected, const char *next,
                int *argc, const char ***argv, const size_t **argvlen)
    __attribute__((warn_unused_result));

#endif
