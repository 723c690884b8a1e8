"""The mqtt driver against a real mosquitto: link, session, staleness, bad payloads, settings."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from bmshost.capabilities import Capability
from bmshost.driver import SessionContext
from bmshost.errors import ConfigError, LinkError, LinkTimeout
from bmshost.plugins import Selection, load_plugins
from bmshost.url import parse_link_url
from bmshost_mqtt.link import MqttSubscriptionLink, open_mqtt_link
from bmshost_mqtt.options import MqttInputOptions
from bmshost_mqtt.plugin import JSON
from bmshost_mqtt.session import MqttSession
from bmshost_mqtt.settings import parse_settings

TOPIC = "esphome/bms/state"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_link(port: int, clock: Callable[[], float] | None = None, topic: str = TOPIC,
              extra: str = "") -> MqttSubscriptionLink:
    url = parse_link_url(f"mqtt://127.0.0.1:{port}/{topic}{extra}")
    link = open_mqtt_link(url)
    if clock is not None:
        link.clock = clock
    return link


def make_session(link: MqttSubscriptionLink, **options: Any) -> MqttSession:
    return MqttSession(
        SessionContext(link=link, variant=JSON, options=MqttInputOptions(**options), timeout=2.0,
                       log=logging.getLogger("test.mqtt"))
    )


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a condition that another thread (paho, mosquitto) makes true."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.005)


async def test_retained_example_becomes_a_sample_and_narrows_capabilities(
    broker: Any, pub: Any, example_minimal: bytes
) -> None:
    pub(TOPIC, example_minimal, retain=True)
    link = make_link(broker.port)
    await link.open()
    try:
        session = make_session(link)
        sample = await session.connect()
        assert sample.voltage == 13.2 and sample.cell_voltages == [3.3, 3.31, 3.29, 3.3]
        caps = session.capabilities
        assert Capability.SINGLE_CELL_DETAILS in caps and Capability.VOLTAGE in caps
        # The minimal example has no MOSFET sensor, SoH or BMS limits: stages needing them stay out.
        assert Capability.MOSFET_TEMPERATURE not in caps
        assert Capability.SOH not in caps
        assert Capability.BMS_CURRENT_LIMITS not in caps
        assert Capability.SOC_RESET not in caps  # read-only input
        assert (await session.read()).soc == 45.87
        assert link.health["broker_connected"] is True
    finally:
        await link.close()
    assert not link.is_open


async def test_new_messages_merge_and_omitted_keys_keep_their_value(
    broker: Any, pub: Any, example_full: bytes
) -> None:
    link = make_link(broker.port)
    await link.open()
    try:
        session = make_session(link)
        pub(TOPIC, example_full)
        await session.connect()
        update = json.loads(example_full)
        update["voltage"] = 13.4
        del update["temperature_mos"]  # omitted now: the last value is kept (reference semantics)
        pub(TOPIC, json.dumps(update).encode())
        await until(lambda: link.received >= 2)
        s = await session.read()
        assert s.voltage == 13.4
        assert s.mosfet_temperature == 30.0
        assert s.power == pytest.approx(13.4 * 5.2, abs=1e-3)
    finally:
        await link.close()


async def test_bad_payloads_are_logged_rate_limited_and_ignored(
    broker: Any, pub: Any, example_minimal: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    link = make_link(broker.port, clock)
    await link.open()
    try:
        session = make_session(link, log_interval=60.0)
        pub(TOPIC, example_minimal)
        first = await session.connect()
        good = json.loads(example_minimal)
        bad = [b"{not json", b"[]", json.dumps({**good, "voltage": "13.2"}).encode(),
               json.dumps({k: v for k, v in good.items() if k != "soc"}).encode(),
               json.dumps({**good, "cell_count": 5}).encode(), b""]
        caplog.set_level(logging.INFO, logger="test.mqtt")
        for payload in bad:
            pub(TOPIC, payload)
        await until(lambda: link.received >= 1 + len(bad))
        s = await session.read()
        assert s == first  # nothing changed
        assert link.rejected == len(bad)
        warnings = [r for r in caplog.records if "message ignored" in r.getMessage()]
        assert len(warnings) == 1  # the rest were suppressed within log_interval
        assert "not valid JSON" in warnings[0].getMessage()
        clock.now += 61  # next interval: one more line, saying how many were suppressed
        pub(TOPIC, b"42")
        await until(lambda: link.received >= 2 + len(bad))
        with pytest.raises(LinkTimeout):  # 61 s without a valid message > max_age
            await session.read()
        warnings = [r for r in caplog.records if "message ignored" in r.getMessage()]
        assert len(warnings) == 2
        assert "5 similar message(s) suppressed" in warnings[1].getMessage()
    finally:
        await link.close()


async def test_a_different_cell_count_is_refused(
    broker: Any, pub: Any, example_minimal: bytes
) -> None:
    link = make_link(broker.port)
    await link.open()
    try:
        session = make_session(link)
        pub(TOPIC, example_minimal)
        await session.connect()
        other = json.loads(example_minimal)
        other["cell_count"] = 3
        other["cells"] = other["cells"][:3]
        other["voltage"] = 9.9
        pub(TOPIC, json.dumps(other).encode())
        await until(lambda: link.received >= 2)
        s = await session.read()
        assert s.voltage == 13.2 and s.cell_count == 4
        assert link.rejected == 1
    finally:
        await link.close()


async def test_read_fails_when_no_message_is_newer_than_max_age(
    broker: Any, pub: Any, example_minimal: bytes
) -> None:
    clock = FakeClock()
    link = make_link(broker.port, clock)
    await link.open()
    try:
        session = make_session(link, max_age=10.0)
        pub(TOPIC, example_minimal)
        await session.connect()
        clock.now += 9.9
        assert (await session.read()).voltage == 13.2  # still fresh enough
        clock.now += 0.2
        with pytest.raises(LinkTimeout, match="max_age 10"):
            await session.read()
        pub(TOPIC, example_minimal)  # data flows again: reads recover
        await until(lambda: link.received >= 2)
        assert (await session.read()).voltage == 13.2
    finally:
        await link.close()


async def test_connect_times_out_without_a_valid_message(broker: Any, pub: Any) -> None:
    link = make_link(broker.port)
    await link.open()
    try:
        session = MqttSession(SessionContext(link=link, variant=JSON, options=None, timeout=0.2))
        pub(TOPIC, b"garbage")
        with pytest.raises(LinkTimeout, match=r"no valid message within 0\.2 s"):
            await session.connect()
    finally:
        await link.close()


async def test_bmshost_state_messages_are_read(broker: Any, pub: Any) -> None:
    link = make_link(broker.port, topic="bmshost/bank/state")
    await link.open()
    try:
        session = make_session(link, format="bmshost")
        state = {"t": 1.0, "online": True, "stale": False, "voltage": 53.2, "current": -4.0,
                 "soc": 77.0, "cell_voltages": [3.325] * 16, "cycles": 3,
                 "limits": {"cvl": 55.2}}
        pub("bmshost/bank/state", json.dumps(state).encode(), retain=True)
        s = await session.connect()
        assert (s.voltage, s.soc, s.cycles, s.cell_count) == (53.2, 77.0, 3, 16)
        assert Capability.CHARGE_CYCLE_HISTORY in session.capabilities
    finally:
        await link.close()


def _unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_open_raises_link_error_without_a_broker() -> None:
    link = make_link(_unused_port(), extra="?connect_timeout=0.3")
    with pytest.raises(LinkError, match="cannot connect to the broker"):
        await link.open()
    assert not link.is_open


async def test_wait_reports_arrival_and_timeout(broker: Any, pub: Any) -> None:
    link = make_link(broker.port)
    with pytest.raises(LinkError):
        await link.wait(0.01)
    await link.open()
    try:
        assert await link.wait(0.05) is False
        pub(TOPIC, b"{}")
        assert await link.wait(5.0) is True
        assert [m.payload for m in link.take()] == [b"{}"]
    finally:
        await link.close()


# -- settings (URL parsing) ---------------------------------------------------------------------


def test_settings_from_url(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    s = parse_settings(parse_link_url(
        f"mqtt://broker.lan/a/b/c?username=u&password_file={secret}&protocol=5&qos=1&keepalive=30"
    ))
    assert (s.host, s.port, s.topic, s.username, s.password) == ("broker.lan", 1883, "a/b/c", "u",
                                                                  "s3cret")
    assert (s.protocol, s.qos, s.keepalive, s.tls) == ("5", 1, 30, False)
    assert "s3cret" not in repr(s) and "s3cret" not in s.where
    monkeypatch.setenv("BMS_PW", "envpw")
    s = parse_settings(parse_link_url("mqtts://h:9999/t?password_env=BMS_PW&insecure=1"))
    assert (s.port, s.tls, s.insecure, s.password) == (9999, True, True, "envpw")
    assert parse_settings(parse_link_url("mqtts://h/t")).port == 8883


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mqtt://h", "HOST"),
        ("mqtt://h/", "HOST"),
        ("mqtt://h/a/#", "wildcards"),
        ("mqtt://h/a/+/b", "wildcards"),
        ("mqtt://:1883/t", "host missing"),
        ("mqtt://h:x/t", "not a number"),
        ("mqtt://h:70000/t", "outside"),
        ("mqtt://h/t?protocol=4", "protocol"),
        ("mqtt://h/t?qos=3", "qos"),
        ("mqtt://h/t?keepalive=1", "keepalive"),
        ("mqtt://h/t?tls=maybe", "tls"),
        ("mqtt://h/t?colour=red", "unknown parameter"),
        ("mqtt://h/t?password=a&password_env=B", "only one"),
        ("mqtt://h/t?password_env=SURELY_NOT_SET_123", "not set"),
        ("mqtt://h/t?password_file=/nonexistent/pw", "cannot read"),
        ("mqtt://h/t?ca=/nonexistent/ca.pem", "does not exist"),
    ],
)
def test_bad_urls_are_config_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings(parse_link_url(url))


def test_plugin_registers_driver_and_both_schemes() -> None:
    manager = load_plugins(Selection(drivers=frozenset({"mqtt"}), schemes=frozenset({"mqtts"}),
                                     sinks=frozenset()))
    regs = manager.registries
    spec = regs.drivers.get("mqtt")
    assert spec is not None and spec.options is MqttInputOptions
    assert spec.variant(None).transports == ("mqtt",)
    for scheme in ("mqtt", "mqtts"):
        transport = regs.transports.for_scheme(scheme)
        assert transport is not None and transport.kind == "mqtt"
