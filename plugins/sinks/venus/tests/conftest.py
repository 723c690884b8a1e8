"""Fixtures: a private dbus-daemon, the localsettings stand-in, a D-Bus client, fake batteries."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from bmshost_sink_venus import localsettings_standin
from bmshost_sink_venus.sink import VenusSink
from bmshost_sink_venus.testing import Client, make_sink


@pytest.fixture(scope="session")
def dbus_address() -> Iterator[str]:
    """A private session-type dbus-daemon on a socket of its own."""
    tmp = tempfile.mkdtemp(prefix="venus-bus-")
    proc = subprocess.run(
        [
            "dbus-daemon",
            "--session",
            "--fork",
            "--print-address=1",
            "--print-pid=1",
            f"--address=unix:path={tmp}/bus",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    address, pid = proc.stdout.split()[:2]
    try:
        yield address
    finally:
        try:
            os.kill(int(pid), 15)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="session")
def localsettings(dbus_address: str) -> Iterator[subprocess.Popen[str]]:
    """The localsettings stand-in as a separate process on the private bus."""
    proc = subprocess.Popen(
        [sys.executable, localsettings_standin.__file__, dbus_address],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", f"stand-in did not start: {line!r}"
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def bus_env(dbus_address: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the 'auto' bus rule at the private daemon (DBUS_SESSION_BUS_ADDRESS is set)."""
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", dbus_address)
    return dbus_address


@pytest.fixture
def client(bus_env: str) -> Iterator[Client]:
    c = Client(bus_env)
    yield c
    c.close()


@pytest.fixture
async def sink_factory(bus_env: str) -> AsyncIterator[Callable[..., Any]]:
    """Started sinks, stopped at the end of the test."""
    sinks: list[VenusSink] = []

    async def factory(state_dir: str = "", **options: Any) -> VenusSink:
        sink = make_sink(state_dir, **options)
        await sink.start()
        sinks.append(sink)
        return sink

    yield factory
    for sink in sinks:
        await sink.stop()
