"""The ``mqtt`` driver session: JSON messages on a topic become samples.

The input is push-based. ``read`` parses every message that arrived since the previous read (in
order; a valid one is merged onto the previous sample, so keys a device omits keep their last
value, as the reference driver does) and returns the result. When no valid message arrived for
``max_age`` seconds, ``read`` raises ``LinkTimeout`` and the host marks the battery offline, then
stale: old data is never passed off as current.

Capabilities: the variant declares everything the schemas can carry; after ``connect`` (the
first valid message) the session narrows them to the fields that message contains, so control
stages needing a value the publisher never sends (a MOSFET sensor, BMS current limits) are left
out of the pipeline.
"""

from __future__ import annotations

import logging

import attrs

from bmshost.capabilities import BASIC, Capability
from bmshost.driver import Session, SessionContext
from bmshost.errors import FrameError, LinkTimeout
from bmshost.model import Sample
from bmshost_mqtt.link import Message, MqttSubscriptionLink
from bmshost_mqtt.options import MqttInputOptions
from bmshost_mqtt.payload import Offline, parse_payload, same_layout
from bmshost_mqtt.ratelimit import RateLimitedLog

# Which sample field makes which capability true (BASIC ones are always declared).
FIELD_CAPABILITIES: tuple[tuple[str, Capability], ...] = (
    ("mosfet_temperature", Capability.MOSFET_TEMPERATURE),
    ("capacity_ah", Capability.CAPACITY_INSTALLED),
    ("remaining_ah", Capability.CAPACITY_AVAILABLE),
    ("remaining_ah", Capability.CAPACITY_CONSUMED),
    ("cell_voltages", Capability.MIN_MAX_CELL_VOLTAGE),
    ("cell_voltages", Capability.SINGLE_CELL_DETAILS),
    ("temperatures", Capability.MIN_MAX_TEMPERATURE),
    ("cell_balancing", Capability.BALANCING_STATUS),
    ("charge_fet", Capability.ALLOW_TO_CHARGE_STATE),
    ("discharge_fet", Capability.ALLOW_TO_DISCHARGE_STATE),
    ("balance_fet", Capability.ALLOW_TO_BALANCE_STATE),
    ("alarms", Capability.RAISE_ALARMS),
    ("cycles", Capability.CHARGE_CYCLE_HISTORY),
    ("bms_charge_current_limit", Capability.BMS_CURRENT_LIMITS),
    ("soh", Capability.SOH),
    ("heating", Capability.HEATING),
)
ALL_CAPABILITIES: frozenset[Capability] = BASIC | frozenset(c for _, c in FIELD_CAPABILITIES)


def capabilities_of(sample: Sample) -> frozenset[Capability]:
    """The capabilities a sample's populated fields justify."""
    out = set(BASIC)
    for field, capability in FIELD_CAPABILITIES:
        if getattr(sample, field) is not None:
            out.add(capability)
    extra = sample.extra or {}
    if isinstance(extra.get("history"), dict) and "charge_cycles" in extra["history"]:
        out.add(Capability.CHARGE_CYCLE_HISTORY)
    return frozenset(out)


class MqttSession(Session):
    def __init__(self, ctx: SessionContext) -> None:
        super().__init__(ctx)
        if not isinstance(ctx.link, MqttSubscriptionLink):
            raise TypeError("the mqtt driver needs an mqtt:// link")
        self.mqtt: MqttSubscriptionLink = ctx.link
        self.options: MqttInputOptions = ctx.options or MqttInputOptions()
        self._sample: Sample | None = None
        self._t_valid: float | None = None  # link-clock time of the last valid message
        self._capabilities: frozenset[Capability] | None = None
        self._warn = RateLimitedLog(self.log, self.options.log_interval, clock=self.mqtt.clock)

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self._capabilities if self._capabilities is not None else ALL_CAPABILITIES

    # -- message handling ----------------------------------------------------------------------

    def _accept(self, message: Message) -> None:
        try:
            sample = parse_payload(message.payload, self.options.format)
        except Offline as exc:
            self._warn.log(logging.INFO, "%s: %s", self.mqtt.description, exc)
            return
        except FrameError as exc:
            self.mqtt.rejected += 1
            self._warn.log(logging.WARNING, "%s: message ignored: %s", self.mqtt.description, exc)
            return
        if self._sample is not None and not same_layout(self._sample, sample):
            self.mqtt.rejected += 1
            self._warn.log(
                logging.WARNING,
                "%s: message ignored: %s cells, but this battery has %s (another publisher on "
                "the topic? reconnect to accept a new layout)",
                self.mqtt.description, sample.cell_count, self._sample.cell_count,
            )
            return
        self._sample = sample if self._sample is None else self._sample.merge(sample)
        self._t_valid = message.t

    def _drain(self) -> None:
        for message in self.mqtt.take():
            self._accept(message)

    def _current(self) -> Sample:
        now = self.mqtt.clock()
        if self._sample is None or self._t_valid is None:
            raise LinkTimeout(f"{self.mqtt.description}: no valid message yet")
        age = now - self._t_valid
        if age > self.options.max_age:
            raise LinkTimeout(
                f"{self.mqtt.description}: no valid message for {age:.1f} s "
                f"(max_age {self.options.max_age:g} s)"
            )
        return attrs.evolve(self._sample)

    # -- Session contract ----------------------------------------------------------------------

    async def connect(self) -> Sample:
        """Wait for the first valid message and narrow the capabilities to it.

        The wait is bounded by the request timeout (not ``max_age``): the host runs the control
        pipeline only between reads, so a long wait here would delay the safe state of the
        limits. A retained message arrives at once; for a publisher that pushes every few
        seconds the host simply retries with back-off while the link keeps queueing messages.
        """
        self._sample = None
        self._t_valid = None
        wait = min(self.ctx.timeout, self.options.max_age)
        deadline = self.mqtt.clock() + wait
        while True:
            self._drain()
            if self._sample is not None:
                break
            remaining = deadline - self.mqtt.clock()
            if remaining <= 0 or not await self.mqtt.wait(remaining):
                self._drain()
                if self._sample is not None:
                    break
                raise LinkTimeout(f"{self.mqtt.description}: no valid message within {wait:g} s")
        self._capabilities = capabilities_of(self._sample)
        return self._current()

    async def read(self) -> Sample:
        self._drain()
        return self._current()
