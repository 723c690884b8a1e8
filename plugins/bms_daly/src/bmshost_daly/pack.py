"""A simulated LiFePO4 pack behind the Daly simulators: state and deterministic physics.

Current integrates into SoC while the matching FET conducts, cell voltages follow a LiFePO4
open-circuit curve plus a small per-cell offset (so cells drift apart as SoC moves), and the
protections trip like a BMS would: a cell above 3.65 V opens the charge FET, below 2.5 V the
discharge FET, each raising the matching alarm.
"""

from __future__ import annotations

import itertools

import attrs

# (SoC %, open-circuit cell voltage V) of a LiFePO4 cell.
_OCV = (
    (0.0, 2.50),
    (5.0, 3.00),
    (10.0, 3.20),
    (30.0, 3.26),
    (60.0, 3.30),
    (90.0, 3.34),
    (99.0, 3.45),
    (100.0, 3.60),
)
CELL_HIGH = 3.65
CELL_LOW = 2.50
INTERNAL_RESISTANCE = 0.001  # Ω per cell


def ocv(soc: float) -> float:
    soc = min(100.0, max(0.0, soc))
    for (s0, v0), (s1, v1) in itertools.pairwise(_OCV):
        if soc <= s1:
            return v0 + (v1 - v0) * (soc - s0) / (s1 - s0)
    return _OCV[-1][1]


@attrs.define(slots=True, kw_only=True)
class Pack:
    cells: int = 16
    sensors: int = 2
    capacity_ah: float = 100.0
    soc: float = 60.0
    current: float = 0.0  # A, + = charging (the simulator encodes it per protocol)
    temperature: float = 25.0
    mosfet_temperature: float = 30.0
    charge_fet: bool = True
    discharge_fet: bool = True
    balancer_enabled: bool = True
    cycles: int = 7
    charged_ah: float = 0.0
    high_cell_trip: bool = False
    low_cell_trip: bool = False
    serial: str = "DALYSIM00001"

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.cells <= 48:
            raise ValueError("cells must be 1..48")
        if not 1 <= self.sensors <= 8:
            raise ValueError("sensors must be 1..8")

    @property
    def remaining_ah(self) -> float:
        return self.capacity_ah * self.soc / 100

    def effective_current(self) -> float:
        """The current that flows: an open FET blocks its direction."""
        if self.current > 0 and not self.charge_fet:
            return 0.0
        if self.current < 0 and not self.discharge_fet:
            return 0.0
        return self.current

    def cell_voltages(self) -> list[float]:
        base = ocv(self.soc) + self.effective_current() * INTERNAL_RESISTANCE
        # Cell i sits a few mV off the mean, more so away from the flat middle of the curve.
        spread = 0.001 + abs(self.soc - 50) / 50 * 0.004
        return [round(base + spread * ((i * 7) % 5 - 2) / 2, 3) for i in range(self.cells)]

    def balancing(self) -> list[bool]:
        cells = self.cell_voltages()
        top = max(cells)
        active = self.balancer_enabled and self.effective_current() > 0 and top > 3.35
        return [active and v >= top - 0.0005 for v in cells]

    def temperatures(self) -> list[float]:
        return [round(self.temperature + i * 0.5, 1) for i in range(self.sensors)]

    @property
    def voltage(self) -> float:
        return round(sum(self.cell_voltages()), 2)

    def tick(self, dt: float) -> None:
        current = self.effective_current()
        ah = current * dt / 3600
        self.soc = min(100.0, max(0.0, self.soc + ah / self.capacity_ah * 100))
        if ah > 0:
            self.charged_ah += ah
            while self.charged_ah >= self.capacity_ah:
                self.charged_ah -= self.capacity_ah
                self.cycles += 1
        self.temperature += (abs(current) * 0.0005 - (self.temperature - 25.0) * 0.001) * dt
        self.protect()

    def protect(self) -> None:
        cells = self.cell_voltages()
        if max(cells) > CELL_HIGH:
            self.high_cell_trip = True
            self.charge_fet = False
        elif self.high_cell_trip and max(cells) < CELL_HIGH - 0.1:
            self.high_cell_trip = False
        if min(cells) < CELL_LOW:
            self.low_cell_trip = True
            self.discharge_fet = False
        elif self.low_cell_trip and min(cells) > CELL_LOW + 0.3:
            self.low_cell_trip = False
