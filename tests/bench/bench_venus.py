"""Benchmark of the Venus sink: CPU and D-Bus messages per publish cycle, 16-cell battery.

Runs a private dbus-daemon, one sink and one fake battery with a 16-cell sample. Measures with
time.process_time (all threads of this process: the asyncio side that renders and diffs, and
the GLib thread that stores and signals):

* steady_us_per_cycle: values unchanged (the common case on a resting pack), no message;
* changing_us_per_cycle: current, power, SoC and one cell change every cycle, one ItemsChanged;
* messages_per_steady_cycle / messages_per_changing_cycle: signals the service emitted;
* start_to_first_values_ms: wall time from the first publish until GetItems answers.

Run: ``cd /work/main && uv run python tests/bench/bench_venus.py``
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
import time
from typing import Any

import dbus.bus
import dbus.mainloop

from bmshost_sink_venus.testing import battery, make_sink, sample16, update

CYCLES = 2000


async def _bench(address: str) -> dict[str, Any]:
    sink = make_sink(use_localsettings=False)
    await sink.start()
    bat = battery("BENCH", port="/dev/ttyUSB0")
    s0 = sample16()
    t0 = time.perf_counter()
    sink.publish(bat, update(t=0.0, sample=s0))
    entry = sink.entries[id(bat)]
    while entry.service is None:
        await asyncio.sleep(0.0005)
    client = dbus.bus.BusConnection(address, mainloop=dbus.mainloop.NULL_MAIN_LOOP)
    client.set_exit_on_disconnect(False)
    items = await asyncio.to_thread(
        lambda: client.get_object(entry.service.name, "/", introspect=False).GetItems(
            dbus_interface="com.victronenergy.BusItem"
        )
    )
    first_ms = (time.perf_counter() - t0) * 1000
    service = entry.service

    async def settle() -> None:
        # Let the GLib thread drain its queue so its CPU lands inside the measurement.
        await asyncio.sleep(0.05)

    before = service.signals_sent
    c0 = time.process_time()
    for i in range(CYCLES):
        sink.publish(bat, update(t=1.0 + i, sample=s0))
    await settle()
    steady = (time.process_time() - c0) / CYCLES
    steady_msgs = (service.signals_sent - before) / CYCLES

    changing = [
        sample16(offset=0.001 * (i % 2), current=-12.0 - (i % 7), soc=80.0 - (i % 3))
        for i in range(CYCLES)
    ]
    before = service.signals_sent
    c0 = time.process_time()
    for i, s in enumerate(changing):
        sink.publish(bat, update(t=10000.0 + i, sample=s))
        if i % 50 == 0:
            await asyncio.sleep(0)  # let the GLib side run as it would between polls
    await settle()
    while service.signals_sent - before < CYCLES and time.process_time() - c0 < 60:
        await asyncio.sleep(0.01)
    changed = (time.process_time() - c0) / CYCLES
    changing_msgs = (service.signals_sent - before) / CYCLES
    client.close()
    await sink.stop()
    return {
        "paths": len(items),
        "steady_us_per_cycle": round(steady * 1e6, 1),
        "changing_us_per_cycle": round(changed * 1e6, 1),
        "messages_per_steady_cycle": steady_msgs,
        "messages_per_changing_cycle": round(changing_msgs, 3),
        "start_to_first_values_ms": round(first_ms, 1),
    }


def main() -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="bench-venus-")
    out = subprocess.run(
        [
            "dbus-daemon",
            "--session",
            "--fork",
            "--print-address=1",
            "--print-pid=1",
            f"--address=unix:path={tmp}/bus",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    address, pid = out[0], int(out[1])
    old = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = address
    try:
        return asyncio.run(_bench(address))
    finally:
        os.kill(pid, 15)
        if old is None:
            os.environ.pop("DBUS_SESSION_BUS_ADDRESS", None)
        else:
            os.environ["DBUS_SESSION_BUS_ADDRESS"] = old


if __name__ == "__main__":
    print(json.dumps(main()))
