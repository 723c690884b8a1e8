"""JK RS485/UART protocol ("0x4E57" frames), sans-I/O.

Frame: ``4E 57 | LEN u16 BE (= total - 2) | address u32 | command | source | type | data |
record number u32 | 68 | SUM16 u32 BE``. A read-all reply carries a TLV list: one register id byte
followed by a fixed-size big-endian value (the cell block 0x79 carries its own length byte).
The list is walked with the size table below instead of searching for id bytes, so a value that
happens to equal an id cannot derail the parse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bmshost.errors import FrameError
from bmshost.model import Sample
from bmshost_jk.alarms import serial_alarms
from bmshost_jk.jk02 import check_plausible

START = b"\x4e\x57"
END_BYTE = 0x68
MIN_FRAME = 21  # header 11 + one data byte + record number 4 + end 1 + checksum 4
MAX_FRAME = 1024  # a full 32-cell read-all reply is ~ 400 bytes

CMD_WRITE = 0x02
CMD_READ_ALL = 0x06
SOURCE_PC = 0x03

# Register id -> value size in bytes (0x79 is variable and handled apart).
TLV_SIZES: dict[int, int] = {
    **{i: 2 for i in range(0x80, 0x85)},
    0x85: 1, 0x86: 1, 0x87: 2, 0x89: 4, 0x8A: 2, 0x8B: 2, 0x8C: 2, 0x8E: 2, 0x8F: 2,
    **{i: 2 for i in range(0x90, 0x9D)},
    0x9D: 1,
    **{i: 2 for i in range(0x9E, 0xA9)},
    0xA9: 1, 0xAA: 4, 0xAB: 1, 0xAC: 1, 0xAD: 2, 0xAE: 1, 0xAF: 1, 0xB0: 2, 0xB1: 1,
    0xB2: 10, 0xB3: 1, 0xB4: 8, 0xB5: 4, 0xB6: 4, 0xB7: 15, 0xB8: 1, 0xB9: 4, 0xBA: 24,
    0xBB: 1, 0xBC: 1, 0xBD: 1, 0xBE: 2, 0xBF: 2, 0xC0: 1,
}
TEXT_TAGS = frozenset({0xB2, 0xB4, 0xB5, 0xB7, 0xBA})
SIGNED_TAGS = frozenset({0xA5, 0xA6, 0xA7, 0xA8})  # under-temperature limits: s16 °C, no offset
CELLS = 0x79
REQUIRED_TAGS = (CELLS, 0x83, 0x84, 0x85)  # without these a reply is useless

TagValue = int | str | list[int]


def checksum(frame_wo_sum: bytes) -> bytes:
    """SUM16-JK: the sum of every byte from ``4E`` through the end byte, as u32 BE."""
    return (sum(frame_wo_sum) & 0xFFFFFFFF).to_bytes(4, "big")


def build_frame(command: int, data: bytes, *, source: int = SOURCE_PC, frame_type: int = 0,
                address: int = 0) -> bytes:
    body = (
        address.to_bytes(4, "big") + bytes((command, source, frame_type)) + data
        + b"\x00\x00\x00\x00" + bytes((END_BYTE,))
    )
    length = 2 + len(body) + 4  # counts itself, the body and the checksum
    head = START + length.to_bytes(2, "big") + body
    return head + checksum(head)


READ_ALL_REQUEST = build_frame(CMD_READ_ALL, b"\x00")


def framer(buf: bytes) -> tuple[bytes | None, int]:
    """Find one ``4E 57`` frame; junk before it is consumed. A frame with a bad checksum or end
    byte is still returned (``parse_frame`` rejects it) so the session fails fast and retries."""
    start = buf.find(START)
    if start < 0:
        return None, max(0, len(buf) - 1)  # keep a trailing 0x4E: it may start a frame
    if len(buf) - start < 4:
        return None, start
    total = int.from_bytes(buf[start + 2 : start + 4], "big") + 2
    if not MIN_FRAME <= total <= MAX_FRAME:
        return None, start + 1  # not a real start: skip it and resynchronise
    if len(buf) - start < total:
        return None, start
    return bytes(buf[start : start + total]), start + total


def validate(frame: bytes) -> bytes:
    """Check the envelope and return the data part (after the 11-byte header)."""
    if len(frame) < MIN_FRAME or frame[:2] != START:
        raise FrameError(f"JK serial: not a 4E57 frame ({len(frame)} bytes)")
    declared = int.from_bytes(frame[2:4], "big") + 2
    if declared != len(frame):
        raise FrameError(f"JK serial: length field says {declared} bytes, frame has {len(frame)}")
    if frame[-5] != END_BYTE:
        raise FrameError(f"JK serial: end byte is 0x{frame[-5]:02x}, expected 0x68")
    if checksum(frame[:-4]) != frame[-4:]:
        raise FrameError(
            f"JK serial: checksum {frame[-4:].hex()} does not match {checksum(frame[:-4]).hex()}"
        )
    return frame[11:-9]


def parse_tlv(data: bytes) -> dict[int, TagValue]:
    """Walk the TLV list. An unknown id ends the walk (its size is unknown); what came before
    is kept, provided the required registers were seen."""
    out: dict[int, TagValue] = {}
    pos = 0
    while pos < len(data):
        tag = data[pos]
        pos += 1
        if tag == CELLS:
            if pos >= len(data):
                raise FrameError("JK serial: cell block truncated")
            n = data[pos]
            block = data[pos + 1 : pos + 1 + n]
            if n % 3 or len(block) != n:
                raise FrameError(f"JK serial: cell block length {n} is not 3 x cells")
            mv = [0] * (n // 3)
            for i in range(n // 3):
                index = block[3 * i]
                if not 1 <= index <= n // 3:
                    raise FrameError(f"JK serial: cell index {index} out of range")
                mv[index - 1] = int.from_bytes(block[3 * i + 1 : 3 * i + 3], "big")
            out[CELLS] = mv
            pos += 1 + n
            continue
        size = TLV_SIZES.get(tag)
        if size is None:
            break
        raw = data[pos : pos + size]
        if len(raw) != size:
            raise FrameError(f"JK serial: register 0x{tag:02x} truncated")
        pos += size
        if tag in TEXT_TAGS:
            out[tag] = raw.split(b"\x00", 1)[0].decode("ascii", "replace")
        else:
            out[tag] = int.from_bytes(raw, "big", signed=tag in SIGNED_TAGS)
    missing = [f"0x{t:02x}" for t in REQUIRED_TAGS if t not in out]
    if missing:
        raise FrameError(f"JK serial: reply lacks register(s) {', '.join(missing)}")
    return out


def encode_tlv(values: Mapping[int, TagValue]) -> bytes:
    """Inverse of ``parse_tlv`` (used by the simulator)."""
    out = bytearray()
    for tag, value in values.items():
        out.append(tag)
        if tag == CELLS:
            assert isinstance(value, list)
            out.append(3 * len(value))
            for i, mv in enumerate(value, start=1):
                out += bytes((i,)) + mv.to_bytes(2, "big")
        elif tag in TEXT_TAGS:
            assert isinstance(value, str)
            out += value.encode("ascii")[: TLV_SIZES[tag]].ljust(TLV_SIZES[tag], b"\x00")
        else:
            assert isinstance(value, int)
            out += value.to_bytes(TLV_SIZES[tag], "big", signed=tag in SIGNED_TAGS)
    return bytes(out)


def temperature(raw: int) -> float:
    """Vendor rule: 0..100 is °C, above 100 means negative (101 -> -1 °C)."""
    return float(raw if raw <= 100 else 100 - raw)


def encode_temperature(celsius: float) -> int:
    value = round(celsius)
    return value if value >= 0 else 100 - value


def current(raw: int, protocol_version: int) -> float:
    """Protocol 1: bit 15 set = charging, 10 mA units. Protocol 0: (10000 - raw) x 10 mA."""
    if protocol_version == 0:
        return round((10000 - raw) * 0.01, 2)
    magnitude = (raw & 0x7FFF) * 0.01
    return round(magnitude if raw & 0x8000 else -magnitude, 2)


def encode_current(amps: float) -> int:
    centi = round(abs(amps) * 100)
    return min(centi, 0x7FFF) | (0x8000 if amps > 0 else 0)


def _int(tags: Mapping[int, TagValue], tag: int) -> int | None:
    value = tags.get(tag)
    return value if isinstance(value, int) else None


def _text(tags: Mapping[int, TagValue], tag: int) -> str | None:
    value = tags.get(tag)
    return value.strip() if isinstance(value, str) and value.strip() else None


def sample_from_tags(tags: Mapping[int, TagValue]) -> Sample:
    cells_mv = tags[CELLS]
    assert isinstance(cells_mv, list)
    check_plausible(_int(tags, 0x85) or 0, cells_mv)
    cells = [mv / 1000 for mv in cells_mv]
    proto = _int(tags, 0xC0)
    soc = _int(tags, 0x85)
    status = _int(tags, 0x8C)
    warnings = _int(tags, 0x8B)
    capacity = _int(tags, 0xAA)
    sensors = _int(tags, 0x86)
    temps = [temperature(t) for t in (_int(tags, 0x81), _int(tags, 0x82)) if t is not None]
    if sensors is not None:
        temps = temps[: max(0, sensors)]
    balancing_active = bool(status & 0b100) if status is not None else None
    sample = Sample(
        voltage=(_int(tags, 0x83) or 0) / 100,
        current=current(_int(tags, 0x84) or 0, 1 if proto is None else proto),
        soc=float(soc) if soc is not None else None,
        cycles=_int(tags, 0x87),
        cell_voltages=cells,
        cell_balancing=_balancing_cells(cells, balancing_active),
        temperatures=temps or None,
        mosfet_temperature=temperature(t) if (t := _int(tags, 0x80)) is not None else None,
        charge_fet=bool(status & 0b1) if status is not None else None,
        discharge_fet=bool(status & 0b10) if status is not None else None,
        balance_fet=bool(b) if (b := _int(tags, 0x9D)) is not None else None,
        capacity_ah=float(capacity) if capacity else None,
        remaining_ah=round(capacity * soc / 100, 3) if capacity and soc is not None else None,
        bms_charge_current_limit=float(c) if (c := _int(tags, 0x99)) is not None else None,
        bms_discharge_current_limit=float(d) if (d := _int(tags, 0x97)) is not None else None,
        alarms=serial_alarms(warnings) if warnings is not None else None,
        serial_number=_manufacturer_id(tags),
        firmware_version=_text(tags, 0xB7),
        model=_device_id(tags),
        production_date=_production(tags),
        extra=_extra(tags, warnings, status),
    )
    return sample.fill_derived()


def _balancing_cells(cells: list[float], active: bool | None) -> list[bool] | None:
    """The protocol says only "balancer working". JK's balancer moves charge from the highest to
    the lowest cell, so those two are flagged (as the reference driver does)."""
    if active is None or not cells:
        return None
    flags = [False] * len(cells)
    if active:
        flags[cells.index(max(cells))] = True
        flags[cells.index(min(cells))] = True
    return flags


def _manufacturer_id(tags: Mapping[int, TagValue]) -> str | None:
    text = _text(tags, 0xBA)
    if text is None:
        return None
    return text.replace("Input Userda", "").strip() or None


def _device_id(tags: Mapping[int, TagValue]) -> str | None:
    text = _text(tags, 0xB4)
    return None if text in (None, "Input Us") else text


def _production(tags: Mapping[int, TagValue]) -> str | None:
    text = _text(tags, 0xB5)
    if text is None or len(text) != 4 or not text.isdigit() or not 1 <= int(text[2:]) <= 12:
        return None
    return f"20{text[:2]}-{text[2:]}"


_EXTRA_TAGS: dict[str, int] = {
    "cycle_capacity_ah": 0x89,
    "temperature_sensors": 0x86,
    "cell_count_setting": 0xA9,
    "pack_ovp_v": 0x8E,
    "pack_uvp_v": 0x8F,
    "cell_ovp_mv": 0x90,
    "cell_ovpr_mv": 0x91,
    "cell_uvp_mv": 0x93,
    "cell_uvpr_mv": 0x94,
    "balance_start_mv": 0x9B,
    "balance_trigger_mv": 0x9C,
    "charge_switch": 0xAB,
    "discharge_switch": 0xAC,
    "battery_type": 0xAF,
    "runtime_min": 0xB6,
    "actual_capacity_ah": 0xB9,
    "protocol_version": 0xC0,
}


def _extra(
    tags: Mapping[int, TagValue], warnings: int | None, status: int | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, tag in _EXTRA_TAGS.items():
        value = _int(tags, tag)
        if value is not None:
            out[name] = value / 100 if name in ("pack_ovp_v", "pack_uvp_v") else value
    if warnings is not None:
        out["warnings"] = warnings
    if status is not None:
        out["status"] = status
    return out


def parse_frame(frame: bytes) -> Sample:
    """Validate a read-all reply and decode it into a sample."""
    data = validate(frame)
    if frame[10] == 0x00:
        raise FrameError("JK serial: this is a request, not a reply")
    return sample_from_tags(parse_tlv(data))


def recognise(frame: bytes) -> bool:
    return frame[:2] == START and len(frame) >= MIN_FRAME and frame[-5] == END_BYTE


def decode(frames: Any) -> Sample:
    """``bmshost decode`` entry point: every frame is a read-all reply; later frames win."""
    sample = Sample()
    seen = False
    for item in frames:
        if not isinstance(item, bytes | bytearray):
            raise FrameError("JK serial: expected byte frames")
        buf = bytes(item)
        while buf:
            frame, used = framer(buf)
            buf = buf[used:]
            if frame is None:
                if used == 0:
                    break
                continue
            sample = sample.merge(parse_frame(frame))
            seen = True
    if not seen:
        raise FrameError("JK serial: no 4E57 frame found")
    return sample


def probe_accepts(reply: bytes) -> bool:
    """Detection: a reply that frames, validates and parses is a JK serial BMS."""
    frame, _ = framer(reply)
    if frame is None:
        return False
    try:
        parse_frame(frame)
    except FrameError:
        return False
    return True
