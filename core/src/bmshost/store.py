"""Per-battery persisted state (calculated SoC, float state, history), written atomically.

Stages get a plain dict per stage name; the host saves the whole battery file when its content
changed, at most every ``min_interval`` seconds (flash on a GX device must not be written every
poll) and always on shutdown. A file is replaced with write-temp-then-rename, so a power cut
leaves either the old or the new state, never half of one.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger("bmshost.store")


def default_state_dir() -> Path:
    env = os.environ.get("BMSHOST_STATE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "bmshost"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old or the new content, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class BatteryState:
    """The state file of one battery: ``{stage name: {key: value}}``."""

    def __init__(self, path: Path | None, min_interval: float = 60.0) -> None:
        self.path = path
        self.min_interval = min_interval
        self.sections: dict[str, dict[str, Any]] = {}
        self._saved_text = ""
        self._last_save = float("-inf")
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("state file %s unreadable (%s); starting fresh", path, exc)
            return
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            log.warning("state file %s is corrupt (%s); starting fresh", path, exc)
            return
        if isinstance(data, dict):
            self.sections = {k: v for k, v in data.items() if isinstance(v, dict)}
            self._saved_text = text

    def section(self, name: str) -> dict[str, Any]:
        return self.sections.setdefault(name, {})

    def maybe_save(self, now: float, force: bool = False) -> bool:
        """Save if changed and the interval passed (or ``force``). Returns True if written."""
        if self.path is None or (not force and now - self._last_save < self.min_interval):
            return False
        self._last_save = now
        try:
            text = json.dumps(self.sections, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            log.error("state of %s is not serialisable (%s); not saved", self.path, exc)
            return False
        if text == self._saved_text:
            return False
        try:
            atomic_write_text(self.path, text)
        except OSError as exc:
            log.error("cannot save state to %s: %s", self.path, exc)
            return False
        self._saved_text = text
        return True
