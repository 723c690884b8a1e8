"""A simulated LiFePO4 pack behind the Seplos simulators: state and deterministic physics.

Current integrates into SoC while the matching FET conducts; cell voltages follow a LiFePO4
open-circuit curve plus a per-cell offset; the balancer bleeds the top cells while charging
above 3.40 V; protections open the charge FET above 3.65 V and the discharge FET below 2.5 V.
"""

from __future__ import annotations

import attrs

from bmshost.simpack import LIFEPO4_OCV, SimulatedPack, interpolate

# The shared LiFePO4 curve, ending a little higher (these boards report 3.62 V cells at full).
_OCV = (*LIFEPO4_OCV[:-1], (100.0, 3.62))
CELL_HIGH = 3.65
CELL_LOW = 2.50
INTERNAL_RESISTANCE = 0.001  # ohm per cell


def ocv(soc: float) -> float:
    return interpolate(_OCV, soc)


@attrs.define(slots=True, kw_only=True)
class Pack(SimulatedPack):
    sensors: int = 4  # cell sensors; ambient and power (MOSFET) sensors come on top
    capacity_ah: float = 280.0
    soh: float = 99.5
    temperature: float = 25.0
    ambient: float = 22.0
    mosfet_temperature: float = 30.0
    heater: bool = False
    cycles: int = 12
    charge_limit: float = 140.0  # A, what the BMS tells the inverter
    discharge_limit: float = 200.0

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.cells <= 16:
            raise ValueError("cells must be 1..16")
        if not 1 <= self.sensors <= 4:
            raise ValueError("sensors must be 1..4")

    def cell_voltages(self) -> list[float]:
        return self.offset_cells(ocv(self.soc), INTERNAL_RESISTANCE)

    def balancing(self) -> list[bool]:
        cells = self.cell_voltages()
        top = max(cells)
        active = self.effective_current() > 0 and top > 3.40
        return [active and v >= top - 0.0005 for v in cells]

    def temperatures(self) -> list[float]:
        return [round(self.temperature + i * 0.3, 1) for i in range(self.sensors)]

    @property
    def voltage(self) -> float:
        return round(sum(self.cell_voltages()), 2)

    def tick(self, dt: float) -> None:
        self.integrate(dt)
        self.heater = self.temperature < 5.0
        self.protect()

    def protect(self) -> None:
        self.trip(self.cell_voltages(), CELL_HIGH, CELL_LOW)
