"""Options of the seplos driver (keys of a ``[[batteries]]`` table with ``driver = "seplos"``)."""

from __future__ import annotations

import attrs


@attrs.define(slots=True, kw_only=True)
class SeplosOptions:
    # v2 ASCII: the COMMAND_GROUP byte of 0x42/0x44 requests. The vendor document says it must be
    # the pack's DIP address (the default, None); dbus-serialbattery always sends 1.
    command_group: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional([attrs.validators.ge(0), attrs.validators.le(0xFF)]),
    )
