"""Checksums that several BMS protocols share, so each family does not carry its own copy.

CRC-16/MODBUS (init 0xFFFF, reflected polynomial 0xA001, no final xor; sent low byte first) is
used by JK PB, Daly BLE D2, JBD UP16S and Seplos v3. Table-driven: a poll computes it over a few
hundred bytes several times, and the table makes that about eight times cheaper than bit by bit.
"""

from __future__ import annotations


def _modbus_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_MODBUS_TABLE = _modbus_table()


def crc16_modbus(data: bytes | bytearray | memoryview) -> int:
    crc = 0xFFFF
    table = _MODBUS_TABLE
    for b in data:
        crc = (crc >> 8) ^ table[(crc ^ b) & 0xFF]
    return crc


def with_modbus_crc(body: bytes) -> bytes:
    """``body`` followed by its CRC-16/MODBUS, low byte first."""
    return body + crc16_modbus(body).to_bytes(2, "little")
