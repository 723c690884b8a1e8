"""Rendering and write decisions without a bus: totality under random input."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bmshost.capabilities import BASIC, Capability
from bmshost_sink_venus import paths as P
from bmshost_sink_venus.render import Face, render
from bmshost_sink_venus.testing import sample16, update
from bmshost_sink_venus.writes import decide

FACE_CAPS = BASIC | {Capability.DISABLE_CHARGING, Capability.SOC_RESET}


def _face(**kw: Any) -> Face:
    base: dict[str, Any] = dict(
        driver="jbd",
        unique_id="jbd_X",
        port="/dev/ttyUSB0",
        connection="Serial /dev/ttyUSB0",
        capabilities=FACE_CAPS,
        device_instance=1,
        product_name="bmshost jbd",
        soc_reset_paths=True,
    )
    base.update(kw)
    return Face(**base)


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=80),
)


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from([*sorted(P.WRITABLE), "/Soc", "/Mode"]), value=values)
def test_decide_is_total_and_codes_are_valid(path: str, value: Any) -> None:
    w = decide(path, value, _face())
    assert w.code in (0, 1, 2)
    if w.code != 0:
        assert w.command is None and w.stage is None and w.soc_reset is None


def test_cell_formats() -> None:
    u = update(sample=sample16())
    both = render(u, _face(cell_format=3))
    assert both["/Voltages/Cell1"] == both["/Cell/1/Volts"] == 3.3
    assert both["/Cell/Sum"] == both["/Voltages/Sum"]
    none = render(u, _face(cell_format=0))
    assert not any(p.startswith(("/Voltages/", "/Cell/")) for p in none)


def test_extremes_only_bms_publishes_its_extremes_and_no_cells() -> None:
    s = sample16(cell_voltages=None, cell_balancing=None, cell_voltage_min=3.301,
                 cell_voltage_max=3.335, cell_voltage_min_id=3, cell_voltage_max_id=12,
                 series_cells=16)
    out = render(update(sample=s), _face(cell_format=3))
    assert (out["/System/MinCellVoltage"], out["/System/MaxCellVoltage"]) == (3.301, 3.335)
    assert (out["/System/MinVoltageCellId"], out["/System/MaxVoltageCellId"]) == ("C3", "C12")
    assert out["/System/NrOfCellsPerBattery"] == 16
    assert out["/Voltages/Diff"] == out["/Cell/Diff"] == 0.034
    assert out["/Voltages/Sum"] is None and "/Voltages/Cell1" not in out
    unnumbered = sample16(cell_voltages=None, cell_balancing=None, cell_voltage_min=3.3,
                          cell_voltage_max=3.31)
    out = render(update(sample=unnumbered), _face())
    assert out["/System/MinVoltageCellId"] is None and out["/System/NrOfCellsPerBattery"] is None


def test_insecure_and_time_to_soc_are_numbers() -> None:
    u = update(sample=sample16())
    assert u.derived is not None
    u.derived.time_to_soc = {80: 3600.4, 100: 7200.0}
    out = render(u, _face(insecure=True))
    assert out["/Mgmt/InsecureConnection"] == 1
    assert out["/TimeToSoC/80"] == 3600 and out["/TimeToSoC/100"] == 7200
    u.derived.time_to_soc = {100: 10.0}
    out = render(u, _face(insecure=True, time_to_soc_points=(80, 100)))
    assert out["/TimeToSoC/80"] is None  # the path stays, invalid


@settings(max_examples=200, deadline=None)
@given(
    cells=st.lists(st.floats(min_value=0, max_value=5), max_size=32),
    current=st.none() | st.floats(min_value=-500, max_value=500),
    stale=st.booleans(),
)
def test_render_never_raises_and_types_are_wire_types(
    cells: list[float], current: float | None, stale: bool
) -> None:
    s = sample16(cell_voltages=cells or None, current=current, cell_balancing=None)
    out = render(update(sample=s, stale=stale, online=not stale), _face())
    for path, value in out.items():
        assert value is None or type(value) in (int, float, str, bool), path


def test_plugin_registers_the_sink_and_the_command() -> None:
    from bmshost.registry import CommandRegistry, SinkRegistry
    from bmshost_sink_venus import plugin
    from bmshost_sink_venus.options import VenusOptions

    sinks, commands = SinkRegistry(), CommandRegistry()
    plugin.bmshost_register_sinks(sinks)
    plugin.bmshost_register_commands(commands)
    spec = sinks.get("venus")
    assert spec is not None and spec.options is VenusOptions
    assert commands.get("venus") is not None


def test_options_are_validated() -> None:
    import pytest

    from bmshost.errors import ConfigError
    from bmshost.options import structure
    from bmshost_sink_venus.options import VenusOptions

    assert structure({"cell_data_format": 3}, VenusOptions).cell_data_format == 3
    for bad in (
        {"bus": "usb"},
        {"cell_data_format": 7},
        {"service_prefix": "1x"},
        {"nope": 1},
        {"product_name": "{serial}"},
    ):
        with pytest.raises(ConfigError):
            structure(bad, VenusOptions, "sinks.venus")
