"""SetValue on every writable path: valid writes reach the battery, invalid ones change nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import dbus
import pytest

from bmshost.capabilities import BASIC, Capability
from bmshost.model import Command, CommandKind, Derived
from bmshost_sink_venus.testing import Client, battery, published, sample16, update

ALL_SWITCHES = BASIC | {
    Capability.DISABLE_CHARGING,
    Capability.DISABLE_DISCHARGING,
    Capability.DISABLE_BALANCING,
    Capability.SOC_RESET,
}


async def _service(sink_factory: Any, serial: str, port: str, **kw: Any) -> tuple[Any, Any, str]:
    sink = await sink_factory()
    bat = battery(serial, port=port, **kw)
    sink.publish(bat, update(sample=sample16()))
    name = await published(sink, bat)
    return sink, bat, name


@pytest.mark.parametrize(
    ("path", "value", "kind", "allowed"),
    [
        ("/Settings/ForceChargingOff", 1, CommandKind.CHARGE_FET, False),
        ("/Settings/ForceChargingOff", 0, CommandKind.CHARGE_FET, True),
        ("/Settings/ForceDischargingOff", 1, CommandKind.DISCHARGE_FET, False),
        ("/Settings/TurnBalancingOff", dbus.Boolean(True), CommandKind.BALANCE, False),
    ],
)
async def test_switch_write_reaches_the_battery(
    sink_factory: Any,
    client: Client,
    localsettings: Any,
    path: str,
    value: Any,
    kind: CommandKind,
    allowed: bool,
) -> None:
    _sink, bat, name = await _service(
        sink_factory, "SW-" + path[-8:], "/dev/ttyS1", caps=ALL_SWITCHES
    )
    code = await asyncio.to_thread(client.set, name, path, value)
    assert code == 0
    assert bat.commands == [Command(kind, allowed, "venus")]
    assert await asyncio.to_thread(client.value, name, path) == int(value)


async def test_refused_by_the_battery_answers_2_and_changes_nothing(
    sink_factory: Any, client: Client, localsettings: Any
) -> None:
    _sink, bat, name = await _service(sink_factory, "SW-NO", "/dev/ttyS2", caps=ALL_SWITCHES)
    bat.accept = False
    code = await asyncio.to_thread(client.set, name, "/Settings/ForceChargingOff", 1)
    assert code == 2
    assert len(bat.commands) == 1
    assert await asyncio.to_thread(client.value, name, "/Settings/ForceChargingOff") == 0


@pytest.mark.parametrize(
    ("path", "value", "code"),
    [
        ("/Settings/ForceChargingOff", 2, 2),  # out of range
        ("/Settings/ForceChargingOff", "on", 1),  # wrong type
        ("/Settings/ForceChargingOff", dbus.Double(0.5), 1),  # not an integer
        ("/Settings/ResetSocTo", 101, 2),
        ("/Settings/ResetSocTo", -1, 2),
        ("/Settings/ResetSocTo", "80", 1),
        ("/History/Clear", 8, 2),
        ("/History/Clear", "all", 1),
        ("/CustomName", 5, 1),
        ("/CustomName", "x" * 65, 2),
        ("/Dc/0/Voltage", 12.0, 1),  # measurements are read-only
        ("/Info/MaxChargeCurrent", 500.0, 1),  # limits too: a foreign write must not stick
        ("/Mode", 4, 1),
    ],
)
async def test_invalid_writes_are_refused_and_change_nothing(
    sink_factory: Any, client: Client, localsettings: Any, path: str, value: Any, code: int
) -> None:
    _sink, bat, name = await _service(
        sink_factory, "BAD-" + path.replace("/", "")[-10:], "/dev/ttyS3", caps=ALL_SWITCHES
    )
    before = await asyncio.to_thread(client.items, name)
    got = await asyncio.to_thread(client.set, name, path, value)
    assert got == code
    after = await asyncio.to_thread(client.items, name)
    assert after == before
    assert bat.commands == [] and bat.stage_commands == []


@pytest.mark.parametrize(
    "path",
    ["/Settings/ForceChargingOff", "/Settings/ForceDischargingOff", "/Settings/TurnBalancingOff"],
)
async def test_switch_without_capability_is_refused(
    sink_factory: Any, client: Client, localsettings: Any, path: str
) -> None:
    _sink, bat, name = await _service(sink_factory, "NOCAP" + path[-6:], "/dev/ttyS4")
    assert await asyncio.to_thread(client.set, name, path, 1) == 1
    assert bat.commands == []
    assert await asyncio.to_thread(client.value, name, path) is None


async def test_soc_reset_goes_to_the_bms_with_the_chosen_target(
    sink_factory: Any, client: Client, localsettings: Any
) -> None:
    _sink, bat, name = await _service(sink_factory, "SOC-BMS", "/dev/ttyS5", caps=ALL_SWITCHES)
    bat.stages_accept = False  # no SoC calculation: the BMS does it
    assert await asyncio.to_thread(client.set, name, "/Settings/ResetSocTo", 80) == 0
    assert await asyncio.to_thread(client.value, name, "/Settings/ResetSocTo") == 80
    assert bat.commands == []  # choosing a target does nothing yet
    assert await asyncio.to_thread(client.set, name, "/Settings/ResetSocToApply", 1) == 0
    assert bat.stage_commands == [("soc_reset", 80.0)]
    assert bat.commands == [Command(CommandKind.SOC_RESET, 80.0, "venus")]  # not 1 %
    assert await asyncio.to_thread(client.value, name, "/Settings/ResetSocToApply") == 0


async def test_soc_reset_of_the_calculated_soc_goes_to_the_stage(
    sink_factory: Any, client: Client, localsettings: Any
) -> None:
    sink = await sink_factory()
    bat = battery("SOC-CALC", port="/dev/ttyS6")  # no SOC_RESET capability
    u = update(sample=sample16())
    u.derived = Derived(soc=50.0, soc_bms=81.5)  # a SoC stage runs
    sink.publish(bat, u)
    name = await published(sink, bat)
    assert await asyncio.to_thread(client.set, name, "/Settings/ResetSocTo", 100) == 0
    assert await asyncio.to_thread(client.set, name, "/Settings/ResetSocToApply", 1) == 0
    assert bat.stage_commands == [("soc_reset", 100.0)]
    assert bat.commands == []
    bat.stages_accept = False
    assert await asyncio.to_thread(client.set, name, "/Settings/ResetSocToApply", 1) == 2


async def test_history_clear_goes_to_the_stages(
    sink_factory: Any, client: Client, localsettings: Any
) -> None:
    _sink, bat, name = await _service(sink_factory, "HIST", "/dev/ttyS7")
    assert await asyncio.to_thread(client.value, name, "/History/CanBeCleared") == 1
    assert await asyncio.to_thread(client.set, name, "/History/Clear", 3) == 0
    assert bat.stage_commands == [("history_clear", 3)]
    assert await asyncio.to_thread(client.value, name, "/History/Clear") == 0
    bat.stages_accept = False
    assert await asyncio.to_thread(client.set, name, "/History/Clear", 1) == 2


async def test_custom_name_is_stored_and_signalled(
    sink_factory: Any, client: Client, localsettings: Any
) -> None:
    sink, bat, name = await _service(sink_factory, "NAME", "/dev/ttyS8")
    owner = await asyncio.to_thread(client.owner, name)
    client.drain()
    assert await asyncio.to_thread(client.set, name, "/CustomName", "Bank A") == 0
    assert await asyncio.to_thread(client.value, name, "/CustomName") == "Bank A"
    props = [s for s in client.drain() if s[1] == owner]
    assert props and props[0][0] == "PropertiesChanged" and props[0][2] == "/CustomName"
    assert props[0][3]["Value"] == "Bank A"
    # The next cycle renders the accepted name and therefore sends nothing for it.
    sink.publish(bat, update(t=1001, sample=sample16()))
    await asyncio.sleep(0.05)
    assert [s for s in client.drain() if s[1] == owner] == []


async def test_write_to_unknown_path_is_an_error(
    sink_factory: Any, client: Client, localsettings: Any
) -> None:
    _sink, _bat, name = await _service(sink_factory, "UNK", "/dev/ttyS9")

    def call() -> str:
        try:
            client.set(name, "/Settings/NoSuchThing", 1)
        except dbus.exceptions.DBusException as exc:
            return str(exc.get_dbus_name())
        return "accepted"

    assert await asyncio.to_thread(call) == "org.freedesktop.DBus.Error.UnknownObject"
