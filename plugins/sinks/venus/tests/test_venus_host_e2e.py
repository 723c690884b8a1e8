"""End to end: the real host with the JBD simulator and the Venus sink on a private bus."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from bmshost.cli.common import prepare_dict
from bmshost.host import Host
from bmshost_sink_venus.testing import Client

pytestmark = pytest.mark.e2e


async def _wait_for(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def test_host_publishes_jbd_pack_and_accepts_writes(
    bus_env: str, localsettings: Any, client: Client, tmp_path: Path
) -> None:
    config, plugins = prepare_dict(
        {
            "host": {"poll_interval": 0.1, "request_timeout": 0.1, "retries": 0, "stale_after": 0.5,
                     "state_dir": str(tmp_path)},
            "batteries": [{"driver": "jbd", "port": "sim:jbd?cells=16&soc=70&current=-20", "name": "house"}],
            "sinks": {"venus": {"settings_write_delay": 0.0}},
        }
    )
    host = Host(config, plugins)
    task = asyncio.create_task(host.run(duration=30))
    try:
        def service() -> str | None:
            names = client.conn.list_names()
            return next((str(n) for n in names if str(n).startswith("com.victronenergy.battery.")), None)

        name = await _wait_for(service)
        items = await _wait_for(lambda: (lambda i: i if i["/Dc/0/Voltage"]["Value"] else None)(client.items(name)))
        assert items["/Connected"]["Value"] == 1
        assert items["/ProductId"]["Value"] == 0xBA77
        assert items["/System/NrOfCellsPerBattery"]["Value"] == 16
        assert 40 < items["/Dc/0/Voltage"]["Value"] < 60
        assert items["/Info/MaxChargeVoltage"]["Value"] > 0
        assert items["/Info/MaxChargeCurrent"]["Value"] >= 0
        assert isinstance(items["/DeviceInstance"]["Value"], int)

        sim = host.batteries[0].shared.link.simulator  # type: ignore[attr-defined]
        code = await asyncio.to_thread(client.set, name, "/Settings/ForceChargingOff", 1)
        assert code == 0 and sim.charge_forced_off
        refused = await asyncio.to_thread(client.set, name, "/Settings/ForceChargingOff", 7)
        assert refused != 0

        sim.silent = True  # the BMS is lost: the service stays, and tells the truth
        await _wait_for(lambda: client.value(name, "/Connected") == 0)
        assert client.has(name)
        sim.silent = False
        await _wait_for(lambda: client.value(name, "/Connected") == 1, timeout=20)
    finally:
        host.stop()
        await asyncio.wait_for(task, 10)
