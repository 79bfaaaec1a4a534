"""Where events go: the log, a webhook (through the durable outbox), a door relay.

Every sink's handle() returns quickly: the capture loop calls it inline and must never
wait on the network or on a relay's pulse. Slow work runs on the sink's own thread.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import os
import random
import signal
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import urlsplit

import edge
from edge.events.event import Event
from edge.events.outbox import Outbox, OutboxItem

log = logging.getLogger(__name__)
EVENTS_LOGGER = "edge.events"


class Sink(ABC):
    """One destination of events. handle() must not block for long; close() releases."""
    name: str = "sink"

    @abstractmethod
    def handle(self, event: Event) -> Any:
        """Take one event; the return value is the sink's answer (e.g. a relay decision)."""

    def offer_status(self, snapshot: Mapping[str, Any]) -> None:
        """The runner's status snapshot, every status interval (MQTT publishes camera
        state from it); most sinks ignore it. Must return quickly."""

    def report(self) -> dict | None:
        """What `edge status` shows of this sink (a queue's length, a connection), or None."""
        return None

    def close(self) -> None:
        pass


# -- log ------------------------------------------------------------------------
FSYNC_POLICIES = ("always", "interval", "never")


class LogSink(Sink):
    """The event's JSON line to the `edge.events` logger and, optionally, appended to a
    JSON-lines file.

    Each line is written to the kernel before handle() returns, so a killed process
    loses nothing; fsync only matters for a power cut: "always" fsyncs every line (one
    flash write per event), "interval" at most every fsync_interval_s (a power cut may
    lose the last seconds), "never" leaves it to the OS. With max_bytes the file is
    rotated to <path>.1 (one generation) so it cannot fill the card."""

    def __init__(self, path: Path | str | None = None, fsync: str = "interval", fsync_interval_s: float = 1.0,
                 max_bytes: int = 0, level: int = logging.INFO, name: str = "log"):
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync policy {fsync!r} is not one of {FSYNC_POLICIES}")
        self.name, self.fsync, self.fsync_interval_s, self.max_bytes = name, fsync, fsync_interval_s, max_bytes
        self.path = None if path is None else Path(path)
        self._logger = logging.getLogger(EVENTS_LOGGER)
        self._level = level
        self._lock = threading.Lock()
        self._file = None
        self._last_sync = 0.0
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._open()

    def _open(self) -> None:
        self._file = open(self.path, "a", encoding="utf-8")

    def handle(self, event: Event) -> None:
        line = event.to_json()
        self._logger.log(self._level, line)
        if self._file is None:
            return
        with self._lock:
            if self.max_bytes and self._file.tell() >= self.max_bytes:
                self._rotate()
            self._file.write(line + "\n")
            self._file.flush()
            now = time.monotonic()
            if self.fsync == "always" or (self.fsync == "interval" and now - self._last_sync >= self.fsync_interval_s):
                os.fsync(self._file.fileno())
                self._last_sync = now

    def _rotate(self) -> None:
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        self._open()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                if self.fsync != "never":
                    os.fsync(self._file.fileno())
                self._file.close()
                self._file = None


# -- webhook --------------------------------------------------------------------
SIGNATURE_HEADER = "X-Edge-Signature"


