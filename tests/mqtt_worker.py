"""A producer process for the MQTT kill -9 test in tests/test_mqtt.py.

    python tests/mqtt_worker.py OUTBOX PORT PREFIX COUNT [PAUSE_S]
        hands COUNT recognised events to an MqttSink publishing to 127.0.0.1:PORT under
        PREFIX, printing "acked <k> <event_id>" only after each handle() returned, i.e.
        after the event was committed to the outbox; PAUSE_S between events.
"""
from __future__ import annotations

import sys
import time

from edge.events.event import Event
from edge.events.mqtt import MqttSink
from edge.events.mqtt_config import MqttConfig


def produce(outbox: str, port: int, prefix: str, count: int, pause_s: float = 0.0) -> None:
    sink = MqttSink(MqttConfig(host="127.0.0.1", port=port, prefix=prefix, node_id="worker",
                                 reconnect_min_s=1, reconnect_max_s=1), outbox)
    for k in range(count):
        event = Event("recognised", camera="gate", track_id=k, user_id=f"u{k}", group_id="staff", score=90.0)
        sink.handle(event)
        print(f"acked {k} {event.event_id}", flush=True)
        time.sleep(pause_s)
    sink.close()


if __name__ == "__main__":
    produce(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]),
            float(sys.argv[5]) if len(sys.argv) > 5 else 0.0)
