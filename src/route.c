/*
 * route: the routing rules, in the order docs/protocol.md states them.
 */
#include "route.h"

#include <string.h>

#include "conf.h"
#include "keys.h"
#include "keyslot.h"

void route_rules_of(struct route_rules *rules, const struct conf *c)
{
    rules->key_field = c->routing.key_field;
    rules->key_field_len = strlen(c->routing.key_field);
    rules->on_missing_key = c->routing.on_missing_key;
    rules->max_task_bytes = (size_t)c->dispatch.max_task_bytes;
}

enum taskkey_result route_task(const struct route_rules *rules,
                               const char *task, size_t len, char *scratch,
                               unsigned *slot, size_t *err_offset)
{
    const char *key;
    size_t keylen;
    enum taskkey_result r;

    *err_offset = 0;
    if (len == 0)
        return TASKKEY_EMPTY;
    if (len > rules->max_task_bytes)
        return TASKKEY_TOO_LARGE;
    if (rules->key_field_len == 0) {
        *slot = keyslot(task, len);
        return TASKKEY_OK;
    }
    r = taskkey_find(task, len, rules->key_field, rules->key_field_len,
                     scratch, &key, &keylen, err_offset);
    switch (r) {
    case TASKKEY_OK:
        *slot = keyslot(key, keylen);
        return TASKKEY_OK;
    case TASKKEY_NOT_OBJECT:
    case TASKKEY_NO_KEY:
    case TASKKEY_DUPLICATE_KEY:
    case TASKKEY_BAD_KEY_TYPE:
        if (rules->on_missing_key == CONF_MISSING_PAYLOAD) {
            *slot = keyslot(task, len);
            return TASKKEY_OK;
        }
        return r;
    default:
        return r;
    }
}

int route_shard(const struct route_rules *rules, int nshards, const char *task, size_t len,
                char *scratch, unsigned *slot, enum taskkey_result *result)
{
    unsigned s = 0;
    size_t at;
    enum taskkey_result r = route_task(rules, task, len, scratch, &s, &at);
    if (result != NULL)
        *result = r;
    if (r != TASKKEY_OK)
        return ROUTE_UNROUTABLE_SHARD;
    if (slot != NULL)
        *slot = s;
    return nshards > 1 ? keys_shard_of(s, nshards) : 0;
}
