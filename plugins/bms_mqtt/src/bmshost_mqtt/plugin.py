"""Hook implementations of bmshost-mqtt: the ``mqtt`` driver and the ``mqtt:``/``mqtts:`` links.

Import-light: paho-mqtt and the session are imported only when a battery uses them.
"""

from __future__ import annotations

from bmshost.capabilities import BASIC, Capability, caps
from bmshost.driver import DriverSpec, VariantSpec
from bmshost.hookspecs import hookimpl
from bmshost.registry import DriverRegistry, TransportRegistry, TransportSpec
from bmshost_mqtt.options import MqttInputOptions

# Everything the two payload schemas can carry; a session narrows this to what its publisher
# actually sends (see bmshost_mqtt.session). The input is read-only: the reference schema has no
# command topic, so no SoC reset and no FET switching.
CAPABILITIES = caps(
    BASIC,
    Capability.MOSFET_TEMPERATURE,
    Capability.CAPACITY_INSTALLED,
    Capability.CAPACITY_AVAILABLE,
    Capability.CAPACITY_CONSUMED,
    Capability.MIN_MAX_CELL_VOLTAGE,
    Capability.MIN_MAX_TEMPERATURE,
    Capability.BALANCING_STATUS,
    Capability.ALLOW_TO_CHARGE_STATE,
    Capability.ALLOW_TO_DISCHARGE_STATE,
    Capability.ALLOW_TO_BALANCE_STATE,
    Capability.SINGLE_CELL_DETAILS,
    Capability.RAISE_ALARMS,
    Capability.CHARGE_CYCLE_HISTORY,
    Capability.BMS_CURRENT_LIMITS,
    Capability.SOH,
    Capability.HEATING,
)

JSON = VariantSpec(
    name="json",
    transports=("mqtt",),
    capabilities=CAPABILITIES,
    session="bmshost_mqtt.session:MqttSession",
    decoder="bmshost_mqtt.decode:decode",
    description="JSON on an MQTT topic: the reference generic schema or a bmshost sink's state",
)


@hookimpl
def bmshost_register_drivers(registry: DriverRegistry) -> None:
    registry.add(
        DriverSpec(
            name="mqtt",
            variants=(JSON,),
            description="Generic MQTT BMS: battery data published as JSON (ESPHome, other hosts)",
            options=MqttInputOptions,
        )
    )


@hookimpl
def bmshost_register_transports(registry: TransportRegistry) -> None:
    registry.add(
        TransportSpec(
            name="mqtt",
            schemes=("mqtt", "mqtts"),
            kind="mqtt",
            factory="bmshost_mqtt.link:open_mqtt_link",
            description="subscription to one MQTT topic: mqtt://HOST[:PORT]/TOPIC?username=..",
        )
    )
