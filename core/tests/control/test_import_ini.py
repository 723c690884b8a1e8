"""`bmshost config import-ini`: config.ini (all 121 reference options) to TOML."""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path
from typing import Any

import attrs
import pytest

from bmshost.config import HostOptions
from bmshost.control.registration import register_stages
from bmshost.import_ini import convert_ini, dump_toml, import_ini_main, stage_targets
from bmshost.options import defaults_of, structure
from bmshost.registry import StageRegistry

DEFAULT_INI = Path(__file__).parent / "data" / "config_default.ini"

MY_SECTIONS = ("soc", "sensor", "temperature", "time_to_go", "midpoint", "history", "alarms")


def reference_options() -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(DEFAULT_INI.read_text())
    return dict(parser.defaults())


def reference_keys() -> list[str]:
    return list(reference_options())


def sections() -> dict[str, type]:
    registry = StageRegistry()
    register_stages(registry)
    return {s.config_section: s.options for s in registry if s.options is not None}


def test_the_fixture_has_all_121_reference_options() -> None:
    keys = reference_keys()
    assert len(keys) == 121 and len(set(keys)) == 121


def test_every_reference_option_is_converted_or_reported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert import_ini_main([str(DEFAULT_INI)]) == 0
    out, err = capsys.readouterr()
    data = tomllib.loads(out)
    reported = {line.split(":", 1)[0] for line in err.splitlines()}
    converted = {k for table in data.get("control", {}).values() for k in table} | set(
        data.get("host", {})
    )
    targets = stage_targets()
    for key, value in reference_options().items():
        if key.lower() in targets:
            # an empty value of an optional field means "not set" and is left out
            assert key.lower() in converted or not value, key
        elif key in ("LOGGING",):
            assert data["host"]["log_level"] == "info"
        elif key == "POLL_INTERVAL":
            assert "poll_interval" not in data.get("host", {})  # empty: the driver's default
        else:
            assert key in reported, key
    # the keys of this area are all mapped
    for key in (
        "SOC_CALCULATION",
        "CURRENT_REPORTED_BY_BMS",
        "TIME_TO_SOC_POINTS",
        "HISTORY_ENABLE",
        "TEMPERATURE_MOS_ADJUST",
        "SOC_LOW_ALARM",
        "EXTERNAL_SENSOR_DBUS_PATH_SOC",
        "MIDPOINT_ENABLE",
        "BATTERY_CAPACITY",
        "AUTO_RESET_SOC",
        "TEMPERATURE_SOURCE_BATTERY",
    ):
        assert key not in reported, key


def test_converted_defaults_validate_and_equal_bmshost_defaults_for_this_area() -> None:
    result = convert_ini(DEFAULT_INI.read_text())
    data = tomllib.loads(result.toml())
    known = sections()
    for name, table in data["control"].items():
        options: Any = structure(table, known[name], f"control.{name}")  # each one validates
        if name in MY_SECTIONS:
            assert attrs.asdict(options) == defaults_of(known[name]), name
    structure(data["host"], HostOptions, "host")
    assert not [line for line in result.report if "malformed" in line or "rejected" in line]


def test_values_are_parsed_like_the_reference(tmp_path: Path) -> None:
    ini = tmp_path / "config.ini"
    ini.write_text(
        "[DEFAULT]\n"
        "SOC_CALCULATION = true\n"
        "TIME_TO_SOC_POINTS = 100, 95,, 90 ,\n"
        "TEMPERATURE_1_ADJUST = -1.5, 1.02\n"
        "CURRENT_REPORTED_BY_BMS = -300, -0.5, 0.5, 300\n"
        "CURRENT_MEASURED_BY_USER = -300, 0, 0, 300\n"
        'temperature_2_name = Cells "top"\n'
        "POLL_INTERVAL = 2.5\n"
        "LOGGING = DEBUG\n"
        "SOC_LOW_WARNING = 25\n"
    )
    out = tmp_path / "bmshost.toml"
    assert import_ini_main([str(ini), "-o", str(out)]) == 0
    data = tomllib.loads(out.read_text())
    assert data["host"] == {"poll_interval": 2.5, "log_level": "debug"}
    soc = data["control"]["soc"]
    assert soc["soc_calculation"] is True
    assert soc["current_measured_by_user"] == [-300.0, 0.0, 0.0, 300.0]
    assert data["control"]["time_to_go"]["time_to_soc_points"] == [100, 95, 90]
    assert data["control"]["temperature"]["temperature_1_adjust"] == [-1.5, 1.02]
    assert data["control"]["temperature"]["temperature_2_name"] == 'Cells "top"'
    assert data["control"]["alarms"]["soc_low_warning"] == 25.0


