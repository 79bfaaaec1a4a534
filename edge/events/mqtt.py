"""Events and camera state to an MQTT broker, in the style of Frigate and Home Assistant.

Events go through a durable outbox (edge/events/outbox.py, its own file): handle()
commits the event and returns, the sender thread publishes the oldest pending event at
QoS 1 and marks it done only on the broker's PUBACK, then the next. One event in flight
at a time: order is kept across broker outages, reconnects and restarts without
depending on the broker's or paho's queue order (paho re-sends the one unacknowledged
message after a reconnect). Delivery is at-least-once: a kill between PUBACK and done()
publishes that event again at the next start; receivers de-duplicate by event_id.

Camera state is not outboxed: it is retained, the latest wins, and it is republished
from the runner's status snapshot (offer_status), so a stale state is never worth
queueing. Every topic is in TOPICS below, the one table docs/mqtt.md copies.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

import edge
from edge.config import ConfigError
from edge.events.event import format_iso
from edge.mqtt_config import MqttConfig
from edge.events.outbox import Outbox, OutboxItem
from edge.events.sinks import Backoff, OutboxSink

log = logging.getLogger(__name__)

ONLINE, OFFLINE = "online", "offline"   # Home Assistant's default availability payloads
STATE_REFRESH_S = 30.0                  # a camera's unchanged state is republished this often
CONNECT_LOG_EVERY_S = 60.0
# PUBACKed events are marked done in the outbox in batches of up to this many: one commit
# (an fsync) per batch, not per event; a kill before the commit publishes them again
DONE_BATCH = 20              # failed connection attempts: one log line a minute
# PUBACK reason codes (MQTT 5) worth a retry; any other failure code is permanent
RETRY_REASONS = {0x83, 0x97}            # implementation specific error, quota exceeded


@dataclass(frozen=True)
class Topic:
    key: str
    pattern: str         # {prefix}, {camera}, {discovery_prefix}, {component}, {node}, {object}
    retained: bool
    qos: int
    payload: str


# The topics, in one place (docs/mqtt.md has the same table).
TOPICS = (
    Topic("available", "{prefix}/available", True, 1,
          "`online` once connected; `offline` at a clean stop, and as the last will when the broker loses us"),
    Topic("events", "{prefix}/events", False, 1,
          "every event, JSON (Event.to_dict), in creation order, from the outbox, at least once"),
    Topic("camera", "{prefix}/camera/{camera}/state", True, 1,
          "JSON: state, fps, event counts, the last decision; on change and every 30 s, latest wins"),
    Topic("discovery", "{discovery_prefix}/{component}/{node}/{object}/config", True, 1,
          "Home Assistant discovery (mqtt.discovery: true): one sensor per camera and value"),
)
_TOPIC = {t.key: t for t in TOPICS}


def topic(key: str, **parts: str) -> str:
    return _TOPIC[key].pattern.format(**parts)


def level(name: str) -> str:
    """A camera name as one topic level: no separators or wildcards."""
    return "".join("_" if c in "/+#\x00" else c for c in name) or "_"


def camera_state(name: str, cam: Mapping[str, Any], now: float | None = None) -> dict:
    """The retained state of one camera, from its entry of the runner's status snapshot."""
    return {"camera": name, "state": cam.get("state"), "capture_fps": cam.get("capture_fps"),
            "processed_fps": cam.get("processed_fps"), "frames": cam.get("frames"),
            "reconnects": cam.get("reconnects"), "last_error": cam.get("last_error"),
            "events": cam.get("events") or {}, "last_event": cam.get("last_event"),
            "time": format_iso(time.time() if now is None else now)}


