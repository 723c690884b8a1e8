"""Seplos v3 ("XZH") Modbus RTU: frames and the register/coil blocks (protocols-main.md §4.3).

Function 0x04 reads input registers (PIA, PIB, SPA, VIA, PCT, EIA, ...), 0x01 reads coils (PIC,
EIC). 32-bit values in EIA are sent low word first. Coil ``base + k`` is bit ``k % 8`` of data
byte ``k // 8``. Temperatures are 0.1 K with offset 2731.
"""

from __future__ import annotations

from collections.abc import Sequence

from bmshost.checksums import crc16_modbus as crc16_modbus  # re-exported: simulators use it
from bmshost.checksums import with_modbus_crc
from bmshost.errors import FrameError
from bmshost.model import Sample
from bmshost_seplos.v2_fields import alarms_from_events, kelvin

READ_COILS = 0x01
READ_INPUTS = 0x04
PIA, PIA_COUNT = 0x1000, 0x11
PIB, PIB_COUNT = 0x1100, 0x1A
PIC, PIC_COUNT = 0x1200, 0x90
SPA = 0x1300
VIA, VIA_COUNT = 0x1700, 0x33
PCT = 0x1800
EIA, EIA_COUNT = 0x2000, 0x1A
EIC, EIC_COUNT = 0x2200, 0x50
EXCEPTIONS = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
}


def with_crc(body: bytes) -> bytes:
    return with_modbus_crc(body)


def build_read(device: int, function: int, start: int, count: int) -> bytes:
    return with_crc(bytes((device, function)) + start.to_bytes(2, "big") + count.to_bytes(2, "big"))


def framer(buf: bytes) -> tuple[bytes | None, int]:
    """Replies to reads: ``dev fn n data crc``; exceptions ``dev fn|80 code crc``.

    A candidate whose CRC fails is skipped one byte at a time (RTU has no start marker)."""
    i = 0
    n = len(buf)
    while i < n:
        if n - i < 3:
            return None, i
        func = buf[i + 1]
        if func in (READ_COILS | 0x80, READ_INPUTS | 0x80):
            size = 5
        elif func in (READ_COILS, READ_INPUTS):
            size = 5 + buf[i + 2]
        else:
            i += 1
            continue
        if n - i < size:
            return None, i
        frame = bytes(buf[i : i + size])
        if crc16_modbus(frame[:-2]) == int.from_bytes(frame[-2:], "little"):
            return frame, i + size
        i += 1
    return None, n


def parse_reply(frame: bytes, device: int | None = None, function: int | None = None) -> bytes:
    """Validate a read reply and return its data bytes; an exception reply is a FrameError."""
    if len(frame) < 5:
        raise FrameError(f"Seplos v3 reply too short ({len(frame)} bytes)")
    if crc16_modbus(frame[:-2]) != int.from_bytes(frame[-2:], "little"):
        raise FrameError("Seplos v3 reply: CRC mismatch")
    if device is not None and frame[0] != device:
        raise FrameError(f"Seplos v3 reply from device {frame[0]:02X}, expected {device:02X}")
    if frame[1] & 0x80:
        code = frame[2]
        raise FrameError(
            f"Seplos v3 exception {code} ({EXCEPTIONS.get(code, 'unknown')}) "
            f"to function {frame[1] & 0x7F:02X}"
        )
    if function is not None and frame[1] != function:
        raise FrameError(f"Seplos v3 reply function {frame[1]:02X}, expected {function:02X}")
    if frame[1] not in (READ_COILS, READ_INPUTS) or frame[2] != len(frame) - 5:
        raise FrameError("Seplos v3 reply: byte count does not fit the frame")
    return bytes(frame[3:-2])


def registers(data: bytes) -> list[int]:
    if len(data) % 2:
        raise FrameError("Seplos v3: odd register data length")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def _s16(v: int) -> int:
    return v - 0x10000 if v & 0x8000 else v


def _need(regs: Sequence[int], count: int, block: str) -> None:
    if len(regs) < count:
        raise FrameError(f"Seplos v3 {block}: {len(regs)} registers, need {count}")


def decode_pia(regs: Sequence[int]) -> Sample:
    """Pack info A (0x1000): pack values and the BMS's current limits."""
    _need(regs, PIA_COUNT, "PIA")
    if regs[5] > 1000 or regs[6] > 1000:
        raise FrameError(f"Seplos v3 PIA: SoC/SoH out of range ({regs[5]}, {regs[6]})")
    return Sample(
        voltage=regs[0] / 100,
        current=_s16(regs[1]) / 100,
        remaining_ah=regs[2] / 100,
        capacity_ah=regs[3] / 100,
        soc=regs[5] / 10,
        soh=regs[6] / 10,
        cycles=regs[7],
        bms_discharge_current_limit=float(regs[0xF]),
        bms_charge_current_limit=float(regs[0x10]),
        cell_voltage_max=regs[0xA] / 1000,
        cell_voltage_min=regs[0xB] / 1000,
        extra={
            "total_discharged_ah": regs[4] * 10,
            "average_cell_voltage": regs[8] / 1000,
            "average_cell_temperature": kelvin(regs[9]),
            "max_cell_temperature": kelvin(regs[0xC]),
            "min_cell_temperature": kelvin(regs[0xD]),
        },
    ).fill_derived()


