"""The ``mqtt:`` link: a subscription to one topic, seen by the session as a message queue.

paho-mqtt runs its network loop in its own thread (``loop_start``); this link only copies each
arriving payload with its arrival time into a short queue and wakes the event loop. Nothing here
blocks the event loop: the session takes what has arrived and never waits on the network except
in ``open`` (for the broker's CONNACK) and ``wait`` (bounded by the caller's timeout).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import attrs
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bmshost.errors import LinkError
from bmshost.link import BaseLink
from bmshost.url import LinkUrl
from bmshost_mqtt.settings import LinkSettings, parse_settings

log = logging.getLogger("bmshost.mqtt.link")

Clock = Callable[[], float]
QUEUE_LENGTH = 32  # messages kept between two reads; older ones are dropped (newer data wins)


@attrs.frozen(slots=True)
class Message:
    payload: bytes
    t: float  # arrival, on the link's clock
    retained: bool = False



class _ShutdownNoise(logging.Filter):
    """paho 2.2 logs "Client is not connected" at ERROR when its thread ends after a clean
    disconnect; that is not an error, and a GX log in RAM has no room for false alarms."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Client is not connected")


_PAHO_LOG = logging.getLogger("bmshost.mqtt.paho")
_PAHO_LOG.addFilter(_ShutdownNoise())

def make_client(settings: LinkSettings) -> mqtt.Client:
    """A configured but unconnected paho client (auth, TLS, protocol, back-off)."""
    protocol = mqtt.MQTTv5 if settings.protocol == "5" else mqtt.MQTTv311
    client_id = settings.client_id or f"bmshost-in-{os.getpid()}-{id(settings) & 0xFFFF:04x}"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
        clean_session=True if protocol == mqtt.MQTTv311 else None,
    )
    if settings.username:
        client.username_pw_set(settings.username, settings.password or None)
    if settings.tls:
        client.tls_set(
            ca_certs=settings.ca_file or None,
            certfile=settings.cert_file or None,
            keyfile=settings.key_file or None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        client.tls_insecure_set(settings.insecure)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    client.enable_logger(_PAHO_LOG)
    return client


class MqttSubscriptionLink(BaseLink):
    """One subscription on one broker connection."""

    kind: ClassVar[str] = "mqtt"

    def __init__(self, url: LinkUrl, settings: LinkSettings, clock: Clock = time.monotonic) -> None:
        super().__init__(url)
        self.settings = settings
        self.clock = clock
        self._client: mqtt.Client | None = None
        self._queue: deque[Message] = deque(maxlen=QUEUE_LENGTH)
        self._qlock = threading.Lock()  # the paho thread appends, the event loop drains
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrived: asyncio.Event | None = None
        self._connected = threading.Event()
        self._connect_error = ""
        self.received = 0  # messages seen (link health)
        self.dropped = 0  # messages pushed out of the queue before a read took them
        self.rejected = 0  # messages the session found invalid (counted by the session)

    @property
    def description(self) -> str:
        return f"MQTT {self.settings.where}"

    @property
    def is_open(self) -> bool:
        return self._client is not None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def health(self) -> dict[str, Any]:
        """Link health the host adds to each update (``BatteryUpdate.link_health``)."""
        return {"broker_connected": self.connected, "messages": self.received,
                "rejected": self.rejected, "dropped": self.dropped}

    # -- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        if self._client is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._arrived = asyncio.Event()
        self._connected.clear()
        self._connect_error = ""
        client = make_client(self.settings)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        try:
            client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive)
        except (OSError, ValueError) as exc:
            raise LinkError(f"{self.description}: {exc}") from None
        self._client = client
        client.loop_start()
        # CONNACK arrives on paho's thread; poll the thread-safe flag without blocking the loop.
        deadline = time.monotonic() + self.settings.connect_timeout
        while not self._connected.is_set():
            if time.monotonic() >= deadline:
                reason = self._connect_error or "no answer"
                await self.close()
                raise LinkError(f"{self.description}: cannot connect to the broker ({reason})")
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        client, self._client = self._client, None
        was_connected = self._connected.is_set()
        self._connected.clear()
        if client is None:
            return
        if was_connected:
            try:
                client.disconnect()
            except Exception:  # already gone; closing must not raise
                pass
        # loop_stop joins paho's thread; do it off the event loop so a dead socket cannot stall us.
        await asyncio.to_thread(client.loop_stop)

    # -- paho thread callbacks -------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if getattr(reason, "is_failure", False):
            self._connect_error = str(reason)
            log.warning("%s: broker refused the connection: %s", self.description, reason)
            return
        # Subscribe on every (re)connect: a clean session forgets subscriptions.
        client.subscribe(self.settings.topic, qos=self.settings.qos)
        self._connected.set()
        log.info("%s: connected", self.description)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self._connected.clear()
        if self._client is not None:
            log.warning("%s: connection lost (%s); paho reconnects", self.description, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        item = Message(bytes(message.payload), self.clock(), bool(message.retain))
        with self._qlock:
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
            self._queue.append(item)
            self.received += 1
        loop, event = self._loop, self._arrived
        if loop is not None and event is not None:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the loop closed while a message was in flight
                pass

    # -- what the session uses -------------------------------------------------------------------

    def take(self) -> list[Message]:
        """Every message received since the last call, oldest first."""
        with self._qlock:
            items = list(self._queue)
            self._queue.clear()
        if self._arrived is not None:
            self._arrived.clear()
        return items

    async def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for a message; True when one is queued."""
        if self._arrived is None:
            raise LinkError(f"{self.description}: not open")
        with self._qlock:
            if self._queue:
                return True
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except TimeoutError:
            return False
        return True


def open_mqtt_link(url: LinkUrl, params: Mapping[str, Any] | None = None) -> MqttSubscriptionLink:
    """Transport factory for ``mqtt:``/``mqtts:`` URLs (settings are checked here, at start-up)."""
    return MqttSubscriptionLink(url, parse_settings(url))
