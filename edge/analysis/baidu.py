"""Render Face records as Baidu v2 `detect` JSON (see ../shared/docs, 人脸检测).

Only the fields the engine measures honestly are emitted: `beauty` and `glasses` are
left out (no permissively licensed model exists, MODELS.md), whatever face_fields asks.
"""
from __future__ import annotations

import dataclasses

from edge.analysis import meshmap
from edge.analysis.face import Face
from edge.analysis.orientation import rotated_rect
from edge.thresholds import COMPLETE_TOLERANCE

FACE_FIELDS = ("age", "beauty", "expression", "faceshape", "gender", "glasses", "landmark",
               "qualities", "faceliveness")
UNSUPPORTED_FIELDS = frozenset({"beauty", "glasses"})


def parse_face_fields(value: str | None) -> set[str]:
    return {f.strip() for f in (value or "").split(",") if f.strip()}


def stages_for(fields: set[str]) -> set[str]:
    """Analyser stages a set of face_fields needs (pose needs the mesh)."""
    stages = {"landmarks"}
    if fields & {"age", "gender", "expression", "faceshape"}:
        stages.add("attributes")
    if "qualities" in fields:
        stages.add("quality")
    if "faceliveness" in fields:
        stages.add("liveness")
    return stages


def _pts(arr) -> list[dict]:
    return [{"x": float(x), "y": float(y)} for x, y in arr]


def location(face: Face) -> dict:
    """The face's box turned by its rotation: left/top is the face's own top-left corner
    (docs/api.md, Choices); on an upright face rolled r deg, about height/2 x sin r from
    the detector's corner."""
    x1, y1, w, h = rotated_rect(face.box, face.upright_size, round(face.roll))
    return {"left": round(x1, 2), "top": round(y1, 2), "width": round(w, 2),
            "height": round(h, 2)}


def qualities(q) -> dict:
    """v2's `qualities` object of a Quality record."""
    return {"occlusion": dataclasses.asdict(q.occlusion), "blur": q.blur, "illumination": q.illumination,
            "completeness": q.completeness}


def face_to_baidu(face: Face, fields: set[str]) -> dict:
    out = {"location": location(face), "face_probability": round(face.score, 4),
           "rotation_angle": int(round(face.roll)),
           "yaw": face.yaw, "pitch": face.pitch, "roll": face.roll}
    if "age" in fields and face.age is not None:
        out["age"] = face.age
    if "expression" in fields and face.expression is not None:
        out["expression"] = face.expression
        out["expression_probability"] = face.expression_probability
    if "faceshape" in fields and face.faceshape:
        out["faceshape"] = face.faceshape
    if "gender" in fields and face.gender is not None:
        out["gender"] = face.gender
        out["gender_probability"] = face.gender_probability
    if "landmark" in fields and face.mesh is not None:
        out["landmark"] = _pts(meshmap.landmark4(face.mesh))
        out["landmark72"] = _pts(meshmap.landmark72(face.mesh))
    if "qualities" in fields and face.quality is not None:
        out["qualities"] = qualities(face.quality)
    if "faceliveness" in fields and face.liveness is not None:
        out["faceliveness"] = face.liveness
    return out


# -- v3 detect (face_field) ---------------------------------------------------------
V3_FACE_FIELDS = ("age", "beauty", "expression", "face_shape", "gender", "glasses", "landmark",
                  "landmark72", "landmark150", "quality", "eye_status", "emotion", "face_type", "mask",
                  "spoofing", "liveness")
V3_UNSUPPORTED = frozenset({"beauty", "glasses", "landmark150", "eye_status", "emotion", "face_type", "mask",
                            "spoofing"})
V3_EXPRESSIONS = ("none", "smile", "laugh")


# v3 face_field names that differ from v2's face_fields.
V3_TO_V2_FIELDS = {"face_shape": "faceshape", "quality": "qualities", "liveness": "faceliveness",
                   "landmark72": "landmark"}


def v3_stages_for(fields: set[str]) -> set[str]:
    return stages_for({V3_TO_V2_FIELDS.get(f, f) for f in fields})


def v3_location(face: Face) -> dict:
    return {**location(face), "rotation": int(round(face.roll))}


def face_to_v3(face: Face, fields: set[str], face_token: str) -> dict:
    """One face of v3 detect's face_list (unsupported fields are left out, as in v2)."""
    out = {"face_token": face_token, "location": v3_location(face), "face_probability": round(face.score, 4),
           "angle": {"yaw": face.yaw, "pitch": face.pitch, "roll": face.roll}}
    if "age" in fields and face.age is not None:
        out["age"] = int(round(face.age))
    if "expression" in fields and face.expression is not None:
        out["expression"] = {"type": V3_EXPRESSIONS[face.expression], "probability": face.expression_probability}
    if "face_shape" in fields and face.faceshape:
        best = max(face.faceshape, key=lambda s: s["probability"])
        out["face_shape"] = dict(best)
    if "gender" in fields and face.gender is not None:
        out["gender"] = {"type": face.gender, "probability": face.gender_probability}
    if fields & {"landmark", "landmark72"} and face.mesh is not None:
        out["landmark"] = _pts(meshmap.landmark4(face.mesh))
        out["landmark72"] = _pts(meshmap.landmark72(face.mesh))
    if "quality" in fields and face.quality is not None:
        q = face.quality
        occ = dataclasses.asdict(q.occlusion)
        occ["chin_contour"] = occ.pop("chin")
        out["quality"] = {"occlusion": occ, "blur": q.blur, "illumination": q.illumination,
                          "completeness": int(q.completeness + COMPLETE_TOLERANCE >= 1.0)}
    if "liveness" in fields and face.liveness is not None:
        out["liveness"] = {"livemapscore": face.liveness}
    return out
