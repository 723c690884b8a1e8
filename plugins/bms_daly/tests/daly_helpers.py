"""Shared helpers of the Daly tests: a session of a registered variant on a simulator link."""

from __future__ import annotations

from typing import Any

from bmshost import testing
from bmshost.driver import Session, Simulator
from bmshost.link import BaseLink
from bmshost.testing import ManualClock, registered_driver
from bmshost.transports.sim import SimCanLink, SimStreamLink
from bmshost.url import LinkUrl
from bmshost_daly import plugin
from bmshost_daly.options import DalyOptions

Clock = ManualClock
ChunkedSimLink = testing.ChunkedSimLink


def spec() -> Any:
    return registered_driver(plugin)


def sim_link(sim: Simulator, clock: Clock | None = None) -> BaseLink:
    url = LinkUrl("sim", "daly", {}, "sim:daly")
    if sim.kind == "can":
        return SimCanLink(url, sim, clock or Clock())
    return SimStreamLink(url, sim, clock or Clock())


def make_session(
    variant: str,
    link: BaseLink,
    address: int | None = None,
    options: DalyOptions | None = None,
    timeout: float = 0.2,
    retries: int = 1,
    **kwargs: Any,
) -> Session:
    return testing.make_session(
        spec(), variant, link, address=address, options=options, timeout=timeout, retries=retries, **kwargs
    )


def make_sim(variant: str, **kwargs: Any) -> Simulator:
    return testing.make_simulator(spec(), variant, **kwargs)
