"""One connection manager per Bluetooth adapter.

An adapter (and BlueZ) handles only a few LE connections at once, and a device that keeps failing
must not be hammered. The manager hands out a bounded number of connection *slots* (first come,
first served), spaces reconnect attempts per device with exponential back-off and jitter, and
power-cycles the adapter only as a last resort: after many consecutive failures across all its
devices, at most once per cool-down period. It never restarts the process.

Clock, sleep and random source are injected so the policy is tested in simulated time.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable

import attrs

from bmshost.errors import LinkError
from bmshost_transport_ble.errors import explain

log = logging.getLogger("bmshost.ble")

DEFAULT_SLOTS = 5  # conservative: common adapters manage 5-10 LE links; cheap ones about 5


@attrs.frozen(kw_only=True)
class BackoffPolicy:
    initial: float = 2.0  # s before the first retry
    factor: float = 2.0
    maximum: float = 120.0  # s, cap of the spacing between attempts
    jitter: float = 0.2  # ± fraction, so batteries that failed together do not retry together
    reset_after: int = 12  # consecutive failed connects on the adapter before a reset
    reset_cooldown: float = 900.0  # s between two adapter resets

    def delay(self, failures: int, rng: random.Random) -> float:
        """Spacing after ``failures`` consecutive failures (≥ 1)."""
        base = min(self.maximum, self.initial * self.factor ** max(0, failures - 1))
        return max(0.0, base * (1.0 + self.jitter * rng.uniform(-1.0, 1.0)))


class ConnectionManager:
    """Slots, back-off and the adapter-reset last resort for one adapter."""

    def __init__(
        self,
        adapter: str = "hci0",
        *,
        slots: int = DEFAULT_SLOTS,
        policy: BackoffPolicy | None = None,
        reset_adapter: Callable[[str], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if slots < 1:
            raise ValueError("a BLE adapter needs at least one connection slot")
        self.adapter = adapter
        self.slots = slots
        self.policy = policy or BackoffPolicy()
        self.clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._reset_adapter = reset_adapter
        self._holders: list[str] = []
        self._waiters: deque[tuple[str, asyncio.Future[None]]] = deque()
        self._failures: dict[str, int] = {}
        self._not_before: dict[str, float] = {}
        self._adapter_failures = 0
        self._last_reset = float("-inf")
        self.resets = 0  # adapter resets performed
        self.peak = 0  # most slots ever held at once (benchmarks check it against ``slots``)

    # -- slots ---------------------------------------------------------------------------------

    @property
    def in_use(self) -> tuple[str, ...]:
        return tuple(self._holders)

    async def acquire(self, address: str, timeout: float) -> None:
        """Take a slot for ``address``; ``LinkError`` naming the holders after ``timeout`` s."""
        if address in self._holders:
            return
        if len(self._holders) < self.slots and not self._waiters:
            self._take(address)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (address, future)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            if future.done() and not future.cancelled():
                return  # granted at the last moment: keep it
            future.cancel()
            holders = ", ".join(self._holders)
            raise LinkError(
                f"BLE {address}: all {self.slots} connection slots of {self.adapter} are busy "
                f"({holders}); use mode=rotate for some batteries or raise [transports.ble] slots"
            ) from None
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(address)  # granted but our caller is gone: hand it on
            future.cancel()
            raise
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def _take(self, address: str) -> None:
        self._holders.append(address)
        self.peak = max(self.peak, len(self._holders))

    def release(self, address: str) -> None:
        """Give the slot back (idempotent) and wake the longest waiter."""
        if address not in self._holders:
            return
        self._holders.remove(address)
        while self._waiters and len(self._holders) < self.slots:
            waiter, future = self._waiters.popleft()
            if future.done():
                continue
            self._take(waiter)
            future.set_result(None)

    # -- back-off ------------------------------------------------------------------------------

    def retry_in(self, address: str) -> float:
        """Seconds until ``address`` may be tried again (0 when it may be tried now)."""
        return max(0.0, self._not_before.get(address, float("-inf")) - self.clock())

    def failures(self, address: str) -> int:
        return self._failures.get(address, 0)

    async def wait_turn(self, address: str) -> None:
        """Sleep out the device's back-off before a connect attempt."""
        delay = self.retry_in(address)
        if delay > 0:
            log.debug("BLE %s: next connect attempt in %.1f s", address, delay)
            await self._sleep(delay)

    async def record_failure(self, address: str) -> None:
        count = self._failures.get(address, 0) + 1
        self._failures[address] = count
        self._not_before[address] = self.clock() + self.policy.delay(count, self._rng)
        self._adapter_failures += 1
        await self._maybe_reset()

    def record_success(self, address: str) -> None:
        self._failures.pop(address, None)
        self._not_before.pop(address, None)
        self._adapter_failures = 0

    async def _maybe_reset(self) -> None:
        if self._adapter_failures < self.policy.reset_after or self._reset_adapter is None:
            return
        now = self.clock()
        if now - self._last_reset < self.policy.reset_cooldown:
            return
        self._last_reset = now
        self._adapter_failures = 0
        self.resets += 1
        log.warning(
            "BLE adapter %s: %d connects failed in a row, resetting the adapter",
            self.adapter,
            self.policy.reset_after,
        )
        try:
            await self._reset_adapter(self.adapter)
        except Exception as exc:  # a failed reset is logged, never fatal
            log.warning("%s", explain(exc, f"BLE adapter {self.adapter} reset failed"))


class ManagerPool:
    """The managers of one process, one per adapter."""

    def __init__(self) -> None:
        self._managers: dict[str, ConnectionManager] = {}

    def get(
        self,
        adapter: str,
        reset_adapter: Callable[[str], Awaitable[None]] | None = None,
        *,
        slots: int = DEFAULT_SLOTS,
        policy: BackoffPolicy | None = None,
    ) -> ConnectionManager:
        """The adapter's manager, created on first use with the ``[transports.ble]`` settings
        (one configuration per process, so later callers pass the same values)."""
        manager = self._managers.get(adapter)
        if manager is None:
            manager = ConnectionManager(
                adapter, slots=slots, policy=policy, reset_adapter=reset_adapter
            )
            self._managers[adapter] = manager
        return manager


DEFAULT_POOL = ManagerPool()
