"""The MQTT sink against a real broker: Debian's mosquitto, started here on a free
loopback port with its own config (password file, self-signed TLS made by openssl),
subscribers in paho-mqtt, a producer process killed with SIGKILL."""
from __future__ import annotations

import json
import logging
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from edge.config import ConfigError, load_config
from edge.events.event import Event, last_decision
from edge.events.mqtt import MqttSink, TOPICS, discovery_messages
from edge.mqtt_config import MqttConfig
from edge.events.outbox import Outbox
from mqtt_support import Broker, Subscriber, first_seen, free_port, make_certs

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).parent / "outbox_worker.py"
PREFIX = "edge/t1"
EVENTS, AVAILABLE = f"{PREFIX}/events", f"{PREFIX}/available"


def recognised(user: str, camera: str = "gate") -> Event:
    return Event("recognised", camera=camera, user_id=user, group_id="staff", score=91.5)


def settings(broker: Broker, **kw) -> MqttConfig:
    return MqttConfig(host="127.0.0.1", port=broker.port, node_id="t1", reconnect_min_s=1, reconnect_max_s=1, **kw)


def wait(predicate, timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def retained(port: int, topic: str, **connect) -> bytes | None:
    """What a fresh subscriber gets retained on topic (None: nothing within 3 s)."""
    sub = Subscriber(port, topic, **connect)
    try:
        sub.wait_for(lambda s: s.on(topic), 3.0)
        got = [(p, r) for t, p, r in sub.messages if t == topic]
        return got[-1][0] if got and got[-1][1] else None
    finally:
        sub.close()


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_events_arrive_in_order_and_availability_is_retained(tmp_path, broker, protocol):
    sub = Subscriber(broker.port, f"{PREFIX}/#")
    assert sub.connected.wait(10)
    sink = MqttSink(settings(broker, protocol=protocol), tmp_path / "mqtt.db")
    assert wait(lambda: sink.report()["connected"], 10)
    events = [recognised(f"u{i}") for i in range(50)]
    for e in events:
        sink.handle(e)
    assert sink.flush(20)
    assert sub.wait_for(lambda s: len(s.on(EVENTS)) >= 50)
    assert sub.event_ids(EVENTS) == [e.event_id for e in events]          # in order, each once
    assert [Event.from_json(p.decode()) for p in sub.on(EVENTS)] == events  # the Event's JSON, whole
    assert retained(broker.port, AVAILABLE) == b"online"
    report = sink.report()
    assert report["connected"] and report["pending"] == 0 and report["delivered"] == 50
    assert report["broker"] == f"127.0.0.1:{broker.port}" and report["prefix"] == PREFIX
    sink.close()
    assert retained(broker.port, AVAILABLE) == b"offline"                  # a clean stop says so
    assert Outbox(tmp_path / "mqtt.db").stats().delivered == 50
    sub.close()


def test_broker_stopped_and_restarted_mid_stream_loses_nothing_and_keeps_order(tmp_path, broker):
    # a persistent session: what the broker queued for the subscriber survives its restart
    sub = Subscriber(broker.port, EVENTS, session=True, client_id="ha")
    assert sub.connected.wait(10)
    sink = MqttSink(settings(broker), tmp_path / "mqtt.db")
    events = [recognised(f"u{i}") for i in range(300)]
    acked = threading.Event()

    def produce():
        for i, e in enumerate(events):
            sink.handle(e)
            if i == 100:
                acked.set()
            time.sleep(0.005)

    producer = threading.Thread(target=produce)
    producer.start()
    assert acked.wait(20)
    broker.stop()                                                           # mid-stream
    assert wait(lambda: not sink.report()["connected"], 10)
    time.sleep(1.0)
    outage = sink.report()
    broker.start()
    producer.join(30)
    assert sink.flush(30), sink.report()
    assert sub.wait_for(lambda s: len(set(s.event_ids(EVENTS))) >= 300, 30), len(set(sub.event_ids(EVENTS)))
    got = sub.event_ids(EVENTS)
    print(f"{outage['pending']} pending during the outage, {len(got) - len(set(got))} duplicate(s)")
    assert outage["pending"] > 0 and not outage["connected"]
    assert first_seen(got) == [e.event_id for e in events]
    sink.close()
    sub.close()


def test_kill_9_loses_no_acknowledged_event_and_the_last_will_says_offline(tmp_path, broker):
    sub = Subscriber(broker.port, [EVENTS, AVAILABLE], session=True, client_id="ha")
    assert sub.connected.wait(10)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, str(WORKER), "mqtt", str(tmp_path / "mqtt.db"), f"{broker.port}/{PREFIX}",
                             "100000", "0.001"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    acked: list[str] = []
    reader = threading.Thread(target=lambda: acked.extend(line.split()[2] for line in proc.stdout
                                                          if line.startswith("acked ")), daemon=True)
    reader.start()
    # a backlog for sure: the broker away for a second while the producer goes on, then back;
    # the kill comes as soon as the producer's sender is delivering again, mid-backlog
    assert wait(lambda: len(acked) >= 100 and len(sub.on(EVENTS)) >= 20, 30)
    broker.stop()
    time.sleep(1.0)
    delivered = len(set(sub.event_ids(EVENTS)))
    broker.start()
    assert sub.wait_for(lambda s: len(set(s.event_ids(EVENTS))) >= delivered + 5, 30)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    reader.join(10)
    proc.stdout.close()
    proc.stderr.close()
    # the broker saw the connection drop without a DISCONNECT: it publishes the will
    assert sub.wait_for(lambda s: s.on(AVAILABLE)[-1:] == [b"offline"], 10), sub.on(AVAILABLE)
    assert retained(broker.port, AVAILABLE) == b"offline"
    before = len(set(sub.event_ids(EVENTS)))
    left = Outbox(tmp_path / "mqtt.db").pending_count()

    sink = MqttSink(MqttConfig(host="127.0.0.1", port=broker.port, prefix=PREFIX, node_id="worker"),
                    tmp_path / "mqtt.db")
    assert sink.flush(60), f"{left} pending after the kill not delivered"
    assert sub.wait_for(lambda s: set(acked) <= set(s.event_ids(EVENTS)), 20)
    assert retained(broker.port, AVAILABLE) == b"online"
    sink.close()
    got = first_seen(sub.event_ids(EVENTS))
    print(f"{len(acked)} acked, {before} delivered before the kill, {left} pending after it")
    assert left > 0 and before > 0
    assert not set(acked) - set(got)                      # every acknowledged event arrived
    assert len(set(got) - set(acked)) <= 1                # at most the put in flight, committed unacked
    order = {eid: i for i, eid in enumerate(acked)}
    assert [order[e] for e in got if e in order] == list(range(len(acked)))   # in creation order
    sub.close()


def test_credentials_from_the_environment_and_never_logged(tmp_path, monkeypatch, caplog):
    broker = Broker(tmp_path / "broker", users={"gate": "s3cret-pw"}).start()
    try:
        sub = Subscriber(broker.port, EVENTS, username="gate", password="s3cret-pw")
        assert sub.connected.wait(10)
        caplog.set_level(logging.DEBUG)
        wrong = MqttSink(settings(broker, username="gate", password="wrong-pw"), tmp_path / "wrong.db")
        wrong.handle(recognised("u0"))
        assert wait(lambda: "refused" in wrong.report()["last_error"], 10), wrong.report()
        assert not wrong.report()["connected"] and wrong.report()["pending"] == 1
        wrong.close(0)

        (tmp_path / "edge.yaml").write_text(f"data_dir: {tmp_path / 'data'}\n"
                                            f"mqtt: {{host: 127.0.0.1, port: {broker.port}, node_id: t1}}\n")
        monkeypatch.setenv("EDGE_MQTT_USERNAME", "gate")
        monkeypatch.setenv("EDGE_MQTT_PASSWORD", "s3cret-pw")
        cfg = load_config(tmp_path / "edge.yaml")
        assert cfg.mqtt.username == "gate" and "s3cret-pw" not in repr(cfg)
        sink = MqttSink(cfg.mqtt, tmp_path / "right.db")
        event = recognised("u1")
        sink.handle(event)
        assert sink.flush(10) and sub.wait_for(lambda s: s.event_ids(EVENTS) == [event.event_id])
        assert "s3cret-pw" not in json.dumps(sink.report())
        sink.close()
        sub.close()
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert "refused" in logged and "s3cret-pw" not in logged and "wrong-pw" not in logged
    finally:
        broker.stop()


def test_an_event_the_broker_refuses_is_dead_lettered_and_the_queue_moves_on(tmp_path, caplog):
    """MQTT 5 PUBACKs carry a reason: "not authorized" (an ACL) is permanent, so the event
    goes to the outbox's dead letters, logged, rather than blocking every later one."""
    broker = Broker(tmp_path / "broker", acl=f"topic readwrite {AVAILABLE}\n").start()   # events not allowed
    try:
        sink = MqttSink(settings(broker), tmp_path / "mqtt.db")
        for i in range(3):
            sink.handle(recognised(f"u{i}"))
        assert sink.flush(10)
        report = sink.report()
        assert report["dead"] == 3 and report["delivered"] == 0 and "Not authorized" in report["last_error"]
        assert "refused event" in caplog.text
        assert [json.loads(d.body)["user_id"] for d in sink.outbox.dead_letters()] == ["u2", "u1", "u0"]
        sink.close()
    finally:
        broker.stop()


def test_tls_with_a_client_certificate(tmp_path):
    certs = make_certs(tmp_path / "certs")
    broker = Broker(tmp_path / "broker", certs=certs).start()
    try:
        ctx = ssl.create_default_context(cafile=str(certs["ca.crt"]))
        ctx.load_cert_chain(str(certs["client.crt"]), str(certs["client.key"]))
        sub = Subscriber(broker.port, EVENTS, tls=ctx)
        assert sub.connected.wait(10)
        sink = MqttSink(settings(broker, ca_file=str(certs["ca.crt"]), cert_file=str(certs["client.crt"]),
                                 key_file=str(certs["client.key"])), tmp_path / "mqtt.db")
        event = recognised("u1")
        sink.handle(event)
        assert sink.flush(10) and sub.wait_for(lambda s: s.event_ids(EVENTS) == [event.event_id])
        sink.close()
        # without the client certificate the broker refuses the handshake: nothing is sent
        bare = MqttSink(settings(broker, ca_file=str(certs["ca.crt"])), tmp_path / "bare.db")
        bare.handle(recognised("u2"))
        time.sleep(2.0)
        assert not bare.report()["connected"] and bare.report()["pending"] == 1
        bare.close(0)
        # a broker certificate from another CA is refused by the sink
        other = make_certs(tmp_path / "other")
        wrong_ca = MqttSink(settings(broker, ca_file=str(other["ca.crt"]), cert_file=str(certs["client.crt"]),
                                     key_file=str(certs["client.key"])), tmp_path / "wrong-ca.db")
        time.sleep(2.0)
        assert not wrong_ca.report()["connected"]
        wrong_ca.close(0)
        assert sub.event_ids(EVENTS) == [event.event_id]
        sub.close()
    finally:
        broker.stop()


def snapshot(last: Event | None, state: str = "streaming") -> dict:
    """The runner's status snapshot, as far as camera state reads it (Runner.snapshot)."""
    return {"cameras": {"gate": {"state": state, "capture_fps": 10.0, "processed_fps": 9.5, "frames": 100,
                                 "reconnects": 0, "last_error": "", "events": {"recognised": 1},
                                 "last_event": last_decision(last) if last else None}}}


def test_camera_state_is_retained_and_discovery_announces_the_terminal(tmp_path, broker):
    sink = MqttSink(settings(broker, discovery=True), tmp_path / "mqtt.db")
    assert wait(lambda: sink.report()["connected"], 10)
    ann = recognised("ann")
    sink.offer_status(snapshot(ann))
    state_topic = f"{PREFIX}/camera/gate/state"
    state = None
    assert wait(lambda: retained(broker.port, state_topic) is not None, 10)
    state = json.loads(retained(broker.port, state_topic))
    assert state["state"] == "streaming" and state["processed_fps"] == 9.5
    assert state["last_event"]["user_id"] == "ann" and state["last_event"]["event_id"] == ann.event_id

    configs = [t for t, _ in discovery_messages(sink.config, "gate")]
    assert configs and all(t.startswith("homeassistant/sensor/t1/gate_") and t.endswith("/config") for t in configs)
    for t in configs:
        cfg = json.loads(retained(broker.port, t))   # retained: Home Assistant reads them whenever it starts
        assert cfg["availability_topic"] == AVAILABLE and cfg["state_topic"] == state_topic
        assert cfg["device"]["identifiers"] == ["edge_t1"] and cfg["unique_id"].startswith("edge_t1_gate_")
        assert cfg["default_entity_id"] == f"sensor.{cfg['unique_id']}" and cfg["value_template"].startswith("{{")

    # the templates Home Assistant renders on the state (Jinja2, as HA's; value_json = the payload)
    import jinja2
    env = jinja2.Environment()
    rendered = {t.split("/")[-2]: env.from_string(json.loads(retained(broker.port, t))["value_template"])
                .render(value_json=state) for t in configs}
    assert rendered == {"gate_decision": "recognised", "gate_person": "ann", "gate_fps": "9.5",
                        "gate_state": "streaming"}
    attrs = json.loads(retained(broker.port, configs[0]))["json_attributes_template"]
    assert json.loads(env.from_string(attrs).render(value_json=state))["user_id"] == "ann"
    nobody = {**state, "last_event": None}
    assert env.from_string(json.loads(retained(broker.port, configs[1]))["value_template"]).render(
        value_json=nobody) == "none"

    sub = Subscriber(broker.port, state_topic)
    assert sub.wait_for(lambda s: s.on(state_topic), 5)
    sink.offer_status(snapshot(ann))                 # unchanged: not republished before its refresh
    rejected = Event("rejected", camera="gate", error_code=223120)
    sink.offer_status(snapshot(rejected, "reconnecting"))   # changed: published at once, latest wins
    assert sub.wait_for(lambda s: len(s.on(state_topic)) >= 2, 5)
    time.sleep(0.5)
    latest = [json.loads(p) for p in sub.on(state_topic)]
    assert len(latest) == 2 and latest[-1]["state"] == "reconnecting"
    assert latest[-1]["last_event"]["error_code"] == 223120
    sink.close()
    sub.close()


def test_unreadable_tls_files_stop_the_start_with_their_names(tmp_path):
    with pytest.raises(ConfigError, match="/nowhere/ca.pem"):
        MqttSink(MqttConfig(host="127.0.0.1", ca_file="/nowhere/ca.pem"), tmp_path / "mqtt.db")


def test_clear_text_is_only_quiet_on_this_machine():
    from edge.events.mqtt import _loopback   # the start-up warning's test (no sink: nothing is contacted)
    assert all(_loopback(h) for h in ("127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost"))
    assert not any(_loopback(h) for h in ("broker.lan", "10.0.0.5", "mqtt.example.org"))


def test_the_topic_table_is_documented():
    doc = (REPO / "docs" / "mqtt.md").read_text()
    for t in TOPICS:
        assert f"`{t.pattern}`" in doc, t.pattern


def test_mqtt_config_is_checked(tmp_path):
    def load(section: str):
        (tmp_path / "edge.yaml").write_text(f"mqtt: {section}\n")
        return load_config(tmp_path / "edge.yaml")

    cfg = load("{host: broker.lan, ca_file: certs/ca.pem}")
    assert cfg.mqtt.use_tls and cfg.mqtt.broker_port == 8883 and Path(cfg.mqtt.ca_file).is_absolute()
    assert load("{host: broker.lan, node_id: gate-1}").mqtt.topic_prefix == "edge/gate-1"
    assert load("{host: b, prefix: site/door/}").mqtt.topic_prefix == "site/door"
    assert not load("{}").mqtt.enabled
    for bad, says in (("{host: 'mqtt://b'}", "mqtt.host"), ("{host: b, prefix: 'a/#'}", "mqtt.prefix"),
                      ("{host: b, node_id: 'a b'}", "mqtt.node_id"), ("{host: b, cert_file: c.pem}", "key_file"),
                      ("{host: b, password: x}", "username"), ("{host: b, protocol: '4'}", "mqtt.protocol"),
                      ("{host: b, qos: 2}", "unknown key")):
        with pytest.raises(ConfigError, match=says):
            load(bad)


def test_edge_run_publishes_events_and_camera_state_and_status_shows_the_outbox(tmp_path, broker):
    """The real loop (models, a recorded walk-in of an enrolled person) with `mqtt:` set:
    build_bus wires the sink, the runner's snapshots become the retained camera state,
    and `edge status` shows the connection and the outbox."""
    import base64

    from edge.aip.v3 import AipFace
    from conftest import walking_frames
    from test_aip_v2 import A, photo

    metrics = free_port()
    (tmp_path / "edge.yaml").write_text(
        f"data_dir: {tmp_path / 'data'}\nmodels: {{dir: {REPO / 'models'}}}\n"
        f"run: {{liveness_control: NONE, status_interval_s: 0.5, metrics_port: {metrics}}}\n"
        f"events: {{attendance: false}}\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, node_id: t1, discovery: true}}\n"
        f"cameras:\n  - {{name: gate, kind: folder, uri: {tmp_path / 'frames'}, fps: 10, loop: true}}\n")
    cfg = load_config(tmp_path / "edge.yaml")
    assert AipFace("edge", "", "", config=cfg).addUser(base64.b64encode(photo(A, 1)).decode(), "BASE64",
                                                        "staff", "paul")["error_code"] == 0
    walking_frames(tmp_path / "frames", photo(A, 2), 20)
    state_topic = f"{PREFIX}/camera/gate/state"
    sub = Subscriber(broker.port, [f"{PREFIX}/#", "homeassistant/#"])
    assert sub.connected.wait(10)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cli = [sys.executable, "-m", "edge.cli", "--config", str(tmp_path / "edge.yaml")]
    proc = subprocess.Popen([*cli, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def recognised_state(s):
            states = [json.loads(p) for p in s.on(state_topic)]
            return any((st["last_event"] or {}).get("user_id") == "paul" for st in states)

        assert sub.wait_for(lambda s: any(json.loads(p)["user_id"] == "paul" for p in s.on(EVENTS)), 120)
        assert sub.wait_for(recognised_state, 30)
        assert sub.on(AVAILABLE)[:1] == [b"online"]
        assert any(t.startswith("homeassistant/sensor/t1/gate_") for t, _, _ in sub.messages)
        status = subprocess.run([*cli, "status"], capture_output=True, text=True, env=env, timeout=60)
        assert status.returncode == 0, status.stderr
        as_json = subprocess.run([*cli, "status", "--json"], capture_output=True, text=True, env=env, timeout=60)
        mqtt = json.loads(as_json.stdout.splitlines()[0])["sinks"]["mqtt"]
        assert mqtt["connected"] and mqtt["pending"] == 0 and mqtt["delivered"] >= 1
        assert f"mqtt 127.0.0.1:{broker.port}: connected since" in status.stdout
        print(*[line for line in status.stdout.splitlines() if line.startswith("mqtt ")])
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=30).read().decode()
        assert 'edge_events_connected{sink="mqtt"} 1.0' in text and 'edge_events_pending{sink="mqtt"} 0.0' in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    out = proc.stdout.read()
    assert "Traceback" not in out and f"mqtt: connected to 127.0.0.1:{broker.port}" in out
    assert sub.wait_for(lambda s: s.on(AVAILABLE)[-1:] == [b"offline"], 10)
    assert json.loads(sub.on(state_topic)[-1])["state"] == "stopped"   # the last state before offline
    assert Outbox(tmp_path / "data" / "run" / "mqtt-outbox.db").pending_count() == 0
    sub.close()
