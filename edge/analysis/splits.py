"""The tuning / report split of LFW people that every measured field uses.

A person's photos all fall on one side (by a hash of the name), so no face seen while
fitting or setting a threshold is scored in a report.
"""
from __future__ import annotations

import zlib


def tuning_half(person: str) -> bool:
    return zlib.crc32(person.encode()) % 2 == 0
