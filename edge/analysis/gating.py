"""Quality and liveness control: does a face pass a v3 control level, and if not, why.

Pure functions over a filled Face (quality and pose for quality_control, liveness for
liveness_control), answering with Baidu's v3 error code of the first failed check, in
the order a user can fix them: occluded part (the most occluded one), blur, light,
completeness, pose. The
same checks gate faces in the capture loop.
"""
from __future__ import annotations

from edge.analysis.face import Face
from edge.thresholds import COMPLETE_TOLERANCE, LIVENESS, POSE_LIMIT, QUALITY

CONTROL_LEVELS = ("NONE", "LOW", "NORMAL", "HIGH")

# v3 codes for an occluded part (223121-223127).
OCCLUSION_CODES = {"left_eye": 223121, "right_eye": 223122, "left_cheek": 223123, "right_cheek": 223124,
                   "chin": 223125, "nose": 223126, "mouth": 223127}
BLUR_CODE, LIGHT_CODE, COMPLETENESS_CODE, POSE_CODE, LIVENESS_CODE = 223114, 223115, 223116, 223129, 223120


def quality_failure(face: Face, level: str, pose_limit: float | None = None) -> int | None:
    """The v3 error code of the first quality check `face` fails at `level`, or None.
    `pose_limit` replaces the level's pose angle (the capture loop's run.max_pose_deg)."""
    if level == "NONE":
        return None
    limits, q = QUALITY[level], face.quality
    if q is None:
        raise ValueError("quality_failure needs the quality stage")
    # The most occluded part names the failure (a masked face: the mouth or nose, not an
    # eye that reads just above its limit); ties go to the first in OCCLUSION_CODES.
    over = [(getattr(q.occlusion, part) - limits.occlusion[part], code) for part, code in OCCLUSION_CODES.items()]
    worst = max(over, key=lambda item: item[0])
    if worst[0] > 0:
        return worst[1]
    if q.blur > limits.blur:
        return BLUR_CODE
    if q.illumination < limits.illumination:
        return LIGHT_CODE
    if q.completeness + COMPLETE_TOLERANCE < limits.completeness:
        return COMPLETENESS_CODE
    if max(abs(face.yaw), abs(face.pitch), abs(face.roll)) > (POSE_LIMIT[level] if pose_limit is None else pose_limit):
        return POSE_CODE
    return None


def liveness_failure(face: Face, level: str) -> int | None:
    """223120 when the face's liveness score is below the level's threshold, else None."""
    if level == "NONE":
        return None
    if face.liveness is None:
        raise ValueError("liveness_failure needs the liveness stage")
    return LIVENESS_CODE if face.liveness < LIVENESS[level] else None
