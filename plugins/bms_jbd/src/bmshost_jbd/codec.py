"""JBD / LLT "general protocol" frames (``DD .. 77``), sans-I/O.

Request:  ``DD | A5 read / 5A write | reg | len | data | chk_hi chk_lo | 77``
Response: ``DD | reg | status | len | data | chk_hi chk_lo | 77`` (status 0 ok, 0x80 error)
The checksum is the two's complement of the byte sum over ``reg,len,data`` (requests) or
``status,len,data`` (responses). The same frames travel over serial and BLE.

Every parse function raises only ``FrameError`` for bad input.
"""

from __future__ import annotations

import datetime as _dt
import struct

from bmshost.errors import FrameError
from bmshost.model import Sample

START = 0xDD
END = 0x77
READ = 0xA5
WRITE = 0x5A

REG_BASIC = 0x03
REG_CELLS = 0x04
REG_HARDWARE = 0x05
REG_ERROR_COUNTS = 0xAA
REG_MOS_CONTROL = 0xE1
REG_FACTORY_ENTER = 0x00
REG_FACTORY_EXIT = 0x01
REG_CAP_100 = 0x12
REG_FUNCTION_CONFIG = 0x2D
FUNCTION_BALANCE_BIT = 1 << 2

FACTORY_MAGIC = b"\x56\x78"
EXIT_SAVE = b"\x28\x28"
EXIT_DISCARD = b"\x00\x00"

KELVIN_OFFSET = 2731  # 0.1 K; the vendor's and aiobmsble's offset (dbus-serialbattery uses 273.15)

# Protection word bit → Venus alarm name (bit 11 AFE error and 12 software MOS lock are failures).
PROTECTION_ALARMS: dict[int, str] = {
    0: "high_cell_voltage",
    1: "low_cell_voltage",
    2: "high_voltage",
    3: "low_voltage",
    4: "high_charge_temperature",
    5: "low_charge_temperature",
    6: "high_temperature",
    7: "low_temperature",
    8: "high_charge_current",
    9: "high_discharge_current",
    10: "high_discharge_current",  # short circuit
    11: "internal_failure",
    12: "internal_failure",
}
PROTECTION_NAMES: tuple[str, ...] = (
    "cell_overvoltage",
    "cell_undervoltage",
    "pack_overvoltage",
    "pack_undervoltage",
    "charge_overtemp",
    "charge_undertemp",
    "discharge_overtemp",
    "discharge_undertemp",
    "charge_overcurrent",
    "discharge_overcurrent",
    "short_circuit",
    "afe_error",
    "software_mos_lock",
)
ERROR_COUNT_NAMES: tuple[str, ...] = (
    "short_circuit",
    "charge_overcurrent",
    "discharge_overcurrent",
    "cell_overvoltage",
    "cell_undervoltage",
    "charge_overtemp",
    "charge_undertemp",
    "discharge_overtemp",
    "discharge_undertemp",
    "pack_overvoltage",
    "pack_undervoltage",
)


def checksum(body: bytes) -> int:
    """Two's complement 16-bit of the byte sum (``body`` = reg/status, len, data)."""
    return (0x10000 - sum(body)) & 0xFFFF


def build_request(reg: int, data: bytes = b"", write: bool = False) -> bytes:
    if not 0 <= reg <= 0xFF or len(data) > 0xFF:
        raise ValueError("register or data length out of range")
    body = bytes((reg, len(data))) + data
    return bytes((START, WRITE if write else READ)) + body + struct.pack(">H", checksum(body)) + bytes((END,))


READ_BASIC = build_request(REG_BASIC)
READ_CELLS = build_request(REG_CELLS)
READ_HARDWARE = build_request(REG_HARDWARE)
READ_ERROR_COUNTS = build_request(REG_ERROR_COUNTS)


def mos_control(charge_off: bool, discharge_off: bool) -> bytes:
    """Software switch of the FETs (register 0xE1; bit0 = force charge off, bit1 = discharge)."""
    value = (1 if charge_off else 0) | (2 if discharge_off else 0)
    return build_request(REG_MOS_CONTROL, bytes((0, value)), write=True)


def write_register(reg: int, value: int) -> bytes:
    return build_request(reg, struct.pack(">H", value & 0xFFFF), write=True)


FACTORY_ENTER = build_request(REG_FACTORY_ENTER, FACTORY_MAGIC, write=True)
FACTORY_EXIT_SAVE = build_request(REG_FACTORY_EXIT, EXIT_SAVE, write=True)
FACTORY_EXIT_DISCARD = build_request(REG_FACTORY_EXIT, EXIT_DISCARD, write=True)


def find_frame(buf: bytes) -> tuple[bytes | None, int]:
    """Framer for ``StreamLink.read_frame``: skip junk before ``DD``, wait for ``len + 7`` bytes.

    A candidate whose end byte is not ``77`` is dropped one byte at a time (resynchronisation),
    so line noise cannot wedge the reader.
    """
    start = buf.find(START)
    if start < 0:
        return None, len(buf)
    if len(buf) - start < 4:
        return None, start
    total = buf[start + 3] + 7
    if len(buf) - start < total:
        return None, start
    frame = buf[start : start + total]
    if frame[-1] != END:
        return None, start + 1
    return bytes(frame), start + total


def is_request(frame: bytes) -> bool:
    return len(frame) >= 2 and frame[0] == START and frame[1] in (READ, WRITE)


def recognise(frame: bytes) -> bool:
    """A JBD response frame (for ``bmshost decode`` variant detection)."""
    return len(frame) >= 7 and frame[0] == START and frame[-1] == END and frame[2] in (0, 0x80)


