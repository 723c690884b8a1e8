"""A simulated LiFePO4 pack behind the Daly simulators: state and deterministic physics.

Current integrates into SoC while the matching FET conducts, cell voltages follow a LiFePO4
open-circuit curve plus a small per-cell offset (so cells drift apart as SoC moves), and the
protections trip like a BMS would: a cell above 3.65 V opens the charge FET, below 2.5 V the
discharge FET, each raising the matching alarm.
"""

from __future__ import annotations

import attrs

from bmshost.simpack import LIFEPO4_OCV, SimulatedPack, interpolate

CELL_HIGH = 3.65
CELL_LOW = 2.50
INTERNAL_RESISTANCE = 0.001  # Ω per cell


def ocv(soc: float) -> float:
    return interpolate(LIFEPO4_OCV, soc)


@attrs.define(slots=True, kw_only=True)
class Pack(SimulatedPack):
    """The current is + = charging; each simulator encodes it the way its protocol does."""

    sensors: int = 2
    temperature: float = 25.0
    mosfet_temperature: float = 30.0
    balancer_enabled: bool = True
    cycles: int = 7
    serial: str = "DALYSIM00001"

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.cells <= 48:
            raise ValueError("cells must be 1..48")
        if not 1 <= self.sensors <= 8:
            raise ValueError("sensors must be 1..8")

    def cell_voltages(self) -> list[float]:
        return self.offset_cells(ocv(self.soc), INTERNAL_RESISTANCE)

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
        current = self.integrate(dt)
        self.temperature += (abs(current) * 0.0005 - (self.temperature - 25.0) * 0.001) * dt
        self.protect()

    def protect(self) -> None:
        self.trip(self.cell_voltages(), CELL_HIGH, CELL_LOW, CELL_HIGH - 0.1, CELL_LOW + 0.3)
