"""The console sink: a live, readable view of every battery, or JSON lines with ``--json``.

On a terminal the view is redrawn in place; otherwise each refresh prints the view once (so the
output of ``bmshost run | tee log`` stays readable). JSON mode prints one object per battery and
cycle, flushing each line so a reading process sees it at once.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

import attrs

from bmshost.model import Sample
from bmshost.sink import BatteryHandle, BatteryUpdate, Sink, SinkContext


@attrs.define(kw_only=True)
class ConsoleOptions:
    refresh: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))  # s between redraws
    color: bool = True
    bar_width: int = attrs.field(default=20, validator=attrs.validators.in_(range(5, 81)))


_RESET, _BOLD, _DIM, _RED, _YELLOW, _GREEN, _CYAN = (
    "\x1b[0m", "\x1b[1m", "\x1b[2m", "\x1b[31m", "\x1b[33m", "\x1b[32m", "\x1b[36m"
)


def _fmt(value: float | None, unit: str, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f} {unit}"


def _flag(value: bool | None) -> str:
    return "?" if value is None else ("on" if value else "off")


class ConsoleView:
    """Renders one battery's update as text (kept separate so it is testable and reusable)."""

    def __init__(self, color: bool, bar_width: int) -> None:
        self.color = color
        self.bar_width = bar_width

    def _c(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self.color else text

    def render(self, name: str, connection: str, update: BatteryUpdate) -> str:
        s = update.sample
        status = "online" if update.online else ("STALE" if update.stale else "no reply")
        colour = _GREEN if update.online else (_RED if update.stale else _YELLOW)
        lines = [f"{self._c(_BOLD, name)}  {connection}  [{self._c(colour, status)}]  {update.connection_info}"]
        if s is None:
            lines.append("  waiting for the first reading ...")
            return "\n".join(lines)
        derived = update.derived
        soc = derived.soc if derived is not None and derived.soc is not None else s.soc
        lines.append(
            f"  {_fmt(s.voltage, 'V')}  {_fmt(s.current, 'A')}  {_fmt(s.power, 'W', 0)}  "
            f"SoC {_fmt(soc, '%', 1)}  SoH {_fmt(s.soh, '%', 0)}  "
            f"{_fmt(s.remaining_ah, 'Ah', 1)} / {_fmt(s.capacity_ah, 'Ah', 0)}  cycles {s.cycles if s.cycles is not None else '—'}"
        )
        lines.extend(self._cells(s))
        temps = ", ".join(f"{t:.1f}" for t in s.temperatures or []) or "—"
        mos = f"  MOSFET {s.mosfet_temperature:.1f} °C" if s.mosfet_temperature is not None else ""
        lines.append(f"  temperatures {temps} °C{mos}")
        fets = f"  charge FET {_flag(s.charge_fet)}  discharge FET {_flag(s.discharge_fet)}  balancer {_flag(s.balance_fet)}"
        if s.heating is not None:
            fets += f"  heating {_flag(s.heating)}"
        lines.append(fets)
        alarms = dict(s.alarms or {})
        if derived is not None and derived.alarms:
            for k, v in derived.alarms.items():
                alarms[k] = max(alarms.get(k, 0), v)
        active = [f"{k}={'ALARM' if v == 2 else 'warn'}" for k, v in sorted(alarms.items()) if v]
        lines.append("  alarms " + (self._c(_RED, ", ".join(active)) if active else "none"))
        if s.bms_charge_current_limit is not None or s.bms_discharge_current_limit is not None:
            lines.append(
                f"  BMS limits  charge {_fmt(s.bms_charge_current_limit, 'A', 1)}  "
                f"discharge {_fmt(s.bms_discharge_current_limit, 'A', 1)}"
            )
        limits = update.limits
        if limits is not None and (limits.cvl is not None or limits.ccl is not None or limits.dcl is not None):
            lines.append(
                f"  {self._c(_CYAN, 'limits')}  CVL {_fmt(limits.cvl, 'V')}  "
                f"CCL {_fmt(limits.ccl, 'A', 1)} ({limits.charge_limitation or '—'})  "
                f"DCL {_fmt(limits.dcl, 'A', 1)} ({limits.discharge_limitation or '—'})  "
                f"mode {limits.charge_mode or '—'}"
            )
        return "\n".join(lines)

    def _cells(self, s: Sample) -> list[str]:
        cells = s.cell_voltages
        if not cells:
            return self._extremes(s)
        lo, hi = min(cells), max(cells)
        span = max(hi - lo, 0.001)
        balancing = s.cell_balancing or []
        out = [f"  cells {len(cells)}  min {lo:.3f} V  max {hi:.3f} V  diff {1000 * (hi - lo):.0f} mV"]
        for i, v in enumerate(cells):
            fill = round(self.bar_width * (0.15 + 0.85 * (v - lo) / span)) if hi > lo else self.bar_width // 2
            bar = "█" * fill + "·" * (self.bar_width - fill)
            mark = ""
            if v == hi and hi > lo:
                mark = self._c(_RED, " max")
            elif v == lo and hi > lo:
                mark = self._c(_YELLOW, " min")
            if i < len(balancing) and balancing[i]:
                mark += self._c(_CYAN, " balancing")
            out.append(f"  {i + 1:>3} {v:6.3f} V {bar}{mark}")
        return out

    @staticmethod
    def _extremes(s: Sample) -> list[str]:
        """A BMS that reports only its lowest and highest cell (JBD CAN, JK CAN v1)."""
        lo, hi = s.cell_voltage_min, s.cell_voltage_max
        if lo is None or hi is None:
            return []

        def cell(v: float, no: int | None) -> str:
            return f"{v:.3f} V" + (f" (cell {no})" if no else "")

        count = f"cells {s.series_cells}" if s.series_cells else "cells ?"
        return [
            f"  {count}  min {cell(lo, s.cell_voltage_min_id)}  max {cell(hi, s.cell_voltage_max_id)}"
            f"  diff {1000 * (hi - lo):.0f} mV  (extremes only)"
        ]


class ConsoleSink(Sink):
    name = "console"

    def __init__(self, options: ConsoleOptions, json_mode: bool, stream: TextIO | None = None) -> None:
        self.options = options
        self.json_mode = json_mode
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.view = ConsoleView(color=options.color and self.tty, bar_width=options.bar_width)
        self._latest: dict[str, tuple[BatteryHandle, BatteryUpdate]] = {}
        self._last_draw = float("-inf")

    def publish(self, battery: BatteryHandle, update: BatteryUpdate) -> None:
        if self.json_mode:
            record: dict[str, Any] = {"battery": battery.name}
            record.update(update.to_json_dict())
            self.stream.write(json.dumps(record, separators=(",", ":")) + "\n")
            self.stream.flush()
            return
        self._latest[battery.name] = (battery, update)
        now = time.monotonic()
        if now - self._last_draw < self.options.refresh:
            return  # rendered only when drawn: cycles between redraws cost nothing here
        self._last_draw = now
        text = "\n\n".join(
            self.view.render(name, handle.connection, last) for name, (handle, last) in self._latest.items()
        )
        if self.tty:
            self.stream.write("\x1b[H\x1b[2J" + text + "\n")
        else:
            self.stream.write(text + "\n\n")
        self.stream.flush()


def make_console_sink(ctx: SinkContext) -> ConsoleSink:
    options = ctx.options if ctx.options is not None else ConsoleOptions()
    return ConsoleSink(options, ctx.json_mode, ctx.extra.get("stream"))
