"""``bmshost decode`` support: payloads (raw JSON bytes) in, the merged sample out."""

from __future__ import annotations

from collections.abc import Sequence

from bmshost.errors import FrameError
from bmshost.link import CanFrame
from bmshost.model import Sample
from bmshost_mqtt.payload import parse_payload


def decode(frames: Sequence[bytes | CanFrame]) -> Sample:
    """Parse each payload in order and merge them, as the session does. ``FrameError`` if any
    payload is invalid (decode is for inspecting captures, so a bad one is worth an error)."""
    sample = Sample()
    for frame in frames:
        if isinstance(frame, CanFrame):
            raise FrameError("the mqtt driver decodes JSON payloads, not CAN frames")
        sample = sample.merge(parse_payload(frame))
    return sample
