/*
 * base64: RFC 4648 base64 (the standard alphabet, '=' padding, no line
 * breaks), for bytes that must travel inside JSON text exactly. Pure.
 */
#ifndef SLOTD_BASE64_H
#define SLOTD_BASE64_H

#include <stddef.h>

/* Characters base64_encode writes for n bytes, without the NUL. */
#define BASE64_LEN(n) (4 * (((n) + 2) / 3))

/* The encoding of in[0..n) as a malloc'd NUL-terminated string (the caller
 * frees it), or NULL on ENOMEM. */
char *base64_encode(const void *in, size_t n) __attribute__((warn_unused_result));

/* The bytes of the n characters at in, malloc'd with a NUL after them (not
 * counted in *outlen; the caller frees it); NULL on ENOMEM or when they are
 * not base64: a length not a multiple of 4, a character outside the
 * alphabet, or '=' anywhere but in the last two places. */
char *base64_decode(const char *in, size_t n, size_t *outlen) __attribute__((warn_unused_result));

#endif
