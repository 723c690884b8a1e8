"""The host with in-process simulators: polling, staleness, recovery, writes, isolation."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest

from bmshost.cli.common import prepare_dict
from bmshost.host import Host
from bmshost.model import Command, CommandKind
from bmshost.testing import RecordingSink


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _host(tmp_path: Path, batteries: list[dict[str, Any]], **host: Any) -> tuple[Host, RecordingSink, Clock]:
    config, plugins = prepare_dict(
        {
            "host": {"poll_interval": 1.0, "request_timeout": 0.05, "retries": 0, "stale_after": 5.0,
                     "state_dir": str(tmp_path), **host},
            "batteries": batteries,
        }
    )
    sink = RecordingSink()
    clock = Clock()
    h = Host(config, plugins, extra_sinks=[sink], clock=clock)
    h.build()
    return h, sink, clock


async def _cycles(host: Host, clock: Clock, n: int, dt: float = 1.0) -> None:
    for _ in range(n):
        for b in host.batteries:
            await b.cycle()
        clock.t += dt


async def test_poll_publishes_samples_limits_and_derived(tmp_path: Path) -> None:
    host, sink, clock = _host(tmp_path, [{"driver": "jbd", "port": "sim:jbd?cells=8&soc=50", "name": "a"}])
    await _cycles(host, clock, 3)
    update = sink.last("a")
    assert update.online and not update.stale and update.fresh
    assert update.sample is not None and update.sample.cell_count == 8
    assert update.sample.model  # static info from connect() is carried onto fast samples
    assert update.limits is not None and update.limits.cvl is not None and update.limits.ccl is not None
    assert update.derived is not None and update.derived.soc is not None


async def test_silent_bms_goes_stale_then_recovers_without_restart(tmp_path: Path) -> None:
    host, sink, clock = _host(tmp_path, [{"driver": "jbd", "port": "sim:jbd?cells=4", "name": "a"}])
    battery = host.batteries[0]
    await _cycles(host, clock, 2)
    sim = battery.shared.link.simulator  # type: ignore[attr-defined]
    sim.silent = True
    await _cycles(host, clock, 8)
    update = sink.last("a")
    assert not update.online and update.stale
    assert update.sample is not None  # the last good values stay available to sinks
    assert "Lost for" in update.connection_info
    sim.silent = False
    await _cycles(host, clock, 30)  # back-off may delay the reconnect, never forever
    update = sink.last("a")
    assert update.online and not update.stale
    assert battery.reconnects >= 1


async def test_unreachable_port_retries_with_backoff_and_never_raises(tmp_path: Path) -> None:
    host, sink, clock = _host(
        tmp_path, [{"driver": "jbd", "port": "/dev/ttyDOESNOTEXIST9", "name": "gone"}], reconnect_max=8.0
    )
    battery = host.batteries[0]
    attempts = []
    for _ in range(60):
        before = battery.reconnects
        await battery.cycle()
        if battery.reconnects != before:
            attempts.append(clock.t)
        clock.t += 1.0
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert 5 <= len(attempts) <= 20
    assert max(gaps) <= 8.0 * 1.2 + 1  # capped back-off (with jitter)
    assert gaps[-1] > gaps[0]
    assert "no such device" in battery.last_error
    assert sink.last("gone").limits is not None  # control keeps running without data


async def test_one_broken_battery_does_not_disturb_another(tmp_path: Path) -> None:
    host, sink, clock = _host(
        tmp_path,
        [
            {"driver": "jbd", "port": "/dev/ttyDOESNOTEXIST8", "name": "bad"},
            {"driver": "jbd", "port": "sim:jbd?cells=4", "name": "good"},
        ],
    )
    await _cycles(host, clock, 3)
    assert sink.last("good").online and not sink.last("bad").online


async def test_submit_validates_then_writes(tmp_path: Path) -> None:
    host, _, clock = _host(tmp_path, [{"driver": "jbd", "port": "sim:jbd?cells=4", "name": "a"}])
    battery = host.batteries[0]
    await _cycles(host, clock, 1)
    sim = battery.shared.link.simulator  # type: ignore[attr-defined]
    result = await battery.submit(Command(CommandKind.CHARGE_FET, False, origin="test"))
    assert result.ok and sim.charge_forced_off
    refused = await battery.submit(Command(CommandKind.SOC_RESET, 150.0, origin="test"))
    assert not refused.ok and "outside" in refused.message
    unsupported = await battery.submit(Command(CommandKind.SOC_RESET, 50.0, origin="test"))
    assert not unsupported.ok and "100" in unsupported.message


async def test_sink_exception_is_isolated(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    host, sink, clock = _host(tmp_path, [{"driver": "jbd", "port": "sim:jbd?cells=4", "name": "a"}])

    class Broken(RecordingSink):
        name = "broken"

        def publish(self, battery: Any, update: Any) -> None:
            raise RuntimeError("sink bug")

    host.batteries[0].sinks.insert(0, Broken())
    await _cycles(host, clock, 2)
    assert len(sink.updates["a"]) == 2
    assert "sink bug" in caplog.text


async def test_run_stops_cleanly_and_saves_state(tmp_path: Path) -> None:
    config, plugins = prepare_dict(
        {"host": {"poll_interval": 0.05, "state_dir": str(tmp_path)},
         "batteries": [{"driver": "jbd", "port": "sim:jbd?cells=4", "name": "a"}]}
    )
    sink = RecordingSink()
    host = Host(config, plugins, extra_sinks=[sink])
    await asyncio.wait_for(host.run(duration=0.3), 5)
    assert sink.started and sink.stopped and len(sink.updates["a"]) >= 3
    assert (tmp_path / "a.json").exists()


async def test_explain_lists_stages_with_reasons(tmp_path: Path) -> None:
    host, _, _ = _host(tmp_path, [{"driver": "jbd", "port": "sim:jbd?cells=4", "name": "a"}])
    text = host.explain()
    assert text.startswith("a (jbd/serial on sim:jbd?cells=4):")
    assert "[x]" in text and "[ ]" in text  # some stages in, some left out, each with a reason
