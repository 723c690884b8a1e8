"""The console sink: the live view's content and the JSON lines."""

from __future__ import annotations

import io
import json

from bmshost.model import Derived, Identity, Limits, Sample
from bmshost.sink import BatteryUpdate
from bmshost.sinks.console import ConsoleOptions, ConsoleSink, ConsoleView


class Handle:
    name = "house"
    connection = "Serial /dev/ttyUSB0"
    identity = Identity(driver="jbd", variant="serial", port="/dev/ttyUSB0")
    capabilities = frozenset()


def _update(**kw: object) -> BatteryUpdate:
    sample = Sample(
        voltage=53.2, current=-12.5, power=-665.0, soc=81.0, capacity_ah=280.0, remaining_ah=226.8,
        cycles=14, cell_voltages=[3.321, 3.335, 3.301, 3.320], cell_balancing=[False, True, False, False],
        temperatures=[21.5, 22.0], mosfet_temperature=30.1, charge_fet=True, discharge_fet=False,
        alarms={"high_cell_voltage": 0, "low_voltage": 1},
    )
    base = dict(t=0.0, sample=sample, fresh=True, online=True, stale=False,
                limits=Limits(cvl=55.2, ccl=50.0, dcl=0.0, charge_mode="Bulk", charge_limitation="Max Battery Charge Current",
                              discharge_limitation="BMS"),
                derived=Derived(soc=80.5, alarms={"bms_cable": 0}), connection_info="Connected")
    base.update(kw)
    return BatteryUpdate(**base)  # type: ignore[arg-type]


def test_view_shows_pack_cells_fets_alarms_and_limits() -> None:
    text = ConsoleView(color=False, bar_width=10).render("house", "Serial /dev/ttyUSB0", _update())
    assert "house  Serial /dev/ttyUSB0  [online]" in text
    assert "53.20 V" in text and "-12.50 A" in text and "SoC 80.5 %" in text  # effective SoC
    lines = text.splitlines()
    cell2 = next(x for x in lines if x.strip().startswith("2 "))
    cell3 = next(x for x in lines if x.strip().startswith("3 "))
    assert "max" in cell2 and "balancing" in cell2 and "min" in cell3
    assert "diff 34 mV" in text
    assert "MOSFET 30.1 °C" in text and "discharge FET off" in text
    assert "low_voltage=warn" in text
    assert "CVL 55.20 V" in text and "DCL 0.0 A (BMS)" in text


def test_view_of_an_extremes_only_bms() -> None:
    sample = Sample(voltage=52.9, cell_voltage_min=3.301, cell_voltage_max=3.335,
                    cell_voltage_min_id=3, cell_voltage_max_id=2, series_cells=16)
    text = ConsoleView(color=False, bar_width=10).render("can", "CAN can0", _update(sample=sample))
    assert "cells 16  min 3.301 V (cell 3)  max 3.335 V (cell 2)  diff 34 mV  (extremes only)" in text
    unknown = Sample(voltage=52.9, cell_voltage_min=3.301, cell_voltage_max=3.335)
    text = ConsoleView(color=False, bar_width=10).render("can", "CAN can0", _update(sample=unknown))
    assert "cells ?  min 3.301 V  max 3.335 V" in text


def test_view_before_first_sample_and_when_stale() -> None:
    view = ConsoleView(color=False, bar_width=10)
    assert "waiting for the first reading" in view.render("b", "x", _update(sample=None, online=False, stale=True))
    assert "[STALE]" in view.render("b", "x", _update(online=False, stale=True))


def test_json_mode_prints_one_object_per_sample() -> None:
    out = io.StringIO()
    sink = ConsoleSink(ConsoleOptions(), json_mode=True, stream=out)
    sink.publish(Handle(), _update())  # type: ignore[arg-type]
    sink.publish(Handle(), _update(online=False, fresh=False))  # type: ignore[arg-type]
    first, second = (json.loads(x) for x in out.getvalue().splitlines())
    assert first["battery"] == "house" and first["voltage"] == 53.2 and first["limits"]["cvl"] == 55.2
    assert first["derived"]["soc"] == 80.5 and second["online"] is False


def test_text_mode_throttles_redraws() -> None:
    out = io.StringIO()
    sink = ConsoleSink(ConsoleOptions(refresh=3600), json_mode=False, stream=out)
    sink.publish(Handle(), _update())  # type: ignore[arg-type]
    sink.publish(Handle(), _update())  # type: ignore[arg-type]
    assert out.getvalue().count("house  Serial") == 1
