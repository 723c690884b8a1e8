"""Registration, capabilities, probes, recognisers, simulators by URL and the host per variant."""

from __future__ import annotations

from pathlib import Path

import pytest
from jk_helpers import Clock, captures

from bmshost.capabilities import Capability
from bmshost.driver import VariantSpec
from bmshost.lazy import resolve
from bmshost.registry import DriverRegistry
from bmshost.transports.sim import build_simulator
from bmshost_jk import jk02, pb_codec, plugin, serial_codec
from bmshost_jk.jk02_sim import BleSimulator
from bmshost_jk.pb_sim import PbSimulator
from bmshost_jk.serial_sim import SerialSimulator

C = Capability


def test_registers_one_driver_with_five_variants() -> None:
    registry = DriverRegistry()
    plugin.bmshost_register_drivers(registry)
    spec = registry.get("jk")
    assert spec is not None
    assert [v.name for v in spec.variants] == ["serial", "ble", "pb", "can", "can_v2"]
    for v in spec.variants:
        for ref in (v.session, v.simulator, v.decoder):
            assert callable(resolve(ref)), (v.name, ref)
        for probe in v.probes:
            assert callable(resolve(probe.accepts))


def test_capabilities_are_truthful_per_variant() -> None:
    spec = plugin.driver_spec()
    ble, serial, pb = spec.variant("ble"), spec.variant("serial"), spec.variant("pb")
    writes = {C.DISABLE_CHARGING, C.DISABLE_DISCHARGING, C.DISABLE_BALANCING}
    assert writes <= ble.capabilities
    assert not writes & serial.capabilities and not writes & pb.capabilities
    assert all(C.SOC_RESET not in v.capabilities for v in spec.variants)
    assert C.DAISY_CHAIN in pb.capabilities and C.DAISY_CHAIN not in serial.capabilities
    assert C.DAISY_CHAIN not in ble.capabilities
    assert C.BMS_CURRENT_LIMITS in pb.capabilities  # read from the settings record
    assert C.BMS_CURRENT_LIMITS not in spec.variant("can_v2").capabilities  # nothing decodes it
    assert C.HEATING in pb.capabilities and C.HEATING not in serial.capabilities


def test_request_literals_match_the_codecs() -> None:
    assert plugin.SERIAL_READ_ALL == serial_codec.READ_ALL_REQUEST
    assert pb_codec.build_trigger(1, pb_codec.TRIGGER_SETTINGS) == plugin.PB_SETTINGS_TRIGGER_ADDR1


def test_probes_accept_only_their_own_replies() -> None:
    serial_reply = SerialSimulator(cells=8).feed(plugin.SERIAL_READ_ALL)
    pb_reply = PbSimulator(addresses="1").feed(plugin.PB_SETTINGS_TRIGGER_ADDR1)
    assert serial_codec.probe_accepts(serial_reply) and not serial_codec.probe_accepts(pb_reply)
    assert pb_codec.probe_accepts(pb_reply) and not pb_codec.probe_accepts(serial_reply)
    # a settings record from address 2 does not identify a pack at the probed address 1
    other = PbSimulator(addresses="2").feed(pb_codec.build_trigger(2, pb_codec.TRIGGER_SETTINGS))
    assert not pb_codec.probe_accepts(other)


def _recognisers() -> dict[str, VariantSpec]:
    return {v.name: v for v in plugin.driver_spec().variants if v.recognise is not None}


@pytest.mark.parametrize("cap", captures(), ids=lambda c: c["variant"])
def test_recognise_picks_exactly_one_stream_variant(cap: dict[str, object]) -> None:
    rx = cap["response_hex"]
    assert isinstance(rx, list)
    if "#" in rx[0]:
        return  # CAN frames go to the CAN decoders
    frame = bytes.fromhex("".join(rx))
    hits = [name for name, v in _recognisers().items() if v.recognise and v.recognise(frame)]
    expected = {"jk_rs485_4e57": "serial", "jk_pb_rs485_fc10_trigger": "pb"}.get(
        str(cap["variant"]), "ble")
    assert hits == [expected]


