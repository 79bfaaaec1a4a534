"""Test helpers for sync (docs/sync.md): hub and terminal configs, real `edge serve`
processes on fixed loopback ports (a hub restarts on its own port), library dumps."""
from __future__ import annotations

import base64
import hashlib
import json
import socket
import time
from pathlib import Path

import numpy as np
import requests
import yaml

from edge.aip.runtime import Runtime
from edge.config import load_config
from edge.library.store import FaceRecord, LibraryStore
from edge.server.auth import sign_bce
from edge.server.process import ServerProcess, spawn
from edge.sync.protocol import FEED_PATH

HUB_APPS = {"1001": {"api_key": "AK1001hub", "secret_key": "SK1001-hub-secret", "qps": 1000,
                     "feed_keys": [{"api_key": "FK1001door", "secret_key": "FS1001-door-secret"},
                                   {"api_key": "PK1001kiosk", "secret_key": "PS1001-kiosk-secret",
                                    "scope": "feed+push"}]},
            "2002": {"api_key": "AK2002hub", "secret_key": "SK2002-hub-secret",
                     "feed_keys": [{"api_key": "FK2002door", "secret_key": "FS2002-door-secret"}]},
            "3003": {"api_key": "AK3003hub", "secret_key": "SK3003-hub-secret",
                     "feed_keys": [{"api_key": "FK3003door", "secret_key": "FS3003-door-secret"},
                                   {"api_key": "PK3003kiosk", "secret_key": "PS3003-kiosk-secret",
                                    "scope": "feed+push"}]}}
TERMINAL_APP = {"api_key": "AKlocal", "secret_key": "SKlocal-secret", "qps": 1000}