def decode_pib(regs: Sequence[int], cell_count: int | None = None) -> Sample:
    """Pack info B (0x1100): 16 cell slots, 4 cell sensors, ambient and power (MOSFET) sensor."""
    _need(regs, PIB_COUNT, "PIB")
    slots = list(regs[:16])
    if cell_count is None:
        while slots and slots[-1] == 0:
            slots.pop()
    else:
        slots = slots[: min(cell_count, 16)]
    temps = [kelvin(v) for v in regs[0x10:0x14] if v]  # 0 = sensor not fitted
    return Sample(
        cell_voltages=[v / 1000 for v in slots],
        temperatures=temps,
        mosfet_temperature=kelvin(regs[0x19]) if regs[0x19] else None,
        extra={"ambient_temperature": kelvin(regs[0x18])} if regs[0x18] else None,
    )


def bit(data: bytes, index: int) -> bool:
    return bool(data[index // 8] >> (index % 8) & 1)


# Event bytes as they sit from coil 0x1240 (PIC byte 8) / 0x2200 (EIC byte 0):
# 0 system state, 1 voltage (TB02), 2 cell temperature (TB03), 3 ambient/power temperature,
# 4 current 1 (TB05), 5 current 2, 6 capacity, 7 FET state (TB07), 8 battery state, 9 faults.
_EVENT_TABLE: tuple[tuple[int, int, str, int], ...] = (
    (1, 0, "high_cell_voltage", 1),
    (1, 1, "high_cell_voltage", 2),
    (1, 2, "low_cell_voltage", 1),
    (1, 3, "low_cell_voltage", 2),
    (1, 4, "high_voltage", 1),
    (1, 5, "high_voltage", 2),
    (1, 6, "low_voltage", 1),
    (1, 7, "low_voltage", 2),
    (2, 0, "high_charge_temperature", 1),
    (2, 1, "high_charge_temperature", 2),
    (2, 2, "low_charge_temperature", 1),
    (2, 3, "low_charge_temperature", 2),
    (2, 4, "high_temperature", 1),
    (2, 5, "high_temperature", 2),
    (2, 6, "low_temperature", 1),
    (2, 7, "low_temperature", 2),
    (4, 0, "high_charge_current", 1),
    (4, 1, "high_charge_current", 2),
    (4, 2, "high_charge_current", 2),
    (4, 3, "high_discharge_current", 1),
    (4, 4, "high_discharge_current", 2),
    (4, 5, "high_discharge_current", 2),
    (4, 6, "high_current", 2),
    (6, 2, "low_soc", 1),
    (6, 3, "low_soc", 2),
    (6, 4, "cell_imbalance", 1),
)


def decode_events(events: bytes) -> Sample:
    """The 10 live event bytes (PIC from 0x1240, or EIC) → alarms, FET and heater state."""
    if len(events) < 10:
        raise FrameError(f"Seplos v3 events: {len(events)} bytes, need 10")
    alarms = alarms_from_events(events, _EVENT_TABLE)
    alarms["internal_failure"] = 2 if events[9] else 0
    fets = events[7]
    return Sample(
        discharge_fet=bool(fets & 0x01),
        charge_fet=bool(fets & 0x02),
        heating=bool(fets & 0x08),
        alarms=alarms,
        extra={"system_state": events[0], "fet_event": fets, "hard_faults": events[9]},
    )


def decode_pic(data: bytes, cell_count: int | None = None) -> Sample:
    """PIC coils 0x1200..: per-cell balancing (0x1230..) plus the live event bytes (0x1240..)."""
    if len(data) < PIC_COUNT // 8:
        raise FrameError(f"Seplos v3 PIC: {len(data)} bytes, need {PIC_COUNT // 8}")
    cells = 16 if cell_count is None else min(cell_count, 16)
    sample = decode_events(data[8:18])
    sample.cell_balancing = [bit(data, 0x30 + i) for i in range(cells)]
    return sample


def u32_low_first(regs: Sequence[int], i: int, signed: bool = False) -> int:
    value = regs[i] | regs[i + 1] << 16
    return value - (1 << 32) if signed and value & 0x80000000 else value


def decode_eia(regs: Sequence[int]) -> Sample:
    """Aggregate of all packs (device 0 or ECU 0xC0): 32-bit values low word first."""
    _need(regs, EIA_COUNT, "EIA")
    if regs[0x18] > 1000 or regs[0x19] > 1000:
        raise FrameError("Seplos v3 EIA: SoC/SoH out of range")
    return Sample(
        voltage=u32_low_first(regs, 0) / 100,
        current=round(u32_low_first(regs, 2, signed=True) / 10, 1),
        remaining_ah=u32_low_first(regs, 4) / 100,
        capacity_ah=u32_low_first(regs, 6) / 100,
        bms_discharge_current_limit=u32_low_first(regs, 0x10) / 10,
        bms_charge_current_limit=u32_low_first(regs, 0x12) / 10,
        cycles=regs[0x17],
        soc=regs[0x18] / 10,
        soh=regs[0x19] / 10,
        extra={
            "total_discharged_ah": u32_low_first(regs, 8) * 10,
            "rated_capacity": u32_low_first(regs, 0xA) / 100,
            "online_packs": u32_low_first(regs, 0xC),
            "protected_packs": u32_low_first(regs, 0xE),
            "suggested_pack_ov": regs[0x14] / 10,
            "suggested_pack_uv": regs[0x15] / 10,
            "pack_count": regs[0x16],
        },
    ).fill_derived()


def _text(regs: Sequence[int]) -> str | None:
    raw = b"".join(v.to_bytes(2, "big") for v in regs)
    return raw.split(b"\x00")[0].decode("ascii", "replace").strip() or None


def decode_via(regs: Sequence[int]) -> Sample:
    """Identity (0x1700): factory, device name, firmware ("15" → 1.5), BMS and pack serial."""
    _need(regs, VIA_COUNT, "VIA")
    fw = _text(regs[0x14:0x15]) or ""
    return Sample(
        model=_text(regs[0x0A:0x14]),
        firmware_version=f"{fw[0]}.{fw[1:]}" if len(fw) >= 2 and fw.isdigit() else fw or None,
        serial_number=_text(regs[0x15:0x24]),
        extra={"manufacturer": _text(regs[0:0x0A]), "pack_serial": _text(regs[0x24:0x33])},
    )


def decode_spa(regs: Sequence[int]) -> Sample:
    """System parameters (0x1300..): sensor and cell counts, protection thresholds."""
    _need(regs, 2, "SPA")
    extra: dict[str, object] = {"ntc_count": regs[0], "cell_count": regs[1]}
    if len(regs) > 0x11:
        extra.update(
            pack_ov_protection=regs[5] / 100,
            pack_uv_protection=regs[9] / 100,
            cell_ov_protection=regs[0xD] / 1000,
            cell_uv_protection=regs[0x11] / 1000,
        )
    return Sample(extra=extra)


def decode_pct(regs: Sequence[int]) -> Sample:
    """PCS settings (0x1800): protocol type, baud (kbit/s), inverter and protocol names."""
    _need(regs, 0x24, "PCT")
    return Sample(
        extra={
            "pcs_protocol_type": regs[0],
            "pcs_baud": regs[1],
            "pcs_name": _text(regs[2:0x12]),
            "protocol_name": _text(regs[0x12:0x22]),
        }
    )


def _looks_like_eia(regs: Sequence[int]) -> bool:
    # EIA starts with u32 values low word first: the high words of the pack voltage and of the
    # (signed) current are 0 / FFFF, where PIB has cell voltages.
    return regs[1] == 0 and regs[3] in (0, 0xFFFF)


def decode_block(frame: bytes) -> Sample:
    """Decode one reply without its request: the block is told by function and size."""
    data = parse_reply(frame)
    if frame[1] == READ_COILS:
        if len(data) == PIC_COUNT // 8:
            return decode_pic(data)
        if len(data) == EIC_COUNT // 8:
            return decode_events(data)
        raise FrameError(f"Seplos v3: no coil block has {len(data)} bytes")
    regs = registers(data)
    if len(regs) in (PIA_COUNT, PIA_COUNT + 1):
        return decode_pia(regs)
    if len(regs) == PIB_COUNT:
        return decode_eia(regs) if _looks_like_eia(regs) else decode_pib(regs)
    if len(regs) == VIA_COUNT:
        return decode_via(regs)
    if len(regs) == 0x24:
        return decode_pct(regs)
    if len(regs) >= 0x30:
        return decode_spa(regs)
    raise FrameError(f"Seplos v3: no register block has {len(regs)} registers")


def recognise(frame: bytes) -> bool:
    if len(frame) < 5 or frame[1] & 0x7F not in (READ_COILS, READ_INPUTS):
        return False
    try:
        parse_reply(frame)
    except FrameError:
        return frame[1] & 0x80 != 0 and crc16_modbus(frame[:-2]) == int.from_bytes(
            frame[-2:], "little"
        )
    return True


def decode(frames: Sequence[bytes]) -> Sample:
    """Decoder for ``bmshost decode``: v3 Modbus replies of one read → one sample."""
    sample = Sample()
    for frame in frames:
        if not isinstance(frame, bytes | bytearray):
            raise FrameError("Seplos v3 decoder takes byte frames")
        sample = sample.merge(decode_block(bytes(frame)))
        if frame[0] not in (0x00, 0xC0, 0xE0):
            sample.address = frame[0]
    return sample
