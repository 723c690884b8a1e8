"""Helpers for the CAN transport tests: a small broadcast/echo simulator and unique channels."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

from bmshost.driver import Simulator
from bmshost.link import CanFrame
from bmshost.model import Sample

_ids = itertools.count()


def channel(name: str) -> str:
    """A virtual channel no other test uses (virtual buses are process-wide)."""
    return f"bmshost-test-{name}-{next(_ids)}"


class BeaconSimulator(Simulator):
    """Broadcasts 0x351 and 0x355 (a counter in byte 0); answers id 0x100 with 0x101 + data."""

    kind = "can"

    def __init__(self) -> None:
        self.count = 0
        self.requests: list[CanFrame] = []

    def broadcast(self) -> Sequence[CanFrame]:
        self.count += 1
        return (
            CanFrame(0x351, bytes([self.count & 0xFF, 1]), False),
            CanFrame(0x355, bytes([self.count & 0xFF, 2]), False),
        )

    def on_frame(self, frame: CanFrame) -> Sequence[CanFrame]:
        self.requests.append(frame)
        if frame.arbitration_id == 0x100:
            return (CanFrame(0x101, frame.data, False),)
        return ()

    def state(self) -> Sample:
        return Sample()


async def until(predicate: object, timeout: float = 2.0) -> None:
    """Wait (in small steps) until ``predicate()`` holds; fail the test after ``timeout``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)
