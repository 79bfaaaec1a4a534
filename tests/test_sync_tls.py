"""A terminal follows its hub over TLS and checks the hub's certificate (docs/sync.md):
a real hub `edge serve` with a certificate, the terminal's real follower. A hub whose
certificate the terminal's CA file does not vouch for (an impostor) is unreachable,
never followed."""
from __future__ import annotations

import dataclasses
import subprocess

import pytest

from edge.config import load_config
from edge.library.library import FaceLibrary
from edge.sync.config import SyncConfig
from edge.sync.follower import Follower
from sync_support import feed_key, free_port, hub_config, start


def certificate(folder, name):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(folder / f"{name}.key"),
                    "-out", str(folder / f"{name}.pem")], check=True, capture_output=True)
    return folder / f"{name}.pem"


@pytest.fixture(scope="module")
def tls_hub(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tls")
    cert = certificate(tmp, "hub")
    other = certificate(tmp, "impostor")
    port = free_port()
    cfg = hub_config(tmp / "hub", port)
    text = cfg.read_text().replace(f"port: {port}", f"port: {port}\n  tls_cert: {cert}\n  tls_key: {tmp / 'hub.key'}")
    cfg.write_text(text)
    hub = start(cfg)
    assert hub.url.startswith("https://")
    yield hub, cert, other, port
    hub.stop()


@pytest.mark.parametrize("ca,verify,outcome,error", [
    ("hub", True, "idle", None),                                   # the site's CA file: followed
    ("", True, "failed", "CERTIFICATE_VERIFY_FAILED"),             # the system's CAs do not know it
    ("impostor", True, "failed", "CERTIFICATE_VERIFY_FAILED"),     # another certificate's CA
    ("impostor", False, "idle", None),                             # verify: false (a lab only)
])
def test_follower_checks_the_hubs_certificate(tls_hub, tmp_path, ca, verify, outcome, error):
    hub, cert, other, port = tls_hub
    key, secret = feed_key("1001")
    cfg = dataclasses.replace(load_config(), data_dir=str(tmp_path), sync=SyncConfig(
        hub_url=f"https://127.0.0.1:{port}", app_id="1001", api_key=key, secret_key=secret, wait_s=0,
        ca_file=str({"hub": cert, "impostor": other}.get(ca, "")), verify=verify))
    lib = FaceLibrary(tmp_path / "apps" / "1001")
    try:
        follower = Follower(cfg, lambda: lib, "m")
        assert follower.step() == outcome
        st = follower.status()
        if error:
            assert st["state"] == "unreachable" and error in st["last_error"] and lib.store.replica_state() is None
        else:
            assert st["state"] == "following" and st["hub_reachable"] and lib.store.replica_state()["seq"] == 0
    finally:
        lib.close()
