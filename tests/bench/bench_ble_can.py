"""Host CPU per poll cycle of a 16-cell JBD pack over serial, BLE (bleak stand-in) and CAN
(python-can virtual bus), and 16 BLE batteries sharing one adapter.

    uv run python tests/bench/bench_ble_can.py

What is measured (the issue's target: BLE and CAN within 1.5x of serial)
-------------------------------------------------------------------------
The target is about the HOST's CPU: the transport link, the driver session and the codec. The
far end is test equipment and is kept out of every compared variant the same way:

* Its replies are computed before the clock starts. ``RecordedFarEnd`` (serial, BLE) holds the
  simulator's replies to the driver's requests for ``ROUNDS`` successive simulated seconds and
  answers from that table (a dict look-up); ``RecordedCanFarEnd`` holds the simulator's
  broadcast rounds as ready-made python-can messages. Values still change from poll to poll.
* CPU is ``time.thread_time()`` of the thread that runs the event loop (the host's thread),
  over ``CYCLES`` reads back to back after ``WARMUP`` reads. The CAN far end sends through its
  own virtual-bus handle (python-can copies each message for every receiver); that synchronous
  call's own thread time is measured and left out. Everything else in the loop thread counts.

The compared variants each run their real host code: serial is ``JbdSession`` over the
in-process ``SimStreamLink`` (no I/O at all: the strictest baseline); BLE is ``JbdBleSession``
over ``BleStreamLink`` with the bleak stand-in, which delivers the replies as 20-byte
notifications, one per event-loop iteration, through the callback real bleak calls; CAN is
``JbdCanSession`` over ``PythonCanLink`` and the shared-bus hub on python-can's virtual bus with
a file descriptor (``simbus.fd_virtual_bus``): the SocketCAN receive path, where the loop watches
the descriptor and drains every waiting frame, and python-can's ``recv`` runs in the loop
thread. One broadcast round (19 frames) arrives before each read, as between two polls of a BMS
that broadcasts once a second.

Keys
----
* ``jbd_{serial,ble,can}_16s_host_us``: host CPU per read as above; ``*_vs_serial``: ratios.
* ``jbd_can_16s_reader_thread_path_host_us`` / ``jbd_can_16s_virtual_reader_thread_us``: the
  plain virtual bus (no descriptor), read by the hub's reader thread: the loop thread's CPU and,
  apart, the reader thread's (python-can's queue plumbing, standing in for the kernel).
* ``jbd_can_16s_sim_link_host_us``: the CAN session over core's in-process ``SimCanLink``
  (no python-can at all), recorded broadcast rounds.
* The production serial transport on a real pseudo-terminal (and a TCP gateway), far end
  answering from the recorded table in another process, is measured by ``bench_serial.py``.
* ``*_with_simulator_us``: the earlier measure, kept for comparison: process CPU with the live
  simulator computing every reply (and, for CAN, the simulator's sends and python-can's reader
  thread) included.
* ``ble16_*``: 16 batteries in ``rotate`` mode on one adapter with the default slots, polled
  every 5 s for 12 intervals (poll loops staggered over the interval, as a host starts them),
  with a 1 s connect time and 0.2 s idle hold; run with time scaled down 50x, results given in
  unscaled seconds. ``ble16_missed_polls`` must be 0 and ``ble16_peak_connections`` at most
  ``ble16_slots``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from bmshost.driver import Simulator

CYCLES = 3000
WARMUP = 50
ROUNDS = 64  # recorded far-end states cycled through (values change from poll to poll)
ADDRESS = "A4:C1:38:00:00:{:02X}"


# -- far ends whose work is done before the clock starts ---------------------------------------


class RecordedFarEnd(Simulator):
    """A stream device answering from replies its simulator computed beforehand.

    ``requests`` are the frames the host sends each poll; for each of ``rounds`` simulated
    seconds the simulator is ticked and its reply to each request recorded. ``next_round`` moves
    to the next second (the benchmark calls it before every read). ``streamed`` optionally
    records what the device sends unasked each second (``extra(sim) -> bytes``).
    """

    kind = "stream"

    def __init__(
        self,
        sim: Any,
        requests: Iterable[bytes],
        rounds: int = ROUNDS,
        streamed: Callable[[Any], bytes] | None = None,
    ) -> None:
        self.requests = tuple(requests)
        self.table: list[dict[bytes, bytes]] = []
        self.stream: list[bytes] = []
        for _ in range(rounds):
            sim.tick(1.0)
            self.table.append({req: sim.feed(req) for req in self.requests})
            if streamed is not None:
                self.stream.append(streamed(sim))
        self.index = 0
        self._buf = b""

    def next_round(self) -> None:
        self.index = (self.index + 1) % len(self.table)

    def streamed_now(self) -> bytes:
        return self.stream[self.index]

    def feed(self, data: bytes) -> bytes:
        table = self.table[self.index]
        buf = self._buf + bytes(data)
        reply = table.get(buf)
        if reply is not None:
            self._buf = b""
            return reply
        self._buf = buf if any(r.startswith(buf) for r in table) else b""  # a split request
        return b""


class RecordedCanFarEnd:
    """A CAN device's broadcast rounds, computed beforehand, sent through the far end's own
    python-can bus handle (the virtual bus copies each message to every other handle, as the
    wire does). Sending runs in the loop thread; its CPU is accumulated in ``cpu`` (thread
    time, exact for this synchronous call) and left out of the host's figure."""

    def __init__(self, sim: Any, channel: str, rounds: int = ROUNDS) -> None:
        import can

        self.rounds: list[list[Any]] = []
        for _ in range(rounds):
            sim.tick(1.0)
            self.rounds.append(
                [
                    can.Message(
                        arbitration_id=f.arbitration_id,
                        data=f.data,
                        is_extended_id=f.is_extended_id,
                    )
                    for f in sim.broadcast()
                ]
            )
        self.index = 0
        self.cpu = 0.0
        self._bus = can.Bus(interface="virtual", channel=channel)

    def send_round(self) -> None:
        """Put the next broadcast round on the bus."""
        start = time.thread_time()
        self.index = (self.index + 1) % len(self.rounds)
        send = self._bus.send
        for msg in self.rounds[self.index]:
            send(msg)
        self.cpu += time.thread_time() - start

    def close(self) -> None:
        self._bus.shutdown()


