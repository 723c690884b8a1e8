"""A simulated JBD pack that speaks the serial/BLE protocol.

It has state: cells move with the current, SoC integrates, the FET switches (register 0xE1)
work, protections trip (cell over/under-voltage opens the FET) and factory-mode EEPROM writes are
honoured. ``silent`` makes it stop answering, for staleness tests.
"""

from __future__ import annotations

import math
import struct

from bmshost.driver import Simulator
from bmshost.model import Sample
from bmshost.simpack import interpolate
from bmshost_jbd import codec

# LiFePO4 open-circuit voltage by SoC (%), for a believable curve.
_OCV = ((0, 2.80), (5, 3.10), (10, 3.20), (20, 3.25), (40, 3.28), (60, 3.30), (80, 3.33),
        (90, 3.35), (97, 3.40), (99, 3.50), (100, 3.60))


def _ocv(soc: float) -> float:
    return interpolate(_OCV, soc)


class JbdSimulator(Simulator):
    kind = "stream"

    def __init__(
        self,
        cells: int = 16,
        capacity: float = 280.0,
        soc: float = 60.0,
        current: float = 10.0,
        ntc: int = 3,
        model: str = "JBD-SP25S003-L16S-200A-B-U",
        cycle_current: bool = True,
    ) -> None:
        if not 1 <= cells <= 32:
            raise ValueError("cells must be 1..32")
        self.cells = cells
        self.capacity = float(capacity)
        self.soc = float(soc)
        self.current = float(current)  # A, + charging
        self.ntc = ntc
        self.model = model
        self.cycle_current = bool(cycle_current)  # flip between charging and discharging
        self.cycles = 12
        self.charge_fet = True
        self.discharge_fet = True
        self.charge_forced_off = False
        self.discharge_forced_off = False
        self.balance_enabled = True
        self.protection = 0
        self.factory_mode = False
        self.eeprom: dict[int, int] = {codec.REG_FUNCTION_CONFIG: codec.FUNCTION_BALANCE_BIT | 1}
        # Small fixed per-cell offsets make min/max cells distinct, as on a real pack.
        self.offsets = [0.004 * math.sin(i * 1.7) for i in range(cells)]
        self.temps = [22.0 + 0.5 * i for i in range(ntc)]
        self._buf = bytearray()
        self._cells: list[float] = []
        self._cells_key: tuple[float, float, tuple[float, ...]] | None = None
        self._t = 0.0
        self.requests = 0

    # -- physics -------------------------------------------------------------------------------

    def cell_voltages(self) -> list[float]:
        key = (self.soc, self.current, tuple(self.offsets))
        if key != self._cells_key:  # the curve lookup is the simulator's only real cost
            sag = 0.0006 * self.current  # internal resistance effect
            base = _ocv(self.soc) + sag
            self._cells = [round(base + off, 3) for off in self.offsets]
            self._cells_key = key
        return list(self._cells)

    def tick(self, dt: float) -> None:
        self._t += dt
        flowing = self.current
        if (flowing > 0 and not self.charge_fet) or (flowing < 0 and not self.discharge_fet):
            flowing = 0.0
        self.soc = min(100.0, max(0.0, self.soc + flowing * dt / 3600 / self.capacity * 100))
        if self.cycle_current and ((self.soc >= 99.5 and self.current > 0) or (self.soc <= 10 and self.current < 0)):
            self.current = -self.current
        self._update_protection()

    def _update_protection(self) -> None:
        cells = self.cell_voltages()
        bits = 0
        if max(cells) >= 3.65:
            bits |= 1 << 0
        if min(cells) <= 2.5:
            bits |= 1 << 1
        self.protection = bits
        self.charge_fet = not self.charge_forced_off and not bits & 1
        self.discharge_fet = not self.discharge_forced_off and not bits & 2

    # -- protocol ------------------------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while True:
            start = self._buf.find(codec.START)
            if start < 0:
                self._buf.clear()
                break
            del self._buf[:start]
            if len(self._buf) < 4:
                break
            total = self._buf[3] + 7
            if len(self._buf) < total:
                break
            frame = bytes(self._buf[:total])
            del self._buf[:total]
            if frame[-1] != codec.END or frame[1] not in (codec.READ, codec.WRITE):
                continue
            body = frame[2:-3]
            if struct.unpack(">H", frame[-3:-1])[0] != codec.checksum(body):
                continue  # a real BMS ignores a corrupt request
            self.requests += 1
            out += self._answer(frame[1] == codec.WRITE, frame[2], frame[4:-3])
        return bytes(out)

    @staticmethod
    def _reply(reg: int, data: bytes, status: int = 0) -> bytes:
        body = bytes((status, len(data))) + data
        return bytes((codec.START, reg)) + body + struct.pack(">H", codec.checksum(body)) + bytes((codec.END,))

    def _answer(self, write: bool, reg: int, data: bytes) -> bytes:
        if write:
            return self._write(reg, data)
        if reg == codec.REG_BASIC:
            return self._reply(reg, self._basic())
        if reg == codec.REG_CELLS:
            return self._reply(reg, b"".join(struct.pack(">H", round(v * 1000)) for v in self.cell_voltages()))
        if reg == codec.REG_HARDWARE:
            return self._reply(reg, self.model.encode("ascii"))
        if reg == codec.REG_ERROR_COUNTS:
            return self._reply(reg, struct.pack(">11H", 0, 0, 0, 3, 1, 0, 0, 0, 0, 0, 0) + b"\0" * 4)
        if self.factory_mode and reg in self.eeprom:
            return self._reply(reg, struct.pack(">H", self.eeprom[reg]))
        return self._reply(reg, b"", status=0x80)

    def _write(self, reg: int, data: bytes) -> bytes:
        if reg == codec.REG_MOS_CONTROL and len(data) == 2:
            self.charge_forced_off = bool(data[1] & 1)
            self.discharge_forced_off = bool(data[1] & 2)
            self._update_protection()
            return self._reply(reg, b"")
        if reg == codec.REG_FACTORY_ENTER and data == codec.FACTORY_MAGIC:
            self.factory_mode = True
            return self._reply(reg, b"")
        if reg == codec.REG_FACTORY_EXIT:
            self.factory_mode = False
            self.balance_enabled = bool(self.eeprom[codec.REG_FUNCTION_CONFIG] & codec.FUNCTION_BALANCE_BIT)
            if codec.REG_CAP_100 in self.eeprom and data == codec.EXIT_SAVE:
                self.soc = 100.0  # the pack re-learns "full" at the written voltage
                del self.eeprom[codec.REG_CAP_100]
            return self._reply(reg, b"")
        if self.factory_mode and len(data) == 2:
            self.eeprom[reg] = struct.unpack(">H", data)[0]
            return self._reply(reg, b"")
        return self._reply(reg, b"", status=0x80)

    def _basic(self) -> bytes:
        cells = self.cell_voltages()
        voltage = round(sum(cells) * 100)
        nominal = round(self.capacity * 100)
        remaining = round(self.capacity * self.soc)  # 10 mAh units: capacity*100*soc/100
        balance = 0
        if self.balance_enabled and max(cells) > 3.40:
            top = max(cells)
            balance = sum(1 << i for i, v in enumerate(cells) if v > top - 0.005)
        date = ((2024 - 2000) << 9) | (5 << 5) | 17
        fets = (1 if self.charge_fet else 0) | (2 if self.discharge_fet else 0)
        current = self.current if (self.current > 0 and self.charge_fet) or (self.current < 0 and self.discharge_fet) else 0.0
        head = struct.pack(
            ">HhHHHHHHHBBBBB",
            voltage & 0xFFFF,
            round(current * 100),
            min(remaining, 0xFFFF),
            min(nominal, 0xFFFF),
            self.cycles,
            date,
            balance & 0xFFFF,
            balance >> 16,
            self.protection,
            0x23,
            round(self.soc),
            fets,
            self.cells,
            self.ntc,
        )
        temps = b"".join(struct.pack(">H", round(t * 10) + codec.KELVIN_OFFSET) for t in self.temps)
        return head + temps

    def state(self) -> Sample:
        """The values a correct read must produce right now."""
        return codec.parse_basic(self._basic()).merge(
            Sample(cell_voltages=self.cell_voltages(), model=self.model, hardware_version=self.model)
        ).fill_derived()
