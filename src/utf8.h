/*
 * utf8: what counts as valid UTF-8 (RFC 3629: shortest forms only, no UTF-16
 * surrogates, nothing above U+10FFFF). One definition for the task scanner
 * and for showing arbitrary bytes as JSON or text (bytes.c). Pure.
 */
#ifndef SLOTD_UTF8_H
#define SLOTD_UTF8_H

#include <stddef.h>

/* Length of the valid multi-byte UTF-8 sequence at p (2-4 bytes, none past
 * end), or 0: for an ASCII byte too, which the callers take on their own. */
size_t utf8_seq(const unsigned char *p, const unsigned char *end);

#endif
