"""A logger wrapper that says a repeated problem once per interval instead of every message.

A misconfigured publisher sending garbage every 100 ms must not flood the log (on a GX device the
log lives in RAM); the count of suppressed lines is reported with the next one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._last: float | None = None
        self.suppressed = 0

    def log(self, level: int, msg: str, *args: Any) -> bool:
        """Log now, or count the line as suppressed. True when it was logged."""
        now = self.clock()
        if self._last is not None and now - self._last < self.interval:
            self.suppressed += 1
            return False
        if self.suppressed:
            msg += " (%d similar message(s) suppressed)"
            args = (*args, self.suppressed)
        self.logger.log(level, msg, *args)
        self._last = now
        self.suppressed = 0
        return True
