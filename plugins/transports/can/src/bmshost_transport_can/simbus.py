"""Serve a bmshost CAN ``Simulator`` on a python-can bus (tests, demos, benchmarks).

The simulator answers the frames it receives (``on_frame``) and broadcasts its periodic frames
(``broadcast``) every ``period`` seconds, like a BMS on a real bus. Use the ``virtual`` interface
in tests: it stays inside the process.

``fd_virtual_bus`` is python-can's virtual bus with a file descriptor that is readable while
frames wait and with the bus filters applied on the receive side's behalf, as a SocketCAN socket
does in the kernel: links on it take the SocketCAN receive path (the event loop watches the
descriptor, no reader thread) without a kernel CAN interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import time
from typing import Any, cast

from bmshost.driver import Simulator
from bmshost.link import CanFrame


class SimulatorOnBus:
    def __init__(
        self, simulator: Simulator, channel: str, interface: str = "virtual", period: float = 1.0
    ) -> None:
        self.simulator = simulator
        self.channel = channel
        self.interface = interface
        self.period = period
        self._bus: Any = None
        self._notifier: Any = None
        self._task: asyncio.Task[None] | None = None
        self._last = time.monotonic()
        self.sent = 0

    async def __aenter__(self) -> SimulatorOnBus:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        import can

        self._bus = can.Bus(interface=self.interface, channel=self.channel)
        self._notifier = can.Notifier(
            self._bus, [self._on_message], timeout=0.1, loop=asyncio.get_running_loop()
        )
        self._task = asyncio.ensure_future(self._broadcast_loop())

    def _advance(self) -> None:
        now = time.monotonic()
        self.simulator.tick(now - self._last)
        self._last = now

    def _send(self, frames: Any) -> None:
        import can

        for frame in frames:
            self._bus.send(
                can.Message(
                    arbitration_id=frame.arbitration_id,
                    data=frame.data,
                    is_extended_id=frame.is_extended_id,
                )
            )
            self.sent += 1

    def broadcast_now(self) -> None:
        """Send one broadcast round at once (benchmarks drive rounds themselves)."""
        self._advance()
        self._send(self.simulator.broadcast())

    def _on_message(self, msg: Any) -> None:
        if msg.is_error_frame or self.simulator.silent:
            return
        self._advance()
        self._send(
            self.simulator.on_frame(
                CanFrame(msg.arbitration_id, bytes(msg.data), bool(msg.is_extended_id))
            )
        )

    async def _broadcast_loop(self) -> None:
        while True:
            if not self.simulator.silent:
                self._advance()
                self._send(self.simulator.broadcast())
            await asyncio.sleep(self.period)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        if self._notifier is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._notifier.stop, 1.0)
        if self._bus is not None:
            self._bus.shutdown()


def fd_virtual_bus(channel: str, **kwargs: Any) -> Any:
    """A python-can virtual bus on ``channel`` with a SocketCAN-like file descriptor."""
    from can.interfaces.virtual import VirtualBus, channels_lock

    class Signalled(queue.SimpleQueue):  # type: ignore[type-arg]
        """The receive queue: each message put also puts one byte in the pipe."""

        def __init__(self, write_fd: int) -> None:
            self.write_fd = write_fd

        def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
            super().put(item)
            with contextlib.suppress(BlockingIOError):  # a full pipe is readable anyway
                os.write(self.write_fd, b"\0")

    class FdVirtualBus(VirtualBus):  # type: ignore[misc]  # python-can's classes are untyped here
        """Senders put messages in this handle's queue and a byte in a pipe; receiving takes
        both and skips what the filters refuse (the kernel's job on SocketCAN). ``fileno()`` is
        the pipe's read end."""

        def __init__(self, channel: str, **kw: Any) -> None:
            super().__init__(channel=channel, **kw)
            self._read_fd, self._write_fd = os.pipe()
            os.set_blocking(self._read_fd, False)
            os.set_blocking(self._write_fd, False)
            signalled = Signalled(self._write_fd)
            with channels_lock:  # swap the handle's queue in the channel's list of receivers
                receivers: list[Any] = self.channel
                index = next(i for i, q in enumerate(receivers) if q is self.queue)
                receivers[index] = signalled
                self.queue = cast(Any, signalled)  # python-can types it as a queue.Queue

        def fileno(self) -> int:
            return self._read_fd

        def _recv_internal(self, timeout: float | None) -> tuple[Any, bool]:
            self._check_if_open()
            incoming = self.queue
            while True:
                if timeout is not None and timeout <= 0:
                    if incoming.empty():
                        return None, True
                    msg = incoming.get_nowait()
                else:
                    try:
                        msg = incoming.get(timeout=timeout)
                    except queue.Empty:
                        return None, True
                with contextlib.suppress(BlockingIOError):
                    os.read(self._read_fd, 1)
                if self._matches_filters(msg):
                    return msg, True

        def shutdown(self) -> None:
            was_open = self._open
            super().shutdown()
            if was_open:
                for fd in (self._read_fd, self._write_fd):
                    with contextlib.suppress(OSError):
                        os.close(fd)

    return FdVirtualBus(channel, **kwargs)