def split_response(frame: bytes) -> tuple[int, bytes]:
    """Validate a response frame; return ``(register, data)``."""
    if len(frame) < 7:
        raise FrameError(f"JBD frame too short ({len(frame)} bytes)")
    if frame[0] != START or frame[-1] != END:
        raise FrameError("JBD frame must start with DD and end with 77")
    reg, status, length = frame[1], frame[2], frame[3]
    if len(frame) != length + 7:
        raise FrameError(f"JBD frame length {len(frame)} does not match its length byte {length}")
    body = frame[2 : 4 + length]
    expected = checksum(body)
    got = struct.unpack(">H", frame[4 + length : 6 + length])[0]
    if got != expected:
        raise FrameError(f"JBD checksum mismatch (got {got:04x}, expected {expected:04x})")
    if status != 0:
        raise FrameError(f"JBD error reply for register 0x{reg:02x} (status 0x{status:02x})")
    return reg, bytes(frame[4 : 4 + length])


def _date(raw: int) -> str | None:
    day, month, year = raw & 0x1F, (raw >> 5) & 0x0F, 2000 + (raw >> 9)
    try:
        return _dt.date(year, month, day).isoformat()
    except ValueError:
        return None


def parse_basic(data: bytes) -> Sample:
    """Register 0x03: pack values, FETs, protections, balance bits, NTCs."""
    if len(data) < 23:
        raise FrameError(f"JBD basic info too short ({len(data)} bytes, need 23)")
    (voltage, current, remaining, nominal, cycles, date, bal_lo, bal_hi, protection) = struct.unpack_from(
        ">HhHHHHHHH", data, 0
    )
    version, rsoc, fets, cell_count, ntc_count = data[18], data[19], data[20], data[21], data[22]
    if len(data) < 23 + 2 * ntc_count:
        raise FrameError(f"JBD basic info announces {ntc_count} NTCs but is {len(data)} bytes")
    if cell_count > 32:
        raise FrameError(f"JBD basic info announces {cell_count} cells (at most 32)")
    temps = [
        round((struct.unpack_from(">H", data, 23 + 2 * i)[0] - KELVIN_OFFSET) / 10, 1)
        for i in range(ntc_count)
    ]
    balance = bal_lo | (bal_hi << 16)
    alarms: dict[str, int] = {}
    for bit, name in PROTECTION_ALARMS.items():
        alarms[name] = max(alarms.get(name, 0), 2 if protection >> bit & 1 else 0)
    # With two or more NTCs the first one sits on the MOSFETs (dbus-serialbattery's convention).
    mosfet = temps[0] if ntc_count >= 2 else None
    battery_temps = temps[1:] if ntc_count >= 2 else temps
    return Sample(
        voltage=voltage / 100,
        current=current / 100,
        remaining_ah=remaining / 100,
        capacity_ah=nominal / 100,
        cycles=cycles,
        soc=float(rsoc),
        charge_fet=bool(fets & 1),
        discharge_fet=bool(fets & 2),
        cell_balancing=[bool(balance >> i & 1) for i in range(cell_count)] if cell_count else None,
        temperatures=battery_temps,
        mosfet_temperature=mosfet,
        alarms=alarms,
        firmware_version=f"{version >> 4}.{version & 0x0F}",
        production_date=_date(date),
        extra={
            "cell_count": cell_count,
            "protection_bits": protection,
            "balance_bits": balance,
            "protections": [n for i, n in enumerate(PROTECTION_NAMES) if protection >> i & 1],
        },
    )


def parse_cells(data: bytes) -> Sample:
    """Register 0x04: cell voltages, mV, big-endian."""
    if len(data) % 2:
        raise FrameError(f"JBD cell data has odd length {len(data)}")
    count = len(data) // 2
    return Sample(cell_voltages=[v / 1000 for v in struct.unpack(f">{count}H", data)])


def parse_hardware(data: bytes) -> Sample:
    """Register 0x05: ASCII model / hardware string."""
    text = data.decode("ascii", errors="replace").strip("\x00 ").strip()
    return Sample(hardware_version=text or None, model=text or None)


def parse_error_counts(data: bytes) -> Sample:
    """Register 0xAA: 11 protection-event counters (u16) and 2 unknown words."""
    if len(data) < 22:
        raise FrameError(f"JBD error counters too short ({len(data)} bytes, need 22)")
    counts = struct.unpack_from(">11H", data, 0)
    return Sample(extra={"error_counts": dict(zip(ERROR_COUNT_NAMES, counts, strict=True))})


PARSERS = {
    REG_BASIC: parse_basic,
    REG_CELLS: parse_cells,
    REG_HARDWARE: parse_hardware,
    REG_ERROR_COUNTS: parse_error_counts,
}


def parse_response(frame: bytes) -> Sample:
    """Validate and parse any known read reply; write acks give an empty sample."""
    return parse_data(*split_response(frame))


def parse_data(reg: int, data: bytes) -> Sample:
    """Parse the data of a validated reply for register ``reg``."""
    parser = PARSERS.get(reg)
    if parser is None:
        if not data:
            return Sample()  # write acknowledgement
        raise FrameError(f"JBD register 0x{reg:02x} has no parser")
    return parser(data)


def decode(frames: list[bytes] | tuple[bytes, ...]) -> Sample:
    """Merge the replies of one read into one sample (``bmshost decode``)."""
    sample = Sample()
    for frame in frames:
        if not isinstance(frame, bytes | bytearray):
            raise FrameError("JBD frames are bytes, not CAN frames")
        sample = sample.merge(parse_response(bytes(frame)))
    return sample.fill_derived()
