"""The Venus OS sink: one ``com.victronenergy.battery.<id>`` service per battery.

Threads: ``publish`` runs on the asyncio loop, renders the battery's paths (groups whose inputs
did not change are skipped, ``render.render_changed``) and diffs them against what was last
handed over; only when something changed does it pass the changes to the GLib thread, which
stores them and sends one ItemsChanged. A steady battery therefore costs one partial render and
one dict comparison per cycle and no D-Bus message at all. SetValue arrives on the
GLib thread, is validated there, and a write the battery must perform crosses to asyncio
(``run_coroutine_threadsafe``) with the D-Bus reply sent when the battery has answered.

The bus daemon may go away (a restart, a crash). Every connection watches for libdbus' local
``Disconnected`` signal; a lost service is closed and re-created with back-off from the same
face (same name, device instance, paths, user switches), and settings writes queued meanwhile
are kept until the settings service answers again. The poll loop and other sinks never notice.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import weakref
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

from . import debug, glib_loop, jsondata
from . import paths as P
from .busitem import BusItemService, unwatch, watch_disconnect
from .encoding import Value
from .options import VenusOptions
from .render import Face, RenderCache, render, render_changed
from .settings import (
    CONTROL_STATE,
    CUSTOM_NAME,
    LAST_SEEN,
    MAX_STATE_CHARS,
    Batch,
    FileSettings,
    LocalSettings,
    SettingsUnavailable,
    WriteQueue,
)
from .writes import ACCEPTED, REFUSED, Write, apply_to_face, decide

log = logging.getLogger("bmshost.venus")

# Back-off between attempts to create a service that failed (bus down, name taken): doubles
# from the first to the last value, back to the first once a service stands.
RETRY_FIRST, RETRY_MAX = 1.0, 30.0
_MISSING: Any = object()
# D-Bus errors that mean "not reachable right now" rather than "refused".
_TRANSIENT = frozenset(
    "org.freedesktop.DBus.Error." + name
    for name in ("Disconnected", "NoReply", "ServiceUnknown", "NameHasNoOwner", "Timeout",
                 "TimedOut", "NoServer", "NoNetwork")
)


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
    backoff: float = RETRY_FIRST
    failures: int = 0  # failed creations in a row (for the log)
    face: Face | None = None  # kept when the service is lost: re-creation reuses it
    service: BusItemService | None = None
    name: str = ""  # the D-Bus service name, kept across re-creations
    sent: dict[str, Value] = attrs.field(factory=dict)
    # the inputs ``sent`` was last rendered from, per group (reset whenever ``sent`` is)
    render_cache: RenderCache = attrs.field(factory=RenderCache)
    unique_id: str = ""  # settings group of the instance and custom name
    state_key: str = ""  # settings group of the control state (the identity at restore)
    state_text: str = ""  # the control state last read or queued (no duplicate writes)
    json_due: float = 0.0  # /JsonData is rebuilt at most once per interval ...
    json_dirty: bool = False  # ... and only when something changed
    recreations: int = 0  # services re-created after their connection dropped


def bus_address(options: VenusOptions) -> Any:
    """The configured bus: an address, or the session bus when DBUS_SESSION_BUS_ADDRESS is set
    (development), else the system bus (Venus OS). The session address is read from the
    environment each time rather than left to libdbus, which reads it once per process."""
    if options.bus_address:
        return options.bus_address
    session = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    if options.bus == "session" or (options.bus == "auto" and session):
        return session or dbus.bus.BusConnection.TYPE_SESSION
    return dbus.bus.BusConnection.TYPE_SYSTEM


def connect(options: VenusOptions) -> dbus.bus.BusConnection:
    """A private connection to the configured bus. libdbus would ``_exit(1)`` the whole host
    when a connection is closed or the daemon goes away; a host serving other batteries and
    sinks must not die with one bus connection, so that is switched off."""
    conn = dbus.bus.BusConnection(bus_address(options))
    conn.set_exit_on_disconnect(False)
    return conn


def _transient(exc: BaseException) -> bool:
    if not isinstance(exc, dbus.exceptions.DBusException):
        return False
    return exc.get_dbus_name() in _TRANSIENT


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
        self._settings_match: Any = None
        self._settings_kind = ""  # "", "local" or "file": decided once, never downgraded
        self._names: set[str] = set()
        self._pending: set[Future[bool]] = set()
        self._state_too_big: set[str] = set()
        o = self.options
        self.settings_queue = WriteQueue(o.settings_write_delay, self._write_settings, "settings")
        self.state_queue = WriteQueue(o.state_write_interval, self._write_settings, "control state")

    # -- Sink ----------------------------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        glib_loop.ensure_running()

    def add_battery(self, battery: BatteryHandle) -> None:
        self.entries.setdefault(id(battery), Entry(battery))

    def _entry(self, battery: BatteryHandle) -> Entry:
        entry = self.entries.get(id(battery))
        if entry is None:
            entry = self.entries[id(battery)] = Entry(battery)
        return entry

    def publish(self, battery: BatteryHandle, update: BatteryUpdate) -> None:
        entry = self._entry(battery)
        if entry.phase is Phase.READY:
            self._publish_changes(entry, update)
        elif entry.phase is Phase.WAITING:
            if entry.first_t is None:
                entry.first_t = update.t
            waited = update.t - entry.first_t
            if update.t < entry.retry_at:
                if entry.retry_at - update.t <= RETRY_MAX:
                    return
                entry.retry_at = 0.0  # the wall clock stepped back: do not wait for it to catch up
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

    # -- persisted control state (bmshost.sink.Sink contract) ----------------------------------

    async def restore_state(self, battery: BatteryHandle) -> str | None:
        """The control-state document stored under the battery's identity in localsettings."""
        if not self.options.persist_state:
            return None
        entry = self._entry(battery)
        entry.state_key = battery.identity.unique_id
        glib_loop.ensure_running()
        text = await glib_loop.run(self._read_state, entry.state_key)
        entry.state_text = text or ""
        return text

    def state_saved(self, battery: BatteryHandle, text: str) -> None:
        """Queue the document for ``ControlState``; written at most every state_write_interval."""
        if not self.options.persist_state:
            return
        entry = self._entry(battery)
        key = entry.state_key or battery.identity.unique_id
        if len(text) > MAX_STATE_CHARS:
            if key not in self._state_too_big:
                self._state_too_big.add(key)
                log.warning(
                    "%s: control state of %d characters is too large for localsettings (limit %d);"
                    " it is kept in the state file only",
                    battery.name, len(text), MAX_STATE_CHARS,
                )
            return
        if text == entry.state_text:
            return
        entry.state_text = text
        glib_loop.ensure_running()
        glib_loop.call(self.state_queue.queue, key, CONTROL_STATE, text)

    # -- cycle ---------------------------------------------------------------------------------

    def _publish_changes(self, entry: Entry, update: BatteryUpdate) -> None:
        face = entry.face
        assert face is not None and entry.service is not None
        face.capabilities = entry.battery.capabilities
        values = render_changed(update, face, entry.render_cache)
        options = self.options
        if options.charge_mode_debug:
            values.update(debug.texts(update, entry.battery))
        sent = entry.sent
        # Equal value *and* type (encoding.same, inlined: this runs for every path every cycle).
        changes = {
            p: v
            for p, v in values.items()
            if (old := sent.get(p, _MISSING)) != v or type(old) is not type(v)
        }
        if changes:
            sent.update(changes)
            entry.json_dirty = options.publish_json_data
        if entry.json_dirty:
            self._json_data(entry, update.t, changes)
        if changes:
            glib_loop.call(entry.service.update, changes)

    def _json_data(self, entry: Entry, t: float, changes: dict[str, Value]) -> None:
        interval = self.options.json_data_interval
        # (a wall clock stepped back must not freeze the document until it catches up again)
        if entry.json_due - interval <= t < entry.json_due:
            return
        entry.json_dirty = False
        entry.json_due = t + interval
        text = jsondata.snapshot(entry.sent)
        if entry.sent.get(jsondata.PATH) != text:
            entry.sent[jsondata.PATH] = changes[jsondata.PATH] = text

    # -- GLib thread: creating and closing services --------------------------------------------

    def _settings_store(self) -> LocalSettings | FileSettings:
        """The settings store, (re)connected on demand. Raises ``SettingsUnavailable`` when
        localsettings was in use and cannot be reached now (bus or service restarting)."""
        if self._settings is not None:
            return self._settings
        if self.options.use_localsettings and self._settings_kind in ("", "local"):
            try:
                conn = connect(self.options)
            except dbus.exceptions.DBusException as exc:
                raise SettingsUnavailable(f"no bus: {exc.get_dbus_message()}") from None
            try:
                present = LocalSettings.present(conn)
            except dbus.exceptions.DBusException:
                present = False
            if present:
                self._settings_kind = "local"
                self._settings_conn = conn
                self._settings = LocalSettings(conn)
                token = id(conn)  # not the connection itself: no conn → callback → conn cycle
                self._settings_match = watch_disconnect(conn, lambda: self._settings_lost(token))
                return self._settings
            conn.close()
            if self._settings_kind == "local":
                raise SettingsUnavailable("com.victronenergy.settings is not on the bus")
            log.warning(
                "no com.victronenergy.settings on the bus: keeping device instances in a file"
            )
        self._settings_kind = "file"
        path = Path(self.state_dir) / "venus-devices.json" if self.state_dir else None
        self._settings = FileSettings(path)
        return self._settings

    def _drop_settings(self) -> None:
        conn, self._settings_conn = self._settings_conn, None
        unwatch(self._settings_match)
        self._settings_match = None
        if self._settings_kind == "local":
            self._settings = None  # reconnected on the next use
        if conn is not None:
            conn.close()

    def _settings_lost(self, token: int) -> None:
        if self._settings_conn is not None and id(self._settings_conn) == token:
            log.warning("lost the bus connection to com.victronenergy.settings; writes are kept")
            self._drop_settings()

    def _write_settings(self, batch: Batch) -> bool:
        """WriteQueue's writer (GLib thread): False keeps the batch for a later try."""
        try:
            return self._settings_store().write(batch)
        except SettingsUnavailable as exc:
            log.info("settings not reachable (%s); %d writes kept for later", exc, len(batch))
            return False
        except dbus.exceptions.DBusException as exc:
            if not _transient(exc):
                raise
            log.info("settings not reachable (%s); writes kept for later", exc.get_dbus_name())
            self._drop_settings()
            return False

    def _read_state(self, unique_id: str) -> str | None:
        try:
            return self._settings_store().read_state(unique_id)
        except SettingsUnavailable as exc:
            log.warning("cannot read the saved control state (%s)", exc)
        except dbus.exceptions.DBusException as exc:
            log.warning("cannot read the saved control state: %s", exc.get_dbus_message())
            if _transient(exc):
                self._drop_settings()
        return None

    def _create(self, entry: Entry, update: BatteryUpdate) -> None:
        battery = entry.battery
        again = entry.face is not None
        try:
            service, face, values = self._build(entry, update)
        except Exception as exc:
            # The first failure of a streak is worth a line; the back-off retries are not.
            level = logging.DEBUG if entry.failures else logging.WARNING if again else logging.ERROR
            log.log(
                level,
                "cannot %s %s on D-Bus (retrying in %.0f s): %s",
                "re-create" if again else "publish",
                battery.name,
                entry.backoff,
                exc,
            )
            self._to_loop(self._created, entry, None, None, {}, update.t + entry.backoff)
            return
        log.info(
            "%s %s as %s (device instance %d)",
            battery.name,
            "published again" if again else "published",
            service.name,
            face.device_instance,
        )
        self._to_loop(self._created, entry, service, face, values, 0.0)

    def _new_face(self, entry: Entry, update: BatteryUpdate) -> tuple[Face, str]:
        """Identity, instance and name of a battery's first service."""
        battery = entry.battery
        ident = battery.identity
        unique_id = ident.unique_id
        stored = self._settings_store().allocate(unique_id, self.options.device_instance_base)
        if stored.refresh_last_seen:
            self.settings_queue.queue(unique_id, LAST_SEEN, dbus.Int32(int(update.t)))
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
        element = service_element(battery)
        name = f"{self.options.service_prefix}.{element}"
        n = 2
        while name in self._names:  # two batteries on one port without addresses
            name = f"{self.options.service_prefix}.{element}_{n}"
            n += 1
        entry.unique_id = unique_id
        return face, name

    def _build(
        self, entry: Entry, update: BatteryUpdate
    ) -> tuple[BusItemService, Face, dict[str, Value]]:
        # Re-creating (the bus connection dropped): the same face, hence the same name, device
        # instance, paths that appeared since, custom name and switches. Safe to read here: the
        # asyncio side leaves an entry alone until it is READY again.
        if entry.face is not None:
            face, name = entry.face, entry.name
        else:
            face, name = self._new_face(entry, update)
        values = render(update, face)
        values[jsondata.PATH] = entry.sent.get(jsondata.PATH)  # invalid until enabled and built
        conn = connect(self.options)  # private: one per service (object paths are per connection)
        service = BusItemService(
            conn, name, lambda path, value, reply: self._on_write(entry, path, value, reply)
        )
        try:
            service.add(values)
            service.register()
            ref = weakref.ref(service)  # the connection must not keep its service alive
            service.on_disconnect(lambda: self._service_lost(entry, ref()))
        except Exception:
            service.close()
            raise
        self._names.add(name)
        entry.name = name
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
            entry.failures += 1
            entry.backoff = min(entry.backoff * 2, RETRY_MAX)
            return
        entry.service, entry.face, entry.sent = service, face, values
        entry.render_cache = RenderCache()  # the next cycle compares every group with ``values``
        entry.failures, entry.backoff = 0, RETRY_FIRST
        entry.json_dirty, entry.json_due = self.options.publish_json_data, 0.0
        entry.phase = Phase.READY

    def _service_lost(self, entry: Entry, service: BusItemService | None) -> None:
        """GLib thread: the service's connection dropped (the bus daemon went away)."""
        if service is None or not service.alive:
            return  # closed by us
        log.warning(
            "%s: the D-Bus connection of %s dropped; re-creating the service",
            entry.battery.name,
            service.name,
        )
        service.close()
        self._to_loop(self._lost, entry, service)

    def _lost(self, entry: Entry, service: BusItemService) -> None:
        if entry.service is not service:
            return
        entry.service = None
        entry.phase, entry.retry_at = Phase.WAITING, 0.0
        entry.recreations += 1

    def _close_all(self) -> None:
        for entry in self.entries.values():
            if entry.service is not None:
                entry.service.close()
                self._names.discard(entry.service.name)
                entry.service = None
            entry.phase = Phase.WAITING
        for queue in (self.settings_queue, self.state_queue):
            if not queue.flush():
                queue.cancel()
                log.warning("settings not reachable at stop: %s not written", queue.name)
        self._drop_settings()
        self._settings = None
        self._settings_kind = ""

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
        if path == P.CUSTOM_NAME:
            self.settings_queue.queue(entry.unique_id, CUSTOM_NAME, str(write.value))
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
