"""``/JsonData``: every other path of the service as one JSON document (spec §5.3).

Off by default (``publish_json_data``): the path exists and stays invalid. When on, the sink
rebuilds the document only in cycles where something changed, and at most every
``json_data_interval`` seconds, so a steady battery costs nothing and a changing one at most one
``json.dumps`` per interval. Shape: paths nested by their components (``/Dc/0/Voltage`` →
``{"Dc": {"0": {"Voltage": ...}}}``), ``/Settings/*`` and ``/JsonData`` left out, invalid values
and empty strings as ``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from .encoding import Value

PATH = "/JsonData"
_SKIP = ("/Settings/", PATH)


def snapshot(values: Mapping[str, Value]) -> str:
    root: dict[str, Any] = {}
    for path, value in values.items():
        if path.startswith(_SKIP):
            continue
        if value == "" or (isinstance(value, float) and not math.isfinite(value)):
            value = None
        parts = path.strip("/").split("/")
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if not isinstance(node.get(parts[-1]), dict):  # a leaf never replaces a subtree
            node[parts[-1]] = value
    return json.dumps(root, separators=(",", ":"), allow_nan=False)
