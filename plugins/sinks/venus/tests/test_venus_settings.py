"""Device instance and custom name through the localsettings stand-in (and the file fallback)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from bmshost_sink_venus.settings import group_key
from bmshost_sink_venus.testing import Client, battery, published, sample16, update


async def _start(sink_factory: Any, bat: Any, **options: Any) -> tuple[Any, str]:
    sink = await sink_factory(**options)
    sink.publish(bat, update(sample=sample16()))
    return sink, await published(sink, bat)


def _settings(client: Client, path: str) -> Any:
    return client.call("com.victronenergy.settings", path, "GetValue")


async def test_instance_is_allocated_in_localsettings_and_stable_across_restarts(
    sink_factory: Any, client: Client, localsettings: Any
) -> None:
    bat = battery("STABLE-1", port="/dev/ttyACM0")
    sink, name = await _start(sink_factory, bat)
    first = await asyncio.to_thread(client.value, name, "/DeviceInstance")
    group = f"/Settings/Devices/{group_key('jbd_STABLE-1')}"
    stored = await asyncio.to_thread(_settings, client, group + "/ClassAndVrmInstance")
    assert stored == f"battery:{first}"
    assert await asyncio.to_thread(_settings, client, group + "/UniqueIdentifier") == "jbd_STABLE-1"
    await sink.stop()
    assert not await asyncio.to_thread(client.has, name)  # released on stop
    # A new sink (a restart of the host), another battery registered first this time.
    other = battery("STABLE-2", port="/dev/ttyACM1")
    sink2 = await sink_factory()
    sink2.publish(other, update(sample=sample16()))
    await published(sink2, other)
    bat2 = battery("STABLE-1", port="/dev/ttyUSB9")  # same pack, another port: same identity
    sink2.publish(bat2, update(sample=sample16()))
    name2 = await published(sink2, bat2)
    assert await asyncio.to_thread(client.value, name2, "/DeviceInstance") == first
    assert (
        await asyncio.to_thread(client.value, name2.replace("USB9", "ACM1"), "/DeviceInstance")
        != first
    )


async def test_custom_name_persists_and_writes_are_coalesced(
    sink_factory: Any, client: Client, localsettings: Any
) -> None:
    bat = battery("NAMED", port="/dev/ttyACM2")
    sink, name = await _start(sink_factory, bat, settings_write_delay=3600.0)
    writes_before = await asyncio.to_thread(
        client.call,
        "com.victronenergy.settings",
        "/",
        "Writes",
        iface="com.victronenergy.SettingsTest",
    )
    for text in ("B", "Ba", "Bank B"):
        assert await asyncio.to_thread(client.set, name, "/CustomName", text) == 0
    group = f"/Settings/Devices/{group_key('jbd_NAMED')}"
    # Nothing written yet: the write is held back to spare the flash ...
    assert await asyncio.to_thread(_settings, client, group + "/CustomName") == ""
    await sink.stop()  # ... and flushed once on stop
    writes_after = await asyncio.to_thread(
        client.call,
        "com.victronenergy.settings",
        "/",
        "Writes",
        iface="com.victronenergy.SettingsTest",
    )
    assert writes_after - writes_before == 1
    assert await asyncio.to_thread(_settings, client, group + "/CustomName") == "Bank B"
    _sink2, name2 = await _start(sink_factory, bat)
    assert await asyncio.to_thread(client.value, name2, "/CustomName") == "Bank B"


async def test_without_localsettings_a_state_file_keeps_instances(
    sink_factory: Any, client: Client, tmp_path: Path
) -> None:
    # use_localsettings=False stands for a box without com.victronenergy.settings.
    a, b = battery("FILE-A", port="/dev/ttyX1"), battery("FILE-B", port="/dev/ttyX2")
    sink = await sink_factory(str(tmp_path), use_localsettings=False, settings_write_delay=0.0)
    for bat in (a, b):
        sink.publish(bat, update(sample=sample16()))
    na, nb = await published(sink, a), await published(sink, b)
    ia = await asyncio.to_thread(client.value, na, "/DeviceInstance")
    ib = await asyncio.to_thread(client.value, nb, "/DeviceInstance")
    assert {ia, ib} == {1, 2}
    assert await asyncio.to_thread(client.set, nb, "/CustomName", "File B") == 0
    await sink.stop()
    data = json.loads((tmp_path / "venus-devices.json").read_text())
    assert data["jbd_FILE-B"] == {"device_instance": ib, "custom_name": "File B"}
    sink2 = await sink_factory(str(tmp_path), use_localsettings=False)
    sink2.publish(b, update(sample=sample16()))
    nb2 = await published(sink2, b)
    assert await asyncio.to_thread(client.value, nb2, "/DeviceInstance") == ib
    assert await asyncio.to_thread(client.value, nb2, "/CustomName") == "File B"
