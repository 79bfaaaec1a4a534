"""A producer process for the outbox kill -9 tests (tests/test_events.py, tests/test_mqtt.py).

    python tests/outbox_worker.py webhook OUTBOX URL COUNT [PAUSE_S]
    python tests/outbox_worker.py mqtt OUTBOX PORT/PREFIX COUNT [PAUSE_S]
        hands COUNT recognised events to a WebhookSink (delivering to URL meanwhile) or an
        MqttSink (publishing to 127.0.0.1:PORT under PREFIX), printing "acked <k>
        <event_id>" only after each handle() returned, i.e. after the event was committed
        to the outbox; PAUSE_S between events.
"""
from __future__ import annotations

import sys
import time

from edge.events.event import Event


def sink_for(kind: str, outbox: str, target: str):
    if kind == "webhook":
        from edge.events.sinks import WebhookSink
        return WebhookSink(target, outbox, timeout=2.0, backoff_min_s=0.05, backoff_max_s=0.2)
    from edge.events.mqtt import MqttSink
    from edge.mqtt_config import MqttConfig
    port, prefix = target.split("/", 1)
    return MqttSink(MqttConfig(host="127.0.0.1", port=int(port), prefix=prefix, node_id="worker",
                               reconnect_min_s=1, reconnect_max_s=1), outbox)


def produce(sink, count: int, pause_s: float = 0.0) -> None:
    for k in range(count):
        event = Event("recognised", camera="gate", track_id=k, user_id=f"u{k}", group_id="staff", score=90.0)
        sink.handle(event)
        print(f"acked {k} {event.event_id}", flush=True)
        time.sleep(pause_s)
    sink.close()


if __name__ == "__main__":
    produce(sink_for(*sys.argv[1:4]), int(sys.argv[4]), float(sys.argv[5]) if len(sys.argv) > 5 else 0.0)
