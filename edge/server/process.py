"""`edge serve` as a child process, for the tests and the load benchmark.

Starts `python -m edge.cli --config FILE serve`, waits for its "listening on URL" line,
and keeps draining its output (so the pipe never fills) into `lines`.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from edge.models.manifest import REPO_ROOT


@dataclass
class ServerProcess:
    url: str
    proc: subprocess.Popen
    config_path: Path
    lines: list = field(default_factory=list)  # what it logged (appended by a drain thread)

    def log_text(self) -> str:
        return "\n".join(self.lines)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (in-flight requests finish), SIGKILL if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def spawn(config_path: Path, *, cwd: Path, timeout: float = 120.0) -> ServerProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    env.pop("EDGE_APPS", None)  # the config file alone decides the apps
    proc = subprocess.Popen([sys.executable, "-m", "edge.cli", "--config", str(config_path), "serve"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=str(cwd), text=True)
    srv = ServerProcess("", proc, Path(config_path))
    found = threading.Event()

    def drain():
        for line in proc.stdout:
            srv.lines.append(line.rstrip("\n"))
            if not found.is_set():
                m = re.search(r"listening on (https?://\S+)", line)
                if m:
                    srv.url = m.group(1)
                    found.set()
        found.set()

    threading.Thread(target=drain, daemon=True).start()
    if not found.wait(timeout) or not srv.url:
        srv.stop()
        raise RuntimeError("edge serve did not start:\n" + srv.log_text())
    return srv
