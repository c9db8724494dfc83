/*
 * fuzz_taskkey: libFuzzer target. taskkey and jansson must agree on every
 * input (tests/oracle.c); a disagreement aborts with the reason.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "oracle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256];
    if (oracle_check((const char *)data, size, why, sizeof why) < 0) {
        fprintf(stderr, "taskkey and jansson disagree: %s\n", why);
        abort();
    }
    return 0;
}