def sign(secret: str | bytes, body: bytes) -> str:
    """The signature header's value: "sha256=" + hex HMAC-SHA256 of the exact body.
    No timestamp in it: a replayed body carries the same event_id, which receivers
    de-duplicate anyway."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """For receivers (and the tests): constant-time check of a signature header."""
    return bool(header) and hmac.compare_digest(sign(secret, body), header)


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off with "equal jitter": attempt n waits a uniform draw in
    [d/2, d], d = min(max_s, min_s * 2**(n-1)). The jitter spreads a fleet of terminals
    that lost the same server; the floor keeps every wait at least half the step."""
    min_s: float = 1.0
    max_s: float = 300.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        d = min(self.max_s, self.min_s * 2.0 ** min(max(attempt - 1, 0), 60))
        return (rng or random).uniform(d / 2, d)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib turns a redirected POST into a body-less GET: the event would be "delivered"
    nowhere. A redirect is a misconfigured URL, so it is a permanent failure."""

    def redirect_request(self, *args, **kwargs):
        return None


@dataclass(frozen=True)
class Attempt:
    outcome: str            # "ok" | "retry" | "dead"
    detail: str
    retry_after: float = 0.0


class OutboxSink(Sink):
    """A sink that queues each event in a durable Outbox (the put is the acknowledgement)
    and leaves its delivery to a sender thread of its own: the webhook's and MQTT's.
    Subclasses set `outbox`, `_wake` (the sender's event) and `_thread`."""

    outbox: Outbox
    _wake: threading.Event
    _thread: threading.Thread

    def handle(self, event: Event) -> int:
        """Queue the event (committed when this returns); returns its outbox id."""
        oid = self.outbox.put(event)
        self._wake.set()
        return oid

    def flush(self, timeout: float) -> bool:
        """Wait until nothing is pending; False if something still is after timeout."""
        end = time.monotonic() + timeout
        while self.outbox.pending_count():
            if time.monotonic() >= end or not self._thread.is_alive():
                return False
            self._wake.set()
            time.sleep(0.02)
        return True


class WebhookSink(OutboxSink):
    """POSTs each event's JSON to a URL, at least once, in creation order.

    handle() only puts the event into the outbox (committed: the acknowledgement) and
    wakes the sender thread. The sender posts one event per request with an
    Idempotency-Key header (the event_id) so receivers can drop repeats. Network errors,
    timeouts, 5xx and 429 are retried with back-off (a Retry-After is honoured, capped
    at backoff max); any other 4xx or a redirect is permanent: the event goes to the
    outbox's dead-letter table and is logged. The head of the queue blocks the rest
    while it waits, so order is kept. Events left at close() or at a crash are sent by
    the next WebhookSink on the same outbox file."""

    def __init__(self, url: str, outbox_path: Path | str, timeout: float = 5.0, max_attempts: int | None = None,
                 backoff_min_s: float = 1.0, backoff_max_s: float = 300.0, headers: Mapping[str, str] | None = None,
                 secret: str | bytes | None = None, signature_header: str = SIGNATURE_HEADER,
                 flush_timeout_s: float = 5.0, max_rows: int = 50_000, ca_file: str | None = None,
                 poll_s: float = 5.0, name: str = "webhook"):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook url must be http(s)://host/...: {url!r}")
        if max_attempts is not None and max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 (None: unlimited)")
        self.name, self.url, self.timeout, self.max_attempts = name, url, timeout, max_attempts
        self.backoff = Backoff(backoff_min_s, backoff_max_s)
        self.headers = dict(headers or {})
        self.secret, self.signature_header = secret, signature_header
        self.flush_timeout_s, self.poll_s = flush_timeout_s, poll_s
        # for log lines: no credentials or query string (either may hold a token)
        self._where = f"{parts.scheme}://{parts.hostname}{':%d' % parts.port if parts.port else ''}{parts.path}"
        handlers = [_NoRedirect()]
        if ca_file:
            handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=ca_file)))
        self._opener = urllib.request.build_opener(*handlers)
        self._rng = random.Random()
        self.outbox = Outbox(outbox_path, max_rows=max_rows)
        self.delivered = self.failures = self.dead_letters = 0
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._deadline = float("inf")
        self._thread = threading.Thread(target=self._run, name=f"edge-{name}", daemon=True)
        self._thread.start()

    def report(self) -> dict:
        stats = self.outbox.stats()
        return {"url": self._where, "pending": stats.pending, "delivered": self.delivered, "failures": self.failures,
                "dead": stats.dead, "dropped": stats.dropped}

    def close(self, timeout: float | None = None) -> None:
        """Keep delivering for up to timeout (flush_timeout_s) seconds, then stop. What
        is left stays in the outbox for the next start."""
        if self._closing.is_set():
            return
        wait = self.flush_timeout_s if timeout is None else timeout
        self._deadline = time.time() + wait
        self._closing.set()
        self._wake.set()
        self._thread.join(wait + self.timeout + 1.0)
        if self._thread.is_alive():
            log.warning("webhook %s: sender still busy at close; its pending events stay in %s",
                        self._where, self.outbox.path)
            return
        left = self.outbox.pending_count()
        if left:
            log.info("webhook %s: %d event(s) left in %s for the next start", self._where, left, self.outbox.path)
        self.outbox.close()

    # -- the sender thread ---------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                if not self._send_due():
                    return
            except Exception:  # noqa: BLE001 - the sender must outlive any one failure
                log.exception("webhook %s: sender error", self._where)
                if self._closing.is_set():
                    return
                self._wake.wait(1.0)

    def _send_due(self) -> bool:
        """Send what is due, then wait for more; False when it is time to stop."""
        closing = self._closing.is_set()
        if closing and time.time() >= self._deadline:
            return False
        items = self.outbox.claim()
        for item in items:
            if not self._deliver(item):
                break
            if self._closing.is_set() and time.time() >= self._deadline:
                return False
        if items:
            return True
        due = self.outbox.next_due()
        if closing and (due is None or due > self._deadline):
            return False
        wait = self.poll_s if due is None else max(0.0, due - time.time())
        if closing:
            wait = min(wait, max(0.0, self._deadline - time.time()))
        self._wake.wait(min(wait, self.poll_s))   # poll: another process may have put events
        return True

    def _deliver(self, item: OutboxItem) -> bool:
        """One attempt; True if the queue may move on (delivered or dead-lettered)."""
        attempt = self._post(item)
        if attempt.outcome == "ok":
            self.outbox.done([item.id])
            self.delivered += 1
            return True
        self.failures += 1
        n = item.attempts + 1
        if attempt.outcome == "dead" or (self.max_attempts is not None and n >= self.max_attempts):
            why = attempt.detail if attempt.outcome == "dead" else f"gave up after {n} attempts: {attempt.detail}"
            self.outbox.dead(item.id, why)
            self.dead_letters += 1
            log.error("webhook %s: event %s dead-lettered (%s)", self._where, item.event_id, why)
            return True
        delay = max(self.backoff.delay(n, self._rng), min(attempt.retry_after, self.backoff.max_s))
        self.outbox.retry(item.id, time.time() + delay, attempt.detail)
        log.warning("webhook %s: event %s attempt %d failed (%s); next try in %.1f s",
                    self._where, item.event_id, n, attempt.detail, delay)
        return False

    def _post(self, item: OutboxItem) -> Attempt:
        body = item.body.encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": f"edge/{edge.__version__}",
                   **self.headers, "Idempotency-Key": item.event_id, "X-Edge-Attempt": str(item.attempts + 1)}
        if self.secret is not None:
            headers[self.signature_header] = sign(self.secret, body)
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                resp.read(65536)
                return Attempt("ok", f"HTTP {resp.status}")
        except urllib.error.HTTPError as exc:
            code = exc.code
            exc.close()
            if code == 429 or code >= 500:
                return Attempt("retry", f"HTTP {code}", _retry_after(exc.headers.get("Retry-After")))
            return Attempt("dead", f"HTTP {code}")
        except (OSError, http.client.HTTPException) as exc:   # URLError, timeouts, resets, bad status lines
            return Attempt("retry", f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}")


