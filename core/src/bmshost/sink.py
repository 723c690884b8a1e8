"""The output-sink contract: where each battery's state goes (Venus D-Bus, MQTT, the console).

The host calls ``publish`` once per battery and poll cycle, from the event loop: it must not
block (queue work and return). Writes coming back from a sink's users (a D-Bus SetValue, an MQTT
command) go through ``BatteryHandle.submit``, which validates them against the battery's
capabilities exactly once for every sink.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import attrs

from bmshost.capabilities import Capability
from bmshost.model import Command, CommandResult, Derived, Identity, Limits, Sample


@attrs.define(slots=True, kw_only=True)
class BatteryUpdate:
    """What a sink receives each cycle."""

    t: float  # wall-clock time (time.time()) of the cycle
    sample: Sample | None  # the latest good sample (kept while offline), None before the first
    fresh: bool  # True when ``sample`` was read in this cycle
    online: bool  # the last read succeeded
    stale: bool  # no good read for longer than the staleness timeout
    limits: Limits | None = None
    derived: Derived | None = None
    link_health: dict[str, Any] | None = None  # e.g. rssi, reconnects, seconds since last frame
    connection_info: str = ""  # human text: "Connected", "Lost for 42 s", ...

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t": round(self.t, 3), "online": self.online, "stale": self.stale}
        if self.sample is not None:
            out.update(self.sample.to_json_dict())
        if self.limits is not None:
            out["limits"] = self.limits.to_json_dict()
        if self.derived is not None:
            derived = self.derived.to_json_dict()
            if derived:
                out["derived"] = derived
        if self.link_health:
            out["link"] = self.link_health
        return out


class BatteryHandle(Protocol):
    """The battery as a sink sees it."""

    @property
    def name(self) -> str: ...  # config name or unique id
    @property
    def identity(self) -> Identity: ...
    @property
    def capabilities(self) -> frozenset[Capability]: ...
    @property
    def connection(self) -> str: ...  # "Serial /dev/ttyUSB0", "BLE AA:BB:...", ...
    @property
    def latest(self) -> BatteryUpdate | None: ...

    def submit(self, command: Command) -> Awaitable[CommandResult]:
        """Validate and perform a write. Never raises; the result says why a write was refused."""
        ...

    def stage_command(self, name: str, value: Any) -> bool:
        """Forward a command to the control stages (history clear, SoC reset of the counter)."""
        ...


RESTORE_TIMEOUT = 10.0  # s the host waits for one sink's ``restore_state``


class Sink(ABC):
    """An output. One instance per configured ``[sinks.<name>]`` section, serving every battery."""

    name: str = "?"

    async def start(self) -> None:  # noqa: B027 - optional
        """Connect (bus, broker). Failing here should log and retry, not raise, when the outage
        is transient; raise ``BmshostError`` only for configuration mistakes."""

    def add_battery(self, battery: BatteryHandle) -> None:  # noqa: B027 - optional
        """A battery joined (called before its first publish)."""

    @abstractmethod
    def publish(self, battery: BatteryHandle, update: BatteryUpdate) -> None: ...

    async def stop(self) -> None:  # noqa: B027 - optional
        """Flush and disconnect."""

    # -- persisted control state (optional: a sink that keeps a copy of each battery's state) --

    async def restore_state(self, battery: BatteryHandle) -> str | None:
        """The battery's control-state document as last handed to ``state_saved`` (keyed by
        ``battery.identity``), or None when this sink keeps none.

        Called once per battery, at its first successful connect (when the identity is known)
        and before the control stages see the first sample. The text is opaque to the sink: the
        host parses it, ignores it with a warning if it is not a state document, and takes the
        newest of the file and every sink's copy. The host gives up on a sink that takes longer
        than ``RESTORE_TIMEOUT`` seconds; an exception is logged and counts as "no copy"."""
        return None

    def state_saved(self, battery: BatteryHandle, text: str) -> None:  # noqa: B027 - optional
        """The battery's control state was written (``text``, a JSON document). Called from the
        event loop only when the document changed, at most every state interval (60 s) and at
        shutdown, so it is already coalesced; a sink that stores it on flash may coalesce
        further. Must not block."""


@attrs.frozen(slots=True, kw_only=True)
class SinkSpec:
    name: str
    factory: Any  # Callable[[SinkContext], Sink] or lazy "module:attr"
    options: type | None = None  # attrs class for [sinks.<name>]
    description: str = ""


@attrs.define(slots=True, kw_only=True)
class SinkContext:
    options: Any
    json_mode: bool = False  # the console sink's --json
    state_dir: str = ""  # where a sink may persist files (atomically)
    extra: dict[str, Any] = attrs.field(factory=dict)


SinkFactory = Callable[[SinkContext], Sink]
