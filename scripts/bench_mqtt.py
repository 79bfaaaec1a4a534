"""MQTT sink figures (docs/mqtt.md): events through the durable outbox to a real mosquitto
on loopback (started here, as the tests do), received by a paho subscriber.

    python scripts/bench_mqtt.py [--events 2000] [--latency-events 200]

Prints: handle() (the outbox commit, what the capture loop pays) per event; the sink's
delivery rate streaming (events put as fast as possible, until the subscriber has them
all) and draining a backlog left by a broker outage; the put -> subscriber latency at
20 events/s (p50, p95, max).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
from edge.events.event import Event  # noqa: E402
from edge.events.mqtt import MqttSink  # noqa: E402
from edge.mqtt_config import MqttConfig  # noqa: E402
from edge.events.mosquitto import Broker, Subscriber  # noqa: E402

TOPIC = "edge/bench/events"


def event(i: int) -> Event:
    return Event("recognised", camera="gate", track_id=i, user_id=f"u{i}", group_id="staff", score=90.0)


def received(sub: Subscriber, n: int, timeout: float = 300.0) -> float:
    """Wait until the subscriber holds n distinct events; returns when (monotonic)."""
    assert sub.wait_for(lambda s: len(set(s.event_ids(TOPIC))) >= n, timeout), "events missing"
    return time.monotonic()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--latency-events", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        broker = Broker(tmp / "broker").start()
        config = MqttConfig(host="127.0.0.1", port=broker.port, node_id="bench", reconnect_min_s=1, reconnect_max_s=1)
        sub = Subscriber(broker.port, TOPIC)
        sub.connected.wait(10)
        try:
            sink = MqttSink(config, tmp / "stream.db")
            events = [event(i) for i in range(args.events)]
            t0 = time.monotonic()
            for e in events:
                sink.handle(e)
            put_s = time.monotonic() - t0
            done = received(sub, args.events)
            print(f"handle() {put_s * 1e3 / args.events:.2f} ms/event (outbox commit, synchronous=FULL)")
            print(f"streaming: {args.events} events delivered in {done - t0:.2f} s = "
                  f"{args.events / (done - t0):.0f} events/s")
            sink.close()

            broker.stop()                                   # a backlog from an outage
            sink = MqttSink(config, tmp / "backlog.db")
            for i in range(args.events):
                sink.handle(event(i))
            sub.messages.clear()
            t0 = time.monotonic()
            broker.start()
            while not sink.report()["connected"]:
                time.sleep(0.01)
            up = time.monotonic()
            done = received(sub, args.events)
            print(f"backlog: reconnected {up - t0:.2f} s after the broker came back, then {args.events} events "
                  f"drained in {done - up:.2f} s = {args.events / (done - up):.0f} events/s")

            sub.messages.clear()
            sent = {}
            sub_at = {}
            orig = sub._on_message

            def stamp(client, userdata, msg):
                sub_at.setdefault(msg.payload, time.monotonic())
                orig(client, userdata, msg)

            sub.client.on_message = stamp
            for i in range(args.latency_events):
                e = event(i)
                sent[e.to_json().encode()] = time.monotonic()
                sink.handle(e)
                time.sleep(0.05)
            received(sub, args.latency_events)
            lat = np.array([sub_at[p] - t for p, t in sent.items()]) * 1e3
            print(f"latency at 20 events/s (put -> subscriber): p50 {np.percentile(lat, 50):.1f} ms, "
                  f"p95 {np.percentile(lat, 95):.1f} ms, max {lat.max():.1f} ms")
            sink.close()
        finally:
            sub.close()
            broker.stop()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
