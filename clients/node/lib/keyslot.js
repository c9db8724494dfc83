"use strict";
/*
 * Key to slot, exactly as slotd and Redis Cluster compute it: CRC16-XMODEM
 * (polynomial 0x1021, initial value 0; check value 0x31C3 for "123456789")
 * mod 16384, hashing only what is between the first "{" and the first "}"
 * after it when that is at least one byte.
 */

const SLOTS = 16384;

const TABLE = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let c = i << 8;
  for (let b = 0; b < 8; b++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
  TABLE[i] = c;
}

/** CRC16-XMODEM of bytes[start, end). */
function crc16(bytes, start = 0, end = bytes.length) {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ bytes[i]) & 0xff];
  return crc;
}

/** The slot (0..16383) of a key (a Buffer, or a string taken as UTF-8). */
function keyslot(key) {
  const b = typeof key === "string" ? Buffer.from(key, "utf8") : key;
  const open = b.indexOf(0x7b);
  if (open >= 0) {
    const close = b.indexOf(0x7d, open + 1);
    if (close > open + 1) return crc16(b, open + 1, close) & (SLOTS - 1);
  }
  return crc16(b) & (SLOTS - 1);
}

/** The shard (0..shards-1) of a slot in a namespace split into shards: slot * shards / 16384, as slotd's keys_shard_of. */
function shardOfSlot(slot, shards) {
  return Math.floor(((slot & (SLOTS - 1)) * shards) / SLOTS);
}

module.exports = { SLOTS, crc16, keyslot, shardOfSlot };
