#!/usr/bin/env python3
"""Local enrollment: `python scripts/enroll.py FOLDER [--app-id ID] ...` is `edge enroll`.

FOLDER holds <group>/<user>/*.jpg; every photo is reported as enrolled, already
enrolled or rejected (with its Baidu error code), and faces matching another enrolled
person get a warning. Safe to re-run."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["enroll", *sys.argv[1:]]))
