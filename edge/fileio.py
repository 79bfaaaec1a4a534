"""Files that readers never see half-written (a sibling temp file, then a rename), and
files moved out of the way rather than deleted."""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


@contextmanager
def atomic_open(path: Path | str, mode: str = "w", *, fsync: bool = True, **kwargs) -> Iterator[IO]:
    """Open `<path>.tmp` for writing; on a clean exit it replaces `path` (after an fsync
    unless fsync=False: a status file that is rewritten every few seconds need not
    survive a power cut, a model or an export must). On an error the temp file goes."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path | str, data: bytes, *, fsync: bool = True) -> None:
    with atomic_open(path, "wb", fsync=fsync) as fh:
        fh.write(data)


def set_aside(path: Path | str, tag: str, sidecars: tuple[str, ...] = ()) -> Path:
    """Rename a file or folder (and its `<name><sidecar>` companions) to
    `<name>.<tag>-<UTC time>`, never overwriting an earlier one: damaged or orphaned
    data is kept for the operator, not deleted. Returns the new path."""
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest, n = path.with_name(f"{path.name}.{tag}-{stamp}"), 1
    while any(dest.with_name(dest.name + s).exists() for s in ("", *sidecars)):
        n += 1
        dest = path.with_name(f"{path.name}.{tag}-{stamp}.{n}")
    for suffix in ("", *sidecars):
        src = path.with_name(path.name + suffix)
        if src.exists() or src.is_symlink():
            os.replace(src, dest.with_name(dest.name + suffix))
    return dest
