"""The list an app can ask for: which detect fields edge measures, which it answers null.

Served by `AipFace.capabilities()` (v2 and v3 clients) and `GET /rest/2.0/face/capabilities`.
"""
from __future__ import annotations

from edge.analysis.baidu import FACE_FIELDS, V3_FACE_FIELDS
from edge.analysis.unmeasured import V2_NOT_MEASURED, V3_NOT_MEASURED


def _part(fields, table) -> dict:
    return {"measured": [f for f in fields if f not in table],
            "not_measured": {f: {"answer": table[f][0], "reason": table[f][1]} for f in table}}


def capabilities() -> dict:
    """What edge measures of detect's fields and what it answers null, per SDK version."""
    return {"v2": {"detect": _part(FACE_FIELDS, V2_NOT_MEASURED)},
            "v3": {"detect": _part(V3_FACE_FIELDS, V3_NOT_MEASURED)},
            "not_evaluated": {"spoofing_control": "validated; every level passes (docs/api.md)"}}
