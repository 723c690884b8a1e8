"""Advertisement matching for ``bmshost scan ble``.

The matcher types live in the core (``bmshost.advertising``) so drivers declare them on their
``VariantSpec.ble_matchers`` without depending on this distribution; this module adds the claim of
one driver variant and re-exports the core names for the transport's own modules.
"""

from __future__ import annotations

import attrs

from bmshost.advertising import Advertisement, BleMatcher, to_matchers

__all__ = ["Advertisement", "BleMatcher", "Claim", "to_matchers"]


@attrs.frozen
class Claim:
    driver: str
    variant: str
    matchers: tuple[BleMatcher, ...]

    def claims(self, adv: Advertisement) -> bool:
        return any(m.matches(adv) for m in self.matchers)
