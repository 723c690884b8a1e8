"""CPU time per poll cycle of the JK driver: ``session.read()`` over an in-process link to the
variant's simulator, framing, checksums and decoding included, 16 cells.

    uv run python tests/bench/bench_jk.py

Numbers are µs of process CPU time per ``read()``; the simulator's work (building 300-byte
records, the serial TLV reply) is part of them, so they are an upper bound of the driver's cost.

* ``jk_serial_16s``: one 4E57 read-all request and reply per poll.
* ``jk_ble_16s``: a BMS that does not stream (SimStreamLink): each poll looks for buffered
  notifications, then asks with 0x96 and takes the settings and cell-info records.
* ``jk_ble_streamed_16s``: the steady state of a real JK: the cell-info record of the last
  second is waiting as fifteen 20-byte notifications (plus an ``AT\\r\\n`` line) and is
  reassembled and decoded without a request.
* ``jk_pb_16s``: one PB status trigger (record + Modbus acknowledge) per poll.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

CYCLES = 2000
WARMUP = 50


def _variant(name: str) -> Any:
    from bmshost_jk.plugin import driver_spec

    return driver_spec().variant(name)


class _StreamingBle:
    """A link whose far end streams one cell-info record per poll as 20-byte notifications."""

    @staticmethod
    def make(sim: Any, clock: Callable[[], float]) -> Any:
        from bmshost.link import StreamLink
        from bmshost.url import LinkUrl

        class Link(StreamLink):
            def __init__(self) -> None:
                super().__init__(LinkUrl("ble", "bench", {}, "ble://bench"))
                self.chunks: list[bytes] = []
                self._open = False

            async def open(self) -> None:
                self._open = True

            async def close(self) -> None:
                self._open = False

            @property
            def is_open(self) -> bool:
                return self._open

            def push_stream(self) -> None:
                data = sim.stream()
                self.chunks.append(b"AT\r\n")
                self.chunks += [data[i : i + 20] for i in range(0, len(data), 20)]

            async def _write(self, data: bytes) -> None:
                out = sim.feed(data)
                self.chunks += [out[i : i + 20] for i in range(0, len(out), 20)]

            async def _read(self, timeout: float) -> bytes:
                if self.chunks:
                    return self.chunks.pop(0)
                await asyncio.sleep(timeout)  # like a radio: nothing more this second
                return b""

        return Link()


async def _measure(variant_name: str, options: dict[str, Any], streamed: bool = False,
                   cycles: int = CYCLES) -> float:
    from bmshost.driver import SessionContext
    from bmshost.lazy import resolve
    from bmshost.transports.sim import SimStreamLink
    from bmshost.url import LinkUrl
    from bmshost_jk.options import JkOptions

    variant = _variant(variant_name)
    sim = resolve(variant.simulator)(**options)
    now = [0.0]
    link: Any
    if streamed:
        link = _StreamingBle.make(sim, lambda: now[0])
    else:
        link = SimStreamLink(LinkUrl("sim", "jk", {}, "sim:jk"), sim, lambda: now[0])
    await link.open()
    ctx = SessionContext(link=link, variant=variant, options=JkOptions(pb_command_gap=0.0),
                         address=1 if variant_name == "pb" else None, timeout=1.0, retries=0)
    session = resolve(variant.session)(ctx)
    await session.connect()

    async def poll() -> None:
        now[0] += 1.0  # one simulated second per poll: the pack's state moves
        if streamed:
            sim.tick(1.0)
            link.push_stream()
        await session.read()

    for _ in range(WARMUP):
        await poll()
    start = time.process_time()
    for _ in range(cycles):
        await poll()
    return (time.process_time() - start) / cycles * 1e6


def main() -> dict[str, float]:
    cases: tuple[tuple[str, str, dict[str, Any], bool, int], ...] = (
        ("jk_serial_16s_us_per_read", "serial", {"cells": 16, "current": -10.0}, False, CYCLES),
        # each poll also waits 10 ms (no CPU) for notifications that never come: fewer cycles
        ("jk_ble_16s_us_per_read", "ble", {"cells": 16, "current": -10.0}, False, 500),
        ("jk_ble_streamed_16s_us_per_read", "ble", {"cells": 16, "current": -10.0}, True, 500),
        ("jk_pb_16s_us_per_read", "pb", {"cells": 16, "current": -10.0}, False, CYCLES),
    )
    results: dict[str, float] = {}
    for name, variant, options, streamed, cycles in cases:
        results[name] = round(asyncio.run(_measure(variant, options, streamed, cycles)), 1)
    return results


if __name__ == "__main__":
    print(json.dumps(main()))
