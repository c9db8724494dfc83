/*
 * resp: a command in the Redis protocol (RESP), appended to a growable
 * buffer that is reused from command to command, so that a batch of a
 * thousand tasks is encoded without a malloc or a printf per task.
 */
#ifndef SLOTD_RESP_H
#define SLOTD_RESP_H

#include <stddef.h>

struct resp_buf {
    char   *p;          /* owned: the bytes; NULL until the first append */
    size_t  len;        /* bytes in use */
    size_t  cap;        /* bytes allocated */
};

/*
 * Appends "*argc\r\n" and "$len\r\narg\r\n" for each argument (argvlen NULL:
 * each argv[i] is a C string), followed by a NUL that len does not count.
 * 0, or -1 on ENOMEM with b as it was.
 */
int resp_append_command(struct resp_buf *b, int argc, const char *const *argv,
                        const size_t *argvlen)
    __attribute__((warn_unused_result));

/* Frees the bytes; b is empty and usable again. */
void resp_buf_free(struct resp_buf *b);

#endif
