"""Collects the built-in control stages' specs; ``bmshost.builtins`` registers them.

Each stage module exports ``SPECS: list[StageSpec]``. Order bands (lower runs first):
100-199 inputs (current correction, external sensor, temperatures, SoC), 200-299 CVL,
300-399 CCL/DCL, 400-499 disconnect safe state, 900 final clamp, 1000-1099 derived values,
history and driver alarms.
"""

from __future__ import annotations

import importlib

from bmshost.registry import StageRegistry

STAGE_MODULES: tuple[str, ...] = (
    "bmshost.control.alarms",
    "bmshost.control.clamp",
    "bmshost.control.current",
    "bmshost.control.currents",
    "bmshost.control.cvl",
    "bmshost.control.derived",
    "bmshost.control.disconnect",
    "bmshost.control.history",
    "bmshost.control.soc",
    "bmshost.control.temperature",
)


def register_stages(registry: StageRegistry) -> None:
    for name in STAGE_MODULES:
        module = importlib.import_module(name)
        for spec in module.SPECS:
            registry.add(spec)
