"""What survives reboots: device instance, custom name and the control state (GLib thread only).

On Venus OS they live in ``com.victronenergy.settings`` under
``/Settings/Devices/bmshost_<unique id>/`` (spec §3.7/§3.8): the instance comes from the special
``ClassAndVrmInstance`` setting, which localsettings keeps unique per device class. One
``AddSettings`` call creates the group or returns the stored values. ``ControlState`` holds the
host's control-state document (float state, calculated SoC, history) as one silent string.
Without a settings service (a plain Linux box) instances and names go to a JSON file in the
host's state directory; the control state then lives only in the host's own state file.

Writes are coalesced by ``WriteQueue``: a change starts a timer and everything queued until it
fires goes out at once, so a user typing a name, a daily LastSeen or the control state does not
turn into a flash write per event. The queues belong to the sink, not to a store, so writes
queued while the bus is down survive the reconnect.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import dbus
import dbus.bus
from gi.repository import GLib

log = logging.getLogger("bmshost.venus")

SETTINGS_SERVICE = "com.victronenergy.settings"
SETTINGS_IFACE = "com.victronenergy.Settings"
BUSITEM_IFACE = "com.victronenergy.BusItem"
DEVICES = "/Settings/Devices"
CALL_TIMEOUT = 10.0  # s; localsettings answers in ms, a hung one must not hang the host
DEVICE_CLASS = "battery"
CUSTOM_NAME, LAST_SEEN, CONTROL_STATE = "CustomName", "LastSeen", "ControlState"
# A control-state document is a few stage sections with fixed keys (about 1 KB with history);
# anything far larger is not one and is not put into settings.xml.
MAX_STATE_CHARS = 16384
RETRY_WRITE_AFTER = 30.0  # s; a batch that could not be written (bus down) is tried again

Batch = dict[tuple[str, str], Any]  # (unique id, setting name) -> value


@attrs.define
class Stored:
    device_instance: int
    custom_name: str = ""
    refresh_last_seen: bool = False  # LastSeen is more than an hour old: queue a new one


class SettingsUnavailable(Exception):
    """The settings service is not (or no longer) reachable; try again later."""


def group_key(unique_id: str) -> str:
    """A settings element name: letters, digits and underscores, not starting with '_'."""
    clean = "".join(c if c.isalnum() else "_" for c in unique_id)
    return "bmshost_" + clean.strip("_")


def parse_instance(text: str) -> int | None:
    role, _, number = str(text).partition(":")
    if role != DEVICE_CLASS or not number.isdigit():
        return None
    return int(number)


class WriteQueue:
    """Queue (unique_id, key) → value and hand them to ``write`` together after ``delay`` s.

    ``write(batch)`` returns False when the store is unreachable: the batch stays queued (newer
    values queued meanwhile win) and is tried again after ``RETRY_WRITE_AFTER`` seconds.
    """

    def __init__(self, delay: float, write: Callable[[Batch], bool], name: str) -> None:
        self.delay = delay
        self.write = write
        self.name = name
        self.pending: Batch = {}
        self._timer: int | None = None
        self._due = 0.0  # monotonic time the armed timer fires
        self.flushes = 0  # batches handed to the store (tests, docs)

    def queue(self, unique_id: str, key: str, value: Any) -> None:
        self.pending[(unique_id, key)] = value
        self._arm(self.delay)

    def _arm(self, delay: float) -> None:
        due = time.monotonic() + delay
        if self._timer is not None:
            if self._due <= due:
                return  # already due sooner: this write joins that batch
            GLib.source_remove(self._timer)  # a retry wait is cut short by a new write
        self._due = due
        self._timer = GLib.timeout_add(max(1, int(delay * 1000)), self._fire)

    def _fire(self) -> bool:
        self._timer = None
        self.flush()
        return False

    def flush(self) -> bool:
        """Write what is pending now. False if it stays pending (store unreachable)."""
        if self._timer is not None:
            GLib.source_remove(self._timer)
            self._timer = None
        if not self.pending:
            return True
        batch, self.pending = self.pending, {}
        try:
            ok = self.write(batch)
        except Exception:
            log.exception("could not persist %s %s", self.name, sorted(k for _, k in batch))
            ok = True  # a bug or a refusal: retrying the same batch would fail the same way
        if not ok:
            batch.update(self.pending)
            self.pending = batch
            self._arm(RETRY_WRITE_AFTER)
            return False
        self.flushes += 1
        return True

    def cancel(self) -> None:
        if self._timer is not None:
            GLib.source_remove(self._timer)
            self._timer = None


class LocalSettings:
    """The Venus OS settings service on one bus connection."""

    def __init__(
        self, connection: dbus.bus.BusConnection, wall: Callable[[], float] = time.time
    ) -> None:
        self.connection = connection
        self.wall = wall
        self._created: set[tuple[str, str]] = set()  # settings known to exist (no AddSettings)

    @staticmethod
    def present(connection: dbus.bus.BusConnection) -> bool:
        return bool(connection.name_has_owner(SETTINGS_SERVICE))

    def _add(self, key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        """AddSettings below ``/Settings/Devices``; the stored values of the accepted items."""
        devices = self.connection.get_object(SETTINGS_SERVICE, DEVICES, introspect=False)
        answer = devices.AddSettings(
            dbus.Array(items, signature="a{sv}"),
            dbus_interface=SETTINGS_IFACE,
            timeout=CALL_TIMEOUT,
        )
        values: dict[str, Any] = {}
        for item in answer:
            name = str(item.get("path", "")).rsplit("/", 1)[-1]
            if int(item.get("error", 0)) != 0 or "value" not in item:
                log.warning("settings: %s/%s refused (error %s)", key, name, item.get("error"))
                continue
            values[name] = item["value"]
            self._created.add((key, name))
        return values

    def allocate(self, unique_id: str, first_instance: int) -> Stored:
        key = group_key(unique_id)
        items = [
            {"path": f"{key}/ClassAndVrmInstance", "default": f"{DEVICE_CLASS}:{first_instance}"},
            {"path": f"{key}/{CUSTOM_NAME}", "default": ""},
            {"path": f"{key}/UniqueIdentifier", "default": unique_id},
            {"path": f"{key}/{LAST_SEEN}", "default": dbus.Int32(int(self.wall()))},
        ]
        values = self._add(key, items)
        instance = parse_instance(values.get("ClassAndVrmInstance", ""))
        if instance is None:
            raise RuntimeError(f"settings returned no usable ClassAndVrmInstance for {key}")
        return Stored(
            device_instance=instance,
            custom_name=str(values.get(CUSTOM_NAME, "")),
            refresh_last_seen=int(values.get(LAST_SEEN, 0)) < int(self.wall()) - 3600,
        )

    def read_state(self, unique_id: str) -> str | None:
        """The stored control-state document ("" when none was stored yet); None, with a
        warning, when the setting holds something that cannot be one."""
        key = group_key(unique_id)
        values = self._add(key, [{"path": f"{key}/{CONTROL_STATE}", "default": "", "silent": 1}])
        if CONTROL_STATE not in values:
            return None  # refused (e.g. created as a number by someone else): warned above
        value = values[CONTROL_STATE]
        if not isinstance(value, str):
            log.warning("settings: %s/%s holds a %s, not a state document; ignored",
                        key, CONTROL_STATE, type(value).__name__)
            return None
        if len(value) > MAX_STATE_CHARS:
            log.warning("settings: %s/%s holds %d characters, far more than a state document; "
                        "ignored", key, CONTROL_STATE, len(value))
            return None
        return str(value)

    def write(self, batch: Batch) -> bool:
        for (unique_id, name), value in batch.items():
            key = group_key(unique_id)
            path = f"{DEVICES}/{key}/{name}"
            if (key, name) not in self._created:
                # Not seen this run (created by an earlier one, or a settings service that lost
                # it): AddSettings creates it, or confirms it exists, without changing a value.
                silent = {"silent": 1} if name == CONTROL_STATE else {}
                self._add(key, [{"path": f"{key}/{name}", "default": _default_of(value), **silent}])
            item = self.connection.get_object(SETTINGS_SERVICE, path, introspect=False)
            code = item.SetValue(value, dbus_interface=BUSITEM_IFACE, timeout=CALL_TIMEOUT)
            if int(code) != 0:
                log.warning("settings refused %s (code %s)", path, code)
        return True


def _default_of(value: Any) -> Any:
    """A default of the same type as ``value``: localsettings infers the setting's type from it."""
    if isinstance(value, str):
        return ""
    if isinstance(value, float):
        return 0.0
    return dbus.Int32(0)


