"""Heating paths, /JsonData and the /Info/ChargeModeDebug* texts: pure rendering with the real
control stages, then on a private bus (JsonData built only when enabled and coalesced)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from bmshost.capabilities import BASIC, Capability
from bmshost.control.pipeline import build_pipeline
from bmshost.model import Limits, Sample
from bmshost.plugins import PluginManager, Selection
from bmshost.sink import BatteryUpdate
from bmshost_sink_venus import debug, jsondata
from bmshost_sink_venus.render import Face, render
from bmshost_sink_venus.testing import (
    Client,
    FakeBattery,
    battery,
    published,
    sample16,
    update,
    wait_until,
)

CAPS = BASIC | {Capability.SINGLE_CELL_DETAILS, Capability.MIN_MAX_CELL_VOLTAGE, Capability.HEATING}


def _face() -> Face:
    return Face(
        driver="jk", unique_id="jk_X", port="/dev/ttyUSB0", connection="Serial /dev/ttyUSB0",
        capabilities=CAPS, device_instance=1, product_name="bmshost jk",
    )


def _pipeline(**control: Any) -> Any:
    manager = PluginManager()
    manager.load(Selection(drivers=frozenset(), schemes=frozenset(), sinks=frozenset()))
    return build_pipeline(manager.registries.stages.ordered(), CAPS, control, {}, battery_id="t")


def _run(pipeline: Any, sample: Sample, t: float = 1000.0) -> BatteryUpdate:
    step = pipeline.run(t, sample)
    return BatteryUpdate(t=t, sample=sample, fresh=True, online=True, stale=False,
                         limits=step.limits, derived=step.derived, connection_info="Connected")


@attrs.define(eq=False)
class PipelineBattery(FakeBattery):
    """A handle with a control pipeline, as the host's Battery has."""

    pipeline: Any = None


# -- heating -----------------------------------------------------------------------------------


def test_heating_paths_come_from_the_sample_and_its_extra_values() -> None:
    heater = {"heater_fet": True, "heater_current": 1.5, "heater_power": 78.04,
              "heater_temperature_start": 2, "heater_temperature_stop": 5.55}
    s = sample16(heating=True, extra=heater)
    out = render(update(sample=s), _face())
    assert out["/Heating"] is True and out["/Io/AllowToHeat"] == 1
    assert out["/Info/HeatingCurrent"] == 1.5 and out["/Info/HeatingPower"] == 78.0
    assert out["/Info/HeatingTemperatureStart"] == 2.0 and out["/Info/HeatingTemperatureStop"] == 5.5
    plain = render(update(sample=sample16()), _face())
    for path in ("/Heating", "/Io/AllowToHeat", "/Info/HeatingCurrent", "/Info/HeatingPower",
                 "/Info/HeatingTemperatureStart", "/Info/HeatingTemperatureStop"):
        assert plain[path] is None, path  # no heater reported: the paths exist and are invalid
    assert "/Settings/TurnHeatingOff" not in out  # no driver can switch a heater


@settings(max_examples=60, deadline=None)
@given(value=st.one_of(st.none(), st.booleans(), st.text(max_size=5), st.floats(), st.integers(),
                       st.lists(st.integers(), max_size=2)))
def test_heating_extra_values_of_any_type_never_break_rendering(value: Any) -> None:
    extra = {k: value for k in ("heater_fet", "heater_current", "heater_power",
                                "heater_temperature_start", "heater_temperature_stop")}
    out = render(update(sample=sample16(extra=extra)), _face())
    assert out["/Io/AllowToHeat"] in (None, 0, 1)
    for path in ("/Info/HeatingCurrent", "/Info/HeatingPower"):
        assert out[path] is None or type(out[path]) is float


def test_heating_marks_the_charge_mode_through_the_real_cvl_stage() -> None:
    pipeline = _pipeline()
    heating = render(_run(pipeline, sample16(heating=True, soc=50.0)), _face())
    assert heating["/Info/ChargeMode"].startswith("Bulk") and "+ Heating" in heating["/Info/ChargeMode"]
    idle = render(_run(pipeline, sample16(heating=False, soc=50.0), 1001.0), _face())
    assert "Heating" not in idle["/Info/ChargeMode"]


# -- /JsonData -----------------------------------------------------------------------------------


def test_json_snapshot_nests_paths_and_leaves_settings_out() -> None:
    values = render(update(sample=sample16()), _face())
    values["/CustomName"] = ""
    values[jsondata.PATH] = "old"
    doc = json.loads(jsondata.snapshot(values))
    assert doc["Dc"]["0"]["Voltage"] == values["/Dc/0/Voltage"]
    assert doc["Voltages"]["Cell16"] == values["/Voltages/Cell16"]
    assert doc["ProductId"] == 0xBA77 and doc["CustomName"] is None  # "" → null
    assert doc["Dc"]["0"]["MidVoltage"] is None  # invalid → null
    assert "Settings" not in doc and "JsonData" not in doc


# -- /Info/ChargeModeDebug* ----------------------------------------------------------------------


