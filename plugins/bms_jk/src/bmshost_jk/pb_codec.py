"""JK PB / inverter BMS on RS485: the Modbus "trigger" scheme, sans-I/O.

The host writes one register with Modbus FC 0x10; the addressed BMS answers with a JK02 record
(which carries no address) followed by the ordinary FC 0x10 acknowledge, whose address byte
tells who answered. USB adapters echo the request and keep stale bytes, so the framer skips
anything before the record header.
"""

from __future__ import annotations

from typing import Any

from bmshost.checksums import crc16_modbus
from bmshost.errors import FrameError
from bmshost.model import Sample
from bmshost_jk import jk02

FC_WRITE_MULTIPLE = 0x10
TRIGGER_STATUS = 0x1620  # -> cell-info record (type 2)
TRIGGER_SETTINGS = 0x161E  # -> settings record (type 1)
TRIGGER_ABOUT = 0x161C  # -> device-info record (type 3)
TRIGGER_RECORD = {TRIGGER_STATUS: jk02.TYPE_CELLS, TRIGGER_SETTINGS: jk02.TYPE_SETTINGS,
                  TRIGGER_ABOUT: jk02.TYPE_DEVICE}
ADDRESSES = range(1, 16)  # DIP switches; 0 turns the BMS into the bus master - never used
ACK_LEN = 8
MAX_GAP = 4  # pad bytes tolerated between the record and its acknowledge


def with_crc(body: bytes) -> bytes:
    return body + crc16_modbus(body).to_bytes(2, "little")


def check_address(address: int) -> int:
    if address not in ADDRESSES:
        raise ValueError(
            f"JK PB address {address} out of range 1..15 (0 makes the BMS the bus master)"
        )
    return address


def build_trigger(address: int, register: int) -> bytes:
    """``ADDR 10 REG 00 01 02 00 00 CRC``: write one register with value 0."""
    check_address(address)
    body = (bytes((address, FC_WRITE_MULTIPLE)) + register.to_bytes(2, "big")
            + b"\x00\x01\x02\x00\x00")
    return with_crc(body)


def parse_trigger(frame: bytes) -> tuple[int, int]:
    """Validate a trigger request (simulators): returns (address, register)."""
    if len(frame) != 11 or frame[1] != FC_WRITE_MULTIPLE or frame[4:7] != b"\x00\x01\x02":
        raise FrameError("JK PB: not an FC 0x10 single-register write")
    if crc16_modbus(frame[:-2]) != int.from_bytes(frame[-2:], "little"):
        raise FrameError("JK PB: request CRC mismatch")
    return frame[0], int.from_bytes(frame[2:4], "big")


def build_ack(address: int, register: int) -> bytes:
    return with_crc(bytes((address, FC_WRITE_MULTIPLE)) + register.to_bytes(2, "big") + b"\x00\x01")


def parse_ack(ack: bytes) -> tuple[int, int]:
    """Validate the 8-byte FC 0x10 acknowledge: returns (address, register)."""
    if len(ack) != ACK_LEN or ack[1] != FC_WRITE_MULTIPLE or ack[4:6] != b"\x00\x01":
        raise FrameError("JK PB: not an FC 0x10 acknowledge")
    if crc16_modbus(ack[:-2]) != int.from_bytes(ack[-2:], "little"):
        raise FrameError("JK PB: acknowledge CRC mismatch")
    return ack[0], int.from_bytes(ack[2:4], "big")


def _is_ack(data: bytes) -> bool:
    try:
        parse_ack(data)
    except FrameError:
        return False
    return True


def framer(buf: bytes) -> tuple[bytes | None, int]:
    """One reply: the 300-byte record plus its acknowledge (record + ack, 308 bytes).

    A record that is not followed by a valid acknowledge within a few pad bytes is returned
    alone, so ``split_reply`` can say what is wrong instead of the read timing out.
    """
    return _frame(buf, final=False)


def _frame(buf: bytes, final: bool) -> tuple[bytes | None, int]:
    """``final``: no more bytes will come (decoding a capture), so a record whose acknowledge
    is missing is returned alone instead of waited for."""
    start = buf.find(jk02.RECORD_HEADER)
    if start < 0:
        return None, max(0, len(buf) - 3)
    end = start + jk02.RECORD_LEN
    if len(buf) < end:
        return None, start
    record = bytes(buf[start:end])
    for gap in range(MAX_GAP + 1):
        ack = buf[end + gap : end + gap + ACK_LEN]
        if len(ack) < ACK_LEN:
            if final:
                break
            return None, start  # the acknowledge is still on its way
        if _is_ack(ack):
            return record + bytes(ack), end + gap + ACK_LEN
    return record, end


def split_reply(frame: bytes) -> tuple[bytes, int | None, int | None]:
    """Return (record, ack address, ack register); the ack parts are None when missing."""
    if len(frame) not in (jk02.RECORD_LEN, jk02.RECORD_LEN + ACK_LEN):
        raise FrameError(f"JK PB: reply of {len(frame)} bytes")
    record = frame[: jk02.RECORD_LEN]
    jk02.check_record(record)
    if len(frame) == jk02.RECORD_LEN:
        return record, None, None
    address, register = parse_ack(frame[jk02.RECORD_LEN :])
    return record, address, register


def check_reply(frame: bytes, address: int, register: int) -> bytes:
    """The session's check: the acknowledge names our address and trigger, the record type
    matches the trigger. Returns the record."""
    record, ack_address, ack_register = split_reply(frame)
    if ack_address is None:
        raise FrameError("JK PB: record without an FC 0x10 acknowledge")
    if ack_address != address or ack_register != register:
        raise FrameError(
            f"JK PB: acknowledge from address {ack_address} for 0x{ack_register:04x}, "
            f"expected address {address} for 0x{register:04x}"
        )
    if record[4] != TRIGGER_RECORD.get(register):
        raise FrameError(f"JK PB: record type {record[4]} does not answer 0x{register:04x}")
    return record


def decode(frames: Any) -> Sample:
    """``bmshost decode``: the received bytes of one or more transactions (echo, record, pad,
    acknowledge), concatenated. PB firmware uses the 32-slot layout."""
    buf = b"".join(bytes(f) for f in frames if isinstance(f, bytes | bytearray))
    sample = Sample()
    seen = False
    while True:
        frame, used = _frame(buf, final=True)
        buf = buf[used:]
        if frame is None:
            break
        record, ack_address, _ = split_reply(frame)
        part = jk02.parse_record(record, 32)
        if ack_address is not None:
            part.address = ack_address
        sample = sample.merge(part)
        seen = True
    if not seen:
        raise FrameError("JK PB: no complete 55AAEB90 record found")
    return sample


def recognise(frame: bytes) -> bool:
    """A PB reply (record + acknowledge), a bare acknowledge, or a request echo."""
    if frame[:4] == jk02.RECORD_HEADER:
        reply, _ = _frame(frame, final=True)
        return reply is not None and len(reply) == jk02.RECORD_LEN + ACK_LEN
    return _is_ack(frame[:ACK_LEN]) or (frame[1:2] == b"\x10" and len(frame) == 11)


def probe_accepts(reply: bytes) -> bool:
    """Detection: a settings record acknowledged by address 1 (the probe's address)."""
    frame, _ = _frame(reply, final=True)
    if frame is None:
        return False
    try:
        check_reply(frame, 1, TRIGGER_SETTINGS)
    except FrameError:
        return False
    return True
