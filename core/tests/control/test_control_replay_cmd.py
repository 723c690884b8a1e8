"""``bmshost control replay``: good traces, configuration, bad lines (exit status 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bmshost.capabilities import Capability
from bmshost.control_replay import OUTPUT_KEYS, TraceError, read_trace, replay_main


def write(path: Path, lines: list[object]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def line(t: float, cell: float = 3.30, **kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "t": t,
        "voltage": cell * 16,
        "current": 10.0,
        "soc": 60.0,
        "cell_voltages": [cell] * 16,
        "temperatures": [25.0, 26.0],
        "mosfet_temperature": None,
        "charge_fet": True,
        "discharge_fet": True,
        "capacity_ah": 100.0,
        "online": True,
    }
    base.update(kw)
    return base


def outputs(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(x) for x in capsys.readouterr().out.splitlines()]


def test_good_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = write(
        tmp_path / "day.jsonl",
        [
            line(0),
            line(1, 3.50),
            "",
            line(2, online=False, cell_voltages=None),
            line(3, mosfet_temperature=85.0),
        ],
    )
    assert replay_main([str(trace)]) == 0
    out = outputs(capsys)
    assert [tuple(o) for o in out] == [OUTPUT_KEYS] * 4
    assert out[0]["ccl"] == 50.0 and out[0]["cvl"] == 55.2 and out[0]["soc"] == 60.0
    assert out[0]["charge_mode"] == "Bulk \u2502 Linear Mode"
    assert (out[1]["ccl"], out[1]["charge_limitation"]) == (0.0, "Cell Voltage")
    assert out[2]["ccl"] == 0.0 and out[2]["t"] == 2  # offline: the last limits held
    assert (out[3]["ccl"], out[3]["charge_limitation"]) == (0.0, "MOSFET *")  # recovery hold


def test_mosfet_capability_is_inferred(tmp_path: Path) -> None:
    trace = write(tmp_path / "t.jsonl", [line(0), line(1, mosfet_temperature=40.0)])
    steps, caps = read_trace(trace.read_text().splitlines())
    assert Capability.MOSFET_TEMPERATURE in caps and Capability.BMS_CURRENT_LIMITS not in caps
    assert len(steps) == 2
    _, caps = read_trace([json.dumps(line(0, bms_charge_current_limit=20.0))])
    assert Capability.BMS_CURRENT_LIMITS in caps


def test_config_file_is_used(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bmshost.toml"
    config.write_text(
        "[control.current_limits]\nmax_battery_charge_current = 20.0\n[control.cvl]\nvoltage_drop = 0.1\n"
    )
    trace = write(tmp_path / "t.jsonl", [line(0)])
    assert replay_main([str(trace), "-c", str(config)]) == 0
    out = outputs(capsys)
    assert (out[0]["ccl"], out[0]["cvl"]) == (20.0, 55.3)


def test_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bmshost.toml"
    config.write_text(
        "[control.current_limits]\ncell_voltages_while_charging = [3.5, 3.3, 3.4, 3.45, 3.375]\n"
    )
    trace = write(tmp_path / "t.jsonl", [line(0)])
    assert replay_main([str(trace), "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert "cell_voltages_while_charging: breakpoints are not monotonic" in err


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "line 2: not valid JSON"),
        ("[1, 2]", "line 2: expected a JSON object"),
        (json.dumps({"t": "noon"}), "line 2: 't' must be a finite number"),
        (
            json.dumps({"t": 5, "cell_voltages": [3.3, "x"]}),
            "line 2: 'cell_voltages' must be a list",
        ),
        (json.dumps({"t": 5, "online": "no"}), "line 2: 'online' must be true or false"),
        (json.dumps({"t": 5, "soc": True}), "line 2: 'soc' must be a finite number or null"),
        (json.dumps({"t": 5, "charge_fet": 1}), "line 2: 'charge_fet' must be true, false or null"),
        (json.dumps({"t": 5, "colour": "red"}), "line 2: unknown field(s): colour"),
        (json.dumps({"t": -1}), "line 2: 't' goes backwards"),
    ],
)
def test_bad_line_exits_2_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str, message: str
) -> None:
    trace = write(tmp_path / "t.jsonl", [line(0), bad, line(9)])
    assert replay_main([str(trace)]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""  # nothing half-done is printed


def test_missing_trace_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert replay_main([str(tmp_path / "absent.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_trace_error_type() -> None:
    with pytest.raises(TraceError, match="line 1"):
        read_trace(["{"])


def test_module_entry_point_reads_stdin(tmp_path: Path) -> None:
    text = json.dumps(line(0)) + "\n" + json.dumps({"t": 1, "online": False}) + "\n"
    proc = subprocess.run(
        [sys.executable, "-m", "bmshost.control_replay", "-", "--explain"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 2
    assert "+ clamp" in proc.stderr
