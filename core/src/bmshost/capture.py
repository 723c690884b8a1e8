"""Writing capture files (the ``bmshost-capture/1`` format of the architecture brief §8)."""

from __future__ import annotations

import json
from pathlib import Path

from bmshost.link import BaseLink, CaptureRecorder
from bmshost.store import atomic_write_text
from bmshost.transports.replay import CAPTURE_FORMAT


def write_capture(path: str | Path, driver: str, variant: str, link: BaseLink, recorder: CaptureRecorder) -> None:
    transport = "can" if link.kind == "can" else link.url.scheme
    data = {
        "format": CAPTURE_FORMAT,
        "driver": driver,
        "variant": variant,
        "transport": transport,
        "exchanges": recorder.exchanges,
    }
    atomic_write_text(Path(path), json.dumps(data, indent=1) + "\n")
