"""JK BLE over the real BLE transport (``BleStreamLink``) driven by its simulated bleak backend:
the JK GATT layout (one ffe1 characteristic for notify and write), 20-byte notifications, the
variant's link defaults."""

from __future__ import annotations

import asyncio
import time

import pytest
from jk_helpers import SPEC, session

from bmshost.model import Command, CommandKind
from bmshost.url import parse_link_url
from bmshost_jk.jk02_sim import BleSimulator

pytest.importorskip("bmshost_transport_ble.standin")

from bmshost_transport_ble.link import open_ble_link
from bmshost_transport_ble.manager import BackoffPolicy, ConnectionManager
from bmshost_transport_ble.standin import SimulatedBleBackend, StandinDevice, gatt

MAC = "C8:47:8C:12:34:56"


async def test_session_over_the_ble_transport_standin() -> None:
    sim = BleSimulator(cells=16, firmware="11.48", current=-3.0)
    params = SPEC.variant("ble").link_params
    device = StandinDevice(
        address=MAC, simulator=sim, name="JK_B2A16S20P",
        services=gatt(params["service_uuid"], params["notify_uuid"], params["write_uuid"]),
    )
    backend = SimulatedBleBackend([device])
    manager = ConnectionManager("hci0", slots=2, clock=time.monotonic, sleep=asyncio.sleep,
                                reset_adapter=backend.reset_adapter,
                                policy=BackoffPolicy(jitter=0.0))
    link = open_ble_link(parse_link_url(f"ble://{MAC}"), params, backend=backend, manager=manager)
    await link.open()
    try:
        s = session(link, "ble", timeout=1.0)
        sample = await s.connect()
        assert sample.model == "JK_B2A16S20P" and sample.cell_count == 16
        assert sample.cell_voltages == pytest.approx(sim.state().cell_voltages, abs=0.0011)
        assert all(len(w) <= 20 for w in device.writes)
        await s.execute(Command(CommandKind.BALANCE, False))
        assert sim.pack.balancer_switch is False
        assert (await s.read()).balance_fet is False
    finally:
        await link.close()
