"""``bmshost config import-ini config.ini [-o FILE]``: a dbus-serialbattery config.ini as TOML.

Every key of the ini's ``[DEFAULT]`` section is looked up, case-insensitively, as a field of the
registered built-in control stages' option classes (``[control.<section>]`` whose class has a field
named exactly the lower-cased key); ``LOGGING`` and ``POLL_INTERVAL`` go to ``[host]``. Values are
read the way the reference reads them (lists "a, b, c", booleans True/False, numbers; an empty
value means the reference's built-in default). Each converted section is validated with the same
strict structuring as ``bmshost.toml``; a value it rejects is reported and left out.

Everything that could not be mapped is reported on standard error, one line per key, with the
reason and, where there is one, the bmshost way to get the same. The exit status is non-zero
only when the input cannot be read or the output cannot be written.
"""

from __future__ import annotations

import argparse
import configparser
import json
import math
import os
import re
import sys
import tempfile
import types
import typing
from pathlib import Path
from typing import Any

import attrs

from bmshost.errors import ConfigError
from bmshost.options import structure

# Old option names the reference renamed (spec §7); the value keeps its meaning.
RENAMED: dict[str, str] = {
    "LINEAR_RECALCULATION_EVERY": "CVL_RECALCULATION_EVERY",
    "LINEAR_RECALCULATION_ON_PERC_CHANGE": "CVL_RECALCULATION_ON_MAX_PERCENTAGE_CHANGE",
    "MAX_VOLTAGE_TIME_SEC": "SWITCH_TO_FLOAT_WAIT_FOR_SEC",
    "CELL_VOLTAGE_DIFF_KEEP_MAX_VOLTAGE_UNTIL": "SWITCH_TO_FLOAT_CELL_VOLTAGE_DIFF",
    "CELL_VOLTAGE_DIFF_TO_RESET_VOLTAGE_LIMIT": "SWITCH_TO_BULK_CELL_VOLTAGE_DIFF",
    "SOC_LEVEL_TO_RESET_VOLTAGE_LIMIT": "SWITCH_TO_BULK_SOC_THRESHOLD",
    "CVL_ICONTROLLER_MODE": "CVL_CONTROLLER_MODE",
    "SOC_RESET_VOLTAGE": "SOC_RESET_CELL_VOLTAGE",
    "SEPLOS_USE_BMS_VALUES": "USE_BMS_DVCC_VALUES",
}
_RENAMED_PREFIXES = (
    ("SOC_CALC_CURRENT_", "CURRENT_"),
    ("EXTERNAL_CURRENT_SENSOR_", "EXTERNAL_SENSOR_"),
    ("TEMP_", "TEMPERATURE_"),
)
# Old names whose meaning changed: reported, not converted.
CHANGED_MEANING: dict[str, str] = {
    "LINEAR_LIMITATION_ENABLE": "replaced by CHARGE_MODE (1 linear, 2 step); set charge_mode",
    "CELL_VOLTAGE_DIFF_KEEP_MAX_VOLTAGE_TIME_RESTART": (
        "replaced by SWITCH_TO_FLOAT_CELL_VOLTAGE_DEVIATION with a different meaning"
    ),
    "MODBUS_ADDRESSES": "one [[batteries]] table per address, with address = 0x..",
    "SOC_RESET_CURRENT": "removed from the reference driver",
    "SOC_RESET_TIME": "removed from the reference driver",
}

