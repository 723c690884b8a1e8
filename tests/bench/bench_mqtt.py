"""MQTT benchmark: CPU per state publish for a steady 16-cell pack, messages and bytes per cycle,
and CPU per parsed input payload.

CPU is ``time.process_time`` (every thread of the process, so paho's network thread is counted).
When ``mosquitto`` is installed a private broker on 127.0.0.1 receives the messages; without it
the publish path is measured up to the (skipped) socket hand-over and ``broker`` says so.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bmshost.capabilities import Capability
from bmshost.model import ALARM_NAMES, Command, CommandResult, Derived, Identity, Limits, Sample
from bmshost.sink import BatteryUpdate
from bmshost.testing import free_port
from bmshost_mqtt.payload import parse_payload
from bmshost_sink_mqtt.options import MqttSinkOptions
from bmshost_sink_mqtt.sink import MqttSink
from bmshost_sink_mqtt.state import encode_state

CYCLES = 5000
PARSES = 5000


class _Battery:
    name = "bench"
    identity = Identity(driver="jbd", variant="serial", port="/dev/ttyUSB0", serial_number="B1")
    capabilities = frozenset(Capability)
    connection = "Serial /dev/ttyUSB0"
    latest = None

    async def submit(self, command: Command) -> CommandResult:
        return CommandResult(False, "bench")

    def stage_command(self, name: str, value: Any) -> bool:
        return False


def _update(i: int) -> BatteryUpdate:
    # A steady pack whose readings move a little every cycle, as a real one does.
    sample = Sample(
        voltage=53.2 + (i % 7) / 1000, current=-12.5 + (i % 5) / 10, power=-665.0, soc=81.5,
        soh=99.0, capacity_ah=280.0, remaining_ah=228.2, cycles=42,
        cell_voltages=[3.320 + ((i + c) % 4) / 1000 for c in range(16)],
        cell_balancing=[False] * 16, temperatures=[21.0, 22.5, 23.0, 21.5],
        mosfet_temperature=30.0, charge_fet=True, discharge_fet=True, balance_fet=True,
        alarms=dict.fromkeys(ALARM_NAMES, 0), serial_number="B1", model="JBD-SP16S",
    )
    return BatteryUpdate(
        t=1.7e9 + i, sample=sample, fresh=True, online=True, stale=False,
        limits=Limits(cvl=55.2, ccl=100.0, dcl=150.0, charge_mode="Bulk",
                      charge_limitation="Cell voltage", allow_to_charge=True,
                      allow_to_discharge=True),
        derived=Derived(soc=81.4, consumed_ah=-51.8, time_to_go=51234.0, current_avg=-12.1),
        link_health={"reconnects": 0, "seconds_since_good_read": 0.0},
    )


async def _publish_bench(port: int | None) -> dict[str, float]:
    options = MqttSinkOptions(port=port or free_port(), min_interval=0.0)
    sink = MqttSink(options)
    battery = _Battery()
    await sink.start()
    if port is not None:
        deadline = time.monotonic() + 5
        while not sink.connection.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    updates = [_update(i) for i in range(CYCLES + 1)]
    sink.publish(battery, updates[0])  # first cycle: discovery, availability
    published0 = sink.connection.published + sink.connection.dropped
    state_bytes = 0
    t0 = time.process_time()
    for update in updates[1:]:
        sink.publish(battery, update)
    cpu = time.process_time() - t0
    messages = sink.connection.published + sink.connection.dropped - published0
    for update in updates[1:100]:
        state_bytes += len(encode_state(update)[2])
    await sink.stop()
    return {
        "publish_cpu_us_per_cycle_16_cells": cpu / CYCLES * 1e6,
        "messages_per_cycle_steady": messages / CYCLES,
        "bytes_per_cycle_steady": state_bytes / 99,
        "broker": 1.0 if port is not None else 0.0,
    }


def _parse_bench() -> dict[str, float]:
    fixtures = Path(__file__).resolve().parents[2] / "plugins/bms_mqtt/tests/fixtures"
    generic = json.loads((fixtures / "example_full.json").read_bytes())
    generic["cell_count"] = 16
    generic["cells"] = [{"voltage": 3.3 + c / 1000, "balance": False} for c in range(16)]
    generic_payload = json.dumps(generic).encode()
    state_payload = encode_state(_update(1))[2]
    out: dict[str, float] = {}
    for name, payload in (("generic", generic_payload), ("bmshost", state_payload)):
        parse_payload(payload)
        t0 = time.process_time()
        for _ in range(PARSES):
            parse_payload(payload)
        out[f"parse_cpu_us_per_payload_{name}_16_cells"] = (time.process_time() - t0) / PARSES * 1e6
    return out


def main() -> dict[str, float]:
    proc = None
    port: int | None = None
    with tempfile.TemporaryDirectory() as tmp:
        if shutil.which("mosquitto"):
            port = free_port()
            conf = Path(tmp) / "mosquitto.conf"
            conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
            proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(0.2)  # let it bind before paho connects (the bench is not a test)
        try:
            result = asyncio.run(_publish_bench(port))
        finally:
            if proc is not None:
                proc.kill()
                proc.wait(5)
    result.update(_parse_bench())
    return {k: round(v, 2) for k, v in result.items()}


if __name__ == "__main__":
    print(json.dumps(main()))