def test_debug_texts_explain_limits_stages_and_switch_conditions() -> None:
    pipeline = _pipeline()
    bat = PipelineBattery(battery("DBG").identity, CAPS, pipeline=pipeline)
    u = _run(pipeline, sample16(soc=50.0))
    texts = debug.texts(u, bat)
    lines = texts[debug.DEBUG].splitlines()
    assert lines[0].startswith("mode: Bulk")
    assert any(line.startswith("CVL ") and "(cvl)" in line for line in lines)
    assert any(line.startswith("CCL ") and u.limits and str(u.limits.charge_limitation) in line for line in lines)
    assert any(line.startswith("stages: ") and "cvl" in line for line in lines)
    assert any(line.startswith("not used: ") for line in lines)  # e.g. stages this pack cannot use
    assert "absorption starts when cell sum 52.92 V >= 55.20 V: no" in texts[debug.DEBUG_FLOAT]
    assert "in bulk/absorption" in texts[debug.DEBUG_BULK]

    # Persisted float state: the bulk text shows what would bring it back to bulk.
    floating = _pipeline()
    floating_bat = PipelineBattery(battery("DBG2").identity, CAPS, pipeline=floating)
    cvl = next(s for s in floating.stages if s.name == "cvl")
    cvl.phase = type(cvl.phase)("float")
    u2 = _run(floating, sample16(soc=95.0))
    texts2 = debug.texts(u2, floating_bat)
    assert texts2[debug.DEBUG_BULK].startswith("state: float")
    assert "SoC 95.0 % < 80.0 %: no" in texts2[debug.DEBUG_BULK]
    assert "in float" in texts2[debug.DEBUG_FLOAT]


def test_debug_texts_without_a_pipeline_or_data_never_fail() -> None:
    bare = battery("NOPIPE")
    u = BatteryUpdate(t=1.0, sample=None, fresh=False, online=False, stale=True, limits=Limits(),
                      connection_info="Lost for 30 s")
    texts = debug.texts(u, bare)
    assert "BMS silent: Lost for 30 s" in texts[debug.DEBUG]
    assert texts[debug.DEBUG_FLOAT] == texts[debug.DEBUG_BULK] == "no CVL stage runs"
    pipeline = _pipeline()
    with_pipe = PipelineBattery(battery("NODATA").identity, CAPS, pipeline=pipeline)
    assert "no cell voltages" in debug.texts(u, with_pipe)[debug.DEBUG_FLOAT]


# -- on the bus ----------------------------------------------------------------------------------


async def test_extras_are_off_by_default_and_cost_no_signal(
    sink_factory: Any, client: Client, localsettings: Any
) -> None:
    sink = await sink_factory()
    bat = battery("XOFF", port="/dev/ttyXOFF")
    sink.publish(bat, update(t=1000, sample=sample16()))
    name = await published(sink, bat)
    items = await asyncio.to_thread(client.items, name)
    assert len(items[jsondata.PATH]["Value"]) == 0  # created, invalid
    assert items[debug.DEBUG]["Value"] == "" and items[debug.DEBUG_BULK]["Value"] == ""
    entry = sink.entries[id(bat)]
    for t in range(1001, 1004):
        sink.publish(bat, update(t=t, sample=sample16()))
    await asyncio.sleep(0.05)
    assert entry.service is not None and entry.service.signals_sent == 0


async def test_json_data_follows_changes_at_most_once_per_interval(
    sink_factory: Any, client: Client, localsettings: Any
) -> None:
    sink = await sink_factory(publish_json_data=True, json_data_interval=10.0)
    bat = battery("XJSON", port="/dev/ttyXJSON")
    sink.publish(bat, update(t=1000, sample=sample16()))
    name = await published(sink, bat)
    sink.publish(bat, update(t=1000.5, sample=sample16()))  # steady, but the document is due

    def doc() -> Any:
        value = client.value(name, jsondata.PATH)
        return json.loads(value) if isinstance(value, str) else None

    first = await wait_until(lambda: doc())
    assert first["Soc"] == 81.5 and first["Dc"]["0"]["Current"] == -12.5
    entry = sink.entries[id(bat)]
    sink.publish(bat, update(t=1001, sample=sample16(soc=70.0)))  # changed, inside the interval
    await wait_until(lambda: client.value(name, "/Soc") == 70.0)
    assert (await asyncio.to_thread(doc))["Soc"] == 81.5  # not rebuilt yet
    assert entry.json_dirty
    sink.publish(bat, update(t=1011, sample=sample16(soc=70.0)))  # steady, interval over
    await wait_until(lambda: (doc() or {}).get("Soc") == 70.0)
    signals = entry.service.signals_sent if entry.service else 0
    for t in range(1022, 1026):  # steady: nothing to rebuild, nothing sent
        sink.publish(bat, update(t=t, sample=sample16(soc=70.0)))
    await asyncio.sleep(0.05)
    assert entry.service is not None and entry.service.signals_sent == signals


async def test_debug_texts_on_the_bus_when_enabled(
    sink_factory: Any, client: Client, localsettings: Any
) -> None:
    sink = await sink_factory(charge_mode_debug=True)
    pipeline = _pipeline()
    bat = PipelineBattery(battery("XDBG", port="/dev/ttyXDBG").identity, CAPS, pipeline=pipeline)
    sink.publish(bat, _run(pipeline, sample16(soc=50.0)))
    name = await published(sink, bat)
    sink.publish(bat, _run(pipeline, sample16(soc=50.0), 1001.0))  # READY: debug texts rendered
    text = await wait_until(lambda: client.value(name, debug.DEBUG) or None)
    assert str(text).startswith("mode: Bulk")
    assert "absorption starts when" in str(await asyncio.to_thread(client.value, name, debug.DEBUG_FLOAT))
