"""CPU time per poll cycle of the Daly and Seplos drivers: ``session.read()`` over an in-process
``SimStreamLink`` to the family's simulator, framing, checksums and decoding included, 16 cells.

    uv run python tests/bench/bench_daly_seplos.py

Numbers are µs of process CPU time per ``read()``; the simulator's own work (building replies)
is part of them, so they are an upper bound of the driver's cost.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

CYCLES = 2000
WARMUP = 50

# (result name, driver, variant, simulator options); one or two variants of each family.
CASES: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("daly_serial_16s_us_per_read", "daly", "serial", {"cells": 16, "current": -10.0}),
    ("daly_ble_d2_16s_us_per_read", "daly", "ble", {"cells": 16, "current": -10.0}),
    ("seplos_v2_16s_us_per_read", "seplos", "serial", {"cells": 16, "current": -10.0}),
    ("seplos_v3_16s_us_per_read", "seplos", "v3", {"cells": 16, "current": -10.0}),
)


def _variant(driver: str, name: str) -> Any:
    captured: list[Any] = []

    class Registry:
        def add(self, spec: Any) -> Any:
            captured.append(spec)
            return spec

    if driver == "daly":
        from bmshost_daly import plugin as daly_plugin

        daly_plugin.bmshost_register_drivers(Registry())  # type: ignore[arg-type]
    else:
        from bmshost_seplos import plugin as seplos_plugin

        seplos_plugin.bmshost_register_drivers(Registry())  # type: ignore[arg-type]
    return captured[0].variant(name)


async def _measure(driver: str, variant_name: str, options: dict[str, Any]) -> float:
    from bmshost.driver import SessionContext
    from bmshost.lazy import resolve
    from bmshost.transports.sim import SimStreamLink
    from bmshost.url import LinkUrl

    variant = _variant(driver, variant_name)
    sim = resolve(variant.simulator)(**options)
    now = [0.0]
    link = SimStreamLink(LinkUrl("sim", driver, {}, f"sim:{driver}"), sim, lambda: now[0])
    await link.open()
    ctx = SessionContext(link=link, variant=variant, options=None, timeout=1.0, retries=0)
    session = resolve(variant.session)(ctx)
    await session.connect()
    for _ in range(WARMUP):
        now[0] += 1.0
        await session.read()
    start = time.process_time()
    for _ in range(CYCLES):
        now[0] += 1.0  # one simulated second per poll: the pack's state moves
        await session.read()
    return (time.process_time() - start) / CYCLES * 1e6


def main() -> dict[str, float]:
    results: dict[str, float] = {}
    for name, driver, variant, options in CASES:
        results[name] = round(asyncio.run(_measure(driver, variant, options)), 1)
    return results


if __name__ == "__main__":
    print(json.dumps(main()))
