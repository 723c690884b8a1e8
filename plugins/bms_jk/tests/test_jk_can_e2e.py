"""JK CAN end to end: v1 and v2 broadcasts through the session, device-address shifts, the
current-sign option, staleness, and two packs on a python-can virtual bus."""

from __future__ import annotations

import uuid

import pytest
from jk_helpers import Clock, session, sim_can

from bmshost.capabilities import Capability
from bmshost.errors import LinkTimeout
from bmshost.link import CanFrame
from bmshost_jk import can_codec
from bmshost_jk.can_sim import CanSimulator
from bmshost_jk.plugin import driver_spec


async def test_v2_read_matches_the_pack() -> None:
    clock = Clock()
    sim = CanSimulator(cells=16, version=2, current=-23.4, soc=70.0)
    link = sim_can(sim, clock)
    await link.open()
    s = session(link, "can_v2")
    s.clock = clock  # type: ignore[attr-defined]
    sample = await s.read()
    truth = sim.state()
    assert sample.cell_voltages == pytest.approx(truth.cell_voltages, abs=0.0011)
    assert sample.voltage == pytest.approx(truth.voltage, abs=0.051)
    assert sample.current == pytest.approx(-23.4, abs=0.051)
    assert sample.soc == 70.0 and sample.cycles == truth.cycles
    assert sample.capacity_ah == 280.0 and sample.remaining_ah == pytest.approx(196.0, abs=0.1)
    assert sample.temperatures == [21.0, 22.0] and sample.mosfet_temperature is not None
    assert sample.charge_fet is True and sample.discharge_fet is True
    assert sample.alarms is not None and max(sample.alarms.values()) == 0


async def test_v1_only_pack_gives_pack_values_and_extremes() -> None:
    clock = Clock()
    sim = CanSimulator(cells=16, version=1, current=12.0)
    link = sim_can(sim, clock)
    await link.open()
    s = session(link, "can")
    s.clock = clock  # type: ignore[attr-defined]
    sample = await s.read()
    truth = sim.state()
    assert sample.cell_voltages is None  # v1 has no per-cell frame: nothing is made up
    cells = truth.cell_voltages or []
    assert sample.cell_voltage_max == pytest.approx(max(cells))
    assert sample.cell_voltage_min == pytest.approx(min(cells))
    assert sample.cell_voltage_max_id == cells.index(max(cells)) + 1
    assert sample.cell_voltage_min_id == cells.index(min(cells)) + 1
    assert sample.series_cells == 16  # latched estimate: V / mean of the extremes
    assert sample.current == pytest.approx(12.0) and sample.voltage == pytest.approx(truth.voltage, abs=0.051)
    caps = driver_spec().variant("can").capabilities
    assert Capability.SINGLE_CELL_DETAILS not in caps and Capability.BMS_CURRENT_LIMITS not in caps


async def test_discharge_positive_option_flips_the_sign() -> None:
    clock = Clock()
    link = sim_can(CanSimulator(version=1, current=12.0), clock)
    await link.open()
    s = session(link, "can", can_current_positive="discharge")
    s.clock = clock  # type: ignore[attr-defined]
    assert (await s.read()).current == pytest.approx(-12.0)


async def test_protection_alarm_arrives_in_alm_info() -> None:
    clock = Clock()
    sim = CanSimulator(cells=8, version=2, current=40.0, soc=99.5)
    sim.pack.offsets_mv[0] = 300.0
    sim.pack.check_protections()
    link = sim_can(sim, clock)
    await link.open()
    s = session(link, "can_v2")
    s.clock = clock  # type: ignore[attr-defined]
    sample = await s.read()
    assert sample.alarms is not None and sample.alarms["high_cell_voltage"] == 2
    assert sample.charge_fet is False


async def test_address_shift_and_foreign_frames() -> None:
    clock = Clock()
    sim = CanSimulator(cells=8, version=2, address=3)
    link = sim_can(sim, clock)
    await link.open()
    s = session(link, "can_v2", address=3)
    s.clock = clock  # type: ignore[attr-defined]
    sample = await s.read()
    assert sample.address == 3 and sample.cell_count == 8
    wrong = session(sim_can(CanSimulator(version=2, address=3), clock), "can_v2", address=0,
                    timeout=0.01)
    await wrong.link.open()
    wrong.clock = clock  # type: ignore[attr-defined]
    with pytest.raises(LinkTimeout, match="BATT_ST"):
        await wrong.read()


async def test_quiet_bms_is_forgotten_after_max_age() -> None:
    clock = Clock()
    sim = CanSimulator(version=1)
    link = sim_can(sim, clock)
    await link.open()
    s = session(link, "can", timeout=0.01, can_max_age=5.0)
    s.clock = clock  # type: ignore[attr-defined]
    await s.read()
    sim.silent = True
    clock.t += 2.0
    await s.read()  # still within max age: last values stand
    clock.t += 4.0
    with pytest.raises(LinkTimeout):
        await s.read()


async def test_two_packs_share_a_python_can_virtual_bus() -> None:
    pytest.importorskip("bmshost_transport_can.simbus")
    from bmshost.url import parse_link_url
    from bmshost_transport_can.hub import BusHub
    from bmshost_transport_can.link import open_can_link
    from bmshost_transport_can.simbus import SimulatorOnBus

    ch = f"jk-{uuid.uuid4().hex[:8]}"
    a, b = CanSimulator(cells=16, soc=40.0, address=1), CanSimulator(cells=8, soc=90.0, address=2)
    async with SimulatorOnBus(a, ch, period=0.02), SimulatorOnBus(b, ch, period=0.02):
        link = open_can_link(parse_link_url(f"can://{ch}?interface=virtual"), {}, hub=BusHub())
        await link.open()
        try:
            s1 = session(link, "can_v2", address=1, timeout=2.0)
            s2 = session(link, "can_v2", address=2, timeout=2.0)
            r1, r2 = await s1.connect(), await s2.connect()
            r1, r2 = await s1.read(), await s2.read()
        finally:
            await link.close()
    assert (r1.address, r1.cell_count, r1.soc) == (1, 16, 40.0)
    assert (r2.address, r2.cell_count, r2.soc) == (2, 8, 90.0)


def test_broadcast_respects_periods() -> None:
    sim = CanSimulator(version=2, cells=16)
    first = {f.arbitration_id for f in sim.broadcast()}
    assert can_codec.CELL_FRAMES[3] in first and can_codec.CELL_FRAMES[4] not in first
    assert sim.broadcast() == []  # no time passed
    sim.tick(0.05)
    assert {f.arbitration_id for f in sim.broadcast()} == {can_codec.BATT_ST}
    assert all(isinstance(f, CanFrame) for f in sim.broadcast())