_BATTERY = "describe each battery in its own [[batteries]] table"
_DRIVER_OPTION = (
    "a driver option: put it in the [[batteries]] table of a battery whose driver has it"
)
_MQTT_BATTERY = "an MQTT-fed battery is a [[batteries]] table of the mqtt driver"
# Reference options with no bmshost key, and why (spec §7).
UNMAPPED: dict[str, str] = {
    "BLUETOOTH_BMS": _BATTERY + ' (driver = "<family>", port = "ble://<MAC>")',
    "BLUETOOTH_USE_POLLING": "BLE drivers choose between polling and notifications themselves",
    "BLUETOOTH_FORCE_RESET_BLE_STACK": "bmshost never resets the system's Bluetooth stack",
    "BLUETOOTH_USE_USB": "an installer option of the reference driver (Raspberry Pi radio)",
    "CAN_PORT": _BATTERY + ' (port = "can://<interface>")',
    "SERIAL_STARTER_ENABLED": "an installer option; bmshost opens the [[batteries]] ports",
    "BATTERY_ADDRESSES": _BATTERY + " (one per address, address = 0x..)",
    "TIME_TO_SOC_INC_FROM": "has no effect in the reference driver",
    "BMS_TYPE": _BATTERY + ' (driver = "<family>", e.g. "jbd", "jk", "daly")',
    "EXCLUDED_DEVICES": "bmshost opens only the ports listed in [[batteries]]",
    "PUBLISH_CONFIG_VALUES": "the configuration is not published; `bmshost config` shows it",
    "PUBLISH_BATTERY_DATA_AS_JSON": "use the MQTT sink or the console sink's JSON output",
    "BATTERY_CELL_DATA_FORMAT": "a Venus D-Bus layout setting; see the venus sink's options",
    "GUI_PARAMETERS_SHOW_ADDITIONAL_INFO": "a reference GUI option",
    "GUI_INSTALL_CUSTOMIZATIONS": "an installer option of the reference driver",
    "TELEMETRY": "bmshost sends no telemetry",
    "USE_PORT_AS_UNIQUE_ID": "bmshost identifies a battery by serial number, else port and address",
    "UP16S_REQUIRE_DIRECT_CONNECTION": _DRIVER_OPTION,
    "INVERT_CURRENT_MEASUREMENT": _DRIVER_OPTION,
    "GREENMETER_ADDRESS": _DRIVER_OPTION,
    "LIPRO_START_ADDRESS": _DRIVER_OPTION,
    "LIPRO_END_ADDRESS": _DRIVER_OPTION,
    "LIPRO_CELL_COUNT": _DRIVER_OPTION,
    "UBMS_CAN_MODULE_SERIES": _DRIVER_OPTION,
    "UBMS_CAN_MODULE_PARALLEL": _DRIVER_OPTION,
    "MQTT_TOPIC": _MQTT_BATTERY,
    "MQTT_BROKER_ADDRESS": _MQTT_BATTERY,
    "MQTT_BROKER_PORT": _MQTT_BATTERY,
    "MQTT_TLS_ENABLED": _MQTT_BATTERY,
    "MQTT_TLS_PATH_TO_CA": _MQTT_BATTERY,
    "MQTT_TLS_INSECURE": _MQTT_BATTERY,
    "MQTT_USERNAME": _MQTT_BATTERY,
    "MQTT_PASSWORD": _MQTT_BATTERY,
    "BMS_CAPTURE_RAW_DATA": "bmshost records raw exchanges as capture files (capture mode)",
    "BMS_CAPTURE_RAW_DATA_MAX_SIZE_MB": "bmshost records raw exchanges as capture files",
    "BMS_CAPTURE_RAW_DATA_BACKUP_COUNT": "bmshost records raw exchanges as capture files",
}

# What an empty value means in the reference when it is not 0 (spec §6).
EMPTY_NUMBER: dict[str, float] = {
    "SWITCH_TO_FLOAT_CELL_VOLTAGE_DIFF": 10.0,
    "SWITCH_TO_BULK_CELL_VOLTAGE_DIFF": 10.0,
}

_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class Malformed(ValueError):
    """An ini value that cannot be read as the target type."""


@attrs.frozen
class Target:
    section: str
    field: str
    cls: type
    type: Any


@attrs.define
class Conversion:
    data: dict[str, dict[str, Any]]  # TOML tables: "host", "control.<section>"
    report: list[str]

    def toml(self) -> str:
        return dump_toml(self.data)


def stage_targets() -> dict[str, Target]:
    """Lower-case option name -> where it lives, from the registered built-in stages."""
    from bmshost.control.registration import register_stages
    from bmshost.registry import StageRegistry

    registry = StageRegistry()
    register_stages(registry)
    targets: dict[str, Target] = {}
    for spec in registry.ordered():
        cls = spec.options
        if cls is None or not attrs.has(cls):
            continue
        hints = typing.get_type_hints(cls)
        for field in attrs.fields(cls):
            targets.setdefault(
                field.name, Target(spec.config_section, field.name, cls, hints[field.name])
            )
    return targets


# -- values --------------------------------------------------------------------------------------


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    raise Malformed(f"expected True or False, got {text!r}")


