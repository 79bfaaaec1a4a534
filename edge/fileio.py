"""Files that readers never see half-written: write a sibling temp file, then rename."""
from __future__ import annotations

import os
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
