/*
 * refusal: what an error reply of Redis to one of our commands asks of the
 * operator (a wrong password, a missing ACL rule, a bad database number),
 * for the first line of a log episode. Pure: text in, text out.
 */
#ifndef SLOTD_REFUSAL_H
#define SLOTD_REFUSAL_H

#include <stddef.h>

/*
 * Writes into buf (always terminated) what to do about text: Redis's error
 * reply (e.g. "WRONGPASS invalid username-password pair ..."), or a message
 * that quotes one ("Redis refused AUTH: WRONGPASS ..."). cmd is the command
 * refused ("AUTH", "SELECT", "CLIENT SETNAME"), or NULL when not known; user
 * is the ACL user (NULL or "" for "default"). A sentinel's refusal of the
 * password (the text names a "sentinel ") is about the redis.sentinel_* keys.
 * Returns 0 when there is nothing
 * to advise (buf is then ""), else the length written.
 */
size_t refusal_advice(char *buf, size_t cap, const char *text, const char *cmd, const char *user);

/* The length of Redis's error text without its closing "." and blanks, so
 * that it reads well before a "; ...". */
size_t refusal_len(const char *text);

#endif
