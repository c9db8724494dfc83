/*
 * keyslot: a routing key's slot, exactly as Redis Cluster computes it
 * (CLUSTER KEYSLOT): CRC16-XMODEM of the key, or of its hash tag, mod 16384.
 */
#ifndef SLOTD_KEYSLOT_H
#define SLOTD_KEYSLOT_H

#include <stddef.h>

#define KEYSLOT_COUNT 16384u

/*
 * The hash tag rule: if the key has a '{' and, after it, a '}' with at least
 * one byte between them, only the bytes between the first '{' and the first
 * '}' after it are hashed; otherwise the whole key is. Any bytes, NUL included.
 */
unsigned keyslot(const void *key, size_t len);

#endif