# Home Assistant entities per camera: (object suffix, name, value template, extra fields).
HA_SENSORS = (
    ("decision", "last decision", "{{ value_json.last_event.kind if value_json.last_event else 'none' }}",
     {"json_attributes_template": "{{ (value_json.last_event or {}) | tojson }}", "icon": "mdi:face-recognition"}),
    ("person", "last person",
     "{{ value_json.last_event.user_id if value_json.last_event and value_json.last_event.kind == 'recognised' "
     "else 'none' }}", {"icon": "mdi:account"}),
    ("fps", "fps", "{{ value_json.processed_fps }}",
     {"unit_of_measurement": "fps", "state_class": "measurement", "icon": "mdi:speedometer"}),
    ("state", "camera", "{{ value_json.state }}", {"icon": "mdi:cctv"}),
)


def discovery_messages(config: MqttConfig, camera: str) -> list[tuple[str, dict]]:
    """(topic, payload) of the Home Assistant discovery configs of one camera."""
    node, prefix, cam = config.node, config.topic_prefix, level(camera)
    ident = "".join(c if c.isalnum() or c in "_-" else "_" for c in camera)
    device = {"identifiers": [f"edge_{node}"], "name": f"edge {node}", "manufacturer": "edge",
              "model": "face recognition terminal", "sw_version": getattr(edge, "__version__", "")}
    out = []
    for suffix, name, template, extra in HA_SENSORS:
        obj = f"{ident}_{suffix}"
        payload = {"name": f"{camera} {name}", "unique_id": f"edge_{node}_{obj}",
                   # HA 2025.10+ (object_id's replacement, which 2026.4 dropped): the entity id it starts with
                   "default_entity_id": f"sensor.edge_{node}_{obj}".lower().replace("-", "_"),
                   "state_topic": topic("camera", prefix=prefix, camera=cam), "value_template": template,
                   "availability_topic": topic("available", prefix=prefix),
                   "payload_available": ONLINE, "payload_not_available": OFFLINE, "device": device, **extra}
        if "json_attributes_template" in payload:
            payload["json_attributes_topic"] = payload["state_topic"]
        out.append((topic("discovery", discovery_prefix=config.discovery_prefix, component="sensor", node=node,
                          object=obj), payload))
    return out


def tls_context(config: MqttConfig) -> ssl.SSLContext:
    """The broker's certificate checked against ca_file (or the system's CAs), host name
    included; a client certificate when cert_file is set."""
    ctx = ssl.create_default_context(cafile=config.ca_file or None)
    if config.cert_file:
        ctx.load_cert_chain(config.cert_file, config.key_file)
    return ctx


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


