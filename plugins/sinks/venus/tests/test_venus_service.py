"""The battery service on a real private dbus-daemon: paths, types, GetItems, signals."""

from __future__ import annotations

import asyncio
from typing import Any

import dbus

from bmshost_sink_venus.testing import Client, battery, published, sample16, update, wait_until

MANDATORY = {
    "/Mgmt/ProcessName": dbus.String,
    "/Mgmt/ProcessVersion": dbus.String,
    "/Mgmt/Connection": dbus.String,
    "/DeviceInstance": dbus.Int32,
    "/ProductId": dbus.Int32,
    "/ProductName": dbus.String,
    "/FirmwareVersion": dbus.String,
    "/HardwareVersion": dbus.String,
    "/Connected": dbus.Int32,
    "/Info/MaxChargeVoltage": dbus.Double,
    "/Info/MaxChargeCurrent": dbus.Double,
    "/Info/MaxDischargeCurrent": dbus.Double,
    "/Dc/0/Voltage": dbus.Double,
    "/Dc/0/Current": dbus.Double,
    "/Dc/0/Power": dbus.Double,
    "/Dc/0/Temperature": dbus.Double,
    "/Soc": dbus.Double,
    "/InstalledCapacity": dbus.Double,
    "/ConsumedAmphours": dbus.Double,
    "/System/MinCellVoltage": dbus.Double,
    "/System/MaxCellVoltage": dbus.Double,
    "/System/MinVoltageCellId": dbus.String,
    "/Voltages/Cell1": dbus.Double,
    "/Voltages/Cell16": dbus.Double,
    "/Balances/Cell16": dbus.Int32,
    "/Alarms/HighVoltage": dbus.Int32,
    "/Alarms/BmsCable": dbus.Int32,
    "/TimeToGo": dbus.Int32,
    "/History/ChargeCycles": dbus.Int32,
    "/State": dbus.Int32,
}


def _is_invalid(v: Any) -> bool:
    return isinstance(v, dbus.Array) and len(v) == 0 and v.signature == "i"


async def test_service_appears_with_mandatory_paths_and_types(
    sink_factory: Any, client: Client, localsettings: Any
) -> None:
    sink = await sink_factory()
    bat = battery("SVC-A")
    sink.add_battery(bat)
    sink.publish(bat, update(sample=sample16()))
    name = await published(sink, bat)
    assert name == "com.victronenergy.battery.ttyUSB0"
    items = await asyncio.to_thread(client.items, name)
    for path, typ in MANDATORY.items():
        assert path in items, path
        assert type(items[path]["Value"]) is typ, (path, items[path]["Value"])
    v = {p: i["Value"] for p, i in items.items()}
    assert v["/ProductId"] == 0xBA77 and items["/ProductId"]["Text"] == "0xBA77"
    assert v["/Connected"] == 1
    assert v["/Mgmt/Connection"] == "Serial /dev/ttyUSB0"
    assert (
        v["/Info/MaxChargeVoltage"] == 55.2 and items["/Info/MaxChargeVoltage"]["Text"] == "55.20V"
    )
    assert v["/Voltages/Cell16"] == 3.315 and v["/System/MaxVoltageCellId"] == "C16"
    assert v["/Dc/0/Temperature"] == 21.7  # mean of the two battery sensors
    assert v["/ConsumedAmphours"] == -51.8
    assert v["/Alarms/HighVoltage"] == 1  # BMS warning 1 and driver 0: worst wins
    assert v["/Balances/Cell16"] == 1 and v["/Balancing"] == 1
    assert v["/State"] == 9 and v["/Serial"] == "jbd_SVC-A"
    # Nothing the data cannot say is made up: no midpoint stage ran, no SoH alarm from this BMS.
    assert _is_invalid(v["/Dc/0/MidVoltage"]) and items["/Dc/0/MidVoltage"]["Text"] == "---"
    assert _is_invalid(v["/Alarms/StateOfHealth"])
    # Capability missing → the switch exists but is invalid.
    assert _is_invalid(v["/Settings/ForceChargingOff"])
    assert "/Settings/ResetSocTo" in items and _is_invalid(v["/Settings/ResetSocTo"])
    assert isinstance(v["/DeviceInstance"], dbus.Int32)


