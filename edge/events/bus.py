"""Fan one event out to every sink, so a broken sink never costs the others.

A full disk under the JSON-lines log must not keep the door shut, and a relay fault
must not stop the webhook: each sink is called in turn, its exception logged and
counted, and the next sink still runs.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from edge.events.event import Event
from edge.events.sinks import Sink

log = logging.getLogger(__name__)

ERROR_LOG_EVERY_S = 60.0     # a sink failing on every event logs once a minute, not per event


@dataclass
class Published:
    """What each sink answered (by sink name), and which sinks failed."""
    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


class EventBus:
    """The sinks of one terminal, called in the order given (put the relay first: the
    person at the door is waiting). Thread-safe as far as the sinks are."""

    def __init__(self, sinks: Iterable[Sink]):
        self.sinks = list(sinks)
        names = [s.name for s in self.sinks]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"sink names must be unique: {', '.join(sorted(dup))}")
        self.failures = {n: 0 for n in names}
        self._last_log = {n: float("-inf") for n in names}
        self._unlogged = {n: 0 for n in names}
        self._lock = threading.Lock()
        self._closed = False

    def publish(self, event: Event) -> Published:
        out = Published()
        for sink in self.sinks:
            try:
                out.results[sink.name] = sink.handle(event)
            except Exception as exc:  # noqa: BLE001 - logged and counted; the others still run
                out.errors[sink.name] = exc
                self._failed(sink.name, event, exc)
        return out

    def _failed(self, name: str, event: Event, exc: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            self.failures[name] += 1
            first = self.failures[name] == 1
            if not first and now - self._last_log[name] < ERROR_LOG_EVERY_S:
                self._unlogged[name] += 1
                return
            skipped, self._unlogged[name], self._last_log[name] = self._unlogged[name], 0, now
        if first:
            log.error("event sink %s failed on event %s", name, event.event_id, exc_info=exc)
        else:
            log.error("event sink %s failed on event %s: %s (%d more failure(s) not logged)",
                      name, event.event_id, exc, skipped)

    def offer_status(self, snapshot: dict) -> None:
        """Hand the runner's status snapshot to every sink (a failure is logged, never raised)."""
        for sink in self.sinks:
            try:
                sink.offer_status(snapshot)
            except Exception:  # noqa: BLE001 - status is best effort; events matter
                log.exception("event sink %s failed on the status snapshot", sink.name)

    def reports(self) -> dict[str, dict]:
        """Each sink's report() that is not None, by sink name (the status snapshot's "sinks")."""
        out = {}
        for sink in self.sinks:
            try:
                r = sink.report()
            except Exception as exc:  # noqa: BLE001 - e.g. a damaged outbox file
                r = {"error": str(exc)}
            if r is not None:
                out[sink.name] = r
        return out

    def close(self) -> None:
        """Close every sink (each in turn, failures logged); idempotent."""
        if self._closed:
            return
        self._closed = True
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:  # noqa: BLE001
                log.exception("event sink %s failed to close", sink.name)
