"""JBD on CAN (the BMS's "Victron" CAN protocol), sans-I/O.

Broadcast only: the master pack of a bank sends these frames about once a second with values for
the whole bank. All fields little-endian. No captures of this variant exist: the layouts come from
the protocol specification and are tested against ``can_sim``.

Every decoder raises only ``FrameError`` for bad input.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bmshost.errors import FrameError
from bmshost.link import CanFrame
from bmshost.model import SAMPLE_FIELDS, Sample

ID_LIMITS = 0x351
ID_SOC = 0x355
ID_MEASURE = 0x356
ID_ALARMS = 0x35A
ID_MANUFACTURER = 0x35E
ID_INFO = 0x35F
ID_MODEL_1 = 0x370
ID_MODEL_2 = 0x371
ID_PACKS = 0x372
ID_EXTREMES = 0x373
ID_MIN_CELL_ID, ID_MAX_CELL_ID, ID_MIN_TEMP_ID, ID_MAX_TEMP_ID = 0x374, 0x375, 0x376, 0x377
ID_ENERGY = 0x378
ID_CAPACITY = 0x379
ID_SERIAL_1 = 0x380
ID_SERIAL_2 = 0x381
ID_PRODUCT = 0x382

# A sample is complete with SoC, measurements, a capacity and the cell/temperature extremes.
REQUIRED: tuple[int, ...] = (ID_SOC, ID_MEASURE, ID_EXTREMES)
CAPACITY_IDS: tuple[int, ...] = (ID_CAPACITY, ID_INFO)
KELVIN = 273.15

# (byte, bit) → Venus alarm name; the same positions in bytes 0-3 (alarm) and 4-7 (warning).
ALARM_BITS: dict[tuple[int, int], str] = {
    (0, 2): "high_cell_voltage",
    (0, 4): "low_cell_voltage",
    (0, 6): "high_temperature",
    (1, 0): "low_temperature",
    (1, 2): "high_charge_temperature",
    (1, 4): "low_charge_temperature",
    (1, 6): "high_discharge_current",
    (2, 0): "high_charge_current",
    (2, 4): "high_discharge_current",  # short circuit
    (2, 6): "internal_failure",
    (3, 0): "cell_imbalance",
}


def _need(frame: CanFrame, size: int) -> bytes:
    if len(frame.data) < size:
        raise FrameError(
            f"JBD CAN 0x{frame.arbitration_id:03X}: {len(frame.data)} data bytes, need {size}"
        )
    return frame.data


def _ascii(data: bytes) -> str:
    return data.split(b"\0", 1)[0].decode("ascii", errors="replace").strip()


def _limits(f: CanFrame) -> Sample:
    cvl, ccl, dcl, dvl = struct.unpack_from("<HHHH", _need(f, 8))
    return Sample(
        bms_charge_voltage_limit=cvl / 10,
        bms_charge_current_limit=ccl / 10,
        bms_discharge_current_limit=dcl / 10,
        bms_discharge_voltage_limit=dvl / 10,
    )


def _soc(f: CanFrame) -> Sample:
    data = _need(f, 4)
    soc, soh = struct.unpack_from("<HH", data)
    if len(data) >= 6:  # the high-resolution SoC (0.01 %) when present
        soc_fine = struct.unpack_from("<H", data, 4)[0] / 100
        if soc_fine <= 100:
            return Sample(soc=soc_fine, soh=float(soh))
    if soc > 100:
        raise FrameError(f"JBD CAN 0x355: SoC {soc} % is out of range")
    return Sample(soc=float(soc), soh=float(soh))


def _measure(f: CanFrame) -> Sample:
    voltage, current, temp, cycles = struct.unpack_from("<HhhH", _need(f, 8))
    return Sample(
        voltage=voltage / 100, current=current / 10, temperatures=[temp / 10], cycles=cycles
    )


def _alarms(f: CanFrame) -> Sample:
    data = _need(f, 8)
    out: dict[str, int] = {}
    for (byte, bit), name in ALARM_BITS.items():
        level = 2 if data[byte] >> bit & 1 else 1 if data[byte + 4] >> bit & 1 else 0
        out[name] = max(out.get(name, 0), level)
    return Sample(alarms=out)


def _info(f: CanFrame) -> Sample:
    kind, firmware, capacity, product = struct.unpack_from("<HHHH", _need(f, 8))
    extra = {"battery_type": kind, "firmware_raw": firmware, "product_id": product}
    # UP16S015 sends 0 here; 0x379 then carries the capacity.
    return Sample(capacity_ah=float(capacity) if capacity else None, extra=extra)


def _extremes(f: CanFrame) -> Sample:
    cmin, cmax, tmin, tmax = struct.unpack_from("<HHHH", _need(f, 8))
    if cmin > cmax or tmin > tmax:
        raise FrameError("JBD CAN 0x373: minimum above maximum")
    return Sample(
        cell_voltage_min=cmin / 1000,
        cell_voltage_max=cmax / 1000,
        extra={
            "min_temperature": round(tmin - KELVIN, 1),
            "max_temperature": round(tmax - KELVIN, 1),
        }
    )


def _text(key: str) -> Callable[[CanFrame], Sample]:
    def decode(f: CanFrame) -> Sample:
        return Sample(extra={key: _ascii(f.data)})

    return decode


def _u16(key: str) -> Callable[[CanFrame], Sample]:
    def decode(f: CanFrame) -> Sample:
        return Sample(extra={key: struct.unpack_from("<H", _need(f, 2))[0]})

    return decode


def _capacity(f: CanFrame) -> Sample:
    capacity = struct.unpack_from("<H", _need(f, 2))[0]
    return Sample(capacity_ah=float(capacity) if capacity else None)


DECODERS: Mapping[int, Callable[[CanFrame], Sample]] = {
    ID_LIMITS: _limits,
    ID_SOC: _soc,
    ID_MEASURE: _measure,
    ID_ALARMS: _alarms,
    ID_MANUFACTURER: _text("manufacturer"),
    ID_INFO: _info,
    ID_MODEL_1: _text("model_1"),
    ID_MODEL_2: _text("model_2"),
    ID_PACKS: _u16("packs_online"),
    ID_EXTREMES: _extremes,
    ID_MIN_CELL_ID: _text("min_cell_id"),
    ID_MAX_CELL_ID: _text("max_cell_id"),
    ID_MIN_TEMP_ID: _text("min_temperature_id"),
    ID_MAX_TEMP_ID: _text("max_temperature_id"),
    ID_CAPACITY: _capacity,
    ID_SERIAL_1: _text("serial_1"),
    ID_SERIAL_2: _text("serial_2"),
    ID_PRODUCT: _u16("product_code"),
}
IDS = frozenset(DECODERS) | {ID_ENERGY}


def decode_frame(frame: CanFrame) -> Sample:
    """One frame → a partial sample; ids outside the protocol are a ``FrameError``."""
    if not isinstance(frame, CanFrame):
        raise FrameError("JBD CAN decodes CAN frames, not bytes")
    if frame.is_extended_id:
        raise FrameError(f"JBD CAN uses 11-bit ids, got extended 0x{frame.arbitration_id:X}")
    if frame.arbitration_id == ID_ENERGY:
        return Sample()  # energy in/out: always zero on these BMSes
    decoder = DECODERS.get(frame.arbitration_id)
    if decoder is None:
        raise FrameError(f"0x{frame.arbitration_id:03X} is not a JBD CAN frame")
    return decoder(frame)


def is_complete(ids: set[int] | frozenset[int]) -> bool:
    return all(i in ids for i in REQUIRED) and any(i in ids for i in CAPACITY_IDS)


def combine(frames: Mapping[int, CanFrame]) -> Sample:
    """The newest frame per id → one sample (strings split over two frames are joined)."""
    return combine_decoded({i: decode_frame(f) for i, f in frames.items()})


FieldItems = tuple[tuple[str, Any], ...]  # the (name, value) pairs a decoded frame sets

# The order parts are combined in: 0x35F first so that 0x379 (bank capacity) wins over it.
COMBINE_ORDER: tuple[int, ...] = (ID_INFO, *sorted(IDS - {ID_INFO}))


def set_fields(part: Sample) -> FieldItems:
    """The fields a decoded frame sets (a session keeps these per id: combining them each poll
    is then a walk over a few pairs instead of every field of 19 samples)."""
    return tuple(
        (name, value) for name in SAMPLE_FIELDS if (value := getattr(part, name)) is not None
    )


def combine_decoded(parts: Mapping[int, Sample]) -> Sample:
    """Like ``combine``, for frames already decoded (a session decodes each frame once)."""
    return combine_fields({i: set_fields(p) for i, p in parts.items()})


def combine_fields(parts: Mapping[int, FieldItems]) -> Sample:
    """Like ``combine_decoded``, from each frame's ``set_fields``."""
    # One pass over the parts and one Sample at the end: cheaper than 19 ``Sample.merge``s.
    fields: dict[str, Any] = {}
    alarms: dict[str, int] = {}
    extra: dict[str, Any] = {}
    order = (
        COMBINE_ORDER
        if parts.keys() <= IDS
        else sorted(parts, key=lambda i: (i != ID_INFO, i))
    )
    for ident in order:
        items = parts.get(ident)
        if items is None:
            continue
        for name, value in items:
            if name == "alarms":
                alarms.update(value)
            elif name == "extra":
                extra.update(value)
            else:  # copies: the parts stay cached in the session
                fields[name] = list(value) if isinstance(value, list) else value
    sample = Sample(**fields, alarms=alarms or None)
    model = (str(extra.pop("model_1", "")) + str(extra.pop("model_2", ""))).strip()
    serial = (str(extra.pop("serial_1", "")) + str(extra.pop("serial_2", ""))).strip()
    if model:
        sample.model = model
    if serial:
        sample.serial_number = serial
    sample.extra = extra or None
    return sample.fill_derived()


def decode(frames: Sequence[CanFrame | bytes]) -> Sample:
    """``bmshost decode``: frames of one read → one sample (the last frame per id wins)."""
    newest: dict[int, CanFrame] = {}
    for frame in frames:
        if not isinstance(frame, CanFrame):
            raise FrameError("JBD CAN decodes CAN frames (ID#DATA), not bytes")
        decode_frame(frame)  # validate every frame, not only the newest per id
        newest[frame.arbitration_id] = frame
    if not newest:
        raise FrameError("no JBD CAN frames")
    return combine(newest)