class MqttSink(OutboxSink):
    """Publishes each event (outboxed, in order, at least once) and each camera's state
    (retained, latest wins), with `<prefix>/available` as the retained last will."""

    def __init__(self, config: MqttConfig, outbox_path: Path | str, poll_s: float = 5.0, name: str = "mqtt"):
        if not config.enabled:
            raise ValueError("mqtt.host is empty: MQTT is off")
        self.name, self.config, self.poll_s = name, config, poll_s
        self.prefix = config.topic_prefix
        self.events_topic = topic("events", prefix=self.prefix)
        self.available_topic = topic("available", prefix=self.prefix)
        self._where = f"{config.host}:{config.broker_port}"   # for log lines: never the credentials
        self.backoff = Backoff(config.reconnect_min_s, config.reconnect_max_s)
        self.outbox = Outbox(outbox_path, max_rows=config.max_rows)
        self.delivered = self.dead_letters = 0
        self.last_error = ""
        self._cond = threading.Condition()
        self._acks: dict[int, Any] = {}          # mid -> reason code, while the sender waits for one
        self._collect = False
        self._connected = threading.Event()
        self._changed = time.time()              # when `connected` last changed
        self._connect_logged = float("-inf")
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._deadline = float("inf")
        self._states: dict[str, tuple[str, float]] = {}   # camera -> (substance, published at)
        self._discovered: set[str] = set()
        self._state_lock = threading.Lock()
        if not config.use_tls and not _loopback(config.host):
            log.warning("mqtt %s: no TLS to a broker off this machine: events%s cross the network in clear "
                        "(mqtt.ca_file or mqtt.tls: true, docs/mqtt.md)", self._where,
                        " and the password" if config.password else "")
        self.client = self._client()
        self.client.connect_async(config.host, config.broker_port, config.keepalive_s,
                                  **({"clean_start": True} if config.protocol == "5" else {}))
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name=f"edge-{name}", daemon=True)
        self._thread.start()

    def _client(self) -> paho.Client:
        c = self.config
        v5 = c.protocol == "5"
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=c.client_id or f"edge-{c.node}",
                             protocol=paho.MQTTv5 if v5 else paho.MQTTv311, clean_session=None if v5 else True)
        if c.username:
            client.username_pw_set(c.username, c.password or None)
        if c.use_tls:
            try:
                ctx = tls_context(c)
            except (OSError, ssl.SSLError) as exc:
                files = ", ".join(f for f in (c.ca_file, c.cert_file, c.key_file) if f) or "the system's CAs"
                raise ConfigError(f"mqtt: cannot load the TLS files ({files}): {exc}") from None
            client.tls_set_context(ctx)
        client.will_set(self.available_topic, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(max(1, int(c.reconnect_min_s)), max(1, int(c.reconnect_max_s)))
        client.on_connect, client.on_disconnect = self._on_connect, self._on_disconnect
        client.on_connect_fail, client.on_publish = self._on_connect_fail, self._on_publish
        return client

    # -- paho's callbacks (its network thread) --------------------------------------
    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:   # refused (bad credentials, not authorised ...): paho retries
            self._note_error(f"connection refused ({reason})")
            return
        log.info("mqtt: connected to %s, topics under %s/", self._where, self.prefix)
        client.publish(self.available_topic, ONLINE, qos=1, retain=True)
        with self._state_lock:
            self._discovered.clear()            # a broker without persistence forgot them
            for cam, (substance, _) in self._states.items():
                self._states[cam] = (substance, float("-inf"))   # republished at the next snapshot
        self._set_connected(True)

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        was = self._connected.is_set()
        self._set_connected(False)
        if was and not self._closing.is_set():   # (a refused connection keeps its reason)
            log.warning("mqtt %s: disconnected (%s); events wait in the outbox", self._where, reason)
            self.last_error = f"disconnected: {reason}"

    def _on_connect_fail(self, client, userdata) -> None:
        self._note_error("cannot connect")

    def _on_publish(self, client, userdata, mid, reason, properties) -> None:
        with self._cond:
            if self._collect:
                self._acks[mid] = reason
                self._cond.notify_all()

    def _set_connected(self, up: bool) -> None:
        if up != self._connected.is_set():
            self._changed = time.time()
        (self._connected.set if up else self._connected.clear)()
        self._wake.set()
        with self._cond:
            self._cond.notify_all()

    def _note_error(self, what: str) -> None:
        self.last_error = what
        now = time.monotonic()
        if now - self._connect_logged >= CONNECT_LOG_EVERY_S:
            self._connect_logged = now
            log.warning("mqtt %s: %s; retrying (events wait in the outbox)", self._where, what)

    # -- the Sink interface ------------------------------------------------------------
    def offer_status(self, snapshot: Mapping[str, Any]) -> None:
        """Publish each camera's state (retained) when it changed or its refresh is due,
        and its discovery configs the first time it is seen on this connection. Dropped
        while disconnected: the next snapshot after the reconnect publishes it."""
        now = time.time()
        for name, cam in (snapshot.get("cameras") or {}).items():
            state = camera_state(name, cam, now)
            substance = json.dumps({k: v for k, v in state.items() if k not in ("time", "capture_fps",
                                                                               "processed_fps", "frames")},
                                   sort_keys=True)
            with self._state_lock:
                old = self._states.get(name)
                due = old is None or old[0] != substance or now - old[1] >= STATE_REFRESH_S
                if not self._connected.is_set():
                    self._states[name] = (substance, float("-inf"))
                    continue
                discover = self.config.discovery and name not in self._discovered
                if discover:
                    self._discovered.add(name)
                if due:
                    self._states[name] = (substance, now)
            if discover:
                for t, payload in discovery_messages(self.config, name):
                    self.client.publish(t, json.dumps(payload), qos=1, retain=True)
            if due:
                self.client.publish(topic("camera", prefix=self.prefix, camera=level(name)), json.dumps(state),
                                    qos=1, retain=True)

    def report(self) -> dict:
        """For the status snapshot and `edge status`."""
        stats = self.outbox.stats()
        return {"broker": self._where, "connected": self._connected.is_set(), "since": format_iso(self._changed),
                "prefix": self.prefix, "pending": stats.pending, "delivered": self.delivered,
                "dead": stats.dead, "dropped": stats.dropped, "last_error": self.last_error}

    def close(self, timeout: float | None = None) -> None:
        """Deliver for up to timeout (flush_timeout_s) seconds, publish `offline`, disconnect.
        What is left stays in the outbox for the next start."""
        if self._closing.is_set():
            return
        wait = self.config.flush_timeout_s if timeout is None else timeout
        self._deadline = time.monotonic() + wait
        self._closing.set()
        self._wake.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(wait + 2.0)
        if self._connected.is_set():
            info = self.client.publish(self.available_topic, OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(2.0)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()
        left = self.outbox.pending_count()
        if left:
            log.info("mqtt %s: %d event(s) left in %s for the next start", self._where, left, self.outbox.path)
        self.outbox.close()

    # -- the sender thread --------------------------------------------------------------
    def _stopping(self) -> bool:
        return self._closing.is_set() and time.monotonic() >= self._deadline

    def _run(self) -> None:
        while not self._stopping():
            self._wake.clear()
            try:
                if not self._send_due():
                    return
            except Exception:  # noqa: BLE001 - the sender must outlive any one failure
                log.exception("mqtt %s: sender error", self._where)
                self._wake.wait(1.0)

    def _send_due(self) -> bool:
        """Publish what is due, one at a time; False when it is time to stop."""
        closing = self._closing.is_set()
        if not self._connected.is_set():
            if closing:
                return False
            self._connected.wait(self.poll_s)
            return True
        items = self.outbox.claim(batch=DONE_BATCH)
        acked: list[int] = []
        try:
            for item in items:
                if not self._publish(item, acked) or self._stopping():
                    return not self._stopping()
        finally:
            self.outbox.done(acked)   # one commit per batch (a kill before it re-sends the batch)
            self.delivered += len(acked)
        if items:
            return True
        if closing:
            return False
        due = self.outbox.next_due()
        wait = self.poll_s if due is None else max(0.0, due - time.time())
        self._wake.wait(min(wait, self.poll_s))   # poll: another process may have put events
        return True

    def _publish(self, item: OutboxItem, acked: list[int]) -> bool:
        """Publish one event and wait for its PUBACK (its id then joins `acked`, marked
        done by the caller); True if the queue may move on."""
        with self._cond:
            self._acks.clear()
            self._collect = True
        try:
            info = self.client.publish(self.events_topic, item.body, qos=1)
            if info.rc == paho.MQTT_ERR_QUEUE_SIZE:
                raise RuntimeError("paho's queue is full")
            # NO_CONN: paho keeps the message and sends it once reconnected; wait for it
            with self._cond:
                while info.mid not in self._acks and not self._stopping():
                    self._cond.wait(0.5)
                reason = self._acks.get(info.mid)
        finally:
            with self._cond:
                self._collect = False
                self._acks.clear()
        if reason is None:
            return False          # stopping: the event stays pending for the next start
        if not reason.is_failure:
            acked.append(item.id)
            return True
        if reason.value in RETRY_REASONS:
            self.outbox.retry(item.id, time.time() + self.backoff.delay(item.attempts + 1), str(reason))
            self.last_error = f"broker refused an event for now: {reason}"
            return False
        self.outbox.dead(item.id, f"PUBACK {reason}")
        self.dead_letters += 1
        self.last_error = f"broker refused event {item.event_id}: {reason}"
        log.error("mqtt %s: the broker refused event %s (%s): moved to the dead letters of %s", self._where,
                  item.event_id, reason, self.outbox.path)
        return True
