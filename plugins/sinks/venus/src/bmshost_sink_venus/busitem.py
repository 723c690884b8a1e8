"""One ``com.victronenergy.BusItem`` service on its own bus connection (GLib thread only).

A single fallback object registered at ``/`` answers for every leaf path and every tree node:
the path tree is data (a dict), not ~150 exported Python objects, so a cycle costs one dict
walk and at most one signal. Introspection is generated from the tree so tools such as
dbus-spy and ``dbus`` still see one node per path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from xml.sax.saxutils import quoteattr

import dbus
import dbus.bus
import dbus.lowlevel
import dbus.service

from .encoding import INVALID, INVALID_TEXT, Formatter, Value, same, text_of, unwire, wire
from .paths import formatter_for

log = logging.getLogger("bmshost.venus")

IFACE = "com.victronenergy.BusItem"
UNKNOWN_OBJECT = "org.freedesktop.DBus.Error.UnknownObject"

# on_write(path, value, reply) is called for SetValue; reply(code) answers the caller later.
WriteHandler = Callable[[str, Value, Callable[[int], None]], None]


class UnknownPath(dbus.exceptions.DBusException):  # type: ignore[misc]
    _dbus_error_name = UNKNOWN_OBJECT


def _parents(path: str) -> Iterable[str]:
    parts = path.split("/")[1:-1]
    for i in range(len(parts)):
        yield "/" + "/".join(parts[: i + 1])


class BusItemService(dbus.service.FallbackObject):  # type: ignore[misc,untyped-decorator]
    def __init__(
        self, connection: dbus.bus.BusConnection, name: str, on_write: WriteHandler
    ) -> None:
        super().__init__(connection, "/")
        self.bus = connection
        self.name = name
        self.on_write = on_write
        self.values: dict[str, Value] = {}
        self.texts: dict[str, str] = {}
        self.formats: dict[str, Formatter | None] = {}
        self.nodes: set[str] = {"/"}
        self.registered = False
        self.alive = True  # False once closed or its connection dropped (nothing more is sent)
        self._disconnect_match: Any = None
        self.signals_sent = 0  # for the benchmark and tests: messages this service emitted

    # -- building and updating (called by the sink on the GLib thread) -------------------------

    def _store(self, path: str, value: Value) -> str:
        if path not in self.values:
            self.nodes.update(_parents(path))
            self.formats[path] = formatter_for(path)  # looked up once per path, not per change
        self.values[path] = value
        text = self.texts[path] = text_of(path, value, self.formats)
        return text

    def add(self, values: Mapping[str, Value]) -> None:
        """Create paths before the name is claimed (no signals)."""
        for path, value in values.items():
            self._store(path, value)

    def register(self) -> None:
        """Claim the bus name last, so the first GetItems of a consumer sees every path."""
        result = self.bus.request_name(self.name, dbus.bus.NAME_FLAG_DO_NOT_QUEUE)
        if result not in (
            dbus.bus.REQUEST_NAME_REPLY_PRIMARY_OWNER,
            dbus.bus.REQUEST_NAME_REPLY_ALREADY_OWNER,
        ):
            raise RuntimeError(f"D-Bus name {self.name} is already owned by another process")
        self.registered = True

    def update(self, changes: Mapping[str, Value]) -> int:
        """Store the changed values and send them as one ItemsChanged; returns how many."""
        # Called every cycle with the cycle's changes: the per-path work is inlined here
        # (_store, text_of, wire), which is a fifth of the whole publish on a busy battery.
        batch: dict[str, dict[str, Any]] = {}
        values, texts, formats = self.values, self.texts, self.formats
        for path, value in changes.items():
            old = values.get(path, _MISSING)
            if old is _MISSING:
                batch[path] = {"Value": wire(value), "Text": self._store(path, value)}
                continue
            if type(old) is type(value) and old == value:
                continue  # (encoding.same: a SetValue may have stored it already)
            values[path] = value
            if value is None:
                text = INVALID_TEXT
                wired: Any = INVALID
            else:
                fmt = formats[path]
                text = text_of(path, value, formats) if fmt is None else _formatted(fmt, value)
                wired = wire(value) if type(value) is int else value
            texts[path] = text
            batch[path] = {"Value": wired, "Text": text}
        if batch and self.registered and self.alive:
            msg = dbus.lowlevel.SignalMessage("/", IFACE, "ItemsChanged")
            msg.append(batch, signature="a{sa{sv}}")
            self.bus.send_message(msg)
            self.signals_sent += 1
        return len(batch)

    def set_one(self, path: str, value: Value) -> None:
        """A single change (an accepted SetValue): PropertiesChanged on that item's path."""
        old = self.values.get(path, _MISSING)
        if old is not _MISSING and same(old, value):  # type: ignore[arg-type]
            return
        self._store(path, value)
        if self.registered and self.alive:
            msg = dbus.lowlevel.SignalMessage(path, IFACE, "PropertiesChanged")
            msg.append({"Value": wire(value), "Text": self.texts[path]}, signature="a{sv}")
            self.bus.send_message(msg)
            self.signals_sent += 1

    def on_disconnect(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (GLib thread) when the bus connection drops (the daemon went away)."""
        self._disconnect_match = watch_disconnect(self.bus, callback)

    def close(self) -> None:
        """Release the name and the connection; safe on a connection that already dropped."""
        was_alive, self.alive = self.alive, False
        if self.registered and was_alive:
            try:
                self.bus.release_name(self.name)
            except dbus.exceptions.DBusException:
                log.debug("releasing %s failed", self.name, exc_info=True)
        self.registered = False
        unwatch(self._disconnect_match)  # also breaks the connection → callback → service cycle
        self._disconnect_match = None
        try:
            self.remove_from_connection()
        except (KeyError, LookupError):  # already removed
            pass
        self.bus.close()

    # -- the BusItem interface -----------------------------------------------------------------

    def _subtree(self, node: str, texts: bool) -> dict[str, Any]:
        prefix = "/" if node == "/" else node + "/"
        source: Mapping[str, Any] = self.texts if texts else self.values
        return {
            path[len(prefix) :]: (value if texts else wire(value))
            for path, value in source.items()
            if path.startswith(prefix)
        }

    def _check(self, path: str) -> None:
        if path not in self.values and path not in self.nodes:
            raise UnknownPath(f"no item {path} on {self.name}")

    @dbus.service.method(IFACE, out_signature="v", rel_path_keyword="path")  # type: ignore[misc,untyped-decorator]
    def GetValue(self, path: str) -> Any:
        self._check(path)
        if path in self.values:
            return wire(self.values[path])
        return dbus.Dictionary(self._subtree(path, texts=False), signature="sv")

    @dbus.service.method(IFACE, out_signature=None, rel_path_keyword="path")  # type: ignore[misc,untyped-decorator]
    def GetText(self, path: str) -> Any:
        self._check(path)
        if path in self.values:
            return dbus.String(self.texts[path])
        # Tree nodes answer a variant holding a dict of texts (as velib does).
        return dbus.Dictionary(self._subtree(path, texts=True), signature="ss", variant_level=1)

    @dbus.service.method(IFACE, out_signature="a{sa{sv}}", rel_path_keyword="path")  # type: ignore[misc,untyped-decorator]
    def GetItems(self, path: str) -> Any:
        if path != "/":
            raise UnknownPath(f"GetItems is only available on / of {self.name}")
        return {p: {"Value": wire(v), "Text": self.texts[p]} for p, v in self.values.items()}

    @dbus.service.method(IFACE, in_signature="si", out_signature="s", rel_path_keyword="path")  # type: ignore[misc,untyped-decorator]
    def GetDescription(self, language: str, length: int, path: str) -> str:
        self._check(path)
        return "No description given"

    @dbus.service.method(  # type: ignore[misc,untyped-decorator]
        IFACE,
        in_signature="v",
        out_signature="i",
        rel_path_keyword="path",
        async_callbacks=("reply", "error"),
    )
    def SetValue(
        self,
        value: Any,
        path: str,
        reply: Callable[[int], None],
        error: Callable[[Exception], None],
    ) -> None:
        if path not in self.values:
            error(UnknownPath(f"no item {path} on {self.name}"))
            return
        try:
            plain = unwire(value)
        except TypeError:
            reply(1)  # a dict, struct or non-empty array can never be a battery setting
            return
        self.on_write(path, plain, reply)

    @dbus.service.method(  # type: ignore[misc,untyped-decorator]
        "org.freedesktop.DBus.Introspectable", out_signature="s", rel_path_keyword="path"
    )
    def Introspect(self, path: str) -> str:
        return _introspect(path, self.values, self.nodes)


_MISSING: Any = object()


def _formatted(fmt: Formatter, value: Value) -> str:
    try:
        return fmt(value)
    except (ValueError, TypeError):  # a text format must never break a signal
        return str(value)


LOCAL_IFACE = "org.freedesktop.DBus.Local"
LOCAL_PATH = "/org/freedesktop/DBus/Local"


def watch_disconnect(connection: dbus.bus.BusConnection, callback: Callable[[], None]) -> Any:
    """libdbus delivers a local ``Disconnected`` signal when the peer (the bus daemon) goes away;
    with exit-on-disconnect off that is the only notice the process gets. Returns the match, for
    ``unwatch`` when the connection is closed on purpose."""

    def fired(*_: Any) -> None:
        callback()

    return connection.add_signal_receiver(
        fired, signal_name="Disconnected", dbus_interface=LOCAL_IFACE, path=LOCAL_PATH
    )


def unwatch(match: Any) -> None:
    if match is None:
        return
    try:
        match.remove()
    except (dbus.exceptions.DBusException, KeyError, ValueError):  # the connection is gone
        log.debug("removing a signal match failed", exc_info=True)

_LEAF_XML = """  <interface name="com.victronenergy.BusItem">
    <method name="GetValue"><arg direction="out" type="v"/></method>
    <method name="GetText"><arg direction="out" type="s"/></method>
    <method name="SetValue"><arg direction="in" type="v"/><arg direction="out" type="i"/></method>
    <method name="GetDescription">
      <arg direction="in" type="s"/><arg direction="in" type="i"/><arg direction="out" type="s"/>
    </method>
    <signal name="PropertiesChanged"><arg type="a{sv}"/></signal>
  </interface>
"""
_NODE_XML = """  <interface name="com.victronenergy.BusItem">
    <method name="GetValue"><arg direction="out" type="v"/></method>
    <method name="GetText"><arg direction="out" type="v"/></method>
{root}  </interface>
"""
_ROOT_EXTRA = """    <method name="GetItems"><arg direction="out" type="a{sa{sv}}"/></method>
    <signal name="ItemsChanged"><arg type="a{sa{sv}}"/></signal>
"""
_HEAD = """<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node name={name}>
  <interface name="org.freedesktop.DBus.Introspectable">
    <method name="Introspect"><arg direction="out" type="s"/></method>
  </interface>
"""


def _introspect(path: str, values: Mapping[str, Value], nodes: set[str]) -> str:
    parts = [_HEAD.format(name=quoteattr(path))]
    if path in values:
        parts.append(_LEAF_XML)
    elif path in nodes:
        parts.append(_NODE_XML.format(root=_ROOT_EXTRA if path == "/" else ""))
    prefix = "/" if path == "/" else path + "/"
    children = sorted({p[len(prefix) :].split("/", 1)[0] for p in values if p.startswith(prefix)})
    parts.extend(f"  <node name={quoteattr(child)}/>\n" for child in children)
    parts.append("</node>\n")
    return "".join(parts)
