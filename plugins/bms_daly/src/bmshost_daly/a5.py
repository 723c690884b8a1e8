"""Daly "A5" protocol (UART/RS485, A5 frames over BLE, and the payloads Daly CAN carries).

Sans-I/O: request builders, a framer, frame validation and one decoder per data id turning the
8 data bytes into a partial ``Sample``. Every frame is 13 bytes:
``A5 | address | data id | 08 | 8 data bytes | SUM8``. Spec: protocols-main.md §2.1.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence

from bmshost.errors import FrameError
from bmshost.model import Sample
from bmshost_daly.options import decode_current

START = 0xA5
FRAME_LEN = 13
DATA_LEN = 8

# Data ids (commands).
RATED = 0x50
DETAILS = 0x53
BATTERY_CODE = 0x57
SOC_PACK = 0x90
CELL_MINMAX = 0x91
TEMP_MINMAX = 0x92
MOS_CAPACITY = 0x93
STATUS = 0x94
CELL_VOLTAGES = 0x95
CELL_TEMPS = 0x96
BALANCE = 0x97
FAILURES = 0x98
SET_SOC = 0x21
DISCHARGE_MOS = 0xD9
CHARGE_MOS = 0xDA

READ_IDS = frozenset(
    {
        RATED,
        DETAILS,
        BATTERY_CODE,
        SOC_PACK,
        CELL_MINMAX,
        TEMP_MINMAX,
        MOS_CAPACITY,
        STATUS,
        CELL_VOLTAGES,
        CELL_TEMPS,
        BALANCE,
        FAILURES,
    }
)
MULTI_FRAME_IDS = frozenset({CELL_VOLTAGES, CELL_TEMPS, BATTERY_CODE})
CELLS_PER_FRAME = 3
TEMPS_PER_FRAME = 7
MAX_CELLS = 48
MAX_TEMPS = 21
CODE_FRAMES = 5
TEMP_OFFSET = 40  # °C + 40 encoding


def sum8(data: bytes) -> int:
    return sum(data) & 0xFF


def host_address_for(board: int | None) -> int:
    """Host address that addresses board ``board`` (1..16) on a shared RS485 bus."""
    return 0x40 if board is None else 0x3F + board


def build_frame(address: int, data_id: int, data: bytes = bytes(DATA_LEN)) -> bytes:
    if len(data) != DATA_LEN:
        raise ValueError("A5 data field is 8 bytes")
    head = bytes((START, address & 0xFF, data_id & 0xFF, DATA_LEN)) + data
    return head + bytes((sum8(head),))


def build_request(host_address: int, data_id: int) -> bytes:
    return build_frame(host_address, data_id)


def build_set_soc(host_address: int, soc: float, when: dt.datetime) -> bytes:
    """0x21: date (year - 2000, month, day, h, m, s) + SoC x 10 (u16 BE)."""
    value = round(soc * 10)
    if not 0 <= value <= 1000:
        raise ValueError(f"SoC {soc} % is outside 0..100 %")
    stamp = bytes((when.year - 2000, when.month, when.day, when.hour, when.minute, when.second))
    return build_frame(host_address, SET_SOC, stamp + value.to_bytes(2, "big"))


def build_switch(host_address: int, data_id: int, on: bool) -> bytes:
    """0xD9 (discharge MOS) / 0xDA (charge MOS): data byte 0 = 1 on, 0 off."""
    return build_frame(host_address, data_id, bytes((1 if on else 0,)) + bytes(DATA_LEN - 1))


def framer(buf: bytes) -> tuple[bytes | None, int]:
    """Find the first 13-byte frame starting with A5 and a length byte 08; skip junk before it.

    The checksum is checked by ``parse_frame`` (so a corrupt frame is reported, not silently
    resynchronised into a wrong one)."""
    i = 0
    n = len(buf)
    while i < n:
        if buf[i] != START:
            i += 1
            continue
        if n - i < 4:
            return None, i
        if buf[i + 3] != DATA_LEN:
            i += 1
            continue
        if n - i < FRAME_LEN:
            return None, i
        return bytes(buf[i : i + FRAME_LEN]), i + FRAME_LEN
    return None, n


def parse_frame(frame: bytes) -> tuple[int, int, bytes]:
    """Validate one frame and return (address, data id, 8 data bytes)."""
    if len(frame) != FRAME_LEN:
        raise FrameError(f"Daly frame must be {FRAME_LEN} bytes, got {len(frame)}")
    if frame[0] != START:
        raise FrameError(f"Daly frame must start with A5, got {frame[0]:02X}")
    if frame[3] != DATA_LEN:
        raise FrameError(f"Daly frame length byte must be 08, got {frame[3]:02X}")
    if sum8(frame[:12]) != frame[12]:
        raise FrameError(f"Daly frame checksum {frame[12]:02X} != {sum8(frame[:12]):02X}")
    return frame[1], frame[2], bytes(frame[4:12])


def recognise(frame: bytes) -> bool:
    try:
        parse_frame(frame)
    except FrameError:
        return False
    return True


def _u16(d: bytes, o: int) -> int:
    return int.from_bytes(d[o : o + 2], "big")


def _u32(d: bytes, o: int) -> int:
    return int.from_bytes(d[o : o + 4], "big")


# -- single-frame decoders -------------------------------------------------------------------------


def decode_soc_pack(d: bytes, below_is_charge: bool) -> Sample:
    raw = _u16(d, 4)
    return Sample(
        voltage=round(_u16(d, 0) / 10, 1),
        current=decode_current(raw, below_is_charge),
        soc=round(_u16(d, 6) / 10, 1),
        extra={"current_raw": raw},
    )


def decode_cell_minmax(d: bytes) -> Sample:
    # cell numbers are 1-based; 0 would be "no cell"
    return Sample(
        cell_voltage_max=_u16(d, 0) / 1000,
        cell_voltage_max_id=d[2] or None,
        cell_voltage_min=_u16(d, 3) / 1000,
        cell_voltage_min_id=d[5] or None,
    )


def decode_temp_minmax(d: bytes) -> Sample:
    """Min/max temperature. The sensor numbers let a 1- or 2-sensor pack give its full list."""
    t_max, n_max, t_min, n_min = d[0] - TEMP_OFFSET, d[1], d[2] - TEMP_OFFSET, d[3]
    by_sensor = {n_min: float(t_min), n_max: float(t_max)}
    return Sample(
        extra={
            "max_temperature": t_max,
            "max_sensor": n_max,
            "min_temperature": t_min,
            "min_sensor": n_min,
            "minmax_temperatures": [by_sensor[k] for k in sorted(by_sensor)],
        },
    )


def decode_mos_capacity(d: bytes) -> Sample:
    if d[1] > 1 or d[2] > 1:
        raise FrameError(f"Daly 0x93: MOS states must be 0/1, got {d[1]}/{d[2]}")
    return Sample(
        charge_fet=bool(d[1]),
        discharge_fet=bool(d[2]),
        remaining_ah=round(_u32(d, 4) / 1000, 3),
        extra={
            "state": ("idle", "charge", "discharge")[d[0]] if d[0] < 3 else d[0],
            "bms_life": d[3],
        },
    )


def decode_status(d: bytes) -> Sample:
    cells, temps = d[0], d[1]
    if cells > MAX_CELLS or temps > MAX_TEMPS:
        raise FrameError(f"Daly 0x94: implausible counts ({cells} cells, {temps} sensors)")
    return Sample(
        cycles=_u16(d, 5),
        extra={
            "cell_count": cells,
            "temp_sensor_count": temps,
            "charger_connected": bool(d[2]),
            "load_connected": bool(d[3]),
            "dio_bits": d[4],
        },
    )


def decode_rated(d: bytes) -> Sample:
    return Sample(
        capacity_ah=round(_u32(d, 0) / 1000, 3), extra={"nominal_cell_voltage": _u32(d, 4) / 1000}
    )


def decode_details(d: bytes) -> Sample:
    try:
        date = dt.date(2000 + d[2], d[3], d[4]).isoformat()
    except ValueError:
        return Sample()  # unset production date: the BMS simply does not say
    return Sample(production_date=date)


def decode_balance(d: bytes) -> Sample:
    # The bit order is disputed between sources (spec §7.9): keep the raw bits only.
    return Sample(extra={"balance_bits": d[:6].hex()})


# (byte, bit, alarm name, level): L1 bits are warnings, L2 bits alarms (spec §2.1, 0x98).
_FAILURE_TABLE: tuple[tuple[int, int, str, int], ...] = (
    (0, 0, "high_cell_voltage", 1),
    (0, 1, "high_cell_voltage", 2),
    (0, 2, "low_cell_voltage", 1),
    (0, 3, "low_cell_voltage", 2),
    (0, 4, "high_voltage", 1),
    (0, 5, "high_voltage", 2),
    (0, 6, "low_voltage", 1),
    (0, 7, "low_voltage", 2),
    (1, 0, "high_charge_temperature", 1),
    (1, 1, "high_charge_temperature", 2),
    (1, 2, "low_charge_temperature", 1),
    (1, 3, "low_charge_temperature", 2),
    (1, 4, "high_temperature", 1),
    (1, 5, "high_temperature", 2),
    (1, 6, "low_temperature", 1),
    (1, 7, "low_temperature", 2),
    (2, 0, "high_charge_current", 1),
    (2, 1, "high_charge_current", 2),
    (2, 2, "high_discharge_current", 1),
    (2, 3, "high_discharge_current", 2),
    (2, 6, "low_soc", 1),
    (2, 7, "low_soc", 2),
    (3, 0, "cell_imbalance", 1),
    (3, 1, "cell_imbalance", 2),
    (6, 2, "high_current", 2),  # short circuit
    (6, 3, "low_voltage", 1),  # low voltage: charging forbidden
)
# Hardware faults: MOS sensors/adhesion/open circuit, AFE, EEPROM, RTC, ..., current module.
_FAULT_BITS = ((4, 0x3F), (5, 0xFF), (6, 0x03))


def decode_failures(d: bytes) -> Sample:
    alarms: dict[str, int] = {}
    for byte, bit, name, level in _FAILURE_TABLE:
        hit = level if d[byte] >> bit & 1 else 0
        alarms[name] = max(alarms.get(name, 0), hit)
    alarms["internal_failure"] = 2 if any(d[b] & m for b, m in _FAULT_BITS) else 0
    return Sample(alarms=alarms, extra={"failure_bytes": d[:7].hex(), "fault_code": d[7]})


# -- multi-frame decoders --------------------------------------------------------------------------


def _numbered(frames: Iterable[bytes], limit: int) -> dict[int, bytes]:
    """Index frame payloads by their 1-based frame number (byte 0); reject 0 and > limit."""
    out: dict[int, bytes] = {}
    for d in frames:
        if not 1 <= d[0] <= limit:
            raise FrameError(f"Daly multi-frame reply: frame number {d[0]} outside 1..{limit}")
        out[d[0]] = d
    return out


def decode_cells(frames: Sequence[bytes], cell_count: int | None) -> Sample:
    """0x95: three u16 mV per frame. Without a cell count (decode CLI) trailing empty slots go."""
    by_no = _numbered(frames, MAX_CELLS // CELLS_PER_FRAME)
    if cell_count is None:
        slots: list[int] = []
        for no in range(1, max(by_no, default=0) + 1):
            d = by_no.get(no)
            if d is None:
                raise FrameError(f"Daly 0x95: cell frame {no} missing")
            slots += [_u16(d, 1 + 2 * k) for k in range(CELLS_PER_FRAME)]
        while slots and slots[-1] == 0:
            slots.pop()
        return Sample(cell_voltages=[v / 1000 for v in slots])
    cells: list[float] = []
    for i in range(cell_count):
        no, k = divmod(i, CELLS_PER_FRAME)
        d = by_no.get(no + 1)
        if d is None:
            raise FrameError(f"Daly 0x95: cell frame {no + 1} missing for {cell_count} cells")
        cells.append(_u16(d, 1 + 2 * k) / 1000)
    return Sample(cell_voltages=cells)


def decode_temps(frames: Sequence[bytes], sensor_count: int | None) -> Sample:
    """0x96: seven sensors per frame. Without a sensor count trailing unused slots (raw 0) go."""
    by_no = _numbered(frames, MAX_TEMPS // TEMPS_PER_FRAME)
    if sensor_count is None:
        raw: list[int] = []
        for no in range(1, max(by_no, default=0) + 1):
            d = by_no.get(no)
            if d is None:
                raise FrameError(f"Daly 0x96: temperature frame {no} missing")
            raw += list(d[1:8])
        while raw and raw[-1] == 0:
            raw.pop()
        return Sample(temperatures=[float(t - TEMP_OFFSET) for t in raw])
    temps: list[float] = []
    for i in range(sensor_count):
        no, k = divmod(i, TEMPS_PER_FRAME)
        d = by_no.get(no + 1)
        if d is None:
            raise FrameError(f"Daly 0x96: temperature frame {no + 1} missing")
        temps.append(float(d[1 + k] - TEMP_OFFSET))
    return Sample(temperatures=temps)


def decode_battery_code(frames: Sequence[bytes]) -> Sample:
    by_no = _numbered(frames, CODE_FRAMES)
    text = b"".join(by_no[no][1:] for no in sorted(by_no))
    code = text.split(b"\x00")[0].decode("ascii", "replace").strip()
    return Sample(serial_number=code or None)


# -- merging one read ------------------------------------------------------------------------------

SingleDecoder = Callable[[bytes], Sample]
_SINGLE: dict[int, SingleDecoder] = {
    CELL_MINMAX: decode_cell_minmax,
    TEMP_MINMAX: decode_temp_minmax,
    MOS_CAPACITY: decode_mos_capacity,
    STATUS: decode_status,
    RATED: decode_rated,
    DETAILS: decode_details,
    BALANCE: decode_balance,
    FAILURES: decode_failures,
}


def decode_payloads(
    payloads: Sequence[tuple[int, bytes]],
    below_is_charge: bool = True,
    cell_count: int | None = None,
    sensor_count: int | None = None,
) -> Sample:
    """Merge (data id, 8 data bytes) pairs of one read into one sample."""
    groups: dict[int, list[bytes]] = {}
    for data_id, data in payloads:
        if len(data) != DATA_LEN:
            raise FrameError(f"Daly data field must be 8 bytes, got {len(data)}")
        groups.setdefault(data_id, []).append(data)
    status = groups.get(STATUS)
    if status:
        if cell_count is None:
            cell_count = status[-1][0] or None
        if sensor_count is None:
            sensor_count = status[-1][1] or None
    sample = Sample()
    for data_id, datas in groups.items():
        if data_id == SOC_PACK:
            part = decode_soc_pack(datas[-1], below_is_charge)
        elif data_id == CELL_VOLTAGES:
            part = decode_cells(datas, cell_count)
        elif data_id == CELL_TEMPS:
            part = decode_temps(datas, sensor_count)
        elif data_id == BATTERY_CODE:
            part = decode_battery_code(datas)
        elif data_id in _SINGLE:
            part = _SINGLE[data_id](datas[-1])
        elif data_id in (SET_SOC, CHARGE_MOS, DISCHARGE_MOS):
            part = Sample(extra={f"reply_{data_id:02x}": datas[-1][0]})
        else:
            raise FrameError(f"Daly: unknown data id {data_id:02X}")
        sample = sample.merge(part)
    return finish(sample)


def finish(sample: Sample) -> Sample:
    """Use the min/max temperatures as the sensor list only when the full list was not read."""
    extra = sample.extra
    if extra and "minmax_temperatures" in extra:
        if sample.temperatures is None:
            sample.temperatures = list(extra["minmax_temperatures"])
        del extra["minmax_temperatures"]
    return sample.fill_derived()


def decode(frames: Sequence[bytes], *, current_sign: str = "auto") -> Sample:
    """Decoder for ``bmshost decode``: raw A5 reply frames of one read → one sample."""
    from bmshost_daly.options import charge_below_offset

    payloads: list[tuple[int, bytes]] = []
    address: int | None = None
    for frame in frames:
        if not isinstance(frame, bytes | bytearray):
            raise FrameError("Daly A5 decoder takes byte frames")
        address, data_id, data = parse_frame(bytes(frame))
        payloads.append((data_id, data))
    sample = decode_payloads(payloads, charge_below_offset(current_sign, "a5"))
    if address is not None and address < 0x40:
        sample.address = address
    return sample
