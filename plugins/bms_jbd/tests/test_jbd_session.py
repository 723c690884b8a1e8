"""The JBD session against its simulator, in-process and over a real pseudo-terminal."""

from __future__ import annotations

from typing import Any

import pytest

from bmshost.driver import SessionContext
from bmshost.errors import LinkTimeout, UnsupportedCommand
from bmshost.model import Command, CommandKind
from bmshost.testing import make_sim_link
from bmshost_jbd.plugin import SERIAL
from bmshost_jbd.session import JbdSession
from bmshost_jbd.simulator import JbdSimulator


def _session(link: Any, retries: int = 1, timeout: float = 0.2) -> JbdSession:
    return JbdSession(SessionContext(link=link, variant=SERIAL, options=None, timeout=timeout, retries=retries))


def _frozen() -> float:
    return 0.0  # no simulated time passes between requests: reads compare exactly


async def test_read_equals_simulator_state() -> None:
    sim = JbdSimulator(cells=16, soc=55, current=-20)
    link = make_sim_link(sim, clock=_frozen)
    await link.open()
    session = _session(link)
    first = await session.connect()
    assert first.model == sim.model
    sample = await session.read()
    truth = sim.state()
    assert sample.cell_voltages == truth.cell_voltages
    assert sample.voltage == truth.voltage
    assert sample.current == pytest.approx(-20.0)
    assert sample.soc == 55
    assert sample.power == pytest.approx(truth.voltage * -20.0, abs=0.01)  # type: ignore[operator]
    assert len(sample.temperatures or []) == 2 and sample.mosfet_temperature == pytest.approx(22.0)
    slow = await session.read_slow()
    assert slow.extra is not None and slow.extra["error_counts"]["cell_overvoltage"] == 3


async def test_fet_switch_commands_change_the_pack() -> None:
    sim = JbdSimulator(cells=4)
    link = make_sim_link(sim, clock=_frozen)
    await link.open()
    session = _session(link)
    await session.execute(Command(CommandKind.CHARGE_FET, False))
    assert sim.charge_forced_off and not sim.discharge_forced_off
    assert (await session.read()).charge_fet is False
    await session.execute(Command(CommandKind.DISCHARGE_FET, False))
    assert sim.charge_forced_off and sim.discharge_forced_off  # the charge FET stayed off
    await session.execute(Command(CommandKind.CHARGE_FET, True))
    await session.execute(Command(CommandKind.DISCHARGE_FET, True))
    sample = await session.read()
    assert sample.charge_fet and sample.discharge_fet


async def test_balancer_and_soc_reset_use_factory_mode() -> None:
    sim = JbdSimulator(cells=4, soc=40)
    link = make_sim_link(sim, clock=_frozen)
    await link.open()
    session = _session(link)
    await session.execute(Command(CommandKind.BALANCE, False))
    assert not sim.balance_enabled and not sim.factory_mode
    await session.execute(Command(CommandKind.BALANCE, True))
    assert sim.balance_enabled
    await session.execute(Command(CommandKind.SOC_RESET, 100.0))
    assert sim.soc == 100.0 and not sim.factory_mode
    with pytest.raises(UnsupportedCommand):
        await session.execute(Command(CommandKind.SOC_RESET, 50.0))


async def test_silent_bms_times_out_after_retries() -> None:
    sim = JbdSimulator(cells=4)
    sim.silent = True
    link = make_sim_link(sim, clock=_frozen)
    await link.open()
    session = _session(link, retries=1, timeout=0.05)
    with pytest.raises(LinkTimeout):
        await session.read()
    assert sim.requests == 2  # one try plus one retry


async def test_protection_trips_and_opens_the_charge_fet() -> None:
    sim = JbdSimulator(cells=4, soc=99.9, current=50, cycle_current=False)
    sim.offsets[2] = 0.2  # one runaway cell
    sim.tick(1.0)
    link = make_sim_link(sim, clock=_frozen)
    await link.open()
    sample = await _session(link).read()
    assert sample.charge_fet is False
    assert sample.alarms is not None and sample.alarms["high_cell_voltage"] == 2


async def test_session_over_a_real_pty(pty_simulator: Any) -> None:
    from bmshost.url import parse_link_url
    from bmshost_transport_serial.links import open_link

    server = pty_simulator(JbdSimulator(cells=16, soc=70, current=0))
    link = open_link(parse_link_url(server.path), {"baud": 9600})
    await link.open()
    try:
        session = _session(link, timeout=1.0)
        await session.connect()
        sample = await session.read()
        with server.lock:
            truth = server.sim.state()
        assert sample.cell_voltages == truth.cell_voltages
        assert sample.soc == 70
    finally:
        await link.close()
