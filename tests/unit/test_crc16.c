/* Unit tests for crc16: known answers of CRC16-XMODEM. */
#include <check.h>
#include <string.h>

#include "check_main.h"
#include "crc16.h"

START_TEST(check_value)
{
    /* The catalogue check value of CRC-16/XMODEM. */
    ck_assert_uint_eq(crc16_xmodem("123456789", 9), 0x31C3);
}
END_TEST

START_TEST(known_answers)
{
    ck_assert_uint_eq(crc16_xmodem("", 0), 0x0000);
    ck_assert_uint_eq(crc16_xmodem("A", 1), 0x58E5);
    ck_assert_uint_eq(crc16_xmodem("\0", 1), 0x0000);
    ck_assert_uint_eq(crc16_xmodem("\xff", 1), 0x1EF0);
    /* Redis Cluster slots: CLUSTER KEYSLOT foo = 12182 = crc & 16383. */
    ck_assert_uint_eq(crc16_xmodem("foo", 3) & 16383, 12182);
    ck_assert_uint_eq(crc16_xmodem("bar", 3) & 16383, 5061);
}
END_TEST

/* The bitwise definition, as a second opinion on the table. */
static uint16_t bitwise(const unsigned char *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

START_TEST(table_matches_bitwise_definition)
{
    unsigned char buf[512];
    uint32_t x = 2463534242u;
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(round % 512);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13; x ^= x >> 17; x ^= x << 5;
            buf[i] = (unsigned char)x;
        }
        ck_assert_uint_eq(crc16_xmodem(buf, n), bitwise(buf, n));
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("crc16");
    TCase *tc = tcase_create("crc16");
    tcase_add_test(tc, check_value);
    tcase_add_test(tc, known_answers);
    tcase_add_test(tc, table_matches_bitwise_definition);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
