"""`edge run` as the service runs it: systemd notifications, status, events, clean stop."""
from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from edge.aip.v3 import AipFace
from edge.config import load_config
from edge.models.manifest import REPO_ROOT
from conftest import loop_on_blank_frames, walking_frames
from test_aip_v2 import A, photo


def test_edge_run_notifies_systemd_reports_status_and_stops_cleanly(tmp_path):
    with socket.socket() as probe:  # a free port for the metrics endpoint
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # a library with Paul, and a recorded sequence of him walking in (an image folder source)
    (tmp_path / "edge.yaml").write_text(
        f"data_dir: {tmp_path / 'data'}\nmodels: {{dir: {REPO_ROOT / 'models'}}}\n"
        f"run: {{liveness_control: NONE, status_interval_s: 0.5, metrics_port: {port}}}\n"
        f"events: {{log_file: {tmp_path / 'events.jsonl'}}}\n"
        f"cameras:\n  - {{name: gate, kind: folder, uri: {tmp_path / 'frames'}, fps: 10, loop: true}}\n")
    cfg = load_config(tmp_path / "edge.yaml")
    assert AipFace("edge", "", "", config=cfg).addUser(base64.b64encode(photo(A, 1)).decode(), "BASE64",
                                                        "staff", "paul")["error_code"] == 0
    walking_frames(tmp_path / "frames", photo(A, 2), 20)

    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(60)
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "--config", str(tmp_path / "edge.yaml"), "run"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        messages = []
        while not any(m.startswith("WATCHDOG=1") for m in messages):
            messages.append(notify.recv(4096).decode())
        assert messages[0] == "READY=1"
        deadline = time.monotonic() + 60
        events = []
        while time.monotonic() < deadline and not events:
            time.sleep(0.5)
            if (tmp_path / "events.jsonl").exists():
                events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
        assert events and events[0]["kind"] == "recognised" and events[0]["user_id"] == "paul"
        status = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(tmp_path / "edge.yaml"),
                                 "status", "--json"], capture_output=True, text=True, env=env, timeout=60)
        assert status.returncode == 0, status.stderr
        gate = json.loads(status.stdout)["cameras"]["gate"]
        library = json.loads(status.stdout)["library"]   # what the library size and threshold mean
        assert library["faces"] >= 1 and library["derived"] and library["score"] >= 80
        assert library["summary"].startswith(f"library {library['faces']} faces in groups all; threshold ")
        assert gate["state"] == "streaming" and gate["frames"] > 0 and gate["events"]["recognised"] >= 1
        worker = gate["embed_worker"]   # the embedding ran on its worker thread (the service default)
        assert worker["mode"] == "thread" and worker.get("done", 0) >= 2 and not worker.get("failed")
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
        assert 'edge_camera_state{camera="gate",state="streaming"} 1.0' in metrics
        assert 'edge_loop_events_total{camera="gate",kind="recognised"}' in metrics
        assert 'edge_loop_stage_ms{camera="gate",stage="detect"}' in metrics
        assert 'edge_loop_embed_queue{camera="gate"}' in metrics
        assert 'edge_loop_embed_jobs_total{camera="gate",outcome="done"}' in metrics
        assert f"edge_loop_match_score {library['score']}" in metrics and "edge_library_outgrown 0.0" in metrics
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        while not any(m.startswith("STOPPING=1") for m in messages):
            messages.append(notify.recv(4096).decode())
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()
    out = proc.stdout.read()
    assert "Traceback" not in out and "edge run: stopping" in out
    # attendance was recorded in the local database
    from edge.events import AttendanceStore
    records = AttendanceStore(tmp_path / "data" / "attendance.db").records()
    assert [r.user_id for r in records][:1] == ["paul"]
    export = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(tmp_path / "edge.yaml"), "attendance",
                             "--since", time.strftime("%Y-%m-%d")], capture_output=True, text=True, env=env, timeout=60)
    assert export.returncode == 0 and export.stdout.splitlines()[1].count("paul") == 1, export.stdout


def test_edge_run_rewrites_an_unchanged_status_file_rarely_and_status_stays_fresh(tmp_path):
    """Flash wear (issue 16): frames with no face change nothing an operator acts on, so
    the status file is not rewritten every status_interval_s (0.5 s here: ~16 times in 8 s
    before), and `edge status` still calls the loop running while the file waits."""
    proc = loop_on_blank_frames(tmp_path)
    status_file = tmp_path / "data" / "run" / "status.json"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (status_file.exists()
                                                   and json.loads(status_file.read_text())["cameras"]["gate"]
                                                   ["state"] == "streaming"):
            time.sleep(0.1)
        versions, end = set(), time.monotonic() + 8
        while time.monotonic() < end:
            st = status_file.stat()
            versions.add((st.st_ino, st.st_mtime_ns))
            time.sleep(0.1)
        assert len(versions) <= 3, f"{len(versions)} status writes in 8 s"
        status = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(tmp_path / "edge.yaml"),
                                 "status", "--json"], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        assert status.returncode == 0, status.stderr
        snap = json.loads(status.stdout)
        assert snap["age_s"] > 3 and snap["cameras"]["gate"]["state"] == "streaming"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in proc.stdout.read()
    assert json.loads(status_file.read_text())["cameras"]["gate"]["frames"] > 40   # the last status, at the stop
