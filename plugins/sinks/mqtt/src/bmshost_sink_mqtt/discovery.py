"""Home Assistant MQTT discovery: one device per battery, entities for what the battery reports.

Pure: builds ``{config topic: payload}`` from what has been seen of a battery so far. Entities
are added as values appear and never withdrawn during a run (a value missing for one cycle must
not make Home Assistant delete and re-create an entity). Every entity reads the battery's one
state topic through a value template, so a cycle costs one message, not fifty.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from bmshost.capabilities import Capability
from bmshost.model import ALARM_NAMES
from bmshost_sink_mqtt.topics import BatteryTopics


def _origin() -> dict[str, str]:
    try:
        from importlib.metadata import version

        return {"name": "bmshost", "sw": version("bmshost-sink-mqtt")}
    except Exception:  # not installed as a distribution (running from a source tree)
        return {"name": "bmshost"}


ORIGIN = _origin()


@attrs.define(slots=True)
class Seen:
    """What a battery's state documents contained so far (grows only)."""

    keys: set[str] = attrs.field(factory=set)  # top-level sample keys
    cells: int = 0
    temperatures: int = 0
    alarms: set[str] = attrs.field(factory=set)
    limits: set[str] = attrs.field(factory=set)
    derived: set[str] = attrs.field(factory=set)

    def absorb(self, doc: dict[str, Any]) -> bool:
        """Take in one state document; True when something new appeared."""
        before = self.signature()
        self.keys.update(doc)
        self.cells = max(self.cells, len(doc.get("cell_voltages") or ()))
        self.temperatures = max(self.temperatures, len(doc.get("temperatures") or ()))
        self.alarms.update(doc.get("alarms") or ())
        self.limits.update(k for k, v in (doc.get("limits") or {}).items() if v is not None)
        self.derived.update(doc.get("derived") or ())
        return self.signature() != before

    def signature(self) -> tuple[Any, ...]:
        return (len(self.keys), self.cells, self.temperatures, len(self.alarms),
                len(self.limits), len(self.derived))


@attrs.frozen(slots=True, kw_only=True)
class Device:
    node: str  # topic id of the battery: unique per host, stable across restarts
    name: str
    driver: str
    variant: str
    serial_number: str | None = None
    model: str | None = None
    firmware_version: str | None = None
    hardware_version: str | None = None
    host_status: str = ""  # <prefix>/status


def _get(path: str) -> str:
    """A template reading ``a`` or ``a.b`` from the state JSON, ``None`` (unknown) if absent."""
    head, _, tail = path.partition(".")
    if not tail:
        return f"{{{{ value_json.get('{head}') }}}}"
    return f"{{{{ (value_json.get('{head}') or {{}}).get('{tail}') }}}}"


def _flag(path: str) -> str:
    head, _, tail = path.partition(".")
    expr = f"value_json.get('{head}')"
    if tail:
        expr = f"({expr} or {{}}).get('{tail}')"
    return f"{{{{ 'ON' if {expr} else 'OFF' }}}}"


