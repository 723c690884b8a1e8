"""``bmshost control replay TRACE.jsonl [-c FILE]``: feed a recorded day through a battery's control
pipeline with the trace's own clock and print one JSON line of limits per step.

Input lines (contract): ``{"t": seconds, "voltage", "current", "soc", "cell_voltages",
"temperatures", "mosfet_temperature", "charge_fet", "discharge_fet", "capacity_ah", "online"}``;
``online: false`` means the BMS did not answer (other fields may then be null). The BMS's own
limits (``bms_charge_current_limit``, ...), ``cell_balancing`` and ``heating`` are accepted too.
Output lines: ``{"t", "cvl", "ccl", "dcl", "charge_mode", "charge_limitation",
"discharge_limitation", "soc"}``. Without ``-c`` the reference defaults apply; with ``-c`` the
file's ``[control.*]`` tables are validated and used. The capabilities are inferred from what the
trace contains. A bad line is an error naming its line number (exit status 2).

``explain`` renders a pipeline's stage list for ``bmshost run --explain``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Sequence
from typing import IO, Any, TypeGuard

from bmshost.capabilities import BASIC, Capability
from bmshost.config import load_config_file
from bmshost.control.pipeline import Pipeline, bind_control, build_pipeline
from bmshost.control.registration import register_stages
from bmshost.errors import ConfigError
from bmshost.model import Sample
from bmshost.registry import StageRegistry
from bmshost.stage import StageSpec

NUMBER_FIELDS = (
    "voltage",
    "current",
    "soc",
    "mosfet_temperature",
    "capacity_ah",
    "bms_charge_current_limit",
    "bms_discharge_current_limit",
    "bms_charge_voltage_limit",
)
LIST_FIELDS = ("cell_voltages", "temperatures")
BOOL_FIELDS = ("charge_fet", "discharge_fet", "heating")
KNOWN_KEYS = frozenset(
    ("t", "online", "cell_balancing", *NUMBER_FIELDS, *LIST_FIELDS, *BOOL_FIELDS)
)
OUTPUT_KEYS = (
    "t",
    "cvl",
    "ccl",
    "dcl",
    "charge_mode",
    "charge_limitation",
    "discharge_limitation",
    "soc",
)

# what a trace field tells about the BMS that recorded it
CAPABILITY_OF_FIELD: dict[str, tuple[Capability, ...]] = {
    "mosfet_temperature": (Capability.MOSFET_TEMPERATURE,),
    "bms_charge_current_limit": (Capability.BMS_CURRENT_LIMITS,),
    "bms_discharge_current_limit": (Capability.BMS_CURRENT_LIMITS,),
    "cell_voltages": (Capability.SINGLE_CELL_DETAILS, Capability.MIN_MAX_CELL_VOLTAGE),
    "charge_fet": (Capability.ALLOW_TO_CHARGE_STATE,),
    "discharge_fet": (Capability.ALLOW_TO_DISCHARGE_STATE,),
    "capacity_ah": (Capability.CAPACITY_INSTALLED,),
    "cell_balancing": (Capability.BALANCING_STATUS,),
    "heating": (Capability.HEATING,),
}


class TraceError(ValueError):
    """A trace line is not valid; the message starts with ``line N:``."""


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_line(text: str, lineno: int) -> tuple[float, Sample | None, set[str]]:
    """One trace line → (t, sample or None when offline, names of the fields it set)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TraceError(f"line {lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise TraceError(f"line {lineno}: expected a JSON object")
    unknown = set(data) - KNOWN_KEYS
    if unknown:
        raise TraceError(f"line {lineno}: unknown field(s): {', '.join(sorted(unknown))}")
    t = data.get("t")
    if not _is_number(t):
        raise TraceError(f"line {lineno}: 't' must be a finite number of seconds, got {t!r}")
    online = data.get("online", True)
    if not isinstance(online, bool):
        raise TraceError(f"line {lineno}: 'online' must be true or false, got {online!r}")
    values: dict[str, Any] = {}
    for name in NUMBER_FIELDS:
        value = data.get(name)
        if value is not None and not _is_number(value):
            raise TraceError(
                f"line {lineno}: {name!r} must be a finite number or null, got {value!r}"
            )
        if value is not None:
            values[name] = float(value)
    for name in LIST_FIELDS:
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, list) or not all(_is_number(x) for x in value):
            raise TraceError(f"line {lineno}: {name!r} must be a list of finite numbers or null")
        values[name] = [float(x) for x in value]
    for name in BOOL_FIELDS:
        value = data.get(name)
        if value is not None and not isinstance(value, bool):
            raise TraceError(f"line {lineno}: {name!r} must be true, false or null, got {value!r}")
        if value is not None:
            values[name] = value
    balancing = data.get("cell_balancing")
    if balancing is not None:
        if not isinstance(balancing, list) or not all(isinstance(x, bool) for x in balancing):
            raise TraceError(
                f"line {lineno}: 'cell_balancing' must be a list of true/false or null"
            )
        values["cell_balancing"] = balancing
    if not online:
        return float(t), None, set()
    return float(t), Sample(**values), set(values)


