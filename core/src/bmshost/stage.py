"""The control-stage contract: how CVL/CCL/DCL and derived values are computed, stage by stage.

Each battery gets a pipeline: the registered stages whose predicate accepts its capabilities and
configuration, run in ``order`` every poll cycle. A stage reads the cycle's ``Step`` (the sample,
or None when the BMS did not answer; the clock) and narrows the limits or fills derived values.
Stages keep their own state explicitly and may persist it through ``StageContext.store``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, MutableMapping
from typing import Any

import attrs

from bmshost.capabilities import Capability
from bmshost.model import Derived, Limits, Sample


@attrs.define(slots=True, kw_only=True)
class Step:
    """One cycle of one battery's pipeline. Stages read ``sample`` and write ``limits``/``derived``."""

    t: float  # seconds, from the injected clock
    sample: Sample | None  # None: the BMS did not answer this cycle
    last_sample: Sample | None  # the most recent good sample (for offline handling)
    limits: Limits = attrs.field(factory=Limits)
    derived: Derived = attrs.field(factory=Derived)
    notes: dict[str, Any] = attrs.field(factory=dict)  # stage-to-stage hand-over within a cycle

    @property
    def online(self) -> bool:
        return self.sample is not None


@attrs.define(slots=True, kw_only=True)
class StageContext:
    """What a stage factory receives."""

    capabilities: frozenset[Capability]
    options: Any  # the stage's options instance (its section of [control])
    control: Any  # the whole validated control configuration (all sections), for shared values
    store: MutableMapping[str, Any]  # persisted per battery and stage (JSON-serialisable values)
    battery_id: str = ""
    log: logging.Logger = attrs.field(factory=lambda: logging.getLogger("bmshost.control"))


class Stage(ABC):
    """A control stage. ``name`` is what published limits name as their setter."""

    name: str = "?"

    @abstractmethod
    def step(self, step: Step) -> None: ...

    def command(self, name: str, value: Any) -> bool:
        """Handle a stage command (e.g. ``history_clear``, ``soc_reset``). True if handled."""
        return False


# predicate(capabilities, options) -> (included?, why). The why is shown by `--explain`.
StagePredicate = Callable[[frozenset[Capability], Any], tuple[bool, str]]


@attrs.frozen(slots=True, kw_only=True)
class StageSpec:
    name: str
    order: int  # lower runs first; the final clamp runs last
    factory: Any  # Callable[[StageContext], Stage] or lazy "module:attr"
    options: type | None = None  # attrs options class for [control.<section>]
    section: str | None = None  # config section; defaults to name. Stages may share one.
    predicate: StagePredicate | None = None  # None: always included
    description: str = ""

    @property
    def config_section(self) -> str:
        return self.section or self.name
