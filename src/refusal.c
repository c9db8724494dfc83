/*
 * refusal: advice for an error reply of Redis (see refusal.h). The code is
 * the reply's first word; Redis puts a human sentence after it.
 */
#include "refusal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Does text hold code as a word: at its start or after a blank or ':',
 * followed by a blank or its end? */
static int has_code(const char *text, const char *code)
{
    size_t n = strlen(code);
    for (const char *at = strstr(text, code); at != NULL; at = strstr(at + 1, code)) {
        int starts = at == text || at[-1] == ' ' || at[-1] == ':';
        int ends = at[n] == '\0' || at[n] == ' ';
        if (starts && ends)
            return 1;
    }
    return 0;
}

/* "CLIENT SETNAME" -> "client|setname": the ACL rule's spelling. */
static void acl_name(char *buf, size_t cap, const char *cmd)
{
    size_t i = 0;
    for (; cmd[i] != '\0' && i + 1 < cap; i++)
        buf[i] = cmd[i] == ' ' ? '|' : (char)tolower((unsigned char)cmd[i]);
    buf[i] = '\0';
}

size_t refusal_advice(char *buf, size_t cap, const char *text, const char *cmd, const char *user)
{
    char rule[64];
    int n = 0;

    if (cap == 0)
        return 0;
    buf[0] = '\0';
    if (user == NULL || *user == '\0')
        user = "default";
    /* A sentinel's refusal, as dial.c words it ("sentinel 10.0.0.1:26379
     * refused AUTH: WRONGPASS ..."): the sentinels' own credentials. */
    if (strstr(text, "sentinel ") != NULL && has_code(text, "WRONGPASS")) {
        n = snprintf(buf, cap, "check redis.sentinel_username and redis.sentinel_password_file");
    } else if (strstr(text, "sentinel ") != NULL && has_code(text, "NOAUTH")) {
        n = snprintf(buf, cap, "the sentinels require a password: set"
                     " redis.sentinel_password_file (and redis.sentinel_username for an ACL user)");
    } else if (has_code(text, "NOPERM")) {
        if (cmd != NULL) {
            acl_name(rule, sizeof rule, cmd);
            n = snprintf(buf, cap, "user %s needs +%s (ACL SETUSER %s +%s; docs/operations.md "
                         "lists every command needed)", user, rule, user, rule);
        } else {
            n = snprintf(buf, cap, "user %s lacks a command it needs: docs/operations.md "
                         "(Redis ACL) lists them all", user);
        }
    } else if (has_code(text, "WRONGPASS") || (cmd != NULL && strcmp(cmd, "AUTH") == 0)) {
        n = snprintf(buf, cap, "check redis.username and redis.password_file");
    } else if (has_code(text, "NOAUTH")) {
        n = snprintf(buf, cap, "Redis requires a password: set redis.password_file "
                     "(and redis.username for an ACL user)");
    } else if (cmd != NULL && strcmp(cmd, "SELECT") == 0) {
        n = snprintf(buf, cap, "check redis.db");
    }
    if (n < 0) {
        buf[0] = '\0';
        return 0;
    }
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

size_t refusal_len(const char *text)
{
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '.' || isspace((unsigned char)text[n - 1])))
        n--;
    return n;
}
