"""Battery-table keys of the ``mqtt`` driver (``[[batteries]] driver = "mqtt"``).

Broker and topic are in the port URL (see ``settings``); these keys say how to read the data.
"""

from __future__ import annotations

from typing import Any

import attrs


def _format(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in ("auto", "generic", "bmshost"):
        raise ValueError(f"format must be auto, generic or bmshost, not {value!r}")


@attrs.define(kw_only=True)
class MqttInputOptions:
    # Seconds without a valid message before reads fail and the battery goes offline/stale.
    # The reference driver used 6 s; 10 s tolerates publishers that push every 5 s and jitter.
    max_age: float = attrs.field(default=10.0, validator=[attrs.validators.gt(0),
                                                          attrs.validators.le(3600)])
    # "generic": the reference driver's schema; "bmshost": another bmshost's MQTT sink state;
    # "auto": decided per message (cell_count → generic, online → bmshost).
    format: str = attrs.field(default="auto", validator=_format)
    # Invalid payloads are logged at most once per this many seconds (with a count).
    log_interval: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))
