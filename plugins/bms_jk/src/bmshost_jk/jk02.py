"""JK02 records (BLE and the PB inverter BMS), sans-I/O.

A record is 300 bytes: ``55 AA EB 90 | type | counter | fields (little-endian) | SUM8 at 299``.
Type 1 = settings, 2 = cell info, 3 = device info. Cell-info records come in two layouts: 24 cell
slots (firmware < 11) and 32 slots (firmware >= 11); the field table lists both offsets so one
table drives decoding here and encoding in the simulators.

Host commands are 20 bytes: ``AA 55 90 EB | register | length | u32 LE value | zeros | SUM8``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

import attrs

from bmshost.errors import FrameError
from bmshost.model import Sample
from bmshost_jk.alarms import jk02_alarms

RECORD_HEADER = b"\x55\xaa\xeb\x90"
COMMAND_HEADER = b"\xaa\x55\x90\xeb"
RECORD_LEN = 300
TYPE_SETTINGS, TYPE_CELLS, TYPE_DEVICE = 1, 2, 3
RECORD_TYPES = (TYPE_SETTINGS, TYPE_CELLS, TYPE_DEVICE)

REQ_DEVICE_INFO = 0x97
REQ_CELL_INFO = 0x96  # answered with a settings record, then cell info streams every ~1 s
REG_OVP, REG_OVPR = 0x04, 0x05
REG_CHARGE_FET, REG_DISCHARGE_FET, REG_BALANCER = 0x1D, 0x1E, 0x1F
READY_REGISTER = 0xC8  # firmware >= 19.05 announces itself with a 20-byte "ready" command frame

ABSENT_TEMPERATURE = -2000  # 0.1 °C raw: "no sensor"


def sum8(data: bytes) -> int:
    return sum(data) & 0xFF


def build_command(register: int, value: int | None = None, sequence: int = 0) -> bytes:
    """A 20-byte host command: a plain request when ``value`` is None, else a u32 write."""
    length = 0 if value is None else 4
    body = (
        COMMAND_HEADER + bytes((register, length)) + (value or 0).to_bytes(4, "little")
        + bytes(6) + bytes((sequence & 0xFF, 0, 0))
    )
    return body + bytes((sum8(body),))


def parse_command(frame: bytes) -> tuple[int, int | None]:
    """Validate a host command (simulators use it): returns (register, value or None)."""
    if len(frame) != 20 or frame[:4] != COMMAND_HEADER:
        raise FrameError("JK02: not a 20-byte AA5590EB command")
    if sum8(frame[:19]) != frame[19]:
        raise FrameError("JK02: command checksum mismatch")
    value = int.from_bytes(frame[6:10], "little") if frame[5] else None
    return frame[4], value


READY_MESSAGE = build_command(READY_REGISTER, None)[:5] + b"\x01\x01" + bytes(12)
READY_MESSAGE += bytes((sum8(READY_MESSAGE),))


def check_record(record: bytes) -> int:
    """Validate header, length and SUM8; return the record type."""
    if len(record) < RECORD_LEN or record[:4] != RECORD_HEADER:
        raise FrameError(f"JK02: not a record ({len(record)} bytes)")
    if sum8(record[: RECORD_LEN - 1]) != record[RECORD_LEN - 1]:
        raise FrameError(
            f"JK02: record checksum {record[RECORD_LEN - 1]:02x} does not match "
            f"{sum8(record[: RECORD_LEN - 1]):02x}"
        )
    if record[4] not in RECORD_TYPES:
        raise FrameError(f"JK02: unknown record type {record[4]}")
    return record[4]


def seal(record: bytearray) -> bytes:
    """Write header and checksum into a 300-byte record under construction (simulators)."""
    record[:4] = RECORD_HEADER
    record[RECORD_LEN - 1] = sum8(bytes(record[: RECORD_LEN - 1]))
    return bytes(record)


# -- cell info --------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class Field:
    off32: int
    off24: int | None  # None: the 24-slot layout does not have it
    fmt: str  # struct format, little-endian


CELL_FIELDS: dict[str, Field] = {
    "cell_mask": Field(70, 54, "<I"),
    "cell_avg_mv": Field(74, 58, "<H"),
    "cell_delta_mv": Field(76, 60, "<H"),
    "cell_max_no": Field(78, 62, "<B"),
    "cell_min_no": Field(79, 63, "<B"),
    "mos_temp": Field(144, 134, "<h"),
    "voltage_mv": Field(150, 118, "<I"),
    "power_mw": Field(154, 122, "<I"),
    "current_ma": Field(158, 126, "<i"),
    "temp1": Field(162, 130, "<h"),
    "temp2": Field(164, 132, "<h"),
    "errors32": Field(166, None, "<I"),
    "errors16": Field(-1, 136, "<H"),
    "balance_ma": Field(170, 138, "<h"),
    "balance_action": Field(172, 140, "<B"),
    "soc": Field(173, 141, "<B"),
    "remaining_mah": Field(174, 142, "<I"),
    "nominal_mah": Field(178, 146, "<I"),
    "cycles": Field(182, 150, "<I"),
    "cycle_capacity_mah": Field(186, 154, "<I"),
    "soh": Field(190, 158, "<B"),
    "runtime_s": Field(194, None, "<I"),
    "charge_fet": Field(198, 166, "<B"),
    "discharge_fet": Field(199, 167, "<B"),
    "temp_mask": Field(214, 182, "<B"),
    "heating": Field(215, None, "<B"),
    "heater_ma": Field(236, None, "<H"),
    "temp3": Field(256, None, "<h"),
    "temp4": Field(258, None, "<h"),
}


def _offset(field: Field, slots: int) -> int | None:
    off = field.off32 if slots == 32 else field.off24
    return None if off is None or off < 0 else off


def _layout(slots: int) -> tuple[tuple[str, Any, int], ...]:
    """(name, compiled unpack_from, offset) of every field the layout has."""
    return tuple(
        (name, struct.Struct(field.fmt).unpack_from, off)
        for name, field in CELL_FIELDS.items()
        if (off := _offset(field, slots)) is not None
    )


_LAYOUTS = {slots: _layout(slots) for slots in (24, 32)}  # compiled once: decoded every second
_CELL_SLOTS = {slots: struct.Struct(f"<{slots}H").unpack_from for slots in (24, 32)}


def cell_fields(record: bytes, slots: int) -> dict[str, int]:
    """Raw values of the cell-info record in the given layout (24 or 32 cell slots)."""
    layout = _LAYOUTS.get(slots) or _layout(slots)
    return {name: unpack(record, off)[0] for name, unpack, off in layout}


def cell_voltages_mv(record: bytes, slots: int, mask: int) -> list[int]:
    unpack = _CELL_SLOTS.get(slots)
    values = unpack(record, 6) if unpack else struct.unpack_from(f"<{slots}H", record, 6)
    count = mask.bit_length()
    if count <= slots and mask == (1 << count) - 1:  # the usual mask: cells 1..n, no gaps
        return list(values[:count])
    return [values[i] for i in range(slots) if mask >> i & 1]


def guess_slots(record: bytes) -> int:
    """Without a firmware version: a 32-slot record has data near its end (byte 287 is
    non-zero there, as the reference driver uses), a 24-slot record is zero-padded."""
    return 32 if record[287] else 24


MAX_CELL_MV = 5000  # no lithium chemistry JK supports goes near 5 V


def check_plausible(soc: int, cells_mv: list[int]) -> None:
    """A checksum is only a sum: refuse values no battery can have rather than publish them."""
    if soc > 100:
        raise FrameError(f"JK: SoC {soc} % is impossible")
    worst = max(cells_mv, default=0)
    if worst > MAX_CELL_MV:
        raise FrameError(f"JK: cell voltage {worst} mV is impossible")


def _temp(raw: int) -> float | None:
    return None if raw <= ABSENT_TEMPERATURE else raw / 10


def parse_cell_info(record: bytes, slots: int) -> Sample:
    if check_record(record) != TYPE_CELLS:
        raise FrameError("JK02: not a cell-info record")
    return cell_info_sample(record, slots)


def cell_info_sample(record: bytes, slots: int) -> Sample:
    """``parse_cell_info`` for a record ``check_record`` already found to be cell info (a
    session checks each record once, not once per step)."""
    if slots not in (24, 32):
        raise FrameError(f"JK02: unknown layout with {slots} cell slots")
    f = cell_fields(record, slots)
    cells_mv = cell_voltages_mv(record, slots, f["cell_mask"])
    if not cells_mv:
        raise FrameError("JK02: cell-info record enables no cell")
    check_plausible(f["soc"], cells_mv)
    cells = [mv / 1000 for mv in cells_mv]
    mask = f["temp_mask"]
    # Presence bits: 0 MOSFET, 1..2 sensors 1-2, 4..5 the extra probes at 256/258 (fw >= 14).
    # A zero mask comes from firmware that does not fill it: trust the "absent" marker instead.
    def present(bit: int) -> bool:
        return mask == 0 or bool(mask >> bit & 1)

    temps = [_temp(f[k]) for k, bit in (("temp1", 1), ("temp2", 2)) if present(bit)]
    if slots == 32 and mask:
        temps += [_temp(f[k]) for k, bit in (("temp3", 4), ("temp4", 5)) if mask >> bit & 1]
    battery_temps = [t for t in temps if t is not None]
    action = f["balance_action"]
    balancing = [False] * len(cells)
    if action:
        for no in (f["cell_max_no"], f["cell_min_no"]):
            if 0 <= no < len(cells):
                balancing[no] = True
    errors = f.get("errors32", f.get("errors16", 0))
    extra: dict[str, Any] = {
        "balance_current": f["balance_ma"] / 1000,
        "balancing_action": action,
        "cycle_capacity_ah": f["cycle_capacity_mah"] / 1000,
        "errors": errors,
        "temperature_mask": mask,
        "layout_slots": slots,
    }
    if "heater_ma" in f:
        extra["heater_current"] = f["heater_ma"] / 1000
    if "runtime_s" in f:
        extra["runtime_s"] = f["runtime_s"]
    nominal = f["nominal_mah"] / 1000
    sample = Sample(
        voltage=f["voltage_mv"] / 1000,
        current=f["current_ma"] / 1000,
        soc=float(f["soc"]),
        soh=float(f["soh"]) if f["soh"] else None,
        capacity_ah=nominal or None,
        remaining_ah=f["remaining_mah"] / 1000,
        cycles=f["cycles"],
        cell_voltages=cells,
        cell_balancing=balancing,
        temperatures=battery_temps or None,
        mosfet_temperature=_temp(f["mos_temp"]) if present(0) else None,
        charge_fet=bool(f["charge_fet"]),
        discharge_fet=bool(f["discharge_fet"]),
        heating=bool(f["heating"]) if "heating" in f else None,
        alarms=jk02_alarms(errors, slots),
        extra=extra,
    )
    return sample.fill_derived()


def encode_cell_info(values: Mapping[str, int], cells_mv: list[int], slots: int = 32,
                     counter: int = 0) -> bytes:
    """Build a cell-info record from raw values (the simulators' side of the table)."""
    record = bytearray(RECORD_LEN)
    record[4], record[5] = TYPE_CELLS, counter & 0xFF
    for i, mv in enumerate(cells_mv[:slots]):
        record[6 + 2 * i : 8 + 2 * i] = mv.to_bytes(2, "little")
    for name, field in CELL_FIELDS.items():
        off = _offset(field, slots)
        if off is not None and name in values:
            struct.pack_into(field.fmt, record, off, values[name])
    if slots == 32:
        record[287] = 1  # the marker the reference driver uses to tell the 32-slot layout
    return seal(record)


# -- device info --------------------------------------------------------------------------------

DEVICE_TEXT: dict[str, tuple[int, int]] = {
    "vendor_id": (6, 16),
    "hw_version": (22, 8),
    "sw_version": (30, 8),
    "device_name": (46, 16),
    "manufacturing_date": (78, 8),
    "serial_number": (86, 16),
    "user_data": (102, 16),
    "user_data_2": (134, 16),
}


def _ascii(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("ascii", "replace").strip()


def device_info(record: bytes) -> dict[str, Any]:
    if check_record(record) != TYPE_DEVICE:
        raise FrameError("JK02: not a device-info record")
    out: dict[str, Any] = {k: _ascii(record[o : o + n]) for k, (o, n) in DEVICE_TEXT.items()}
    out["uptime_s"] = int.from_bytes(record[38:42], "little")
    out["power_on_count"] = int.from_bytes(record[42:46], "little")
    return out


def firmware_slots(sw_version: str) -> int | None:
    """Cell slots from the software version: major < 11 -> 24, else 32; None if unreadable."""
    head = sw_version.split(".", 1)[0]
    return (24 if int(head) < 11 else 32) if head.isdigit() else None


def parse_device_info(record: bytes) -> Sample:
    info = device_info(record)
    date = info["manufacturing_date"]
    iso = None
    if len(date) == 6 and date.isdigit() and 1 <= int(date[2:4]) <= 12 and 1 <= int(date[4:]) <= 31:
        iso = f"20{date[:2]}-{date[2:4]}-{date[4:]}"
    return Sample(
        model=info["vendor_id"] or None,
        hardware_version=info["hw_version"] or None,
        firmware_version=info["sw_version"] or None,
        serial_number=info["serial_number"] or None,
        production_date=iso,
        extra={"device_name": info["device_name"], "uptime_s": info["uptime_s"],
               "power_on_count": info["power_on_count"]},
    )


def encode_device_info(texts: Mapping[str, str], uptime_s: int = 0, power_on: int = 0) -> bytes:
    record = bytearray(RECORD_LEN)
    record[4] = TYPE_DEVICE
    for key, (off, size) in DEVICE_TEXT.items():
        raw = texts.get(key, "").encode("ascii")[:size]
        record[off : off + len(raw)] = raw
    record[38:42] = uptime_s.to_bytes(4, "little")
    record[42:46] = power_on.to_bytes(4, "little")
    return seal(record)


# -- settings --------------------------------------------------------------------------------

SETTINGS_U32: dict[str, int] = {
    "cell_uvp_mv": 10, "cell_uvpr_mv": 14, "cell_ovp_mv": 18, "cell_ovpr_mv": 22,
    "balance_trigger_mv": 26, "soc_100_mv": 30, "soc_0_mv": 34, "request_charge_mv": 38,
    "request_float_mv": 42, "power_off_mv": 46, "max_charge_ma": 50, "max_discharge_ma": 62,
    "max_balance_ma": 78, "cell_count": 114, "charge_switch": 118, "discharge_switch": 122,
    "balancer_switch": 126, "nominal_mah": 130, "balance_start_mv": 138, "device_address": 270,
}


def settings(record: bytes) -> dict[str, int]:
    if check_record(record) != TYPE_SETTINGS:
        raise FrameError("JK02: not a settings record")
    out = {k: int.from_bytes(record[o : o + 4], "little") for k, o in SETTINGS_U32.items()}
    for key in ("charge_switch", "discharge_switch", "balancer_switch"):
        out[key] &= 0xFF  # only the first byte of these u32 carries the switch
    out["control_bits"] = int.from_bytes(record[282:284], "little")
    return out


def parse_settings(record: bytes) -> Sample:
    s = settings(record)
    return Sample(
        balance_fet=bool(s["balancer_switch"]),
        bms_charge_current_limit=s["max_charge_ma"] / 1000,
        bms_discharge_current_limit=s["max_discharge_ma"] / 1000,
        extra={"cell_ovp_mv": s["cell_ovp_mv"], "cell_ovpr_mv": s["cell_ovpr_mv"],
               "cell_uvp_mv": s["cell_uvp_mv"], "cell_uvpr_mv": s["cell_uvpr_mv"],
               "charge_switch": s["charge_switch"], "discharge_switch": s["discharge_switch"],
               "cell_count_setting": s["cell_count"], "device_address": s["device_address"]},
    )


def encode_settings(values: Mapping[str, int], counter: int = 0) -> bytes:
    record = bytearray(RECORD_LEN)
    record[4], record[5] = TYPE_SETTINGS, counter & 0xFF
    for key, off in SETTINGS_U32.items():
        record[off : off + 4] = values.get(key, 0).to_bytes(4, "little")
    record[282:284] = values.get("control_bits", 0).to_bytes(2, "little")
    return seal(record)


# -- reassembly ------------------------------------------------------------------------------

AT_LINE = b"AT\r\n"


def _strip_at(buf: bytes, start: int) -> tuple[bytes, int]:
    """Take RECORD_LEN bytes from ``start`` skipping injected ``AT\\r\\n`` lines; return the
    cleaned bytes (possibly short) and how many raw bytes they spanned."""
    out = bytearray()
    pos = start
    while len(out) < RECORD_LEN and pos < len(buf):
        if buf.startswith(AT_LINE, pos):
            pos += len(AT_LINE)
            continue
        out.append(buf[pos])
        pos += 1
    return bytes(out), pos - start


def ble_framer(buf: bytes) -> tuple[bytes | None, int]:
    """Reassemble notifications into 300-byte records.

    Junk before a record header is consumed: the firmware-19 ready message, ``AT\\r\\n`` lines
    the BLE module injects, the padding of 320-byte records. A record with a bad checksum is
    skipped (records keep streaming, the next one will do).
    """
    pos = 0
    while True:
        start = buf.find(RECORD_HEADER, pos)
        if start < 0:
            return None, max(pos, len(buf) - 3)  # keep a possible partial header
        raw = buf[start : start + RECORD_LEN]
        if len(raw) < RECORD_LEN:
            return None, start  # wait for the rest (removing AT lines would only shorten it)
        if sum8(raw[:-1]) == raw[-1] and raw[4] in RECORD_TYPES:
            return bytes(raw), start + RECORD_LEN
        cleaned, span = _strip_at(buf, start)
        if len(cleaned) < RECORD_LEN:
            return None, start  # wait for the rest
        if sum8(cleaned[:-1]) == cleaned[-1] and cleaned[4] in RECORD_TYPES:
            return cleaned, start + span
        pos = start + 1  # corrupt: look for the next header


def parse_record(record: bytes, slots: int | None) -> Sample:
    """Decode any record type; ``slots`` None guesses the cell-info layout."""
    kind = check_record(record)
    if kind == TYPE_CELLS:
        return parse_cell_info(record, slots or guess_slots(record))
    if kind == TYPE_DEVICE:
        return parse_device_info(record)
    return parse_settings(record)


def decode_stream(data: bytes, slots: int | None = None) -> Sample:
    """Decode every record in a byte stream (device info first fixes the layout)."""
    sample = Sample()
    seen = False
    buf = data
    while True:
        record, used = ble_framer(buf)
        buf = buf[used:]
        if record is None:
            break
        if record[4] == TYPE_DEVICE and slots is None:
            slots = firmware_slots(device_info(record)["sw_version"])
        sample = sample.merge(parse_record(record, slots))
        seen = True
    if not seen:
        if RECORD_HEADER in data:
            raise FrameError("JK02: record incomplete or checksum mismatch")
        raise FrameError("JK02: no 55AAEB90 record found")
    return sample


def decode(frames: Any) -> Sample:
    """``bmshost decode`` entry point for BLE: notifications in arrival order."""
    data = b"".join(bytes(f) for f in frames if isinstance(f, bytes | bytearray))
    return decode_stream(data)


def recognise(frame: bytes) -> bool:
    return frame[:4] == RECORD_HEADER or frame[:4] == COMMAND_HEADER
