"""A log that cannot be flooded: at most N lines a window, the rest summed up in one line."""
from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Callable

log = logging.getLogger("edge.http")

LOG_LINES_PER_WINDOW = 20  # default of server.http_log_per_min
LOG_WINDOW_S = 60.0


class EventLog:
    """One log line per HTTP-layer event, at most `limit` a window; the rest are counted and
    summed up in one line when the window ends, so a flood cannot fill a small disk."""

    def __init__(self, logger: logging.Logger = log, limit: int = LOG_LINES_PER_WINDOW,
                 window_s: float = LOG_WINDOW_S, clock: Callable[[], float] = time.monotonic):
        self.logger, self.limit, self.window_s, self.clock = logger, limit, window_s, clock
        self._window_end = 0.0
        self._logged = 0
        self._suppressed: Counter[str] = Counter()
        self._timer: asyncio.TimerHandle | None = None

    def note(self, kind: str, line: str, *args) -> None:
        now = self.clock()
        if now >= self._window_end:
            self.flush()
            self._window_end = now + self.window_s
        if self._logged < self.limit:
            self._logged += 1
            self.logger.warning(line, *args)
            return
        self._suppressed[kind] += 1
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a unit test): the next note() after the window flushes
                return
            self._timer = loop.call_later(max(0.0, self._window_end - now), self.flush)

    def flush(self) -> None:
        """Log the window's suppressed count (if any) and start a new window."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._suppressed:
            total = sum(self._suppressed.values())
            kinds = ", ".join(f"{k} {n}" for k, n in self._suppressed.most_common())
            self.logger.warning("suppressed %d similar HTTP-layer events in the last %.0f s (%s)",
                                total, self.window_s, kinds)
        self._suppressed.clear()
        self._logged = 0
        self._window_end = self.clock()
