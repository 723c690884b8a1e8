"""The CVL stage's switching conditions in words, with the values of the moment: what the GUI's
``/Info/ChargeModeDebugFloat`` / ``...Bulk`` rows show (and anything else that explains itself).

It lives next to the stage and uses the stage's own thresholds, tolerances and cell statistics
(the stand-in of an extremes-only BMS included), so the explanation cannot drift from the rules.
"""

from __future__ import annotations

from bmshost.control.cells import sample_cell_stats
from bmshost.control.cvl import DIFF_EPS, SAG_ABORT_V, VOLT_EPS, CvlStage
from bmshost.model import Sample


def _yes(ok: bool) -> str:
    return "yes" if ok else "no"


def switch_conditions(
    stage: CvlStage, sample: Sample | None, soc: float | None, cvl: float | None, t: float
) -> tuple[str, str]:
    """(float text, bulk text): what the stage waits for to switch, with the values now."""
    o = stage.o
    if not o.cvcm_enable:
        text = "cvcm_enable is off: CVL stays at max_cell_voltage × cells"
        return text, text
    started = stage.absorption_start
    reset = stage.soc_reset_requested
    state = "absorption" if started is not None else stage.phase.value
    head = f"state: {state}" + (" (SoC-reset charge due)" if reset else "")
    stats = sample_cell_stats(sample, stage.ceiling) if sample is not None else None
    if stats is None:
        return head + "; no cell voltages", head + "; no cell voltages"
    total, spread = stats.total, stats.highest - stats.lowest
    cell_target = o.soc_reset_cell_voltage if reset else o.max_cell_voltage
    target = round(cell_target * stats.count, 2)
    diff = o.switch_to_float_cell_voltage_diff
    if state == "bulk":
        float_text = (
            f"{head}\nabsorption starts when cell sum {total:.2f} V >= {target:.2f} V: "
            f"{_yes(total >= target - VOLT_EPS)}, and cell spread {spread:.3f} V <= {diff:.3f} V: "
            f"{_yes(spread <= diff + DIFF_EPS)}\nthen float after {o.switch_to_float_wait_for_sec:.0f} s"
        )
    elif started is not None:
        held = max(0.0, t - started)
        limit = diff + o.switch_to_float_cell_voltage_deviation
        float_text = (
            f"{head}\nfloat after {o.switch_to_float_wait_for_sec:.0f} s, held {held:.0f} s; "
            f"restarts if cell spread {spread:.3f} V > {limit:.3f} V; "
            f"back to bulk if cell sum {total:.2f} V < {target - SAG_ABORT_V:.2f} V"
        )
    else:
        float_text = f"{head}\nin float" + (f" (CVL {cvl:.2f} V)" if cvl is not None else "")
    if state in ("float", "float_transition"):
        threshold = o.switch_to_bulk_soc_threshold
        soc_text = (
            "SoC unknown" if soc is None else f"SoC {soc:.1f} % < {threshold:.1f} %: {_yes(soc < threshold)}"
        )
        bulk_diff = o.switch_to_bulk_cell_voltage_diff
        bulk_text = (
            f"{head}\nback to bulk when {soc_text}, or cell spread {spread:.3f} V >= "
            f"{bulk_diff:.3f} V: {_yes(spread >= bulk_diff - DIFF_EPS)}, or a SoC-reset charge is "
            f"due: {_yes(reset)}"
        )
    else:
        bulk_text = f"{head}\nin bulk/absorption (switches to bulk apply in float)"
    return float_text, bulk_text
