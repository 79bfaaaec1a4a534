"""The console's events over a real server process: the live stream (SSE, resumed with
Last-Event-ID), the history's search API, and a hub saying where events are."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml

from console_support import login, start_console
from edge.config import load_config
from edge.events.event import Event

REPO = Path(__file__).resolve().parents[1]
SERVER = Path(__file__).with_name("events_console_server.py")


class Server:
    """tests/events_console_server.py: a console with an EventFeed; publish() writes an
    event to its stdin and waits until the feed has it."""

    def __init__(self, tmp: Path):
        cfg = {"data_dir": str(tmp / "data"), "models": {"dir": str(load_config().models_dir)},
               "server": {"port": 0}}
        (tmp / "edge.yaml").write_text(yaml.safe_dump(cfg))
        self.proc = subprocess.Popen([sys.executable, str(SERVER), str(tmp / "edge.yaml")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=tmp,
                                     env={"PYTHONPATH": f"{REPO}", "PATH": "/usr/bin:/bin"})
        self.password = self._expect("password")
        self.url = self._expect("url")

    def _expect(self, word: str) -> str:
        line = self.proc.stdout.readline()
        assert line.startswith(word + " "), line
        return line.split(" ", 1)[1].strip()

    def publish(self, event: Event) -> str:
        self.proc.stdin.write(event.to_json() + "\n")
        self.proc.stdin.flush()
        return self._expect("published")

    def stop(self) -> None:
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        finally:
            self.proc.kill()


class Stream:
    """A text/event-stream read message by message (id, event, data) on a thread."""

    def __init__(self, session: requests.Session, url: str, headers: dict | None = None):
        self.resp = session.get(url, headers=headers or {}, stream=True, timeout=(5, 30))
        self.messages: list[dict] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        msg: dict = {}
        try:
            for line in self.resp.iter_lines(decode_unicode=True):
                if line == "":
                    if "data" in msg:
                        with self.cond:
                            self.messages.append(msg)
                            self.cond.notify_all()
                    msg = {}
                elif not line.startswith(":"):
                    field, _, value = line.partition(":")
                    msg[field] = value[1:] if value.startswith(" ") else value
        except (requests.RequestException, AttributeError, ValueError):
            pass

    def wait(self, n: int, timeout: float = 20) -> list[dict]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.messages) >= n, timeout), self.messages
            return list(self.messages)

    def close(self) -> None:
        self.resp.close()


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    yield s
    s.stop()


def ann(**kw) -> Event:
    return Event("recognised", camera="gate", user_id="ann", group_id="staff", user_info="Ann Lee", score=92.5, **kw)


def test_stream_delivers_live_and_resumes_with_last_event_id_and_history_searches(server):
    url = server.url
    anonymous = requests.get(url + "/console/api/events/stream", timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["error_code"]
    s, answer = login(url, "admin", server.password)
    assert answer.status_code == 303
    page = s.get(url + "/console/events", timeout=10)
    assert page.status_code == 200 and 'id="live"' in page.text
    after = page.text.split('data-after="')[1].split('"')[0]

    stream = Stream(s, url + "/console/api/events/stream?after=" + after)
    assert stream.resp.status_code == 200
    assert stream.resp.headers["Content-Type"].startswith("text/event-stream")
    first = ann()
    sid = server.publish(first)
    (msg,) = stream.wait(1)
    assert msg["id"] == sid and "event" not in msg
    data = json.loads(msg["data"])
    assert (data["event_id"], data["kind"], data["user_id"], data["camera"]) == (first.event_id, "recognised", "ann", "gate")
    assert data["reason"] == "score 92.5"
    stream.close()

    # disconnected: two more events; a reconnect with Last-Event-ID gets them, in order
    missed = [Event("rejected", camera="lobby", error_code=223120, reason="a photo"), Event("unknown", camera="gate")]
    ids = [server.publish(e) for e in missed]
    again = Stream(s, url + "/console/api/events/stream", headers={"Last-Event-ID": sid})
    got = again.wait(2)
    assert [m["id"] for m in got] == ids
    assert [json.loads(m["data"])["event_id"] for m in got] == [e.event_id for e in missed]
    rejected = json.loads(got[0]["data"])
    assert rejected["error_code"] == 223120 and "a photo" in rejected["reason"]
    live = server.publish(ann())          # and it stays live after the catch-up
    assert again.wait(3)[2]["id"] == live
    again.close()

    # an id of another process (a restart): told of the gap, then all the ring has
    other = Stream(s, url + "/console/api/events/stream", headers={"Last-Event-ID": "0badc0de-3"})
    got = other.wait(5)
    assert got[0]["event"] == "gap" and [m.get("id") for m in got[1:]] == [sid, *ids, live]
    other.close()

    # the history: searched by person, kind, code; bad input is a Baidu error
    found = s.get(url + "/console/api/events", params={"person": "lee"}, timeout=10).json()
    assert [e["event_id"] for e in found["events"]][-1] == first.event_id and len(found["events"]) == 2
    coded = s.get(url + "/console/api/events", params={"code": "223120", "kind": "rejected"}, timeout=10).json()
    assert [e["event_id"] for e in coded["events"]] == [missed[0].event_id]
    paged = s.get(url + "/console/api/events", params={"limit": "3"}, timeout=10).json()
    assert len(paged["events"]) == 3 and paged["next"]
    rest = s.get(url + "/console/api/events", params={"limit": "3", "cursor": paged["next"]}, timeout=10).json()
    assert [e["event_id"] for e in rest["events"]] == [first.event_id] and rest["next"] == ""
    bad = s.get(url + "/console/api/events", params={"kind": "door"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error_code"] == 216100
    html = s.get(url + "/console/events", params={"person": "ann", "kind": "recognised"}, timeout=10).text
    assert html.count('class="ev ev-recognised"') == 2 and "ev-rejected" not in html
    assert s.get(url + "/console/events", params={"from": "yesterday"}, timeout=10).status_code == 400

    # an open stream ends when the server stops (not after its shutdown timeout)
    open_stream = Stream(s, url + "/console/api/events/stream")
    server.proc.stdin.close()
    start = time.monotonic()
    assert server.proc.wait(20) == 0
    assert time.monotonic() - start < 4.0, "the server waited for its open stream"


def test_a_hub_says_events_live_on_the_terminals(tmp_path):
    srv, password = start_console(tmp_path)
    try:
        s, _ = login(srv.url, "admin", password)
        page = s.get(srv.url + "/console/events", timeout=10)
        assert page.status_code == 200 and "Events live on the terminals" in page.text and 'id="live"' not in page.text
        api = s.get(srv.url + "/console/api/events/stream", timeout=10)
        assert api.status_code == 404 and api.json()["error_code"] == 216102
    finally:
        srv.stop()
