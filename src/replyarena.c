/*
 * replyarena: hiredis reply objects from a bump arena that the free of the
 * top-level reply rewinds. See replyarena.h for why that is safe.
 *
 *   chunk (head) [reply|str|reply|str|element[]|....free....]
 *   chunk        [....... an older chunk, full .......]
 *
 * A rewind keeps one chunk: the head alone when it was enough, otherwise one
 * new chunk as large as all of them were (at most REPLYARENA_KEEP_MAX), so
 * that the next reply of the same size is carved without a malloc.
 */
#include "replyarena.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#if defined(__SANITIZE_ADDRESS__)
#define REPLYARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REPLYARENA_ASAN 1
#endif
#endif
#ifdef REPLYARENA_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct replyarena_chunk {
    struct replyarena_chunk *next;    /* owned: the next older chunk */
    size_t                   size;    /* bytes in data */
    size_t                   used;    /* bytes carved from data */
    max_align_t              data[];
};

/* Every reply carries its arena, for freeObject, which gets nothing else. */
struct object {
    struct replyarena *arena;         /* (ref) */
    redisReply         reply;
};

#define ALIGN (alignof(max_align_t))

void replyarena_init(struct replyarena *a)
{
    a->head = NULL;
    a->mallocs = 0;
}

static struct replyarena_chunk *chunk_new(struct replyarena *a, size_t size)
{
    if (size > SIZE_MAX - offsetof(struct replyarena_chunk, data))
        return NULL;
    struct replyarena_chunk *c = malloc(offsetof(struct replyarena_chunk, data) + size);
    if (c == NULL)
        return NULL;
    c->next = NULL;
    c->size = size;
    c->used = 0;
    POISON(c->data, size);
    a->mallocs++;
    return c;
}

static void chunk_free(struct replyarena_chunk *c)
{
    UNPOISON(c->data, c->size);
    free(c);
}

static void *carve(struct replyarena *a, size_t n)
{
    struct replyarena_chunk *c = a->head;
    if (n > SIZE_MAX - ALIGN)
        return NULL;
    n = (n + ALIGN - 1) & ~(ALIGN - 1);
    if (c == NULL || c->size - c->used < n) {
        size_t size = n > REPLYARENA_CHUNK_MIN ? n : REPLYARENA_CHUNK_MIN;
        struct replyarena_chunk *fresh = chunk_new(a, size);
        if (fresh == NULL)
            return NULL;
        fresh->next = c;
        a->head = c = fresh;
    }
    void *p = (unsigned char *)c->data + c->used;
    c->used += n;
    UNPOISON(p, n);
    return p;
}

static void rewind_arena(struct replyarena *a)
{
    struct replyarena_chunk *c = a->head;
    if (c == NULL)
        return;
#ifdef REPLYARENA_ASAN
    /* Under AddressSanitizer nothing is reused: freed chunks go to its
     * quarantine, so a reply kept past its callback is reported even after
     * the next reply is built. */
    replyarena_free(a);
    return;
#endif
    if (c->next == NULL && c->size <= REPLYARENA_KEEP_MAX) {
        POISON(c->data, c->used);
        c->used = 0;
        return;
    }
    size_t total = 0;
    while (c != NULL) {
        struct replyarena_chunk *next = c->next;
        total += c->size;
        chunk_free(c);
        c = next;
    }
    /* If this malloc fails the next carve tries again. */
    a->head = chunk_new(a, total < REPLYARENA_KEEP_MAX ? total : REPLYARENA_KEEP_MAX);
}

void replyarena_free(struct replyarena *a)
{
    if (a == NULL)
        return;
    while (a->head != NULL) {
        struct replyarena_chunk *next = a->head->next;
        chunk_free(a->head);
        a->head = next;
    }
}

/* ---- redisReplyObjectFunctions ---------------------------------------- */

/* A zeroed reply of the task's type, linked into its parent. */
static redisReply *reply_new(const redisReadTask *task)
{
    struct replyarena *a = task->privdata;
    struct object *o = carve(a, sizeof *o);
    if (o == NULL)
        return NULL;
    memset(o, 0, sizeof *o);
    o->arena = a;
    o->reply.type = task->type;
    if (task->parent != NULL) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = &o->reply;
    }
    return &o->reply;
}

static char *copy(struct replyarena *a, const char *str, size_t len)
{
    char *s = len < SIZE_MAX ? carve(a, len + 1) : NULL;
    if (s == NULL)
        return NULL;
    memcpy(s, str, len);
    s[len] = '\0';
    return s;
}

static void *create_string(const redisReadTask *task, char *str, size_t len)
{
    redisReply *r = reply_new(task);
    if (r == NULL)
        return NULL;
#if HIREDIS_MAJOR >= 1
    /* A RESP3 verbatim string: "txt:" and then the text. */
    if (task->type == REDIS_REPLY_VERB && len >= 4) {
        memcpy(r->vtype, str, 3);
        r->vtype[3] = '\0';
        str += 4;
        len -= 4;
    }
#endif
    if ((r->str = copy(task->privdata, str, len)) == NULL)
        return NULL;
    r->len = len;
    return r;
}

#if HIREDIS_MAJOR >= 1
static void *create_array(const redisReadTask *task, size_t elements)
#else
static void *create_array(const redisReadTask *task, int elements)
#endif
{
    redisReply *r = reply_new(task);
    if (r == NULL)
        return NULL;
    if (elements > 0) {
        size_t n = (size_t)elements;
        if (n > SIZE_MAX / sizeof *r->element)
            return NULL;
        r->element = carve(task->privdata, n * sizeof *r->element);
        if (r->element == NULL)
            return NULL;
        memset(r->element, 0, n * sizeof *r->element);
    }
    r->elements = (size_t)elements;
    return r;
}

static void *create_integer(const redisReadTask *task, long long value)
{
    redisReply *r = reply_new(task);
    if (r != NULL)
        r->integer = value;
    return r;
}

/* "$-1" and "*-1": the task says string or array, the reply says nil. */
static void *create_nil(const redisReadTask *task)
{
    redisReply *r = reply_new(task);
    if (r != NULL)
        r->type = REDIS_REPLY_NIL;
    return r;
}

#if HIREDIS_MAJOR >= 1
static void *create_double(const redisReadTask *task, double value, char *str, size_t len)
{
    redisReply *r = reply_new(task);
    if (r == NULL)
        return NULL;
    r->dval = value;
    if ((r->str = copy(task->privdata, str, len)) == NULL)
        return NULL;
    r->len = len;
    return r;
}

static void *create_bool(const redisReadTask *task, int value)
{
    redisReply *r = reply_new(task);
    if (r != NULL)
        r->integer = value != 0;
    return r;
}
#endif

/* hiredis calls it on the top-level reply only: the whole tree goes. */
static void free_object(void *reply)
{
    if (reply == NULL)
        return;
    struct object *o = (struct object *)(void *)((char *)reply - offsetof(struct object, reply));
    rewind_arena(o->arena);
}

static redisReplyObjectFunctions functions = {
    .createString = create_string,
    .createArray = create_array,
    .createInteger = create_integer,
#if HIREDIS_MAJOR >= 1
    .createDouble = create_double,
    .createBool = create_bool,
#endif
    .createNil = create_nil,
    .freeObject = free_object,
};

int replyarena_reuses_memory(void)
{
#ifdef REPLYARENA_ASAN
    return 0;
#else
    return 1;
#endif
}

void replyarena_attach(struct replyarena *a, struct redisReader *reader)
{
    reader->fn = &functions;
    reader->privdata = a;
}
