"""Home Assistant discovery payloads: checked against HA's MQTT discovery rules, live and pure."""

from __future__ import annotations

import json
import re
from typing import Any

from bmshost.capabilities import Capability
from bmshost.model import ALARM_NAMES
from bmshost_sink_mqtt import discovery
from bmshost_sink_mqtt.options import MqttSinkOptions
from bmshost_sink_mqtt.sink import MqttSink
from bmshost_sink_mqtt.topics import battery_topics

# Home Assistant's sensor device classes used here and the units HA accepts for each
# (homeassistant.components.sensor.const.DEVICE_CLASS_UNITS), plus the state classes.
SENSOR_UNITS: dict[str | None, set[str | None]] = {
    "voltage": {"V", "mV", "µV", "kV", "MV"},
    "current": {"A", "mA"},
    "power": {"W", "kW", "mW", "MW", "GW", "TW", "BTU/h"},
    "battery": {"%"},
    "temperature": {"°C", "°F", "K"},
    "duration": {"d", "h", "min", "s", "ms"},
}
STATE_CLASSES = {"measurement", "total", "total_increasing"}
BINARY_CLASSES = {None, "battery", "battery_charging", "connectivity", "heat", "power",
                  "problem", "running", "safety", "plug"}
ENTITY_CATEGORIES = {None, "config", "diagnostic"}
REQUIRED = {
    "sensor": {"state_topic"},
    "binary_sensor": {"state_topic"},
    "switch": {"command_topic", "state_topic"},
    "number": {"command_topic"},
}
TOPIC = re.compile(r"^homeassistant/(sensor|binary_sensor|switch|number)/([A-Za-z0-9_-]+)/"
                   r"([A-Za-z0-9_-]+)/config$")


def check_ha_config(topic: str, config: dict[str, Any]) -> str:
    """Assert one discovery message is valid for Home Assistant; return its component."""
    m = TOPIC.match(topic)
    assert m, f"bad discovery topic {topic}"
    component = m.group(1)
    assert REQUIRED[component] <= set(config), (topic, REQUIRED[component] - set(config))
    assert isinstance(config["name"], str) and config["name"]
    assert re.fullmatch(r"[A-Za-z0-9_-]+", config["unique_id"])
    device = config["device"]
    assert device["identifiers"] and all(isinstance(i, str) for i in device["identifiers"])
    assert device["name"] and device["manufacturer"] and device["model"]
    assert config["availability_mode"] == "all"
    topics = [a["topic"] for a in config["availability"]]
    assert topics == ["bmshost/status", "bmshost/bank1/availability"]
    assert config.get("entity_category") in ENTITY_CATEGORIES
    if component == "sensor":
        dclass = config.get("device_class")
        unit = config.get("unit_of_measurement")
        if dclass is not None:
            assert dclass in SENSOR_UNITS, dclass
            assert unit in SENSOR_UNITS[dclass], (topic, dclass, unit)
        if "state_class" in config:
            assert config["state_class"] in STATE_CLASSES
            assert unit is not None or config["state_class"] == "total_increasing"
        else:
            assert unit is None  # text sensors
    if component == "binary_sensor":
        assert config.get("device_class") in BINARY_CLASSES
    if component == "switch":
        assert config["payload_on"] == "ON" and config["payload_off"] == "OFF"
        assert config["command_topic"].startswith("bmshost/") and "/set/" in config["command_topic"]
    if component == "number":
        assert config["min"] == 0 and config["max"] == 100 and config["mode"] == "box"
    if "value_template" in config:
        assert config["value_template"].startswith("{{") and config["value_template"].endswith("}}")
    return component