def _retry_after(value: str | None) -> float:
    """Retry-After in seconds (the HTTP-date form is ignored: terminal clocks drift)."""
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


# -- door relay -------------------------------------------------------------------
class RelayError(RuntimeError):
    """A relay driver could not be set up or could not pulse."""


class RelayDriver(ABC):
    """Opens a door for a while. pulse() may block for the pulse; RelaySink calls it
    off the capture loop."""

    @abstractmethod
    def pulse(self, door: str, seconds: float) -> None: ...

    def close(self) -> None:
        pass


class CommandRelay(RelayDriver):
    """Runs a command per pulse, e.g. a GPIO or a serial-relay helper script. In its
    arguments {door}, {pulse_s} and {pulse_ms} are replaced (nothing from the event, so
    nothing a person at the gate controls reaches the command line). The command runs
    in its own process group, killed whole at timeout_s."""

    def __init__(self, command: Sequence[str], timeout_s: float = 5.0):
        if isinstance(command, str) or not command:
            raise ValueError("command must be a non-empty list of arguments")
        self.command, self.timeout_s = list(command), timeout_s

    def pulse(self, door: str, seconds: float) -> None:
        args = [a.replace("{door}", door).replace("{pulse_s}", f"{seconds:g}")
                .replace("{pulse_ms}", str(int(round(seconds * 1000)))) for a in self.command]
        try:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    start_new_session=True)
        except OSError as exc:
            raise RelayError(f"relay command {args[0]!r} could not start: {exc}") from exc
        try:
            _, err = proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise RelayError(f"relay command {args[0]!r} timed out after {self.timeout_s:g} s") from None
        if proc.returncode:
            tail = err.decode(errors="replace").strip()[-200:]
            raise RelayError(f"relay command {args[0]!r} exited {proc.returncode}: {tail}")


