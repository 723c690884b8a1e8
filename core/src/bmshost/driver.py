"""The BMS driver contract: what a family plugin registers, and the session and simulator shapes.

A family registers one ``DriverSpec`` with one ``VariantSpec`` per wire variant (serial, ble, can,
...). Heavy objects (sessions, simulators, decoders) are lazy references so that ``bmshost
plugins`` and start-up never import a driver the configuration does not use.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from bmshost.advertising import BleMatcher, to_matchers
from bmshost.capabilities import Capability
from bmshost.errors import UnsupportedCommand
from bmshost.link import BaseLink, CanFrame
from bmshost.model import Command, Sample


@attrs.frozen(slots=True, kw_only=True)
class Probe:
    """A cheap, read-only request that identifies a family on an unknown port."""

    request: bytes
    link_params: Mapping[str, Any] = attrs.field(factory=dict)  # e.g. {"baud": 9600}
    address: int | None = None
    timeout: float = 0.5
    accepts: Callable[[bytes], bool] | str | None = None  # reply check (lazy ref allowed)


@attrs.frozen(slots=True, kw_only=True)
class VariantSpec:
    """One wire variant of a family."""

    name: str  # "serial", "ble", "can", "pb", "v3", ...
    transports: tuple[str, ...]  # link kinds: "stream" (serial/tcp/ble), "can"
    capabilities: frozenset[Capability]
    session: Any  # Callable[[SessionContext], Session] or lazy "module:attr"
    simulator: Any = None  # Callable[..., Simulator] or lazy ref
    decoder: Any = None  # Callable[[Sequence[bytes|CanFrame]], Sample] or lazy ref (for `decode`)
    recognise: Callable[[bytes], bool] | None = None  # does this raw frame belong to the variant?
    link_params: Mapping[str, Any] = attrs.field(factory=dict)  # defaults: baud, parity, ...
    probes: tuple[Probe, ...] = ()
    # advertisement data that identifies this variant's devices in `bmshost scan ble`
    # (BleMatchers or dicts with the same keys; checked when the plugin registers)
    ble_matchers: tuple[BleMatcher, ...] = attrs.field(default=(), converter=to_matchers)
    description: str = ""


@attrs.frozen(slots=True, kw_only=True)
class DriverSpec:
    """A BMS family. ``variants[0]`` is the default variant."""

    name: str  # family name: the `driver =` value
    variants: tuple[VariantSpec, ...]
    description: str = ""
    options: type | None = None  # attrs class for the family's own battery-table keys

    def variant(self, name: str | None) -> VariantSpec:
        if name is None:
            return self.variants[0]
        for v in self.variants:
            if v.name == name:
                return v
        known = ", ".join(v.name for v in self.variants)
        raise KeyError(f"driver {self.name!r} has no variant {name!r} (variants: {known})")

    @property
    def capabilities(self) -> frozenset[Capability]:
        out: set[Capability] = set()
        for v in self.variants:
            out |= v.capabilities
        return frozenset(out)


@attrs.define(slots=True, kw_only=True)
class SessionContext:
    """What the host hands a session factory."""

    link: BaseLink
    variant: VariantSpec
    options: Any  # instance of DriverSpec.options, or None
    address: int | None = None
    timeout: float = 1.0  # per request, seconds
    retries: int = 2  # extra attempts per request before a read fails
    log: logging.Logger = attrs.field(factory=lambda: logging.getLogger("bmshost.driver"))


class Session(ABC):
    """Drives a codec over a link. One instance per battery; the host serialises calls.

    ``connect`` is called after the link opens (again after every reconnect): it should read the
    static information (model, serial, cell count) and return it as a sample. ``read`` returns the
    fast set (voltage, current, SoC, cells, temperatures, FETs, alarms) every poll; ``read_slow``
    the slow set (counters, versions) every ``slow_poll_interval``.

    Every method raises only ``LinkError``/``LinkTimeout`` (the wire), ``FrameError`` (a bad reply
    after retries), ``NotMyBMS`` (from ``connect``) or ``UnsupportedCommand`` (from ``execute``).
    """

    def __init__(self, ctx: SessionContext) -> None:
        self.ctx = ctx
        self.link = ctx.link
        self.log = ctx.log

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What this battery can do; may be narrowed after ``connect`` (e.g. no MOSFET sensor)."""
        return self.ctx.variant.capabilities

    async def connect(self) -> Sample:
        return await self.read()

    @abstractmethod
    async def read(self) -> Sample: ...

    async def read_slow(self) -> Sample:
        return Sample()

    async def execute(self, command: Command) -> None:
        raise UnsupportedCommand(f"{command.kind.value} is not supported by this driver")

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release per-session resources (the host closes the link itself)."""


class Simulator(ABC):  # noqa: B024 - stream and CAN simulators implement different methods
    """A device-side model of a protocol with pack state, for tests, demos and `simulate`.

    Stream simulators implement ``feed`` (bytes in → reply bytes out, buffering partial input);
    CAN simulators implement ``on_frame`` and ``broadcast``. ``tick`` advances the pack's physics
    by ``dt`` seconds (the host-side links call it with the wall clock or an injected one).
    """

    kind: str = "stream"
    silent: bool = False  # tests set this to make the device stop answering

    def tick(self, dt: float) -> None:  # noqa: B027 - optional hook
        """Advance the simulated pack (cells drift, current integrates into SoC)."""

    def feed(self, data: bytes) -> bytes:
        raise NotImplementedError

    def on_frame(self, frame: CanFrame) -> Sequence[CanFrame]:
        return ()

    def broadcast(self) -> Sequence[CanFrame]:
        return ()

    def state(self) -> Sample:
        """The simulator's truth, in the model's units (tests compare reads against it)."""
        raise NotImplementedError


SessionFactory = Callable[[SessionContext], Session]
SimulatorFactory = Callable[..., Simulator]
