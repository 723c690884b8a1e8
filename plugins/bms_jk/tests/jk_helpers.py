"""Shared helpers of the JK tests: contexts, links, an injectable clock, the capture fixture."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bmshost.driver import DriverSpec, Session, SessionContext, Simulator
from bmshost.link import BaseLink, CanLink, StreamLink
from bmshost.transports.sim import SimCanLink, SimStreamLink
from bmshost.url import LinkUrl
from bmshost_jk.options import JkOptions
from bmshost_jk.plugin import driver_spec

FIXTURES = Path(__file__).parent / "fixtures"
SPEC: DriverSpec = driver_spec()


def captures(variant_prefix: str = "") -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((FIXTURES / "jk.json").read_text(encoding="utf-8"))
    return [c for c in data if c["variant"].startswith(variant_prefix)]


class Clock:
    """An injected monotonic clock: tests move time, nothing sleeps."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def sim_stream(sim: Simulator, clock: Callable[[], float] = time.monotonic) -> SimStreamLink:
    return SimStreamLink(LinkUrl("sim", "jk", {}, "sim:jk"), sim, clock)


def sim_can(sim: Simulator, clock: Callable[[], float] = time.monotonic) -> SimCanLink:
    return SimCanLink(LinkUrl("sim", "jk", {}, "sim:jk"), sim, clock)


def context(link: BaseLink, variant: str, *, address: int | None = None, timeout: float = 0.2,
            retries: int = 1, **options: Any) -> SessionContext:
    return SessionContext(
        link=link, variant=SPEC.variant(variant), options=JkOptions(**options), address=address,
        timeout=timeout, retries=retries, log=logging.getLogger("test.jk"),
    )


def session(link: BaseLink, variant: str, **kw: Any) -> Session:
    from bmshost.lazy import resolve

    factory = resolve(SPEC.variant(variant).session)
    result: Session = factory(context(link, variant, **kw))
    return result


__all__ = ["CanLink", "Clock", "StreamLink", "captures", "context", "session", "sim_can",
           "sim_stream"]


class ChunkedBleLink(StreamLink):
    """A BLE-like stream: the simulator's output arrives as ``mtu``-byte notifications, one per
    read, with the BLE module's ``AT\\r\\n`` line injected before every ``at_every``-th chunk.
    When ``stream_period`` is set, the BMS streams a cell-info record whenever that much time
    (of the injected clock) has passed, as a real JK does after a 0x96 request."""

    def __init__(self, sim: Any, clock: Callable[[], float], *, mtu: int = 20, at_every: int = 0,
                 stream_period: float | None = None) -> None:
        super().__init__(LinkUrl("ble", "C8:47:8C:00:00:01", {}, "ble://C8:47:8C:00:00:01"))
        self.sim = sim
        self.clock = clock
        self.mtu = mtu
        self.at_every = at_every
        self.stream_period = stream_period
        self.notifications: list[bytes] = []
        self.written: list[bytes] = []
        self._chunks = 0
        self._last_stream = clock()
        self._open = False

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    def _queue(self, data: bytes) -> None:
        for i in range(0, len(data), self.mtu):
            self._chunks += 1
            if self.at_every and self._chunks % self.at_every == 0:
                self.notifications.append(b"AT\r\n")
            self.notifications.append(data[i : i + self.mtu])

    async def _write(self, data: bytes) -> None:
        self.written.append(data)
        self._queue(self.sim.feed(data))

    async def _read(self, timeout: float) -> bytes:
        now = self.clock()
        if self.stream_period is not None and now - self._last_stream >= self.stream_period:
            self._last_stream = now
            self._queue(self.sim.stream())
        if self.notifications:
            return self.notifications.pop(0)
        import asyncio

        await asyncio.sleep(min(timeout, 0.001))
        return b""
