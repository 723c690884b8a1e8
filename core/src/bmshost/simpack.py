"""Physics shared by the BMS simulators: an open-circuit-voltage curve lookup and a pack whose
current integrates into SoC and charge cycles while the matching FET conducts.

Families keep their own curve tables and add their protocol's extras (heater, BMS limits,
balancer rules) by subclassing ``SimulatedPack``; this module holds what every simulated pack
does the same way.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import attrs

# A LiFePO4 cell's open-circuit voltage (V) by SoC (%): flat in the middle, steep at both ends.
LIFEPO4_OCV: tuple[tuple[float, float], ...] = (
    (0.0, 2.50), (5.0, 3.00), (10.0, 3.20), (30.0, 3.26), (60.0, 3.30), (90.0, 3.34),
    (99.0, 3.45), (100.0, 3.60),
)


def interpolate(table: Sequence[tuple[float, float]], x: float) -> float:
    """Piecewise-linear lookup in ``(x, y)`` points sorted by x, clamped to the table's ends."""
    if x <= table[0][0]:
        return table[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(table):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return table[-1][1]


@attrs.define(slots=True, kw_only=True)
class SimulatedPack:
    """State every simulated pack has; subclasses add cells' voltages and protocol extras."""

    cells: int = 16
    capacity_ah: float = 100.0
    soc: float = 60.0  # %
    current: float = 0.0  # A the charger/load drives, + = charging
    charge_fet: bool = True
    discharge_fet: bool = True
    cycles: int = 0
    charged_ah: float = 0.0  # towards the next full cycle
    high_cell_trip: bool = False
    low_cell_trip: bool = False

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

    def integrate(self, dt: float) -> float:
        """Move SoC by ``dt`` seconds of flowing current; count a cycle per capacity charged.
        Returns the current that flowed."""
        current = self.effective_current()
        ah = current * dt / 3600
        self.soc = min(100.0, max(0.0, self.soc + ah / self.capacity_ah * 100))
        if ah > 0:
            self.charged_ah += ah
            while self.charged_ah >= self.capacity_ah:
                self.charged_ah -= self.capacity_ah
                self.cycles += 1
        return current

    def offset_cells(self, ocv: float, resistance: float) -> list[float]:
        """Cell voltages: the open-circuit ``ocv`` plus the IR drop of the flowing current, each
        cell a few mV off the mean, more so away from the flat middle of the curve (so cells
        drift apart as SoC moves, deterministically)."""
        base = ocv + self.effective_current() * resistance
        spread = 0.001 + abs(self.soc - 50) / 50 * 0.004
        return [round(base + spread * ((i * 7) % 5 - 2) / 2, 3) for i in range(self.cells)]

    def trip(
        self,
        cells: Sequence[float],
        high: float,
        low: float,
        high_release: float | None = None,
        low_release: float | None = None,
    ) -> None:
        """Cell protections: above ``high`` the charge FET opens, below ``low`` the discharge
        FET; with release thresholds the trip flags clear again (the FETs stay as the BMS left
        them until switched)."""
        if max(cells) > high:
            self.high_cell_trip = True
            self.charge_fet = False
        elif high_release is not None and self.high_cell_trip and max(cells) < high_release:
            self.high_cell_trip = False
        if min(cells) < low:
            self.low_cell_trip = True
            self.discharge_fet = False
        elif low_release is not None and self.low_cell_trip and min(cells) > low_release:
            self.low_cell_trip = False
