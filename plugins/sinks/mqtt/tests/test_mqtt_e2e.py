"""End to end: a host with the JBD simulator publishing through the MQTT sink, commands from
MQTT reaching the simulated BMS, and a second host reading the first one's state with the
``mqtt`` input driver."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bmshost.model import SAMPLE_FIELDS

pytest.importorskip("bmshost_jbd")
pytest.importorskip("bmshost_mqtt")
host_mod = pytest.importorskip("bmshost.host")
common = pytest.importorskip("bmshost.cli.common")


def _host(tmp: Path, batteries: list[dict[str, Any]], sinks: dict[str, Any]) -> Any:
    config, plugins = common.prepare_dict({
        "host": {"poll_interval": 0.05, "request_timeout": 0.5, "stale_after": 5.0,
                 "state_dir": str(tmp)},
        "batteries": batteries,
        "sinks": sinks,
    })
    host = host_mod.Host(config, plugins)
    host.build()
    return host


def _mqtt(port: int, **more: Any) -> dict[str, Any]:
    return {"mqtt": {"port": port, "min_interval": 0.0, "reconnect_min": 0.05,
                     "reconnect_max": 0.2, **more}}


async def test_jbd_simulator_to_mqtt_and_back(broker: Any, observer: Any, kit: Any,
                                              tmp_path: Path) -> None:
    host = _host(tmp_path / "a", [{"driver": "jbd", "port": "sim:jbd?cells=16", "name": "a"}],
                 _mqtt(broker.port))
    sim = host.batteries[0].shared.link.simulator
    run = asyncio.create_task(host.run())
    try:
        await kit.until(lambda: (observer.last_json("bmshost/a/state") or {}).get("online"))
        state = observer.last_json("bmshost/a/state")
        assert len(state["cell_voltages"]) == 16
        assert state["model"] == sim.model
        assert state["limits"]["cvl"] > 0 and "derived" in state
        await kit.until(lambda: observer.last("bmshost/a/availability") == b"online")
        await kit.until(lambda: observer.last("homeassistant/switch/bmshost_a/charge_fet_switch/"
                                              "config") is not None)
        # A valid command reaches the simulated BMS...
        observer.send("bmshost/a/set/charge_fet", "OFF")
        await kit.until(lambda: observer.count("bmshost/a/result") == 1)
        assert observer.last_json("bmshost/a/result")["ok"] is True
        assert sim.charge_forced_off and not sim.charge_fet
        await kit.until(lambda: observer.last_json("bmshost/a/state")["charge_fet"] is False)
        # ...an invalid one changes nothing and says why.
        observer.send("bmshost/a/set/discharge_fet", "perhaps")
        await kit.until(lambda: observer.count("bmshost/a/result") == 2)
        answer = observer.last_json("bmshost/a/result")
        assert answer["ok"] is False and "ON/OFF" in answer["message"]
        assert sim.discharge_fet and not sim.discharge_forced_off
        # The driver's own refusal comes back too (JBD resets its SoC to 100 % only).
        observer.send("bmshost/a/set/soc_reset", "50")
        await kit.until(lambda: observer.count("bmshost/a/result") == 3)
        assert observer.last_json("bmshost/a/result")["ok"] is False
        observer.send("bmshost/a/set/charge_fet", "ON")
        await kit.until(lambda: observer.count("bmshost/a/result") == 4)
        assert sim.charge_fet
    finally:
        host.stop()
        await asyncio.wait_for(run, 10)
    await kit.until(lambda: observer.last("bmshost/a/availability") == b"offline")
    await kit.until(lambda: observer.last("bmshost/status") == b"offline")


async def test_broker_restart_while_the_host_polls(broker: Any, kit: Any, tmp_path: Path) -> None:
    host = _host(tmp_path / "a", [{"driver": "jbd", "port": "sim:jbd?cells=8", "name": "a"}],
                 _mqtt(broker.port))
    battery = host.batteries[0]
    run = asyncio.create_task(host.run())
    try:
        sink = host.sinks[0]
        await kit.until(lambda: sink.connection.connected)
        broker.stop()
        cycles = battery.cycles
        # Polling and control go on without the broker.
        await kit.until(lambda: battery.cycles >= cycles + 10)
        assert battery.latest is not None and battery.latest.online
        broker.start()
        await kit.until(lambda: sink.connection.connected, timeout=10)
        fresh = kit.Observer(broker.port)
        fresh.start()
        try:
            await kit.until(lambda: fresh.last("bmshost/a/state") is not None)
            await kit.until(lambda: fresh.last("bmshost/status") == b"online")
            fresh.send("bmshost/a/set/discharge_fet", "OFF")
            sim = battery.shared.link.simulator
            await kit.until(lambda: sim.discharge_forced_off)
        finally:
            fresh.stop()
    finally:
        host.stop()
        await asyncio.wait_for(run, 10)


async def test_second_host_reads_the_first_with_equal_samples(
    broker: Any, observer: Any, kit: Any, tmp_path: Path
) -> None:
    first = _host(tmp_path / "a", [{"driver": "jbd", "port": "sim:jbd?cells=16", "name": "a"}],
                  _mqtt(broker.port, discovery=False))
    url = f"mqtt://127.0.0.1:{broker.port}/bmshost/a/state"
    second = _host(tmp_path / "b", [{"driver": "mqtt", "port": url, "name": "b",
                                     "format": "bmshost"}], {})
    run1 = asyncio.create_task(first.run())
    run2 = asyncio.create_task(second.run())
    try:
        reader = second.batteries[0]
        await kit.until(lambda: reader.last_sample is not None, timeout=10)
        first.stop()  # freeze the publisher: its last state is what the reader must end up with
        await asyncio.wait_for(run1, 10)
        last = observer.last_json("bmshost/a/state")
        published = {k: last[k] for k in SAMPLE_FIELDS if k in last}

        def equal() -> bool:
            s = reader.last_sample
            return s is not None and s.to_json_dict() == published

        await kit.until(equal)
        assert len(published["cell_voltages"]) == 16 and published["model"]
        assert reader.latest is not None and reader.latest.online
    finally:
        first.stop()
        second.stop()
        await asyncio.wait_for(asyncio.gather(run1, run2, return_exceptions=True), 10)
