"""JBD UP-series (UP16S) "modbus" frames, sans-I/O.

``ADDR | FUNC | START u16 | END u16 | LEN u16 | payload[LEN] | CRC-16/MODBUS (low byte first)``,
all big-endian. Functions: 0x78 read, 0x79 write, 0x45 the master's own (non-aggregated) status.
Address 1 is the master; slaves 2..n are reached through it on one RS485 cable.

Every parse function raises only ``FrameError`` for bad input.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from bmshost.checksums import crc16_modbus
from bmshost.errors import FrameError
from bmshost.model import Sample

READ = 0x78
WRITE = 0x79
OWN_STATUS = 0x45
FUNCTIONS = (READ, WRITE, OWN_STATUS)
HEADER = 8  # addr, func, start, end, len
MAX_PAYLOAD = 512

PACK_STATUS = (0x1000, 0x10A0)
PACK_PARAMS_1 = (0x1C00, 0x1CA0)
PACK_PARAMS_2 = (0x2006, 0x2018)
PRODUCT_INFO = (0x2810, 0x283C)
OWN_STATUS_RANGE = (0x0000, 0x0054)
SET_SOC = (0x2006, 0x2008)
SOC_MAGIC = b"\x11\x4a\x42\x44"
CURRENT_OFFSET = 300_000  # 10 mA units

FAULTS: tuple[str, ...] = (
    "cell_overvoltage",
    "cell_undervoltage",
    "pack_overvoltage",
    "pack_undervoltage",
    "charge_overcurrent_1",
    "charge_overcurrent_2",
    "discharge_overcurrent_1",
    "discharge_overcurrent_2",
    "charge_overtemp",
    "charge_undertemp",
    "discharge_overtemp",
    "discharge_undertemp",
    "mos_overtemp",
    "ambient_overtemp",
    "ambient_undertemp",
    "cell_delta",
    "temp_delta",
    "soc_low",
    "short_circuit",
    "cell_offline",
    "temp_sensor_failure",
    "charge_mos_fault",
    "discharge_mos_fault",
    "current_limit_anomaly",
    "aerosol",
    "full_charge_protection",
    "afe_comm",
    "reverse_polarity",
)
WARNINGS: tuple[str, ...] = (
    "cell_overvoltage",
    "cell_undervoltage",
    "pack_overvoltage",
    "pack_undervoltage",
    "charge_overcurrent",
    "discharge_overcurrent",
    "charge_overtemp",
    "charge_undertemp",
    "discharge_overtemp",
    "discharge_undertemp",
    "mos_overtemp",
    "ambient_overtemp",
    "ambient_undertemp",
    "cell_delta",
    "temp_delta",
    "soc_low",
    "eeprom",
    "rtc",
    "full_charge_protection",
)
# Fault/alarm name → Venus alarm. Faults are level 2 (the BMS acted), alarm bits level 1.
VENUS: dict[str, str] = {
    "cell_overvoltage": "high_cell_voltage",
    "cell_undervoltage": "low_cell_voltage",
    "pack_overvoltage": "high_voltage",
    "pack_undervoltage": "low_voltage",
    "charge_overcurrent": "high_charge_current",
    "charge_overcurrent_1": "high_charge_current",
    "charge_overcurrent_2": "high_charge_current",
    "discharge_overcurrent": "high_discharge_current",
    "discharge_overcurrent_1": "high_discharge_current",
    "discharge_overcurrent_2": "high_discharge_current",
    "short_circuit": "high_discharge_current",
    "charge_overtemp": "high_charge_temperature",
    "charge_undertemp": "low_charge_temperature",
    "discharge_overtemp": "high_temperature",
    "discharge_undertemp": "low_temperature",
    "ambient_overtemp": "high_temperature",
    "ambient_undertemp": "low_temperature",
    "mos_overtemp": "high_internal_temperature",
    "cell_delta": "cell_imbalance",
    "soc_low": "low_soc",
    "cell_offline": "internal_failure",
    "temp_sensor_failure": "internal_failure",
    "charge_mos_fault": "internal_failure",
    "discharge_mos_fault": "internal_failure",
    "afe_comm": "internal_failure",
    "eeprom": "internal_failure",
}


def build(address: int, function: int, start: int, end: int, payload: bytes = b"") -> bytes:
    if not 0 <= address <= 0xFF or function not in FUNCTIONS or len(payload) > MAX_PAYLOAD:
        raise ValueError("UP16S address, function or payload out of range")
    body = struct.pack(">BBHHH", address, function, start, end, len(payload)) + payload
    return body + struct.pack("<H", crc16_modbus(body))


def read_request(address: int, span: tuple[int, int]) -> bytes:
    return build(address, READ, *span)


def own_status_request(address: int = 1) -> bytes:
    return build(address, OWN_STATUS, *OWN_STATUS_RANGE)


def set_soc_request(address: int, soc: float) -> bytes:
    if not 0.0 <= soc <= 100.0:
        raise ValueError(f"SoC {soc} % is outside 0..100")
    return build(address, WRITE, *SET_SOC, SOC_MAGIC + struct.pack(">H", round(soc * 100)))


def find_frame(buf: bytes) -> tuple[bytes | None, int]:
    """Framer: a frame is ``LEN + 10`` bytes from an address byte followed by a known function.

    Candidates with a bad CRC are skipped one byte at a time, so noise cannot wedge the reader.
    """
    pos = 0
    while len(buf) - pos >= 2:
        if buf[pos + 1] not in FUNCTIONS:
            pos += 1
            continue
        if len(buf) - pos < HEADER:
            return None, pos
        length = struct.unpack_from(">H", buf, pos + 6)[0]
        if length > MAX_PAYLOAD:
            pos += 1
            continue
        total = HEADER + length + 2
        if len(buf) - pos < total:
            return None, pos
        frame = bytes(buf[pos : pos + total])
        if struct.unpack("<H", frame[-2:])[0] == crc16_modbus(frame[:-2]):
            return frame, pos + total
        pos += 1
    return None, pos


def split(frame: bytes) -> tuple[int, int, int, bytes]:
    """Validate a frame; return ``(address, function, start, payload)``."""
    if len(frame) < HEADER + 2:
        raise FrameError(f"UP16S frame too short ({len(frame)} bytes)")
    address, function, start, _end, length = struct.unpack_from(">BBHHH", frame)
    if function not in FUNCTIONS:
        raise FrameError(f"UP16S unknown function 0x{function:02x}")
    if len(frame) != HEADER + length + 2:
        raise FrameError(f"UP16S frame is {len(frame)} bytes but announces {length} payload bytes")
    if struct.unpack("<H", frame[-2:])[0] != crc16_modbus(frame[:-2]):
        raise FrameError("UP16S CRC mismatch")
    return address, function, start, bytes(frame[HEADER:-2])


def recognise(frame: bytes) -> bool:
    try:
        split(frame)
    except FrameError:
        return False
    return True


def _temp(raw: int) -> float:
    return round((raw - 500) / 10, 1)


def _ascii(data: bytes) -> str:
    return data.split(b"\0", 1)[0].decode("ascii", errors="replace").strip()


def _firmware(raw: int) -> str:
    # The master gives major.minor (0x0C04 → 12.4); slaves relayed by it only the major number.
    return f"{raw >> 8}.{raw & 0xFF}" if raw > 0xFF else str(raw)


def _flags(bits: int, names: Sequence[str]) -> list[str]:
    return [name for i, name in enumerate(names) if bits >> i & 1]


def parse_pack_status(payload: bytes) -> Sample:
    """Pack status (0x1000..0x10A0). On the master the limits are bank-wide aggregates."""
    if len(payload) < 68:
        raise FrameError(f"UP16S pack status too short ({len(payload)} bytes, need 68)")
    voltage, _, current_raw, soc, remaining, full, rated = struct.unpack_from(
        ">HHIHHHH", payload, 0
    )
    mos_t, amb_t, op_status, soh, faults, warnings, fets, conn, cycles = struct.unpack_from(
        ">HHHHIIHHH", payload, 16
    )
    (
        max_no,
        max_mv,
        min_no,
        min_mv,
        avg_mv,
        tmax_no,
        tmax,
        tmin_no,
        tmin,
        tavg,
        cvl,
        ccl,
        dvl,
        dcl,
        cells,
    ) = struct.unpack_from(">15H", payload, 38)
    if cells > 32:
        raise FrameError(f"UP16S pack status announces {cells} cells (at most 32)")
    pos = 68
    if len(payload) < pos + 2 * cells + 2:
        raise FrameError(f"UP16S pack status too short for {cells} cells")
    cell_mv = struct.unpack_from(f">{cells}H", payload, pos)
    pos += 2 * cells
    ntc = struct.unpack_from(">H", payload, pos)[0]
    pos += 2
    if ntc > 16 or len(payload) < pos + 2 * ntc + 6:
        raise FrameError(f"UP16S pack status too short for {ntc} temperatures")
    temps = [_temp(t) for t in struct.unpack_from(f">{ntc}H", payload, pos)]
    pos += 2 * ntc
    _, balance, firmware = struct.unpack_from(">HHH", payload, pos)
    pos += 6
    serial = _ascii(payload[pos : pos + 30]) if len(payload) >= pos + 30 else None
    alarms: dict[str, int] = {}
    for names, bits, level in ((WARNINGS, warnings, 1), (FAULTS, faults, 2)):
        for i, name in enumerate(names):
            venus = VENUS.get(name)
            if venus is not None:
                alarms[venus] = max(alarms.get(venus, 0), level if bits >> i & 1 else 0)
    return Sample(
        voltage=voltage / 100,
        current=(current_raw - CURRENT_OFFSET) / 100,
        soc=soc / 100,
        soh=float(soh),
        remaining_ah=remaining / 100,
        capacity_ah=full / 100,
        cycles=cycles,
        cell_voltages=[mv / 1000 for mv in cell_mv],
        cell_balancing=[bool(balance >> i & 1) for i in range(cells)],
        cell_voltage_max=max_mv / 1000,
        cell_voltage_min=min_mv / 1000,
        temperatures=temps,
        mosfet_temperature=_temp(mos_t),
        discharge_fet=bool(fets & 1),
        charge_fet=bool(fets & 2),
        bms_charge_voltage_limit=cvl / 10,
        bms_charge_current_limit=ccl / 10,
        bms_discharge_voltage_limit=dvl / 10,
        bms_discharge_current_limit=dcl / 10,
        alarms=alarms,
        firmware_version=_firmware(firmware),
        serial_number=serial or None,
        extra={
            "rated_capacity_ah": rated / 100,
            "ambient_temperature": _temp(amb_t),
            "operation_status": op_status,
            "fault_flags": faults,
            "alarm_flags": warnings,
            "faults": _flags(faults, FAULTS),
            "warnings": _flags(warnings, WARNINGS),
            "connection_flags": conn,
            "max_cell": max_no,  # numbering base undocumented: kept raw, not as cell ids
            "min_cell": min_no,
            "avg_cell_voltage": avg_mv / 1000,
            "max_temperature_sensor": tmax_no,
            "max_temperature": _temp(tmax),
            "min_temperature_sensor": tmin_no,
            "min_temperature": _temp(tmin),
            "avg_temperature": _temp(tavg),
            "balance_bits": balance,
        },
    )


def _date(payload: bytes, offset: int) -> str | None:
    year, month, day = struct.unpack_from(">HHH", payload, offset)
    if not (2000 <= year <= 2099 and 1 <= month <= 12 and 1 <= day <= 31):
        return None
    return f"{year:04d}-{month:02d}-{day:02d}"


def parse_pack_params_1(payload: bytes) -> Sample:
    """Model + serial of the BMS board, its date, the pack serial and the pack's date."""
    if len(payload) < 88:
        raise FrameError(f"UP16S pack params too short ({len(payload)} bytes, need 88)")
    bms_id = _ascii(payload[16:46])
    pack_serial = _ascii(payload[52:82])
    return Sample(
        serial_number=pack_serial or None,
        production_date=_date(payload, 82),
        extra={"bms_model_and_sn": bms_id, "bms_date": _date(payload, 46)},
    )


