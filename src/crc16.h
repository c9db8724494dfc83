/*
 * crc16: CRC16-CCITT in its XMODEM variant (poly 0x1021, init 0, no
 * reflection, no final xor), the checksum Redis Cluster hashes keys with.
 * Check value: crc16_xmodem("123456789", 9) == 0x31C3.
 */
#ifndef SLOTD_CRC16_H
#define SLOTD_CRC16_H

#include <stddef.h>
#include <stdint.h>

uint16_t crc16_xmodem(const void *buf, size_t len);

#endif
