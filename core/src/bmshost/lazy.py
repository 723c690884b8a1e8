"""Lazy references: registries hold ``"module:attr"`` strings so that listing plugins is cheap and
only what a configuration uses gets imported."""

from __future__ import annotations

import importlib
from typing import Any


def resolve(ref: Any) -> Any:
    """Return ``ref`` itself, or the object a ``"package.module:attr"`` string names."""
    if not isinstance(ref, str):
        return ref
    module_name, sep, attr = ref.partition(":")
    if not sep:
        raise ValueError(f"lazy reference {ref!r} must look like 'package.module:attr'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