class FileSettings:
    """Instances and names in ``<state_dir>/venus-devices.json`` (written atomically), or in
    memory when there is no state directory. The control state is not kept here: the host's
    own state file already holds it in the same directory."""

    _KEYS = {CUSTOM_NAME: "custom_name"}

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, dict[str, Any]] = {}
        if path is not None and path.exists():
            try:
                loaded = json.loads(path.read_text())
                if isinstance(loaded, dict):
                    self.data = {k: v for k, v in loaded.items() if isinstance(v, dict)}
            except (OSError, ValueError) as exc:
                log.warning("ignoring unreadable %s: %s", path, exc)

    def allocate(self, unique_id: str, first_instance: int) -> Stored:
        entry = self.data.get(unique_id)
        if entry is None or not isinstance(entry.get("device_instance"), int):
            used = {e.get("device_instance") for e in self.data.values()}
            n = first_instance
            while n in used:
                n += 1
            entry = {"device_instance": n, "custom_name": ""}
            self.data[unique_id] = entry
            self._save()
        return Stored(
            device_instance=entry["device_instance"], custom_name=str(entry.get("custom_name", ""))
        )

    def read_state(self, unique_id: str) -> str | None:
        return None

    def write(self, batch: Batch) -> bool:
        changed = False
        for (unique_id, name), value in batch.items():
            key = self._KEYS.get(name)
            if key is not None:
                self.data.setdefault(unique_id, {})[key] = value
                changed = True
        if changed:
            self._save()
        return True

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".venus-devices.")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.data, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
