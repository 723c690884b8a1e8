"""Host CPU per poll cycle (decode + control pipeline + console sink in JSON mode, simulator
in-process) for 16- and 32-cell JBD packs, and the resident memory of `bmshost run` with one
battery after 60 s.

    uv run python tests/bench/bench_host.py        (BENCH_RSS_SECONDS=60 by default)
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

CYCLES = 3000


async def _cpu_per_cycle(cells: int) -> dict[str, float]:
    from bmshost.cli.common import prepare_dict
    from bmshost.host import Host

    state = tempfile.mkdtemp()
    config, plugins = prepare_dict(
        {
            "host": {"poll_interval": 1.0, "state_dir": state},
            "batteries": [{"driver": "jbd", "port": f"sim:jbd?cells={cells}&cycle_current=1", "name": "b"}],
            "sinks": {"console": {}},
        }
    )
    now = [0.0]
    host = Host(config, plugins, json_mode=True, clock=lambda: now[0])
    host.build()
    with open(os.devnull, "w") as null:
        for sink in host.sinks:
            sink.stream = null  # type: ignore[attr-defined]
        battery = host.batteries[0]
        for _ in range(50):  # warm up: connect, first slow read, caches
            await battery.cycle()
            now[0] += 1.0
        start = time.process_time()
        for _ in range(CYCLES):
            await battery.cycle()
            now[0] += 1.0
        total = time.process_time() - start
    sim = battery.shared.link.simulator  # type: ignore[attr-defined]
    from bmshost_jbd import codec

    start = time.process_time()
    for _ in range(CYCLES):
        sim.feed(codec.READ_BASIC)
        sim.feed(codec.READ_CELLS)
    sim_cost = time.process_time() - start
    return {
        f"cycle_us_{cells}_cells_incl_simulator": round(total / CYCLES * 1e6, 1),
        f"simulator_us_{cells}_cells": round(sim_cost / CYCLES * 1e6, 1),
        f"cycle_us_{cells}_cells_host_only": round((total - sim_cost) / CYCLES * 1e6, 1),
    }


def _rss_after(seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as state:
        env = dict(os.environ, BMSHOST_STATE_DIR=state)
        proc = subprocess.Popen(
            [sys.executable, "-m", "bmshost.cli", "run", "--demo", "--json"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )
        def cpu_seconds() -> float:
            with open(f"/proc/{proc.pid}/stat") as fh:
                parts = fh.read().split()
            return (int(parts[13]) + int(parts[14])) / os.sysconf("SC_CLK_TCK")

        try:
            warm = min(5.0, seconds / 2)
            time.sleep(warm)  # start-up (imports, plugin loading) is not steady-state cost
            cpu_warm = cpu_seconds()
            time.sleep(seconds - warm)
            with open(f"/proc/{proc.pid}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh)
            rss_kb = int(fields["VmRSS"].split()[0])
            cpu = cpu_seconds()
        finally:
            proc.terminate()
            proc.wait(10)
    return {
        f"rss_mb_after_{seconds:.0f}s": round(rss_kb / 1024, 1),
        "run_cpu_s_total": round(cpu, 2),
        # 1 s poll interval: CPU per second of steady running = CPU per poll, all included
        # (the simulated pack, the JSON console output to /dev/null, asyncio, timers).
        "run_steady_cpu_ms_per_poll": round((cpu - cpu_warm) / (seconds - warm) * 1000, 2),
    }


def main() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for cells in (16, 32):
        out.update(asyncio.run(_cpu_per_cycle(cells)))
    out.update(_rss_after(float(os.environ.get("BENCH_RSS_SECONDS", "60"))))
    return out


if __name__ == "__main__":
    print(json.dumps(main()))
