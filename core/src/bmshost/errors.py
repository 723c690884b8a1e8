"""The exception types plugins raise and the host understands.

The host treats them differently: a ``LinkError`` or ``FrameError`` costs one poll (the battery is
offline for that cycle and retried), a ``ConfigError`` stops start-up with exit status 2, a
``PluginError`` disables one plugin and leaves the rest running.
"""

from __future__ import annotations


class BmshostError(Exception):
    """Base of every error bmshost raises on purpose."""


class ConfigError(BmshostError):
    """The configuration is wrong. ``str()`` is ``path: reason`` lines, one per problem."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class PluginError(BmshostError):
    """A plugin could not be loaded or registered something invalid."""


class RegistrationError(PluginError):
    """A registry refused an entry (duplicate or malformed)."""


class LinkError(BmshostError):
    """The transport failed: port missing or busy, connection lost, nothing answered."""


class LinkTimeout(LinkError):
    """A read did not complete in time (a silent BMS)."""


class FrameError(BmshostError):
    """A frame failed validation: bad checksum, wrong length, error reply, unknown layout.

    Codecs raise only this for bad input; property tests hold them to it.
    """


class NotMyBMS(BmshostError):
    """A probe got an answer, but not from the family that was asked for."""


class UnsupportedCommand(BmshostError):
    """The driver cannot perform this write (capability missing)."""
