"""The Venus OS sink: one ``com.victronenergy.battery.<id>`` service per battery.

Threads: ``publish`` runs on the asyncio loop, renders the battery's paths and diffs them
against what was last handed over; only when something changed does it pass the changes to the
GLib thread, which stores them and sends one ItemsChanged. A steady battery therefore costs one
render and one dict comparison per cycle and no D-Bus message at all. SetValue arrives on the
GLib thread, is validated there, and a write the battery must perform crosses to asyncio
(``run_coroutine_threadsafe``) with the D-Bus reply sent when the battery has answered.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import attrs
import dbus
import dbus.bus

from bmshost.capabilities import Capability
from bmshost.model import Command, CommandKind
from bmshost.sink import BatteryHandle, BatteryUpdate, Sink, SinkContext

from . import glib_loop
from . import paths as P
from .busitem import BusItemService
from .encoding import Value, same
from .options import VenusOptions
from .render import Face, render
from .settings import FileSettings, LocalSettings
from .writes import ACCEPTED, REFUSED, Write, apply_to_face, decide

log = logging.getLogger("bmshost.venus")

RETRY_AFTER = 10.0  # s between attempts to create a service that failed (bus down, name taken)
_MISSING: Any = object()


class Phase(enum.Enum):
    WAITING = "waiting"  # no service yet (waiting for the first sample)
    CREATING = "creating"  # the GLib thread is building it
    READY = "ready"


@attrs.define(eq=False)
class Entry:
    """One battery as this sink keeps it."""

    battery: BatteryHandle
    first_t: float | None = None
    phase: Phase = Phase.WAITING
    retry_at: float = 0.0
    face: Face | None = None
    service: BusItemService | None = None
    sent: dict[str, Value] = attrs.field(factory=dict)
    unique_id: str = ""


def bus_address(options: VenusOptions) -> Any:
    """The configured bus: an address, or the session bus when DBUS_SESSION_BUS_ADDRESS is set
    (development), else the system bus (Venus OS)."""
    if options.bus_address:
        return options.bus_address
    if options.bus == "session" or (
        options.bus == "auto" and os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    ):
        return dbus.bus.BusConnection.TYPE_SESSION
    return dbus.bus.BusConnection.TYPE_SYSTEM


def connect(options: VenusOptions) -> dbus.bus.BusConnection:
    """A private connection to the configured bus. libdbus would ``_exit(1)`` the whole host
    when a connection is closed or the daemon goes away; a host serving other batteries and
    sinks must not die with one bus connection, so that is switched off."""
    conn = dbus.bus.BusConnection(bus_address(options))
    conn.set_exit_on_disconnect(False)
    return conn


def service_element(battery: BatteryHandle) -> str:
    """The last element of the service name: port basename (+ ``__0xNN`` for an address)."""
    ident = battery.identity
    base = ident.port.rstrip("/").rsplit("/", 1)[-1] or ident.driver
    if ident.address is not None:
        base += f"__0x{ident.address:02x}"
    clean = "".join(c if c.isalnum() or c in "_-" else "_" for c in base)
    return clean if clean[:1].isalpha() or clean[:1] == "_" else "b" + clean


class VenusSink(Sink):
    name = "venus"

    def __init__(self, ctx: SinkContext) -> None:
        self.options: VenusOptions = ctx.options if ctx.options is not None else VenusOptions()
        self.state_dir = ctx.state_dir
        self.entries: dict[int, Entry] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._settings: LocalSettings | FileSettings | None = None
        self._settings_conn: dbus.bus.BusConnection | None = None
        self._names: set[str] = set()
        self._pending: set[Future[bool]] = set()

    # -- Sink ----------------------------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        glib_loop.ensure_running()

    def add_battery(self, battery: BatteryHandle) -> None:
        self.entries.setdefault(id(battery), Entry(battery))

    def publish(self, battery: BatteryHandle, update: BatteryUpdate) -> None:
        entry = self.entries.get(id(battery))
        if entry is None:
            self.add_battery(battery)
            entry = self.entries[id(battery)]
        if entry.phase is Phase.READY:
            self._publish_changes(entry, update)
        elif entry.phase is Phase.WAITING:
            if entry.first_t is None:
                entry.first_t = update.t
            waited = update.t - entry.first_t
            if update.t < entry.retry_at:
                return
            if update.sample is None and waited < self.options.register_without_sample_after:
                return  # the serial number (the identity) comes with the first sample
            if self.loop is None:
                self.loop = asyncio.get_running_loop()
            glib_loop.ensure_running()
            entry.phase = Phase.CREATING
            glib_loop.call(self._create, entry, update)
        # CREATING: the service is being built from an earlier update; the next cycle catches up.

    async def stop(self) -> None:
        if not self.entries and self._settings is None:
            return
        await glib_loop.run(self._close_all)

    # -- cycle ---------------------------------------------------------------------------------

    def _publish_changes(self, entry: Entry, update: BatteryUpdate) -> None:
        face = entry.face
        assert face is not None and entry.service is not None
        face.capabilities = entry.battery.capabilities
        values = render(update, face)
        sent = entry.sent
        changes = {p: v for p, v in values.items() if not same(sent.get(p, _MISSING), v)}
        if changes:
            sent.update(changes)
            glib_loop.call(entry.service.update, changes)

    # -- GLib thread: creating and closing services --------------------------------------------

    def _settings_store(self) -> LocalSettings | FileSettings:
        if self._settings is not None:
            return self._settings
        delay = self.options.settings_write_delay
        if self.options.use_localsettings:
            conn = connect(self.options)
            if LocalSettings.present(conn):
                self._settings_conn = conn
                self._settings = LocalSettings(conn, delay)
                return self._settings
            conn.close()
            log.warning(
                "no com.victronenergy.settings on the bus: keeping device instances in a file"
            )
        path = Path(self.state_dir) / "venus-devices.json" if self.state_dir else None
        self._settings = FileSettings(path, delay)
        return self._settings

    def _create(self, entry: Entry, update: BatteryUpdate) -> None:
        battery = entry.battery
        try:
            service, face, values = self._build(entry, update)
        except Exception as exc:
            log.error(
                "cannot publish %s on D-Bus (retrying in %.0f s): %s",
                battery.name,
                RETRY_AFTER,
                exc,
            )
            self._to_loop(self._created, entry, None, None, {}, update.t + RETRY_AFTER)
            return
        log.info(
            "%s published as %s (device instance %d)",
            battery.name,
            service.name,
            face.device_instance,
        )
        self._to_loop(self._created, entry, service, face, values, 0.0)

    def _build(
        self, entry: Entry, update: BatteryUpdate
    ) -> tuple[BusItemService, Face, dict[str, Value]]:
        battery = entry.battery
        ident = battery.identity
        unique_id = ident.unique_id
        stored = self._settings_store().allocate(unique_id, self.options.device_instance_base)
        face = Face(
            driver=ident.driver,
            unique_id=unique_id,
            port=ident.port,
            connection=battery.connection,
            capabilities=battery.capabilities,
            device_instance=stored.device_instance,
            product_name=self._product_name(battery, update),
            insecure=self.options.mark_insecure and _insecure(battery),
            custom_name=stored.custom_name,
            soc_reset_paths=self._soc_reset_paths(battery, update),
            cell_format=self.options.cell_data_format,
        )
        values = render(update, face)
        element = service_element(battery)
        name = f"{self.options.service_prefix}.{element}"
        n = 2
        while name in self._names:  # two batteries on one port without addresses
            name = f"{self.options.service_prefix}.{element}_{n}"
            n += 1
        conn = connect(self.options)  # private: one per service (object paths are per connection)
        service = BusItemService(
            conn, name, lambda path, value, reply: self._on_write(entry, path, value, reply)
        )
        try:
            service.add(values)
            service.register()
        except Exception:
            service.close()
            raise
        self._names.add(name)
        entry.unique_id = unique_id
        return service, face, dict(values)

    def _created(
        self,
        entry: Entry,
        service: BusItemService | None,
        face: Face | None,
        values: dict[str, Value],
        retry_at: float,
    ) -> None:
        if service is None:
            entry.phase, entry.retry_at = Phase.WAITING, retry_at
            return
        entry.service, entry.face, entry.sent = service, face, values
        entry.phase = Phase.READY

    def _close_all(self) -> None:
        for entry in self.entries.values():
            if entry.service is not None:
                entry.service.close()
                self._names.discard(entry.service.name)
                entry.service = None
            entry.phase = Phase.WAITING
        if self._settings is not None:
            self._settings.close()
            self._settings = None
        if self._settings_conn is not None:
            self._settings_conn.close()
            self._settings_conn = None

    def _to_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        assert self.loop is not None
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: the host is gone
            log.debug("asyncio loop closed; dropping %s", fn)

    def _product_name(self, battery: BatteryHandle, update: BatteryUpdate) -> str:
        s = update.sample
        ident = battery.identity
        fields = {
            "driver": ident.driver,
            "model": (s.model or s.hardware_version or "") if s else "",
            "hardware": (s.hardware_version or "") if s else "",
            "port": ident.port,
            "unique_id": ident.unique_id,
        }
        return " ".join(self.options.product_name.format_map(fields).split())

    def _soc_reset_paths(self, battery: BatteryHandle, update: BatteryUpdate) -> bool:
        mode = self.options.soc_reset_paths
        if mode != "auto":
            return mode == "always"
        computed = update.derived is not None and update.derived.soc_bms is not None
        return Capability.SOC_RESET in battery.capabilities or computed

    # -- GLib thread: SetValue -----------------------------------------------------------------

    def _on_write(
        self, entry: Entry, path: str, value: Value, reply: Callable[[int], None]
    ) -> None:
        face, service = entry.face, entry.service
        if face is None or service is None:
            reply(REFUSED)
            return
        name = entry.battery.name
        write = decide(path, value, face)
        if write.code != ACCEPTED:
            log.info("%s: refused SetValue %s = %r: %s", name, path, value, write.reason)
            reply(write.code)
            return
        if not write.needs_battery:
            self._accept(entry, path, write)
            reply(ACCEPTED)
            return
        if self.loop is None or self.loop.is_closed():
            reply(REFUSED)
            return
        future = asyncio.run_coroutine_threadsafe(self._perform(entry, path, write), self.loop)
        self._pending.add(future)

        def done(f: Future[bool]) -> None:
            self._pending.discard(f)
            try:
                ok = bool(f.result())
            except BaseException as exc:  # cancelled at shutdown, or a bug in the battery
                log.error("%s: SetValue %s failed: %r", name, path, exc)
                ok = False
            glib_loop.call(self._finish, entry, path, write, ok, reply)

        future.add_done_callback(done)

    def _finish(
        self, entry: Entry, path: str, write: Write, ok: bool, reply: Callable[[int], None]
    ) -> None:
        if ok:
            self._accept(entry, path, write)
        reply(ACCEPTED if ok else REFUSED)

    def _accept(self, entry: Entry, path: str, write: Write) -> None:
        assert entry.face is not None and entry.service is not None
        apply_to_face(path, write, entry.face)
        entry.service.set_one(path, write.value)
        if path == P.CUSTOM_NAME and self._settings is not None:
            self._settings.set_custom_name(entry.unique_id, str(write.value))
        log.info("%s: SetValue %s = %r accepted", entry.battery.name, path, write.value)

    async def _perform(self, entry: Entry, path: str, write: Write) -> bool:
        """On the asyncio loop: let the battery or its control stages carry out the write."""
        battery = entry.battery
        timeout = self.options.write_timeout
        try:
            if write.command is not None:
                result = await asyncio.wait_for(battery.submit(write.command), timeout)
                if not result.ok:
                    log.warning(
                        "%s: %s refused by the battery: %s", battery.name, path, result.message
                    )
                return result.ok
            if write.stage is not None:
                return battery.stage_command(*write.stage)
            target = write.soc_reset
            assert target is not None
            if battery.stage_command("soc_reset", target):
                return True  # the calculated SoC was reset
            if Capability.SOC_RESET in battery.capabilities:
                command = Command(CommandKind.SOC_RESET, target, "venus")
                result = await asyncio.wait_for(battery.submit(command), timeout)
                if not result.ok:
                    log.warning(
                        "%s: SoC reset refused by the battery: %s", battery.name, result.message
                    )
                return result.ok
            return False
        except TimeoutError:
            log.error(
                "%s: %s: the battery did not perform the write within %.0f s",
                battery.name,
                path,
                timeout,
            )
            return False


def _insecure(battery: BatteryHandle) -> bool:
    ident = battery.identity
    text = battery.connection.lower()
    return ident.variant in ("ble", "mqtt") or text.startswith(("ble", "mqtt"))


def make_venus_sink(ctx: SinkContext) -> VenusSink:
    return VenusSink(ctx)