# (key in the state, object id, name, unit, device_class, state_class, entity category, precision)
_Sensor = tuple[str, str, str, str | None, str | None, str | None, str | None, int | None]
_SENSORS: tuple[_Sensor, ...] = (
    ("voltage", "voltage", "Voltage", "V", "voltage", "measurement", None, 2),
    ("current", "current", "Current", "A", "current", "measurement", None, 2),
    ("power", "power", "Power", "W", "power", "measurement", None, 0),
    ("soh", "soh", "State of health", "%", None, "measurement", None, 0),
    ("capacity_ah", "capacity", "Installed capacity", "Ah", None, "measurement", "diagnostic", 1),
    ("remaining_ah", "remaining", "Remaining capacity", "Ah", None, "measurement", None, 1),
    ("cycles", "cycles", "Charge cycles", None, None, "total_increasing", "diagnostic", None),
    ("mosfet_temperature", "mosfet_temperature", "MOSFET temperature", "°C", "temperature",
     "measurement", "diagnostic", 1),
    ("bms_charge_current_limit", "bms_ccl", "BMS charge current limit", "A", "current",
     "measurement", "diagnostic", 1),
    ("bms_discharge_current_limit", "bms_dcl", "BMS discharge current limit", "A", "current",
     "measurement", "diagnostic", 1),
)
_LIMIT_SENSORS = (
    ("cvl", "cvl", "Charge voltage limit", "V", "voltage", "measurement", 2),
    ("ccl", "ccl", "Charge current limit", "A", "current", "measurement", 1),
    ("dcl", "dcl", "Discharge current limit", "A", "current", "measurement", 1),
)
_LIMIT_TEXTS = (
    ("charge_mode", "charge_mode", "Charge mode"),
    ("charge_limitation", "charge_limitation", "Charge limitation"),
    ("discharge_limitation", "discharge_limitation", "Discharge limitation"),
)
_DERIVED_SENSORS = (
    ("time_to_go", "time_to_go", "Time to go", "s", "duration", "measurement", 0),
    ("consumed_ah", "consumed", "Consumed capacity", "Ah", None, "measurement", 1),
)
_BINARY = (
    ("charge_fet", "charge_fet", "Charge FET", "power"),
    ("discharge_fet", "discharge_fet", "Discharge FET", "power"),
    ("balance_fet", "balance_fet", "Balancing allowed", None),
    ("heating", "heating", "Heating", "heat"),
)
# (control, capability, name, state key in the state JSON)
_SWITCHES = (
    ("charge_fet", Capability.DISABLE_CHARGING, "Charging allowed", "charge_fet"),
    ("discharge_fet", Capability.DISABLE_DISCHARGING, "Discharging allowed", "discharge_fet"),
    ("balance", Capability.DISABLE_BALANCING, "Balancing allowed", "balance_fet"),
)


def _title(name: str) -> str:
    return name.replace("_", " ").capitalize()


