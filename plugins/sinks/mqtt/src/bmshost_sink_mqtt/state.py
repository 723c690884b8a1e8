"""The state message: encoding, change detection with a minimum interval, per-value topics.

Pure code (no paho, no clock of its own) so it is tested and benchmarked without a broker.
"""

from __future__ import annotations

import json
import math
from typing import Any

from bmshost.sink import BatteryUpdate

# Keys that change every cycle without the battery changing; they ride along in the payload but
# do not by themselves make a state "changed".
VOLATILE = ("t", "link")
_SEPARATORS = (",", ":")


def _finite(value: Any) -> Any:
    """Replace NaN/inf (not JSON) by null, recursively. Only used when plain encoding fails."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def dumps(value: Any) -> str:
    try:
        return json.dumps(value, separators=_SEPARATORS, allow_nan=False)
    except ValueError:  # a stage produced NaN: publish null rather than invalid JSON
        return json.dumps(_finite(value), separators=_SEPARATORS, allow_nan=False)


def encode_state(update: BatteryUpdate) -> tuple[dict[str, Any], str, bytes]:
    """(document, change key, payload). The key is the JSON without the volatile keys."""
    doc = update.to_json_dict()
    stable = {k: v for k, v in doc.items() if k not in VOLATILE}
    key = dumps(stable)
    return doc, key, dumps(doc).encode()


class Throttle:
    """Publish on change, at most every ``min_interval`` s; refresh after ``max_interval`` s.

    A change that arrives too soon is not lost: the next ``offer`` after the interval publishes
    the newest state (the host offers every cycle).
    """

    def __init__(self, min_interval: float, max_interval: float) -> None:
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.last_key: str | None = None
        self.last_time: float | None = None

    def offer(self, now: float, key: str) -> bool:
        if self.last_time is None:
            return True
        elapsed = now - self.last_time
        if key != self.last_key:
            return elapsed >= self.min_interval
        return self.max_interval > 0 and elapsed >= self.max_interval

    def published(self, now: float, key: str) -> None:
        self.last_key = key
        self.last_time = now


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Per-value topics: ``voltage`` → ``53.2``, ``cell_voltages/1`` → ``3.301`` (1-based, as
    cells are numbered on the pack), ``limits/cvl`` → ``55.2``. Strings are published raw."""
    out: dict[str, str] = {}
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{path}/"))
        elif isinstance(value, list):
            for i, item in enumerate(value, start=1):
                if isinstance(item, dict | list):
                    continue
                out[f"{path}/{i}"] = item if isinstance(item, str) else dumps(item)
        else:
            out[path] = value if isinstance(value, str) else dumps(value)
    return out
