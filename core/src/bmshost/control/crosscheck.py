"""Checks of the limit options that span sections ([control.cvl] against [control.current_limits]
and [control.disconnect]). Each problem names the key path, like ``bmshost.options.structure``."""

from __future__ import annotations

from typing import Any

from bmshost.control.limit_options import CurrentLimitsOptions, CvlOptions, DisconnectOptions


def limit_problems(control: dict[str, Any]) -> list[str]:
    cvl = control.get("cvl")
    cur = control.get("current_limits")
    dis = control.get("disconnect")
    problems: list[str] = []
    if isinstance(cvl, CvlOptions) and isinstance(cur, CurrentLimitsOptions):
        top = cvl.max_cell_voltage
        if cvl.soc_reset_after_days is not None:
            top = max(top, cvl.soc_reset_cell_voltage)
        if cur.cccm_cv_enable:
            for x, f in zip(
                cur.cell_voltages_while_charging, cur.max_charge_current_cv_fraction, strict=True
            ):
                if f == 0.0 and x <= top:
                    problems.append(
                        f"control.current_limits.cell_voltages_while_charging: {x:g} V gives 0 A but is not "
                        f"above the charge target {top:g} V per cell (control.cvl), so the pack could never "
                        "reach absorption"
                    )
                    break
        if cur.dccm_cv_enable:
            for x, f in zip(
                cur.cell_voltages_while_discharging,
                cur.max_discharge_current_cv_fraction,
                strict=True,
            ):
                if f == 0.0 and x > cvl.min_cell_voltage:
                    problems.append(
                        f"control.current_limits.cell_voltages_while_discharging: {x:g} V gives 0 A but is above "
                        f"min_cell_voltage {cvl.min_cell_voltage:g} V (control.cvl)"
                    )
                    break
    if (
        isinstance(cvl, CvlOptions)
        and isinstance(dis, DisconnectOptions)
        and not dis.block_on_disconnect
    ):
        if dis.block_on_disconnect_voltage_min < cvl.min_cell_voltage:
            problems.append(
                "control.disconnect.block_on_disconnect_voltage_min: below control.cvl.min_cell_voltage"
            )
        if dis.block_on_disconnect_voltage_max > cvl.max_cell_voltage:
            problems.append(
                "control.disconnect.block_on_disconnect_voltage_max: above control.cvl.max_cell_voltage"
            )
    return problems