def parse_pack_params_2(payload: bytes) -> Sample:
    """High-resolution SoC and lifetime charge/discharge totals (firmware ≥ ~12)."""
    if len(payload) < 18:
        raise FrameError(f"UP16S pack params 2 too short ({len(payload)} bytes, need 18)")
    soc = struct.unpack_from(">H", payload, 0)[0]
    charged, discharged = struct.unpack_from(">II", payload, 10)
    if soc > 10000:
        raise FrameError(f"UP16S SoC {soc / 100} % is out of range")
    # Kept apart from ``soc``: it comes on the slow schedule and must not overwrite fresher values.
    return Sample(
        extra={
            "soc_precise": soc / 100,
            "total_ah_charged": charged / 10,
            "total_ah_drawn": discharged / 10,
        }
    )


def parse_product_info(payload: bytes) -> Sample:
    if len(payload) < 44:
        raise FrameError(f"UP16S product info too short ({len(payload)} bytes, need 44)")
    model_id, hw, major, minor, patch = struct.unpack_from(">5H", payload, 0)
    model = _ascii(payload[12:28])
    return Sample(
        model=model or None,
        hardware_version=str(hw),
        firmware_version=f"{major}.{minor}.{patch}",
        extra={"model_id": model_id, "project_code": _ascii(payload[28:44])},
    )


