"""Hook implementations of bmshost-sink-mqtt: registers the ``mqtt`` sink (paho is imported only
when a configuration has a ``[sinks.mqtt]`` section)."""

from __future__ import annotations

from bmshost.hookspecs import hookimpl
from bmshost.registry import SinkRegistry
from bmshost.sink import SinkSpec
from bmshost_sink_mqtt.options import MqttSinkOptions


@hookimpl
def bmshost_register_sinks(registry: SinkRegistry) -> None:
    registry.add(
        SinkSpec(
            name="mqtt",
            factory="bmshost_sink_mqtt.sink:make_mqtt_sink",
            options=MqttSinkOptions,
            description="JSON state per battery, Home Assistant discovery, command topics",
        )
    )
