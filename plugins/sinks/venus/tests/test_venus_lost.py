"""A silent BMS: safe state published, /Connected and the cable alarm tell the truth."""

from __future__ import annotations

import asyncio
from typing import Any

from bmshost.model import Derived, Limits
from bmshost_sink_venus.testing import Client, battery, published, sample16, update


async def test_bms_lost_then_back(sink_factory: Any, client: Client, localsettings: Any) -> None:
    sink = await sink_factory()
    bat = battery("LOST", port="/dev/ttyUSB7")
    s = sample16()
    sink.publish(bat, update(t=1000, sample=s))
    name = await published(sink, bat)
    # Silent but not yet stale: the last limits stay, nothing flips.
    sink.publish(
        bat, update(t=1002, sample=s, online=False, limits=None, derived=None, info="Lost for 2 s")
    )
    # Stale: the control stages publish their safe state (CCL = DCL = 0) and a cable alarm.
    safe = Limits(
        cvl=53.6, ccl=0.0, dcl=0.0, charge_limitation="BMS lost", discharge_limitation="BMS lost"
    )
    sink.publish(
        bat,
        update(
            t=1030,
            sample=s,
            online=False,
            stale=True,
            limits=safe,
            derived=Derived(alarms={"bms_cable": 1}),
            info="Lost for 30 s",
        ),
    )

    async def values() -> dict[str, Any]:
        items = await asyncio.to_thread(client.items, name)
        return {p: i["Value"] for p, i in items.items()}

    async def lost() -> bool:
        return (await values())["/Connected"] == 0

    await wait_until_async(lost)
    v = await values()
    assert v["/Info/MaxChargeCurrent"] == 0.0 and v["/Info/MaxDischargeCurrent"] == 0.0
    assert v["/Info/MaxChargeVoltage"] == 53.6
    assert v["/Alarms/BmsCable"] == 1  # the stage's level
    assert v["/Io/AllowToCharge"] == 0 and v["/Io/AllowToDischarge"] == 0
    assert len(v["/Dc/0/Voltage"]) == 0  # invalid: nothing measured
    assert v["/System/NrOfModulesOnline"] == 0 and v["/System/NrOfModulesOffline"] == 1
    assert v["/ErrorCode"] == 32 and v["/ConnectionInformation"] == "Lost for 30 s"
    assert await asyncio.to_thread(client.has, name)  # the service stays registered

    # No control stage at all and stale: the sink itself never leaves chargers running.
    sink.publish(bat, update(t=1040, sample=s, online=False, stale=True, limits=None, derived=None))
    await wait_until_async(lambda: _eq(values, "/Alarms/BmsCable", 2))
    v = await values()
    assert v["/Info/MaxChargeCurrent"] == 0.0 and v["/Info/MaxDischargeCurrent"] == 0.0

    # Back: normal values again.
    sink.publish(bat, update(t=1041, sample=s))
    await wait_until_async(lambda: _eq(values, "/Connected", 1))
    v = await values()
    assert v["/Info/MaxChargeCurrent"] == 100.0 and v["/Alarms/BmsCable"] == 0
    assert v["/Dc/0/Voltage"] == 52.92 and v["/State"] == 9 and len(v["/ErrorCode"]) == 0


async def test_limits_never_turn_invalid_once_published(
    sink_factory: Any, client: Client, localsettings: Any
) -> None:
    sink = await sink_factory()
    bat = battery("KEEP", port="/dev/ttyUSB8")
    sink.publish(bat, update(t=1000, sample=sample16()))
    name = await published(sink, bat)
    # A cycle whose pipeline failed (limits withheld) while the BMS is still fine.
    sink.publish(bat, update(t=1001, sample=sample16(soc=70.0), limits=Limits()))
    await wait_until_async(lambda: _eq_direct(client, name, "/Soc", 70.0))
    assert await asyncio.to_thread(client.value, name, "/Info/MaxChargeCurrent") == 100.0


async def test_dead_at_boot_registers_after_the_wait(
    sink_factory: Any, client: Client, localsettings: Any
) -> None:
    sink = await sink_factory(register_without_sample_after=30.0)
    bat = battery("", port="/dev/ttyUSB6")
    sink.publish(bat, update(t=1000, sample=None, online=False, stale=True))
    sink.publish(bat, update(t=1020, sample=None, online=False, stale=True))
    await asyncio.sleep(0.05)
    assert not await asyncio.to_thread(client.has, "com.victronenergy.battery.ttyUSB6")
    sink.publish(bat, update(t=1031, sample=None, online=False, stale=True))
    name = await published(sink, bat)
    v = {p: i["Value"] for p, i in (await asyncio.to_thread(client.items, name)).items()}
    assert v["/Connected"] == 0 and v["/Alarms/BmsCable"] == 2
    assert v["/Info/MaxChargeCurrent"] == 0.0 and len(v["/Info/MaxChargeVoltage"]) == 0


async def _eq(values: Any, path: str, expected: Any) -> bool:
    return bool((await values())[path] == expected)


async def _eq_direct(client: Client, name: str, path: str, expected: Any) -> bool:
    return bool(await asyncio.to_thread(client.value, name, path) == expected)


async def wait_until_async(predicate: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)
