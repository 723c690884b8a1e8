"""``bmshost.checksums``: the spec's CRC-16/MODBUS examples, and the table against the bitwise form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bmshost.checksums import crc16_modbus, with_modbus_crc


def bitwise(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


@pytest.mark.parametrize(
    ("hex_body", "crc"),
    [  # protocols-main.md, the checksum table
        ("03 10 16 20 00 01 02 00 00", 0x91CF),
        ("01 78 10 00 10 A0 00 00", 0xB27F),
        ("D2 03 00 00 00 3E", 0xB9D7),
        ("00 04 20 00 00 1A", 0xD07B),
    ],
)
def test_spec_examples(hex_body: str, crc: int) -> None:
    body = bytes.fromhex(hex_body)
    assert crc16_modbus(body) == crc
    assert with_modbus_crc(body)[-2:] == crc.to_bytes(2, "little")


@given(st.binary(max_size=300))
def test_table_equals_bitwise(data: bytes) -> None:
    assert crc16_modbus(data) == bitwise(data)
    assert crc16_modbus(with_modbus_crc(data)) == 0  # a frame with its CRC checks to zero
