"""Events and their sinks: a real local HTTP receiver for the webhook, a real producer
process killed with SIGKILL for the outbox, real commands for the relay, real SQLite."""
from __future__ import annotations

import csv
import importlib.util
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from edge.events.attendance import AttendanceSink, AttendanceStore
from edge.events.bus import EventBus
from edge.events.event import Event
from edge.events.outbox import Outbox, OutboxStats
from edge.events.sinks import (CommandRelay, DoorSide, GpiozeroRelay, LogSink, RelayError, RelaySink, Sink,
                               WebhookSink, verify_signature)

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).parent / "outbox_worker.py"
FAST = dict(timeout=2.0, backoff_min_s=0.05, backoff_max_s=0.2)   # retries in tenths of a second


def recognised(user: str = "alice", camera: str = "gate", group: str = "staff", **kw) -> Event:
    return Event("recognised", camera=camera, user_id=user, group_id=group, score=91.5, **kw)


# -- a real HTTP receiver -------------------------------------------------------------
class Receiver:
    """A webhook endpoint on 127.0.0.1. respond(n, body) -> status (or (status, headers))
    decides the answer to the n-th request; every request is kept."""

    def __init__(self, respond=None, delay_s: float = 0.0, port: int = 0):
        self.respond = respond or (lambda n, body: 200)
        self.delay_s, self.port = delay_s, port
        self.requests: list[tuple[int, dict, bytes]] = []   # (status answered, headers, body)
        self._lock = threading.Lock()
        self._server = None

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    n = len(receiver.requests)
                    answer = receiver.respond(n, body)
                    status, headers = answer if isinstance(answer, tuple) else (answer, {})
                    receiver.requests.append((status, dict(self.headers), body))
                time.sleep(receiver.delay_s)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook?token=abc"

    def delivered(self) -> list[str]:
        """event_ids answered 2xx, in arrival order (repeats kept)."""
        with self._lock:
            return [json.loads(b)["event_id"] for s, _, b in self.requests if 200 <= s < 300]


