/*
 * keyslot: Redis Cluster's key-to-slot rule, {hash tag} included, byte for
 * byte as keyHashSlot in Redis, so that CLUSTER KEYSLOT is our oracle.
 */
#include "keyslot.h"

#include <string.h>

#include "crc16.h"

unsigned keyslot(const void *key, size_t len)
{
    const char *k = key;
    const char *open = len ? memchr(k, '{', len) : NULL;

    if (open != NULL) {
        size_t from = (size_t)(open - k) + 1;
        const char *close = memchr(k + from, '}', len - from);
        /* "{}" (an empty tag) means no tag: the whole key is hashed. */
        if (close != NULL && close > k + from)
            return crc16_xmodem(k + from, (size_t)(close - (k + from))) & (KEYSLOT_COUNT - 1);
    }
    return crc16_xmodem(k, len) & (KEYSLOT_COUNT - 1);
}
