"""``sim:`` links: a BMS simulator in the same process, behind the ordinary link interface.

``sim:jbd?cells=16&variant=serial`` builds the jbd driver's simulator. Time in the simulated pack
advances with the clock the link is given (the wall clock by default, an injected one in tests).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from bmshost.driver import Simulator
from bmshost.errors import LinkError
from bmshost.link import CanFrame, CanLink, StreamLink
from bmshost.url import LinkUrl

Clock = Callable[[], float]


class SimStreamLink(StreamLink):
    """A byte link whose far end is a ``Simulator``'s ``feed``."""

    def __init__(self, url: LinkUrl, simulator: Simulator, clock: Clock = time.monotonic) -> None:
        super().__init__(url)
        self.simulator = simulator
        self._clock = clock
        self._last = clock()
        self._pending = bytearray()
        self._open = False

    @property
    def description(self) -> str:
        return f"Simulated {self.url.target}"

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    def _advance(self) -> None:
        now = self._clock()
        if now > self._last:
            self.simulator.tick(now - self._last)
        self._last = now

    async def _write(self, data: bytes) -> None:
        self._advance()
        reply = self.simulator.feed(data)
        if reply and not self.simulator.silent:
            self._pending += reply

    async def _read(self, timeout: float) -> bytes:
        if self._pending:
            data = bytes(self._pending)
            self._pending.clear()
            return data
        # Nothing will come unless the simulator is fed again: behave like a silent wire.
        await asyncio.sleep(timeout)
        return b""


class SimCanLink(CanLink):
    """A CAN link whose bus holds one simulator: it answers requests and broadcasts."""

    def __init__(self, url: LinkUrl, simulator: Simulator, clock: Clock = time.monotonic) -> None:
        super().__init__(url)
        self.simulator = simulator
        self._clock = clock
        self._last = clock()
        self._queue: deque[CanFrame] = deque()
        self._open = False

    @property
    def description(self) -> str:
        return f"Simulated CAN {self.url.target}"

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    def _advance(self) -> None:
        now = self._clock()
        if now > self._last:
            self.simulator.tick(now - self._last)
        self._last = now

    async def send(self, frame: CanFrame) -> None:
        if not self._open:
            raise LinkError(f"{self.description}: not open")
        self._advance()
        if not self.simulator.silent:
            self._queue.extend(self.simulator.on_frame(frame))
        self._capture(frame, [])

    async def recv(self, timeout: float) -> CanFrame | None:
        if not self._queue:
            self._advance()
            if not self.simulator.silent:
                self._queue.extend(self.simulator.broadcast())
        if self._queue:
            frame = self._queue.popleft()
            self._capture(None, [frame])
            return frame
        await asyncio.sleep(timeout)
        return None


def build_simulator(driver: str, params: Mapping[str, str], registries: Any = None) -> Simulator:
    """Make the simulator a driver registered, passing URL parameters as keyword options."""
    from bmshost.lazy import resolve

    if registries is None:
        from bmshost.plugins import Selection, load_plugins

        registries = load_plugins(Selection(drivers=frozenset({driver}))).registries
    spec = registries.drivers.get(driver)
    if spec is None:
        raise LinkError(f"sim:{driver}: no such driver installed")
    try:
        variant = spec.variant(params.get("variant"))
    except KeyError as exc:
        raise LinkError(f"sim:{driver}: {exc.args[0]}") from None
    if variant.simulator is None:
        raise LinkError(f"sim:{driver}: variant {variant.name!r} has no simulator")
    factory = resolve(variant.simulator)
    kwargs = {k: _num(v) for k, v in params.items() if k not in ("variant", "speed")}
    try:
        sim: Simulator = factory(**kwargs)
    except (TypeError, ValueError) as exc:
        raise LinkError(f"sim:{driver}: bad simulator parameter: {exc}") from None
    return sim


def _num(value: str) -> Any:
    for conv in (int, float):
        try:
            return conv(value)
        except ValueError:
            pass
    return value


def open_sim_link(
    url: LinkUrl, params: Mapping[str, Any] | None = None, *, registries: Any = None,
    simulator: Simulator | None = None, clock: Clock = time.monotonic,
) -> StreamLink | CanLink:
    """Transport factory for ``sim:<driver>?...`` URLs."""
    sim = simulator or build_simulator(url.target, url.params, registries)
    speed = url.float_param("speed", 1.0)  # simulated seconds per real second (demos)
    if speed != 1.0:
        base = clock

        def clock() -> float:
            return base() * speed

    if sim.kind == "can":
        return SimCanLink(url, sim, clock)
    return SimStreamLink(url, sim, clock)
