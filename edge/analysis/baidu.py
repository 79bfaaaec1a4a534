"""Render Face records as Baidu v2 `detect` JSON (see ../shared/docs, 人脸检测).

A field asked for that the engine cannot measure honestly (`beauty`; v3 also
eye_status, emotion, mask, spoofing, landmark150) is answered present and null, never
with a made-up number (edge.analysis.unmeasured; docs/fields.md).
"""
from __future__ import annotations

import dataclasses

from edge.analysis import meshmap
from edge.analysis.face import Face
from edge.analysis.orientation import rotated_rect
from edge.analysis.unmeasured import null_fields
from edge.thresholds import COMPLETE_TOLERANCE

FACE_FIELDS = ("age", "beauty", "expression", "faceshape", "gender", "glasses", "landmark",
               "qualities", "faceliveness")


def parse_face_fields(value: str | None) -> set[str]:
    return {f.strip() for f in (value or "").split(",") if f.strip()}


def stages_for(fields: set[str]) -> set[str]:
    """Analyser stages a set of face_fields needs (pose needs the mesh)."""
    stages = {"landmarks"}
    if fields & {"age", "gender", "expression", "faceshape"}:
        stages.add("attributes")
    if "qualities" in fields:
        stages |= {"quality", "face_type"}
    if "glasses" in fields:
        stages.add("glasses")
    if "face_type" in fields:  # v3's name
        stages.add("face_type")
    if "faceliveness" in fields:
        stages.add("liveness")
    return stages


def _pts(arr) -> list[dict]:
    """v3 points: doubles."""
    return [{"x": float(x), "y": float(y)} for x, y in arr]


def _pixels(arr) -> list[dict]:
    """v2 points: uint32, as v2's table types them (docs/api.md, v2-integer-fields)."""
    return [{"x": max(0, round(float(x))), "y": max(0, round(float(y)))} for x, y in arr]


def location(face: Face) -> dict:
    """v2's box: uint32 pixels, as the table types it and its example shows; apps slice
    images with it (docs/api.md, v2-integer-fields). The face's own box turned by its
    rotation (docs/api.md, rotated-location); left/top are clipped at 0 (a uint32 is not
    negative)."""
    x1, y1, w, h = _turned_box(face)
    return {"left": max(0, round(x1)), "top": max(0, round(y1)), "width": round(w), "height": round(h)}


def _turned_box(face: Face) -> tuple[float, float, float, float]:
    """left, top, width, height of the face's box turned by its rotation: left/top is the
    face's own top-left corner; on an upright face rolled r deg, about height/2 x sin r
    from the detector's corner."""
    return rotated_rect(face.box, face.upright_size, round(face.roll))


def qualities(q, face_type=None) -> dict:
    """v2's `qualities` object of a Quality record (and the face's FaceType, for `type`)."""
    out = {"occlusion": dataclasses.asdict(q.occlusion), "blur": q.blur, "illumination": q.illumination,
           "completeness": q.completeness}
    if face_type is not None:
        out["type"] = {"human": face_type.human, "cartoon": face_type.cartoon}
    return out


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
        out["landmark"] = _pixels(meshmap.landmark4(face.mesh))
        out["landmark72"] = _pixels(meshmap.landmark72(face.mesh))
    if "glasses" in fields and face.glasses is not None:
        out["glasses"] = face.glasses.kind
        out["glasses_probability"] = face.glasses.probability
    if "qualities" in fields and face.quality is not None:
        out["qualities"] = qualities(face.quality, face.face_type)
    if "faceliveness" in fields and face.liveness is not None:
        out["faceliveness"] = face.liveness
    out.update(null_fields("v2", fields))
    return out


# -- v3 detect (face_field) ---------------------------------------------------------
V3_FACE_FIELDS = ("age", "beauty", "expression", "face_shape", "gender", "glasses", "landmark",
                  "landmark72", "landmark150", "quality", "eye_status", "emotion", "face_type", "mask",
                  "spoofing", "liveness")
V3_EXPRESSIONS = ("none", "smile", "laugh")


# v3 face_field names that differ from v2's face_fields.
V3_TO_V2_FIELDS = {"face_shape": "faceshape", "quality": "qualities", "liveness": "faceliveness",
                   "landmark72": "landmark"}


def v3_stages_for(fields: set[str]) -> set[str]:
    return stages_for({V3_TO_V2_FIELDS.get(f, f) for f in fields})


def v3_location(face: Face) -> dict:
    """v3's box: doubles (Baidu's v3 detect table), the face's own box turned by the int rotation."""
    x1, y1, w, h = _turned_box(face)
    return {"left": round(x1, 2), "top": round(y1, 2), "width": round(w, 2), "height": round(h, 2),
            "rotation": int(round(face.roll))}


def face_to_v3(face: Face, fields: set[str], face_token: str) -> dict:
    """One face of v3 detect's face_list (unmeasured fields null, as in v2)."""
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
    if "glasses" in fields and face.glasses is not None:
        out["glasses"] = {"type": face.glasses.v3_type, "probability": face.glasses.probability}
    if "face_type" in fields and face.face_type is not None:
        out["face_type"] = {"type": face.face_type.kind, "probability": face.face_type.probability}
    if "liveness" in fields and face.liveness is not None:
        out["liveness"] = {"livemapscore": face.liveness}
    out.update(null_fields("v3", fields))
    return out