def _int(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise Malformed(f"expected a whole number, got {text!r}") from None


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise Malformed(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise Malformed(f"expected a finite number, got {text!r}")
    return value


_SCALARS: dict[Any, Any] = {bool: _bool, int: _int, float: _float, str: lambda s: s}


def convert_value(key: str, text: str, type_: Any) -> tuple[bool, Any]:
    """(present, value) of an ini value for a field of type ``type_``; present=False: omit the
    key (an empty value that means "not set"). Raises ``Malformed``."""
    text = text.strip()
    origin = typing.get_origin(type_)
    args = typing.get_args(type_)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        if not text:
            return False, None
        return convert_value(key, text, inner[0]) if len(inner) == 1 else (True, text)
    if origin is list:
        item = _SCALARS.get(args[0] if args else str)
        if item is None:
            raise Malformed(f"cannot read a list of {args[0]!r}")
        return True, [item(part.strip()) for part in text.split(",") if part.strip()]
    reader = _SCALARS.get(type_)
    if reader is None:
        raise Malformed(f"cannot read a value of type {type_!r}")
    if not text:
        if type_ is str:
            return True, ""
        if type_ is bool:
            return True, False
        return True, type_(EMPTY_NUMBER.get(key, 0))
    return True, reader(text)


# -- conversion ----------------------------------------------------------------------------------


def _canonical(key: str, report: list[str]) -> str | None:
    upper = key.upper()
    if upper in CHANGED_MEANING:
        report.append(f"{key}: not mapped: old option name, {CHANGED_MEANING[upper]}")
        return None
    new = RENAMED.get(upper)
    if new is None:
        for old, replacement in _RENAMED_PREFIXES:
            if upper.startswith(old):
                new = replacement + upper.removeprefix(old)
                break
    if new is not None:
        report.append(f"{key}: old option name, read as {new}")
        return new
    return upper


def _host_value(key: str, text: str) -> tuple[str, Any] | None:
    text = text.strip()
    if key == "LOGGING":
        level = text.lower()
        if level not in _LOG_LEVELS:
            raise Malformed(f"expected one of {', '.join(_LOG_LEVELS)}, got {text!r}")
        return "log_level", level
    if key == "POLL_INTERVAL":
        if not text:
            return None  # empty: the driver's default interval
        value = _float(text)
        if value <= 0:
            raise Malformed(f"expected a positive number of seconds, got {text!r}")
        return "poll_interval", value
    raise KeyError(key)


def convert_ini(text: str) -> Conversion:
    """Convert config.ini text; never raises for bad content (it is reported)."""
    report: list[str] = []
    if not re.search(r"^\s*\[[^\]]+\]", text, re.M):
        report.append("(file): no [DEFAULT] header; reading every line as part of [DEFAULT]")
        text = "[DEFAULT]\n" + text
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text)
    except configparser.ParsingError as exc:
        for lineno, line in exc.errors:
            report.append(f"(line {lineno}): not an option line: {line.strip()!r}")
    except configparser.Error as exc:
        report.append(f"(file): cannot be read as an ini file: {exc}")
        return Conversion({}, report)
    for section in parser.sections():
        report.append(f"[{section}]: the reference reads only [DEFAULT]; this section is ignored")

    targets = stage_targets()
    data: dict[str, dict[str, Any]] = {}
    origin: dict[tuple[str, str], str] = {}  # (table, field) -> ini key, for messages
    for raw_key, value in parser.defaults().items():
        key = _canonical(raw_key, report)
        if key is None:
            continue
        if key in ("LOGGING", "POLL_INTERVAL"):
            try:
                mapped = _host_value(key, value)
            except Malformed as exc:
                report.append(f"{raw_key}: malformed value: {exc}")
                continue
            if mapped is not None:
                data.setdefault("host", {})[mapped[0]] = mapped[1]
            continue
        target = targets.get(key.lower())
        if target is None:
            reason = UNMAPPED.get(key, "unknown option (not a reference or bmshost option)")
            report.append(f"{raw_key}: not mapped: {reason}")
            continue
        try:
            present, converted = convert_value(key, value, target.type)
        except Malformed as exc:
            report.append(f"{raw_key}: malformed value: {exc}")
            continue
        if present:
            table = "control." + target.section
            data.setdefault(table, {})[target.field] = converted
            origin[(table, target.field)] = raw_key
    for table in [t for t in data if t.startswith("control.")]:
        cls = next(tg.cls for tg in targets.values() if "control." + tg.section == table)
        _validate(table, data[table], cls, origin, report)
        if not data[table]:
            del data[table]
    return Conversion(data, report)


def _validate(
    table: str,
    values: dict[str, Any],
    cls: type,
    origin: dict[tuple[str, str], str],
    report: list[str],
) -> None:
    """Drop values the options class rejects (reporting why) until the table validates."""
    for _ in range(len(values) + 1):
        try:
            structure(dict(values), cls, table)
            return
        except ConfigError as exc:
            problems = exc.problems
        dropped = False
        for problem in problems:
            named = [f for f in values if re.search(rf"\b{re.escape(f)}\b", problem)]
            for field in named:
                key = origin.get((table, field), field)
                report.append(f"{key}: rejected: {problem}")
                del values[field]
                dropped = True
        if not dropped:
            for field in list(values):
                report.append(
                    f"{origin.get((table, field), field)}: rejected: {'; '.join(problems)}"
                )
            values.clear()
            return


# -- TOML ----------------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON escapes are valid TOML escapes
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def dump_toml(tables: dict[str, dict[str, Any]]) -> str:
    """TOML text of ``{"host": {...}, "control.cvl": {...}}`` (dotted names are table paths)."""
    lines = ["# converted from a dbus-serialbattery config.ini by `bmshost config import-ini`"]
    for name, values in tables.items():
        header = ".".join(_toml_key(part) for part in name.split("."))
        lines.append("")
        lines.append(f"[{header}]")
        for key, value in values.items():
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def import_ini_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bmshost config import-ini",
        description="Convert a dbus-serialbattery config.ini into bmshost TOML.",
    )
    parser.add_argument("ini", help="the config.ini to convert")
    parser.add_argument("-o", "--output", help="write the TOML here (default: standard output)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        text = Path(args.ini).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{args.ini}: cannot read: {exc}", file=sys.stderr)
        return 1
    result = convert_ini(text)
    for line in result.report:
        print(line, file=sys.stderr)
    output = result.toml()
    if args.output:
        try:
            _write_atomically(Path(args.output), output)
        except OSError as exc:
            print(f"{args.output}: cannot write: {exc}", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(output)
    return 0
