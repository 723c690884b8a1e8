"""The JBD family's own keys in a ``[[batteries]]`` table (validated strictly by the core)."""

from __future__ import annotations

import attrs


@attrs.define(kw_only=True)
class JbdOptions:
    # CAN sends no cell list and no cell count: the count is estimated from the pack voltage and
    # the two extreme cells and latched (bmshost.cellcount); set it here to skip estimating.
    cells: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional([attrs.validators.ge(1), attrs.validators.le(64)]),
    )
