"""Test helpers for the Venus sink: a D-Bus consumer, a fake battery, sample updates.

Used by this distribution's tests and by cross-distribution end-to-end tests. The
``localsettings_standin`` module next to this one is the settings service they run against.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Callable
from typing import Any

import attrs
import dbus
import dbus.bus

from bmshost.capabilities import BASIC, Capability
from bmshost.model import Command, CommandResult, Derived, History, Identity, Limits, Sample
from bmshost.sink import BatteryUpdate, SinkContext

from . import glib_loop
from .encoding import Value, unwire
from .options import VenusOptions
from .sink import VenusSink

BUSITEM = "com.victronenergy.BusItem"


class Client:
    """A consumer on its own connection: blocking calls (run them off the event loop with
    ``asyncio.to_thread``) and recorded ItemsChanged/PropertiesChanged signals."""

    def __init__(self, address: str) -> None:
        glib_loop.ensure_running()
        # Created and closed on the GLib thread, which serves its main-loop watches; blocking
        # calls from other threads are fine (libdbus is thread-safe).
        self.conn = glib_loop.run_sync(dbus.bus.BusConnection, address)
        self.conn.set_exit_on_disconnect(False)  # closing it must not _exit the test process
        self.signals: queue.Queue[tuple[str, str, str, dict[str, Any]]] = queue.Queue()
        self.conn.add_signal_receiver(
            self._items_changed,
            signal_name="ItemsChanged",
            dbus_interface=BUSITEM,
            sender_keyword="sender",
            path_keyword="path",
        )
        self.conn.add_signal_receiver(
            self._properties_changed,
            signal_name="PropertiesChanged",
            dbus_interface=BUSITEM,
            sender_keyword="sender",
            path_keyword="path",
        )

    def _items_changed(self, items: Any, sender: str, path: str) -> None:
        self.signals.put(
            ("ItemsChanged", sender, path, {str(k): dict(v) for k, v in items.items()})
        )

    def _properties_changed(self, props: Any, sender: str, path: str) -> None:
        self.signals.put(("PropertiesChanged", sender, path, dict(props)))

    def owner(self, name: str) -> str:
        return str(self.conn.get_name_owner(name))

    def has(self, name: str) -> bool:
        return bool(self.conn.name_has_owner(name))

    def call(self, service: str, path: str, method: str, *args: Any, iface: str = BUSITEM) -> Any:
        obj = self.conn.get_object(service, path, introspect=False)
        return getattr(obj, method)(*args, dbus_interface=iface, timeout=20)

    def items(self, service: str) -> dict[str, dict[str, Any]]:
        raw = self.call(service, "/", "GetItems")
        return {str(p): {"Value": v["Value"], "Text": str(v["Text"])} for p, v in raw.items()}

    def value(self, service: str, path: str) -> Value:
        return unwire(self.call(service, path, "GetValue"))

    def set(self, service: str, path: str, value: Any) -> int:
        return int(self.call(service, path, "SetValue", value))

    def drain(self) -> list[tuple[str, str, str, dict[str, Any]]]:
        out = []
        while True:
            try:
                out.append(self.signals.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        glib_loop.run_sync(self.conn.close)


@attrs.define(eq=False)
class FakeBattery:
    """A BatteryHandle whose writes are recorded (and can be refused)."""

    identity: Identity
    capabilities: frozenset[Capability] = BASIC
    connection: str = "Serial /dev/ttyUSB0"
    latest: BatteryUpdate | None = None
    commands: list[Command] = attrs.field(factory=list)
    stage_commands: list[tuple[str, Any]] = attrs.field(factory=list)
    accept: bool = True
    stages_accept: bool = True

    @property
    def name(self) -> str:
        return self.identity.unique_id

    async def submit(self, command: Command) -> CommandResult:
        self.commands.append(command)
        return CommandResult(self.accept, "ok" if self.accept else "refused by the fake")

    def stage_command(self, name: str, value: Any) -> bool:
        self.stage_commands.append((name, value))
        return self.stages_accept


def battery(
    serial: str, port: str = "/dev/ttyUSB0", caps: frozenset[Capability] = BASIC, **kw: Any
) -> FakeBattery:
    return FakeBattery(
        Identity(driver="jbd", variant="serial", port=port, serial_number=serial),
        caps,
        f"Serial {port}",
        **kw,
    )


def sample16(offset: float = 0.0, **kw: Any) -> Sample:
    cells = [3.300 + 0.001 * i + offset for i in range(16)]
    fields: dict[str, Any] = dict(
        voltage=round(sum(cells), 3),
        current=-12.5,
        soc=81.5,
        soh=99.0,
        capacity_ah=280.0,
        remaining_ah=228.2,
        cycles=42,
        cell_voltages=cells,
        cell_balancing=[i == 15 for i in range(16)],
        temperatures=[21.3, 22.1],
        mosfet_temperature=30.2,
        charge_fet=True,
        discharge_fet=True,
        balance_fet=True,
        alarms={"low_voltage": 0, "high_voltage": 1, "cell_imbalance": 0},
        serial_number="SN1",
        hardware_version="JBD-SP16S020",
        firmware_version="1.2",
        model="SP16S020",
    )
    fields.update(kw)
    return Sample(**fields).fill_derived()


def update(
    t: float = 1000.0,
    sample: Sample | None = None,
    online: bool = True,
    stale: bool = False,
    limits: Limits | None = None,
    derived: Derived | None = None,
    info: str = "Connected",
) -> BatteryUpdate:
    if limits is None and online:
        limits = Limits(
            cvl=55.2, ccl=100.0, dcl=150.0, charge_mode="Bulk", charge_limitation="Cell Voltage"
        )
    if derived is None and online:
        derived = Derived(
            current_avg=-12.1,
            time_to_go=51234.0,
            history=History(deepest_discharge=-120.0, charge_cycles=12.7, maximum_voltage=55.3),
            alarms={"bms_cable": 0, "high_voltage": 0},
        )
    return BatteryUpdate(
        t=t,
        sample=sample,
        fresh=online,
        online=online,
        stale=stale,
        limits=limits,
        derived=derived,
        connection_info=info,
    )


def make_sink(state_dir: str = "", **options: Any) -> VenusSink:
    return VenusSink(SinkContext(options=VenusOptions(**options), state_dir=state_dir))


async def wait_until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll ``predicate`` (off the loop when it makes blocking D-Bus calls is the caller's job)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


async def published(sink: VenusSink, bat: FakeBattery) -> str:
    """Wait until ``bat`` has a service on the bus; return its name."""
    entry = await wait_until(lambda: sink.entries.get(id(bat)))

    def ready() -> bool:
        return entry.service is not None and entry.phase.value == "ready"

    await wait_until(ready)
    assert entry.service is not None
    return str(entry.service.name)