class GpiozeroRelay(RelayDriver):
    """A relay on a Raspberry Pi GPIO pin per door, through gpiozero (imported only
    here, so terminals without it never need it)."""

    def __init__(self, pins: Mapping[str, int | str], active_high: bool = True):
        try:
            from gpiozero import OutputDevice
        except ImportError as exc:
            raise RelayError("GpiozeroRelay needs the gpiozero package: pip install gpiozero "
                             "(or apt install python3-gpiozero), or use CommandRelay") from exc
        self._devices = {door: OutputDevice(pin, active_high=active_high, initial_value=False)
                         for door, pin in pins.items()}

    def pulse(self, door: str, seconds: float) -> None:
        dev = self._devices.get(door)
        if dev is None:
            raise RelayError(f"no GPIO pin configured for door {door!r}")
        dev.on()
        try:
            time.sleep(seconds)
        finally:
            dev.off()

    def close(self) -> None:
        for dev in self._devices.values():
            dev.close()


@dataclass(frozen=True)
class DoorSide:
    """Where a camera looks: a door, and which way a person seen by it is going."""
    door: str
    direction: str = "in"         # "in" | "out"

    def __post_init__(self):
        if self.direction not in ("in", "out"):
            raise ValueError(f"direction {self.direction!r} is not 'in' or 'out'")


@dataclass(frozen=True)
class RelayDecision:
    event_id: str
    opened: bool
    # opened | not_recognised | unknown_camera | group_not_allowed | debounce | anti_passback
    reason: str
    door: str = ""
    direction: str = ""
    user_id: str = ""


