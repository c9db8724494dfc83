/*
 * route: a task's slot under the routing rules, or why it has none. Pure.
 *
 *   empty ------------------------------------------> dead: empty
 *   larger than max_task_bytes ---------------------> dead: too_large
 *   key_field "" -----------------------------------> slot of the whole task
 *   invalid JSON -----------------------------------> dead: invalid_json
 *   not an object / no key / key twice / not a
 *   string or number: on_missing_key dead_letter ---> dead: that reason
 *                     on_missing_key payload -------> slot of the whole task
 *   otherwise --------------------------------------> slot of the key
 */
#ifndef SLOTD_ROUTE_H
#define SLOTD_ROUTE_H

#include <stddef.h>

#include "taskkey.h"

struct route_rules {
    const char *key_field;      /* (ref) "" = hash the whole task */
    size_t      key_field_len;
    int         on_missing_key; /* enum conf_on_missing */
    size_t      max_task_bytes;
};

struct conf;

/* The rules of the routing and dispatch sections of a configuration (the
 * strings stay c's). */
void route_rules_of(struct route_rules *rules, const struct conf *c);

/* TASKKEY_OK with *slot set, or the reason the task goes to the dead letter
 * (with *err_offset for invalid JSON). scratch holds at least len bytes. */
enum taskkey_result route_task(const struct route_rules *rules,
                               const char *task, size_t len, char *scratch,
                               unsigned *slot, size_t *err_offset);

/*
 * The producers' rule (docs/shards.md): the shard of a namespace split into
 * nshards (1: not split, always 0) a task belongs to. A task route_task
 * routes belongs to the shard of its slot, keys_shard_of(slot, nshards); one
 * it would dead-letter (empty, too large, invalid JSON, no usable key under
 * on_missing_key dead_letter) belongs to ROUTE_UNROUTABLE_SHARD, whose slotd
 * dead-letters it, so every task that cannot be routed ends in one list,
 * {<ns>#0}:dead. *result (may be NULL) is route_task's; *slot (may be NULL)
 * is set on TASKKEY_OK. scratch holds at least len bytes.
 */
#define ROUTE_UNROUTABLE_SHARD 0
int route_shard(const struct route_rules *rules, int nshards, const char *task, size_t len,
                char *scratch, unsigned *slot, enum taskkey_result *result);

#endif
