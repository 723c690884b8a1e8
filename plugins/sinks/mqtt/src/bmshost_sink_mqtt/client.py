"""The broker connection of the sink: paho-mqtt with its network loop in its own thread.

Why a thread: the host's event loop polls the batteries and runs the control pipeline; a broker
that is slow, unreachable or gone must never hold that up. ``publish`` here only hands a packet to
paho's queue (or drops it while disconnected: the sink republishes the latest state on
reconnect), and never waits. Reconnection with exponential back-off is paho's own loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bmshost_sink_mqtt.options import MqttSinkOptions
from bmshost_sink_mqtt.topics import OFFLINE

log = logging.getLogger("bmshost.sink.mqtt")

OnConnect = Callable[[], None]
OnMessage = Callable[[str, bytes, bool], None]


def default_client_id() -> str:
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())
    return f"bmshost-{host}"[:64]



class _ShutdownNoise(logging.Filter):
    """paho 2.2 logs "Client is not connected" at ERROR when its thread ends after a clean
    disconnect; that is not an error, and a GX log in RAM has no room for false alarms."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Client is not connected")


_PAHO_LOG = logging.getLogger("bmshost.sink.mqtt.paho")
_PAHO_LOG.addFilter(_ShutdownNoise())

class Connection:
    """One paho client: will, auth, TLS, protocol, back-off; thread-safe non-blocking publish."""

    def __init__(self, options: MqttSinkOptions, will_topic: str, on_connect: OnConnect,
                 on_message: OnMessage) -> None:
        self.options = options
        self.will_topic = will_topic
        self._on_connect_cb = on_connect
        self._on_message_cb = on_message
        self.client: mqtt.Client | None = None
        self.connects = 0  # successful connections (1 + reconnects)
        self.published = 0  # messages handed to paho
        self.dropped = 0  # messages not sent because the broker was away

    @property
    def where(self) -> str:
        scheme = "mqtts" if self.options.tls else "mqtt"
        return f"{scheme}://{self.options.host}:{self.options.port}"

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected()

    def _build(self) -> mqtt.Client:
        o = self.options
        v5 = o.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=o.client_id or default_client_id(),
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else True,
        )
        if o.username:
            # Read here, used by paho, never stored on this object or logged.
            client.username_pw_set(o.username, o.read_password() or None)
        if o.tls:
            client.tls_set(ca_certs=o.ca_file or None, certfile=o.cert_file or None,
                           keyfile=o.key_file or None, cert_reqs=ssl.CERT_REQUIRED)
            client.tls_insecure_set(o.tls_insecure)
        # The host's will: a crash or a lost network marks every battery unavailable in HA.
        client.will_set(self.will_topic, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=o.reconnect_min, max_delay=o.reconnect_max)  # type: ignore[arg-type]
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.enable_logger(_PAHO_LOG)
        return client

    def start(self) -> None:
        """Begin connecting in paho's thread; returns at once (an absent broker is retried)."""
        if self.client is not None:
            return
        client = self._build()
        user = f" as {self.options.username}" if self.options.username else ""
        log.info("MQTT sink connecting to %s%s", self.where, user)
        client.connect_async(self.options.host, self.options.port, self.options.keepalive)
        self.client = client
        client.loop_start()

    async def stop(self, last_words: list[tuple[str, bytes]]) -> None:
        """Publish ``last_words`` (retained), disconnect cleanly, end paho's thread."""
        client, self.client = self.client, None
        if client is None:
            return
        if client.is_connected():
            infos = [client.publish(t, p, qos=1, retain=True) for t, p in last_words]
            # Waiting is fine here (shutdown), but bounded and off the event loop.
            await asyncio.to_thread(_wait_all, infos, 2.0)
            client.disconnect()
        await asyncio.to_thread(client.loop_stop)

    # -- publishing (any thread) -----------------------------------------------------------------

    def publish(
        self, topic: str, payload: bytes | str, retain: bool, qos: int | None = None
    ) -> bool:
        client = self.client
        if client is None or not client.is_connected():
            self.dropped += 1
            return False
        info = client.publish(topic, payload, qos=self.options.qos if qos is None else qos,
                              retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.dropped += 1
            return False
        self.published += 1
        return True

    def subscribe(self, topic_filter: str) -> None:
        client = self.client
        if client is not None and client.is_connected():
            client.subscribe(topic_filter, qos=1)

    # -- paho thread callbacks -------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("MQTT broker %s refused the connection: %s", self.where, reason)
            return
        self.connects += 1
        if self.connects > 1:
            log.info("MQTT sink reconnected to %s; republishing", self.where)
        else:
            log.info("MQTT sink connected to %s", self.where)
        try:
            self._on_connect_cb()
        except Exception:  # a bug in republishing must not kill paho's thread
            log.exception("MQTT sink: republishing after connect failed")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        if self.client is not None:
            log.warning("MQTT sink lost the broker %s (%s); reconnecting with back-off",
                        self.where, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self._on_message_cb(message.topic, bytes(message.payload), bool(message.retain))
        except Exception:
            log.exception("MQTT sink: handling a message on %s failed", message.topic)


def _wait_all(infos: list[mqtt.MQTTMessageInfo], timeout: float) -> None:
    for info in infos:
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):  # the connection went away meanwhile
            return
