"""A producer process for the outbox kill -9 test in tests/test_events.py.

    python tests/events_worker.py OUTBOX URL COUNT [PAUSE_S]
        hands COUNT recognised events to a WebhookSink (its sender delivering to URL
        meanwhile), printing "acked <k> <event_id>" only after each handle() returned,
        i.e. after the event was committed to the outbox; PAUSE_S between events.
"""
from __future__ import annotations

import sys
import time

from edge.events.event import Event
from edge.events.sinks import WebhookSink


def produce(outbox: str, url: str, count: int, pause_s: float = 0.0) -> None:
    sink = WebhookSink(url, outbox, timeout=2.0, backoff_min_s=0.05, backoff_max_s=0.2)
    for k in range(count):
        event = Event("recognised", camera="gate", track_id=k, user_id=f"u{k}", group_id="staff", score=90.0)
        sink.handle(event)
        print(f"acked {k} {event.event_id}", flush=True)
        time.sleep(pause_s)
    sink.close()


if __name__ == "__main__":
    produce(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]) if len(sys.argv) > 4 else 0.0)
