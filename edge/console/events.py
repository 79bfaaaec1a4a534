"""EventFeed: the loop's events for the console, live and searched.

A Sink on the loop's side: handle() runs on a camera's processing thread, keeps the event
in a bounded ring and, only when someone watches, hands it to each subscriber's asyncio
loop (call_soon_threadsafe: the console serves on a thread of its own). Each subscriber
has a bounded queue; one that falls behind is dropped (its stream ends, the browser
reconnects with Last-Event-ID and catches up from the ring), so a slow viewer never
grows memory and never slows the loop. `history` (edge.events.history) answers searches.

Stream ids are "<boot>-<seq>": seq counts this process's events, boot names the process,
so a reconnect after a restart is told it missed some (the history still has them).
"""
from __future__ import annotations

import asyncio
import collections
import threading
import uuid
from dataclasses import dataclass

from edge.events.event import Event
from edge.events.sinks import Sink

RING_SIZE = 1000        # events a reconnecting viewer can catch up on
QUEUE_MAX = 256         # events one viewer may have unsent before it is dropped
END = object()          # the stream is over (shutdown, or the viewer was too slow)


@dataclass(frozen=True)
class Item:
    seq: int
    event: Event


class Subscriber:
    """One viewer's queue, used on its asyncio loop only."""

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int = QUEUE_MAX):
        self.loop = loop
        self.queue: asyncio.Queue = asyncio.Queue(maxsize)
        self.dropped = False     # fell behind: the stream ends after what it has

    def put(self, item) -> bool:
        """False when the viewer is too slow (it is then ended)."""
        if self.dropped:
            return False
        try:
            self.queue.put_nowait(item)
            return True
        except asyncio.QueueFull:
            self.dropped = True
            while not self.queue.empty():   # it reconnects and catches up from the ring instead
                self.queue.get_nowait()
            self.queue.put_nowait(END)
            return False

    async def get(self, timeout: float):
        """The next Item, END, or None when nothing came within timeout."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except asyncio.TimeoutError:
            return None


@dataclass(frozen=True)
class Resume:
    """What a (re)connecting viewer gets before the live events."""
    missed: list[Item]
    gap: bool              # events it should have had are no longer in the ring


class EventFeed(Sink):
    name = "feed"

    def __init__(self, history=None, ring: int = RING_SIZE, queue_max: int = QUEUE_MAX):
        self.history = history                 # edge.events.history.EventHistory, or None (events.history off)
        self.boot = uuid.uuid4().hex[:8]
        self.queue_max = queue_max
        self.slow_viewers = 0                  # subscribers dropped for falling behind
        self._ring: collections.deque[Item] = collections.deque(maxlen=ring)
        self._seq = 0
        self._subs: set[Subscriber] = set()
        self._lock = threading.Lock()

    def stream_id(self, seq: int) -> str:
        return f"{self.boot}-{seq}"

    @property
    def last_id(self) -> str:
        """The id of the newest event (a page starts its stream after it)."""
        with self._lock:
            return self.stream_id(self._seq)

    # -- the loop's side ----------------------------------------------------------------
    def handle(self, event: Event) -> int:
        with self._lock:
            self._seq += 1
            item = Item(self._seq, event)
            self._ring.append(item)
            loops = {s.loop for s in self._subs}
        for loop in loops:     # nobody watching: nothing more than the ring's append
            try:
                loop.call_soon_threadsafe(self._deliver, loop, item)
            except RuntimeError:   # that loop is closed; its subscribers are gone with it
                pass
        return item.seq

    def recent(self, n: int = 50) -> list[Item]:
        with self._lock:
            return list(self._ring)[-n:]

    # -- the console's side (on its asyncio loop) ------------------------------------------
    def _deliver(self, loop, item: Item) -> None:
        with self._lock:
            subs = [s for s in self._subs if s.loop is loop]
        for s in subs:
            if not s.put(item):
                self._unsubscribe_slow(s)

    def _unsubscribe_slow(self, sub: Subscriber) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.discard(sub)
                self.slow_viewers += 1

    def subscribe(self, last_id: str | None = None) -> tuple[Subscriber, Resume]:
        """A new viewer on the running loop, and what it missed after `last_id` (None:
        from now on). The ring is read and the viewer registered under one lock, so no
        event falls between them."""
        sub = Subscriber(asyncio.get_running_loop(), self.queue_max)
        with self._lock:
            resume = self._resume(last_id)
            self._subs.add(sub)
        return sub, resume

    def _resume(self, last_id: str | None) -> Resume:
        if not last_id:
            return Resume([], False)
        boot, _, seq = last_id.partition("-")
        if boot != self.boot or not seq.isdigit() or int(seq) > self._seq:
            return Resume(list(self._ring), True)     # another process's id: all of ours is new
        after = int(seq)
        missed = [i for i in self._ring if i.seq > after]
        oldest = self._ring[0].seq if self._ring else self._seq + 1
        return Resume(missed, after < oldest - 1)

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subs.discard(sub)

    def viewers(self) -> int:
        with self._lock:
            return len(self._subs)

    def end_streams(self) -> None:
        """End every stream of the running loop (the server is shutting down)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            subs = [s for s in self._subs if s.loop is loop]
            self._subs.difference_update(subs)
        for s in subs:
            s.dropped = True
            while not s.queue.empty():
                s.queue.get_nowait()
            s.queue.put_nowait(END)
