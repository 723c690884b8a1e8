"""A small physical model of a LiFePO4 pack with a charger and loads, for scenario tests over
simulated hours. The pack answers with ``Sample``s; the charger obeys the published CVL/CCL and
the loads obey the DCL, so the control loop is closed the way a GX system closes it."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from bmshost.capabilities import BASIC, Capability
from bmshost.control.pipeline import Pipeline, bind_control, build_pipeline
from bmshost.control_replay import builtin_stage_specs
from bmshost.model import Limits, Sample

# open-circuit voltage of one LFP cell by state of charge (fraction)
OCV_SOC = (0.0, 0.05, 0.10, 0.20, 0.50, 0.90, 0.95, 0.98, 0.995, 1.0)
OCV_V = (2.80, 3.05, 3.20, 3.26, 3.30, 3.33, 3.36, 3.40, 3.45, 3.60)
CELL_R = 0.002  # Ω per cell


def ocv(soc: float) -> float:
    if soc <= 0.0:
        return OCV_V[0]
    if soc >= 1.0:
        return OCV_V[-1]
    i = bisect_right(OCV_SOC, soc) - 1
    f = (soc - OCV_SOC[i]) / (OCV_SOC[i + 1] - OCV_SOC[i])
    return OCV_V[i] + f * (OCV_V[i + 1] - OCV_V[i])


@attrs.define
class Pack:
    """16 cells in series; ``capacity_scale`` < 1 makes a weak cell that runs away at the top."""

    socs: list[float]
    capacity_ah: float = 100.0
    capacity_scale: list[float] = attrs.field(factory=lambda: [1.0] * 16)
    temperature: float = 25.0
    mosfet_temperature: float | None = None
    current: float = 0.0
    charge_reading: float = 1.0  # < 1: the BMS shunt under-reads charging current (SoC drift)

    def cells(self) -> list[float]:
        return [round(ocv(s) + self.current * CELL_R, 4) for s in self.socs]

    def flow(self, amps: float, dt: float) -> None:
        self.current = amps
        for i, s in enumerate(self.socs):
            ah = self.capacity_ah * self.capacity_scale[i]
            self.socs[i] = min(1.0, max(0.0, s + amps * dt / 3600.0 / ah))

    def sample(self) -> Sample:
        cells = self.cells()
        return Sample(
            voltage=round(sum(cells), 3),
            current=round(self.current * (self.charge_reading if self.current > 0 else 1.0), 3),
            soc=round(100.0 * sum(self.socs) / len(self.socs), 2),
            cell_voltages=cells,
            temperatures=[self.temperature, self.temperature + 0.5],
            mosfet_temperature=self.mosfet_temperature,
            charge_fet=True,
            discharge_fet=True,
            capacity_ah=self.capacity_ah,
        )


def charger_current(pack: Pack, limits: Limits, want: float) -> float:
    """A CC/CV charger: at most ``want`` and CCL, and no more than keeps the pack at CVL."""
    if limits.cvl is None or limits.ccl is None:
        return 0.0
    open_circuit = sum(ocv(s) for s in pack.socs)
    room = (limits.cvl - open_circuit) / (CELL_R * len(pack.socs))
    return max(0.0, min(want, limits.ccl, room))


@attrs.define
class Record:
    t: float
    limits: Limits
    soc: float | None
    sample: Sample | None
    notes: dict[str, Any]


def make_pipeline(raw: dict[str, Any] | None = None, mosfet: bool = False) -> Pipeline:
    specs = builtin_stage_specs()
    caps = BASIC | {Capability.SINGLE_CELL_DETAILS, Capability.ALLOW_TO_CHARGE_STATE}
    if mosfet:
        caps |= {Capability.MOSFET_TEMPERATURE}
    return build_pipeline(specs, caps, bind_control(specs, raw or {}), {}, "scenario")


def simulate(
    pipeline: Pipeline,
    pack: Pack,
    seconds: int,
    demand: Callable[[float, Limits], float],
    start: float = 0.0,
    dt: float = 1.0,
    online: Callable[[float], bool] = lambda t: True,
    weather: Callable[[float, Pack], None] | None = None,
) -> list[Record]:
    """Run the closed loop; ``demand(t, limits)`` returns the wanted current (+ charge)."""
    records: list[Record] = []
    limits = Limits()
    t = start
    for _ in range(int(seconds / dt)):
        if weather is not None:
            weather(t, pack)
        sample = pack.sample() if online(t) else None
        step = pipeline.run(t, sample)
        limits = step.limits
        records.append(Record(t, attrs.evolve(limits), step.derived.soc, sample, dict(step.notes)))
        pack.flow(demand(t, limits), dt)
        t += dt
    return records


@pytest.fixture
def scenario() -> Any:
    class Kit:
        Pack = Pack
        make_pipeline = staticmethod(make_pipeline)
        simulate = staticmethod(simulate)
        charger_current = staticmethod(charger_current)
        ocv = staticmethod(ocv)

    return Kit
