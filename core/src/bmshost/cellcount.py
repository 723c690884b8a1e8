"""The series cell count of a BMS that reports only its lowest and highest cell.

JBD CAN and JK CAN v1 send the pack voltage and the two extreme cells but no per-cell list and no
cell count. The reference driver divides the pack voltage by the mean of the two extremes every
cycle; with one cell running away that estimate can be off by one, and a count off by one moves
the charge voltage limit by a whole cell (about 3.45 V): charging a 16S pack as 17S is dangerous.

So the estimate is taken only when it is confident — the extremes within ``max_spread`` of each
other, and the quotient within ``max_error`` of a whole number — and then latched for the session:
a spread that opens up later (the very moment the count matters most) keeps the latched value. A
later confident estimate that disagrees replaces it with a warning (a pack was re-wired or the
first reading was wrong). A count the user configures is used as it is and never estimated.
"""

from __future__ import annotations

import logging
import math

from bmshost.model import Sample

log = logging.getLogger("bmshost.cellcount")

MAX_SERIES_CELLS = 64


class SeriesCellLatch:
    def __init__(
        self,
        configured: int | None = None,
        *,
        max_spread: float = 0.05,  # V between the extremes
        max_error: float = 0.2,  # cells: how far V/mean may be from a whole number
        name: str = "",
    ) -> None:
        self.configured = configured
        self.max_spread = max_spread
        self.max_error = max_error
        self.name = name
        self.latched: int | None = None

    @property
    def count(self) -> int | None:
        return self.configured or self.latched

    def estimate(self, sample: Sample) -> int | None:
        """A confident estimate from this sample, or None."""
        v, lo, hi = sample.voltage, sample.cell_voltage_min, sample.cell_voltage_max
        if v is None or lo is None or hi is None:
            return None
        if not all(math.isfinite(x) for x in (v, lo, hi)) or not 0.0 < lo <= hi:
            return None
        if hi - lo > self.max_spread:
            return None
        quotient = v / ((lo + hi) / 2.0)
        n = round(quotient)
        if not 1 <= n <= MAX_SERIES_CELLS or abs(quotient - n) > self.max_error:
            return None
        return n

    def apply(self, sample: Sample) -> Sample:
        """Set ``sample.series_cells`` when the BMS sends no cell list and did not say it."""
        if sample.cell_voltages or sample.series_cells is not None:
            return sample
        if not self.configured:
            n = self.estimate(sample)
            if n is not None and n != self.latched:
                if self.latched is not None:
                    log.warning(
                        "%s: series cell count estimate changed from %d to %d; set the count in "
                        "the battery's configuration if this repeats",
                        self.name or "battery",
                        self.latched,
                        n,
                    )
                self.latched = n
        sample.series_cells = self.count
        return sample