class _RecordedCanSim(Simulator):
    """Recorded broadcast rounds as a ``Simulator`` for core's in-process ``SimCanLink``."""

    kind = "can"

    def __init__(self, sim: Any, rounds: int = ROUNDS) -> None:
        self.rounds = []
        for _ in range(rounds):
            sim.tick(1.0)
            self.rounds.append(tuple(sim.broadcast()))
        self.index = 0

    def next_round(self) -> None:
        self.index = (self.index + 1) % len(self.rounds)

    def broadcast(self) -> Any:
        return self.rounds[self.index]


# -- measuring ------------------------------------------------------------------------------


def _jbd_variants() -> dict[str, Any]:
    from bmshost.plugins import Selection, load_plugins

    spec = load_plugins(Selection(drivers=frozenset({"jbd"}))).registries.drivers.get("jbd")
    assert spec is not None
    return {v.name: v for v in spec.variants}


def _ctx(link: Any, variant: Any, timeout: float = 1.0) -> Any:
    from bmshost.driver import SessionContext

    return SessionContext(link=link, variant=variant, options=None, timeout=timeout, retries=0)


async def host_cpu(
    read: Callable[[], Any],
    before: Callable[[], None] | None = None,
    cycles: int = CYCLES,
    clock: Callable[[], float] = time.thread_time,
    far_end_cpu: Callable[[], float] | None = None,
) -> float:
    """µs of ``clock`` (the loop thread's CPU by default) per ``read()``, reads back to back.
    ``before`` runs ahead of every read (the far end's next second); what ``far_end_cpu``
    accounts of it is left out, the rest is counted (a table look-up: ~nothing)."""
    for _ in range(WARMUP):
        if before:
            before()
        await read()
    far_start = far_end_cpu() if far_end_cpu else 0.0
    start = clock()
    for _ in range(cycles):
        if before:
            before()
        await read()
    total = clock() - start
    if far_end_cpu:
        total -= far_end_cpu() - far_start
    return total / cycles * 1e6


