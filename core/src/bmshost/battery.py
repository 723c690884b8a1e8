"""One battery: its driver session on a link, its control pipeline, its state and its poll loop.

The loop never lets a failure escape: a read that fails costs one cycle (the pipeline still runs
with ``sample=None`` so the disconnect stage can move the limits to their safe state on time), a
link that fails is reopened with exponential back-off and jitter, and a sink that raises is
logged and skipped. Other batteries are never affected.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bmshost.capabilities import Capability
from bmshost.commands import validate
from bmshost.config import BatteryConfig, HostOptions
from bmshost.driver import DriverSpec, Session, SessionContext, VariantSpec
from bmshost.errors import (
    BmshostError,
    FrameError,
    LinkError,
    LinkTimeout,
    NotMyBMS,
    UnsupportedCommand,
)
from bmshost.lazy import resolve
from bmshost.link import BaseLink
from bmshost.model import Command, CommandKind, CommandResult, Identity, Sample
from bmshost.sink import BatteryUpdate, Sink
from bmshost.store import BatteryState

log = logging.getLogger("bmshost.battery")

# Fields that come from the slow set / connect and are carried onto every fast sample (a fast
# read that has them wins). Slowly changing values belong here, live measurements never do.
STATIC_FIELDS = (
    "serial_number", "hardware_version", "firmware_version", "model", "production_date",
    "capacity_ah", "cycles", "soh",
)
FAILURES_BEFORE_RECONNECT = 3


class SharedLink:
    """A link and the batteries using it (daisy chains share one port)."""

    def __init__(self, link: BaseLink) -> None:
        self.link = link
        self.users = 0
        self._open_lock = asyncio.Lock()

    async def ensure_open(self) -> None:
        async with self._open_lock:
            if not self.link.is_open:
                await self.link.open()

    async def reset(self) -> None:
        async with self._open_lock:
            await self.link.close()


class Battery:
    """Implements ``bmshost.sink.BatteryHandle`` for the sinks."""

    def __init__(
        self,
        *,
        config: BatteryConfig,
        driver: DriverSpec,
        variant: VariantSpec,
        shared: SharedLink,
        host: HostOptions,
        pipeline: Any,
        state: BatteryState,
        pipeline_factory: Callable[[frozenset[Capability]], Any] | None = None,
        sinks: Sequence[Sink],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        restore: Callable[[Battery], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self.driver = driver
        self.variant = variant
        self.shared = shared
        self.host = host
        self.pipeline = pipeline
        self.pipeline_factory = pipeline_factory
        self.state = state
        self.sinks = list(sinks)
        self.clock = clock
        self.wall = wall
        self.log = logging.getLogger(f"bmshost.battery.{config.name or driver.name}")
        self.session: Session | None = None
        self.connected = False
        self.static = Sample()
        self._has_static = False
        self.last_sample: Sample | None = None
        self.last_good: float | None = None
        self.latest: BatteryUpdate | None = None
        self.failures = 0
        self.reconnects = 0
        self.backoff = host.reconnect_min
        self.reconnect_at = 0.0
        self.last_error = ""
        self.cycles = 0
        self._next_slow = 0.0
        self._stop = asyncio.Event()
        self._pending_tasks: set[asyncio.Task[Any]] = set()
        # Called once, at the first connect (the identity is known then), before the stages see
        # a sample: the host compares the state file with the sinks' copies (bmshost.host).
        self._restore = restore
        self._capabilities = variant.capabilities
        self._identity = Identity(
            driver=driver.name, variant=variant.name, port=config.port, address=config.address
        )
        # The pipeline's clock: epoch seconds that advance with the monotonic clock. Persisted
        # timestamps (last full charge, SoC-reset time) survive restarts, and a wall-clock step
        # (NTP at boot) cannot shorten a hold or a ramp while the process runs.
        self._epoch_offset = wall() - clock()

    # -- BatteryHandle -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.name or self._identity.unique_id

    @property
    def identity(self) -> Identity:
        return self._identity

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self._capabilities

    @property
    def connection(self) -> str:
        text = self.shared.link.description
        if self.config.address is not None:
            text += f"__0x{self.config.address:02x}"
        return text

    async def submit(self, command: Command) -> CommandResult:
        reason = validate(command, self._capabilities)
        if reason is not None:
            self.log.warning("refused %s=%r from %s: %s", command.kind.value, command.value, command.origin, reason)
            return CommandResult(False, reason)
        if self.session is None or not self.connected:
            return CommandResult(False, "the BMS is not connected")
        try:
            await self.session.execute(command)
        except UnsupportedCommand as exc:
            return CommandResult(False, str(exc))
        except (LinkError, FrameError) as exc:
            self.log.error("write %s=%r failed: %s", command.kind.value, command.value, exc)
            return CommandResult(False, f"write failed: {exc}")
        self.log.info("performed %s=%r (asked by %s)", command.kind.value, command.value, command.origin)
        if command.kind is CommandKind.SOC_RESET and self.pipeline is not None:
            self.pipeline.command("soc_reset", float(command.value))
        return CommandResult(True, "ok")

    def stage_command(self, name: str, value: Any) -> bool:
        if self.pipeline is None:
            return False
        handled = bool(self.pipeline.command(name, value))
        if handled:
            self.log.info("control command %s=%r", name, value)
        return handled

    # -- the loop ------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        interval = self.config.poll_interval or self.host.poll_interval
        next_cycle = self.clock()
        while not self._stop.is_set():
            await self.cycle()
            next_cycle += interval
            now = self.clock()
            if next_cycle < now:  # a slow link: do not try to catch up with a burst of polls
                next_cycle = now
            try:
                await asyncio.wait_for(self._stop.wait(), next_cycle - now)
            except TimeoutError:
                pass
        await self.shutdown()

    async def cycle(self) -> BatteryUpdate:
        """One poll: read (or reconnect), run the pipeline, publish. Never raises."""
        now = self.clock()
        sample: Sample | None = None
        try:
            sample = await self._read(now)
        except Exception:  # a driver bug must not stop the battery: count it as a failed read
            self.log.exception("driver %s raised unexpectedly", self.driver.name)
            self.last_error = "internal driver error"
            await self._drop_session(now, fatal=False)
        if sample is not None:
            self.last_sample = sample
            self.last_good = now
        step = None
        if self.pipeline is not None:
            try:
                step = self.pipeline.run(now + self._epoch_offset, sample)
            except Exception:
                self.log.exception("control pipeline failed; limits withheld this cycle")
        if step is not None:
            self._handle_requests(step)
        update = self._update(now, sample, step)
        self.latest = update
        for sink in self.sinks:
            try:
                sink.publish(self, update)
            except Exception:
                self.log.exception("sink %s failed to publish", sink.name)
        self.cycles += 1
        self.state.maybe_save(now)
        return update

    async def _read(self, now: float) -> Sample | None:
        if not self.connected:
            if now < self.reconnect_at:
                return None
            if not await self._connect(now):
                return None
        assert self.session is not None
        try:
            fresh = await self.session.read()
            if now >= self._next_slow:
                self._next_slow = now + self.host.slow_poll_interval
                try:
                    self._remember_static(await self.session.read_slow())
                except (LinkError, FrameError) as exc:
                    self.log.debug("slow read failed: %s", exc)
        except LinkError as exc:
            self.last_error = str(exc)
            self.failures += 1
            self.log.debug("read failed (%d in a row): %s", self.failures, exc)
            # A silent BMS on a healthy port: reconnect only after several timeouts, and never
            # close a port that other batteries of a daisy chain still use successfully.
            if not isinstance(exc, LinkTimeout) or (
                self.failures >= FAILURES_BEFORE_RECONNECT and self.shared.users == 1
            ):
                await self._drop_session(now, fatal=not isinstance(exc, LinkTimeout))
            return None
        except FrameError as exc:
            self.last_error = str(exc)
            self.failures += 1
            self.log.debug("bad reply (%d in a row): %s", self.failures, exc)
            return None
        if self.failures:
            self.log.info("BMS answers again after %d failed reads", self.failures)
        self.failures = 0
        self.backoff = self.host.reconnect_min
        return (self.static.merge(fresh) if self._has_static else fresh).fill_derived()

    async def _connect(self, now: float) -> bool:
        try:
            await self.shared.ensure_open()
            if self.session is None:
                factory = resolve(self.variant.session)
                self.session = factory(
                    SessionContext(
                        link=self.shared.link,
                        variant=self.variant,
                        options=self.config.options,
                        address=self.config.address,
                        timeout=self.host.request_timeout,
                        retries=self.host.retries,
                        log=self.log,
                    )
                )
            first = await self.session.connect()
        except (LinkError, FrameError, NotMyBMS, BmshostError) as exc:
            self._schedule_reconnect(now, exc)
            self.session = None
            return False
        if self.session.capabilities != self._capabilities:
            self._capabilities = self.session.capabilities
            if self.pipeline_factory is not None:
                # The driver knows more after connecting (no MOSFET sensor, no BMS limits):
                # rebuild so the stages match; persisted state lives in the store and carries over.
                self.pipeline = self.pipeline_factory(self._capabilities)
        self._remember_static(first)
        if self._restore is not None:
            restore, self._restore = self._restore, None
            await restore(self)
        self._next_slow = now + self.host.slow_poll_interval
        self.log.info("connected to %s on %s", self.driver.name, self.connection)
        self.connected = True
        self.failures = 0
        return True

    def _schedule_reconnect(self, now: float, exc: BaseException) -> None:
        self.last_error = str(exc)
        self.reconnects += 1
        delay = self.backoff * random.uniform(0.8, 1.2)  # jitter: batteries do not retry in step
        self.reconnect_at = now + delay
        self.backoff = min(self.backoff * 2, self.host.reconnect_max)
        level = logging.WARNING if self.reconnects <= 3 or self.reconnects % 10 == 0 else logging.DEBUG
        self.log.log(level, "cannot reach the BMS (%s); retrying in %.1f s", exc, delay)

    async def _drop_session(self, now: float, fatal: bool) -> None:
        self.connected = False
        if self.session is not None:
            try:
                await self.session.close()
            except Exception:
                self.log.debug("session close failed", exc_info=True)
        self.session = None
        if fatal or self.shared.users == 1:
            await self.shared.reset()
        self.reconnect_at = now  # first retry at once; back-off grows if it keeps failing

    def _remember_static(self, sample: Sample) -> None:
        updates = {f: getattr(sample, f) for f in STATIC_FIELDS if getattr(sample, f) is not None}
        if sample.extra:
            updates["extra"] = sample.extra
        if not updates:
            return
        self.static = self.static.merge(Sample(**updates))
        self._has_static = True
        serial = self.static.serial_number
        if serial and serial != self._identity.serial_number:
            self._identity = Identity(
                driver=self._identity.driver,
                variant=self._identity.variant,
                port=self._identity.port,
                address=self._identity.address,
                serial_number=serial,
            )

    def _handle_requests(self, step: Any) -> None:
        target = step.notes.get("bms_soc_reset_request")
        if target is None or Capability.SOC_RESET not in self._capabilities:
            return
        task = asyncio.get_running_loop().create_task(
            self.submit(Command(CommandKind.SOC_RESET, float(target), origin="auto_reset_soc"))
        )
        self._pending_tasks.add(task)
        task.add_done_callback(self._pending_tasks.discard)

    def _update(self, now: float, sample: Sample | None, step: Any) -> BatteryUpdate:
        since = None if self.last_good is None else now - self.last_good
        online = sample is not None
        stale = since is None or since > self.host.stale_after
        if online:
            info = "Connected" if not self.failures else f"Connected ({self.failures} errors)"
        elif since is None:
            info = f"Connecting: {self.last_error}" if self.last_error else "Initializing..."
        else:
            info = f"Lost for {since:.0f} s: {self.last_error}"
        health: dict[str, Any] = {"reconnects": self.reconnects}
        if since is not None:
            health["seconds_since_good_read"] = round(since, 1)
        link_health = getattr(self.shared.link, "health", None)
        if isinstance(link_health, dict):
            health.update(link_health)
        return BatteryUpdate(
            t=self.wall(),
            sample=self.last_sample,
            fresh=online,
            online=online,
            stale=stale,
            limits=step.limits if step is not None else None,
            derived=step.derived if step is not None else None,
            link_health=health,
            connection_info=info,
        )

    async def shutdown(self) -> None:
        for task in list(self._pending_tasks):
            task.cancel()
        if self.session is not None:
            try:
                await self.session.close()
            except Exception:
                self.log.debug("session close failed", exc_info=True)
        self.state.maybe_save(self.clock(), force=True)
