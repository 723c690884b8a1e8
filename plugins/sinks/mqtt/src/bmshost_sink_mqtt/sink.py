"""The MQTT sink: state, availability, discovery and commands for every battery of the host.

Threads: ``publish``/``add_battery`` run on the host's event loop; paho's callbacks (connect,
messages) run on paho's thread. The per-battery records are shared under one lock; commands
cross to the event loop with ``run_coroutine_threadsafe`` because ``BatteryHandle.submit`` is a
coroutine of the battery's loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import attrs

from bmshost.model import Command, CommandResult
from bmshost.sink import BatteryHandle, BatteryUpdate, Sink, SinkContext
from bmshost_sink_mqtt import discovery
from bmshost_sink_mqtt.client import Connection
from bmshost_sink_mqtt.commands import Refusal, parse_command, result_payload
from bmshost_sink_mqtt.options import MqttSinkOptions
from bmshost_sink_mqtt.state import VOLATILE, Throttle, dumps, encode_state, flatten
from bmshost_sink_mqtt.topics import (
    OFFLINE,
    ONLINE,
    BatteryTopics,
    battery_topics,
    host_status,
    topic_id,
)

log = logging.getLogger("bmshost.sink.mqtt")
COMMAND_TIMEOUT = 30.0  # s; a write that takes longer is reported as failed


@attrs.define(slots=True, eq=False)
class _Battery:
    handle: BatteryHandle
    node: str
    topics: BatteryTopics
    throttle: Throttle
    seen: discovery.Seen = attrs.field(factory=discovery.Seen)
    state: bytes | None = None  # last published state payload (republished on reconnect)
    availability: str | None = None
    values: dict[str, str] = attrs.field(factory=dict)  # per-value topics as last published
    discovery: dict[str, bytes] = attrs.field(factory=dict)  # config topic -> payload


class MqttSink(Sink):
    name = "mqtt"

    def __init__(self, options: MqttSinkOptions, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.options = options
        self.clock = clock
        self.wall = wall
        self.status_topic = host_status(options.topic_prefix)
        self.connection = Connection(options, self.status_topic, self._on_connect, self._on_message)
        self._batteries: dict[int, _Battery] = {}
        self._by_node: dict[str, _Battery] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: set[Future[CommandResult]] = set()

    # -- Sink contract ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.connection.start()

    def add_battery(self, battery: BatteryHandle) -> None:
        self._record(battery)

    def publish(self, battery: BatteryHandle, update: BatteryUpdate) -> None:
        rec = self._record(battery)
        now = self.clock()
        doc, key, payload = encode_state(update)
        available = ONLINE if update.sample is not None and not update.stale else OFFLINE
        with self._lock:
            if available != rec.availability:
                rec.availability = available
                self.connection.publish(rec.topics.availability, available, retain=True, qos=1)
            if rec.throttle.offer(now, key):
                rec.throttle.published(now, key)
                rec.state = payload
                self.connection.publish(rec.topics.state, payload, retain=self.options.retain)
                if self.options.per_value_topics:
                    self._publish_values(rec, doc)
            if self.options.discovery_enabled and rec.seen.absorb(doc):
                self._publish_discovery(rec, update)

    async def stop(self) -> None:
        for future in list(self._pending):
            future.cancel()
        with self._lock:
            last = [(rec.topics.availability, OFFLINE.encode()) for rec in self._batteries.values()]
        # A clean disconnect does not fire the will: say "offline" ourselves.
        last.append((self.status_topic, OFFLINE.encode()))
        await self.connection.stop(last)

    # -- per battery -----------------------------------------------------------------------------

    def _record(self, battery: BatteryHandle) -> _Battery:
        rec = self._batteries.get(id(battery))
        if rec is not None:
            return rec
        # The topic id is fixed when the battery joins: its name may change once the serial
        # number is read, but topics and Home Assistant ids must stay put.
        node = topic_id(battery.name)
        with self._lock:
            unique, n = node, 2
            while unique in self._by_node:
                unique, n = f"{node}_{n}", n + 1
            rec = _Battery(
                handle=battery,
                node=unique,
                topics=battery_topics(self.options.topic_prefix, unique),
                throttle=Throttle(self.options.min_interval, self.options.max_interval),
            )
            self._batteries[id(battery)] = rec
            self._by_node[unique] = rec
        if self.options.commands:
            self.connection.subscribe(rec.topics.command_filter)
        return rec

    def topics_of(self, battery: BatteryHandle) -> BatteryTopics:
        return self._record(battery).topics

    def _publish_values(self, rec: _Battery, doc: dict[str, Any]) -> None:
        doc = {k: v for k, v in doc.items() if k not in VOLATILE}
        for path, value in flatten(doc).items():
            if rec.values.get(path) != value:
                rec.values[path] = value
                self.connection.publish(rec.topics.value(path), value, retain=True)

    def _publish_discovery(self, rec: _Battery, update: BatteryUpdate) -> None:
        sample = update.sample
        identity = rec.handle.identity
        device = discovery.Device(
            node=rec.node,
            name=rec.handle.name,
            driver=identity.driver,
            variant=identity.variant,
            serial_number=(sample.serial_number if sample else None) or identity.serial_number,
            model=sample.model if sample else None,
            firmware_version=sample.firmware_version if sample else None,
            hardware_version=sample.hardware_version if sample else None,
            host_status=self.status_topic,
        )
        configs = discovery.build(device, rec.seen, rec.handle.capabilities, rec.topics,
                                  self.options.discovery_prefix)
        for topic, config in configs.items():
            payload = dumps(config).encode()
            if rec.discovery.get(topic) != payload:
                rec.discovery[topic] = payload
                self.connection.publish(topic, payload, retain=True, qos=1)

    # -- paho thread -----------------------------------------------------------------------------

    def _on_connect(self) -> None:
        """(Re)connected: say we are alive and republish everything retained we know."""
        self.connection.publish(self.status_topic, ONLINE, retain=True, qos=1)
        with self._lock:
            for rec in self._batteries.values():
                if self.options.commands:
                    self.connection.subscribe(rec.topics.command_filter)
                for topic, payload in rec.discovery.items():
                    self.connection.publish(topic, payload, retain=True, qos=1)
                if rec.state is not None:
                    self.connection.publish(rec.topics.state, rec.state, retain=self.options.retain)
                for path, value in rec.values.items():
                    self.connection.publish(rec.topics.value(path), value, retain=True)
                if rec.availability is not None:
                    self.connection.publish(rec.topics.availability, rec.availability,
                                            retain=True, qos=1)

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        prefix = self.options.topic_prefix + "/"
        if not topic.startswith(prefix):
            return
        node, _, rest = topic[len(prefix):].partition("/")
        with self._lock:
            rec = self._by_node.get(node)
        if rec is None or not rest.startswith("set/"):
            return
        control = rest[len("set/"):]
        if retained:
            # A retained command would run again on every reconnect: never act on one.
            self._answer(rec, control, payload, False, "retained commands are ignored; "
                         "publish commands without the retain flag")
            return
        outcome = parse_command(control, payload, rec.handle.capabilities, origin="mqtt")
        if isinstance(outcome, Refusal):
            log.warning("MQTT command %s on %s refused: %s", control, rec.node, outcome.message)
            self._answer(rec, control, payload, False, outcome.message)
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            self._answer(rec, control, payload, False, "the host is not running")
            return
        future = asyncio.run_coroutine_threadsafe(self._submit(rec, outcome), loop)
        self._pending.add(future)
        future.add_done_callback(functools.partial(self._finished, rec=rec, control=control,
                                                   payload=payload))

    async def _submit(self, rec: _Battery, command: Command) -> CommandResult:
        try:
            return await asyncio.wait_for(rec.handle.submit(command), COMMAND_TIMEOUT)
        except TimeoutError:
            return CommandResult(False, f"no answer from the battery within {COMMAND_TIMEOUT:g} s")

    def _finished(self, future: Future[CommandResult], rec: _Battery, control: str,
                  payload: bytes) -> None:
        self._pending.discard(future)
        if future.cancelled():
            self._answer(rec, control, payload, False, "cancelled: the host is stopping")
            return
        exc = future.exception()
        if exc is not None:  # submit() must not raise; report rather than lose the answer
            log.error("MQTT command %s on %s failed: %r", control, rec.node, exc)
            self._answer(rec, control, payload, False, f"internal error: {exc}")
            return
        result = future.result()
        self._answer(rec, control, payload, result.ok, result.message or "ok")

    def _answer(self, rec: _Battery, control: str, payload: bytes, ok: bool, message: str) -> None:
        self.connection.publish(rec.topics.result,
                                result_payload(control, payload, ok, message, self.wall()),
                                retain=False, qos=1)


def make_mqtt_sink(ctx: SinkContext) -> MqttSink:
    options = ctx.options if ctx.options is not None else MqttSinkOptions()
    return MqttSink(options)
