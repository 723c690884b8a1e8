"""The host: builds batteries, links, pipelines and sinks from a configuration and runs them.

One asyncio task per battery; batteries on the same port share one link. SIGINT/SIGTERM stop
the loops, the last state is saved and sinks are stopped in order.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bmshost.battery import Battery, SharedLink
from bmshost.config import Config
from bmshost.control.pipeline import build_pipeline
from bmshost.errors import ConfigError
from bmshost.lazy import resolve
from bmshost.link import BaseLink, CaptureRecorder
from bmshost.plugins import PluginManager
from bmshost.sink import RESTORE_TIMEOUT, Sink, SinkContext
from bmshost.store import BatteryState, StateDoc, default_state_dir, parse_state

log = logging.getLogger("bmshost.host")


class Host:
    def __init__(
        self,
        config: Config,
        plugins: PluginManager,
        *,
        json_mode: bool = False,
        capture: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        extra_sinks: list[Sink] | None = None,
    ) -> None:
        self.config = config
        self.plugins = plugins
        self.registries = plugins.registries
        self.json_mode = json_mode
        self.capture = capture
        self.clock = clock
        self.wall = wall
        self.state_dir = Path(config.host.state_dir) if config.host.state_dir else default_state_dir()
        self.sinks: list[Sink] = list(extra_sinks or [])
        self.links: dict[str, SharedLink] = {}
        self.batteries: list[Battery] = []
        self._stopping = asyncio.Event()
        self._built = False

    # -- building ------------------------------------------------------------------------------

    def build(self) -> None:
        """Create sinks, links, pipelines and batteries. Raises ``ConfigError`` for bad ports."""
        if self._built:
            return
        for name, options in self.config.sinks.items():
            spec = self.registries.sinks.get(name)
            assert spec is not None  # bind_config checked it
            factory = resolve(spec.factory)
            self.sinks.append(
                factory(SinkContext(options=options, json_mode=self.json_mode, state_dir=str(self.state_dir)))
            )
        stage_specs = self.registries.stages.ordered()
        for i, bc in enumerate(self.config.batteries):
            driver = self.registries.drivers.get(bc.driver)
            assert driver is not None and bc.url is not None
            variant = driver.variant(bc.variant)
            shared = self.links.get(bc.url.raw)
            if shared is None:
                shared = SharedLink(self.make_link(i, bc.url, variant.link_params))
                self.links[bc.url.raw] = shared
            shared.users += 1
            battery_key = bc.name or f"{driver.name}_{bc.url.raw}_{bc.address}"
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in battery_key)
            state = BatteryState(self.state_dir / f"{safe}.json", wall=self.wall)
            state.held = True  # until _restore_state has compared it with the sinks' copies
            def make_pipeline(
                capabilities: frozenset[Any], state: BatteryState = state, battery_id: str = safe
            ) -> Any:
                return build_pipeline(
                    stage_specs, capabilities, self.config.control, state.sections, battery_id=battery_id
                )

            pipeline = make_pipeline(variant.capabilities)
            battery = Battery(
                config=bc,
                driver=driver,
                variant=variant,
                shared=shared,
                host=self.config.host,
                pipeline=pipeline,
                pipeline_factory=make_pipeline,
                state=state,
                sinks=self.sinks,
                clock=self.clock,
                wall=self.wall,
                restore=self._restore_state,
            )
            state.on_saved = functools.partial(self._state_saved, battery)
            self.batteries.append(battery)
        self._built = True

    def make_link(self, index: int, url: Any, params: Any) -> BaseLink:
        """An unopened link for ``batteries[index]`` (recording when capturing)."""
        spec = self.registries.transports.for_scheme(url.scheme)
        assert spec is not None
        factory = resolve(spec.factory)
        try:
            if url.scheme == "sim":
                link: BaseLink = factory(url, params, registries=self.registries, clock=self.clock)
            elif spec.options is not None:
                link = factory(url, params, options=self.config.transports.get(spec.name))
            else:
                link = factory(url, params)
        except ConfigError as exc:
            raise ConfigError([f"batteries[{index}].port: {p}" for p in exc.problems]) from None
        if self.capture is not None:
            link.recorder = CaptureRecorder()
        return link

    def explain(self) -> str:
        """Each battery's control stages and why each was included or left out."""
        self.build()
        lines = []
        for b in self.batteries:
            lines.append(f"{b.name} ({b.driver.name}/{b.variant.name} on {b.config.port}):")
            for name, included, why in b.pipeline.explain():
                lines.append(f"  [{'x' if included else ' '}] {name}: {why}")
        return "\n".join(lines)

    # -- persisted control state ---------------------------------------------------------------

    async def _restore_state(self, battery: Battery) -> None:
        """At the battery's first connect: take the newest of its state file and the copies the
        sinks keep (``Sink.restore_state``), rebuild the pipeline when a copy wins, and bring
        sinks whose copy is missing or different up to date. Never raises; always releases the
        hold on saving."""
        state = battery.state
        try:
            copies: list[tuple[Sink, StateDoc | None]] = []
            for sink in self.sinks:
                try:
                    text = await asyncio.wait_for(sink.restore_state(battery), RESTORE_TIMEOUT)
                except TimeoutError:
                    log.warning("%s: sink %s did not return the saved state within %.0f s; ignored",
                                battery.name, sink.name, RESTORE_TIMEOUT)
                    continue
                except Exception:
                    log.exception("%s: sink %s failed to return the saved state", battery.name, sink.name)
                    continue
                if text is not None and not isinstance(text, str):
                    log.warning("%s: sink %s returned a %s as state; ignored", battery.name, sink.name,
                                type(text).__name__)
                    text = None
                doc = parse_state(text, f"the {sink.name} sink's copy for {battery.name}") if text else None
                copies.append((sink, doc))
            newest: tuple[Sink, StateDoc] | None = None
            for sink, doc in copies:
                # Strictly newer than the file (and than earlier sinks): on a tie the file wins.
                if doc is not None and doc.saved_at > (newest[1].saved_at if newest else state.saved_at):
                    newest = (sink, doc)
            if newest is not None and newest[1].sections != state.sections:
                sink, doc = newest
                log.info("%s: control state restored from the %s sink (saved %s), newer than the state file",
                         battery.name, sink.name, _when(doc.saved_at))
                state.adopt(doc)
                if battery.pipeline_factory is not None:
                    # Stages read their store when built: rebuild so they start from the restored state.
                    battery.pipeline = battery.pipeline_factory(battery.capabilities)
            if state.text:
                for sink, doc in copies:
                    if doc is None or doc.sections != state.sections:
                        self._hand_over(sink, battery, state.text)
        except Exception:
            log.exception("%s: restoring the control state failed; the state file is used", battery.name)
        finally:
            state.held = False

    def _state_saved(self, battery: Battery, text: str) -> None:
        for sink in self.sinks:
            self._hand_over(sink, battery, text)

    @staticmethod
    def _hand_over(sink: Sink, battery: Battery, text: str) -> None:
        try:
            sink.state_saved(battery, text)
        except Exception:
            log.exception("%s: sink %s failed to take the saved state", battery.name, sink.name)

    # -- running -------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping.set()
        for b in self.batteries:
            b.stop()

    async def run(self, duration: float | None = None) -> None:
        """Run until stopped (signal, ``stop()``) or for ``duration`` seconds."""
        self.build()
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.stop)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread (tests) or no signals on this platform
        started: list[Sink] = []
        try:
            for sink in self.sinks:
                await sink.start()
                started.append(sink)
                for b in self.batteries:
                    sink.add_battery(b)
            self.plugins.call_lifecycle("bmshost_startup", host=self)
            tasks = [asyncio.create_task(b.run(), name=f"battery:{b.name}") for b in self.batteries]
            if duration is not None:
                loop.call_later(duration, self.stop)
            if tasks:
                await asyncio.gather(*tasks)
            else:
                await self._stopping.wait()
        finally:
            self.plugins.call_lifecycle("bmshost_shutdown", host=self)
            for sink in reversed(started):
                try:
                    await sink.stop()
                except Exception:
                    log.exception("sink %s failed to stop", sink.name)
            for shared in self.links.values():
                await shared.link.close()
            self._write_captures()
            for sig in installed:
                loop.remove_signal_handler(sig)

    def _write_captures(self) -> None:
        if self.capture is None:
            return
        from bmshost.capture import write_capture

        for i, b in enumerate(self.batteries):
            recorder = b.shared.link.recorder
            if recorder is None:
                continue
            path = self.capture if i == 0 else f"{self.capture}.{i}"
            write_capture(path, b.driver.name, b.variant.name, b.shared.link, recorder)
            log.info("capture of %s written to %s", b.name, path)


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if epoch > 0 else "at an unknown time"
