"""Persisted control state: the saved-at stamped document, its coalesced hand-over to sinks, and
the restore at the first connect that takes the newest of the state file and the sinks' copies."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest

from bmshost.cli.common import prepare_dict
from bmshost.host import Host
from bmshost.sink import BatteryHandle, BatteryUpdate, Sink
from bmshost.store import SAVED_AT, BatteryState, parse_state
from bmshost.testing import ManualClock, RecordingSink

ROOT = Path(__file__).resolve().parents[2]


class Wall:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class KeepingSink(Sink):
    """Keeps each battery's state document by its identity, as the Venus sink does in
    localsettings; a new host given the same instance sees what the previous one saved."""

    name = "keeping"

    def __init__(self) -> None:
        self.copies: dict[str, str] = {}
        self.saved: list[tuple[str, str]] = []
        self.restored: list[str] = []
        self.delay = 0.0
        self.fail = False

    def publish(self, battery: BatteryHandle, update: BatteryUpdate) -> None:
        pass

    async def restore_state(self, battery: BatteryHandle) -> str | None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("settings service exploded")
        uid = battery.identity.unique_id
        self.restored.append(uid)
        return self.copies.get(uid)

    def state_saved(self, battery: BatteryHandle, text: str) -> None:
        uid = battery.identity.unique_id
        self.saved.append((uid, text))
        self.copies[uid] = text


def _host(
    tmp_path: Path, sink: Sink, port: str = "sim:jbd?cells=4&soc=70&current=0", clock: Any = None, wall: Any = None
) -> Host:
    config, plugins = prepare_dict(
        {
            "host": {"poll_interval": 1.0, "request_timeout": 0.05, "retries": 0, "state_dir": str(tmp_path)},
            "batteries": [{"driver": "jbd", "port": port, "name": "house"}],
            "control": {"soc": {"soc_calculation": True}},
        }
    )
    host = Host(config, plugins, extra_sinks=[sink], clock=clock or ManualClock(1000.0), wall=wall or Wall())
    host.build()
    return host


def _doc(sections: dict[str, Any], saved_at: float) -> str:
    return json.dumps({**sections, SAVED_AT: saved_at})


# -- the document ----------------------------------------------------------------------------------


def test_document_is_stamped_and_the_stamp_alone_never_causes_a_write(tmp_path: Path) -> None:
    wall = Wall(1000.0)
    state = BatteryState(tmp_path / "b.json", min_interval=60, wall=wall)
    handed: list[str] = []
    state.on_saved = handed.append
    state.section("soc")["soc"] = 51.5
    assert state.maybe_save(0.0)
    doc = json.loads((tmp_path / "b.json").read_text())
    assert doc == {"soc": {"soc": 51.5}, SAVED_AT: 1000.0}
    wall.t = 2000.0
    assert not state.maybe_save(100.0)  # same sections, later clock: nothing written or handed on
    assert handed == [(tmp_path / "b.json").read_text()]
    reloaded = BatteryState(tmp_path / "b.json")
    assert reloaded.sections == {"soc": {"soc": 51.5}} and reloaded.saved_at == 1000.0


def test_two_changes_inside_the_interval_reach_the_sinks_once(tmp_path: Path) -> None:
    state = BatteryState(tmp_path / "b.json", min_interval=60, wall=Wall())
    handed: list[str] = []
    state.on_saved = handed.append
    state.section("soc")["soc"] = 50.0
    assert state.maybe_save(0.0)
    state.section("soc")["soc"] = 49.0
    assert not state.maybe_save(10.0)
    state.section("soc")["soc"] = 48.0
    assert not state.maybe_save(50.0)
    assert len(handed) == 1
    assert state.maybe_save(61.0)
    assert len(handed) == 2 and json.loads(handed[1])["soc"] == {"soc": 48.0}


def test_held_state_is_never_saved_not_even_forced(tmp_path: Path) -> None:
    state = BatteryState(tmp_path / "b.json")
    state.held = True
    state.section("soc")["soc"] = 1.0
    assert not state.maybe_save(0.0, force=True)
    assert not (tmp_path / "b.json").exists()


def test_a_file_without_stamp_loads_as_oldest(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text('{"soc": {"soc": 12.0}}')
    state = BatteryState(tmp_path / "b.json")
    assert state.sections == {"soc": {"soc": 12.0}} and state.saved_at == 0.0


def test_a_failed_file_write_still_hands_the_document_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    state = BatteryState(blocker / "b.json", wall=Wall())  # parent is a file: the write fails
    handed: list[str] = []
    state.on_saved = handed.append
    state.section("soc")["soc"] = 3.0
    assert not state.maybe_save(0.0)
    assert len(handed) == 1 and "cannot save state" in caplog.text


@pytest.mark.parametrize(
    ("text", "warning"),
    [
        ("hello", "corrupt"),
        ('{"soc": {"soc": 5', "corrupt"),
        ("[1, 2]", "not a state document"),
        ('"a string"', "not a state document"),
        ("[" * 100_000 + "]" * 100_000, "corrupt"),
        ('{"soc": {"soc": 5}, "_saved_at": "yesterday"}', "treated as old"),
        ('{"soc": {"soc": 5}, "_saved_at": NaN}', "treated as old"),
        ('{"soc": {"soc": 5}, "junk": 3}', "not stage sections"),
    ],
)
def test_foreign_documents_are_rejected_or_cleaned_with_a_warning(
    text: str, warning: str, caplog: pytest.LogCaptureFixture
) -> None:
    doc = parse_state(text, "test copy")
    assert warning in caplog.text and "test copy" in caplog.text
    if doc is not None:
        assert doc.sections == {"soc": {"soc": 5}}
        assert doc.saved_at == 0.0 or warning == "not stage sections"


def test_empty_text_is_nothing_stored_yet(caplog: pytest.LogCaptureFixture) -> None:
    assert parse_state("", "x") is None and parse_state("  ", "x") is None
    assert caplog.text == ""


# -- the host: restore at the first connect --------------------------------------------------------


async def test_state_survives_a_restart_from_the_sink_copy_when_the_file_is_gone(tmp_path: Path) -> None:
    keeping = KeepingSink()
    host = _host(tmp_path, keeping)
    battery = host.batteries[0]
    await battery.cycle()
    assert battery.latest is not None and battery.latest.derived is not None
    assert battery.latest.derived.soc == pytest.approx(70.0, abs=0.1)  # seeded from the BMS
    battery.pipeline.command("soc_reset", 42.0)  # the counter now differs from the BMS
    await battery.cycle()
    await battery.shutdown()  # forced save: the file and the sink's copy
    uid = battery.identity.unique_id
    assert json.loads(keeping.copies[uid])["soc"]["soc"] == pytest.approx(42.0, abs=0.1)

    (tmp_path / "house.json").unlink()
    host2 = _host(tmp_path, keeping)
    b2 = host2.batteries[0]
    update = await b2.cycle()
    assert keeping.restored == [uid, uid]
    assert update.derived is not None and update.derived.soc == pytest.approx(42.0, abs=0.1)
    # The file was rewritten at once with the sink's document, so the two agree again.
    assert (tmp_path / "house.json").read_text() == keeping.copies[uid]


async def test_the_newest_copy_wins_and_the_file_wins_a_tie(tmp_path: Path) -> None:
    keeping = KeepingSink()

    async def first_soc(file_doc: str, copy: str | None) -> float:
        (tmp_path / "house.json").write_text(file_doc)
        battery = _host(tmp_path, keeping).batteries[0]
        uid = battery.identity.unique_id  # the simulated pack has no serial: stable before connect
        if copy is None:
            keeping.copies.pop(uid, None)
        else:
            keeping.copies[uid] = copy
        update = await battery.cycle()
        assert update.derived is not None and update.derived.soc is not None
        return update.derived.soc

    def copy_soc() -> Any:
        return json.loads(next(iter(keeping.copies.values())))["soc"]["soc"]

    file20 = _doc({"soc": {"soc": 20.0}}, 5000.0)
    assert await first_soc(file20, None) == pytest.approx(20.0, abs=0.1)  # no copy: the file
    assert copy_soc() == 20.0  # ... and the sink, which had none, was handed the file's document
    assert await first_soc(file20, _doc({"soc": {"soc": 60.0}}, 6000.0)) == pytest.approx(60.0, abs=0.1)
    later20 = _doc({"soc": {"soc": 20.0}}, 7000.0)
    assert await first_soc(later20, _doc({"soc": {"soc": 60.0}}, 6000.0)) == pytest.approx(20.0, abs=0.1)
    assert copy_soc() == 20.0  # the older copy was brought up to date
    assert await first_soc(later20, _doc({"soc": {"soc": 60.0}}, 7000.0)) == pytest.approx(20.0, abs=0.1)


async def test_the_restored_state_reaches_stages_built_from_it(tmp_path: Path) -> None:
    keeping = KeepingSink()
    host = _host(tmp_path, keeping, port="sim:jbd?cells=4&soc=95&current=0")  # full: float holds
    battery = host.batteries[0]
    keeping.copies[battery.identity.unique_id] = _doc({"cvl": {"allow_max_voltage": False}}, 9e9)
    update = await battery.cycle()
    assert update.limits is not None and update.limits.charge_mode is not None
    assert update.limits.charge_mode.startswith("Float")


async def test_a_corrupt_or_failing_copy_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "house.json").write_text(_doc({"soc": {"soc": 33.0}}, 5000.0))
    keeping = KeepingSink()
    host = _host(tmp_path, keeping)
    battery = host.batteries[0]
    keeping.copies[battery.identity.unique_id] = "{not json"
    update = await battery.cycle()
    assert "corrupt" in caplog.text and "keeping sink" in caplog.text
    assert update.derived is not None and update.derived.soc == pytest.approx(33.0, abs=0.1)
    assert json.loads(keeping.copies[battery.identity.unique_id])["soc"] == {"soc": 33.0}  # repaired

    caplog.clear()
    failing = KeepingSink()
    failing.fail = True
    host2 = _host(tmp_path, failing)
    update = await host2.batteries[0].cycle()
    assert "failed to return the saved state" in caplog.text
    assert update.derived is not None and update.derived.soc == pytest.approx(33.0, abs=0.1)
    assert host2.batteries[0].state.held is False


async def test_a_slow_copy_is_given_up_after_the_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bmshost.host.RESTORE_TIMEOUT", 0.05)
    slow = KeepingSink()
    slow.delay = 5.0
    host = _host(tmp_path, slow)
    update = await asyncio.wait_for(host.batteries[0].cycle(), 2.0)
    assert update.online and "did not return the saved state" in caplog.text


async def test_nothing_is_saved_before_the_first_connect(tmp_path: Path) -> None:
    good = _doc({"soc": {"soc": 77.0}}, 5000.0)
    keeping = KeepingSink()
    host = _host(tmp_path, keeping, port="/dev/ttyDOESNOTEXIST7")
    battery = host.batteries[0]
    keeping.copies[battery.identity.unique_id] = good
    for _ in range(3):
        await battery.cycle()
    await battery.shutdown()
    assert not (tmp_path / "house.json").exists() and keeping.saved == []
    assert keeping.copies[battery.identity.unique_id] == good


async def test_saves_after_the_restore_go_to_every_sink(tmp_path: Path) -> None:
    keeping, recording = KeepingSink(), RecordingSink()
    host = _host(tmp_path, keeping)
    host.sinks.append(recording)  # a sink without a copy of its own: the defaults are no-ops
    battery = host.batteries[0]
    await battery.cycle()
    battery.pipeline.command("soc_reset", 55.0)
    await battery.cycle()
    await battery.shutdown()
    texts = [t for _, t in keeping.saved]
    assert texts and json.loads(texts[-1])["soc"] == {"soc": 55.0}
    assert texts[-1] == (tmp_path / "house.json").read_text()


async def test_run_restores_through_started_sinks(tmp_path: Path) -> None:
    keeping = KeepingSink()
    config, plugins = prepare_dict(
        {
            "host": {"poll_interval": 0.05, "state_dir": str(tmp_path)},
            "batteries": [{"driver": "jbd", "port": "sim:jbd?cells=4", "name": "a"}],
        }
    )
    host = Host(config, plugins, extra_sinks=[keeping])
    await asyncio.wait_for(host.run(duration=0.3), 5)
    assert keeping.restored and keeping.saved  # restored once, saved at shutdown
    assert keeping.saved[-1][1] == (tmp_path / "a.json").read_text()


def test_every_public_sink_method_is_documented() -> None:
    doc = (ROOT / "docs" / "plugins.md").read_text()
    section = doc.split("### `bmshost_register_sinks`", 1)[1].split("\n### ", 1)[0]
    methods = [n for n, _ in inspect.getmembers(Sink, inspect.isfunction) if not n.startswith("_")]
    assert {"start", "add_battery", "publish", "stop", "restore_state", "state_saved"} <= set(methods)
    for name in methods:
        assert re.search(rf"`(await )?{name}\(", section), f"docs/plugins.md does not document Sink.{name}"
