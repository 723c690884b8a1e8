"""Benchmark of the control pipeline: µs per cycle of the limit stages and of the whole default
pipeline (16 cells, defaults), and seconds to replay a simulated 24 h day (86,400 cycles).

Run: ``uv run python tests/bench/bench_control.py`` (prints one JSON object). CPU time is measured
with ``time.process_time`` over many cycles.
"""

from __future__ import annotations

import io
import json
import math
import time
from typing import Any

from bmshost.capabilities import BASIC, Capability
from bmshost.control.pipeline import Pipeline, bind_control, build_pipeline
from bmshost.control_replay import builtin_stage_specs, read_trace, replay
from bmshost.model import Sample

LIMIT_STAGES = {
    "cvl",
    "current_cell_voltage",
    "current_temperature",
    "current_mosfet_temperature",
    "current_soc",
    "current_bms_limits",
    "current_limits",
    "disconnect",
    "clamp",
}
CAPS = BASIC | {Capability.MOSFET_TEMPERATURE, Capability.SINGLE_CELL_DETAILS}
CYCLES = 50_000
DAY = 86_400


def day_point(t: int) -> dict[str, Any]:
    """A plausible day: charge in the morning up to the top, discharge in the evening."""
    phase = math.sin(2 * math.pi * t / DAY)
    base = 3.30 + 0.13 * phase + 0.02 * math.sin(t / 600.0)
    cells = [round(base + 0.001 * (i % 5) + 0.004 * (i == 7) * phase, 3) for i in range(16)]
    current = round(40.0 * phase, 2)
    return {
        "t": float(t),
        "voltage": round(sum(cells), 3),
        "current": current,
        "soc": round(max(0.0, min(100.0, 60 + 39 * phase)), 1),
        "cell_voltages": cells,
        "temperatures": [round(18 + 8 * phase, 1), round(19 + 8 * phase, 1)],
        "mosfet_temperature": round(30 + 10 * abs(phase), 1),
        "charge_fet": True,
        "discharge_fet": True,
        "capacity_ah": 280.0,
        "online": t % 3600 != 1800,  # one silent cycle an hour
    }


def samples(n: int) -> list[Sample | None]:
    out: list[Sample | None] = []
    for t in range(n):
        point = day_point(t * 7)
        online = point.pop("online")
        point.pop("t")
        out.append(Sample(**point) if online else None)
    return out


def per_cycle_us(pipeline: Pipeline, inputs: list[Sample | None]) -> float:
    run = pipeline.run
    for i in range(200):  # warm-up
        run(float(i), inputs[i])
    start = time.process_time()
    for i, sample in enumerate(inputs):
        run(1000.0 + i, sample)
    return (time.process_time() - start) / len(inputs) * 1e6


def main() -> dict[str, float]:
    specs = builtin_stage_specs()
    limit_specs = [s for s in specs if s.name in LIMIT_STAGES]
    inputs = samples(CYCLES)
    limits_only = build_pipeline(limit_specs, CAPS, bind_control(limit_specs, {}), {}, "bench")
    whole = build_pipeline(specs, CAPS, bind_control(specs, {}), {}, "bench")
    result = {
        "limit_stages_us_per_cycle": round(per_cycle_us(limits_only, inputs), 2),
        "default_pipeline_us_per_cycle": round(per_cycle_us(whole, inputs), 2),
    }
    lines = [json.dumps(day_point(t)) for t in range(DAY)]
    start = time.process_time()
    steps, caps = read_trace(lines)
    replay(steps, caps, bind_control(specs, {}), io.StringIO(), specs)
    result["day_replay_seconds"] = round(time.process_time() - start, 3)
    return result


if __name__ == "__main__":
    print(json.dumps(main()))
