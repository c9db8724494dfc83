"""Key to slot, exactly as slotd and Redis Cluster compute it.

slot = CRC16-XMODEM(key) mod 16384, hashing only what is between the first
``{`` and the first ``}`` after it when that is at least one byte. CRC16-XMODEM
is ``binascii.crc_hqx`` with an initial value of 0 (check value 0x31C3 for
``b"123456789"``), so this costs no Python loop.
"""
from __future__ import annotations

import binascii

SLOTS = 16384


def crc16(data: bytes) -> int:
    """CRC16-XMODEM (polynomial 0x1021, initial value 0) of data."""
    return binascii.crc_hqx(data, 0)


def keyslot(key: bytes | str) -> int:
    """The slot (0..16383) of a routing key, ``{hash tags}`` included."""
    if isinstance(key, str):
        key = key.encode("utf-8", "surrogatepass")
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    return binascii.crc_hqx(key, 0) & (SLOTS - 1)


def shard_of_slot(slot: int, shards: int) -> int:
    """The shard (0..shards-1) of a slot in a namespace split into shards:
    slot * shards // 16384, as slotd's keys_shard_of."""
    return (slot & (SLOTS - 1)) * shards // SLOTS
