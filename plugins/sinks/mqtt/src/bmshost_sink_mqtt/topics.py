"""Topic layout of the MQTT sink (a contract users' automations depend on).

``<prefix>/status``                      host availability: ``online`` / ``offline`` (last will)
``<prefix>/<battery>/state``             retained JSON state of one battery
``<prefix>/<battery>/availability``      ``online`` while data flows, ``offline`` when stale
``<prefix>/<battery>/<value path>``      optional per-value topics (``voltage``,
                                         ``cell_voltages/3``)
``<prefix>/<battery>/set/<control>``     commands: ``charge_fet``, ``discharge_fet``, ``balance``,
                                         ``soc_reset``
``<prefix>/<battery>/result``            the answer to every command (not retained)
"""

from __future__ import annotations

import re

import attrs

from bmshost.model import CommandKind

ONLINE = "online"
OFFLINE = "offline"
CONTROLS: dict[str, CommandKind] = {kind.value: kind for kind in CommandKind}

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def topic_id(name: str) -> str:
    """A battery name as one topic level: MQTT wildcards, slashes and spaces become ``_``."""
    cleaned = _UNSAFE.sub("_", name).strip("_")
    return cleaned or "battery"


@attrs.frozen(slots=True)
class BatteryTopics:
    base: str  # <prefix>/<battery>

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def result(self) -> str:
        return f"{self.base}/result"

    @property
    def command_filter(self) -> str:
        return f"{self.base}/set/+"

    def command(self, control: str) -> str:
        return f"{self.base}/set/{control}"

    def value(self, path: str) -> str:
        return f"{self.base}/{path}"

    def control_of(self, topic: str) -> str | None:
        """The control name of a command topic of this battery, else None."""
        prefix = f"{self.base}/set/"
        if topic.startswith(prefix):
            return topic[len(prefix):]
        return None


def host_status(prefix: str) -> str:
    return f"{prefix}/status"


def battery_topics(prefix: str, name: str) -> BatteryTopics:
    return BatteryTopics(f"{prefix}/{topic_id(name)}")
