"""Per-battery persisted state (calculated SoC, float state, history), written atomically.

Stages get a plain dict per stage name; the host saves the whole battery file when its content
changed, at most every ``min_interval`` seconds (flash on a GX device must not be written every
poll) and always on shutdown. A file is replaced with write-temp-then-rename, so a power cut
leaves either the old or the new state, never half of one.

The document is ``{stage name: {key: value}, "_saved_at": <epoch seconds>}``. The timestamp lets
the host pick the newest of several copies: sinks may keep one too (the Venus sink stores it in
``com.victronenergy.settings``), and each written document is handed to them through
``on_saved``. Whether a document changed is judged on the stage sections alone, so the timestamp
never causes a write by itself.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

log = logging.getLogger("bmshost.store")

SAVED_AT = "_saved_at"  # top-level key of the document; never a stage name (stages have no "_")


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


@attrs.frozen
class StateDoc:
    """A parsed state document: the stage sections and when they were saved (0 = unknown, as in
    files written before the timestamp existed)."""

    sections: dict[str, dict[str, Any]]
    saved_at: float
    text: str  # the document exactly as stored


def parse_state(text: str, source: str) -> StateDoc | None:
    """Parse a state document. Anything that is not one (corrupt JSON, a foreign value, the wrong
    shape) is logged as a warning naming ``source`` and gives None; an empty text is simply
    "nothing stored yet"."""
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        log.warning("state in %s is corrupt (%s); ignored", source, exc)
        return None
    if not isinstance(data, dict):
        log.warning("state in %s is not a state document (a JSON %s); ignored", source, type(data).__name__)
        return None
    saved_at = data.get(SAVED_AT, 0.0)
    if isinstance(saved_at, bool) or not isinstance(saved_at, int | float) or not math.isfinite(saved_at):
        log.warning("state in %s has an invalid %s (%r); treated as old", source, SAVED_AT, saved_at)
        saved_at = 0.0
    sections = {k: v for k, v in data.items() if isinstance(v, dict)}
    dropped = [k for k, v in data.items() if k != SAVED_AT and not isinstance(v, dict)]
    if dropped:
        log.warning("state in %s: ignoring entries that are not stage sections: %s", source, ", ".join(sorted(dropped)))
    return StateDoc(sections=sections, saved_at=float(saved_at), text=text)


class BatteryState:
    """The state of one battery: ``{stage name: {key: value}}``, kept in a file.

    ``held``: while True nothing is saved, not even on shutdown. The host holds the state until
    it has compared the file with the copies sinks keep (at the battery's first connect), so a
    run that never reached its BMS cannot overwrite a good copy with a blank one.
    ``on_saved(text)`` is called with every document actually written (already coalesced).
    """

    def __init__(
        self,
        path: Path | None,
        min_interval: float = 60.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.min_interval = min_interval
        self.wall = wall
        self.sections: dict[str, dict[str, Any]] = {}
        self.saved_at = 0.0  # of the document loaded or last written
        self.text = ""  # that document as stored ("" when there is none)
        self.held = False
        self.on_saved: Callable[[str], None] | None = None
        self._saved_sections = ""  # the sections part of ``text``, for change detection
        self._last_save = float("-inf")
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("state file %s unreadable (%s); starting fresh", path, exc)
            return
        doc = parse_state(text, f"state file {path}")
        if doc is not None:
            self._take(doc)

    def _take(self, doc: StateDoc) -> None:
        self.sections = doc.sections
        self.saved_at = doc.saved_at
        self.text = doc.text
        self._saved_sections = self._sections_text() or ""

    def _sections_text(self) -> str | None:
        try:
            return json.dumps(self.sections, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            log.error("state of %s is not serialisable (%s); not saved", self.path, exc)
            return None

    def section(self, name: str) -> dict[str, Any]:
        return self.sections.setdefault(name, {})

    def adopt(self, doc: StateDoc) -> None:
        """Take ``doc`` (a newer copy kept by a sink) as the battery's state. The sections are
        replaced in place (stages must be rebuilt to see them) and the file is rewritten at once
        with the same document, so file and copy agree again."""
        self.sections.clear()
        self.sections.update(doc.sections)
        self.saved_at = doc.saved_at
        self.text = doc.text
        self._saved_sections = self._sections_text() or ""
        if self.path is not None:
            try:
                atomic_write_text(self.path, doc.text)
            except OSError as exc:
                log.error("cannot save state to %s: %s", self.path, exc)

    def maybe_save(self, now: float, force: bool = False) -> bool:
        """Save if changed and the interval passed (or ``force``). Returns True if written."""
        if self.held or self.path is None or (not force and now - self._last_save < self.min_interval):
            return False
        self._last_save = now
        sections = self._sections_text()
        if sections is None or sections == self._saved_sections:
            return False
        saved_at = round(self.wall(), 3)
        doc: dict[str, Any] = dict(self.sections)
        doc[SAVED_AT] = saved_at
        text = json.dumps(doc, sort_keys=True, allow_nan=False)
        written = True
        try:
            atomic_write_text(self.path, text)
        except OSError as exc:
            log.error("cannot save state to %s: %s", self.path, exc)
            written = False
        # Counted as saved even when the file failed (a full or read-only disk): the copies the
        # sinks keep still get it, and retrying every interval would only churn their flash.
        self._saved_sections, self.text, self.saved_at = sections, text, saved_at
        if self.on_saved is not None:
            try:
                self.on_saved(text)
            except Exception:
                log.exception("handing the saved state of %s on failed", self.path)
        return written
