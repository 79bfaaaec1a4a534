"""The systemd unit is valid as installed, and the installer does what it says."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from edge.models.manifest import REPO_ROOT

UNIT = REPO_ROOT / "config" / "edge.service"


def filled(tmp_path, text: str | None = None):
    prefix = tmp_path / "opt"
    (prefix / ".venv" / "bin").mkdir(parents=True)
    os.symlink(shutil.which("edge") or sys.executable, prefix / ".venv" / "bin" / "edge")
    text = (text or UNIT.read_text()).replace("@PREFIX@", str(prefix)).replace(
        "@CONFIG@", str(tmp_path / "edge.yaml")).replace("@DATA@", str(tmp_path / "data"))
    unit = tmp_path / "edge.service"
    unit.write_text(text)
    return unit


def verify(unit):
    return subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)


def test_unit_verifies_cleanly(tmp_path):
    result = verify(filled(tmp_path))
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    text = UNIT.read_text()
    for setting in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "User=edge", "NoNewPrivileges=yes",
                    "ProtectSystem=strict", "KillSignal=SIGTERM"):
        assert setting in text
    (tmp_path / "b").mkdir()
    broken = filled(tmp_path / "b", UNIT.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    assert "restart specifier" in verify(broken).stderr  # the check does catch a bad setting


def test_installer_dry_run_lists_every_step(tmp_path):
    run = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "install_service.sh"), "--dry-run",
                          "--prefix", str(tmp_path / "opt"), "--data", str(tmp_path / "data"),
                          "--config", str(tmp_path / "etc" / "edge.yaml"), "--unit-dir", str(tmp_path / "units")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    for step in ("make -C", "systemd-analyze verify", "systemctl enable --now edge.service",
                 f"write {tmp_path / 'etc' / 'edge.yaml'}"):
        assert step in run.stdout
