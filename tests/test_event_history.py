"""The event history (edge/events/history.py) and the console's EventFeed (edge/console/events.py)."""
from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge.console.events import END, EventFeed
from edge.events.event import Event
from edge.events.history import EventHistory, Query, QueryError
from edge.sqlite import open_or_set_aside

REPO = Path(__file__).resolve().parents[1]
T0 = float(int(time.time())) - 3600   # within the default 90 days


def mixed(n: int, t0: float = T0) -> list[Event]:
    """n events, one a second, on two cameras: recognised Ann/Bob, unknowns, fuzzy and spoof rejections."""
    out = []
    for i in range(n):
        cam = "gate" if i % 2 else "lobby"
        ts = t0 + i
        match i % 4:
            case 0:
                out.append(Event("recognised", camera=cam, user_id="ann", group_id="staff", user_info="Ann Lee, HR",
                                 score=91.0, ts=ts, track_id=i))
            case 1:
                out.append(Event("recognised", camera=cam, user_id="bob_7", group_id="staff", user_info="Bob",
                                 score=88.0, ts=ts, track_id=i))
            case 2:
                out.append(Event("unknown", camera=cam, score=41.0, ts=ts, track_id=i))
            case 3:
                out.append(Event("rejected", camera=cam, error_code=223114 if i % 8 == 3 else 223120,
                                 reason="blurred" if i % 8 == 3 else "a photo", ts=ts, track_id=i))
    return out


def all_pages(h: EventHistory, q: Query) -> list[Event]:
    got, cursor = [], ""
    while True:
        page = h.search(Query(**{**q.__dict__, "cursor": cursor}))
        got += [r.event for r in page.rows]
        if not page.next:
            return got
        cursor = page.next


def test_history_searches_page_newest_first_and_round_trip(tmp_path):
    h = EventHistory(tmp_path / "events.db")
    events = mixed(40)
    for e in events:
        h.add(e)
    newest_first = sorted(events, key=lambda e: -e.ts)
    assert all_pages(h, Query(limit=7)) == newest_first          # every field back as it went in, in order
    assert h.search(Query(limit=7)).rows[0].event == events[-1]
    assert [e.event_id for e in all_pages(h, Query(camera="gate", limit=3))] == \
        [e.event_id for e in newest_first if e.camera == "gate"]
    assert {e.user_id for e in all_pages(h, Query(person="ann"))} == {"ann"}
    assert {e.user_id for e in all_pages(h, Query(person="hr"))} == {"ann"}       # user info, any case
    assert {e.user_id for e in all_pages(h, Query(person="b_"))} == {"bob_7"}     # LIKE's _ is literal
    assert all_pages(h, Query(person="%")) == []
    assert {e.kind for e in all_pages(h, Query(kind="unknown"))} == {"unknown"}
    fuzzy = all_pages(h, Query(error_code=223114))
    assert len(fuzzy) == 5 and {e.reason for e in fuzzy} == {"blurred"}
    window = all_pages(h, Query(since=T0 + 10, until=T0 + 20, kind="recognised", camera="lobby", limit=2))
    assert [e.ts for e in window] == [T0 + 16, T0 + 12]
    assert all_pages(h, Query(since=T0 + 100)) == []
    for bad in (dict(kind="door"), dict(limit=0), dict(since=T0 + 5, until=T0 + 5)):
        with pytest.raises(QueryError):
            Query(**bad)
    with pytest.raises(QueryError):
        h.search(Query(cursor="not-a-cursor"))
    assert h.cameras() == ["gate", "lobby"]
    h.close()


def test_history_is_bounded_by_rows_and_days_dropping_the_oldest_counted(tmp_path):
    h = EventHistory(tmp_path / "events.db", max_rows=150)
    events = mixed(420)
    for e in events:
        h.add(e)
    # checked every 100 inserts: at most 99 over the bound between checks
    n = h.count()
    assert 150 <= n < 250 and h.dropped() == 420 - n
    assert h.prune() == n - 150 and h.count() == 150
    kept = all_pages(h, Query(limit=200))
    assert kept == sorted(events, key=lambda e: -e.ts)[:150]
    h.close()
    h = EventHistory(tmp_path / "events.db", max_rows=1000, max_days=1)   # the count survives reopening
    assert h.dropped() == 270
    assert h.prune(now=T0 + 320 + 86400) == 50       # a day before: ts < T0 + 320 goes
    assert h.count() == 100 and h.dropped() == 320
    h.close()


