/*
 * oracle: taskkey checked against jansson, the reference JSON parser, for
 * one input. Shared by the differential unit test and the fuzz target.
 */
#ifndef SLOTD_TEST_ORACLE_H
#define SLOTD_TEST_ORACLE_H

#include <stddef.h>

/* 1 when taskkey and jansson agree on t (both reject it, or both accept it
 * and find the same key), 0 when the input is skipped as a known jansson
 * limit, -1 when they disagree (the reason in why). */
int oracle_check(const char *t, size_t n, char *why, size_t whylen);

#endif
