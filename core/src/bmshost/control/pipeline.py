"""A battery's control pipeline: assembly from the registered stages, one run per poll cycle, and
the ``--explain`` listing of which stages were included and why.

The host calls ``build_pipeline(...)`` once per battery and ``Pipeline.run(t, sample)`` every cycle
(``sample`` None when the BMS did not answer). Stages run in ``order``; each reads and narrows the
cycle's ``Step``. A stage that raises is logged and skipped for that cycle: the final clamp then
still bounds the limits and replaces missing values with safe ones, so one bug never takes the
battery (or the host) down.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, MutableMapping
from typing import Any

from bmshost.capabilities import Capability
from bmshost.control.crosscheck import limit_problems
from bmshost.errors import ConfigError
from bmshost.lazy import resolve
from bmshost.model import Limits, Sample
from bmshost.options import structure
from bmshost.stage import Stage, StageContext, StageSpec, Step

log = logging.getLogger("bmshost.control")

PREVIOUS_LIMITS = "previous_limits"  # note key: the limits published by the previous cycle


def control_sections(specs: Iterable[StageSpec]) -> dict[str, type | None]:
    """Config section name → options class, from the stage specs (first spec of a section wins)."""
    sections: dict[str, type | None] = {}
    for spec in specs:
        sections.setdefault(spec.config_section, spec.options)
    return sections


def bind_control(specs: Iterable[StageSpec], raw: dict[str, Any]) -> dict[str, Any]:
    """Validate raw ``[control.*]`` tables against the stages' option classes (defaults for absent
    sections); raise ``ConfigError`` listing every problem."""
    sections = control_sections(specs)
    problems: list[str] = []
    bound: dict[str, Any] = {}
    for name, table in raw.items():
        if name not in sections:
            known = ", ".join(sorted(sections)) or "none"
            problems.append(f"control.{name}: unknown control section (known: {known})")
            continue
        cls = sections[name]
        if cls is None:
            if table:
                problems.append(f"control.{name}: this stage takes no options")
            continue
        try:
            bound[name] = structure(table, cls, f"control.{name}")
        except ConfigError as exc:
            problems.extend(exc.problems)
    for name, cls in sections.items():
        if name not in bound and cls is not None and name not in raw:
            bound[name] = structure({}, cls, f"control.{name}")
    problems.extend(limit_problems(bound))
    if problems:
        raise ConfigError(problems)
    return bound


class Pipeline:
    """One battery's stages, in order, with the previous cycle's limits carried over."""

    def __init__(
        self,
        battery_id: str,
        stages: list[Stage],
        explanation: list[tuple[str, bool, str]],
    ) -> None:
        self.battery_id = battery_id
        self.stages = stages
        self._explanation = explanation
        self._steps = [(stage.name, stage.step) for stage in stages]
        self.last_sample: Sample | None = None
        self.previous: Limits | None = None
        self._failing: set[str] = set()

    def run(self, t: float, sample: Sample | None) -> Step:
        if sample is not None:
            self.last_sample = sample
        step = Step(t=t, sample=sample, last_sample=self.last_sample)
        step.notes[PREVIOUS_LIMITS] = self.previous
        for name, run in self._steps:
            try:
                run(step)
            except Exception:
                if name not in self._failing:  # log once per failure streak, not every second
                    self._failing.add(name)
                    log.exception("%s: control stage %r failed; skipped", self.battery_id, name)
                step.notes.setdefault("stage_errors", []).append(name)
            else:
                if self._failing and name in self._failing:
                    self._failing.discard(name)
                    log.info("%s: control stage %r works again", self.battery_id, name)
        self.previous = step.limits
        return step

    def explain(self) -> list[tuple[str, bool, str]]:
        """(stage name, included, why) for every registered stage, in run order."""
        return list(self._explanation)

    def command(self, name: str, value: Any) -> bool:
        """Forward a command to the stages; True when at least one handled it."""
        handled = False
        for stage in self.stages:
            if stage.command(name, value):
                handled = True
        return handled


def build_pipeline(
    stage_specs: Iterable[StageSpec],
    capabilities: Iterable[Capability],
    control_options: dict[str, Any],
    store: MutableMapping[str, Any],
    battery_id: str,
) -> Pipeline:
    """Build one battery's pipeline from the registered stages whose predicate accepts it.

    ``control_options`` holds the bound ``[control.*]`` option instances by section; a section
    missing from it gets its defaults. Each stage gets its own sub-mapping of ``store`` (keyed by
    stage name) for state that survives restarts. Raises ``ConfigError`` when the options contradict
    each other across sections.
    """
    caps = frozenset(capabilities)
    specs = sorted(stage_specs, key=lambda s: (s.order, s.name))
    options = dict(control_options)
    for section, cls in control_sections(specs).items():
        if section not in options and cls is not None:
            options[section] = structure({}, cls, f"control.{section}")
    problems = limit_problems(options)
    if problems:
        raise ConfigError(problems)
    stages: list[Stage] = []
    explanation: list[tuple[str, bool, str]] = []
    for spec in specs:
        section_options = options.get(spec.config_section)
        if spec.predicate is None:
            included, why = True, "always included"
        else:
            included, why = spec.predicate(caps, section_options)
        explanation.append((spec.name, included, why))
        if not included:
            continue
        sub = store.get(spec.name)
        if not isinstance(sub, MutableMapping):
            sub = {}
            store[spec.name] = sub
        ctx = StageContext(
            capabilities=caps,
            options=section_options,
            control=options,
            store=sub,
            battery_id=battery_id,
            log=logging.getLogger(f"bmshost.control.{spec.name}"),
        )
        stage = resolve(spec.factory)(ctx)
        stages.append(stage)
    return Pipeline(battery_id, stages, explanation)
