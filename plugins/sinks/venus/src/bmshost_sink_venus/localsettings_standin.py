"""A small stand-in for Venus OS ``localsettings`` (com.victronenergy.settings), for tests.

Implements the documented subset (spec §3.7): AddSetting, AddSettings, RemoveSettings on group
objects (interface com.victronenergy.Settings), GetValue/GetText/SetValue on settings and groups,
GetItems on ``/`` (interface com.victronenergy.BusItem), PropertiesChanged on changes, and the
special ``ClassAndVrmInstance`` setting whose instance is bumped to the next free number of its
class. Run as ``python localsettings_standin.py <bus address>``; it prints "ready" when its name
is claimed. ``com.victronenergy.SettingsTest.Writes`` on ``/`` counts accepted SetValue calls.
"""

from __future__ import annotations

import sys
from typing import Any

import dbus
import dbus.bus
import dbus.lowlevel
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

NAME = "com.victronenergy.settings"
SETTINGS = "com.victronenergy.Settings"
BUSITEM = "com.victronenergy.BusItem"
INVALID = dbus.Array([], signature="i")


def _type_of(value: Any) -> str | None:
    if isinstance(value, dbus.Boolean):
        return None
    if isinstance(value, dbus.Double | float):
        return "f"
    if isinstance(value, int):
        return "i"
    if isinstance(value, str):
        return "s"
    return None


