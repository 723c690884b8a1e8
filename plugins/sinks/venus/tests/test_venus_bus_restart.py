"""The bus daemon goes away while the host runs: the poll loop and the other sinks carry on, and
every service comes back on the restarted daemon with the same name, instance, paths and values."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bmshost.cli.common import prepare_dict
from bmshost.host import Host
from bmshost.testing import RecordingSink
from bmshost_sink_venus import localsettings_standin
from bmshost_sink_venus.settings import group_key
from bmshost_sink_venus.testing import Client

pytestmark = pytest.mark.e2e


class Bus:
    """A private dbus-daemon (and a localsettings stand-in) that can be killed and started again
    on the same socket, as a restarted system bus would be."""

    def __init__(self, tmp: Path) -> None:
        self.socket = tmp / "bus"
        # No guid in the address: a restarted daemon has a new one, and clients must still reach it.
        self.address = f"unix:path={self.socket}"
        self.pid: int | None = None
        self.settings: subprocess.Popen[str] | None = None

    def start(self) -> None:
        out = subprocess.run(
            ["dbus-daemon", "--session", "--fork", "--print-pid=1", f"--address={self.address}"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.split()
        self.pid = int(out[0])
        self.settings = subprocess.Popen(
            [sys.executable, localsettings_standin.__file__, self.address], stdout=subprocess.PIPE, text=True
        )
        assert self.settings.stdout is not None
        assert self.settings.stdout.readline().strip() == "ready"

    def kill(self) -> None:
        if self.settings is not None:
            self.settings.terminate()
            self.settings.wait(timeout=10)
            self.settings = None
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            self.pid = None
        deadline = time.monotonic() + 5
        while self.socket.exists() and time.monotonic() < deadline:
            time.sleep(0.01)  # the daemon removes its socket on exit
        self.socket.unlink(missing_ok=True)


@pytest.fixture
def bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bus]:
    b = Bus(tmp_path)
    b.start()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", b.address)
    try:
        yield b
    finally:
        b.kill()


async def _wait_for(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = await asyncio.to_thread(predicate)
        except Exception:  # the bus is (still) away
            value = None
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def _ours(client: Client) -> str | None:
    return next((str(n) for n in client.conn.list_names() if str(n).startswith("com.victronenergy.battery.")), None)


async def test_services_come_back_after_a_bus_daemon_restart(bus: Bus, tmp_path: Path) -> None:
    config, plugins = prepare_dict(
        {
            "host": {"poll_interval": 0.05, "request_timeout": 0.1, "retries": 0, "state_dir": str(tmp_path / "s")},
            "batteries": [{"driver": "jbd", "port": "sim:jbd?cells=16&soc=70&current=-5", "name": "house"}],
            "sinks": {"venus": {"settings_write_delay": 0.0}},
        }
    )
    recording = RecordingSink()
    host = Host(config, plugins, extra_sinks=[recording])
    task = asyncio.create_task(host.run(duration=60))
    client = Client(bus.address)
    try:
        name = await _wait_for(lambda: _ours(client))
        items = await _wait_for(lambda: (lambda i: i if i["/Dc/0/Voltage"]["Value"] else None)(client.items(name)))
        assert await asyncio.to_thread(client.set, name, "/CustomName", "House bank") == 0
        before = {p: v["Value"] for p, v in items.items()}
        client.close()

        bus.kill()  # the daemon and everything on it is gone
        n = len(recording.updates["house"])
        await asyncio.sleep(0.5)
        assert len(recording.updates["house"]) > n + 3  # the poll loop and the other sink run on
        assert not task.done()
        assert recording.last("house").online  # the BMS itself was never lost

        bus.start()  # an empty settings service: the instance must come from the sink's memory
        client = Client(bus.address)
        name2 = await _wait_for(lambda: _ours(client))
        assert name2 == name
        after_items = await _wait_for(
            lambda: (lambda i: i if i["/Dc/0/Voltage"]["Value"] else None)(client.items(name2))
        )
        after = {p: v["Value"] for p, v in after_items.items()}
        assert set(after) == set(before)
        assert after["/DeviceInstance"] == before["/DeviceInstance"]
        assert after["/CustomName"] == "House bank"
        assert after["/Connected"] == 1 and after["/ProductName"] == before["/ProductName"]
        venus = next(s for s in host.sinks if s.name == "venus")
        assert venus.entries[id(host.batteries[0])].recreations == 1  # type: ignore[attr-defined]

        # Writes work again, including to the (new) settings service.
        assert await asyncio.to_thread(client.set, name2, "/CustomName", "Bank A") == 0
        uid = host.batteries[0].identity.unique_id
        setting = f"/Settings/Devices/{group_key(uid)}/CustomName"
        await _wait_for(lambda: client.call("com.victronenergy.settings", setting, "GetValue") == "Bank A")
    finally:
        host.stop()
        await asyncio.wait_for(task, 15)
        client.close()
    assert task.exception() is None


async def test_creation_retries_back_off_and_survive_a_clock_step(tmp_path: Path) -> None:
    from bmshost_sink_venus.sink import RETRY_FIRST, RETRY_MAX, Phase
    from bmshost_sink_venus.testing import battery, make_sink, sample16, update, wait_until

    sink = make_sink(bus_address=f"unix:path={tmp_path}/no-bus-here", use_localsettings=False)
    await sink.start()
    bat = battery("NOBUS", port="/dev/ttyNB")
    entry = sink._entry(bat)
    t = 1000.0
    waits = []
    for _ in range(7):
        sink.publish(bat, update(t=t, sample=sample16()))
        await wait_until(lambda: entry.phase is Phase.WAITING and entry.retry_at > 0)
        waits.append(entry.retry_at - t)
        t = entry.retry_at
        sink.publish(bat, update(t=t - 0.5, sample=sample16()))  # too early: no new attempt
        assert entry.phase is Phase.WAITING
    assert waits[0] == RETRY_FIRST and waits == sorted(waits) and waits[-1] == RETRY_MAX
    assert entry.failures == 7
    # The wall clock steps back an hour (NTP): the next publish tries at once.
    sink.publish(bat, update(t=t - 3600, sample=sample16()))
    assert entry.phase is Phase.CREATING
    await wait_until(lambda: entry.phase is Phase.WAITING)
    await sink.stop()