def build(caps: frozenset[Capability], doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    seen = discovery.Seen()
    seen.absorb(doc)
    device = discovery.Device(node="bank1", name="bank1", driver="jbd", variant="serial",
                              serial_number="SN1", host_status="bmshost/status")
    return discovery.build(device, seen, caps, battery_topics("bmshost", "bank1"), "homeassistant")


def test_full_battery_gets_every_entity_and_valid_configs(kit: Any) -> None:
    doc = kit.update16().to_json_dict()
    configs = build(frozenset(Capability), doc)
    components = [check_ha_config(t, c) for t, c in configs.items()]
    unique_ids = [c["unique_id"] for c in configs.values()]
    assert len(unique_ids) == len(set(unique_ids))
    ids = {c["unique_id"].removeprefix("bmshost_bank1_") for c in configs.values()}
    assert {f"cell_{i}" for i in range(1, 17)} <= ids
    assert {f"temperature_{i}" for i in range(1, 5)} <= ids
    assert {"voltage", "current", "power", "soc", "soh", "cell_min", "cell_max", "cvl", "ccl",
            "dcl", "charge_fet", "discharge_fet", "balancing", "time_to_go"} <= ids
    assert {f"alarm_{a}" for a in ALARM_NAMES[:8]} <= ids
    assert components.count("switch") == 3 and components.count("number") == 1


def test_switches_only_for_what_the_battery_can_do(kit: Any) -> None:
    caps = frozenset(Capability) - {Capability.DISABLE_BALANCING, Capability.SOC_RESET,
                                    Capability.DISABLE_DISCHARGING}
    configs = build(caps, kit.update16().to_json_dict())
    switches = [c["unique_id"] for t, c in configs.items() if "/switch/" in t]
    assert switches == ["bmshost_bank1_charge_fet_switch"]
    assert not any("/number/" in t for t in configs)


def test_entities_only_for_values_the_battery_reports(kit: Any) -> None:
    doc = {"t": 1.0, "online": True, "stale": False, "voltage": 13.2, "current": 1.0,
           "soc": 50.0, "cell_voltages": [3.3] * 4}
    ids = {c["unique_id"].removeprefix("bmshost_bank1_") for c in build(frozenset(), doc).values()}
    assert ids == {"voltage", "current", "soc", "cell_min", "cell_max", "cell_delta",
                   "cell_1", "cell_2", "cell_3", "cell_4"}


def test_an_extremes_only_bms_gets_the_min_max_entities(kit: Any) -> None:
    doc = {"t": 1.0, "online": True, "stale": False, "voltage": 52.9, "cell_voltage_min": 3.301,
           "cell_voltage_max": 3.335, "series_cells": 16}
    configs = build(frozenset(), doc)
    for topic, config in configs.items():
        check_ha_config(topic, config)
    by_id = {c["unique_id"].removeprefix("bmshost_bank1_"): c for c in configs.values()}
    assert set(by_id) == {"voltage", "cell_min", "cell_max", "cell_delta"}
    assert "cell_voltage_min" in by_id["cell_min"]["value_template"]
    assert "cell_voltage_max" in by_id["cell_delta"]["value_template"]


def test_seen_grows_and_never_shrinks(kit: Any) -> None:
    seen = discovery.Seen()
    assert seen.absorb(kit.update16().to_json_dict()) is True
    assert seen.absorb(kit.update16().to_json_dict()) is False
    assert seen.absorb({"online": False}) is False  # an offline cycle withdraws nothing
    assert seen.cells == 16


def test_templates_name_keys_of_the_state_document(kit: Any) -> None:
    doc = kit.update16().to_json_dict()
    configs = build(frozenset(Capability), doc)
    keys = set(doc) | {"derived", "limits"}
    for config in configs.values():
        for name in re.findall(r"value_json\.get\('(\w+)'\)", config.get("value_template", "")):
            assert name in keys, (config["unique_id"], name)
        for name in re.findall(r"\)\.get\('(\w+)'", config.get("value_template", "")):
            assert name in set(doc.get("limits", {})) | set(doc.get("derived", {})) | set(
                ALARM_NAMES) | {"soc"}, (config["unique_id"], name)


async def test_discovery_is_published_retained_and_valid(broker: Any, observer: Any,
                                                         kit: Any) -> None:
    options = MqttSinkOptions(port=broker.port, reconnect_min=0.05, reconnect_max=0.2,
                              min_interval=0)
    sink = MqttSink(options)
    await sink.start()
    battery = kit.FakeBattery()
    try:
        sink.publish(battery, kit.update16())
        await kit.until(lambda: len(observer.topics("homeassistant/")) >= 40)
        expected = len(build(battery.capabilities, kit.update16().to_json_dict()))
        await kit.until(lambda: len(observer.topics("homeassistant/")) == expected)
        for topic in observer.topics("homeassistant/"):
            config = observer.last_json(topic)
            check_ha_config(topic, config)
            assert config["state_topic" if "/number/" not in topic else "command_topic"]
            assert config["device"]["serial_number"] == "SN1"
            assert config["device"]["model"] == "JBD-SP16S"
        # Unchanged entities are not sent again on the next cycle.
        before = sum(observer.count(t) for t in observer.topics("homeassistant/"))
        changed = kit.sample16()
        changed.voltage = 53.0
        sink.publish(battery, kit.update16(t=2e9, sample=changed))
        await kit.until(lambda: observer.last_json("bmshost/bank1/state")["voltage"] == 53.0)
        assert sum(observer.count(t) for t in observer.topics("homeassistant/")) == before
    finally:
        await sink.stop()
    late = kit.Observer(broker.port)
    late.start()
    try:
        await kit.until(lambda: len(late.topics("homeassistant/")) == expected)
        assert all(late.messages[t][0][1] for t in late.topics("homeassistant/"))  # retained
    finally:
        late.stop()


def test_discovery_json_is_compact_and_serialisable(kit: Any) -> None:
    for config in build(frozenset(Capability), kit.update16().to_json_dict()).values():
        json.dumps(config, allow_nan=False)