async def test_getvalue_gettext_on_items_and_tree_nodes(
    sink_factory: Any, client: Client, localsettings: Any
) -> None:
    sink = await sink_factory()
    bat = battery("SVC-B", port="/dev/ttyUSB1")
    sink.publish(bat, update(sample=sample16()))
    name = await published(sink, bat)

    def calls() -> dict[str, Any]:
        return {
            "leaf": client.call(name, "/Dc/0/Voltage", "GetValue"),
            "leaf_text": client.call(name, "/Dc/0/Voltage", "GetText"),
            "node": client.call(name, "/Dc", "GetValue"),
            "node_text": client.call(name, "/Dc/0", "GetText"),
            "root": client.call(name, "/", "GetValue"),
            "intro": client.call(
                name, "/Dc", "Introspect", iface="org.freedesktop.DBus.Introspectable"
            ),
            "leaf_intro": client.call(
                name, "/Soc", "Introspect", iface="org.freedesktop.DBus.Introspectable"
            ),
        }

    r = await asyncio.to_thread(calls)
    assert r["leaf"] == 52.92 and r["leaf_text"] == "52.92V"
    assert r["node"]["0/Voltage"] == 52.92 and "0/Current" in r["node"]
    assert r["node_text"]["Voltage"] == "52.92V"
    assert r["root"]["Dc/0/Voltage"] == 52.92 and r["root"]["ProductId"] == 0xBA77
    assert '<node name="0"/>' in r["intro"] and "GetValue" in r["intro"]
    assert "SetValue" in r["leaf_intro"]

    def unknown() -> str:
        try:
            client.call(name, "/No/Such/Path", "GetValue")
        except dbus.exceptions.DBusException as exc:
            return str(exc.get_dbus_name())
        return "no error"

    assert await asyncio.to_thread(unknown) == "org.freedesktop.DBus.Error.UnknownObject"


async def test_items_changed_carries_only_changes_and_steady_cycles_send_nothing(
    sink_factory: Any, client: Client, localsettings: Any
) -> None:
    sink = await sink_factory()
    bat = battery("SVC-C", port="/dev/ttyUSB2")
    s = sample16()
    sink.publish(bat, update(t=1000, sample=s))
    name = await published(sink, bat)
    owner = await asyncio.to_thread(client.owner, name)
    entry = sink.entries[id(bat)]
    assert entry.service is not None
    # Three steady cycles: no messages at all.
    for t in (1001, 1002, 1003):
        sink.publish(bat, update(t=t, sample=s))
    s2 = sample16(current=-20.0, soc=80.0)
    sink.publish(bat, update(t=1004, sample=s2))

    def mine() -> list[Any]:
        return [x for x in client.signals.queue if x[1] == owner]

    await wait_until(lambda: mine())
    await asyncio.sleep(0.05)  # give a wrongly sent second signal the chance to arrive
    signals = mine()
    assert len(signals) == 1, signals
    kind, _, path, items = signals[0]
    assert kind == "ItemsChanged" and path == "/"
    assert set(items) == {"/Dc/0/Current", "/Dc/0/Power", "/Soc", "/SocBms"}
    assert items["/Soc"]["Value"] == 80.0 and items["/Dc/0/Current"]["Text"] == "-20.00A"
    assert entry.service.signals_sent == 1
    assert await asyncio.to_thread(client.value, name, "/Soc") == 80.0


async def test_two_batteries_two_services_two_instances(
    sink_factory: Any, client: Client, localsettings: Any
) -> None:
    sink = await sink_factory()
    a = battery("TWO-A", port="/dev/ttyUSB3")
    b = battery("TWO-B", port="/dev/ttyUSB4")
    for bat in (a, b):
        sink.add_battery(bat)
        sink.publish(bat, update(sample=sample16()))
    na, nb = await published(sink, a), await published(sink, b)
    assert {na, nb} == {"com.victronenergy.battery.ttyUSB3", "com.victronenergy.battery.ttyUSB4"}
    ia = await asyncio.to_thread(client.value, na, "/DeviceInstance")
    ib = await asyncio.to_thread(client.value, nb, "/DeviceInstance")
    assert ia != ib
    # Each service has its own connection (unique name), as Venus requires.
    oa = await asyncio.to_thread(client.owner, na)
    ob = await asyncio.to_thread(client.owner, nb)
    assert oa != ob


async def test_cells_appearing_later_are_added_in_items_changed(
    sink_factory: Any, client: Client, localsettings: Any
) -> None:
    sink = await sink_factory()
    bat = battery("GROW", port="/dev/ttyUSB5")
    s = sample16()
    s.cell_voltages = s.cell_voltages[:8] if s.cell_voltages else None
    s.cell_balancing = None
    sink.publish(bat, update(sample=s))
    name = await published(sink, bat)
    owner = await asyncio.to_thread(client.owner, name)
    items = await asyncio.to_thread(client.items, name)
    assert "/Voltages/Cell8" in items and "/Voltages/Cell9" not in items
    sink.publish(bat, update(t=1001, sample=sample16()))
    await wait_until(lambda: [x for x in client.signals.queue if x[1] == owner])
    items = await asyncio.to_thread(client.items, name)
    assert items["/Voltages/Cell16"]["Value"] == 3.315


async def test_session_and_explicit_bus_rules(monkeypatch: Any) -> None:
    from bmshost_sink_venus.options import VenusOptions
    from bmshost_sink_venus.sink import bus_address

    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    assert bus_address(VenusOptions()) == dbus.bus.BusConnection.TYPE_SYSTEM
    assert bus_address(VenusOptions(bus="session")) == dbus.bus.BusConnection.TYPE_SESSION
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
    assert bus_address(VenusOptions()) == "unix:path=/nonexistent"  # read now, not cached
    assert bus_address(VenusOptions(bus="session")) == "unix:path=/nonexistent"
    assert bus_address(VenusOptions(bus="system")) == dbus.bus.BusConnection.TYPE_SYSTEM
    assert bus_address(VenusOptions(bus_address="unix:path=/x")) == "unix:path=/x"
