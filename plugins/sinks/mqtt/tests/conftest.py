"""Fixtures: a real mosquitto on 127.0.0.1 (free port), an observer client, a fake battery."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bmshost.capabilities import Capability
from bmshost.commands import validate
from bmshost.model import (
    ALARM_NAMES,
    Command,
    CommandResult,
    Derived,
    Identity,
    Limits,
    Sample,
)
from bmshost.sink import BatteryUpdate
from bmshost.testing import MosquittoBroker

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


class Observer:
    """A test client subscribed to everything; records (payload, retained) per topic."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: dict[str, list[tuple[bytes, bool]]] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"observer-{time.monotonic_ns()}")
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe("#", qos=1)
        self.client.reconnect_delay_set(0.05, 0.2)  # type: ignore[arg-type]

    def start(self) -> None:
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._lock:
            self.messages.setdefault(message.topic, []).append(
                (bytes(message.payload), bool(message.retain)))

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def last(self, topic: str) -> bytes | None:
        with self._lock:
            items = self.messages.get(topic)
            return items[-1][0] if items else None

    def last_json(self, topic: str) -> Any:
        payload = self.last(topic)
        return None if payload is None else json.loads(payload)

    def count(self, topic: str) -> int:
        with self._lock:
            return len(self.messages.get(topic, ()))

    def topics(self, prefix: str = "") -> list[str]:
        with self._lock:
            return sorted(t for t in self.messages if t.startswith(prefix))

    def send(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)


@pytest.fixture
def observer(broker: Broker) -> Iterator[Observer]:
    obs = Observer(broker.port)
    obs.start()
    yield obs
    obs.stop()


async def until(predicate: Callable[[], Any], timeout: float = 5.0) -> None:
    """Poll a condition another thread (paho, mosquitto) makes true; fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    return until


class FakeBattery:
    """A ``BatteryHandle`` that records the commands it performs (validated like the host)."""

    def __init__(self, name: str = "bank1", caps: frozenset[Capability] | None = None,
                 serial: str | None = "SN1") -> None:
        self._name = name
        self._caps = caps if caps is not None else frozenset(Capability)
        self._identity = Identity(driver="jbd", variant="serial", port="/dev/ttyUSB0",
                                  serial_number=serial)
        self.performed: list[Command] = []
        self.latest: BatteryUpdate | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def identity(self) -> Identity:
        return self._identity

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self._caps

    @property
    def connection(self) -> str:
        return "Serial /dev/ttyUSB0"

    async def submit(self, command: Command) -> CommandResult:
        reason = validate(command, self._caps)
        if reason is not None:
            return CommandResult(False, reason)
        self.performed.append(command)
        return CommandResult(True, "ok")

    def stage_command(self, name: str, value: Any) -> bool:
        return False


def sample16() -> Sample:
    return Sample(
        voltage=53.184, current=-12.5, power=-664.8, soc=81.5, soh=99.0, capacity_ah=280.0,
        remaining_ah=228.2, cycles=42, cell_voltages=[3.32 + (i % 5) / 1000 for i in range(16)],
        cell_balancing=[i == 3 for i in range(16)], temperatures=[21.0, 22.5, 23.0, 21.5],
        mosfet_temperature=30.0, charge_fet=True, discharge_fet=True, balance_fet=True,
        bms_charge_current_limit=100.0, bms_discharge_current_limit=150.0,
        alarms={name: 0 for name in ALARM_NAMES[:8]}, serial_number="SN1", model="JBD-SP16S",
        firmware_version="1.2", hardware_version="hw3",
    )


def update16(t: float = 1_700_000_000.0, sample: Sample | None = None, stale: bool = False,
             online: bool = True) -> BatteryUpdate:
    return BatteryUpdate(
        t=t, sample=sample if sample is not None else sample16(), fresh=online, online=online,
        stale=stale,
        limits=Limits(cvl=55.2, ccl=100.0, dcl=150.0, charge_mode="Bulk",
                      charge_limitation="Cell voltage", discharge_limitation="",
                      allow_to_charge=True, allow_to_discharge=True, cvl_set_by="cvl"),
        derived=Derived(soc=80.9, consumed_ah=-51.8, time_to_go=51234.0),
        link_health={"reconnects": 0, "seconds_since_good_read": 0.3},
    )


class Kit:
    """Test helpers handed out as one fixture (conftest modules are not importable here)."""

    FakeBattery = FakeBattery
    Observer = Observer
    Broker = Broker
    sample16 = staticmethod(sample16)
    update16 = staticmethod(update16)
    until = staticmethod(until)


@pytest.fixture
def kit() -> type[Kit]:
    return Kit


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Broker, Path]]:
    """mosquitto with a TLS listener; the certificate is signed by a throw-away CA (``ca.pem``)."""
    if shutil.which("mosquitto") is None or shutil.which("openssl") is None:
        pytest.skip("mosquitto or openssl is not installed")
    d = tmp_path / "pki"
    d.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda *a: subprocess.run(a, cwd=d, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
        "-subj", "/CN=bmshost test CA")
    run("openssl", "req", *ec, "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "san.ext")
    # "user root": mosquitto started as root drops to its own user before reading the key,
    # which cannot enter pytest's private temporary directory.
    b = Broker(tmp_path, extra=f"cafile {d / 'ca.pem'}\ncertfile {d / 'server.pem'}\n"
                              f"keyfile {d / 'server.key'}\nuser root\n")
    b.start()
    yield b, d / "ca.pem"
    b.stop()
