"""The GLib main loop that serves dbus-python, in its own thread next to the asyncio loop.

dbus-python dispatches method calls and signals only from a GLib main loop (that is how Venus OS
runs every D-Bus service). The host is asyncio, so one daemon thread runs the default GLib main
context for the whole process; every dbus-python object is created and used on that thread.
Work crosses over with ``call`` (fire and forget) and ``run`` (awaitable from asyncio). Calls
back into asyncio use ``loop.call_soon_threadsafe``.

The hand-over is one FIFO queue drained by a single GLib watch on a pipe: ``call`` appends and
writes one byte only when the queue was idle. ``GLib.idle_add`` per call would build a new GLib
source and an FFI closure every poll cycle, several times the cost of the append.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import dbus.mainloop.glib
from gi.repository import GLib

log = logging.getLogger("bmshost.venus")
T = TypeVar("T")

_lock = threading.Lock()
_thread: threading.Thread | None = None
_work: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
_wake_w = -1
_armed = False  # a wake-up byte is on its way (or the queue is being drained)


def _drain(fd: int, condition: Any) -> bool:
    global _armed
    try:
        os.read(fd, 4096)
    except BlockingIOError:
        pass
    # Cleared before draining: anything queued from now on is either drained below or writes a
    # new byte, so no work is ever left waiting.
    _armed = False
    while _work:
        fn, args = _work.popleft()
        try:
            fn(*args)
        except Exception:
            log.exception("D-Bus work %s failed", getattr(fn, "__name__", fn))
    return True  # keep the watch


def ensure_running() -> None:
    """Start the GLib thread once per process (idempotent, thread-safe)."""
    global _thread, _wake_w
    with _lock:
        if _thread is not None and _thread.is_alive():
            return
        dbus.mainloop.glib.threads_init()
        dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
        if _wake_w < 0:
            read, _wake_w = os.pipe()
            os.set_blocking(read, False)
            os.set_blocking(_wake_w, False)
            GLib.unix_fd_add_full(GLib.PRIORITY_DEFAULT, read, GLib.IOCondition.IN, _drain)
        loop = GLib.MainLoop()
        _thread = threading.Thread(target=loop.run, name="bmshost-venus-glib", daemon=True)
        _thread.start()


def on_glib_thread() -> bool:
    return threading.current_thread() is _thread


def call(fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(*args)`` on the GLib thread soon, in order; exceptions are logged, never lost
    silently."""
    global _armed
    if _wake_w < 0:
        ensure_running()
    _work.append((fn, args))
    if not _armed:
        _armed = True
        try:
            os.write(_wake_w, b"\0")
        except BlockingIOError:
            pass  # the pipe is full of wake-ups already


def run_sync(fn: Callable[..., T], *args: Any, timeout: float = 30.0) -> T:
    """Run ``fn(*args)`` on the GLib thread and wait for it, from any other thread (not the
    asyncio loop's, which must not block). For creating and closing connections whose main-loop
    sources the GLib thread serves: dbus-glib's watches must not be removed under its feet."""
    if on_glib_thread():
        return fn(*args)
    done = threading.Event()
    box: list[Any] = []

    def once() -> None:
        try:
            box.append((True, fn(*args)))
        except BaseException as exc:  # re-raised in the waiting thread
            box.append((False, exc))
        done.set()

    call(once)
    if not done.wait(timeout):
        raise TimeoutError(f"the GLib thread did not run {getattr(fn, '__name__', fn)} in time")
    ok, value = box[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


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

    def once() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:  # handed to the awaiting side
            loop.call_soon_threadsafe(settle, False, exc)
        else:
            loop.call_soon_threadsafe(settle, True, result)

    call(once)
    return future
