"""Device instance and custom name that survive reboots (GLib thread only).

On Venus OS they live in ``com.victronenergy.settings`` under
``/Settings/Devices/bmshost_<unique id>/`` (spec §3.7/§3.8): the instance comes from the special
``ClassAndVrmInstance`` setting, which localsettings keeps unique per device class. One
``AddSettings`` call creates the group or returns the stored values. Without a settings service
(a plain Linux box) the same data goes to a JSON file in the host's state directory.

Writes are coalesced: a change starts a timer and everything queued until it fires goes out at
once, so a user typing a name, or a daily LastSeen, does not turn into a flash write per event.
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


@attrs.define
class Stored:
    device_instance: int
    custom_name: str = ""


def group_key(unique_id: str) -> str:
    """A settings element name: letters, digits and underscores, not starting with '_'."""
    clean = "".join(c if c.isalnum() else "_" for c in unique_id)
    return "bmshost_" + clean.strip("_")


def parse_instance(text: str) -> int | None:
    role, _, number = str(text).partition(":")
    if role != DEVICE_CLASS or not number.isdigit():
        return None
    return int(number)


class _Coalescing:
    """Queue (unique_id, key) → value and write them together after ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.pending: dict[tuple[str, str], Any] = {}
        self._timer: int | None = None
        self.flushes = 0  # how many write batches went out (tests, docs)

    def queue(self, unique_id: str, key: str, value: Any) -> None:
        self.pending[(unique_id, key)] = value
        if self._timer is None:
            self._timer = GLib.timeout_add(max(1, int(self.delay * 1000)), self._fire)

    def _fire(self) -> bool:
        self._timer = None
        self.flush()
        return False

    def flush(self) -> None:
        if self._timer is not None:
            GLib.source_remove(self._timer)
            self._timer = None
        if not self.pending:
            return
        batch, self.pending = self.pending, {}
        self.flushes += 1
        try:
            self._write(batch)
        except Exception:
            log.exception("could not persist settings %s", sorted(k for _, k in batch))

    def _write(self, batch: dict[tuple[str, str], Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.flush()


class LocalSettings(_Coalescing):
    """The Venus OS settings service."""

    def __init__(
        self,
        connection: dbus.bus.BusConnection,
        delay: float,
        wall: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(delay)
        self.connection = connection
        self.wall = wall

    @staticmethod
    def present(connection: dbus.bus.BusConnection) -> bool:
        return bool(connection.name_has_owner(SETTINGS_SERVICE))

    def allocate(self, unique_id: str, first_instance: int) -> Stored:
        key = group_key(unique_id)
        items = [
            {"path": f"{key}/ClassAndVrmInstance", "default": f"{DEVICE_CLASS}:{first_instance}"},
            {"path": f"{key}/CustomName", "default": ""},
            {"path": f"{key}/UniqueIdentifier", "default": unique_id},
            {"path": f"{key}/LastSeen", "default": dbus.Int32(int(self.wall()))},
        ]
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
        instance = parse_instance(values.get("ClassAndVrmInstance", ""))
        if instance is None:
            raise RuntimeError(f"settings returned no usable ClassAndVrmInstance for {key}")
        # LastSeen already existed: refresh it (coalesced with any other write).
        if int(values.get("LastSeen", 0)) < int(self.wall()) - 3600:
            self.queue(unique_id, "LastSeen", dbus.Int32(int(self.wall())))
        return Stored(device_instance=instance, custom_name=str(values.get("CustomName", "")))

    def set_custom_name(self, unique_id: str, name: str) -> None:
        self.queue(unique_id, "CustomName", name)

    def _write(self, batch: dict[tuple[str, str], Any]) -> None:
        for (unique_id, name), value in batch.items():
            path = f"{DEVICES}/{group_key(unique_id)}/{name}"
            item = self.connection.get_object(SETTINGS_SERVICE, path, introspect=False)
            code = item.SetValue(value, dbus_interface=BUSITEM_IFACE, timeout=CALL_TIMEOUT)
            if int(code) != 0:
                log.warning("settings refused %s = %r (code %s)", path, value, code)


class FileSettings(_Coalescing):
    """Instances and names in ``<state_dir>/venus-devices.json`` (written atomically), or in
    memory when there is no state directory."""

    def __init__(self, path: Path | None, delay: float) -> None:
        super().__init__(delay)
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

    def set_custom_name(self, unique_id: str, name: str) -> None:
        self.queue(unique_id, "custom_name", name)

    def _write(self, batch: dict[tuple[str, str], Any]) -> None:
        for (unique_id, key), value in batch.items():
            self.data.setdefault(unique_id, {})[key] = value
        self._save()

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