class RelaySink(Sink):
    """Opens a door for recognised people of the allowed groups; handle() returns the
    decision at once and the pulse runs on its own thread.

    debounce_s: at most one opening per door per debounce_s, whoever asks (a track
    recognised on several frames, or the next person, must not re-trigger the relay
    while the door is open). anti_passback_s: a user who passed a door in a direction
    cannot pass it the same way again within that window, unless they passed it the
    other way since (a card or face handed back through the fence); 0 turns it off.
    Times come from `clock` (monotonic: a terminal's wall clock jumps at NTP sync);
    the state is in memory, so a restart forgets it."""

    def __init__(self, driver: RelayDriver, cameras: Mapping[str, DoorSide] | None = None, door: str = "door",
                 allowed_groups: Iterable[str] | None = None, pulse_s: float = 1.0, debounce_s: float = 3.0,
                 anti_passback_s: float = 0.0, clock: Callable[[], float] = time.monotonic, name: str = "relay"):
        if pulse_s <= 0 or debounce_s < pulse_s:
            raise ValueError("pulse_s must be positive and debounce_s at least pulse_s (one pulse at a time)")
        self.driver, self.name, self.clock = driver, name, clock
        self.cameras = None if cameras is None else dict(cameras)
        self.default_side = DoorSide(door)
        self.allowed_groups = None if allowed_groups is None else frozenset(allowed_groups)
        self.pulse_s, self.debounce_s, self.anti_passback_s = pulse_s, debounce_s, anti_passback_s
        self.errors = 0
        self._lock = threading.Lock()
        self._last_open: dict[str, float] = {}
        self._passes: dict[tuple[str, str], tuple[str, float]] = {}   # (user, door) -> (direction, t)
        self._pulses: list[threading.Thread] = []

    def decide(self, event: Event) -> RelayDecision:
        """The decision alone, updating the debounce and anti-passback state if it opens."""
        side = self.default_side if self.cameras is None else self.cameras.get(event.camera)

        def verdict(reason: str, opened: bool = False) -> RelayDecision:
            return RelayDecision(event.event_id, opened, reason, side.door if side else "",
                                 side.direction if side else "", event.user_id)

        if event.kind != "recognised":
            return verdict("not_recognised")
        if side is None:
            return verdict("unknown_camera")
        if self.allowed_groups is not None and event.group_id not in self.allowed_groups:
            return verdict("group_not_allowed")
        with self._lock:
            now = self.clock()
            last = self._last_open.get(side.door)
            if last is not None and now - last < self.debounce_s:
                return verdict("debounce")
            key = (event.user_id, side.door)
            passed = self._passes.get(key)
            if self.anti_passback_s > 0 and passed is not None and passed[0] == side.direction \
                    and now - passed[1] < self.anti_passback_s:
                return verdict("anti_passback")
            self._last_open[side.door] = now
            self._passes[key] = (side.direction, now)
            if len(self._passes) > 4096:
                self._forget(now)
        return verdict("opened", True)

    def _forget(self, now: float) -> None:
        """Drop passes older than the window: they no longer restrict anyone."""
        self._passes = {k: v for k, v in self._passes.items() if now - v[1] < self.anti_passback_s}

    def handle(self, event: Event) -> RelayDecision:
        decision = self.decide(event)
        if decision.opened:
            log.info("relay: open door %s (%s) for %s, event %s", decision.door, decision.direction,
                     decision.user_id, decision.event_id)
            t = threading.Thread(target=self._pulse, args=(decision,), name="edge-relay", daemon=True)
            with self._lock:
                self._pulses = [p for p in self._pulses if p.is_alive()] + [t]
            t.start()
        elif decision.reason != "not_recognised":
            log.info("relay: door %s stays shut for %s (%s), event %s", decision.door or "?",
                     decision.user_id, decision.reason, decision.event_id)
        return decision

    def _pulse(self, decision: RelayDecision) -> None:
        try:
            self.driver.pulse(decision.door, self.pulse_s)
        except Exception as exc:  # noqa: BLE001 - a relay fault is logged, never raised into the loop
            self.errors += 1
            log.error("relay: door %s did not open for event %s: %s", decision.door, decision.event_id, exc)

    def wait(self, timeout: float = 10.0) -> bool:
        """Wait for the pulses in progress; False if one is still running."""
        end = time.monotonic() + timeout
        with self._lock:
            pulses = list(self._pulses)
        for t in pulses:
            t.join(max(0.0, end - time.monotonic()))
        return not any(t.is_alive() for t in pulses)

    def close(self) -> None:
        self.wait(self.pulse_s + 10.0)
        self.driver.close()
