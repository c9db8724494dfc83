/*
 * fuzz_taskkey: libFuzzer target. taskkey and jansson must agree on every
 * input (tests/oracle.c says where jansson is excused); a disagreement
 * aborts with the reason. make fuzz runs it; make fuzz-smoke briefly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "oracle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[512];
    if (oracle_check((const char *)data, size, NULL, why, sizeof why) == ORACLE_DISAGREE) {
        fprintf(stderr, "taskkey and jansson disagree: %s\n", why);
        abort();
    }
    return 0;
}
