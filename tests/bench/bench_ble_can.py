"""CPU per poll cycle of a 16-cell JBD pack over BLE (bleak stand-in) and CAN (python-can
virtual bus), against the serial figure; and 16 BLE batteries sharing one adapter.

    uv run python tests/bench/bench_ble_can.py

* ``jbd_serial_16s_us_per_read``: ``JbdSession.read()`` over an in-process ``SimStreamLink``.
* ``jbd_ble_16s_us_per_read``: ``JbdBleSession.read()`` over ``BleStreamLink`` with the bleak
  stand-in (writes split to the MTU, replies in 20-byte notifications, each its own loop callback).
* ``jbd_can_16s_us_per_read``: ``JbdCanSession.read()`` over ``PythonCanLink`` on the virtual bus;
  each cycle the simulator puts one broadcast round (19 frames) on the bus first, and its CPU
  (python-can's reader thread included) is counted too: an upper bound.
* ``jbd_can_16s_us_per_read_sim_link``: the same session over the in-process ``SimCanLink``
  (no python-can): the driver's own cost, comparable with the serial figure.
* ``ble16_*``: 16 batteries in ``rotate`` mode on one adapter with the default 4 slots, polled
  every 5 s for 12 intervals (poll loops staggered over the interval, as a host starts them),
  with a 1 s connect time and 0.2 s idle hold; run with time scaled
  down 50×, results given in unscaled seconds. ``ble16_missed_polls`` must be 0 and
  ``ble16_peak_connections`` at most ``ble16_slots``.

CPU figures are µs of process CPU time (``time.process_time``) per read.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

CYCLES = 1000
WARMUP = 30
ADDRESS = "A4:C1:38:00:00:{:02X}"


def _jbd_variants() -> dict[str, Any]:
    from bmshost.plugins import Selection, load_plugins

    spec = load_plugins(Selection(drivers=frozenset({"jbd"}))).registries.drivers.get("jbd")
    assert spec is not None
    return {v.name: v for v in spec.variants}


def _ctx(link: Any, variant: Any, timeout: float = 1.0) -> Any:
    from bmshost.driver import SessionContext

    return SessionContext(link=link, variant=variant, options=None, timeout=timeout, retries=0)


async def _measure(read: Any, cycles: int = CYCLES, before: Any = None) -> float:
    for _ in range(WARMUP):
        if before:
            before()
        await read()
    start = time.process_time()
    for _ in range(cycles):
        if before:
            before()
        await read()
    return (time.process_time() - start) / cycles * 1e6


async def serial_read(variants: dict[str, Any]) -> float:
    from bmshost.testing import make_sim_link
    from bmshost_jbd.session import JbdSession
    from bmshost_jbd.simulator import JbdSimulator

    link = make_sim_link(JbdSimulator(cells=16), url="sim:jbd")
    await link.open()
    session = JbdSession(_ctx(link, variants["serial"]))
    return await _measure(session.read)


async def ble_read(variants: dict[str, Any]) -> float:
    from bmshost.url import parse_link_url
    from bmshost_jbd.ble import JbdBleSession, JbdBleSimulator
    from bmshost_transport_ble.link import open_ble_link
    from bmshost_transport_ble.manager import ConnectionManager
    from bmshost_transport_ble.standin import SimulatedBleBackend, StandinDevice, gatt

    address = ADDRESS.format(1)
    device = StandinDevice(
        address=address, simulator=JbdBleSimulator(cells=16), services=gatt("ff00", "ff01", "ff02")
    )
    link = open_ble_link(
        parse_link_url(f"ble://{address}"),
        variants["ble"].link_params,
        backend=SimulatedBleBackend([device]),
        manager=ConnectionManager(),
    )
    await link.open()
    session = JbdBleSession(_ctx(link, variants["ble"]))
    result = await _measure(session.read)
    await link.close()
    return result


async def can_read(variants: dict[str, Any]) -> float:
    from bmshost.url import parse_link_url
    from bmshost_jbd.can_session import JbdCanSession
    from bmshost_jbd.can_sim import JbdCanSimulator
    from bmshost_transport_can.hub import BusHub
    from bmshost_transport_can.link import open_can_link
    from bmshost_transport_can.simbus import SimulatorOnBus

    channel = f"bench-jbd-can-{time.monotonic_ns()}"
    async with SimulatorOnBus(JbdCanSimulator(cells=16), channel, period=3600.0) as served:
        link = open_can_link(
            parse_link_url(f"can://{channel}?interface=virtual"),
            variants["can"].link_params,
            hub=BusHub(),
        )
        await link.open()
        session = JbdCanSession(_ctx(link, variants["can"]))
        await asyncio.sleep(0.05)  # let the start-up broadcast arrive
        result = await _measure(session.read, cycles=CYCLES // 2, before=served.broadcast_now)
        await link.close()
    return result


async def can_read_in_process(variants: dict[str, Any]) -> float:
    from bmshost.testing import make_sim_link
    from bmshost_jbd.can_session import JbdCanSession
    from bmshost_jbd.can_sim import JbdCanSimulator

    link = make_sim_link(JbdCanSimulator(cells=16), url="sim:jbd?variant=can")
    await link.open()
    session = JbdCanSession(_ctx(link, variants["can"]))
    return await _measure(session.read)


async def ble_sixteen(variants: dict[str, Any], scale: float = 0.02) -> dict[str, float]:
    """16 rotate-mode batteries, 5 s poll interval, default slots, time scaled by ``scale``."""
    from bmshost.url import parse_link_url
    from bmshost_jbd.ble import JbdBleSession, JbdBleSimulator
    from bmshost_transport_ble.link import open_ble_link
    from bmshost_transport_ble.manager import DEFAULT_SLOTS, BackoffPolicy, ConnectionManager
    from bmshost_transport_ble.standin import SimulatedBleBackend, StandinDevice, gatt

    batteries, intervals, poll = 16, 12, 5.0
    connect_s, idle_s = 1.0, 0.2
    backend = SimulatedBleBackend()
    manager = ConnectionManager(slots=DEFAULT_SLOTS, policy=BackoffPolicy(initial=2.0 * scale))
    sessions = []
    for i in range(batteries):
        address = ADDRESS.format(i)
        backend.add(
            StandinDevice(
                address=address,
                simulator=JbdBleSimulator(cells=16),
                services=gatt("ff00", "ff01", "ff02"),
                connect_delay=connect_s * scale,
            )
        )
        query = f"mode=rotate&idle_disconnect={idle_s * scale}&connect_timeout={20 * scale}"
        link = open_ble_link(
            parse_link_url(f"ble://{address}?{query}"),
            variants["ble"].link_params,
            backend=backend,
            manager=manager,
        )
        sessions.append(JbdBleSession(_ctx(link, variants["ble"], timeout=1.0 * scale)))

    missed = 0
    errors: list[str] = []
    worst = 0.0
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.01

    async def battery(index: int, session: Any) -> None:
        nonlocal missed, worst
        offset = index * poll / batteries  # a host starts each battery's poll loop on its own
        for k in range(intervals):
            due = start + (offset + k * poll) * scale
            await asyncio.sleep(max(0.0, due - loop.time()))
            try:
                if not session.link.is_open:
                    await session.link.open()
                await session.read()  # the session holds link.exclusive() per request
            except Exception as exc:  # a failed poll is what this benchmark counts
                errors.append(f"{type(exc).__name__}: {exc}")
                missed += 1
                continue
            late = loop.time() - due
            worst = max(worst, late / scale)
            if late > poll * scale:
                missed += 1

    cpu = time.process_time()
    await asyncio.gather(*(battery(i, s) for i, s in enumerate(sessions)))
    cpu = time.process_time() - cpu
    for s in sessions:
        await s.link.close()
    for reason in sorted(set(errors)):
        print(f"ble16: failed poll: {reason}", file=sys.stderr)
    return {
        "ble16_slots": float(manager.slots),
        "ble16_peak_connections": float(backend.peak),
        "ble16_missed_polls": float(missed),
        "ble16_worst_poll_latency_s": round(worst, 2),
        "ble16_cpu_us_per_battery_poll": round(cpu / (batteries * intervals) * 1e6, 1),
    }


async def _main() -> dict[str, float]:
    variants = _jbd_variants()
    serial = await serial_read(variants)
    ble = await ble_read(variants)
    can = await can_read(variants)
    can_driver = await can_read_in_process(variants)
    out = {
        "jbd_serial_16s_us_per_read": round(serial, 1),
        "jbd_ble_16s_us_per_read": round(ble, 1),
        "jbd_can_16s_us_per_read": round(can, 1),
        "jbd_can_16s_us_per_read_sim_link": round(can_driver, 1),
        "jbd_ble_vs_serial": round(ble / serial, 2),
        "jbd_can_vs_serial": round(can / serial, 2),
        "jbd_can_sim_link_vs_serial": round(can_driver / serial, 2),
    }
    out.update(await ble_sixteen(variants))
    return out


def main() -> dict[str, float]:
    return asyncio.run(_main())


if __name__ == "__main__":
    print(json.dumps(main()))
