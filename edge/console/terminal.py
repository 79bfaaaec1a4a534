"""A real `edge run` on the demo camera with its console, for the browser tests and
scripts/bench_live.py: started in a folder of its own, its address and first admin
password read from what it prints, stopped with SIGTERM."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from edge.models.manifest import REPO_ROOT

CONSOLE_LINE = re.compile(r"edge run: console on (\S+)/console/")
PASSWORD_LINE = re.compile(r"edge run: first start: console user admin, password (\S+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Terminal:
    proc: subprocess.Popen
    folder: Path
    url: str
    password: str

    @property
    def output(self) -> str:
        return (self.folder / "out.txt").read_text(errors="replace")

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


def start_terminal(folder: Path, run_yaml: str = "", timeout: float = 120.0, fps: float = 0.0) -> Terminal:
    """`edge run` on the demo camera (at `fps`; 0: its own 15) serving on a free loopback
    port; `run_yaml`: more `run:` keys, e.g. "liveness_control: NONE"."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (folder / "edge.yaml").write_text(
        f"data_dir: {folder / 'data'}\nmodels: {{dir: {REPO_ROOT / 'models'}}}\n"
        f"server: {{port: {port}}}\nrun: {{status_interval_s: 1{', ' + run_yaml if run_yaml else ''}}}\n"
        f"cameras:\n  - {{name: demo, kind: demo, fps: {fps}}}\n")
    out = open(folder / "out.txt", "w")
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "--config", str(folder / "edge.yaml"), "run"],
                            stdout=out, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    out.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        text = (folder / "out.txt").read_text(errors="replace")
        url, pw = CONSOLE_LINE.search(text), PASSWORD_LINE.search(text)
        if url and pw and "camera demo: streaming" in text:
            return Terminal(proc, folder, url.group(1), pw.group(1))
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"edge run did not start its console: {(folder / 'out.txt').read_text()[-2000:]}")
