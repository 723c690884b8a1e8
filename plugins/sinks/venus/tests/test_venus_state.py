"""The control state kept in localsettings (``ControlState`` next to the device instance): written
coalesced, restored by the host when its state file is gone, foreign values ignored."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import dbus
import pytest

from bmshost.cli.common import prepare_dict
from bmshost.host import Host
from bmshost_sink_venus.settings import CONTROL_STATE, MAX_STATE_CHARS, group_key
from bmshost_sink_venus.testing import Client, battery

pytestmark = pytest.mark.e2e

SETTINGS = "com.victronenergy.settings"


def _writes(client: Client) -> int:
    return int(client.call(SETTINGS, "/", "Writes", iface="com.victronenergy.SettingsTest"))


def _setting(client: Client, unique_id: str, name: str = CONTROL_STATE) -> Any:
    return client.call(SETTINGS, f"/Settings/Devices/{group_key(unique_id)}/{name}", "GetValue")


def _add(client: Client, unique_id: str, default: Any) -> Any:
    item = {"path": f"{group_key(unique_id)}/{CONTROL_STATE}", "default": default}
    return client.call(SETTINGS, "/Settings/Devices", "AddSettings", dbus.Array([item], signature="a{sv}"),
                       iface="com.victronenergy.Settings")


async def _wait_for(predicate: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def _config(state_dir: Path, port: str, **venus: Any) -> tuple[Any, Any]:
    return prepare_dict(
        {
            "host": {"poll_interval": 0.1, "request_timeout": 0.1, "retries": 0, "state_dir": str(state_dir)},
            "batteries": [{"driver": "jbd", "port": port, "name": "house"}],
            "control": {"soc": {"soc_calculation": True}},
            "sinks": {"venus": {"settings_write_delay": 0.0, "state_write_interval": 0.0, **venus}},
        }
    )


def _service(client: Client) -> Any:
    def find() -> str | None:
        for n in client.conn.list_names():
            if str(n).startswith("com.victronenergy.battery.sim_jbd_cells_8"):
                return str(n)
        return None

    return find


# -- with the real host --------------------------------------------------------------------------


async def test_state_survives_a_host_restart_when_the_state_file_is_deleted(
    bus_env: str, localsettings: Any, client: Client, tmp_path: Path
) -> None:
    port = "sim:jbd?cells=8&soc=70&current=0"
    config, plugins = _config(tmp_path / "one", port)
    host = Host(config, plugins)
    task = asyncio.create_task(host.run(duration=30))
    try:
        name = await _wait_for(_service(client))
        await _wait_for(lambda: client.value(name, "/Soc") == 70.0)  # seeded from the BMS
        battery_ = host.batteries[0]
        assert battery_.stage_command("soc_reset", 42.0)  # the counter now says something else
        await _wait_for(lambda: client.value(name, "/Soc") == 42.0)
    finally:
        host.stop()
        await asyncio.wait_for(task, 10)
    uid = battery_.identity.unique_id
    stored = json.loads(await asyncio.to_thread(_setting, client, uid))
    assert stored["soc"]["soc"] == 42.0 and stored["_saved_at"] > 0
    # The host's state file says the same; now it is lost (a reinstall, a wiped state dir).
    assert json.loads((tmp_path / "one" / "house.json").read_text()) == stored

    config2, plugins2 = _config(tmp_path / "two", port)
    host2 = Host(config2, plugins2)
    task2 = asyncio.create_task(host2.run(duration=30))
    try:
        name = await _wait_for(_service(client))
        await _wait_for(lambda: isinstance(client.value(name, "/Soc"), float))
        assert await asyncio.to_thread(client.value, name, "/Soc") == 42.0  # not the BMS's 70
        assert (tmp_path / "two" / "house.json").exists()  # rewritten from the copy at once
    finally:
        host2.stop()
        await asyncio.wait_for(task2, 10)


async def test_a_foreign_setting_value_is_ignored_with_a_warning(
    bus_env: str, localsettings: Any, client: Client, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = "sim:jbd?cells=8&soc=60&current=0"
    config, plugins = _config(tmp_path, port)
    host = Host(config, plugins)
    host.build()
    uid = host.batteries[0].identity.unique_id  # the simulated pack has no serial number
    await asyncio.to_thread(_add, client, uid, "this is not JSON")
    caplog.set_level(logging.WARNING)
    task = asyncio.create_task(host.run(duration=30))
    try:
        name = await _wait_for(_service(client))
        await _wait_for(lambda: client.value(name, "/Soc") == 60.0)  # from the BMS: nothing restored
        assert "corrupt" in caplog.text and "venus sink" in caplog.text
        assert task.done() is False  # and the host runs on
    finally:
        host.stop()
        await asyncio.wait_for(task, 10)
    # The shutdown save replaced the foreign value with a real document.
    assert json.loads(await asyncio.to_thread(_setting, client, uid))["soc"]["soc"] == 60.0


# -- the sink alone ------------------------------------------------------------------------------


async def test_two_saves_inside_the_interval_are_one_setvalue(
    sink_factory: Any, client: Client, localsettings: Any
) -> None:
    sink = await sink_factory(state_write_interval=3600.0)
    bat = battery("STATE-C", port="/dev/ttySC")
    uid = bat.identity.unique_id
    assert await sink.restore_state(bat) == ""  # created, nothing stored yet
    before = await asyncio.to_thread(_writes, client)
    doc1 = json.dumps({"soc": {"soc": 50.0}, "_saved_at": 1.0})
    doc2 = json.dumps({"soc": {"soc": 49.0}, "_saved_at": 61.0})
    sink.state_saved(bat, doc1)
    sink.state_saved(bat, doc2)
    sink.state_saved(bat, doc2)  # the same document again: not even queued
    await asyncio.sleep(0.1)
    assert await asyncio.to_thread(_writes, client) == before  # held back: flash is spared
    assert await asyncio.to_thread(_setting, client, uid) == ""
    await sink.stop()  # ... and written once on stop, the newest document
    assert await asyncio.to_thread(_writes, client) == before + 1
    assert await asyncio.to_thread(_setting, client, uid) == doc2
    assert sink.state_queue.flushes == 1
    sink2 = await sink_factory()
    assert await sink2.restore_state(bat) == doc2


async def test_a_setting_of_the_wrong_type_or_size_is_not_a_state(
    sink_factory: Any, client: Client, localsettings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sink = await sink_factory()
    typed = battery("STATE-INT", port="/dev/ttySI")
    await asyncio.to_thread(_add, client, typed.identity.unique_id, dbus.Int32(7))  # someone else's
    assert await sink.restore_state(typed) is None
    assert "ControlState refused" in caplog.text
    huge = battery("STATE-BIG", port="/dev/ttySB")
    await asyncio.to_thread(_add, client, huge.identity.unique_id, "x" * (MAX_STATE_CHARS + 1))
    assert await sink.restore_state(huge) is None
    assert "far more than a state document" in caplog.text
    sink.state_saved(huge, "{" + " " * MAX_STATE_CHARS + "}")  # never put into settings.xml
    assert "too large for localsettings" in caplog.text


async def test_without_localsettings_the_sink_keeps_no_copy(sink_factory: Any, tmp_path: Path) -> None:
    sink = await sink_factory(str(tmp_path), use_localsettings=False, state_write_interval=0.0)
    bat = battery("STATE-F", port="/dev/ttySF")
    assert await sink.restore_state(bat) is None
    sink.state_saved(bat, '{"soc": {"soc": 1.0}}')
    await sink.stop()
    assert not (tmp_path / "venus-devices.json").exists()  # the host's own state file has it


async def test_persist_state_off(sink_factory: Any, client: Client, localsettings: Any) -> None:
    sink = await sink_factory(persist_state=False)
    bat = battery("STATE-OFF", port="/dev/ttySO")
    assert await sink.restore_state(bat) is None
    before = await asyncio.to_thread(_writes, client)
    sink.state_saved(bat, '{"soc": {"soc": 1.0}}')
    await sink.stop()
    assert await asyncio.to_thread(_writes, client) == before


async def test_writes_wait_while_the_settings_store_is_away() -> None:
    from bmshost_sink_venus import glib_loop
    from bmshost_sink_venus.settings import WriteQueue
    from bmshost_sink_venus.testing import wait_until

    calls: list[dict[Any, Any]] = []
    reachable = [False]

    def write(batch: dict[Any, Any]) -> bool:
        calls.append(dict(batch))
        return reachable[0]

    queue = WriteQueue(0.01, write, "test")
    await glib_loop.run(queue.queue, "u", "CustomName", "a")
    await wait_until(lambda: len(calls) == 1)  # tried, the store was away: kept, retried later
    assert queue.pending == {("u", "CustomName"): "a"} and queue.flushes == 0
    reachable[0] = True
    await glib_loop.run(queue.queue, "u", "CustomName", "b")  # a new write cuts the wait short
    await wait_until(lambda: len(calls) == 2)
    assert calls[1] == {("u", "CustomName"): "b"}
    assert queue.pending == {} and queue.flushes == 1