def first_seen(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def outbox_stats(path: Path) -> OutboxStats:
    box = Outbox(path)
    try:
        return box.stats()
    finally:
        box.close()


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


# -- event ------------------------------------------------------------------------------
def test_event_json_is_one_line_with_baidu_messages():
    e = Event("rejected", camera="gate", track_id=7, error_code=223114, reason="blur 0.8 over 5 frames", frames=5)
    assert e.error_msg == "face is fuzzy"
    assert Event("rejected", error_code=223120, liveness="spoof", liveness_score=0.02).error_msg == \
        "liveness check fail"
    line = recognised(user_info="Alice 张", liveness="live").to_json()
    assert "\n" not in line
    d = json.loads(line)
    assert d["kind"] == "recognised" and d["user_info"] == "Alice 张" and len(d["event_id"]) == 32
    assert datetime.fromisoformat(d["time"]).timestamp() == pytest.approx(d["ts"], abs=1e-3)
    assert Event.from_json(line).to_dict() == d
    for bad in (dict(kind="seen"), dict(kind="recognised"), dict(kind="rejected"),
                dict(kind="unknown", score=120.0), dict(kind="unknown", liveness="maybe")):
        with pytest.raises(ValueError):
            Event(**bad)


# -- outbox -----------------------------------------------------------------------------
def test_outbox_order_backoff_blocks_head_and_survives_reopen(tmp_path):
    box = Outbox(tmp_path / "o.db")
    events = [recognised(f"u{i}") for i in range(4)]
    ids = [box.put(e) for e in events]
    assert box.put(events[0]) == ids[0]                       # a re-put of the same event is ignored
    assert [i.event_id for i in box.claim(10)] == [e.event_id for e in events]
    box.retry(ids[0], time.time() + 60, "HTTP 503")
    assert box.claim(10) == []                                # nothing overtakes the head in back-off
    assert box.next_due() > time.time() + 50
    box.close()
    box = Outbox(tmp_path / "o.db")
    assert box.claim(10, now=time.time() + 61)[0].attempts == 1
    box.done(ids[:2])
    box.dead(ids[2], "HTTP 400")
    assert [i.id for i in box.claim(10, now=time.time() + 61)] == [ids[3]]
    assert [(d.event_id, d.attempts, d.error) for d in box.dead_letters()] == [(events[2].event_id, 1, "HTTP 400")]
    assert box.stats() == OutboxStats(pending=1, delivered=2, dead=1, dropped=0)
    assert box.redeliver_dead() == 1                          # back in its original place
    assert [i.id for i in box.claim(10)] == [ids[2], ids[3]]
    box.close()


def test_outbox_bound_purges_delivered_then_drops_oldest_pending(tmp_path, caplog):
    box = Outbox(tmp_path / "o.db", max_rows=5)
    first = [box.put(recognised(f"d{i}")) for i in range(3)]
    box.done(first)
    pending = [recognised(f"p{i}") for i in range(5)]
    for e in pending:
        box.put(e)
    # delivered rows made room
    assert box.stats() == OutboxStats(pending=5, delivered=0, dead=0, dropped=0)
    newer = [recognised(f"n{i}") for i in range(2)]
    with caplog.at_level(logging.WARNING, logger="edge.events.outbox"):
        for e in newer:
            box.put(e)
    assert "dropped" in caplog.text
    box.close()
    box = Outbox(tmp_path / "o.db", max_rows=5)                # the counter is persistent
    assert box.stats() == OutboxStats(pending=5, delivered=0, dead=0, dropped=2)
    assert [i.event_id for i in box.claim(10)] == [e.event_id for e in pending[2:] + newer]
    box.close()


# -- webhook ----------------------------------------------------------------------------
def test_webhook_delivers_in_order_with_idempotency_key_and_hmac(tmp_path, receiver):
    sink = WebhookSink(receiver.url, tmp_path / "o.db", secret="s3cret", headers={"Authorization": "Bearer t"},
                       **FAST)
    events = [recognised(f"u{i}") for i in range(5)]
    for e in events:
        sink.handle(e)
    assert sink.flush(20)
    sink.close()
    assert receiver.delivered() == [e.event_id for e in events]
    for (_, headers, body), e in zip(receiver.requests, events):
        assert headers["Idempotency-Key"] == e.event_id == json.loads(body)["event_id"]
        assert headers["Authorization"] == "Bearer t"
        assert headers["Content-Type"].startswith("application/json")
        assert verify_signature("s3cret", body, headers["X-Edge-Signature"])
        assert not verify_signature("other", body, headers["X-Edge-Signature"])
        assert Event.from_json(body.decode()) == e
    stats = outbox_stats(tmp_path / "o.db")
    assert (stats.pending, stats.delivered) == (0, 5)


def test_webhook_server_down_then_up_delivers_everything_in_order(tmp_path):
    down = Receiver().start()
    port = down.port
    down.stop()                                               # a port where nobody listens
    sink = WebhookSink(f"http://127.0.0.1:{port}/hook", tmp_path / "o.db", **FAST)
    events = [recognised(f"u{i}") for i in range(10)]
    for e in events[:5]:
        sink.handle(e)
    deadline = time.monotonic() + 20
    while sink.failures < 3 and time.monotonic() < deadline:  # some attempts refused
        time.sleep(0.05)
    assert sink.failures >= 3 and sink.delivered == 0
    report = sink.report()   # what `edge status` shows of it (the snapshot's "sinks")
    assert report["pending"] == 5 and report["url"] == f"http://127.0.0.1:{port}/hook" and report["failures"] >= 3
    for e in events[5:]:
        sink.handle(e)
    up = Receiver(port=port).start()
    try:
        assert sink.flush(20)
        sink.close()
        assert first_seen(up.delivered()) == [e.event_id for e in events]
    finally:
        up.stop()


def test_webhook_retries_5xx_and_429_then_moves_on(tmp_path):
    answers = [500, 503, (429, {"Retry-After": "0"})]
    r = Receiver(respond=lambda n, body: answers[n] if n < len(answers) else 200).start()
    try:
        sink = WebhookSink(r.url, tmp_path / "o.db", **FAST)
        events = [recognised(f"u{i}") for i in range(3)]
        for e in events:
            sink.handle(e)
        assert sink.flush(20)
        sink.close()
        assert [s for s, _, _ in r.requests] == [500, 503, 429, 200, 200, 200]
        assert {json.loads(b)["event_id"] for _, _, b in r.requests[:4]} == {events[0].event_id}
        assert [h["X-Edge-Attempt"] for _, h, _ in r.requests[:4]] == ["1", "2", "3", "4"]
        assert r.delivered() == [e.event_id for e in events]
    finally:
        r.stop()


def test_webhook_4xx_is_dead_lettered_and_max_attempts_gives_up(tmp_path, caplog):
    def respond(n, body):
        user = json.loads(body)["user_id"]
        return {"bad": 400, "flaky": 500, "moved": (302, {"Location": "/elsewhere"})}.get(user, 200)

    r = Receiver(respond=respond).start()
    try:
        sink = WebhookSink(r.url, tmp_path / "o.db", max_attempts=3, **FAST)
        events = [recognised("u0"), recognised("bad"), recognised("flaky"), recognised("u3"), recognised("moved")]
        with caplog.at_level(logging.ERROR, logger="edge.events.sinks"):
            for e in events:
                sink.handle(e)
            assert sink.flush(20)
        assert r.delivered() == [events[0].event_id, events[3].event_id]
        dead = {d.event_id: d for d in sink.outbox.dead_letters()}
        assert dead[events[1].event_id].error == "HTTP 400" and dead[events[1].event_id].attempts == 1
        assert dead[events[2].event_id].attempts == 3 and "gave up after 3" in dead[events[2].event_id].error
        assert sum(1 for _, _, b in r.requests if b'"flaky"' in b) == 3
        assert dead[events[4].event_id].error == "HTTP 302"   # a redirected POST would arrive as a GET
        assert len(r.requests) == 7                           # the redirect was not followed
        assert "dead-lettered" in caplog.text and "token=abc" not in caplog.text   # no query string in logs
        sink.close()
    finally:
        r.stop()


def test_webhook_restart_delivers_what_the_last_run_left(tmp_path):
    down = Receiver().start()
    port = down.port
    down.stop()
    sink = WebhookSink(f"http://127.0.0.1:{port}/hook", tmp_path / "o.db", **FAST)
    events = [recognised(f"u{i}") for i in range(5)]
    for e in events:
        sink.handle(e)
    sink.close(timeout=0.3)                                   # gives up flushing: nobody listens
    assert outbox_stats(tmp_path / "o.db").pending == 5
    up = Receiver(port=port).start()
    try:
        sink = WebhookSink(up.url, tmp_path / "o.db", **FAST)
        assert sink.flush(20)
        sink.close()
        assert first_seen(up.delivered()) == [e.event_id for e in events]
    finally:
        up.stop()


def test_kill_9_loses_no_acknowledged_event(tmp_path):
    """The producer's own sender is delivering when it is killed: what it sent is not
    lost or reordered, what it had not sent is sent by the next sink on the file."""
    slow = Receiver(delay_s=0.02).start()                      # slower than the producer: a backlog builds
    try:
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        proc = subprocess.Popen([sys.executable, str(WORKER), "webhook", str(tmp_path / "o.db"), slow.url, "100000", "0.01"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        acked = []
        for line in proc.stdout:
            acked.append(line.split()[2])
            if (len(acked) >= 80 and len(slow.delivered()) >= 5) or len(acked) >= 400:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        acked += [line.split()[2] for line in proc.stdout.read().splitlines() if line.startswith("acked ")]
        proc.stdout.close()
        proc.stderr.close()
        before = len(first_seen(slow.delivered()))

        left = outbox_stats(tmp_path / "o.db").pending
        sink = WebhookSink(slow.url, tmp_path / "o.db", **FAST)
        assert sink.flush(45), f"{left} pending after the kill not delivered"
        sink.close()
        print(f"{len(acked)} acked, {before} delivered before the kill, {left} pending after it")
        got = first_seen(slow.delivered())
        assert not set(acked) - set(got)                      # every acknowledged event arrived
        assert len(set(got) - set(acked)) <= 1                # at most the put in flight, committed unacked
        order = {eid: i for i, eid in enumerate(acked)}
        assert [order[e] for e in got if e in order] == list(range(len(acked)))   # in creation order
    finally:
        slow.stop()


# -- log sink ----------------------------------------------------------------------------
def test_log_sink_writes_json_lines_to_logger_and_file(tmp_path, caplog):
    path = tmp_path / "events" / "events.jsonl"
    sink = LogSink(path, fsync="always", max_bytes=600)
    events = [recognised(f"u{i}") for i in range(4)]
    with caplog.at_level(logging.INFO, logger="edge.events"):
        for e in events:
            sink.handle(e)
    sink.close()
    assert [json.loads(r.getMessage())["event_id"] for r in caplog.records if r.name == "edge.events"] == \
        [e.event_id for e in events]
    lines = (path.with_name("events.jsonl.1").read_text() + path.read_text()).splitlines()
    assert [json.loads(s)["event_id"] for s in lines] == [e.event_id for e in events]   # rotated, nothing lost
    with pytest.raises(ValueError):
        LogSink(fsync="sometimes")


# -- relay -----------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def append_command(path: Path) -> list[str]:
    return ["sh", "-c", 'echo "open $1 $2" >> "$3"', "sh", "{door}", "{pulse_ms}", str(path)]


def test_relay_runs_command_for_allowed_groups_with_debounce(tmp_path):
    out = tmp_path / "relay.txt"
    clock = Clock()
    sink = RelaySink(CommandRelay(append_command(out)), door="main", allowed_groups=["staff"], pulse_s=0.2,
                     debounce_s=3.0, clock=clock)
    assert sink.handle(recognised("alice")).opened
    clock.t += 1
    assert sink.handle(recognised("bob")).reason == "debounce"            # the door is still open
    assert sink.handle(recognised("eve", group="visitors")).reason == "group_not_allowed"
    assert sink.handle(Event("unknown", camera="gate", score=40.0)).reason == "not_recognised"
    clock.t += 2.5
    d = sink.handle(recognised("bob"))
    assert (d.opened, d.door, d.direction, d.user_id) == (True, "main", "in", "bob")
    assert sink.wait(10)
    assert out.read_text().splitlines() == ["open main 200", "open main 200"]
    sink.close()


def test_relay_anti_passback(tmp_path):
    out = tmp_path / "relay.txt"
    clock = Clock()
    sides = {"cam-in": DoorSide("main", "in"), "cam-out": DoorSide("main", "out")}
    sink = RelaySink(CommandRelay(append_command(out)), cameras=sides, pulse_s=0.1, debounce_s=1.0,
                     anti_passback_s=60.0, clock=clock)

    def at(t, user, camera):
        clock.t = 1000.0 + t
        return sink.handle(recognised(user, camera=camera)).reason

    assert at(0, "alice", "cam-in") == "opened"
    assert at(10, "alice", "cam-in") == "anti_passback"        # in twice without going out
    assert at(12, "bob", "cam-in") == "opened"                  # others are not affected
    assert at(20, "alice", "cam-out") == "opened"
    assert at(30, "alice", "cam-in") == "opened"                # went out, may come in again
    assert at(40, "alice", "cam-in") == "anti_passback"
    assert at(91, "alice", "cam-in") == "opened"                # the window has passed
    assert at(95, "alice", "lobby") == "unknown_camera"
    assert sink.wait(10)
    assert len(out.read_text().splitlines()) == 5
    sink.close()
    off = RelaySink(CommandRelay(["true"]), cameras=sides, pulse_s=0.1, debounce_s=1.0, clock=clock)
    clock.t = 0
    assert off.handle(recognised("alice", camera="cam-in")).opened
    clock.t = 5
    assert off.handle(recognised("alice", camera="cam-in")).opened  # anti-passback off by default
    off.close()


def test_relay_command_failures_are_logged_not_raised(tmp_path, caplog):
    sink = RelaySink(CommandRelay(["sh", "-c", "echo jammed >&2; exit 3"]), pulse_s=0.1, debounce_s=0.1)
    with caplog.at_level(logging.ERROR, logger="edge.events.sinks"):
        assert sink.handle(recognised()).opened
        assert sink.wait(10)
    assert sink.errors == 1 and "exited 3: jammed" in caplog.text
    sink.close()
    started = time.monotonic()
    with pytest.raises(RelayError, match="timed out"):
        CommandRelay(["sh", "-c", "sleep 30; echo never"], timeout_s=0.5).pulse("main", 0.1)
    # sleep is sh's child: only killing the whole process group ends it before its 30 s
    assert time.monotonic() - started < 25
    with pytest.raises(RelayError, match="could not start"):
        CommandRelay(["/nonexistent/relay-helper"]).pulse("main", 0.1)
    with pytest.raises(ValueError):
        RelaySink(CommandRelay(["true"]), pulse_s=2.0, debounce_s=1.0)


@pytest.mark.skipif(importlib.util.find_spec("gpiozero") is not None, reason="gpiozero is installed")
def test_gpiozero_relay_without_gpiozero_says_so():
    with pytest.raises(RelayError, match="gpiozero"):
        GpiozeroRelay({"main": 17})


# -- attendance --------------------------------------------------------------------------
def local(*args) -> float:
    return datetime(*args).timestamp()


def test_attendance_is_idempotent_and_keeps_min_interval(tmp_path):
    store = AttendanceStore(tmp_path / "att.db", min_interval_s=60)
    t = local(2024, 5, 31, 8, 58)
    assert store.record("alice", "staff", "gate", 93.0, t, "e1")
    assert not store.record("alice", "staff", "gate", 93.0, t, "e1")          # same event again
    assert not store.record("alice", "staff", "gate", 95.0, t + 30, "e2")     # within a minute
    assert not store.record("alice", "staff", "gate", 95.0, t - 30, "e3")     # ...on either side
    assert store.record("bob", "staff", "gate", 88.0, t + 1, "e4")            # per person
    assert store.record("alice", "staff", "gate", 90.0, t + 61, "e5")
    store.close()
    store = AttendanceStore(tmp_path / "att.db", min_interval_s=60)           # on disk
    assert [r.event_id for r in store.records()] == ["e1", "e4", "e5"]
    sink = AttendanceSink(store)
    e = recognised("carol", ts=t + 120)
    assert sink.handle(e) and not sink.handle(e)
    assert not sink.handle(Event("unknown", ts=t + 200))
    sink.close()


def test_attendance_days_and_csv_export(tmp_path):
    store = AttendanceStore(tmp_path / "att.db")
    rows = [("alice", local(2024, 5, 30, 17, 5), "e0"), ("alice", local(2024, 5, 31, 8, 58), "e1"),
            ("bob", local(2024, 5, 31, 9, 3), "e2"), ("alice", local(2024, 5, 31, 17, 31), "e3"),
            ("bob", local(2024, 6, 1, 0, 0), "e4")]
    for user, ts, eid in rows:
        store.record(user, "staff", "gate", 92.346, ts, eid)
    assert [r.event_id for r in store.day("2024-05-31")] == ["e1", "e2", "e3"]
    assert [r.event_id for r in store.day(date(2024, 5, 31), user_id="bob")] == ["e2"]
    assert [(s.user_id, s.first, s.last, s.count) for s in store.day_summary("2024-05-31")] == \
        [("alice", rows[1][1], rows[3][1], 2), ("bob", rows[2][1], rows[2][1], 1)]

    assert store.export_csv(tmp_path / "may31.csv", since=date(2024, 5, 31), until=date(2024, 6, 1)) == 3
    with open(tmp_path / "may31.csv", newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert [r["event_id"] for r in table] == ["e1", "e2", "e3"]
    first = table[0]
    assert (first["date"], first["user_id"], first["group_id"], first["camera"], first["score"]) == \
        ("2024-05-31", "alice", "staff", "gate", "92.35")
    assert datetime.fromisoformat(first["time"]).timestamp() == pytest.approx(rows[1][1])
    assert first["time"].startswith("2024-05-31T08:58:00")
    buf = io.StringIO()
    assert store.export_csv(buf) == 5
    assert buf.getvalue().splitlines()[0] == "time,date,user_id,group_id,camera,score,event_id"
    assert store.purge_before(date(2024, 5, 31)) == 1
    store.close()


# -- bus --------------------------------------------------------------------------------
class Recording(Sink):
    def __init__(self, name, fail=False):
        self.name, self.fail, self.seen, self.closed = name, fail, [], False

    def handle(self, event):
        if self.fail:
            raise OSError("disk full")
        self.seen.append(event.event_id)
        return len(self.seen)

    def close(self):
        self.closed = True
        if self.fail:
            raise OSError("still full")

    def offer_status(self, snapshot):
        if self.fail:
            raise OSError("no status either")
        self.status = snapshot

    def report(self):
        if self.fail:
            raise OSError("outbox unreadable")
        return {"seen": len(self.seen)} if self.name == "a" else None


def test_bus_isolates_a_failing_sink(tmp_path, caplog):
    a, broken, b = Recording("a"), Recording("broken", fail=True), Recording("b")
    bus = EventBus([a, broken, b])
    events = [recognised(f"u{i}") for i in range(3)]
    with caplog.at_level(logging.ERROR, logger="edge.events.bus"):
        results = [bus.publish(e) for e in events]
    assert a.seen == b.seen == [e.event_id for e in events]
    assert results[2].results == {"a": 3, "b": 3} and isinstance(results[2].errors["broken"], OSError)
    assert not results[0].ok and bus.failures == {"a": 0, "broken": 3, "b": 0}
    assert sum("sink broken failed" in r.getMessage() for r in caplog.records) == 1   # not once per event
    with caplog.at_level(logging.ERROR, logger="edge.events.bus"):
        bus.offer_status({"cameras": {}})             # the runner's snapshot: a failure is logged, not raised
    assert a.status == b.status == {"cameras": {}} and "failed on the status snapshot" in caplog.text
    assert bus.reports() == {"a": {"seen": 3}, "broken": {"error": "outbox unreadable"}}   # b reports nothing
    bus.close()
    assert a.closed and broken.closed and b.closed
    with pytest.raises(ValueError):
        EventBus([Recording("x"), Recording("x")])


def test_bus_with_real_sinks(tmp_path, receiver):
    store = AttendanceStore(tmp_path / "att.db", min_interval_s=60)
    relay_out = tmp_path / "relay.txt"
    bus = EventBus([RelaySink(CommandRelay(append_command(relay_out)), door="main", pulse_s=0.1, debounce_s=0.1),
                    WebhookSink(receiver.url, tmp_path / "o.db", **FAST), AttendanceSink(store),
                    LogSink(tmp_path / "events.jsonl")])
    e = recognised("alice")
    published = bus.publish(e)
    assert published.ok and published.results["relay"].opened and published.results["attendance"]
    assert bus.publish(Event("rejected", camera="gate", error_code=223120)).results["relay"].reason == \
        "not_recognised"
    bus.close()
    assert receiver.delivered()[0] == e.event_id and len(receiver.delivered()) == 2
    assert relay_out.read_text() == "open main 100\n"
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == 2
