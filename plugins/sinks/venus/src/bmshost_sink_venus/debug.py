"""``/Info/ChargeModeDebug*``: the control pipeline explaining itself, for the GUI's debug rows.

Filled only with ``charge_mode_debug = true`` (else the three paths hold ""). The texts come from
what the pipeline already knows: each limit with the stage that set it and its reason (the
``Limits`` setter/reason fields), which stages run and why (the ``--explain`` list), and for the
charge voltage the conditions of the bulk/absorption → float and float → bulk switches with the
current values against their thresholds, worded by the CVL stage's own module
(``bmshost.control.cvl_explain``) so they follow its rules. The handle's ``pipeline`` (the host's
``Battery`` has one) and its ``cvl`` stage are read, never changed; a pipeline without them gives
shorter texts, never an error. Computed on the event loop, so it sees the pipeline between two cycles.
"""

from __future__ import annotations

from typing import Any

from bmshost.control import cvl_explain
from bmshost.control.cvl import CvlStage
from bmshost.model import Derived, Limits, Sample
from bmshost.sink import BatteryUpdate

DEBUG = "/Info/ChargeModeDebug"
DEBUG_FLOAT = "/Info/ChargeModeDebugFloat"
DEBUG_BULK = "/Info/ChargeModeDebugBulk"
PATHS = (DEBUG, DEBUG_FLOAT, DEBUG_BULK)


def _yes(ok: bool) -> str:
    return "yes" if ok else "no"


def _limit(label: str, value: float | None, unit: str, by: str | None, why: str | None) -> str:
    if value is None:
        return f"{label} -"
    text = f"{label} {value:.2f} {unit}"
    if by:
        text += f" ({by})"
    if why:
        text += f": {why}"
    return text


def _cvl_stage(battery: Any) -> Any:
    pipeline = getattr(battery, "pipeline", None)
    for stage in getattr(pipeline, "stages", ()) or ():
        if getattr(stage, "name", None) == "cvl":
            return stage
    return None


def overview(update: BatteryUpdate, battery: Any) -> str:
    lim = update.limits or Limits()
    lines = [
        f"mode: {lim.charge_mode or '-'}",
        _limit("CVL", lim.cvl, "V", lim.cvl_set_by, None),
        _limit("CCL", lim.ccl, "A", lim.ccl_set_by, lim.charge_limitation),
        _limit("DCL", lim.dcl, "A", lim.dcl_set_by, lim.discharge_limitation),
    ]
    if lim.allow_to_charge is not None or lim.allow_to_discharge is not None:
        lines.append(
            f"allowed: charge {_yes(bool(lim.allow_to_charge))}, "
            f"discharge {_yes(bool(lim.allow_to_discharge))}"
        )
    if not update.online:
        lines.append("BMS silent: " + (update.connection_info or "no answer"))
    pipeline = getattr(battery, "pipeline", None)
    explain = getattr(pipeline, "explain", None)
    if callable(explain):
        included: list[tuple[str, str]] = []
        left_out: list[tuple[str, str]] = []
        for name, used, why in explain():
            (included if used else left_out).append((name, why))
        lines.append("stages: " + ", ".join(name for name, _ in included))
        lines.extend(f"not used: {name} ({why})" for name, why in left_out)
    return "\n".join(lines)


def _soc(sample: Sample | None, derived: Derived | None) -> float | None:
    if derived is not None and derived.soc is not None:
        return derived.soc
    return sample.soc if sample is not None else None


def switch_conditions(update: BatteryUpdate, battery: Any) -> tuple[str, str]:
    """(float text, bulk text): the CVL stage explains its own switches (``cvl_explain``)."""
    stage = _cvl_stage(battery)
    if not isinstance(stage, CvlStage):
        return "no CVL stage runs", "no CVL stage runs"
    cvl = update.limits.cvl if update.limits is not None else None
    return cvl_explain.switch_conditions(
        stage, update.sample, _soc(update.sample, update.derived), cvl, update.t
    )


def texts(update: BatteryUpdate, battery: Any) -> dict[str, str]:
    """The three debug paths with their texts."""
    float_text, bulk_text = switch_conditions(update, battery)
    return {DEBUG: overview(update, battery), DEBUG_FLOAT: float_text, DEBUG_BULK: bulk_text}