def build(device: Device, seen: Seen, capabilities: Iterable[Capability], topics: BatteryTopics,
          prefix: str) -> dict[str, dict[str, Any]]:
    """``{discovery config topic: config}`` for every entity the battery supports so far."""
    caps = frozenset(capabilities)
    base_device: dict[str, Any] = {
        "identifiers": [f"bmshost_{device.node}"],
        "name": device.name,
        "manufacturer": f"bmshost ({device.driver} driver)",
        "model": device.model or f"{device.driver} {device.variant}",
    }
    for key, value in (("serial_number", device.serial_number),
                       ("sw_version", device.firmware_version),
                       ("hw_version", device.hardware_version)):
        if value:
            base_device[key] = value
    common: dict[str, Any] = {
        "state_topic": topics.state,
        "availability": [{"topic": device.host_status}, {"topic": topics.availability}],
        "availability_mode": "all",
        "device": base_device,
        "origin": ORIGIN,
    }
    out: dict[str, dict[str, Any]] = {}

    def add(component: str, object_id: str, name: str, **fields: Any) -> None:
        config = {"name": name, "unique_id": f"bmshost_{device.node}_{object_id}",
                  "object_id": f"{device.node}_{object_id}", **common}
        config.update({k: v for k, v in fields.items() if v is not None})
        out[f"{prefix}/{component}/bmshost_{device.node}/{object_id}/config"] = config

    def sensor(object_id: str, name: str, template: str, unit: str | None, device_class: str | None,
               state_class: str | None, category: str | None = None,
               precision: int | None = None) -> None:
        add("sensor", object_id, name, value_template=template, unit_of_measurement=unit,
            device_class=device_class, state_class=state_class, entity_category=category,
            suggested_display_precision=precision)

    if "soc" in seen.keys or "soc" in seen.derived:
        # The effective SoC (coulomb counting, external sensor) replaces the BMS's on outputs.
        template = ("{{ (value_json.get('derived') or {}).get('soc', value_json.get('soc')) }}")
        sensor("soc", "State of charge", template, "%", "battery", "measurement", precision=1)
    for key, oid, name, unit, dclass, sclass, category, precision in _SENSORS:
        if key in seen.keys:
            sensor(oid, name, _get(key), unit, dclass, sclass, category, precision)
    for i in range(seen.temperatures):
        sensor(f"temperature_{i + 1}", f"Temperature {i + 1}",
               f"{{{{ (value_json.get('temperatures') or [])[{i}] | default(None) }}}}",
               "°C", "temperature", "measurement", None, 1)
    if seen.cells:
        cells = "(value_json.get('cell_voltages') or [0])"
        sensor("cell_min", "Lowest cell voltage", f"{{{{ {cells} | min }}}}", "V", "voltage",
               "measurement", None, 3)
        sensor("cell_max", "Highest cell voltage", f"{{{{ {cells} | max }}}}", "V", "voltage",
               "measurement", None, 3)
        sensor("cell_delta", "Cell voltage difference",
               f"{{{{ (({cells} | max) - ({cells} | min)) | round(3) }}}}", "V", "voltage",
               "measurement", "diagnostic", 3)
        for i in range(seen.cells):
            sensor(f"cell_{i + 1}", f"Cell {i + 1} voltage",
                   f"{{{{ (value_json.get('cell_voltages') or [])[{i}] | default(None) }}}}",
                   "V", "voltage", "measurement", "diagnostic", 3)
    elif {"cell_voltage_min", "cell_voltage_max"} <= seen.keys:
        # a BMS that reports only its extremes (JBD CAN, JK CAN v1): the same three entities
        sensor("cell_min", "Lowest cell voltage", _get("cell_voltage_min"), "V", "voltage",
               "measurement", None, 3)
        sensor("cell_max", "Highest cell voltage", _get("cell_voltage_max"), "V", "voltage",
               "measurement", None, 3)
        sensor("cell_delta", "Cell voltage difference",
               "{{ ((value_json.cell_voltage_max | float(0)) - (value_json.cell_voltage_min"
               " | float(0))) | round(3) }}", "V", "voltage", "measurement", "diagnostic", 3)
    for key, oid, name, unit, dclass, sclass, precision in _LIMIT_SENSORS:
        if key in seen.limits:
            sensor(oid, name, _get(f"limits.{key}"), unit, dclass, sclass, None, precision)
    for key, oid, name in _LIMIT_TEXTS:
        if key in seen.limits:
            add("sensor", oid, name, value_template=_get(f"limits.{key}"),
                entity_category="diagnostic")
    for key, oid, name, unit, dclass, sclass, precision in _DERIVED_SENSORS:
        if key in seen.derived:
            sensor(oid, name, _get(f"derived.{key}"), unit, dclass, sclass, None, precision)

    for key, oid, name, dclass in _BINARY:
        if key in seen.keys:
            add("binary_sensor", oid, name, value_template=_flag(key), device_class=dclass)
    if "cell_balancing" in seen.keys:
        add("binary_sensor", "balancing", "Balancing",
            value_template=("{{ 'ON' if true in (value_json.get('cell_balancing') or []) "
                            "else 'OFF' }}"))
    for key, name in (("allow_to_charge", "Allowed to charge"),
                      ("allow_to_discharge", "Allowed to discharge")):
        if key in seen.limits:
            add("binary_sensor", key, name, value_template=_flag(f"limits.{key}"),
                entity_category="diagnostic")
    for alarm in (a for a in ALARM_NAMES if a in seen.alarms):
        add("binary_sensor", f"alarm_{alarm}", f"Alarm {_title(alarm).lower()}",
            value_template=(f"{{{{ 'ON' if ((value_json.get('alarms') or {{}})"
                            f".get('{alarm}') or 0) > 0 else 'OFF' }}}}"),
            device_class="problem", entity_category="diagnostic")

    for control, capability, name, state_key in _SWITCHES:
        if capability in caps:
            add("switch", f"{control}_switch", name, command_topic=topics.command(control),
                payload_on="ON", payload_off="OFF", state_on="ON", state_off="OFF",
                value_template=_flag(state_key), entity_category="config")
    if Capability.SOC_RESET in caps:
        # A number entity in box mode: typing a value sends it once; a slider could be dragged.
        config = {k: v for k, v in common.items() if k != "state_topic"}
        out[f"{prefix}/number/bmshost_{device.node}/soc_reset/config"] = {
            "name": "Reset SoC to", "unique_id": f"bmshost_{device.node}_soc_reset",
            "object_id": f"{device.node}_soc_reset", **config,
            "command_topic": topics.command("soc_reset"), "min": 0, "max": 100, "step": 1,
            "mode": "box", "unit_of_measurement": "%", "entity_category": "config",
        }
    return out
