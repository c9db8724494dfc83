/*
 * bytes: arbitrary bytes (Redis keys and values, command-line arguments)
 * shown without loss and without harm: to programs as JSON, to people as
 * text. Pure.
 *
 * JSON. A field "<name>" is always a string. When the bytes are valid UTF-8
 * without NUL, it holds them exactly and stands alone. Otherwise it holds
 * them with each NUL, and each byte that is not part of a valid UTF-8
 * sequence, replaced by U+FFFD, and a sibling "<name>_base64" holds the
 * exact bytes (RFC 4648). So every string parses with a strict parser
 * (jansson without JSON_ALLOW_NUL), and the exact bytes are always there:
 *
 *   {"id":"w1"}                       the bytes "w1"
 *   {"id":"a\ufffdb","id_base64":"YQBi"}    the bytes 'a', NUL, 'b'
 *
 * Reading rule: "<name>_base64" when present, else "<name>". Dead letters
 * follow it too; they carry "task_base64" instead of "task", not beside it.
 *
 * Text. Printable UTF-8 as it is; a backslash doubled; and each byte of a
 * control character (U+0000-U+001F, U+007F-U+009F), of a character that
 * reorders or breaks lines (U+061C, U+200E, U+200F, U+2028-U+202E,
 * U+2066-U+2069) or of a sequence that is not valid UTF-8, as \xHH (two
 * lowercase hex digits): a terminal shows exactly one line, with no colour,
 * no cursor movement and no reordering, and the bytes can be read back.
 */
#ifndef SLOTD_BYTES_H
#define SLOTD_BYTES_H

#include <stddef.h>

struct json_t;

/* The longest field name bytes_json_set and bytes_json_get take. */
#define BYTES_NAME_MAX 64

/* Sets obj["<name>"] (and "<name>_base64" when needed; a stale one is
 * removed) to the len bytes at p. 0; -1 on ENOMEM, when obj is not an
 * object, or when name is longer than BYTES_NAME_MAX. */
int bytes_json_set(struct json_t *obj, const char *name, const void *p, size_t len)
    __attribute__((warn_unused_result));

/* The exact bytes of field name by the reading rule, malloc'd with a NUL
 * after them (not counted in *len; the caller frees it). NULL when there is
 * no such string field, when "<name>_base64" is there but is not a base64
 * string, or on ENOMEM. */
char *bytes_json_get(const struct json_t *obj, const char *name, size_t *len)
    __attribute__((warn_unused_result));

/* The text form of the len bytes at p, malloc'd and NUL-terminated (the
 * caller frees it), or NULL on ENOMEM. With max > 0, only the characters
 * and escapes that fit whole in max bytes, followed by "…" if any were
 * left out. */
char *bytes_text(const void *p, size_t len, size_t max) __attribute__((warn_unused_result));

#endif
