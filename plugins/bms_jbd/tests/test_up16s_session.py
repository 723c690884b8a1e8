"""JBD UP16S sessions against the simulated chain: in-process and over a real pseudo-terminal
(several addresses sharing one port), bank limits, slave balancing, SoC reset."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bmshost.driver import SessionContext
from bmshost.errors import LinkTimeout, UnsupportedCommand
from bmshost.model import Command, CommandKind
from bmshost.plugins import load_plugins
from bmshost.testing import make_sim_link
from bmshost_jbd.up16s_session import Up16sSession
from bmshost_jbd.up16s_sim import Up16sSimulator


def _frozen() -> float:
    return 0.0


def _variant() -> Any:
    spec = load_plugins().registries.drivers.get("jbd")
    assert spec is not None
    return spec.variant("up16s")


def session_for(
    link: Any, address: int | None, timeout: float = 0.3, retries: int = 0
) -> Up16sSession:
    return Up16sSession(
        SessionContext(
            link=link,
            variant=_variant(),
            options=None,
            address=address,
            timeout=timeout,
            retries=retries,
        )
    )


async def test_master_read_equals_state_with_own_limits() -> None:
    sim = Up16sSimulator(addresses="1,2,3", soc=70)
    sim.packs[1].ccl = 80.0  # the master's own limit is below the bank's 100+100+80
    link = make_sim_link(sim, url="sim:jbd?variant=up16s", clock=_frozen)
    await link.open()
    session = session_for(link, None)
    first = await session.connect()
    assert first.model == "UP16S015.16S100A" and first.firmware_version == "12.4.1"
    truth = sim.state(1)
    sample = await session.read()
    assert sample.cell_voltages == truth.cell_voltages and sample.soc == 70.0
    assert sample.extra is not None and sample.extra["bank_charge_current_limit"] == 280.0
    assert sample.bms_charge_current_limit == 80.0  # min(own 80, bank 280)
    assert sample.bms_discharge_current_limit == 100.0
    slow = await session.read_slow()
    assert slow.extra == {"soc_precise": 70.0, "total_ah_charged": 1234.5, "total_ah_drawn": 2345.6}


async def test_slaves_share_the_link_and_report_their_balancing() -> None:
    sim = Up16sSimulator(addresses="1,2,3", soc=80)
    link = make_sim_link(sim, url="sim:jbd?variant=up16s", clock=_frozen)
    await link.open()
    sessions = {a: session_for(link, a) for a in (1, 2, 3)}
    samples = await asyncio.gather(*(s.read() for s in sessions.values()))
    for address, sample in zip(sessions, samples, strict=True):
        truth = sim.state(address)
        assert sample.address == address
        assert sample.cell_balancing == truth.cell_balancing
        assert sample.cell_balancing == [
            bool(sim.packs[address].balance_bits() >> i & 1) for i in range(16)
        ]
    assert any(samples[1].cell_balancing or [])  # slave 2 balances at 83 % SoC
    assert samples[1].soc == round(sim.packs[2].soc)  # relayed slaves: whole percent
    assert samples[1].bms_charge_current_limit == 100.0  # a slave's own limit
    assert samples[1].firmware_version == "12"  # relayed: major number only, until connect()
    await sessions[2].connect()
    assert (await sessions[2].read()).firmware_version == "12.4.1"  # from product information


async def test_soc_reset_on_a_slave() -> None:
    sim = Up16sSimulator(addresses="1,2")
    link = make_sim_link(sim, url="sim:jbd?variant=up16s", clock=_frozen)
    await link.open()
    session = session_for(link, 2)
    await session.execute(Command(CommandKind.SOC_RESET, 100.0))
    assert sim.packs[2].soc == 100.0 and sim.packs[1].soc != 100.0
    with pytest.raises(UnsupportedCommand, match="outside"):
        await session.execute(Command(CommandKind.SOC_RESET, 150.0))
    for kind in (CommandKind.CHARGE_FET, CommandKind.DISCHARGE_FET, CommandKind.BALANCE):
        with pytest.raises(UnsupportedCommand):
            await session.execute(Command(kind, False))


async def test_absent_address_times_out_and_optional_blocks_give_up() -> None:
    sim = Up16sSimulator(addresses="1")
    link = make_sim_link(sim, url="sim:jbd?variant=up16s", clock=_frozen)
    await link.open()
    with pytest.raises(LinkTimeout):
        await session_for(link, 4, timeout=0.01).read()
    master = session_for(link, 1, timeout=0.01)
    del sim.packs[1]  # the pack stops answering: optional blocks are counted, then skipped
    for _ in range(6):
        assert await master.read_slow() is not None
    before = sim.requests
    await master.read_slow()
    assert sim.requests == before  # no longer asked


def test_bad_address_is_refused() -> None:
    with pytest.raises(ValueError):
        session_for(make_sim_link(Up16sSimulator()), 0)


async def test_chain_over_a_real_pty(pty_simulator: Any) -> None:
    from bmshost.url import parse_link_url
    from bmshost_transport_serial.links import open_link

    server = pty_simulator(Up16sSimulator(addresses="1,2,3", current=0.0))
    link = open_link(parse_link_url(server.path), dict(_variant().link_params))
    await link.open()
    try:
        sessions = [session_for(link, a, timeout=1.0, retries=1) for a in (1, 2, 3)]
        await asyncio.gather(*(s.connect() for s in sessions))
        samples = await asyncio.gather(*(s.read() for s in sessions))
        with server.lock:
            truths = [server.sim.state(a) for a in (1, 2, 3)]
        for sample, truth in zip(samples, truths, strict=True):
            assert sample.address == truth.address
            assert sample.cell_voltages == truth.cell_voltages and sample.soc == truth.soc
        await sessions[2].execute(Command(CommandKind.SOC_RESET, 42.0))
        with server.lock:
            assert server.sim.packs[3].soc == 42.0
    finally:
        await link.close()


def test_up16s_variant_registration() -> None:
    from bmshost.capabilities import Capability

    variant = _variant()
    assert (
        Capability.DAISY_CHAIN in variant.capabilities
        and Capability.SOC_RESET in variant.capabilities
    )
    assert Capability.DISABLE_CHARGING not in variant.capabilities
    assert variant.recognise is not None and variant.probes[0].address == 1