def _jbd_requests() -> tuple[bytes, ...]:
    from bmshost_jbd import codec

    return (codec.READ_BASIC, codec.READ_CELLS)


async def serial_read(variants: dict[str, Any], recorded: bool = True) -> float:
    from bmshost.testing import make_sim_link
    from bmshost_jbd.session import JbdSession
    from bmshost_jbd.simulator import JbdSimulator

    sim: Any = JbdSimulator(cells=16)
    far = RecordedFarEnd(sim, _jbd_requests()) if recorded else None
    link = make_sim_link(far or sim, url="sim:jbd")
    await link.open()
    session = JbdSession(_ctx(link, variants["serial"]))
    if far is not None:
        return await host_cpu(session.read, far.next_round)
    return await host_cpu(session.read, clock=time.process_time, cycles=CYCLES // 2)


async def ble_read(variants: dict[str, Any], recorded: bool = True) -> float:
    from bmshost.url import parse_link_url
    from bmshost_jbd.ble import JbdBleSession, JbdBleSimulator
    from bmshost_transport_ble.link import open_ble_link
    from bmshost_transport_ble.manager import ConnectionManager
    from bmshost_transport_ble.standin import SimulatedBleBackend, StandinDevice, gatt

    address = ADDRESS.format(1)
    sim: Any = JbdBleSimulator(cells=16)
    far = RecordedFarEnd(sim, _jbd_requests()) if recorded else None
    device = StandinDevice(
        address=address, simulator=far or sim, services=gatt("ff00", "ff01", "ff02")
    )
    link = open_ble_link(
        parse_link_url(f"ble://{address}"),
        variants["ble"].link_params,
        backend=SimulatedBleBackend([device]),
        manager=ConnectionManager(),
    )
    await link.open()
    session = JbdBleSession(_ctx(link, variants["ble"]))
    if far is not None:
        result = await host_cpu(session.read, far.next_round)
    else:
        result = await host_cpu(session.read, clock=time.process_time, cycles=CYCLES // 2)
    await link.close()
    return result


def _thread_cpu(name_prefix: str) -> Callable[[], float]:
    """A CPU clock of the (first) running thread whose name starts with ``name_prefix``."""
    for thread in threading.enumerate():
        if thread.name.startswith(name_prefix) and thread.ident is not None:
            clock_id = time.pthread_getcpuclockid(thread.ident)
            return lambda: time.clock_gettime(clock_id)
    raise RuntimeError(f"no thread named {name_prefix}...")


async def can_read(variants: dict[str, Any], socketcan_like: bool) -> tuple[float, float]:
    """(host µs per read, virtual-bus reader thread µs per read) with recorded rounds.

    ``socketcan_like``: the host's bus handle has a file descriptor (``fd_virtual_bus``), so the
    hub takes the SocketCAN path (the loop watches the descriptor; no reader thread)."""
    from bmshost.url import parse_link_url
    from bmshost_jbd.can_session import JbdCanSession
    from bmshost_jbd.can_sim import JbdCanSimulator
    from bmshost_transport_can.hub import BusHub, python_can_bus
    from bmshost_transport_can.link import open_can_link
    from bmshost_transport_can.simbus import fd_virtual_bus

    def factory(interface: str, channel: str, bitrate: int | None) -> Any:
        if socketcan_like:
            return fd_virtual_bus(channel)
        return python_can_bus(interface, channel, bitrate)

    channel = f"bench-jbd-can-{time.monotonic_ns()}"
    far = RecordedCanFarEnd(JbdCanSimulator(cells=16), channel)
    link = open_can_link(
        parse_link_url(f"can://{channel}?interface=virtual"),
        variants["can"].link_params,
        hub=BusHub(factory),
    )
    await link.open()
    session = JbdCanSession(_ctx(link, variants["can"]))
    far.send_round()
    await session.read()
    reader: Callable[[], float] | None = None
    if not socketcan_like:
        reader = _thread_cpu("CAN reader")
    reader_start = reader() if reader else 0.0
    host = await host_cpu(session.read, far.send_round, far_end_cpu=lambda: far.cpu)
    reader_cpu = (reader() - reader_start) if reader else 0.0
    await link.close()
    far.close()
    return host, reader_cpu / (CYCLES + WARMUP) * 1e6


async def can_read_with_simulator(variants: dict[str, Any]) -> float:
    """The earlier measure: live simulator sending from the loop thread, process CPU."""
    from bmshost.url import parse_link_url
    from bmshost_jbd.can_session import JbdCanSession
    from bmshost_jbd.can_sim import JbdCanSimulator
    from bmshost_transport_can.hub import BusHub
    from bmshost_transport_can.link import open_can_link
    from bmshost_transport_can.simbus import SimulatorOnBus

    channel = f"bench-jbd-can-sim-{time.monotonic_ns()}"
    async with SimulatorOnBus(JbdCanSimulator(cells=16), channel, period=3600.0) as served:
        link = open_can_link(
            parse_link_url(f"can://{channel}?interface=virtual"),
            variants["can"].link_params,
            hub=BusHub(),
        )
        await link.open()
        session = JbdCanSession(_ctx(link, variants["can"]))
        await asyncio.sleep(0.05)  # let the start-up broadcast arrive
        result = await host_cpu(
            session.read, served.broadcast_now, cycles=CYCLES // 3, clock=time.process_time
        )
        await link.close()
    return result


async def can_read_sim_link(variants: dict[str, Any]) -> float:
    from bmshost.testing import make_sim_link
    from bmshost_jbd.can_session import JbdCanSession
    from bmshost_jbd.can_sim import JbdCanSimulator

    far = _RecordedCanSim(JbdCanSimulator(cells=16))
    link = make_sim_link(far, url="sim:jbd?variant=can")
    await link.open()
    session = JbdCanSession(_ctx(link, variants["can"]))
    return await host_cpu(session.read, far.next_round)


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
    can, _ = await can_read(variants, socketcan_like=True)
    can_thread, can_reader = await can_read(variants, socketcan_like=False)
    can_sim_link = await can_read_sim_link(variants)
    out = {
        "jbd_serial_16s_host_us": round(serial, 1),
        "jbd_ble_16s_host_us": round(ble, 1),
        "jbd_can_16s_host_us": round(can, 1),
        "jbd_ble_vs_serial": round(ble / serial, 2),
        "jbd_can_vs_serial": round(can / serial, 2),
        "jbd_can_16s_reader_thread_path_host_us": round(can_thread, 1),
        "jbd_can_16s_virtual_reader_thread_us": round(can_reader, 1),
        "jbd_can_16s_sim_link_host_us": round(can_sim_link, 1),
        "jbd_serial_16s_with_simulator_us": round(await serial_read(variants, recorded=False), 1),
        "jbd_ble_16s_with_simulator_us": round(await ble_read(variants, recorded=False), 1),
        "jbd_can_16s_with_simulator_us": round(await can_read_with_simulator(variants), 1),
    }
    out.update(await ble_sixteen(variants))
    return out


def main() -> dict[str, float]:
    return asyncio.run(_main())


if __name__ == "__main__":
    print(json.dumps(main()))
