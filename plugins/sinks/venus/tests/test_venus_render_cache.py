"""``render_changed`` (the cycle's partial render) never misses a change: replaying any sequence of
updates through it and the sink's diff leaves exactly what the full ``render`` gives, value *and*
type, including inputs changed in place and value-equal inputs of another type."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bmshost.capabilities import BASIC, Capability
from bmshost.model import ALARM_NAMES, Derived, History, Limits
from bmshost_sink_venus.encoding import Value
from bmshost_sink_venus.render import Face, RenderCache, render, render_changed
from bmshost_sink_venus.testing import sample16, update

_MISSING: Any = object()


def _face() -> Face:
    return Face(
        driver="jbd",
        unique_id="jbd_X",
        port="/dev/ttyUSB0",
        connection="Serial /dev/ttyUSB0",
        capabilities=BASIC | {Capability.DISABLE_CHARGING},
        device_instance=1,
        product_name="bmshost jbd",
    )


class Replay:
    """The sink's cycle (partial render + diff into ``sent``) next to a full render each step."""

    def __init__(self) -> None:
        self.face, self.full_face = _face(), _face()
        self.cache = RenderCache()
        self.sent: dict[str, Value] = {}

    def step(self, up: Any) -> dict[str, Value]:
        values = render_changed(up, self.face, self.cache)
        changes = {
            p: v
            for p, v in values.items()
            if (old := self.sent.get(p, _MISSING)) != v or type(old) is not type(v)
        }
        self.sent.update(changes)
        full = render(up, self.full_face)
        for path, value in full.items():
            got = self.sent.get(path, _MISSING)
            assert got == value and type(got) is type(value), (path, got, value)
        assert list(values) == [p for p in full if p in values]  # the same order as render
        return changes


levels = st.sampled_from([0, 1, 2, True, False])
alarm_dicts = st.none() | st.dictionaries(st.sampled_from(ALARM_NAMES), levels, max_size=4)
small = st.none() | st.sampled_from([0, 1, 1.0, 2.5, -3.25, True, False])
texts = st.none() | st.sampled_from(["", "a", "Bulk", "Float"])
history = st.none() | st.builds(
    History,
    deepest_discharge=small,
    charge_cycles=small,
    full_discharges=st.none() | st.sampled_from([0, 3]),
    total_ah_drawn=small,
    minimum_cell_voltage=small,
    charged_energy=small,
)
limits = st.none() | st.builds(
    Limits,
    cvl=small,
    ccl=small,
    dcl=small,
    charge_mode=texts,
    charge_limitation=texts,
    discharge_limitation=texts,
    allow_to_charge=st.none() | st.booleans(),
    allow_to_discharge=st.none() | st.booleans(),
    max_charge_cell_voltage=small,
    battery_low_voltage=small,
)
steps = st.fixed_dictionaries(
    {
        "alarms": alarm_dicts,
        "driver_alarms": alarm_dicts,
        "history": history,
        "limits": limits,
        "cycles": st.none() | st.sampled_from([0, 7, 7.0]),
        "fets": st.tuples(small, small, small),
        "low": small,
        "strings": st.tuples(texts, texts, texts, st.none() | st.sampled_from(["SN1", "SN2", 1])),
        "cells": st.sampled_from([16, 15]),
        "stale": st.booleans(),
        "no_sample": st.booleans(),
        "info": texts,
        "custom_name": st.sampled_from(["", "House"]),
        "heating": st.none() | st.sampled_from([True, 1, False]),
    }
)


def _update(step: dict[str, Any]) -> Any:
    s = sample16(
        alarms=None,
        cycles=step["cycles"],
        bms_discharge_voltage_limit=step["low"],
        heating=step["heating"],
    )
    # after construction: the validators are not the point here, the types that pass them are
    s.alarms = step["alarms"]
    s.cell_voltages = (s.cell_voltages or [])[: step["cells"]]
    s.charge_fet, s.discharge_fet, s.balance_fet = step["fets"]
    s.firmware_version, s.hardware_version, s.model, s.serial_number = step["strings"]
    d = Derived(history=step["history"], alarms=step["driver_alarms"])
    up = update(
        sample=None if step["no_sample"] else s,
        stale=step["stale"],
        online=not step["stale"],
        limits=step["limits"],
        derived=d,
        info=step["info"] or "",
    )
    if step["limits"] is None:
        up.limits = None
    return up


@settings(max_examples=60, deadline=None)
@given(st.lists(steps, min_size=1, max_size=8))
def test_partial_render_plus_diff_equals_full_render(sequence: list[dict[str, Any]]) -> None:
    replay = Replay()
    for step in sequence:
        replay.face.custom_name = replay.full_face.custom_name = step["custom_name"]
        replay.step(_update(step))


def test_unchanged_groups_are_left_out_and_changes_in_place_are_noticed() -> None:
    replay = Replay()
    s = sample16(alarms={"low_voltage": 0})
    h = History(charge_cycles=3.0, total_ah_drawn=-100.0)
    up = update(sample=s, derived=Derived(history=h, alarms={"high_voltage": 0}))
    replay.step(up)
    replay.step(up)  # (the first render remembered the CCL/DCL it published: one more input)
    again = render_changed(up, replay.face, replay.cache)
    assert "/Serial" not in again and "/History/TotalAhDrawn" not in again
    assert "/Alarms/LowVoltage" not in again and "/Info/MaxChargeCurrent" not in again
    assert "/Dc/0/Voltage" in again and "/Voltages/Cell1" in again  # measured every cycle

    # the very same objects, changed in place
    assert s.alarms is not None and up.derived is not None and up.derived.alarms is not None
    s.alarms["low_voltage"] = 2
    assert replay.step(up)["/Alarms/LowVoltage"] == 2
    up.derived.alarms["high_voltage"] = 1
    assert replay.step(up)["/Alarms/HighVoltage"] == 1
    h.total_ah_drawn = -100.5
    assert replay.step(up)["/History/TotalAhDrawn"] == -100.5
    assert up.limits is not None
    up.limits.ccl = 50.0
    assert replay.step(up)["/Info/MaxChargeCurrent"] == 50.0
    s.serial_number = "other"
    assert replay.step(up)["/DeviceName"] == "other"
    replay.face.custom_name = replay.full_face.custom_name = "House"
    assert replay.step(up)["/CustomName"] == "House"

    # equal value, other type: published as it comes, so it is a change
    s.alarms["low_voltage"] = 1
    assert replay.step(up)["/Alarms/LowVoltage"] == 1
    s.alarms["low_voltage"] = True
    assert replay.step(up)["/Alarms/LowVoltage"] is True
    up.derived.alarms["high_voltage"] = True
    assert replay.step(up)["/Alarms/HighVoltage"] is True


def test_a_fresh_cache_renders_everything() -> None:
    face = _face()
    up = update(sample=sample16())
    cache = RenderCache()
    first = render_changed(up, face, cache)
    assert first == render(up, copy.deepcopy(face))
    assert len(render_changed(up, face, cache)) < len(first)
    assert render_changed(up, face, RenderCache()) == first
