"""Serve a bmshost CAN ``Simulator`` on a python-can bus (tests, demos, benchmarks).

The simulator answers the frames it receives (``on_frame``) and broadcasts its periodic frames
(``broadcast``) every ``period`` seconds, like a BMS on a real bus. Use the ``virtual`` interface
in tests: it stays inside the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

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
