"""Shared helpers of the Seplos tests: a session of a registered variant on a simulator link."""

from __future__ import annotations

from typing import Any

from bmshost import testing
from bmshost.driver import Session, Simulator
from bmshost.link import BaseLink
from bmshost.testing import ManualClock, registered_driver
from bmshost.transports.sim import SimStreamLink
from bmshost.url import LinkUrl
from bmshost_seplos import plugin

Clock = ManualClock
ChunkedSimLink = testing.ChunkedSimLink


def spec() -> Any:
    return registered_driver(plugin)


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
    return testing.make_session(
        spec(), variant, link, address=address, options=options, timeout=timeout, retries=retries
    )


def make_sim(variant: str, **kwargs: Any) -> Simulator:
    return testing.make_simulator(spec(), variant, **kwargs)
