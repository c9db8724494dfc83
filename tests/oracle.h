/*
 * oracle: taskkey checked against jansson, the reference JSON parser, for
 * one input. Shared by the differential unit test and the fuzz target.
 */
#ifndef SLOTD_TEST_ORACLE_H
#define SLOTD_TEST_ORACLE_H

#include <stddef.h>

#include "taskkey.h"

/* The field the oracle looks up: inputs should name it often. */
#define ORACLE_FIELD "key"

enum oracle_verdict {
    ORACLE_DISAGREE = -1,       /* the reason is in why */
    ORACLE_SKIPPED  = 0,        /* a known jansson limit decides the input */
    ORACLE_AGREE    = 1,
};

/* Runs taskkey_find on t (field ORACLE_FIELD) and jansson on t and compares
 * them. *got (if not NULL) is taskkey's result. Works on exact-size copies,
 * so AddressSanitizer sees any read past the input or write past scratch. */
enum oracle_verdict oracle_check(const char *t, size_t n, enum taskkey_result *got,
                                 char *why, size_t whylen);

#endif
