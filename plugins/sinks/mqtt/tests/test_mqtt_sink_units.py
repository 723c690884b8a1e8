"""Pure parts of the sink: options, command parsing, state encoding, throttling, topics."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bmshost.capabilities import Capability
from bmshost.errors import ConfigError
from bmshost.model import Command, CommandKind, Derived
from bmshost.options import structure
from bmshost_sink_mqtt.commands import Refusal, parse_command, result_payload
from bmshost_sink_mqtt.options import MqttSinkOptions
from bmshost_sink_mqtt.plugin import bmshost_register_sinks
from bmshost_sink_mqtt.sink import MqttSink, make_mqtt_sink
from bmshost_sink_mqtt.state import Throttle, encode_state, flatten
from bmshost_sink_mqtt.topics import battery_topics, topic_id

ALL = frozenset(Capability)


def test_options_defaults_and_strict_validation() -> None:
    o = structure({}, MqttSinkOptions, "sinks.mqtt")
    assert (o.host, o.port, o.topic_prefix, o.discovery_prefix) == ("127.0.0.1", 1883, "bmshost",
                                                                     "homeassistant")
    assert o.discovery_enabled and o.retain and o.commands and not o.per_value_topics


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"port": 0}, "port"),
        ({"port": "1883"}, "port"),
        ({"colour": "red"}, "colour"),
        ({"protocol": "4"}, "protocol"),
        ({"topic_prefix": "a/#"}, "topic_prefix"),
        ({"topic_prefix": ""}, "topic_prefix"),
        ({"discovery_prefix": "/ha"}, "discovery_prefix"),
        ({"qos": 3}, "qos"),
        ({"keepalive": 1}, "keepalive"),
        ({"min_interval": -1}, "min_interval"),
        ({"reconnect_min": 10, "reconnect_max": 1}, "reconnect_max"),
        ({"password": "x", "password_file": "/etc/hostname"}, "password"),
        ({"ca_file": "/nonexistent/ca.pem", "tls": True}, "ca_file"),
        ({"cert_file": "/etc/hostname", "tls": True}, "key_file"),
        ({"ca_file": "/etc/hostname"}, "tls"),
    ],
)
def test_bad_options_are_config_errors(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        structure(table, MqttSinkOptions, "sinks.mqtt")


def test_password_is_not_in_repr_or_logs(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    o = MqttSinkOptions(username="u", password="hunter2", port=1)
    assert "hunter2" not in repr(o)
    pw = tmp_path / "pw"
    pw.write_text("fromfile\n")
    assert MqttSinkOptions(username="u", password_file=str(pw)).read_password() == "fromfile"
    caplog.set_level(logging.DEBUG)
    sink = MqttSink(o)
    sink.connection.start()
    try:
        assert "hunter2" not in caplog.text
        assert "as u" in caplog.text
    finally:
        client = sink.connection.client
        assert client is not None
        client.loop_stop()


def test_plugin_registers_the_sink() -> None:
    from bmshost.registry import SinkRegistry
    from bmshost.sink import SinkContext

    registry = SinkRegistry()
    bmshost_register_sinks(registry)
    spec = registry.get("mqtt")
    assert spec is not None and spec.options is MqttSinkOptions
    sink = make_mqtt_sink(SinkContext(options=None))
    assert isinstance(sink, MqttSink) and sink.options == MqttSinkOptions()


@pytest.mark.parametrize(
    ("control", "payload", "expected"),
    [
        ("charge_fet", b"ON", Command(CommandKind.CHARGE_FET, True, "mqtt")),
        ("charge_fet", b" off\n", Command(CommandKind.CHARGE_FET, False, "mqtt")),
        ("discharge_fet", b"true", Command(CommandKind.DISCHARGE_FET, True, "mqtt")),
        ("discharge_fet", b"0", Command(CommandKind.DISCHARGE_FET, False, "mqtt")),
        ("balance", b'{"value": 1}', Command(CommandKind.BALANCE, True, "mqtt")),
        ("soc_reset", b"80.5", Command(CommandKind.SOC_RESET, 80.5, "mqtt")),
        ("soc_reset", b'{"value": 100}', Command(CommandKind.SOC_RESET, 100.0, "mqtt")),
        ("soc_reset", b'"0"', Command(CommandKind.SOC_RESET, 0.0, "mqtt")),
    ],
)
def test_commands_parse(control: str, payload: bytes, expected: Command) -> None:
    assert parse_command(control, payload, ALL) == expected


@pytest.mark.parametrize(
    ("control", "payload", "caps", "message"),
    [
        ("charge_fet", b"ON", ALL - {Capability.DISABLE_CHARGING}, "cannot do that"),
        ("soc_reset", b"50", ALL - {Capability.SOC_RESET}, "cannot do that"),
        ("soc_reset", b"100.01", ALL, "outside"),
        ("soc_reset", b"Infinity", ALL, "finite"),
        ("soc_reset", b"[1]", ALL, "number"),
        ("balance", b"\xff", ALL, "UTF-8"),
        ("balance", b"1" * 300, ALL, "too long"),
        ("balance", b'{"value": 1, "x": 2}', ALL, "value"),
        ("balance", b"null", ALL, "ON/OFF"),
        ("", b"ON", ALL, "unknown control"),
        ("set/charge_fet", b"ON", ALL, "unknown control"),
    ],
)
def test_commands_refused(control: str, payload: bytes, caps: frozenset[Capability],
                          message: str) -> None:
    outcome = parse_command(control, payload, caps)
    assert isinstance(outcome, Refusal)
    assert message in outcome.message


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["charge_fet", "discharge_fet", "balance", "soc_reset", "x"]),
       st.binary(max_size=64) | st.sampled_from([b"ON", b"OFF", b"1e308", b"-0", b"100"]))
def test_any_command_payload_is_a_command_or_a_refusal(control: str, payload: bytes) -> None:
    outcome = parse_command(control, payload, ALL)
    assert isinstance(outcome, Command | Refusal)
    if isinstance(outcome, Command) and outcome.kind is CommandKind.SOC_RESET:
        assert isinstance(outcome.value, float) and 0 <= outcome.value <= 100
    json.loads(result_payload(control, payload, False, "m", 1.0))


def test_state_encoding_and_change_key(kit: Any) -> None:
    a = kit.update16(t=1.0)
    b = kit.update16(t=2.0)
    b.link_health = {"seconds_since_good_read": 9.9}
    doc, key_a, payload = encode_state(a)
    assert json.loads(payload) == doc == json.loads(json.dumps(a.to_json_dict()))
    assert encode_state(b)[1] == key_a  # only volatile keys differ
    c = kit.update16()
    c.sample.soc = 12.0
    assert encode_state(c)[1] != key_a


def test_state_with_nan_is_still_valid_json(kit: Any) -> None:
    u = kit.update16()
    u.derived = Derived(time_to_go=math.inf, soc=math.nan)
    _, _, payload = encode_state(u)
    assert json.loads(payload)["derived"] == {"soc": None, "time_to_go": None}


def test_throttle() -> None:
    t = Throttle(min_interval=5.0, max_interval=60.0)
    assert t.offer(0.0, "a")
    t.published(0.0, "a")
    assert not t.offer(1.0, "a") and not t.offer(4.9, "b")
    assert t.offer(5.0, "b")
    t.published(5.0, "b")
    assert not t.offer(64.9, "b") and t.offer(65.0, "b")
    never = Throttle(min_interval=0.0, max_interval=0.0)
    never.published(0.0, "a")
    assert not never.offer(1e9, "a") and never.offer(0.0, "b")


def test_flatten() -> None:
    doc = {"voltage": 53.2, "model": "X", "cell_voltages": [3.3, 3.31], "charge_fet": True,
           "limits": {"cvl": 55.2, "charge_limitation": "Cell"}, "alarms": {"low_voltage": 0},
           "derived": {"time_to_soc": {"10": 5.0}}}
    assert flatten(doc) == {
        "voltage": "53.2", "model": "X", "cell_voltages/1": "3.3", "cell_voltages/2": "3.31",
        "charge_fet": "true", "limits/cvl": "55.2", "limits/charge_limitation": "Cell",
        "alarms/low_voltage": "0", "derived/time_to_soc/10": "5.0",
    }


def test_topic_ids() -> None:
    assert topic_id("Bank 1/main") == "Bank_1_main"
    assert topic_id("a+b#c") == "a_b_c"
    assert topic_id("///") == "battery"
    t = battery_topics("bmshost", "x")
    assert (t.state, t.availability, t.result, t.command_filter) == (
        "bmshost/x/state", "bmshost/x/availability", "bmshost/x/result", "bmshost/x/set/+")
    assert t.control_of("bmshost/x/set/balance") == "balance"
    assert t.control_of("bmshost/y/set/balance") is None


def test_batteries_with_the_same_name_get_distinct_topics(kit: Any) -> None:
    sink = MqttSink(MqttSinkOptions(commands=False))
    a, b = kit.FakeBattery("pack"), kit.FakeBattery("pack")
    sink.add_battery(a)
    sink.add_battery(b)
    assert sink.topics_of(a).base == "bmshost/pack"
    assert sink.topics_of(b).base == "bmshost/pack_2"
