"""Every documented threshold in one table (../shared/docs, both Baidu references).

Levels NONE/LOW/NORMAL/HIGH are v3's quality_control / liveness_control /
spoofing_control; V2_RECOMMENDED is the v2 detect "质量判断" table. Occlusion keys use
the field names of detect's qualities.occlusion (the docs' left_check/chin_contour
spellings map to left_cheek/chin).
"""
from __future__ import annotations

from dataclasses import dataclass

OCCLUSION_REGIONS = ("left_eye", "right_eye", "nose", "mouth", "left_cheek", "right_cheek", "chin")


@dataclass(frozen=True)
class QualityLimits:
    occlusion: dict[str, float]  # a region above its limit fails
    illumination: float          # below fails
    blur: float                  # above fails
    completeness: float          # below fails (1 = whole face inside the image)
    pose: float | None = None    # |yaw|, |pitch|, |roll| above fails (v2 table: 20 deg)


def _occ(v: float) -> dict[str, float]:
    return {k: v for k in OCCLUSION_REGIONS}


QUALITY = {
    "LOW": QualityLimits(_occ(0.8), illumination=20, blur=0.8, completeness=0),
    "NORMAL": QualityLimits(_occ(0.6), illumination=40, blur=0.6, completeness=0),
    "HIGH": QualityLimits(_occ(0.2), illumination=100, blur=0.2, completeness=1),
}

# Completeness is a measured share; within this of 1 the face counts as whole (v3's
# 0/1 field, HIGH's "1" requirement), so rounding noise never fails a full face.
COMPLETE_TOLERANCE = 1e-3

# v3 quality_control's pose check (223129 "face not forward"): the docs give no
# per-level angles, only v2's "each under 20 degrees"; NORMAL takes that, LOW and HIGH
# are set either side of it.
POSE_LIMIT = {"LOW": 30.0, "NORMAL": 20.0, "HIGH": 15.0}
# The capture loop searches frames turned up to this (run.max_pose_deg), whatever its
# quality_control level: on open-set sequences of LFW faces, 20 deg left 15 % of enrolled
# people's tracks with no frame to search and 30 deg 4 %, naming no more strangers
# (scripts/eval_open_set.py --loop; docs/loop.md, "Strangers").
LOOP_MAX_POSE_DEG = 30.0

V2_RECOMMENDED = QualityLimits(
    occlusion={"left_eye": 0.6, "right_eye": 0.6, "nose": 0.7, "mouth": 0.7,
               "left_cheek": 0.8, "right_cheek": 0.8, "chin": 0.6},
    illumination=40, blur=0.7, completeness=0.4, pose=20.0,
)

# v3 liveness_control: a liveness score below the level's threshold fails (223120).
LIVENESS = {"LOW": 0.05, "NORMAL": 0.3, "HIGH": 0.9}
# v2 single-frame liveness reference threshold (faceliveness field).
V2_FACELIVENESS = 0.393241
# v3 spoofing_control: a spoofing score above the level's threshold fails.
SPOOFING = {"LOW": 0.00023, "NORMAL": 0.00048, "HIGH": 0.00109}

# Recommended same-person score on Baidu's 0..100 scale.
SAME_PERSON_SCORE = 80.0

# Same-person cosine similarity of SFace embeddings published with the model (OpenCV
# zoo); scripts/eval_lfw.py picks 0.37 on LFW pairsDevTrain, in agreement. The 0..100
# score calibration (issue 3) maps this scale onto Baidu's.
SFACE_SAME_PERSON_COSINE = 0.363


@dataclass(frozen=True)
class FaceTypeEdges:
    """qualities.type: P(human) is 0.95 at `human` and 0.05 at `cartoon` flat-fill share,
    logistic in between and beyond (edge.analysis.face_type)."""
    human: float    # the most flat-filled photographed face measured (tuning half)
    cartoon: float  # the least flat-filled flat cartoon rendering measured (tuning half)


# Measured by scripts/face_type_report.py on the tuning half of LFW people: photos
# (also smoothed, blurred, JPEG quality 15) against toon / poster / mesh-drawing
# renderings of them; rates on the other half and on spoof-dev in docs/fields.md.
FACE_TYPE = FaceTypeEdges(human=0.066, cartoon=0.109)