def test_a_damaged_history_is_set_aside_and_a_new_one_opened(tmp_path):
    path = tmp_path / "run" / "events.db"
    path.parent.mkdir()
    path.write_bytes(b"not a database at all" * 10)
    h = open_or_set_aside(lambda: EventHistory(path), path, "event history")
    h.add(mixed(1)[0])
    assert h.count() == 1
    assert next(path.parent.glob("events.db.corrupt-*")).read_bytes() == b"not a database at all" * 10
    h.close()


WRITER = """
import sys, time
from edge.events.history import EventHistory
from test_event_history import mixed
h = EventHistory(sys.argv[1])
for k, e in enumerate(mixed(100000)):
    h.add(e)
    print("committed", e.event_id, flush=True)
"""


def test_kill_9_mid_stream_leaves_a_readable_history_with_every_committed_event(tmp_path):
    path = tmp_path / "events.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                            env={"PYTHONPATH": f"{REPO}:{REPO / 'tests'}", "PATH": "/usr/bin:/bin"})
    committed = []
    try:
        for line in proc.stdout:
            committed.append(line.split()[1])
            if len(committed) == 700:     # past several bound checks and WAL growth
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait()
    committed += [line.split()[1] for line in proc.stdout if line.startswith("committed")]
    h = EventHistory(path)           # opens: quick_check passes
    stored = {e.event_id for e in all_pages(h, Query(limit=200))}
    assert set(committed) <= stored and len(stored) - len(committed) <= 1   # at most the one not yet printed
    h.close()


# -- the feed ----------------------------------------------------------------------------------------------
def test_feed_wakes_subscribers_across_threads_resumes_and_drops_a_slow_one(tmp_path):
    feed = EventFeed(EventHistory(tmp_path / "events.db"), ring=20, queue_max=5)
    events = mixed(30)
    for e in events[:3]:
        feed.handle(e)          # nobody watching: only the ring

    async def main():
        fast, resume = feed.subscribe(feed.last_id)
        assert resume.missed == [] and not resume.gap
        slow, _ = feed.subscribe()
        # the loop's threads publish while this loop runs
        import threading
        t = threading.Thread(target=lambda: [feed.handle(e) for e in events[3:7]])
        t.start()
        got = [await fast.get(5) for _ in range(4)]
        t.join()
        assert [i.event for i in got] == events[3:7]
        assert feed.viewers() == 2
        for e in events[7:12]:   # slow never reads: 4 + 5 > its 5
            feed.handle(e)
        await asyncio.sleep(0.1)
        assert slow.dropped and feed.slow_viewers == 1 and feed.viewers() == 1
        assert (await slow.get(1)) is END
        # a reconnect after the 4th event catches up from the ring
        _, resume = feed.subscribe(feed.stream_id(got[-1].seq))
        assert [i.event for i in resume.missed] == events[7:12] and not resume.gap
        # beyond the ring (20): a gap, and what the ring has
        for e in events[12:30]:
            feed.handle(e)
        _, resume = feed.subscribe(feed.stream_id(2))
        assert resume.gap and [i.event for i in resume.missed] == events[10:30]
        _, resume = feed.subscribe("another-process-7")
        assert resume.gap and len(resume.missed) == 20
        feed.end_streams()
        assert (await fast.get(1)) is END and feed.viewers() == 0

    asyncio.run(main())
    feed.history.close()


def test_history_config_keys_are_checked_and_off_means_no_file(tmp_path):
    from edge.config import ConfigError, load_config
    from edge.loop.runner import build_bus, event_feed
    (tmp_path / "bad.yaml").write_text(f"data_dir: {tmp_path / 'd'}\nevents: {{history_max_rows: 0}}\n")
    with pytest.raises(ConfigError, match="history_max_rows"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "off.yaml").write_text(f"data_dir: {tmp_path / 'd'}\nevents: {{history: false, attendance: false}}\n")
    cfg = load_config(tmp_path / "off.yaml")
    feed = event_feed(cfg)
    bus = build_bus(cfg, feed)
    assert feed.history is None and [s.name for s in bus.sinks] == ["log", "feed"]
    bus.publish(mixed(1)[0])
    assert len(feed.recent()) == 1 and not (tmp_path / "d" / "run" / "events.db").exists()
    bus.close()
