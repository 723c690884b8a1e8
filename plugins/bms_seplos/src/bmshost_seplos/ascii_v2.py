"""Seplos v2 ASCII framing (RS485/RS232, Pylontech style), protocols-main.md §4.1.

``~ VER ADR CID1 CID2 LENGTH INFO CHKSUM \\r``: every field between ``~`` and ``\\r`` is
uppercase hex ASCII. LENGTH = LCHKSUM nibble + 12-bit LENID (INFO length in characters).
"""

from __future__ import annotations

from collections.abc import Sequence

from bmshost.errors import FrameError
from bmshost.model import Sample
from bmshost_seplos import v2_fields

SOI = 0x7E  # "~"
EOI = 0x0D  # "\r"
VERSION = 0x20
CID1 = 0x46
TELEMETRY = 0x42
ALARMS = 0x44
MANUFACTURER = 0x51
MAX_FRAME = 18 + 0xFFF
RETURN_CODES = {
    0x01: "VER error",
    0x02: "CHKSUM error",
    0x03: "LCHKSUM error",
    0x04: "CID2 invalid",
    0x05: "format error",
    0x06: "invalid data",
    0x07: "no history data",
    0xE1: "CID1 invalid",
    0xE2: "execution failure",
    0xE3: "device fault",
    0xE4: "no permission",
}


def length_field(lenid: int) -> int:
    check = (-((lenid >> 8 & 0xF) + (lenid >> 4 & 0xF) + (lenid & 0xF))) & 0xF
    return check << 12 | lenid


def checksum(body: bytes) -> int:
    return ((~sum(body)) + 1) & 0xFFFF


def build_frame(
    address: int, cid2: int, info: bytes = b"", version: int = VERSION, cid1: int = CID1
) -> bytes:
    info_hex = info.hex().upper().encode()
    body = f"{version:02X}{address:02X}{cid1:02X}{cid2:02X}{length_field(len(info_hex)):04X}"
    payload = body.encode() + info_hex
    return b"~" + payload + f"{checksum(payload):04X}".encode() + b"\r"


def build_request(address: int, cid2: int, group: int | None = None) -> bytes:
    """0x42/0x44 carry the COMMAND_GROUP (the pack address by default); 0x51 carries none."""
    if cid2 in (TELEMETRY, ALARMS):
        return build_frame(address, cid2, bytes((address if group is None else group,)))
    return build_frame(address, cid2)


def framer(buf: bytes) -> tuple[bytes | None, int]:
    start = buf.find(b"~")
    if start < 0:
        return None, len(buf)
    end = buf.find(b"\r", start)
    if end < 0:
        if len(buf) - start > MAX_FRAME:
            return None, start + 1  # no terminator in reach: drop the "~" and resynchronise
        return None, start
    return bytes(buf[start : end + 1]), end + 1


def _hex(text: bytes, what: str) -> bytes:
    try:
        return bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise FrameError(f"Seplos frame: {what} is not hex ASCII") from None


def parse_frame(frame: bytes) -> tuple[int, int, int, int, bytes]:
    """Validate a frame; return (version, address, CID1, CID2/RTN, INFO bytes)."""
    if len(frame) < 18 or frame[0] != SOI or frame[-1] != EOI:
        raise FrameError("Seplos frame must be ~...\\r and at least 18 characters")
    payload = frame[1:-5]
    given = _hex(frame[-5:-1], "CHKSUM")
    if int.from_bytes(given, "big") != checksum(payload):
        raise FrameError(f"Seplos frame checksum {given.hex().upper()} != {checksum(payload):04X}")
    head = _hex(payload[:12], "header")
    length = int.from_bytes(head[4:6], "big")
    lenid = length & 0xFFF
    if length_field(lenid) != length:
        raise FrameError(f"Seplos frame: LCHKSUM of LENGTH {length:04X} is wrong")
    if lenid != len(payload) - 12 or lenid % 2:
        raise FrameError(f"Seplos frame: LENID {lenid} but INFO has {len(payload) - 12} characters")
    return head[0], head[1], head[2], head[3], _hex(payload[12:], "INFO")


def parse_reply(frame: bytes) -> tuple[int, bytes]:
    """(address, INFO) of a reply with return code 00; other codes raise FrameError."""
    _, address, cid1, rtn, info = parse_frame(frame)
    if rtn != 0:
        raise FrameError(f"Seplos error reply {rtn:02X}: {RETURN_CODES.get(rtn, 'unknown code')}")
    if cid1 != CID1:
        raise FrameError(f"Seplos reply CID1 {cid1:02X}, expected 46")
    return address, info


def recognise(frame: bytes) -> bool:
    try:
        parse_frame(frame)
    except FrameError:
        return False
    return True


def decode_info(info: bytes) -> Sample:
    """Tell manufacturer, alarms and telemetry INFO apart by shape (for ``bmshost decode``)."""
    if len(info) >= 32 and info[0] >= 0x20 and info[:10].rstrip(b"\x00").isascii():
        return v2_fields.decode_manufacturer(info)
    if v2_fields.alarms_length(info) == len(info):
        return v2_fields.decode_alarms(info)
    return v2_fields.decode_telemetry(info)


def decode(frames: Sequence[bytes]) -> Sample:
    """Decoder for ``bmshost decode``: v2 ASCII replies of one read → one sample."""
    sample = Sample()
    for frame in frames:
        if not isinstance(frame, bytes | bytearray):
            raise FrameError("Seplos v2 decoder takes byte frames")
        address, info = parse_reply(bytes(frame))
        sample = sample.merge(decode_info(info))
        sample.address = address
    return sample
