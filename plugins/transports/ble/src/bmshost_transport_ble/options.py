"""``[transports.ble]``: settings of the Bluetooth adapters, shared by every ``ble://`` battery.

They belong to the adapter, not to one battery (a URL parameter could disagree between two
batteries on the same adapter), so they live in their own configuration table, strictly checked
like every other section::

    [transports.ble]
    slots = 5             # simultaneous connections per adapter
    reconnect_initial = 2.0
    reconnect_max = 120.0
    adapter_reset_after = 12   # failed connects in a row before the adapter is reset; 0 = never
"""

from __future__ import annotations

import attrs

from bmshost_transport_ble.manager import DEFAULT_SLOTS, BackoffPolicy

_DEFAULT_POLICY = BackoffPolicy()


@attrs.define(kw_only=True)
class BleTransportOptions:
    # common adapters manage 5-10 LE links, cheap ones about 5
    slots: int = attrs.field(
        default=DEFAULT_SLOTS, validator=[attrs.validators.ge(1), attrs.validators.le(32)]
    )
    reconnect_initial: float = attrs.field(  # s before the first retry of a failed connect
        default=_DEFAULT_POLICY.initial,
        validator=[attrs.validators.gt(0), attrs.validators.le(3600)],
    )
    reconnect_max: float = attrs.field(  # s, cap of the spacing between attempts
        default=_DEFAULT_POLICY.maximum,
        validator=[attrs.validators.gt(0), attrs.validators.le(86400)],
    )
    adapter_reset_after: int = attrs.field(
        default=_DEFAULT_POLICY.reset_after, validator=attrs.validators.ge(0)
    )

    def __attrs_post_init__(self) -> None:
        if self.reconnect_max < self.reconnect_initial:
            raise ValueError("reconnect_max must not be below reconnect_initial")

    def policy(self) -> BackoffPolicy:
        # 0 disables resets: a count no run of failures reaches
        reset_after = self.adapter_reset_after or 2**31
        return BackoffPolicy(
            initial=self.reconnect_initial, maximum=self.reconnect_max, reset_after=reset_after
        )
