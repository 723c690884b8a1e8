"""Test helpers for plugin authors, registered as a pytest plugin (entry point ``pytest11``).

Fixtures:

* ``pty_simulator`` — ``pty_simulator(sim)`` serves a ``Simulator`` on a real pseudo-terminal from
  a background thread and returns the device path (a real serial port for pyserial);
* ``sim_link`` — ``sim_link(sim)`` gives an in-process ``SimStreamLink``/``SimCanLink``;
* ``replay_link`` — ``replay_link(path_or_dict)`` plays back a capture;
* ``recording_sink`` — a ``RecordingSink`` that keeps every update it is given;
* ``bmshost_plugins`` — a loaded ``PluginManager`` (all installed plugins);
* ``MosquittoBroker`` / ``free_port`` — a real mosquitto on 127.0.0.1 for MQTT plugins' tests;
* ``registered_driver``, ``make_session``, ``make_simulator``, ``ManualClock``, ``ChunkedSimLink``
  — a family's own session against its own simulator, with injected time and BLE-sized chunks.

Everything here is also importable for use outside pytest.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import threading
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bmshost.driver import DriverSpec, Session, SessionContext, Simulator
from bmshost.lazy import resolve
from bmshost.link import BaseLink, CanLink, StreamLink
from bmshost.plugins import PluginManager, load_plugins
from bmshost.sink import BatteryHandle, BatteryUpdate, Sink
from bmshost.transports.replay import ReplayCanLink, ReplayStreamLink, load_capture
from bmshost.transports.sim import SimStreamLink, open_sim_link
from bmshost.url import LinkUrl, parse_link_url


class PtySimulator:
    """Serves a stream ``Simulator`` on a pseudo-terminal from a daemon thread."""

    def __init__(self, sim: Simulator, speed: float = 1.0) -> None:
        self.sim = sim
        self.speed = speed
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.lock = threading.Lock()  # hold it to change the simulator's state from a test
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"pty-sim {self.path}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                time.sleep(0.01)
                continue
            with self.lock:
                now = time.monotonic()
                self.sim.tick((now - last) * self.speed)
                last = now
                reply = self.sim.feed(data)
                if self.sim.silent:
                    reply = b""
            if reply:
                try:
                    os.write(self.master, reply)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


class ManualClock:
    """Injected time: tests move ``now``; links and hosts call the object for the time."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def registered_driver(plugin_module: Any) -> DriverSpec:
    """The ``DriverSpec`` a plugin module registers (without loading any other plugin)."""
    captured: list[DriverSpec] = []

    class _Registry:
        def add(self, spec: DriverSpec) -> DriverSpec:
            captured.append(spec)
            return spec

    plugin_module.bmshost_register_drivers(registry=_Registry())
    if len(captured) != 1:
        raise ValueError(f"{plugin_module.__name__} registered {len(captured)} drivers, expected 1")
    return captured[0]


def make_session(
    spec: DriverSpec,
    variant: str | None,
    link: BaseLink,
    *,
    address: int | None = None,
    options: Any = None,
    timeout: float = 0.2,
    retries: int = 1,
    **kwargs: Any,
) -> Session:
    """A session of ``spec``'s ``variant`` on ``link`` (short timeouts suit simulators)."""
    v = spec.variant(variant)
    ctx = SessionContext(link=link, variant=v, options=options, address=address, timeout=timeout, retries=retries)
    session: Session = resolve(v.session)(ctx, **kwargs)
    return session


def make_simulator(spec: DriverSpec, variant: str | None, **params: Any) -> Simulator:
    simulator: Simulator = resolve(spec.variant(variant).simulator)(**params)
    return simulator


class ChunkedSimLink(SimStreamLink):
    """Delivers the simulator's replies in ``chunk``-byte pieces, the way BLE notifications
    arrive, so a session's reassembly is exercised."""

    chunk = 20

    async def _read(self, timeout: float) -> bytes:
        if self._pending:
            data = bytes(self._pending[: self.chunk])
            del self._pending[: self.chunk]
            return data
        return await super()._read(timeout)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MosquittoBroker:
    """One mosquitto process on 127.0.0.1; ``stop``/``start`` keep the port (restart tests).

    ``extra`` adds mosquitto.conf lines to the listener (e.g. TLS certificates).
    """

    def __init__(self, tmp: Path, extra: str = "") -> None:
        self.port = free_port()
        self.tmp = tmp
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        conf = self.tmp / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n{self.extra}")
        log = (self.tmp / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.01)
        raise RuntimeError(f"mosquitto did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


class RecordingSink(Sink):
    """Keeps every update; ``updates[name]`` lists them per battery."""

    name = "recording"

    def __init__(self) -> None:
        self.updates: dict[str, list[BatteryUpdate]] = {}
        self.batteries: dict[str, BatteryHandle] = {}
        self.started = False
        self.stopped = False

    async def start(self) -> None:
        self.started = True

    def add_battery(self, battery: BatteryHandle) -> None:
        self.batteries[battery.name] = battery

    def publish(self, battery: BatteryHandle, update: BatteryUpdate) -> None:
        self.updates.setdefault(battery.name, []).append(update)

    async def stop(self) -> None:
        self.stopped = True

    def last(self, name: str | None = None) -> BatteryUpdate:
        key = name or next(iter(self.updates))
        return self.updates[key][-1]


def make_sim_link(sim: Simulator, url: str = "sim:test", clock: Callable[[], float] = time.monotonic) -> StreamLink | CanLink:
    return open_sim_link(parse_link_url(url), {}, simulator=sim, clock=clock)


def make_replay_link(capture: str | Path | dict[str, Any]) -> StreamLink | CanLink:
    if isinstance(capture, dict):
        data = capture
        url = LinkUrl("replay", "<memory>", {}, "replay:<memory>")
    else:
        data = load_capture(capture)
        url = parse_link_url(f"replay:{capture}")
    is_can = data.get("transport") == "can" or any(
        "#" in x for ex in data["exchanges"] for x in ex.get("rx", [])
    )
    return ReplayCanLink(url, data) if is_can else ReplayStreamLink(url, data)


@pytest.fixture
def pty_simulator() -> Iterator[Callable[..., PtySimulator]]:
    servers: list[PtySimulator] = []

    def start(sim: Simulator, speed: float = 1.0) -> PtySimulator:
        server = PtySimulator(sim, speed)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def sim_link() -> Callable[..., StreamLink | CanLink]:
    return make_sim_link


@pytest.fixture
def replay_link() -> Callable[..., StreamLink | CanLink]:
    return make_replay_link


@pytest.fixture
def recording_sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture(scope="session")
def bmshost_plugins() -> PluginManager:
    return load_plugins()


def load_capture_fixture(path: str | Path) -> list[dict[str, Any]]:
    """Read a ``shared/captures/<family>.json``-style list of frame sets."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of frame sets")
    return data
