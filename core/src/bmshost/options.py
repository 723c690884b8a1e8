"""Strict structuring of TOML data into attrs option classes, with errors that name the key path.

Every options class in bmshost and its plugins goes through ``structure``: an unknown key, a
wrong type or an out-of-range value (attrs validators) becomes ``ConfigError`` lines such as
``batteries[0].poll_interval: expected a number, got 'fast'``.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import ForbiddenExtraKeysError
from cattrs.v import transform_error

from bmshost.errors import ConfigError

T = TypeVar("T")

_converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)


def _strict_float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _strict_int(value: Any, _: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _strict_bool(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    return value


def _strict_str(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


_converter.register_structure_hook(float, _strict_float)
_converter.register_structure_hook(int, _strict_int)
_converter.register_structure_hook(bool, _strict_bool)
_converter.register_structure_hook(str, _strict_str)


def converter() -> cattrs.Converter:
    """The shared strict converter (plugins may register hooks for their own types)."""
    return _converter


def _format_exception(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, ForbiddenExtraKeysError):
        return "unknown key(s): " + ", ".join(sorted(exc.extra_fields))
    if isinstance(exc, KeyError):
        return "required key missing"
    if isinstance(exc, TypeError | ValueError):
        text = str(exc)
        # cattrs/attrs messages for literals and enums are long; keep the useful part.
        return text.split("\n")[0]
    return f"{type(exc).__name__}: {exc}"


_FIELD_MSG = re.compile(r"^'(?P<field>\w+)' (?P<rest>.*)$", re.S)
_PATH = re.compile(r"^(?P<msg>.*) @ \$(?P<path>.*)$", re.S)


def _path_join(prefix: str, path: str) -> str:
    path = path.lstrip(".")
    if not prefix:
        return path or "(top level)"
    if not path:
        return prefix
    return prefix + ("" if path.startswith("[") else ".") + path


def structure(data: Any, cls: type[T], path: str = "") -> T:
    """Structure ``data`` into ``cls``; raise ``ConfigError`` naming ``path.key: reason``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or '(top level)'}: expected a table, got {type(data).__name__}")
    try:
        return _converter.structure(data, cls)
    except Exception as exc:  # cattrs raises exception groups; turn each leaf into a line
        problems = []
        for line in transform_error(exc, format_exception=_format_exception):
            m = _PATH.match(line)
            if not m:
                problems.append(f"{path or '(top level)'}: {line}")
                continue
            msg, sub = m.group("msg"), m.group("path")
            # attrs validators run in __init__ and name their field: "'x' must be > 0: -1".
            fm = _FIELD_MSG.match(msg)
            if fm:
                sub = f"{sub}.{fm.group('field')}"
                msg = fm.group("rest")
            if msg.startswith("unknown key(s): "):
                for key in msg.removeprefix("unknown key(s): ").split(", "):
                    problems.append(f"{_path_join(path, sub + '.' + key)}: unknown key")
            else:
                problems.append(f"{_path_join(path, sub)}: {msg}")
        raise ConfigError(problems) from None


def unstructure(obj: Any) -> Any:
    return _converter.unstructure(obj)


def defaults_of(cls: type[Any]) -> dict[str, Any]:
    """The default value of every option (for docs and ``config import-ini``)."""
    out: dict[str, Any] = {}
    for field in attrs.fields(cls):
        if field.default is attrs.NOTHING:
            continue
        default = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()  # type: ignore[call-arg]
        out[field.name] = default
    return out
