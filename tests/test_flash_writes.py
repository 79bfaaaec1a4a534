"""Flash wear (issue 16, docs/loop.md "Writes on flash"): what a terminal writes when
nothing happens. A follower's idle long-polls commit nothing; the status files wait for
their refresh unless their substance changes and live in runtime_dir, where `edge status`
finds them; a large index is not rewritten at close for a few changes. Real hub, real
`edge serve` / `edge run` processes, real SQLite files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import yaml

import edge.library.library as library_module
from edge.config import load_config
from edge.library.index import read_manifest
from edge.library.library import INDEX_DIR, FaceLibrary
from edge.models.manifest import REPO_ROOT
from edge.sync.follower import Follower
from sync_support import (HUB_KEY, HUB_SECRET, b64, free_port, hub_config, start, synthetic, terminal_config, token,
                          v3, wait_until)
from conftest import loop_on_blank_frames
from test_aip_v2 import A, photo


def _version(path):
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


def edge_status(config) -> tuple[int, dict | None, str]:
    out = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(config), "status", "--json"],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    return out.returncode, json.loads(out.stdout.splitlines()[0]) if out.stdout else None, out.stderr


def test_an_idle_follower_commits_nothing_and_its_status_file_waits_for_a_change(tmp_path):
    port = free_port()
    hub = start(hub_config(tmp_path / "hub", port))
    url = f"http://127.0.0.1:{port}"
    try:
        cfg = load_config(terminal_config(tmp_path / "t", url))
        lib = FaceLibrary(tmp_path / "t" / "data" / "apps" / "1001")
        follower = Follower(cfg, lambda: lib, "m")
        try:
            assert follower.step(wait_s=0) == "idle"       # the first page: the cursor is committed
            wal = lib.store.path.with_name("library.db-wal")
            before, seq = _version(wal), lib.store.last_seq()
            follower.write_status()
            status = cfg.runtime_path / "sync.json"
            written = _version(status)
            assert json.loads(status.read_text())["refresh_s"] == 30.0   # edge status's allowance
            for _ in range(5):                              # idle long-polls (answered at once: wait 0)
                assert follower.step(wait_s=0) == "idle"
                follower.write_status(force=False)
                time.sleep(0.05)
            assert _version(wal) == before and lib.store.last_seq() == seq, "an idle poll wrote the library"
            assert _version(status) == written, "sync.json rewritten for contact times alone"
            tok = token(url, HUB_KEY, HUB_SECRET)
            assert v3(url, tok, "faceset/user/add", {"image": b64(photo(A, 1)), "image_type": "BASE64",
                                                     "group_id": "staff", "user_id": "paul"})["error_code"] == 0
            assert follower.step(wait_s=0) == "applied"
            assert _version(wal) != before and lib.store.last_seq() > seq   # a real change is committed
            follower.write_status(force=False)
            assert _version(status) != written and json.loads(status.read_text())["sync"]["1001"]["cursor"] > 0
        finally:
            follower.stop()
            lib.close()
    finally:
        hub.stop()


def test_edge_serve_follower_status_in_runtime_dir_found_by_edge_status(tmp_path):
    port = free_port()
    hub = start(hub_config(tmp_path / "hub", port))
    try:
        config = terminal_config(tmp_path / "t", f"http://127.0.0.1:{port}", wait_s=1)
        body = yaml.safe_load(config.read_text())
        body["runtime_dir"] = str(tmp_path / "rt")   # /run/edge under systemd (tmpfs)
        config.write_text(yaml.safe_dump(body))
        term = start(config)
        try:
            code, snap, err = wait_until(lambda: (lambda r: r if r[1] and r[1]["sync"]["1001"]["hub_reachable"]
                                                  else None)(edge_status(config)), timeout=30) or edge_status(config)
            assert code == 0, err
            assert snap["sync"]["1001"]["hub_reachable"] is True and snap["refresh_s"] == 30.0
            assert (tmp_path / "rt" / "sync.json").exists()
            assert not (tmp_path / "t" / "data" / "run" / "sync.json").exists()
        finally:
            term.stop()
    finally:
        hub.stop()


def test_edge_run_keeps_its_status_in_runtime_dir_and_edge_status_finds_it(tmp_path):
    proc = loop_on_blank_frames(tmp_path, "runtime_dir: rt\n")
    status_file = tmp_path / "rt" / "status.json"   # a relative runtime_dir: against the config file's folder
    try:
        assert wait_until(lambda: status_file.exists(), timeout=90), "no status file in runtime_dir"
        code, snap, err = edge_status(tmp_path / "edge.yaml")
        assert code == 0, err
        assert snap["cameras"]["gate"]["state"] in ("starting", "streaming")
        assert not (tmp_path / "data" / "run" / "status.json").exists()
        proc.terminate()
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in proc.stdout.read()


def test_a_large_index_is_saved_at_close_only_once_a_share_of_it_changed(tmp_path, monkeypatch):
    """A 1M-face terminal would write ~1.25 GB at every stop for a few new faces; the
    next start replays them from the change log instead: nothing committed is lost."""
    monkeypatch.setattr(library_module, "CLOSE_SAVE_ALWAYS_FACES", 10)   # 300 faces stand for a large index
    lib = FaceLibrary(tmp_path / "app")
    lib.register_many([(["staff"], f"u{i}", "", synthetic(f"u{i}", "m"), "append") for i in range(300)])
    lib.close()   # 300 new faces: saved
    saved = read_manifest(tmp_path / "app" / INDEX_DIR)["meta"]["seq"]
    lib = FaceLibrary(tmp_path / "app")
    lib.register(["staff"], "late0", "", synthetic("late0", "m"))   # 1 change < 1 % of 301 faces
    lib.close()
    assert read_manifest(tmp_path / "app" / INDEX_DIR)["meta"]["seq"] == saved, "saved for one face"
    lib = FaceLibrary(tmp_path / "app")
    assert lib.index_source == "loaded" and len(lib.index) == 301   # the change replayed from the log
    hit = lib.search(synthetic("late0", "m").embedding, None, 1)
    assert hit and hit[0].user_id == "late0"
    for i in range(1, 4):   # 1 replayed + 3 new = 4 >= 1 % of 304
        lib.register(["staff"], f"late{i}", "", synthetic(f"late{i}", "m"))
    last = lib.store.last_seq()
    lib.close()
    assert read_manifest(tmp_path / "app" / INDEX_DIR)["meta"]["seq"] == last


def test_onnxruntime_keeps_no_telemetry_store_on_the_card(tmp_path):
    """onnxruntime's wheels write a telemetry store under ~/.cache/Microsoft at every
    session start (for upload); edge turns it off before onnxruntime initialises."""
    code = ("from edge.models.runtime import create_session; import numpy as np; "
            f"s = create_session({str(REPO_ROOT / 'models' / 'face_recognition_sface_2021dec.onnx')!r}, 1); "
            "s.run(None, {s.get_inputs()[0].name: np.zeros((1, 3, 112, 112), np.float32)})")
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**env, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / ".cache"),
                              "PYTHONPATH": str(REPO_ROOT)})
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / ".cache").exists(), sorted(str(p) for p in (tmp_path / ".cache").rglob("*"))