def read_trace(
    lines: Iterable[str],
) -> tuple[list[tuple[float, Sample | None]], frozenset[Capability]]:
    """Parse and validate a whole trace; infer the capabilities of the BMS that recorded it."""
    steps: list[tuple[float, Sample | None]] = []
    seen: set[str] = set()
    last_t = -math.inf
    for lineno, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text:
            continue
        t, sample, fields = parse_line(text, lineno)
        if t < last_t:
            raise TraceError(f"line {lineno}: 't' goes backwards ({t:g} after {last_t:g})")
        last_t = t
        seen |= fields
        steps.append((t, sample))
    caps: set[Capability] = set(BASIC)
    for name in seen:
        caps.update(CAPABILITY_OF_FIELD.get(name, ()))
    return steps, frozenset(caps)


def builtin_stage_specs() -> list[StageSpec]:
    registry = StageRegistry()
    register_stages(registry)
    return registry.ordered()


def replay(
    steps: Sequence[tuple[float, Sample | None]],
    capabilities: frozenset[Capability],
    control: dict[str, Any],
    out: IO[str],
    specs: Sequence[StageSpec] | None = None,
) -> Pipeline:
    """Run the steps through a fresh pipeline and write one JSON line per step to ``out``."""
    specs = builtin_stage_specs() if specs is None else specs
    pipeline = build_pipeline(specs, capabilities, control, {}, "replay")
    dumps = json.dumps
    buffer: list[str] = []
    for t, sample in steps:
        step = pipeline.run(t, sample)
        limits = step.limits
        soc = step.derived.soc
        if soc is None and sample is not None:
            soc = sample.soc
        buffer.append(
            dumps(
                {
                    "t": t,
                    "cvl": limits.cvl,
                    "ccl": limits.ccl,
                    "dcl": limits.dcl,
                    "charge_mode": limits.charge_mode,
                    "charge_limitation": limits.charge_limitation,
                    "discharge_limitation": limits.discharge_limitation,
                    "soc": soc,
                },
                ensure_ascii=False,
            )
        )
        if len(buffer) >= 1024:
            out.write("\n".join(buffer) + "\n")
            buffer.clear()
    if buffer:
        out.write("\n".join(buffer) + "\n")
    return pipeline


def load_control(path: str | None, specs: Sequence[StageSpec]) -> dict[str, Any]:
    """The bound ``[control.*]`` options: defaults, or the tables of the TOML file at ``path``."""
    raw = load_config_file(path).control if path else {}
    return bind_control(specs, raw)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bmshost control replay",
        description="Feed a recorded trace (JSON lines) through the control pipeline and print "
        "the limits of every step as JSON lines.",
    )
    parser.add_argument("trace", help="trace file (JSON lines); '-' reads standard input")
    parser.add_argument("-c", "--config", help="bmshost.toml whose [control.*] tables to use")
    parser.add_argument(
        "--explain", action="store_true", help="print the stages used to standard error"
    )
    return parser


def replay_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    specs = builtin_stage_specs()
    try:
        control = load_control(args.config, specs)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"bmshost: {problem}", file=sys.stderr)
        return 2
    try:
        if args.trace == "-":
            steps, caps = read_trace(sys.stdin)
        else:
            with open(args.trace, encoding="utf-8") as handle:
                steps, caps = read_trace(handle)
    except OSError as exc:
        print(f"bmshost: {args.trace}: cannot read ({exc.strerror or exc})", file=sys.stderr)
        return 2
    except (TraceError, UnicodeDecodeError) as exc:
        print(f"bmshost: {args.trace}: {exc}", file=sys.stderr)
        return 2
    try:
        pipeline = replay(steps, caps, control, sys.stdout, specs)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"bmshost: {problem}", file=sys.stderr)
        return 2
    if args.explain:
        print(explain(pipeline), file=sys.stderr)
    return 0


def explain(pipeline: Pipeline, title: str | None = None) -> str:
    """Text for ``bmshost run --explain``: each stage, whether it runs, and why."""
    return format_explanation(title or pipeline.battery_id, pipeline.explain())


def format_explanation(title: str, rows: Sequence[tuple[str, bool, str]]) -> str:
    width = max((len(name) for name, _, _ in rows), default=0)
    lines = [f"{title}: control stages (in run order)"]
    for name, included, why in rows:
        mark = "+" if included else "-"
        lines.append(f"  {mark} {name.ljust(width)}  {why}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(replay_main(sys.argv[1:]))
