"""Per-APP_ID request rate: a token bucket answered with Baidu's error 18."""
from __future__ import annotations

import threading
import time


class TokenBucket:
    """`rate` requests per second on average, bursts of up to max(1, rate)."""

    def __init__(self, rate: float, clock=time.monotonic):
        self.rate, self.capacity, self._clock = rate, max(1.0, rate), clock
        self._tokens, self._last = self.capacity, clock()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False
