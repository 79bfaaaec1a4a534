"""The status files `edge status` reads (the loop's status.json, a follower's sync.json):
rewritten when what an operator acts on changes, otherwise every REFRESH_S, never fsynced.

Why: on a terminal's SD card every rewrite (a rename-over on ext4) costs a data block and
a journal commit, and frame counts, rates and contact times change every few seconds.
The file says how long it may wait (`refresh_s`), so `edge status` can tell a quiet
writer from a dead one. A power cut loses nothing: the next start rebuilds the file.
Under systemd `runtime_dir: /run/edge` (tmpfs) takes them off the card altogether
(docs/loop.md, "Writes on flash").
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from edge.fileio import atomic_open

log = logging.getLogger(__name__)

REFRESH_S = 30.0       # an unchanged status is rewritten this often (counters and rates only)
LOG_EVERY_S = 60.0     # a status file that cannot be written is logged this often


class StatusFile:
    """One status file. `substance` is whatever of a snapshot makes it worth a write
    before its refresh (compared by equality)."""

    def __init__(self, path: Path, interval_s: float):
        self.path = Path(path)
        self.refresh_s = max(REFRESH_S, interval_s)
        self.writes = 0
        self._written: tuple[float, object] = (float("-inf"), None)   # (monotonic time, its substance)
        self._logged = float("-inf")

    def due(self, substance: object) -> bool:
        written_at, last = self._written
        return time.monotonic() - written_at >= self.refresh_s or substance != last

    def offer(self, snap: dict, substance: object) -> bool:
        """Write `snap` if due; True when written."""
        return self.due(substance) and self.write(snap, substance)

    def write(self, snap: dict, substance: object = None) -> bool:
        """Write now (start, stop). A failure (no space, a runtime_dir that cannot be
        made) is logged once a minute, never raised: the door must keep working."""
        snap["refresh_s"] = self.refresh_s   # `edge status`'s staleness allowance
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(self.path, fsync=False) as fh:
                json.dump(snap, fh, indent=1)
        except OSError as exc:
            if time.monotonic() - self._logged >= LOG_EVERY_S:
                self._logged = time.monotonic()
                log.warning("cannot write the status file %s: %s", self.path, exc)
            return False
        self._written = (time.monotonic(), substance)
        self.writes += 1
        return True