def test_bad_input_is_reported_and_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ini = tmp_path / "config.ini"
    ini.write_text(
        "[DEFAULT]\n"
        "SOC_CALCULATION = yes\n"  # not True/False
        "BATTERY_CAPACITY = lots\n"  # not a number
        "TIME_TO_SOC_VALUE_TYPE = 1.5\n"  # integer option with decimals
        "TIME_TO_SOC_POINTS = 10, abc\n"
        "SOC_LOW_ALARM = 150\n"  # out of range: rejected by validation
        "CURRENT_REPORTED_BY_BMS = -300, 0, 300\n"  # shape differs from the measured table
        "MY_OWN_OPTION = 1\n"
        "this line is not an option\n"
        "LOGGING = LOUD\n"
        "HISTORY_ENABLE = False\n"
        "[EXTRA]\n"
        "X = 1\n"
    )
    assert import_ini_main([str(ini)]) == 0
    out, err = capsys.readouterr()
    lines = err.splitlines()

    def about(key: str) -> str:
        found = [line for line in lines if line.startswith(key + ":")]
        assert found, f"{key} not reported in {lines}"
        return found[0]

    assert "expected True or False" in about("SOC_CALCULATION")
    assert "expected a number" in about("BATTERY_CAPACITY")
    assert "whole number" in about("TIME_TO_SOC_VALUE_TYPE")
    assert "whole number" in about("TIME_TO_SOC_POINTS")
    assert "rejected" in about("SOC_LOW_ALARM")
    assert "same length" in about("CURRENT_REPORTED_BY_BMS")
    assert "unknown option" in about("MY_OWN_OPTION")
    assert "LOGGING" in err and "LOUD" in err
    assert any("not an option line" in line for line in lines)
    assert any("[EXTRA]" in line for line in lines)
    data = tomllib.loads(out)
    assert data["control"]["history"] == {"history_enable": False}  # the good key survives
    assert "soc" not in data["control"] or "battery_capacity" not in data["control"]["soc"]


def test_old_option_names_are_read_under_their_new_names(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ini = tmp_path / "config.ini"
    ini.write_text(
        "[DEFAULT]\nTEMP_1_NAME = inside\nSOC_CALC_CURRENT_REPORTED_BY_BMS = -100, 100\n"
        "SOC_CALC_CURRENT_MEASURED_BY_USER = -100, 100\nLINEAR_LIMITATION_ENABLE = True\n"
    )
    assert import_ini_main([str(ini)]) == 0
    out, err = capsys.readouterr()
    data = tomllib.loads(out)
    assert data["control"]["temperature"]["temperature_1_name"] == "inside"
    assert data["control"]["soc"]["current_reported_by_bms"] == [-100.0, 100.0]
    assert "TEMP_1_NAME: old option name, read as TEMPERATURE_1_NAME" in err
    assert "LINEAR_LIMITATION_ENABLE: not mapped" in err


def test_a_file_without_header_is_read_with_a_note(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ini = tmp_path / "config.ini"
    ini.write_text("MIDPOINT_ENABLE = True\n")
    assert import_ini_main([str(ini)]) == 0
    out, err = capsys.readouterr()
    assert tomllib.loads(out)["control"]["midpoint"] == {"midpoint_enable": True}
    assert "no [DEFAULT] header" in err


def test_empty_values_mean_the_reference_defaults() -> None:
    data = tomllib.loads(
        convert_ini(
            "[DEFAULT]\nTIME_TO_SOC_POINTS =\nSOC_LOW_WARNING =\nTEMPERATURE_1_NAME =\n"
        ).toml()
    )
    assert data["control"]["time_to_go"]["time_to_soc_points"] == []
    assert "soc_low_warning" not in data["control"].get("alarms", {})  # optional: not set
    assert data["control"]["temperature"]["temperature_1_name"] == ""


def test_unreadable_files_exit_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert import_ini_main([str(tmp_path / "missing.ini")]) == 1
    assert "cannot read" in capsys.readouterr().err
    binary = tmp_path / "binary.ini"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert import_ini_main([str(binary)]) == 1
    ini = tmp_path / "config.ini"
    ini.write_text("[DEFAULT]\nHISTORY_ENABLE = True\n")
    assert import_ini_main([str(ini), "-o", str(tmp_path / "no" / "such" / "dir.toml")]) == 1
    assert import_ini_main([]) != 0  # usage error


def test_toml_writer_round_trips() -> None:
    tables: dict[str, dict[str, Any]] = {
        "host": {"log_level": "info", "poll_interval": 1.0},
        "control.x": {
            "a": [1, 2],
            "b": [1.5, -2e-05],
            "c": True,
            "d": 'q"\\\n\t\u00e9',
            "weird key": 3,
        },
    }
    data = tomllib.loads(dump_toml(tables))
    assert data["host"] == tables["host"]
    assert data["control"]["x"] == tables["control.x"]
