"""JK CAN v1/v2 broadcast frames, sans-I/O. All fields little-endian.

The BMS only broadcasts; a device address n (DIP switches / "Device Addr.") shifts every id by
+n, so ids are normalised by subtracting the configured address before the table lookup.
v1 (11-bit ids) has pack values and the extremes only; v2 (29-bit ids, JK 2023+ and inverter
BMS) adds per-cell voltages, capacities, cycles, all temperatures and the switch states.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bmshost.errors import FrameError
from bmshost.link import CanFrame
from bmshost.model import Sample
from bmshost_jk.alarms import can_alarms
from bmshost_jk.jk02 import MAX_CELL_MV

BATT_ST = 0x02F4
CELL_VOLT = 0x04F4
CELL_TEMP = 0x05F4
ALM_INFO = 0x07F4
BATT_ST2 = 0x18F128F4
ALL_TEMP = 0x18F228F4
SWITCH_STATE = 0x18F528F4
CELL_FRAMES = tuple(range(0x18E028F4, 0x18E528F4 + 1, 0x10000))  # cells 1-4 ... 21-24
V1_IDS = (BATT_ST, CELL_VOLT, CELL_TEMP, ALM_INFO)
V2_IDS = (BATT_ST2, ALL_TEMP, SWITCH_STATE, *CELL_FRAMES)
KNOWN_IDS = frozenset(V1_IDS + V2_IDS)
MIN_LEN = {BATT_ST: 5, CELL_VOLT: 6, CELL_TEMP: 5, ALM_INFO: 4, BATT_ST2: 8, ALL_TEMP: 6,
           SWITCH_STATE: 1, **{i: 8 for i in CELL_FRAMES}}
TEMP_OFFSET = 50
CURRENT_OFFSET = 400.0  # A: current = raw x 0.1 - 400


def normalise(frame: CanFrame, address: int = 0) -> int | None:
    """The table id of a frame sent by the BMS with ``address``, or None if it is not ours."""
    ident = frame.arbitration_id - address
    return ident if ident in KNOWN_IDS else None


def _u16(data: bytes, off: int) -> int:
    return int.from_bytes(data[off : off + 2], "little")


def _check(ident: int, data: bytes) -> None:
    if len(data) < MIN_LEN[ident]:
        raise FrameError(f"JK CAN: frame 0x{ident:X} has {len(data)} bytes, needs {MIN_LEN[ident]}")


def decode_cache(frames: Mapping[int, bytes], *, charge_positive: bool = True) -> Sample:
    """Decode the latest frame per normalised id into one sample.

    ``charge_positive``: the sign of BATT_ST's current. The vendor document says positive means
    discharge; the reference driver (and its users' installations) treat it as charging. No
    capture settles it, so it is an option (default: the reference driver's reading).
    """
    for ident, data in frames.items():
        if ident not in KNOWN_IDS:
            raise FrameError(f"JK CAN: unknown id 0x{ident:X}")
        _check(ident, data)
    if not frames:
        raise FrameError("JK CAN: no JK frame")
    sample = Sample()
    extra: dict[str, Any] = {}
    if (d := frames.get(BATT_ST)) is not None:
        amps = round(_u16(d, 2) * 0.1 - CURRENT_OFFSET, 1)
        sample.voltage = round(_u16(d, 0) * 0.1, 1)
        sample.current = amps if charge_positive else -amps
        if d[4] > 100:
            raise FrameError(f"JK CAN: SoC {d[4]} % is impossible")
        sample.soc = float(d[4])
        if len(d) >= 8:
            extra["discharge_time_h"] = _u16(d, 6)
    if (d := frames.get(CELL_VOLT)) is not None:
        sample.cell_voltage_max, sample.cell_voltage_max_id = _u16(d, 0) / 1000, d[2] or None
        sample.cell_voltage_min, sample.cell_voltage_min_id = _u16(d, 3) / 1000, d[5] or None
    if (d := frames.get(CELL_TEMP)) is not None:
        extra.update(max_temperature=float(d[0] - TEMP_OFFSET), max_temperature_no=d[1],
                     min_temperature=float(d[2] - TEMP_OFFSET), min_temperature_no=d[3],
                     average_temperature=float(d[4] - TEMP_OFFSET))
        # v1 names only the extremes; they are real sensor readings, so they stand in for the
        # sensor list (one entry when both are the same sensor).
        temps = [float(d[2] - TEMP_OFFSET)]
        if d[1] != d[3]:
            temps.append(float(d[0] - TEMP_OFFSET))
        sample.temperatures = temps
    if (d := frames.get(ALM_INFO)) is not None:
        word = int.from_bytes(d[:4], "little")
        sample.alarms = can_alarms(word)
        extra["alarm_word"] = word
    _decode_v2(frames, sample, extra)
    sample.extra = extra or None
    return sample.fill_derived()


def _decode_v2(frames: Mapping[int, bytes], sample: Sample, extra: dict[str, Any]) -> None:
    if (d := frames.get(BATT_ST2)) is not None:
        sample.remaining_ah = _u16(d, 0) / 10
        sample.capacity_ah = _u16(d, 2) / 10 or None
        extra["total_ah_field"] = _u16(d, 4) / 10
        sample.cycles = _u16(d, 6)
    if (d := frames.get(ALL_TEMP)) is not None:
        sensors = [d[1], d[2], *d[4:6]]
        temps = [float(t - TEMP_OFFSET) for t in sensors if t]
        if temps:
            sample.temperatures = temps
        sample.mosfet_temperature = float(d[3] - TEMP_OFFSET) if d[3] else None
    if (d := frames.get(SWITCH_STATE)) is not None:
        sample.charge_fet = bool(d[0] & 1)
        sample.discharge_fet = bool(d[0] & 2)
        extra["balancing"] = bool(d[0] & 4)
    cells: list[float] = []
    for ident in CELL_FRAMES:
        d = frames.get(ident)
        if d is None:
            break  # a gap would misplace the following cells: stop at the first missing frame
        block = [_u16(d, 2 * i) for i in range(4)]
        if max(block) > MAX_CELL_MV:
            raise FrameError(f"JK CAN: cell voltage {max(block)} mV is impossible")
        cells += [mv / 1000 for mv in block if mv]
        if 0 in block:
            break
    if cells:
        sample.cell_voltages = cells
        if sample.voltage is None:
            sample.voltage = round(sum(cells), 3)
        if "balancing" in extra:
            flags = [False] * len(cells)
            if extra["balancing"]:
                flags[cells.index(max(cells))] = flags[cells.index(min(cells))] = True
            sample.cell_balancing = flags


def cache_frames(frames: Iterable[CanFrame], address: int = 0) -> dict[int, bytes]:
    """Latest data per normalised id; frames of other devices are ignored."""
    out: dict[int, bytes] = {}
    for frame in frames:
        ident = normalise(frame, address)
        if ident is not None:
            out[ident] = frame.data
    return out


def decode(frames: Any) -> Sample:
    """``bmshost decode`` entry point: CanFrame objects (device address 0)."""
    items = list(frames)
    if not all(isinstance(f, CanFrame) for f in items):
        raise FrameError("JK CAN: expected CAN frames (ID#DATA)")
    cache = cache_frames(items)
    if not cache:
        raise FrameError("JK CAN: none of the frames is a JK id")
    return decode_cache(cache)