class Settings(dbus.service.FallbackObject):  # type: ignore[misc]
    def __init__(self, conn: dbus.bus.BusConnection) -> None:
        super().__init__(conn, "/")
        self.conn = conn
        self.items: dict[str, dict[str, Any]] = {}  # absolute path -> {value, type, default}
        self.writes = 0

    # -- helpers -------------------------------------------------------------------------------

    def _bump_instance(self, path: str, value: str) -> str:
        cls, _, num = value.partition(":")
        number = int(num) if num.isdigit() else 0
        used = {
            int(item["value"].partition(":")[2])
            for p, item in self.items.items()
            if p != path
            and p.endswith("/ClassAndVrmInstance")
            and item["value"].partition(":")[0] == cls
            and item["value"].partition(":")[2].isdigit()
        }
        while number in used:
            number += 1
        return f"{cls}:{number}"

    def _add(self, base: str, rel: str, default: Any, type_: str | None) -> tuple[int, Any]:
        path = (base.rstrip("/") + "/" + rel.strip("/")) if rel else base
        if not path.startswith("/Settings/"):
            return -9, None
        if any(part.startswith("_") or not part for part in path.split("/")[1:]):
            return -2, None
        if type_ not in ("i", "f", "s"):
            return -3, None
        if any(p.startswith(path + "/") for p in self.items):
            return -8, None
        if path in self.items:
            if self.items[path]["type"] != type_:
                return -5, self.items[path]["value"]
            return 0, self.items[path]["value"]
        value = {"i": int, "f": float, "s": str}[type_](default)
        if path.endswith("/ClassAndVrmInstance"):
            value = self._bump_instance(path, value)
        self.items[path] = {"value": value, "type": type_, "default": default}
        return 0, value

    def _wire(self, item: dict[str, Any]) -> Any:
        value = item["value"]
        return dbus.Double(value) if item["type"] == "f" else value

    def _below(self, path: str) -> dict[str, dict[str, Any]]:
        prefix = "/" if path == "/" else path + "/"
        return {p[len(prefix) :]: i for p, i in self.items.items() if p.startswith(prefix)}

    # -- com.victronenergy.Settings ------------------------------------------------------------

    @dbus.service.method(
        SETTINGS, in_signature="ssvsvv", out_signature="i", rel_path_keyword="path"
    )  # type: ignore[misc,untyped-decorator]
    def AddSetting(
        self, group: str, name: str, default: Any, type_: str, lo: Any, hi: Any, path: str
    ) -> int:
        base = (path.rstrip("/") + "/" + group.strip("/")).replace("//", "/")
        return self._add(base, name, default, str(type_))[0]

    @dbus.service.method(
        SETTINGS, in_signature="aa{sv}", out_signature="aa{sv}", rel_path_keyword="path"
    )  # type: ignore[misc,untyped-decorator]
    def AddSettings(self, items: Any, path: str) -> Any:
        out = []
        for item in items:
            rel = str(item.get("path", ""))
            default = item.get("default")
            code, _ = self._add(path, rel, default, _type_of(default))
            entry: dict[str, Any] = {"path": rel, "error": dbus.Int32(code)}
            if code == 0:
                entry["value"] = self._wire(self.items[(path.rstrip("/") + "/" + rel.strip("/"))])
            out.append(dbus.Dictionary(entry, signature="sv"))
        return dbus.Array(out, signature="a{sv}")

    @dbus.service.method(SETTINGS, in_signature="as", out_signature="ai", rel_path_keyword="path")  # type: ignore[misc,untyped-decorator]
    def RemoveSettings(self, rels: Any, path: str) -> Any:
        out = []
        for rel in rels:
            full = path.rstrip("/") + "/" + str(rel).strip("/")
            out.append(0 if self.items.pop(full, None) is not None else -1)
        return dbus.Array(out, signature="i")

    # -- com.victronenergy.BusItem -------------------------------------------------------------

    @dbus.service.method(BUSITEM, out_signature="v", rel_path_keyword="path")  # type: ignore[misc,untyped-decorator]
    def GetValue(self, path: str) -> Any:
        if path in self.items:
            return self._wire(self.items[path])
        below = self._below(path)
        if not below:
            raise dbus.exceptions.DBusException(
                "no such setting", name="org.freedesktop.DBus.Error.UnknownObject"
            )
        return dbus.Dictionary({k: self._wire(i) for k, i in below.items()}, signature="sv")

    @dbus.service.method(BUSITEM, out_signature="v", rel_path_keyword="path")  # type: ignore[misc,untyped-decorator]
    def GetText(self, path: str) -> Any:
        if path in self.items:
            return str(self.items[path]["value"])
        return dbus.Dictionary(
            {k: str(i["value"]) for k, i in self._below(path).items()}, signature="ss"
        )

    @dbus.service.method(BUSITEM, in_signature="v", out_signature="i", rel_path_keyword="path")  # type: ignore[misc,untyped-decorator]
    def SetValue(self, value: Any, path: str) -> int:
        item = self.items.get(path)
        if item is None:
            return -1
        try:
            new = {"i": int, "f": float, "s": str}[item["type"]](value)
        except (TypeError, ValueError):
            return -1
        if path.endswith("/ClassAndVrmInstance"):
            new = self._bump_instance(path, str(new))
        self.writes += 1
        if new != item["value"]:
            item["value"] = new
            msg = dbus.lowlevel.SignalMessage(path, BUSITEM, "PropertiesChanged")
            msg.append({"Value": self._wire(item), "Text": str(new)}, signature="a{sv}")
            self.conn.send_message(msg)
        return 0

    @dbus.service.method(BUSITEM, out_signature="a{sa{sv}}", rel_path_keyword="path")  # type: ignore[misc,untyped-decorator]
    def GetItems(self, path: str) -> Any:
        return {p: {"Value": self._wire(i), "Text": str(i["value"])} for p, i in self.items.items()}

    @dbus.service.method("com.victronenergy.SettingsTest", out_signature="i")  # type: ignore[misc,untyped-decorator]
    def Writes(self) -> int:
        return self.writes


def main() -> None:
    DBusGMainLoop(set_as_default=True)
    conn = dbus.bus.BusConnection(sys.argv[1])
    service = Settings(conn)
    conn.request_name(NAME, dbus.bus.NAME_FLAG_DO_NOT_QUEUE)
    print("ready", flush=True)
    GLib.MainLoop().run()
    service.remove_from_connection()


if __name__ == "__main__":
    main()
