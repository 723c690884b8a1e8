"""JBD over BLE: the password codec, and the session end to end through the BLE link driven by
the bleak stand-in (notifications in 20-byte chunks) against the simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bmshost.driver import SessionContext, Simulator
from bmshost.errors import FrameError, LinkError
from bmshost.model import Command, CommandKind, Sample
from bmshost.plugins import load_plugins
from bmshost.testing import make_sim_link
from bmshost.url import parse_link_url
from bmshost_jbd import codec
from bmshost_jbd.ble import (
    JbdBleSession,
    JbdBleSimulator,
    find_auth_frame,
    parse_auth_reply,
    password_frame,
)
from bmshost_jbd.more_variants import BLE_LINK_PARAMS, BLE_MATCHERS
from bmshost_transport_ble.link import BleStreamLink, open_ble_link
from bmshost_transport_ble.manager import ConnectionManager
from bmshost_transport_ble.matcher import Advertisement
from bmshost_transport_ble.scan import driver_claims
from bmshost_transport_ble.standin import SimulatedBleBackend, StandinDevice, gatt

CAPTURES = json.loads((Path(__file__).parent / "fixtures" / "jbd.json").read_text())
ADDR = "A4:C1:38:12:34:56"


def _frozen() -> float:
    return 0.0


def _variant() -> Any:
    spec = load_plugins().registries.drivers.get("jbd")
    assert spec is not None
    return spec.variant("ble")


def ble_link(
    sim: Simulator, query: str = "", services: Any = None
) -> tuple[BleStreamLink, StandinDevice]:
    device = StandinDevice(
        address=ADDR,
        simulator=sim,
        name="JBD-SP04S034",
        services=services or gatt("ff00", "ff01", "ff02"),
    )
    backend = SimulatedBleBackend([device], clock=_frozen)
    manager = ConnectionManager("hci0", slots=2, clock=_frozen)
    url = parse_link_url(f"ble://{ADDR}{'?' + query if query else ''}")
    return open_ble_link(url, _variant().link_params, backend=backend, manager=manager), device


def session_for(link: Any, timeout: float = 0.5) -> JbdBleSession:
    return JbdBleSession(
        SessionContext(link=link, variant=_variant(), options=None, timeout=timeout, retries=1)
    )


def test_password_frames_match_the_capture() -> None:
    auth = next(c for c in CAPTURES if c["request_hex"].startswith("ffaa15"))
    assert password_frame(auth["expected"]["password"]).hex() == auth["request_hex"]
    reply = bytes.fromhex(auth["response_hex"][0])
    assert parse_auth_reply(reply) is auth["expected"]["accepted"]
    assert parse_auth_reply(bytes.fromhex("ffaa15010117")) is False  # the documented refusal
    with pytest.raises(ValueError):
        password_frame("pässword")
    with pytest.raises(ValueError):
        password_frame("")


def test_auth_framer_skips_junk_and_waits_for_the_rest() -> None:
    reply = bytes.fromhex("ffaa15010016")
    assert find_auth_frame(b"\x00\x77" + reply + b"\xdd") == (reply, 8)
    assert find_auth_frame(reply[:4]) == (None, 0)
    assert find_auth_frame(b"\x01\x02\xff") == (None, 2)  # keeps a possible split prefix


@pytest.mark.parametrize(
    "bad", ["ffaa1501", "ffaa15010017", "ffaa16010017", "ffaa1502000017", "00aa15010016"]
)
def test_bad_auth_replies_are_frame_errors(bad: str) -> None:
    with pytest.raises(FrameError):
        parse_auth_reply(bytes.fromhex(bad))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_auth_parser_fuzz(data: bytes) -> None:
    try:
        parse_auth_reply(data)
    except FrameError:
        pass
    frame, used = find_auth_frame(data)
    assert 0 <= used <= len(data) and (frame is None or frame in data)


async def test_session_over_ble_equals_the_simulator() -> None:
    sim = JbdBleSimulator(cells=16, soc=64, current=-12.5)
    link, device = ble_link(sim)
    await link.open()
    session = session_for(link)
    first = await session.connect()
    assert first.model == sim.model
    sample = await session.read()
    truth = sim.state()
    assert sample.cell_voltages == truth.cell_voltages and len(sample.cell_voltages or []) == 16
    assert sample.voltage == truth.voltage and sample.current == pytest.approx(-12.5)
    assert sample.soc == 64 and sample.alarms == truth.alarms
    # the 16-cell reply (39 bytes) really arrived in several notifications
    assert all(len(w) <= 20 for w in device.writes)
    assert link.health["last_frame_age"] == 0.0
    await link.close()


async def test_dh04_boards_use_fff1_fff2() -> None:
    sim = JbdBleSimulator(cells=4)
    link, _ = ble_link(sim, services=gatt("fff0", "fff1", "fff2"))
    await link.open()
    assert (await session_for(link).read()).cell_voltages == sim.state().cell_voltages
    await link.close()


async def test_password_is_sent_on_every_connection() -> None:
    sim = JbdBleSimulator(cells=8, password="123456")
    link, device = ble_link(sim, "password=123456")
    session = session_for(link)  # registers its handshake before the link connects
    await link.open()
    await session.connect()
    assert sim.authenticated
    sim.authenticated = False  # the BMS forgets on disconnect
    device.clients[-1].drop()
    sample = await session.read()
    assert sample.cell_voltages == sim.state().cell_voltages
    assert sum(1 for w in device.writes if w.startswith(b"\xff\xaa")) == 2
    await link.close()


async def test_wrong_password_is_a_clear_error() -> None:
    sim = JbdBleSimulator(cells=8, password="123456")
    link, _ = ble_link(sim, "password=000000")
    session_for(link)
    with pytest.raises(LinkError, match="refused the password"):
        await link.open()
    assert not sim.authenticated


async def test_locked_simulator_ignores_requests_without_password() -> None:
    sim = JbdBleSimulator(cells=8, password="123456")
    link, _ = ble_link(sim)
    await link.open()
    with pytest.raises(LinkError):
        await session_for(link, timeout=0.05).read()
    await link.close()


async def test_password_over_an_in_process_link() -> None:
    sim = JbdBleSimulator(cells=4, password="4321")
    link = make_sim_link(sim, url="sim:jbd?variant=ble&password=4321", clock=_frozen)
    await link.open()
    session = session_for(link)
    assert (await session.connect()).cell_voltages == sim.state().cell_voltages


async def test_writes_over_ble() -> None:
    sim = JbdBleSimulator(cells=4)
    link, _ = ble_link(sim)
    await link.open()
    session = session_for(link)
    await session.execute(Command(CommandKind.DISCHARGE_FET, False))
    assert sim.discharge_forced_off and not sim.charge_forced_off
    assert (await session.read()).discharge_fet is False
    await session.execute(Command(CommandKind.BALANCE, False))
    assert sim.balance_enabled is False
    await link.close()


class CaptureSimulator(Simulator):
    """Answers each captured request with its captured reply (real bytes over the stand-in)."""

    def __init__(self, pairs: dict[bytes, bytes]) -> None:
        self.pairs = pairs

    def feed(self, data: bytes) -> bytes:
        return self.pairs.get(data, b"")

    def state(self) -> Sample:
        return Sample()


async def test_ble_captures_decode_through_the_ble_link() -> None:
    ble = [c for c in CAPTURES if c["variant"] == "jbd_ble" and c["request_hex"].startswith("dd")]
    assert ble
    pairs = {bytes.fromhex(c["request_hex"]): bytes.fromhex(c["response_hex"][0]) for c in ble}
    link, _ = ble_link(CaptureSimulator(pairs))
    await link.open()
    for capture in ble:
        frame = await link.request(bytes.fromhex(capture["request_hex"]), codec.find_frame, 0.5)
        sample = codec.parse_response(frame)
        expected = capture["expected"]
        if "voltage" in expected:
            assert sample.voltage == expected["voltage"] and sample.soc == expected["soc"]
            assert sample.capacity_ah == expected["capacity"]
            assert sample.remaining_ah == expected["capacity_remain"]
            assert sample.temperatures == expected["temperatures"]
        if "cell_voltages" in expected:
            assert sample.cell_voltages == expected["cell_voltages"]
    await link.close()


def test_advertisement_matchers_claim_jbd_devices() -> None:
    matchers = BLE_MATCHERS

    def claims(adv: Advertisement) -> bool:
        return any(m.matches(adv) for m in matchers)

    assert claims(Advertisement(address="11:22:33:44:55:66", local_name="JBD-SP04S034"))
    assert claims(Advertisement(address="11:22:33:44:55:66", local_name="SX100P-B123"))
    assert claims(
        Advertisement(
            address="A4:C1:38:00:11:22", service_uuids=("0000ff00-0000-1000-8000-00805f9b34fb",)
        )
    )
    assert not claims(Advertisement(address="A4:C1:38:00:11:22", local_name="Phone"))
    assert not claims(Advertisement(address="11:22:33:44:55:66", service_uuids=("ff00",)))
    found = driver_claims(load_plugins().registries)
    assert any(c.driver == "jbd" and c.variant == "ble" for c in found)


def test_ble_variant_registration() -> None:
    variant = _variant()
    assert variant.transports == ("stream",) and dict(variant.link_params) == BLE_LINK_PARAMS
    serial = load_plugins().registries.drivers.get("jbd").variant("serial")  # type: ignore[union-attr]
    assert variant.capabilities == serial.capabilities  # same frames, same abilities
