"""The JK family's own keys in a ``[[batteries]]`` table (validated strictly by the core)."""

from __future__ import annotations

from typing import Any

import attrs


def _one_of(*allowed: str) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in allowed:
            raise ValueError(f"{attribute.name} must be one of {', '.join(allowed)}, not {value!r}")

    return check


@attrs.define(kw_only=True)
class JkOptions:
    # BLE: cell-info layout. "auto" takes it from the firmware version in the device-info
    # record (< 11 -> 24 cell slots), "24s"/"32s" force it for firmware that reports oddly.
    layout: str = attrs.field(default="auto", validator=_one_of("auto", "24s", "32s"))
    # CAN v1: what a positive BATT_ST current means. The vendor document says discharge; the
    # reference driver publishes it as charge. Set "discharge" if your bank shows the wrong sign.
    can_current_positive: str = attrs.field(
        default="charge", validator=_one_of("charge", "discharge")
    )
    # CAN v1 sends no cell list and no cell count: the count is estimated from the pack voltage
    # and the two extreme cells and latched (bmshost.cellcount); set it here to skip estimating.
    cells: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional([attrs.validators.ge(1), attrs.validators.le(64)]),
    )
    # CAN: forget a frame not repeated within this many seconds (the BMS went quiet).
    can_max_age: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    # PB on RS485: quiet time between two commands on the bus; faster bursts cause cross-talk.
    pb_command_gap: float = attrs.field(
        default=0.1, validator=[attrs.validators.ge(0), attrs.validators.le(2)]
    )

    @property
    def layout_slots(self) -> int | None:
        return {"24s": 24, "32s": 32}.get(self.layout)
