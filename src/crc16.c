/*
 * crc16: CRC16-XMODEM, byte at a time through a 256-entry table that the
 * preprocessor computes from the polynomial (no table typed in by hand).
 */
#include "crc16.h"

/* T[i] = the CRC of the single byte i: shift i<<8 left 8 times, xoring the
 * polynomial 0x1021 whenever the top bit falls out. */
#define P 0x1021u
#define S1(x) (((x) & 0x8000u) ? (((x) << 1) ^ P) & 0xFFFFu : ((x) << 1) & 0xFFFFu)
#define S8(x) S1(S1(S1(S1(S1(S1(S1(S1(x))))))))
#define E(i) (uint16_t)S8((unsigned)(i) << 8)
#define R4(i) E(i), E(i + 1), E(i + 2), E(i + 3)
#define R16(i) R4(i), R4(i + 4), R4(i + 8), R4(i + 12)
#define R64(i) R16(i), R16(i + 16), R16(i + 32), R16(i + 48)

static const uint16_t table[256] = { R64(0), R64(64), R64(128), R64(192) };

uint16_t crc16_xmodem(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++)
        crc = (uint16_t)(crc << 8) ^ table[((crc >> 8) ^ p[i]) & 0xFFu];
    return crc;
}
