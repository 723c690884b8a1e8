"""The MQTT sink against a real mosquitto: state, availability, per-value topics, commands,
broker loss and return, clean stop."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from bmshost.capabilities import Capability
from bmshost.model import CommandKind
from bmshost_sink_mqtt.options import MqttSinkOptions
from bmshost_sink_mqtt.sink import MqttSink


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_sink(port: int, clock: Clock | None = None, **options: Any) -> MqttSink:
    opts = MqttSinkOptions(port=port, reconnect_min=0.05, reconnect_max=0.2, **options)
    return MqttSink(opts, clock=clock or Clock())


async def started(sink: MqttSink, kit: Any) -> MqttSink:
    await sink.start()
    await kit.until(lambda: sink.connection.connected)
    return sink


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_state_is_retained_json_with_sample_limits_derived(
    broker: Any, observer: Any, kit: Any, protocol: str
) -> None:
    sink = await started(make_sink(broker.port, protocol=protocol), kit)
    battery = kit.FakeBattery("Bank 1/main")
    try:
        sink.add_battery(battery)
        update = kit.update16()
        sink.publish(battery, update)
        topic = "bmshost/Bank_1_main/state"  # slash and space cannot be part of one level
        await kit.until(lambda: observer.last(topic) is not None)
        state = observer.last_json(topic)
        assert state == json.loads(json.dumps(update.to_json_dict()))
        assert state["cell_voltages"] == update.sample.cell_voltages
        assert state["limits"]["cvl"] == 55.2 and state["limits"]["charge_limitation"]
        assert state["derived"]["soc"] == 80.9
        assert observer.last("bmshost/status") == b"online"
        await kit.until(lambda: observer.last("bmshost/Bank_1_main/availability") is not None)
        assert observer.last("bmshost/Bank_1_main/availability") == b"online"
    finally:
        await sink.stop()
    # A late subscriber gets the retained messages: state, availability (now offline), status.
    late = kit.Observer(broker.port)
    late.start()
    try:
        await kit.until(lambda: late.last("bmshost/Bank_1_main/state") is not None)
        await kit.until(lambda: late.last("bmshost/status") is not None)
        assert late.messages["bmshost/Bank_1_main/state"][0][1] is True  # retained flag
        assert late.last("bmshost/status") == b"offline"
        assert late.last("bmshost/Bank_1_main/availability") == b"offline"
    finally:
        late.stop()


async def test_published_on_change_with_minimum_interval(
    broker: Any, observer: Any, kit: Any
) -> None:
    clock = Clock()
    sink = await started(make_sink(broker.port, clock, min_interval=5.0, max_interval=60.0), kit)
    battery = kit.FakeBattery()
    topic = "bmshost/bank1/state"
    sent = lambda: sink.connection.published  # noqa: E731 - counted when handed to paho
    try:
        sink.publish(battery, kit.update16(t=1.0))
        first = sent()
        clock.now += 1.0  # unchanged (only t and link health differ): nothing sent
        sink.publish(battery, kit.update16(t=2.0))
        assert sent() == first
        changed = kit.sample16()
        changed.voltage = 53.3
        clock.now += 1.0  # changed, but within min_interval: held back
        sink.publish(battery, kit.update16(t=3.0, sample=changed))
        assert sent() == first
        clock.now += 4.0  # interval over: the newest state goes out
        sink.publish(battery, kit.update16(t=4.0, sample=changed))
        assert sent() == first + 1
        await kit.until(lambda: (observer.last_json(topic) or {}).get("voltage") == 53.3)
        clock.now += 61.0  # unchanged for max_interval: refreshed so "t" shows we are alive
        sink.publish(battery, kit.update16(t=65.0, sample=changed))
        await kit.until(lambda: (observer.last_json(topic) or {}).get("t") == 65.0)
    finally:
        await sink.stop()


async def test_availability_follows_staleness(broker: Any, observer: Any, kit: Any) -> None:
    sink = await started(make_sink(broker.port, min_interval=0), kit)
    battery = kit.FakeBattery()
    topic = "bmshost/bank1/availability"
    try:
        sink.publish(battery, kit.update16())
        await kit.until(lambda: observer.last(topic) == b"online")
        sink.publish(battery, kit.update16(online=False))  # one failed read: still available
        sink.publish(battery, kit.update16(online=False, stale=True))
        await kit.until(lambda: observer.last(topic) == b"offline")
        state = observer.last_json("bmshost/bank1/state")
        assert state is not None
        await kit.until(lambda: observer.last_json("bmshost/bank1/state")["stale"] is True)
        sink.publish(battery, kit.update16())
        await kit.until(lambda: observer.last(topic) == b"online")
        assert observer.count(topic) == 3  # changes only
    finally:
        await sink.stop()


async def test_per_value_topics_publish_changes_only(broker: Any, observer: Any, kit: Any) -> None:
    sink = await started(make_sink(broker.port, min_interval=0, per_value_topics=True), kit)
    battery = kit.FakeBattery()
    try:
        sink.publish(battery, kit.update16())
        wanted = ["cell_voltages/16", "voltage", "limits/cvl", "limits/charge_limitation",
                  "charge_fet", "derived/time_to_go"]
        await kit.until(lambda: all(observer.last(f"bmshost/bank1/{w}") for w in wanted))
        assert not observer.topics("bmshost/bank1/link")  # volatile health is not a value topic
        assert observer.last("bmshost/bank1/voltage") == b"53.184"
        assert observer.last("bmshost/bank1/cell_voltages/1") == b"3.32"
        assert observer.last("bmshost/bank1/limits/cvl") == b"55.2"
        assert observer.last("bmshost/bank1/limits/charge_limitation") == b"Cell voltage"
        assert observer.last("bmshost/bank1/charge_fet") == b"true"
        late = kit.Observer(broker.port)  # only a new subscriber sees the retained flag
        late.start()
        try:
            await kit.until(lambda: late.last("bmshost/bank1/voltage") is not None)
            assert late.messages["bmshost/bank1/voltage"][-1][1] is True
        finally:
            late.stop()
        changed = kit.sample16()
        changed.current = -10.0
        sink.publish(battery, kit.update16(sample=changed))
        await kit.until(lambda: observer.last("bmshost/bank1/current") == b"-10.0")
        assert observer.count("bmshost/bank1/voltage") == 1
    finally:
        await sink.stop()


# -- commands ------------------------------------------------------------------------------------


async def _answer(observer: Any, kit: Any, n: int) -> dict[str, Any]:
    topic = "bmshost/bank1/result"
    await kit.until(lambda: observer.count(topic) >= n)
    return json.loads(observer.messages[topic][n - 1][0])


async def test_valid_commands_reach_the_battery(broker: Any, observer: Any, kit: Any) -> None:
    sink = await started(make_sink(broker.port), kit)
    battery = kit.FakeBattery()
    try:
        sink.add_battery(battery)
        await kit.until(lambda: sink.connection.connected)
        await kit.until(lambda: observer.last("bmshost/status") == b"online")
        sends = [("charge_fet", "OFF", CommandKind.CHARGE_FET, False),
                 ("discharge_fet", "on", CommandKind.DISCHARGE_FET, True),
                 ("balance", "false", CommandKind.BALANCE, False),
                 ("soc_reset", '{"value": 80}', CommandKind.SOC_RESET, 80.0),
                 ("soc_reset", "100", CommandKind.SOC_RESET, 100.0)]
        for i, (control, payload, _, _) in enumerate(sends, start=1):
            observer.send(f"bmshost/bank1/set/{control}", payload)
            answer = await _answer(observer, kit, i)
            assert answer["ok"] is True, answer
            assert answer["control"] == control and answer["payload"] == payload
        assert [(c.kind, c.value, c.origin) for c in battery.performed] == [
            (kind, value, "mqtt") for _, _, kind, value in sends
        ]
        assert observer.messages["bmshost/bank1/result"][0][1] is False  # answers not retained
    finally:
        await sink.stop()


@pytest.mark.parametrize(
    ("control", "payload", "reason"),
    [
        ("charge_fet", "maybe", "ON/OFF"),
        ("charge_fet", "2", "ON/OFF"),
        ("charge_fet", "", "empty"),
        ("charge_fet", '{"val": 1}', "value"),
        ("soc_reset", "150", "outside 0..100"),
        ("soc_reset", "-1", "outside 0..100"),
        ("soc_reset", "NaN", "finite"),
        ("soc_reset", "true", "number"),
        ("soc_reset", "eighty", "number"),
        ("heater", "ON", "unknown control"),
        ("balance", "ON", "cannot do that"),  # the fake battery lacks DISABLE_BALANCING
    ],
)
async def test_invalid_commands_are_refused_and_reported(
    broker: Any, observer: Any, kit: Any, control: str, payload: str, reason: str
) -> None:
    caps = frozenset(Capability) - {Capability.DISABLE_BALANCING}
    sink = await started(make_sink(broker.port), kit)
    battery = kit.FakeBattery(caps=caps)
    try:
        sink.add_battery(battery)
        await kit.until(lambda: observer.last("bmshost/status") == b"online")
        observer.send(f"bmshost/bank1/set/{control}", payload)
        answer = await _answer(observer, kit, 1)
        assert answer["ok"] is False
        assert reason in answer["message"]
        assert battery.performed == []
    finally:
        await sink.stop()


async def test_retained_commands_are_never_executed(broker: Any, observer: Any, kit: Any) -> None:
    # Left on the broker by a careless client before the host started.
    observer.send("bmshost/bank1/set/charge_fet", "OFF", retain=True)
    sink = await started(make_sink(broker.port), kit)
    battery = kit.FakeBattery()
    try:
        sink.add_battery(battery)
        answer = await _answer(observer, kit, 1)
        assert answer["ok"] is False and "retained" in answer["message"]
        assert battery.performed == []
    finally:
        observer.send("bmshost/bank1/set/charge_fet", "", retain=True)  # clear it
        await sink.stop()


async def test_commands_disabled_means_no_subscription(broker: Any, observer: Any,
                                                       kit: Any) -> None:
    sink = await started(make_sink(broker.port, commands=False), kit)
    battery = kit.FakeBattery()
    try:
        sink.publish(battery, kit.update16())
        await kit.until(lambda: observer.last("bmshost/bank1/state") is not None)
        observer.send("bmshost/bank1/set/charge_fet", "OFF")
        observer.send("bmshost/bank1/set/probe", "x")
        await kit.until(lambda: observer.count("bmshost/bank1/set/probe") == 1)
        assert observer.count("bmshost/bank1/result") == 0
        assert battery.performed == []
    finally:
        await sink.stop()


# -- broker loss ---------------------------------------------------------------------------------


async def test_broker_killed_and_restarted(broker: Any, kit: Any,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bmshost.sink.mqtt")
    clock = Clock()
    sink = await started(make_sink(broker.port, clock, min_interval=0), kit)
    battery = kit.FakeBattery()
    observer = kit.Observer(broker.port)
    observer.start()
    try:
        sink.publish(battery, kit.update16(t=1.0))
        await kit.until(lambda: observer.last("bmshost/bank1/state") is not None)
        observer.stop()
        broker.stop()
        await kit.until(lambda: not sink.connection.connected)
        # Polling goes on while the broker is away: every publish returns, nothing raises.
        for i in range(50):
            clock.now += 1
            changed = kit.sample16()
            changed.voltage = 50.0 + i / 100
            sink.publish(battery, kit.update16(t=10.0 + i, sample=changed))
        assert sink.connection.dropped > 0
        broker.start()  # same port; retained messages are gone with the old process
        await kit.until(lambda: sink.connection.connected, timeout=10)
        fresh = kit.Observer(broker.port)
        fresh.start()
        try:
            # Republished on reconnect: the newest state, availability, host status, discovery.
            await kit.until(lambda: fresh.last("bmshost/bank1/state") is not None)
            assert fresh.last_json("bmshost/bank1/state")["voltage"] == 50.49
            await kit.until(lambda: fresh.last("bmshost/status") == b"online")
            await kit.until(lambda: fresh.last("bmshost/bank1/availability") == b"online")
            await kit.until(lambda: any(t.startswith("homeassistant/") for t in fresh.topics()))
            # Publishing resumes...
            clock.now += 1
            sink.publish(battery, kit.update16(t=99.0))
            await kit.until(lambda: fresh.last_json("bmshost/bank1/state")["t"] == 99.0)
            # ...and commands work again (subscriptions renewed).
            fresh.send("bmshost/bank1/set/charge_fet", "ON")
            await kit.until(lambda: len(battery.performed) == 1)
        finally:
            fresh.stop()
        assert sink.connection.connects == 2
        assert any("reconnected" in r.getMessage() for r in caplog.records)
    finally:
        await sink.stop()


async def test_no_broker_at_all_never_blocks_or_raises(kit: Any, tmp_path: Any) -> None:
    unused = kit.Broker(tmp_path).port  # a free port nobody listens on
    sink = make_sink(unused)
    await sink.start()  # returns at once; paho keeps trying in its thread
    battery = kit.FakeBattery()
    for i in range(20):
        sink.publish(battery, kit.update16(t=float(i)))
    assert not sink.connection.connected
    assert sink.connection.published == 0 and sink.connection.dropped > 0
    await sink.stop()
    assert sink.connection.client is None


async def test_last_will_marks_the_host_offline(broker: Any, observer: Any, kit: Any) -> None:
    sink = await started(make_sink(broker.port), kit)
    try:
        await kit.until(lambda: observer.last("bmshost/status") == b"online")
        client = sink.connection.client
        assert client is not None
        sock = client.socket()
        assert sock is not None
        sock.shutdown(2)  # the network drops without a DISCONNECT: the broker sends the will
        await kit.until(lambda: b"offline" in [p for p, _ in
                                                observer.messages.get("bmshost/status", [])])
        # paho reconnects by itself and the host is announced again.
        await kit.until(lambda: observer.last("bmshost/status") == b"online", timeout=10)
    finally:
        await sink.stop()


async def test_tls_with_a_private_ca(tls_broker: Any, kit: Any) -> None:
    broker, ca = tls_broker
    sink = await started(make_sink(broker.port, tls=True, ca_file=str(ca), username="u",
                                   password="secret"), kit)
    battery = kit.FakeBattery()
    try:
        sink.publish(battery, kit.update16())
        assert sink.connection.where.startswith("mqtts://")
        # Read it back through the mqtt input driver over TLS as well.
        from bmshost.url import parse_link_url
        from bmshost_mqtt.link import open_mqtt_link

        link = open_mqtt_link(parse_link_url(
            f"mqtts://127.0.0.1:{broker.port}/bmshost/bank1/state?ca={ca}"))
        await link.open()
        try:
            assert await link.wait(5.0)
            state = json.loads(link.take()[-1].payload)
            assert state["voltage"] == 53.184
        finally:
            await link.close()
    finally:
        await sink.stop()


async def test_tls_refuses_an_unknown_certificate(tls_broker: Any, kit: Any) -> None:
    broker, _ = tls_broker
    sink = make_sink(broker.port, tls=True)  # system CAs: the private CA is not trusted
    await sink.start()
    try:
        sink.publish(kit.FakeBattery(), kit.update16())
        await kit.until(lambda: sink.connection.dropped > 0)
        assert not sink.connection.connected
    finally:
        await sink.stop()
