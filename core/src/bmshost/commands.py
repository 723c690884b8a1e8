"""Validation of writes that sinks ask a battery to perform — one place for every sink.

A D-Bus SetValue and an MQTT command go through the same checks: the value's type and range,
and the battery's capabilities (a charge-FET switch only where the driver can switch it).
"""

from __future__ import annotations

import math

from bmshost.capabilities import Capability
from bmshost.model import Command, CommandKind

REQUIRED: dict[CommandKind, Capability] = {
    CommandKind.CHARGE_FET: Capability.DISABLE_CHARGING,
    CommandKind.DISCHARGE_FET: Capability.DISABLE_DISCHARGING,
    CommandKind.BALANCE: Capability.DISABLE_BALANCING,
    CommandKind.SOC_RESET: Capability.SOC_RESET,
}


def validate(command: Command, capabilities: frozenset[Capability]) -> str | None:
    """Return why ``command`` must be refused, or None when it may run."""
    needed = REQUIRED[command.kind]
    if needed not in capabilities:
        return f"{command.kind.value}: this battery's driver cannot do that ({needed.value}: no)"
    value = command.value
    if command.kind is CommandKind.SOC_RESET:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return "soc_reset: value must be a number of percent"
        if not 0 <= value <= 100:
            return f"soc_reset: {value} is outside 0..100 %"
        return None
    if not isinstance(value, bool):
        return f"{command.kind.value}: value must be true or false"
    return None
