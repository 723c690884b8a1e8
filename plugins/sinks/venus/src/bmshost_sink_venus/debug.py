"""``/Info/ChargeModeDebug*``: the control pipeline explaining itself, for the GUI's debug rows.

Filled only with ``charge_mode_debug = true`` (else the three paths hold ""). The texts come from
what the pipeline already knows: each limit with the stage that set it and its reason (the
``Limits`` setter/reason fields), which stages run and why (the ``--explain`` list), and for the
charge voltage the conditions of the bulk/absorption → float and float → bulk switches with the
current values against their thresholds. The handle's ``pipeline`` (the host's ``Battery`` has
one) and its ``cvl`` stage are read, never changed; a pipeline without them gives shorter texts,
never an error. Computed on the event loop, so it sees the pipeline between two cycles.
"""

from __future__ import annotations

from typing import Any

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


def _cells(sample: Sample | None) -> list[float]:
    return [c for c in (sample.cell_voltages or []) if c == c] if sample else []


def _soc(sample: Sample | None, derived: Derived | None) -> float | None:
    if derived is not None and derived.soc is not None:
        return derived.soc
    return sample.soc if sample is not None else None


def switch_conditions(update: BatteryUpdate, battery: Any) -> tuple[str, str]:
    """(float text, bulk text): what the CVL stage waits for to switch, with the values now."""
    stage = _cvl_stage(battery)
    o = getattr(stage, "o", None)
    if stage is None or o is None:
        return "no CVL stage runs", "no CVL stage runs"
    if not getattr(o, "cvcm_enable", True):
        text = "cvcm_enable is off: CVL stays at max_cell_voltage × cells"
        return text, text
    phase = getattr(getattr(stage, "phase", None), "value", "?")
    started = getattr(stage, "absorption_start", None)
    reset = bool(getattr(stage, "soc_reset_requested", False))
    cells = _cells(update.sample)
    soc = _soc(update.sample, update.derived)
    state = "absorption" if started is not None else phase
    head = f"state: {state}" + (" (SoC-reset charge due)" if reset else "")
    if not cells:
        return head + "; no cell voltages", head + "; no cell voltages"
    total, spread = sum(cells), max(cells) - min(cells)
    cell_target = o.soc_reset_cell_voltage if reset else o.max_cell_voltage
    target = round(cell_target * len(cells), 2)
    diff = o.switch_to_float_cell_voltage_diff
    t = update.t
    if state == "bulk":
        float_text = (
            f"{head}\nabsorption starts when cell sum {total:.2f} V >= {target:.2f} V: "
            f"{_yes(total >= target - 0.0005)}, and cell spread {spread:.3f} V <= {diff:.3f} V: "
            f"{_yes(spread <= diff + 1e-6)}\nthen float after {o.switch_to_float_wait_for_sec:.0f} s"
        )
    elif state == "absorption" and isinstance(started, int | float):
        held = max(0.0, t - started)
        limit = diff + o.switch_to_float_cell_voltage_deviation
        float_text = (
            f"{head}\nfloat after {o.switch_to_float_wait_for_sec:.0f} s, held {held:.0f} s; "
            f"restarts if cell spread {spread:.3f} V > {limit:.3f} V; "
            f"back to bulk if cell sum {total:.2f} V < {target - 0.5:.2f} V"
        )
    else:
        cvl = update.limits.cvl if update.limits is not None else None
        float_text = f"{head}\nin float" + (f" (CVL {cvl:.2f} V)" if cvl is not None else "")
    if state in ("float", "float_transition"):
        threshold = o.switch_to_bulk_soc_threshold
        soc_text = "SoC unknown" if soc is None else f"SoC {soc:.1f} % < {threshold:.1f} %: {_yes(soc < threshold)}"
        bulk_diff = o.switch_to_bulk_cell_voltage_diff
        bulk_text = (
            f"{head}\nback to bulk when {soc_text}, or cell spread {spread:.3f} V >= "
            f"{bulk_diff:.3f} V: {_yes(spread >= bulk_diff - 1e-6)}, or a SoC-reset charge is due: "
            f"{_yes(reset)}"
        )
    else:
        bulk_text = f"{head}\nin bulk/absorption (switches to bulk apply in float)"
    return float_text, bulk_text


def texts(update: BatteryUpdate, battery: Any) -> dict[str, str]:
    """The three debug paths with their texts."""
    float_text, bulk_text = switch_conditions(update, battery)
    return {DEBUG: overview(update, battery), DEBUG_FLOAT: float_text, DEBUG_BULK: bulk_text}
