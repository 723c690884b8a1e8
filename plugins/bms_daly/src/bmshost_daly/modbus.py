"""CRC-16/MODBUS and the Daly BLE "D2" protocol (protocols-main.md §2.3 b).

Requests are Modbus RTU "read holding registers" with device id 0xD2:
``D2 03 <start BE> <count BE> <CRC lo hi>``; replies ``D2 03 <byte count> <data> <CRC lo hi>``.
"""

from __future__ import annotations

from collections.abc import Sequence

from bmshost.checksums import crc16_modbus as crc16_modbus  # re-exported: simulators use it
from bmshost.checksums import with_modbus_crc
from bmshost.errors import FrameError
from bmshost.model import Sample
from bmshost_daly.options import charge_below_offset, decode_current

DEVICE = 0xD2
READ = 0x03
STATUS_START = 0x0000
STATUS_COUNT = 0x50  # 80 registers: cells .. board temperature (esphome reads the same)
MIN_STATUS_COUNT = 0x3E  # the pack block ends with the balancing words at 0x3E/0x3F
VERSION_START = 0xA9
VERSION_COUNT = 0x20
TEMP_OFFSET = 40


def with_crc(body: bytes) -> bytes:
    return with_modbus_crc(body)


def build_read(start: int, count: int) -> bytes:
    return with_crc(bytes((DEVICE, READ)) + start.to_bytes(2, "big") + count.to_bytes(2, "big"))


def framer(buf: bytes) -> tuple[bytes | None, int]:
    """Reassemble notifications into one reply: data replies by byte count, exceptions 5 bytes."""
    i = 0
    n = len(buf)
    while i < n:
        if buf[i] != DEVICE:
            i += 1
            continue
        if n - i < 3:
            return None, i
        func = buf[i + 1]
        if func == READ | 0x80:
            size = 5
        elif func == READ:
            size = 3 + buf[i + 2] + 2
        else:
            i += 1
            continue
        if n - i < size:
            return None, i
        return bytes(buf[i : i + size]), i + size
    return None, n


def parse_reply(frame: bytes) -> list[int]:
    """Validate a D2 reply and return its registers."""
    if len(frame) < 5:
        raise FrameError(f"Daly D2 reply too short ({len(frame)} bytes)")
    if frame[0] != DEVICE:
        raise FrameError(f"Daly D2 reply from device {frame[0]:02X}, expected D2")
    if crc16_modbus(frame[:-2]) != int.from_bytes(frame[-2:], "little"):
        raise FrameError("Daly D2 reply: CRC mismatch")
    if frame[1] == READ | 0x80:
        raise FrameError(f"Daly D2 exception reply, code {frame[2]}")
    if frame[1] != READ:
        raise FrameError(f"Daly D2 reply: unexpected function {frame[1]:02X}")
    if frame[2] != len(frame) - 5 or frame[2] % 2:
        raise FrameError(f"Daly D2 reply: byte count {frame[2]} does not fit {len(frame)} bytes")
    data = frame[3:-2]
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def recognise(frame: bytes) -> bool:
    try:
        parse_reply(frame)
    except FrameError:
        return False
    return True


def decode_status(
    regs: Sequence[int], below_is_charge: bool = False, cell_slots: int = 32
) -> Sample:
    """Registers from 0x0000 → sample. ``cell_slots`` is 32 (48 on "p81" firmware)."""
    base = cell_slots  # the register after the last cell slot (0x20 for 32 slots)
    need = base + (MIN_STATUS_COUNT - 0x20)
    if len(regs) < need:
        raise FrameError(f"Daly D2 status needs {need} registers, got {len(regs)}")

    def r(offset: int) -> int:
        return regs[base + offset]

    cell_count, temp_count = r(0x11), r(0x12)
    if cell_count > cell_slots or temp_count > 8:
        raise FrameError(f"Daly D2: implausible counts ({cell_count} cells, {temp_count} sensors)")
    if r(0x15) > 1 or r(0x16) > 1:
        raise FrameError("Daly D2: MOSFET states must be 0/1")
    # The balancing words (0x3E/0x3F) follow the 62-register pack block; short reads lack them.
    balancing: list[bool] | None = None
    if len(regs) > base + 0x1F:
        word = r(0x1E) | r(0x1F) << 16
        balancing = [bool(word >> i & 1) for i in range(cell_count)]
    sample = Sample(
        voltage=round(r(0x08) / 10, 1),
        current=decode_current(r(0x09), below_is_charge),
        soc=round(r(0x0A) / 10, 1),
        remaining_ah=round(r(0x10) / 10, 1),
        cycles=r(0x13),
        cell_voltages=[v / 1000 for v in regs[:cell_count]],
        cell_balancing=balancing,
        temperatures=[float(t - TEMP_OFFSET) for t in regs[base : base + temp_count]],
        charge_fet=bool(r(0x15)),
        discharge_fet=bool(r(0x16)),
        balance_fet=r(0x14) != 0,
        extra={
            "current_raw": r(0x09),
            "balancer_state": r(0x14),
            "cell_count": cell_count,
            "delta_cell_voltage": r(0x18) / 1000,
            "alarm_flags": "".join(f"{r(0x1A + k):04x}" for k in range(4)),
        },
    )
    if len(regs) > base + 0x22:
        mos = regs[base + 0x22]
        if mos not in (0x0000, 0xFFFF):  # 0/FFFF: no MOSFET sensor fitted
            sample.mosfet_temperature = float(mos - TEMP_OFFSET)
    return sample.fill_derived()


def decode_version(regs: Sequence[int]) -> Sample:
    if len(regs) < VERSION_COUNT:
        raise FrameError(f"Daly D2 version needs {VERSION_COUNT} registers, got {len(regs)}")
    raw = b"".join(v.to_bytes(2, "big") for v in regs[:VERSION_COUNT])

    def text(b: bytes) -> str | None:
        return b.split(b"\x00")[0].decode("ascii", "replace").strip() or None

    return Sample(firmware_version=text(raw[:16]), hardware_version=text(raw[16:32]))


def decode(frames: Sequence[bytes], *, current_sign: str = "auto", cell_slots: int = 32) -> Sample:
    """Decoder for ``bmshost decode``: D2 replies (status and/or version) → one sample.

    A reply is told apart by its size: 32 registers is the version block."""
    sample = Sample()
    for frame in frames:
        if not isinstance(frame, bytes | bytearray):
            raise FrameError("Daly D2 decoder takes byte frames")
        regs = parse_reply(bytes(frame))
        if len(regs) == VERSION_COUNT:
            sample = sample.merge(decode_version(regs))
        else:
            below = charge_below_offset(current_sign, "d2")
            sample = sample.merge(decode_status(regs, below, cell_slots))
    return sample
