"""A simulated LiFePO4 pack: the state behind every JK simulator.

Current integrates into SoC, cell voltages follow an open-circuit curve plus an IR drop and a
slow per-cell drift, the MOSFET switches gate the current, and cell over/under-voltage
protections trip and release with hysteresis like a real BMS. Deterministic (seeded drift).
"""

from __future__ import annotations

import math
import random

import attrs

from bmshost.model import Sample
from bmshost.simpack import interpolate

# LiFePO4 open-circuit voltage (mV) at SoC points (%): flat in the middle, steep at both ends.
_OCV = ((0.0, 2800.0), (5.0, 3150.0), (15.0, 3250.0), (90.0, 3340.0), (99.0, 3400.0),
        (100.0, 3600.0))
INTERNAL_RESISTANCE_MOHM = 1.0  # per cell


def ocv_mv(soc: float) -> float:
    return interpolate(_OCV, soc)


@attrs.define(kw_only=True)
class Pack:
    cells: int = 16
    capacity_ah: float = 280.0
    soc: float = 55.0  # %
    load_current: float = 5.0  # A the charger/load would drive, + = charging
    temperatures: list[float] = attrs.field(factory=lambda: [21.0, 22.0])
    mosfet_temperature: float = 25.0
    charge_switch: bool = True  # what the user allows (BMS setting)
    discharge_switch: bool = True
    balancer_switch: bool = True
    heating: bool = False
    cycles: int = 12
    cell_ovp_mv: int = 3650
    cell_ovpr_mv: int = 3550
    cell_uvp_mv: int = 2650
    cell_uvpr_mv: int = 2750
    max_charge_current: float = 100.0  # A (settings)
    max_discharge_current: float = 150.0
    balance_trigger_mv: int = 10
    balance_start_mv: int = 3400
    serial_number: str = "SIM0001"
    seed: int = 1
    offsets_mv: list[float] = attrs.field(factory=list)  # per-cell deviation from the curve
    ovp_tripped: bool = False
    uvp_tripped: bool = False
    elapsed: float = 0.0
    _rng: random.Random = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.cells <= 32:
            raise ValueError(f"cells must be 1..32, not {self.cells}")
        self._rng = random.Random(self.seed)
        if not self.offsets_mv:
            self.offsets_mv = [self._rng.uniform(-4.0, 4.0) for _ in range(self.cells)]

    # -- state ----------------------------------------------------------------------------------

    @property
    def charge_fet(self) -> bool:
        return self.charge_switch and not self.ovp_tripped

    @property
    def discharge_fet(self) -> bool:
        return self.discharge_switch and not self.uvp_tripped

    @property
    def current(self) -> float:
        """What flows: the FETs block their direction."""
        if self.load_current > 0 and not self.charge_fet:
            return 0.0
        if self.load_current < 0 and not self.discharge_fet:
            return 0.0
        return self.load_current

    def cell_mv(self) -> list[int]:
        base = ocv_mv(self.soc) + self.current * INTERNAL_RESISTANCE_MOHM
        return [max(0, round(base + off)) for off in self.offsets_mv]

    @property
    def voltage(self) -> float:
        return sum(self.cell_mv()) / 1000

    @property
    def remaining_ah(self) -> float:
        return self.capacity_ah * self.soc / 100

    @property
    def balancing(self) -> bool:
        mv = self.cell_mv()
        return (self.balancer_switch and max(mv) >= self.balance_start_mv
                and max(mv) - min(mv) >= self.balance_trigger_mv)

    @property
    def cell_ovp_alarm(self) -> bool:
        return self.ovp_tripped

    @property
    def cell_uvp_alarm(self) -> bool:
        return self.uvp_tripped

    # -- physics ------------------------------------------------------------------------------

    def tick(self, dt: float) -> None:
        if dt <= 0:
            return
        self.elapsed += dt
        before = self.soc
        self.soc = min(100.0, max(0.0, self.soc + self.current * dt / 36.0 / self.capacity_ah))
        if before < 100.0 <= self.soc:
            self.cycles += 1
        for i in range(self.cells):  # slow drift within +-8 mV; a cell set far off stays there
            step = self._rng.uniform(-0.05, 0.05) * min(dt, 10.0)
            if abs(self.offsets_mv[i] + step) <= 8.0:
                self.offsets_mv[i] += step
        if self.balancing:  # pull the extremes together
            mv = self.cell_mv()
            hi, lo = mv.index(max(mv)), mv.index(min(mv))
            self.offsets_mv[hi] -= 0.01 * dt
            self.offsets_mv[lo] += 0.01 * dt
        self.mosfet_temperature = 25.0 + abs(self.current) * 0.05 + math.sin(self.elapsed / 600)
        self.check_protections()

    def check_protections(self) -> None:
        mv = self.cell_mv()
        if max(mv) >= self.cell_ovp_mv:
            self.ovp_tripped = True
        elif self.ovp_tripped and max(mv) <= self.cell_ovpr_mv:
            self.ovp_tripped = False
        if min(mv) <= self.cell_uvp_mv:
            self.uvp_tripped = True
        elif self.uvp_tripped and min(mv) >= self.cell_uvpr_mv:
            self.uvp_tripped = False

    def truth(self) -> Sample:
        """The pack in the model's units (what a perfect read would show)."""
        return Sample(
            voltage=round(self.voltage, 3),
            current=self.current,
            soc=self.soc,
            capacity_ah=self.capacity_ah,
            remaining_ah=self.remaining_ah,
            cycles=self.cycles,
            cell_voltages=[mv / 1000 for mv in self.cell_mv()],
            temperatures=list(self.temperatures),
            mosfet_temperature=self.mosfet_temperature,
            charge_fet=self.charge_fet,
            discharge_fet=self.discharge_fet,
            balance_fet=self.balancer_switch,
            heating=self.heating,
            bms_charge_current_limit=self.max_charge_current,
            bms_discharge_current_limit=self.max_discharge_current,
            serial_number=self.serial_number,
        ).fill_derived()
