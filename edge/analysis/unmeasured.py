"""Which detect fields edge measures, and what it answers for those it cannot.

An app written against Baidu reads the fields it asked for; a missing key crashes it
(KeyError), and a made-up number would mislead it silently. So a field edge cannot
measure honestly is answered **present and null** (Python None) in the shape Baidu
documents: a number or string field is null, an object field keeps its keys with null
values. The first time a process is asked for one, it logs a warning naming it; the
list is served by `AipFace.capabilities()` (both SDK versions) and by
`GET /rest/2.0/face/capabilities` (edge.analysis.capabilities; docs/fields.md,
docs/api.md "Choices").
"""
from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)

WHY_NO_MODEL = "no permissively licensed model ships and no measurement of it stands (docs/fields.md)"

# field -> (its null answer, the reason). v2 names first, then v3's.
V2_NOT_MEASURED: dict[str, tuple[object, str]] = {
    "beauty": (None, "an attractiveness score is a judgement learned from raters; " + WHY_NO_MODEL),
}
V3_NOT_MEASURED: dict[str, tuple[object, str]] = {
    "beauty": (None, V2_NOT_MEASURED["beauty"][1]),
    "eye_status": ({"left_eye": None, "right_eye": None}, "eye openness is not calibrated to Baidu's 0..1 yet"),
    "emotion": ({"type": None, "probability": None}, "seven-class emotion needs a learned model; " + WHY_NO_MODEL),
    "mask": ({"type": None, "probability": None}, "no mask classifier ships; qualities' occlusion sees masks"),
    "spoofing": (None, "no synthetic-image (PS / face-swap) detector ships; spoofing_control is not evaluated"),
    "landmark150": (None, "the 150-point layout is not mapped from the 468-point mesh"),
}

_warned: set[tuple[str, str]] = set()
_lock = threading.Lock()


def null_fields(version: str, asked: set[str]) -> dict[str, object]:
    """The null answers for the unmeasured fields among `asked`, logged once per process each."""
    table = V2_NOT_MEASURED if version == "v2" else V3_NOT_MEASURED
    out = {}
    for name in sorted(asked & table.keys()):
        value, why = table[name]
        out[name] = dict(value) if isinstance(value, dict) else value
        with _lock:
            first = (version, name) not in _warned
            _warned.add((version, name))
        if first:
            log.warning("detect field %s (%s) is not measured by edge and is answered null: %s",
                        name, version, why)
    return out
