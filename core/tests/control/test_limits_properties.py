"""Property tests: whatever the BMS says (or does not say), the published limits stay safe."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bmshost.capabilities import BASIC, Capability
from bmshost.control.pipeline import bind_control, build_pipeline
from bmshost.control.registration import register_stages
from bmshost.control.tables import Table
from bmshost.model import Sample
from bmshost.registry import StageRegistry

ALL_CAPS = BASIC | {Capability.MOSFET_TEMPERATURE, Capability.BMS_CURRENT_LIMITS}
SPECS = [
    s
    for s in (lambda r: (register_stages(r), r.ordered())[1])(StageRegistry())
    if s.name
    in {
        "cvl",
        "current_cell_voltage",
        "current_temperature",
        "current_mosfet_temperature",
        "current_soc",
        "current_bms_limits",
        "current_limits",
        "disconnect",
        "clamp",
    }
]
HIGH_CUTOFF, LOW_CUTOFF = 3.50, 2.80  # zero-amp breakpoints of the default cell tables

weird = st.sampled_from([math.nan, math.inf, -math.inf])
cell = st.one_of(st.floats(2.5, 3.75), st.floats(0.0, 8.0), weird)
temp = st.one_of(st.floats(-30, 100), weird)
maybe_num = st.one_of(st.none(), st.floats(-1000, 1000), weird)


@st.composite
def samples(draw: Any) -> Sample | None:
    if draw(st.integers(0, 9)) == 0:
        return None  # the BMS did not answer
    n = draw(st.sampled_from([4, 8, 16]))
    cells = draw(st.one_of(st.none(), st.lists(cell, min_size=n, max_size=n)))
    return Sample(
        cell_voltages=cells,
        temperatures=draw(st.one_of(st.none(), st.lists(temp, max_size=4))),
        mosfet_temperature=draw(st.one_of(st.none(), temp)),
        soc=draw(maybe_num),
        charge_fet=draw(st.one_of(st.none(), st.booleans())),
        discharge_fet=draw(st.one_of(st.none(), st.booleans())),
        bms_charge_current_limit=draw(maybe_num),
        bms_discharge_current_limit=draw(maybe_num),
        cell_balancing=draw(st.one_of(st.none(), st.lists(st.booleans(), max_size=4))),
        heating=draw(st.one_of(st.none(), st.booleans())),
    )


options = st.fixed_dictionaries(
    {
        "cvl": st.fixed_dictionaries(
            {
                "cvl_controller_mode": st.integers(0, 3),
                "switch_to_float_wait_for_sec": st.sampled_from([0, 5, 900]),
                "voltage_drop": st.sampled_from([0.0, 0.2]),
                "cvcm_enable": st.booleans(),
            }
        ),
        "current_limits": st.fixed_dictionaries(
            {
                "max_battery_charge_current": st.sampled_from([0.0, 10.0, 50.0, 200.0]),
                "max_battery_discharge_current": st.sampled_from([0.0, 60.0, 300.0]),
                "charge_mode": st.sampled_from([1, 2]),
                "cccm_soc_enable": st.booleans(),
                "ccl_recovery_rate_a_per_sec": st.sampled_from([0.0, 5.0]),
            }
        ),
        "disconnect": st.fixed_dictionaries(
            {"timeout_sec": st.sampled_from([0, 3, 60]), "keep_discharging": st.booleans()}
        ),
    }
)


def _plausible(sample: Sample) -> list[float]:
    return [c for c in sample.cell_voltages or () if 0.0 < c <= 6.9]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=options,
    seq=st.lists(st.tuples(st.floats(0.0, 120.0), samples()), min_size=1, max_size=40),
)
def test_published_limits_stay_safe(
    raw: dict[str, Any], seq: list[tuple[float, Sample | None]]
) -> None:
    control = bind_control(SPECS, raw)
    max_ccl = raw["current_limits"]["max_battery_charge_current"]
    max_dcl = raw["current_limits"]["max_battery_discharge_current"]
    p = build_pipeline(SPECS, ALL_CAPS, control, {}, "prop")
    t = 0.0
    published = False
    n_cells: int | None = None
    for dt, sample in seq:
        t += dt
        limits = p.run(t, sample).limits
        if limits.ccl is not None or limits.dcl is not None:
            published = True
        if not published:
            continue
        for value, bound in ((limits.ccl, max_ccl), (limits.dcl, max_dcl)):
            assert value is not None and math.isfinite(value)
            assert 0.0 <= value <= bound
        assert limits.charge_limitation and limits.discharge_limitation
        if sample is not None and _plausible(sample):
            n_cells = len(_plausible(sample))
        if limits.cvl is not None:
            assert math.isfinite(limits.cvl)
            if n_cells is not None and sample is not None and _plausible(sample):
                assert limits.cvl <= round(3.45 * n_cells + raw["cvl"]["voltage_drop"], 2) + 1e-9
                assert limits.cvl >= round(2.9 * n_cells, 2) - 1e-9
        else:
            assert limits.ccl == 0.0  # no CVL known: never charge
        if sample is None:
            continue
        cells = _plausible(sample)
        if sample.charge_fet is False or (cells and max(cells) >= HIGH_CUTOFF):
            assert limits.ccl == 0.0
            assert limits.allow_to_charge is False
        if sample.discharge_fet is False or (cells and min(cells) <= LOW_CUTOFF):
            assert limits.dcl == 0.0
        if limits.ccl == 0.0:
            assert limits.allow_to_charge is False


@settings(max_examples=300, deadline=None)
@given(
    xs=st.lists(st.floats(-100, 100), min_size=1, max_size=8, unique=True),
    data=st.data(),
)
def test_lookups_stay_within_the_table_outputs(xs: list[float], data: Any) -> None:
    ys = data.draw(st.lists(st.floats(0, 1), min_size=len(xs), max_size=len(xs)))
    table = Table.build(xs, ys, 50.0)
    x = data.draw(st.floats(-200, 200))
    lo, hi = min(ys) * 50.0, max(ys) * 50.0
    for value in (table.linear(x), table.step(x)):
        assert lo - 1e-9 <= value <= hi + 1e-9
