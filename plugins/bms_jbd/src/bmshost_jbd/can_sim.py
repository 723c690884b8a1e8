"""A simulated JBD bank on CAN: the master's broadcast set, with pack physics.

``broadcast()`` returns the whole frame set each time it is called (``SimCanLink`` calls it when
its queue runs dry; ``SimulatorOnBus`` once per period). ``packs`` > 1 aggregates a bank.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from bmshost.driver import Simulator
from bmshost.link import CanFrame
from bmshost.model import Sample
from bmshost_jbd import can_codec as c


def _f(ident: int, data: bytes) -> CanFrame:
    return CanFrame(ident, data, False)


def _text(ident: int, text: str) -> CanFrame:
    return _f(ident, text.encode("ascii")[:8].ljust(8, b"\0"))


class JbdCanSimulator(Simulator):
    kind = "can"

    def __init__(
        self,
        cells: int = 16,
        capacity: float = 100.0,
        packs: int = 1,
        soc: float = 60.0,
        current: float = 12.0,
        temperature: float = 21.5,
    ) -> None:
        if not 1 <= cells <= 32 or not 1 <= packs <= 16:
            raise ValueError("cells must be 1..32 and packs 1..16")
        self.cells = cells
        self.capacity = float(capacity)  # per pack, Ah
        self.packs = packs
        self.soc = float(soc)
        self.current = float(current)  # A, + = charging, whole bank
        self.temperature = float(temperature)
        self.cycles = 7
        self.alarm_bits = 0  # bytes 0-3 of 0x35A as one little-endian word
        self.warning_bits = 0
        self.keepalives = 0

    def tick(self, dt: float) -> None:
        bank = self.capacity * self.packs
        self.soc = min(100.0, max(0.0, self.soc + self.current * dt / 3600 / bank * 100))
        if (self.soc >= 99.0 and self.current > 0) or (self.soc <= 10.0 and self.current < 0):
            self.current = -self.current

    def cell_range(self) -> tuple[float, float]:
        mid = 3.2 + 0.15 * self.soc / 100 + 0.0005 * self.current
        return round(mid - 0.004, 3), round(mid + 0.005, 3)

    def voltage(self) -> float:
        low, high = self.cell_range()
        return round(self.cells * (low + high) / 2, 2)

    def on_frame(self, frame: CanFrame) -> Sequence[CanFrame]:
        if frame.arbitration_id in (0x305, 0x307):
            self.keepalives += 1  # the inverter's keep-alive: nothing to answer
        return ()

    def broadcast(self) -> Sequence[CanFrame]:
        low, high = self.cell_range()
        kelvin = round(self.temperature + c.KELVIN)
        bank = round(self.capacity * self.packs)
        ccl = 0 if self.soc >= 100 else round(0.5 * bank * 10)
        return (
            _f(
                c.ID_LIMITS,
                struct.pack(
                    "<HHHH",
                    round(self.cells * 3.5 * 10),
                    ccl,
                    round(bank * 10),
                    round(self.cells * 2.8 * 10),
                ),
            ),
            _f(c.ID_SOC, struct.pack("<HHH", round(self.soc), 100, round(self.soc * 100))),
            _f(
                c.ID_MEASURE,
                struct.pack(
                    "<HhhH",
                    round(self.voltage() * 100),
                    round(self.current * 10),
                    round(self.temperature * 10),
                    self.cycles,
                ),
            ),
            _f(c.ID_ALARMS, struct.pack("<II", self.alarm_bits, self.warning_bits)),
            _text(c.ID_MANUFACTURER, "JBD"),
            _f(c.ID_INFO, struct.pack("<HHHH", 1, 0x0C04, 0, 0x21)),
            _text(c.ID_MODEL_1, "UP16S015"),
            _text(c.ID_MODEL_2, "-16S100A"),
            _f(c.ID_PACKS, struct.pack("<H", self.packs) + b"\0" * 6),
            _f(
                c.ID_EXTREMES,
                struct.pack("<HHHH", round(low * 1000), round(high * 1000), kelvin - 1, kelvin + 1),
            ),
            _text(c.ID_MIN_CELL_ID, "ID:01.03"),
            _text(c.ID_MAX_CELL_ID, "ID:01.0:"),
            _text(c.ID_MIN_TEMP_ID, "ID:01.01"),
            _text(c.ID_MAX_TEMP_ID, "ID:01.02"),
            _f(c.ID_ENERGY, b"\0" * 8),
            _f(c.ID_CAPACITY, struct.pack("<H", bank) + b"\0" * 6),
            _text(c.ID_SERIAL_1, "JBD87654"),
            _text(c.ID_SERIAL_2, "321"),
            _f(c.ID_PRODUCT, struct.pack("<H", 0x21) + b"\0" * 6),
        )

    def state(self) -> Sample:
        frames = {f.arbitration_id: f for f in self.broadcast()}
        return c.combine(frames)
