"""SetValue on the battery service: what a write means and whether it is allowed.

Pure decisions, no I/O: ``decide`` maps (path, value, battery face) to a ``Write``. Result codes
follow the BusItem contract: 0 accepted, 1 not writable here (read-only path, a control the
battery cannot perform, or a value of the wrong type), 2 the right type but refused (out of
range, or the battery/stage said no when the write was performed).
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from bmshost.capabilities import Capability
from bmshost.model import Command, CommandKind

from . import paths as P
from .encoding import Value
from .render import Face

ACCEPTED, NOT_WRITABLE, REFUSED = 0, 1, 2
MAX_NAME_LENGTH = 64
ORIGIN = "venus"


@attrs.frozen(kw_only=True)
class Write:
    code: int
    reason: str = ""
    value: Value = None  # what the path holds after an accepted write
    command: Command | None = None  # performed by the battery (BatteryHandle.submit)
    stage: tuple[str, Any] | None = None  # forwarded to the control stages
    soc_reset: float | None = None  # stages first (calculated SoC), else the BMS

    @property
    def needs_battery(self) -> bool:
        return self.command is not None or self.stage is not None or self.soc_reset is not None


def _refuse(code: int, reason: str) -> Write:
    return Write(code=code, reason=reason)


def _as_int(value: Value) -> int | None:
    """Integers, booleans and integral doubles are all fine for a switch; strings are not."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


_SWITCHES: dict[str, tuple[Capability, CommandKind, str]] = {
    P.FORCE_CHARGING_OFF: (
        Capability.DISABLE_CHARGING,
        CommandKind.CHARGE_FET,
        "force_charging_off",
    ),
    P.FORCE_DISCHARGING_OFF: (
        Capability.DISABLE_DISCHARGING,
        CommandKind.DISCHARGE_FET,
        "force_discharging_off",
    ),
    P.TURN_BALANCING_OFF: (Capability.DISABLE_BALANCING, CommandKind.BALANCE, "turn_balancing_off"),
}


def decide(path: str, value: Value, face: Face) -> Write:
    if path not in P.WRITABLE:
        return _refuse(NOT_WRITABLE, f"{path} is read-only")
    if path == P.CUSTOM_NAME:
        if not isinstance(value, str):
            return _refuse(NOT_WRITABLE, "the custom name must be a string")
        if len(value) > MAX_NAME_LENGTH or any(ord(c) < 32 for c in value):
            return _refuse(
                REFUSED, f"the custom name must be at most {MAX_NAME_LENGTH} printable characters"
            )
        return Write(code=ACCEPTED, value=value)
    number = _as_int(value)
    if path in _SWITCHES:
        capability, kind, _ = _SWITCHES[path]
        if capability not in face.capabilities:
            return _refuse(
                NOT_WRITABLE, f"{path}: this battery cannot do that ({capability.value}: no)"
            )
        if number is None:
            return _refuse(NOT_WRITABLE, f"{path} takes 0 or 1")
        if number not in (0, 1):
            return _refuse(REFUSED, f"{path} takes 0 or 1, not {number}")
        # The path says "off"; the command says "allowed".
        return Write(code=ACCEPTED, value=number, command=Command(kind, not bool(number), ORIGIN))
    if path in (P.RESET_SOC_TO, P.RESET_SOC_APPLY) and not face.soc_reset_paths:
        return _refuse(NOT_WRITABLE, f"{path}: this battery has no SoC reset")
    if path == P.RESET_SOC_TO:
        if number is None:
            if isinstance(value, float) and math.isfinite(value):
                number = round(value)  # a SoC target of 80.4 % means 80 %
            else:
                return _refuse(NOT_WRITABLE, f"{path} takes a number of percent")
        if not 0 <= number <= 100:
            return _refuse(REFUSED, f"{path}: {number} is outside 0..100 %")
        return Write(code=ACCEPTED, value=number)
    if path == P.RESET_SOC_APPLY:
        if number is None:
            return _refuse(NOT_WRITABLE, f"{path} takes an integer")
        if number == 0:
            return Write(code=ACCEPTED, value=0)
        # A trigger: the path stays 0 so the next apply is again a change.
        return Write(code=ACCEPTED, value=0, soc_reset=float(face.reset_soc_to))
    # /History/Clear: 1 all, 2 capacity, 3 voltages, 4 times, 5 alarm counters, 6 temperatures,
    # 7 energy
    if number is None:
        return _refuse(NOT_WRITABLE, f"{path} takes an integer 0..7")
    if not 0 <= number <= 7:
        return _refuse(REFUSED, f"{path}: {number} is not a history group (1..7)")
    if number == 0:
        return Write(code=ACCEPTED, value=0)
    return Write(code=ACCEPTED, value=0, stage=("history_clear", number))


def apply_to_face(path: str, write: Write, face: Face) -> None:
    """Remember an accepted write in the face so later cycles render it."""
    if path == P.CUSTOM_NAME:
        face.custom_name = str(write.value)
    elif path in _SWITCHES:
        setattr(face, _SWITCHES[path][2], int(write.value or 0))
    elif path == P.RESET_SOC_TO:
        face.reset_soc_to = int(write.value or 0)
