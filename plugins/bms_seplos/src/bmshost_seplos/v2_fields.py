"""Seplos v2 INFO payloads (shared by the ASCII and the BLE binary framing).

Layouts are parsed by their counts (cells M, sensors N, custom number P), never by fixed offsets,
so any cell and temperature count decodes. Spec: protocols-main.md §4.1.
"""

from __future__ import annotations

from bmshost.errors import FrameError
from bmshost.model import Sample

KELVIN = 2731  # 0.1 K
MAX_CELLS = 32
MAX_TEMPS = 16


class _Reader:
    """Cursor over an INFO payload; running past the end is a FrameError."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise FrameError(
                f"Seplos {self.what}: INFO ends at byte {len(self.data)}, "
                f"field needs {self.pos + n}"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def s16(self) -> int:
        return int.from_bytes(self.take(2), "big", signed=True)

    def count(self, limit: int, name: str) -> int:
        n = self.u8()
        if n > limit:
            raise FrameError(f"Seplos {self.what}: {name} count {n} exceeds {limit}")
        return n


def kelvin(raw: int) -> float:
    return round((raw - KELVIN) / 10, 1)


def split_temperatures(temps: list[float]) -> tuple[list[float], float | None, float | None]:
    """(battery sensors, ambient, power/MOSFET): the vendor puts ambient and power sensors after
    the cell sensors, so with three or more sensors the last two are those."""
    if len(temps) >= 3:
        return temps[:-2], temps[-2], temps[-1]
    return temps, None, None


# Fields after the custom number P, in order: name, scale (None = integer).
_TAIL: tuple[tuple[str, float | None], ...] = (
    ("capacity_ah", 0.01),
    ("soc", 0.1),
    ("rated_capacity", 0.01),
    ("cycles", None),
    ("soh", 0.1),
    ("port_voltage", 0.01),
)


def decode_telemetry(info: bytes) -> Sample:
    """0x42 (ASCII) / 0x61 (BLE) telemetry."""
    r = _Reader(info, "telemetry")
    data_flag, group = r.u8(), r.u8()
    cells = [r.u16() / 1000 for _ in range(r.count(MAX_CELLS, "cell"))]
    temps = [kelvin(r.u16()) for _ in range(r.count(MAX_TEMPS, "temperature"))]
    current = r.s16() / 100
    voltage = r.u16() / 100
    remaining = r.u16() / 100
    p = r.u8()
    tail: dict[str, float] = {}
    for name, scale in _TAIL[: min(p, len(_TAIL))]:
        raw = r.u16()
        tail[name] = raw if scale is None else round(raw * scale, 3)
    if "soc" in tail and tail["soc"] > 100:
        raise FrameError(f"Seplos telemetry: SoC {tail['soc']} % above 100")
    battery, ambient, power = split_temperatures(temps)
    extra: dict[str, object] = {"data_flag": data_flag, "command_group": group, "custom_number": p}
    for key in ("rated_capacity", "port_voltage"):
        if key in tail:
            extra[key] = tail[key]
    if ambient is not None:
        extra["ambient_temperature"] = ambient
    return Sample(
        voltage=round(voltage, 2),
        current=round(current, 2),
        remaining_ah=round(remaining, 2),
        cell_voltages=cells,
        temperatures=battery,
        mosfet_temperature=power,
        capacity_ah=tail.get("capacity_ah"),
        soc=tail.get("soc"),
        cycles=int(tail["cycles"]) if "cycles" in tail else None,
        soh=tail.get("soh"),
        extra=extra,
    ).fill_derived()


# (event index after P, bit, alarm name, level): "alarm" bits warn, "protection" bits alarm.
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
    (4, 2, "high_discharge_current", 1),
    (4, 3, "high_discharge_current", 2),
    (4, 4, "high_current", 2),
    (4, 5, "high_current", 2),  # transient OC, short circuit
    (4, 6, "high_current", 2),
    (4, 7, "high_current", 2),  # lockouts after them
    (5, 0, "high_voltage", 2),  # charge high-voltage protection
    (5, 2, "low_soc", 1),
    (5, 3, "low_soc", 2),
)
EVENT_COUNT = 20


def alarms_from_events(
    events: bytes, table: tuple[tuple[int, int, str, int], ...]
) -> dict[str, int]:
    alarms: dict[str, int] = {}
    for index, bit, name, level in table:
        hit = level if events[index] >> bit & 1 else 0
        alarms[name] = max(alarms.get(name, 0), hit)
    return alarms


def alarms_length(info: bytes) -> int | None:
    """The INFO length a 0x44 reply with these counts has (None when the counts are cut off)."""
    if len(info) < 3:
        return None
    m = info[2]
    if len(info) < 4 + m:
        return None
    n = info[3 + m]
    if len(info) < 7 + m + n:
        return None
    return 7 + m + n + info[6 + m + n]


def decode_alarms(info: bytes) -> Sample:
    """0x44 telecommand: live alarm/protection events, switch state, balancing bits."""
    r = _Reader(info, "alarms")
    r.u8(), r.u8()
    m = r.count(MAX_CELLS, "cell")
    cell_alarms = r.take(m)
    temp_alarms = r.take(r.count(MAX_TEMPS, "temperature"))
    current_alarm, voltage_alarm = r.u8(), r.u8()
    p = r.u8()
    if p < 10:
        raise FrameError(f"Seplos alarms: {p} event bytes, need at least 10")
    e = r.take(p)
    alarms = alarms_from_events(e, _EVENT_TABLE)
    # event1: sensor and switch faults; event8 (b0 EEPROM, b1 RTC) when present.
    hard = e[0] != 0 or (p > 13 and e[13] & 0x03 != 0)
    alarms["internal_failure"] = 2 if hard else 0
    switches = e[6]
    balancing_bits = e[7] | e[8] << 8
    return Sample(
        discharge_fet=bool(switches & 0x01),
        charge_fet=bool(switches & 0x02),
        heating=bool(switches & 0x08),
        cell_balancing=[bool(balancing_bits >> i & 1) for i in range(min(m, 16))] if m else None,
        alarms=alarms,
        extra={
            "cell_alarms": cell_alarms.hex(),
            "temperature_alarms": temp_alarms.hex(),
            "current_alarm": current_alarm,
            "voltage_alarm": voltage_alarm,
            "system_state": e[9],
            "events": e.hex(),
            "current_limit": bool(switches & 0x04),
        },
    )


def decode_manufacturer(info: bytes) -> Sample:
    """0x51: device name (10), software version (major, minor), manufacturer (20)."""
    r = _Reader(info, "manufacturer info")
    name = r.take(10)
    major, minor = r.u8(), r.u8()
    maker = info[12:32]

    def text(b: bytes) -> str | None:
        return b.split(b"\x00")[0].decode("ascii", "replace").strip() or None

    return Sample(
        model=text(name), firmware_version=f"{major}.{minor}", extra={"manufacturer": text(maker)}
    )
