"""``bmshost.control.cvl_explain``: the CVL stage's switching conditions in words."""

from __future__ import annotations

from bmshost.control.cvl import CvlStage, Phase
from bmshost.control.cvl_explain import switch_conditions
from bmshost.model import Sample

from .test_pipeline_limits import make


def cvl_stage(raw: dict[str, dict[str, object]] | None = None) -> tuple[CvlStage, object]:
    pipeline = make(raw)
    stage = next(s for s in pipeline.stages if isinstance(s, CvlStage))
    return stage, pipeline


def test_bulk_texts_use_the_stage_thresholds() -> None:
    stage, _ = cvl_stage()
    sample = Sample(cell_voltages=[3.30] * 16, temperatures=[25.0])
    float_text, bulk_text = switch_conditions(stage, sample, 50.0, None, 0.0)
    assert float_text.startswith("state: bulk")
    assert "cell sum 52.80 V >= 55.20 V: no" in float_text
    assert "in bulk/absorption" in bulk_text


def test_an_extremes_only_pack_is_explained_from_its_stand_in_cells() -> None:
    stage, _ = cvl_stage()
    sample = Sample(voltage=52.96, cell_voltage_min=3.30, cell_voltage_max=3.34, series_cells=16)
    float_text, _ = switch_conditions(stage, sample, 50.0, None, 0.0)
    assert "cell sum 52.96 V >= 55.20 V: no" in float_text
    assert "cell spread 0.040 V" in float_text


def test_float_state_and_missing_cells() -> None:
    stage, _ = cvl_stage()
    stage.phase = Phase.FLOAT
    float_text, bulk_text = switch_conditions(
        stage, Sample(cell_voltages=[3.35] * 16), 95.0, 53.6, 10.0
    )
    assert "in float (CVL 53.60 V)" in float_text
    assert "SoC 95.0 % < 80.0 %: no" in bulk_text
    assert switch_conditions(stage, None, None, None, 0.0)[0].endswith("no cell voltages")


def test_without_cvcm_one_line_says_so() -> None:
    stage, _ = cvl_stage({"cvl": {"cvcm_enable": False}})
    assert switch_conditions(stage, None, None, None, 0.0)[0].startswith("cvcm_enable is off")
