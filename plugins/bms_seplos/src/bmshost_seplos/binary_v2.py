"""Seplos v2 over BLE: the binary form of the v2 messages (protocols-main.md §4.2).

``7E | VER | ADR | CID1 | CID2 | LEN u16 BE | INFO | CRC-16/XMODEM u16 BE | 0D``; the CRC covers
VER..INFO. Requests use VER 0x10; replies VER 0x14 and carry the command in the CID1 position and
the return code in the CID2 position.
"""

from __future__ import annotations

from collections.abc import Sequence

from bmshost.errors import FrameError
from bmshost.model import Sample
from bmshost_seplos import v2_fields

SOI = 0x7E
EOI = 0x0D
REQUEST_VERSION = 0x10
CID1 = 0x46
MANUFACTURER = 0x51
TELEMETRY = 0x61  # "single machine data": the v2 telemetry layout
PARALLEL = 0x62  # "GPD" data: switch state and alarm events
HEADER = 7
OVERHEAD = HEADER + 3  # header + CRC + EOI
MAX_INFO = 0x400
SWITCH_OFFSET = 38  # INFO offset of the switch byte in 0x62 replies (frame byte 45)


def crc16_xmodem(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = (crc << 1 ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def build_frame(version: int, address: int, cid1: int, cid2: int, info: bytes = b"") -> bytes:
    body = bytes((version, address, cid1, cid2)) + len(info).to_bytes(2, "big") + info
    return bytes((SOI,)) + body + crc16_xmodem(body).to_bytes(2, "big") + bytes((EOI,))


def build_request(command: int, address: int = 0) -> bytes:
    info = bytes((address,)) if command == TELEMETRY else b""
    return build_frame(REQUEST_VERSION, address, CID1, command, info)


def framer(buf: bytes) -> tuple[bytes | None, int]:
    i = 0
    n = len(buf)
    while i < n:
        if buf[i] != SOI:
            i += 1
            continue
        if n - i < HEADER:
            return None, i
        size = int.from_bytes(buf[i + 5 : i + 7], "big")
        if size > MAX_INFO:
            i += 1
            continue
        total = size + OVERHEAD
        if n - i < total:
            return None, i
        if buf[i + total - 1] != EOI:
            i += 1  # a 7E inside data, not a frame start
            continue
        return bytes(buf[i : i + total]), i + total
    return None, n


def parse_frame(frame: bytes) -> tuple[int, int, int, int, bytes]:
    """Validate; return (version, address, command/CID1, return code/CID2, INFO)."""
    if len(frame) < OVERHEAD or frame[0] != SOI or frame[-1] != EOI:
        raise FrameError("Seplos BLE frame must be 7E ... 0D and at least 10 bytes")
    size = int.from_bytes(frame[5:7], "big")
    if size != len(frame) - OVERHEAD:
        raise FrameError(f"Seplos BLE frame: LEN {size} but {len(frame) - OVERHEAD} INFO bytes")
    body = frame[1:-3]
    if crc16_xmodem(body) != int.from_bytes(frame[-3:-1], "big"):
        raise FrameError("Seplos BLE frame: CRC mismatch")
    return frame[1], frame[2], frame[3], frame[4], bytes(frame[HEADER:-3])


def decode_parallel(info: bytes) -> Sample:
    """0x62: the switch byte (b0 discharge, b1 charge, b3 heater) and the raw alarm events."""
    if len(info) <= SWITCH_OFFSET + 1:
        raise FrameError(f"Seplos 0x62: INFO of {len(info)} bytes has no switch state")
    switches = info[SWITCH_OFFSET]
    count = info[SWITCH_OFFSET + 1]
    events = info[SWITCH_OFFSET + 2 : SWITCH_OFFSET + 2 + count]
    return Sample(
        discharge_fet=bool(switches & 0x01),
        charge_fet=bool(switches & 0x02),
        heating=bool(switches & 0x08),
        extra={"switch_state": switches, "alarm_events": events.hex()},
    )


def decode_reply(frame: bytes) -> Sample:
    _, _, command, rtn, info = parse_frame(frame)
    if rtn != 0:
        raise FrameError(f"Seplos BLE error reply {rtn:02X} to command {command:02X}")
    if command == TELEMETRY:
        return v2_fields.decode_telemetry(info)
    if command == PARALLEL:
        return decode_parallel(info)
    if command == MANUFACTURER:
        return v2_fields.decode_manufacturer(info)
    raise FrameError(f"Seplos BLE: unknown command {command:02X}")


def recognise(frame: bytes) -> bool:
    try:
        parse_frame(frame)
    except FrameError:
        return False
    return True


def decode(frames: Sequence[bytes]) -> Sample:
    """Decoder for ``bmshost decode``: BLE binary replies of one read → one sample."""
    sample = Sample()
    for frame in frames:
        if not isinstance(frame, bytes | bytearray):
            raise FrameError("Seplos BLE decoder takes byte frames")
        sample = sample.merge(decode_reply(bytes(frame)))
    return sample
