"""Shared helpers of the Seplos tests: a session of a registered variant on a simulator link."""

from __future__ import annotations

from typing import Any

from bmshost.driver import Session, SessionContext, Simulator
from bmshost.lazy import resolve
from bmshost.link import BaseLink
from bmshost.transports.sim import SimStreamLink
from bmshost.url import LinkUrl
from bmshost_seplos import plugin


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def spec() -> Any:
    captured: list[Any] = []

    class Reg:
        def add(self, s: Any) -> Any:
            captured.append(s)
            return s

    plugin.bmshost_register_drivers(Reg())  # type: ignore[arg-type]
    return captured[0]


def sim_link(sim: Simulator, clock: Clock | None = None) -> BaseLink:
    return SimStreamLink(LinkUrl("sim", "seplos", {}, "sim:seplos"), sim, clock or Clock())


def make_session(
    variant: str,
    link: BaseLink,
    address: int | None = None,
    options: Any = None,
    timeout: float = 0.2,
    retries: int = 1,
) -> Session:
    v = spec().variant(variant)
    ctx = SessionContext(
        link=link, variant=v, options=options, address=address, timeout=timeout, retries=retries
    )
    session: Session = resolve(v.session)(ctx)
    return session


def make_sim(variant: str, **kwargs: Any) -> Simulator:
    sim: Simulator = resolve(spec().variant(variant).simulator)(**kwargs)
    return sim


class ChunkedSimLink(SimStreamLink):
    """Delivers replies in 20-byte pieces, the way BLE notifications arrive."""

    async def _read(self, timeout: float) -> bytes:
        if self._pending:
            data = bytes(self._pending[:20])
            del self._pending[:20]
            return data
        return await super()._read(timeout)
