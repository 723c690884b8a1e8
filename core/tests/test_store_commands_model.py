"""Persisted state, write validation and the model's JSON contract."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bmshost.capabilities import Capability, caps
from bmshost.commands import validate
from bmshost.model import Command, CommandKind, Identity, Sample, alarms_from_bits
from bmshost.store import BatteryState, atomic_write_text


def test_state_round_trip_and_coalescing(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    state = BatteryState(path, min_interval=60)
    state.section("soc")["value"] = 51.5
    assert state.maybe_save(0.0)
    state.section("soc")["value"] = 52.0
    assert not state.maybe_save(10.0)  # too soon: flash is spared
    assert state.maybe_save(10.0, force=True)
    assert BatteryState(path).section("soc") == {"value": 52.0}
    assert not state.maybe_save(200.0)  # unchanged: not rewritten


def test_corrupt_state_file_starts_fresh(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "b.json"
    path.write_text('{"soc": {"value": 5')
    assert BatteryState(path).sections == {}
    assert "corrupt" in caplog.text


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "x" / "y.json"
    atomic_write_text(path, "1")
    atomic_write_text(path, "2")
    assert path.read_text() == "2"
    assert os.listdir(path.parent) == ["y.json"]


def test_unserialisable_state_is_not_written(tmp_path: Path) -> None:
    state = BatteryState(tmp_path / "b.json")
    state.section("x")["bad"] = float("nan")
    assert not state.maybe_save(0, force=True)
    assert not (tmp_path / "b.json").exists()


@pytest.mark.parametrize(
    ("command", "capabilities", "refused"),
    [
        (Command(CommandKind.CHARGE_FET, False), caps(Capability.DISABLE_CHARGING), None),
        (Command(CommandKind.CHARGE_FET, False), caps(), "cannot do that"),
        (Command(CommandKind.CHARGE_FET, 0), caps(Capability.DISABLE_CHARGING), "true or false"),
        (Command(CommandKind.BALANCE, True), caps(Capability.DISABLE_BALANCING), None),
        (Command(CommandKind.SOC_RESET, 100), caps(Capability.SOC_RESET), None),
        (Command(CommandKind.SOC_RESET, 101), caps(Capability.SOC_RESET), "outside"),
        (Command(CommandKind.SOC_RESET, float("nan")), caps(Capability.SOC_RESET), "number"),
        (Command(CommandKind.SOC_RESET, True), caps(Capability.SOC_RESET), "number"),
    ],
)
def test_command_validation(command: Command, capabilities: frozenset[Capability], refused: str | None) -> None:
    reason = validate(command, capabilities)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason


def test_sample_json_contract_and_merge() -> None:
    a = Sample(voltage=53.1, current=-2.0, alarms={"low_voltage": 0}, extra={"a": 1})
    b = Sample(cell_voltages=[3.3, 3.31], alarms={"high_voltage": 1}, extra={"b": 2})
    merged = a.merge(b).fill_derived()
    data = merged.to_json_dict()
    assert list(data) == ["voltage", "current", "power", "cell_voltages", "alarms", "extra"]
    assert data["power"] == pytest.approx(-106.2)
    assert data["alarms"] == {"low_voltage": 0, "high_voltage": 1}
    assert Sample.from_json_dict(json.loads(json.dumps(data))) == merged
    assert merged.min_cell_voltage == 3.3 and merged.max_cell_voltage == 3.31 and merged.cell_count == 2
    with pytest.raises(ValueError, match="unknown sample field"):
        Sample.from_json_dict({"volts": 1})


def test_alarm_names_and_levels_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown alarm"):
        Sample(alarms={"too_hot": 2})
    with pytest.raises(ValueError, match="0, 1 or 2"):
        Sample(alarms={"low_voltage": 3})
    assert alarms_from_bits(0b101, {0: "low_voltage", 1: "high_voltage", 2: "low_voltage"}) == {
        "low_voltage": 2,
        "high_voltage": 0,
    }


def test_identity_prefers_serial_over_port() -> None:
    by_port = Identity(driver="jbd", variant="serial", port="/dev/ttyUSB0", address=1)
    assert by_port.unique_id == "jbd_ttyUSB0_01"
    by_serial = Identity(driver="jbd", variant="serial", port="/dev/ttyUSB3", serial_number="SN 42")
    assert by_serial.unique_id == "jbd_SN_42"
