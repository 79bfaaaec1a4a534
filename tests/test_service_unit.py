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
                    "ProtectSystem=strict", "KillSignal=SIGTERM", "RuntimeDirectory=edge\n"):
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
                 f"write {tmp_path / 'etc' / 'edge.yaml'}", "runtime_dir: /run/edge"):
        assert step in run.stdout


# The devices a Raspberry Pi terminal opens, and the kernel's name for each one's major
# number (/proc/devices), which a DeviceAllow=char-NAME rule matches.
PI_DEVICES = {
    "/dev/video0": "video4linux",          # libcamera's ISP and unicam nodes, a USB camera
    "/dev/v4l-subdev0": "video4linux",     # the sensor, opened by libcamera
    "/dev/media0": "media",                # libcamera enumerates cameras through these
    "/dev/dma_heap/linux,cma": "dma_heap", # picamera2's frame buffers
    "/dev/gpiochip0": "gpiochip",          # gpiozero/lgpio on a Pi 4, and a Pi 5 on 6.6 kernels
    "/dev/gpiochip4": "gpiochip",          # the Pi 5's RP1 header on older kernels
    "/dev/gpiomem": None,                  # register access on a Pi 4 (a path rule)
    "/dev/gpiomem0": None,                 # ... and on a Pi 5 (RP1)
}


def device_rules(text: str) -> list[tuple[str, str]]:
    rules = []
    for line in text.splitlines():
        if line.startswith("DeviceAllow="):
            target, access = line.split("=", 1)[1].split()
            rules.append((target, access))
    return rules


def test_unit_allows_the_pi_camera_and_gpio_devices_and_nothing_else():
    text = UNIT.read_text()
    assert "DevicePolicy=closed" in text and "PrivateDevices=yes" not in text
    rules = device_rules(text)
    for path, major_name in PI_DEVICES.items():
        want = f"char-{major_name}" if major_name else path
        assert (want, "rw") in rules, f"{path} is not allowed by the unit"
    allowed_names = {t for t, _ in rules if t.startswith("char-")}
    assert allowed_names == {f"char-{n}" for n in PI_DEVICES.values() if n}, "a device class nobody needs"
    # A group a box lacks (gpio on x86) named in SupplementaryGroups= would stop the unit
    # from starting; the installer adds the groups that exist instead.
    assert not any(line.startswith("SupplementaryGroups=") for line in text.splitlines())
    installer = (REPO_ROOT / "scripts" / "install_service.sh").read_text()
    assert "for g in video gpio" in installer
