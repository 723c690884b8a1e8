"""Command payloads from ``<prefix>/<battery>/set/<control>`` turned into ``model.Command``.

Parsing accepts what Home Assistant and people type (``ON``/``OFF``, ``true``/``false``, ``1``/
``0``, ``80``, and the Venus-style ``{"value": 80}``); the checks on type, range and capability
are the core's ``bmshost.commands.validate``, the same function the D-Bus sink uses. Anything
else is refused with a reason and nothing is sent to the battery.
"""

from __future__ import annotations

import json
import math
from typing import Any

import attrs

from bmshost.capabilities import Capability
from bmshost.commands import validate
from bmshost.model import Command, CommandKind
from bmshost_sink_mqtt.topics import CONTROLS

MAX_COMMAND = 256  # bytes; a command is a word or a number
_ON = {"on", "true", "1"}
_OFF = {"off", "false", "0"}


@attrs.frozen(slots=True)
class Refusal:
    message: str


def _raw_value(payload: bytes) -> Any:
    if len(payload) > MAX_COMMAND:
        raise ValueError(f"payload too long ({len(payload)} bytes)")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError("payload is not UTF-8 text") from None
    if not text:
        raise ValueError("empty payload")
    try:
        value = json.loads(text)
    except ValueError:
        return text  # a bare word such as ON
    if isinstance(value, dict):
        if set(value) != {"value"}:
            raise ValueError('a JSON object must be {"value": ...}')
        value = value["value"]
    return value


def _switch(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _ON:
            return True
        if word in _OFF:
            return False
    raise ValueError(f"value must be ON/OFF, true/false or 1/0, not {value!r}")


def _percent(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"value must be a number of percent, not {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"value must be a number of percent, not {value!r}") from None
    if not math.isfinite(number):
        raise ValueError("value must be a finite number")
    return number


def parse_command(
    control: str, payload: bytes, capabilities: frozenset[Capability], origin: str = "mqtt"
) -> Command | Refusal:
    """Turn one command message into a validated ``Command``, or say why not."""
    kind = CONTROLS.get(control)
    if kind is None:
        known = ", ".join(sorted(CONTROLS))
        return Refusal(f"unknown control {control!r} (known: {known})")
    try:
        raw = _raw_value(payload)
        value: bool | float = _percent(raw) if kind is CommandKind.SOC_RESET else _switch(raw)
    except ValueError as exc:
        return Refusal(f"{control}: {exc}")
    command = Command(kind, value, origin=origin)
    reason = validate(command, capabilities)
    if reason is not None:
        return Refusal(reason)
    return command


def result_payload(control: str, raw: bytes, ok: bool, message: str, t: float) -> bytes:
    """The answer published on ``<prefix>/<battery>/result``."""
    shown = raw[:MAX_COMMAND].decode("utf-8", "replace")
    doc = {"control": control, "payload": shown, "ok": ok, "message": message, "t": round(t, 3)}
    return json.dumps(doc, separators=(",", ":")).encode()
