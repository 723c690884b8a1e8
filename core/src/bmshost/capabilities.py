"""What a BMS driver can tell and do: the rows of the reference driver's comparison table.

The core consults these when it builds a battery's control pipeline (a stage that needs a MOSFET
temperature is left out for a BMS without one) and when it validates a write from a sink (a
charge-FET switch is refused for a BMS that cannot switch it).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Capability(enum.Enum):
    """One member per row of the "BMS feature comparison" table, plus SoH and heating.

    The value is the row title as the table prints it, so ``plugins --matrix`` can reproduce the
    table's shape.
    """

    VOLTAGE = "Voltage"
    CURRENT = "Current"
    POWER = "Power"
    SOC = "State of Charge"
    BATTERY_TEMPERATURE = "Battery temperature"
    MOSFET_TEMPERATURE = "MOSFET temperature"
    CAPACITY_INSTALLED = "Capacity installed"
    CAPACITY_AVAILABLE = "Capacity available"
    CAPACITY_CONSUMED = "Capacity consumed"
    MIN_MAX_CELL_VOLTAGE = "Min/max cell voltages"
    MIN_MAX_TEMPERATURE = "Min/max temperature"
    BALANCING_STATUS = "Balancing status"
    ALLOW_TO_CHARGE_STATE = "Allow to charge state"
    ALLOW_TO_DISCHARGE_STATE = "Allow to discharge state"
    ALLOW_TO_BALANCE_STATE = "Allow to balance state"
    SINGLE_CELL_DETAILS = "Single cell details"
    RAISE_ALARMS = "Raise alarms from the BMS"
    DAISY_CHAIN = "Daisy chain BMS with one cable"
    CHARGE_CYCLE_HISTORY = "History of charge cycles"
    BMS_CURRENT_LIMITS = "Get CCL/DCL from the BMS"
    SOC_RESET = "SOC reset via driver on BMS"
    DISABLE_CHARGING = "Disable charging via driver on BMS"
    DISABLE_DISCHARGING = "Disable discharging via driver on BMS"
    DISABLE_BALANCING = "Disable balancing via driver on BMS"
    SOH = "State of health"
    HEATING = "Heating status"

    @classmethod
    def parse(cls, name: str) -> Capability:
        """Look a capability up by member name, case-insensitively (``mosfet_temperature``)."""
        try:
            return cls[name.upper()]
        except KeyError:
            known = ", ".join(m.name.lower() for m in cls)
            raise ValueError(f"unknown capability {name!r} (known: {known})") from None


# Every BMS reports these; the comparison table says "Yes" for all drivers.
BASIC: frozenset[Capability] = frozenset(
    {
        Capability.VOLTAGE,
        Capability.CURRENT,
        Capability.POWER,
        Capability.SOC,
        Capability.BATTERY_TEMPERATURE,
    }
)


def caps(*members: Capability | Iterable[Capability]) -> frozenset[Capability]:
    """Build a capability set from members and iterables of members (BASIC included by the caller)."""
    out: set[Capability] = set()
    for m in members:
        if isinstance(m, Capability):
            out.add(m)
        else:
            out.update(m)
    return frozenset(out)
