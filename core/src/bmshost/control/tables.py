"""Lookup tables for the CCL/DCL limits: validation and interpolation (linear and step).

A table is two equal-length lists: breakpoints (cell voltage, °C, %) and outputs (amps, already
multiplied by the configured maximum). Breakpoints may be given ascending or descending, as in the
reference configuration; they are sorted ascending once, at build time, so the per-cycle lookup is
a bisection plus at most one multiply.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from collections.abc import Sequence

import attrs


def table_problems(x_name: str, xs: Sequence[float], y_name: str, ys: Sequence[float]) -> list[str]:
    """What is wrong with a breakpoint/output pair of lists (empty when it is usable)."""
    problems: list[str] = []
    if len(xs) == 0:
        problems.append(f"{x_name}: the table needs at least one breakpoint")
    if len(xs) != len(ys):
        problems.append(f"{y_name}: has {len(ys)} entries but {x_name} has {len(xs)}")
    if any(not math.isfinite(x) for x in xs):
        problems.append(f"{x_name}: breakpoints must be finite numbers")
    elif len(xs) > 1:
        ascending = all(a < b for a, b in itertools.pairwise(xs))
        descending = all(a > b for a, b in itertools.pairwise(xs))
        if not (ascending or descending):
            problems.append(
                f"{x_name}: breakpoints are not monotonic (strictly ascending or descending): "
                + ", ".join(f"{x:g}" for x in xs)
            )
    return problems


def fraction_problems(name: str, fractions: Sequence[float]) -> list[str]:
    """Fractions of the maximum current: each in [0, 1], and 1.0 must appear (else the table could
    never allow the full current, which the reference rejects too)."""
    problems: list[str] = []
    if any(not (0.0 <= f <= 1.0) for f in fractions):
        problems.append(f"{name}: every fraction must be between 0 and 1")
    elif fractions and max(fractions) != 1.0:
        problems.append(f"{name}: one entry must be 1.0 (the full maximum current)")
    return problems


@attrs.define(slots=True)
class Table:
    """An ascending lookup table: ``linear`` interpolates inside a segment and clamps outside;
    ``step`` holds the value of the breakpoint reached (see its docstring)."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]
    _slopes: tuple[float, ...] = attrs.field(init=False)
    _last: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._last = len(self.xs) - 1
        self._slopes = tuple(
            (self.ys[i + 1] - self.ys[i]) / (self.xs[i + 1] - self.xs[i]) for i in range(self._last)
        )

    @classmethod
    def build(cls, xs: Sequence[float], ys: Sequence[float], scale: float = 1.0) -> Table:
        """Sort a (possibly descending) table ascending and multiply its outputs by ``scale``."""
        pairs = sorted(zip(xs, ys, strict=True))
        return cls(tuple(x for x, _ in pairs), tuple(y * scale for _, y in pairs))

    def linear(self, x: float) -> float:
        xs = self.xs
        if x <= xs[0]:
            return self.ys[0]
        if x >= xs[self._last]:
            return self.ys[self._last]
        i = bisect_right(xs, x) - 1
        y0 = self.ys[i]
        y = y0 + (x - xs[i]) * self._slopes[i]
        # clamp to the segment's output range (guards against rounding past a breakpoint)
        y1 = self.ys[i + 1]
        if y0 <= y1:
            return y0 if y < y0 else (y1 if y > y1 else y)
        return y1 if y < y1 else (y0 if y > y0 else y)

    def step(self, x: float) -> float:
        """Step lookup: the limit changes exactly when the input reaches a breakpoint; between two
        breakpoints the less restrictive of the two applies. One rule for every table (the
        reference picks a neighbour per attribute; see docs/control.md)."""
        xs = self.xs
        if x <= xs[0]:
            return self.ys[0]
        if x >= xs[self._last]:
            return self.ys[self._last]
        i = bisect_right(xs, x) - 1
        if x == xs[i]:
            return self.ys[i]
        a, b = self.ys[i], self.ys[i + 1]
        return a if a > b else b