def feed_key(app_id: str) -> tuple[str, str]:
    key = HUB_APPS[app_id]["feed_keys"][0]
    return key["api_key"], key["secret_key"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def models_dir() -> str:
    return str(load_config().models_dir)


def write_config(folder: Path, body: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "edge.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(folder / "data"), "models": {"dir": models_dir()}, **body}))
    return path


def hub_config(folder: Path, port: int) -> Path:
    return write_config(folder, {"server": {"port": port}, "apps": HUB_APPS})


def push_key(app_id: str = "1001") -> tuple[str, str]:
    """The app's feed key with scope feed+push (a reception kiosk's)."""
    key = next(k for k in HUB_APPS[app_id]["feed_keys"] if k.get("scope") == "feed+push")
    return key["api_key"], key["secret_key"]


def terminal_config(folder: Path, hub_url: str, app_id: str = "1001", groups: str = "", **sync) -> Path:
    key, secret = push_key(app_id) if sync.get("push") else feed_key(app_id)
    return write_config(folder, {
        "server": {"port": 0}, "apps": {app_id: TERMINAL_APP},
        "sync": {"hub_url": hub_url, "app_id": app_id, "api_key": key, "secret_key": secret, "groups": groups,
                 "wait_s": 20, "backoff_min_s": 0.2, "backoff_max_s": 1.0, "status_interval_s": 0.3, **sync}})


def start(config: Path) -> ServerProcess:
    return spawn(config, cwd=config.parent, timeout=120)


def token(url: str, key: str, secret: str) -> str:
    r = requests.get(f"{url}/oauth/2.0/token", params={"grant_type": "client_credentials", "client_id": key,
                                                       "client_secret": secret}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def v3(url: str, tok: str, path: str, body: dict) -> dict:
    return requests.post(f"{url}/rest/2.0/face/v3/{path}", params={"access_token": tok}, json=body,
                         timeout=60).json()


def signed_feed(url: str, key: str, secret: str, params: dict, path: str = FEED_PATH) -> requests.Response:
    """GET the feed (or the snapshot) with a bce-auth-v1 signature, as a follower sends it."""
    host = url.split("://", 1)[1]
    items = sorted(params.items())
    auth = sign_bce(key, secret, method="GET", path=path, query=items, host=host, now=time.time())
    return requests.get(url + path, params=items, headers={"Authorization": auth}, timeout=60)


def store_of(data_dir: Path, app_id: str) -> LibraryStore:
    return LibraryStore(Path(data_dir) / "apps" / app_id / "library.db")


def dump(data_dir: Path, app_id: str) -> dict:
    store = store_of(data_dir, app_id)
    try:
        return store.dump()
    finally:
        store.close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unit(seed: str, dim: int = 128) -> np.ndarray:
    v = np.random.default_rng(int(hashlib.md5(seed.encode()).hexdigest()[:12], 16)).standard_normal(dim)
    return (v / np.linalg.norm(v)).astype(np.float32)


def synthetic(user_id: str, model: str, n: int = 0) -> FaceRecord:
    return FaceRecord(hashlib.md5(f"{user_id}/{n}".encode()).hexdigest(), unit(f"{user_id}/{n}"), model)


def wait_until(predicate, timeout: float = 30.0, step: float = 0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


HUB_KEY, HUB_SECRET = HUB_APPS["1001"]["api_key"], HUB_APPS["1001"]["secret_key"]


class Site:
    """A real hub of app 1001 and two real terminals on loopback: t1 follows every group,
    t2 only `staff`; with `push`, both send their own enrolments up (docs/sync.md)."""

    def __init__(self, root, push: bool = False):
        self.root, self.port = root, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.hub_config = hub_config(root / "hub", self.port)
        self.hub = start(self.hub_config)
        self.t1 = self.t2 = None
        extra = {"push": True} if push else {}
        try:
            self.t1_config = terminal_config(root / "t1", self.url, **extra)
            self.t1 = start(self.t1_config)
            self.t2 = start(terminal_config(root / "t2", self.url, groups="staff", **extra))
            self.model = Runtime(load_config(self.hub_config)).model_id
            self.hub_token = token(self.url, HUB_KEY, HUB_SECRET)
        except BaseException:
            self.stop()
            raise

    @property
    def terminals(self):
        return (self.t1, self.t2)

    def tok(self, terminal) -> str:
        return token(terminal.url, TERMINAL_APP["api_key"], TERMINAL_APP["secret_key"])

    def hub_call(self, path: str, body: dict) -> dict:
        out = v3(self.url, self.hub_token, path, body)
        assert out["error_code"] == 0, out
        return out

    def search(self, terminal, name: str, i: int, groups: str) -> dict:
        from test_aip_v2 import photo   # the LFW photo files (a test module: imported by tests only)
        return v3(terminal.url, self.tok(terminal), "search",
                  {"image": b64(photo(name, i)), "image_type": "BASE64", "group_id_list": groups,
                   "match_threshold": 80})

    def found(self, terminal, name: str, i: int, groups: str):
        """(user_id, score) of the best match over 80 on that terminal, or None."""
        users = (self.search(terminal, name, i, groups).get("result") or {}).get("user_list") or []
        return (users[0]["user_id"], users[0]["score"]) if users else None

    def data(self, which: str):
        return self.root / which / "data"

    def status(self, which: str) -> dict:
        path = self.data(which) / "run" / "sync.json"
        return json.loads(path.read_text())["sync"]["1001"] if path.exists() else {}

    def converged(self) -> bool:
        """t1 holds the hub's whole library, t2 its staff group."""
        hub = dump(self.data("hub"), "1001")
        staff = {"groups": [g for g in hub["groups"] if g == "staff"],
                 "members": [m for m in hub["members"] if m[0] == "staff"],
                 "faces": [f for f in hub["faces"] if f[0] == "staff"]}
        return dump(self.data("t1"), "1001") == hub and dump(self.data("t2"), "1001") == staff

    def stop(self):
        for proc in (self.t1, self.t2, self.hub):
            if proc is not None:
                proc.stop()
