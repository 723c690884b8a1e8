"""CPU cost of the input and derived-value control stages (SoC, current, temperatures, time-to-go,
alarms, history) per poll cycle, 16 cells, reference defaults.

Run: ``uv run python tests/bench/bench_control_inputs.py`` (prints JSON). Target: the default set
of these stages at most 25 µs per cycle.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bmshost.capabilities import BASIC
from bmshost.control.pipeline import build_pipeline
from bmshost.control.registration import register_stages
from bmshost.control.soc import SocOptions
from bmshost.model import Sample
from bmshost.registry import StageRegistry
from bmshost.stage import StageSpec

INPUT_MODULES = (
    "bmshost.control.current",
    "bmshost.control.temperature",
    "bmshost.control.soc",
    "bmshost.control.derived",
    "bmshost.control.history",
    "bmshost.control.alarms",
)
CYCLES = 30_000


def _specs() -> list[StageSpec]:
    registry = StageRegistry()
    register_stages(registry)
    return [s for s in registry.ordered() if s.factory.__module__ in INPUT_MODULES]


def _samples(n: int = 600) -> list[Sample]:
    """A slowly charging and discharging 16-cell pack (precomputed: only the stages are timed)."""
    out = []
    for i in range(n):
        phase = (i % 300) / 300.0
        current = -20.0 + 40.0 * phase
        cells = [3.30 + 0.001 * ((i + c) % 7) for c in range(16)]
        out.append(
            Sample(
                voltage=round(sum(cells), 3),
                current=current,
                soc=60.0 + 10.0 * phase,
                capacity_ah=280.0,
                cell_voltages=cells,
                temperatures=[21.0, 22.5, 23.0, 21.5],
                mosfet_temperature=30.0,
                charge_fet=True,
                discharge_fet=True,
                cycles=42,
            )
        )
    return out


def _per_cycle_us(options: dict[str, Any], offline_every: int = 0) -> float:
    pipeline = build_pipeline(_specs(), BASIC, options, {}, "bench")
    samples = _samples()
    n = len(samples)
    run = pipeline.run
    for i in range(n):  # warm up (fills the 5-minute current window)
        run(float(i), samples[i])
    start = time.process_time()
    for i in range(CYCLES):
        sample = None if offline_every and i % offline_every == 0 else samples[i % n]
        run(float(n + i), sample)
    return (time.process_time() - start) / CYCLES * 1e6


def main() -> dict[str, float]:
    return {
        "control_inputs_default_us_per_cycle": round(_per_cycle_us({}), 2),
        "control_inputs_soc_calculation_us_per_cycle": round(
            _per_cycle_us({"soc": SocOptions(soc_calculation=True)}), 2
        ),
        "stages_in_default_set": float(
            sum(
                1
                for _, included, _ in build_pipeline(_specs(), BASIC, {}, {}, "x").explain()
                if included
            )
        ),
    }


if __name__ == "__main__":
    print(json.dumps(main()))