def test_simulators_build_from_sim_urls() -> None:
    from bmshost.registry import Registries

    registries = Registries()
    plugin.bmshost_register_drivers(registries.drivers)
    sim = build_simulator("jk", {"variant": "pb", "addresses": "1,2,3", "cells": "8"}, registries)
    assert isinstance(sim, PbSimulator) and sorted(sim.packs) == [1, 2, 3]
    ble = build_simulator("jk", {"variant": "ble", "firmware": "10.08"}, registries)
    assert isinstance(ble, BleSimulator) and ble.slots == 24
    assert build_simulator("jk", {"variant": "can", "version": "1"}, registries).kind == "can"


def test_simulator_ignores_garbage_and_other_frames() -> None:
    sim = SerialSimulator(cells=4)
    assert sim.feed(b"\x00" * 50 + b"\x4e\x57\x00") == b""
    assert sim.feed(jk02.build_command(jk02.REQ_DEVICE_INFO)) == b""
    ble = BleSimulator()
    assert ble.feed(plugin.SERIAL_READ_ALL) == b""
    bad = bytearray(jk02.build_command(jk02.REQ_DEVICE_INFO))
    bad[-1] ^= 1
    assert ble.feed(bytes(bad)) == b""


@pytest.mark.parametrize(
    ("variant", "port", "cells"),
    [("ble", "sim:jk?variant=ble&cells=16&firmware=11.48", 16),
     ("ble", "sim:jk?variant=ble&cells=12&firmware=10.08", 12),
     ("can", "sim:jk?variant=can&version=1", 16),  # estimated from V and extremes, latched
     ("can_v2", "sim:jk?variant=can_v2&cells=16", 16)],
)
async def test_host_runs_each_variant(tmp_path: Path, variant: str, port: str,
                                      cells: int | None) -> None:
    from bmshost.cli.common import prepare_dict
    from bmshost.host import Host
    from bmshost.testing import RecordingSink

    config, plugins = prepare_dict({
        "host": {"poll_interval": 1.0, "request_timeout": 0.1, "state_dir": str(tmp_path)},
        "batteries": [{"driver": "jk", "variant": variant, "port": port, "name": "b"}],
    })
    sink = RecordingSink()
    clock = Clock()
    host = Host(config, plugins, extra_sinks=[sink], clock=clock)
    host.build()
    for _ in range(3):
        await host.batteries[0].cycle()
        clock.t += 1.0
    update = sink.last("b")
    assert update.online and update.sample is not None
    assert update.sample.cell_count == cells
    # every variant, CAN v1 (extremes only) included, gets a charge voltage limit and may charge
    assert update.limits is not None and update.limits.cvl is not None and update.limits.ccl
    assert update.sample.voltage is not None and update.sample.soc is not None


async def test_host_submits_ble_switch_writes_and_refuses_the_rest(tmp_path: Path) -> None:
    from bmshost.cli.common import prepare_dict
    from bmshost.host import Host
    from bmshost.model import Command, CommandKind
    from bmshost.testing import RecordingSink

    config, plugins = prepare_dict({
        "host": {"poll_interval": 1.0, "request_timeout": 0.1, "state_dir": str(tmp_path)},
        "batteries": [
            {"driver": "jk", "variant": "ble", "port": "sim:jk?variant=ble&cells=8", "name": "ble"},
            {"driver": "jk", "variant": "serial", "port": "sim:jk?variant=serial", "name": "ser"},
        ],
    })
    clock = Clock()
    host = Host(config, plugins, extra_sinks=[RecordingSink()], clock=clock)
    host.build()
    ble, ser = host.batteries
    await ble.cycle()
    await ser.cycle()
    sim = ble.shared.link.simulator  # type: ignore[attr-defined]
    result = await ble.submit(Command(CommandKind.DISCHARGE_FET, False, origin="test"))
    assert result.ok and sim.pack.discharge_switch is False
    assert not (await ble.submit(Command(CommandKind.SOC_RESET, 100.0, origin="test"))).ok
    refused = await ser.submit(Command(CommandKind.CHARGE_FET, False, origin="test"))
    assert not refused.ok
