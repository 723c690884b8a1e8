"""Python values to D-Bus variants and their text, the way Venus consumers expect them.

Invalid (``None``) travels as an empty array of int32; bool before int (bool is an int in
Python); an int that does not fit int32 goes as int64. Everything else dbus-python guesses
correctly from the Python type, which is cheaper than building dbus.* wrappers every cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import dbus

INVALID_TEXT = "---"
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1

# One shared, immutable-by-convention invalid value.
INVALID = dbus.Array([], signature="i")

Value = float | int | str | bool | None


def wire(value: Value) -> Any:
    """The object to append to a message for a ``v`` slot."""
    if value is None:
        return INVALID
    if type(value) is int and not _INT32_MIN <= value <= _INT32_MAX:
        return dbus.Int64(value)
    return value


def unwire(value: Any) -> Value:
    """A received variant as a plain Python value (empty array → None)."""
    if isinstance(value, dbus.Array | list) and len(value) == 0:
        return None
    if isinstance(value, dbus.Boolean | bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    raise TypeError(f"unsupported value {value!r}")


def same(a: Value, b: Value) -> bool:
    """Equal value *and* type: 1, 1.0 and True are different things on the bus."""
    return type(a) is type(b) and a == b


Formatter = Callable[[Any], str]


def unit(fmt: str) -> Formatter:
    """A text formatter such as ``unit("{:.2f}V")``."""
    return fmt.format


def text_of(path: str, value: Value, formats: Mapping[str, Formatter | None]) -> str:
    if value is None:
        return INVALID_TEXT
    fmt = formats.get(path)
    if fmt is not None:
        try:
            return fmt(value)
        except (ValueError, TypeError):  # a text callback must never break a reply
            return str(value)
    if path == "/ProductId" and type(value) is int:
        return f"0x{value:X}"
    return str(value)
