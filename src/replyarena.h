/*
 * replyarena: hiredis reply objects carved from one arena per connection,
 * so that reading a batch (an LRANGE of a thousand tasks) costs no malloc
 * per task. The objects are ordinary redisReply trees; only where their
 * memory comes from changes.
 *
 * Why it is safe: hiredis builds one top-level reply at a time on a reader,
 * hands it to its callback and then frees it through the reader's
 * freeObject; that free rewinds the arena. So a reply, as hiredis documents,
 * lives only during its callback; keeping one longer would be a bug anyway,
 * and under AddressSanitizer the arena frees its memory at each rewind
 * instead of reusing it, so that such a bug is caught.
 */
#ifndef SLOTD_REPLYARENA_H
#define SLOTD_REPLYARENA_H

#include <stddef.h>
#include <stdint.h>

struct redisReader;
struct replyarena_chunk;

/* Keeps at most this much between replies; a larger reply's memory is
 * given back when it is freed. */
#define REPLYARENA_KEEP_MAX (1u << 20)
/* The smallest chunk asked of malloc. */
#define REPLYARENA_CHUNK_MIN (64u << 10)

struct replyarena {
    struct replyarena_chunk *head;    /* owned: chunks, the one carved from first */
    uint64_t                 mallocs; /* chunks ever allocated, for tests and metrics */
};

/* An empty arena; allocates nothing until the first reply. */
void replyarena_init(struct replyarena *a);

/* Makes reader build its replies in a. Call once per new reader (each
 * redisAsyncContext has its own); a must outlive the reader. */
void replyarena_attach(struct replyarena *a, struct redisReader *reader);

/* 1 if a rewind keeps memory for the next reply; 0 under AddressSanitizer,
 * where it is freed so that a reply used after its callback is reported. */
int replyarena_reuses_memory(void);

/* Frees the chunks. The readers attached to it must be gone. NULL is fine. */
void replyarena_free(struct replyarena *a);

#endif
