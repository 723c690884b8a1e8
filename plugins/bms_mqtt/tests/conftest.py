"""A real mosquitto on 127.0.0.1 (free port), started and killed by the fixtures here."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bmshost.testing import MosquittoBroker

FIXTURES = Path(__file__).parent / "fixtures"


# The broker helper lives in bmshost.testing so every MQTT plugin's tests share it.
Broker = MosquittoBroker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed")
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


def publish(port: int, topic: str, payload: bytes, retain: bool = False) -> None:
    """Publish one message and wait until the broker has it (QoS 1)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-pub-{time.monotonic_ns()}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def example_minimal() -> bytes:
    return (FIXTURES / "example_minimal.json").read_bytes()


@pytest.fixture
def example_full() -> bytes:
    return (FIXTURES / "example_full.json").read_bytes()


@pytest.fixture
def pub(broker: Broker) -> Callable[..., None]:
    """``pub(topic, payload, retain=False)`` on the test broker."""

    def _pub(topic: str, payload: bytes, retain: bool = False) -> None:
        publish(broker.port, topic, payload, retain)

    return _pub
