"""The GLib main loop that serves dbus-python, in its own thread next to the asyncio loop.

dbus-python dispatches method calls and signals only from a GLib main loop (that is how Venus OS
runs every D-Bus service). The host is asyncio, so one daemon thread runs the default GLib main
context for the whole process; every dbus-python object is created and used on that thread.
Work crosses over with ``call`` (fire and forget, thread-safe ``GLib.idle_add``) and ``run``
(awaitable from asyncio). Calls back into asyncio use ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import dbus.mainloop.glib
from gi.repository import GLib

log = logging.getLogger("bmshost.venus")
T = TypeVar("T")

_lock = threading.Lock()
_thread: threading.Thread | None = None


def ensure_running() -> None:
    """Start the GLib thread once per process (idempotent, thread-safe)."""
    global _thread
    with _lock:
        if _thread is not None and _thread.is_alive():
            return
        dbus.mainloop.glib.threads_init()
        dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
        loop = GLib.MainLoop()
        _thread = threading.Thread(target=loop.run, name="bmshost-venus-glib", daemon=True)
        _thread.start()


def on_glib_thread() -> bool:
    return threading.current_thread() is _thread


def call(fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(*args)`` on the GLib thread soon; exceptions are logged, never lost silently."""

    def once() -> bool:
        try:
            fn(*args)
        except Exception:
            log.exception("D-Bus work %s failed", getattr(fn, "__name__", fn))
        return False  # a GLib source that returns False runs once

    GLib.idle_add(once)


def run(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Run ``fn(*args)`` on the GLib thread; the result (or exception) arrives as a future."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def once() -> bool:
        try:
            result = fn(*args)
        except BaseException as exc:  # handed to the awaiting side
            loop.call_soon_threadsafe(settle, False, exc)
        else:
            loop.call_soon_threadsafe(settle, True, result)
        return False

    GLib.idle_add(once)
    return future