def parse_own_status(payload: bytes) -> tuple[float, float]:
    """Function 0x45: the master's own charge/discharge current limits (A)."""
    if len(payload) < 100:
        raise FrameError(f"UP16S own status too short ({len(payload)} bytes, need 100)")
    ccl, dcl = struct.unpack_from(">HH", payload, 96)
    return ccl / 10, dcl / 10


PARSERS = {
    PACK_STATUS[0]: parse_pack_status,
    PACK_PARAMS_1[0]: parse_pack_params_1,
    PACK_PARAMS_2[0]: parse_pack_params_2,
    PRODUCT_INFO[0]: parse_product_info,
}


def parse_response(frame: bytes) -> Sample:
    """Any known read reply → a partial sample (with the pack's ``address``)."""
    address, function, start, payload = split(frame)
    if function == OWN_STATUS:
        ccl, dcl = parse_own_status(payload)
        return Sample(
            address=address,
            extra={"own_charge_current_limit": ccl, "own_discharge_current_limit": dcl},
        )
    if function == WRITE:
        if payload:
            raise FrameError("UP16S write acknowledgement must have no payload")
        return Sample(address=address)
    parser = PARSERS.get(start)
    if parser is None:
        raise FrameError(f"UP16S register block 0x{start:04x} has no parser")
    return parser(payload).merge(Sample(address=address))


def decode(frames: Sequence[bytes]) -> Sample:
    """``bmshost decode``: the replies of one read → one sample."""
    sample = Sample()
    for frame in frames:
        if not isinstance(frame, bytes | bytearray):
            raise FrameError("UP16S frames are bytes, not CAN frames")
        sample = sample.merge(parse_response(bytes(frame)))
    return sample.fill_derived()
